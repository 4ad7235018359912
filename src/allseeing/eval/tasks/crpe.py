"""CRPE: circular multiple choice over relation questions (``crpe_exist.jsonl``, ``crpe_relation.jsonl``).

Keys: ``exist``, ``subject``, ``predicate``, ``object`` (circular accuracy: all 4 rotations right), ``overall``
(the mean of subject, predicate and object, as the README's table), ``per_row`` (the same keys, each row scored
alone), ``letters`` (chosen letters per category: a position-bias check), ``grouping`` (how rotations were
found: ``position`` or ``identity``, see :mod:`allseeing.eval.metrics.circular`) and ``mixed_groups``. A
category without rows is ``null``.

``official`` scores the answered rows as upstream does, in blocks of 4 in the answer file's order; when that cuts
rows of different questions into one block (a shuffled file) the number is still upstream's, and ``mixed_groups``
and a warning on stderr say it means nothing. Where upstream's assert fails (a partial file), it groups by
identity and counts a missing answer as wrong. ``fixed`` always groups by identity, missing answers wrong.
"""

from __future__ import annotations

import sys
from collections import Counter

from allseeing.eval.metrics.choice import choose, options_of, stem_of
from allseeing.eval.metrics.circular import GroupError, Row, by_identity, by_position
from allseeing.eval.task import (
    EvalError,
    ScoreContext,
    answer_text,
    bookkeeping,
    key,
    percent,
    require_all,
    scored_rows,
)
from allseeing.eval.tasks.common import SingleTurnTask

CATEGORIES = ("exist", "subject", "predicate", "object")
RELATION = ("subject", "predicate", "object")


def read_rows(pairs: list[tuple[dict, dict | None]], protocol: str) -> tuple[list[Row], int, dict[str, Counter]]:
    """(rows, invalid answers, chosen letters per category) of (question, prediction) pairs."""
    result, invalid = [], 0
    letters: dict[str, Counter] = {}
    for question, prediction in pairs:
        options = options_of(question["text"])
        letter, bad = choose(answer_text(prediction), options, protocol)
        invalid += bad
        correct = question["correct_option"]
        right = letter is not None and len(correct) == 1 and letter == correct
        if letter is not None:
            letters.setdefault(question["category"], Counter())[letter] += 1
        # Every rotation shares the image, the question and the option set.
        identity = (question.get("image"), stem_of(question["text"]), frozenset(options.values()))
        result.append(Row(question["category"], identity, key(question["question_id"]), right))
    return result, invalid, letters


class Crpe(SingleTurnTask):
    name = "crpe"
    max_new_tokens = 16
    fields = ("question_id", "text", "correct_option", "category")

    def score(self, questions: list[dict], predictions: dict[str, dict], context: ScoreContext) -> dict:
        require_all(questions, self.fields, context.questions_path)
        official = context.protocol == "official"
        rows, invalid, letters = read_rows(scored_rows(questions, predictions, official), context.protocol)
        groups = by_position(rows) if official else None
        grouping = "position"
        if groups is None:
            grouping = "identity"
            if official:  # upstream's assert fails on this partial file: every question, a missing answer wrong
                rows, invalid, letters = read_rows(scored_rows(questions, predictions, False), context.protocol)
            try:
                groups = by_identity(rows)
            except GroupError as error:
                raise EvalError(f"{context.questions_path}: {error}") from None
        if groups.mixed:
            print(
                f"allseeing: warning: {groups.mixed} CRPE blocks of 4 answers mix different questions: the "
                f"prediction file is not in the question file's rotation order, and official's number (upstream's) "
                f"means little; --protocol fixed groups by question",
                file=sys.stderr,
            )
        per_row: dict[str, list[bool]] = {}
        for row in rows:
            per_row.setdefault(row.category, []).append(row.correct)
        result = {c: percent(*groups.scores[c]) if c in groups.scores else None for c in CATEGORIES}
        row_result = {c: percent(sum(per_row[c]), len(per_row[c])) if c in per_row else None for c in CATEGORIES}
        for scores in (result, row_result):
            values = [scores[c] for c in RELATION]
            scores["overall"] = round(sum(values) / 3, 2) if all(v is not None for v in values) else None
        return {
            **result,
            "per_row": row_result,
            "letters": {c: dict(sorted(n.items())) for c, n in sorted(letters.items())},
            "grouping": grouping,
            "mixed_groups": groups.mixed,
            **bookkeeping(questions, predictions, invalid, context.protocol),
        }
