"""Scenes of the synthetic world: canvases, backgrounds, objects with exact boxes, and their rendering.

Boxes are chosen in the ReC frame first (integers of ``square999``) and the pixel box is their exact decode, so
the box a ReC answer states is the drawn object's box with no quantisation error. Every shape touches all
four sides of its box. Drawing is antialiased by rendering each object's mask at 4x and downsampling.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from allseeing.rec import boxes as box_frames
from allseeing.rec.boxes import Box

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "star", "hexagon", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 38, 38),
    "green": (36, 160, 62),
    "blue": (38, 84, 214),
    "yellow": (240, 206, 36),
    "orange": (243, 128, 22),
    "purple": (132, 58, 184),
    "pink": (236, 118, 186),
    "cyan": (34, 196, 208),
}
# Side of a size class as a fraction of the canvas' shorter side.
SIZES: dict[str, tuple[float, float]] = {"small": (0.12, 0.17), "medium": (0.21, 0.28), "large": (0.33, 0.42)}
BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "noise")
MIN_SIDE, MAX_SIDE = 96, 384
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Item:
    """One drawn object. ``box`` is in square999 (what ReC states); ``pixel_box`` is its exact decode."""

    shape: str
    colour: str
    size: str
    box: Box
    pixel_box: tuple[float, float, float, float]

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Background:
    kind: str
    colours: tuple[tuple[int, int, int], ...]
    vertical: bool = True
    noise_seed: int = 0


@dataclass(frozen=True)
class Scene:
    """A canvas and its objects in drawing order (later objects are drawn on top)."""

    scene_id: str
    width: int
    height: int
    background: Background
    items: tuple[Item, ...]

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def sample_canvas(rng: random.Random) -> tuple[int, int]:
    """A non-square size in either orientation; odd and even side differences both occur."""
    while True:
        width, height = rng.randint(MIN_SIDE, MAX_SIDE), rng.randint(MIN_SIDE, MAX_SIDE)
        if width != height and max(width, height) / min(width, height) <= 2.0:
            return width, height


def sample_background(rng: random.Random) -> Background:
    """Low-saturation backgrounds, so that every object colour stands out."""

    def grey() -> tuple[int, int, int]:
        level = rng.choice([rng.randint(40, 80), rng.randint(150, 225)])
        return tuple(min(255, max(0, level + rng.randint(-12, 12))) for _ in range(3))

    kind = rng.choice(BACKGROUNDS)
    if kind == "gradient":
        return Background(kind, (grey(), grey()), vertical=rng.random() < 0.5)
    return Background(kind, (grey(),), noise_seed=rng.getrandbits(32) if kind == "noise" else 0)


def content_range(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Smallest and largest square999 codes whose decode lies inside the image: (x_lo, y_lo, x_hi, y_hi)."""
    width, height = size
    dx, dy = box_frames.pad_offset(width, height)
    side = max(width, height)
    scale = box_frames.BOX_SCALE
    return (-(-dx * scale // side), -(-dy * scale // side), (dx + width) * scale // side, (dy + height) * scale // side)


def make_item(shape: str, colour: str, size: str, box: Box, image_size: tuple[int, int]) -> Item:
    return Item(shape, colour, size, box, box_frames.decode(box, image_size))


def side_in_codes(size: str, image_size: tuple[int, int], rng: random.Random) -> int:
    """A square object's side, in square999 units, for a size class."""
    low, high = SIZES[size]
    side_pixels = rng.uniform(low, high) * min(image_size)
    return max(2, round(side_pixels * box_frames.BOX_SCALE / max(image_size)))


def size_class_of(side: int, image_size: tuple[int, int]) -> str:
    """The size class a square object of ``side`` square999 codes looks like: the class whose range of sides (a
    share of the shorter canvas side) holds it, else the nearest one."""
    share = side * max(image_size) / box_frames.BOX_SCALE / min(image_size)
    return min(SIZES, key=lambda name: max(SIZES[name][0] - share, share - SIZES[name][1], 0.0))


# --- rendering ---------------------------------------------------------------------------------------------------


def _unit_polygon(shape: str) -> list[tuple[float, float]]:
    """Vertices of ``shape`` normalised so that they touch all four sides of the unit square."""
    if shape == "triangle":
        return [(0.0, 1.0), (1.0, 1.0), (0.5, 0.0)]
    if shape == "diamond":
        return [(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)]
    if shape == "cross":
        a, b = 1 / 3, 2 / 3
        return [(a, 0), (b, 0), (b, a), (1, a), (1, b), (b, b), (b, 1), (a, 1), (a, b), (0, b), (0, a), (a, a)]
    if shape == "star":
        points = []
        for k in range(10):
            radius = 1.0 if k % 2 == 0 else 0.42
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((radius * math.cos(angle), radius * math.sin(angle)))
    elif shape == "hexagon":
        points = [(math.cos(k * math.pi / 3), math.sin(k * math.pi / 3)) for k in range(6)]
    else:
        raise ValueError(f"no polygon for shape {shape!r}")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [((x - min(xs)) / (max(xs) - min(xs)), (y - min(ys)) / (max(ys) - min(ys))) for x, y in points]


_POLYGONS = {shape: _unit_polygon(shape) for shape in SHAPES if shape not in ("circle", "square")}


def _item_mask(item: Item, canvas_size: tuple[int, int]) -> tuple[Image.Image, tuple[int, int]]:
    """``item``'s antialiased coverage (mode L) over its box, drawn at SUPERSAMPLE x, and where it goes."""
    x1, y1, x2, y2 = item.pixel_box
    left, top = math.floor(x1), math.floor(y1)
    right, bottom = min(math.ceil(x2), canvas_size[0]), min(math.ceil(y2), canvas_size[1])
    region = (max(right - left, 1), max(bottom - top, 1))
    k = SUPERSAMPLE
    mask = Image.new("L", (region[0] * k, region[1] * k), 0)
    draw = ImageDraw.Draw(mask)
    # Local, supersampled coordinates of the box; the far edge of a filled shape is exclusive.
    bx1, by1, bx2, by2 = (x1 - left) * k, (y1 - top) * k, (x2 - left) * k, (y2 - top) * k
    if item.shape == "circle":
        draw.ellipse((bx1, by1, bx2 - 1, by2 - 1), fill=255)
    elif item.shape == "square":
        draw.rectangle((bx1, by1, bx2 - 1, by2 - 1), fill=255)
    else:
        width, height = bx2 - bx1 - 1, by2 - by1 - 1
        draw.polygon([(bx1 + u * width, by1 + v * height) for u, v in _POLYGONS[item.shape]], fill=255)
    return mask.resize(region, Image.Resampling.BOX), (left, top)


def _background(scene: Scene) -> Image.Image:
    background, size = scene.background, scene.size
    if background.kind == "plain":
        return Image.new("RGB", size, background.colours[0])
    if background.kind == "gradient":
        (r1, g1, b1), (r2, g2, b2) = background.colours
        steps = size[1] if background.vertical else size[0]
        line = Image.new("RGB", (1, steps) if background.vertical else (steps, 1))
        for i in range(steps):
            t = i / max(steps - 1, 1)
            colour = (round(r1 + (r2 - r1) * t), round(g1 + (g2 - g1) * t), round(b1 + (b2 - b1) * t))
            line.putpixel((0, i) if background.vertical else (i, 0), colour)
        return line.resize(size, Image.Resampling.NEAREST)
    # noise: coarse random blotches (every 4 px) around the base colour, smoothly upsampled
    noise_rng = random.Random(background.noise_seed)
    coarse = (max(size[0] // 4, 1), max(size[1] // 4, 1))
    base = background.colours[0]
    data = bytes(
        min(255, max(0, channel + noise_rng.randint(-28, 28))) for _ in range(coarse[0] * coarse[1]) for channel in base
    )
    return Image.frombytes("RGB", coarse, data).resize(size, Image.Resampling.BILINEAR)


def render(scene: Scene) -> Image.Image:
    """The scene as an RGB image of its original size."""
    canvas = _background(scene)
    for item in scene.items:
        mask, corner = _item_mask(item, canvas.size)
        canvas.paste(COLOURS[item.colour], corner, mask)
    return canvas


def object_map(scene: Scene) -> Image.Image:
    """Which object each pixel shows (mode L): 0 for the background, ``k + 1`` for ``scene.items[k]``.

    A pixel belongs to the top-most object that covers at least half of it (the masks :func:`render` paints with),
    so an object's pixels here are exactly the part of it left visible by the objects drawn over it.
    """
    canvas = Image.new("L", scene.size, 0)
    for index, item in enumerate(scene.items):
        mask, corner = _item_mask(item, canvas.size)
        canvas.paste(index + 1, corner, mask.point(lambda value: 255 if value >= 128 else 0))
    return canvas
