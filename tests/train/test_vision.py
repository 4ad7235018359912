"""Stage 0: the vision tower trains on dense targets, resumes on the same curve and loads as a model's tower."""

import json
import shutil

import pytest
import torch
from transformers import CLIPVisionModel

from allseeing.cli import main
from allseeing.model.build import new_model
from allseeing.train.config import ConfigError, TrainConfig, VisionConfig, load_stage_config
from allseeing.train.vision import box_ious, per_object, pool_objects, train_vision

CONFIG = "configs/train/small-vision.yaml"


def settings(out, *extra):
    tiny = ["preset=tiny", "image_size=none", "patch_size=none", "batch=8", "samples=48", "heldout_scenes=6"]
    return [*tiny, "num_workers=0", "save_every=3", "eval_every=3", "log_every=1", f"output_dir={out}", *extra]


def losses(out):
    return [e["total"] for e in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "total" in e]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("vision")
    return out, train_vision(load_stage_config(CONFIG, settings(out)), progress=False)


def test_the_vision_stage_trains_and_reports_heldout_metrics(uninterrupted):
    out, summary = uninterrupted
    assert summary["stage"] == "vision" and summary["last_step"] == 6 and summary["samples"] == 48
    curve = losses(out)
    assert len(curve) == 6 and curve[-1] < curve[0]
    heldout = json.loads((out / "final" / "heldout.json").read_text())
    assert set(heldout) == {"background", "cells", "shape", "colour", "size", "box_iou50", "objects_seen"}
    assert set(heldout["shape"]) == {"all", "small", "medium", "large"}
    assert 0 <= heldout["objects_seen"]["all"] <= 100
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]


def test_a_resumed_run_continues_the_same_curve(uninterrupted, tmp_path, capfd):
    out, _ = uninterrupted
    assert main(["train", CONFIG, *settings(tmp_path, "max_steps=4")]) == 0
    assert json.loads(capfd.readouterr().out)["last_step"] == 4  # stdout is one JSON document
    shutil.rmtree(tmp_path / "checkpoint-4")  # killed after step 4, before its checkpoint existed
    train_vision(load_stage_config(CONFIG, settings(tmp_path, "resume=true")), progress=False)
    # The log reads as one run: the killed run's step 4 and its held-out metrics are gone.
    entries = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    logged = [(e["step"], "heldout" in e) for e in entries]
    assert logged == [(1, False), (2, False), (3, False), (3, True), (4, False), (5, False), (6, False), (6, True)]
    assert losses(tmp_path) == pytest.approx(losses(out), rel=1e-5)
    resumed = CLIPVisionModel.from_pretrained(tmp_path / "final").state_dict()
    whole = CLIPVisionModel.from_pretrained(out / "final").state_dict()
    assert all(torch.allclose(resumed[k], whole[k], atol=1e-6) for k in whole)


def test_a_run_stopped_before_its_final_folder_writes_it_when_resumed(uninterrupted, tmp_path):
    out, _ = uninterrupted
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("final"))  # killed after the last checkpoint
    summary = train_vision(load_stage_config(CONFIG, settings(copy, "resume=true")), progress=False)
    assert summary["last_step"] == summary["start"] == 6  # nothing left to train
    whole = CLIPVisionModel.from_pretrained(out / "final").state_dict()
    written = CLIPVisionModel.from_pretrained(copy / "final").state_dict()
    assert all(torch.equal(written[k], whole[k]) for k in whole)
    assert json.loads((copy / "final" / "heldout.json").read_text()) == json.loads(
        (out / "final" / "heldout.json").read_text()
    )


def test_the_final_folder_is_the_tower_of_a_new_model(uninterrupted):
    out, _ = uninterrupted
    model, processor = new_model("tiny", ["a red circle <ref>x</ref>"], vision=out / "final")
    tower = CLIPVisionModel.from_pretrained(out / "final")
    assert all(torch.equal(v, tower.state_dict()[k]) for k, v in model.model.vision_tower.state_dict().items())
    assert processor.config.image_size == tower.config.image_size
    assert processor.config.image_tokens == (tower.config.image_size // tower.config.patch_size) ** 2


def test_a_new_resolution_reaches_the_model_and_its_processor(tmp_path):
    out = tmp_path / "vision"
    train_vision(load_stage_config(CONFIG, settings(out, "image_size=48", "patch_size=8", "samples=8")), False)
    model, processor = new_model("tiny", ["a red circle"], vision=out / "final")
    assert model.config.vision_config.image_size == 48 and processor.config.image_tokens == 36
    assert model.config.image_seq_length == 36


def test_stage_configs_are_told_apart_and_checked(tmp_path):
    assert isinstance(load_stage_config(CONFIG), VisionConfig)
    assert isinstance(load_stage_config("configs/train/small-synth.yaml"), TrainConfig)
    with pytest.raises(ConfigError, match="unknown keys"):
        load_stage_config(CONFIG, ["data=[]"])
    with pytest.raises(ConfigError, match="not a multiple"):
        load_stage_config(CONFIG, ["image_size=100"])
    with pytest.raises(ConfigError, match="vision_init needs init=preset"):
        load_stage_config("configs/train/small-synth.yaml", ["init=some/folder", "vision_init=tower"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: audio\n")
    with pytest.raises(ConfigError, match="unknown stage 'audio'"):
        load_stage_config(bad)


def test_box_iou_by_hand():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.2, 0.2]])
    b = torch.tensor([[0.25, 0.0, 0.75, 0.5], [0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 0.7, 0.7]])
    # half-overlapping squares: 0.125 / 0.375; reversed corners are the same box; disjoint: 0
    assert box_ious(a, b) == pytest.approx([1 / 3, 1.0, 0.0])


def test_objects_are_pooled_over_their_own_patches():
    item = torch.tensor([[0, 0, -1, 1], [-1, 0, 0, 0]])  # image 0: objects 0 and 1; image 1: object 0
    features = torch.arange(8, dtype=torch.float32).reshape(2, 4, 1) * torch.tensor([1.0, 10.0])
    # object (0, 0): patches 0 and 1 -> (0 + 1) / 2; (0, 1): patch 3; (1, 0): patches 5, 6, 7 -> 6
    assert pool_objects(features, item).tolist() == [[0.5, 5.0], [3.0, 30.0], [6.0, 60.0]]
    shape = torch.tensor([[4, 4, 0, 2], [0, 7, 7, 7]])
    assert per_object(shape, item).tolist() == [4, 2, 7]


def test_the_object_shape_head_trains_and_is_scored(tmp_path):
    summary = train_vision(load_stage_config(CONFIG, settings(tmp_path, "object_shape_weight=1", "samples=16")), False)
    assert 0 <= summary["heldout"]["object_shape"] <= 100
    curve = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert all(entry["object_shape"] > 0 for entry in curve if "total" in entry)
