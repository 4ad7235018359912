"""Percentages as upstream's scorers print them, for the metrics and (through ``eval.task``) the tasks."""

from __future__ import annotations

import math


def percent(numerator: float, denominator: float) -> float | None:
    """A percentage with 2 decimals, or None when there is nothing to measure. Computed as upstream's scorers
    print it (``n / d * 100``, then 2 decimals): ``100 * n / d`` can differ in the last bit and so round the other
    way on a tie."""
    return round(numerator / denominator * 100, 2) if denominator else None


def mean_percent(fractions: list[float], exact: bool = False) -> float | None:
    """The mean of unrounded fractions as a percentage with 2 decimals. ``exact=False`` adds them in the order
    given, as upstream's mean recalls do (the last bit can depend on it); ``exact=True`` adds them exactly, in any
    order the same."""
    if not fractions:
        return None
    total = math.fsum(fractions) if exact else sum(fractions)
    return round(total / len(fractions) * 100, 2)
