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
from allseeing.data.templates import Turn, get_template
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
        self.tokenizer.chat_template = CHAT_TEMPLATES.get(self.config.template)
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


# The vicuna_v1 template for tools that use tokenizer.apply_chat_template (the image goes first in the first user
# message, as upstream places it). Our own code renders by segments (data/templates.py).
CHAT_TEMPLATES = {
    "vicuna_v1": (
        "{{ 'A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user\\'s questions. ' }}"
        "{% for message in messages %}"
        "{% if message['role'] == 'user' %}{{ 'USER: ' }}"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
        "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '"
        + tags.IMAGE
        + "\\n' }}{% endif %}{% endfor %}"
        "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
        "{% endif %}{{ ' ' }}"
        "{% else %}{{ 'ASSISTANT: ' + (message['content'] if message['content'] is string else "
        "message['content'][0]['text']) + '" + tags.EOS + "' }}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
    ),
}
