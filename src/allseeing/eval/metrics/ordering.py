"""A deterministic order of question ids, for ``fixed``'s tie-breaks: numbers by value ("q8" before "q10")."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(question_id: str) -> tuple:
    """Sort key: runs of digits compare as numbers, the rest as text."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(question_id))
