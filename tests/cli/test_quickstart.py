"""The README's first command: the bundled model asked for a sample scene's scene graph."""

import json

import pytest

from allseeing.cli import main
from allseeing.data.synth.language import PSG_PROMPT
from allseeing.data.synth.samples import sample_images
from allseeing.rec.document import to_json
from allseeing.rec.graph import SceneGraph
from allseeing.rec.parse import parse


@pytest.mark.slow
def test_quickstart_answers_with_grounded_relations_and_draws_them(capsys, tmp_path):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    result = json.loads(stdout)
    assert result["image"] == "scene-1" and result["prompt"] == PSG_PROMPT
    document = parse(result["answer"], mode="lenient")
    graph = SceneGraph.from_document(document)
    assert result["scene_graph"] == graph.to_json()
    assert json.loads((out / "scene_graph.json").read_text()) == result["scene_graph"]
    assert result["parse"] == to_json(document, size=sample_images(1)["scene-1"].size)
    # The bundled model states relations between boxed objects for its own world's scenes.
    assert len(graph.relations) >= 1 and len(graph.objects) >= 2
    for relation in graph.relations:
        subject, obj = graph.objects[relation.subject], graph.objects[relation.object]
        assert f"{subject.label} --{relation.predicate}--> {obj.label}" in stderr
    names = {p.name for p in out.iterdir()}
    assert {"image.png", "objects.png", "scene_graph.dot", "scene_graph.svg"} <= names
    assert len([n for n in names if n.startswith("relation_")]) == len(graph.relations)
    assert sorted(result["files"]) == sorted(str(out / n) for n in names)


def test_quickstart_takes_an_image_and_a_question(capsys, tmp_path, tiny_model_dir):
    from allseeing.assets import EXAMPLE_IMAGE

    out = tmp_path / "qs"
    argv = ["quickstart", "--model", str(tiny_model_dir), "--image", str(EXAMPLE_IMAGE), "--prompt", "What is here?"]
    assert main([*argv, "--max-new-tokens", "8", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["image"], result["model"], result["prompt"]) == (
        str(EXAMPLE_IMAGE),
        str(tiny_model_dir),
        "What is here?",
    )
    assert (out / "image.png").exists() and (out / "scene_graph.svg").exists()
