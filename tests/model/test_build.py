"""Model folders: save and load round trip, and transformers' Auto classes read them too."""

import json

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
    text = hf_processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}],
        add_generation_prompt=True,
    )
    assert text.endswith("USER: <image>\nWhat is it? ASSISTANT:")
    inputs = hf_processor(images=image, text=text, return_tensors="pt")
    assert torch.equal(inputs["pixel_values"], ours.pixel_values([image]))  # the same square padding
    assert (inputs["input_ids"] == ours.special.image).sum() == 16
    assert hf_model(**inputs).logits.shape[-1] == hf_model.config.text_config.vocab_size


def test_a_folder_without_our_config_is_refused(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError, match="has no allseeing.json"):
        Processor.load(tmp_path)
