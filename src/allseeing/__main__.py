"""``python -m allseeing`` runs the command line."""

import sys

from allseeing.cli import main

sys.exit(main())
