"""The lent-GPU scripts end to end on the CPU, at toy size: train_bundled_on_gpu.sh (render, train in a time box,
pack) and campaign_on_gpu.sh (a two-stage plan from a carried model, packed however it ends)."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from allseeing.model.build import load, new_model, save

pytestmark = pytest.mark.slow  # see pyproject.toml: the full run (.ci/run) includes it

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "train_bundled_on_gpu.sh"
CAMPAIGN_SCRIPT = REPO / "scripts" / "campaign_on_gpu.sh"


def test_the_gpu_script_trains_in_its_time_box_and_packs_bf16_models(tmp_path):
    out = tmp_path / "out"
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # the test's python
        "OUT": str(out),
        "WORK": str(tmp_path / "work"),
        "SCENES": "40",
        "DEADLINE": "250",
        "MINUTES": "0.1",
        "WORKERS": "1",
        "SAVE_EVERY": "2",
        "TRAIN_OVERRIDES": "init=preset:tiny global_batch=8 per_device_batch=8 bf16=false",
    }
    result = subprocess.run(["bash", str(SCRIPT)], env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    packed = sorted(p.name for p in out.iterdir())
    assert "run-final.tar" in packed and "records.tar" in packed and len(packed) <= 5, packed
    with tarfile.open(out / "records.tar") as records:
        records.extractall(tmp_path / "unpacked", filter="data")
    # the train verb's stdout: one JSON document, its summary
    summary = json.loads((tmp_path / "unpacked/records/summary.json").read_text())
    assert summary["bad_records"] == {}
    assert 1 <= summary["last_step"] < summary["steps"]  # stopped by the time box, not by the epochs
    log = (tmp_path / "unpacked/records/log.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["lr"] == 0.0
    with tarfile.open(out / "run-final.tar") as final:
        final.extractall(tmp_path / "unpacked", filter="data")
    model, _ = load(tmp_path / "unpacked/run-final")
    assert model.config.text_config.hidden_size == 64  # the tiny preset, stored in bfloat16
    assert (tmp_path / "unpacked/run-final/model.safetensors").stat().st_size < 1_000_000


def test_the_campaign_script_runs_its_plan_from_the_start_model_and_packs_each_stage(tmp_path):
    start = tmp_path / "start"
    save(*new_model("tiny", ["<ref>a red star</ref><box>[[1, 2, 3, 4]]</box>"], seed=0), start)
    # the GPU plan at toy size: the stages' own configs, a tiny batch, the CPU's precision
    plan = (REPO / "configs/campaign/small-gpu.yaml").read_text()
    for full, toy in (
        ("global_batch=128, per_device_batch=128", "global_batch=4, per_device_batch=4"),
        ("bf16=true, num_workers=14, save_every=200", "bf16=false, num_workers=0, save_every=2"),
        ('"100000"', '"40", --workers, "1"'),
        ("minutes: 3.5", "minutes: 0.3"),
        ("minutes: 2.5", "minutes: 0.2"),
        # the stages' binding terms, on the tiny model's two heads a layer
        (
            "keep_checkpoints=100]",
            "keep_checkpoints=100, 'binding_terms=name@1:0->box, first@0:1->name, first@1:0->box']",
        ),
    ):
        assert full in plan, f"the GPU plan no longer holds {full!r}: scale this test's copy anew"
        plan = plan.replace(full, toy)
    (tmp_path / "plan.yaml").write_text(plan)
    out = tmp_path / "out"
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OUT": str(out),
        "WORK": str(tmp_path / "work"),
        "START": str(start),
        "MINUTES": "3",
        "PER_STAGE": "2",
    }
    command = ["bash", str(CAMPAIGN_SCRIPT), str(tmp_path / "plan.yaml")]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    packed = sorted(p.name for p in out.iterdir())
    assert "records.tar" in packed and "ground-final.tar" in packed and "mix-final.tar" in packed, packed
    assert len(packed) == 5, packed  # two per stage, the final one included
    with tarfile.open(out / "records.tar") as records:
        names = records.getnames()
    assert {"records/machine.txt", "records/campaign.log", "records/ground/log.jsonl", "records/mix/log.jsonl"} <= set(
        names
    )
    with tarfile.open(out / "mix-final.tar") as final:
        final.extractall(tmp_path / "unpacked", filter="data")
    model, _ = load(tmp_path / "unpacked/mix-final")
    assert model.config.text_config.hidden_size == 64  # the start's preset
    with safe_open(tmp_path / "unpacked/mix-final/model.safetensors", "pt") as weights:
        assert {weights.get_tensor(name).dtype for name in weights.keys()} == {torch.bfloat16}  # noqa: SIM118 (not a dict)

    # a start folder that is not a model: the run fails, and the script with it, its records packed all the same
    (tmp_path / "not-a-model").mkdir()
    failed = subprocess.run(
        command,
        env={
            **environment,
            "START": str(tmp_path / "not-a-model"),
            "OUT": str(tmp_path / "out2"),
            "WORK": str(tmp_path / "w2"),
        },
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert failed.returncode != 0
    assert (tmp_path / "out2/records.tar").exists()


def test_pack_bf16_never_tars_a_folder_left_by_an_earlier_call(tmp_path, tiny_model_dir):
    """A folder it cannot load fails the call, and the same name's bf16 copy from before is not packed for it."""
    stale = tmp_path / "bf16" / "runs-x"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    (tmp_path / "runs" / "x").mkdir(parents=True)  # not a model
    (tmp_path / "runs" / "good").symlink_to(tiny_model_dir)
    command = f"source {REPO / 'scripts' / 'gpu_lib.sh'} && pack_bf16 out runs/x runs/good"
    (tmp_path / "out").mkdir()
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert result.returncode == 1 and "pack: runs/x:" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["runs-good.tar"]
