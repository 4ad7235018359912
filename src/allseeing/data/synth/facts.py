"""Questions a test scene answers exactly, for the small synthetic versions of the general benchmarks.

Each function draws one question about a scene and returns it with its true answer, or None when the scene cannot
ask it unambiguously (a colour question needs a shape that occurs once; a left/right question two objects that are
clearly apart). The wording is the benchmarks' own kind: "Is there a ... in the image?" (POPE, MME existence), "How
many ... are there in the image?" (VQA counting), "What color is the ...?" (attribute questions).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from allseeing.data.synth import language as lang
from allseeing.data.synth.evalsets import ALL_NAMES
from allseeing.data.synth.world import COLOURS, SHAPES, Scene

EXISTENCE_STRATEGIES = ("random", "popular", "adversarial")  # POPE's three ways to pick an absent object
# The "popular" absent objects: POPE draws them from the dataset's most frequent classes; the synthetic world's
# classes are uniform, so a fixed eighth of them stands in.
POPULAR_NAMES = ALL_NAMES[:: len(SHAPES) + 1]


@dataclass(frozen=True)
class Fact:
    """A question about a scene, its true answer, and what kind of question it is."""

    question: str
    answer: str
    kind: str


def existence(scene: Scene, rng: random.Random, present: bool, strategy: str = "random") -> Fact | None:
    """ "Is there a <name> in the image?": a present object's name, or an absent one picked as POPE picks: at
    random, among the popular names, or adversarially (the colour or shape of an object that is there)."""
    names = {item.name for item in scene.items}
    if present:
        name = rng.choice(sorted(names))
    else:
        absent = [name for name in ALL_NAMES if name not in names]
        if strategy == "popular":
            absent = [name for name in absent if name in POPULAR_NAMES] or absent
        elif strategy == "adversarial":
            shapes, colours = {i.shape for i in scene.items}, {i.colour for i in scene.items}
            absent = [n for n in absent if n.split()[1] in shapes or n.split()[0] in colours] or absent
        name = rng.choice(absent)
    return Fact(f"Is there {lang.with_article(name)} in the image?", "yes" if present else "no", "existence")


def count(scene: Scene, rng: random.Random) -> Fact:
    """ "How many <shapes> are there in the image?", answered with a digit."""
    shape = rng.choice(sorted({item.shape for item in scene.items}))
    number = sum(item.shape == shape for item in scene.items)
    return Fact(f"How many {lang.plural(shape)} are there in the image?", str(number), "count")


def colour(scene: Scene, rng: random.Random) -> Fact | None:
    """ "What color is the <shape>?" for a shape the scene shows once."""
    shapes = Counter(item.shape for item in scene.items)
    lone = sorted(shape for shape, n in shapes.items() if n == 1)
    if not lone:
        return None
    shape = rng.choice(lone)
    item = next(item for item in scene.items if item.shape == shape)
    return Fact(f"What color is the {shape}?", item.colour, "color")


def colour_choice(scene: Scene, rng: random.Random) -> tuple[Fact, list[str]] | None:
    """A colour question with three wrong colours as distractors."""
    fact = colour(scene, rng)
    if fact is None:
        return None
    return fact, rng.sample([c for c in COLOURS if c != fact.answer], 3)


def left_of(scene: Scene, rng: random.Random, true: bool) -> Fact | None:
    """ "Is the <a> to the left of the <b>?" for two uniquely named objects whose centres are clearly apart."""
    names = Counter(item.name for item in scene.items)
    unique = [item for item in scene.items if names[item.name] == 1]
    pairs = [
        (a, b)
        for a in unique
        for b in unique
        if a is not b
        and (b.pixel_box[0] + b.pixel_box[2]) / 2 - (a.pixel_box[0] + a.pixel_box[2]) / 2
        > 0.5 * min(a.pixel_box[2] - a.pixel_box[0], b.pixel_box[2] - b.pixel_box[0])
    ]
    if not pairs:
        return None
    left, right = rng.choice(pairs)
    first, second = (left, right) if true else (right, left)
    return Fact(f"Is the {first.name} to the left of the {second.name}?", "yes" if true else "no", "position")


def colour_is(scene: Scene, rng: random.Random, true: bool) -> Fact | None:
    """ "Is the <shape> <colour>?" for a shape the scene shows once: its colour, or another."""
    fact = colour(scene, rng)
    if fact is None:
        return None
    shown = fact.answer if true else rng.choice([c for c in COLOURS if c != fact.answer])
    shape = fact.question.removeprefix("What color is the ").removesuffix("?")
    return Fact(f"Is the {shape} {shown}?", "yes" if true else "no", "color")


def count_is(scene: Scene, rng: random.Random, true: bool) -> Fact:
    """ "Are there <n> <shapes> in the image?": the true count, or one or two more."""
    shape = rng.choice(sorted({item.shape for item in scene.items}))
    number = sum(item.shape == shape for item in scene.items) + (0 if true else rng.choice((1, 2)))
    return Fact(f"Are there {number} {lang.plural(shape)} in the image?", "yes" if true else "no", "count")
