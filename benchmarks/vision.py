"""Stage 0's speed on this machine: drawing scenes with their dense targets, and tower training steps in float32
against bfloat16 autocast (the precision to train in differs between CPUs: measure it where you train).

    python benchmarks/vision.py [--image-size 192] [--patch-size 16] [--batch 64] [--steps 10]

1. The data: scenes of the world's training split drawn, rendered, JPEG round-tripped, resized and given their dense
   targets (``DenseScenes``), one process: scenes/s, the most one loader process feeds.
2. Training steps of ``configs/train/small-vision.yaml``'s tower and heads at the given resolution (forward,
   backward, AdamW; the batches drawn beforehand), float32 then bfloat16 autocast on the same batches: images/s and
   the ratio. One warm-up step each is left out.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from pathlib import Path

import torch

from allseeing.model.presets import get_preset
from allseeing.train.config import VisionConfig, load_config
from allseeing.train.vision import DenseHeads, DenseScenes, dense_loss, dense_outputs, new_tower

CONFIG = "configs/train/small-vision.yaml"


def cpu_name() -> str:
    """The CPU's model name (bfloat16's speed depends on it), where /proc/cpuinfo tells it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def train_speed(config: VisionConfig, batches: list[dict], bf16: bool) -> float:
    """Images/s of training steps on ``batches`` after one warm-up step (a fresh tower and optimizer)."""
    tower = new_tower(config).train()
    heads = DenseHeads(tower.config.hidden_size)
    parameters = [*tower.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    layer = get_preset(config.preset).vision_feature_layer
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step(batch: dict) -> None:
        with autocast:
            outputs = dense_outputs(tower, heads, batch, layer)
        dense_loss(outputs, batch)["total"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(batches[0])
    start = time.perf_counter()
    for batch in batches[1:]:
        step(batch)
    return sum(len(b["pixel_values"]) for b in batches[1:]) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=192)
    parser.add_argument("--patch-size", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_flush_denormal(True)  # as training does (train/memory.py)
    overrides = [f"image_size={args.image_size}", f"patch_size={args.patch_size}", f"batch={args.batch}"]
    config = load_config(CONFIG, overrides, VisionConfig)
    grid = args.image_size // args.patch_size
    scenes = DenseScenes(config.scene_seed, "train", args.image_size, grid)

    count = args.batch * (args.steps + 1)
    start = time.perf_counter()
    samples = [scenes[index] for index in range(count)]
    drawing = count / (time.perf_counter() - start)
    batches = [torch.utils.data.default_collate(samples[k : k + args.batch]) for k in range(0, count, args.batch)]
    fp32 = train_speed(config, batches, bf16=False)
    bf16 = train_speed(config, batches, bf16=True)
    report = {
        "machine": f"{os.cpu_count()} cores, {cpu_name()}, torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "resolution": f"{args.image_size} px, patch {args.patch_size} ({grid} x {grid}), batch {args.batch}",
        "scenes_with_dense_targets_per_s": round(drawing, 1),
        "training_images_per_s": {"fp32": round(fp32, 1), "bf16_autocast": round(bf16, 1)},
        "bf16_over_fp32": round(bf16 / fp32, 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
