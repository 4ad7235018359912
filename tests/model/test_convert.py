"""Conversion from the upstream layout: a tiny checkpoint written as upstream would, converted, loaded with
transformers, and its logits compared with a forward pass computed by hand from the raw upstream tensors."""

import json
import sys

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForImageTextToText,
    AutoTokenizer,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from allseeing.cli import main
from allseeing.model.build import load
from allseeing.model.convert import ConversionError, convert
from tests import upstream as tests_upstream

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


def assert_matches_the_hand_computed_forward(model, state, llm, clip_dir):
    """The converted model's logits on a sequence with an image equal :func:`reference_logits`'."""
    ids = [1, 5, 6, *[100] * 16, 7, 8, 9]
    pixel_values = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), pixel_values=pixel_values).logits[0]
    expected = reference_logits(state, llm, clip_dir, ids, slice(3, 19), pixel_values)
    torch.testing.assert_close(logits[:, :100], expected, rtol=1e-4, atol=1e-5)


def test_converted_logits_equal_the_hand_computed_forward(upstream, tmp_path):
    checkpoint, clip, state, llm = upstream
    out = convert(checkpoint, clip, tmp_path / "hf")
    model = AutoModelForImageTextToText.from_pretrained(out).eval()
    config = model.config
    assert config.text_config.vocab_size == 128  # 100 + <image> -> padded to a multiple of 64
    assert (config.vision_feature_layer, config.image_seq_length, config.image_token_index) == (-2, 16, 100)
    assert_matches_the_hand_computed_forward(model, state, llm, clip)
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


def write_variant(upstream, folder, dtype, layout, **config_changes):
    """The synthetic checkpoint re-saved in ``dtype`` as ``layout`` (bin shards or safetensors), with a
    transformers 4.31-style ``rotary_emb.inv_freq`` buffer per layer."""
    from safetensors.torch import save_file

    checkpoint, _, state, _ = upstream
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((checkpoint / name).read_bytes())
    (folder / "config.json").write_text(json.dumps(upstream_config(**config_changes)))
    inv_freq = 1.0 / 10000.0 ** (torch.arange(0, 12, 2).float() / 12)  # head size 48 / 4
    saved = {key: value.to(dtype) for key, value in state.items()}
    saved |= {f"model.layers.{i}.self_attn.rotary_emb.inv_freq": inv_freq.to(dtype).clone() for i in range(2)}
    keys = sorted(saved)
    for index, part in enumerate((keys[::2], keys[1::2]), start=1):
        shard = {k: saved[k].contiguous() for k in part}
        if layout == "safetensors":
            save_file(shard, folder / f"model-0000{index}-of-00002.safetensors")
        else:
            torch.save(shard, folder / f"pytorch_model-0000{index}-of-00002.bin")
    return folder


@pytest.mark.parametrize("layout", ["bin", "safetensors"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_every_precision_and_layout_converts_in_its_own_precision(upstream, tmp_path, dtype, layout):
    _, clip, state, llm = upstream
    source = write_variant(upstream, tmp_path / "source", dtype, layout)
    out = convert(source, clip, tmp_path / "hf")
    assert json.loads((out / "config.json").read_text())["dtype"] == str(dtype).removeprefix("torch.")
    model = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32).eval()
    rounded = {key: value.to(dtype).float() for key, value in state.items()}
    reference = LlamaForCausalLM(llm.config)
    reference.load_state_dict({key: rounded[key] for key in llm.state_dict()})
    assert_matches_the_hand_computed_forward(model, rounded, reference, clip)


def test_rotary_buffers_of_other_settings_are_refused(upstream, tmp_path):
    _, clip, _, _ = upstream
    source = write_variant(upstream, tmp_path / "source", torch.float16, "bin", rope_theta=500000.0)
    with pytest.raises(ConversionError, match=r"rotary_emb\.inv_freq differs from 1 / 500000\.0"):
        convert(source, clip, tmp_path / "out")


def test_rope_scaling_is_refused(upstream, tmp_path):
    _, clip, _, _ = upstream
    source = write_variant(upstream, tmp_path / "source", torch.float16, "bin")
    (source / "config.json").write_text(json.dumps(upstream_config(rope_scaling={"type": "linear", "factor": 2.0})))
    with pytest.raises(ConversionError, match="rope_scaling"):
        convert(source, clip, tmp_path / "out")


def test_the_upstream_checkpoint_as_upstream_saved_it_gives_upstreams_logits(upstream_converted):
    """fp16 .bin shards with inv_freq buffers and the vision tower's keys, written by transformers 4.31: with
    upstream's own ids and pixels, the converted model's next-token logits are upstream's."""
    out = upstream_converted("false")
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"
    vocab = tests_upstream.facts()["vocab_size"]
    # <image> and the padding to 448 rows are never generated (and never scored: infer/rank.py)
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["suppress_tokens"] == list(range(vocab, 448))
    assert json.loads((out / "allseeing.json").read_text())["scored_vocab"] == vocab
    model = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32).eval()
    for name, image in (("single", "wide"), ("chat", "wide"), ("vcr", "tall")):
        ids = tests_upstream.expand(tests_upstream.case("false", name)["input_ids"], model.config.image_token_index)
        pixels = tests_upstream.tensors()[f"pixels/{image}"][None]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), pixel_values=pixels).logits[0, -1]
        torch.testing.assert_close(logits[:vocab], tests_upstream.tensors()[f"logits/false/{name}"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("legacy", tests_upstream.LEGACY)
def test_sentencepiece_tokenizers_keep_the_legacy_flag_upstream_ran_with(upstream_converted, legacy):
    """Text after ``</s>`` is where the flag shows (``▁US`` or ``US``); a missing flag is 4.31's default, true."""
    tokenizer = AutoTokenizer.from_pretrained(upstream_converted(legacy))
    expected = tests_upstream.case(legacy, "chat")
    chunks = expected["prompt"].split("<image>")
    ids = [tokenizer.bos_token_id]
    for index, chunk in enumerate(chunks):
        ids += [tests_upstream.UPSTREAM_IMAGE_ID] * (index > 0) + tokenizer(chunk, add_special_tokens=False)[
            "input_ids"
        ]
    assert ids == expected["input_ids"]
    settings = json.loads((upstream_converted(legacy) / "tokenizer_config.json").read_text())
    assert settings["legacy"] is (legacy != "false")


def test_a_missing_sentencepiece_package_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    source = tests_upstream.checkpoint(tmp_path / "checkpoint", "false")
    monkeypatch.setitem(sys.modules, "sentencepiece", None)  # as if it were not installed
    argv = ["convert", "--llava", str(source), "--vision", str(tests_upstream.FIXTURES / "clip"), "--out", "x"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"allseeing convert: error: {source / 'tokenizer.model'} is a SentencePiece model; reading it needs the "
        "'sentencepiece' package: pip install 'allseeing[model]'"
    )
