"""Checkpoints: weights (safetensors), optimizer, scheduler, step and RNG states, written atomically.

A full run's checkpoint holds the whole model (a usable model folder); a LoRA run's holds the tokenizer and the
trained parameters only (adapters and projector), its frozen weights being those of the run's initial model.
A checkpoint is written to ``checkpoint-<step>.partial`` and renamed to ``checkpoint-<step>`` once complete, so a
run killed while saving leaves no folder that looks finished; resuming takes the highest complete step.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE_FILE = "trainer_state.pt"
TRAINABLE_FILE = "trainable.safetensors"
PREFIX = "checkpoint-"


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

    final = write_atomically(folder / f"{PREFIX}{step}", write)
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
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


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
