"""Referring-expression grounding: the predicted box and Acc@0.5.

``official`` reads the answer as upstream's ``parse_box`` does: the first ``[[...]]`` anywhere (no newline inside),
its first box; no match, invalid JSON or not four numbers gives the zero box (counted invalid here); coordinates
are decoded without any range check or clamping, in float32 as upstream's torch tensors are. ``fixed`` reads the
first box of the first ``<ref>`` mention (else of any mention, else the first ``[[...]]``) with the lenient ReC
parser, then, so that other model families score as they answer (with their ``--box-format``), the first of
Qwen2-VL's ``(x1,y1),(x2,y2)``, a flat ``[x1, y1, x2, y2]`` (Ferret, Qwen2.5-VL's ``"bbox_2d"``, most prompted
APIs) and Kosmos-2's two ``<patch_index_NNNN>`` tokens (its 32 x 32 grid, as a ``unit`` box); an answer without a
box is invalid. Both count a hit at IoU > 0.5 (strict), as upstream.
"""

from __future__ import annotations

import json
import re

from allseeing.eval.metrics.boxformat import to_pixels
from allseeing.eval.metrics.float32 import PixelBox, box32, iou32, pixels32
from allseeing.eval.metrics.percent import percent
from allseeing.rec.boxes import Box, BoxError, Size, iou, is_box
from allseeing.rec.parse import parse

IOU_THRESHOLD = 0.5
ZERO_BOX: Box = (0, 0, 0, 0)
_BRACKETS = re.compile(r"\[\[.*?\]\]")
_NUMBER = r"\s*(-?\d+(?:\.\d+)?)\s*"
_POINT_PAIR = re.compile(rf"\({_NUMBER},{_NUMBER}\)\s*,?\s*\({_NUMBER},{_NUMBER}\)")  # Qwen2-VL
_FLAT = re.compile(rf"\[{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}\]")
_KOSMOS = re.compile(r"<patch_index_(\d{4})>\s*<patch_index_(\d{4})>")
COORDINATES = ("x1", "y1", "x2", "y2")
KOSMOS_GRID = 32  # Kosmos-2 locates with the top-left and bottom-right cells of a 32 x 32 grid


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
    if not invalid:
        return box, False
    found = other_family_box(answer)
    return (None, True) if found is None else (found, False)


def other_family_box(answer: str) -> Box | None:
    """The first box written in another model family's syntax (see the module docstring), as written."""
    for pattern in (_POINT_PAIR, _FLAT):
        match = pattern.search(answer)
        if match:
            return tuple(float(v) if "." in v else int(v) for v in match.groups())
    match = _KOSMOS.search(answer)
    if match:
        return kosmos_box(*(int(index) for index in match.groups()))
    return None


def kosmos_box(first: int, last: int) -> Box:
    """Kosmos-2's corner cells as a unit box, as its processor decodes them (``patch_index_to_coordinate``):
    the cells' centres, or whole cells when the corners share a row or a column."""
    (y1, x1), (y2, x2) = divmod(first, KOSMOS_GRID), divmod(last, KOSMOS_GRID)
    cell = 1 / KOSMOS_GRID
    if x1 == x2 or y1 == y2:
        return x1 * cell, y1 * cell, x2 * cell + cell, y2 * cell + cell
    return x1 * cell + cell / 2, y1 * cell + cell / 2, x2 * cell + cell / 2, y2 * cell + cell / 2


def read_box(answer: str, official: bool) -> tuple[Box | None, bool]:
    """(box as written, invalid) by the protocol's rules."""
    return official_box(answer) if official else fixed_box(answer)


def placed(box: Box, size: Size, box_format: str, official: bool) -> PixelBox | None:
    """A box read from an answer (``read_box``) as pixels of the image. None: it cannot be placed on the image (out
    of range, ``fixed`` only: ``official`` decodes it unchecked, in float32, as upstream)."""
    if official:
        return pixels32(box, size, box_format)
    try:
        return to_pixels(box, size, box_format, check_range=True)
    except BoxError:
        return None


def hit(box: Box, truth: tuple[float, float, float, float], size: Size, box_format: str, official: bool) -> bool | None:
    """Is a box read from an answer (``read_box``) right for a ground-truth pixel box? None: not placed (``placed``)."""
    pixels = placed(box, size, box_format, official)
    if pixels is None:
        return None
    overlap = iou32(pixels, box32(truth)) if official else iou(pixels, truth)
    return overlap > IOU_THRESHOLD


def query_check(
    answers: dict[str, list[tuple[tuple[float, ...], Box | None, Size]]], box_format: str, official: bool
) -> dict:
    """Does the model read the question? ``answers``: per image, (ground-truth box, box read, image size) of each
    question. Not a metric of upstream's; a diagnostic beside it, over the images asked about two or more different
    boxes (``images``, with ``questions`` questions):

    - ``one_box``: the images whose questions all got one and the same box back (a model that ignores the expression
      and always points at one object scores there whatever its accuracy);
    - ``other_object``: the questions answered with another asked-about object of their image (a hit, by ``hit``, on
      its box and not on the asked one): a wrong choice among the objects, where a miss on every object is a box
      that is in no object's place;
    - ``nearer_asked`` (``coordinates_nearer_asked``): per coordinate, how often the answer's is nearer the asked
      object's than every other asked-about object's, beside what an answer blind to the expression gets.

    A box of ``None`` is an unanswered or unreadable question: it points at no object.
    """
    asked = [rows for rows in answers.values() if len({truth for truth, _, _ in rows}) > 1]
    same = sum(1 for rows in asked if rows[0][1] is not None and len({box for _, box, _ in rows}) == 1)
    other = 0
    for rows in asked:
        truths = {truth for truth, _, _ in rows}
        for truth, box, size in rows:
            if box is None or hit(box, truth, size, box_format, official):
                continue
            other += any(hit(box, another, size, box_format, official) for another in truths - {truth})
    return {
        "images": len(asked),
        "one_box": same,
        "questions": sum(map(len, asked)),
        "other_object": other,
        "nearer_asked": coordinates_nearer_asked(asked, box_format, official),
    }


def coordinates_nearer_asked(
    asked: list[list[tuple[tuple[float, ...], Box | None, Size]]], box_format: str, official: bool
) -> dict[str, float | int | None]:
    """Binding, coordinate by coordinate, before a box is good enough to hit (IoU > 0.5): over the answers placed on
    their image (``answers``), the percentage whose x1, y1, x2, y2 (and ``all`` four at once) is strictly nearer the
    asked object's than every other asked-about object's of the image (so a coordinate two objects share is never
    nearer); ``chance``: what an answer blind to the expression gets by pointing at its image's most-asked object
    every time (1 / objects where each object is asked once, as in the synthetic files). A coordinate above
    ``chance`` follows the expression (the model's boxes lean to the asked object) even where no box hits."""
    nearer = dict.fromkeys((*COORDINATES, "all"), 0)
    placed_answers = blind = 0
    for rows in asked:
        truths = {truth for truth, _, _ in rows}
        placed_truths = []
        for truth, box, size in rows:
            pixels = None if box is None else placed(box, size, box_format, official)
            if pixels is None:
                continue
            placed_truths.append(truth)
            wins = [
                all(abs(pixels[c] - truth[c]) < abs(pixels[c] - other[c]) for other in truths - {truth})
                for c in range(len(COORDINATES))
            ]
            for name, won in zip(COORDINATES, wins, strict=True):
                nearer[name] += won
            nearer["all"] += all(wins)
        placed_answers += len(placed_truths)
        blind += max(map(placed_truths.count, placed_truths), default=0)
    shares = {name: percent(count, placed_answers) for name, count in nearer.items()}
    return {"answers": placed_answers, **shares, "chance": percent(blind, placed_answers)}
