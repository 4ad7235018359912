"""Training speed on this machine: data-loader samples/s and training tokens/s for the small preset.

    python benchmarks/train.py [--scenes 300] [--steps 20]

1. The data loader alone (read, decode, pad, tokenise, collate) on synthetic samples, with 0 worker processes
   against 2.
2. Training steps of the ``small`` preset (batch 32), fp32 against bf16 autocast, in tokens/s and samples/s.
3. Length grouping: upstream's sampler (each global batch sorted, ``length_group_batches=1``) against megabatches of
   16 global batches, bf16: the share of padded positions and training samples/s (one micro-batch per step, as on
   one GPU).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from allseeing.data.dataset import SampleDataset, collate, encoder_for, prepare
from allseeing.data.sampler import MicroBatches
from allseeing.data.synth.generate import generate
from allseeing.train.config import DataSource, load_config
from allseeing.train.loss import summed_loss
from allseeing.train.setup import initial_model, set_trainable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=300)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    report: dict = {"machine": f"{os.cpu_count()} cores, {platform.machine()}, torch {torch.__version__}"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "synth", args.scenes, 0, seed=0, workers=os.cpu_count() or 1, progress=False)
        tasks = ("grounding", "detailed_description", "predicate", "relation_mc", "scene_graph")
        data = [DataSource(str(root / f"synth/train/{t}.json"), str(root / "synth")) for t in tasks]
        config = load_config("configs/train/small-synth.yaml", [f"output_dir={root / 'run'}"])
        config.data = data
        model, processor = initial_model(config)
        encode = encoder_for(processor, config.max_length, "drop")
        prepared = prepare(data, encode, root / "cache", max_bad_fraction=0.05, progress=False)
        dataset = SampleDataset(prepared, encode, processor.pixel_values, 0.5, 0)

        def loader(workers: int, steps: int, group_batches: int = 1):
            batches = MicroBatches(
                prepared,
                seed=0,
                global_batch=32,
                per_device_batch=32,
                group_by_length=True,
                end_step=steps,
                group_batches=group_batches,
            )
            return torch.utils.data.DataLoader(
                dataset,
                batch_sampler=batches,
                num_workers=workers,
                collate_fn=lambda s: collate(s, processor.pad_id, processor.pixel_values),
            )

        loading = {}
        for workers in (0, 2):
            start = time.perf_counter()
            count = sum(len(b["input_ids"]) for b in loader(workers, args.steps))
            loading[f"{workers}_workers_samples_per_s"] = round(count / (time.perf_counter() - start), 1)
        report["data_loader"] = loading

        set_trainable(model, "all")
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        batches = [b for b in loader(0, args.steps)]

        def train_on(batches, autocast) -> dict:
            tokens, positions, start = 0, 0, time.perf_counter()
            for batch in batches:
                batch = dict(batch)
                with torch.autocast("cpu", dtype=autocast) if autocast else torch.autocast("cpu", enabled=False):
                    loss, count, _ = summed_loss(model, batch)
                    (loss / count).backward()
                optimizer.step()
                optimizer.zero_grad()
                tokens += int(batch["attention_mask"].sum())
                positions += batch["attention_mask"].numel()
            seconds = time.perf_counter() - start
            return {
                "tokens_per_s": round(tokens / seconds),
                "samples_per_s": round(32 * len(batches) / seconds, 1),
                "padded_share": round(1 - tokens / positions, 3),
            }

        report["training_small_batch_32"] = {
            name: train_on(batches, autocast) for name, autocast in (("fp32", None), ("bf16_autocast", torch.bfloat16))
        }
        grouping = {}
        for group_batches in (1, 16):
            grouping[f"length_group_batches_{group_batches}"] = train_on(
                list(loader(0, args.steps, group_batches)), torch.bfloat16
            )
        grouping["speedup"] = round(
            grouping["length_group_batches_16"]["samples_per_s"] / grouping["length_group_batches_1"]["samples_per_s"],
            2,
        )
        report["length_grouping_bf16"] = grouping
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
