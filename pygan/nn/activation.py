"""Elementwise activations.  Derivations: docs/gradients.md#activations; their tangent and
its adjoint (jvp, backward_jvp, with φ″): docs/gradients.md#second-order.

Each keeps only what its backward needs: ReLU/LeakyReLU the sign mask of x, Tanh and Sigmoid
their output y (their derivatives are functions of y).
"""
from __future__ import annotations

from ..backend import by_rows as _by_rows, get_backend
from .module import Module


class _Parameterless(Module):
    """An elementwise map without parameters: its backward touches no grads."""

    def backward_input(self, gy):
        return self.backward(gy)


def _check_float(layer, x):
    xp = get_backend().xp
    if not isinstance(x, xp.ndarray):
        raise TypeError(f"{layer.describe()}: expected an array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{layer.describe()}: expected a floating input, got dtype {x.dtype}")


def _check_gy(layer, gy, cached):
    if gy.shape != cached.shape:
        raise ValueError(f"{layer.describe()}: backward got gy of shape {tuple(gy.shape)}, "
                         f"expected {tuple(cached.shape)}")


class ReLU(_Parameterless):
    """y = max(x, 0).  ∂L/∂x = gy · [x > 0].

    ``inplace`` (torch's argument, also positional: ``ReLU(True)``) is accepted so that PyTorch
    code ports line by line; the result is always a new array (x is left unchanged), since
    the backward needs x's sign mask."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)
        self._mask = None

    def forward(self, x):
        _check_float(self, x)
        xp = get_backend().xp
        mask = self._mask = xp.empty(x.shape, dtype=bool)
        y = xp.empty_like(x)
        zero = x.dtype.type(0)

        def body(s):
            xp.greater(x[s], zero, out=mask[s])
            xp.maximum(x[s], zero, out=y[s])
        _by_rows(body, x)
        return y

    def backward(self, gy):
        mask = self._need_cache(self._mask)
        _check_gy(self, gy, mask)
        xp = get_backend().xp
        gx = xp.empty(gy.shape, dtype=gy.dtype)

        def body(s):
            xp.multiply(gy[s], mask[s], out=gx[s])
        _by_rows(body, gy)
        return gx

    # ẏ = [x > 0] ẋ; φ'' = 0, so gx = gy·[x > 0] and gẋ = gdy·[x > 0].
    def jvp(self, dx):
        return dx * self._need_cache(self._mask)

    def backward_jvp(self, gy, gdy):
        return (None if gy is None else self.backward(gy)), self.backward(gdy)

    def backward_jvp_params(self, gy, gdy):
        return None if gy is None else self.backward(gy)


class LeakyReLU(_Parameterless):
    """y = x if x > 0 else a·x (a = negative_slope).  ∂L/∂x = gy · (1 if x > 0 else a).

    ``inplace`` (torch's argument, also positional: ``LeakyReLU(0.2, True)``) is accepted so that
    PyTorch code ports line by line; the result is always a new array (x is left unchanged),
    since the backward needs x's sign mask."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = float(negative_slope)
        self.inplace = bool(inplace)
        self._mask = None

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"

    def describe(self):
        return f"LeakyReLU({self.negative_slope})"

    def forward(self, x):
        _check_float(self, x)
        xp = get_backend().xp
        a = x.dtype.type(self.negative_slope)
        slope = self.negative_slope
        mask = self._mask = xp.empty(x.shape, dtype=bool)
        y = xp.empty_like(x)

        # branch-free (np.where on random signs is ~7× slower): for 0 ≤ a ≤ 1,
        # max(x, a·x) is x where x > 0 and a·x elsewhere; for a > 1 it is the min
        def body(s):
            xs, ys = x[s], y[s]
            xp.greater(xs, 0, out=mask[s])
            xp.multiply(xs, a, out=ys)
            if 0 <= slope <= 1:
                xp.maximum(ys, xs, out=ys)
            elif slope > 1:
                xp.minimum(ys, xs, out=ys)
            else:
                xp.copyto(ys, xs, where=mask[s])
        _by_rows(body, x)
        return y

    def backward(self, gy):
        # φ'(x) = a + (1 − a)·[x > 0], built from the mask without branches
        mask = self._need_cache(self._mask)
        _check_gy(self, gy, mask)
        xp = get_backend().xp
        a = gy.dtype.type(self.negative_slope)
        g = xp.empty(gy.shape, dtype=gy.dtype)

        def body(s):
            gs = g[s]
            xp.multiply(mask[s], 1 - a, out=gs)
            gs += a
            gs *= gy[s]
        _by_rows(body, gy)
        return g

    # Linear in x on each side of 0, so φ'' = 0: ẏ = φ'(x) ẋ, gx = gy φ'(x), gẋ = gdy φ'(x).
    def jvp(self, dx):
        return self.backward(dx)

    def backward_jvp(self, gy, gdy):
        return (None if gy is None else self.backward(gy)), self.backward(gdy)

    def backward_jvp_params(self, gy, gdy):
        return None if gy is None else self.backward(gy)


class Tanh(_Parameterless):
    """y = tanh x.  ∂L/∂x = gy · (1 − y²)."""

    def __init__(self):
        super().__init__()
        self._y = None
        self._dx = None

    def forward(self, x):
        _check_float(self, x)
        self._y = y = get_backend().xp.tanh(x)
        return y

    def backward(self, gy):
        y = self._need_cache(self._y)
        _check_gy(self, gy, y)
        return gy * (1 - y * y)

    # φ' = 1 − y², φ'' = −2y(1 − y²):  gx = gy φ' + gdy φ'' ẋ,  gẋ = gdy φ'.
    def jvp(self, dx):
        self._dx = dx
        return self.backward(dx)

    def backward_jvp(self, gy, gdy):
        y, dx = self._need_cache(self._y), self._need_cache(self._dx)
        d1 = 1 - y * y
        gx = -2 * y * d1 * dx * gdy
        if gy is not None:
            gx += gy * d1
        return gx, gdy * d1


def sigmoid(x):
    """σ(x) = 1/(1 + e^(−x)), computed without overflow for any x (e^(−|x|) ≤ 1)."""
    xp = get_backend().xp
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(_Parameterless):
    """y = σ(x).  ∂L/∂x = gy · y (1 − y)."""

    def __init__(self):
        super().__init__()
        self._y = None
        self._dx = None

    def forward(self, x):
        _check_float(self, x)
        self._y = y = sigmoid(x)
        return y

    def backward(self, gy):
        y = self._need_cache(self._y)
        _check_gy(self, gy, y)
        return gy * y * (1 - y)

    # φ' = y(1 − y), φ'' = y(1 − y)(1 − 2y):  gx = gy φ' + gdy φ'' ẋ,  gẋ = gdy φ'.
    def jvp(self, dx):
        self._dx = dx
        return self.backward(dx)

    def backward_jvp(self, gy, gdy):
        y, dx = self._need_cache(self._y), self._need_cache(self._dx)
        d1 = y * (1 - y)
        gx = d1 * (1 - 2 * y) * dx * gdy
        if gy is not None:
            gx += gy * d1
        return gx, gdy * d1
