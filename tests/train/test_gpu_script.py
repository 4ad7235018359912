"""scripts/train_bundled_on_gpu.sh end to end on the CPU, at toy size: render, train in a time box, pack."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from allseeing.model.build import load

pytestmark = pytest.mark.slow  # see pyproject.toml: the full run (.ci/run) includes it

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_bundled_on_gpu.sh"


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
    assert "final.tar" in packed and "records.tar" in packed and len(packed) <= 5, packed
    with tarfile.open(out / "records.tar") as records:
        records.extractall(tmp_path / "unpacked", filter="data")
    # the train verb's stdout: one JSON document, its summary
    summary = json.loads((tmp_path / "unpacked/records/summary.json").read_text())
    assert summary["bad_records"] == {}
    assert 1 <= summary["last_step"] < summary["steps"]  # stopped by the time box, not by the epochs
    log = (tmp_path / "unpacked/records/log.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["lr"] == 0.0
    with tarfile.open(out / "final.tar") as final:
        final.extractall(tmp_path / "unpacked", filter="data")
    model, _ = load(tmp_path / "unpacked/final")
    assert model.config.text_config.hidden_size == 64  # the tiny preset, stored in bfloat16
    assert (tmp_path / "unpacked/final/model.safetensors").stat().st_size < 1_000_000
