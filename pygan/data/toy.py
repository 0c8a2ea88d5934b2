"""Toy distributions: the 2-D mixtures of the quality workloads (Q1 ring-8, Q2 grid-25), a swiss
roll and 1-D Gaussian mixtures with a known density.

=============  ==========================================================================
``ring-8``     8 Gaussians, means (cos 2πi/8, sin 2πi/8), std 0.01            :func:`ring`
``grid-25``    25 Gaussians, means on {−4, −2, 0, 2, 4}², std 0.05             :func:`grid`
``swiss-roll`` a noisy 2-D spiral (no modes)                                   :func:`swiss_roll`
``mixture-1d`` a 1-D Gaussian mixture with a known density                    :func:`gaussian_mixture_1d`
=============  ==========================================================================

Each is also a :class:`ToyDistribution` through :func:`toy`, which carries the mode centres and
std that :func:`pygan.evaluation.metrics.mode_metrics` needs. Samples are host NumPy arrays;
randomness always comes from an explicit ``numpy.random.Generator``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

__all__ = ["ring", "grid", "swiss_roll", "gaussian_mixture_1d", "gaussian_mixture_1d_pdf", "ring_means",
           "grid_means", "ToyDistribution", "toy", "TOY_DISTRIBUTIONS", "check_rng"]

# ---------------------------------------------------------------------------------------------
# Toy distributions
# ---------------------------------------------------------------------------------------------

def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"number of samples must be a non-negative integer, got {n!r}")
    return int(n)


def check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def ring_means(modes: int = 8, radius: float = 1.0) -> np.ndarray:
    """The ``modes`` centres radius·(cos 2πi/modes, sin 2πi/modes), i = 0 … modes−1; (modes, 2)."""
    if modes < 1:
        raise ValueError(f"ring: modes must be ≥ 1, got {modes}")
    a = 2.0 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(a), np.sin(a)], axis=1)


def grid_means(side: int = 5, spacing: float = 2.0) -> np.ndarray:
    """The side² centres of a square grid centred on 0, row-major in (x, y); (side², 2).

    side=5, spacing=2 gives {−4, −2, 0, 2, 4}² (Q2 ``grid-25``).
    """
    if side < 1:
        raise ValueError(f"grid: side must be ≥ 1, got {side}")
    c = (np.arange(side) - (side - 1) / 2.0) * spacing
    gx, gy = np.meshgrid(c, c, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def _isotropic_mixture(n, rng, means, std, dtype):
    n = _check_n(n)
    rng = check_rng(rng)
    if not std >= 0:
        raise ValueError(f"std must be ≥ 0, got {std}")
    k = rng.integers(0, len(means), size=n)        # equal weights
    x = means[k] + std * rng.standard_normal((n, means.shape[1]))
    return x.astype(dtype, copy=False)


def ring(n: int, rng: np.random.Generator, modes: int = 8, radius: float = 1.0,
         std: float = 0.01, dtype=np.float32) -> np.ndarray:
    """n points from an equal-weight mixture of ``modes`` isotropic Gaussians on a circle.

    x = radius·(cos 2πk/modes, sin 2πk/modes) + std·ε, k ~ U{0 … modes−1}, ε ~ N(0, I₂).
    Defaults are Q1 ``ring-8``. Returns (n, 2) of ``dtype``.
    """
    return _isotropic_mixture(n, rng, ring_means(modes, radius), std, dtype)


def grid(n: int, rng: np.random.Generator, side: int = 5, spacing: float = 2.0,
         std: float = 0.05, dtype=np.float32) -> np.ndarray:
    """n points from an equal-weight mixture of side² isotropic Gaussians on a square grid.

    Means :func:`grid_means` (side, spacing); defaults are Q2 ``grid-25`` (means on
    {−4, −2, 0, 2, 4}², std 0.05). Returns (n, 2) of ``dtype``.
    """
    return _isotropic_mixture(n, rng, grid_means(side, spacing), std, dtype)


def swiss_roll(n: int, rng: np.random.Generator, noise: float = 0.25, scale: float = 1.0 / 7.5,
               dtype=np.float32) -> np.ndarray:
    """n points of a 2-D Swiss roll (the spiral of scikit-learn's ``make_swiss_roll``, x and z).

    t ~ U[1.5π, 4.5π];  x = scale·(t cos t + noise·ε₁, t sin t + noise·ε₂),  ε ~ N(0, I₂).
    With the defaults (noise 0.25 before scaling by 1/7.5, as in the WGAN-GP authors' toy code)
    the points lie in about [−1.8, 1.8]². Returns (n, 2) of ``dtype``.
    """
    n = _check_n(n)
    rng = check_rng(rng)
    if not noise >= 0:
        raise ValueError(f"swiss_roll: noise must be ≥ 0, got {noise}")
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    x += noise * rng.standard_normal((n, 2))
    x *= scale
    return x.astype(dtype, copy=False)


def _mixture_params(means, stds, weights):
    means = np.atleast_1d(np.asarray(means, dtype=np.float64))
    stds = np.atleast_1d(np.asarray(stds, dtype=np.float64))
    if means.ndim != 1 or len(means) == 0:
        raise ValueError(f"mixture: means must be a non-empty 1-D sequence, got shape {means.shape}")
    if stds.size == 1:
        stds = np.full_like(means, stds.item())
    if stds.shape != means.shape:
        raise ValueError(f"mixture: {len(means)} means but {stds.size} stds")
    if not np.all(stds > 0):
        raise ValueError(f"mixture: every std must be > 0, got {stds.tolist()}")
    if weights is None:
        weights = np.full_like(means, 1.0 / len(means))
    else:
        weights = np.atleast_1d(np.asarray(weights, dtype=np.float64))
        if weights.shape != means.shape:
            raise ValueError(f"mixture: {len(means)} means but {weights.size} weights")
        if not (np.all(weights >= 0) and weights.sum() > 0 and np.all(np.isfinite(weights))):
            raise ValueError(f"mixture: weights must be finite, ≥ 0 and not all 0, got {weights.tolist()}")
        weights = weights / weights.sum()
    if not np.all(np.isfinite(means)):
        raise ValueError(f"mixture: means must be finite, got {means.tolist()}")
    return means, stds, weights


def gaussian_mixture_1d(n: int, rng: np.random.Generator, means: Sequence[float] = (-2.0, 2.0),
                        stds: Sequence[float] | float = 0.5, weights: Sequence[float] | None = None,
                        dtype=np.float32) -> np.ndarray:
    """n points from the 1-D mixture p(x) = Σₖ wₖ N(x; μₖ, σₖ²); returns (n, 1) of ``dtype``.

    ``means`` (K,), ``stds`` (K,) or one float for all, ``weights`` (K,) non-negative, normalised
    to sum 1 here (None: equal). The density is :func:`gaussian_mixture_1d_pdf` with the same
    arguments. Shape (n, 1) so that it feeds ``nn.Linear(1, …)`` directly.
    """
    n = _check_n(n)
    rng = check_rng(rng)
    means, stds, weights = _mixture_params(means, stds, weights)
    k = rng.choice(len(means), size=n, p=weights)
    x = means[k] + stds[k] * rng.standard_normal(n)
    return x.reshape(n, 1).astype(dtype, copy=False)


def gaussian_mixture_1d_pdf(x, means: Sequence[float] = (-2.0, 2.0),
                            stds: Sequence[float] | float = 0.5,
                            weights: Sequence[float] | None = None) -> np.ndarray:
    """The density p(x) = Σₖ wₖ · exp(−(x − μₖ)² / 2σₖ²) / (σₖ √(2π)) of :func:`gaussian_mixture_1d`.

    ``x`` any shape; returns float64 of the same shape. Same ``means``/``stds``/``weights``
    conventions (weights normalised to sum 1).
    """
    means, stds, weights = _mixture_params(means, stds, weights)
    x = np.asarray(x, dtype=np.float64)
    z = (x[..., None] - means) / stds
    return np.sum(weights / (stds * np.sqrt(2.0 * np.pi)) * np.exp(-0.5 * z * z), axis=-1)


@dataclass(frozen=True, eq=False)
class ToyDistribution:
    """A named toy distribution with what the quality metrics need.

    name     registry name (``"ring-8"``…)
    sampler  ``sampler(n, rng) -> (n, dim)`` float32 array (use :meth:`sample`)
    dim      data dimension
    means    (K, dim) float64 mode centres, or None when the distribution has no modes
    std      per-coordinate std of each mode (the "3 std" of the high-quality test), or None;
             for ``mixture-1d`` with unequal stds, the largest
    pdf      ``pdf(x) -> density`` for distributions with a known density (``mixture-1d``), else None

    ``mode_metrics(samples, d.means, d.std)`` scores samples against it (:mod:`pygan.metrics`).
    """

    name: str
    sampler: Callable[[int, np.random.Generator], np.ndarray] = field(repr=False)
    dim: int
    means: np.ndarray | None = field(default=None, repr=False)
    std: float | None = None
    pdf: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def sample(self, n: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
        """n samples, (n, dim) of ``dtype``."""
        return self.sampler(n, rng).astype(dtype, copy=False)

    @property
    def num_modes(self) -> int:
        return 0 if self.means is None else len(self.means)


def _toy_ring(modes=8, radius=1.0, std=0.01):
    return ToyDistribution(f"ring-{modes}", lambda n, rng: ring(n, rng, modes, radius, std, np.float64),
                           2, ring_means(modes, radius), float(std))


def _toy_grid(side=5, spacing=2.0, std=0.05):
    return ToyDistribution(f"grid-{side * side}",
                           lambda n, rng: grid(n, rng, side, spacing, std, np.float64),
                           2, grid_means(side, spacing), float(std))


def _toy_swiss_roll(noise=0.25, scale=1.0 / 7.5):
    return ToyDistribution("swiss-roll", lambda n, rng: swiss_roll(n, rng, noise, scale, np.float64), 2)


def _toy_mixture_1d(means=(-2.0, 2.0), stds=0.5, weights=None):
    m, s, w = _mixture_params(means, stds, weights)
    return ToyDistribution("mixture-1d",
                           lambda n, rng: gaussian_mixture_1d(n, rng, m, s, w, np.float64),
                           1, m.reshape(-1, 1), float(s.max()),
                           lambda x: gaussian_mixture_1d_pdf(x, m, s, w))


_TOY = {
    "ring-8": _toy_ring,
    "grid-25": _toy_grid,
    "swiss-roll": _toy_swiss_roll,
    "mixture-1d": _toy_mixture_1d,
}
TOY_DISTRIBUTIONS = tuple(_TOY)


def toy(name: str, **kwargs) -> ToyDistribution:
    """The toy distribution called ``name`` (one of :data:`TOY_DISTRIBUTIONS`).

    Keyword arguments override its parameters: ``toy("ring-8", std=0.02)``,
    ``toy("grid-25", spacing=1.0)``, ``toy("mixture-1d", means=(-1, 3), stds=(0.5, 1))``,
    ``toy("swiss-roll", noise=0.1)`` (the parameters of :func:`ring`, :func:`grid`,
    :func:`gaussian_mixture_1d`, :func:`swiss_roll`).
    """
    if name not in _TOY:
        raise ValueError(f"unknown toy distribution {name!r}; choose one of {', '.join(TOY_DISTRIBUTIONS)}")
    try:
        return _TOY[name](**kwargs)
    except TypeError as e:
        raise TypeError(f"toy({name!r}): {e}") from None
