"""Fuzzing: random and mutated ReC strings never break the parser, and every offset stays inside the text.

The default run checks 5,000 strings; ``pytest -m slow`` checks 100,000.
"""

import random

import pytest

from allseeing.rec import tags
from allseeing.rec.parse import ReCParseError, parse
from allseeing.rec.write import object_mention, relation_mention

PIECES = [
    *tags.ALL_TAGS,
    tags.IMAGE,
    tags.EOS,
    "<b>",
    "</b>",
    "<",
    ">",
    "[",
    "]",
    "[[",
    "]]",
    ",",
    " ",
    "\n",
    "1",
    "999",
    "1000",
    "-3",
    "1.5",
    "nan",
    "dog",
    "left",
    '"',
    "{",
    "}",
    "null",
]


def canonical(rng: random.Random) -> str:
    def box():
        x1, x2 = sorted(rng.randint(0, 999) for _ in range(2))
        y1, y2 = sorted(rng.randint(0, 999) for _ in range(2))
        return (x1, y1, x2, y2)

    boxes = [[box() for _ in range(rng.randint(0, 3))] for _ in range(rng.randint(1, 4))]
    parts = [object_mention(rng.choice(["dog", "a cat", "road"]), b) for b in boxes]
    for _ in range(rng.randint(0, 3)):
        parts.append(relation_mention(rng.choice(["on", "near"]), rng.choice(boxes), rng.choice(boxes)))
    rng.shuffle(parts)
    return " and ".join(parts)


def mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 6)):
        position = rng.randint(0, len(text))
        kind = rng.randrange(5)
        if kind == 0:
            text = text[:position] + rng.choice(PIECES) + text[position:]
        elif kind == 1:
            text = text[:position] + text[position + rng.randint(1, 12) :]
        elif kind == 2:
            end = min(len(text), position + rng.randint(1, 30))
            text = text[:position] + text[position:end] * 2 + text[end:]
        elif kind == 3:
            text = text[:position]
        else:
            text = text[:position] + chr(rng.randint(0, 0x2FF)) + text[position:]
    return text


def random_string(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 40)))


def check(text: str) -> None:
    doc = parse(text, mode="lenient")
    for error in doc.errors:
        assert 0 <= error.offset < len(text), (text, error)
    for mention in (*doc.objects, *doc.relations):
        assert 0 <= mention.start < mention.end <= len(text), (text, mention)
        assert 0 <= mention.caption_start <= len(doc.caption)
    for mention in parse(text, mode="compat").objects:
        assert 0 <= mention.start < mention.end <= len(text), (text, mention)
    try:
        parse(text, mode="strict")
    except ReCParseError as error:
        assert 0 <= error.offset < len(text)


def run(count: int, seed: int) -> None:
    rng = random.Random(seed)
    for index in range(count):
        check(random_string(rng) if index % 3 == 0 else mutate(rng, canonical(rng)))


def test_fuzz_default_count():
    run(5_000, seed=1)


@pytest.mark.slow
def test_fuzz_full_count():
    run(100_000, seed=2)


def test_pathological_inputs():
    for text in [
        "<box>" + "[" * 100_000 + "</box>",
        "<ref>a</ref><box>" + "[" * 100_000,
        "<" * 10_000,
        "</box>" * 1000,
    ]:
        check(text)
