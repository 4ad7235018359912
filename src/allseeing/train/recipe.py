"""The training loop (``allseeing train CONFIG key=value ...``), directly or under ``torchrun``.

One readable loop on DDP or FSDP2 (:mod:`allseeing.train.distributed`), optionally with LoRA: each step trains
on one global batch split into micro-batches (:mod:`allseeing.data.sampler`); the loss is the mean over every
trained token of the global batch, or with ``loss_weighting=sample`` over its samples (the count is summed across
processes before the backward pass), so it does not depend on how the batch is split. Loss, learning rate,
tokens/s and samples/s go to a progress bar and to ``log.jsonl``; checkpoints are atomic and ``resume=true``
continues from the last one on the same loss curve.
"""

from __future__ import annotations

import ctypes
import json
import math
import re
import sys
import time
from contextlib import nullcontext, suppress
from dataclasses import replace
from functools import partial
from itertools import islice
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm
from transformers import LlavaForConditionalGeneration

from allseeing.data.dataset import SampleDataset, collate, encoder_for, encoder_key, prepare
from allseeing.data.manifest import DataSource, iter_records
from allseeing.data.sampler import MicroBatches, total_steps
from allseeing.data.tokenize import IGNORE_INDEX
from allseeing.model.build import load, new_model
from allseeing.model.build import save as save_model
from allseeing.model.processor import Processor
from allseeing.train import checkpoint
from allseeing.train.config import TrainConfig
from allseeing.train.distributed import Engine, distributed

CORPUS_RECORDS = 20_000  # records read to train a fresh model's tokenizer


def set_trainable(model, trainable: str, frozen_patch_embedding: bool = False) -> None:
    """projector: only the projector; llm_and_projector: and the language model; all: the vision tower too, less
    its patch embedding when ``frozen_patch_embedding`` (``TrainConfig.frozen_patch_embedding``)."""
    for parameter in model.parameters():
        parameter.requires_grad_(trainable == "all")
    parts = [model.model.multi_modal_projector]
    if trainable in ("llm_and_projector", "all"):
        parts += [model.model.language_model, model.lm_head]
    for part in parts:
        for parameter in part.parameters():
            parameter.requires_grad_(True)
    if frozen_patch_embedding:
        model.model.vision_tower.embeddings.patch_embedding.requires_grad_(False)


def initial_model(config: TrainConfig) -> tuple[LlavaForConditionalGeneration, Processor]:
    """A model folder, or ``preset:NAME`` (random weights, or the tower of ``vision_init``) with a tokenizer trained
    on the first records of the data."""
    if not config.init.startswith("preset:"):
        return load(config.init)
    return new_model(
        config.init.removeprefix("preset:"), tokenizer_corpus(config.data), seed=config.seed, vision=config.vision_init
    )


def tokenizer_corpus(sources: list[DataSource]) -> list[str]:
    """The turns of the first ``CORPUS_RECORDS`` records of every source, those at ratio 0 included, so that a
    curriculum's first stage gets the tokenizer of the whole mix it will widen to."""
    return [
        turn["value"]
        for source in sources
        for _, record in islice(iter_records(source.path), CORPUS_RECORDS)
        if isinstance(record, dict)
        for turn in record.get("conversations", [])
        if isinstance(turn, dict) and isinstance(turn.get("value"), str)
    ]


def with_lora(model: LlavaForConditionalGeneration, config: TrainConfig):
    """The model with peft LoRA adapters on the language model's ``lora_targets``; the projector stays trained."""
    from peft import LoraConfig, get_peft_model

    names = "|".join(re.escape(name.strip()) for name in config.lora_targets.split(",") if name.strip())
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=rf".*language_model\..*\.({names})",
    )
    adapted = get_peft_model(model, lora)  # freezes every weight but the adapters
    for parameter in model.model.multi_modal_projector.parameters():
        parameter.requires_grad_(True)
    return adapted


def write_weights(
    model, processor: Processor, folder: Path, *, config: TrainConfig, weights: dict[str, torch.Tensor] | None
) -> None:
    """A checkpoint's weights: the whole model (``weights`` when gathered from shards), or for LoRA the trained
    parameters and the tokenizer."""
    if config.lora_rank:
        folder.mkdir(parents=True, exist_ok=True)
        processor.save(folder)
        checkpoint.save_trainable(model, folder)
    else:
        save_model(model, processor, folder, weights)


def for_training(processor: Processor, config: TrainConfig) -> Processor:
    """The processor with the run's template, image mode and length limit (saved with every checkpoint)."""
    settings = replace(
        processor.config, template=config.template, image_aspect=config.image_aspect, max_length=config.max_length
    )
    return Processor(processor.tokenizer, settings)


def lr_factor(step: float, total: int, warmup_ratio: float, schedule: str) -> float:
    warmup = math.ceil(total * warmup_ratio)
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class Budget:
    """Where a run stands in its schedule: its step, or with a time box its elapsed time if that is further on.

    ``elapsed`` is the training time so far (resumes included), set each step to the mean over the processes so
    that every process sees the same learning rate and stops at the same step.
    """

    def __init__(self, steps: int, max_minutes: float | None, elapsed: float = 0.0) -> None:
        self.steps = steps
        self.limit = max_minutes * 60 if max_minutes else None
        self.elapsed = elapsed

    def schedule_step(self, step: int) -> float:
        """The step the learning-rate schedule is at: the real one, or the time's share of all steps if greater."""
        if self.limit is None:
            return step
        return max(step, min(self.elapsed / self.limit, 1.0) * self.steps)

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.elapsed >= self.limit


def trained_token_count(labels: torch.Tensor) -> int:
    """Tokens a batch trains: labels after the first position (they shift by one) that are not IGNORE_INDEX."""
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


def loss_units(labels: torch.Tensor, weighting: str) -> int:
    """What the loss averages over: trained tokens (``token``), or samples with a trained token (``sample``)."""
    if weighting == "token":
        return trained_token_count(labels)
    return int((labels[:, 1:] != IGNORE_INDEX).any(dim=1).sum())


def summed_loss(model, batch: dict, weighting: str = "token") -> tuple[torch.Tensor, int]:
    """A micro-batch's next-token cross-entropy summed over its units (:func:`loss_units`), and their count.

    ``token``: the sum over trained tokens, so every token of the global batch weighs the same (a 1,000-token scene
    graph outweighs a 20-token box fifty times). ``sample``: the sum over samples of each one's mean token loss, so
    every sample weighs the same.
    """
    labels = batch.pop("labels")
    logits = model(**batch).logits.float()
    shifted = labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), shifted.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    ).view(shifted.shape)  # zero where ignored
    if weighting == "sample":
        losses = losses / (shifted != IGNORE_INDEX).sum(dim=1, keepdim=True).clamp(min=1)
    return losses.sum(), loss_units(labels, weighting)


class CpuMemory:
    """Return the heap's free pages to the system every ``every`` steps (glibc only; a no-op elsewhere).

    Batches of varying length (length grouping) allocate activations of varying size; glibc's malloc keeps them in
    a fragmented heap that it never shrinks, and the resident size of a CPU run grew by about 80 MB a step (6 GB
    to 13 GB in 300 steps) until the machine would run out. ``malloc_trim`` releases the free pages in place;
    fixing the mmap threshold instead also stopped the growth but cost a quarter of the speed
    (docs/training.md).
    """

    def __init__(self, every: int = 10) -> None:
        self.every = every
        self.trim = None
        if sys.platform == "linux":
            with suppress(OSError, AttributeError):  # not glibc: nothing to trim
                self.trim = ctypes.CDLL("libc.so.6").malloc_trim

    def after_step(self, step: int) -> None:
        if self.trim is not None and step % self.every == 0:
            self.trim(0)


def train(config: TrainConfig, progress: bool = True) -> dict:
    # Denormal floats (tiny Adam moments) take a slow path in CPU arithmetic (docs/training.md, "CPU runs").
    torch.set_flush_denormal(True)
    rank, world = distributed()
    accumulation = config.accumulation(world)
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    device = torch.device(f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")

    resumed = checkpoint.starting_point(output, config.resume, main_process=rank == 0)
    if config.lora_rank:
        model, processor = initial_model(config)
        set_trainable(model, config.trainable, config.frozen_patch_embedding)
        model = with_lora(model, config)
        if resumed:
            processor = Processor.load(resumed)
            checkpoint.load_trainable(model, resumed)
    else:
        model, processor = load(resumed) if resumed else initial_model(config)
        set_trainable(model, config.trainable, config.frozen_patch_embedding)
    processor = for_training(processor, config)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if config.lora_rank:
            model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks still need an input grad
    model.to(device).train()
    engine = Engine(model, config.engine, world)
    if rank == 0:
        (output / "config.json").write_text(json.dumps(config.to_json(), indent=2) + "\n", encoding="utf-8")

    encode_record = encoder_for(processor, config.max_length, config.length_policy)
    prepared = prepare(
        config.data,
        encode_record,
        output / "cache",
        config.max_bad_fraction,
        progress and rank == 0,
        index_key=encoder_key(processor, config.length_policy),
        workers=config.num_workers,
    )
    steps = total_steps(prepared, config.global_batch, config.epochs)
    end = min(steps, config.max_steps) if config.max_steps else steps

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable,
        lr=config.learning_rate,
        betas=config.adam_betas,
        eps=config.adam_eps,
        weight_decay=config.weight_decay,
    )
    start, state = 0, None
    if resumed:
        state = checkpoint.load_state(resumed)
        start = state["step"]
    budget = Budget(steps, config.max_minutes, state.get("elapsed_s", 0.0) if state else 0.0)
    if budget.exhausted:
        end = start  # the time box was used up before this resume
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(budget.schedule_step(step), steps, config.warmup_ratio, config.schedule)
    )
    if state is not None:
        engine.load_optimizer_state(optimizer, state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    dataset = SampleDataset(prepared, encode_record, processor.pixel_values, config.flip_probability, config.seed)
    batches = MicroBatches(
        prepared,
        config.seed,
        config.global_batch,
        config.per_device_batch,
        config.group_by_length,
        rank,
        world,
        start,
        end,
        config.length_group_batches,
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=lambda samples: collate(samples, processor.pad_id, processor.pixel_values),
        num_workers=config.num_workers,
    )
    summary = {
        "steps": end,
        "start": start,
        "prepared": len(prepared),
        "bad_records": dict(prepared.bad),
        "total_records": prepared.total,
    }
    if rank == 0:  # a note: stdout carries only the command's summary, one JSON document
        print(f"data: {json.dumps(summary)}", file=sys.stderr, flush=True)
    log = (output / "log.jsonl").open("a", encoding="utf-8") if rank == 0 else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if config.bf16 else nullcontext()
    bar = tqdm(total=end - start, desc="train", unit="step", disable=not (progress and rank == 0))
    micro_batches = iter(loader)
    memory = CpuMemory() if device.type == "cpu" else None
    if state is not None:
        # Restored only now: starting the loader's iterator draws from the global generator, and the next draws
        # (dropout) must be those the uninterrupted run made after the checkpoint.
        checkpoint.set_rng_state(state["rng"])
    last_loss, weights, step = None, None, start
    clock = time.perf_counter() - budget.elapsed  # training time counts on from the checkpoint's
    for step in range(start, end):
        began = time.perf_counter()
        chunk = [next(micro_batches) for _ in range(accumulation)]
        # [loss units, trained tokens, all tokens] of the whole global batch and the elapsed time, summed over the
        # processes (the time divided by their number first: its sum is the mean, the same everywhere)
        counts = torch.tensor(
            [
                sum(loss_units(b["labels"], config.loss_weighting) for b in chunk),
                sum(trained_token_count(b["labels"]) for b in chunk),
                sum(int(b["attention_mask"].sum()) for b in chunk),
                (time.perf_counter() - clock) / world,
            ],
            dtype=torch.float64,
        )
        if world > 1:
            dist.all_reduce(counts)
        units, budget.elapsed = counts[0], float(counts[3])
        loss_total = torch.zeros((), dtype=torch.float64)
        for index, batch in enumerate(chunk):
            batch = {k: v.to(device) for k, v in batch.items()}
            with engine.gradient_sync(index == accumulation - 1), autocast:
                loss_sum, _ = summed_loss(engine.module, batch, config.loss_weighting)
                (loss_sum * world / units.item()).backward()
            loss_total += loss_sum.detach().double().cpu()
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if memory:
            memory.after_step(step + 1)
        if world > 1:
            dist.all_reduce(loss_total)
        last_loss = float(loss_total / units)
        seconds = time.perf_counter() - began
        finished = step + 1 == end or budget.exhausted
        if log and (step % config.log_every == 0 or finished):
            entry = {
                "step": step + 1,
                "loss": round(last_loss, 6),
                "lr": scheduler.get_last_lr()[0],
                "tokens_per_s": round(float(counts[2]) / seconds, 1),
                "trained_tokens_per_s": round(float(counts[1]) / seconds, 1),
                "samples_per_s": round(config.global_batch / seconds, 2),
            }
            log.write(json.dumps(entry) + "\n")
            log.flush()
        bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        bar.update()
        if (step + 1) % config.save_every == 0 or finished:
            weights, optimizer_state = engine.model_state(), engine.optimizer_state(optimizer)  # collective if sharded
            if rank == 0:
                checkpoint.save(
                    output,
                    step + 1,
                    partial(write_weights, model, processor, config=config, weights=weights),
                    optimizer_state,
                    scheduler,
                    {"summary": summary, "elapsed_s": budget.elapsed},
                    config.keep_checkpoints,
                )
            if world > 1:
                dist.barrier()
        if finished:
            step += 1
            break
    bar.close()
    if log:
        log.close()
    # A run stopped between its last checkpoint and final/ resumes with nothing left to train: it writes final/ then,
    # from the checkpoint it loaded (gathered from the shards first: every process takes part).
    write_final = step > start or bool(resumed and not (output / "final").is_dir())
    if write_final and step == start:
        weights = engine.model_state()
    if rank == 0 and write_final:
        # The last step always writes a checkpoint, so ``weights`` are already the final ones gathered from the
        # shards (None when unsharded). The final folder is always a plain model: LoRA adapters are merged in.
        final_model = model.merge_and_unload() if config.lora_rank else model
        checkpoint.write_atomically(
            output / "final", lambda folder: save_model(final_model, processor, folder, weights)
        )
    return {
        **summary,
        "last_step": step,
        "minutes": round(budget.elapsed / 60, 2),
        "final_loss": last_loss,
        "output": str(output),
    }
