"""VCR (``VCR_val_square_pad.jsonl``): multi-turn multiple choice, Q->A, QA->R and Q->AR.

Q->AR needs a question's answer row (``qa``) and its rationale row (``qar``) both right. ``official`` pairs them
as upstream does: the answered qa rows with the answered qar rows, by position in the answer file (``pairs`` of
them, ``unpaired`` left over). ``fixed`` pairs them by identity, counting a missing answer as wrong: by
``question_id`` with its qa/qar suffix removed (``7-qa`` / ``7-qar``), or else by the image and the first turn,
which a rationale row repeats.
"""

from __future__ import annotations

import re
from pathlib import Path

from allseeing.data.templates import image_first, turns_from_llava
from allseeing.eval.metrics.choice import choose, options_of
from allseeing.eval.task import (
    Ask,
    EvalError,
    ScoreContext,
    answer_text,
    bookkeeping,
    key,
    percent,
    require,
    require_all,
    scored_rows,
)
from allseeing.eval.tasks.common import JsonlQuestions

_SUFFIX = re.compile(r"[-_.]?(qar|qa)$")


def pair_key(question: dict) -> tuple:
    stripped = _SUFFIX.sub("", key(question["question_id"]))
    if stripped != key(question["question_id"]):
        return ("id", stripped)
    return ("content", question.get("image"), question["conversations"][0]["value"])


class Vcr(JsonlQuestions):
    name = "vcr"
    max_new_tokens = 16
    ranks_options = False
    fields = ("question_id", "conversations", "correct_option", "category")

    def asks(self, questions: list[dict], questions_path: Path, settings: dict | None = None) -> list[Ask]:
        asks = []
        for question in questions:
            require(question, ("question_id", "image", "conversations"), questions_path)
            try:
                turns = turns_from_llava(question["conversations"], open_last=True)
            except ValueError as error:
                raise EvalError(f"{questions_path}: question {question['question_id']!r}: {error}") from None
            if turns[-1][1] is not None:
                raise EvalError(f"{questions_path}: question {question['question_id']!r} must end with a human turn")
            (first, reply), *rest = turns
            asks.append(Ask(key(question["question_id"]), question["image"], ((image_first(first), reply), *rest)))
        return asks

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        official = context.protocol == "official"
        require_all(questions, self.fields, context.questions_path)
        for question in questions:
            if question["category"] not in ("qa", "qar") and not official:  # upstream scores them apart, unused
                raise EvalError(f"{context.questions_path}: category {question['category']!r} is neither qa nor qar")
        # Per category, (pair key, right) in the order scored.
        right: dict[str, list[tuple[tuple, bool]]] = {"qa": [], "qar": []}
        invalid = 0
        for question, prediction in scored_rows(questions, predictions, official):
            if question["category"] not in right:
                continue
            letter, bad = choose(
                answer_text(prediction), options_of(question["conversations"][-1]["value"]), context.protocol
            )
            invalid += bad
            right[question["category"]].append(
                (pair_key(question), letter is not None and letter == question["correct_option"])
            )
        if official:  # upstream zips the two categories' results in the answer file's order
            pairs = [qa and qar for (_, qa), (_, qar) in zip(right["qa"], right["qar"], strict=False)]
            unpaired = abs(len(right["qa"]) - len(right["qar"]))
        else:
            by_pair: dict[str, dict[tuple, bool]] = {"qa": {}, "qar": {}}
            for category, rows in right.items():
                for pair, ok in rows:
                    if pair in by_pair[category]:
                        raise EvalError(f"{context.questions_path}: two {category} rows share the pair {pair}")
                    by_pair[category][pair] = ok
            paired = set(by_pair["qa"]) & set(by_pair["qar"])
            pairs = [by_pair["qa"][p] and by_pair["qar"][p] for p in paired]
            unpaired = len(set(by_pair["qa"]) ^ set(by_pair["qar"]))
        return {
            "q2a": percent(sum(ok for _, ok in right["qa"]), len(right["qa"])),
            "qa2r": percent(sum(ok for _, ok in right["qar"]), len(right["qar"])),
            "q2ar": percent(sum(pairs), len(pairs)),
            "pairs": len(pairs),
            "unpaired": unpaired,
            **bookkeeping(questions, predictions, invalid, context.protocol),
        }
