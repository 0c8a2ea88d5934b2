"""The backend seam: an array module (``xp``) plus the hot kernels.

Layers are written once, against ``backend.xp`` for cheap elementwise work and against the
backend's kernel methods for the hot paths (matmul, convolution). ``set_backend`` switches every
layer at once; the NumPy backend is the reference every other backend is tested against.
"""
from __future__ import annotations

from .numpy_backend import NumpyBackend

_FACTORIES = {"numpy": NumpyBackend}
_PLANNED = {
    "cupy": "not implemented yet (CuPy backend, issue: CuPy backend)",
    "cuda": "not implemented yet (pygan's own CUDA kernels, issue: CUDA extension)",
    "cuda-emu": "not implemented yet (CPU emulator of pygan's CUDA kernels)",
}
_current = NumpyBackend()


def set_backend(name: str):
    """Select the backend every layer uses from now on; returns it."""
    global _current
    if name not in _FACTORIES:
        if name in _PLANNED:
            raise RuntimeError(f"backend {name!r} is not available: {_PLANNED[name]}")
        raise ValueError(f"unknown backend {name!r}; known: {sorted(_FACTORIES) + sorted(_PLANNED)}")
    _current = _FACTORIES[name]()
    return _current


def get_backend():
    """The backend in use (``.name``, ``.xp`` and the kernels)."""
    return _current


def available_backends() -> dict:
    """Map every backend name to ``None`` if it runs here, else to the reason it does not."""
    out = {name: None for name in _FACTORIES}
    out.update(_PLANNED)
    return out


__all__ = ["set_backend", "get_backend", "available_backends", "NumpyBackend"]
