"""Referring-expression grounding: the predicted box and Acc@0.5.

``official`` reads the answer as upstream's ``parse_box`` does: the first ``[[...]]`` anywhere (no newline
inside), its first box; no match, invalid JSON or not four numbers gives the zero box (counted invalid here);
coordinates are decoded without any range check or clamping. ``fixed`` reads the first box of the first ``<ref>``
mention (else of any mention, else the first ``[[...]]``) with the lenient ReC parser and counts an answer
without a box as invalid. Both count a hit at IoU > 0.5 (strict), as upstream.
"""

from __future__ import annotations

import json
import re

from allseeing.eval.metrics.boxformat import to_pixels
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
    except ValueError:
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


def hit(
    answer: str, truth: tuple[float, float, float, float], size: Size, box_format: str, official: bool
) -> tuple[bool, bool]:
    """(correct, invalid) for one answer against a ground-truth pixel box."""
    box, invalid = official_box(answer) if official else fixed_box(answer)
    if box is None:
        return False, True
    try:
        pixels = to_pixels(box, size, box_format, check_range=not official)
    except BoxError:
        return False, True
    return iou(pixels, truth) > IOU_THRESHOLD, invalid
