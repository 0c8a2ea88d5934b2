"""Pictures of an autoencoder / VAE / CVAE (PNG, matplotlib's Agg backend — no display needed).

* :func:`reconstructions` — inputs with their reconstructions decode(μ(x)) underneath.
* :func:`prior_samples` — decode(z), z ~ N(0, I); for a CVAE one row per class.
* :func:`interpolations` — decode((1 − t)·μ(a) + t·μ(b)) along rows of pairs (a, b).
* :func:`latent_manifold` — for a 2-D latent, the decoded images on a grid of z.
* :func:`latent_scatter` — the test set's μ(x), coloured by class (2-D latent, else the first
  two principal components).
* :func:`class_by_style` — a CVAE's classes (rows) decoded with the same z (columns): z carries
  the style, the label the digit.

Every function takes host NumPy arrays (images (N, C, H, W) in [−1, 1], labels (N,) ints), a model
from :mod:`pygan.models.vae` and a path; it writes the file and closes its figure.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..backend import to_device, to_host
from .figures import _plt, _save, _series, smooth, tile_images

__all__ = ["reconstructions", "prior_samples", "interpolations", "latent_manifold", "latent_scatter",
           "class_by_style", "curves"]


def _show(arr, path, title=None, scale=0.06, xlabel=None, ylabel=None, yticks=None, xticks=None):
    """Save a tiled grey array: ``scale`` inches per pixel, so 8×8 and 28×28 grids come out similar."""
    plt = _plt()
    h, w = arr.shape
    k = scale if max(h, w) * scale <= 9 else 9 / max(h, w)
    fig, ax = plt.subplots(figsize=(w * k + 0.6, h * k + (0.45 if title else 0.15) + (0.3 if xlabel else 0)),
                           dpi=100)
    ax.imshow(arr, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(xticks[0] if xticks else [])
    if xticks:
        ax.set_xticklabels(xticks[1], fontsize=7)
    ax.set_yticks(yticks[0] if yticks else [])
    if yticks:
        ax.set_yticklabels(yticks[1], fontsize=7)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=8)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8)
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout(pad=0.2)
    _save(fig, path)


def _centres(rows, h, pad=1):
    return [pad + r * (h + pad) + (h - 1) / 2 for r in range(rows)]


def reconstructions(model, x, path, labels=None, ncol: int = 16, title: str | None = None):
    """Rows of ``ncol`` inputs, each followed by a row of their reconstructions decode(μ(x))."""
    x = np.asarray(x)
    rec = to_host(model.reconstruct(to_device(x, model.dtype), None if labels is None else to_device(labels)))
    n = len(x) - len(x) % ncol or len(x)
    rows = []
    for s in range(0, n, ncol):
        rows += [x[s:s + ncol], rec[s:s + ncol]]
    h = x.shape[-2]
    k = len(rows)
    _show(tile_images(np.concatenate(rows), nrow=ncol), path, title or f"{model.describe()}: input / reconstruction",
          yticks=(_centres(k, h), ["input" if i % 2 == 0 else "recon." for i in range(k)]))


def prior_samples(model, path, n: int = 100, rng=None, ncol: int = 10, title: str | None = None):
    """decode(z), z ~ N(0, I): ``n`` images, ``ncol`` a row; a CVAE gets row r = class r mod C."""
    rng = rng or np.random.default_rng(0)
    labels = None
    if model.conditional:
        labels = to_device((np.arange(n) // ncol) % model.num_classes)
    imgs = to_host(model.sample(n, rng, labels))
    h = imgs.shape[-2]
    yt = None
    if model.conditional:
        k = math.ceil(n / ncol)
        yt = (_centres(k, h), [str(r % model.num_classes) for r in range(k)])
    _show(tile_images(imgs, nrow=ncol), path, title or f"{model.describe()}: samples from the prior", yticks=yt)


def interpolations(model, xa, xb, path, steps: int = 10, labels_a=None, labels_b=None, title: str | None = None):
    """Row i: decode((1 − t)·μ(aᵢ) + t·μ(bᵢ)) for t = 0 … 1 in ``steps`` steps, between aᵢ and bᵢ
    themselves (first and last columns). A CVAE decodes with label aᵢ for t < ½, bᵢ after."""
    xa, xb = np.asarray(xa), np.asarray(xb)
    la = None if labels_a is None else to_device(labels_a)
    lb = None if labels_b is None else to_device(labels_b)
    ma, _ = model.encode(to_device(xa, model.dtype), la)
    mb, _ = model.encode(to_device(xb, model.dtype), lb)
    ma, mb = to_host(ma), to_host(mb)
    ts = np.linspace(0, 1, steps)
    cols = []
    for t in ts:
        z = ((1 - t) * ma + t * mb).astype(ma.dtype)
        lab = None if la is None else (la if t < 0.5 else lb)
        cols.append(to_host(model.decode(to_device(z, model.dtype), lab)))
    grid = np.stack([xa] + cols + [xb], axis=1)          # (pairs, steps + 2, C, H, W)
    w = xa.shape[-1]
    _show(tile_images(grid.reshape(-1, *xa.shape[1:]), nrow=steps + 2), path,
          title or f"{model.describe()}: interpolation between posterior means",
          xticks=(_centres(steps + 2, w), ["a"] + [f"{t:.1f}" for t in ts] + ["b"]))


def latent_manifold(model, path, n: int = 15, span: float = 2.5, label=None, title: str | None = None):
    """For a 2-D latent: decode(z) on the n×n grid z ∈ [−span, span]², z₁ left→right, z₂ bottom→top
    (``label`` fixes a CVAE's class)."""
    if model.latent_dim != 2:
        raise ValueError(f"latent_manifold needs a 2-D latent; {model.describe()} has latent_dim {model.latent_dim}")
    g = np.linspace(-span, span, n)
    z1, z2 = np.meshgrid(g, g[::-1])                     # row 0 is the top: largest z₂
    z = np.stack([z1.ravel(), z2.ravel()], axis=1)
    lab = None
    if model.conditional:
        lab = to_device(np.full(n * n, 0 if label is None else int(label)))
    imgs = to_host(model.decode(to_device(z, model.dtype), lab))
    h = imgs.shape[-2]
    ticks = [0, n // 2, n - 1]
    _show(tile_images(imgs, nrow=n), path, title or f"{model.describe()}: decoded latent grid",
          xticks=([_centres(n, h)[i] for i in ticks], [f"{g[i]:.1f}" for i in ticks]),
          yticks=([_centres(n, h)[i] for i in ticks], [f"{g[::-1][i]:.1f}" for i in ticks]),
          xlabel="z₁", ylabel="z₂")


def latent_scatter(model, x, labels, path, title: str | None = None, cond_labels=None):
    """μ(x) of a (test) set coloured by class: the latent itself if 2-D, else its first two
    principal components. A CVAE encodes with ``cond_labels`` (default ``labels``)."""
    plt = _plt()
    x, labels = np.asarray(x), np.asarray(labels)
    cl = None
    if model.conditional:
        cl = to_device(labels if cond_labels is None else cond_labels)
    mu = to_host(model.encode(to_device(x, model.dtype), cl)[0]).astype(np.float64)
    axes = ("z₁", "z₂")
    if mu.shape[1] > 2:
        c = mu - mu.mean(0)
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        mu = c @ vt[:2].T
        axes = ("PC 1 of μ", "PC 2 of μ")
    fig, ax = plt.subplots(figsize=(4.6, 4.0), dpi=100)
    cmap = plt.get_cmap("tab10")
    for k in np.unique(labels):
        m = labels == k
        ax.scatter(mu[m, 0], mu[m, 1], s=7, color=cmap(int(k) % 10), label=str(k), alpha=0.8, linewidths=0)
    ax.legend(fontsize=7, markerscale=2, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_xlabel(axes[0], fontsize=8)
    ax.set_ylabel(axes[1], fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(title or f"{model.describe()}: μ(x) of held-out images", fontsize=8)
    fig.tight_layout(pad=0.3)
    _save(fig, path)


def class_by_style(model, path, z=None, n_styles: int = 12, rng=None, title: str | None = None):
    """A CVAE's decode(z_j, y = r): row r = class, column j = one z (the same z down a column).
    ``z`` (n_styles, L) or drawn from N(0, I) with ``rng``."""
    if not model.conditional:
        raise ValueError(f"class_by_style needs a conditional model; {model.describe()} is not")
    rng = rng or np.random.default_rng(0)
    if z is None:
        z = rng.standard_normal((n_styles, model.latent_dim))
    z = np.asarray(z, dtype=model.dtype)
    k, c = len(z), model.num_classes
    zz = np.tile(z, (c, 1))
    lab = np.repeat(np.arange(c), k)
    imgs = to_host(model.decode(to_device(zz, model.dtype), to_device(lab)))
    h = imgs.shape[-2]
    _show(tile_images(imgs, nrow=k), path, title or f"{model.describe()}: one z per column, one class per row",
          yticks=(_centres(c, h), [str(r) for r in range(c)]))


def curves(records, folder, title: str = "") -> list:
    """losses.png of a VAE run: loss, recon and −ELBO per training batch (left), KL (right), with
    the held-out −ELBO / recon / KL of the evaluations as dots; returns the paths written."""
    recs = [r for r in records if "step" in r and "error" not in r]
    if not recs:
        return []
    plt, win = _plt(), max(1, len(recs) // 200)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for ax, keys in ((a, (("loss", "loss (minimised)"), ("recon", "recon"))), (b, (("kl", "KL"),))):
        for k, label in keys:
            xs, ys = _series(recs, k)
            ax.plot(xs, smooth(ys, win), lw=1.2, label=label)
    xs, ys = _series(recs, "elbo")
    a.plot(xs, smooth(-ys, win), lw=1.0, ls="--", label="−ELBO")
    ev = [r for r in recs if isinstance(r.get("eval"), dict)]
    for ax, k, label in ((a, "test_neg_elbo", "held-out −ELBO"), (a, "test_recon", "held-out recon"),
                         (b, "test_kl", "held-out KL")):
        pts = [(r["step"], r["eval"][k]) for r in ev if k in r["eval"]]
        if pts:
            ax.plot(*zip(*pts), "o", ms=4, label=label)
    for ax, what in ((a, "nats per image"), (b, "KL(q(z|x) ‖ N(0, I)), nats per image")):
        ax.set_xlabel("step")
        ax.set_ylabel(what + (f" (moving average of {win})" if win > 1 else ""), fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = os.path.join(folder, "losses.png")
    _save(fig, path)
    return [path]
