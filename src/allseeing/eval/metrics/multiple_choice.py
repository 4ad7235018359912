"""The letter a multiple-choice answer chose, read as each general benchmark's official scorer reads it, and
MMBench's circular groups.

- :func:`can_infer` is MMBench's answer extraction: VLMEvalKit's ``can_infer`` (``vlmeval/utils/matching_util.py``
  in open-compass/VLMEvalKit, as it stood from 2024-02 to 2025-08: MMBench's evaluator when ASMv2 was scored).
  First a letter standing alone as a word ("A", "A.", "(B) cat", "The answer is C"), when exactly one of the
  options' letters does; else the one option whose text the answer contains. Its GPT fallback is not reproduced:
  what it cannot read is None (counted as wrong).
- :func:`science_qa_choice` is ``llava/eval/eval_science_qa.py``'s reading (OpenGVLab/all-seeing).
- :func:`circular_hits` is MMBench's circular evaluation: the rotations of a question are the rows whose TSV
  ``index`` agree modulo 1,000,000 (the official TSVs hold the question at ``index`` and its rotated copies at
  ``index + k * 1,000,000``); the question counts only if every row is right.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from allseeing.data.templates import MMBENCH_CIRCULAR_STEP

REFUSAL = "Z"  # can_infer's letter for a refusal to answer: never a correct option
# Answers VLMEvalKit reads as a refusal wherever they occur.
_REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_API_FAILURE = "Failed to obtain answer via API"  # VLMEvalKit's marker of a failed API call: no letter then
_PUNCTUATION = str.maketrans(dict.fromkeys(".()[],:;!*#{}", " "))


SCIENCE_QA_LETTERS = ("A", "B", "C", "D", "E")  # eval_science_qa.py's --options default
# Upstream's pattern as written: its unescaped "." takes any one character after the letter.
_SCIENCE_QA_ANSWER_IS = re.compile(r"The answer is ([A-Z]).")


def infer_option(answer: str, letters: Iterable[str]) -> str | None:
    """The one of ``letters`` that stands alone as a word of ``answer`` once ``.()[],:;!*#{}`` are spaces;
    :data:`REFUSAL` for a refusal (or a lone "Z"); None when no letter or several do."""
    if _API_FAILURE in answer:
        return None
    if any(refusal in answer for refusal in _REFUSALS):
        return REFUSAL
    words = set(answer.translate(_PUNCTUATION).split())
    found = [letter for letter in letters if letter in words]
    if len(found) == 1:
        return found[0]
    if not found and REFUSAL in words:
        return REFUSAL
    return None


def infer_text(answer: str, choices: Mapping[str, str]) -> str | None:
    """The letter of the one option whose text (lowercased) is inside ``answer`` (lowercased); None when no option
    or several are."""
    answer = answer.lower()
    found = [letter for letter, text in choices.items() if str(text).lower() in answer]
    return found[0] if len(found) == 1 else None


def can_infer(answer: str, choices: Mapping[str, str]) -> str | None:
    """MMBench's letter for ``answer`` given the options ``choices`` ({letter: text}); None when it cannot tell."""
    return infer_option(answer, choices) or infer_text(answer, choices)


def circular_hits(correct: Mapping[int, bool]) -> dict[int, bool]:
    """For every question (a row with ``index < MMBENCH_CIRCULAR_STEP``): whether all rows of its ``index`` modulo
    MMBENCH_CIRCULAR_STEP are right. ``correct``: {TSV index: whether that row was answered right}. A rotated copy whose
    question row is absent is ignored, as MMBench's evaluator ignores it."""
    every: dict[int, bool] = {}
    for index, right in correct.items():
        main = index % MMBENCH_CIRCULAR_STEP
        every[main] = every.get(main, True) and right
    return {index: every[index] for index in correct if index < MMBENCH_CIRCULAR_STEP}


def science_qa_letter(answer: str) -> str | None:
    """The letter ``eval_science_qa.py`` reads: the answer is one of A-E, or starts with "A. ", or says
    "The answer is A" followed by any character exactly once; else None (upstream's "FAILED")."""
    if answer in SCIENCE_QA_LETTERS:
        return answer
    if len(answer) >= 3 and answer[0] in SCIENCE_QA_LETTERS and answer[1:3] == ". ":
        return answer[0]
    found = _SCIENCE_QA_ANSWER_IS.findall(answer)
    return found[0] if len(found) == 1 else None


def science_qa_choice(answer: str, choices: int) -> int:
    """The index of the option chosen among ``choices`` options, or -1 (upstream's ``get_pred_idx``: no letter,
    or a letter past the last option; its random guess comes after a ``return -1`` and never runs)."""
    letter = science_qa_letter(answer)
    allowed = SCIENCE_QA_LETTERS[:choices]
    return allowed.index(letter) if letter in allowed else -1


def tally(items: Iterable[tuple[str, bool]]) -> dict[str, tuple[int, int]]:
    """(right, total) per name, names sorted."""
    counts: dict[str, list[int]] = {}
    for name, right in items:
        count = counts.setdefault(name, [0, 0])
        count[0] += right
        count[1] += 1
    return {name: (counts[name][0], counts[name][1]) for name in sorted(counts)}
