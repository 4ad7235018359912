"""Checkpoints: weights (safetensors), optimizer, scheduler, step and RNG states, written atomically.

A full run's checkpoint holds the whole model (a usable model folder); a LoRA run's holds the tokenizer and the
trained parameters only (adapters and projector), its frozen weights being those of the run's initial model.
A checkpoint is written to ``checkpoint-<step>.partial`` and renamed to ``checkpoint-<step>`` once complete, so a
run killed while saving leaves no folder that looks finished. Its last file, ``manifest.json``, lists every file's
size: a finished folder can still lose the end of a file (a machine that crashed before the data reached the disk, a
copy cut short), and resuming takes the newest checkpoint whose files are whole, passing over damaged ones with a
warning.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE_FILE = "trainer_state.pt"
TRAINABLE_FILE = "trainable.safetensors"
MANIFEST_FILE = "manifest.json"
PREFIX = "checkpoint-"


class CheckpointError(ValueError):
    """A run to resume whose checkpoints are all damaged (a ValueError: the command line prints it as one line)."""


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_atomically(folder: Path, write: Callable[[Path], None]) -> Path:
    """Fill ``folder`` through ``write`` under ``<name>.partial`` and rename it once complete, so that a folder with
    the final name is always whole (a run killed while writing leaves only the ``.partial`` one)."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    write(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def save(
    folder: Path,
    step: int,
    *,
    write_weights: Callable[[Path], None],
    optimizer_state: dict,
    scheduler,
    extra: dict,
    keep: int,
) -> Path:
    """Write ``folder/checkpoint-<step>`` atomically (``write_weights`` fills it) and keep only the ``keep`` newest."""
    state = {
        "step": step,
        "optimizer": optimizer_state,
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        **extra,
    }

    def write(partial: Path) -> None:
        write_weights(partial)
        torch.save(state, partial / STATE_FILE)
        write_manifest(partial)

    final = write_atomically(folder / f"{PREFIX}{step}", write)
    # A later checkpoint that is damaged is one the resume leading here passed over: this run replaces it (kept, it
    # would count among the ``keep`` newest and could push out the intact ones). An intact one is left alone.
    for later in [p for p in completed(folder) if step_of(p) > step and damage(p) is not None]:
        shutil.rmtree(later)
    for old in completed(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old)
    return final


def completed(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    found = [
        p
        for p in folder.glob(f"{PREFIX}*")
        if p.is_dir() and p.name[len(PREFIX) :].isdigit() and (p / STATE_FILE).is_file()
    ]
    return sorted(found, key=step_of)


def step_of(checkpoint: Path) -> int:
    return int(checkpoint.name[len(PREFIX) :])


def write_manifest(folder: Path) -> None:
    """List the size of every file of ``folder`` (written last, so it lists them all) for :func:`damage`."""
    sizes = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    (folder / MANIFEST_FILE).write_text(json.dumps({"sizes": sizes}, indent=1) + "\n", encoding="utf-8")


def damage(checkpoint: Path) -> str | None:
    """What is missing or cut short in a complete checkpoint, or None when its files look whole.

    Cheap (no weights are read): the sizes in the manifest, each safetensors file's size against its header, and
    the trainer state's zip directory (at the end of the file, so lost with any of its end). Checkpoints saved
    before manifests existed get the last two checks.
    """
    if (checkpoint / MANIFEST_FILE).is_file() and (problem := _manifest_damage(checkpoint)):
        return problem
    for path in sorted(checkpoint.rglob("*.safetensors")):
        if problem := _safetensors_damage(path, path.relative_to(checkpoint)):
            return problem
    if not zipfile.is_zipfile(checkpoint / STATE_FILE):
        return f"{STATE_FILE} is cut short"
    return None


def _manifest_damage(checkpoint: Path) -> str | None:
    try:
        sizes = json.loads((checkpoint / MANIFEST_FILE).read_text(encoding="utf-8"))["sizes"]
    except (ValueError, KeyError, TypeError):
        return f"{MANIFEST_FILE} is unreadable"
    for name, size in sizes.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes of {size}"
    return None


def _safetensors_damage(path: Path, name: Path) -> str | None:
    """A safetensors file is an 8-byte header length, a JSON header giving each tensor's byte range, then the data:
    whole when its size is exactly where the last range ends."""
    size = path.stat().st_size
    with path.open("rb") as file:
        length = int.from_bytes(file.read(8), "little")
        if 8 + length > size:
            return f"{name} is cut short in its header"
        try:
            header = json.loads(file.read(length))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, AttributeError):
            return f"{name} has an unreadable header"
    expected = 8 + length + end
    return None if size == expected else f"{name} has {size} bytes of {expected}"


def resume_point(folder: Path) -> tuple[Path | None, str | None]:
    """The newest complete checkpoint whose files are whole (None when ``folder`` has none yet), and a one-line
    warning naming the newer ones passed over as damaged (None when there were none).

    Raises :class:`CheckpointError` when every checkpoint is damaged: starting again from scratch would silently
    throw the run away.
    """
    damaged = []
    for candidate in reversed(completed(folder)):
        problem = damage(candidate)
        if problem is None:
            warning = f"{'; '.join(damaged)}: resuming from {candidate.name}" if damaged else None
            return candidate, warning
        damaged.append(f"{candidate} is damaged ({problem})")
    if damaged:
        raise CheckpointError(f"no intact checkpoint to resume from: {'; '.join(damaged)}")
    return None, None


def trim_log(path: Path, step: int) -> None:
    """Keep the entries of ``path`` (JSON lines, each with its ``step``) up to ``step``, replacing it atomically.

    A run resumed from the checkpoint of ``step`` logs the steps after it again: the lines the stopped run wrote
    past it would repeat them (``1..6, 5, 6, 7``). A last line cut short by a kill goes too.
    """
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if _logged_step(line) <= step]
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    partial.replace(path)


def _logged_step(line: str) -> float:
    """A log line's step; infinity (never kept) for a line cut short."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")


def starting_point(output: Path, resume: bool, main_process: bool = True) -> Path | None:
    """The checkpoint a run continues from (:func:`resume_point`; None: from the start). When resuming, the main
    process warns on stderr of damaged checkpoints passed over and trims the run's ``log.jsonl`` to that step
    (:func:`trim_log`); a run that does not resume touches nothing of what the folder holds."""
    if not resume:
        return None
    resumed, warning = resume_point(output)
    if main_process:
        if warning:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        trim_log(output / "log.jsonl", step_of(resumed) if resumed else 0)
    return resumed


def save_trainable(model: torch.nn.Module, folder: Path) -> None:
    """Only the parameters being trained (LoRA adapters and the projector): the rest is the frozen initial model."""
    trainable = {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}
    save_file(trainable, folder / TRAINABLE_FILE)


def load_trainable(model: torch.nn.Module, folder: Path) -> None:
    """Put :func:`save_trainable`'s parameters back; the names must be exactly the model's trainable ones."""
    saved = load_file(folder / TRAINABLE_FILE)
    parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if set(saved) != set(parameters):
        missing, unexpected = sorted(set(parameters) - set(saved)), sorted(set(saved) - set(parameters))
        raise ValueError(
            f"{folder / TRAINABLE_FILE} does not fit the model: missing {missing}, unexpected {unexpected}"
        )
    with torch.no_grad():
        for name, parameter in parameters.items():
            parameter.copy_(saved[name])


def load_state(checkpoint: Path) -> dict:
    return torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)
