"""Upstream LLaVA-layout ASMv2 checkpoint + CLIP vision folder -> a transformers-native model folder.

Upstream's ``config.json`` says ``model_type "llava"``, which transformers reads as its own, differently shaped
``LlavaConfig``: it is parsed here as plain JSON, field by field. Weights come from ``pytorch_model-*.bin`` shards
or ``*.safetensors`` in fp16, bf16 or fp32, and are written in the checkpoint's own precision; key mapping:

- ``model.embed_tokens``, ``model.layers.*``, ``model.norm`` -> the language model; ``lm_head`` -> ``lm_head``
- ``model.mm_projector.0`` / ``.2`` -> ``multi_modal_projector.linear_1`` / ``linear_2``
- the vision tower comes from the CLIP folder; ``model.vision_tower.*`` keys in the checkpoint are ignored, as
  upstream's loader ignores them (the tower was frozen in every stage, so both sources hold the same weights)
- ``model.layers.*.self_attn.rotary_emb.inv_freq`` (saved by transformers 4.31, upstream's pin) is checked and
  dropped: the stock model computes it

The tokenizer is read as upstream read it: a SentencePiece ``tokenizer.model`` with the ``legacy`` flag of its
``tokenizer_config.json`` (a missing flag is true, transformers 4.31's default; see docs/model.md).

The tokenizer gains ``<image>``; the embeddings and the output layer grow to a multiple of 64 (32000 -> 32064 for
LLaMA, as the transformers conversion does), new rows set to the mean of the existing ones. The output folder
holds safetensors, the HF config, the tokenizer with a vicuna_v1 chat template, a padding ``LlavaProcessor`` and
``allseeing.json``: ``AutoModelForImageTextToText`` and our tools both load it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import (
    AutoTokenizer,
    CLIPVisionModel,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    PreTrainedTokenizerBase,
)

from allseeing.model import build
from allseeing.model.processor import Processor, ProcessorConfig
from allseeing.rec import tags

VOCAB_MULTIPLE = 64
_PROJECTOR = {"model.mm_projector.0.": "linear_1.", "model.mm_projector.2.": "linear_2."}
_IGNORED_PREFIX = "model.vision_tower."
_ROTARY_BUFFER = re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq")
# Upstream's train.py and model builder switch the tokenizer to legacy mode when it holds more entries than LLaMA's
# 32000 (added tokens); ASMv2's tokenizer has exactly 32000, so its own flag stands.
_LEGACY_FORCED_ABOVE = 32000
# What reading a SentencePiece tokenizer.model needs (transformers converts it to its own tokenizer).
_SENTENCEPIECE_PACKAGES = {"sentencepiece": "sentencepiece", "google.protobuf": "protobuf"}


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
    if config.get("rope_scaling") is not None:
        problems.append(f"rope_scaling {config['rope_scaling']!r} (only plain rotary positions are supported)")
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


def drop_rotary_buffers(weights: dict[str, torch.Tensor], upstream: dict) -> list[str]:
    """Remove the per-layer ``rotary_emb.inv_freq`` buffers from ``weights``; returns the problems found.

    transformers 4.31 (upstream's pin) registered ``inv_freq`` as a persistent buffer, so every checkpoint saved by
    upstream's stack holds one per layer; it is no weight but ``1 / theta ** (2i / head_dim)``, which the stock
    model computes itself (it has no such key). Each buffer is checked against that formula (to the precision of
    the checkpoint's dtype) before it is dropped, so a checkpoint trained with other rotary settings is refused
    instead of silently run with ours.
    """
    head_dim = upstream["hidden_size"] // upstream["num_attention_heads"]
    theta = upstream.get("rope_theta", 10000.0)
    expected = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    problems = []
    for key in [k for k in weights if _ROTARY_BUFFER.fullmatch(k)]:
        buffer = weights.pop(key)
        tolerance = 2 * torch.finfo(buffer.dtype).eps  # it was rounded to the checkpoint's dtype when saved
        if buffer.shape != expected.shape or not torch.allclose(buffer.double(), expected, rtol=tolerance, atol=0):
            problems.append(f"{key} differs from 1 / {theta} ** (2i / {head_dim}) (other rotary settings?)")
    return problems


def weights_dtype(weights: dict[str, torch.Tensor]) -> torch.dtype:
    """The checkpoint's precision: that of its token embeddings (fp16 for the released ASMv2)."""
    embeddings = weights.get("model.embed_tokens.weight")
    return embeddings.dtype if embeddings is not None else torch.float32


def read_upstream_tokenizer(folder: Path) -> PreTrainedTokenizerBase:
    """The tokenizer as upstream's code reads it, with the ``legacy`` flag it ran with made explicit.

    transformers 4.31 takes a missing ``legacy`` as true and transformers 5 as false; the two tokenise text after
    ``</s>`` differently (``▁US`` or ``US`` for vicuna_v1's ``USER``), so the flag is passed, not left to the
    default. A converted folder records it in its ``tokenizer_config.json``.
    """
    if (folder / "tokenizer.model").is_file():
        for module, package in _SENTENCEPIECE_PACKAGES.items():
            if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
                raise ConversionError(
                    f"{folder / 'tokenizer.model'} is a SentencePiece model; reading it needs the '{package}' "
                    "package: pip install 'allseeing[model]'"
                )
    path = folder / "tokenizer_config.json"
    try:
        settings = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError as error:
        raise ConversionError(f"cannot read {path}: {error}") from None
    legacy = settings.get("legacy")
    tokenizer = AutoTokenizer.from_pretrained(folder, legacy=True if legacy is None else legacy)
    if len(tokenizer) > _LEGACY_FORCED_ABOVE and hasattr(tokenizer, "legacy") and not tokenizer.legacy:
        tokenizer = AutoTokenizer.from_pretrained(folder, legacy=True)
    return tokenizer


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
    """``matrix`` with extra rows equal to the mean of the existing ones (averaged in fp32, stored in its dtype)."""
    extra = rows - matrix.shape[0]
    if extra <= 0:
        return matrix
    mean = matrix.float().mean(dim=0, keepdim=True).to(matrix.dtype)
    return torch.cat([matrix, mean.expand(extra, -1)])


def convert(llava_dir: str | Path, vision_dir: str | Path, out_dir: str | Path) -> Path:
    """Convert and write ``out_dir``; returns it. Raises :class:`ConversionError` listing every problem."""
    llava_dir, out_dir = Path(llava_dir), Path(out_dir)
    upstream = read_upstream_config(llava_dir)
    weights = read_upstream_weights(llava_dir)
    rotary_problems = drop_rotary_buffers(weights, upstream)
    dtype = weights_dtype(weights)
    weights = {key: tensor.to(dtype) for key, tensor in weights.items()}  # one precision, the embeddings'
    vision = CLIPVisionModel.from_pretrained(vision_dir)
    tokenizer = read_upstream_tokenizer(llava_dir)
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
    state = _map_weights(model, weights, vision.state_dict(), vocab_size, rotary_problems)
    # The CLIP tower keeps its folder's precision (upstream, too, loaded it from there).
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
            scored_vocab=upstream["vocab_size"],
        ),
    )
    # Generation never picks a row upstream's model did not have (transformers applies this to every generate call,
    # ours and transformers serve's; ranking masks the same rows, see infer/rank.py).
    model.generation_config.suppress_tokens = list(range(upstream["vocab_size"], vocab_size))
    build.save(model, processor, out_dir)
    _record_precision(out_dir / "config.json", dtype)
    return out_dir


def _record_precision(path: Path, dtype: torch.dtype) -> None:
    """Make ``config.json``'s ``dtype`` the checkpoint's precision (what ``dtype="auto"`` loads in). transformers
    writes the first parameter's, which is the vision tower's, kept in its CLIP folder's precision."""
    config = json.loads(path.read_text(encoding="utf-8"))
    config["dtype"] = str(dtype).removeprefix("torch.")
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _map_weights(
    model: LlavaForConditionalGeneration,
    upstream: dict[str, torch.Tensor],
    vision: dict[str, torch.Tensor],
    vocab_size: int,
    problems: list[str],
) -> dict[str, torch.Tensor]:
    """The model's state dict filled from upstream and CLIP tensors; every mismatch (and every problem already
    found in ``problems``) is collected and raised together."""
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
    problems = list(problems)
    if missing:
        problems.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected)}")
    if shapes:
        problems.append(f"wrong shapes: {'; '.join(shapes)}")
    if problems:
        raise ConversionError(" | ".join(problems))
    return state
