"""A multi-turn grounded chat session over one image: the history, the answers, their ReC parses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image
from transformers import LlavaForConditionalGeneration, PreTrainedTokenizerBase, TextStreamer

from allseeing.data.templates import Turn, image_first
from allseeing.infer.generate import DecodingConfig, Generation, Request, generate
from allseeing.model.processor import Processor
from allseeing.rec import tags


@dataclass
class ChatSession:
    """One conversation about one image. ``<image>`` is put at the head of the first user message, as upstream does.

    The history grows only when an answer is complete: a failed or interrupted turn leaves the session as it was.
    """

    model: LlavaForConditionalGeneration
    processor: Processor
    image: Image.Image
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    history: list[Turn] = field(default_factory=list)

    def ask(self, message: str, on_text: Callable[[str], None] | None = None) -> Generation:
        """Answer ``message``; ``on_text`` receives the answer's text piece by piece while it is generated."""
        message = message.replace(tags.IMAGE, "").strip()
        if not self.history:
            message = image_first(message)
        streamer = _Callback(self.processor.tokenizer, on_text) if on_text is not None else None
        (answer,) = generate(
            self.model,
            self.processor,
            [Request(self.image, (*self.history, (message, None)))],
            self.decoding,
            streamer=streamer,
        )
        self.history.append((message, answer.text))
        return answer


class _Callback(TextStreamer):
    """Answer text to a callback in whole words (transformers' incremental decoding), the prompt skipped."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, on_text: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.on_text = on_text

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.on_text(text)
