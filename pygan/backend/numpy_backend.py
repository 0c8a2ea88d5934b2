"""NumPy reference backend: BLAS matmul and im2col/col2im convolution.

Every kernel here keeps the dtype of its inputs (float32 for training, float64 for gradient
checks). Shapes follow PyTorch: images are (N, C, H, W), conv weights (C_out, C_in, kh, kw).
"""
from __future__ import annotations

import numpy as np

from . import conv_numpy, cpu_threads

# How many BLAS threads a product gets, and the pool for the rest: pygan.backend.cpu_threads.
SMALL_GEMM_MACS = cpu_threads.SMALL_GEMM_MACS


def _conv_macs(x_shape, w_shape, stride, padding):
    N, _, H, W = x_shape
    O, C, kh, kw = w_shape
    OH = (H + 2 * padding[0] - kh) // stride[0] + 1
    OW = (W + 2 * padding[1] - kw) // stride[1] + 1
    return N * OH * OW * O * C * kh * kw


class NumpyBackend:
    name = "numpy"
    xp = np
    _threads = cpu_threads.blas

    # --- dense -------------------------------------------------------------------------
    def matmul(self, a, b, out=None):
        """a @ b through BLAS (sgemm/dgemm); transposed views are passed without copies.
        Small products run on one BLAS thread (cpu_threads.BlasThreads)."""
        t = self._threads
        if t._lib is not None:
            if t.quiet:
                t.release_if_idle()
            macs = a.shape[-2] * a.shape[-1] * b.shape[-1] if a.ndim >= 2 and b.ndim >= 2 else 0
            # below own_single_macs the BLAS takes one thread by itself: no switch (each costs ~4 µs)
            if macs >= t.own_single_macs and (1 if macs < t.small_macs else t._default) != t._current:
                t.use(macs < t.small_macs)                           # (use() inlined: hot)
        return np.matmul(a, b, out=out)

    # --- memory-bound work (pygan.backend.cpu_threads) -----------------------------------
    split_rows = cpu_threads.split_rows
    """split_rows(fn, n, size): fn(lo, hi) over a partition of [0, n) on the CPU's cores (work of
    ``size`` elements; small work runs in one call). Optional in a backend (pygan.backend.by_rows
    runs the body in one call without it); layers use it, through by_rows, for
    elementwise passes over the batch axis, each call writing only its own rows."""

    # --- convolution (filled in by pygan.backend.conv_numpy) ------------------------------
    def conv2d_patches(self, x, w_shape, stride, padding, out=None):
        """x's im2col patch matrix, for ``patches=`` of conv2d_forward / conv2d_backward_weight:
        a layer builds it once in its forward and reuses it for its weight gradient (``out``: a
        previous patch matrix to overwrite if its shape and dtype fit). Optional in a backend:
        layers ask for it only where the backend has it."""
        return conv_numpy.conv2d_patches(x, w_shape, stride, padding, out)

    def conv2d_forward(self, x, w, stride, padding, patches=None):
        self._threads.use(_conv_macs(x.shape, w.shape, stride, padding) < self._threads.small_macs)
        return conv_numpy.conv2d_forward(x, w, stride, padding, patches)

    def conv2d_backward_input(self, gy, w, x_shape, stride, padding):
        self._threads.use(_conv_macs(x_shape, w.shape, stride, padding) < self._threads.small_macs)
        return conv_numpy.conv2d_backward_input(gy, w, x_shape, stride, padding)

    def conv2d_backward_weight(self, x, gy, w_shape, stride, padding, patches=None):
        self._threads.use(_conv_macs(x.shape, w_shape, stride, padding) < self._threads.small_macs)
        return conv_numpy.conv2d_backward_weight(x, gy, w_shape, stride, padding, patches)

    def __repr__(self):
        return "NumpyBackend()"
