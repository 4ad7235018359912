"""Checkpoints: damaged files are found without reading the weights, resuming passes over damaged checkpoints, and a
resumed run's log keeps only the steps before its checkpoint."""

import json

import pytest
import torch
from safetensors.torch import save_file

from allseeing.train.checkpoint import (
    MANIFEST_FILE,
    STATE_FILE,
    CheckpointError,
    completed,
    damage,
    resume_point,
    save,
    starting_point,
    trim_log,
)


def saved(folder, step, keep=0):
    """A small checkpoint written as the trainers write theirs: safetensors weights, a JSON file, the state."""

    def write_weights(partial):
        partial.mkdir(parents=True)
        save_file({"w": torch.arange(64, dtype=torch.float32)}, partial / "model.safetensors")
        (partial / "tokenizer.json").write_text(json.dumps({"vocab": list(range(50))}))

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return save(
        folder,
        step,
        write_weights=write_weights,
        optimizer_state=optimizer.state_dict(),
        scheduler=scheduler,
        extra={},
        keep=keep,
    )


def cut(path, keep=None):
    """``path`` cut short: its last byte lost, or all but its first ``keep`` bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1 if keep is None else keep])
    return len(data)


def test_a_checkpoint_lists_every_file_with_its_size(tmp_path):
    folder = saved(tmp_path, 3)
    sizes = json.loads((folder / MANIFEST_FILE).read_text())["sizes"]
    assert sizes == {
        name: (folder / name).stat().st_size for name in ("model.safetensors", "tokenizer.json", STATE_FILE)
    }
    assert damage(folder) is None


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json", STATE_FILE])
def test_any_file_cut_short_or_missing_is_damage(tmp_path, name):
    folder = saved(tmp_path, 3)
    size = cut(folder / name)
    assert damage(folder) == f"{name} has {size - 1} bytes of {size}"
    (folder / name).unlink()
    assert damage(folder) == f"{name} is missing"


def test_checkpoints_saved_before_manifests_are_checked_by_their_weights_and_state(tmp_path):
    folder = saved(tmp_path, 3)
    (folder / MANIFEST_FILE).unlink()
    assert damage(folder) is None
    size = cut(folder / "model.safetensors")
    assert damage(folder) == f"model.safetensors has {size - 1} bytes of {size}"
    cut(folder / "model.safetensors", keep=20)
    assert damage(folder) == "model.safetensors is cut short in its header"
    folder = saved(tmp_path, 6)
    (folder / MANIFEST_FILE).unlink()
    cut(folder / STATE_FILE, keep=100)
    assert damage(folder) == f"{STATE_FILE} is cut short"


def test_resuming_passes_over_damaged_checkpoints_and_stops_when_none_is_whole(tmp_path):
    assert resume_point(tmp_path) == (None, None)  # nothing saved yet: a fresh start
    saved(tmp_path, 3)
    saved(tmp_path, 6)
    assert resume_point(tmp_path) == (tmp_path / "checkpoint-6", None)
    size = cut(tmp_path / "checkpoint-6" / "model.safetensors", keep=100)
    expected = f"{tmp_path / 'checkpoint-6'} is damaged (model.safetensors has 100 bytes of {size})"
    assert resume_point(tmp_path) == (tmp_path / "checkpoint-3", f"{expected}: resuming from checkpoint-3")
    cut(tmp_path / "checkpoint-3" / STATE_FILE)
    with pytest.raises(CheckpointError, match="^no intact checkpoint to resume from: .*checkpoint-6.*checkpoint-3"):
        resume_point(tmp_path)


def test_the_first_save_after_passing_over_a_damaged_checkpoint_replaces_it(tmp_path):
    saved(tmp_path, 3)
    saved(tmp_path, 6)
    cut(tmp_path / "checkpoint-6" / "model.safetensors")
    saved(tmp_path, 4, keep=2)  # resumed from 3, then stopped at 4 (a time box)
    assert [p.name for p in completed(tmp_path)] == ["checkpoint-3", "checkpoint-4"]


def test_a_save_leaves_later_intact_checkpoints_alone(tmp_path):
    saved(tmp_path, 6)
    saved(tmp_path, 2, keep=5)  # a fresh run started by mistake in a used folder
    assert [p.name for p in completed(tmp_path)] == ["checkpoint-2", "checkpoint-6"]


def test_a_resumed_log_keeps_the_steps_up_to_its_checkpoint(tmp_path):
    log = tmp_path / "log.jsonl"
    entries = [{"step": step, "loss": 1 / step} for step in range(1, 7)] + [{"step": 6, "heldout": {}}]
    log.write_text("".join(json.dumps(e) + "\n" for e in entries) + '{"step": 7, "lo')  # cut short by a kill
    trim_log(log, 6)
    assert [json.loads(line) for line in log.read_text().splitlines()] == entries
    trim_log(log, 4)
    assert log.read_text() == "".join(json.dumps(e) + "\n" for e in entries[:4])
    assert [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]  # replaced atomically, nothing left behind


def test_a_run_starts_from_the_newest_whole_checkpoint_with_one_warning(tmp_path, capsys):
    (tmp_path / "log.jsonl").write_text("".join(json.dumps({"step": step}) + "\n" for step in range(1, 8)))
    saved(tmp_path, 3)
    saved(tmp_path, 6)
    cut(tmp_path / "checkpoint-6" / "tokenizer.json")
    assert starting_point(tmp_path, resume=True) == tmp_path / "checkpoint-3"
    assert capsys.readouterr().err.startswith(f"warning: {tmp_path / 'checkpoint-6'} is damaged (tokenizer.json")
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 3
    assert starting_point(tmp_path, resume=True, main_process=False) == tmp_path / "checkpoint-3"
    assert capsys.readouterr().err == ""  # the other processes of a torchrun run say nothing
    assert starting_point(tmp_path, resume=False) is None
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 3  # a run that does not resume touches nothing
