"""Referring expression comprehension (``grounding_eval.jsonl``): Acc@0.5 per category and their mean."""

from __future__ import annotations

from allseeing.eval.metrics.grounding import hit
from allseeing.eval.task import ScoreContext, answer_text, bookkeeping, key, percent, require
from allseeing.eval.tasks.common import SingleTurnTask


class Grounding(SingleTurnTask):
    name = "grounding"
    max_new_tokens = 64

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        hits: dict[str, list[bool]] = {}
        invalid = 0
        for question in questions:
            require(question, ("question_id", "bbox", "width", "height", "category"), context.questions_path)
            answer = answer_text(predictions.get(key(question["question_id"])))
            right = False
            if answer is not None:
                right, bad = hit(
                    answer,
                    tuple(question["bbox"]),
                    (question["width"], question["height"]),
                    context.box_format,
                    official=context.protocol == "official",
                )
                invalid += bad
            hits.setdefault(question["category"], []).append(right)
        result = {category: percent(sum(v), len(v)) for category, v in sorted(hits.items())}
        values = [v for v in result.values() if v is not None]
        result["average"] = round(sum(values) / len(values), 2) if values else None
        return {**result, **bookkeeping(questions, predictions, invalid, context.protocol)}
