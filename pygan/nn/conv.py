"""2-D convolution and transposed convolution.  Derivations: docs/gradients.md#conv2d and
docs/gradients.md#convtranspose2d; under a penalty (jvp, backward_jvp):
docs/gradients.md#second-order.

Both layers go through the backend's three kernels (``get_backend()``):

    conv2d_forward(x, w, stride, padding)                       y  = conv(x, w)
    conv2d_backward_input(gy, w, x_shape, stride, padding)      gx = convᵀ(gy, w)   (adjoint in x)
    conv2d_backward_weight(x, gy, w_shape, stride, padding)     gw = ∂⟨gy, conv(x, w)⟩/∂w

A transposed convolution is the adjoint of a convolution, so it uses the same three with the
roles swapped (forward = backward_input, input gradient = forward, weight gradient =
backward_weight with x and gy exchanged).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_backend
from . import init
from .module import Module, Parameter, check_input


def _pair(name, v, minimum):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (int(v), int(v))
    else:
        try:
            v = tuple(v)
        except TypeError:
            raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}") from None
        if len(v) != 2 or not all(isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in v):
            raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
        v = (int(v[0]), int(v[1]))
    if min(v) < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {v}")
    return v


class _ConvBase(Module):
    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, bias, dtype, w_shape):
        if int(in_channels) <= 0 or int(out_channels) <= 0:
            raise ValueError(f"{type(self).__name__}: channels must be positive, got "
                             f"({in_channels}, {out_channels})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"{type(self).__name__}: dtype must be floating, got {dtype}")
        xp = get_backend().xp
        self.weight = Parameter(xp.empty(w_shape + self.kernel_size, dtype=dtype))
        self.bias = Parameter(xp.empty((self.out_channels,), dtype=dtype)) if bias else None
        init.default_uniform_(self.weight, self.bias)
        self._cache = None
        self._patches = None     # im2col of the forward's x where the backend builds one (NumPy)
        self._dx = None

    def describe(self):
        return f"{type(self).__name__}({self.in_channels}→{self.out_channels})"

    def _shape_hint(self):
        return f"(N, {self.in_channels}, H, W)"

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.bias is None:
            s += ", bias=False"
        return s

    def _check(self, x):
        check_input(self, x, ndim=4, channels_axis=1, channels=self.in_channels)

    def _add_bias(self, y):
        if self.bias is not None:
            y += self.bias.data.reshape(1, -1, 1, 1)
        return y

    def _bias_grad(self, gy):
        if self.bias is not None:
            self.bias.grad += gy.sum(axis=(0, 2, 3))

    # Each layer is y = A(x) + b with A linear in x and in w; a subclass gives A (_apply), its
    # adjoint in x (_adjoint, the input gradient) and its adjoint in w (_weight_grad). Everything
    # below follows from those three (docs/gradients.md#conv2d, #second-order). ``patches``: the
    # im2col matrix of the array the product convolves, where the backend builds one (NumPy),
    # passed so that it is built once and used twice; None lets the backend build it.
    def _apply(self, x, patches=None):
        raise NotImplementedError

    def _adjoint(self, gy, x_shape, patches=None):
        raise NotImplementedError

    def _weight_grad(self, x, gy, patches=None):
        raise NotImplementedError

    def _im2col(self, a, reuse=None):
        """The patch matrix of a (convolved with a kernel of the weight's shape), or None where the
        backend has no separate im2col (CuPy, CUDA). ``reuse``: a patch matrix nothing else holds,
        overwritten when its shape fits."""
        f = getattr(get_backend(), "conv2d_patches", None)
        return None if f is None else f(a, self.weight.shape, self.stride, self.padding, reuse)

    def _checked_cache(self, gy):
        x = self._need_cache(self._cache)
        if tuple(gy.shape) != self.output_shape(x.shape):
            raise ValueError(f"{self.describe()}: backward got gy of shape {tuple(gy.shape)}, "
                             f"expected {self.output_shape(x.shape)}")
        return x

    def backward(self, gy):
        x = self._checked_cache(gy)
        self.backward_params(gy)
        return self._adjoint(gy, x.shape)

    def backward_input(self, gy):
        return self._adjoint(gy, self._checked_cache(gy).shape)

    def backward_params(self, gy):
        self.weight.grad += self._weight_grad(self._checked_cache(gy), gy, self._patches)
        self._bias_grad(gy)

    # ẏ = A(ẋ) (no bias);  adjoint: ∂/∂W += Aᵀ_w(x, gy) + Aᵀ_w(ẋ, gẏ), gx = Aᵀ(gy), gẋ = Aᵀ(gẏ).
    def jvp(self, dx):
        x = self._need_cache(self._cache)
        if dx.shape != x.shape:
            raise ValueError(f"{self.describe()}: jvp got a tangent of shape {tuple(dx.shape)}, "
                             f"expected the input's {tuple(x.shape)}")
        self._dx = dx
        return self._apply(dx)

    def backward_jvp(self, gy, gdy):
        self._need_cache(self._cache)
        dx = self._need_cache(self._dx)
        self.weight.grad += self._weight_grad(dx, gdy)
        gdx = self._adjoint(gdy, dx.shape)
        return (None if gy is None else self.backward(gy)), gdx

    def backward_jvp_params(self, gy, gdy):
        self._need_cache(self._cache)
        self.weight.grad += self._weight_grad(self._need_cache(self._dx), gdy)
        return None if gy is None else self.backward(gy)


class Conv2d(_ConvBase):
    """2-D convolution (cross-correlation, like PyTorch's ``nn.Conv2d``):

        y[n, o, p, q] = b[o] + Σ_{c,i,j} w[o, c, i, j] · xpad[n, c, sh·p + i, sw·q + j]

    where xpad is x zero-padded by (ph, pw) on each side.

    Shapes: x (N, C_in, H, W) → y (N, C_out, OH, OW), OH = ⌊(H + 2ph − kh)/sh⌋ + 1 (same for
    OW); weight (C_out, C_in, kh, kw); bias (C_out,). ``kernel_size``, ``stride`` and
    ``padding`` are ints or (h, w) pairs. Initialisation: PyTorch's U(−1/√fan_in, 1/√fan_in),
    fan_in = C_in·kh·kw, for weight and bias.

    Backward (docs/gradients.md#conv2d), with cols = im2col(x) (N·OH·OW, C_in·kh·kw) and W the
    weight as a (C_out, C_in·kh·kw) matrix:
    y = cols Wᵀ,  ∂L/∂W += gyᵀ cols,  ∂L/∂x = col2im(gy W) (col2im = im2colᵀ),  ∂L/∂b += Σ_{n,p,q} gy.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, dtype=np.float32):
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, bias, dtype,
                    (int(out_channels), int(in_channels)))

    def output_shape(self, x_shape):
        N, _, H, W = x_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (N, self.out_channels, (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1)

    def forward(self, x):
        self._check(x)
        H, W = x.shape[2:]
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if H + 2 * ph < kh or W + 2 * pw < kw:
            raise ValueError(f"{self.describe()}: input {tuple(x.shape)} padded by {self.padding} is "
                             f"{(H + 2 * ph, W + 2 * pw)}, smaller than the kernel {self.kernel_size}")
        # kept for the weight gradient, which multiplies by it again; the previous forward's
        # matrix (private to this layer) is overwritten in place
        patches = self._im2col(x, reuse=self._patches)
        y = self._apply(x, patches)
        self._cache, self._patches = x, patches
        return self._add_bias(y)

    def _apply(self, x, patches=None):
        return get_backend().conv2d_forward(x, self.weight.data, self.stride, self.padding, patches)

    def _adjoint(self, gy, x_shape, patches=None):
        return get_backend().conv2d_backward_input(gy, self.weight.data, x_shape, self.stride, self.padding)

    def _weight_grad(self, x, gy, patches=None):
        return get_backend().conv2d_backward_weight(x, gy, self.weight.shape, self.stride, self.padding,
                                                    patches)


class ConvTranspose2d(_ConvBase):
    """2-D transposed convolution (PyTorch's ``nn.ConvTranspose2d``), the adjoint of Conv2d:

        y[n, o, h, w] = b[o] + Σ_{c,i,j : sh·p + i = h + ph, sw·q + j = w + pw} w[c, o, i, j] · x[n, c, p, q]

    i.e. each input pixel scatters w[c, :, :, :]·x[n, c, p, q] at (sh·p − ph, sw·q − pw).

    Shapes: x (N, C_in, H, W) → y (N, C_out, OH, OW) with OH = (H − 1)·sh − 2ph + kh + oph
    (same for OW); weight (C_in, C_out, kh, kw); bias (C_out,). ``output_padding`` (< stride,
    PyTorch's rule) adds rows/columns at the bottom/right that receive only the bias — it picks
    among the output sizes a stride-s Conv2d maps onto the same H. Initialisation: PyTorch's
    U(−1/√fan_in, 1/√fan_in) with fan_in = weight.size(1)·kh·kw = C_out·kh·kw.

    With conv(·, w) the Conv2d with the same weight (as (C_in, C_out, kh, kw) = "out, in" of that
    conv), stride and padding (docs/gradients.md#convtranspose2d):
    y = convᵀ(x) + b,  ∂L/∂x = conv(gy),  ∂L/∂w += conv2d_backward_weight(gy, x),  ∂L/∂b += Σ gy.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, bias: bool = True, dtype=np.float32):
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, bias, dtype,
                    (int(in_channels), int(out_channels)))
        self.output_padding = _pair("output_padding", output_padding, 0)
        if self.output_padding[0] >= self.stride[0] or self.output_padding[1] >= self.stride[1]:
            raise ValueError(f"{self.describe()}: output_padding {self.output_padding} must be smaller "
                             f"than stride {self.stride}")

    def output_shape(self, x_shape):
        N, _, H, W = x_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oph, opw = self.output_padding
        return (N, self.out_channels, (H - 1) * sh - 2 * ph + kh + oph, (W - 1) * sw - 2 * pw + kw + opw)

    def forward(self, x):
        self._check(x)
        out_shape = self.output_shape(x.shape)
        if out_shape[2] <= 0 or out_shape[3] <= 0:
            raise ValueError(f"{self.describe()}: input {tuple(x.shape)} gives a non-positive output "
                             f"size {out_shape[2:]} (kernel {self.kernel_size}, stride {self.stride}, "
                             f"padding {self.padding}, output_padding {self.output_padding})")
        y = self._apply(x)
        self._cache = x
        return self._add_bias(y)

    # the adjoint of Conv2d: A = convᵀ, its input gradient is conv, its weight gradient swaps x, gy;
    # both of those convolve gy, so backward builds gy's patches once for the two
    def _apply(self, x, patches=None):
        return get_backend().conv2d_backward_input(x, self.weight.data, self.output_shape(x.shape),
                                                   self.stride, self.padding)

    def _adjoint(self, gy, x_shape, patches=None):
        return get_backend().conv2d_forward(gy, self.weight.data, self.stride, self.padding, patches)

    def _weight_grad(self, x, gy, patches=None):
        return get_backend().conv2d_backward_weight(gy, x, self.weight.shape, self.stride, self.padding,
                                                    patches)

    def backward(self, gy):
        x = self._checked_cache(gy)
        patches = self._im2col(gy)
        self.weight.grad += self._weight_grad(x, gy, patches)
        self._bias_grad(gy)
        return self._adjoint(gy, x.shape, patches)
