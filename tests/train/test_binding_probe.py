"""scripts/binding_probe.py on a tiny model and synthetic test scenes."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from allseeing.data.synth.generate import generate
from allseeing.rec.boxes import encode

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
    boxes = result["box_readable"]
    assert boxes["questions"] == 6 and len(boxes["asked"]) == len(boxes["other"]) == 3


def test_box_readability_tells_a_state_holding_the_asked_box_from_one_holding_nothing(monkeypatch):
    # 30 images of two objects; layer 0's state is noise, layer 1's holds the asked box (and noise)
    generator = torch.Generator().manual_seed(0)
    questions = []
    for image in range(30):
        for _ in range(2):
            x, y = torch.rand(2, generator=generator).tolist()
            bbox = [100 * x, 100 * y, 100 * x + 20 + 50 * y, 100 * y + 20 + 50 * x]
            questions.append({"image": f"{image}.jpg", "bbox": bbox, "width": 200, "height": 200})

    def states(model, processor, binding, anchor, question, image_root):
        box = encode(tuple(question["bbox"]), (question["width"], question["height"]))
        noise = 10 * torch.randn(2, 8, generator=generator)  # large dimensions beside the small box
        holding = torch.cat([torch.tensor(box, dtype=torch.float32) / 1000, noise[1]])
        hidden = (torch.cat([noise[0], torch.randn(4, generator=generator)])[None, None], holding[None, None])
        return hidden, 0, box, None

    monkeypatch.setattr(binding_probe, "states", states)
    result = binding_probe.box_readability(None, None, None, "first", questions, Path("."), limit=60)
    assert result["questions"] == 60
    assert result["asked"][1] < 0.05 and result["other"][1] > 0.5  # the asked box, not the other one
    assert min(result["asked"][0], result["other"][0]) > 0.8  # noise holds neither


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
