"""Weight initialisation, with PyTorch's default rules and the DCGAN rule.

Draws come from ``pygan.random.get_rng()`` unless a generator is given. The arrays are created
on the host in float64 and cast to the parameter's dtype, then moved to the backend's memory.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import get_backend
from ..random import get_rng


def _fill(p, values):
    xp = get_backend().xp
    p.data = xp.ascontiguousarray(xp.asarray(values, dtype=p.data.dtype))


def calculate_fan_in(shape) -> int:
    """PyTorch's fan-in: size(1) × receptive field (for ConvTranspose2d, size(1) is C_out)."""
    if len(shape) < 2:
        raise ValueError(f"fan-in needs a weight of rank ≥ 2, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[1]) * receptive


def uniform_(p, low: float, high: float, rng=None):
    _fill(p, (rng or get_rng()).uniform(low, high, size=p.shape))
    return p


def normal_(p, mean: float = 0.0, std: float = 1.0, rng=None):
    _fill(p, (rng or get_rng()).normal(mean, std, size=p.shape))
    return p


def zeros_(p):
    _fill(p, np.zeros(p.shape))
    return p


def ones_(p):
    _fill(p, np.ones(p.shape))
    return p


def default_uniform_(weight, bias=None, rng=None):
    """PyTorch's default for Linear and convolutions: kaiming_uniform(a=√5) on the weight,
    i.e. U(−1/√fan_in, 1/√fan_in), and the same bound for the bias."""
    bound = 1.0 / math.sqrt(calculate_fan_in(weight.shape)) if calculate_fan_in(weight.shape) > 0 else 0.0
    uniform_(weight, -bound, bound, rng)
    if bias is not None:
        uniform_(bias, -bound, bound, rng)


def dcgan_init(module, rng=None):
    """The DCGAN rule (Radford et al. 2016): conv/linear weights ~ N(0, 0.02), biases 0;
    BatchNorm weight ~ N(1, 0.02), bias 0. Applied to every submodule; returns ``module``."""
    for m in module.modules():
        kind = type(m).__name__
        if kind.startswith("BatchNorm"):
            if getattr(m, "weight", None) is not None:
                normal_(m.weight, 1.0, 0.02, rng)
                zeros_(m.bias)
        elif kind.endswith(("Linear", "Conv2d", "ConvTranspose2d")):  # also SpectralNorm<Layer>
            w = m._parameters.get("weight_orig", m._parameters.get("weight"))
            normal_(w, 0.0, 0.02, rng)
            if getattr(m, "bias", None) is not None:
                zeros_(m.bias)
    return module


def orthogonal_(p, gain: float = 1.0, rng=None):
    """PyTorch's ``nn.init.orthogonal_``: the weight viewed as (rows, cols) = (shape[0], rest)
    gets orthonormal rows (rows ≤ cols) or columns, from the QR decomposition of a N(0, 1) draw
    with the signs of R's diagonal folded in (so the result is Haar-distributed), times ``gain``."""
    shape = p.shape
    if len(shape) < 2:
        raise ValueError(f"orthogonal_: needs a parameter with at least 2 axes, got shape {tuple(shape)}")
    rows = shape[0]
    cols = int(np.prod(shape[1:]))
    flat = (rng or get_rng()).normal(0.0, 1.0, size=(rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    _fill(p, gain * q.reshape(shape))
    return p
