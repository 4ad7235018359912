"""scripts/grounding_probe.py: which questions it pairs, and the probe on a tiny model and synthetic test scenes."""

import importlib.util
import json
from pathlib import Path

import pytest

from allseeing.data.synth.generate import generate

SCRIPT = Path(__file__).parents[2] / "scripts" / "grounding_probe.py"
spec = importlib.util.spec_from_file_location("grounding_probe", SCRIPT)
grounding_probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(grounding_probe)


def test_each_question_is_paired_with_the_next_other_box_of_its_image():
    a, b, c = ({"image": "1.jpg", "bbox": box} for box in ([0, 0, 1, 1], [5, 5, 6, 6], [0, 0, 1, 1]))
    alone = {"image": "2.jpg", "bbox": [0, 0, 1, 1]}
    assert grounding_probe.pairs([a, b, c, alone]) == [(a, b), (b, c), (c, b)]


def test_the_scored_answer_is_the_trained_grounding_answer():
    # 200 x 100 image padded to 200 x 200 (50 px above): (0, 0, 100, 50) -> (0, 50, 100, 100) / 200 x 999, truncated
    question = {"bbox": [0, 0, 100, 50], "width": 200, "height": 100}
    assert grounding_probe.answer("red circle", question) == "<ref>red circle</ref><box>[[0, 249, 499, 499]]</box>."


def test_the_probe_scores_asked_and_other_boxes(tmp_path, tiny_model_dir):
    generate(tmp_path, n_train=1, n_test=6, seed=3, workers=1, progress=False)
    questions = tmp_path / "eval" / "grounding" / "grounding_eval.jsonl"
    result = grounding_probe.probe(str(tiny_model_dir), questions, tmp_path, limit=5, batch_size=4)
    assert result["questions"] == 5
    for part in ("box_digits", "leading_digits", "first_digit"):
        scores = result[part]
        assert 0 < scores["asked"] < 20 and 0 < scores["other"] < 20
        assert scores["gap"] == pytest.approx(scores["other"] - scores["asked"], abs=2e-4)
    first = result["first_digit"]
    assert 0 < first["differ"] <= 5 and 0 <= first["asked_likelier"] <= 1

    lines = questions.read_text().splitlines()
    changed = json.loads(lines[0]) | {"text": "Where is it?"}
    questions.write_text("\n".join([json.dumps(changed), *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match="line 1 does not use the grounding prompt"):
        grounding_probe.probe(str(tiny_model_dir), questions, tmp_path, limit=5, batch_size=4)
