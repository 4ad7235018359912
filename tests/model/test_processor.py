"""The processor of a converted upstream checkpoint against upstream's own facts: prompt strings, ids (one
tokenisation rule, both ``legacy`` values and none) and pixel values, through our processor and through the stock
``AutoProcessor`` path that transformers serve, vLLM and SGLang use."""

import pytest
import torch
from transformers import AutoProcessor

from allseeing.data.image import load_image
from allseeing.data.templates import turns_from_llava
from allseeing.model.processor import Processor, spacer_after
from tests import upstream

PROMPTS = {"single": "wide", "chat": "wide", "vcr": "tall"}  # prompt -> the image it asks about


def turns(name: str) -> list:
    question = upstream.question(name)
    if "text" in question:
        return [(f"<image>\n{question['text']}", None)]
    return turns_from_llava(question["conversations"], open_last=True)


def messages(name: str) -> list[dict]:
    """The prompt as chat messages: the image as a part of the first user message, replies as assistant text."""
    path = str(upstream.FIXTURES / "images" / f"{PROMPTS[name]}.png")
    out = []
    for index, (question, reply) in enumerate(turns(name)):
        content = [{"type": "text", "text": question.replace("<image>", "")}]
        out.append({"role": "user", "content": [{"type": "image", "path": path}, *content] if index == 0 else content})
        if reply is not None:
            out.append({"role": "assistant", "content": reply})
    return out


@pytest.mark.parametrize("legacy", upstream.LEGACY)
@pytest.mark.parametrize("name", PROMPTS)
def test_our_processor_gives_upstreams_prompt_and_ids(upstream_converted, legacy, name):
    processor = Processor.load(upstream_converted(legacy))
    expected = upstream.case(legacy, name)
    assert processor.template.render(turns(name)) == expected["prompt"]
    assert processor.prompt_ids(turns(name)) == upstream.expand(expected["input_ids"], processor.special.image)


@pytest.mark.parametrize("image", ["wide", "tall"])
def test_our_processor_gives_upstreams_pixels_for_non_square_images(upstream_converted, image):
    processor = Processor.load(upstream_converted("false"))
    pixels = processor.pixel_values([load_image(upstream.FIXTURES / "images" / f"{image}.png")])[0]
    assert torch.equal(pixels, upstream.tensors()[f"pixels/{image}"])


@pytest.mark.parametrize("legacy", upstream.LEGACY)
@pytest.mark.parametrize("name", PROMPTS)
def test_the_stock_processor_gives_upstreams_ids_and_pixels(upstream_converted, legacy, name):
    """One call, as ``transformers serve`` makes it; and in two steps (render, then the processor without adding
    special tokens: the template writes ``<s>``)."""
    processor = AutoProcessor.from_pretrained(upstream_converted(legacy))
    expected = upstream.expand(
        upstream.case(legacy, name)["input_ids"], processor.tokenizer.convert_tokens_to_ids("<image>")
    )
    pixels = upstream.tensors()[f"pixels/{PROMPTS[name]}"]
    inputs = processor.apply_chat_template(
        messages(name), add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert inputs["input_ids"][0].tolist() == expected
    assert torch.equal(inputs["pixel_values"][0], pixels)

    text = processor.apply_chat_template(messages(name), add_generation_prompt=True)
    image = load_image(upstream.FIXTURES / "images" / f"{PROMPTS[name]}.png")
    inputs = processor(images=image, text=text, add_special_tokens=False, return_tensors="pt")
    assert inputs["input_ids"][0].tolist() == expected


@pytest.mark.parametrize(("legacy", "spacer"), [("false", " "), ("true", ""), ("absent", "")])
def test_the_space_after_special_tokens_is_measured_on_the_tokenizer(upstream_converted, legacy, spacer):
    """``legacy`` false continues after ``<s>``/``<image>`` without ``▁``, so the template writes a space there."""
    tokenizer = Processor.load(upstream_converted(legacy)).tokenizer
    assert spacer_after(tokenizer, "<image>") == spacer_after(tokenizer, tokenizer.bos_token) == spacer
