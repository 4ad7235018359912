"""Words for the synthetic world: referring expressions, captions, relation sentences, rationales, templates.

Every instruction has several phrasings so that a model cannot key on one sentence; the evaluation prompts are
fixed strings (as upstream's question files are).
"""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise

from allseeing.data.synth.world import Item, Scene
from allseeing.data.templates import GROUNDING_SUFFIX, OPTION_LETTERS, SCENE_GRAPH_SUFFIX
from allseeing.rec import tags
from allseeing.rec.write import object_mention, relation_mention

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight")
LETTERS = OPTION_LETTERS[:4]  # every synthetic question has four options

MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
GROUNDING_PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: {}"
_REGION = f"{tags.REF_OPEN}region{tags.REF_CLOSE}"  # a box prompt: "this <ref>region</ref><box>...</box>"
REGION_PROMPT = "What is in this " + _REGION + "{}?"
RELATION_QUESTION = "What is the relation between the {} and the {}?"
EXIST_QUESTION = "Which of the following objects appears in the image?"
SUBJECT_QUESTION = "Which object is {} the {}?"
OBJECT_QUESTION = "The {} is {} which object?"
RATIONALE_QUESTION = "Why is that the answer?"

CAPTION_PROMPTS = (
    "Write a short caption for the image.",
    "Describe the image briefly.",
    "What does this picture show?",
    "Give a one-sentence summary of the image.",
)
DESCRIPTION_PROMPTS = (
    "Describe the image in detail.",
    "Describe every object in the image and how the objects relate to each other.",
    "Give a detailed, grounded description of this picture.",
    "What is in the image? Describe the objects and their positions in detail.",
    "What is in the image? " + GROUNDING_SUFFIX,
)
REGION_PROMPTS = (
    REGION_PROMPT,
    "Describe the object in this " + _REGION + "{} briefly.",
    "What object is shown in the " + _REGION + "{}?",
)
GROUNDING_PROMPTS = (
    GROUNDING_PROMPT,
    "Where is the {}? Give its bounding box.",
    "Locate the {} in the image.",
)
PSG_PROMPT = "Generate the scene graph of this image. " + SCENE_GRAPH_SUFFIX
SCENE_GRAPH_PROMPTS = (
    PSG_PROMPT,
    "What objects are in the image and how are they related? " + SCENE_GRAPH_SUFFIX,
    "List the relations between the objects. " + SCENE_GRAPH_SUFFIX,
)
RELATION_MC_QUESTIONS = (
    RELATION_QUESTION,
    "How is the {} related to the {}?",
    "Which relation holds between the {} and the {}?",
)
PREDICATE_PROMPTS = (
    RELATION_QUESTION,
    "How is the {} related to the {}?",
    "Describe the relation of the {} to the {} in a few words.",
)

# "A is <pred>p</pred> B" reads better with an article for the comparisons of attributes.
_PREDICATE_LEAD = {"same colour as": "the ", "same shape as": "the "}
RATIONALES = {
    "left of": "The {s} ends before the {o} begins, from left to right.",
    "right of": "The {s} begins after the {o} ends, from left to right.",
    "above": "The {s} ends before the {o} begins, from top to bottom.",
    "below": "The {s} begins after the {o} ends, from top to bottom.",
    "next to": "The {s} and the {o} stand side by side with at most a small gap.",
    "inside": "The {s} lies entirely within the {o}.",
    "on top of": "The bottom of the {s} rests on the top of the {o}.",
    "overlapping": "The {s} and the {o} partly cover each other.",
    "bigger than": "The {s} covers much more area than the {o}.",
    "smaller than": "The {s} covers much less area than the {o}.",
    "same colour as": "The {s} and the {o} have the same colour.",
    "same shape as": "The {s} and the {o} have the same shape.",
}


def plural(shape: str) -> str:
    return shape + "es" if shape.endswith(("x", "s")) else shape + "s"


def count_phrase(count: int, noun: str) -> str:
    """ "two red circles", "one blue star"."""
    words = noun.split()
    if count != 1:
        words[-1] = plural(words[-1])
    return f"{NUMBER_WORDS[count]} {' '.join(words)}"


def refer(scene: Scene, index: int) -> str | None:
    """The shortest unambiguous expression for an object ("red circle", "large red circle",
    "red circle on the left", "leftmost red circle"), or ``None`` when attributes and position cannot tell it
    from its look-alikes."""
    item = scene.items[index]
    twins = [j for j, other in enumerate(scene.items) if other.name == item.name]
    if len(twins) == 1:
        return item.name
    if sum(scene.items[j].size == item.size for j in twins) == 1:
        return f"{item.size} {item.name}"
    for axis, low, high in ((0, "left", "right"), (1, "top", "bottom")):
        centres = {j: (scene.items[j].pixel_box[axis] + scene.items[j].pixel_box[axis + 2]) / 2 for j in twins}
        ordered = sorted(twins, key=centres.__getitem__)
        extent = min(scene.items[j].pixel_box[axis + 2] - scene.items[j].pixel_box[axis] for j in twins)
        gaps_ok = all(centres[b] - centres[a] > 0.5 * extent for a, b in pairwise(ordered))
        if not gaps_ok or index not in (ordered[0], ordered[-1]):
            continue
        side = low if index == ordered[0] else high
        if len(twins) == 2:
            return f"{item.name} {'on' if axis == 0 else 'at'} the {side}"
        return f"{side}most {item.name}"
    return None


def article(phrase: str) -> str:
    """ "a" or "an" for ``phrase``."""
    return "an" if phrase[:1] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    """ "a red circle", "an orange star"."""
    return f"{article(phrase)} {phrase}"


def size_name(item: Item) -> str:
    return f"{item.size} {item.name}"


def relation_sentence(subject_phrase: str, subject: Item, predicate: str, object_phrase: str, obj: Item) -> str:
    """ "The <ref>red circle</ref><box>..</box> is <pred>left of</pred><box>..</box><box>..</box> the <ref>..."."""
    return (
        f"The {object_mention(subject_phrase, [subject.box])} is {_PREDICATE_LEAD.get(predicate, '')}"
        f"{relation_mention(predicate, [subject.box], [obj.box])} the {object_mention(object_phrase, [obj.box])}."
    )


def caption(scene: Scene) -> str:
    """A plain caption: what is there, without boxes."""
    counts = Counter(item.name for item in scene.items)
    parts = [count_phrase(n, name) for name, n in counts.items()]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    tone = "dark" if sum(scene.background.colours[0]) < 3 * 110 else "light"
    return f"{listed[0].upper()}{listed[1:]} on a {tone} {_BACKGROUND_WORDS[scene.background.kind]} background."


_BACKGROUND_WORDS = {"plain": "plain", "gradient": "shaded", "noise": "speckled"}


def options_text(question: str, options: list[str]) -> str:
    lines = [question, *(f"{letter}. {option}" for letter, option in zip(LETTERS, options, strict=True))]
    return "\n".join([*lines, MC_INSTRUCTION])


def rotations(correct: str, distractors: list[str]) -> list[tuple[list[str], str]]:
    """CRPE's four circular rotations: the options shifted by one each time, with the correct letter."""
    options = [correct, *distractors]
    result = []
    for shift in range(len(options)):
        rotated = options[shift:] + options[:shift]
        result.append((rotated, LETTERS[rotated.index(correct)]))
    return result


def shuffled_options(rng: random.Random, correct: str, distractors: list[str]) -> tuple[list[str], str]:
    options = [correct, *distractors]
    rng.shuffle(options)
    return options, LETTERS[options.index(correct)]
