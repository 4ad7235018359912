"""VCR (``VCR_val_square_pad.jsonl``): multi-turn multiple choice, Q->A, QA->R and Q->AR.

Q->AR needs a question's answer row (``qa``) and its rationale row (``qar``) both right. Upstream paired them by
position in the answer file; here a pair is found in the question file: by ``question_id`` with its qa/qar
suffix removed (``7-qa`` / ``7-qar``), or else by the image and the first turn, which a rationale row repeats.
"""

from __future__ import annotations

import re
from pathlib import Path

from allseeing.data.templates import image_first, turns_from_llava
from allseeing.eval.metrics.choice import choose, options_of
from allseeing.eval.task import Ask, EvalError, ScoreContext, answer_text, bookkeeping, key, percent, require

_SUFFIX = re.compile(r"[-_.]?(qar|qa)$")


def pair_key(question: dict) -> tuple:
    stripped = _SUFFIX.sub("", key(question["question_id"]))
    if stripped != key(question["question_id"]):
        return ("id", stripped)
    return ("content", question.get("image"), question["conversations"][0]["value"])


class Vcr:
    name = "vcr"
    max_new_tokens = 16
    ranks_options = False

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
        right: dict[str, dict[tuple, bool]] = {"qa": {}, "qar": {}}
        invalid = 0
        for question in questions:
            require(question, ("question_id", "conversations", "correct_option", "category"), context.questions_path)
            if question["category"] not in right:
                raise EvalError(f"{context.questions_path}: category {question['category']!r} is neither qa nor qar")
            answer = answer_text(predictions.get(key(question["question_id"])))
            letter, bad = choose(answer, options_of(question["conversations"][-1]["value"]), context.protocol)
            invalid += bad
            pair = pair_key(question)
            if pair in right[question["category"]]:
                raise EvalError(f"{context.questions_path}: two {question['category']} rows share the pair {pair}")
            right[question["category"]][pair] = letter is not None and letter == question["correct_option"]
        paired = set(right["qa"]) & set(right["qar"])
        return {
            "q2a": percent(sum(right["qa"].values()), len(right["qa"])),
            "qa2r": percent(sum(right["qar"].values()), len(right["qar"])),
            "q2ar": percent(sum(right["qa"][p] and right["qar"][p] for p in paired), len(paired)),
            "pairs": len(paired),
            "unpaired": len(set(right["qa"]) ^ set(right["qar"])),
            **bookkeeping(questions, predictions, invalid, context.protocol),
        }
