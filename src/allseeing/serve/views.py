"""What the demo shows for an answer: coloured phrases, overlays, one view per relation, the scene graph.

Colours come from :func:`allseeing.rec.graph.color_of`, so a phrase, its box in the overlay and its node in the
scene-graph drawing share one colour.

Images kept by the demo are bounded (:func:`bounded`): an upload is stored at most ``DISPLAY_SIDE`` pixels on its
longer side (or the model's input size, if larger), which is all the page shows and more than the model reads.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from allseeing.data.templates import GROUNDING_SUFFIX, SCENE_GRAPH_SUFFIX
from allseeing.rec import boxes as box_frames
from allseeing.rec.document import ReCDocument
from allseeing.rec.draw import render_objects, render_relation
from allseeing.rec.graph import SceneGraph, hex_color
from allseeing.rec.write import object_mention

# The longest side kept of an uploaded image: the page shows it at most 640 CSS pixels wide (1280 device pixels on a
# 2x screen would be the only gain above this), and the model reads a square of its input size (128 to 336 pixels).
DISPLAY_SIDE = 1024
# Relation pictures are shown as small figures; they are drawn on a copy at most this large.
RELATION_SIDE = 480
THUMBNAIL_HEIGHT = 72

# Answer kinds a user picks; each appends upstream's control suffix to the question (none for plain).
MODES: dict[str, str] = {"plain": "", "grounded": GROUNDING_SUFFIX, "scene_graph": SCENE_GRAPH_SUFFIX}


def instruction(message: str, mode: str) -> str:
    """The question as the model reads it in ``mode``."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    suffix = MODES[mode]
    return f"{message.strip()} {suffix}" if suffix and not message.strip().endswith(suffix) else message.strip()


def region_reference(pixel_box: list[float], size: tuple[int, int]) -> str:
    """``<ref>region</ref><box>[[x1, y1, x2, y2]]</box>`` for a box drawn on the image (square999, as upstream);
    a box dragged right to left or past the border is ordered and clipped to the image first."""
    clipped = box_frames.drawable(tuple(float(v) for v in pixel_box), size, "pixel")
    return object_mention("region", [box_frames.encode(clipped, size)])


def answer_view(image: Image.Image, document: ReCDocument, picture_format: str = "PNG") -> dict[str, Any]:
    """The JSON the page renders for one parsed answer; its pictures are ``picture_format`` data URLs."""
    graph = SceneGraph.from_document(document)
    small = bounded(image, RELATION_SIDE) if graph.relations else image
    relations = [
        {
            "label": f"{graph.objects[r.subject].label} {r.predicate} {graph.objects[r.object].label}",
            "subject": r.subject,
            "object": r.object,
            "image": data_url(render_relation(small, graph, index), picture_format),
        }
        for index, r in enumerate(graph.relations)
    ]
    return {
        "segments": caption_segments(document, graph),
        "objects": [
            {
                "id": obj.id,
                "label": obj.label,
                "color": hex_color(obj.id),
                "box": [round(v, 1) for v in box_frames.drawable(obj.box, image.size)],
            }
            for obj in graph.objects
        ],
        "overlay": data_url(render_objects(image, graph), picture_format) if graph.objects else None,
        "relations": relations,
        "scene_graph": graph.to_json(),
        "scene_graph_svg": graph.to_svg() if graph.objects else None,
        "errors": [{"message": issue.message, "offset": issue.offset} for issue in document.errors],
    }


def caption_segments(document: ReCDocument, graph: SceneGraph) -> list[dict[str, Any]]:
    """The answer's plain text cut into pieces; an object phrase carries its instance id and colour."""
    instance = {obj.box: obj.id for obj in graph.objects}
    spans = sorted(
        (mention.caption_start, mention.caption_start + len(mention.phrase), instance[mention.boxes[0]])
        for mention in document.objects
        if mention.caption_start is not None and mention.boxes and mention.boxes[0] in instance
    )
    segments: list[dict[str, Any]] = []
    cursor = 0
    for start, end, object_id in spans:
        if start < cursor:  # overlapping phrases cannot both be coloured; the first keeps its colour
            continue
        if start > cursor:
            segments.append({"text": document.caption[cursor:start]})
        segments.append({"text": document.caption[start:end], "object": object_id, "color": hex_color(object_id)})
        cursor = end
    if cursor < len(document.caption):
        segments.append({"text": document.caption[cursor:]})
    return segments


def bounded(image: Image.Image, side: int) -> Image.Image:
    """``image`` if neither side is over ``side`` pixels, else a copy scaled down to fit (aspect kept)."""
    if max(image.size) <= side:
        return image
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def thumbnail_url(image: Image.Image, height: int = THUMBNAIL_HEIGHT) -> str:
    """A small JPEG of ``image`` for the sample gallery."""
    width = max(1, round(image.width * height / image.height))
    return data_url(image.resize((width, height), Image.Resampling.LANCZOS), "JPEG")


def data_url(image: Image.Image, kind: str = "PNG") -> str:
    """``image`` as a PNG or JPEG data URL (a JPEG encodes a photo some 50 times faster, 10 times smaller)."""
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **({"quality": 88} if kind == "JPEG" else {}))
    return f"data:image/{kind.lower()};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
