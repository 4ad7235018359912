"""Files bundled with the package: the example scene, its ReC paragraph, and the small model."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
EXAMPLE_IMAGE = ASSETS_DIR / "example.png"
EXAMPLE_REC = ASSETS_DIR / "example.rec.txt"
# The bundled small model (docs/model-card.md): the default --model of every command.
BUNDLED_MODEL = ASSETS_DIR / "model"
