"""Open-ended scene-graph recall (PSG), upstream's way (``official``) and a corrected way (``fixed``).

``official`` (upstream's ``eval_psg.py``): tuples come from upstream's extraction (``rec.compat``); every phrase linked
to a box is split into tokens, each token lemmatised and mapped through the synonym table (``['Unknown']`` when
a box has no phrase), and one predicted tuple is emitted per (subject token, object token) pair, so "the sky"
yields "the" and "sky". Ground-truth names are cut at the first '-' ("wall-other-merged" -> "wall") and not
lemmatised. A ground-truth tuple is recalled when ANY predicted tuple has equal tokens, both boxes at IoU >= 0.5
and the same predicate string. Recall is micro (matched / all ground truth); mean recall averages the
per-predicate recalls over the predicates present in the ground truth.

``fixed``: tuples come from our parser (numeric box matching, pairing per mention); a phrase is reduced to its
head word (the last word's lemma, through the synonym table, multi-word synonyms included) and so is a
ground-truth name after the cut at '-' ("table-merged" -> "dining table", as a predicted "table" becomes);
predicates are compared case- and space-insensitively; matching is one-to-one (a predicted tuple recalls at most
one ground truth).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from allseeing.eval.metrics.float32 import box32, iou32
from allseeing.eval.metrics.lemma import Lemmatizer
from allseeing.rec.boxes import Box, iou
from allseeing.rec.compat import UNKNOWN, extract
from allseeing.rec.parse import parse

IOU_THRESHOLD = 0.5

PixelBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class SceneTuple:
    subject: str
    subject_box: PixelBox
    object: str
    object_box: PixelBox
    predicate: str


@dataclass(frozen=True)
class Vocabulary:
    """How phrases become class words: a lemmatiser and a synonym table."""

    lemmatizer: Lemmatizer
    synonyms: dict[str, str]

    def official_categories(self, phrases: tuple[str, ...]) -> list[str]:
        """Every token of every phrase, lemmatised and mapped through the synonyms; ['Unknown'] when none."""
        found = [self.synonyms.get(word, word) for phrase in phrases for word in self.lemmatizer.lemmas(phrase)]
        return found or [UNKNOWN]

    def head_category(self, phrase: str | None) -> str:
        """The phrase's class: a multi-word synonym it ends with, else its last word's lemma through the synonyms
        (lower case)."""
        if not phrase:
            return UNKNOWN
        words = [word.lower() for word in self.lemmatizer.lemmas(phrase) if word.isalnum()]
        for length in range(min(3, len(words)), 1, -1):
            tail = " ".join(words[-length:])
            if tail in self.synonyms:
                return self.synonyms[tail]
        return self.synonyms.get(words[-1], words[-1]) if words else UNKNOWN


def official_predictions(
    text: str, to_pixels: Callable[[Box], PixelBox], vocabulary: Vocabulary
) -> tuple[list[SceneTuple], bool]:
    """Upstream's expanded tuples of one answer, and whether its format was correct."""
    extraction = extract(text)
    result = []
    for t in extraction.tuples:
        try:
            subject_box, object_box = to_pixels(t.subject_box), to_pixels(t.object_box)
        except ValueError:
            continue  # upstream drops a tuple whose conversion raises
        for subject in vocabulary.official_categories(t.subject_phrases):
            for obj in vocabulary.official_categories(t.object_phrases):
                result.append(SceneTuple(subject, subject_box, obj, object_box, t.predicate))
    return result, extraction.correct_format


def fixed_predictions(
    text: str, to_pixels: Callable[[Box], PixelBox], vocabulary: Vocabulary
) -> tuple[list[SceneTuple], bool]:
    """Tuples from our parser, one per triplet, classes by head word; format correct when nothing was wrong."""
    document = parse(text, mode="lenient")
    result = []
    for t in document.triplets:
        try:
            subject_box, object_box = to_pixels(t.subject_box), to_pixels(t.object_box)
        except ValueError:
            continue
        result.append(
            SceneTuple(
                vocabulary.head_category(t.subject),
                subject_box,
                vocabulary.head_category(t.object),
                object_box,
                normalise_predicate(t.predicate),
            )
        )
    return result, not document.errors


def normalise_predicate(predicate: str) -> str:
    return " ".join(predicate.lower().split())


def ground_truth(raw: list, fixed: bool, vocabulary: Vocabulary) -> list[SceneTuple]:
    """``relation_tuples`` rows ([subject, box, object, box, predicate], pixels) as tuples (``official``: boxes
    in float32, as upstream's tensors)."""
    result = []
    for subject, subject_box, obj, object_box, predicate in raw:
        subject, obj = subject.split("-")[0], obj.split("-")[0]  # "wall-other-merged" -> "wall"
        if fixed:
            subject, obj = vocabulary.head_category(subject), vocabulary.head_category(obj)
            predicate = normalise_predicate(predicate)
            result.append(SceneTuple(subject, tuple(subject_box), obj, tuple(object_box), predicate))
        else:
            result.append(SceneTuple(subject, box32(subject_box), obj, box32(object_box), predicate))
    return result


def _matches(prediction: SceneTuple, truth: SceneTuple, overlap: Callable[[PixelBox, PixelBox], float]) -> bool:
    return (
        prediction.subject == truth.subject
        and prediction.object == truth.object
        and prediction.predicate == truth.predicate
        and overlap(prediction.subject_box, truth.subject_box) >= IOU_THRESHOLD
        and overlap(prediction.object_box, truth.object_box) >= IOU_THRESHOLD
    )


def recalled(predictions: list[SceneTuple], truths: list[SceneTuple], official: bool) -> list[bool]:
    """Which ground-truth tuples are recalled: ``official`` by any prediction, IoU in float32 (upstream's);
    ``fixed`` greedily one-to-one in ground-truth order."""
    overlap = iou32 if official else iou
    used: set[int] = set()
    result = []
    for truth in truths:
        hit = next(
            (i for i, p in enumerate(predictions) if (official or i not in used) and _matches(p, truth, overlap)),
            None,
        )
        if hit is not None and not official:
            used.add(hit)
        result.append(hit is not None)
    return result
