"""Scene graphs from ReC documents: object instances with ids, relations between them, exports.

An object instance is one box: mentions that list numerically equal boxes are the same instance, named after
the first mention. Boxes that only a ``<pred>`` lists become unnamed instances.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from allseeing.rec.boxes import Box
from allseeing.rec.document import ReCDocument
from allseeing.rec.write import object_mention, relation_mention

# Colour of object instance ``i`` is PALETTE[i % len(PALETTE)], in every view (overlays, DOT, demo).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
    (170, 110, 40),
    (128, 0, 0),
    (0, 0, 128),
)


def color_of(object_id: int) -> tuple[int, int, int]:
    """The colour of an object instance."""
    return PALETTE[object_id % len(PALETTE)]


@dataclass(frozen=True)
class SceneObject:
    id: int
    name: str | None
    box: Box


@dataclass(frozen=True)
class SceneRelation:
    subject: int
    predicate: str
    object: int


@dataclass(frozen=True)
class SceneGraph:
    """Objects (ids are their positions) and directed, labelled relations, without duplicates."""

    objects: tuple[SceneObject, ...]
    relations: tuple[SceneRelation, ...]

    @classmethod
    def from_document(cls, document: ReCDocument) -> SceneGraph:
        objects: list[SceneObject] = []
        ids: dict[Box, int] = {}  # numerically equal boxes are equal keys (hash(1) == hash(1.0))

        def instance(box: Box, name: str | None) -> int:
            if box not in ids:
                ids[box] = len(objects)
                objects.append(SceneObject(len(objects), name, box))
            return ids[box]

        for mention in document.objects:
            for box in mention.boxes:
                instance(box, mention.phrase)
        relations = dict.fromkeys(
            SceneRelation(instance(t.subject_box, t.subject), t.predicate, instance(t.object_box, t.object))
            for t in document.triplets
        )
        return cls(tuple(objects), tuple(relations))

    def triplets(self) -> list[tuple[str | None, Box, str, str | None, Box]]:
        """``(subject, subject_box, predicate, object, object_box)`` per relation."""
        result = []
        for relation in self.relations:
            subject, obj = self.objects[relation.subject], self.objects[relation.object]
            result.append((subject.name, subject.box, relation.predicate, obj.name, obj.box))
        return result

    def to_json(self) -> dict:
        return {
            "objects": [{"id": o.id, "name": o.name, "box": list(o.box)} for o in self.objects],
            "relations": [{"subject": r.subject, "predicate": r.predicate, "object": r.object} for r in self.relations],
        }

    def to_dot(self) -> str:
        """Graphviz DOT: one node per instance in its overlay colour, one labelled edge per relation."""
        lines = ["digraph scene_graph {", '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
        for obj in self.objects:
            label = f"{obj.name if obj.name is not None else '?'} #{obj.id}"
            fill = "#{:02x}{:02x}{:02x}".format(*color_of(obj.id))
            lines.append(f'  o{obj.id} [label={_dot_string(label)}, fillcolor="{fill}"];')
        for relation in self.relations:
            lines.append(f"  o{relation.subject} -> o{relation.object} [label={_dot_string(relation.predicate)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_rec(self) -> str:
        """A ReC paragraph stating every relation and every object that takes part in none.

        Unnamed objects appear only inside ``<pred>`` boxes, so parsing the paragraph gives this graph back.

        Raises:
            ValueError: for an unnamed object outside every relation (it cannot be written).
        """
        sentences = []
        for relation in self.relations:
            subject, obj = self.objects[relation.subject], self.objects[relation.object]
            parts = [_mention(subject), relation_mention(relation.predicate, [subject.box], [obj.box]), _mention(obj)]
            sentences.append(" ".join(part for part in parts if part) + ".")
        related = {r.subject for r in self.relations} | {r.object for r in self.relations}
        for obj in self.objects:
            if obj.id in related:
                continue
            if obj.name is None:
                raise ValueError(f"object #{obj.id} {list(obj.box)} has no name and no relation; it cannot be written")
            sentences.append(f"There is {_mention(obj)}.")
        return " ".join(sentences)


def _mention(obj: SceneObject) -> str:
    return object_mention(obj.name, [obj.box]) if obj.name is not None else ""


def _dot_string(text: str) -> str:
    # JSON string escaping (quotes, backslashes, control characters) is valid DOT string escaping.
    return json.dumps(text, ensure_ascii=False)
