"""Where a run stands in its learning-rate schedule: warm-up, cosine or constant, and the time box."""

from __future__ import annotations

import math


def lr_factor(step: float, total: int, warmup_ratio: float, schedule: str) -> float:
    """The learning rate's multiplier at ``step`` of ``total``: a linear warm-up over ``warmup_ratio`` of the steps,
    then ``constant`` or a ``cosine`` decay to zero."""
    warmup = math.ceil(total * warmup_ratio)
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class Budget:
    """Where a run stands in its schedule: its step, or with a time box its elapsed time if that is further on.

    ``elapsed`` is the training time so far (resumes included), set each step to the mean over the processes so
    that every process sees the same learning rate and stops at the same step.
    """

    def __init__(self, steps: int, max_minutes: float | None, elapsed: float = 0.0) -> None:
        self.steps = steps
        self.limit = max_minutes * 60 if max_minutes else None
        self.elapsed = elapsed

    def schedule_step(self, step: int) -> float:
        """The step the learning-rate schedule is at: the real one, or the time's share of all steps if greater."""
        if self.limit is None:
            return step
        return max(step, min(self.elapsed / self.limit, 1.0) * self.steps)

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.elapsed >= self.limit
