"""The backend seam: an array module (``xp``) plus the hot kernels.

Layers are written once, against ``backend.xp`` for cheap elementwise work and against the
backend's kernel methods for the hot paths (matmul, convolution, fused losses). ``set_backend``
switches every layer at once; the NumPy backend is the reference every other backend is tested
against.

    numpy      numpy arrays, NumPy/BLAS kernels (float32 and float64)
    cupy       CuPy arrays and CuPy's kernels (pygan.backend.cupy_backend, when present)
    cuda       CuPy arrays, pygan's own CUDA kernels through pygan._cuda (pygan.backend.cuda)
    cuda-emu   numpy arrays, the same kernels on the CPU emulator through pygan._cuda_emu

Backends other than numpy are imported lazily: importing pygan never fails because CuPy, a
GPU or a compiled extension is missing; ``available_backends()`` says why one cannot run.
"""
from __future__ import annotations

import importlib

from . import cpu_threads
from .numpy_backend import NumpyBackend

# name -> (module, class); the module is imported only when the backend is asked for
_REGISTRY = {
    "numpy": (".numpy_backend", "NumpyBackend"),
    "cupy": (".cupy_backend", "CupyBackend"),
    "cuda": (".cuda", "CudaBackend"),
    "cuda-emu": (".cuda_emu", "CudaEmuBackend"),
}
_current = NumpyBackend()


def _backend_class(name):
    """(class, None) or (None, reason it cannot be loaded)."""
    module, cls = _REGISTRY[name]
    try:
        mod = importlib.import_module(module, __name__)
    except ModuleNotFoundError as e:
        if e.name == __name__ + module:
            return None, "not implemented yet"
        return None, f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 — a backend module must never break pygan's import
        return None, f"{type(e).__name__}: {e}"
    return getattr(mod, cls), None


def _reason(name):
    cls, why = _backend_class(name)
    if why:
        return why
    check = getattr(cls, "unavailable_reason", None)
    try:
        return check() if check else None
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"


def set_backend(name: str):
    """Select the backend every layer uses from now on; returns it.

    Unknown names raise ValueError; a known backend that cannot run here raises RuntimeError
    saying why (the same reason ``available_backends()`` gives).
    """
    global _current
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; known: {sorted(_REGISTRY)}")
    if name == "numpy":
        _current = NumpyBackend()
        return _current
    why = _reason(name)
    if why:
        raise RuntimeError(f"backend {name!r} is not available: {why}")
    cls, _ = _backend_class(name)
    _current = cls()
    return _current


def get_backend():
    """The backend in use (``.name``, ``.xp`` and the kernels)."""
    return _current


def by_rows(body, x):
    """body(s) for slices s that partition x's first axis — on the CPU's cores with the NumPy
    backend (``split_rows``, pygan.backend.cpu_threads), in one call elsewhere.  For elementwise
    passes whose call on slice s reads and writes only rows s of its arrays."""
    split = getattr(_current, "split_rows", None)      # optional in a backend
    if split is None or x.ndim == 0 or x.size < cpu_threads.MIN_SPLIT_ELEMENTS:
        body(Ellipsis)                         # small: one call, no hand-off (the common case)
    else:
        split(lambda lo, hi: body(slice(lo, hi)), x.shape[0], x.size)


def available_backends() -> dict:
    """Map every backend name to ``None`` if it runs here, else to the reason it does not."""
    return {name: (None if name == "numpy" else _reason(name)) for name in _REGISTRY}


__all__ = ["to_host", "to_device", "set_backend", "get_backend", "available_backends", "NumpyBackend"]


def to_host(a):
    """A NumPy array with ``a``'s values: device arrays (CuPy) are copied to the host."""
    import numpy as np

    return a.get() if hasattr(a, "get") else np.asarray(a)


def to_device(a, dtype=None):
    """``a`` as an array of the current backend (NumPy or CuPy), cast to ``dtype`` if given:
    the inverse of :func:`to_host`. Host arrays are copied to the device; an array already there
    is returned as it is (or cast)."""
    xp = get_backend().xp
    return xp.asarray(a) if dtype is None else xp.asarray(a, dtype=dtype)
