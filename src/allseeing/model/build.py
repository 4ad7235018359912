"""The stock ``LlavaForConditionalGeneration``, configured as ASMv2: built from a preset or loaded from a folder.

The configuration is upstream's: features from the vision tower's second-to-last layer with the CLS token
dropped (``vision_feature_layer=-2``, strategy ``default``; presets trained from scratch read the last layer), a
linear-GELU-linear projector with biases, one ``<image>`` id per image feature. No subclass, no patch.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch
from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

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
        vision_feature_layer=preset.vision_feature_layer,
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


def patch_grid(vision_config: CLIPVisionConfig) -> int:
    """Patches along each side of the vision tower's square input (its image tokens are this squared)."""
    return vision_config.image_size // vision_config.patch_size


def sincos_positions(grid: int, width: int) -> torch.Tensor:
    """``(grid * grid, width)`` 2-D sine-cosine codes, row-major: half the channels code the row, half the column.

    Each half holds sines and cosines of the index at geometric frequencies (one quarter turn per patch at the
    highest), so that a linear readout can find a patch's row and column.
    """
    if width % 4:
        raise ValueError(f"sine-cosine positions need a width divisible by 4, got {width}")
    quarter = width // 4
    frequencies = 100.0 ** (-torch.arange(quarter) / quarter)
    angles = torch.arange(grid, dtype=torch.float32)[:, None] * frequencies[None] * (math.pi / 2)
    axis = torch.cat([angles.sin(), angles.cos()], dim=1)  # (grid, width / 2)
    rows = axis[:, None, :].expand(grid, grid, -1)
    columns = axis[None, :, :].expand(grid, grid, -1)
    return torch.cat([rows, columns], dim=-1).reshape(grid * grid, width)


def init_vision_positions(tower: CLIPVisionModel, mode: str) -> None:
    """Start a vision tower's position embeddings as ``mode`` says (see ``ModelPreset.vision_positions``).

    With CLIP's random N(0, 0.02) start, a patch's place is hardly readable from the tower's output (a linear
    probe of the small preset's image features finds the patch row 25% of the time at initialisation, 18% after
    500,000 training samples); with sine-cosine codes it is 94% at initialisation, which is what grounding needs.
    The CLS position (dropped from the features) starts at zero.
    """
    if mode == "random":
        return
    if mode != "sincos":
        raise ValueError(f"unknown vision position initialisation {mode!r}; known: random, sincos")
    embedding = tower.embeddings.position_embedding.weight
    grid = patch_grid(tower.config)
    with torch.no_grad():
        embedding[0] = 0.0
        embedding[1:] = sincos_positions(grid, embedding.shape[1])


def with_tower_shape(preset: ModelPreset, tower: CLIPVisionConfig) -> ModelPreset:
    """``preset`` with its vision settings read from ``tower`` (a pretrained tower's width, depth and resolution)."""
    return replace(preset, vision={key: getattr(tower, key) for key in preset.vision})


def new_model(
    preset: str | ModelPreset, corpus: list[str], seed: int = 0, vision: str | Path | None = None
) -> tuple[LlavaForConditionalGeneration, Processor]:
    """A randomly initialised model with a tokenizer trained on ``corpus`` (synthetic-world text).

    ``vision``: a CLIP vision folder whose weights (and shape) the model's tower takes, as upstream's models start
    from a pretrained CLIP; the rest stays random.
    """
    preset = get_preset(preset) if isinstance(preset, str) else preset
    tower = CLIPVisionModel.from_pretrained(vision) if vision is not None else None
    if tower is not None:
        preset = with_tower_shape(preset, tower.config)
    tokenizer = train_tokenizer(corpus, vocab_size=preset.tokenizer_vocab)
    processor = Processor(tokenizer, processor_config(preset))
    torch.manual_seed(seed)
    config = llava_config(preset, preset.vocab_size or len(tokenizer), processor.special.image, processor.pad_id)
    model = LlavaForConditionalGeneration(config).eval()
    if tower is None:
        init_vision_positions(model.model.vision_tower, preset.vision_positions)
    else:
        model.model.vision_tower.load_state_dict(tower.state_dict())
    return model, processor


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
