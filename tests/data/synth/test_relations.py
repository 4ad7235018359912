"""Relations hold by their geometric definitions: hand-made cases, and every relation of random scenes checked
against definitions written again here, independently, in terms of corners and areas."""

import pytest

from allseeing.data.synth.relations import PREDICATES, holding, salient_relations, scene_graph
from allseeing.data.synth.world import Item


def item(box, colour="red", shape="circle") -> Item:
    return Item(shape, colour, "medium", (0, 0, 0, 0), tuple(float(v) for v in box))


def reference(name: str, a: Item, b: Item) -> bool:
    """The definitions of docs/synthetic.md, written out independently of the package."""
    ax1, ay1, ax2, ay2 = a.pixel_box
    bx1, by1, bx2, by2 = b.pixel_box
    area_a, area_b = (ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1)
    a_in_b = bx1 <= ax1 and by1 <= ay1 and ax2 <= bx2 and ay2 <= by2
    b_in_a = ax1 <= bx1 and ay1 <= by1 and bx2 <= ax2 and by2 <= ay2
    share_area = ax1 < bx2 and bx1 < ax2 and ay1 < by2 and by1 < ay2
    gap = max(bx1 - ax2, ax1 - bx2)
    vertical_overlap = min(ay2, by2) - max(ay1, by1)
    return {
        "left of": ax2 <= bx1,
        "right of": bx2 <= ax1,
        "above": ay2 <= by1,
        "below": by2 <= ay1,
        "next to": 0 <= gap <= 0.5 * min(ax2 - ax1, bx2 - bx1) and vertical_overlap >= 0.5 * min(ay2 - ay1, by2 - by1),
        "inside": a_in_b and area_a < area_b,
        "on top of": abs(ay2 - by1) <= 0.04 * (by2 - by1) and bx1 <= (ax1 + ax2) / 2 <= bx2 and ay1 < by1,
        "overlapping": share_area and not a_in_b and not b_in_a,
        "bigger than": area_a >= 1.5 * area_b,
        "smaller than": 1.5 * area_a <= area_b,
        "same colour as": a.colour == b.colour,
        "same shape as": a.shape == b.shape,
    }[name]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (20, 0, 30, 10), {"left of"}),
        ((0, 0, 10, 10), (12, 2, 22, 12), {"left of", "next to"}),
        ((20, 20, 30, 30), (0, 0, 100, 100), {"inside", "smaller than"}),
        ((40, 0, 60, 20), (0, 20, 100, 60), {"above", "on top of", "smaller than"}),
        ((0, 0, 10, 10), (5, 5, 15, 15), {"overlapping"}),
        ((0, 50, 10, 60), (0, 0, 10, 10), {"below"}),
        ((0, 0, 30, 30), (40, 0, 50, 10), {"left of", "bigger than"}),
    ],
)
def test_hand_made_pairs(a, b, expected):
    first, second = item(a), item(b, colour="blue", shape="star")
    assert {name for name, p in PREDICATES.items() if p.holds(first, second)} == expected


def test_attribute_predicates():
    assert PREDICATES["same colour as"].holds(item((0, 0, 1, 1)), item((5, 5, 6, 6), shape="star"))
    assert PREDICATES["same shape as"].holds(item((0, 0, 1, 1)), item((5, 5, 6, 6), colour="blue"))


def test_the_predicate_vocabulary_is_the_documented_one():
    # docs/synthetic.md's table; evaluation files, options and the model card all name these twelve.
    assert sorted(PREDICATES) == [
        "above", "below", "bigger than", "inside", "left of", "next to", "on top of", "overlapping", "right of",
        "same colour as", "same shape as", "smaller than",
    ]  # fmt: skip


def test_every_relation_of_random_scenes_matches_the_reference_definitions(scenes):
    for scene in scenes:
        graph = set(scene_graph(scene))
        for s, a in enumerate(scene.items):
            for o, b in enumerate(scene.items):
                if s != o:
                    expected = {name for name in PREDICATES if reference(name, a, b)}
                    assert set(holding(scene, s, o)) == expected
                    assert {r.predicate for r in graph if (r.subject, r.object) == (s, o)} == expected


def test_salient_relations_are_true_and_cover_every_object(scenes):
    for scene in scenes:
        salient = salient_relations(scene)
        for relation in salient:
            assert reference(relation.predicate, scene.items[relation.subject], scene.items[relation.object])
        if len(scene.items) > 1:
            assert {i for r in salient for i in (r.subject, r.object)} == set(range(len(scene.items)))


def test_all_predicates_occur_in_random_scenes(scenes):
    assert {r.predicate for scene in scenes for r in scene_graph(scene)} == set(PREDICATES)
    assert {r.predicate for scene in scenes for r in salient_relations(scene)} >= {
        "left of",
        "right of",
        "above",
        "below",
        "next to",
        "inside",
        "on top of",
        "overlapping",
    }
