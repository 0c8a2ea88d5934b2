#!/usr/bin/env python
"""The value of the game at the optimal discriminator: V(D*, G) = −log 4 + 2·JS(p_data ‖ p_g).

Put D* = p_data/(p_data + p_g) into V(D, G) = ∫ p_data log D + p_g log(1 − D) and write
m = (p_data + p_g)/2:

    V(D*, G) = ∫ p_data log(p_data / 2m) + p_g log(p_g / 2m)
             = −log 4 + KL(p_data ‖ m) + KL(p_g ‖ m) = −log 4 + 2·JS(p_data ‖ p_g),

so training G against the best D minimises the Jensen–Shannon divergence; its global minimum
−log 4 is reached exactly at p_g = p_data, and V(D*, G) → 0 (JS → log 2) as the supports part.

Checked numerically, with p_data the 1-D mixture of ``pygan.data`` (means ±2, std 0.5), for
two families of p_g indexed by a shift s:

* ``gaussian``: p_g = N(s, 0.5²), one Gaussian (a generator that covers at most one mode);
* ``shifted mixture``: p_g(x) = p_data(x − s), which equals p_data at s = 0.

V(D*, G) is integrated on a uniform grid (trapezoid rule) from the closed-form D*;
JS comes from ``pygan.metrics.js_divergence_1d``. Printed: the largest |V − (−log 4 + 2 JS)|.
Then, for a few shifts of the gaussian family, a pygan MLP D is trained (Adam, BCE =
``losses.get("minimax").d_loss``) and V(D_trained, G) — integrated on the same grid — is shown
approaching V(D*, G) from below (D* maximises V point by point, so V(D) ≤ V(D*) for every D).

    python examples/value_at_optimum.py [--out examples/out] [--quick] [--seed 0]
"""
from __future__ import annotations

import math
import time

import numpy as np

import pygan
from pygan import data, losses, metrics, models, optim

import _lab  # the scripts' shared command line and figure saving (examples/_lab.py)

DATA = dict(means=(-2.0, 2.0), stds=0.5)
G_STD = 0.5
LOG4 = math.log(4.0)


def p_data(x):
    return data.gaussian_mixture_1d_pdf(x, **DATA)


def p_gaussian(x, s):
    return data.gaussian_mixture_1d_pdf(x, means=(s,), stds=G_STD)


def p_shifted(x, s):
    return p_data(x - s)


def trapezoid_weights(x):
    h = x[1] - x[0]
    w = np.full_like(x, h)
    w[0] = w[-1] = h / 2
    return w


def xlogy_ratio(a, b):
    """a·log(a/b) elementwise with 0·log 0 = 0 (b ≥ a ≥ 0 here, so b = 0 ⇒ a = 0)."""
    out = np.zeros_like(a)
    pos = a > 0
    out[pos] = a[pos] * np.log(a[pos] / b[pos])
    return out


def value_at_optimum(pd, pg, w):
    """V(D*, G) = ∫ p_data log D* + p_g log(1 − D*), D* = p_data/(p_data + p_g), by quadrature."""
    s = pd + pg
    return float(w @ (xlogy_ratio(pd, s) + xlogy_ratio(pg, s)))


def log_sigmoid(a):
    return -np.logaddexp(0.0, -a)


def value_of(logits, pd, pg, w):
    """V(D, G) for D = σ(logits) on the grid."""
    return float(w @ (pd * log_sigmoid(logits) + pg * log_sigmoid(-logits)))


def train_d(shift, steps, batch, width, lr, seed, grid, pd, pg, w, every=0):
    """Train D on p_data vs N(shift, 0.5²) with the BCE; returns V(D) on the grid at the end and,
    every ``every`` steps, the curve [(step, V(D_step))]."""
    pygan.manual_seed(seed)
    rng = np.random.default_rng(seed)
    D = models.mlp_discriminator(data_dim=1, width=width, depth=2)
    opt = optim.Adam(D.parameters(), lr=lr, betas=(0.9, 0.999))
    loss = losses.get("minimax")
    g32 = grid.reshape(-1, 1).astype(np.float32)
    curve = []
    for step in range(1, steps + 1):
        if step > steps // 2:             # linear decay to lr/20: averages out minibatch noise
            opt.lr = lr * (1.0 - 0.95 * (step - steps // 2) / (steps - steps // 2))
        real = data.gaussian_mixture_1d(batch, rng, **DATA)
        fake = (shift + G_STD * rng.standard_normal((batch, 1))).astype(np.float32)
        opt.zero_grad()
        logits = D(np.concatenate([real, fake]))
        _, g_real, g_fake = loss.d_loss(logits[:batch], logits[batch:])
        D.backward(np.concatenate([g_real, g_fake]))
        opt.step()
        if every and (step % every == 0 or step == 1):
            curve.append((step, value_of(D(g32).astype(np.float64).ravel(), pd, pg, w)))
    return value_of(D(g32).astype(np.float64).ravel(), pd, pg, w), curve


def main(argv=None) -> dict:
    ap = _lab.parser(__doc__)
    args = ap.parse_args(argv)

    x = np.linspace(-20.0, 20.0, 8001)           # h = 0.005: the rule is exact to ~1e-15 here
    w = trapezoid_weights(x)
    pd = p_data(x)
    shifts = np.linspace(-6.0, 6.0, 25 if args.quick else 121)
    fams = {"gaussian": p_gaussian, "shifted mixture": p_shifted}
    table = {}
    for name, pg_of in fams.items():
        v, js = [], []
        for s in shifts:
            pg = pg_of(x, s)
            v.append(value_at_optimum(pd, pg, w))
            js.append(metrics.js_divergence_1d(pd, pg, x))
        v, js = np.array(v), np.array(js)
        table[name] = dict(V=v, JS=js, rhs=-LOG4 + 2.0 * js, err=np.abs(v - (-LOG4 + 2.0 * js)))
    max_err = max(float(t["err"].max()) for t in table.values())
    i0 = int(np.argmin(np.abs(shifts)))

    # trained discriminators on the gaussian family
    train_shifts = (0.0, 2.0) if args.quick else (0.0, 1.0, 2.0, 3.0, 4.0)
    steps, batch, width = (800, 128, 32) if args.quick else (4000, 256, 64)
    lr, curve_shift = 3e-3, 1.0 if not args.quick else 2.0
    t0 = time.perf_counter()
    trained = []
    curve = []
    for k, s in enumerate(train_shifts):
        pg = p_gaussian(x, s)
        vt, c = train_d(s, steps, batch, width, lr, args.seed + k, x, pd, pg, w,
                        every=max(1, steps // (20 if args.quick else 80)) if s == curve_shift else 0)
        if c:
            curve = c
        trained.append(dict(shift=s, V_trained=vt, V_opt=value_at_optimum(pd, pg, w),
                            rhs=-LOG4 + 2.0 * metrics.js_divergence_1d(pd, pg, x)))
    seconds = time.perf_counter() - t0

    print("V(D*, G) by integration vs −log 4 + 2·JS(p_data ‖ p_g) (pygan.metrics.js_divergence_1d)")
    for name, t in table.items():
        j = int(np.argmin(t["V"]))
        print(f"  {name:16s}: {len(shifts)} shifts in [{shifts[0]:g}, {shifts[-1]:g}], "
              f"max |V − (−log4 + 2JS)| = {t['err'].max():.2e}; V at s=0: {t['V'][i0]:.6f}, "
              f"min V = {t['V'][j]:.6f} at s = {shifts[j]:g}")
    print(f"  −log 4 = {-LOG4:.6f};  max discrepancy over both families = {max_err:.2e}")
    print(f"trained D (MLP 1→{width}→{width}→1, Adam, {steps} steps, {seconds:.1f} s in all), gaussian family:")
    for r in trained:
        print(f"  s = {r['shift']:4.1f}: V(D_trained) = {r['V_trained']:.5f}   V(D*) = {r['V_opt']:.5f}   "
              f"gap = {r['V_opt'] - r['V_trained']:.5f}")

    res = {
        "shifts": shifts.tolist(),
        "max_discrepancy": max_err,
        "families": {n: {k: t[k].tolist() for k in ("V", "JS", "err")} for n, t in table.items()},
        "V_at_zero_shifted_mixture": float(table["shifted mixture"]["V"][i0]),
        "trained": trained,
        "curve": curve,
        "curve_shift": curve_shift,
        "seconds": seconds,
    }

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2), dpi=100)
    ax = axes[0]
    colors = {"gaussian": "tab:orange", "shifted mixture": "tab:blue"}
    for name, t in table.items():
        lbl = "N(s, 0.5²)" if name == "gaussian" else "p_data(x − s)"
        ax.plot(shifts, t["rhs"], color=colors[name], lw=1.5, label=f"−log 4 + 2·JS,  p_g = {lbl}")
        ax.plot(shifts[::4], t["V"][::4], "o", ms=4, mfc="none", color=colors[name],
                label="V(D*, G) by integration")
    ax.plot([r["shift"] for r in trained], [r["V_trained"] for r in trained], "x", color="black", ms=7,
            label="V(D_trained, G), p_g = N(s, 0.5²)")
    ax.axhline(-LOG4, color="0.4", ls=":", lw=1, label="−log 4 (p_g = p_data)")
    ax.axhline(0.0, color="0.4", ls="-.", lw=1, label="0 (JS = log 2: disjoint supports)")
    ax.set_xlabel("shift s")
    ax.set_ylabel("V")
    ax.set_title("V(D*, G) = −log 4 + 2·JS(p_data ‖ p_g)", fontsize=10)
    ax.set_ylim(-1.45, 0.05)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax = axes[1]
    for name, t in table.items():
        ax.semilogy(shifts, np.maximum(t["err"], 1e-18), ".-", color=colors[name], lw=0.8, ms=3, label=name)
    ax.set_xlabel("shift s")
    ax.set_title(f"|V(D*, G) − (−log 4 + 2·JS)|  (max {max_err:.1e})", fontsize=10)
    ax.set_ylim(1e-18, 1e-6)
    ax.legend(fontsize=8)
    ax = axes[2]
    if curve:
        st, vv = zip(*curve)
        r = next(r for r in trained if r["shift"] == curve_shift)
        gap = r["V_opt"] - np.array(vv)
        ax.loglog(st, np.maximum(gap, 1e-12), ".-", color="tab:blue", ms=3,
                  label="V(D*, G) − V(D_t, G)  (≥ 0: D* maximises V)")
        ax.set_xlabel("D's training step")
        ax.set_ylabel("gap to V(D*, G) = −log 4 + 2·JS")
        ax.set_title(f"a trained D approaches D* from below (p_g = N({curve_shift:g}, 0.5²))", fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path = _lab.save_figure(fig, args.out, "value_at_optimum")
    res["figure"] = path
    return res


if __name__ == "__main__":
    main()
