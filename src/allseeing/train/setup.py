"""What a LLaVA training run starts from: the initial model and tokenizer, which parts train, LoRA adapters, and how
a checkpoint's weights are written."""

from __future__ import annotations

import re
from dataclasses import replace
from itertools import islice
from pathlib import Path

import torch
from transformers import LlavaForConditionalGeneration

from allseeing.data.manifest import DataSource, iter_records
from allseeing.model.build import load, new_model
from allseeing.model.build import save as save_model
from allseeing.model.processor import Processor
from allseeing.train import checkpoint
from allseeing.train.config import TrainConfig

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


def trained_model(config: TrainConfig, resumed: Path | None) -> tuple[torch.nn.Module, Processor]:
    """The model a run trains, its trainable parts set (LoRA-wrapped with ``lora_rank``), from the checkpoint it
    resumes or from its ``init``, and the processor with the run's settings (:func:`for_training`)."""
    if config.lora_rank:
        # A LoRA checkpoint holds only the trained parameters: the base model comes from ``init`` again.
        model, processor = initial_model(config)
        set_trainable(model, config.trainable, config.frozen_patch_embedding)
        model = with_lora(model, config)
        if resumed:
            processor = Processor.load(resumed)
            checkpoint.load_trainable(model, resumed)
    else:
        model, processor = load(resumed) if resumed else initial_model(config)
        set_trainable(model, config.trainable, config.frozen_patch_embedding)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if config.lora_rank:
            model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks still need an input grad
    return model, for_training(processor, config)


def for_training(processor: Processor, config: TrainConfig) -> Processor:
    """The processor with the run's template, image mode and length limit (saved with every checkpoint)."""
    settings = replace(
        processor.config, template=config.template, image_aspect=config.image_aspect, max_length=config.max_length
    )
    return Processor(processor.tokenizer, settings)


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


def write_final(model, processor: Processor, folder: Path, *, config: TrainConfig, weights) -> None:
    """The run's ``final`` folder, always a plain model: LoRA adapters are merged in."""
    final_model = model.merge_and_unload() if config.lora_rank else model
    checkpoint.write_atomically(folder, lambda partial: save_model(final_model, processor, partial, weights))
