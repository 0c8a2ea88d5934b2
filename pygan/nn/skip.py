"""Identity and the two skip connections: the residual sum and the U-Net concatenation.
Derivations: docs/gradients.md#identity-residual-and-concatskip.

Both compositions run their children on the same input x and combine the outputs; every
backward sends gy (or its slices) through the children and adds the input gradients, and the
tangent pass (penalties on ∇ₓD) does the same with ẋ, so both work inside a penalised critic
whenever their children do.
"""
from __future__ import annotations

from ..backend import get_backend
from .module import Module


def _check_gy(layer, gy, shape, what="gy"):
    if tuple(gy.shape) != tuple(shape):
        raise ValueError(f"{layer.describe()}: backward got {what} of shape {tuple(gy.shape)}, "
                         f"expected {tuple(shape)}")


class Identity(Module):
    """y = x (PyTorch's ``nn.Identity``; accepts and ignores any arguments, as torch's does).
    Backward: ∂L/∂x = gy; tangent ẏ = ẋ."""

    def __init__(self, *args, **kwargs):
        super().__init__()
        self._shape = None

    def forward(self, x):
        self._shape = x.shape
        return x

    def backward(self, gy):
        _check_gy(self, gy, self._need_cache(self._shape))
        return gy

    def backward_input(self, gy):
        return self.backward(gy)

    def backward_params(self, gy):
        self.backward(gy)

    def jvp(self, dx):
        return dx

    def backward_jvp(self, gy, gdy):
        return (None if gy is None else self.backward(gy)), gdy

    def backward_jvp_params(self, gy, gdy):
        return None if gy is None else self.backward(gy)


class Residual(Module):
    """y = main(x) + shortcut(x), shortcut = Identity when None (the residual block of
    BigGAN/StyleGAN-style networks).

    Shapes: main(x) and shortcut(x) must have the same shape. State-dict keys: ``main.*`` then
    ``shortcut.*`` (an Identity shortcut has none).

    Backward (docs/gradients.md#identity-residual-and-concatskip): both branches receive gy,
    ∂L/∂x = main.backward(gy) + shortcut.backward(gy). Tangent: ẏ = main.jvp(ẋ) + shortcut.jvp(ẋ);
    the adjoint sends (gy, gẏ) into both branches and adds their (∂L/∂x, ∂L/∂ẋ).
    """

    def __init__(self, main: Module, shortcut: Module | None = None):
        super().__init__()
        if not isinstance(main, Module):
            raise TypeError(f"Residual: main must be a Module, got {type(main).__name__}")
        if shortcut is not None and not isinstance(shortcut, Module):
            raise TypeError(f"Residual: shortcut must be a Module or None, got {type(shortcut).__name__}")
        self.main = main
        self.shortcut = shortcut if shortcut is not None else Identity()
        self._shape = None

    def describe(self):
        return f"Residual({self.main.describe()} + {self.shortcut.describe()})"

    def forward(self, x):
        a = self.main(x)
        b = self.shortcut(x)
        if a.shape != b.shape:
            raise ValueError(f"{self.describe()}: main gives {tuple(a.shape)} but shortcut gives "
                             f"{tuple(b.shape)} for input {tuple(x.shape)}; they must agree to be added")
        self._shape = a.shape
        return a + b

    def _gy(self, gy):
        _check_gy(self, gy, self._need_cache(self._shape))
        return gy

    def backward(self, gy):
        gy = self._gy(gy)
        return self.main.backward(gy) + self.shortcut.backward(gy)

    def backward_input(self, gy):
        gy = self._gy(gy)
        return self.main.backward_input(gy) + self.shortcut.backward_input(gy)

    def backward_params(self, gy):
        gy = self._gy(gy)
        self.main.backward_params(gy)
        self.shortcut.backward_params(gy)

    def jvp(self, dx):
        self._need_cache(self._shape)
        return self.main.jvp(dx) + self.shortcut.jvp(dx)

    def backward_jvp(self, gy, gdy):
        if gy is not None:
            gy = self._gy(gy)
        _check_gy(self, gdy, self._need_cache(self._shape), "gẏ")
        gx1, gdx1 = self.main.backward_jvp(gy, gdy)
        gx2, gdx2 = self.shortcut.backward_jvp(gy, gdy)
        gx = None if gx1 is None and gx2 is None else (gx2 if gx1 is None else gx1 if gx2 is None else gx1 + gx2)
        return gx, gdx1 + gdx2


class ConcatSkip(Module):
    """y = cat([x, submodule(x)], dim) — the skip of pix2pix's ``UnetSkipConnectionBlock``.

    Shapes: x (N, C, …) → y (N, C + C', …) for submodule(x) of shape (N, C', …) (dim = 1; any dim
    whose other sizes agree). State-dict keys: ``submodule.*``.

    Backward (docs/gradients.md#identity-residual-and-concatskip): gy splits along dim into
    (g₁, g₂) of x's and submodule(x)'s sizes; ∂L/∂x = g₁ + submodule.backward(g₂). Tangent:
    ẏ = cat([ẋ, submodule.jvp(ẋ)]); the adjoint splits (gy, gẏ) alike.
    """

    def __init__(self, submodule: Module, dim: int = 1):
        super().__init__()
        if not isinstance(submodule, Module):
            raise TypeError(f"ConcatSkip: submodule must be a Module, got {type(submodule).__name__}")
        self.submodule = submodule
        self.dim = int(dim)
        self._cache = None

    def describe(self):
        return f"ConcatSkip({self.submodule.describe()}, dim={self.dim})"

    def forward(self, x):
        xp = get_backend().xp
        if not isinstance(x, xp.ndarray):
            raise TypeError(f"{self.describe()}: expected an array, got {type(x).__name__}")
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"{self.describe()}: dim {self.dim} is out of range for input {tuple(x.shape)}")
        d = self.dim % x.ndim
        s = self.submodule(x)
        if s.ndim != x.ndim or s.shape[:d] + s.shape[d + 1:] != x.shape[:d] + x.shape[d + 1:]:
            raise ValueError(f"{self.describe()}: submodule maps {tuple(x.shape)} to {tuple(s.shape)}, "
                             f"which cannot be concatenated with the input along dim {self.dim}")
        y = xp.concatenate([x, s], axis=d)
        self._cache = (d, x.shape[d], y.shape)
        return y

    def _split(self, g, what="gy"):
        d, c, shape = self._need_cache(self._cache)
        _check_gy(self, g, shape, what)
        idx1 = (slice(None),) * d + (slice(0, c),)
        idx2 = (slice(None),) * d + (slice(c, None),)
        xp = get_backend().xp
        return g[idx1], xp.ascontiguousarray(g[idx2])

    def backward(self, gy):
        g1, g2 = self._split(gy)
        return g1 + self.submodule.backward(g2)

    def backward_input(self, gy):
        g1, g2 = self._split(gy)
        return g1 + self.submodule.backward_input(g2)

    def backward_params(self, gy):
        self.submodule.backward_params(self._split(gy)[1])

    def jvp(self, dx):
        d = self._need_cache(self._cache)[0]
        return get_backend().xp.concatenate([dx, self.submodule.jvp(dx)], axis=d)

    def backward_jvp(self, gy, gdy):
        gd1, gd2 = self._split(gdy, "gẏ")
        if gy is None:
            gx, gdx = self.submodule.backward_jvp(None, gd2)
            return gx, gd1 + gdx
        g1, g2 = self._split(gy)
        gx, gdx = self.submodule.backward_jvp(g2, gd2)
        return g1 + gx, gd1 + gdx
