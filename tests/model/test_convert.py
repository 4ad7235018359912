"""Conversion from the upstream layout: a tiny checkpoint written as upstream would, converted, loaded with
transformers, and its logits compared with a forward pass computed by hand from the raw upstream tensors."""

import json

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForImageTextToText,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from allseeing.cli import main
from allseeing.model.build import load
from allseeing.model.convert import ConversionError, convert

VOCAB = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(97)]  # 100 entries, no <image>
TEXT = dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, vocab_size=100)
VISION = CLIPVisionConfig(
    hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=32, patch_size=8
)


def upstream_config(**changes):
    config = {
        "architectures": ["LlavaLlamaForCausalLM"],
        "model_type": "llava",
        **TEXT,
        "num_key_value_heads": 4,
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "mm_vision_tower": "openai/clip-vit-large-patch14-336",
        "mm_hidden_size": 32,
        "mm_projector_type": "mlp2x_gelu",
        "mm_vision_select_layer": -2,
        "mm_vision_select_feature": "patch",
        "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False,
        "image_aspect_ratio": "pad",
        "tokenizer_model_max_length": 2048,
        "pad_token_id": 0,
    }
    config.update(changes)
    return config


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """An upstream-layout folder (2 .bin shards, config, tokenizer) and a CLIP folder, plus the raw tensors."""
    root = tmp_path_factory.mktemp("upstream")
    torch.manual_seed(0)
    llm = LlamaForCausalLM(
        LlamaConfig(
            **TEXT, num_key_value_heads=4, max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False
        )
    )
    state = {key: value.clone() for key, value in llm.state_dict().items()}
    state |= {
        "model.mm_projector.0.weight": torch.randn(48, 32) * 0.2,
        "model.mm_projector.0.bias": torch.randn(48) * 0.2,
        "model.mm_projector.2.weight": torch.randn(48, 48) * 0.2,
        "model.mm_projector.2.bias": torch.randn(48) * 0.2,
        "model.vision_tower.vision_tower.vision_model.post_layernorm.weight": torch.full((32,), 7.0),  # ignored
    }
    checkpoint = root / "asmv2"
    checkpoint.mkdir()
    keys = sorted(state)
    for index, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2 :]), start=1):
        torch.save({k: state[k] for k in part}, checkpoint / f"pytorch_model-0000{index}-of-00002.bin")
    (checkpoint / "config.json").write_text(json.dumps(upstream_config()))
    tokenizer = Tokenizer(models.WordLevel({word: i for i, word in enumerate(VOCAB)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    ).save_pretrained(checkpoint)
    clip = root / "clip"
    CLIPVisionModel(VISION).save_pretrained(clip)
    return checkpoint, clip, state, llm


def reference_logits(state, llm, clip_dir, ids, image_positions, pixel_values):
    """ASMv2's forward by hand: CLIP hidden state -2 without CLS, the projector, spliced at the image slots."""
    clip = CLIPVisionModel.from_pretrained(clip_dir).eval()
    with torch.no_grad():
        features = clip(pixel_values, output_hidden_states=True).hidden_states[-2][:, 1:]
        hidden = torch.nn.functional.gelu(
            features @ state["model.mm_projector.0.weight"].T + state["model.mm_projector.0.bias"]
        )
        projected = hidden @ state["model.mm_projector.2.weight"].T + state["model.mm_projector.2.bias"]
        embeddings = state["model.embed_tokens.weight"][torch.tensor([i if i < 100 else 0 for i in ids])].clone()
        embeddings[image_positions] = projected[0]
        return llm.eval()(inputs_embeds=embeddings[None]).logits[0]


def test_converted_logits_equal_the_hand_computed_forward(upstream, tmp_path):
    checkpoint, clip, state, llm = upstream
    out = convert(checkpoint, clip, tmp_path / "hf")
    model = AutoModelForImageTextToText.from_pretrained(out).eval()
    config = model.config
    assert config.text_config.vocab_size == 128  # 100 + <image> -> padded to a multiple of 64
    assert (config.vision_feature_layer, config.image_seq_length, config.image_token_index) == (-2, 16, 100)
    ids = [1, 5, 6, *[100] * 16, 7, 8, 9]
    pixel_values = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), pixel_values=pixel_values).logits[0]
    expected = reference_logits(state, llm, clip, ids, slice(3, 19), pixel_values)
    torch.testing.assert_close(logits[:, :100], expected, rtol=1e-4, atol=1e-5)
    ours, processor = load(out)
    assert (
        processor.special.image == 100
        and processor.config.template == "vicuna_v1"
        and processor.config.image_tokens == 16
    )
    assert processor.pad_id == 0  # upstream pads with unk
    new_rows = ours.model.language_model.embed_tokens.weight[100:]
    torch.testing.assert_close(new_rows, state["model.embed_tokens.weight"].mean(0).expand(28, -1))


def test_the_cli_converts_too(upstream, tmp_path, capsys):
    checkpoint, clip, _, _ = upstream
    assert main(["convert", "--llava", str(checkpoint), "--vision", str(clip), "--out", str(tmp_path / "cli")]) == 0
    assert json.loads(capsys.readouterr().out) == {"out": str(tmp_path / "cli")}


def test_missing_keys_and_wrong_shapes_are_listed(upstream, tmp_path):
    checkpoint, clip, state, _ = upstream
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((checkpoint / name).read_bytes())
    damaged = {k: v for k, v in state.items() if k != "model.layers.1.mlp.up_proj.weight"}
    damaged["model.mm_projector.2.bias"] = torch.zeros(47)
    damaged["model.extra.weight"] = torch.zeros(1)
    torch.save(damaged, broken / "pytorch_model.bin")
    with pytest.raises(ConversionError) as info:
        convert(broken, clip, tmp_path / "out")
    message = str(info.value)
    assert "missing keys: model.language_model.layers.1.mlp.up_proj.weight" in message
    assert "unexpected keys: model.language_model.extra.weight" in message
    assert "wrong shapes: model.multi_modal_projector.linear_2.bias: checkpoint (47,), model (48,)" in message


def test_unsupported_upstream_options_are_refused(upstream, tmp_path):
    _, clip, _, _ = upstream
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps(upstream_config(mm_projector_type="linear", mm_use_im_start_end=True)))
    with pytest.raises(ConversionError, match="mm_projector_type 'linear'.*mm_use_im_start_end is true"):
        convert(odd, clip, tmp_path / "out")
