"""Which samples each step trains on: the epoch plan (mixture ratios, modality/length grouping) and each process's
micro-batches.

Epoch plan (upstream's modality- and length-grouped sampler, ``LengthGroupedSampler`` in
``llava/train/llava_trainer.py``, with true token lengths instead of word counts): every source contributes ``ratio x
size`` records (whole repeats plus a seeded sample), the records are shuffled with the epoch's seed, split by modality
(image / text only), cut into megabatches of one global batch, each sorted by length (longest first), and the megabatch
order shuffled; the two partial leftovers go last, merged. Without grouping, the shuffled list is used as it is.

With ``group_batches`` > 1 a megabatch spans that many global batches: it is sorted by length, cut into global
batches, and the global batches of all megabatches are shuffled. Upstream's sampler (1) sorts within a global
batch, which orders its micro-batches but leaves the lengths of one micro-batch as mixed as the data when the
micro-batch is the global batch (one GPU, or no accumulation): on the bundled model's mix 78% of the positions
of a step were padding. Sorting over many global batches makes each step's lengths alike (16: 12% padding;
transformers' own length-grouped sampler uses 50).

A step trains on one global batch: ``world x accumulation`` micro-batches of ``per_device_batch`` consecutive
records; process r takes micro-batches r, r + world, ... So one process with accumulation 2 sees exactly the
micro-batches that two processes see together, and the loss is the same.
"""

from __future__ import annotations

import math

import numpy as np

from allseeing.data.dataset import Prepared


def epoch_plan(
    prepared: Prepared, epoch: int, seed: int, global_batch: int, group_by_length: bool, group_batches: int = 1
) -> np.ndarray:
    """Record indices for one epoch, a whole number of global batches long."""
    rng = np.random.default_rng([seed, epoch])
    chosen = []
    for number, ratio in enumerate(prepared.ratios):
        members = np.flatnonzero(prepared.source == number)
        repeats, extra = _share(ratio, len(members))
        chosen.append(np.concatenate([*[members] * repeats, rng.choice(members, size=extra, replace=False)]))
    order = rng.permutation(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    if group_by_length:
        order = _grouped(order, prepared, global_batch, group_batches, rng)
    steps = len(order) // global_batch
    return order[: steps * global_batch]


def _grouped(
    order: np.ndarray, prepared: Prepared, size: int, group_batches: int, rng: np.random.Generator
) -> np.ndarray:
    batches, leftovers = [], []
    span = size * group_batches
    for modality in (True, False):
        members = order[prepared.has_image[order] == modality]
        for start in range(0, len(members), span):
            block = members[start : start + span]
            block = block[np.argsort(-prepared.length[block], kind="stable")]
            full = len(block) // size * size
            batches += [block[i : i + size] for i in range(0, full, size)]
            leftovers.append(block[full:])
    shuffled = [batches[i] for i in rng.permutation(len(batches))]
    return np.concatenate([*shuffled, np.sort(np.concatenate(leftovers))]) if shuffled or leftovers else order


def _share(ratio: float, size: int) -> tuple[int, int]:
    """A source's draw per epoch: whole repeats of it, plus this many more records sampled without replacement."""
    repeats = int(ratio)
    return repeats, int((ratio - repeats) * size)


def steps_per_epoch(prepared: Prepared, global_batch: int) -> int:
    samples = 0
    for number, ratio in enumerate(prepared.ratios):
        size = int(np.count_nonzero(prepared.source == number))
        repeats, extra = _share(ratio, size)
        samples += repeats * size + extra
    return samples // global_batch


def total_steps(prepared: Prepared, global_batch: int, epochs: float) -> int:
    return max(1, math.ceil(steps_per_epoch(prepared, global_batch) * epochs))


class MicroBatches:
    """This process's micro-batches from ``start_step`` on, as lists of (epoch, record) keys for the dataset."""

    def __init__(
        self,
        prepared: Prepared,
        *,
        seed: int,
        global_batch: int,
        per_device_batch: int,
        group_by_length: bool,
        end_step: int,
        rank: int = 0,
        world: int = 1,
        start_step: int = 0,
        group_batches: int = 1,
    ) -> None:
        self.prepared, self.seed, self.global_batch, self.per_device = prepared, seed, global_batch, per_device_batch
        self.group, self.group_batches, self.rank, self.world = group_by_length, group_batches, rank, world
        self.start, self.end = start_step, end_step
        self.per_epoch = max(1, steps_per_epoch(prepared, global_batch))

    def __len__(self) -> int:
        return (self.end - self.start) * self.global_batch // (self.per_device * self.world)

    def __iter__(self):
        plans: dict[int, np.ndarray] = {}
        for step in range(self.start, self.end):
            epoch, within = divmod(step, self.per_epoch)
            if epoch not in plans:
                plan = epoch_plan(self.prepared, epoch, self.seed, self.global_batch, self.group, self.group_batches)
                plans = {epoch: plan}
            batch = plans[epoch][within * self.global_batch : (within + 1) * self.global_batch]
            micro = [batch[i : i + self.per_device] for i in range(0, len(batch), self.per_device)]
            for chunk in micro[self.rank :: self.world]:
                yield [(epoch, int(index)) for index in chunk]
