"""Training runs: a resumed run follows the uninterrupted loss curve; two processes match one process."""

import json
import shutil

import pytest
import torch

from allseeing.cli import main
from allseeing.model.build import load
from allseeing.train import checkpoint
from allseeing.train.config import load_config
from allseeing.train.memory import flushed_denormals
from allseeing.train.recipe import train
from tests.conftest import allseeing_on_two_processes
from tests.train.conftest import overrides

CONFIG = "configs/train/small-synth.yaml"


def losses(out):
    return [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def uninterrupted(train_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    summary = train(load_config(CONFIG, overrides(train_data, out, "max_steps=6")), progress=False)
    return out, summary


def test_a_run_logs_and_saves(uninterrupted):
    out, summary = uninterrupted
    assert summary["prepared"] > 0 and summary["steps"] == 6
    assert len(losses(out)) == 6 and losses(out)[-1] < losses(out)[0]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-6"]
    assert (out / "final" / "model.safetensors").is_file() and (out / "final" / "allseeing.json").is_file()
    entry = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert set(entry) == {"step", "loss", "lr", "tokens_per_s", "trained_tokens_per_s", "samples_per_s"}
    assert json.loads((out / "config.json").read_text())["global_batch"] == 8


def subnormals_survive() -> bool:
    return (torch.tensor([1e-39]) * 0.5).item() > 0  # 5e-40 is subnormal in float32


@pytest.mark.skipif(not torch.set_flush_denormal(False), reason="this CPU cannot flush denormals")
def test_a_run_flushes_denormals_only_while_it_trains(uninterrupted):
    # Left on after train() (the fixture's run), it changed the numerics of every later test in the suite.
    assert subnormals_survive()
    with flushed_denormals():
        assert not subnormals_survive()
    assert subnormals_survive()
    with pytest.raises(RuntimeError), flushed_denormals():  # a run that fails restores it too
        raise RuntimeError
    assert subnormals_survive()
    torch.set_flush_denormal(True)  # a caller's own setting is kept
    with flushed_denormals():
        pass
    assert not subnormals_survive()
    torch.set_flush_denormal(False)


@pytest.mark.slow
def test_a_killed_run_resumes_on_the_same_loss_curve(train_data, uninterrupted, tmp_path):
    full, _ = uninterrupted
    out = tmp_path / "killed"
    train(load_config(CONFIG, overrides(train_data, out, "max_steps=4")), progress=False)
    shutil.rmtree(out / "checkpoint-4")  # killed after step 4, before its checkpoint existed
    (out / "checkpoint-6.partial").mkdir()  # and killed again while writing a later one
    (out / "checkpoint-6.partial" / "model.safetensors").write_bytes(b"half")
    summary = train(load_config(CONFIG, overrides(train_data, out, "max_steps=6", "resume=true")), progress=False)
    assert summary["start"] == 3  # the last complete checkpoint (4 is not a multiple of save_every=3)
    # The log reads as one run: step 4 of the killed run is gone, steps 4-6 are those of the resumed one.
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4, 5, 6]
    resumed = losses(out)
    assert resumed[:3] == losses(full)[:3]
    assert resumed[3:] == pytest.approx(losses(full)[3:], rel=1e-6)  # steps 4-6 again, as uninterrupted


@pytest.mark.slow
def test_a_damaged_checkpoint_is_passed_over_with_one_warning(train_data, uninterrupted, tmp_path, capfd):
    full, _ = uninterrupted
    out = tmp_path / "damaged"
    shutil.copytree(full, out, ignore=shutil.ignore_patterns("final"))
    weights = out / "checkpoint-6" / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])  # a copy cut short
    capfd.readouterr()
    assert main(["train", CONFIG, *overrides(train_data, out, "max_steps=6", "resume=true")]) == 0
    captured = capfd.readouterr()
    summary = json.loads(captured.out)
    assert summary["start"] == 3 and summary["last_step"] == 6
    assert [line for line in captured.err.splitlines() if "warning" in line] == [
        f"warning: {out / 'checkpoint-6'} is damaged (model.safetensors has {size // 2} bytes of {size}): "
        "resuming from checkpoint-3"
    ]
    assert losses(out) == pytest.approx(losses(full), rel=1e-6)
    assert checkpoint.damage(out / "checkpoint-6") is None  # written whole again
    for folder in checkpoint.completed(out):
        state = folder / checkpoint.STATE_FILE
        state.write_bytes(state.read_bytes()[:100])
    assert main(["train", CONFIG, *overrides(train_data, out, "max_steps=6", "resume=true")]) == 1
    captured = capfd.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith("allseeing train: error: no intact checkpoint to resume from: ")


@pytest.mark.slow
def test_two_processes_under_torchrun_match_one(train_data, uninterrupted, tmp_path):
    full, _ = uninterrupted
    out = tmp_path / "ddp"
    allseeing_on_two_processes("train", CONFIG, *overrides(train_data, out, "max_steps=6"))
    assert losses(out) == pytest.approx(losses(full), rel=1e-4)


@pytest.mark.slow
def test_fsdp2_on_two_processes_matches_one_process_and_resumes(train_data, uninterrupted, tmp_path):
    full, _ = uninterrupted
    out = tmp_path / "fsdp"
    allseeing_on_two_processes("train", CONFIG, *overrides(train_data, out, "max_steps=3", "engine=fsdp"))
    allseeing_on_two_processes(
        "train", CONFIG, *overrides(train_data, out, "max_steps=6", "engine=fsdp", "resume=true")
    )
    assert losses(out) == pytest.approx(losses(full), rel=1e-4)
    # The checkpoints and the final folder hold whole (gathered) weights: a plain model, equal to one process's.
    sharded, _ = load(out / "final")
    single, _ = load(full / "final")
    for (name, a), (_, b) in zip(sharded.named_parameters(), single.named_parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-5), name


def test_the_cli_prints_one_json_document(train_data, tmp_path, capfd):
    assert main(["train", CONFIG, *overrides(train_data, tmp_path / "run", "max_steps=1")]) == 0
    captured = capfd.readouterr()
    summary = json.loads(captured.out)  # the whole of stdout (file descriptor 1, native writes included)
    assert summary["last_step"] == 1 and summary["prepared"] > 0
    assert f'"prepared": {summary["prepared"]}' in captured.err  # the data counts are a note on stderr


def test_the_cli_reports_bad_data(train_data, tmp_path, capsys):
    code = main(
        [
            "train",
            CONFIG,
            *overrides(train_data, tmp_path / "run", "max_steps=1", "max_length=60", "max_bad_fraction=0.0"),
        ]
    )
    assert code == 1
    assert "records are unusable ({'too_long':" in capsys.readouterr().err


@pytest.mark.slow
def test_a_time_boxed_run_stops_in_time_with_the_schedule_annealed(train_data, tmp_path):
    out = tmp_path / "boxed"
    # 0.3 s of training; the epochs would take thousands of steps
    summary = train(load_config(CONFIG, overrides(train_data, out, "epochs=500", "max_minutes=0.005")), progress=False)
    assert 1 <= summary["last_step"] < summary["steps"] and summary["minutes"] >= 0.005
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == summary["last_step"] and log[-1]["lr"] == 0.0  # the cosine ran to its end with the time
    assert (out / f"checkpoint-{summary['last_step']}").is_dir() and (out / "final" / "model.safetensors").is_file()
    again = train(load_config(CONFIG, overrides(train_data, out, "epochs=500", "max_minutes=0.005", "resume=true")))
    assert again["last_step"] == summary["last_step"] and len((out / "log.jsonl").read_text().splitlines()) == len(log)


def test_the_schedule_follows_time_when_it_is_ahead_of_the_steps():
    from allseeing.train.schedule import Budget

    assert Budget(100, None, elapsed=1e9).schedule_step(7) == 7 and not Budget(100, None, elapsed=1e9).exhausted
    budget = Budget(100, max_minutes=2.0, elapsed=30.0)  # a quarter of the time
    assert budget.schedule_step(10) == 25.0 and budget.schedule_step(40) == 40 and not budget.exhausted
    budget.elapsed = 150.0
    assert budget.schedule_step(60) == 100 and budget.exhausted


def test_sample_weighting_averages_each_samples_mean_token_loss():
    from types import SimpleNamespace

    from allseeing.train.loss import summed_loss

    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]] * 4)).repeat(2, 1, 1)  # 2 samples x 4 positions x 3 ids

    def model(**_):
        return SimpleNamespace(logits=logits)

    # sample 0 trains 3 tokens (ids 0, 1, 1), sample 1 one token (id 0); labels shift by one position
    labels = torch.tensor([[-100, 0, 1, 1], [-100, -100, -100, 0]])
    log2, log4 = torch.log(torch.tensor(2.0)), torch.log(torch.tensor(4.0))
    total, count, _ = summed_loss(model, {"labels": labels.clone()}, "token")
    assert count == 4 and float(total) == pytest.approx(float(2 * log2 + 2 * log4))
    total, count, _ = summed_loss(model, {"labels": labels.clone()}, "sample")
    assert count == 2 and float(total) == pytest.approx(float((log2 + 2 * log4) / 3 + log2))
