#!/usr/bin/env python
"""Mode collapse of the plain GAN on ring-8, as a sequence of scatter plots over training.

Mode collapse: G maps most of its latent space onto one point (or a few), so the samples cover
one mode — or none — instead of eight. It is a failure of the *alternating* optimisation: for a
fixed D, the generator's best response is to put all its mass where D(x) is largest, a single
point; if G moves much faster than D can react, it keeps chasing D's current maximum instead of
spreading out — "the Helvetica scenario" that Goodfellow et al. (2014, §6) warn of: "G must not
be trained too much without updating D".

The setting is chosen to make that happen, and says so: W1's networks (G z(2) → 128³ → 2 ReLU,
D 2 → 128³ → 1 LeakyReLU 0.2), the non-saturating loss, batch 64, one D step per G step, Adam
with β = (0.5, 0.999) and a generator learning rate ten times the discriminator's
(G 1e-3, D 1e-4). ``--g-lr``/``--d-lr``/``--loss``/``--batch`` change it (equal rates of 2e-3,
for example, let the same networks cover the ring).

Printed and returned at every snapshot: ``pygan.metrics.mode_metrics`` on 2,500 samples
(modes covered by high-quality points, % high quality = within 3σ of a mode, KL of the mode
histogram to uniform) and the spread of the samples (RMS distance to their centroid: 1.0 for
the ring itself, ≈ 0 for a collapsed G), so a collapse is visible even when no sample is
within 3σ of a mode.

    python examples/mode_collapse.py [--out examples/out] [--quick] [--seed 0] [--steps N]
"""
from __future__ import annotations

import time

import numpy as np

import pygan
from pygan import data, losses, metrics, models, optim

import _lab  # the scripts' shared command line and figure saving (examples/_lab.py)


def spread(x):
    """RMS distance of the points (N, 2) to their centroid."""
    c = x - x.mean(axis=0)
    return float(np.sqrt((c * c).sum(axis=1).mean()))


def main(argv=None) -> dict:
    ap = _lab.parser(__doc__)
    ap.add_argument("--steps", type=int, default=None, help="G steps (default 3000; quick 60)")
    ap.add_argument("--loss", default="nonsaturating", choices=("minimax", "nonsaturating"))
    ap.add_argument("--g-lr", type=float, default=1e-3)
    ap.add_argument("--d-lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args(argv)
    steps = args.steps or (60 if args.quick else 3000)
    width = 32 if args.quick else 128
    n_snap = 8
    snaps = sorted({max(1, round(steps * (k + 1) / n_snap)) for k in range(n_snap)})
    every = max(1, steps // 60)                     # the curves below the scatter plots

    pygan.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    toy = data.toy("ring-8")
    m = models.build("mlp", width=width)
    loss = losses.get(args.loss)
    opt_g = optim.Adam(m.G.parameters(), lr=args.g_lr, betas=(0.5, 0.999))
    opt_d = optim.Adam(m.D.parameters(), lr=args.d_lr, betas=(0.5, 0.999))
    z_eval = m.sample_z(2500, np.random.default_rng(args.seed + 1000))
    b = args.batch
    rows, curve, shots = [], [], {}
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        real = data.ring(b, rng)
        fake = m.g_forward(m.sample_z(b, rng))
        opt_d.zero_grad()
        logits = m.D(np.concatenate([real, fake]))       # rows are independent: one pass for both
        _, g_real, g_fake = loss.d_loss(logits[:b], logits[b:])
        m.D.backward(np.concatenate([g_real, g_fake]))
        opt_d.step()
        opt_g.zero_grad()
        _, g = loss.g_loss(m.D(fake))                     # G's step reuses the D step's fake batch
        m.G.backward(m.D.backward(g))
        m.D.zero_grad()
        opt_g.step()
        if step % every == 0 or step in snaps:
            s = m.G(z_eval)
            q = metrics.mode_metrics(s, toy.means, toy.std)
            q = dict(step=step, modes=q["modes"], hq_percent=q["hq_percent"], kl=q["kl"], spread=spread(s))
            curve.append(q)
            if step in snaps:
                rows.append(q)
                shots[step] = s
    seconds = time.perf_counter() - t0

    print(f"ring-8, {args.loss} GAN, MLP width {width}, batch {b}, Adam β=(0.5, 0.999), "
          f"G lr {args.g_lr:g}, D lr {args.d_lr:g}, {steps} steps ({seconds:.1f} s)")
    print(f"{'step':>6s}  modes   %HQ     KL   spread")
    for q in rows:
        print(f"{q['step']:6d}  {q['modes']:3d}/8 {q['hq_percent']:5.1f}  {q['kl']:5.2f}   {q['spread']:.3f}")
    collapsed = [q["step"] for q in curve if q["spread"] < 0.25]
    print(f"snapshots with the samples' spread < 0.25 (the ring's is 1.0): "
          f"{sum(q['spread'] < 0.25 for q in rows)} of {len(rows)}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    real = data.ring(1000, np.random.default_rng(args.seed + 7))
    ncol = 4
    nrow = -(-len(rows) // ncol)
    fig = plt.figure(figsize=(3.2 * ncol, 3.25 * nrow + 2.6), dpi=90)
    gs = fig.add_gridspec(nrow + 1, ncol, height_ratios=[3.25] * nrow + [2.6])
    for i, q in enumerate(rows):
        ax = fig.add_subplot(gs[i // ncol, i % ncol])
        s = shots[q["step"]]
        ax.scatter(real[:, 0], real[:, 1], s=10, c="0.35", linewidths=0)
        ax.scatter(s[:, 0], s[:, 1], s=3, c="tab:orange", alpha=0.5, linewidths=0)
        ax.set_xlim(-1.8, 1.8)
        ax.set_ylim(-1.8, 1.8)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"step {q['step']}: {q['modes']}/8 modes, HQ {q['hq_percent']:.0f}%\n"
                     f"KL {q['kl']:.2f}, spread {q['spread']:.2f}", fontsize=8)
    ax = fig.add_subplot(gs[nrow, :])
    st = [q["step"] for q in curve]
    ax.plot(st, [q["spread"] for q in curve], color="tab:orange", label="spread (RMS to centroid; ring = 1)")
    ax.plot(st, [q["hq_percent"] / 100 for q in curve], color="tab:green", label="high-quality fraction")
    ax.plot(st, [q["modes"] / 8 for q in curve], color="black", lw=0.8, ls="--", label="modes / 8")
    for q in rows:
        ax.axvline(q["step"], color="0.85", lw=0.6, zorder=0)
    ax.set_ylim(-0.05, 1.1)
    ax.set_xlabel("G step")
    ax.legend(fontsize=8, loc="upper right", ncol=3)
    fig.suptitle(f"ring-8, {args.loss} loss, G lr {args.g_lr:g} vs D lr {args.d_lr:g}: "
                 f"generated (orange) vs real (grey dots: 8 modes, std 0.01)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = _lab.save_figure(fig, args.out, "mode_collapse")
    return {"snapshots": rows, "curve": curve, "collapsed_steps": collapsed, "seconds": seconds,
            "settings": dict(loss=args.loss, g_lr=args.g_lr, d_lr=args.d_lr, batch=b, width=width, steps=steps),
            "figure": path}


if __name__ == "__main__":
    main()
