"""Pieces shared by the task modules."""

from __future__ import annotations

from pathlib import Path

from allseeing.eval.task import Ask, key, require
from allseeing.rec import tags


def single_turn_asks(questions: list[dict], path: Path) -> list[Ask]:
    """``<image>\\n`` + the question's ``text`` as the one user turn (upstream's model_vqa_loader)."""
    asks = []
    for question in questions:
        require(question, ("question_id", "image", "text"), path)
        text = question["text"].replace(tags.IMAGE, "").strip()
        asks.append(Ask(key(question["question_id"]), question["image"], ((f"{tags.IMAGE}\n{text}", None),)))
    return asks


class SingleTurnTask:
    """A task asked as one user turn and answered by generation (CRPE, grounding, region captions, PSG)."""

    ranks_options = False

    def asks(self, questions: list[dict], questions_path: Path, settings: dict | None = None) -> list[Ask]:
        return single_turn_asks(questions, questions_path)
