"""pygan: GANs from scratch with hand-derived, finite-difference-checked gradients (no autograd).

Two layers. The library — :mod:`pygan.nn` (layers), :mod:`pygan.backend` (NumPy, CuPy, CUDA
kernels), :mod:`pygan.losses`, :mod:`pygan.penalties`, :mod:`pygan.optim`, :mod:`pygan.gradcheck`,
:mod:`pygan.models` and :mod:`pygan.random` — imports nothing of the application built on it:
:mod:`pygan.data`, :mod:`pygan.training` (config, presets, the one trainer, a task per model
family, checkpoints), :mod:`pygan.evaluation` (metrics, the judge, sampling), :mod:`pygan.plots`
and :mod:`pygan.cli` (the ``pygan`` command). Importing ``pygan`` loads the library only; the
application's packages load on first use (``pygan.training``, ``from pygan import data``).
"""
import importlib

from .backend import set_backend, get_backend, available_backends
from .random import manual_seed
from . import nn, losses, penalties, optim, gradcheck

__version__ = "0.1.0"

#: application modules reachable as attributes of ``pygan`` (loaded on first use); the short
#: names are the ones ``from pygan import metrics`` etc. have always given
_APPLICATION = {
    "data": "pygan.data", "training": "pygan.training", "evaluation": "pygan.evaluation",
    "plots": "pygan.plots", "cli": "pygan.cli", "files": "pygan.files",
    "metrics": "pygan.evaluation.metrics", "judge": "pygan.evaluation.judge",
    "config": "pygan.training.config", "presets": "pygan.training.presets",
    "checkpoint": "pygan.training.checkpoint",
}


def __getattr__(name):
    if name in _APPLICATION:
        module = importlib.import_module(_APPLICATION[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'pygan' has no attribute {name!r}")


__all__ = ["set_backend", "get_backend", "available_backends", "manual_seed", "nn", "losses", "penalties",
           "optim", "gradcheck", "__version__"]
