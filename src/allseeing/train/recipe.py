"""The LLaVA training recipe (``allseeing train CONFIG key=value ...``), directly or under ``torchrun``.

Shaped as torchtune's recipes are: :meth:`Recipe.setup` builds the model, the data and the optimiser (from the
last checkpoint with ``resume=true``), :meth:`Recipe.train` runs the steps, :meth:`Recipe.save_checkpoint` and
:meth:`Recipe.save_final` write what a run leaves. What it supports, each a key of :class:`TrainConfig`:

- engines: one process, DDP or FSDP2 under torchrun (:mod:`allseeing.train.distributed`); the global batch is kept
  and gradient accumulation derived from the number of processes;
- what trains (``trainable``, ``frozen_patch_embedding``), LoRA (``lora_rank`` and friends; ``final`` is merged),
  gradient checkpointing, bf16 autocast;
- data: a weighted mix of sources (a curriculum's ratios), length grouping, horizontal flips, bad records skipped
  up to ``max_bad_fraction``;
- the loss: the mean over every trained token of the global batch, or with ``loss_weighting=sample`` over its
  samples (the count is summed across processes before the backward pass), so it does not depend on how the batch
  is split into micro-batches (:mod:`allseeing.data.sampler`); optionally an auxiliary loss that ties each written
  box to its image patches (``binding_weight``, :mod:`allseeing.train.binding`);
- the schedule: warm-up then cosine or constant, over ``epochs`` or a time box (``max_minutes``: the schedule
  anneals over the time), and ``max_steps``;
- atomic checkpoints every ``save_every`` steps; ``resume=true`` continues from the last whole one on the same loss
  curve (data order, dropout and learning rate as the uninterrupted run's).

Loss, learning rate, tokens/s and samples/s go to a progress bar and to ``log.jsonl``. Stage 0 (the vision tower
alone, ``stage: vision``) is its own recipe, :mod:`allseeing.train.vision`.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from allseeing.data.dataset import SampleDataset, collate, encoder_for, encoder_key, prepare
from allseeing.data.sampler import MicroBatches, total_steps
from allseeing.train import checkpoint
from allseeing.train.binding import BindingLoss
from allseeing.train.config import TrainConfig
from allseeing.train.distributed import Engine, process_group
from allseeing.train.loss import loss_units, summed_loss, trained_token_count
from allseeing.train.memory import CpuMemory, flushed_denormals
from allseeing.train.schedule import Budget, lr_factor
from allseeing.train.setup import trained_model, write_final, write_weights


@flushed_denormals()
def train(config: TrainConfig, progress: bool = True) -> dict:
    """Run (or resume) one training run; returns its summary (steps, data counts, last loss, time, output)."""
    with process_group() as (rank, world):
        recipe = Recipe(config, rank, world, progress=progress)
        recipe.setup()
        return recipe.train()


class Recipe:
    """One run of :func:`train`: set up once, then train to the end of its schedule or time box."""

    def __init__(self, config: TrainConfig, rank: int, world: int, *, progress: bool = True) -> None:
        self.config = config
        self.rank, self.world = rank, world
        self.accumulation = config.accumulation(self.world)  # refuses a world size the batch does not split into
        self.main_process = self.rank == 0
        self.progress = progress and self.main_process
        self.output = Path(config.output_dir)
        self.device = torch.device(
            f"cuda:{self.rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
        )
        self.weights: dict[str, torch.Tensor] | None = None  # the last checkpoint's gathered weights (sharded runs)

    # -- set-up ------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Model, data, optimiser and schedule, in the order that keeps a resumed run's random draws those of the
        uninterrupted run (the seed before the model's initialisation; the saved generator state last, in
        :meth:`train`)."""
        self.output.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(self.config.seed)
        self.resumed = checkpoint.starting_point(self.output, self.config.resume, main_process=self.main_process)
        self.state = checkpoint.load_state(self.resumed) if self.resumed else None
        self._setup_model()
        if self.main_process:
            (self.output / "config.json").write_text(
                json.dumps(self.config.to_json(), indent=2) + "\n", encoding="utf-8"
            )
        self._setup_data()
        self._setup_optimizer()
        self._setup_loader()

    def _setup_model(self) -> None:
        self.model, self.processor = trained_model(self.config, self.resumed)
        self.model.to(self.device).train()
        self.engine = Engine(self.model, self.config.engine, self.world)
        config = self.config
        self.binding = (
            BindingLoss(
                self.model,
                self.processor.tokenizer,
                weight=config.binding_weight,
                terms=config.binding_term_list(),
                readout_weight=config.binding_readout_weight,
            )
            if config.binding_weight
            else None
        )

    def _setup_data(self) -> None:
        config = self.config
        self.encode_record = encoder_for(self.processor, config.max_length, config.length_policy)
        self.prepared = prepare(
            config.data,
            self.encode_record,
            self.output / "cache",
            max_bad_fraction=config.max_bad_fraction,
            progress=self.progress,
            index_key=encoder_key(self.processor, config.length_policy),
            workers=config.num_workers,
        )
        self.steps = total_steps(self.prepared, config.global_batch, config.epochs)
        self.start = self.state["step"] if self.state else 0
        self.budget = Budget(self.steps, config.max_minutes, self.state.get("elapsed_s", 0.0) if self.state else 0.0)
        end = min(self.steps, config.max_steps) if config.max_steps else self.steps
        self.end = self.start if self.budget.exhausted else end  # a used-up time box trains nothing more
        self.summary = {
            "steps": self.end,
            "start": self.start,
            "prepared": len(self.prepared),
            "bad_records": dict(self.prepared.bad),
            "total_records": self.prepared.total,
        }
        if self.main_process:  # a note: stdout carries only the command's summary, one JSON document
            print(f"data: {json.dumps(self.summary)}", file=sys.stderr, flush=True)

    def _setup_optimizer(self) -> None:
        config = self.config
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.trainable,
            lr=config.learning_rate,
            betas=config.adam_betas,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_factor(self.budget.schedule_step(step), self.steps, config.warmup_ratio, config.schedule),
        )
        if self.state is not None:
            self.engine.load_optimizer_state(self.optimizer, self.state["optimizer"])
            self.scheduler.load_state_dict(self.state["scheduler"])

    def _setup_loader(self) -> None:
        config, processor = self.config, self.processor
        dataset = SampleDataset(
            self.prepared, self.encode_record, processor.pixel_values, config.flip_probability, config.seed
        )
        batches = MicroBatches(
            self.prepared,
            seed=config.seed,
            global_batch=config.global_batch,
            per_device_batch=config.per_device_batch,
            group_by_length=config.group_by_length,
            rank=self.rank,
            world=self.world,
            start_step=self.start,
            end_step=self.end,
            group_batches=config.length_group_batches,
        )
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=batches,
            collate_fn=lambda samples: collate(samples, processor.pad_id, processor.pixel_values),
            num_workers=config.num_workers,
        )

    # -- training ----------------------------------------------------------------------------------------------
    def train(self) -> dict:
        """Train from the start (or resumed) step to the end; checkpoints on the way, ``final`` at the end."""
        config = self.config
        log = (self.output / "log.jsonl").open("a", encoding="utf-8") if self.main_process else None
        bar = tqdm(total=self.end - self.start, desc="train", unit="step", disable=not self.progress)
        micro_batches = iter(self.loader)
        memory = CpuMemory() if self.device.type == "cpu" else None
        if self.state is not None:
            # Restored only now: starting the loader's iterator draws from the global generator, and the next draws
            # (dropout) must be those the uninterrupted run made after the checkpoint.
            checkpoint.set_rng_state(self.state["rng"])
        last_loss, step = None, self.start
        clock = time.perf_counter() - self.budget.elapsed  # training time counts on from the checkpoint's
        for step in range(self.start, self.end):
            began = time.perf_counter()
            chunk = [next(micro_batches) for _ in range(self.accumulation)]
            last_loss, counts = self.train_step(chunk, clock)
            if memory:
                memory.after_step(step + 1)
            seconds = time.perf_counter() - began
            finished = step + 1 == self.end or self.budget.exhausted
            if log and (step % config.log_every == 0 or finished):
                log.write(json.dumps(self._log_entry(step + 1, last_loss, counts, seconds)) + "\n")
                log.flush()
            bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            bar.update()
            if (step + 1) % config.save_every == 0 or finished:
                self.save_checkpoint(step + 1)
            if finished:
                step += 1
                break
        bar.close()
        if log:
            log.close()
        self.save_final(step)
        return {
            **self.summary,
            "last_step": step,
            "minutes": round(self.budget.elapsed / 60, 2),
            "final_loss": last_loss,
            "output": str(self.output),
        }

    def train_step(self, chunk: list[dict], clock: float) -> tuple[float, torch.Tensor]:
        """One optimiser step on a global batch (this process's micro-batches); returns its mean loss and the summed
        [loss units, trained tokens, all tokens, elapsed time] of every process."""
        config = self.config
        # The time is divided by the number of processes before the sum: the sum is the mean, the same everywhere.
        counts = torch.tensor(
            [
                sum(loss_units(b["labels"], config.loss_weighting) for b in chunk),
                sum(trained_token_count(b["labels"]) for b in chunk),
                sum(int(b["attention_mask"].sum()) for b in chunk),
                (time.perf_counter() - clock) / self.world,
            ],
            dtype=torch.float64,
        )
        if self.world > 1:
            dist.all_reduce(counts)
        units, self.budget.elapsed = counts[0], float(counts[3])
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if config.bf16 else nullcontext()
        # [the loss, the binding loss's attention terms, its readout]: the latter two are logged on their own (how much
        # attention finds the boxes, how much of the boxes the heads' outputs leave unexplained)
        loss_total = torch.zeros(3, dtype=torch.float64)
        for index, batch in enumerate(chunk):
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with self.engine.gradient_sync(index == len(chunk) - 1), autocast:
                loss = summed_loss(self.engine.module, batch, config.loss_weighting, self.binding)
                (loss.total * self.world / units.item()).backward()
            loss_total[0] += loss.total.detach().double().cpu()
            if loss.binding is not None:
                loss_total[1:] += torch.stack(loss.binding).detach().double().cpu()
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.trainable, config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.world > 1:
            dist.all_reduce(loss_total)
        self.binding_loss, self.binding_readout = (float(part / units) for part in loss_total[1:])
        return float(loss_total[0] / units), counts

    def _log_entry(self, step: int, loss: float, counts: torch.Tensor, seconds: float) -> dict:
        readout = self.binding is not None and self.binding.readout_weight > 0
        return {
            "step": step,
            "loss": round(loss, 6),
            "lr": self.scheduler.get_last_lr()[0],
            "tokens_per_s": round(float(counts[2]) / seconds, 1),
            "trained_tokens_per_s": round(float(counts[1]) / seconds, 1),
            "samples_per_s": round(self.config.global_batch / seconds, 2),
            **({"binding_loss": round(self.binding_loss, 6)} if self.binding else {}),
            **({"binding_readout": round(self.binding_readout, 6)} if readout else {}),
        }

    # -- saving ------------------------------------------------------------------------------------------------
    def save_checkpoint(self, step: int) -> None:
        """``checkpoint-<step>``: weights, optimiser, schedule and generator states (every process takes part)."""
        self.weights = self.engine.model_state()  # collective if sharded: whole weights on rank 0
        optimizer_state = self.engine.optimizer_state(self.optimizer)
        if self.main_process:
            checkpoint.save(
                self.output,
                step,
                write_weights=partial(
                    write_weights, self.model, self.processor, config=self.config, weights=self.weights
                ),
                optimizer_state=optimizer_state,
                scheduler=self.scheduler,
                extra={"summary": self.summary, "elapsed_s": self.budget.elapsed},
                keep=self.config.keep_checkpoints,
            )
        if self.world > 1:
            dist.barrier()

    def save_final(self, step: int) -> None:
        """``final/`` after the last step. A run stopped between its last checkpoint and ``final/`` resumes with
        nothing left to train and writes it then, from the checkpoint it loaded."""
        trained = step > self.start
        if not (trained or (self.resumed and not (self.output / "final").is_dir())):
            return
        # The last step always writes a checkpoint, so its gathered weights are the final ones (None unsharded);
        # with nothing trained they are gathered here (every process takes part).
        weights = self.weights if trained else self.engine.model_state()
        if self.main_process:
            write_final(self.model, self.processor, self.output / "final", config=self.config, weights=weights)
