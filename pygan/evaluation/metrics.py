"""Quality metrics: mode coverage on toy mixtures (Q1/Q2), Fréchet distance (Q3/Q4), 1-D JS.

All computations run in float64 on the host, whatever the dtype of the inputs; pass NumPy
arrays (move CuPy arrays to the host first).
"""
from __future__ import annotations

import numpy as np

from ..backend import to_host

__all__ = ["mode_metrics", "feature_statistics", "gaussian_frechet_distance", "frechet_distance", "format_quality",
           "js_divergence_1d"]


def _as_points(a, name, dim=None):
    a = np.asarray(to_host(a), dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be (N, d) (or (N,) for 1-D), got shape {a.shape}")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{name}: expected points of dimension {dim} (like the means), "
                         f"got shape {a.shape}")
    return a


def mode_metrics(samples, means, std: float, threshold: float = 3.0, chunk: int = 8192) -> dict:
    """Mode coverage of generated points on a mixture of isotropic Gaussians (benchmarks/WORKLOADS.md Q1/Q2).

    samples  (N, d) generated points in the data's original coordinates ((N,) for d = 1)
    means    (K, d) mode centres ((K,) for d = 1), e.g. ``pygan.data.toy("ring-8").means``
    std      the modes' per-coordinate standard deviation σ

    With m(x) = argminₖ ‖x − μₖ‖ the nearest mean (Euclidean):

    * a point is **high quality** (HQ) if ‖x − μ_m(x)‖ ≤ threshold·σ (threshold 3);
    * ``hq_percent`` = 100 · #HQ / N;
    * ``modes`` = #{k : k = m(x) for at least one HQ point x} (out of ``total_modes`` = K);
    * ``kl`` = KL(p ‖ u) = Σ_{k: p_k > 0} p_k log(p_k K), natural log, where p_k is the
      fraction of HQ points whose nearest mean is k and u is uniform over all K modes
      (0 log 0 = 0). It lies in [0, log K]: 0 when the HQ points are spread evenly, log K when
      they all sit on one mode.
    * If there is no HQ point, p is undefined; by convention ``kl`` = log K, the value of
      the worst case (all mass on one mode), so that "no good samples" never scores better
      than "one good mode". ``modes`` and ``hq_percent`` are then 0.

    Non-finite samples (NaN/inf from a diverged generator) count as points that are not HQ.

    Returns {"modes": int, "total_modes": int, "hq_percent": float, "kl": float}.
    Cost O(N·K·d), done in chunks of ``chunk`` points.
    """
    means = _as_points(means, "means")
    k, d = means.shape
    if k == 0:
        raise ValueError("mode_metrics: means is empty")
    x = _as_points(samples, "samples", d)
    n = len(x)
    if n == 0:
        raise ValueError("mode_metrics: no samples")
    std = float(std)
    if not (std > 0 and np.isfinite(std)):
        raise ValueError(f"mode_metrics: std must be finite and > 0, got {std}")
    radius2 = (threshold * std) ** 2
    nearest = np.empty(n, dtype=np.int64)
    d2min = np.empty(n, dtype=np.float64)
    for s in range(0, n, chunk):
        diff = x[s:s + chunk, None, :] - means[None, :, :]       # (c, K, d), exact differences
        d2 = np.einsum("ckd,ckd->ck", diff, diff)
        nearest[s:s + chunk] = np.argmin(d2, axis=1)
        d2min[s:s + chunk] = d2[np.arange(len(d2)), nearest[s:s + chunk]]
    hq = d2min <= radius2                                         # False for NaN
    counts = np.bincount(nearest[hq], minlength=k)
    n_hq = int(counts.sum())
    if n_hq == 0:
        kl = float(np.log(k))
    else:
        p = counts[counts > 0] / n_hq
        kl = float(max(np.sum(p * np.log(p * k)), 0.0))
    return {"modes": int(np.count_nonzero(counts)), "total_modes": int(k),
            "hq_percent": 100.0 * n_hq / n, "kl": kl}


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and covariance (d, d) (unbiased, divisor N − 1) of features (N, d), float64.

    Compute the real data's statistics once and reuse them with
    :func:`gaussian_frechet_distance`.
    """
    f = np.asarray(to_host(features), dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (N, d) with N ≥ 2, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or inf")
    mu = f.mean(axis=0)
    c = f - mu
    cov = (c.T @ c) / (f.shape[0] - 1)
    return mu, cov


def _sym_sqrt(a):
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition.

    a = V diag(λ) Vᵀ ⇒ a^{1/2} = V diag(√max(λ, 0)) Vᵀ (rounding can make tiny λ negative).
    """
    a = 0.5 * (a + a.T)
    lam, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(lam, 0.0, None))) @ v.T


def gaussian_frechet_distance(mu_a, cov_a, mu_b, cov_b) -> float:
    """Fréchet (2-Wasserstein²) distance between N(μ_a, Σ_a) and N(μ_b, Σ_b):

        FD = ‖μ_a − μ_b‖² + tr Σ_a + tr Σ_b − 2 tr (Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2}.

    mu_* (d,), cov_* (d, d) symmetric PSD. The trace term is computed as Σᵢ √λᵢ over the
    eigenvalues of the symmetric PSD matrix M = Σ_a^{1/2} Σ_b Σ_a^{1/2} (Σ_a^{1/2} by a
    symmetric eigendecomposition; negative rounding-level eigenvalues clipped to 0), which
    equals tr √(Σ_a Σ_b) but needs no non-symmetric matrix square root and no scipy. It stays
    accurate for singular covariances (N < d features). The result is clipped at 0 (rounding can
    make it −1e−15).
    """
    mu_a = np.asarray(to_host(mu_a), dtype=np.float64).ravel()
    mu_b = np.asarray(to_host(mu_b), dtype=np.float64).ravel()
    cov_a = np.atleast_2d(np.asarray(to_host(cov_a), dtype=np.float64))
    cov_b = np.atleast_2d(np.asarray(to_host(cov_b), dtype=np.float64))
    d = mu_a.size
    if mu_b.size != d or cov_a.shape != (d, d) or cov_b.shape != (d, d):
        raise ValueError(f"Fréchet distance: mismatched statistics: means {mu_a.shape} and "
                         f"{mu_b.shape}, covariances {cov_a.shape} and {cov_b.shape}")
    sa = _sym_sqrt(cov_a)
    m = sa @ cov_b @ sa
    lam = np.linalg.eigvalsh(0.5 * (m + m.T))
    tr_sqrt = np.sum(np.sqrt(np.clip(lam, 0.0, None)))
    diff = mu_a - mu_b
    fd = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_sqrt
    return float(max(fd, 0.0))


def frechet_distance(feat_a, feat_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID recipe).

    feat_a (N_a, d), feat_b (N_b, d): features (e.g. a classifier's penultimate layer) of real
    and generated images, N ≥ 2 each. Fits mean and covariance (:func:`feature_statistics`)
    and returns :func:`gaussian_frechet_distance`. 0 for identical sets; symmetric.
    """
    mu_a, cov_a = feature_statistics(feat_a)
    mu_b, cov_b = feature_statistics(feat_b)
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"frechet_distance: feature sets of different dimension: "
                         f"{np.shape(feat_a)} and {np.shape(feat_b)}")
    return gaussian_frechet_distance(mu_a, cov_a, mu_b, cov_b)


def js_divergence_1d(p, q, x) -> float:
    """Jensen–Shannon divergence between two 1-D densities evaluated on a uniform grid.

    p, q (G,) non-negative density values at the grid points x (G,) (uniform spacing, G ≥ 2).
    Both are normalised to integrate to 1 on the grid (trapezoid rule), so tails cut off by the
    grid and discretisation error do not push the result out of range. With m = (p + q)/2:

        JS(p ‖ q) = ½ ∫ p log(p/m) dx + ½ ∫ q log(q/m) dx      (natural log, 0 log 0 = 0)

    by the trapezoid rule; the result is in [0, log 2] (clipped there against rounding):
    0 iff p = q on the grid, log 2 iff their supports on the grid are disjoint. At the optimal
    discriminator V(D*, G) = −log 4 + 2·JS(p_data ‖ p_g).
    """
    x = np.asarray(to_host(x), dtype=np.float64)
    p = np.asarray(to_host(p), dtype=np.float64)
    q = np.asarray(to_host(q), dtype=np.float64)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"js_divergence_1d: x must be a 1-D grid of at least 2 points, got shape {x.shape}")
    if p.shape != x.shape or q.shape != x.shape:
        raise ValueError(f"js_divergence_1d: p {p.shape} and q {q.shape} must match the grid x {x.shape}")
    dx = np.diff(x)
    h = dx.mean()
    if not (h > 0 and np.allclose(dx, h, rtol=1e-6, atol=0.0)):
        raise ValueError("js_divergence_1d: x must be increasing with uniform spacing")
    for name, f in (("p", p), ("q", q)):
        if not np.all(np.isfinite(f)) or np.any(f < 0):
            raise ValueError(f"js_divergence_1d: {name} must be finite and ≥ 0")
    w = np.full(x.shape, h)                      # trapezoid weights
    w[0] = w[-1] = 0.5 * h
    zp, zq = w @ p, w @ q
    if not (zp > 0 and zq > 0):
        raise ValueError(f"js_divergence_1d: a density integrates to 0 on the grid (p: {zp}, q: {zq})")
    p = p / zp
    q = q / zq
    m = 0.5 * (p + q)

    def kl_to_m(f):
        pos = f > 0                               # f > 0 ⇒ m > 0
        return w[pos] @ (f[pos] * np.log(f[pos] / m[pos]))

    js = 0.5 * (kl_to_m(p) + kl_to_m(q))
    return float(min(max(js, 0.0), np.log(2.0)))


def format_quality(q: dict) -> str:
    """One line of quality figures: ``modes 8/8  high-quality 94.1%  KL 0.006`` (toy data) or the
    judge's figures."""
    if not q:
        return "no quality figures for this data"
    if "modes" in q and "hq_percent" in q:
        return (f"modes {q['modes']}/{q.get('total_modes', '?')}  high-quality {q['hq_percent']:.1f}%  "
                f"KL {q['kl']:.3f}")
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in q.items())
