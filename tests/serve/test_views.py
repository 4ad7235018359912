"""The answer views and the pieces the page is built from, on hand-checked inputs."""

import pytest
from PIL import Image

from allseeing.assets import EXAMPLE_IMAGE, EXAMPLE_REC
from allseeing.data.templates import GROUNDING_SUFFIX, SCENE_GRAPH_SUFFIX
from allseeing.rec import boxes as box_frames
from allseeing.rec.graph import SceneGraph, hex_color
from allseeing.rec.parse import parse
from allseeing.serve.views import answer_view, bounded, caption_segments, instruction, region_reference


def test_modes_append_upstreams_control_suffixes_once():
    assert instruction("  What is here? ", "plain") == "What is here?"
    assert instruction("What is here?", "grounded") == f"What is here? {GROUNDING_SUFFIX}"
    assert instruction("What is here?", "scene_graph") == f"What is here? {SCENE_GRAPH_SUFFIX}"
    assert instruction(f"Relations? {SCENE_GRAPH_SUFFIX}", "scene_graph") == f"Relations? {SCENE_GRAPH_SUFFIX}"
    with pytest.raises(ValueError, match="unknown mode 'boxes'; choose one of plain, grounded, scene_graph"):
        instruction("hi", "boxes")


def test_a_drawn_region_becomes_a_square999_reference():
    # 200 x 100 pads to a 200 square with the image 50 px down: y -> (y + 50) / 200 * 999, floored.
    assert region_reference([0, 0, 100, 50], (200, 100)) == "<ref>region</ref><box>[[0, 249, 499, 499]]</box>"
    # Dragged right to left and past the border: sorted, then clamped to the image.
    assert region_reference([250, 120, 100, -10], (200, 100)) == "<ref>region</ref><box>[[499, 249, 999, 749]]</box>"


def test_phrases_carry_their_instance_colour():
    document = parse(
        "A <ref>cat</ref><box>[[0, 0, 10, 10]]</box> near two <ref>dogs</ref><box>[[20, 20, 30, 30], [40, 40, 50, 50]]</box>, "
        "and the <ref>cat</ref><box>[[0, 0, 10, 10]]</box> again.",
        mode="strict",
    )
    segments = caption_segments(document, SceneGraph.from_document(document))
    assert segments == [
        {"text": "A "},
        {"text": "cat", "object": 0, "color": "#e6194b"},
        {"text": " near two "},
        {"text": "dogs", "object": 1, "color": "#3cb44b"},
        {"text": ", and the "},
        {"text": "cat", "object": 0, "color": "#e6194b"},
        {"text": " again."},
    ]
    assert "".join(s["text"] for s in segments) == document.caption


def test_an_answer_view_has_overlay_relations_and_graph():
    image = Image.open(EXAMPLE_IMAGE).convert("RGB")
    document = parse(EXAMPLE_REC.read_text(encoding="utf-8"), mode="strict")
    graph = SceneGraph.from_document(document)
    view = answer_view(image, document)
    assert view["overlay"].startswith("data:image/png;base64,")
    assert [r["label"] for r in view["relations"]] == [
        f"{graph.objects[r.subject].name} #{r.subject} {r.predicate} {graph.objects[r.object].name} #{r.object}"
        for r in graph.relations
    ]
    assert [(r["subject"], r["object"]) for r in view["relations"]] == [(r.subject, r.object) for r in graph.relations]
    assert view["scene_graph"] == graph.to_json()
    # Every object with its pixel box on the image, for the page to draw and highlight.
    assert view["objects"] == [
        {
            "id": o.id,
            "label": o.label,
            "color": hex_color(o.id),
            "box": [round(v, 1) for v in box_frames.drawable(o.box, image.size)],
        }
        for o in graph.objects
    ]
    assert view["scene_graph_svg"].count('class="node"') == len(graph.objects)
    assert view["scene_graph_svg"].count('class="edge"') == len(graph.relations)
    assert view["errors"] == []


def test_unparseable_output_gives_diagnostics_and_no_pictures():
    document = parse("leftpink</ref> cross<box>[[1, 2</box>.", mode="lenient")
    view = answer_view(Image.new("RGB", (40, 30)), document)
    assert view["overlay"] is None and view["scene_graph_svg"] is None and view["relations"] == []
    assert view["errors"] and all(set(e) == {"message", "offset"} for e in view["errors"])
    assert view["segments"] == [{"text": document.caption}]


def test_images_are_bounded_by_their_longer_side():
    small = Image.new("RGB", (300, 200))
    assert bounded(small, 300) is small
    assert bounded(Image.new("RGB", (3000, 1000)), 1024).size == (1024, 341)
    assert bounded(Image.new("RGB", (10, 5000)), 1024).size == (2, 1024)
