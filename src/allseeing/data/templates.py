"""Conversation templates, as segments: text the model reads, replies it is trained on, end-of-turn tokens.

``vicuna_v1`` (every ASMv2 stage after projector pre-training; upstream's ``llava/conversation.py``) renders as::

    {system} USER: {q1} ASSISTANT: {a1}</s>USER: {q2} ASSISTANT: {a2}</s>

and an open assistant turn ends the prompt with ``ASSISTANT:`` and no trailing space. The space that separates
``ASSISTANT:`` from a reply belongs to the reply segment: that is where a generating model writes it, and what
upstream's mask trains in effect (the space is the first piece of the reply's first token).

``plain`` (stage-1 projector pre-training) renders ``<image>{caption}\\n``: the instruction is discarded and the
caption plus the newline are trained, with no end-of-sequence token.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from allseeing.rec import tags


class Part(Enum):
    PROMPT = "prompt"  # read, not trained
    REPLY = "reply"  # trained
    EOS = "eos"  # the end-of-sequence token, trained


Segment = tuple[Part, str]
Turn = tuple[str, str | None]  # (user text, assistant reply or None for the turn to generate)


@dataclass(frozen=True)
class Template:
    name: str
    system: str
    user: str
    assistant: str

    def segments(self, turns: list[Turn]) -> list[Segment]:
        """The conversation as segments; only the last turn may have no reply (the generation point)."""
        if not turns:
            raise ValueError("a conversation needs at least one turn")
        if any(reply is None for _, reply in turns[:-1]):
            raise ValueError("only the last turn may be left open for generation")
        if self.name == "plain":
            return _plain_segments(turns)
        segments: list[Segment] = []
        prompt = f"{self.system} " if self.system else ""
        for user_text, reply in turns:
            prompt += f"{self.user}: {user_text} {self.assistant}:"
            segments.append((Part.PROMPT, prompt))
            prompt = ""
            if reply is not None:
                segments += [(Part.REPLY, f" {reply}"), (Part.EOS, tags.EOS)]
        return segments

    def render(self, turns: list[Turn]) -> str:
        """The conversation as one string (``</s>`` written out), exactly as upstream renders it."""
        return "".join(text for _, text in self.segments(turns))


def _plain_segments(turns: list[Turn]) -> list[Segment]:
    if len(turns) != 1:
        raise ValueError(f"the plain template takes exactly one turn, got {len(turns)}")
    ((_, caption),) = turns
    segments: list[Segment] = [(Part.PROMPT, tags.IMAGE)]
    return [*segments, (Part.REPLY, f"{caption}\n")] if caption is not None else segments


# The letters of multiple-choice options, written "A. option" one per line (CRPE, VCR).
OPTION_LETTERS = "ABCDEFGH"
# LLaVA-1.5's short-answer instruction, the end of its VQA-style benchmarks' question texts.
SHORT_ANSWER = "Answer the question using a single word or phrase."
# MMBench's TSV: the circular copies of a question (its options rotated) share their index modulo this.
MMBENCH_CIRCULAR_STEP = 1_000_000

# The instruction chooses the kind of answer: upstream's demo (``app.py``) documents these two suffixes
# (docs/upstream.md, "Conversation templates").
GROUNDING_SUFFIX = "Answer the question with grounding."
SCENE_GRAPH_SUFFIX = "Answer the question with scene graph."

VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
TEMPLATES: dict[str, Template] = {
    "vicuna_v1": Template("vicuna_v1", VICUNA_SYSTEM, "USER", "ASSISTANT"),
    "plain": Template("plain", "", "", ""),
}


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown template {name!r}; known: {', '.join(TEMPLATES)}") from None


def image_first(text: str) -> str:
    """A user turn holding the image, placed as upstream places it (``preprocess_multimodal``): the marker taken
    out, the text stripped, ``<image>\\n`` put in front (``<image>`` alone when no text is left)."""
    return f"{tags.IMAGE}\n{text.replace(tags.IMAGE, '').strip()}".strip()


def image_question(text: str) -> str:
    """The first user turn of a question about an image, as upstream's evaluation loaders and data write it:
    ``<image>\n`` + the text as it is; a text that already holds the marker gets it in front instead
    (:func:`image_first`)."""
    return image_first(text) if tags.IMAGE in text else f"{tags.IMAGE}\n{text}"


def turns_from_llava(conversations: list[dict], open_last: bool = False) -> list[Turn]:
    """LLaVA ``conversations`` (human/gpt alternating, from a human turn) as (user, reply) turns.

    A human turn that holds ``<image>`` gets it in front (:func:`image_first`), as upstream's training and
    multi-turn evaluation prepare every conversation. With ``open_last``, a final human turn becomes the turn to
    generate.
    """
    turns: list[Turn] = []
    for index in range(0, len(conversations), 2):
        human = conversations[index]
        if human.get("from") != "human":
            raise ValueError(f"turn {index} must be from 'human', found {human.get('from')!r}")
        question = image_first(human["value"]) if tags.IMAGE in human["value"] else human["value"]
        if index + 1 < len(conversations):
            gpt = conversations[index + 1]
            if gpt.get("from") != "gpt":
                raise ValueError(f"turn {index + 1} must be from 'gpt', found {gpt.get('from')!r}")
            turns.append((question, gpt["value"]))
        elif open_last:
            turns.append((question, None))
        else:
            raise ValueError("the conversation ends with a human turn")
    return turns
