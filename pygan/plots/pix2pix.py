"""Pictures of an image-to-image (pix2pix) run (PNG, matplotlib's Agg backend).

* :func:`translation_rows` — one row per example, one column per image kind (input | output |
  target, or input | L1 | cGAN | L1 + cGAN | target for the ablation), each column titled.
* :func:`curves` — losses.png of a run: the L1 term, the cGAN terms of G and D.

Images are host arrays (N, 1, H, W) in [−1, 1], drawn white on black pixel for pixel.
"""
from __future__ import annotations

import os

import numpy as np

from .figures import _plt, _save, _series, smooth, tile_images

__all__ = ["translation_rows", "curves"]


def translation_rows(columns, names, path, title: str | None = None, blocks: int = 1):
    """Save rows of examples: ``columns`` a list of K arrays (N, C, H, W) in [−1, 1] (column k is
    ``names[k]``), row i showing example i of every column; ``blocks`` > 1 sets that many groups
    of rows side by side (each with its column names)."""
    cols = [np.asarray(c, dtype=np.float32) for c in columns]
    if len(cols) != len(names) or not cols:
        raise ValueError(f"translation_rows: {len(cols)} columns but {len(names)} names")
    n = len(cols[0])
    if any(c.shape != cols[0].shape for c in cols):
        raise ValueError(f"translation_rows: columns differ in shape: {[c.shape for c in cols]}")
    k = len(cols)
    blocks = max(1, min(int(blocks), n))
    per = -(-n // blocks)
    tiles = []
    for b in range(blocks):
        part = [c[b * per:(b + 1) * per] for c in cols]
        m = len(part[0])
        if m < per:                                  # the last block: blank rows to the same height
            part = [np.concatenate([c, -np.ones((per - m,) + c.shape[1:], np.float32)]) for c in part]
        rows = np.stack(part, axis=1).reshape((per * k,) + cols[0].shape[1:])   # example by example
        tiles.append(tile_images(rows, nrow=k, pad=2, pad_value=1.0))
    gap = np.ones((tiles[0].shape[0], 8) + tiles[0].shape[2:], np.float32)
    tile = np.concatenate([t for pair in zip(tiles, [gap] * blocks) for t in pair][:-1], axis=1)
    plt = _plt()
    hpx, wpx = tile.shape[:2]
    scale = max(1.5, min(4.0, 560.0 / max(hpx, wpx)))
    width = max(wpx * scale / 100.0, 3.2 if title else 0.0)
    head = 0.5 if title else 0.25
    fig = plt.figure(figsize=(width, hpx * scale / 100.0 + head), dpi=100)
    frac_w = wpx * scale / 100.0 / width
    ax = fig.add_axes([(1 - frac_w) / 2, 0, frac_w, hpx * scale / 100.0 / fig.get_figheight()])
    ax.imshow(tile, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    top = hpx * scale / 100.0 / fig.get_figheight()
    block_w = tiles[0].shape[1]
    for b in range(blocks):
        x0 = b * (block_w + 8)
        for j, name in enumerate(names):
            xc = (x0 + 2 + (j + 0.5) * (block_w - 2) / k) / wpx
            fig.text((1 - frac_w) / 2 + xc * frac_w, top + 0.06 / fig.get_figheight(), name, ha="center",
                     va="bottom", fontsize=7)
    if title:
        fig.text(0.5, 1.0 - 0.12 / fig.get_figheight(), title, ha="center", va="center", fontsize=8)
    _save(fig, path)


def curves(records, folder, title: str = "") -> list:
    """losses.png of a pix2pix run: G's L1 term and cGAN term (left), D's loss and its halves
    (right, absent when D is not trained); returns the paths written."""
    recs = [r for r in records if "step" in r and "error" not in r]
    if not recs:
        return []
    plt, win = _plt(), max(1, len(recs) // 200)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    for ax, keys in ((a, (("l1", "L1 |y − G(x)| (per pixel)"), ("g_gan", "G's cGAN term"))),
                     (b, (("d_loss", "D loss (½(real + fake))"), ("d_loss.real", "real half"),
                          ("d_loss.fake", "fake half")))):
        for key, label in keys:
            xs, ys = _series(recs, key)
            if xs is not None:
                ax.plot(xs, smooth(ys, win), lw=1.2, label=label)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    a.set_ylabel("value" + (f" (moving average of {win})" if win > 1 else ""), fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = os.path.join(folder, "losses.png")
    _save(fig, path)
    return [path]
