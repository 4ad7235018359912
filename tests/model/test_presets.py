"""Presets: ASMv2-13B's exact shapes (checked on the meta device, no memory), the small and tiny models."""

import torch
from transformers import LlavaForConditionalGeneration

from allseeing.model.build import llava_config
from allseeing.model.presets import PRESETS, get_preset


def meta_model(name: str, vocab: int):
    preset = get_preset(name)
    with torch.device("meta"):
        return preset, LlavaForConditionalGeneration(llava_config(preset, preset.vocab_size or vocab, 32000, 0))


def test_asmv2_13b_has_the_upstream_shapes():
    preset, model = meta_model("asmv2-13b", 0)
    config = model.config
    assert (
        config.text_config.hidden_size,
        config.text_config.num_hidden_layers,
        config.text_config.num_attention_heads,
    ) == (5120, 40, 40)
    assert config.text_config.intermediate_size == 13824 and config.text_config.vocab_size == 32064
    assert config.text_config.max_position_embeddings == 4096 and config.text_config.rms_norm_eps == 1e-5
    assert (
        config.vision_config.hidden_size,
        config.vision_config.num_hidden_layers,
        config.vision_config.image_size,
        config.vision_config.patch_size,
    ) == (1024, 24, 336, 14)
    assert (config.vision_feature_layer, config.vision_feature_select_strategy, config.projector_hidden_act) == (
        -2,
        "default",
        "gelu",
    )
    assert preset.image_tokens == config.image_seq_length == 576
    assert (preset.template, preset.image_aspect, preset.max_length) == ("vicuna_v1", "pad", 2048)
    projector = model.model.multi_modal_projector
    assert tuple(projector.linear_1.weight.shape) == (5120, 1024) and tuple(projector.linear_2.weight.shape) == (
        5120,
        5120,
    )
    projector_params = sum(p.numel() for p in projector.parameters())
    assert projector_params == 5_242_880 + 5_120 + 26_214_400 + 5_120  # 31.47M (docs/upstream.md, "Model sizes")
    llm = sum(p.numel() for p in model.model.language_model.parameters()) + model.lm_head.weight.numel()
    # LLaMA-2-13B + the 64 rows the HF conversion adds to the embeddings and lm_head (docs/upstream.md, "Model sizes")
    assert llm == 13_015_864_320 + 2 * 64 * 5120


def test_small_is_about_five_million_parameters():
    preset, model = meta_model("small", 512)
    assert preset.image_tokens == 64
    assert 4_500_000 < sum(p.numel() for p in model.parameters()) < 5_500_000


def test_every_preset_builds():
    for name in PRESETS:
        _, model = meta_model(name, 300)
        assert model.config.image_seq_length == get_preset(name).image_tokens


def test_every_layer_of_a_small_models_vision_tower_learns(tiny_model):
    """Presets trained from scratch read the tower's last layer: with upstream's -2 that layer got no gradient."""
    model, processor = tiny_model
    assert get_preset("small").vision_feature_layer == get_preset("tiny").vision_feature_layer == -1
    encoded = processor.encode([("<image>\nWhat is it?", "a red circle")])
    ids = torch.tensor([encoded.input_ids])
    pixels = torch.randn(1, 3, 32, 32)
    model.zero_grad()
    model(input_ids=ids, pixel_values=pixels, labels=torch.tensor([encoded.labels])).loss.backward()
    tower = model.model.vision_tower
    # post_layernorm only makes CLIP's pooled CLS output, which LLaVA does not read
    silent = [
        n for n, p in tower.named_parameters() if (p.grad is None or not p.grad.any()) and "post_layernorm" not in n
    ]
    assert silent == []
    model.zero_grad()
