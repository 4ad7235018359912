"""Referring-expression grounding: the predicted box and Acc@0.5.

``official`` reads the answer as upstream's ``parse_box`` does: the first ``[[...]]`` anywhere (no newline inside),
its first box; no match, invalid JSON or not four numbers gives the zero box (counted invalid here); coordinates
are decoded without any range check or clamping, in float32 as upstream's torch tensors are. ``fixed`` reads the
first box of the first ``<ref>`` mention (else of any mention, else the first ``[[...]]``) with the lenient ReC
parser and counts an answer without a box as invalid. Both count a hit at IoU > 0.5 (strict), as upstream.
"""

from __future__ import annotations

import json
import re

from allseeing.eval.metrics.boxformat import to_pixels
from allseeing.eval.metrics.float32 import box32, iou32, pixels32
from allseeing.rec.boxes import Box, BoxError, Size, iou, is_box
from allseeing.rec.parse import parse

IOU_THRESHOLD = 0.5
ZERO_BOX: Box = (0, 0, 0, 0)
_BRACKETS = re.compile(r"\[\[.*?\]\]")


def official_box(answer: str) -> tuple[Box, bool]:
    """(box as written, invalid) by upstream's rules."""
    match = _BRACKETS.search(answer)
    if not match:
        return ZERO_BOX, True
    try:
        boxes = json.loads(match.group())
    except (ValueError, RecursionError):  # upstream's bare except: anything unreadable is the zero box
        return ZERO_BOX, True
    first = boxes[0] if isinstance(boxes, list) and boxes else None
    return (tuple(first), False) if is_box(first) else (ZERO_BOX, True)


def fixed_box(answer: str) -> tuple[Box | None, bool]:
    """(box, invalid) with our parser."""
    document = parse(answer, mode="lenient")
    for mention in document.objects:
        if mention.boxes:
            return mention.boxes[0], False
    for relation in document.relations:
        if relation.subjects:
            return relation.subjects[0], False
    box, invalid = official_box(answer)
    return (None, True) if invalid else (box, False)


def read_box(answer: str, official: bool) -> tuple[Box | None, bool]:
    """(box as written, invalid) by the protocol's rules."""
    return official_box(answer) if official else fixed_box(answer)


def hit(box: Box, truth: tuple[float, float, float, float], size: Size, box_format: str, official: bool) -> bool | None:
    """Is a box read from an answer (``read_box``) right for a ground-truth pixel box? None: the box cannot be
    placed on the image (out of range, ``fixed`` only: ``official`` decodes it unchecked, in float32, as
    upstream)."""
    if official:
        return iou32(pixels32(box, size, box_format), box32(truth)) > IOU_THRESHOLD
    try:
        pixels = to_pixels(box, size, box_format, check_range=True)
    except BoxError:
        return None
    return iou(pixels, truth) > IOU_THRESHOLD


def one_box_images(answers: dict[str, list[tuple[tuple[float, ...], Box | None]]]) -> dict[str, int]:
    """Does the model read the question? ``answers``: per image, (ground-truth box, box read) of each question.

    Of the images asked about two or more different boxes (``images``), ``one_box`` counts those whose questions
    all got one and the same box back: a model that ignores the expression and always points at one object
    scores there whatever its accuracy. Not a metric of upstream's; a diagnostic beside it.
    """
    asked = [pairs for pairs in answers.values() if len({truth for truth, _ in pairs}) > 1]
    same = sum(1 for pairs in asked if pairs[0][1] is not None and len({box for _, box in pairs}) == 1)
    return {"images": len(asked), "one_box": same}
