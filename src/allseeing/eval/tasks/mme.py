"""MME (``llava_mme.jsonl``): two yes/no questions per image, 14 subtasks, scored as acc + acc+.

A question: ``{question_id, image, text, category}``, ``category`` the subtask (e.g. ``existence``), ``image``
``<subtask>/<file>`` under the image folder, ``text`` ending in "\\nAnswer the question using a single word or
phrase.". LLaVA's file gives both questions of an image the same ``question_id`` (the image); predictions are
looked up by id, so when ids repeat every question's id becomes ``<question_id>#<question>`` (the question without
that suffix), and :meth:`Mme.read_predictions` re-keys an answer file of LLaVA's (ids repeated, the question in
``prompt``) the same way. The truth: the ``MME_Benchmark_release_version`` folder given as ``annotations``
(``<subtask>/questions_answers_YN/<image>.txt`` where the subtask has an ``images`` folder, else
``<subtask>/<image>.txt``: lines ``question<TAB>Yes|No``, the question ending in " Please answer yes or no."), or
else an ``answer`` ("Yes"/"No") in each question.

Keys: ``perception`` (the sum of its 10 subtasks' scores: ASMv2's table's MME), ``cognition`` (its 4), ``subtasks``
(per subtask: accuracy, accuracy_plus, score = both added, at most 200; questions, images, other),
``missing_subtasks`` (MME's subtasks without a score: the sums leave them out), ``other`` (answers read as
neither yes nor no: wrong, and in ``invalid``), ``grouping`` and ``mixed_pairs``.

``official`` is LLaVA's ``convert_answer_to_mme.py`` then MME's ``eval_tool/calculation.py``: a subtask's
answered questions in the prediction file's order, cut in consecutive pairs for acc+ (an image's two questions
must be adjacent: a shuffled file pairs questions of different images, counted in ``mixed_pairs`` with a warning).
Where calculation.py's assert fails (a subtask with an odd number of answers) it pairs by image and counts a
missing answer as wrong (``grouping``: ``image``). ``fixed`` always pairs by image and counts every question, a
missing answer wrong. Answers are read the same way in both (:func:`~allseeing.eval.metrics.yes_no.mme_reading`).
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from allseeing.data.templates import SHORT_ANSWER
from allseeing.eval.metrics.yes_no import (
    COGNITION,
    OTHER,
    PERCEPTION,
    Accuracies,
    accuracies,
    mme_reading,
    total_score,
    truth_label,
)
from allseeing.eval.task import (
    EvalError,
    ScoreContext,
    answer_text,
    bookkeeping,
    index_predictions,
    key,
    percent,
    read_jsonl,
    require_all,
    scored_rows,
)
from allseeing.eval.tasks.common import SingleTurnTask

YES_OR_NO = "Please answer yes or no."


def stem(text: str) -> str:
    """A question without LLaVA's short-answer instruction (as convert_answer_to_mme.py removes it)."""
    return text.replace(SHORT_ANSWER, "").strip()


def unique_ids(records: list[dict], text_field: str, path: Path) -> list[dict]:
    """``records`` with ids that are unique: as they are when they already are, else every id becomes
    ``<question_id>#<question>`` (the question from ``text_field``, without the short-answer instruction)."""
    if len(records) == len({key(record["question_id"]) for record in records}):
        return records
    seen: set[str] = set()
    unique = []
    for record in records:
        text = record.get(text_field)
        if not isinstance(text, str):
            raise EvalError(f"{path}: question {record['question_id']!r} repeats its id and has no {text_field!r}")
        question_id = f"{key(record['question_id'])}#{stem(text)}"
        if question_id in seen:
            raise EvalError(f"{path}: question {question_id!r} is there twice")
        seen.add(question_id)
        unique.append({**record, "question_id": question_id})
    return unique


def read_truth_folder(folder: Path) -> dict[tuple[str, str, str], str]:
    """MME's answers by (subtask, answer file name, question), as convert_answer_to_mme.py's ``get_gt`` reads them."""
    if not folder.is_dir():
        raise EvalError(f"{folder}: not a folder (MME_Benchmark_release_version is)")
    truth = {}
    for subtask in sorted(path for path in folder.iterdir() if path.is_dir()):
        answers = subtask / "questions_answers_YN" if (subtask / "images").exists() else subtask
        if not answers.is_dir():
            raise EvalError(f"{subtask}: has images/ but no questions_answers_YN/")
        for file in sorted(answers.glob("*.txt")):
            with file.open(encoding="utf-8") as lines:  # universal newlines, as upstream's open()
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    fields = line.strip().split("\t")
                    if len(fields) != 2:
                        raise EvalError(f"{file}:{number}: not 'question<TAB>answer'")
                    truth[(subtask.name, file.name, fields[0])] = fields[1]
    if not truth:
        raise EvalError(f"{folder}: no MME answer files (<subtask>/[questions_answers_YN/]<image>.txt) there")
    return truth


def folder_answer(question: dict, truth: dict[tuple[str, str, str], str], path: Path) -> str:
    """A question's answer in MME's folder, looked up as convert_answer_to_mme.py does: the answer file named after
    the image, the question with " Please answer yes or no." added (with one space, else two, as MME writes some)."""
    subtask = question["category"]
    file = str(question["image"]).split("/")[-1].split(".")[0] + ".txt"
    asked = stem(question["text"])
    candidates = [asked] if YES_OR_NO in asked else [f"{asked} {YES_OR_NO}", f"{asked}  {YES_OR_NO}"]
    for candidate in candidates:
        if (subtask, file, candidate) in truth:
            return truth[(subtask, file, candidate)]
    raise EvalError(
        f"{path}: question {question['question_id']!r}: no answer in {subtask}/{file} for {candidates[0]!r}"
    )


class Mme(SingleTurnTask):
    name = "mme"
    max_new_tokens = 128  # model_vqa_loader's default
    fields = ("question_id", "image", "text", "category")

    def read_questions(self, path: Path) -> list[dict]:
        return unique_ids(read_jsonl(path), "text", path)

    def read_predictions(self, path: Path) -> dict[str, dict]:
        """A predictions file by question id; LLaVA's (each image's id on both its answers) re-keyed as the
        questions are, from each answer's ``prompt``."""
        return index_predictions(unique_ids(read_jsonl(path), "prompt", path), path)

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        path = context.questions_path
        require_all(questions, self.fields, path)
        truth = _truth(questions, context.options.get("annotations"), path)
        official = context.protocol == "official"
        rows = _rows(scored_rows(questions, predictions, official), truth)
        images, mixed = _by_position(rows) if official else (None, 0)
        grouping = "position"
        if images is None:
            grouping = "image"
            if official:  # calculation.py's assert fails on this partial file: every question, by image
                rows = _rows(scored_rows(questions, predictions, False), truth)
            images = _by_image(rows)
        if mixed:
            print(
                f"allseeing: warning: {mixed} MME answer pairs mix two images: calculation.py pairs a subtask's "
                f"answers by position, and the prediction file does not keep each image's two questions together; "
                f"official's acc+ (upstream's) means little; --protocol fixed pairs them by image",
                file=sys.stderr,
            )
        scores = {name: accuracies(hits) for name, hits in images.items()}
        by_name = {name: accuracy.score for name, accuracy in scores.items()}
        other = Counter(row.subtask for row in rows if row.other)
        return {
            "perception": _round(total_score(by_name, PERCEPTION)),
            "cognition": _round(total_score(by_name, COGNITION)),
            "subtasks": {name: _subtask(scores[name], other[name]) for name in _in_order(scores)},
            "missing_subtasks": [name for name in PERCEPTION + COGNITION if name not in scores],
            "other": sum(other.values()),
            "grouping": grouping,
            "mixed_pairs": mixed,
            **bookkeeping(questions, predictions, sum(other.values()), context.protocol),
        }


@dataclass(frozen=True, slots=True)
class _Row:
    """One scored question: its subtask, its image, whether it was answered right, whether the answer was read as
    neither yes nor no."""

    subtask: str
    image: object
    right: bool
    other: bool


def _truth(questions: list[dict], annotations: str | None, path: Path) -> dict[str, str]:
    """Each question's answer ("yes"/"no") by question id, from MME's folder or the questions' ``answer``."""
    folder = read_truth_folder(Path(annotations)) if annotations is not None else None
    truth = {}
    for question in questions:
        written = folder_answer(question, folder, path) if folder is not None else question.get("answer")
        label = truth_label(written)
        if label is None:
            where = "its answer in MME's folder" if folder is not None else "its 'answer' (no --annotations given)"
            raise EvalError(f"{path}: question {question['question_id']!r}: {where} {written!r} is not Yes/No")
        truth[key(question["question_id"])] = label
    return truth


def _rows(pairs: list[tuple[dict, dict | None]], truth: dict[str, str]) -> list[_Row]:
    rows = []
    for question, prediction in pairs:
        text = answer_text(prediction)
        reading = OTHER if text is None else mme_reading(text)
        other = text is not None and reading == OTHER
        rows.append(
            _Row(question["category"], question["image"], reading == truth[key(question["question_id"])], other)
        )
    return rows


def _by_position(rows: list[_Row]) -> tuple[dict[str, list[list[bool]]] | None, int]:
    """calculation.py's images: each subtask's rows cut in consecutive pairs, and how many pairs mix two images;
    None where a subtask has an odd number of rows (its assert)."""
    by_subtask: dict[str, list[_Row]] = {}
    for row in rows:
        by_subtask.setdefault(row.subtask, []).append(row)
    images, mixed = {}, 0
    for name, subtask_rows in by_subtask.items():
        if len(subtask_rows) % 2:
            return None, 0
        pairs = [subtask_rows[i : i + 2] for i in range(0, len(subtask_rows), 2)]
        mixed += sum(first.image != second.image for first, second in pairs)
        images[name] = [[row.right for row in pair] for pair in pairs]
    return images, mixed


def _by_image(rows: list[_Row]) -> dict[str, list[list[bool]]]:
    images: dict[str, dict[object, list[bool]]] = {}
    for row in rows:
        images.setdefault(row.subtask, {}).setdefault(row.image, []).append(row.right)
    return {name: list(hits.values()) for name, hits in images.items()}


def _subtask(scores: Accuracies, other: int) -> dict:
    return {
        "accuracy": percent(scores.right, scores.questions),
        "accuracy_plus": percent(scores.images_right, scores.images),
        "score": _round(scores.score),
        "questions": scores.questions,
        "images": scores.images,
        "other": other,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _in_order(scores: dict) -> list[str]:
    known = PERCEPTION + COGNITION
    return [name for name in known if name in scores] + sorted(set(scores) - set(known))
