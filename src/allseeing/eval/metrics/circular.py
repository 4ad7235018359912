"""CRPE's circular evaluation: a question counts only if all its rotations are answered correctly.

Groups are taken from the QUESTION file: the rows of one category, in file order, cut into blocks of ``n``
(upstream cut the answer file, so its score depended on the order of the answers). A missing answer fails its
group.
"""

from __future__ import annotations

from collections.abc import Iterable


class GroupError(ValueError):
    """A category whose row count is not a multiple of the group size."""


def circular_groups(rows: Iterable[tuple[str, bool]], n: int = 4) -> dict[str, tuple[int, int]]:
    """Per category: (groups all correct, groups). ``rows`` are (category, correct) in question-file order."""
    by_category: dict[str, list[bool]] = {}
    for category, correct in rows:
        by_category.setdefault(category, []).append(correct)
    result = {}
    for category, outcomes in by_category.items():
        if len(outcomes) % n:
            raise GroupError(f"category {category!r} has {len(outcomes)} rows, not a multiple of {n}")
        blocks = [outcomes[i : i + n] for i in range(0, len(outcomes), n)]
        result[category] = (sum(all(block) for block in blocks), len(blocks))
    return result
