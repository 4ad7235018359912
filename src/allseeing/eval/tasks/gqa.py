"""GQA test-dev balanced (``llava_gqa_testdev_balanced.jsonl``): exact-match accuracy as GQA's ``eval.py`` gives it.

Questions: ``{question_id, image, text}`` asked as ``<image>\\n`` + text. Truth: ``--annotations
testdev_balanced_questions.json`` (``{question id: {answer, types: {structural, semantic}, isBalanced}}``), else the
``answer`` (and optionally ``types``) of each record. An answer is stripped, cut of its final periods and
lower-cased (:func:`~allseeing.eval.metrics.vqa.gqa_answer`, LLaVA's ``scripts/convert_gqa_for_eval.py``), then
compared with the answer as written.

Keys, as ``eval.py`` prints them (percent): ``accuracy``; ``binary`` and ``open`` (structural type ``query`` is
open, the rest binary); ``per_structural`` and ``per_semantic`` (by the type names of the file). Questions marked
``isBalanced: false`` are left out, as ``eval.py`` does. Validity, plausibility and distribution need the choices
file and scene graphs test-dev lacks (``eval.py`` prints 0 for the first two there) and are not computed.
``eval.py`` stops on an unanswered question; both protocols count it as wrong and are otherwise the same (sums of
0 and 1 do not depend on order).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from allseeing.eval.metrics.vqa import gqa_answer
from allseeing.eval.task import EvalError, ScoreContext, answer_text, bookkeeping, key, percent, read_json, require_all
from allseeing.eval.tasks.common import SingleTurnTask
from allseeing.eval.tasks.vqa import annotations_of


@dataclass(frozen=True)
class Truth:
    answer: str
    structural: str | None
    semantic: str | None
    balanced: bool


def truth_of(record: Any, where: str) -> Truth:
    """The answer and types of one question (an annotation or a question record)."""
    if not isinstance(record, dict) or not isinstance(record.get("answer"), str):
        raise EvalError(f"{where}: needs an 'answer' string")
    types = record.get("types") if isinstance(record.get("types"), dict) else {}
    return Truth(record["answer"], types.get("structural"), types.get("semantic"), record.get("isBalanced", True))


def percent_by(rows: list[tuple[str | None, bool]]) -> dict[str, float | None]:
    """Accuracy per group of (group, right) rows, groups by name; rows without a group left out."""
    groups: dict[str, list[bool]] = {}
    for group, right in rows:
        if group is not None:
            groups.setdefault(str(group), []).append(right)
    return {name: percent(sum(hits), len(hits)) for name, hits in sorted(groups.items())}


class Gqa(SingleTurnTask):
    name = "gqa"
    max_new_tokens = 128  # model_vqa_loader's default; upstream's script passes none
    fields = ("question_id",)

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        require_all(questions, self.fields, context.questions_path)
        truth = self.truth(questions, context)
        rows: list[tuple[Truth, bool]] = []
        invalid = 0
        for question in questions:
            expected = truth[key(question["question_id"])]
            if not expected.balanced:
                continue
            answer = answer_text(predictions.get(key(question["question_id"])))
            right = False
            if answer is not None:
                answer = gqa_answer(answer)
                right = answer == expected.answer
                invalid += not answer
            rows.append((expected, right))
        by_kind = percent_by([(_kind(t.structural), right) for t, right in rows])
        return {
            "accuracy": percent(sum(right for _, right in rows), len(rows)),
            "binary": by_kind.get("binary"),
            "open": by_kind.get("open"),
            "per_structural": percent_by([(t.structural, right) for t, right in rows]),
            "per_semantic": percent_by([(t.semantic, right) for t, right in rows]),
            **bookkeeping(questions, predictions, invalid, context.protocol),
        }

    @staticmethod
    def truth(questions: list[dict], context: ScoreContext) -> dict[str, Truth]:
        path = annotations_of(context)
        if path is None:
            truth = {}
            for question in questions:
                where = f"{context.questions_path}: question {key(question['question_id'])!r}"
                if "answer" not in question:
                    raise EvalError(f"{where} has no 'answer' and no --annotations file was given (GQA's questions)")
                truth[key(question["question_id"])] = truth_of(question, where)
            return truth
        data = read_json(path, "the GQA questions")
        if not isinstance(data, dict):
            raise EvalError(f"{path}: expected GQA's questions file, a JSON object by question id")
        truth = {}
        for question in questions:
            question_id = key(question["question_id"])
            if question_id not in data:
                raise EvalError(f"{path}: no question {question_id!r} (of {Path(context.questions_path).name})")
            truth[question_id] = truth_of(data[question_id], f"{path}: question {question_id!r}")
        return truth


def _kind(structural: str | None) -> str | None:
    """``eval.py``'s answer type: ``open`` for structural type ``query``, else ``binary``."""
    if structural is None:
        return None
    return "open" if structural == "query" else "binary"
