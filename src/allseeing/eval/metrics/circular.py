"""CRPE's circular evaluation: a question counts only if all its rotations are answered correctly.

Two ways to find a question's rotations:

- ``by_position`` (upstream's ``eval_crpe.py``): the answered rows of one category, in the order of the answer
  file, cut into blocks of 4. Upstream asserts each category's count is a multiple of 4. A block whose rows are
  not one question's rotations is scored all the same; it is counted as ``mixed``.
- ``by_identity``: the rows that ask the same question (image, question text without its options, the set of
  options) form its group, whatever the order of either file; a group must have a
  multiple of 4 rows, and a question asked more than once is cut in question-id order (numbers by value).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from allseeing.eval.metrics.ordering import natural_key

ROTATIONS = 4  # upstream's step: every CRPE question is asked with its 4 options rotated


class GroupError(ValueError):
    """Rows that cannot be cut into circular groups."""


@dataclass(frozen=True)
class Row:
    category: str
    identity: Hashable  # the same for every rotation of one question
    question_id: str
    correct: bool


@dataclass(frozen=True)
class Groups:
    """Per category (groups all correct, groups); ``mixed``: blocks that joined rows of different questions."""

    scores: dict[str, tuple[int, int]]
    mixed: int = 0


def _by_category(rows: list[Row]) -> dict[str, list[Row]]:
    result: dict[str, list[Row]] = {}
    for row in rows:
        result.setdefault(row.category, []).append(row)
    return result


def by_position(rows: list[Row]) -> Groups | None:
    """Upstream's blocks, or None where upstream's assert fails (a category's count not a multiple of 4)."""
    scores, mixed = {}, 0
    for category, members in _by_category(rows).items():
        if len(members) % ROTATIONS:
            return None
        blocks = [members[i : i + ROTATIONS] for i in range(0, len(members), ROTATIONS)]
        mixed += sum(len({row.identity for row in block}) > 1 for block in blocks)
        scores[category] = (sum(all(row.correct for row in block) for block in blocks), len(blocks))
    return Groups(scores, mixed)


def by_identity(rows: list[Row]) -> Groups:
    """Groups of the rows that ask one question; :class:`GroupError` names a question without 4k rotations."""
    scores = {}
    for category, members in _by_category(rows).items():
        questions: dict[Hashable, list[Row]] = {}
        for row in members:
            questions.setdefault(row.identity, []).append(row)
        groups = right = 0
        for rotations in questions.values():
            if len(rotations) % ROTATIONS:
                ids = sorted(row.question_id for row in rotations)
                raise GroupError(
                    f"category {category!r}: question {ids[0]!r} has {len(rotations)} rotations "
                    f"({', '.join(ids[: ROTATIONS + 1])}), not a multiple of {ROTATIONS}"
                )
            ordered = sorted(rotations, key=lambda row: natural_key(row.question_id))
            for start in range(0, len(ordered), ROTATIONS):
                groups += 1
                right += all(row.correct for row in ordered[start : start + ROTATIONS])
        scores[category] = (right, groups)
    return Groups(scores)
