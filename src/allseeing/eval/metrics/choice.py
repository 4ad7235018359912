"""Multiple-choice answers: the letter a model chose.

``official`` is upstream's rule (CRPE, VCR): the answer must be exactly one character, compared case-sensitively
with the correct letter; "A.", "(A)" or an empty answer count as wrong and are flagged invalid. ``fixed`` reads
the letter tolerantly ("A", "A.", "(A)", "A) cat", "The answer is A", or the exact text of one option) and flags
the answers from which no letter can be read.
"""

from __future__ import annotations

import re

from allseeing.data.templates import OPTION_LETTERS

_OPTION_LINE = re.compile(r"^\s*([A-H])[.)]\s+(.+?)\s*$", re.MULTILINE)
_LEADING_LETTER = re.compile(r"^\s*\(?([A-H])\s*(?:[.):,]|$|\s)")
_ANSWER_IS = re.compile(r"\b(?:answer|option|choice)\s+(?:is\s+)?:?\s*\(?([A-H])\b\)?", re.IGNORECASE)


def options_of(text: str) -> dict[str, str]:
    """The lettered options written in a question (``A. left of`` lines)."""
    return {letter: option for letter, option in _OPTION_LINE.findall(text)}


def stem_of(text: str) -> str:
    """A question without its option lines, whitespace normalised: the same for every rotation of its options."""
    return " ".join(_OPTION_LINE.sub("", text).split())


def official_choice(answer: str) -> tuple[str | None, bool]:
    """(the letter, invalid): upstream accepts a single character only (an empty answer is wrong there too)."""
    if len(answer) != 1:
        return None, True
    return answer, False


def tolerant_choice(answer: str, options: dict[str, str]) -> tuple[str | None, bool]:
    """(the letter, invalid) read tolerantly; the letter must be one of ``options`` when they are known."""
    allowed = set(options) or set(OPTION_LETTERS)
    for pattern in (_LEADING_LETTER, _ANSWER_IS):
        match = pattern.search(answer)
        if match and match.group(1) in allowed:
            return match.group(1), False
    normalised = _normalise(answer)
    for letter, option in options.items():
        if normalised and normalised == _normalise(option):
            return letter, False
    return None, True


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]+", "", text.lower()).strip()


def choose(answer: str | None, options: dict[str, str], protocol: str) -> tuple[str | None, bool]:
    """The chosen letter under ``protocol``; an unanswered question chooses nothing and is not invalid."""
    if answer is None:
        return None, False
    return official_choice(answer) if protocol == "official" else tolerant_choice(answer, options)
