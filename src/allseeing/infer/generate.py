"""Batched generation: prompts left-padded into batches, greedy or sampled, stopping at EOS.

Upstream's harness asserted a batch of one. Here requests of similar length are batched together (sorted by
prompt length, results returned in request order), and every answer comes back with its lenient ReC parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from tqdm import tqdm
from transformers import LlavaForConditionalGeneration
from transformers.generation.streamers import BaseStreamer

from allseeing.data.templates import Turn
from allseeing.model.processor import Processor
from allseeing.rec.document import ReCDocument
from allseeing.rec.parse import parse


@dataclass(frozen=True)
class Request:
    """One prompt: an image (or None) and the conversation so far, its last turn open."""

    image: Image.Image | None
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class DecodingConfig:
    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    batch_size: int = 8


@dataclass(frozen=True)
class Generation:
    text: str
    document: ReCDocument  # lenient parse of ``text``
    prompt_tokens: int
    new_tokens: int


def generate(
    model: LlavaForConditionalGeneration,
    processor: Processor,
    requests: Sequence[Request],
    decoding: DecodingConfig = DecodingConfig(),
    progress: bool = False,
    streamer: BaseStreamer | None = None,
    fit_context: bool = False,
) -> list[Generation]:
    """Answer every request; results are in request order. A ``streamer`` receives the tokens of one request.

    ``max_new_tokens`` must fit the context after each prompt; with ``fit_context`` a batch whose longest prompt
    leaves less room answers in what is left (evaluation gives each task a budget, capped by the model's context).
    """
    if streamer is not None and len(requests) != 1:
        raise ValueError(f"a streamer follows exactly one request, got {len(requests)}")
    prompts = [processor.prompt_ids(request.turns) for request in requests]
    context = processor.config.max_length
    for ids in prompts:
        room = context - len(ids)
        if room <= 0 or (decoding.max_new_tokens > room and not fit_context):
            raise ValueError(
                f"a prompt of {len(ids)} tokens plus max_new_tokens {decoding.max_new_tokens} exceeds the context "
                f"of {context}"
            )
    order = sorted(range(len(requests)), key=lambda i: len(prompts[i]))
    results: list[Generation | None] = [None] * len(requests)
    device = next(model.parameters()).device
    bar = tqdm(total=len(requests), desc="generating", unit="prompt", disable=not progress)
    for start in range(0, len(order), decoding.batch_size):
        batch = order[start : start + decoding.batch_size]
        with_image = [requests[i].image is not None for i in batch]
        if any(with_image) and not all(with_image):
            # A batch must be all-image or all-text: split it and keep the order.
            groups = [
                [i for i in batch if requests[i].image is not None],
                [i for i in batch if requests[i].image is None],
            ]
        else:
            groups = [batch]
        for group in groups:
            for index, generation in zip(
                group, _run(model, processor, requests, prompts, group, decoding, device, streamer), strict=True
            ):
                results[index] = generation
        bar.update(len(batch))
    bar.close()
    return results  # type: ignore[return-value]


@torch.inference_mode()
def _run(
    model: LlavaForConditionalGeneration,
    processor: Processor,
    requests: Sequence[Request],
    prompts: list[list[int]],
    group: list[int],
    decoding: DecodingConfig,
    device: torch.device,
    streamer: BaseStreamer | None,
) -> list[Generation]:
    """Generate for the requests at ``group`` (all with images or all without) in one left-padded batch."""
    # At most what the context leaves after the group's longest prompt (generate checked that it is above 0).
    budget = min(decoding.max_new_tokens, processor.config.max_length - max(len(prompts[i]) for i in group))
    input_ids, attention_mask = processor.left_pad([prompts[i] for i in group])
    inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
    if requests[group[0]].image is not None:
        pixel_values = processor.pixel_values([requests[i].image for i in group])
        inputs["pixel_values"] = pixel_values.to(device=device, dtype=model.dtype)
    sampling = {"temperature": decoding.temperature, "top_p": decoding.top_p} if decoding.do_sample else {}
    output = model.generate(
        **inputs,
        max_new_tokens=budget,
        do_sample=decoding.do_sample,
        pad_token_id=processor.pad_id,
        eos_token_id=processor.special.eos,
        streamer=streamer,
        **sampling,
    )
    new = output[:, input_ids.shape[1] :].tolist()
    generations = []
    for i, tokens in zip(group, new, strict=True):
        if processor.special.eos in tokens:
            tokens = tokens[: tokens.index(processor.special.eos)]
        tokens = [t for t in tokens if t != processor.pad_id]
        text = processor.decode(tokens).strip()
        generations.append(Generation(text, parse(text, mode="lenient"), len(prompts[i]), len(tokens)))
    return generations
