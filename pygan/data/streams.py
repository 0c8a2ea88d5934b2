"""Batch streams for a training loop: endless, drawn from an explicit generator, checkpointable.

:class:`ToyStream` draws fresh samples from a toy distribution every batch; :class:`ImageStream`
shuffles a fixed image set each epoch and hands out consecutive slices, and its permutation and
position go into a checkpoint so a resumed run sees the same batches. :func:`batches` is the
plain iterator over a data set for a loop of one's own.

Every stream has ``shape`` (one sample's), ``labels`` (None for unlabelled data),
``next(n, rng) -> (x, labels)`` (host float32), ``reference(n, rng)`` (real samples in the
original coordinates, for plots), ``state() -> (json_state, arrays)`` and ``load_state``.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from .toy import ToyDistribution, check_rng

__all__ = ["ToyStream", "ImageStream", "batches"]


class ToyStream:
    """An endless stream of fresh samples from a toy distribution, divided by ``scale``."""

    def __init__(self, dist: ToyDistribution, scale: float = 1.0):
        self.dist = dist
        self.scale = float(scale)
        self.shape = (dist.dim,)
        self.labels = None

    def next(self, n, rng):
        x = self.dist.sample(n, rng, np.float64)
        return (x / self.scale).astype(np.float32), None

    def reference(self, n, rng):
        """n real points in the original coordinates (for plots)."""
        return self.dist.sample(n, rng, np.float64)

    def state(self):
        return {}, {}

    def load_state(self, state, arrays):
        pass


class ImageStream:
    """Shuffled minibatches of an image set, reshuffled (from the training generator) each epoch;
    the permutation and the position in it are checkpointed. ``x`` (N, C, H, W), ``labels`` (N,)."""

    def __init__(self, x, labels=None, scale: float = 1.0):
        if scale != 1.0:
            x = (x / np.float32(scale)).astype(np.float32)
        self.x, self.labels = np.ascontiguousarray(x), labels
        self.shape = tuple(self.x.shape[1:])
        self.perm = None
        self.pos = 0

    def next(self, n, rng):
        if n > len(self.x):
            raise ValueError(f"batch_size {n} is larger than the data set ({len(self.x)} images)")
        if self.perm is None or self.pos + n > len(self.perm):
            self.perm = rng.permutation(len(self.x))
            self.pos = 0
        idx = self.perm[self.pos:self.pos + n]
        self.pos += n
        return self.x[idx], (None if self.labels is None else self.labels[idx])

    def reference(self, n, rng):
        return self.x[rng.choice(len(self.x), size=min(n, len(self.x)), replace=False)]

    def state(self):
        return {"pos": self.pos}, ({"perm": self.perm} if self.perm is not None else {})

    def load_state(self, state, arrays):
        self.pos = int(state.get("pos", 0))
        self.perm = np.asarray(arrays["perm"], dtype=np.int64) if "perm" in arrays else None


def batches(x: np.ndarray, batch_size: int, rng: np.random.Generator, labels: np.ndarray | None = None,
            drop_last: bool = True, epochs: int | None = None) -> Iterator:
    """Shuffled minibatches of ``x`` (N, …) along axis 0, reshuffled every epoch.

    A generator. Each epoch draws a fresh permutation of the N rows from ``rng`` and yields
    its consecutive slices of ``batch_size`` rows: ``x[idx]`` (a copy), or ``(x[idx],
    labels[idx])`` when ``labels`` (N, …) is given. With ``drop_last`` the final short slice of
    an epoch is skipped, so every batch has exactly ``batch_size`` rows (N // batch_size
    batches an epoch); without it the epoch ends with the remaining N mod batch_size rows.

    ``epochs=None`` (default) never ends — the usual GAN loop draws ``next(it)`` once per step;
    ``epochs=k`` stops after k full passes (``for xb in batches(x, 64, rng, epochs=1)``).

    Raises ``ValueError`` if ``drop_last`` and ``batch_size > N`` (no batch could ever be made).
    """
    x = np.asarray(x)
    rng = check_rng(rng)
    if x.ndim == 0:
        raise ValueError("batches: x must have a leading sample axis, got a scalar")
    n = len(x)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive integer, got {batch_size!r}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim == 0 or len(labels) != n:
            raise ValueError(f"batches: {n} samples but labels of shape {labels.shape}")
    if n == 0 or (drop_last and batch_size > n):
        raise ValueError(f"batches: batch_size {batch_size} > {n} samples with drop_last=True "
                         f"gives no batch; use a smaller batch or drop_last=False")
    if epochs is not None and (isinstance(epochs, bool) or epochs < 0):
        raise ValueError(f"batches: epochs must be None or ≥ 0, got {epochs!r}")
    return _batches(x, int(batch_size), rng, labels, drop_last, epochs)


def _batches(x, batch_size, rng, labels, drop_last, epochs):
    n = len(x)
    stop = n - n % batch_size if drop_last else n
    epoch = 0
    while epochs is None or epoch < epochs:
        perm = rng.permutation(n)
        for s in range(0, stop, batch_size):
            idx = perm[s:s + batch_size]
            yield x[idx] if labels is None else (x[idx], labels[idx])
        epoch += 1
