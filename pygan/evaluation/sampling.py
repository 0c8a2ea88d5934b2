"""Drawing samples from a trained generator: in eval mode, in chunks, onto the host; latent walks.

Works for any model with ``sample_z(n, rng)``, ``g_forward(z, labels)``, ``num_classes``,
``data_shape`` and (if it has BatchNorm or Dropout) ``eval_mode()`` — a
:class:`pygan.models.GANModel` or a VAE (its decoder).
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..backend import to_device, to_host

__all__ = ["generate", "slerp", "interpolate_latents"]


def generate(model, n: int, rng, labels=None, z=None, chunk: int = 1000) -> np.ndarray:
    """n samples (float32, on the host, in the model's coordinates) with every network in eval
    mode (each module's mode restored after). z (n, latent_dim) if given, else drawn from ``rng``;
    labels (n,) for a conditional model (default: uniform from ``rng``)."""
    n = int(n)
    cond = getattr(model, "num_classes", 0) > 0
    if z is None:
        z = model.sample_z(n, rng)
    else:
        z = to_device(z)
    if cond and labels is None:
        labels = rng.integers(0, model.num_classes, n)
    out = []
    with getattr(model, "eval_mode", contextlib.nullcontext)():
        for s in range(0, n, chunk):
            lab = None if not cond else to_device(np.asarray(to_host(labels))[s:s + chunk].astype(np.int64))
            out.append(np.array(to_host(model.g_forward(z[s:s + chunk], lab)), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0,) + tuple(model.data_shape), np.float32)


def slerp(z0, z1, t):
    """Spherical interpolation between latent vectors (rows), t ∈ [0, 1] (linear when parallel)."""
    z0 = np.asarray(z0, dtype=np.float64)
    z1 = np.asarray(z1, dtype=np.float64)
    n0 = np.linalg.norm(z0, axis=-1, keepdims=True)
    n1 = np.linalg.norm(z1, axis=-1, keepdims=True)
    cos = np.clip(np.sum(z0 * z1, axis=-1, keepdims=True) / np.maximum(n0 * n1, 1e-12), -1.0, 1.0)
    omega = np.arccos(cos)
    so = np.sin(omega)
    lin = so < 1e-6
    safe = np.where(lin, 1.0, so)
    a = np.where(lin, 1.0 - t, np.sin((1.0 - t) * omega) / safe)
    b = np.where(lin, t, np.sin(t * omega) / safe)
    return a * z0 + b * z1


def interpolate_latents(model, rows: int, steps: int, rng) -> np.ndarray:
    """(rows·steps, latent_dim) host array in the model's dtype: each row walks from one prior
    draw to another by slerp (the prior is a Gaussian, so a straight line would pass through its
    low-density centre)."""
    z0 = np.asarray(to_host(model.sample_z(rows, rng)), dtype=np.float64)
    z1 = np.asarray(to_host(model.sample_z(rows, rng)), dtype=np.float64)
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    z = slerp(z0[:, None, :], z1[:, None, :], t)
    return z.reshape(rows * steps, -1).astype(model.dtype)
