"""Nearest-neighbour upsampling of (N, C, H, W) maps (PyTorch's ``nn.Upsample``, mode
"nearest").  Derivation: docs/gradients.md#upsample.

Output row i reads input row ⌊i·H/OH⌋ (torch's rule, with the ratio in float32 as torch
computes it; for an integer scale factor s that is ⌊i/s⌋), and the same for columns. With the
0/1 selection matrices P_h (OH, H) and P_w (OW, W), y = P_h x P_wᵀ per (n, c), so the input
gradient is ∂L/∂x = P_hᵀ gy P_w: each input pixel collects the gradients of its copies.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_backend
from .module import Module


class Upsample(Module):
    """y[n, c, i, j] = x[n, c, ⌊i·H/OH⌋, ⌊j·W/OW⌋] (PyTorch's ``nn.Upsample``, mode "nearest").

    Exactly one of ``size`` (an int or (OH, OW)) and ``scale_factor`` (a positive integer or a
    pair of them; OH = H·s_h) is given. Shapes: x (N, C, H, W) → y (N, C, OH, OW).

    Backward (docs/gradients.md#upsample): ∂L/∂x = P_hᵀ gy P_w (sums of gy over each input
    pixel's copies; gy.reshape(N, C, H, s_h, W, s_w).sum((3, 5)) for integer factors). The map is
    linear, so the tangent is ẏ = Upsample(ẋ) and its adjoint is the backward of gy and gẏ.
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if mode != "nearest":
            raise NotImplementedError(f"Upsample: mode {mode!r} is not implemented (only 'nearest')")
        if align_corners is not None:
            raise ValueError("Upsample: align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear (torch's rule)")
        if (size is None) == (scale_factor is None):
            raise ValueError(f"Upsample: give exactly one of size and scale_factor, got size={size!r}, "
                             f"scale_factor={scale_factor!r}")
        self.mode = mode
        self.size = None if size is None else self._pair("size", size)
        self.scale_factor = None if scale_factor is None else self._pair("scale_factor", scale_factor)
        self._cache = None

    @staticmethod
    def _pair(name, v):
        vals = tuple(v) if isinstance(v, (tuple, list)) else (v, v)

        def ok(e):
            return (not isinstance(e, bool) and isinstance(e, (int, float, np.integer, np.floating))
                    and float(e) == int(e) and int(e) >= 1)
        if len(vals) != 2 or not all(ok(e) for e in vals):
            raise ValueError(f"Upsample: {name} must be a positive integer or a pair of them, got {v!r}")
        return int(vals[0]), int(vals[1])

    def _arg(self):
        if self.size is not None:
            s = self.size
            return f"size={s[0] if s[0] == s[1] else s}"
        s = self.scale_factor
        return f"scale_factor={s[0] if s[0] == s[1] else s}"

    def describe(self):
        return f"Upsample({self._arg()})"

    def extra_repr(self):
        return f"{self._arg()}, mode='{self.mode}'"

    def output_shape(self, x_shape):
        n, c, h, w = x_shape
        if self.size is not None:
            return (n, c) + self.size
        return (n, c, h * self.scale_factor[0], w * self.scale_factor[1])

    @staticmethod
    def _index(n_in, n_out):
        ratio = np.float32(n_in / n_out) if n_in != n_out else np.float32(1)
        src = np.floor(np.arange(n_out, dtype=np.float32) * ratio).astype(np.int64)
        return np.minimum(src, n_in - 1)

    def forward(self, x):
        xp = get_backend().xp
        if not isinstance(x, xp.ndarray):
            raise TypeError(f"{self.describe()}: expected an array, got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"{self.describe()}: expected input (N, C, H, W), got {tuple(x.shape)}")
        if x.dtype.kind != "f":
            raise TypeError(f"{self.describe()}: expected a floating input, got dtype {x.dtype}")
        out = self.output_shape(x.shape)
        ih, iw = self._index(x.shape[2], out[2]), self._index(x.shape[3], out[3])
        integer = self.scale_factor is not None
        self._cache = (x.shape, out, integer, xp.asarray(ih), xp.asarray(iw))
        return self._apply(x)

    def _apply(self, x):
        shape, out, integer, ih, iw = self._cache
        xp = get_backend().xp
        if integer:
            sh, sw = self.scale_factor
            n, c, h, w = shape
            y = xp.empty((n, c, h, sh, w, sw), dtype=x.dtype)
            y[...] = x[:, :, :, None, :, None]
            return y.reshape(out)
        return xp.ascontiguousarray(x[:, :, ih[:, None], iw[None, :]])

    def backward(self, gy):
        shape, out, integer, ih, iw = self._need_cache(self._cache)
        if tuple(gy.shape) != tuple(out):
            raise ValueError(f"{self.describe()}: backward got gy of shape {tuple(gy.shape)}, expected {tuple(out)}")
        xp = get_backend().xp
        n, c, h, w = shape
        if integer:
            sh, sw = self.scale_factor
            return xp.ascontiguousarray(gy.reshape(n, c, h, sh, w, sw).sum(axis=(3, 5)))
        ph = (ih[:, None] == xp.arange(h)[None, :]).astype(gy.dtype)      # P_h (OH, H)
        pw = (iw[:, None] == xp.arange(w)[None, :]).astype(gy.dtype)      # P_w (OW, W)
        return xp.ascontiguousarray(ph.T @ gy @ pw)

    def backward_input(self, gy):
        return self.backward(gy)

    def jvp(self, dx):
        shape = self._need_cache(self._cache)[0]
        if tuple(dx.shape) != tuple(shape):
            raise ValueError(f"{self.describe()}: jvp got a tangent of shape {tuple(dx.shape)}, "
                             f"expected the input's {tuple(shape)}")
        return self._apply(dx)

    def backward_jvp(self, gy, gdy):
        return (None if gy is None else self.backward(gy)), self.backward(gdy)

    def backward_jvp_params(self, gy, gdy):
        return None if gy is None else self.backward(gy)
