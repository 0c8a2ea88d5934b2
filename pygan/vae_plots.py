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

from .backend import get_backend

__all__ = ["reconstructions", "prior_samples", "interpolations", "latent_manifold", "latent_scatter",
           "class_by_style", "tile", "digits_figures"]


def _plt():
    import matplotlib
    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def _dev(model, a, integer=False):
    xp = get_backend().xp
    return xp.asarray(np.asarray(a) if integer else np.asarray(a, dtype=model.dtype))


def tile(images, ncol: int, pad: int = 1) -> np.ndarray:
    """(N, 1, H, W) images in [−1, 1] → one grey array in [0, 1], ``ncol`` per row, white gaps."""
    x = np.clip((np.asarray(images, dtype=np.float32)[:, 0] + 1) / 2, 0, 1)
    n, h, w = x.shape
    rows = math.ceil(n / ncol)
    out = np.ones((rows * (h + pad) + pad, ncol * (w + pad) + pad), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncol)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = x[i]
    return out


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
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _centres(rows, h, pad=1):
    return [pad + r * (h + pad) + (h - 1) / 2 for r in range(rows)]


def reconstructions(model, x, path, labels=None, ncol: int = 16, title: str | None = None):
    """Rows of ``ncol`` inputs, each followed by a row of their reconstructions decode(μ(x))."""
    x = np.asarray(x)
    rec = _host(model.reconstruct(_dev(model, x), None if labels is None else _dev(model, labels, True)))
    n = len(x) - len(x) % ncol or len(x)
    rows = []
    for s in range(0, n, ncol):
        rows += [x[s:s + ncol], rec[s:s + ncol]]
    h = x.shape[-2]
    k = len(rows)
    _show(tile(np.concatenate(rows), ncol), path, title or f"{model.describe()}: input / reconstruction",
          yticks=(_centres(k, h), ["input" if i % 2 == 0 else "recon." for i in range(k)]))


def prior_samples(model, path, n: int = 100, rng=None, ncol: int = 10, title: str | None = None):
    """decode(z), z ~ N(0, I): ``n`` images, ``ncol`` a row; a CVAE gets row r = class r mod C."""
    rng = rng or np.random.default_rng(0)
    labels = None
    if model.conditional:
        labels = _dev(model, (np.arange(n) // ncol) % model.num_classes, True)
    imgs = _host(model.sample(n, rng, labels))
    h = imgs.shape[-2]
    yt = None
    if model.conditional:
        k = math.ceil(n / ncol)
        yt = (_centres(k, h), [str(r % model.num_classes) for r in range(k)])
    _show(tile(imgs, ncol), path, title or f"{model.describe()}: samples from the prior", yticks=yt)


def interpolations(model, xa, xb, path, steps: int = 10, labels_a=None, labels_b=None, title: str | None = None):
    """Row i: decode((1 − t)·μ(aᵢ) + t·μ(bᵢ)) for t = 0 … 1 in ``steps`` steps, between aᵢ and bᵢ
    themselves (first and last columns). A CVAE decodes with label aᵢ for t < ½, bᵢ after."""
    xa, xb = np.asarray(xa), np.asarray(xb)
    la = None if labels_a is None else _dev(model, labels_a, True)
    lb = None if labels_b is None else _dev(model, labels_b, True)
    ma, _ = model.encode(_dev(model, xa), la)
    mb, _ = model.encode(_dev(model, xb), lb)
    ma, mb = _host(ma), _host(mb)
    ts = np.linspace(0, 1, steps)
    cols = []
    for t in ts:
        z = ((1 - t) * ma + t * mb).astype(ma.dtype)
        lab = None if la is None else (la if t < 0.5 else lb)
        cols.append(_host(model.decode(_dev(model, z), lab)))
    grid = np.stack([xa] + cols + [xb], axis=1)          # (pairs, steps + 2, C, H, W)
    w = xa.shape[-1]
    _show(tile(grid.reshape(-1, *xa.shape[1:]), steps + 2), path,
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
        lab = _dev(model, np.full(n * n, 0 if label is None else int(label)), True)
    imgs = _host(model.decode(_dev(model, z), lab))
    h = imgs.shape[-2]
    ticks = [0, n // 2, n - 1]
    _show(tile(imgs, n), path, title or f"{model.describe()}: decoded latent grid",
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
        cl = _dev(model, labels if cond_labels is None else cond_labels, True)
    mu = _host(model.encode(_dev(model, x), cl)[0]).astype(np.float64)
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
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


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
    imgs = _host(model.decode(_dev(model, zz), _dev(model, lab, True)))
    h = imgs.shape[-2]
    _show(tile(imgs, k), path, title or f"{model.describe()}: one z per column, one class per row",
          yticks=(_centres(c, h), [str(r) for r in range(c)]))


def digits_figures(folder, steps: int = 10000, seed: int = 0, log=None) -> dict:
    """Train a 2-D-latent VAE and CVAE on the scikit-learn digits and draw every figure above.

    Data: the 1,797 digits, a fixed split (1,500 to train, 297 held out for the scatter,
    reconstruction and interpolation figures). Models: ``build_vae("vae-8", latent_dim=2)`` and
    ``build_vae("cvae-8", latent_dim=2)`` (MLP, H = 256, Bernoulli), Adam 1e-3, batch 64, ``steps``
    steps each. Writes vae_*.png into ``folder``; returns {"vae": model, "cvae": model,
    "test": (x, y), "history": {...}, "paths": [...]}.
    ``python -m pygan.vae_plots docs/img`` runs it.
    """
    from . import random as _random
    from .data import load_digits
    from .models.vae import build_vae
    from .vae_training import evaluate_elbo, train_vae
    x, y = load_digits()
    perm = np.random.default_rng(seed).permutation(len(x))
    tr, te = perm[:1500], perm[1500:]
    out = {"history": {}, "paths": [], "test": (x[te], y[te])}
    p = lambda name: os.path.join(folder, name)
    for kind in ("vae", "cvae"):
        _random.manual_seed(seed)
        m = build_vae(f"{kind}-8", latent_dim=2)
        h = train_vae(m, x[tr], y[tr], steps=steps, batch=64, lr=1e-3, rng=np.random.default_rng(seed + 1),
                      log=log, log_every=max(1, steps // 10))
        out[kind] = m
        out["history"][kind] = {"train": h[-1], "test": evaluate_elbo(m, x[te], y[te])}
    vae, cvae = out["vae"], out["cvae"]
    xt, yt = x[te], y[te]
    rng = np.random.default_rng(seed + 2)
    figs = [
        ("vae_reconstructions.png", lambda f: reconstructions(vae, xt[:32], f)),
        ("vae_samples.png", lambda f: prior_samples(vae, f, 100, np.random.default_rng(seed + 3))),
        ("vae_interpolations.png", lambda f: interpolations(vae, xt[:8], xt[8:16], f)),
        ("vae_manifold.png", lambda f: latent_manifold(vae, f, 15)),
        ("vae_latent_scatter.png", lambda f: latent_scatter(vae, xt, yt, f)),
        ("vae_cvae_samples.png", lambda f: prior_samples(cvae, f, 100, np.random.default_rng(seed + 3))),
        ("vae_cvae_class_by_style.png", lambda f: class_by_style(cvae, f, n_styles=12, rng=rng)),
        ("vae_cvae_manifold.png", lambda f: latent_manifold(cvae, f, 11, label=4,
                                                            title="CVAE (z 2): decoded latent grid, label 4")),
        ("vae_cvae_latent_scatter.png", lambda f: latent_scatter(cvae, xt, yt, f)),
    ]
    for name, draw in figs:
        draw(p(name))
        out["paths"].append(p(name))
    return out


if __name__ == "__main__":
    import sys
    import time
    folder = sys.argv[1] if len(sys.argv) > 1 else "docs/img"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    t0 = time.time()
    res = digits_figures(folder, steps, log=lambda r: print(
        f"step {r['step']:>6}  loss {r['loss']:.2f}  recon {r['recon']:.2f}  kl {r['kl']:.2f}", flush=True))
    for kind in ("vae", "cvae"):
        print(kind, {k: {q: round(v, 3) for q, v in d.items()} for k, d in res["history"][kind].items()})
    print("\n".join(res["paths"]), f"\n{time.time() - t0:.0f} s")
