"""Reshaping layers: Flatten and Unflatten (PyTorch semantics).  docs/gradients.md#flatten-and-unflatten;
under a penalty (jvp, backward_jvp): docs/gradients.md#other-layers-under-a-penalty.

Both are views when the input is contiguous; backward reshapes gy back to the input's shape.
"""
from __future__ import annotations

import math

from ..backend import get_backend
from .module import Module


def _check_array(layer, x):
    xp = get_backend().xp
    if not isinstance(x, xp.ndarray):
        raise TypeError(f"{layer.describe()}: expected an array, got {type(x).__name__}")


def _norm_dim(layer, dim, ndim, what="dim"):
    """Wrap a negative dim like torch; rank-0 tensors accept dims -1 and 0."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{layer.describe()}: {what} {dim} is out of range for an input of rank {ndim} "
                         f"(expected in [{-n}, {n - 1}])")
    return dim % n


class Flatten(Module):
    """Flattens dims start_dim..end_dim into one (PyTorch's ``nn.Flatten``).

    (d0, …, d_s, …, d_e, …) → (d0, …, d_s·…·d_e, …). Backward: ∂L/∂x = gy reshaped to x's shape.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)
        self._shape = None

    def describe(self):
        return f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim})"

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, x):
        _check_array(self, x)
        s = _norm_dim(self, self.start_dim, x.ndim, "start_dim")
        e = _norm_dim(self, self.end_dim, x.ndim, "end_dim")
        if s > e:
            raise ValueError(f"{self.describe()}: start_dim cannot come after end_dim "
                             f"(input {tuple(x.shape)})")
        if x.ndim == 0:
            y = x.reshape(1)
        else:
            y = x.reshape(x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:])
        self._shape, self._out_shape = x.shape, y.shape
        return y

    def backward(self, gy):
        shape = self._need_cache(self._shape)
        if tuple(gy.shape) != tuple(self._out_shape):
            raise ValueError(f"{self.describe()}: backward got gy of shape {tuple(gy.shape)}, "
                             f"expected {tuple(self._out_shape)}")
        return gy.reshape(shape)

    # a reshape is linear: ẏ = reshape(ẋ), and the adjoint reshapes both gradients back
    def jvp(self, dx):
        return self.forward(dx)

    def backward_jvp(self, gy, gdy):
        return (None if gy is None else self.backward(gy)), self.backward(gdy)


class Unflatten(Module):
    """Expands dim ``dim`` into ``unflattened_size`` (PyTorch's ``nn.Unflatten``); one entry may be
    −1 (inferred). (…, d, …) → (…, *unflattened_size, …). Backward: gy reshaped to x's shape.
    """

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if isinstance(unflattened_size, int) or not all(
                isinstance(s, int) or hasattr(s, "__index__") for s in unflattened_size):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}")
        size = tuple(int(s) for s in unflattened_size)
        if not size or any(s < 1 and s != -1 for s in size) or size.count(-1) > 1:
            raise ValueError(f"Unflatten: unflattened_size must be positive sizes with at most one -1, "
                             f"got {size}")
        self.dim = int(dim)
        self.unflattened_size = size
        self._shape = None

    def describe(self):
        return f"Unflatten(dim={self.dim}, unflattened_size={self.unflattened_size})"

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"

    def forward(self, x):
        _check_array(self, x)
        if x.ndim == 0:
            raise ValueError(f"{self.describe()}: cannot unflatten a rank-0 input")
        d = _norm_dim(self, self.dim, x.ndim)
        size = self.unflattened_size
        known = math.prod(s for s in size if s != -1)
        n = x.shape[d]
        if (-1 in size and (known == 0 or n % known)) or (-1 not in size and known != n):
            raise ValueError(f"{self.describe()}: sizes {size} don't multiply up to the size of dim "
                             f"{self.dim} ({n}) of the input {tuple(x.shape)}")
        if -1 in size:
            size = tuple(n // known if s == -1 else s for s in size)
        y = x.reshape(x.shape[:d] + size + x.shape[d + 1:])
        self._shape, self._out_shape = x.shape, y.shape
        return y

    def backward(self, gy):
        shape = self._need_cache(self._shape)
        if tuple(gy.shape) != tuple(self._out_shape):
            raise ValueError(f"{self.describe()}: backward got gy of shape {tuple(gy.shape)}, "
                             f"expected {tuple(self._out_shape)}")
        return gy.reshape(shape)

    # a reshape is linear: ẏ = reshape(ẋ), and the adjoint reshapes both gradients back
    def jvp(self, dx):
        return self.forward(dx)

    def backward_jvp(self, gy, gdy):
        return (None if gy is None else self.backward(gy)), self.backward(gdy)
