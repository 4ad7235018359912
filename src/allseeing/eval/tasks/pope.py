"""POPE (``llava_pope_test.jsonl``): object hallucination as yes/no questions, in three splits.

A question: ``{question_id, image, text, category}``, ``category`` the split (adversarial, popular, random),
``text`` ending in "\\nAnswer the question using a single word or phrase.". The truth: POPE's annotation files
``coco_pope_<split>.json`` (JSON lines ``{question_id, image, text, label}``) in the folder given as
``annotations``, or else a ``label`` ("yes"/"no") in each question. LLaVA numbers a split's questions
``k x 10,000,000 + POPE's question_id`` (adversarial k = 0, random 1, popular 2).

Keys: ``f1`` and ``accuracy`` (means over the splits; the F1 mean is the number LLaVA-1.5's and ASMv2's tables
report), ``splits`` (per split: accuracy, precision, recall, f1, yes_ratio, tp/fp/tn/fn, scored, mismatched) and
``mismatched`` (answers scored against another question's label).

``official`` is ``llava/eval/eval_pope.py``: a split's answers, in the prediction file's order, are zipped with
the annotation file's labels in its order (or, with labels in the questions, the split's questions in the
question file's order); so a shuffled or partial prediction file, or an annotation file of another POPE version,
scores answers against other questions' labels. ``mismatched`` counts them, with a warning. ``fixed`` pairs each
question with its own label (by number, checking image and question; another version is an error), scores every
question (a missing or unreadable answer is wrong) and reads answers as :mod:`~allseeing.eval.metrics.yes_no` says.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from allseeing.eval.metrics.yes_no import YES, Confusion, has_word, pope_reading, truth_label
from allseeing.eval.task import (
    EvalError,
    ScoreContext,
    answer_text,
    bookkeeping,
    key,
    mean_percent,
    percent,
    read_jsonl,
    require_all,
    scored_rows,
)
from allseeing.eval.tasks.common import SingleTurnTask

SPLITS = ("adversarial", "popular", "random")
LLAVA_SPLIT_STRIDE = 10_000_000
_ANNOTATION_FILE = re.compile(r"^coco_pope_(.+)\.json$")


@dataclass(frozen=True)
class Label:
    """The truth of one POPE question and what identifies that question."""

    number: str
    image: object
    question: str
    label: str


def pope_number(question_id: object) -> str:
    """The POPE question number within its split: LLaVA's id less its split's multiple of 10,000,000; an id that is
    not a number is its own."""
    text = key(question_id)
    return str(int(text) % LLAVA_SPLIT_STRIDE) if text.isascii() and text.isdigit() else text


def question_stem(text: str) -> str:
    """A question as POPE's files write it, for comparing: its first line, case and spacing normalised, and
    "imange" read as "image" (POPE's later files corrected that spelling; LLaVA's question file has it)."""
    return " ".join(text.split("\n")[0].lower().split()).replace("imange", "image")


def read_annotations(path: Path) -> dict[str, list[Label]]:
    """POPE's labels by split, each in its file's order, from a folder of ``coco_pope_<split>.json`` files (other
    files are ignored) or from one such file."""
    files = [path] if path.is_file() else sorted(path.glob("coco_pope_*.json")) if path.is_dir() else []
    splits = {}
    for file in files:
        match = _ANNOTATION_FILE.match(file.name)
        if not match:
            raise EvalError(f"{file}: a POPE annotation file is named coco_pope_<split>.json")
        labels = []
        for record in read_jsonl(file):
            label = truth_label(record.get("label"))
            if label is None:
                raise EvalError(
                    f"{file}: question {record['question_id']!r}: label {record.get('label')!r} is not yes/no"
                )
            labels.append(Label(pope_number(record["question_id"]), record.get("image"), record.get("text", ""), label))
        splits[match.group(1)] = labels
    if not splits:
        raise EvalError(f"{path}: no POPE annotation file (coco_pope_<split>.json) there")
    return splits


def labels_in_questions(questions: list[dict], path: Path) -> dict[str, list[Label]]:
    """The labels written in the questions (``label``), by split, in question-file order."""
    splits: dict[str, list[Label]] = {}
    for question in questions:
        label = truth_label(question.get("label"))
        if label is None:
            raise EvalError(
                f"{path}: question {question['question_id']!r} has no label (yes/no) and no --annotations were given"
            )
        own = Label(key(question["question_id"]), question["image"], question["text"], label)
        splits.setdefault(question["category"], []).append(own)
    return splits


def belongs(question: dict, label: Label, numbered: bool) -> bool:
    """Whether ``label`` is the truth of ``question`` (``numbered``: annotation labels, found by POPE's number)."""
    number = pope_number(question["question_id"]) if numbered else key(question["question_id"])
    return (
        number == label.number
        and question["image"] == label.image
        and question_stem(question["text"]) == question_stem(label.question)
    )


@dataclass
class Split:
    """One split's counts: its confusion matrix, the answers read as yes among ``answers`` (the yes-ratio's
    denominator), answers without a word, and answers scored against another question's label."""

    confusion: Confusion
    yes: int = 0
    answers: int = 0
    invalid: int = 0
    mismatched: int = 0

    def result(self) -> dict:
        c = self.confusion
        return {
            "accuracy": _percent(c.accuracy()),
            "precision": _percent(c.precision()),
            "recall": _percent(c.recall()),
            "f1": _percent(c.f1()),
            "yes_ratio": percent(self.yes, self.answers),
            "tp": c.tp,
            "fp": c.fp,
            "tn": c.tn,
            "fn": c.fn,
            "scored": c.total,
            "mismatched": self.mismatched,
        }


class Pope(SingleTurnTask):
    name = "pope"
    max_new_tokens = 128  # model_vqa_loader's default
    fields = ("question_id", "image", "text", "category")

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        path = context.questions_path
        require_all(questions, self.fields, path)
        annotations = context.options.get("annotations")
        numbered = annotations is not None
        truth = read_annotations(Path(annotations)) if numbered else labels_in_questions(questions, path)
        if context.protocol == "official":
            splits = _official(questions, predictions, truth, numbered)
        else:
            splits = _fixed(questions, predictions, truth, numbered, path)
        mismatched = sum(split.mismatched for split in splits.values())
        if mismatched:
            print(
                f"allseeing: warning: {mismatched} POPE answers were scored against another question's label: "
                f"eval_pope.py pairs answers and labels by position, and the prediction file is not in the "
                f"annotation file's order (or the annotations are another POPE version: LLaVA-1.5's is commit "
                f"e3e3926 of AoiDragon/POPE); official's number (upstream's) means little; --protocol fixed pairs "
                f"them by question",
                file=sys.stderr,
            )
        scored = [split for split in splits.values() if split.confusion.total]
        invalid = sum(split.invalid for split in splits.values())
        return {
            "f1": _mean([split.confusion.f1() for split in scored]),
            "accuracy": _mean([split.confusion.accuracy() for split in scored]),
            "splits": {name: splits[name].result() for name in _in_order(splits)},
            "mismatched": mismatched,
            **bookkeeping(questions, predictions, invalid, context.protocol),
        }


def _official(
    questions: list[dict], predictions: dict[str, dict], truth: dict[str, list[Label]], numbered: bool
) -> dict[str, Split]:
    """eval_pope.py: per split with labels, its answers in prediction-file order zipped with its labels in file
    order (the shorter one cut); the yes-ratio over all its answers. An answer that is not text (eval_pope.py
    fails on it) is wrong."""
    rows = scored_rows(questions, predictions, official=True)
    splits = {}
    for name, labels in truth.items():
        answered = [
            (question, answer_text(prediction)) for question, prediction in rows if question["category"] == name
        ]
        readings = [None if text is None else pope_reading(text, official=True) for _, text in answered]
        split = Split(Confusion(), yes=readings.count(YES), answers=len(readings))
        split.invalid = sum(text is not None and not has_word(text) for _, text in answered)
        # strict=False: upstream's zip cuts the longer of answers and labels.
        for (question, _), reading, label in zip(answered, readings, labels, strict=False):
            split.confusion.add(reading, label.label)
            split.mismatched += not belongs(question, label, numbered)
        splits[name] = split
    return splits


def _fixed(
    questions: list[dict], predictions: dict[str, dict], truth: dict[str, list[Label]], numbered: bool, path: Path
) -> dict[str, Split]:
    """Every question against its own label; a missing or unreadable answer is wrong; the yes-ratio over every
    question."""
    index: dict[str, dict[str, Label]] = {}
    for name, labels in truth.items():
        index[name] = {}
        for label in labels:
            if label.number in index[name]:
                raise EvalError(f"POPE split {name!r}: two labels for question number {label.number!r}")
            index[name][label.number] = label
    splits: dict[str, Split] = {}
    for question, prediction in scored_rows(questions, predictions, official=False):
        name = question["category"]
        number = pope_number(question["question_id"]) if numbered else key(question["question_id"])
        label = index.get(name, {}).get(number)
        if label is None:
            raise EvalError(f"{path}: question {question['question_id']!r}: no label in split {name!r}")
        if not belongs(question, label, numbered):
            raise EvalError(
                f"{path}: question {question['question_id']!r} ({question['image']}: "
                f"{question_stem(question['text'])!r}) is not the annotation's question {label.number} "
                f"({label.image}: {question_stem(label.question)!r}): the annotations are another POPE version "
                f"(LLaVA-1.5's is commit e3e3926 of AoiDragon/POPE)"
            )
        text = answer_text(prediction)
        reading = None if text is None else pope_reading(text, official=False)
        split = splits.setdefault(name, Split(Confusion()))
        split.confusion.add(reading, label.label)
        split.yes += reading == YES
        split.answers += 1
        split.invalid += text is not None and reading is None
    return splits


def _mean(fractions: list[float | None]) -> float | None:
    """The mean over splits as a percentage; None when a split has no value (or no split was scored)."""
    if not fractions or any(value is None for value in fractions):
        return None
    return mean_percent(fractions, exact=True)


def _percent(fraction: float | None) -> float | None:
    # As eval_pope.py prints a fraction, x 100, 2 decimals (``percent`` gives n / d * 100 the same way).
    return None if fraction is None else round(fraction * 100, 2)


def _in_order(splits: dict[str, Split]) -> list[str]:
    return [name for name in SPLITS if name in splits] + sorted(set(splits) - set(SPLITS))
