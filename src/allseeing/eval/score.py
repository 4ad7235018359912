"""Scoring a predictions file against a question file (``allseeing eval score``). Imports no torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from allseeing.eval.metrics.boxformat import BOX_FORMATS
from allseeing.eval.registry import get_task
from allseeing.eval.task import PROTOCOLS, EvalError, ScoreContext


def score_file(
    task_name: str,
    questions_path: str | Path,
    predictions_path: str | Path,
    protocol: str = "official",
    box_format: str = "square999",
    options: dict[str, Any] | None = None,
) -> dict:
    """The metrics of one task as a JSON-ready dict (percentages with 2 decimals)."""
    if protocol not in PROTOCOLS:
        raise EvalError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if box_format not in BOX_FORMATS:
        raise EvalError(f"unknown box format {box_format!r}; choose one of {', '.join(BOX_FORMATS)}")
    task = get_task(task_name)
    questions = task.read_questions(Path(questions_path))
    predictions = task.read_predictions(Path(predictions_path))
    asked = {str(q["question_id"]) for q in questions}
    strangers = sorted(set(predictions) - asked)
    if strangers:
        raise EvalError(
            f"{predictions_path}: {len(strangers)} answers to questions not in {questions_path}, e.g. {strangers[:3]}"
        )
    context = ScoreContext(Path(questions_path), protocol, box_format, options or {})
    return {"task": task_name, **task.score(questions, predictions, context)}
