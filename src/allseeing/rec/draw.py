"""Overlays of a ReC document on the ORIGINAL image (boxes decoded from their frame, never drawn on padding).

Every object instance keeps one colour (:func:`allseeing.rec.graph.color_of`) in every view: ``objects.png``
shows all instances, ``relation_NN_<subject>_<predicate>_<object>.png`` one relation each (subject and object
boxes, an arrow from subject to object, the predicate).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from allseeing.rec import boxes as box_frames
from allseeing.rec.boxes import Frame
from allseeing.rec.graph import SceneGraph, SceneObject, color_of

FILL_ALPHA = 64
MIN_DRAWN_SIDE = 320
_MAX_NAME = 40


def safe_name(text: str | None) -> str:
    """A file-name fragment: lower-case letters, digits and dashes only, at most 40 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", (text or "").lower()).strip("-")[:_MAX_NAME].strip("-")
    return slug or "unnamed"


class Canvas:
    """An RGBA drawing over one original image, with line and text sizes scaled to the image.

    Images whose shorter side is under ``MIN_DRAWN_SIDE`` pixels are magnified by an integer factor (nearest
    neighbour) first, so that labels stay legible on small images.
    """

    def __init__(self, image: Image.Image, frame: str | Frame) -> None:
        self.size = image.size
        self.zoom = math.ceil(MIN_DRAWN_SIDE / min(image.size)) if min(image.size) < MIN_DRAWN_SIDE else 1
        zoomed = image.resize((image.width * self.zoom, image.height * self.zoom), Image.Resampling.NEAREST)
        self.base = zoomed.convert("RGBA")
        self.frame = box_frames.get_frame(frame)
        self.fill_layer = Image.new("RGBA", self.base.size, (0, 0, 0, 0))
        self.line_layer = Image.new("RGBA", self.base.size, (0, 0, 0, 0))
        shorter = min(self.base.size)
        self.line_width = max(2, round(shorter / 160))
        self.font = ImageFont.load_default(size=max(11, shorter // 28))

    def pixel_box(self, obj: SceneObject) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = box_frames.drawable(obj.box, self.size, self.frame)
        return x1 * self.zoom, y1 * self.zoom, x2 * self.zoom, y2 * self.zoom

    def box(self, obj: SceneObject, label: bool = True) -> None:
        color = color_of(obj.id)
        rect = self.pixel_box(obj)
        ImageDraw.Draw(self.fill_layer).rectangle(rect, fill=(*color, FILL_ALPHA))
        ImageDraw.Draw(self.line_layer).rectangle(rect, outline=(*color, 255), width=self.line_width)
        if label:
            self.label(obj.label, (rect[0], rect[1]), color)

    def label(self, text: str, anchor: tuple[float, float], color: tuple[int, int, int]) -> None:
        """Text on a solid tag of ``color``, kept inside the image."""
        draw = ImageDraw.Draw(self.line_layer)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=self.font)
        pad = self.line_width
        width, height = right - left + 2 * pad, bottom - top + 2 * pad
        x = min(max(anchor[0], 0), max(self.base.width - width, 0))
        y = min(max(anchor[1] - height, 0), max(self.base.height - height, 0))
        draw.rectangle((x, y, x + width, y + height), fill=(*color, 230))
        draw.text((x + pad - left, y + pad - top), text, fill=(255, 255, 255, 255), font=self.font)

    def arrow(self, source: SceneObject, target: SceneObject, predicate: str) -> None:
        """Arrow between box centres, head at the object, predicate at the middle."""
        (x1, y1), (x2, y2) = _centre(self.pixel_box(source)), _centre(self.pixel_box(target))
        draw = ImageDraw.Draw(self.line_layer)
        color = (255, 255, 255, 255)
        draw.line((x1, y1, x2, y2), fill=(0, 0, 0, 255), width=self.line_width + 2)
        draw.line((x1, y1, x2, y2), fill=color, width=self.line_width)
        if (x1, y1) != (x2, y2):
            angle = math.atan2(y2 - y1, x2 - x1)
            head = self.line_width * 6
            wings = [(x2 - head * math.cos(angle + s * 0.45), y2 - head * math.sin(angle + s * 0.45)) for s in (-1, 1)]
            draw.polygon([(x2, y2), *wings], fill=color, outline=(0, 0, 0, 255))
        self.label(predicate, ((x1 + x2) / 2, (y1 + y2) / 2), (40, 40, 40))

    def image(self) -> Image.Image:
        return Image.alpha_composite(Image.alpha_composite(self.base, self.fill_layer), self.line_layer).convert("RGB")


def _centre(rect: tuple[float, float, float, float]) -> tuple[float, float]:
    return (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2


def render_objects(image: Image.Image, graph: SceneGraph, frame: str | Frame = box_frames.DEFAULT_FRAME) -> Image.Image:
    """Every object instance: translucent fill, outline and label in its colour."""
    canvas = Canvas(image, frame)
    for obj in graph.objects:
        canvas.box(obj)
    return canvas.image()


def render_relation(
    image: Image.Image, graph: SceneGraph, index: int, frame: str | Frame = box_frames.DEFAULT_FRAME
) -> Image.Image:
    """One relation: its subject and object in their colours, an arrow and the predicate."""
    relation = graph.relations[index]
    canvas = Canvas(image, frame)
    subject, obj = graph.objects[relation.subject], graph.objects[relation.object]
    canvas.box(subject)
    if obj.id != subject.id:
        canvas.box(obj)
    canvas.arrow(subject, obj, relation.predicate)
    return canvas.image()


def write_overlays(
    image: Image.Image, graph: SceneGraph, out_dir: str | Path, frame: str | Frame = box_frames.DEFAULT_FRAME
) -> list[Path]:
    """Write ``objects.png`` and one picture per relation into ``out_dir`` (created); returns the paths.

    File names are built from sanitised phrases and are checked to stay inside ``out_dir``.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    written = [_save(render_objects(image, graph, frame), root, "objects.png")]
    for index, relation in enumerate(graph.relations):
        subject, obj = graph.objects[relation.subject], graph.objects[relation.object]
        name = f"relation_{index:02d}_{safe_name(subject.name)}_{safe_name(relation.predicate)}_{safe_name(obj.name)}"
        written.append(_save(render_relation(image, graph, index, frame), root, f"{name}.png"))
    return written


def _save(image: Image.Image, root: Path, name: str) -> Path:
    """``root / name`` as the caller gave ``root`` (relative stays relative), once it is sure to lie inside it."""
    if (root / name).resolve().parent != root.resolve():
        raise ValueError(f"refusing to write {name!r} outside {root}")
    image.save(root / name)
    return root / name
