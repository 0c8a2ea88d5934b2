"""Inverted dropout.  Derivation: docs/gradients.md#dropout; under a penalty (jvp,
backward_jvp): docs/gradients.md#other-layers-under-a-penalty."""
from __future__ import annotations

import numpy as np

from ..backend import get_backend
from ..random import get_rng
from .module import Module


class Dropout(Module):
    """Inverted dropout (PyTorch's ``nn.Dropout``).

    Train mode: y = x ⊙ m / (1 − p) with m_k ~ Bernoulli(1 − p) drawn afresh at every forward,
    so E[y] = x; p = 1 gives zeros. Eval mode: y = x (the input itself, no copy).
    Shapes: any; y has the shape of x.

    Backward (docs/gradients.md#dropout): ∂L/∂x = gy ⊙ m / (1 − p) with the mask of the most
    recent forward (eval: ∂L/∂x = gy).

    The masks come from ``self.rng`` (a ``numpy.random.Generator``; default: one seeded from
    ``pygan.random.get_rng()``), so restoring its state replays the mask — which is what
    ``gradcheck.check_module`` does before every forward. The mask does not depend on the
    input dtype: float32 and float64 runs from the same generator state see the same mask.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: dropout probability has to be between 0 and 1, but got {p!r}")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise TypeError(f"{type(self).__name__}: rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.p = float(p)
        self.rng = rng if rng is not None else np.random.default_rng(int(get_rng().integers(2**63)))
        self._mask = None
        self._shape = None

    def describe(self):
        return f"Dropout(p={self.p})"

    def extra_repr(self):
        return f"p={self.p}"

    def _mask_shape(self, x):
        """The shape of the mask (one keep/drop draw per element); it broadcasts against x."""
        return x.shape

    def forward(self, x):
        xp = get_backend().xp
        if not isinstance(x, xp.ndarray):
            raise TypeError(f"{self.describe()}: expected an array, got {type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"{self.describe()}: expected a floating input, got dtype {x.dtype}")
        shape = self._mask_shape(x)
        self._shape = x.shape
        if not self.training or self.p == 0.0:
            self._mask = "identity"
            return x
        if self.p == 1.0:
            self._mask = "zero"
            return xp.zeros_like(x)
        # 32-bit uniform integers straight from the bit generator (two per 64-bit draw: twice as
        # fast as Generator.random); keep where u ≥ round(p·2³²), i.e. with probability 1 − p
        size = int(np.prod(shape))
        u = self.rng.bit_generator.random_raw((size + 1) // 2).view(np.uint32)[:size].reshape(shape)
        if xp is not np:
            u = xp.asarray(u)
        threshold = np.uint32(min(round(self.p * 2.0**32), 2**32 - 1))
        # scaled mask m/(1 − p) in x's dtype: one array, used by forward and backward
        mask = xp.multiply(u >= threshold, x.dtype.type(1.0 / (1.0 - self.p)), dtype=x.dtype)
        self._mask = mask
        return x * mask

    def backward(self, gy):
        mask = self._need_cache(self._mask)
        if tuple(gy.shape) != tuple(self._shape):
            raise ValueError(f"{self.describe()}: backward got gy of shape {tuple(gy.shape)}, "
                             f"expected {tuple(self._shape)}")
        if isinstance(mask, str):
            return gy if mask == "identity" else get_backend().xp.zeros_like(gy)
        return gy * mask

    # diagonal and linear (the mask is fixed within a step): ẏ = m ⊙ ẋ, adjoint multiplies by m
    def jvp(self, dx):
        return self.backward(dx)

    def backward_jvp(self, gy, gdy):
        return (None if gy is None else self.backward(gy)), self.backward(gdy)


class Dropout2d(Dropout):
    """Channel dropout (PyTorch's ``nn.Dropout2d``): whole feature maps are zeroed.

    Train mode: y[n, c] = x[n, c]·m[n, c]/(1 − p) with one m[n, c] ~ Bernoulli(1 − p) per sample and
    channel, drawn afresh at every forward from ``self.rng`` (as :class:`Dropout`; checkpointed and
    replayed by ``gradcheck`` the same way). Eval mode: y = x. Shapes: (N, C, H, W), or (N, C, L)
    (torch's channel-wise reading of 3-D input); y has x's shape.

    Backward (docs/gradients.md#dropout2d): ∂L/∂x = gy·m/(1 − p) with the forward's mask,
    broadcast over the spatial dims (eval: gy). Tangent and adjoint: the same diagonal map.
    """

    def describe(self):
        return f"Dropout2d(p={self.p})"

    def _mask_shape(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"{self.describe()}: expected input (N, C, H, W) or (N, C, L), got {tuple(x.shape)}")
        return x.shape[:2] + (1,) * (x.ndim - 2)

