"""Draws the bundled example scene, ``src/allseeing/assets/example.png`` (640 x 514), to match example.rec.txt.

    python scripts/make_example_image.py

Every object is drawn inside the pixel box that its ReC box decodes to, so the overlays land on it.
"""

from pathlib import Path

from PIL import Image, ImageDraw

from allseeing.rec.boxes import decode
from allseeing.rec.parse import parse

ASSETS = Path(__file__).resolve().parents[1] / "src" / "allseeing" / "assets"
SIZE = (640, 514)


def main() -> None:
    document = parse((ASSETS / "example.rec.txt").read_text(), mode="strict")
    box = {m.phrase: decode(m.boxes[0], SIZE) for m in document.objects}
    image = Image.new("RGB", SIZE)
    draw = ImageDraw.Draw(image)
    for y in range(SIZE[1]):  # sky gradient behind everything
        shade = int(120 + 100 * y / SIZE[1])
        draw.line((0, y, SIZE[0], y), fill=(shade - 60, shade, 250))
    x1, y1, x2, y2 = box["road"]
    draw.rectangle((0, y1, SIZE[0], SIZE[1]), fill=(110, 110, 115))
    for x in range(20, SIZE[0], 90):
        draw.rectangle((x, (y1 + y2) / 2 - 3, x + 45, (y1 + y2) / 2 + 3), fill=(235, 235, 235))
    x1, y1, x2, y2 = box["tree"]
    trunk = (x1 + x2) / 2
    draw.rectangle((trunk - 10, (y1 + y2) / 2, trunk + 10, y2), fill=(110, 70, 30))
    draw.ellipse((x1, y1, x2, (y1 + 2 * y2) / 3), fill=(40, 140, 50))
    x1, y1, x2, y2 = box["bus"]
    draw.rounded_rectangle((x1, y1, x2, y2 - 25), radius=18, fill=(200, 30, 30))
    for wx in range(int(x1) + 15, int(x2) - 50, 55):
        draw.rectangle((wx, y1 + 20, wx + 40, y1 + 70), fill=(190, 225, 245))
    for cx in (x1 + 60, x2 - 60):
        draw.ellipse((cx - 28, y2 - 56, cx + 28, y2), fill=(25, 25, 25))
    x1, y1, x2, y2 = box["person"]
    cx = (x1 + x2) / 2
    draw.ellipse((cx - 10, y1, cx + 10, y1 + 22), fill=(230, 190, 150))
    draw.rectangle((x1 + 6, y1 + 24, x2 - 6, y1 + 100), fill=(40, 60, 160))
    draw.rectangle((x1 + 10, y1 + 100, x2 - 10, y2), fill=(50, 50, 50))
    image.save(ASSETS / "example.png", optimize=True)


if __name__ == "__main__":
    main()
