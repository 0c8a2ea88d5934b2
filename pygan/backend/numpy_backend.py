"""NumPy reference backend: BLAS matmul and im2col/col2im convolution.

Every kernel here keeps the dtype of its inputs (float32 for training, float64 for gradient
checks). Shapes follow PyTorch: images are (N, C, H, W), conv weights (C_out, C_in, kh, kw).
"""
from __future__ import annotations

import numpy as np


class NumpyBackend:
    name = "numpy"
    xp = np

    # --- dense -------------------------------------------------------------------------
    @staticmethod
    def matmul(a, b, out=None):
        """a @ b through BLAS (sgemm/dgemm); transposed views are passed without copies."""
        return np.matmul(a, b, out=out)

    # --- convolution (filled in by pygan.backend.conv_numpy) ------------------------------
    def conv2d_forward(self, x, w, stride, padding):
        from . import conv_numpy
        return conv_numpy.conv2d_forward(x, w, stride, padding)

    def conv2d_backward_input(self, gy, w, x_shape, stride, padding):
        from . import conv_numpy
        return conv_numpy.conv2d_backward_input(gy, w, x_shape, stride, padding)

    def conv2d_backward_weight(self, x, gy, w_shape, stride, padding):
        from . import conv_numpy
        return conv_numpy.conv2d_backward_weight(x, gy, w_shape, stride, padding)

    def __repr__(self):
        return "NumpyBackend()"
