"""Model presets: the exact ASMv2-13B shapes, and small shapes that train on a laptop.

``asmv2-13b`` is upstream's model (its released config and upstream's ``llava/model`` code): CLIP ViT-L/14-336 (24
layers, width 1024, 576 patch features from the second-to-last layer, CLS dropped), a 1024 -> 5120 -> 5120 GELU
projector, and Vicuna-13B (LLaMA-2-13B: 40 layers, width 5120, 40 heads, FFN 13824, RMSNorm 1e-5, RoPE theta 10000, 4096
positions, trained at 2048 tokens). Its vocabulary is LLaMA's 32000 plus ``<image>`` and ``<pad>``, padded to 32064 as
the transformers conversion does.

``small`` follows measurements made before this project on a model of the same shape (docs/model.md): a ~5M-parameter
LLaVA (vision 3 x 192 at 128 px with 16 px patches = 64 image tokens, LLaMA 4 x 256) learns grounding from scratch at
about 50 samples/s on 2 CPU cores and 2,800 on an H100; patch 8 (256 tokens) halved the speed. Trained from scratch, its
vision tower starts with sine-cosine position embeddings (``vision_positions``), so that where a patch lies can be read
from its feature from the first step, and its features come from the tower's last layer (docs/model.md). ``tiny`` is for
tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelPreset:
    name: str
    vision: dict = field(default_factory=dict)  # CLIPVisionConfig fields
    text: dict = field(default_factory=dict)  # LlamaConfig fields (vocab_size comes from the tokenizer)
    template: str = "vicuna_v1"
    image_aspect: str = "pad"
    max_length: int = 2048
    vocab_size: int | None = None  # fixed vocabulary (upstream); None: the tokenizer's
    tokenizer_vocab: int = 512  # BPE size for a tokenizer trained on synthetic text
    # How a randomly initialised vision tower's position embeddings start: "random" (CLIP's N(0, 0.02)) or
    # "sincos" (2-D sine-cosine, still trained). Only matters for models trained from scratch.
    vision_positions: str = "random"
    # The tower layer whose patch features the projector reads. Upstream's -2 (second-to-last) suits a pretrained
    # CLIP; a tower trained from scratch reads its last layer (-1), else that layer is never trained.
    vision_feature_layer: int = -2

    @property
    def image_tokens(self) -> int:
        return (self.vision["image_size"] // self.vision["patch_size"]) ** 2


PRESETS: dict[str, ModelPreset] = {
    preset.name: preset
    for preset in (
        ModelPreset(
            "asmv2-13b",
            vision=dict(
                hidden_size=1024,
                intermediate_size=4096,
                num_hidden_layers=24,
                num_attention_heads=16,
                image_size=336,
                patch_size=14,
                projection_dim=768,
                hidden_act="quick_gelu",
                layer_norm_eps=1e-5,
            ),
            text=dict(
                hidden_size=5120,
                intermediate_size=13824,
                num_hidden_layers=40,
                num_attention_heads=40,
                num_key_value_heads=40,
                max_position_embeddings=4096,
                rms_norm_eps=1e-5,
                rope_theta=10000.0,
                hidden_act="silu",
                tie_word_embeddings=False,
            ),
            vocab_size=32064,
        ),
        ModelPreset(
            "small",
            vision=dict(
                hidden_size=192,
                intermediate_size=768,
                num_hidden_layers=3,
                num_attention_heads=3,
                image_size=128,
                patch_size=16,
                projection_dim=192,
                hidden_act="quick_gelu",
            ),
            text=dict(
                hidden_size=256,
                intermediate_size=688,
                num_hidden_layers=4,
                num_attention_heads=4,
                num_key_value_heads=4,
                max_position_embeddings=2048,
                rms_norm_eps=1e-5,
                tie_word_embeddings=False,
            ),
            max_length=1280,  # a synthetic scene graph of 8 relations is about 1,150 tokens
            vision_positions="sincos",
            vision_feature_layer=-1,
        ),
        ModelPreset(
            "tiny",
            vision=dict(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=32,
                patch_size=8,
                projection_dim=32,
                hidden_act="quick_gelu",
            ),
            text=dict(
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=2,
                num_key_value_heads=2,
                max_position_embeddings=1024,
                rms_norm_eps=1e-5,
                tie_word_embeddings=False,
            ),
            max_length=1024,
            vision_positions="sincos",
            vision_feature_layer=-1,
        ),
    )
}


def get_preset(name: str) -> ModelPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}") from None
