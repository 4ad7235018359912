"""Pieces shared by the task modules."""

from __future__ import annotations

from pathlib import Path

from allseeing.data.templates import image_question
from allseeing.eval.task import Ask, index_predictions, key, read_jsonl, read_questions, require


def single_turn_asks(questions: list[dict], path: Path) -> list[Ask]:
    """``<image>\\n`` + the question's ``text``, as it is, as the one user turn (upstream's model_vqa_loader); a text
    that already holds the marker gets it in front instead."""
    asks = []
    for question in questions:
        require(question, ("question_id", "image", "text"), path)
        turn = image_question(question["text"])
        asks.append(Ask(key(question["question_id"]), question["image"], ((turn, None),)))
    return asks


class JsonlQuestions:
    """A task whose questions and predictions are JSONL files, one record per question with its ``question_id``."""

    needs_judge = False  # scored without a judge model (the judged benchmarks say otherwise)

    def read_questions(self, path: Path) -> list[dict]:
        return read_questions(path)

    def read_predictions(self, path: Path) -> dict[str, dict]:
        return index_predictions(read_jsonl(path), path)


class SingleTurnTask(JsonlQuestions):
    """A task asked as one user turn and answered by generation (CRPE, grounding, region captions, PSG)."""

    ranks_options = False

    def asks(self, questions: list[dict], questions_path: Path, settings: dict | None = None) -> list[Ask]:
        return single_turn_asks(questions, questions_path)
