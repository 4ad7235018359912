"""Scene graphs: construction from documents, exports, and the ReC paragraph round trip."""

import json

import pytest
from hypothesis import given, settings

from allseeing.rec.graph import SceneGraph, SceneObject, color_of
from allseeing.rec.parse import parse
from tests.rec.strategies import scene_graphs

BUS = (
    "a <ref>bus</ref><box>[[290, 260, 835, 781]]</box> <pred>on</pred><box>[[290, 260, 835, 781]]</box>"
    "<box>[[0, 583, 984, 900]]</box> the <ref>road</ref><box>[[0, 583, 984, 900]]</box>; the "
    "<ref>bus</ref><box>[[290, 260, 835, 781]]</box> is <pred>on</pred><box>[[290, 260, 835, 781]]</box>"
    "<box>[[0, 583, 984, 900]]</box> it and <pred>near</pred><box>[[290, 260, 835, 781]]</box><box>[[5, 5, 9, 9]]</box>"
)


def test_instances_are_boxes_and_relations_are_deduplicated():
    graph = SceneGraph.from_document(parse(BUS))
    assert [(o.id, o.name, o.box) for o in graph.objects] == [
        (0, "bus", (290, 260, 835, 781)),
        (1, "road", (0, 583, 984, 900)),
        (2, None, (5, 5, 9, 9)),
    ]
    assert [(r.subject, r.predicate, r.object) for r in graph.relations] == [(0, "on", 1), (0, "near", 2)]
    assert graph.triplets()[0] == ("bus", (290, 260, 835, 781), "on", "road", (0, 583, 984, 900))


def test_json_and_dot_exports():
    graph = SceneGraph.from_document(parse(BUS))
    assert json.loads(json.dumps(graph.to_json()))["relations"][1] == {"subject": 0, "predicate": "near", "object": 2}
    dot = graph.to_dot()
    assert dot.startswith("digraph scene_graph {")
    assert 'o0 [label="bus #0", fillcolor="#e6194b"];' in dot
    assert 'o2 [label="? #2"' in dot
    assert 'o0 -> o1 [label="on"];' in dot
    assert color_of(0) == (230, 25, 75)


def test_dot_escapes_quotes():
    graph = SceneGraph((SceneObject(0, 'the "big" \\ one', (1, 2, 3, 4)),), ())
    assert '[label="the \\"big\\" \\\\ one #0"' in graph.to_dot()


def test_unnamed_isolated_object_cannot_be_written():
    with pytest.raises(ValueError, match="no name"):
        SceneGraph((SceneObject(0, None, (1, 2, 3, 4)),), ()).to_rec()


@settings(max_examples=300)
@given(scene_graphs())
def test_random_graphs_survive_write_then_parse(graph):
    text = graph.to_rec()
    again = SceneGraph.from_document(parse(text, mode="strict"))
    assert {(o.name, o.box) for o in again.objects} == {(o.name, o.box) for o in graph.objects}
    assert set(again.triplets()) == set(graph.triplets())
    assert len(again.relations) == len(graph.relations)
