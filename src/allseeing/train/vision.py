"""Stage 0: the vision tower learns to see, from the synthetic world's exact per-patch truth.

``allseeing train configs/train/small-vision.yaml [key=value ...]`` trains the stock ``CLIPVisionModel`` of a
preset with one linear head per patch (discarded after) on :mod:`allseeing.data.synth.dense`'s targets: the shape,
colour and size class of the object a patch shows (or the background), its outline inside the patch, the
object's box and the offset of its centre. ASMv2 starts from a CLIP pretrained on 400M image-text pairs; nothing of
the kind can be downloaded here, and a tower trained only through the language model's loss never learned shapes
(model card), while the world knows the truth of every pixel. Scenes are drawn and rendered on the fly
(JPEG-compressed as ``allseeing synth`` writes them, so the tower sees what later stages read); scene ``k`` of the
world's training split is the run's ``k``-th sample, so a run never repeats a scene and a resumed run continues the
same curve.

The result, ``<output_dir>/final``, is a plain CLIP vision folder (``CLIPVisionModel.from_pretrained``): the
LLaVA stages take it with ``vision_init`` as upstream's take a pretrained CLIP. Every ``eval_every`` steps the
held-out metrics (per-patch accuracy by class and object size, box hits) go to ``log.jsonl``.
"""

from __future__ import annotations

import io
import json
import math
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional
from tqdm import tqdm
from transformers import CLIPVisionConfig, CLIPVisionModel

from allseeing.data.image import preprocess
from allseeing.data.synth.dense import (
    CELLS,
    COLOUR_CLASSES,
    SHAPE_CLASSES,
    SIZE_CLASSES,
    dense_targets,
    visible_items,
)
from allseeing.data.synth.generate import JPEG_QUALITY, SceneSpec, rare_triplets, sample_spec_scene
from allseeing.data.synth.scenes import MAX_OBJECTS
from allseeing.data.synth.world import SIZES, render
from allseeing.model.build import init_vision_positions
from allseeing.model.presets import get_preset
from allseeing.rec.boxes import iou
from allseeing.train import checkpoint
from allseeing.train.config import VisionConfig
from allseeing.train.memory import CpuMemory, flushed_denormals
from allseeing.train.schedule import Budget, lr_factor

HEADS_FILE = "dense_heads.safetensors"
HELDOUT_FILE = "heldout.json"
# The heads' outputs, in the order they are cut from one linear layer's output.
HEAD_SIZES = {
    "shape": len(SHAPE_CLASSES),
    "colour": len(COLOUR_CLASSES),
    "size": len(SIZE_CLASSES),
    "cells": CELLS * CELLS,
    "box": 4,
    "centre": 2,
}
BOX_WEIGHT, CENTRE_WEIGHT = 5.0, 0.5  # box L1 is in units of the image side (~0.05 once learned)


def tower_config(config: VisionConfig) -> CLIPVisionConfig:
    """The preset's vision configuration with the stage's resolution."""
    image_size, patch_size = config.resolution()
    return CLIPVisionConfig(**{**get_preset(config.preset).vision, "image_size": image_size, "patch_size": patch_size})


def new_tower(config: VisionConfig) -> CLIPVisionModel:
    """A randomly initialised tower, its positions started as the preset says (sine-cosine for ``small``)."""
    torch.manual_seed(config.seed)
    tower = CLIPVisionModel(tower_config(config))
    init_vision_positions(tower, get_preset(config.preset).vision_positions)
    return tower


class DenseHeads(nn.Module):
    """One linear map of each patch feature to every target's logits or values (:data:`HEAD_SIZES`), and with
    ``object_shape`` one of each object's mean patch feature to its shape (``object_shape`` in the outputs)."""

    def __init__(self, width: int, object_shape: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(width, sum(HEAD_SIZES.values()))
        self.object_shape = nn.Linear(width, len(SHAPE_CLASSES)) if object_shape else None

    def forward(self, features: torch.Tensor, item: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs = dict(zip(HEAD_SIZES, self.linear(features).split(list(HEAD_SIZES.values()), dim=-1), strict=True))
        if self.object_shape is not None:
            outputs["object_shape"] = self.object_shape(pool_objects(features, item))
        return outputs


def object_rows(item: torch.Tensor) -> tuple[torch.Tensor, int]:
    """For each object patch (``item >= 0``, flattened), the row of its object among the batch's objects (ordered by
    image, then item), and the number of objects."""
    image = torch.arange(item.shape[0], device=item.device)[:, None].expand_as(item)
    keys, rows = (image * (int(item.max()) + 1) + item)[item >= 0].unique(return_inverse=True)
    return rows, len(keys)


def pool_objects(features: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
    """``(objects, width)``: each object's mean feature over the patches it labels (:func:`object_rows`' order)."""
    rows, count = object_rows(item)
    sums = features.new_zeros(count, features.shape[-1]).index_add_(0, rows, features[item >= 0])
    return sums / torch.bincount(rows, minlength=count).unsqueeze(1).to(sums.dtype)


def per_object(values: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
    """One value per object of a per-patch target that every patch of an object shares (:func:`object_rows`' order)."""
    rows, count = object_rows(item)
    return values.new_zeros(count).scatter_(0, rows, values[item >= 0])


def patch_features(tower: CLIPVisionModel, pixels: torch.Tensor, layer: int) -> torch.Tensor:
    """``(batch, patches, width)``: the features of ``layer`` the LLaVA projector reads (CLS dropped)."""
    return tower(pixel_values=pixels, output_hidden_states=True).hidden_states[layer][:, 1:]


def dense_outputs(
    tower: CLIPVisionModel, heads: DenseHeads, batch: dict[str, torch.Tensor], layer: int
) -> dict[str, torch.Tensor]:
    """The heads' outputs on a batch of :class:`DenseScenes` (training, evaluation and ``benchmarks/vision.py``)."""
    return heads(patch_features(tower, batch["pixel_values"], layer), batch["item"])


def encoded_image(image: Image.Image) -> Image.Image:
    """``image`` after a JPEG round trip at the quality ``allseeing synth`` writes."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


class DenseScenes(torch.utils.data.Dataset):
    """Scene ``k`` of a split of the world as the tower's input and its dense targets."""

    def __init__(self, seed: int, split: str, image_size: int, grid: int, length: int | None = None) -> None:
        self.seed, self.split, self.image_size, self.grid = seed, split, image_size, grid
        self.rare = rare_triplets(seed)
        self.length = length

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("the world's training split has no length; index it with a sampler")
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        scene, _ = sample_spec_scene(SceneSpec(self.split, index, self.seed, self.rare))
        targets = dense_targets(scene, self.grid)
        sizes = np.asarray([list(SIZES).index(item.size) for item in scene.items], dtype=np.int64)
        return {
            "pixel_values": torch.from_numpy(preprocess(encoded_image(render(scene)), self.image_size)),
            "shape": torch.from_numpy(targets.shape),
            "colour": torch.from_numpy(targets.colour),
            "size": torch.from_numpy(targets.size),
            "cells": torch.from_numpy(targets.cells),
            "box": torch.from_numpy(targets.box),
            "centre": torch.from_numpy(targets.centre),
            "item": torch.from_numpy(targets.item),
            # per object (padded to the world's most objects): its size class and whether the grid sees it
            "item_size": torch.from_numpy(np.pad(sizes, (0, MAX_OBJECTS - len(sizes)), constant_values=-1)),
            "item_seen": torch.from_numpy(np.pad(visible_items(targets, len(sizes)), (0, MAX_OBJECTS - len(sizes)))),
        }


def dense_loss(
    outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], object_shape_weight: float = 0.0
) -> dict[str, torch.Tensor]:
    """Each target's loss and their weighted sum (``total``): cross-entropy for the classes (the mean over object
    patches and the mean over background patches, averaged), binary cross-entropy for the outline cells, L1 for the
    geometry on object patches, and with the object head the cross-entropy of each object's shape."""
    objects = batch["item"] >= 0
    # Object patches are about a tenth of all: averaged over every patch, the classes would learn the background
    # and hardly the objects (shape stayed at chance); object and background patches are averaged apart instead.
    weights = torch.where(objects, 1 / objects.sum().clamp(min=1), 1 / (~objects).sum().clamp(min=1))
    losses = {
        name: (functional.cross_entropy(outputs[name].transpose(1, 2).float(), batch[name], reduction="none") * weights)
        .sum()
        .div(2)
        for name in ("shape", "colour", "size")
    }
    losses["cells"] = functional.binary_cross_entropy_with_logits(outputs["cells"].float(), batch["cells"])
    for name in ("box", "centre"):
        difference = (outputs[name].float() - batch[name]).abs().sum(-1)
        losses[name] = (difference * objects).sum() / objects.sum().clamp(min=1)
    losses["total"] = (
        losses["shape"]
        + losses["colour"]
        + losses["size"]
        + losses["cells"]
        + BOX_WEIGHT * losses["box"]
        + CENTRE_WEIGHT * losses["centre"]
    )
    if "object_shape" in outputs and len(outputs["object_shape"]):
        targets = per_object(batch["shape"], batch["item"])
        losses["object_shape"] = functional.cross_entropy(outputs["object_shape"].float(), targets)
        losses["total"] = losses["total"] + object_shape_weight * losses["object_shape"]
    return losses


def box_ious(predicted: torch.Tensor, target: torch.Tensor) -> list[float]:
    """IoU (``rec.boxes.iou``, the definition every metric uses) of each predicted ``(N, 4)`` box with its target;
    a regressed box may come out with its corners swapped, so they are put in order first."""
    ordered = torch.cat([predicted[:, :2].minimum(predicted[:, 2:]), predicted[:, :2].maximum(predicted[:, 2:])], dim=1)
    return [iou(a, b) for a, b in zip(ordered.tolist(), target.tolist(), strict=True)]


@torch.no_grad()
def evaluate(tower: CLIPVisionModel, heads: DenseHeads, scenes: DenseScenes, layer: int, batch: int = 50) -> dict:
    """Held-out per-patch metrics (percentages): on object patches by the object's size class, accuracy of shape,
    colour and size and the share of predicted boxes with IoU >= 0.5; background patches called background; the
    outline cells; and the share of objects the grid sees at all (labels at least one patch)."""
    was_training = tower.training
    tower.eval()
    hits: dict[str, list[torch.Tensor]] = {}
    seen, sizes = [], []
    loader = torch.utils.data.DataLoader(scenes, batch_size=batch)
    for data in loader:
        outputs = dense_outputs(tower, heads, data, layer)
        objects = data["item"] >= 0
        for name in ("shape", "colour", "size"):
            hits.setdefault(name, []).append((outputs[name].argmax(-1) == data[name])[objects])
        overlaps = torch.tensor(box_ious(outputs["box"][objects], data["box"][objects]))
        hits.setdefault("box_iou50", []).append(overlaps >= 0.5)
        hits.setdefault("patch_size", []).append(data["size"][objects])  # the size class of the patch's object
        hits.setdefault("background", []).append((outputs["shape"].argmax(-1) == 0)[~objects])
        if "object_shape" in outputs:
            named = outputs["object_shape"].argmax(-1) == per_object(data["shape"], data["item"])
            hits.setdefault("object_shape", []).append(named)
        hits.setdefault("cells", []).append(((outputs["cells"] > 0) == (data["cells"] > 0.5)).flatten())
        real = data["item_size"] >= 0
        seen.append(data["item_seen"][real])
        sizes.append(data["item_size"][real])
    if was_training:
        tower.train()
    flat = {name: torch.cat(values) for name, values in hits.items()}
    percent = lambda values: round(100 * values.float().mean().item(), 2) if len(values) else None  # noqa: E731
    metrics: dict = {"background": percent(flat["background"]), "cells": percent(flat["cells"])}
    if "object_shape" in flat:
        metrics["object_shape"] = percent(flat["object_shape"])
    for name in ("shape", "colour", "size", "box_iou50"):
        metrics[name] = {"all": percent(flat[name])}
        for index, size in enumerate(SIZES, start=1):
            metrics[name][size] = percent(flat[name][flat["patch_size"] == index])
    seen_all, sizes_all = torch.cat(seen), torch.cat(sizes)
    metrics["objects_seen"] = {"all": percent(seen_all)}
    for index, size in enumerate(SIZES):
        metrics["objects_seen"][size] = percent(seen_all[sizes_all == index])
    return metrics


def _write_checkpoint(tower: CLIPVisionModel, heads: DenseHeads, folder: Path) -> None:
    tower.save_pretrained(folder, safe_serialization=True)
    save_file({k: v.contiguous() for k, v in heads.state_dict().items()}, folder / HEADS_FILE)


@flushed_denormals()
def train_vision(config: VisionConfig, progress: bool = True) -> dict:
    """Run (or resume) stage 0; returns a summary with the last held-out metrics."""
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n", encoding="utf-8")
    resumed = checkpoint.starting_point(output, config.resume)
    tower = CLIPVisionModel.from_pretrained(resumed) if resumed else new_tower(config)
    heads = DenseHeads(tower.config.hidden_size, object_shape=config.object_shape_weight > 0)
    if resumed:
        heads.load_state_dict(load_file(resumed / HEADS_FILE))
    if config.frozen_patch_embedding:
        tower.embeddings.patch_embedding.requires_grad_(False)
    tower.train()
    layer = get_preset(config.preset).vision_feature_layer
    grid = tower.config.image_size // tower.config.patch_size

    trainable = [p for p in [*tower.parameters(), *heads.parameters()] if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    steps = math.ceil(config.samples / config.batch)
    state = checkpoint.load_state(resumed) if resumed else None
    start = state["step"] if state else 0
    budget = Budget(steps, config.max_minutes, state.get("elapsed_s", 0.0) if state else 0.0)
    end = start if budget.exhausted else min(steps, config.max_steps or steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(budget.schedule_step(step), steps, config.warmup_ratio, "cosine")
    )
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        checkpoint.set_rng_state(state["rng"])

    train_scenes = DenseScenes(config.scene_seed, "train", tower.config.image_size, grid)
    heldout = DenseScenes(config.heldout_seed, "test", tower.config.image_size, grid, config.heldout_scenes)
    loader = torch.utils.data.DataLoader(
        train_scenes,
        batch_size=config.batch,
        sampler=range(start * config.batch, end * config.batch),
        num_workers=config.num_workers,
    )
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if config.bf16 else nullcontext()
    log = (output / "log.jsonl").open("a", encoding="utf-8")
    bar = tqdm(total=end - start, desc="vision", unit="step", disable=not progress)
    memory = CpuMemory()
    metrics, losses, step = None, {}, start
    clock = time.perf_counter() - budget.elapsed
    began = time.perf_counter()
    for step, batch in enumerate(loader, start=start):
        budget.elapsed = time.perf_counter() - clock
        with autocast:
            outputs = dense_outputs(tower, heads, batch, layer)
        losses = dense_loss(outputs, batch, config.object_shape_weight)
        losses["total"].backward()
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        memory.after_step(step + 1)
        finished = step + 1 == end or budget.exhausted
        if step % config.log_every == 0 or finished:
            seconds, began = time.perf_counter() - began, time.perf_counter()
            entry = {"step": step + 1, "samples": (step + 1) * config.batch, "lr": scheduler.get_last_lr()[0]}
            entry.update({name: round(value.item(), 5) for name, value in losses.items()})
            entry["samples_per_s"] = round(config.batch * min(config.log_every, step + 1 - start) / seconds, 2)
            log.write(json.dumps(entry) + "\n")
            log.flush()
        bar.set_postfix(loss=f"{losses['total'].item():.4f}")
        bar.update()
        if (step + 1) % config.eval_every == 0 or finished:
            metrics = evaluate(tower, heads, heldout, layer) if config.heldout_scenes else None
            log.write(json.dumps({"step": step + 1, "samples": (step + 1) * config.batch, "heldout": metrics}) + "\n")
            log.flush()
        if (step + 1) % config.save_every == 0 or finished:
            checkpoint.save(
                output,
                step + 1,
                write_weights=partial(_write_checkpoint, tower, heads),
                optimizer_state=optimizer.state_dict(),
                scheduler=scheduler,
                extra={"elapsed_s": budget.elapsed, "heldout": metrics},
                keep=config.keep_checkpoints,
            )
        if finished:
            step += 1
            break
    bar.close()
    log.close()
    # A run stopped between its last checkpoint and final/ resumes with nothing left to train: it writes final/ then.
    if step > start or (resumed and not (output / "final").is_dir()):
        if step == start:
            metrics = state.get("heldout")

        def write_final(folder: Path) -> None:
            _write_checkpoint(tower, heads, folder)
            (folder / HELDOUT_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")

        checkpoint.write_atomically(output / "final", write_final)
    return {
        "stage": "vision",
        "steps": steps,
        "start": start,
        "last_step": step,
        "samples": step * config.batch,
        "minutes": round(budget.elapsed / 60, 2),
        "final_loss": round(losses["total"].item(), 5) if losses else None,
        "heldout": metrics,
        "output": str(output),
    }
