"""Model folders: save and load round trip, and transformers' Auto classes read them too."""

import json

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from allseeing.model.build import load
from allseeing.model.processor import Processor


def test_load_round_trip(tiny_model_dir, tiny_model):
    model, processor = tiny_model
    again, _ = load(tiny_model_dir)
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    config = json.loads((tiny_model_dir / "allseeing.json").read_text())
    assert config["template"] == "vicuna_v1" and config["image_tokens"] == 16 and config["image_aspect"] == "pad"
    assert processor.special.bos == 1 and processor.special.eos == 2 and processor.pad_id == 0


def test_transformers_auto_classes_load_the_folder(tiny_model_dir, tiny_model):
    _, ours = tiny_model
    hf_processor = AutoProcessor.from_pretrained(tiny_model_dir)
    hf_model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    image = Image.new("RGB", (40, 24), (200, 30, 30))
    messages = [
        {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "What is it?"}]}
    ]
    text = hf_processor.apply_chat_template(messages, add_generation_prompt=True)
    assert text.startswith("<s>") and text.endswith("USER: <image>\nWhat is it? ASSISTANT:")
    inputs = hf_processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert inputs["input_ids"][0].tolist() == ours.prompt_ids([("<image>\nWhat is it?", None)])  # one BOS
    assert torch.equal(inputs["pixel_values"], ours.pixel_values([image]))  # the same square padding
    assert hf_model(**inputs).logits.shape[-1] == hf_model.config.text_config.vocab_size


def test_a_folder_without_our_config_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no allseeing.json"):
        Processor.load(tmp_path)


def test_sine_cosine_positions_by_hand():
    from allseeing.model.build import sincos_positions

    # grid 2, width 4: one frequency (a quarter turn per patch); each axis codes as (sin, cos): 0 -> (0, 1), 1 -> (1, 0)
    expected = torch.tensor([[0, 1, 0, 1], [0, 1, 1, 0], [1, 0, 0, 1], [1, 0, 1, 0]], dtype=torch.float32)
    assert torch.allclose(sincos_positions(2, 4), expected, atol=1e-6)
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_positions(2, 6)


def test_the_vision_positions_of_a_new_model_follow_the_preset():
    from dataclasses import replace

    from allseeing.data.synth.generate import text_corpus
    from allseeing.model.build import new_model, sincos_positions
    from allseeing.model.presets import get_preset

    corpus = list(text_corpus(20, seed=0))
    tiny = get_preset("tiny")
    assert tiny.vision_positions == "sincos" and get_preset("small").vision_positions == "sincos"
    model, _ = new_model(tiny, corpus)
    positions = model.model.vision_tower.embeddings.position_embedding.weight
    assert torch.equal(positions[0], torch.zeros(32))  # the CLS token's, dropped from the features
    assert torch.equal(positions[1:], sincos_positions(4, 32))

    model, _ = new_model(replace(tiny, vision_positions="random"), corpus)  # CLIP's own N(0, 0.02)
    assert 0.01 < model.model.vision_tower.embeddings.position_embedding.weight.std() < 0.03
    with pytest.raises(ValueError, match="unknown vision position initialisation 'grid'"):
        new_model(replace(tiny, vision_positions="grid"), corpus)
