"""scripts/campaign.py: a two-stage tiny campaign is stopped, resumed, finished, scored and reported."""

import fcntl
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "campaign.py"
spec = importlib.util.spec_from_file_location("campaign", SCRIPT)
campaign = importlib.util.module_from_spec(spec)
sys.modules["campaign"] = campaign  # dataclasses look their module up
spec.loader.exec_module(campaign)

PLAN = """
overrides: [num_workers=0]  # every stage's
heldout:
  all: {questions: data/eval/grounding/grounding_eval.jsonl, image_root: data}
stages:
  - name: vision
    config: configs/train/small-vision.yaml
    minutes: 5
    overrides: [preset=tiny, image_size=none, patch_size=none, batch=8, samples=32, heldout_scenes=4, save_every=2,
                eval_every=2]
  - name: lone
    config: configs/train/small-lone.yaml
    minutes: 5
    overrides: [init=preset:tiny, global_batch=8, per_device_batch=8, max_steps=2, max_bad_fraction=0.5,
                'data=[{"path": "data/train/grounding.json", "image_root": "data"}]']
    prepare:
      - creates: data/stats.json
        run: [allseeing, synth, --out, data, --n, "12", --test, "4", --seed, "0", --workers, "1"]
"""


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


def status(plan, root, capsys):
    capsys.readouterr()
    assert campaign.main(["status", str(plan), "--root", str(root)]) == 0
    return {stage["name"]: stage for stage in json.loads(capsys.readouterr().out)["stages"]}


@pytest.mark.slow
def test_a_stopped_campaign_resumes_and_finishes(plan, tmp_path, capsys):
    root = tmp_path / "camp"
    assert campaign.main(["run", str(plan), "--root", str(root), "--minutes", "0.02"]) == 0  # stopped at once
    stopped = status(plan, root, capsys)
    assert stopped["vision"]["state"] in ("pending", "started") and stopped["lone"]["state"] == "pending"
    assert "time is up" in (root / "campaign.log").read_text()

    assert campaign.main(["run", str(plan), "--root", str(root), "--set", "seed=5"]) == 0  # this machine's override
    done = status(plan, root, capsys)
    assert done["vision"]["state"] == done["lone"]["state"] == "done"
    assert done["vision"]["step"] == 4 and done["vision"]["samples"] == 32 and "shape" in done["vision"]["heldout"]
    assert done["lone"]["step"] == 2 and done["lone"]["samples"] == 16
    assert set(done["lone"]["heldout"]["all"]) >= {"average", "coverage"}
    # the LLaVA stage took the vision stage's tower
    lone_config = json.loads((root / "lone" / "config.json").read_text())
    assert lone_config["vision_init"] == "vision/final" and lone_config["num_workers"] == 0  # the plan's override
    assert lone_config["seed"] == json.loads((root / "vision" / "config.json").read_text())["seed"] == 5
    assert "campaign complete" in (root / "campaign.log").read_text()

    # A LLaVA stage resumed from a checkpoint has that checkpoint scored first: the stage's curve.
    shutil.rmtree(root / "lone" / "final")
    (root / "lone" / "heldout.json").unlink()
    assert campaign.main(["run", str(plan), "--root", str(root)]) == 0
    resumed = status(plan, root, capsys)["lone"]
    assert resumed["state"] == "done" and set(resumed["heldout"]["all"]) >= {"average", "coverage"}
    assert resumed["heldout_curve"] == [{"checkpoint": "checkpoint-2", "all": resumed["heldout"]["all"]["average"]}]


# A third stage that reads data an earlier stage prepared: on a machine restored from the copy, that stage is done
GROUND = """
  - name: ground
    config: configs/train/small-ground.yaml
    minutes: 5
    overrides: [global_batch=8, per_device_batch=8, max_steps=4, save_every=2, max_bad_fraction=0.5,
                binding_terms=name@1:0->box, 'data=[{"path": "data/train/grounding.json", "image_root": "data"}]']
"""


def losses(folder):
    return {entry["step"]: entry["loss"] for entry in campaign.read_log(folder / "log.jsonl") if "loss" in entry}


@pytest.mark.slow
def test_a_campaign_continues_on_a_new_machine_from_its_repository_copy(tmp_path, capsys):
    copy = tmp_path / "repository" / "campaign"
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"repository_copy: {copy}\n" + PLAN + GROUND)  # absolute: no file of the repository is written
    first = tmp_path / "first-machine"
    assert campaign.main(["run", str(plan), "--root", str(first)]) == 0
    records = {"final", "config.json", "log.jsonl"}
    assert {p.name for p in (copy / "vision").iterdir()} == records
    assert {p.name for p in (copy / "ground").iterdir()} == records | {"heldout.json"}

    # A new machine: every finished stage comes from the copy, nothing trains again.
    second = tmp_path / "second-machine"
    assert campaign.main(["run", str(plan), "--root", str(second)]) == 0
    log = (second / "campaign.log").read_text()
    assert log.count("continuing from the repository's copy (final)") == 3 and "training" not in log
    restored = status(plan, second, capsys)
    assert {name: stage["repository_copy"] for name, stage in restored.items()} == dict.fromkeys(restored, "final")
    assert restored["ground"]["heldout"] == status(plan, first, capsys)["ground"]["heldout"]

    # A stage stopped mid-way: `keep` carries its newest checkpoint, optimizer state included, and not the scores of
    # final weights it no longer has. The next machine prepares the data an earlier, restored stage made, scores the
    # checkpoint, resumes it on the uninterrupted run's curve, scores the new final weights and keeps them.
    uninterrupted = losses(first / "ground")
    for gone in ("final", "checkpoint-4"):
        shutil.rmtree(first / "ground" / gone)
    (first / "ground" / "heldout.json").unlink()
    assert campaign.main(["keep", str(plan), "--root", str(first)]) == 0
    assert {p.name for p in (copy / "ground").iterdir()} == {"checkpoint-2", "config.json", "log.jsonl"}
    third = tmp_path / "third-machine"
    assert campaign.main(["run", str(plan), "--root", str(third)]) == 0
    assert losses(third / "ground") == pytest.approx(uninterrupted, rel=1e-5)
    resumed = status(plan, third, capsys)["ground"]
    assert resumed["state"] == "done" and resumed["heldout_curve"][0]["checkpoint"] == "checkpoint-2"
    assert "--model ground/final" in (third / "campaign.log").read_text()
    assert {p.name for p in (copy / "ground").iterdir()} == records | {"heldout.json", "heldout"}


def test_keep_needs_a_repository_copy_outside_the_campaign_folder(plan, tmp_path):
    root = tmp_path / "camp"
    root.mkdir()
    with pytest.raises(SystemExit, match="no repository_copy"):
        campaign.main(["keep", str(plan), "--root", str(root)])
    plan.write_text(f"repository_copy: {root / 'copy'}\n" + PLAN)
    with pytest.raises(SystemExit, match="lies inside the campaign folder"):
        campaign.main(["keep", str(plan), "--root", str(root)])


def test_a_plan_with_repeated_stage_names_is_refused(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text("stages:\n  - {name: a, config: x.yaml, minutes: 1}\n  - {name: a, config: y.yaml, minutes: 1}\n")
    with pytest.raises(SystemExit, match="unique"):
        campaign.Plan.load(path)


def test_one_campaign_runs_in_a_folder_at_a_time(plan, tmp_path):
    root = tmp_path / "camp"
    root.mkdir()
    with (root / "campaign.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(SystemExit, match="another run holds"):
            campaign.main(["run", str(plan), "--root", str(root)])
    assert not (root / "vision").exists()
