"""NumPy reference backend: BLAS matmul and im2col/col2im convolution.

Every kernel here keeps the dtype of its inputs (float32 for training, float64 for gradient
checks). Shapes follow PyTorch: images are (N, C, H, W), conv weights (C_out, C_in, kh, kw).
"""
from __future__ import annotations

import numpy as np

from . import conv_numpy

# Products below this many multiply-adds run on one BLAS thread: a second thread's wake-up costs
# more than it saves on them. W1's and W4's 256×128×128 products (4.2M) gain from it on a quiet
# 2-core machine (W4 step 2.22 vs 2.43 ms, W1 2.56 vs 2.73 ms, benchmarks/bench_core.py); on a
# busy machine a second thread can cost up to 10× — run with OPENBLAS_NUM_THREADS=1 there.
SMALL_GEMM_MACS = 2_000_000


class _BlasThreads:
    """Switches OpenBLAS/MKL between one thread and its default, only when the wanted count
    changes (~1 µs a switch, through threadpoolctl; a no-op where threadpoolctl is missing)."""

    def __init__(self):
        self._lib, self._default, self._current = None, None, None
        try:
            from threadpoolctl import ThreadpoolController
            libs = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # threadpoolctl missing or unable to find the BLAS: leave it alone
            libs = []
        if libs:
            self._lib = libs[0]
            self._default = self._current = self._lib.num_threads

    def use(self, small: bool):
        if self._lib is None:
            return
        want = 1 if small else self._default
        if want != self._current:
            self._lib.set_num_threads(want)
            self._current = want


_THREADS = _BlasThreads()  # one per process: its default is the count found at import


def _conv_macs(x_shape, w_shape, stride, padding):
    N, _, H, W = x_shape
    O, C, kh, kw = w_shape
    OH = (H + 2 * padding[0] - kh) // stride[0] + 1
    OW = (W + 2 * padding[1] - kw) // stride[1] + 1
    return N * OH * OW * O * C * kh * kw


class NumpyBackend:
    name = "numpy"
    xp = np
    _threads = _THREADS

    # --- dense -------------------------------------------------------------------------
    def matmul(self, a, b, out=None):
        """a @ b through BLAS (sgemm/dgemm); transposed views are passed without copies.
        Small products run on one BLAS thread (see SMALL_GEMM_MACS)."""
        t = self._threads
        if t._lib is not None:
            macs = a.shape[-2] * a.shape[-1] * b.shape[-1] if a.ndim >= 2 and b.ndim >= 2 else 0
            if (1 if macs < SMALL_GEMM_MACS else t._default) != t._current:   # (use() inlined: hot)
                t.use(macs < SMALL_GEMM_MACS)
        return np.matmul(a, b, out=out)

    # --- convolution (filled in by pygan.backend.conv_numpy) ------------------------------
    def conv2d_patches(self, x, w_shape, stride, padding, out=None):
        """x's im2col patch matrix, for ``patches=`` of conv2d_forward / conv2d_backward_weight:
        a layer builds it once in its forward and reuses it for its weight gradient (``out``: a
        previous patch matrix to overwrite if its shape and dtype fit). Optional in a backend:
        layers ask for it only where the backend has it."""
        return conv_numpy.conv2d_patches(x, w_shape, stride, padding, out)

    def conv2d_forward(self, x, w, stride, padding, patches=None):
        self._threads.use(_conv_macs(x.shape, w.shape, stride, padding) < SMALL_GEMM_MACS)
        return conv_numpy.conv2d_forward(x, w, stride, padding, patches)

    def conv2d_backward_input(self, gy, w, x_shape, stride, padding):
        self._threads.use(_conv_macs(x_shape, w.shape, stride, padding) < SMALL_GEMM_MACS)
        return conv_numpy.conv2d_backward_input(gy, w, x_shape, stride, padding)

    def conv2d_backward_weight(self, x, gy, w_shape, stride, padding, patches=None):
        self._threads.use(_conv_macs(x.shape, w_shape, stride, padding) < SMALL_GEMM_MACS)
        return conv_numpy.conv2d_backward_weight(x, gy, w_shape, stride, padding, patches)

    def __repr__(self):
        return "NumpyBackend()"
