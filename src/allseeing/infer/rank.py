"""Ranking candidate answers by log-likelihood, with the shared image + prompt prefix computed once.

For each option the scored sequence is the prompt followed by the reply ``label_format.format(option)`` and
``</s>``, tokenised by spans exactly as in training. The longest token prefix common to all options (the
system line, the image, the question, and any reply text the options share) runs once; its key/value cache is
repeated for the options, whose remaining tokens run as one batch. Upstream re-encoded the image for each of
the 56 options of every pair.

Scores per option:
    ``sum_logprob``: log-probability of the reply tokens and ``</s>``. Including ``</s>`` keeps "on" from
        scoring as well as "on top of" when one is a prefix of the other.
    ``mean_logprob``: the same, divided by the number of those tokens.
    ``upstream_score``: upstream's length-normalised score, the mean log-probability of the reply tokens without
        ``</s>`` (for parity when ``label_format`` is ``"{}"``).

Log-probabilities are normalised over the model's real vocabulary (``ProcessorConfig.scored_vocab``): the output
rows that conversion adds (``<image>``, padding to a multiple of 64, initialised to the mean row) would otherwise
take probability mass that upstream's model, with 32000 rows, never spread, and change every score.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from transformers import LlavaForConditionalGeneration

from allseeing.data.templates import Turn
from allseeing.model.processor import Processor

# transformers renamed the cache argument and output field from ``past_key_values`` to ``cache`` within 5.x.
CACHE_NAME = (
    "cache" if "cache" in inspect.signature(LlavaForConditionalGeneration.forward).parameters else "past_key_values"
)


@dataclass(frozen=True)
class OptionScore:
    option: str
    sum_logprob: float
    mean_logprob: float
    upstream_score: float
    tokens: int  # reply tokens, </s> included


def log_probabilities(logits: torch.Tensor, processor: Processor) -> torch.Tensor:
    """Log-softmax over the real vocabulary (the last axis cut at ``scored_vocab``), in float32."""
    return torch.log_softmax(logits[..., : processor.config.scored_vocab].float(), dim=-1)


def option_sequences(
    processor: Processor, turns: Sequence[Turn], options: Sequence[str], label_format: str
) -> tuple[list[list[int]], int]:
    """Token ids of prompt + reply + ``</s>`` for every option, and the prompt's length."""
    *history, (question, _) = turns
    prompt_length = len(processor.prompt_ids([*history, (question, None)]))
    sequences = [processor.encode([*history, (question, label_format.format(option))]).input_ids for option in options]
    return sequences, prompt_length


def _common_prefix(sequences: list[list[int]]) -> int:
    length = min(len(s) for s in sequences) - 1  # every option keeps at least one token of its own
    for position in range(length):
        if any(s[position] != sequences[0][position] for s in sequences[1:]):
            return position
    return length


@torch.inference_mode()
def rank_options(
    model: LlavaForConditionalGeneration,
    processor: Processor,
    image: Image.Image | None,
    turns: Sequence[Turn],
    options: Sequence[str],
    label_format: str = "{}",
) -> list[OptionScore]:
    """Score every option as the reply to the last (open) turn; results follow ``options``' order."""
    if not options:
        return []
    sequences, prompt_length = option_sequences(processor, turns, options, label_format)
    shared = _common_prefix(sequences)
    if shared < prompt_length:
        raise ValueError("the options change the prompt itself; rank replies only")
    device = next(model.parameters()).device
    prefix = torch.tensor([sequences[0][:shared]], device=device)
    inputs = {"input_ids": prefix, "use_cache": True}
    if image is not None:
        inputs["pixel_values"] = processor.pixel_values([image]).to(device=device, dtype=model.dtype)
    prefix_out = model(**inputs)
    prefix_logprobs = log_probabilities(prefix_out.logits[0], processor)  # (shared, vocab)

    suffixes = [s[shared:] for s in sequences]
    width = max(len(s) for s in suffixes)
    suffix_ids = torch.full((len(options), width), processor.pad_id, dtype=torch.long, device=device)
    for row, suffix in enumerate(suffixes):
        suffix_ids[row, : len(suffix)] = torch.tensor(suffix, device=device)
    attention = torch.ones((len(options), shared + width), dtype=torch.long, device=device)
    for row, suffix in enumerate(suffixes):
        attention[row, shared + len(suffix) :] = 0
    cache = prefix_out[CACHE_NAME]
    cache.batch_repeat_interleave(len(options))
    positions = torch.arange(shared, shared + width, device=device).expand(len(options), -1)
    suffix_out = model(input_ids=suffix_ids, attention_mask=attention, position_ids=positions, **{CACHE_NAME: cache})
    suffix_logprobs = log_probabilities(suffix_out.logits, processor)  # (options, width, vocab)

    # Reply tokens inside the shared prefix score the same for every option.
    common = sum(prefix_logprobs[t - 1, sequences[0][t]].item() for t in range(prompt_length, shared))
    scores = []
    for row, (option, sequence) in enumerate(zip(options, sequences, strict=True)):
        own = [prefix_logprobs[shared - 1, sequence[shared]].item()]
        own += [suffix_logprobs[row, k - 1, sequence[shared + k]].item() for k in range(1, len(sequence) - shared)]
        logprobs_total = common + sum(own)
        count = len(sequence) - prompt_length
        without_eos = logprobs_total - own[-1]
        scores.append(
            OptionScore(option, logprobs_total, logprobs_total / count, without_eos / max(count - 1, 1), count)
        )
    return scores


def full_recompute_scores(
    model: LlavaForConditionalGeneration,
    processor: Processor,
    image: Image.Image | None,
    turns: Sequence[Turn],
    options: Sequence[str],
    label_format: str = "{}",
) -> list[float]:
    """Reference: ``sum_logprob`` of each option from one full forward pass per option (no cache)."""
    sequences, prompt_length = option_sequences(processor, turns, options, label_format)
    device = next(model.parameters()).device
    totals = []
    with torch.inference_mode():
        for sequence in sequences:
            inputs = {"input_ids": torch.tensor([sequence], device=device)}
            if image is not None:
                inputs["pixel_values"] = processor.pixel_values([image]).to(device=device, dtype=model.dtype)
            logprobs = log_probabilities(model(**inputs).logits[0], processor)
            totals.append(sum(logprobs[t - 1, sequence[t]].item() for t in range(prompt_length, len(sequence))))
    return totals
