"""Conversation -> token ids and labels, by spans: each segment is tokenised once and the ids concatenated.

Labels are the ids of reply segments and end-of-sequence tokens, ``IGNORE_INDEX`` everywhere else (BOS, the
system line, user turns, ``ASSISTANT:``, image tokens). Because the mask is built from the same segments as the
ids, it cannot drift from them the way upstream's offset arithmetic did (a mismatch there silently zeroed a
sample's loss). ``<image>`` in a prompt segment becomes ``image_tokens`` copies of the image id, as the
stock LLaVA model expects one id per image feature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from allseeing.data.templates import Part, Template, Turn
from allseeing.rec import tags

IGNORE_INDEX = -100
LENGTH_POLICIES = ("drop", "truncate")


@dataclass(frozen=True)
class SpecialIds:
    bos: int
    eos: int
    image: int


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    @property
    def trained_ids(self) -> list[int]:
        return [label for label in self.labels if label != IGNORE_INDEX]


class SampleTooLongError(ValueError):
    """A sample longer than the limit that the length policy cannot keep (counted by the caller)."""

    def __init__(self, length: int, limit: int, reason: str) -> None:
        super().__init__(f"{length} tokens (image tokens included) exceed the limit of {limit}: {reason}")
        self.length = length
        self.limit = limit


def encode_conversation(
    turns: Sequence[Turn],
    template: Template,
    encode: Callable[[str], list[int]],
    special: SpecialIds,
    image_tokens: int,
    max_length: int | None = None,
    policy: str = "drop",
) -> Encoded:
    """Render ``turns`` with ``template`` and tokenise by segments.

    Args:
        encode: text -> ids, without special tokens.
        image_tokens: how many ids one ``<image>`` expands to (the vision tower's feature count).
        max_length: the limit after image expansion (upstream: 2048); ``None`` for no limit.
        policy: ``drop`` raises :class:`SampleTooLongError` for an over-long sample; ``truncate`` cuts its tail, and
            raises only when the cut would leave no trained token or split the image tokens.
    """
    if policy not in LENGTH_POLICIES:
        raise ValueError(f"unknown length policy {policy!r}; choose one of {', '.join(LENGTH_POLICIES)}")
    ids, labels = [special.bos], [IGNORE_INDEX]
    images = 0
    for part, text in template.segments(list(turns)):
        if part is Part.EOS:
            ids.append(special.eos)
            labels.append(special.eos)
            continue
        pieces = text.split(tags.IMAGE)
        if part is Part.REPLY and len(pieces) > 1:
            raise ValueError(f"a reply may not contain {tags.IMAGE}")
        images += len(pieces) - 1
        segment: list[int] = []
        for index, piece in enumerate(pieces):
            if index:
                segment += [special.image] * image_tokens
            if piece:
                segment += encode(piece)
        ids += segment
        labels += segment if part is Part.REPLY else [IGNORE_INDEX] * len(segment)
    if images > 1:
        raise ValueError(f"a sample holds one image; found {images} {tags.IMAGE} markers")
    if max_length is None or len(ids) <= max_length:
        return Encoded(ids, labels)
    if policy == "drop":
        raise SampleTooLongError(len(ids), max_length, "dropped (policy 'drop')")
    kept_labels = labels[:max_length]
    if all(label == IGNORE_INDEX for label in kept_labels):
        raise SampleTooLongError(len(ids), max_length, "truncation would leave no trained token")
    if ids[max_length - 1] == special.image and ids[max_length] == special.image:
        raise SampleTooLongError(len(ids), max_length, "truncation would cut the image tokens")
    return Encoded(ids[:max_length], kept_labels, truncated=True)
