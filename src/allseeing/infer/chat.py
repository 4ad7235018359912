"""A multi-turn grounded chat session over one image: the history, the answers, their ReC parses."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image
from transformers import LlavaForConditionalGeneration

from allseeing.data.templates import Turn
from allseeing.infer.generate import DecodingConfig, Generation, Request, generate
from allseeing.model.processor import Processor
from allseeing.rec import tags


@dataclass
class ChatSession:
    """One conversation about one image. ``<image>`` is put at the head of the first user message, as upstream does."""

    model: LlavaForConditionalGeneration
    processor: Processor
    image: Image.Image
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    history: list[Turn] = field(default_factory=list)

    def ask(self, message: str) -> Generation:
        message = message.replace(tags.IMAGE, "").strip()
        if not self.history:
            message = f"{tags.IMAGE}\n{message}"
        (answer,) = generate(
            self.model, self.processor, [Request(self.image, (*self.history, (message, None)))], self.decoding
        )
        self.history.append((message, answer.text))
        return answer
