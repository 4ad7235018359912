"""Referring expression comprehension (``grounding_eval.jsonl``): Acc@0.5 per category and their mean.

Beside them, ``query_check`` (see ``metrics.grounding.query_check``): how many images got the same box for every
expression, and how many answers point at another object of their image.
``official`` scores the answered questions only (upstream's denominators); ``fixed`` counts a missing answer as
wrong. A category with nothing to score is ``null``.
"""

from __future__ import annotations

from allseeing.eval.metrics.grounding import hit, query_check, read_box
from allseeing.eval.task import ScoreContext, answer_text, bookkeeping, percent, require_all, scored_rows
from allseeing.eval.tasks.common import SingleTurnTask


class Grounding(SingleTurnTask):
    name = "grounding"
    max_new_tokens = 64
    fields = ("question_id", "bbox", "width", "height", "category")

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        hits: dict[str, list[bool]] = {}
        per_image: dict[str, list] = {}
        invalid = 0
        official = context.protocol == "official"
        require_all(questions, self.fields, context.questions_path)
        for question, prediction in scored_rows(questions, predictions, official):
            answer = answer_text(prediction)
            truth, size = tuple(question["bbox"]), (question["width"], question["height"])
            right, box, bad = False, None, True
            if answer is not None:
                box, bad = read_box(answer, official)
                right = box is not None and hit(box, truth, size, context.box_format, official)
                invalid += bad or right is None
            if "image" in question:  # unanswered questions too: query_check counts every question asked
                # an unreadable answer (official reads it as the zero box) points at nothing for query_check
                per_image.setdefault(question["image"], []).append((truth, None if bad else box, size))
            hits.setdefault(question["category"], []).append(bool(right))
        categories = sorted({question["category"] for question in questions})
        result = {c: percent(sum(hits[c]), len(hits[c])) if c in hits else None for c in categories}
        values = [v for v in result.values() if v is not None]
        result["average"] = round(sum(values) / len(values), 2) if values else None
        return {
            **result,
            "query_check": query_check(per_image, context.box_format, official),
            **bookkeeping(questions, predictions, invalid, context.protocol),
        }
