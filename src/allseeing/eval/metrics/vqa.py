"""Short answers against human answers: the normalisers and accuracies of VQAv2, VizWiz, TextVQA and GQA.

Three normalisers, each as its upstream writes it, quirks included:

- :func:`evalai_answer`: ``EvalAIAnswerProcessor`` of ``llava/eval/m4c_evaluator.py`` (OpenGVLab/all-seeing,
  from MMF). LLaVA's ``scripts/convert_vqav2_for_submission.py`` and ``convert_vizwiz_for_submission.py`` pass
  every answer through it before upload, and TextVQA's evaluator passes both sides through it.
- :func:`vqa_api_answer`: ``processPunctuation`` then ``processDigitArticle`` of the VQA API
  (``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` in GT-Vision-Lab/VQA), which VizWiz's API copies.
- :func:`gqa_answer`: LLaVA's ``scripts/convert_gqa_for_eval.py`` (after ``model_vqa_loader`` stripped the text).

Both punctuation steps share two upstream slips, kept: the period pattern ``(?!<=\\d)(\\.)(?!\\d)`` opens with a
look*ahead* (a lookbehind was meant), so a period goes unless a digit follows it, whatever precedes; and
``re.UNICODE`` is passed where ``sub`` takes its count, so at most 32 periods go.

Accuracy (:func:`consensus`): the mean, over the leave-one-out subsets of the human answers (ten subsets of nine
for ten answers), of min(1, humans in the subset who gave the answer / 3). Sums run left to right, as upstream's
``sum`` did on the Python it ran on (3.12's ``sum`` compensates rounding; :func:`ordered_sum` does not).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll", "let's": "let's",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
    "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
    "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}  # fmt: skip
NUMBERS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
ARTICLES = frozenset(("a", "an", "the"))
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_PERIODS_REMOVED = int(re.UNICODE)  # upstream's ``sub("", text, re.UNICODE)``: the flag lands on ``count``
_DIGIT_COMMA_API = re.compile(r"(\d)(\,)(\d)")
_DIGIT_COMMA_EVALAI = re.compile(r"(?<=\d)(\,)+(?=\d)")
_CACHE = 1 << 18  # distinct answers kept normalised; VQAv2's val holds about 200,000


def ordered_sum(values: Iterable[float]) -> float:
    """Floats added left to right (upstream's ``sum`` before Python 3.12)."""
    total = 0.0
    for value in values:
        total += value
    return total


def _punctuation(text: str, digit_comma: re.Pattern[str]) -> str:
    """``processPunctuation``: each mark removed when it touches a space somewhere in ``text`` (or ``text`` has a
    digit-comma-digit), else replaced by a space; then the periods not before a digit."""
    remove_all = digit_comma.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        if remove_all or mark + " " in text or " " + mark in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD.sub("", out, count=_PERIODS_REMOVED)


def _digits_articles(text: str) -> str:
    """``processDigitArticle``: lower case, number words up to ten as digits, articles dropped, contractions
    given their apostrophe, words joined by single spaces."""
    words = [NUMBERS.get(word, word) for word in text.lower().split()]
    return " ".join(CONTRACTIONS.get(word, word) for word in words if word not in ARTICLES)


def _spaced(text: str) -> str:
    """Newlines and tabs as spaces, the ends stripped (both upstream scorers begin so)."""
    return text.replace("\n", " ").replace("\t", " ").strip()


@lru_cache(maxsize=_CACHE)
def evalai_answer(text: str) -> str:
    """``EvalAIAnswerProcessor``: lower case, commas and question marks dropped, ``'s`` split off, then the VQA
    punctuation and digit/article steps."""
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    return _digits_articles(_punctuation(_spaced(text), _DIGIT_COMMA_EVALAI))


@lru_cache(maxsize=_CACHE)
def vqa_api_answer(text: str) -> str:
    """The VQA API's normalisation of one answer (newlines and tabs as spaces, stripped, punctuation, digits and
    articles)."""
    return _digits_articles(_punctuation(_spaced(text), _DIGIT_COMMA_API))


@lru_cache(maxsize=_CACHE)
def submitted_answer(text: str) -> str:
    """An answer as LLaVA's pipeline uploads it and the VQA API then reads it (the fixed protocol's normaliser of
    both sides)."""
    return vqa_api_answer(evalai_answer(text))


def gqa_answer(text: str) -> str:
    """``model_vqa_loader`` strips the generation, ``convert_gqa_for_eval.py`` drops final periods and lowers it."""
    return text.strip().rstrip(".").lower()


def consensus(answer: str, humans: Sequence[str]) -> float:
    """Mean over the leave-one-out subsets of ``humans`` of min(1, matches / 3); the strings compare as given."""
    matches = humans.count(answer)
    return ordered_sum(min(1, (matches - (human == answer)) / 3) for human in humans) / len(humans)


def vqav2_official(prediction: str, humans: Sequence[str]) -> float:
    """One VQAv2 question as the evaluation server scores LLaVA's upload: the answer through
    :func:`evalai_answer` (the submission script), then the VQA API, which normalises the answer and the human
    answers only when the humans disagree (unanimous humans are compared as written)."""
    answer = _spaced(evalai_answer(prediction))
    humans = [_spaced(human) for human in humans]
    if len(set(humans)) > 1:
        humans = [vqa_api_answer(human) for human in humans]
        answer = vqa_api_answer(answer)
    return consensus(answer, humans)


def vizwiz_official(prediction: str, humans: Sequence[str]) -> float:
    """One VizWiz question as its server scores LLaVA's upload: the answer through :func:`evalai_answer`, then
    VizWiz's API, which normalises the answer always and the human answers never."""
    return consensus(vqa_api_answer(evalai_answer(prediction)), humans)


def normalised_consensus(prediction: str, humans: Sequence[str]) -> float:
    """The fixed protocol's VQAv2 and VizWiz accuracy: both sides through :func:`submitted_answer`, always."""
    return consensus(submitted_answer(prediction), [submitted_answer(human) for human in humans])


def textvqa_accuracy(prediction: str, humans: Sequence[str]) -> float:
    """``TextVQAAccuracyEvaluator``: both sides through :func:`evalai_answer`, then :func:`consensus`."""
    return consensus(evalai_answer(prediction), [evalai_answer(human) for human in humans])


def api_percent(total: float, count: int) -> float | None:
    """A mean as the VQA and VizWiz APIs round it: ``round(100 * total / count, 2)`` (not ``total / count *
    100``, which can differ in the last bit); None when there is nothing to average."""
    return round(100 * total / count, 2) if count else None
