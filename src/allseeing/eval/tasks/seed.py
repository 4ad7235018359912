"""SEED-Bench: LLaVA's ``llava-seed-bench.jsonl`` asked as ``llava/eval/model_vqa_loader.py`` asks it (``<image>\\n``
+ the question's ``text``, which already ends with the instruction), scored as
``scripts/convert_seed_for_submission.py`` scores it (OpenGVLab/all-seeing).

An answer is right when its text *is* the correct letter: upstream compares the whole answer with ``==``, so "A."
or "(A)" is wrong (and counted in ``invalid``, with every answer that is not one letter A-D). Keys: ``accuracy``
(every question: upstream's "Total accuracy"), ``image`` and ``video`` (the questions of that ``data_type``; a
video question is asked with its middle frame), ``per_type`` (per question type, in the order of the type ids).
Upstream loops over the ground truth, so an unanswered question is wrong and the order of lines does not matter:
``official`` and ``fixed`` agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from allseeing.eval.metrics.multiple_choice import tally
from allseeing.eval.task import EvalError, ScoreContext, answer_text, bookkeeping, key, percent, read_json, require_all
from allseeing.eval.tasks.common import SingleTurnTask

LETTERS = ("A", "B", "C", "D")  # every SEED-Bench question has four options
DATA_TYPES = ("image", "video")


@dataclass(frozen=True)
class Truth:
    answer: str
    question_type: str  # the type's name
    order: int  # the type's id where known: upstream prints the types in id order
    data_type: str  # image or video


def annotated_truth(path: Path) -> dict[str, Truth]:
    """The truth of ``SEED-Bench.json``: ``questions`` [{question_id, answer, question_type_id, data_type}] and
    ``question_type`` {name: id}."""
    data = read_json(path)
    try:
        names = {type_id: name for name, type_id in data["question_type"].items()}
        return {
            key(q["question_id"]): Truth(
                q["answer"],
                names.get(q["question_type_id"], str(q["question_type_id"])),
                q["question_type_id"],
                q["data_type"],
            )
            for q in data["questions"]
        }
    except (KeyError, TypeError) as error:
        raise EvalError(
            f"{path}: not SEED-Bench.json (questions with question_id, answer, question_type_id, "
            f"data_type, and question_type): lacks {error}"
        ) from None


def record_truth(question: dict, path: Path) -> Truth:
    """The truth a question record carries: ``answer``, ``category`` (the type's name, as LLaVA's file has it),
    optionally ``question_type_id`` and ``data_type`` (else ``image``)."""
    if "answer" not in question or "category" not in question:
        raise EvalError(
            f"{path}: question {question['question_id']!r} has no answer and category: give SEED-Bench.json as "
            f"annotations"
        )
    return Truth(
        question["answer"],
        question["category"],
        question.get("question_type_id", 0),
        question.get("data_type", "image"),
    )


def truth_of(questions: list[dict], context: ScoreContext) -> dict[str, Truth]:
    annotations = context.options.get("annotations")
    if not annotations:
        return {key(q["question_id"]): record_truth(q, context.questions_path) for q in questions}
    truth = annotated_truth(Path(annotations))
    for question in questions:
        if key(question["question_id"]) not in truth:
            raise EvalError(f"{annotations}: no question {question['question_id']!r} of {context.questions_path}")
    return truth


class Seed(SingleTurnTask):
    name = "seed"
    max_new_tokens = 128  # model_vqa_loader.py's budget
    fields = ("question_id", "image", "text")

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        require_all(questions, self.fields, context.questions_path)
        truth = truth_of(questions, context)
        scored: list[tuple[Truth, bool]] = []
        invalid = 0
        for question in questions:
            text = answer_text(predictions.get(key(question["question_id"])))
            expected = truth[key(question["question_id"])]
            scored.append((expected, text is not None and text == expected.answer))
            invalid += text is not None and text not in LETTERS
        per_type = tally((expected.question_type, right) for expected, right in scored)
        order = {expected.question_type: expected.order for expected, _ in scored}
        per_data_type = tally((expected.data_type, right) for expected, right in scored)
        return {
            "accuracy": percent(sum(right for _, right in scored), len(scored)),
            **{kind: percent(*per_data_type[kind]) if kind in per_data_type else None for kind in DATA_TYPES},
            "per_type": {
                name: percent(*per_type[name]) for name in sorted(per_type, key=lambda name: (order[name], name))
            },
            **bookkeeping(questions, predictions, invalid, context.protocol),
        }
