"""Class-conditional BatchNorm (BigGAN's ``ccbn``).  Derivation:
docs/gradients.md#conditionalbatchnorm2d.

BatchNorm without affine parameters whose per-sample, per-channel gain and bias are linear
functions of a conditioning vector c (in BigGAN: the shared class embedding concatenated with
this block's chunk of z):

    y[n, k] = x̂[n, k] · (1 + γ[n, k]) + β[n, k],   γ = c W_γᵀ,  β = c W_βᵀ,

with x̂ = BatchNorm2d(affine=False)(x) (batch statistics in train mode, running statistics in
eval mode) and W_γ, W_β (C, cond_dim) the weights of two bias-free Linear layers.

The conditioning vector is a second input. It is passed as ``forward(x, c)``, or bound
beforehand with :meth:`ConditionalBatchNorm2d.set_condition` so that the layer can sit inside
one-input compositions (``Sequential``, ``Residual``): ``forward(x)`` then reads the bound c.
``backward`` returns ∂L/∂x and leaves ∂L/∂c in ``grad_condition`` (set, not accumulated:
like ∂L/∂x it belongs to the latest backward).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_backend
from .linear import Linear
from .module import Module, check_input
from .normalization import BatchNorm2d


class ConditionalBatchNorm2d(Module):
    """y = x̂ ⊙ (1 + c W_γᵀ) + c W_βᵀ per sample and channel, x̂ = BatchNorm2d(affine=False)(x).

    Shapes: x (N, C, H, W), c (N, cond_dim) → y (N, C, H, W). Parameters ``gain.weight`` W_γ and
    ``bias.weight`` W_β, both (C, cond_dim) (bias-free Linear layers, as BigGAN's with a shared
    embedding); buffers ``bn.running_mean``, ``bn.running_var``, ``bn.num_batches_tracked``
    (BatchNorm2d's, momentum and eps as there). The weights start at zero unless ``init_std`` is
    given, so a new layer is the plain normalisation (gain 1, bias 0).

    Backward (docs/gradients.md#conditionalbatchnorm2d), g = ∂L/∂y, sums over (H, W):
    ∂L/∂γ[n,k] = Σ g·x̂,  ∂L/∂β[n,k] = Σ g;  ∂L/∂W_γ += (∂L/∂γ)ᵀ c,  ∂L/∂W_β += (∂L/∂β)ᵀ c;
    ∂L/∂c = (∂L/∂γ) W_γ + (∂L/∂β) W_β (in ``grad_condition``);
    ∂L/∂x = BatchNorm2d's backward of h = g ⊙ (1 + γ) (train: (h − mean(h) − x̂·mean(h·x̂))/σ).

    A generator layer: it has no tangent pass (``jvp``), so it cannot sit in a critic under a
    gradient penalty — and a critic with it would couple the samples of a batch anyway.
    """

    def __init__(self, num_features: int, cond_dim: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 init_std: float = 0.0, dtype=np.float32):
        super().__init__()
        if isinstance(cond_dim, bool) or int(cond_dim) != cond_dim or cond_dim <= 0:
            raise ValueError(f"ConditionalBatchNorm2d: cond_dim must be a positive integer, got {cond_dim!r}")
        self.bn = BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False, dtype=dtype)
        self.num_features = self.bn.num_features
        self.cond_dim = int(cond_dim)
        self.gain = Linear(self.cond_dim, self.num_features, bias=False, dtype=dtype)
        self.bias = Linear(self.cond_dim, self.num_features, bias=False, dtype=dtype)
        self.init_std = float(init_std)
        self.reset_parameters()
        self.condition = None
        self.grad_condition = None
        self._cache = None

    def describe(self):
        return f"ConditionalBatchNorm2d({self.num_features}, cond {self.cond_dim})"

    def _shape_hint(self):
        return f"(N, {self.num_features}, H, W)"

    def extra_repr(self):
        return f"{self.num_features}, cond_dim={self.cond_dim}, eps={self.bn.eps}, momentum={self.bn.momentum}"

    @property
    def dtype(self):
        return self.bn.dtype

    def reset_parameters(self):
        """W_γ, W_β ← N(0, init_std²) (zero by default), running statistics reset."""
        from . import init
        self.bn.reset_running_stats()
        for lin in (self.gain, self.bias):
            if self.init_std > 0:
                init.normal_(lin.weight, 0.0, self.init_std)
            else:
                init.zeros_(lin.weight)

    def set_condition(self, c):
        """Bind the conditioning vector (N, cond_dim) that ``forward(x)`` without c will use."""
        self.condition = c
        return self

    def forward(self, x, c=None):
        check_input(self, x, ndim=4, channels_axis=1, channels=self.num_features)
        if c is None:
            c = self.condition
            if c is None:
                raise ValueError(f"{self.describe()}: no conditioning vector; call forward(x, c) with c of "
                                 f"shape ({x.shape[0]}, {self.cond_dim}) or bind one with set_condition(c)")
        check_input(self, c, ndim=2, channels_axis=1, channels=self.cond_dim, what="conditioning vector")
        if c.shape[0] != x.shape[0]:
            raise ValueError(f"{self.describe()}: conditioning vector has {c.shape[0]} rows for a batch of "
                             f"{x.shape[0]}; give one row per sample")
        xhat = self.bn(x)
        scale = self.gain(c)
        scale += scale.dtype.type(1)                                      # 1 + γ
        shift = self.bias(c)
        y = xhat * scale[:, :, None, None]
        y += shift[:, :, None, None]
        self._cache = (xhat, scale)
        return y

    def _grads(self, gy):
        xhat, scale = self._need_cache(self._cache)
        if tuple(gy.shape) != tuple(xhat.shape):
            raise ValueError(f"{self.describe()}: backward got gy of shape {tuple(gy.shape)}, "
                             f"expected {tuple(xhat.shape)}")
        xp = get_backend().xp
        g_gamma = xp.einsum("nchw,nchw->nc", gy, xhat)
        g_beta = xp.einsum("nchw->nc", gy)
        return xhat, scale, g_gamma, g_beta

    def backward(self, gy):
        _, scale, g_gamma, g_beta = self._grads(gy)
        gc = self.gain.backward(g_gamma)
        gc += self.bias.backward(g_beta)
        self.grad_condition = gc
        return self.bn.backward(gy * scale[:, :, None, None])

    def backward_input(self, gy):
        """∂L/∂x (and ∂L/∂c in ``grad_condition``) without touching W_γ's and W_β's grads."""
        _, scale, g_gamma, g_beta = self._grads(gy)
        gc = self.gain.backward_input(g_gamma)
        gc += self.bias.backward_input(g_beta)
        self.grad_condition = gc
        return self.bn.backward(gy * scale[:, :, None, None])

    def backward_params(self, gy):
        """W_γ's and W_β's grads and ∂L/∂c (the class embedding and z are trained through it);
        the product for ∂L/∂x is skipped."""
        _, _, g_gamma, g_beta = self._grads(gy)
        gc = self.gain.backward(g_gamma)
        gc += self.bias.backward(g_beta)
        self.grad_condition = gc


class Conditioned(Module):
    """Gives a one-input module whose layers read a bound conditioning vector (every
    :class:`ConditionalBatchNorm2d` inside it) the two-input interface of one such layer:
    ``forward(x, c)`` binds c to each of them and runs ``module(x)``; ``backward(gy)`` returns
    ∂L/∂x and leaves ∂L/∂c — the sum of the layers' contributions, since c feeds each of them —
    in ``grad_condition``. BigGAN's generator block is ``Conditioned(Residual(…))`` with two
    conditional BatchNorms reading one c. A module without conditional layers takes c = None
    (``grad_condition`` None) or a c it leaves unused (``grad_condition`` zero). State-dict keys: ``module.*``.
    """

    def __init__(self, module: Module):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"Conditioned: module must be a Module, got {type(module).__name__}")
        self.module = module
        self._readers = [m for m in module.modules() if isinstance(m, ConditionalBatchNorm2d)]
        self.grad_condition = None
        self._c = None

    def describe(self):
        return f"Conditioned({self.module.describe()})"

    def forward(self, x, c=None):
        if c is None and self._readers:
            raise ValueError(f"{self.describe()}: pass the conditioning vector as forward(x, c)")
        for m in self._readers:
            m.set_condition(c)
        self._c = c
        return self.module(x)

    def _collect(self):
        c = self._c
        if c is None:                      # no conditional layers, no c: nothing to return
            self.grad_condition = None
            return
        gc = get_backend().xp.zeros_like(c)
        for m in self._readers:
            if m.grad_condition is not None:
                gc += m.grad_condition
                m.grad_condition = None
        self.grad_condition = gc

    def backward(self, gy):
        gx = self.module.backward(gy)
        self._collect()
        return gx

    def backward_input(self, gy):
        gx = self.module.backward_input(gy)
        self._collect()
        return gx

    def backward_params(self, gy):
        self.module.backward_params(gy)
        self._collect()
