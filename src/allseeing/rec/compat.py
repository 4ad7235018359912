"""Upstream ``eval_psg.py`` ReC extraction, reproduced exactly for metric parity (docs/upstream.md, "PSG extraction").

Use it only to reproduce published PSG numbers; :func:`allseeing.rec.parse.parse` is the parser to use.
The quirks kept, each on purpose:

1. Tokens come from the pattern "a tag, the shortest text, the next tag" (``<.*?>.*?<.*?>``, no DOTALL), matched
   left to right without overlap. A match that does not start with ``<box>`` sets the current tag: ``<ref>``
   if it starts with ``<ref>``, else a predicate (so ``<b>x</b>`` and ``<image> the <ref>`` are predicates,
   and a phrase holding a newline is never matched at all).
2. The current tag starts as the object ``Unknown``, so a leading box is an object named ``Unknown``.
3. Objects and predicates are dicts keyed by phrase text: every mention of a phrase is merged, and the box
   lists of one predicate are paired across all its mentions (``L[0]`` with ``L[1]``, ``L[2]`` with ``L[3]``...).
4. A box list that is not valid JSON is skipped silently (recorded here as an issue).
5. An odd number of box lists for a predicate drops the last one; subject/object counts that do not broadcast
   are truncated by ``zip``; either sets ``correct_format`` to False.
6. Predicate boxes are named through ``json.dumps`` of the box: ``[1.0, 2, 3, 4]`` does not match
   ``[1, 2, 3, 4]``, and the phrase list keeps duplicates (``['road', 'road']``) and may be empty.
7. Boxes are not range-checked. A box is read as upstream's ``tensor(box).view(-1, 4)`` reads it: any regular
   nesting of exactly four numbers is one box (``[[1, 2], [3, 4]]`` is ``[1, 2, 3, 4]``); a tuple with any
   other box is dropped (upstream drops it when that conversion raises; with 0 or 8 numbers it crashes later).
   A predicate's box list that is JSON but not a list (``"ab"``) keeps its place in the pairing and yields no
   tuple, as upstream's.
8. The caption is the text with ``<ref>``, ``</ref>``, ``<pred>``, ``</pred>`` and every matched box removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from allseeing.rec import tags
from allseeing.rec.boxes import Box, is_box
from allseeing.rec.document import Issue, ObjectMention, ReCDocument, RelationMention, Triplet

UNKNOWN = "Unknown"
_UPSTREAM_TOKEN = re.compile(r"<.*?>.*?<.*?>")
_ANY_TAG = re.compile(r"<.*?>")


@dataclass(frozen=True)
class CompatTuple:
    """Upstream's scene-graph tuple: phrase lists (possibly empty, with duplicates), raw boxes, predicate."""

    subject_phrases: tuple[str, ...]
    subject_box: Box
    object_phrases: tuple[str, ...]
    object_box: Box
    predicate: str


@dataclass
class CompatExtraction:
    """What upstream's extraction yields for one text, plus offsets and issues for our diagnostics."""

    caption: str
    objects: dict[str, list] = field(default_factory=dict)
    relations: dict[str, list[list]] = field(default_factory=dict)
    tuples: list[CompatTuple] = field(default_factory=list)
    correct_format: bool = True
    issues: list[Issue] = field(default_factory=list)
    object_spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    relation_spans: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def to_document(self) -> ReCDocument:
        """The extraction in the common document shape (merged objects; relations as upstream pairs them)."""
        objects = tuple(
            ObjectMention(phrase, _valid(boxes), *self.object_spans[phrase], caption_start=None)
            for phrase, boxes in self.objects.items()
        )
        relations = []
        for predicate, lists in self.relations.items():
            spans = self.relation_spans[predicate]
            for index in range(0, len(lists) - 1, 2):
                relations.append(
                    RelationMention(
                        predicate,
                        _valid(lists[index]),
                        _valid(lists[index + 1]),
                        start=spans[index][0],
                        end=spans[index + 1][1],
                        caption_start=None,
                    )
                )
        triplets = tuple(
            Triplet(
                t.subject_phrases[0] if t.subject_phrases else None,
                t.subject_box,
                t.predicate,
                t.object_phrases[0] if t.object_phrases else None,
                t.object_box,
            )
            for t in self.tuples
        )
        errors = tuple(sorted(self.issues, key=lambda issue: issue.offset))
        return ReCDocument(self.caption, objects, tuple(relations), triplets, errors)


def _valid(boxes: list) -> tuple[Box, ...]:
    return tuple(tuple(box) for box in boxes if is_box(box))


def extract(text: str) -> CompatExtraction:
    """Run upstream's extraction and scene-graph tuple construction on ``text``."""
    caption = text
    for tag in (tags.REF_OPEN, tags.REF_CLOSE, tags.PRED_OPEN, tags.PRED_CLOSE):
        caption = caption.replace(tag, "")
    result = CompatExtraction(caption="")
    is_ref, current, current_start = True, UNKNOWN, None
    for match in _UPSTREAM_TOKEN.finditer(text):
        token = match.group()
        inner = _ANY_TAG.sub("", token)
        if not token.startswith(tags.BOX_OPEN):
            is_ref, current, current_start = token.startswith(tags.REF_OPEN), inner, match.start()
            continue
        caption = caption.replace(token, "")
        try:
            boxes = json.loads(inner)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            result.issues.append(Issue(f"box list {inner[:60]!r} is not valid JSON (skipped)", match.start()))
            continue
        if not isinstance(boxes, list) and (is_ref or not isinstance(boxes, str)):
            # Upstream crashes on these (extend or len of a number); a predicate's string keeps its slot below.
            result.issues.append(Issue(f"box list {inner[:60]!r} is not a list (skipped)", match.start()))
            continue
        start = match.start() if current_start is None else current_start
        if is_ref:
            if current == UNKNOWN and current_start is None:
                result.issues.append(Issue(f"box before any tag is given to object {UNKNOWN!r}", match.start()))
            result.objects.setdefault(current, []).extend(boxes)
            first_start = result.object_spans.get(current, (start, 0))[0]
            result.object_spans[current] = (first_start, match.end())
        else:
            result.relations.setdefault(current, []).append(boxes)
            result.relation_spans.setdefault(current, []).append((start, match.end()))
    result.caption = caption
    _build_tuples(result)
    return result


def _build_tuples(result: CompatExtraction) -> None:
    """Upstream's scene-graph construction: pairs of box lists per predicate, broadcast, zip (quirks 3, 5-7)."""
    box_phrases: dict[str, list[str]] = {}
    for phrase, boxes in result.objects.items():
        for box in boxes:
            box_phrases.setdefault(json.dumps(box), []).append(phrase)
    for predicate, lists in result.relations.items():
        spans = result.relation_spans[predicate]
        if len(lists) % 2:
            result.correct_format = False
            result.issues.append(Issue(f"predicate {predicate!r} has an odd number of box lists", spans[-1][0]))
        for index in range(0, len(lists) - 1, 2):
            subjects, objects = lists[index], lists[index + 1]
            if len(subjects) == 1:
                subjects = subjects * len(objects)
            if len(objects) == 1:
                objects = objects * len(subjects)
            if len(subjects) != len(objects):
                result.correct_format = False
                message = f"predicate {predicate!r}: {len(subjects)} subjects vs {len(objects)} objects"
                result.issues.append(Issue(message, spans[index][0]))
            for subject, obj in zip(subjects, objects, strict=False):  # upstream truncates
                subject_box, object_box = _as_box(subject), _as_box(obj)
                if subject_box is None or object_box is None:
                    continue
                result.tuples.append(
                    CompatTuple(
                        tuple(box_phrases.get(json.dumps(subject), ())),
                        subject_box,
                        tuple(box_phrases.get(json.dumps(obj), ())),
                        object_box,
                        predicate,
                    )
                )


def _shape(value: object) -> tuple[int, ...] | None:
    """The shape ``torch.tensor(value)`` would have, or None where it would raise (ragged, not numbers)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return ()
    if not isinstance(value, list):
        return None
    shapes = {_shape(item) for item in value}
    if None in shapes or len(shapes) > 1:
        return None
    return (len(value), *(shapes.pop() if shapes else ()))


def _flat(value: object) -> list:
    return [number for item in value for number in _flat(item)] if isinstance(value, list) else [value]


def _as_box(value: object) -> Box | None:
    """A box as upstream reads it (``tensor(value).view(-1, 4)`` giving one row), else None."""
    shape = _shape(value)
    if shape is None or shape == ():
        return None
    numbers = _flat(value)
    return tuple(numbers) if len(numbers) == 4 else None
