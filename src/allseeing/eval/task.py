"""What an evaluation task is: how to read its question file, what to ask the model, how to score the answers.

Inference and scoring are two steps with a predictions JSONL between them. Answers are looked up by
``question_id``. ``official`` scores upstream's rows (``scored_rows``: the answered questions, in the prediction
file's order, which upstream's scorers depend on); ``fixed`` scores every question and never depends on the order
of lines in either file. Every result carries ``protocol``, ``coverage`` (answered / asked, in percent),
``answered``, ``asked``, ``invalid`` (answers that could not be read) and ``unreadable``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from allseeing.eval.errors import EvalError
from allseeing.eval.metrics.percent import mean_percent, percent

PROTOCOLS = ("official", "fixed")


@dataclass(frozen=True)
class Ask:
    """What to ask the model for one question: an image, the conversation, and options when ranking.

    ``image``: a path relative to the image folder, the encoded image itself (bytes: MMBench's TSV carries its
    images inline, base64), or None.
    """

    question_id: str
    image: str | bytes | None
    turns: tuple[tuple[str, str | None], ...]
    options: tuple[str, ...] = ()
    label_format: str = "{}"


@dataclass
class ScoreContext:
    """Everything a scorer needs besides the answers."""

    questions_path: Path
    protocol: str = "official"
    box_format: str = "square999"
    # Task-specific settings: ``annotations`` (a benchmark's ground-truth file, e.g. VQAv2's), ``synonyms``, ...
    options: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    name: str
    max_new_tokens: int  # the default generation budget of the task
    ranks_options: bool  # True: scored by likelihood ranking, not generation
    fields: tuple[str, ...]  # what scoring needs of every question (checked before a model is loaded)
    needs_judge: bool  # True: scored by a judge model (ScoreContext.options["judge"]), as LLaVA-Bench and MM-Vet

    def read_questions(self, path: Path) -> list[dict]:
        """The question file as records with a ``question_id`` (JSONL for most tasks; a task whose benchmark ships
        another format, such as MMBench's TSV, reads that)."""
        ...

    def read_predictions(self, path: Path) -> dict[str, dict]:
        """A predictions file's records by question id (a repeated id is an error, unless the benchmark's own files
        repeat ids and the task re-keys them as it re-keys its questions, as MME's do)."""
        ...

    def asks(self, questions: list[dict], questions_path: Path, settings: dict | None = None) -> list[Ask]:
        """What to ask for each question; ``settings`` holds task-specific paths (e.g. ``options_file``)."""
        ...

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict: ...


def read_jsonl(path: str | Path) -> list[dict]:
    """All records of a JSONL file; a bad line is an :class:`EvalError` naming the file and line."""
    return [record for _, record in _numbered_records(Path(path))]


def read_json(path: str | Path, what: str = "") -> Any:
    """A JSON file (a benchmark's question or annotation file), parsed; an unreadable one is an
    :class:`EvalError` naming it (``what``: how the message calls it, e.g. "GQA questions")."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EvalError(f"cannot read {what + ' ' if what else ''}{path}: {error}") from None


def read_questions(path: str | Path) -> list[dict]:
    """A question file's records; a question id given twice is an error naming both lines (it would be asked and
    counted twice)."""
    path = Path(path)
    seen: dict[str, int] = {}
    records = []
    for number, record in _numbered_records(path):
        question_id = key(record["question_id"])
        if question_id in seen:
            raise EvalError(f"{path}: question_id {question_id!r} is on lines {seen[question_id]} and {number}")
        seen[question_id] = number
        records.append(record)
    return records


def _numbered_records(path: Path) -> list[tuple[int, dict]]:
    records = []
    try:
        # Split at "\n" only: str.splitlines would also split inside a record at U+2028 or "\x1c", which
        # json.dumps(..., ensure_ascii=False) writes as they are.
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as error:
        raise EvalError(f"cannot read {path}: {error}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise EvalError(f"{path}:{number}: not JSON: {error}") from None
        if not isinstance(record, dict) or "question_id" not in record:
            raise EvalError(f"{path}:{number}: a record needs a 'question_id'")
        records.append((number, record))
    return records


def key(question_id: Any) -> str:
    """Question ids compare as strings (a file may write 7 where another writes "7")."""
    return str(question_id)


def index_predictions(records: list[dict], path: str | Path) -> dict[str, dict]:
    """Predictions by question id; a repeated id is an error, not a silent overwrite."""
    by_id: dict[str, dict] = {}
    for record in records:
        question_id = key(record["question_id"])
        if question_id in by_id:
            raise EvalError(f"{path}: question_id {question_id!r} is answered twice")
        by_id[question_id] = record
    return by_id


def lacking(question: dict, fields: tuple[str, ...]) -> list[str]:
    """The ``fields`` that ``question`` does not have."""
    return [name for name in fields if name not in question]


def require(question: dict, fields: tuple[str, ...], path: Path) -> None:
    missing = lacking(question, fields)
    if missing:
        raise EvalError(f"{path}: question {question.get('question_id')!r} lacks {', '.join(missing)}")


def require_all(questions: list[dict], fields: tuple[str, ...], path: Path) -> None:
    """Every question has ``fields``, else an :class:`EvalError` naming the first that lacks one."""
    for question in questions:
        require(question, fields, path)


def predicate_recalls(hits: dict[Any, list[bool]], exact: bool) -> dict:
    """Recall over every ground truth (``recall``), the mean of the per-predicate recalls (``mean_recall``, from
    their unrounded values; see :func:`mean_percent` for ``exact``) and each predicate's (``per_predicate``, by
    name) from whether each ground truth of each predicate was recalled, predicates in order of first appearance."""
    every = [hit for found in hits.values() for hit in found]
    by_name = sorted(hits.items(), key=lambda item: str(item[0]))
    return {
        "recall": percent(sum(every), len(every)),
        "mean_recall": mean_percent([sum(found) / len(found) for found in hits.values()], exact),
        "per_predicate": {str(predicate): percent(sum(found), len(found)) for predicate, found in by_name},
    }


def scored_rows(questions: list[dict], predictions: dict[str, dict], official: bool) -> list[tuple[dict, dict | None]]:
    """(question, prediction) pairs to score.

    ``official``: upstream's rows. Its scorers loop over the prediction file, so only answered questions count
    (a partial file is scored on what it answers) and in the prediction file's order, which matters where
    upstream cuts groups or breaks ties by position. ``fixed``: every question in question-file order, an
    unanswered one with ``None`` (so it counts as wrong).
    """
    if not official:
        return [(question, predictions.get(key(question["question_id"]))) for question in questions]
    by_id = {key(question["question_id"]): question for question in questions}
    return [(by_id[question_id], prediction) for question_id, prediction in predictions.items()]


def bookkeeping(
    questions: list[dict], predictions: dict[str, dict], invalid: int, protocol: str, text_answers: bool = True
) -> dict:
    """The counts every result carries. ``text_answers``: the task's answers are strings, so a prediction whose
    ``text`` is not one (null, a number, a list) is counted in ``unreadable`` and in ``invalid``; the task scored
    it as wrong (``answer_text`` gives None)."""
    answered = sum(key(q["question_id"]) in predictions for q in questions)
    unreadable = sum(not isinstance(p.get("text"), str) for p in predictions.values()) if text_answers else 0
    return {
        "protocol": protocol,
        "asked": len(questions),
        "answered": answered,
        "coverage": percent(answered, len(questions)),
        "invalid": invalid + unreadable,
        "unreadable": unreadable,
    }


def answer_text(prediction: dict | None) -> str | None:
    """The answer of a prediction line (``text``); None when the question was not answered or its ``text`` is not
    a string (counted by ``bookkeeping``): either way the question scores as wrong."""
    if prediction is None:
        return None
    text = prediction.get("text")
    return text if isinstance(text, str) else None
