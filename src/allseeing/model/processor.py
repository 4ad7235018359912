"""The processor: images to pixel values, conversations to ids by spans, batches with left padding.

It is saved next to the model as ``allseeing.json`` (plus the tokenizer files), so a model folder carries its
template, image size, padding mode and context length: nothing is guessed from a checkpoint's name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import AutoTokenizer, LlavaProcessor, PreTrainedTokenizerBase

from allseeing.data.image import CLIP_MEAN, CLIP_STD, preprocess
from allseeing.data.templates import Template, Turn, get_template
from allseeing.data.tokenize import Encoded, SpecialIds, encode_conversation
from allseeing.rec import tags

CONFIG_NAME = "allseeing.json"


@dataclass(frozen=True)
class ProcessorConfig:
    template: str
    image_size: int
    image_tokens: int
    max_length: int
    image_aspect: str = "pad"
    image_mean: tuple[float, ...] = CLIP_MEAN
    image_std: tuple[float, ...] = CLIP_STD
    # The model's real vocabulary: output rows past it were added by conversion (``<image>`` and the padding to a
    # multiple of 64) and are not tokens the model was trained to predict, so no score includes them. None: all.
    scored_vocab: int | None = None


class Processor:
    """Tokenizer + image settings + template of one model."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: ProcessorConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.template = get_template(config.template)
        image_id = tokenizer.convert_tokens_to_ids(tags.IMAGE)
        if image_id is None or image_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {tags.IMAGE} token")
        self.special = SpecialIds(bos=tokenizer.bos_token_id, eos=tokenizer.eos_token_id, image=image_id)
        self.pad_id = tokenizer.pad_token_id

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode(self, turns: Sequence[Turn], max_length: int | None = None, policy: str = "drop") -> Encoded:
        """Ids and labels of a conversation (the last turn may be open: a prompt for generation)."""
        return encode_conversation(
            turns,
            self.template,
            self.encode_text,
            self.special,
            self.config.image_tokens,
            max_length=max_length,
            policy=policy,
        )

    def prompt_ids(self, turns: Sequence[Turn]) -> list[int]:
        """Ids of a prompt, checked against the context length."""
        ids = self.encode(turns).input_ids
        if len(ids) > self.config.max_length:
            raise ValueError(
                f"the prompt is {len(ids)} tokens (image tokens included), longer than the context of "
                f"{self.config.max_length}"
            )
        return ids

    def pixel_values(self, images: Sequence[Image.Image]) -> torch.Tensor:
        arrays = [
            preprocess(
                image, self.config.image_size, self.config.image_aspect, self.config.image_mean, self.config.image_std
            )
            for image in images
        ]
        return torch.from_numpy(np.stack(arrays))

    def left_pad(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch of ids padded on the left, and its attention mask."""
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            if sequence:
                ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
                mask[row, width - len(sequence) :] = 1
        return ids, mask

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def save(self, folder: str | Path) -> None:
        """``allseeing.json`` for our tools, plus the tokenizer and a transformers ``LlavaProcessor`` (padding
        image processor, chat template) so that ``AutoProcessor`` works on the folder too."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.chat_template = chat_template(self.template, self.tokenizer)
        self.tokenizer.save_pretrained(folder)
        size = self.config.image_size
        # The PIL backend where transformers has one (the default one wants torchvision, which we do not use).
        image_processor_class = (
            getattr(transformers, "LlavaImageProcessorPil", None) or transformers.LlavaImageProcessor
        )
        image_processor = image_processor_class(
            do_pad=self.config.image_aspect == "pad",
            size={"shortest_edge": size},
            crop_size={"height": size, "width": size},
            image_mean=list(self.config.image_mean),
            image_std=list(self.config.image_std),
        )
        LlavaProcessor(
            image_processor=image_processor,
            tokenizer=self.tokenizer,
            patch_size=size // math.isqrt(self.config.image_tokens),
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,
            image_token=tags.IMAGE,
            chat_template=self.tokenizer.chat_template,
        ).save_pretrained(folder)
        (folder / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> Processor:
        folder = Path(folder)
        path = folder / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{folder} has no {CONFIG_NAME}: not a model folder written by allseeing")
        values = json.loads(path.read_text(encoding="utf-8"))
        values["image_mean"], values["image_std"] = tuple(values["image_mean"]), tuple(values["image_std"])
        return cls(AutoTokenizer.from_pretrained(folder), ProcessorConfig(**values))


# Text after a special token in the probe below: a newline then words, as the text after an image has it.
_PROBE = "\nWhat is in the image?"


def spacer_after(tokenizer: PreTrainedTokenizerBase, special: str) -> str:
    """What a chat template writes after the special token ``special`` (``<s>``, ``<image>``) so that the stock
    processor, which tokenises the whole prompt at once, gives upstream's ids.

    Upstream tokenises the text after BOS and after an image as a fresh string, which a SentencePiece tokenizer
    starts with ``▁``. A tokenizer that continues after a special token without a ``▁`` (``legacy`` false) needs a
    space written there; one that adds it (``legacy`` true), or a byte-level BPE one that never adds one, needs
    nothing. The answer is measured on the tokenizer, not assumed.
    """
    fresh = tokenizer(_PROBE, add_special_tokens=False)["input_ids"]
    for spacer in ("", " "):
        joined = tokenizer(special + spacer + _PROBE, add_special_tokens=False)["input_ids"]
        if joined[1:] == fresh:
            return spacer
    raise ValueError(
        f"no spacing after {special} makes this tokenizer read the following text as a fresh string; a chat "
        "template cannot reproduce upstream's ids"
    )


def chat_template(template: Template, tokenizer: PreTrainedTokenizerBase) -> str | None:
    """A Jinja chat template that renders ``template`` as :meth:`Template.render` does, for tools that use
    ``apply_chat_template`` (transformers serve, vLLM, SGLang); ``None`` for ``plain``, which has no roles.

    It writes the BOS token itself, as engines expect a chat template to; a message with an image gets it in
    front (:func:`allseeing.data.templates.image_first`). After both, it writes what :func:`spacer_after` measures
    on ``tokenizer``. A ``system`` message replaces the template's system line.
    """
    if template.name == "plain":
        return None
    after_bos = spacer_after(tokenizer, tokenizer.bos_token)
    after_image = spacer_after(tokenizer, tags.IMAGE)

    def text(value: str) -> str:
        return "{{ " + json.dumps(value) + " }}"

    return (
        "{{ bos_token }}"
        + text(after_bos)
        + f"{{% set system = {json.dumps(template.system)} %}}"
        + "{% if messages and messages[0]['role'] == 'system' %}{% set content = messages[0]['content'] %}"
        + "{% set system = content if content is string else content[0]['text'] %}{% endif %}"
        + "{{ system + ' ' if system else '' }}"
        + "{% for message in messages %}"
        + "{% if message['role'] == 'user' %}"
        + text(f"{template.user}: ")
        + "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
        + "{% set ns = namespace(text='', image=false) %}"
        + "{% for part in message['content'] %}"
        + "{% if part['type'] == 'image' %}{% set ns.image = true %}"
        + "{% elif part['type'] == 'text' %}{% set ns.text = ns.text + part['text'] %}{% endif %}"
        + "{% endfor %}"
        + "{% if ns.image %}"
        + text(tags.IMAGE)
        + "{% if ns.text | trim %}"
        + text(after_image + "\n")
        + "{{ ns.text | trim }}{% endif %}"
        + "{% else %}{{ ns.text }}{% endif %}"
        + "{% endif %}"
        + text(" ")
        + "{% elif message['role'] == 'assistant' %}"
        + text(f"{template.assistant}: ")
        + "{{ message['content'] if message['content'] is string else message['content'][0]['text'] }}"
        + text(tags.EOS)
        + "{% endif %}"
        + "{% endfor %}"
        + "{% if add_generation_prompt %}"
        + text(f"{template.assistant}:")
        + "{% endif %}"
    )
