#!/usr/bin/env python
"""Where each GAN loss pushes the generated samples: D's surface and the field −∂L_G/∂x on ring-8.

The generator only ever sees D through the gradient of its loss at its own samples,

    −∂L_G/∂x = −(∂L_G/∂a)·∇ₓa,        a = D(x) (the logit),

which pygan gives as ``-D.backward(g)`` after ``_, g = loss.g_loss(D(x))`` (D.backward returns
+∂L_G/∂x; the arrows are its negative, the direction a gradient step moves a sample). For each
loss in ``pygan.losses.names()`` one GAN is trained on ring-8 (benchmarks/WORKLOADS.md Q1) and, at a few
steps, a panel shows D's surface as filled contours (σ(a) for the two sigmoid losses, the raw
output a for the others; red = high = "real"), the real data (black), the generated points
(orange) and the arrows at generated points. One row per loss, one column per snapshot.

Settings, the same for every loss: G z(2) → 64 → 64 → 64 → 2 (ReLU), D 2 → 64 → 64 → 64 → 1
(LeakyReLU 0.2), batch 128, Adam(5e-4, (0.5, 0.9)) for both, five D steps per G step (the WGAN
recipe, used for all five so that D is close to its optimum for the current G — the regime the
theory describes; with one D step per G step and β = (0.5, 0.999) the hinge and Wasserstein
runs had not found the ring after 3,000 steps). ``wasserstein`` needs a Lipschitz constraint:
it gets the gradient penalty of ``pygan.penalties`` with λ = 0.1 (the value the WGAN-GP
authors' toy code uses; benchmarks/WORKLOADS.md). Arrows are scaled per panel (the 90th-percentile arrow
is drawn 0.25 long), so lengths compare points within a panel; the panel title gives the mean
|−∂L_G/∂x| per sample.

Printed and returned per loss and snapshot: modes / %HQ / KL (``pygan.metrics.mode_metrics`` on
2,500 samples), the mean |−∂L_G/∂x| per sample, the share of arrows pointing towards the
nearest mode (cosine > 0), and the median relative error of the field against central finite
differences of L_G (float64 copy of D) at 16 generated points.

    python examples/gradient_field.py [--out examples/out] [--quick] [--seed 0] [--steps N]
"""
from __future__ import annotations

import copy
import time

import numpy as np

import pygan
from pygan import data, losses, metrics, models, optim, penalties

import _lab  # the scripts' shared command line and figure saving (examples/_lab.py)

SIGMOID = ("minimax", "nonsaturating")
GP_LAMBDA = 0.1
N_CRITIC = 5
LIM = 1.6


def field(D, loss, x):
    """−∂L_G/∂x per sample at the points x (N, 2): −N·D.backward(g), g = g_loss(D(x))."""
    _, g = loss.g_loss(D(x))
    gx = D.backward(g)
    D.zero_grad()
    return -gx * x.dtype.type(x.shape[0])


def finite_difference_check(D, loss, x, h=1e-6):
    """Median relative error of −∂ℓ/∂x (ℓ(x) = per-sample g_loss) vs central differences, float64."""
    D64 = copy.deepcopy(D).double()
    x = x.astype(np.float64)
    f = field(D64, loss, x)
    errs = []
    for i in range(len(x)):
        fd = np.empty(2)
        for j in range(2):
            e = np.zeros((1, 2))
            e[0, j] = h
            lp = loss.g_loss(D64(x[i:i + 1] + e))[0]
            lm = loss.g_loss(D64(x[i:i + 1] - e))[0]
            fd[j] = -(lp - lm) / (2 * h)
        errs.append(np.linalg.norm(f[i] - fd) / max(np.linalg.norm(fd), 1e-300))
    return float(np.median(errs))


def surface(D, loss_name, n=100):
    xs = np.linspace(-LIM, LIM, n)
    gx, gy = np.meshgrid(xs, xs)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    a = D(pts).astype(np.float64).reshape(n, n)
    if loss_name in SIGMOID:
        a = 1.0 / (1.0 + np.exp(-a))
    return xs, a


def train(loss_name, steps, snaps, width, batch, lr, seed, n_arrows, n_fd, n_critic=N_CRITIC, betas=(0.5, 0.9)):
    pygan.manual_seed(seed)
    rng = np.random.default_rng(seed)
    eval_rng = np.random.default_rng(seed + 1000)
    toy = data.toy("ring-8")
    m = models.build("mlp", width=width)
    loss = losses.get(loss_name)
    opt_g = optim.Adam(m.G.parameters(), lr=lr, betas=betas)
    opt_d = optim.Adam(m.D.parameters(), lr=lr, betas=betas)
    z_eval = m.sample_z(2500, eval_rng)
    out = []
    for step in range(1, steps + 1):
        for _ in range(n_critic):
            real = data.ring(batch, rng)
            fake = m.g_forward(m.sample_z(batch, rng))
            opt_d.zero_grad()
            logits = m.D(np.concatenate([real, fake]))    # rows are independent: one pass for both
            _, g_real, g_fake = loss.d_loss(logits[:batch], logits[batch:])
            m.D.backward(np.concatenate([g_real, g_fake]))
            if loss_name == "wasserstein":
                penalties.gradient_penalty(m.D, real, fake, lam=GP_LAMBDA, rng=rng)
            opt_d.step()
        opt_g.zero_grad()
        _, g = loss.g_loss(m.D(fake))
        m.G.backward(m.D.backward(g))
        m.D.zero_grad()
        opt_g.step()
        if step in snaps:
            samples = m.G(z_eval)
            q = metrics.mode_metrics(samples, toy.means, toy.std)
            pts = samples[:n_arrows]
            arrows = field(m.D, loss, pts)
            nearest = toy.means[np.argmin(((pts[:, None, :] - toy.means[None]) ** 2).sum(-1), axis=1)]
            toward = np.sum(arrows * (nearest - pts), axis=1) > 0
            xs, surf = surface(m.D, loss_name)
            out.append(dict(step=step, modes=q["modes"], hq_percent=q["hq_percent"], kl=q["kl"],
                            mean_grad=float(np.linalg.norm(arrows, axis=1).mean()),
                            toward_nearest_mode=float(100.0 * toward.mean()),
                            fd_median_rel_err=finite_difference_check(m.D, loss, pts[:n_fd]),
                            samples=samples, pts=pts, arrows=arrows, xs=xs, surface=surf))
    return out


def main(argv=None) -> dict:
    ap = _lab.parser(__doc__)
    ap.add_argument("--steps", type=int, default=None, help="G steps per loss (default 1000; quick 12)")
    args = ap.parse_args(argv)
    steps = args.steps or (12 if args.quick else 1000)
    width, batch, lr = (16, 64, 5e-4) if args.quick else (64, 128, 5e-4)
    snaps = sorted({max(1, round(steps * f)) for f in ((0.02, 0.1, 0.3, 1.0) if not args.quick else (0.5, 1.0))})
    n_arrows, n_fd = (60, 8) if args.quick else (150, 16)
    names = losses.names()
    t0 = time.perf_counter()
    runs = {name: train(name, steps, set(snaps), width, batch, lr, args.seed, n_arrows, n_fd) for name in names}
    seconds = time.perf_counter() - t0

    print(f"ring-8, MLP width {width}, batch {batch}, Adam({lr:g}, (0.5, 0.9)), {N_CRITIC} D steps per G step, "
          f"{steps} G steps per loss ({seconds:.1f} s for all {len(names)}); wasserstein with gradient "
          f"penalty λ = {GP_LAMBDA}")
    print(f"{'loss':14s} {'step':>6s}  modes   %HQ     KL   mean|−∂L_G/∂x|  →nearest mode  FD rel err")
    table = {}
    for name, snapsl in runs.items():
        table[name] = []
        for s in snapsl:
            print(f"{name:14s} {s['step']:6d}  {s['modes']:3d}/8 {s['hq_percent']:5.1f}  {s['kl']:5.2f}"
                  f"   {s['mean_grad']:12.3e}   {s['toward_nearest_mode']:9.0f}%     {s['fd_median_rel_err']:.1e}")
            table[name].append({k: s[k] for k in ("step", "modes", "hq_percent", "kl", "mean_grad",
                                                  "toward_nearest_mode", "fd_median_rel_err")})

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    real = data.ring(500, np.random.default_rng(args.seed + 7))
    nr, nc = len(names), len(snaps)
    fig, axes = plt.subplots(nr, nc, figsize=(3.3 * nc, 3.4 * nr), dpi=90, squeeze=False)
    for r, name in enumerate(names):
        for c, s in enumerate(runs[name]):
            ax = axes[r, c]
            v = s["surface"]
            if name in SIGMOID:
                levels = np.linspace(0.0, 1.0, 21)
            else:
                lo, hi = np.percentile(v, [1, 99])
                levels = np.linspace(lo, hi if hi > lo else lo + 1e-6, 21)
            ax.contourf(s["xs"], s["xs"], np.clip(v, levels[0], levels[-1]), levels=levels, cmap="RdBu_r",
                        alpha=0.8)
            ax.scatter(real[:, 0], real[:, 1], s=2, c="black", linewidths=0)
            smp = s["samples"][:600]
            ax.scatter(smp[:, 0], smp[:, 1], s=2, c="tab:orange", linewidths=0, alpha=0.8)
            p, d = s["pts"], s["arrows"]
            norms = np.linalg.norm(d, axis=1)
            ref = np.percentile(norms, 90) if np.any(norms > 0) else 1.0
            d = d / max(ref, 1e-300) * 0.25                    # the 90th-percentile arrow is 0.25 long
            ax.quiver(p[:, 0], p[:, 1], d[:, 0], d[:, 1], color="darkgreen", angles="xy", scale_units="xy",
                      scale=1.0, width=0.006, headwidth=3.5)
            ax.set_xlim(-LIM, LIM)
            ax.set_ylim(-LIM, LIM)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"step {s['step']}: {s['modes']}/8, HQ {s['hq_percent']:.0f}%, "
                         f"|∇| {s['mean_grad']:.1e}", fontsize=8)
            if c == 0:
                what = "σ(a)" if name in SIGMOID else "a"
                ax.set_ylabel(f"{name}\n(surface: {what})", fontsize=9)
    fig.suptitle("D's surface (red = high) and −∂L_G/∂x at generated points (green), ring-8", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    path = _lab.save_figure(fig, args.out, "gradient_field")
    return {"losses": names, "snapshots": snaps, "table": table, "seconds": seconds, "figure": path}


if __name__ == "__main__":
    main()
