"""Training an autoencoder / VAE / CVAE (:mod:`pygan.models.vae`): one step, a loop, an evaluation.

A self-contained loop (no run folder, no checkpoints): the GAN trainer (:mod:`pygan.train`)
wires these into its presets. The pieces, smallest first:

    parts = vae_step(model, opt, xb, rng, labels=lb, beta=None)   # one Adam step on one batch
    history = train_vae(model, images, labels, steps=2000, batch=64, lr=1e-3, rng=rng, log=print)
    parts = evaluate_elbo(model, images, labels, rng)               # mean loss/recon/kl/elbo, no update

Every record is a dict of Python floats: ``step`` (1-based), ``loss`` (= recon + β·kl, what is
minimised), ``recon`` (−log p(x|z) per sample, nats), ``kl`` (KL(q(z|x) ‖ N(0, I)) per sample,
nats), ``elbo`` (= −(recon + kl), the bound on log p(x)), ``beta`` (the KL weight used).
"""
from __future__ import annotations

import numpy as np

from . import optim
from .backend import get_backend
from .data import batches

__all__ = ["vae_step", "train_vae", "evaluate_elbo", "kl_weight"]


def _to_device(a, dtype=None):
    xp = get_backend().xp
    return xp.asarray(a if dtype is None else np.asarray(a, dtype=dtype))


def _eps(model, n, rng):
    """ε ~ N(0, I) (n, L) from ``rng`` in the model's dtype (None for the autoencoder)."""
    if model.deterministic:
        return None
    return _to_device(rng.standard_normal((n, model.latent_dim)).astype(model.dtype))


def kl_weight(step: int, beta: float, warmup: int) -> float:
    """β·min(1, step/warmup): linear KL warm-up over the first ``warmup`` steps (0: constant β)."""
    if warmup <= 0:
        return float(beta)
    return float(beta) * min(1.0, step / warmup)


def vae_step(model, opt, xb, rng: np.random.Generator, labels=None, beta: float | None = None) -> dict:
    """One update: zero grads, ELBO forward with ε drawn from ``rng``, hand-derived backward, ``opt.step()``.

    xb (N, C, S, S) images in [−1, 1] (host or backend array; cast to the model's dtype), labels
    (N,) ints for a CVAE, beta the KL weight (None: ``model.beta``). Returns the ELBO parts.
    """
    xb = _to_device(xb, model.dtype)
    lb = None if labels is None else _to_device(labels)
    opt.zero_grad()
    _, parts = model.elbo_and_backward(xb, _eps(model, xb.shape[0], rng), lb, beta)
    opt.step()
    return parts


def train_vae(model, images, labels=None, steps: int = 2000, batch: int = 64, lr: float = 1e-3,
              rng: np.random.Generator | None = None, log=None, log_every: int = 1, optimizer=None,
              beta_warmup: int = 0) -> list[dict]:
    """Train ``model`` on ``images`` for ``steps`` minibatch steps; returns one record per step.

    images (N, C, S, S) in [−1, 1] (host NumPy), labels (N,) ints (needed by a CVAE, ignored
    otherwise), batch size ``batch`` (shuffled each epoch, last short batch dropped), Adam(lr,
    betas (0.9, 0.999)) unless ``optimizer`` is given, ε and the shuffling from ``rng``
    (default ``np.random.default_rng(0)``). ``beta_warmup`` > 0 raises the KL weight linearly from
    0 to ``model.beta`` over that many steps. ``log(record)`` is called every ``log_every`` steps
    and at the last one. A NaN/inf ELBO raises :class:`pygan.losses.NonFiniteLoss` naming the term.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"train_vae: steps must be an integer ≥ 0, got {steps!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    if model.conditional and labels is None:
        raise ValueError(f"train_vae: {model.describe()} is conditional; pass the labels")
    labels = labels if model.conditional else None
    opt = optimizer if optimizer is not None else optim.Adam(model.parameters(), lr=lr)
    model.train()
    it = batches(images, batch, rng, labels=labels)
    history = []
    for step in range(1, int(steps) + 1):
        xb, lb = next(it) if labels is not None else (next(it), None)
        beta = kl_weight(step, model.beta, beta_warmup)
        parts = vae_step(model, opt, xb, rng, lb, beta)
        rec = {"step": step, **parts, "beta": beta}
        history.append(rec)
        if log is not None and (step % max(1, log_every) == 0 or step == steps):
            log(rec)
    return history


def evaluate_elbo(model, images, labels=None, rng: np.random.Generator | None = None, batch: int = 500) -> dict:
    """Mean ``loss``/``recon``/``kl``/``elbo`` per sample over a whole set (one ε per image, from
    ``rng``); no parameter changes (the grads are not touched)."""
    rng = np.random.default_rng(0) if rng is None else rng
    n = len(images)
    totals = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "elbo": 0.0}
    for s in range(0, n, batch):
        xb = _to_device(images[s:s + batch], model.dtype)
        lb = None if not model.conditional else _to_device(labels[s:s + batch])
        _, parts = model.elbo(xb, _eps(model, xb.shape[0], rng), lb)
        for k in totals:
            totals[k] += parts[k] * xb.shape[0]
    model._cache = None          # disarm backward: these caches are not meant for an update
    return {k: v / n for k, v in totals.items()}
