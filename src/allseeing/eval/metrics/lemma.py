"""Category words for scene-graph scoring: tokens, lemmas and the synonym table.

Upstream ran each predicted phrase through spaCy's small English model (a separate download) and mapped every
token's lemma through a synonym table. Here tokens come from a small spaCy-like splitter and lemmas from
``lemminflect`` (a PyPI package that carries its data), with a few overrides where the two disagree; a test
holds the result to spaCy's own lemmas over the whole class vocabulary (tests/eval/data/spacy_lemmas.json).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

# Where lemminflect's first noun lemma differs from what spaCy's model says for the class vocabulary (spaCy reads
# some of these words as verbs when they stand alone, which is how upstream met them).
_OVERRIDES = {"scissors": "scissor", "moped": "mop", "potted": "pot", "building": "build", "vases": "vas"}
_TOKEN = re.compile(r"'s\b|\w+|[^\w\s]")


def tokens(phrase: str) -> list[str]:
    """spaCy-like tokens: words, possessive ``'s`` and punctuation marks separately."""
    return _TOKEN.findall(phrase)


@cache
def lemma(token: str) -> str:
    """The lemma of one token (lower case), reading it as a noun: class words are nouns."""
    word = token.lower()
    if word in _OVERRIDES:
        return _OVERRIDES[word]
    if not word.isalpha():
        return word
    from lemminflect import getLemma  # imported on first use: the CLI starts without it

    candidates = getLemma(word, upos="NOUN")
    return candidates[0] if candidates else word


def lemmas(phrase: str) -> list[str]:
    return [lemma(token) for token in tokens(phrase)]


def load_synonyms(path: str | Path | None = None) -> dict[str, str]:
    """Synonym -> canonical class, from a file with one class per line, synonyms comma-separated, canonical first.

    Later lines win for a repeated synonym (as upstream's loader). ``path=None`` reads our COCO table.
    """
    if path is None:
        text = resources.files("allseeing.eval").joinpath("data/coco_synonyms.txt").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        names = [name.strip() for name in line.split(",") if name.strip()]
        for name in names:
            table[name] = names[0]
    return table
