"""The ``cuda-emu`` backend: pygan's CUDA kernels (csrc/kernels), compiled by the C++ compiler
and run by the CPU emulator of the CUDA execution model (csrc/emu) on numpy arrays.

It exists to prove the kernels without a GPU: every launch runs each thread of each block as a
fiber, with real ``__syncthreads`` barriers, shared memory and warp shuffles, so a kernel that
is wrong on a GPU is wrong here too, and a shared-memory data race fails the launch (the race
check of csrc/emu/emu.cpp; docs/backends.md#the-emulator).  It is slow — a few
MFLOP/s — use it for tests and study, never for training speed.  float32 only.

Methods and fused ops: see :mod:`pygan.backend.cuda` (:class:`KernelBackend`).
"""
from __future__ import annotations

import numpy as np

from .cuda import KernelBackend


def _import_extension():
    try:
        from .. import _cuda_emu
    except ImportError as e:
        return None, (f"the extension pygan._cuda_emu is not built ({e}); build it with "
                      f"`pip install -e .` or `python setup.py build_ext --inplace` in the checkout "
                      f"(needs a C++17 compiler)")
    return _cuda_emu, None


class CudaEmuBackend(KernelBackend):
    """pygan's CUDA kernels on the CPU emulator: numpy float32 arrays, host pointers."""

    name = "cuda-emu"
    xp = np

    def __init__(self):
        ext, why = _import_extension()
        if why:
            raise RuntimeError(f"backend 'cuda-emu' is not available: {why}")
        self._k = ext

    @staticmethod
    def unavailable_reason():
        return _import_extension()[1]
