#!/usr/bin/env python
"""The optimal discriminator: for a fixed G, D*(x) = p_data(x) / (p_data(x) + p_g(x)).

For fixed G the discriminator maximises

    V(D, G) = E_{x~p_data} log D(x) + E_{x~p_g} log(1 − D(x))
            = ∫ [p_data(x) log D(x) + p_g(x) log(1 − D(x))] dx,

and the integrand a·log y + b·log(1 − y) is largest at y = a/(a + b), point by point. So the
best D is D* = p_data/(p_data + p_g) (Goodfellow et al. 2014, Prop. 1).

Here both densities are known: p_data is the 1-D Gaussian mixture of ``pygan.data``
(means ±2, std 0.5) and p_g is a fixed Gaussian N(1, 1.5²) — no generator is trained. A pygan
MLP discriminator (1 → 64 → 64 → 1, LeakyReLU 0.2) is trained with pygan's Adam on the binary
cross-entropy ``losses.get("minimax").d_loss`` (= −V) with fresh samples from both densities at
every step, and compared with D* on a grid.

Printed and returned: max |D − D*| over the bulk of the mass (the central 99% of
m = (p_data + p_g)/2), the m-weighted mean |D − D*|, and D's loss −V(D) (integrated on the
grid) next to its minimum −V(D*) = log 4 − 2·JS(p_data ‖ p_g).

    python examples/optimal_discriminator.py [--out examples/out] [--quick] [--seed 0]
"""
from __future__ import annotations

import time

import numpy as np

import pygan
from pygan import data, losses, metrics, models, optim

import _lab  # the scripts' shared command line and figure saving (examples/_lab.py)

# p_data: the mixture of pygan.data (defaults); p_g: a fixed Gaussian
DATA = dict(means=(-2.0, 2.0), stds=0.5)
G_MEAN, G_STD = 1.0, 1.5


def p_data(x):
    return data.gaussian_mixture_1d_pdf(x, **DATA)


def p_g(x):
    return data.gaussian_mixture_1d_pdf(x, means=(G_MEAN,), stds=G_STD)


def sample_g(n, rng):
    return (G_MEAN + G_STD * rng.standard_normal((n, 1))).astype(np.float32)


def log_sigmoid(a):
    """log σ(a) = −softplus(−a), accurate in both tails."""
    return -np.logaddexp(0.0, -a)


def value(logits, pd, pg, w):
    """V(D, G) = ∫ p_data log D + p_g log(1 − D) by quadrature weights w, D = σ(logits)."""
    return float(w @ (pd * log_sigmoid(logits) + pg * log_sigmoid(-logits)))


def d_logits(D, x):
    """D's logits (float64) at the grid points x (G,)."""
    return D(x.reshape(-1, 1).astype(np.float32)).astype(np.float64).reshape(-1)


def bulk_interval(x, m, w, mass=0.99):
    """The central ``mass`` of the density m on the grid x: (lo, hi)."""
    cdf = np.cumsum(w * m)
    cdf /= cdf[-1]
    tail = (1.0 - mass) / 2.0
    return float(x[np.searchsorted(cdf, tail)]), float(x[np.searchsorted(cdf, 1.0 - tail)])


def train_discriminator(steps, batch, width, lr, seed, snapshot_steps=(), grid=None):
    """Train D on p_data (label 1) vs p_g (label 0) with the minimax D loss (BCE).

    Real and generated batches go through D as one batch (the MLP treats rows independently), so
    one forward/backward serves both halves of d_loss. The learning rate decays linearly to
    lr/20 over the second half of training, which averages out the minibatch noise.
    Returns D and {step: D's logits on ``grid``} for the snapshot steps.
    """
    pygan.manual_seed(seed)
    rng = np.random.default_rng(seed)
    D = models.mlp_discriminator(data_dim=1, width=width, depth=2)
    opt = optim.Adam(D.parameters(), lr=lr, betas=(0.9, 0.999))
    loss = losses.get("minimax")
    snaps = {}
    for step in range(1, steps + 1):
        if step > steps // 2:
            opt.lr = lr * (1.0 - 0.95 * (step - steps // 2) / (steps - steps // 2))
        real = data.gaussian_mixture_1d(batch, rng, **DATA)
        fake = sample_g(batch, rng)
        opt.zero_grad()
        logits = D(np.concatenate([real, fake]))
        _, g_real, g_fake = loss.d_loss(logits[:batch], logits[batch:])
        D.backward(np.concatenate([g_real, g_fake]))
        opt.step()
        if step in snapshot_steps and grid is not None:
            snaps[step] = d_logits(D, grid)
    return D, snaps


def main(argv=None) -> dict:
    ap = _lab.parser(__doc__)
    args = ap.parse_args(argv)
    steps, batch, width = (1500, 128, 32) if args.quick else (6000, 512, 64)
    lr = 3e-3 if args.quick else 2e-3

    x = np.linspace(-8.0, 10.0, 3601)                # uniform grid; trapezoid weights
    h = x[1] - x[0]
    w = np.full_like(x, h)
    w[0] = w[-1] = h / 2
    pd, pg = p_data(x), p_g(x)
    d_star = pd / (pd + pg)
    lo, hi = bulk_interval(x, 0.5 * (pd + pg), w)
    bulk = (x >= lo) & (x <= hi)

    t0 = time.perf_counter()
    snap_steps = sorted({max(1, steps // 50), steps // 10, steps // 3, steps})
    _, snaps = train_discriminator(steps, batch, width, lr, args.seed, snap_steps, x)
    seconds = time.perf_counter() - t0
    a = snaps[steps]
    d_trained = np.exp(log_sigmoid(a))

    err = np.abs(d_trained - d_star)
    m = 0.5 * (pd + pg)
    js = metrics.js_divergence_1d(pd, pg, x)
    res = {
        "steps": steps,
        "bulk": (lo, hi),
        "max_abs_err_bulk": float(err[bulk].max()),
        "mean_abs_err": float(w @ (m * err) / (w @ m)),
        "d_loss_trained": -value(a, pd, pg, w),        # −V(D)
        "d_loss_optimal": -value(np.log(pd) - np.log(pg), pd, pg, w),   # −V(D*), logit of D* = log(pd/pg)
        "log4_minus_2js": float(np.log(4.0) - 2.0 * js),
        "js": js,
        "seconds": seconds,
    }
    res["max_abs_err_snapshots"] = {s: float(np.abs(np.exp(log_sigmoid(v)) - d_star)[bulk].max())
                                    for s, v in snaps.items()}

    print(f"p_data = mixture of N(±2, 0.5²); p_g = N({G_MEAN}, {G_STD}²); D: MLP 1→{width}→{width}→1, "
          f"Adam, {steps} steps of {batch}+{batch} samples ({seconds:.1f} s)")
    print(f"bulk of the mass (central 99% of (p_data + p_g)/2): [{lo:.2f}, {hi:.2f}]")
    for s, e in res["max_abs_err_snapshots"].items():
        print(f"  step {s:5d}: max |D − D*| over the bulk = {e:.4f}")
    print(f"max |D − D*| over the bulk      = {res['max_abs_err_bulk']:.4f}")
    print(f"mean |D − D*| weighted by m     = {res['mean_abs_err']:.4f}")
    print(f"D's loss −V(D) (grid integral)  = {res['d_loss_trained']:.5f}")
    print(f"its minimum −V(D*)              = {res['d_loss_optimal']:.5f}")
    print(f"log 4 − 2·JS(p_data ‖ p_g)      = {res['log4_minus_2js']:.5f}   (JS = {js:.5f})")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(3, 1, figsize=(7, 8.5), sharex=True, dpi=110,
                             gridspec_kw=dict(height_ratios=[1, 1.4, 0.8]))
    ax = axes[0]
    ax.plot(x, pd, color="black", label="p_data (mixture)")
    ax.plot(x, pg, color="tab:orange", label=f"p_g = N({G_MEAN:g}, {G_STD:g}²)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title("The optimal discriminator D* = p_data / (p_data + p_g)", fontsize=10)
    ax = axes[1]
    for s in snap_steps[:-1]:
        ax.plot(x, np.exp(log_sigmoid(snaps[s])), lw=0.8, alpha=0.35 + 0.5 * s / steps, color="tab:blue",
                label=(f"D after {', '.join(map(str, snap_steps[:-1]))} steps (darker = later)"
                       if s == snap_steps[0] else None))
    ax.plot(x, d_star, color="black", lw=2.2, ls="--", label="D* (closed form)")
    ax.plot(x, d_trained, color="tab:blue", lw=1.4, label=f"trained D ({steps} steps)")
    ax.set_ylabel("D(x)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(-6.0, 7.0)
    ax.legend(fontsize=8, loc="upper right")
    ax = axes[2]
    ax.plot(x, d_trained - d_star, color="tab:blue", lw=1)
    ax.axhline(0, color="black", lw=0.5)
    for ax_ in axes:
        ax_.axvspan(lo, hi, color="0.92", zorder=0)
    ax.set_ylabel("D − D*")
    ax.set_xlabel("x   (shaded: central 99% of (p_data + p_g)/2)")
    ax.set_title(f"max |D − D*| on the bulk = {res['max_abs_err_bulk']:.3f}, "
                 f"m-weighted mean = {res['mean_abs_err']:.4f}", fontsize=9)
    fig.tight_layout()
    path = _lab.save_figure(fig, args.out, "optimal_discriminator")
    res["figure"] = path
    return res


if __name__ == "__main__":
    main()
