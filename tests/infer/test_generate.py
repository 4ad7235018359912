"""Batched generation: the same text as one at a time, for prompts of different lengths; context checks."""

import pytest
from PIL import Image

from allseeing.infer.generate import DecodingConfig, Request, generate


def requests():
    red, blue = Image.new("RGB", (50, 30), (200, 10, 10)), Image.new("RGB", (20, 44), (10, 10, 200))
    return [
        Request(red, (("<image>\nWhat is this?", None),)),
        Request(blue, (("<image>\n" + "Describe the image in detail, please. " * 4, None),)),
        Request(red, (("<image>\nq", "<ref>red circle</ref><box>[[1, 2, 3, 4]]</box>"), ("and now?", None))),
        Request(None, (("Hello there, no image here.", None),)),
        Request(blue, (("<image>\nWhere is the blue star?", None),)),
    ]


def test_batched_greedy_equals_one_at_a_time(tiny_model):
    model, processor = tiny_model
    decoding = DecodingConfig(max_new_tokens=16)
    single = [generate(model, processor, [r], decoding)[0] for r in requests()]
    batched = generate(model, processor, requests(), DecodingConfig(max_new_tokens=16, batch_size=5))
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.prompt_tokens for g in batched] == [g.prompt_tokens for g in single]
    assert all(0 < g.new_tokens <= 16 for g in batched)


def test_sampling_is_seeded_and_parsed(tiny_model):
    import torch

    model, processor = tiny_model
    decoding = DecodingConfig(max_new_tokens=8, do_sample=True, temperature=0.8, top_p=0.9)
    torch.manual_seed(3)
    first = generate(model, processor, requests()[:2], decoding)
    torch.manual_seed(3)
    again = generate(model, processor, requests()[:2], decoding)
    assert [g.text for g in first] == [g.text for g in again]
    assert all(g.document.caption is not None for g in first)


def test_prompts_longer_than_the_context_are_refused(tiny_model):
    model, processor = tiny_model
    long_prompt = Request(None, (("word " * 2000, None),))
    with pytest.raises(ValueError, match=r"the prompt is \d+ tokens .* longer than the context of 1024"):
        generate(model, processor, [long_prompt])
    near = Request(None, (("word " * 200, None),))
    with pytest.raises(ValueError, match="plus max_new_tokens 600 exceeds the context of 1024"):
        generate(model, processor, [near], DecodingConfig(max_new_tokens=600))
    # Evaluation's budget policy: answer in what the context leaves.
    (fitted,) = generate(model, processor, [near], DecodingConfig(max_new_tokens=600), fit_context=True)
    assert fitted.new_tokens <= 1024 - fitted.prompt_tokens
