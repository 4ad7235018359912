"""Conversation -> token ids and labels, tokenised as upstream tokenises it and masked by spans.

The ids follow upstream's one rule (``tokenizer_image_token``): the rendered conversation is tokenised as one
text, split only around ``<image>``; the text after an image is tokenised as a fresh string, and each image
becomes ``image_tokens`` copies of the image id (one per image feature, as the stock LLaVA model expects).
``</s>`` inside the text is the end-of-sequence token, and what follows it is tokenised as the tokenizer
continues after a special token: with a SentencePiece tokenizer that is where its ``legacy`` flag shows (``▁US``
with ``legacy`` true, ``US`` with false, for vicuna_v1's ``USER``). Tokenising each turn on its own, as this
module once did, put a ``▁`` there and so differed from upstream by a token per later turn.

Labels are the ids of the replies and their end-of-sequence tokens, ``IGNORE_INDEX`` everywhere else (BOS, the
system line, user turns, ``ASSISTANT:``, image tokens): exactly the tokens upstream's ``preprocess_v1`` trains.
A reply's tokens are found by tokenising its round with and without it; the ids without the reply must be a
prefix of those with it (the reply starts with the space after ``ASSISTANT:``, where neither SentencePiece nor
byte-level BPE joins tokens), else the sample is refused: a mask cannot drift from the ids the way upstream's
offset arithmetic could (a mismatch there silently zeroed a sample's loss).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from allseeing.data.templates import Part, Template, Turn
from allseeing.rec import tags

IGNORE_INDEX = -100
# Names the rule above; part of the key of cached dataset indexes, whose lengths were made with the rule before.
ENCODING_RULE = "upstream whole text, split at <image>"
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
    """Render ``turns`` with ``template``; its ids and labels as the module docstring describes.

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
    after_eos = False  # the text being tokenised follows an end-of-sequence token
    for prompt, reply, ends in _rounds(template.segments(list(turns))):
        if reply is not None and tags.IMAGE in reply:
            raise ValueError(f"a reply may not contain {tags.IMAGE}")
        pieces = prompt.split(tags.IMAGE)
        images += len(pieces) - 1
        for index, piece in enumerate(pieces):
            if index:
                ids += [special.image] * image_tokens
                labels += [IGNORE_INDEX] * image_tokens
            last = index == len(pieces) - 1
            read, trained = _tokenise_round(piece, reply if last else None, after_eos, encode, special)
            ids += read + trained
            labels += [IGNORE_INDEX] * len(read) + trained
            after_eos = False  # the text after an image is a fresh string
        if ends:
            ids.append(special.eos)
            labels.append(special.eos)
            after_eos = True
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


def _rounds(segments: list[tuple[Part, str]]) -> list[tuple[str, str | None, bool]]:
    """(prompt text, reply text or None, whether ``</s>`` follows) for each round of a template's segments."""
    rounds: list[list] = []
    for part, text in segments:
        if part is Part.PROMPT:
            rounds.append([text, None, False])
        elif part is Part.REPLY:
            rounds[-1][1] = text
        else:
            rounds[-1][2] = True
    return [(prompt, reply, ends) for prompt, reply, ends in rounds]


def _tokenise_round(
    prompt: str, reply: str | None, after_eos: bool, encode: Callable[[str], list[int]], special: SpecialIds
) -> tuple[list[int], list[int]]:
    """The ids of ``prompt`` and of ``reply`` as they come out of tokenising ``prompt + reply`` in its place.

    After ``</s>`` the text is tokenised behind a ``</s>`` whose id is then dropped, so the tokenizer treats it
    exactly as it treats that text inside the whole conversation.
    """
    lead = tags.EOS if after_eos else ""

    def tokenise(text: str) -> list[int]:
        ids = encode(lead + text)
        if not after_eos:
            return ids
        if not ids or ids[0] != special.eos:
            raise ValueError(f"the tokenizer does not read {tags.EOS} as its end-of-sequence token (id {special.eos})")
        return ids[1:]

    read = tokenise(prompt)
    if reply is None:
        return read, []
    whole = tokenise(prompt + reply)
    if whole[: len(read)] != read:
        raise ValueError(
            f"the tokenizer joins the end of the prompt {prompt[-20:]!r} and the start of the reply {reply[:20]!r} "
            "into one token, so the reply cannot be trained apart from the prompt"
        )
    return read, whole[len(read) :]
