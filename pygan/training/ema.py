"""An exponential moving average of a network's parameters, kept beside it.

    ema = EMA(G.parameters(), beta=0.999)
    ema.update(step)                 # after each optimizer step of G (step 1-based)
    with ema.swapped():              # G holds the averaged weights inside the block
        samples = G(z)

The average is never read by training, so a run with it follows the same trajectory as one
without; evaluation and samples use it.
"""
from __future__ import annotations

import contextlib

from ..backend import get_backend

__all__ = ["EMA", "ema_weight"]


def ema_weight(beta: float, step: int) -> float:
    """The weight w of the new parameters in the EMA update after step ``step`` (1-based):
    ema ← ema + w·(θ − ema), w = 1 − min(β, (1 + step)/(10 + step)). The warm-up (the
    ``num_updates`` rule of TensorFlow's ExponentialMovingAverage) lets the average forget the
    initial weights quickly in short runs; from step ≈ 9/(1 − β) on, w = 1 − β."""
    return 1.0 - min(float(beta), (1.0 + step) / (10.0 + step))


class EMA:
    """The average of ``params`` (a list of Parameters), starting at their current values."""

    def __init__(self, params, beta: float):
        xp = get_backend().xp
        self.params = list(params)
        self.beta = float(beta)
        self.values = [p.data.copy() for p in self.params]
        self._tmp = [xp.empty_like(p.data) for p in self.params]

    def update(self, step: int) -> None:
        """ema ← ema + w·(θ − ema) for every parameter (w from :func:`ema_weight`)."""
        xp = get_backend().xp
        w = ema_weight(self.beta, step)
        for e, p, tmp in zip(self.values, self.params, self._tmp):
            xp.subtract(p.data, e, out=tmp)
            tmp *= tmp.dtype.type(w)
            e += tmp

    def _swap(self):
        for i, p in enumerate(self.params):
            p.data, self.values[i] = self.values[i], p.data

    @contextlib.contextmanager
    def swapped(self):
        """Inside the block the parameters hold the averages (the arrays are swapped, not
        copied, and swapped back on exit)."""
        self._swap()
        try:
            yield self
        finally:
            self._swap()
