"""The stock ``LlavaForConditionalGeneration``, configured as ASMv2: built from a preset or loaded from a folder.

The configuration is upstream's: features from the vision tower's second-to-last layer with the CLS token
dropped (``vision_feature_layer=-2``, strategy ``default``), a linear-GELU-linear projector with biases, one
``<image>`` id per image feature. No subclass, no patch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

from allseeing.model.presets import ModelPreset, get_preset
from allseeing.model.processor import Processor, ProcessorConfig
from allseeing.model.tokenizer import train_tokenizer


def llava_config(preset: ModelPreset, vocab_size: int, image_token_id: int, pad_token_id: int) -> LlavaConfig:
    vision = CLIPVisionConfig(**preset.vision)
    text = LlamaConfig(**preset.text, vocab_size=vocab_size, pad_token_id=pad_token_id, bos_token_id=1, eos_token_id=2)
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_seq_length=preset.image_tokens,
        multimodal_projector_bias=True,
        tie_word_embeddings=False,
    )


def processor_config(preset: ModelPreset) -> ProcessorConfig:
    return ProcessorConfig(
        template=preset.template,
        image_size=preset.vision["image_size"],
        image_tokens=preset.image_tokens,
        max_length=preset.max_length,
        image_aspect=preset.image_aspect,
    )


def new_model(
    preset: str | ModelPreset, corpus: list[str], seed: int = 0
) -> tuple[LlavaForConditionalGeneration, Processor]:
    """A randomly initialised model with a tokenizer trained on ``corpus`` (synthetic-world text)."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    tokenizer = train_tokenizer(corpus, vocab_size=preset.tokenizer_vocab)
    processor = Processor(tokenizer, processor_config(preset))
    torch.manual_seed(seed)
    config = llava_config(preset, preset.vocab_size or len(tokenizer), processor.special.image, processor.pad_id)
    return LlavaForConditionalGeneration(config).eval(), processor


def save(
    model: LlavaForConditionalGeneration,
    processor: Processor,
    folder: str | Path,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> None:
    """Safetensors weights, the HF config, the tokenizer (with a chat template) and ``allseeing.json``.

    ``state_dict`` replaces the model's own weights (a sharded model's gathered whole weights).
    """
    model.save_pretrained(folder, safe_serialization=True, state_dict=state_dict)
    processor.save(folder)


def load(folder: str | Path, dtype: torch.dtype = torch.float32) -> tuple[LlavaForConditionalGeneration, Processor]:
    """A model folder written by :func:`save` or by ``allseeing convert``."""
    processor = Processor.load(folder)
    model = LlavaForConditionalGeneration.from_pretrained(folder, dtype=dtype)
    return model.eval(), processor
