"""Average pooling over non-overlapping windows (PyTorch's ``nn.AvgPool2d`` with stride = kernel
size, no padding).  Derivation: docs/gradients.md#avgpool2d.

Window (i, j) averages the k_h × k_w input pixels x[kh·i + a, kw·j + b]; rows and columns past the
last whole window are dropped (torch's floor rule). ``divisor_override`` divides by that number
instead of k_h·k_w (1: a sum pool, BigGAN's global pooling of its discriminator's last map).
"""
from __future__ import annotations

from ..backend import get_backend
from .module import Module


class AvgPool2d(Module):
    """y[n, c, i, j] = (1/d) Σ_{a<k_h, b<k_w} x[n, c, k_h·i + a, k_w·j + b],  d = k_h·k_w or
    ``divisor_override`` (PyTorch's ``nn.AvgPool2d`` for stride = kernel_size, padding 0).

    Shapes: x (N, C, H, W) → y (N, C, ⌊H/k_h⌋, ⌊W/k_w⌋).

    Backward (docs/gradients.md#avgpool2d): every pixel of a window receives gy/d of its window;
    pixels past the last whole window receive 0. The map is linear, so the tangent is
    ẏ = AvgPool2d(ẋ) and its adjoint is the backward of gy and gẏ (it may sit in a penalised
    critic).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        super().__init__()
        k = self._pair("kernel_size", kernel_size)
        s = k if stride is None else self._pair("stride", stride)
        if s != k or padding not in (0, (0, 0)) or ceil_mode:
            raise NotImplementedError(f"AvgPool2d: only non-overlapping windows are implemented (stride = "
                                      f"kernel_size, padding 0, ceil_mode False), got kernel_size={kernel_size!r}, "
                                      f"stride={stride!r}, padding={padding!r}, ceil_mode={ceil_mode!r}")
        if divisor_override is not None and (isinstance(divisor_override, bool)
                                             or int(divisor_override) != divisor_override or divisor_override <= 0):
            raise ValueError(f"AvgPool2d: divisor_override must be a positive integer or None, got {divisor_override!r}")
        self.kernel_size = k
        self.stride = k
        self.divisor_override = None if divisor_override is None else int(divisor_override)
        self._cache = None

    @staticmethod
    def _pair(name, v):
        vals = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
        if len(vals) != 2 or any(isinstance(e, bool) or int(e) != e or e < 1 for e in vals):
            raise ValueError(f"AvgPool2d: {name} must be a positive integer or a pair of them, got {v!r}")
        return int(vals[0]), int(vals[1])

    def _k(self):
        k = self.kernel_size
        return k[0] if k[0] == k[1] else k

    def describe(self):
        d = f", divisor {self.divisor_override}" if self.divisor_override is not None else ""
        return f"AvgPool2d({self._k()}{d})"

    def extra_repr(self):
        d = f", divisor_override={self.divisor_override}" if self.divisor_override is not None else ""
        return f"kernel_size={self._k()}, stride={self._k()}{d}"

    def _divisor(self):
        kh, kw = self.kernel_size
        return self.divisor_override if self.divisor_override is not None else kh * kw

    def forward(self, x):
        xp = get_backend().xp
        if not isinstance(x, xp.ndarray):
            raise TypeError(f"{self.describe()}: expected an array, got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"{self.describe()}: expected input (N, C, H, W), got {tuple(x.shape)}")
        if x.dtype.kind != "f":
            raise TypeError(f"{self.describe()}: expected a floating input, got dtype {x.dtype}")
        kh, kw = self.kernel_size
        n, c, h, w = x.shape
        oh, ow = h // kh, w // kw
        if oh == 0 or ow == 0:
            raise ValueError(f"{self.describe()}: input {tuple(x.shape)} is smaller than one window")
        self._cache = (x.shape, (n, c, oh, ow))
        return self._apply(x)

    def _apply(self, x):
        shape, out = self._cache
        n, c, oh, ow = out
        kh, kw = self.kernel_size
        xw = x[:, :, :oh * kh, :ow * kw].reshape(n, c, oh, kh, ow, kw)
        y = get_backend().xp.einsum("ncihjw->ncij", xw)
        y *= y.dtype.type(1.0 / self._divisor())
        return y

    def backward(self, gy):
        shape, out = self._need_cache(self._cache)
        if tuple(gy.shape) != tuple(out):
            raise ValueError(f"{self.describe()}: backward got gy of shape {tuple(gy.shape)}, expected {tuple(out)}")
        xp = get_backend().xp
        n, c, oh, ow = out
        kh, kw = self.kernel_size
        g = gy * gy.dtype.type(1.0 / self._divisor())
        if shape[2] == oh * kh and shape[3] == ow * kw:
            gx = xp.empty((n, c, oh, kh, ow, kw), dtype=gy.dtype)
            gx[...] = g[:, :, :, None, :, None]
            return gx.reshape(shape)
        gx = xp.zeros(shape, dtype=gy.dtype)
        win = gx[:, :, :oh * kh, :ow * kw].reshape(n, c, oh, kh, ow, kw)   # a copy if not contiguous
        win[...] = g[:, :, :, None, :, None]
        gx[:, :, :oh * kh, :ow * kw] = win.reshape(n, c, oh * kh, ow * kw)
        return gx

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


__all__ = ["AvgPool2d"]
