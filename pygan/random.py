"""pygan's global random generator (weight initialisation, Dropout masks, noise).

``pygan.manual_seed(s)`` makes every later initialisation reproducible, like
``torch.manual_seed``. Code that needs its own stream takes an explicit
``numpy.random.Generator`` instead.
"""
from __future__ import annotations

import numpy as np

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the global generator to ``seed``; returns it."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def get_rng() -> np.random.Generator:
    """The global generator."""
    return _rng
