"""Tokenizers for small models, trained with the ``tokenizers`` library on synthetic-world text.

Byte-level BPE (any text encodes, no unknown token) with digits split one per token, as LLaMA's tokenizer
splits them, so a box costs the same number of digit tokens as upstream. The ReC tags are ordinary text (BPE
may merge their pieces); only ``<pad>``, ``<s>``, ``</s>`` and ``<image>`` are special, with the LLaMA ids
pad 0, BOS 1, EOS 2.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from allseeing.data.templates import TEMPLATES
from allseeing.rec import tags

PAD, BOS = "<pad>", "<s>"
SPECIAL_TOKENS = (PAD, BOS, tags.EOS, tags.IMAGE)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` and the template strings, weighted as they occur in training."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = list(texts)
    # Every training sample carries its template's text (vicuna_v1's system line is about 30 words), so the
    # template is weighted as one occurrence per question-answer pair: BPE then merges it into a few dozen
    # tokens instead of about a hundred, which is a quarter of a short grounding sample.
    template_text = [template.render([("question", "answer")]) for template in TEMPLATES.values()]
    tokenizer.train_from_iterator([*template_text * max(1, len(texts) // 2), *texts], trainer)
    return wrap(tokenizer)


def wrap(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """A transformers tokenizer around a ``tokenizers`` one, with our special tokens declared."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=tags.EOS,
        pad_token=PAD,
        extra_special_tokens=[tags.IMAGE],
    )
