"""Scene graphs from ReC documents: object instances with ids, relations between them, exports.

An object instance is one box: mentions that list numerically equal boxes are the same instance, named after
the first mention. Boxes that only a ``<pred>`` lists become unnamed instances.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

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


def hex_color(object_id: int) -> str:
    """:func:`color_of` as ``#rrggbb`` (DOT, SVG, HTML)."""
    return "#{:02x}{:02x}{:02x}".format(*color_of(object_id))


@dataclass(frozen=True)
class SceneObject:
    id: int
    name: str | None
    box: Box

    @property
    def label(self) -> str:
        """How the instance is shown in pictures: its name (``?`` when only a ``<pred>`` lists it) and its id."""
        return f"{self.name if self.name is not None else '?'} #{self.id}"


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
            label = obj.label
            fill = hex_color(obj.id)
            lines.append(f'  o{obj.id} [label={_dot_string(label)}, fillcolor="{fill}"];')
        for relation in self.relations:
            lines.append(f"  o{relation.subject} -> o{relation.object} [label={_dot_string(relation.predicate)}];")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_svg(self, size: int = 480) -> str:
        """A drawing of the graph (SVG, no Graphviz needed): instances on a circle in their overlay colours, one
        curved, labelled arrow per relation (parallel relations bend apart, a relation to itself is a loop)."""
        centre, radius = size / 2, size / 2 - 70
        count = len(self.objects)
        places = [
            (centre + radius * math.cos(2 * math.pi * i / count - math.pi / 2),
             centre + radius * math.sin(2 * math.pi * i / count - math.pi / 2))
            if count > 1 else (centre, centre)
            for i in range(count)
        ]  # fmt: skip
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
            'font-family="Helvetica, Arial, sans-serif" font-size="13">',
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>',
        ]
        seen: dict[frozenset[int], int] = {}
        for relation in self.relations:
            pair = frozenset((relation.subject, relation.object))
            bend = 40 + 30 * seen.get(pair, 0)
            seen[pair] = seen.get(pair, 0) + 1
            parts.append(_svg_edge(places[relation.subject], places[relation.object], bend, relation.predicate))
        for obj, (x, y) in zip(self.objects, places, strict=True):
            label = obj.label
            width = 16 + 7.5 * len(label)
            fill = hex_color(obj.id)
            parts.append(
                f'<g class="node"><rect x="{x - width / 2:.1f}" y="{y - 13:.1f}" width="{width:.1f}" height="26" '
                f'rx="8" fill="{fill}" stroke="#222"/><text x="{x:.1f}" y="{y + 4.5:.1f}" text-anchor="middle" '
                f'fill="#fff" stroke="#000" stroke-width="0.6" font-weight="bold">{escape(label)}</text></g>'
            )
        parts.append("</svg>")
        return "\n".join(parts) + "\n"

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


def _svg_edge(start: tuple[float, float], end: tuple[float, float], bend: float, predicate: str) -> str:
    """A quadratic curve bent ``bend`` pixels to the left of start -> end, its label at the curve's middle."""
    (x1, y1), (x2, y2) = start, end
    if (x1, y1) == (x2, y2):  # a relation to itself: a loop above the node
        path = f"M{x1 - 12:.1f},{y1 - 13:.1f} C{x1 - 40:.1f},{y1 - 70:.1f} {x1 + 40:.1f},{y1 - 70:.1f} "
        path += f"{x1 + 12:.1f},{y1 - 13:.1f}"
        label_x, label_y = x1, y1 - 58
    else:
        length = math.hypot(x2 - x1, y2 - y1)
        normal_x, normal_y = (y1 - y2) / length, (x2 - x1) / length
        control_x, control_y = (x1 + x2) / 2 + bend * normal_x, (y1 + y2) / 2 + bend * normal_y
        # Both ends stop short of the nodes (about a node's half height) so the arrowhead stays visible.
        (sx, sy), (ex, ey) = (
            _towards((x1, y1), (control_x, control_y), 18),
            _towards((x2, y2), (control_x, control_y), 18),
        )
        path = f"M{sx:.1f},{sy:.1f} Q{control_x:.1f},{control_y:.1f} {ex:.1f},{ey:.1f}"
        label_x, label_y = (x1 + 2 * control_x + x2) / 4, (y1 + 2 * control_y + y2) / 4
    return (
        f'<g class="edge"><path d="{path}" fill="none" stroke="#444" stroke-width="1.6" marker-end="url(#arrow)"/>'
        f'<text x="{label_x:.1f}" y="{label_y:.1f}" text-anchor="middle" fill="#222" stroke="#fff" stroke-width="3" '
        f'paint-order="stroke">{escape(predicate)}</text></g>'
    )


def _towards(point: tuple[float, float], target: tuple[float, float], distance: float) -> tuple[float, float]:
    length = math.hypot(target[0] - point[0], target[1] - point[1]) or 1.0
    return point[0] + distance * (target[0] - point[0]) / length, point[1] + distance * (target[1] - point[1]) / length


def _dot_string(text: str) -> str:
    # JSON string escaping (quotes, backslashes, control characters) is valid DOT string escaping.
    return json.dumps(text, ensure_ascii=False)
