"""Learning-rate schedules: a factor on the base rate, a function of the step alone (so a resumed
run gets the same rates)."""
from __future__ import annotations

import math

__all__ = ["lr_factor", "SCHEDULES"]

SCHEDULES = ("none", "linear")


def lr_factor(schedule: str, step: int, steps: int, start: float) -> float:
    """The factor on the base learning rates during step ``step`` (1-based).

    "none": 1. "linear", with T = ``steps`` and t₀ = ⌊start·T⌋: 1 for step ≤ t₀, then
    (T − step + 1)/(T − t₀) — falling by equal amounts to 1/(T − t₀) at the last step, never 0."""
    if schedule == "none":
        return 1.0
    T = int(steps)
    t0 = int(math.floor(start * T))
    if step <= t0 or T <= t0:
        return 1.0
    return max(T - step + 1, 1) / float(T - t0)
