"""ReC serializer: the exact inverse of :func:`allseeing.rec.parse.parse` for canonical documents.

Canonical text uses upstream's spacing: ``<ref>bus</ref><box>[[290, 260, 835, 781]]</box>``, boxes joined by
``, `` and always wrapped in a list, even a single one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from allseeing.rec import tags
from allseeing.rec.boxes import Box
from allseeing.rec.document import ReCDocument


def box_list(boxes: Iterable[Box]) -> str:
    """``<box>[[x1, y1, x2, y2], ...]</box>`` with upstream's spacing."""
    return f"{tags.BOX_OPEN}{json.dumps([list(box) for box in boxes])}{tags.BOX_CLOSE}"


def object_mention(phrase: str, boxes: Iterable[Box]) -> str:
    """``<ref>phrase</ref><box>[[...]]</box>``."""
    return f"{tags.REF_OPEN}{phrase}{tags.REF_CLOSE}{box_list(boxes)}"


def relation_mention(predicate: str, subjects: Iterable[Box], objects: Iterable[Box]) -> str:
    """``<pred>predicate</pred><box>[[subjects]]</box><box>[[objects]]</box>``."""
    return f"{tags.PRED_OPEN}{predicate}{tags.PRED_CLOSE}{box_list(subjects)}{box_list(objects)}"


def write(document: ReCDocument) -> str:
    """Render a document back to ReC text: its caption with every mention re-inserted where it stood.

    Raises:
        ValueError: for a document without caption positions (compat mode merges mentions and has none).
    """
    pieces: list[tuple[int, str, str]] = []
    for obj in document.objects:
        pieces.append((_caption_start(obj.caption_start), obj.phrase, object_mention(obj.phrase, obj.boxes)))
    for rel in document.relations:
        mention = relation_mention(rel.predicate, rel.subjects, rel.objects)
        pieces.append((_caption_start(rel.caption_start), rel.predicate, mention))
    out: list[str] = []
    position = 0
    for caption_start, phrase, mention in sorted(pieces, key=lambda piece: piece[0]):
        if caption_start < position or document.caption[caption_start : caption_start + len(phrase)] != phrase:
            raise ValueError(f"mention {phrase!r} does not match the caption at {caption_start}")
        out.append(document.caption[position:caption_start])
        out.append(mention)
        position = caption_start + len(phrase)
    out.append(document.caption[position:])
    return "".join(out)


def _caption_start(value: int | None) -> int:
    if value is None:
        raise ValueError("this document has no caption positions (compat mode); it cannot be written back")
    return value
