"""VQAv2 and VizWiz: short answers scored by consensus with ten human answers, and their submission files.

Questions: LLaVA-1.5's JSONL (``llava_vqav2_mscoco_test-dev2015.jsonl``, VizWiz's ``llava_test.jsonl``, or a val
file of the same shape), each ``{question_id, image, text}`` whose text already ends with the answer instruction;
asked as ``<image>\\n`` + text (``model_vqa_loader``). The truth, from ``--annotations`` when given:

- VQAv2: ``v2_mscoco_val2014_annotations.json`` (``annotations: [{question_id, answers: [{answer}], answer_type}]``),
  paired by ``question_id``;
- VizWiz: ``val.json`` (``[{image, answers: [{answer}], answer_type}]``), paired by the image file name;

else in each question record: ``answers`` (a list of strings or of ``{answer}``) and optionally ``answer_type``.

Keys: ``accuracy`` and ``per_answer_type`` (percent). Both protocols score every question, an unanswered one as
wrong: LLaVA's VQAv2 upload answers it with ``""`` (its VizWiz script asserts instead). ``official`` is the server's
number for LLaVA's upload (:func:`~allseeing.eval.metrics.vqa.vqav2_official`,
:func:`~allseeing.eval.metrics.vqa.vizwiz_official`), summed in the annotation file's order as the APIs loop;
``fixed`` normalises both sides the same way always (the APIs leave unanimous VQAv2 humans and every VizWiz human
as written) and sums exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from allseeing.eval.metrics.vqa import (
    api_percent,
    evalai_answer,
    normalised_consensus,
    ordered_sum,
    vizwiz_official,
    vqav2_official,
)
from allseeing.eval.task import EvalError, ScoreContext, answer_text, bookkeeping, key, read_json, require_all
from allseeing.eval.tasks.common import SingleTurnTask


@dataclass(frozen=True)
class Humans:
    """The human answers to one question; ``rank``: the question's place in the file the truth came from."""

    answers: tuple[str, ...]
    answer_type: str | None
    rank: int


def annotations_of(context: ScoreContext) -> Path | None:
    """The ground-truth file given to ``eval score --annotations``, if any."""
    path = context.options.get("annotations")
    return Path(path) if path else None


def human_answers(value: Any, where: str) -> tuple[str, ...]:
    """``answers`` as strings: a non-empty list of strings or of ``{"answer": string}`` (the annotation files')."""
    if isinstance(value, list) and value:
        answers = [item.get("answer") if isinstance(item, dict) else item for item in value]
        if all(isinstance(answer, str) for answer in answers):
            return tuple(answers)
    raise EvalError(f"{where}: 'answers' must be a non-empty list of strings or of {{'answer': string}}")


def in_record(questions: list[dict], path: Path) -> dict[str, Humans]:
    """The truth written in the question records (``answers``, optional ``answer_type``), in file order."""
    truth = {}
    for rank, question in enumerate(questions):
        question_id = key(question["question_id"])
        if "answers" not in question:
            raise EvalError(
                f"{path}: question {question_id!r} has no 'answers' and no --annotations file was given "
                f"(the benchmark's ground truth)"
            )
        answers = human_answers(question["answers"], f"{path}: question {question_id!r}")
        truth[question_id] = Humans(answers, question.get("answer_type"), rank)
    return truth


def annotated(questions: list[dict], path: Path, records: list, by: str, what: str) -> dict[str, Humans]:
    """The truth of each question from the annotation ``records``, paired on the annotation field ``by`` with the
    question's field of the same name (``question_id`` for VQAv2, ``image`` for VizWiz)."""
    index: dict[str, tuple[int, dict]] = {}
    for rank, record in enumerate(records):
        if not isinstance(record, dict) or by not in record:
            raise EvalError(f"{path}: annotation {rank} is not an object with a {by!r}")
        index[key(record[by])] = (rank, record)
    truth = {}
    for question in questions:
        question_id = key(question["question_id"])
        found = index.get(key(question[by]))
        if found is None:
            raise EvalError(f"{path}: no {what} annotation for question {question_id!r} ({by} {question[by]!r})")
        rank, record = found
        answers = human_answers(record.get("answers"), f"{path}: the annotation of question {question_id!r}")
        truth[question_id] = Humans(answers, record.get("answer_type"), rank)
    return truth


def consensus_scores(rows: Sequence[tuple[int, str | None, float]], official: bool) -> dict:
    """``accuracy`` and ``per_answer_type`` of (rank, answer type, accuracy) rows: ``official`` adds them left to
    right in rank order (upstream's loop over its annotation file), ``fixed`` exactly."""
    if official:
        rows = sorted(rows, key=lambda row: row[0])
    add = ordered_sum if official else math.fsum
    by_type: dict[str, list[float]] = {}
    for _, answer_type, value in rows:
        if answer_type is not None:
            by_type.setdefault(str(answer_type), []).append(value)
    return {
        "accuracy": api_percent(add(value for _, _, value in rows), len(rows)),
        "per_answer_type": {name: api_percent(add(values), len(values)) for name, values in sorted(by_type.items())},
    }


class ConsensusTask(SingleTurnTask):
    """A benchmark scored by consensus with human answers (VQAv2, VizWiz)."""

    max_new_tokens = 128  # model_vqa_loader's default; upstream's scripts pass none
    official_accuracy: Callable[[str, Sequence[str]], float]
    pair_by: str  # the field pairing a question with its annotation
    annotation_records: Callable[[Any], Any]  # the annotation list inside the parsed file

    def truth(self, questions: list[dict], context: ScoreContext) -> dict[str, Humans]:
        path = annotations_of(context)
        if path is None:
            return in_record(questions, context.questions_path)
        records = self.annotation_records(read_json(path, f"the {self.name} annotations"))
        if not isinstance(records, list):
            raise EvalError(f"{path}: not {self.name}'s annotation file (see docs/benchmarks/vqa.md)")
        return annotated(questions, path, records, self.pair_by, self.name)

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        require_all(questions, self.fields, context.questions_path)
        truth = self.truth(questions, context)
        official = context.protocol == "official"
        accuracy = self.official_accuracy if official else normalised_consensus
        rows, invalid = [], 0
        for question in questions:
            humans = truth[key(question["question_id"])]
            answer = answer_text(predictions.get(key(question["question_id"])))
            value = 0.0
            if answer is not None:
                value = accuracy(answer, humans.answers)
                invalid += not evalai_answer(answer)  # nothing left to compare ("", ".", "the")
            rows.append((humans.rank, humans.answer_type, value))
        return {**consensus_scores(rows, official), **bookkeeping(questions, predictions, invalid, context.protocol)}


class Vqav2(ConsensusTask):
    name = "vqav2"
    fields = ("question_id",)
    official_accuracy = staticmethod(vqav2_official)
    pair_by = "question_id"

    @staticmethod
    def annotation_records(data: Any) -> Any:
        return data.get("annotations") if isinstance(data, dict) else None


class VizWiz(ConsensusTask):
    name = "vizwiz"
    fields = ("question_id", "image")
    official_accuracy = staticmethod(vizwiz_official)
    pair_by = "image"

    @staticmethod
    def annotation_records(data: Any) -> Any:
        return data


def write_submission(
    task_name: str,
    questions: list[dict],
    predictions: dict[str, dict],
    out_path: str | Path,
    pad_with: list[dict] | None = None,
) -> dict:
    """Write the file a server scores: VQAv2 test-dev ``[{"question_id": int, "answer": str}]`` or VizWiz test
    ``[{"image": str, "answer": str}]``, in question order, every answer through
    :func:`~allseeing.eval.metrics.vqa.evalai_answer` as LLaVA's ``convert_*_for_submission.py`` do.

    Every question must be answered (``predictions`` by question id, each answered once by construction) with
    text, else an :class:`EvalError` saying how many are not and one of them. ``pad_with`` (VQAv2 only): the
    question records of a larger file, e.g. ``llava_vqav2_mscoco_test2015.jsonl``, written in its order with
    ``""`` for the questions not in ``questions``, as LLaVA's script uploads test-dev answers. Returns counts.
    """
    if task_name not in ("vqav2", "vizwiz"):
        raise EvalError(f"{task_name} has no submission file: its official score is computed by 'allseeing eval score'")
    if pad_with is not None and task_name != "vqav2":
        raise EvalError("pad_with is for VQAv2's test2015 question file only")
    ids = [key(question["question_id"]) for question in questions]
    _check_answered(ids, predictions)
    answers = {question_id: evalai_answer(predictions[question_id]["text"]) for question_id in ids}
    if task_name == "vizwiz":
        entries = [{"image": image, "answer": answers[question_id]} for question_id, image in _images(questions)]
    else:
        order = questions if pad_with is None else pad_with
        outside = set(ids) - {key(question["question_id"]) for question in order}
        if outside:
            raise EvalError(f"{len(outside)} questions are not in the pad_with file, e.g. {sorted(outside)[0]!r}")
        entries = [
            {"question_id": _integer_id(question), "answer": answers.get(key(question["question_id"]), "")}
            for question in order
        ]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(entries), encoding="utf-8")  # json.dump's layout, as LLaVA's scripts write
    return {"task": task_name, "submission": str(out_path), "entries": len(entries), "answered": len(ids)}


def _check_answered(ids: list[str], predictions: dict[str, dict]) -> None:
    """Every question has a text answer and every answer a question, else a one-line error with an example."""
    asked = set(ids)
    problems = [
        ("answers to questions not in the question file", sorted(set(predictions) - asked)),
        (f"of {len(ids)} questions have no answer", [i for i in ids if i not in predictions]),
        ("answers are not text", [i for i in ids if i in predictions and answer_text(predictions[i]) is None]),
    ]
    for what, found in problems:
        if found:
            raise EvalError(f"cannot write a submission: {len(found)} {what}, e.g. question_id {found[0]!r}")


def _images(questions: list[dict]) -> list[tuple[str, str]]:
    """(question id, image) of VizWiz questions; the server keys answers by image, so each image once."""
    seen: dict[str, str] = {}
    for question in questions:
        question_id = key(question["question_id"])
        image = question.get("image")
        if not isinstance(image, str):
            raise EvalError(f"question {question_id!r} has no 'image': VizWiz answers are submitted by image")
        if image in seen:
            raise EvalError(f"image {image!r} is asked by questions {seen[image]!r} and {question_id!r}")
        seen[image] = question_id
    return [(question_id, image) for image, question_id in seen.items()]


def _integer_id(question: dict) -> int:
    """A VQAv2 question id as the server wants it, an integer."""
    value = question["question_id"]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise EvalError(f"question_id {value!r} is not an integer, as VQAv2's are")
