"""scripts/binding_probe.py on a tiny model and synthetic test scenes."""

import importlib.util
import json
from pathlib import Path

import pytest

from allseeing.data.synth.generate import generate

SCRIPT = Path(__file__).parents[2] / "scripts" / "binding_probe.py"
spec = importlib.util.spec_from_file_location("binding_probe", SCRIPT)
binding_probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(binding_probe)


@pytest.mark.parametrize("anchor", ["first", "name"])
def test_the_probe_reports_attention_shares_and_colour_readability(tmp_path, tiny_model_dir, capsys, anchor):
    generate(tmp_path, n_train=1, n_test=8, seed=3, workers=1, progress=False)
    questions = tmp_path / "eval" / "grounding" / "grounding_eval.jsonl"
    args = ["--model", str(tiny_model_dir), "--questions", str(questions), "--image-root", str(tmp_path)]
    assert binding_probe.main([*args, "--anchor", anchor, "--limit", "6", "--layer", "-1", "--head", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["layer"], result["head"], result["anchor"]) == (1, 1, anchor)
    attention = result["attention"]
    assert attention["questions"] == 6
    assert 0 < attention["asked_share"] < 1 and 0 < attention["other_share"] < 1 and 0 <= attention["asked_higher"] <= 1
    assert "attention_by_head" not in result
    colours = result["colour_readable"]
    assert colours["questions"] > 6 and colours["colours"] > 1
    for kind in ("patch", "anchor"):  # embeddings, then after each of the tiny model's 2 layers
        assert len(colours[kind]) == 3 and all(0 <= accuracy <= 100 for accuracy in colours[kind])


def test_questions_without_the_grounding_prompt_are_refused(tmp_path, tiny_model_dir):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"text": "Where is it?", "image": "x.jpg"}) + "\n")
    args = ["--model", str(tiny_model_dir), "--questions", str(questions), "--image-root", str(tmp_path)]
    with pytest.raises(SystemExit, match="line 1 does not use the grounding prompt"):
        binding_probe.main(args)


def test_every_head_adds_each_heads_shares(tmp_path, tiny_model_dir, capsys):
    generate(tmp_path, n_train=1, n_test=8, seed=3, workers=1, progress=False)
    questions = tmp_path / "eval" / "grounding" / "grounding_eval.jsonl"
    args = ["--model", str(tiny_model_dir), "--questions", str(questions), "--image-root", str(tmp_path)]
    assert binding_probe.main([*args, "--limit", "4", "--layer", "-1", "--head", "1", "--every-head"]) == 0
    result = json.loads(capsys.readouterr().out)
    by_head = result["attention_by_head"]
    assert list(by_head) == ["0:0", "0:1", "1:0", "1:1"]  # the tiny model: 2 layers of 2 heads
    assert by_head["1:1"] == result["attention"]  # the chosen head, computed alike
