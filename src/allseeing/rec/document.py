"""The parsed form of a ReC text and its JSON view (the ``allseeing rec parse`` contract, docs/formats.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allseeing.rec import boxes as box_frames
from allseeing.rec.boxes import Box, Frame, Size


@dataclass(frozen=True)
class Issue:
    """A problem found while parsing: what is wrong and where (a character offset into the input)."""

    message: str
    offset: int


@dataclass(frozen=True)
class ObjectMention:
    """``<ref>phrase</ref><box>[[...]]</box>``: one mention, with every box it lists.

    Attributes:
        start, end: offsets of the whole mention (``<ref>`` through the last ``</box>``) in the input.
        caption_start: where ``phrase`` begins in the document's caption (``None`` in compat mode, which
            merges mentions).
    """

    phrase: str
    boxes: tuple[Box, ...]
    start: int
    end: int
    caption_start: int | None


@dataclass(frozen=True)
class RelationMention:
    """``<pred>predicate</pred><box>subjects</box><box>objects</box>``: one mention."""

    predicate: str
    subjects: tuple[Box, ...]
    objects: tuple[Box, ...]
    start: int
    end: int
    caption_start: int | None


@dataclass(frozen=True)
class Triplet:
    """One (subject, predicate, object) edge; a name is ``None`` when no ``<ref>`` lists that box."""

    subject: str | None
    subject_box: Box
    predicate: str
    object: str | None
    object_box: Box


@dataclass(frozen=True)
class ReCDocument:
    """A parsed ReC text: the plain caption, the mentions in input order, the triplets and the problems."""

    caption: str
    objects: tuple[ObjectMention, ...]
    relations: tuple[RelationMention, ...]
    triplets: tuple[Triplet, ...]
    errors: tuple[Issue, ...] = ()


def to_json(document: ReCDocument, size: Size | None = None, frame: str | Frame = box_frames.DEFAULT_FRAME) -> dict:
    """The JSON object printed by ``allseeing rec parse``; with ``size``, pixel boxes are added beside boxes."""

    def pixels(box: Box) -> list[float]:
        return [round(v, 2) for v in box_frames.decode(box, size, frame)]

    def pixel_or_none(box: Box) -> list[float] | None:
        try:
            return pixels(box)
        except box_frames.BoxError:  # an invalid box is reported in "errors"; it has no pixel form
            return None

    objects: list[dict[str, Any]] = []
    for mention in document.objects:
        entry: dict[str, Any] = {"phrase": mention.phrase, "boxes": [list(b) for b in mention.boxes]}
        if size is not None:
            entry["pixel_boxes"] = [pixel_or_none(b) for b in mention.boxes]
        entry.update(start=mention.start, end=mention.end)
        objects.append(entry)
    relations: list[dict[str, Any]] = []
    for mention in document.relations:
        entry = {
            "predicate": mention.predicate,
            "subjects": [list(b) for b in mention.subjects],
            "objects": [list(b) for b in mention.objects],
        }
        if size is not None:
            entry["pixel_subjects"] = [pixel_or_none(b) for b in mention.subjects]
            entry["pixel_objects"] = [pixel_or_none(b) for b in mention.objects]
        entry.update(start=mention.start, end=mention.end)
        relations.append(entry)
    triplets: list[dict[str, Any]] = []
    for triplet in document.triplets:
        entry = {
            "subject": triplet.subject,
            "subject_box": list(triplet.subject_box),
            "predicate": triplet.predicate,
            "object": triplet.object,
            "object_box": list(triplet.object_box),
        }
        if size is not None:
            entry["subject_pixel_box"] = pixel_or_none(triplet.subject_box)
            entry["object_pixel_box"] = pixel_or_none(triplet.object_box)
        triplets.append(entry)
    return {
        "caption": document.caption,
        "objects": objects,
        "relations": relations,
        "triplets": triplets,
        "errors": [{"message": e.message, "offset": e.offset} for e in document.errors],
    }
