"""Multi-process engines for the training loop: one process, PyTorch DDP, or FSDP2 (``fully_shard``).

DDP keeps a whole replica in every process and all-reduces the gradients. FSDP2 shards the parameters, gradients
and optimizer state across the processes (each decoder layer and each vision layer is one shard group), so a
model too large for one device trains on several. Both run on NCCL (GPUs) or gloo (CPU) and average gradients
across processes. The loop sees one interface: the module to call, the gradient-sync switch for accumulation, and
whole (unsharded) state dicts for checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
import torch.distributed as dist
from transformers import LlavaForConditionalGeneration

ENGINES = ("ddp", "fsdp")


@contextmanager
def process_group() -> Iterator[tuple[int, int]]:
    """(rank, world size) for the block; under torchrun it joins the process group (gloo on CPU; on GPUs nccl, and
    gloo for CPU tensors) and, if it joined it, leaves it when the block ends normally (PyTorch warns of a group never
    destroyed). A block that raised leaves it be: with NCCL, a rank leaving while the others wait in a collective can
    hang until its timeout, where exiting at once lets torchrun stop them all."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    joined = world > 1 and not dist.is_initialized()
    if joined:
        # the loop also all-reduces small CPU tensors (counts, logged losses), which NCCL alone refuses
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    yield (dist.get_rank() if world > 1 else 0), world
    if joined:
        dist.destroy_process_group()


class Engine:
    """How one model is spread over ``world`` processes (nothing to do for one process)."""

    def __init__(self, model: LlavaForConditionalGeneration, kind: str, world: int) -> None:
        if kind not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {kind!r}")
        self.model, self.kind, self.world = model, kind, world
        self.sharded = world > 1 and kind == "fsdp"
        if self.sharded:
            _shard(model)
            self.module: torch.nn.Module = model
        elif world > 1:
            # Frozen parts and prompts without images leave parameters unused in some steps.
            self.module = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        else:
            self.module = model

    def gradient_sync(self, last_micro_batch: bool) -> AbstractContextManager:
        """Gradients are exchanged once per step: after the last micro-batch of the accumulation."""
        if self.sharded:
            self.model.set_requires_gradient_sync(last_micro_batch)
            return nullcontext()
        if self.world > 1 and not last_micro_batch:
            return self.module.no_sync()
        return nullcontext()

    def model_state(self) -> dict[str, torch.Tensor] | None:
        """The whole weights on rank 0 when sharded (every process must call this), else None: save the model."""
        if not self.sharded:
            return None
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict:
        """The optimizer's state, gathered whole on rank 0 when sharded (every process must call this)."""
        if not self.sharded:
            return optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_optimizer_state_dict(self.model, optimizer, options=options)

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict) -> None:
        """Restore :meth:`optimizer_state`'s output (every process reads the whole state and keeps its shard)."""
        if not self.sharded:
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        # Not strict: a parameter that never had a gradient (the unused last vision layer) has no state yet.
        options = StateDictOptions(full_state_dict=True, strict=False)
        set_optimizer_state_dict(self.model, optimizer, state, options=options)


def _shard(model: LlavaForConditionalGeneration) -> None:
    from torch.distributed.fsdp import fully_shard

    for layer in [*model.model.vision_tower.encoder.layers, *model.model.language_model.layers]:
        fully_shard(layer)
    fully_shard(model)
