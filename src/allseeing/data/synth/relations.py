"""Predicates of the synthetic world, each a geometric definition over two objects (never sampled at random).

Boxes are the objects' exact pixel boxes (x1, y1, x2, y2). ``A p B`` reads "subject A, predicate p, object B".
The definitions, also listed in docs/synthetic.md:

- left of: A ends before B begins horizontally (A.x2 <= B.x1); right of, above, below likewise.
- next to: the boxes are side by side: disjoint, the horizontal gap at most half the narrower width, and
  their vertical overlap at least half the shorter height (symmetric).
- inside: A's box lies within B's box and A is the smaller (A is drawn on top of B).
- on top of: A rests on B: A's bottom within 4% of B's height of B's top, A's horizontal centre above B's
  extent, A higher than B.
- overlapping: the boxes share area and neither lies inside the other (symmetric).
- bigger than / smaller than: A's area is at least 1.5 times B's / at most B's divided by 1.5.
- same colour as / same shape as: equal colour / shape (symmetric).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from allseeing.data.synth.world import Item, Scene
from allseeing.rec.boxes import area


def _intersection(a: Item, b: Item) -> tuple[float, float]:
    """Width and height of the boxes' overlap (negative: the gap)."""
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = a.pixel_box, b.pixel_box
    return min(ax2, bx2) - max(ax1, bx1), min(ay2, by2) - max(ay1, by1)


def _within(a: Item, b: Item) -> bool:
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = a.pixel_box, b.pixel_box
    return ax1 >= bx1 and ay1 >= by1 and ax2 <= bx2 and ay2 <= by2


def left_of(a: Item, b: Item) -> bool:
    return a.pixel_box[2] <= b.pixel_box[0]


def right_of(a: Item, b: Item) -> bool:
    return a.pixel_box[0] >= b.pixel_box[2]


def above(a: Item, b: Item) -> bool:
    return a.pixel_box[3] <= b.pixel_box[1]


def below(a: Item, b: Item) -> bool:
    return a.pixel_box[1] >= b.pixel_box[3]


def next_to(a: Item, b: Item) -> bool:
    overlap_w, overlap_h = _intersection(a, b)
    width = min(a.pixel_box[2] - a.pixel_box[0], b.pixel_box[2] - b.pixel_box[0])
    height = min(a.pixel_box[3] - a.pixel_box[1], b.pixel_box[3] - b.pixel_box[1])
    return -0.5 * width <= overlap_w <= 0 and overlap_h >= 0.5 * height


def inside(a: Item, b: Item) -> bool:
    return _within(a, b) and area(a.pixel_box) < area(b.pixel_box)


def on_top_of(a: Item, b: Item) -> bool:
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = a.pixel_box, b.pixel_box
    tolerance = 0.04 * (by2 - by1)
    return abs(ay2 - by1) <= tolerance and bx1 <= (ax1 + ax2) / 2 <= bx2 and ay1 < by1


def overlapping(a: Item, b: Item) -> bool:
    overlap_w, overlap_h = _intersection(a, b)
    return overlap_w > 0 and overlap_h > 0 and not _within(a, b) and not _within(b, a)


def bigger_than(a: Item, b: Item) -> bool:
    return area(a.pixel_box) >= 1.5 * area(b.pixel_box)


def smaller_than(a: Item, b: Item) -> bool:
    return area(a.pixel_box) * 1.5 <= area(b.pixel_box)


def same_colour_as(a: Item, b: Item) -> bool:
    return a.colour == b.colour


def same_shape_as(a: Item, b: Item) -> bool:
    return a.shape == b.shape


@dataclass(frozen=True)
class Predicate:
    name: str
    holds: Callable[[Item, Item], bool]
    symmetric: bool
    spatial: bool  # about where the objects are (as opposed to comparing their attributes)


PREDICATES: dict[str, Predicate] = {
    p.name: p
    for p in (
        Predicate("left of", left_of, symmetric=False, spatial=True),
        Predicate("right of", right_of, symmetric=False, spatial=True),
        Predicate("above", above, symmetric=False, spatial=True),
        Predicate("below", below, symmetric=False, spatial=True),
        Predicate("next to", next_to, symmetric=True, spatial=True),
        Predicate("inside", inside, symmetric=False, spatial=True),
        Predicate("on top of", on_top_of, symmetric=False, spatial=True),
        Predicate("overlapping", overlapping, symmetric=True, spatial=True),
        Predicate("bigger than", bigger_than, symmetric=False, spatial=False),
        Predicate("smaller than", smaller_than, symmetric=False, spatial=False),
        Predicate("same colour as", same_colour_as, symmetric=True, spatial=False),
        Predicate("same shape as", same_shape_as, symmetric=True, spatial=False),
    )
}
# The most telling spatial predicate of a pair comes first (used to pick one relation per pair).
SPECIFIC = ("inside", "on top of", "next to", "overlapping")


@dataclass(frozen=True, order=True)
class Relation:
    subject: int
    predicate: str
    object: int


def holding(scene: Scene, subject: int, obj: int) -> list[str]:
    """Every predicate that holds for (subject, object), in registry order."""
    a, b = scene.items[subject], scene.items[obj]
    return [name for name, predicate in PREDICATES.items() if predicate.holds(a, b)]


def scene_graph(scene: Scene) -> list[Relation]:
    """The full scene graph: every predicate over every ordered pair of distinct objects."""
    count = len(scene.items)
    return [
        Relation(s, predicate, o)
        for s in range(count)
        for o in range(count)
        if s != o
        for predicate in holding(scene, s, o)
    ]


def _first_holding(scene: Scene, subject: int, obj: int, names: tuple[str, ...]) -> Relation | None:
    """The first of ``names`` that holds for (subject, object)."""
    for name in names:
        if PREDICATES[name].holds(scene.items[subject], scene.items[obj]):
            return Relation(subject, name, obj)
    return None


MAX_SALIENT = 8  # a scene-graph answer stays within a small model's context


def salient_relations(scene: Scene) -> list[Relation]:
    """The relations a description states, at most ``MAX_SALIENT``, sorted by subject, then object.

    First every object's nearest neighbour (centre distance), so that each object takes part: the pair's specific
    predicate (inside, on top of, next to, overlapping, in that priority) if one holds, else its clearest
    directional one. Then the other pairs with a specific predicate, in order, while there is room.
    """
    count = len(scene.items)
    centres = [((i.pixel_box[0] + i.pixel_box[2]) / 2, (i.pixel_box[1] + i.pixel_box[3]) / 2) for i in scene.items]

    def specific(first: int, second: int) -> Relation | None:
        return _first_holding(scene, first, second, SPECIFIC) or _first_holding(scene, second, first, SPECIFIC)

    chosen: dict[tuple[int, int], Relation] = {}
    for index in range(count):
        others = [j for j in range(count) if j != index]
        if not others:
            continue
        nearest = min(
            others, key=lambda j: (centres[j][0] - centres[index][0]) ** 2 + (centres[j][1] - centres[index][1]) ** 2
        )
        pair = (min(index, nearest), max(index, nearest))
        if pair not in chosen:
            relation = specific(*pair) or _first_holding(scene, *pair, _directional_by_gap(scene, *pair))
            if relation:
                chosen[pair] = relation
    for first in range(count):
        for second in range(first + 1, count):
            if len(chosen) >= MAX_SALIENT:
                break
            if (first, second) not in chosen and (relation := specific(first, second)):
                chosen[(first, second)] = relation
    return sorted(chosen.values())


def _directional_by_gap(scene: Scene, first: int, second: int) -> tuple[str, ...]:
    """Directional predicates ordered by how clearly they can hold (the axis with the larger gap first)."""
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = scene.items[first].pixel_box, scene.items[second].pixel_box
    horizontal = max(bx1 - ax2, ax1 - bx2)
    vertical = max(by1 - ay2, ay1 - by2)
    return (
        ("left of", "right of", "above", "below")
        if horizontal >= vertical
        else ("above", "below", "left of", "right of")
    )
