"""Files bundled with the package: the example scene and its ReC paragraph."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
EXAMPLE_IMAGE = ASSETS_DIR / "example.png"
EXAMPLE_REC = ASSETS_DIR / "example.rec.txt"
