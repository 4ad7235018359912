"""Run, resume and watch a staged training campaign (the bundled model's recipe) in a folder outside the repository.

    python scripts/campaign.py run configs/campaign/small.yaml --root /work/camp [--minutes 170] [--set bf16=true]
    python scripts/campaign.py status configs/campaign/small.yaml --root /work/camp
    python scripts/campaign.py keep configs/campaign/small.yaml --root /work/camp

A plan (YAML) lists stages in order, each an ``allseeing train`` preset with a time budget (its ``max_minutes``: the
learning-rate schedule anneals over it, resumes included), overrides of its keys (the plan's ``overrides`` go to
every stage) and the data it needs first (commands, each with the file that marks it done). ``run`` works through
the stages from the first without a ``final/`` folder: it prepares that stage's data, then trains it with
``resume=true`` in ``ROOT/<stage>`` (the working directory is ROOT, so the presets' relative paths point into it),
and scores every finished LLaVA stage on the held-out grounding questions of the plan, and a resumed LLaVA stage's
newest checkpoint before it resumes (a stage that spans sessions gets a curve). ``--set KEY=VALUE`` overrides a
key of every stage for this invocation, after the plan's and the stage's own (a machine's choice: the precision it
trains fastest in, its loader processes). ``--minutes`` bounds this invocation: at the limit the running stage is
stopped (its checkpoints are atomic; the next ``run`` resumes from the newest), so the campaign can run in the
background across sessions and restarts. ``status`` prints one JSON object: each stage's state, step, samples,
training minutes against its budget, its latest held-out metrics and the scored checkpoints' curve.

A plan's ``repository_copy`` (a folder of the repository) carries the campaign across machines: ``run`` makes it
mirror, when a stage finishes and when it stops, each finished stage's ``final/`` and the running stage's newest
intact checkpoint (optimizer and RNG states included, so the curve continues exactly) with their records and
held-out scores; ``keep`` does so on demand while a run goes on. On a machine whose ROOT lacks a stage's weights,
``run`` starts that stage from the copy (and prepares the data of every stage up to the one it works on), so a
campaign whose copy was committed continues from the repository on a new machine.
"""

from __future__ import annotations

import argparse
import fcntl
import filecmp
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ALLSEEING = [sys.executable, "-m", "allseeing"]  # this interpreter's package, whatever is on PATH
HELDOUT_FILE = "heldout.json"  # a stage's held-out scores, beside its final/ folder
CHECKPOINT_SCORES = "heldout"  # a stage's subfolder of its checkpoints' held-out scores (checkpoint-<step>.json)
STAGE_RECORDS = ("config.json", "log.jsonl", HELDOUT_FILE)  # kept with a stage's weights


@dataclass
class Step:
    """A command preparing data (run in ROOT); ``creates`` is the file that exists once it has finished."""

    creates: str
    run: list[str]


@dataclass
class Stage:
    name: str
    config: str  # a training preset, relative to the repository
    minutes: float  # the stage's time budget (max_minutes)
    overrides: list[str] = field(default_factory=list)
    prepare: list[Step] = field(default_factory=list)


@dataclass
class Plan:
    stages: list[Stage]
    # held-out grounding questions (relative to ROOT, with their image folder) scored after each LLaVA stage
    heldout: dict[str, dict[str, str]] = field(default_factory=dict)
    # every stage's, before its own (a machine's batch size): keys that every stage's preset accepts
    overrides: list[str] = field(default_factory=list)
    # a folder of the repository (relative to it) that carries the campaign's weights across machines
    repository_copy: str | None = None

    @classmethod
    def load(cls, path: Path) -> Plan:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        try:
            stages = [
                Stage(**{**entry, "prepare": [Step(**step) for step in entry.get("prepare", [])]})
                for entry in raw["stages"]
            ]
            plan = cls(stages, raw.get("heldout", {}), raw.get("overrides") or [], raw.get("repository_copy"))
        except (KeyError, TypeError) as error:
            raise SystemExit(f"{path}: not a campaign plan: {error}") from None
        if not all(isinstance(item, str) for item in [*plan.overrides, *(o for s in stages for o in s.overrides)]):
            raise SystemExit(f"{path}: overrides are lists of key=value strings")
        names = [stage.name for stage in stages]
        if len(set(names)) != len(names):
            raise SystemExit(f"{path}: stage names must be unique, got {names}")
        return plan


def expand(command: list[str]) -> list[str]:
    """A plan's command with ``{repo}`` the repository; ``allseeing`` and ``python`` run with this interpreter."""
    words = [word.replace("{repo}", str(REPO)) for word in command]
    if words[0] == "allseeing":
        return [*ALLSEEING, *words[1:]]
    return [sys.executable, *words[1:]] if words[0] == "python" else words


def is_vision(stage: Stage) -> bool:
    return (yaml.safe_load((REPO / stage.config).read_text(encoding="utf-8")) or {}).get("stage") == "vision"


def log(root: Path, message: str) -> None:
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
    print(line, file=sys.stderr, flush=True)
    with (root / "campaign.log").open("a", encoding="utf-8") as file:
        file.write(line + "\n")


def run_until(command: list[str], root: Path, deadline: float, output: Path | None = None) -> bool:
    """Run ``command`` in ``root`` until it ends (True if it succeeded) or the deadline passes (stopped: False)."""
    log(root, "$ " + shlex.join(command))
    with (output or Path("/dev/null")).open("w", encoding="utf-8") as stdout:
        process = subprocess.Popen(command, cwd=root, stdout=stdout, start_new_session=True)
        try:
            code = process.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            log(root, "time is up: stopping (the next run resumes from the newest checkpoint)")
            stop(process)
            return False
        except BaseException:  # the campaign itself is stopped: its command must not run on unwatched
            stop(process)
            raise
    if code:
        raise SystemExit(f"campaign: {shlex.join(command)} failed with exit status {code} (see {root}/campaign.log)")
    return True


def stop(process: subprocess.Popen) -> None:
    """End a command and its children (the trainer's data-loader workers): SIGTERM, then SIGKILL after a minute."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def score_heldout(plan: Plan, model: str, into: Path, root: Path, deadline: float) -> None:
    """Grounding Acc@0.5 of ``model`` (a folder relative to ROOT) on each held-out question file, into ``into``
    (written only once every file is scored, so a stopped scoring is redone)."""
    scores = {}
    for name, spec in plan.heldout.items():
        predictions = into.with_name(f"{into.stem}-{name}.jsonl")
        predict = [*ALLSEEING, "predict", "grounding", "--model", model]
        predict += ["--questions", spec["questions"], "--image-root", spec["image_root"], "--out", str(predictions)]
        if not run_until(predict, root, deadline):
            return
        score = [*ALLSEEING, "eval", "score", "grounding", "--questions", spec["questions"]]
        score += ["--predictions", str(predictions)]
        result = into.with_name(f"{into.stem}-{name}.score.json")
        if not run_until(score, root, deadline, result):
            return
        scores[name] = json.loads(result.read_text(encoding="utf-8"))
    into.write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")


def score_newest_checkpoint(plan: Plan, stage: Stage, root: Path, deadline: float) -> None:
    """Before a LLaVA stage resumes, its newest checkpoint's held-out scores (once each): a long stage, resumed
    session after session, gets a learning curve (``status`` lists it)."""
    from allseeing.train.checkpoint import completed  # torch only when a stage has checkpoints

    folder = root / stage.name
    saved = completed(folder) if folder.is_dir() else []
    if not (plan.heldout and saved):
        return
    newest = saved[-1].name
    into = folder / CHECKPOINT_SCORES / f"{newest}.json"
    if not into.is_file():
        log(root, f"stage {stage.name}: scoring {newest} on the held-out questions")
        into.parent.mkdir(exist_ok=True)
        score_heldout(plan, f"{stage.name}/{newest}", into, root, deadline)


def stage_weights(folder: Path) -> Path | None:
    """A stage's weights to carry: its ``final/`` once done, else its newest intact checkpoint (None if neither, or
    if every checkpoint is damaged: a warning then)."""
    from allseeing.train.checkpoint import CheckpointError, resume_point  # torch only when a stage has weights

    if (folder / "final").is_dir():
        return folder / "final"
    try:
        return resume_point(folder)[0] if folder.is_dir() else None
    except CheckpointError as error:
        print(f"campaign: warning: {error}", file=sys.stderr, flush=True)
        return None


def same_files(folder: Path, other: Path) -> bool:
    """Whether ``other`` holds exactly the files of ``folder``, byte for byte."""

    def files(root: Path) -> list[Path]:
        return sorted(path.relative_to(root) for path in root.rglob("*") if path.is_file())

    names = files(folder)
    return (
        other.is_dir()
        and names == files(other)
        and all(filecmp.cmp(folder / name, other / name, shallow=False) for name in names)
    )


def repository_copy(plan: Plan, root: Path) -> Path:
    """The plan's copy folder in the repository; refused when the plan has none or it lies inside ROOT (keeping
    would prune ROOT's own checkpoints)."""
    if not plan.repository_copy:
        raise SystemExit("campaign: the plan has no repository_copy to keep the campaign in")
    copy = (REPO / plan.repository_copy).resolve()
    if copy.is_relative_to(root.resolve()):
        raise SystemExit(f"campaign: the repository copy {copy} lies inside the campaign folder {root}")
    return copy


def keep(plan: Plan, root: Path) -> None:
    """Make the plan's repository copy mirror where the campaign stands: per stage, its records and checkpoints'
    scores, then its weights (see :func:`stage_weights`; older ones there are replaced). One keep at a time (a
    ``keep`` beside a ``run``); a checkpoint the trainer removes while it is copied is left to the next keep."""
    copy = repository_copy(plan, root)
    with (root / "keep.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stage in plan.stages:
            weights = stage_weights(root / stage.name)
            if weights is not None:
                try:
                    keep_stage(root / stage.name, weights, copy / stage.name)
                except (FileNotFoundError, shutil.Error) as error:
                    log(root, f"stage {stage.name}: not kept this time ({error})")


def keep_stage(folder: Path, weights: Path, copy: Path) -> None:
    """Mirror one stage's records and scores into ``copy`` (first, so its log is never behind its weights), then
    its weights, written atomically."""
    from allseeing.train.checkpoint import write_atomically

    copy.mkdir(parents=True, exist_ok=True)
    for name in STAGE_RECORDS:
        if (folder / name).is_file():
            shutil.copy2(folder / name, copy / name)
        else:  # a stage redone: its old scores must not come back as the new weights'
            (copy / name).unlink(missing_ok=True)
    scores = checkpoint_scores(folder).values()
    shutil.rmtree(copy / CHECKPOINT_SCORES, ignore_errors=True)
    for path in scores:
        (copy / CHECKPOINT_SCORES).mkdir(exist_ok=True)
        shutil.copy2(path, copy / CHECKPOINT_SCORES / path.name)
    if not same_files(weights, copy / weights.name):  # a final/ made again (a stage redone) is copied again
        write_atomically(copy / weights.name, lambda partial: shutil.copytree(weights, partial))
        log(folder.parent, f"stage {folder.name}: {weights.name} kept in {copy}")
    for old in copy.iterdir():
        if old.is_dir() and old.name not in (weights.name, CHECKPOINT_SCORES):
            shutil.rmtree(old)


def restore(plan: Plan, root: Path) -> None:
    """Start every stage that has no weights in ROOT from the repository copy's (a campaign on a new machine):
    the stage's folder is replaced by the copy's whole, or not at all."""
    from allseeing.train.checkpoint import write_atomically

    if not plan.repository_copy:
        return
    copy = repository_copy(plan, root)
    for stage in plan.stages:
        source = copy / stage.name
        if stage_weights(root / stage.name) is None and (kept := stage_weights(source)) is not None:
            write_atomically(root / stage.name, lambda partial, source=source: shutil.copytree(source, partial))
            log(root, f"stage {stage.name}: continuing from the repository's copy ({kept.name})")


def prepare(plan: Plan, upto: int, root: Path, deadline: float) -> bool:
    """The data of the stages up to index ``upto`` (a stage may read what an earlier one prepared, and that one may
    have come done from the repository copy); False if the deadline stopped it."""
    for stage in plan.stages[: upto + 1]:
        for step in stage.prepare:
            if not (root / step.creates).exists() and not run_until(expand(step.run), root, deadline):
                return False
    return True


def run(plan: Plan, root: Path, minutes: float | None, machine: list[str]) -> int:
    """Work through the plan's stages (module docstring); ``machine``: this invocation's overrides of every stage."""
    deadline = time.monotonic() + (minutes * 60 if minutes else float("inf"))
    for index, stage in enumerate(plan.stages):
        folder = root / stage.name
        scored = not plan.heldout or is_vision(stage) or (folder / HELDOUT_FILE).is_file()
        if (folder / "final").is_dir() and scored:
            continue
        if not prepare(plan, index, root, deadline):
            return 0
        if not (folder / "final").is_dir():
            if not is_vision(stage):
                score_newest_checkpoint(plan, stage, root, deadline)
            command = [*ALLSEEING, "train", str(REPO / stage.config), f"output_dir={stage.name}", "resume=true"]
            command += [f"max_minutes={stage.minutes}", *plan.overrides, *stage.overrides, *machine]
            log(root, f"stage {stage.name}: training")
            if not run_until(command, root, deadline, root / f"{stage.name}.summary.json"):
                return 0
            if not (folder / "final").is_dir():
                raise SystemExit(f"campaign: stage {stage.name} ended without {folder / 'final'}")
        if not scored:
            score_heldout(plan, f"{stage.name}/final", folder / HELDOUT_FILE, root, deadline)
        if plan.repository_copy:
            keep(plan, root)
        if time.monotonic() >= deadline:
            return 0
    log(root, "campaign complete")
    return 0


def read_log(path: Path) -> list[dict]:
    """A run's ``log.jsonl`` entries; a last line cut short by a kill is left out."""
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with suppress(ValueError):
            entries.append(json.loads(line))
    return entries


def checkpoint_scores(folder: Path) -> dict[int, Path]:
    """A stage's scored checkpoints: step -> the file of its held-out scores (not its predictions' files)."""
    scored = {}
    for path in (folder / CHECKPOINT_SCORES).glob("checkpoint-*.json"):
        if match := re.fullmatch(r"checkpoint-(\d+)", path.stem):
            scored[int(match.group(1))] = path
    return scored


def stage_status(stage: Stage, root: Path) -> dict:
    """Where a stage stands, read from its folder: its log, config and held-out scores."""
    folder = root / stage.name
    entries = []
    if (folder / "log.jsonl").is_file():
        entries = read_log(folder / "log.jsonl")
    steps = [entry for entry in entries if "lr" in entry]
    state = "done" if (folder / "final").is_dir() else "started" if steps else "pending"
    status: dict = {"name": stage.name, "state": state, "budget_minutes": stage.minutes}
    if steps:
        status["step"] = steps[-1]["step"]
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        status["samples"] = steps[-1]["step"] * config.get("batch", config.get("global_batch", 0))
    from allseeing.train.checkpoint import completed, load_state  # torch only when there is a checkpoint to read

    saved = completed(folder) if folder.is_dir() else []
    if saved:
        status["checkpoint"] = saved[-1].name
        status["minutes"] = round(load_state(saved[-1]).get("elapsed_s", 0.0) / 60, 1)
    heldout = [entry["heldout"] for entry in entries if entry.get("heldout")]
    if heldout:
        status["heldout"] = heldout[-1]
    # Acc@0.5 (average) per held-out file at each scored checkpoint (beside them: their predictions and scores)
    if scored := checkpoint_scores(folder):
        status["heldout_curve"] = [
            {"checkpoint": scored[step].stem}
            | {name: score["average"] for name, score in json.loads(scored[step].read_text(encoding="utf-8")).items()}
            for step in sorted(scored)
        ]
    if (folder / HELDOUT_FILE).is_file():
        status["heldout"] = json.loads((folder / HELDOUT_FILE).read_text(encoding="utf-8"))
    return status


def keep_after_run(plan: Plan, root: Path) -> None:
    """:func:`keep` once a run has ended however it ended; a failure to keep is logged, never raised over the run's
    own outcome (its error, or the signal that stopped it)."""
    if not plan.repository_copy:
        return
    try:
        keep(plan, root)
    except (OSError, shutil.Error, SystemExit) as error:
        log(root, f"the repository copy could not be kept: {error}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("run", "status", "keep"))
    parser.add_argument("plan", type=Path, help="a campaign plan (configs/campaign/*.yaml)")
    parser.add_argument("--root", type=Path, required=True, help="the campaign's folder (data, checkpoints, logs)")
    parser.add_argument("--minutes", type=float, help="run: stop this invocation after this long (default: none)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run: override a key of every stage for this invocation (e.g. bf16=true where bf16 trains faster)",
    )
    args = parser.parse_args(argv)
    plan = Plan.load(args.plan)
    if args.action == "run":
        root = args.root.resolve()
        root.mkdir(parents=True, exist_ok=True)
        with (root / "campaign.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SystemExit(f"campaign: another run holds {root / 'campaign.lock'}") from None
            # SIGTERM and SIGHUP end the run as an exception does, so that its running command is stopped too.
            for number in (signal.SIGTERM, signal.SIGHUP):
                signal.signal(number, lambda received, frame: sys.exit(f"campaign: stopped by signal {received}"))
            restore(plan, root)
            try:
                return run(plan, root, args.minutes, args.set)
            finally:  # stopped, failed or done: the repository copy holds the newest weights
                keep_after_run(plan, root)
    if args.action == "keep":
        if not args.root.is_dir():
            raise SystemExit(f"campaign: no campaign folder {args.root}")
        keep(plan, args.root.resolve())
        return 0
    stages = [stage_status(stage, args.root) for stage in plan.stages]
    if plan.repository_copy:  # the weights each stage would continue from on a new machine
        for stage in stages:
            kept = stage_weights(repository_copy(plan, args.root) / stage["name"])
            stage["repository_copy"] = kept.name if kept else None
    print(json.dumps({"root": str(args.root), "stages": stages}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
