"""Upstream LLaVA-layout ASMv2 checkpoint + CLIP vision folder -> a transformers-native model folder.

Upstream's ``config.json`` says ``model_type "llava"``, which transformers reads as its own, differently shaped
``LlavaConfig`` (UPSTREAM_SPEC §3.5): it is parsed here as plain JSON, field by field. Weights come from
``pytorch_model-*.bin`` shards or ``*.safetensors``; key mapping:

- ``model.embed_tokens``, ``model.layers.*``, ``model.norm`` -> the language model; ``lm_head`` -> ``lm_head``
- ``model.mm_projector.0`` / ``.2`` -> ``multi_modal_projector.linear_1`` / ``linear_2``
- the vision tower comes from the CLIP folder; ``model.vision_tower.*`` keys in the checkpoint are ignored, as
  upstream's loader ignores them (the tower was frozen in every stage, so both sources hold the same weights)

The tokenizer gains ``<image>``; the embeddings and the output layer grow to a multiple of 64 (32000 -> 32064 for
LLaMA, as the transformers conversion does), new rows set to the mean of the existing ones. The output folder
holds safetensors, the HF config, the tokenizer with a vicuna_v1 chat template, a padding ``LlavaProcessor`` and
``allseeing.json``: ``AutoModelForImageTextToText`` and our tools both load it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, CLIPVisionModel, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

from allseeing.model import build
from allseeing.model.processor import Processor, ProcessorConfig
from allseeing.rec import tags

VOCAB_MULTIPLE = 64
_PROJECTOR = {"model.mm_projector.0.": "linear_1.", "model.mm_projector.2.": "linear_2."}
_IGNORED_PREFIX = "model.vision_tower."


class ConversionError(ValueError):
    """A checkpoint that does not fit: unsupported options, missing or unexpected keys, wrong shapes."""


def read_upstream_config(folder: Path) -> dict:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConversionError(f"cannot read {path}: {error}") from None
    problems = []
    if config.get("mm_projector_type", "linear") != "mlp2x_gelu":
        problems.append(
            f"mm_projector_type {config.get('mm_projector_type')!r} (only 'mlp2x_gelu' maps to the stock model)"
        )
    if config.get("mm_use_im_start_end"):
        problems.append("mm_use_im_start_end is true (image start/end tokens are not supported)")
    if config.get("mm_use_im_patch_token"):
        problems.append("mm_use_im_patch_token is true (<im_patch> tokens are not supported)")
    missing = [
        k
        for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
        if k not in config
    ]
    if missing:
        problems.append(f"missing fields {missing}")
    if problems:
        raise ConversionError(f"{path}: " + "; ".join(problems))
    return config


def read_upstream_weights(folder: Path) -> dict[str, torch.Tensor]:
    shards = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    if not shards:
        raise ConversionError(f"{folder} holds no *.safetensors or pytorch_model*.bin")
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        part = (
            load_file(shard)
            if shard.suffix == ".safetensors"
            else torch.load(shard, map_location="cpu", weights_only=True)
        )
        state.update(part)
    return state


def _text_config(upstream: dict, vocab_size: int, pad_token_id: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=upstream["hidden_size"],
        intermediate_size=upstream["intermediate_size"],
        num_hidden_layers=upstream["num_hidden_layers"],
        num_attention_heads=upstream["num_attention_heads"],
        num_key_value_heads=upstream.get("num_key_value_heads", upstream["num_attention_heads"]),
        max_position_embeddings=upstream.get("max_position_embeddings", 4096),
        rms_norm_eps=upstream.get("rms_norm_eps", 1e-5),
        rope_theta=upstream.get("rope_theta", 10000.0),
        hidden_act=upstream.get("hidden_act", "silu"),
        pad_token_id=pad_token_id,
        bos_token_id=upstream.get("bos_token_id", 1),
        eos_token_id=upstream.get("eos_token_id", 2),
        tie_word_embeddings=False,
    )


def _grow(matrix: torch.Tensor, rows: int) -> torch.Tensor:
    """``matrix`` with extra rows equal to the mean of the existing ones."""
    extra = rows - matrix.shape[0]
    return torch.cat([matrix, matrix.mean(dim=0, keepdim=True).expand(extra, -1)]) if extra > 0 else matrix


def convert(llava_dir: str | Path, vision_dir: str | Path, out_dir: str | Path) -> Path:
    """Convert and write ``out_dir``; returns it. Raises :class:`ConversionError` listing every problem."""
    llava_dir, out_dir = Path(llava_dir), Path(out_dir)
    upstream = read_upstream_config(llava_dir)
    weights = read_upstream_weights(llava_dir)
    vision = CLIPVisionModel.from_pretrained(vision_dir)
    tokenizer = AutoTokenizer.from_pretrained(llava_dir)
    if tags.IMAGE not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [tags.IMAGE]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token  # upstream pads with unk (id 0)
    image_id = tokenizer.convert_tokens_to_ids(tags.IMAGE)
    vocab_size = math.ceil(len(tokenizer) / VOCAB_MULTIPLE) * VOCAB_MULTIPLE

    vision_config = vision.config
    image_tokens = build.patch_grid(vision_config) ** 2
    select = upstream.get("mm_vision_select_feature", "patch")
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=_text_config(upstream, vocab_size, tokenizer.pad_token_id),
        image_token_index=image_id,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default" if select == "patch" else "full",
        vision_feature_layer=upstream.get("mm_vision_select_layer", -2),
        image_seq_length=image_tokens,
        multimodal_projector_bias=True,
        tie_word_embeddings=False,
    )
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    state = _map_weights(model, weights, vision.state_dict(), vocab_size)
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()

    processor = Processor(
        tokenizer,
        ProcessorConfig(
            template="vicuna_v1",
            image_size=vision_config.image_size,
            image_tokens=image_tokens,
            max_length=upstream.get("tokenizer_model_max_length", 2048),
            image_aspect="pad" if upstream.get("image_aspect_ratio") == "pad" else "square",
        ),
    )
    build.save(model, processor, out_dir)
    return out_dir


def _map_weights(
    model: LlavaForConditionalGeneration,
    upstream: dict[str, torch.Tensor],
    vision: dict[str, torch.Tensor],
    vocab_size: int,
) -> dict[str, torch.Tensor]:
    """The model's state dict filled from upstream and CLIP tensors; every mismatch is collected and raised."""
    names = {id(module): name for name, module in model.named_modules()}
    language = names[id(model.model.language_model)] + "."
    tower = names[id(model.model.vision_tower)] + "."
    projector = names[id(model.model.multi_modal_projector)] + "."
    lm_head = names[id(model.lm_head)] + "."

    state: dict[str, torch.Tensor] = {}
    unexpected = []
    for key, tensor in upstream.items():
        if key.startswith(_IGNORED_PREFIX):
            continue
        if key.startswith(tuple(_PROJECTOR)):
            prefix = next(p for p in _PROJECTOR if key.startswith(p))
            state[projector + _PROJECTOR[prefix] + key[len(prefix) :]] = tensor
        elif key.startswith("model."):
            state[language + key[len("model.") :]] = tensor
        elif key.startswith("lm_head."):
            state[lm_head + key[len("lm_head.") :]] = tensor
        else:
            unexpected.append(key)
    for key, tensor in vision.items():
        state[tower + key] = tensor
    for key in (language + "embed_tokens.weight", lm_head + "weight"):
        if key in state:
            state[key] = _grow(state[key], vocab_size)

    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected += sorted(set(state) - set(expected))
    shapes = [
        f"{key}: checkpoint {tuple(state[key].shape)}, model {tuple(expected[key].shape)}"
        for key in sorted(set(state) & set(expected))
        if state[key].shape != expected[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if shapes:
        problems.append(f"wrong shapes: {'; '.join(shapes)}")
    if problems:
        raise ConversionError(" | ".join(problems))
    return state
