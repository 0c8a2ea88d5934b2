"""Plots of a run (PNG, matplotlib's Agg backend — no display needed).

* :func:`image_grid` — a grid of images (N, C, H, W) in [−1, 1].
* :func:`scatter_2d` — generated vs real points in 2-D, over D's output surface, with the
  generator's gradient field −∂L_G/∂x drawn as arrows at generated points.
* :func:`histogram_1d` — generated vs real histogram in 1-D, with D's output curve.
* :func:`interpolation_paths` — latent interpolations of a 2-D generator drawn as paths.
* :func:`curves` — a GAN run's losses, D's outputs and per-parameter gradient norms from metrics.jsonl
  records (one PNG each: losses.png, d_outputs.png, grad_norms.png, quality.png).

Every function takes host NumPy arrays and a path, writes the file and closes its figure.
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..backend import to_host
from ..files import atomic_write

__all__ = ["image_grid", "tile_images", "scatter_2d", "histogram_1d", "interpolation_paths", "latent_interpolation",
           "curves", "grad_norm_figure", "smooth"]


def _plt():
    import matplotlib
    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    """Write the figure as PNG atomically (a full disk leaves no partial file) and close it."""
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=fig.dpi))
    finally:
        _plt().close(fig)


def tile_images(images, nrow: int | None = None, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile (N, C, H, W) images in [−1, 1] into one (rows·(H+pad)+pad, cols·(W+pad)+pad[, 3]) array
    in [0, 1] (grey for C = 1, RGB for C = 3), ``nrow`` images per row (default ⌈√N⌉), the gaps
    filled with ``pad_value``."""
    x = np.asarray(to_host(images), dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"tile_images: expected images (N, 1 or 3, H, W), got shape {x.shape}")
    n, c, h, w = x.shape
    cols = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    x = np.clip((x + 1.0) / 2.0, 0.0, 1.0)
    out = np.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), pad_value, dtype=np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        out[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = x[i]
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def image_grid(images, path, nrow: int | None = None, title: str | None = None):
    """Save (N, C, H, W) images in [−1, 1] as one grid PNG.

    Small grey images (H ≤ 16, the 8×8 digits) are drawn as dark ink on white paper, smoothed
    (bicubic) at about 40 px each — the way the eye reads digits; larger ones (MNIST) as white
    on black, pixel for pixel (nearest), like torchvision's ``make_grid``.
    """
    plt = _plt()
    x = np.asarray(to_host(images))
    small = x.ndim == 4 and x.shape[1] == 1 and x.shape[2] <= 16
    tile = tile_images(x, nrow, pad=1 if small else 2, pad_value=0.0 if small else 1.0)
    hpx, wpx = tile.shape[:2]
    per = 40.0 / x.shape[-1] if small else 1.0            # display pixels per image pixel
    scale = max(per, min(4.0, 480.0 / max(hpx, wpx))) if not small else per
    fig = plt.figure(figsize=(wpx * scale / 100.0, hpx * scale / 100.0 + (0.3 if title else 0.0)), dpi=100)
    ax = fig.add_axes([0, 0, 1, hpx * scale / 100.0 / fig.get_figheight()])
    ax.imshow(tile, cmap="gray_r" if small else "gray", vmin=0.0, vmax=1.0,
              interpolation="bicubic" if small else "nearest")
    ax.set_axis_off()
    if title:
        fig.text(0.5, 1.0 - 0.15 / fig.get_figheight(), title, ha="center", va="center", fontsize=9)
    _save(fig, path)


def scatter_2d(fake, path, real=None, surface=None, arrows=None, title: str | None = None,
               surface_label: str = "D(x)", means=None):
    """Generated points ``fake`` (N, 2) and ``real`` (M, 2) in the data's coordinates.

    surface  optional (xs (W,), ys (H,), values (H, W)): D's output on a grid, drawn as filled
             contours under the points
    arrows   optional (points (K, 2), directions (K, 2)): −∂L_G/∂x at generated points
    means    optional (K, 2) mode centres, drawn as crosses
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    if surface is not None:
        xs, ys, v = surface
        cs = ax.contourf(xs, ys, v, levels=30, cmap="RdBu_r", alpha=0.75)
        fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.04, label=surface_label)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=3, c="black", alpha=0.3, label="real", linewidths=0)
    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="tab:orange", alpha=0.6, label="generated", linewidths=0)
    if means is not None:
        ax.scatter(means[:, 0], means[:, 1], marker="+", s=40, c="black", linewidths=0.8, label="modes")
    if arrows is not None:
        p, d = arrows
        ok = np.all(np.isfinite(d), axis=1)
        if ok.any():
            ax.quiver(p[ok, 0], p[ok, 1], d[ok, 0], d[ok, 1], color="tab:green", angles="xy",
                      width=0.003, alpha=0.8, label="−∂L_G/∂x")
    if surface is not None:
        ax.set_xlim(surface[0][0], surface[0][-1])
        ax.set_ylim(surface[1][0], surface[1][-1])
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def histogram_1d(fake, path, real=None, curve=None, pdf=None, title: str | None = None,
                 curve_label: str = "D(x)"):
    """1-D samples (N,) or (N, 1): histograms of generated (and real) points, the true density
    ``pdf`` = (xs, p(xs)) if known, and D's output ``curve`` = (xs, D(xs)) on a second axis."""
    plt = _plt()
    fake = np.asarray(to_host(fake)).reshape(-1)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    lo, hi = np.nanmin(fake), np.nanmax(fake)
    if real is not None:
        real = np.asarray(to_host(real)).reshape(-1)
        lo, hi = min(lo, real.min()), max(hi, real.max())
    if curve is not None:
        lo, hi = min(lo, curve[0][0]), max(hi, curve[0][-1])
    bins = np.linspace(lo, hi, 80) if np.isfinite(lo) and np.isfinite(hi) and hi > lo else 40
    if real is not None:
        ax.hist(real, bins=bins, density=True, alpha=0.4, color="black", label="real")
    ax.hist(fake[np.isfinite(fake)], bins=bins, density=True, alpha=0.5, color="tab:orange", label="generated")
    if pdf is not None:
        ax.plot(pdf[0], pdf[1], color="black", lw=1, label="p_data")
    ax.set_ylabel("density")
    if curve is not None:
        ax2 = ax.twinx()
        ax2.plot(curve[0], curve[1], color="tab:blue", lw=1.5, label=curve_label)
        ax2.set_ylabel(curve_label)
    ax.legend(loc="upper left", fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def interpolation_paths(paths, path, real=None, title: str | None = None):
    """2-D generator outputs along latent interpolations: ``paths`` (R, S, 2), one line per row."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=3, c="black", alpha=0.2, linewidths=0)
    for r in range(paths.shape[0]):
        ax.plot(paths[r, :, 0], paths[r, :, 1], "-o", ms=2, lw=1)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def smooth(y, window: int):
    """Trailing moving average of ``y`` over ``window`` points (NaN-free input)."""
    y = np.asarray(to_host(y), dtype=np.float64)
    if window <= 1 or len(y) < 2:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    out = np.empty_like(y)
    k = np.arange(1, len(y) + 1)
    lo = np.maximum(k - window, 0)
    out[:] = (c[k] - c[lo]) / (k - lo)
    return out


def _series(records, key):
    s = [(r["step"], r[key]) for r in records if key in r and r[key] is not None]
    if not s:
        return None, None
    a = np.array(s, dtype=np.float64)
    return a[:, 0], a[:, 1]


def grad_norm_figure(records, path, title: str = "") -> bool:
    """grad_norms.png: ‖∂L/∂θ‖ of every parameter over the steps it was logged at, one panel per
    network (the first part of the parameter names: G and D of a GAN, the encoder, latent head
    and decoder of a VAE), log scale. Returns False (and writes nothing) when no record has norms."""
    names = []
    for r in records:
        for k in r.get("grad_norm", {}):
            if k not in names:
                names.append(k)
    if not names:
        return False
    plt = _plt()
    nets = list(dict.fromkeys(k.split(".", 1)[0] for k in names))
    fig, axes = plt.subplots(1, len(nets), figsize=(6 * len(nets), 4.5), dpi=100, sharex=True, squeeze=False)
    for ax, net in zip(axes[0], nets):
        for k in names:
            if not k.startswith(net + "."):
                continue
            s = [(r["step"], r["grad_norm"][k]) for r in records if k in r.get("grad_norm", {})]
            a = np.array(s, dtype=np.float64)
            y = smooth(a[:, 1], max(1, len(a) // 200))   # logged every log_every steps
            ax.plot(a[:, 0], np.maximum(y, 1e-30), lw=0.9, label=k[len(net) + 1:])
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"‖∂L/∂θ‖ of {net}'s parameters", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6, ncol=2)
    if title:
        fig.suptitle(f"{title} — gradient norms", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    return True


def latent_interpolation(model, path, rng, rows: int = 8, steps: int = 10, title: str | None = None):
    """An image grid of G(z) along slerp paths between two prior draws, one path per row
    (:func:`pygan.evaluation.sampling.interpolate_latents`); a conditional model keeps class
    r mod K along row r, so the row shows the latent space's style at a fixed class."""
    from ..evaluation.sampling import generate, interpolate_latents
    z = interpolate_latents(model, rows, steps, rng)
    nc = int(getattr(model, "num_classes", 0) or 0)
    labels = np.repeat(np.arange(rows) % nc, steps).astype(np.int64) if nc else None
    x = generate(model, rows * steps, None, labels=labels, z=z)
    image_grid(x, path, nrow=steps, title=title or "latent interpolation (slerp), one path per row")


def curves(records, folder, title: str = "") -> list:
    """Write losses.png, d_outputs.png, grad_norms.png (and quality.png when there are
    evaluation records) into ``folder`` from metrics.jsonl records; returns the paths."""
    plt = _plt()
    records = [r for r in records if "step" in r and "error" not in r]
    if not records:
        return []
    written = []
    win = max(1, len(records) // 200)

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for key, color in (("d_loss", "tab:blue"), ("g_loss", "tab:orange"), ("penalty", "tab:green"),
                       ("d_loss.real", "tab:cyan"), ("d_loss.fake", "tab:purple")):
        x, y = _series(records, key)
        if x is None or (key == "penalty" and not np.any(y)):
            continue
        lw = 1.5 if key in ("d_loss", "g_loss") else 0.8
        ax.plot(x, smooth(y, win), color=color, lw=lw, label=key)
    ax.set_xlabel("G step")
    ax.set_ylabel(f"loss (moving average of {win})" if win > 1 else "loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"{title} — losses".strip(" —"), fontsize=9)
    fig.tight_layout()
    p = os.path.join(folder, "losses.png")
    _save(fig, p)
    written.append(p)

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for key, color in (("D_real_prob", "tab:blue"), ("D_fake_prob", "tab:orange"),
                       ("D_real_score", "tab:blue"), ("D_fake_score", "tab:orange")):
        x, y = _series(records, key)
        if x is not None:
            ax.plot(x, smooth(y, win), color=color, lw=1.2,
                    label={"D_real_prob": "mean D(x) = σ(logit)", "D_fake_prob": "mean D(G(z)) = σ(logit)",
                           "D_real_score": "mean D(x) (raw score)",
                           "D_fake_score": "mean D(G(z)) (raw score)"}[key])
    ax.set_xlabel("G step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"{title} — discriminator outputs".strip(" —"), fontsize=9)
    fig.tight_layout()
    p = os.path.join(folder, "d_outputs.png")
    _save(fig, p)
    written.append(p)

    p = os.path.join(folder, "grad_norms.png")
    if grad_norm_figure(records, p, title):
        written.append(p)

    evals = [r for r in records if isinstance(r.get("eval"), dict)]
    if evals:
        constants = ("total_modes", "n", "real_vs_real_n", "judge_heldout_accuracy", "real_vs_real_fid")
        keys = [k for k, v in evals[-1]["eval"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                and k not in constants]
        if keys:
            fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.5), dpi=100, squeeze=False)
            for ax, k in zip(axes[0], keys):
                s = [(r["step"], r["eval"][k]) for r in evals if k in r["eval"]]
                a = np.array(s, dtype=np.float64)
                ax.plot(a[:, 0], a[:, 1], "-o", ms=3)
                floor = evals[-1]["eval"].get("real_vs_real_fid")
                if k == "fid" and isinstance(floor, (int, float)):
                    ax.axhline(floor, color="gray", ls="--", lw=1, label="real vs real (noise floor)")
                    ax.legend(fontsize=7)
                ax.set_title(k, fontsize=9)
                ax.set_xlabel("G step")
                ax.grid(alpha=0.3)
            fig.tight_layout()
            p = os.path.join(folder, "quality.png")
            _save(fig, p)
            written.append(p)
    return written
