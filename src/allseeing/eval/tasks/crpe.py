"""CRPE: circular multiple choice over relation questions (``crpe_exist.jsonl``, ``crpe_relation.jsonl``).

Keys: ``exist``, ``subject``, ``predicate``, ``object`` (circular accuracy: all 4 rotations right), ``overall``
(the mean of subject, predicate and object, as the README's table), ``per_row`` (the same keys, each row scored
alone), ``letters`` (chosen letters per category: a position-bias check). A category without rows is ``null``.
"""

from __future__ import annotations

from collections import Counter

from allseeing.eval.metrics.choice import choose, options_of
from allseeing.eval.metrics.circular import GroupError, circular_groups
from allseeing.eval.task import EvalError, ScoreContext, answer_text, bookkeeping, key, percent, require
from allseeing.eval.tasks.common import SingleTurnTask

CATEGORIES = ("exist", "subject", "predicate", "object")
RELATION = ("subject", "predicate", "object")


class Crpe(SingleTurnTask):
    name = "crpe"
    max_new_tokens = 16

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        rows, invalid = [], 0
        letters: dict[str, Counter] = {}
        for question in questions:
            require(question, ("question_id", "text", "correct_option", "category"), context.questions_path)
            answer = answer_text(predictions.get(key(question["question_id"])))
            letter, bad = choose(answer, options_of(question["text"]), context.protocol)
            invalid += bad
            correct = question["correct_option"]
            right = letter is not None and len(correct) == 1 and letter == correct
            rows.append((question["category"], right))
            if letter is not None:
                letters.setdefault(question["category"], Counter())[letter] += 1
        try:
            groups = circular_groups(rows)
        except GroupError as error:
            raise EvalError(f"{context.questions_path}: {error}") from None
        per_row: dict[str, list[bool]] = {}
        for category, right in rows:
            per_row.setdefault(category, []).append(right)
        result = {c: percent(*groups[c]) if c in groups else None for c in CATEGORIES}
        row_result = {c: percent(sum(per_row[c]), len(per_row[c])) if c in per_row else None for c in CATEGORIES}
        for scores in (result, row_result):
            values = [scores[c] for c in RELATION]
            scores["overall"] = round(sum(values) / 3, 2) if all(v is not None for v in values) else None
        return {
            **result,
            "per_row": row_result,
            "letters": {c: dict(sorted(n.items())) for c, n in sorted(letters.items())},
            **bookkeeping(questions, predictions, invalid, context.protocol),
        }
