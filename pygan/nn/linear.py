"""Linear layer: y = x Wᵀ + b.  Derivation: docs/gradients.md#linear."""
from __future__ import annotations

import numpy as np

from ..backend import get_backend
from . import init
from .module import Module, Parameter, check_input


class Linear(Module):
    """Affine map ``y = x Wᵀ + b`` (PyTorch's ``nn.Linear``).

    Shapes: x (*, in_features) → y (*, out_features); weight (out_features, in_features);
    bias (out_features,). Initialisation: PyTorch's U(−1/√in, 1/√in) for weight and bias.

    Backward (docs/gradients.md#linear), with gy = ∂L/∂y flattened to (M, out):
    ∂L/∂x = gy W,   ∂L/∂W += gyᵀ x,   ∂L/∂b += Σ_rows gy.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"Linear: {name} must be a positive integer, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        xp = get_backend().xp
        self.weight = Parameter(xp.empty((out_features, in_features), dtype=dtype))
        self.bias = Parameter(xp.empty((out_features,), dtype=dtype)) if bias else None
        init.default_uniform_(self.weight, self.bias)
        self._x = None
        self._dx = None

    def describe(self):
        return f"Linear({self.in_features}→{self.out_features})"

    def _shape_hint(self):
        return f"(*, {self.in_features})"

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def forward(self, x):
        be = get_backend()
        w = self.weight.data
        # the common case (2-D, right width and dtype) checked inline; anything else goes through
        # check_input, which accepts the other valid inputs and names the problem in the rest
        if not (type(x) is type(w) and x.ndim == 2 and x.shape[1] == self.in_features and x.dtype == w.dtype):
            check_input(self, x, ndim=range(1, 33), channels_axis=-1, channels=self.in_features)
        flat = x.ndim == 2                       # the common case: no reshapes
        y = be.matmul(x if flat else x.reshape(-1, self.in_features), w.T)
        if self.bias is not None:
            y += self.bias.data
        self._x = x
        return y if flat else y.reshape(*x.shape[:-1], self.out_features)

    def backward(self, gy):
        self._param_grads(gy)
        return Linear.backward_input(self, gy)

    def _check_gy(self, gy, x):
        if gy.shape[:-1] != x.shape[:-1] or gy.shape[-1:] != (self.out_features,):
            raise ValueError(f"{self.describe()}: backward got gy of shape {tuple(gy.shape)}, "
                             f"expected {tuple(x.shape[:-1]) + (self.out_features,)}")

    def backward_input(self, gy):
        x = self._need_cache(self._x)
        self._check_gy(gy, x)
        flat = gy.ndim == 2 and x.ndim == 2
        g2 = gy if flat else gy.reshape(-1, self.out_features)
        if self.out_features == 1:  # a K=1 product is an outer product: broadcast, not BLAS
            gx = g2 * self.weight.data
        else:
            gx = get_backend().matmul(g2, self.weight.data)
        return gx if flat else gx.reshape(x.shape)

    def backward_params(self, gy):
        self._param_grads(gy)

    def _param_grads(self, gy):
        """∂L/∂W += gyᵀx, ∂L/∂b += Σ gy; returns gy as (M, out) for the input gradient."""
        x = self._need_cache(self._x)
        self._check_gy(gy, x)
        g2 = gy if gy.ndim == 2 else gy.reshape(-1, self.out_features)
        self.weight.grad += get_backend().matmul(g2.T, x if x.ndim == 2 else x.reshape(-1, self.in_features))
        if self.bias is not None:
            self.bias.grad += g2.sum(axis=0)
        return g2

    # ẏ = ẋ Wᵀ;  adjoint: ∂/∂W = gyᵀx + gdyᵀẋ, ∂/∂b = Σ gy, gx = gy W, gẋ = gdy W.
    # docs/gradients.md#second-order
    def jvp(self, dx):
        self._need_cache(self._x)
        self._dx = dx
        dy = get_backend().matmul(dx.reshape(-1, self.in_features), self.weight.data.T)
        return dy.reshape(*dx.shape[:-1], self.out_features)

    def backward_jvp(self, gy, gdy):
        self._need_cache(self._x)
        dx = self._need_cache(self._dx)
        be = get_backend()
        gd2 = gdy.reshape(-1, self.out_features)
        self.weight.grad += be.matmul(gd2.T, dx.reshape(-1, self.in_features))
        gdx = be.matmul(gd2, self.weight.data).reshape(dx.shape)
        if gy is None:
            return None, gdx
        return self.backward(gy), gdx

    def backward_jvp_params(self, gy, gdy):
        dx = self._need_cache(self._dx)
        gd2 = gdy.reshape(-1, self.out_features)
        self.weight.grad += get_backend().matmul(gd2.T, dx.reshape(-1, self.in_features))
        return None if gy is None else self.backward(gy)
