"""Spectral normalisation (Miyato et al. 2018): W_sn = W / σ(W), σ from power iteration.

``spectral_norm(layer)`` changes a Linear, Conv2d or ConvTranspose2d in place exactly as
``torch.nn.utils.spectral_norm`` does: the trainable array becomes ``weight_orig``, the power
iteration's vectors are the buffers ``weight_u``, ``weight_v`` (so the state dict keys are
torch's), and ``layer.weight`` holds W_sn for the layer's own forward/backward.

Each training forward runs ``n_power_iterations`` steps (v ← Wᵀu/‖Wᵀu‖, u ← Wv/‖Wv‖) on the
weight viewed as a matrix (dim 0 first; dim 1 first for ConvTranspose2d) and σ = uᵀWv. u and v
are held constant within the step, so with G = ∂L/∂W_sn (as a matrix),

    ∂L/∂W = (G − ⟨G, W_sn⟩ u vᵀ) / σ.            docs/gradients.md#spectral-norm
"""
from __future__ import annotations

from ..backend import get_backend
from ..random import get_rng
from .module import Module, Parameter


class _SpectralNormMixin:
    """Methods spliced into the normalised layer's class (see :func:`spectral_norm`)."""

    def _matrix(self, w):
        d = self._sn_dim
        if d != 0:
            w = w.swapaxes(0, d)
        return w.reshape(w.shape[0], -1)

    def _from_matrix(self, m, shape):
        d = self._sn_dim
        if d == 0:
            return m.reshape(shape)
        swapped = list(shape)
        swapped[0], swapped[d] = swapped[d], swapped[0]
        return m.reshape(swapped).swapaxes(0, d)

    def _normalise(self, power_iteration: bool):
        xp = get_backend().xp
        W = self._matrix(self.weight_orig.data)
        u, v = self.weight_u, self.weight_v
        if power_iteration:
            for _ in range(self._sn_iterations):
                v = W.T @ u
                v = v / max(float(xp.linalg.norm(v)), self._sn_eps)
                u = W @ v
                u = u / max(float(xp.linalg.norm(u)), self._sn_eps)
            self._set_buffer("weight_u", u)
            self._set_buffer("weight_v", v)
        sigma = float(u @ (W @ v))
        self._sn_sigma = sigma
        w = self.weight_orig.data / self.weight_orig.data.dtype.type(sigma)
        object.__setattr__(self, "weight", Parameter(w))

    def _pull_weight_grad(self):
        """∂L/∂W_orig += (G − ⟨G, W_sn⟩ u vᵀ)/σ, with G the grad the layer left in ``weight``."""
        xp = get_backend().xp
        G = self._matrix(self.weight.grad)
        Wsn = self._matrix(self.weight.data)
        u, v = self.weight_u, self.weight_v
        inner = xp.sum(G * Wsn)
        gW = (G - inner * xp.outer(u, v)) / self._sn_sigma
        self.weight_orig.grad += self._from_matrix(gW, self.weight_orig.shape)
        self.weight.grad[...] = 0

    def forward(self, x):
        self._normalise(power_iteration=self.training)
        return self._sn_base.forward(self, x)

    def backward(self, gy):
        gx = self._sn_base.backward(self, gy)
        self._pull_weight_grad()
        return gx

    def backward_input(self, gy):
        return self._sn_base.backward_input(self, gy)  # uses W_sn = weight.data; no grads

    def backward_params(self, gy):
        self._sn_base.backward_params(self, gy)
        self._pull_weight_grad()

    def backward_jvp(self, gy, gdy):
        out = self._sn_base.backward_jvp(self, gy, gdy)
        self._pull_weight_grad()
        return out

    def backward_jvp_params(self, gy, gdy):
        out = self._sn_base.backward_jvp_params(self, gy, gdy)
        self._pull_weight_grad()
        return out

    def describe(self):
        return f"SpectralNorm({self._sn_base.describe(self)})"

    def _on_dtype_change(self, dtype):
        self._sn_base._on_dtype_change(self, dtype)
        w = self.__dict__.get("weight")
        if w is not None:
            object.__setattr__(self, "weight", Parameter(w.data.astype(dtype)))


_CLASSES = {}


def spectral_norm(module: Module, n_power_iterations: int = 1, eps: float = 1e-12, dim: int | None = None,
                  rng=None) -> Module:
    """Apply spectral normalisation to ``module``'s ``weight`` in place; returns the module.

    ``dim`` defaults to 1 for ConvTranspose2d and 0 otherwise (as in PyTorch). u and v start as
    normalised N(0, 1) draws from ``rng`` (default: pygan's global generator).
    """
    if "weight" not in module._parameters:
        raise TypeError(f"spectral_norm: {module.describe()} has no parameter 'weight'")
    if n_power_iterations < 0:
        raise ValueError(f"spectral_norm: n_power_iterations must be ≥ 0, got {n_power_iterations}")
    base = type(module)
    if dim is None:
        dim = 1 if base.__name__ == "ConvTranspose2d" else 0
    cls = _CLASSES.get(base)
    if cls is None:
        cls = type(f"SpectralNorm{base.__name__}", (_SpectralNormMixin, base), {"_sn_base": base})
        _CLASSES[base] = cls
    xp = get_backend().xp
    weight = module._parameters.pop("weight")
    module.__class__ = cls
    object.__setattr__(module, "_sn_dim", dim)
    object.__setattr__(module, "_sn_iterations", int(n_power_iterations))
    object.__setattr__(module, "_sn_eps", float(eps))
    module.weight_orig = weight
    W = module._matrix(weight.data)
    rng = rng or get_rng()
    u = xp.asarray(rng.standard_normal(W.shape[0]), dtype=W.dtype)
    v = xp.asarray(rng.standard_normal(W.shape[1]), dtype=W.dtype)
    module.register_buffer("weight_u", u / max(float(xp.linalg.norm(u)), eps))
    module.register_buffer("weight_v", v / max(float(xp.linalg.norm(v)), eps))
    object.__setattr__(module, "weight", Parameter(weight.data.copy()))
    return module
