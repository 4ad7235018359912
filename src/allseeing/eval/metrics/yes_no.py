"""Yes/no answers and their scores: POPE's confusion matrix, MME's accuracy and accuracy+.

Reading an answer:

- POPE, ``official`` (``llava/eval/eval_pope.py`` in OpenGVLab/all-seeing, LLaVA-1.5's): the first sentence
  (up to the first "."), commas removed, split at single spaces; "No", "not" or "no" among the words reads as
  no, anything else as yes (an empty answer too). ``fixed`` reads the same words case-insensitively, split at
  any whitespace with punctuation stripped ("Not at all", "NO", "No!", "No\\nthere is none" are no, not yes), and
  an answer without a word in its first sentence is unreadable instead of yes.
- MME (``eval_tool/calculation.py`` of MME): the first 4 characters of the lowercased answer; "yes" among them
  reads as yes, else "no" as no, else "other", which never matches the truth. The same in both protocols.

Imports nothing of the evaluation but its error: the task modules pair answers with truth and format numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

YES, NO, OTHER = "yes", "no", "other"

# MME's subtasks, in the order calculation.py adds them up (the order of a float sum can move its last bit).
PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark", "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")

_WORD = re.compile(r"\w+")


def pope_reading(answer: str, official: bool) -> str | None:
    """POPE's reading of an answer: ``"yes"``, ``"no"``, or None (``fixed`` only) when it has no word."""
    sentence = answer.split(".")[0]
    if official:
        words = sentence.replace(",", "").split(" ")
        return NO if "No" in words or "not" in words or "no" in words else YES
    words = _WORD.findall(sentence.lower())
    if not words:
        return None
    return NO if "no" in words or "not" in words else YES


def has_word(answer: str) -> bool:
    """Whether POPE's first sentence of an answer holds a word (``official`` reads one without as yes)."""
    return pope_reading(answer, official=False) is not None


def mme_reading(answer: str) -> str:
    """MME's reading of an answer: ``"yes"``, ``"no"`` or ``"other"``, from its first 4 characters."""
    # calculation.py lowercases the whole line's last field, then looks at 4 characters: lower() can lengthen a
    # character (e.g. "İ"), so the cut comes after it. Its exact-match test ("yes", "no") is implied by this one.
    prefix = answer.lower()[:4]
    if YES in prefix:
        return YES
    if NO in prefix:
        return NO
    return OTHER


def truth_label(value: object) -> str | None:
    """A ground-truth answer as ``"yes"``/``"no"`` (any case, surrounding spaces ignored), None when it is neither."""
    if not isinstance(value, str):
        return None
    label = value.strip().lower()
    return label if label in (YES, NO) else None


@dataclass
class Confusion:
    """A yes/no confusion matrix, "yes" the positive class, as eval_pope.py counts it."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, said: str | None, truth: str) -> None:
        """Count one answer; ``said`` None (no answer, or none readable) is wrong: the opposite of ``truth``."""
        if said is None:
            said = NO if truth == YES else YES
        if said == YES:
            if truth == YES:
                self.tp += 1
            else:
                self.fp += 1
        elif truth == NO:
            self.tn += 1
        else:
            self.fn += 1

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    def accuracy(self) -> float | None:
        return (self.tp + self.tn) / self.total if self.total else None

    def precision(self) -> float | None:
        """None without a yes among the answers (eval_pope.py divides by zero there)."""
        return float(self.tp) / float(self.tp + self.fp) if self.tp + self.fp else None

    def recall(self) -> float | None:
        """None without a yes among the truths (eval_pope.py divides by zero there)."""
        return float(self.tp) / float(self.tp + self.fn) if self.tp + self.fn else None

    def f1(self) -> float | None:
        """2PR / (P + R) as eval_pope.py computes it; 0 where no answer is a true yes but some answer is wrong (its
        limit; eval_pope.py divides by zero there), None without rows."""
        if not self.total:
            return None
        if self.tp == 0:
            return 0.0 if self.fp + self.fn else None
        precision, recall = self.precision(), self.recall()
        return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class Accuracies:
    """MME's two numbers of a subtask, as fractions: per question and per image (every question right)."""

    questions: int
    right: int
    images: int
    images_right: int

    @property
    def accuracy(self) -> float:
        return self.right / self.questions

    @property
    def accuracy_plus(self) -> float:
        return self.images_right / self.images

    @property
    def score(self) -> float:
        """acc x 100 + acc+ x 100 (at most 200), added in calculation.py's order."""
        score = 0.0
        score += self.accuracy * 100
        score += self.accuracy_plus * 100
        return score


def accuracies(images: list[list[bool]]) -> Accuracies:
    """MME's accuracies of a subtask from whether each question of each image was answered right; an image counts
    for accuracy+ when all its questions are (MME has two per image: calculation.py needs both)."""
    return Accuracies(
        questions=sum(len(image) for image in images),
        right=sum(sum(image) for image in images),
        images=len(images),
        images_right=sum(all(image) for image in images),
    )


def total_score(scores: dict[str, float], subtasks: tuple[str, ...]) -> float | None:
    """The sum of the ``subtasks``' scores that exist, in calculation.py's order; None when none does."""
    present = [scores[name] for name in subtasks if name in scores]
    if not present:
        return None
    total = 0.0
    for score in present:
        total += score
    return total
