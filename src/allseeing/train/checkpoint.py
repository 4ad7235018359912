"""Checkpoints: weights (safetensors), optimizer, scheduler, step and RNG states, written atomically.

A checkpoint is written to ``checkpoint-<step>.partial`` and renamed to ``checkpoint-<step>`` once complete, so a
run killed while saving leaves no folder that looks finished; resuming takes the highest complete step.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch

STATE_FILE = "trainer_state.pt"
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


def save(folder: Path, step: int, model, processor, optimizer, scheduler, extra: dict, keep: int) -> Path:
    """Write ``folder/checkpoint-<step>`` atomically and keep only the ``keep`` newest."""
    from allseeing.model.build import save as save_model

    final = folder / f"{PREFIX}{step}"
    partial = folder / f"{PREFIX}{step}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    save_model(model, processor, partial)
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        **extra,
    }
    torch.save(state, partial / STATE_FILE)
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
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


def load_state(checkpoint: Path) -> dict:
    return torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)
