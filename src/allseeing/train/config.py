"""Training configuration: a dataclass schema, YAML presets (``configs/train/``), typed ``key=value`` overrides.

The global batch is the fact a recipe fixes (upstream: 256, 128, 512, 512 samples per step); the per-device batch
and the number of processes are choices of the machine, so gradient accumulation is derived:
``accumulation = global_batch / (per_device_batch x world_size)``, which must be a whole number.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from allseeing import config as typed_config
from allseeing.config import ConfigError, parse_overrides, read_preset
from allseeing.data.manifest import DataSource
from allseeing.model.presets import get_preset
from allseeing.train.binding_terms import BindingTerm, parse_terms, terms_from_keys

TRAINABLE = ("projector", "llm_and_projector", "all")


@dataclass
class TrainConfig:
    # what to train
    init: str = "preset:small"  # "preset:NAME" (random init, tokenizer trained on the data) or a model folder
    # With init=preset:NAME: a CLIP vision folder (a vision stage's final/, or any pretrained CLIP) whose weights and
    # shape (resolution included) replace the preset's randomly initialised tower, as upstream starts from CLIP.
    vision_init: str | None = None
    trainable: str = (
        "llm_and_projector"  # projector | llm_and_projector | all (the vision tower stays frozen otherwise)
    )
    # With trainable=all, keep the vision tower's patch embedding (the linear map of each pixel patch) at its initial
    # weights while the rest of the tower trains (MoCo v3's frozen patch projection). A tower trained from scratch
    # otherwise washes the position codes out of its features before the language model learns to read them: a
    # linear probe finds a patch's row 97% of the time after 600 steps with the projection frozen, 24% without
    # (docs/model-card.md, run 5), and boxes are learned faster.
    frozen_patch_embedding: bool = False
    template: str = "vicuna_v1"
    image_aspect: str = "pad"
    max_length: int = 2048
    length_policy: str = "drop"  # drop | truncate (over-long samples, counted)
    # LoRA through peft (lora_rank > 0): adapters on the language model's linear layers instead of training its
    # weights; the projector stays fully trained. Needs trainable=llm_and_projector.
    lora_rank: int = 0
    lora_alpha: float = 16.0
    lora_dropout: float = 0.05
    lora_targets: str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    data: list[DataSource] = field(default_factory=list)
    flip_probability: float = 0.0  # mirror grounding samples (image, boxes, left/right words)
    max_bad_fraction: float = 0.01  # stop when more of the data than this is unusable
    group_by_length: bool = True
    # global batches per length-sorted megabatch: 1 is upstream's sampler; more makes each step's lengths alike and
    # cuts padding when a micro-batch is the whole global batch (docs/training.md)
    length_group_batches: int = 1
    # optimisation
    global_batch: int = 128
    per_device_batch: int = 8
    learning_rate: float = 2e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    schedule: str = "cosine"  # cosine | constant
    epochs: float = 1.0
    max_steps: int | None = None  # stop early at this step (the schedule still spans the epochs), as upstream did
    # A time box (a lent GPU, a night): stop after this many minutes of training, summed over resumes. The schedule
    # then follows the elapsed share of the time whenever it is ahead of the share of steps, so the run ends with the
    # learning rate annealed; epochs only bound the run.
    max_minutes: float | None = None
    # the loss is a mean over the global batch's trained tokens (token) or over its samples, each sample's own mean
    # token loss (sample: a 20-token box answer weighs as much as a 1,000-token scene graph)
    loss_weighting: str = "token"
    # An auxiliary loss (train/binding.py), off at 0: at each anchor of a box (binding_anchors), one head of one
    # language-model layer is asked to attend to the image tokens inside that box; added to the loss times this weight
    binding_weight: float = 0.0
    binding_layer: int = -2  # negative from the last layer
    binding_head: int = 0
    binding_anchors: str = "all"  # all | first | name | name+first (train/binding_terms.py)
    binding_first_target: str = "box"  # box | name (a relay), with first or name+first anchors
    # the terms in full, ANCHOR@LAYER:HEAD->TARGET joined by commas (train/binding_terms.py): when set, they replace
    # binding_anchors, binding_layer, binding_head and binding_first_target
    binding_terms: str = ""
    # per term, how much of the anchors' boxes the head's output leaves linearly unexplained (train/binding.py), added
    # to the binding loss times this weight (so trained times binding_weight as well); off at 0
    binding_readout_weight: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    max_grad_norm: float | None = 1.0
    bf16: bool = False
    gradient_checkpointing: bool = False
    seed: int = 42
    # bookkeeping
    output_dir: str = "runs/train"
    save_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    resume: bool = False
    engine: str = "ddp"  # ddp | fsdp (FSDP2: parameters, gradients and optimizer state sharded); under torchrun
    num_workers: int = 0

    def accumulation(self, world_size: int) -> int:
        """Micro-batches per process per step, derived so the global batch stays fixed."""
        per_step = self.per_device_batch * world_size
        if self.global_batch % per_step:
            raise ConfigError(
                f"global_batch {self.global_batch} is not a multiple of per_device_batch {self.per_device_batch} x "
                f"{world_size} processes"
            )
        return self.global_batch // per_step

    def binding_term_list(self) -> list[BindingTerm]:
        """The binding loss's terms: ``binding_terms`` if set, else those the shorter keys describe."""
        try:
            if self.binding_terms:
                shorter = ("binding_anchors", "binding_layer", "binding_head", "binding_first_target")
                given = [key for key in shorter if getattr(self, key) != getattr(TrainConfig, key)]
                if given:
                    raise ValueError(f"binding_terms replaces {', '.join(given)}: give one or the other")
                return parse_terms(self.binding_terms)
            return terms_from_keys(
                self.binding_anchors, self.binding_layer, self.binding_head, self.binding_first_target
            )
        except ValueError as error:
            raise ConfigError(str(error)) from None

    def check(self) -> TrainConfig:
        if self.trainable not in TRAINABLE:
            raise ConfigError(f"trainable must be one of {', '.join(TRAINABLE)}, got {self.trainable!r}")
        if self.lora_rank < 0 or (self.lora_rank and self.trainable != "llm_and_projector"):
            raise ConfigError(
                f"lora_rank {self.lora_rank} needs trainable=llm_and_projector (LoRA adapts the language model), "
                f"got trainable={self.trainable!r}"
            )
        if self.engine not in ("ddp", "fsdp"):
            raise ConfigError(f"engine must be ddp or fsdp, got {self.engine!r}")
        if self.lora_rank and self.engine == "fsdp":
            raise ConfigError("LoRA runs use engine=ddp (the adapters are small; FSDP2 with peft is not supported)")
        if self.loss_weighting not in ("token", "sample"):
            raise ConfigError(f"loss_weighting must be token or sample, got {self.loss_weighting!r}")
        for name in ("binding_weight", "binding_readout_weight"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if self.binding_readout_weight and not self.binding_weight:
            raise ConfigError("binding_readout_weight > 0 needs binding_weight > 0 (the readout is part of that loss)")
        self.binding_term_list()
        if self.binding_weight and self.engine == "fsdp":
            raise ConfigError("binding_weight > 0 needs engine=ddp (it calls one layer's projections outside FSDP2)")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"schedule must be cosine or constant, got {self.schedule!r}")
        if self.length_group_batches < 1:
            raise ConfigError(f"length_group_batches must be at least 1, got {self.length_group_batches}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"max_minutes must be positive, got {self.max_minutes}")
        if self.vision_init is not None and not self.init.startswith("preset:"):
            raise ConfigError(f"vision_init needs init=preset:NAME (a fresh model), got init={self.init!r}")
        if not self.data:
            raise ConfigError("no data: give at least one manifest under 'data'")
        for source in self.data:
            if not math.isfinite(source.ratio) or source.ratio < 0:
                raise ConfigError(f"data {source.path}: ratio must be a finite number >= 0, got {source.ratio}")
        if not any(source.ratio > 0 for source in self.data):
            raise ConfigError("no data to train on: every manifest under 'data' has ratio 0")
        return self

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None, overrides: list[str] = (), schema: type = TrainConfig):
    """A training preset (or the defaults) with ``key=value`` overrides, as a checked ``schema`` (see
    :func:`allseeing.config.load_config`)."""
    return typed_config.load_config(path, list(overrides), schema)


@dataclass
class VisionConfig:
    """Stage 0: a vision tower trained alone on the synthetic world's dense per-patch truth (``train/vision.py``).

    A preset file marks itself with ``stage: vision``; ``allseeing train`` then runs this stage. Scenes are drawn
    on the fly from the world (``scene_seed``'s training split, scene ``k`` for the ``k``-th sample, so a run
    never repeats a scene and resumes exactly); held-out scenes come from the test split of ``heldout_seed``.
    """

    stage: str = "vision"
    preset: str = "small"  # the model preset whose vision tower is trained
    # the tower's input and patch side; None keeps the preset's (resolution is a choice this stage measures)
    image_size: int | None = None
    patch_size: int | None = None
    frozen_patch_embedding: bool = True  # as in TrainConfig: keeps patches' places readable in the features
    # Weight of a shape loss on each object's mean patch feature (0: no such head): one answer per object, from
    # whichever of its patches show the outline, beside the per-patch guess at every interior patch.
    object_shape_weight: float = 0.0
    scene_seed: int = 0
    heldout_seed: int = 1
    heldout_scenes: int = 200
    samples: int = 200_000  # the schedule's length in samples (scenes)
    max_steps: int | None = None  # stop early at this step; the schedule still spans ``samples``
    max_minutes: float | None = None  # a time box, as in TrainConfig (the schedule follows the time when ahead)
    batch: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    warmup_ratio: float = 0.03
    max_grad_norm: float | None = 1.0
    bf16: bool = False
    seed: int = 0
    output_dir: str = "runs/vision"
    save_every: int = 500  # steps
    eval_every: int = 500  # steps; the held-out metrics go to log.jsonl
    keep_checkpoints: int = 2
    log_every: int = 10
    resume: bool = False
    num_workers: int = 1

    def check(self) -> VisionConfig:
        if self.stage != "vision":
            raise ConfigError(f"stage must be 'vision' for a vision-stage config, got {self.stage!r}")
        for name in ("samples", "batch", "save_every", "eval_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.object_shape_weight < 0:
            raise ConfigError(f"object_shape_weight must be >= 0, got {self.object_shape_weight}")
        if self.heldout_scenes < 0:
            raise ConfigError(f"heldout_scenes must be >= 0, got {self.heldout_scenes}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"max_minutes must be positive, got {self.max_minutes}")
        size, patch = self.resolution()
        if size % patch:
            raise ConfigError(f"image_size {size} is not a multiple of patch_size {patch}")
        return self

    def resolution(self) -> tuple[int, int]:
        """The tower's input side and patch side: the stage's, else the preset's."""
        try:
            vision = get_preset(self.preset).vision
        except ValueError as error:
            raise ConfigError(str(error)) from None
        return self.image_size or vision["image_size"], self.patch_size or vision["patch_size"]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


STAGES = {"vision": VisionConfig}


def load_stage_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig | VisionConfig:
    """A training preset of any stage: ``stage: vision`` is stage 0 (:class:`VisionConfig`), none the LLaVA
    stages (:class:`TrainConfig`)."""
    stage = {**read_preset(path), **parse_overrides(overrides)}.get("stage")
    if stage is None:
        return load_config(path, overrides)
    if stage not in STAGES:
        raise ConfigError(f"{path}: unknown stage {stage!r}; known: {', '.join(STAGES)} (or no stage key)")
    return load_config(path, overrides, STAGES[stage])
