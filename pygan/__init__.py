"""pygan: GANs from scratch with hand-derived, finite-difference-checked gradients (no autograd)."""
from .backend import set_backend, get_backend, available_backends
from .random import manual_seed
from . import nn, losses, penalties, optim, gradcheck, data, metrics

__version__ = "0.1.0"

__all__ = ["set_backend", "get_backend", "available_backends", "manual_seed", "nn", "losses", "penalties",
           "optim", "gradcheck", "data", "metrics", "__version__"]
