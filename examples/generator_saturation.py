#!/usr/bin/env python
"""Generator-gradient saturation: the minimax loss gives G no gradient where D rejects its samples.

With a = D's logit at a generated point and D = σ(a):

    minimax        L_G = log(1 − D) = −softplus(a)     ∂L_G/∂a = −D        → 0   as D → 0
    nonsaturating  L_G = −log D     =  softplus(−a)    ∂L_G/∂a = −(1 − D)  → −1  as D → 0

Early in training D separates real from generated data easily, so D(G(z)) ≈ 0 and the minimax
generator learns almost nothing; the non-saturating loss has the same fixed points but a
gradient of size ≈ 1 there (Goodfellow et al. 2014, §3). Through D the gradient reaching a
sample is ∂L_G/∂x = (∂L_G/∂a)·∇ₓa, so the same factor D or 1 − D scales it.

Measured with pygan's own backward passes, in float64:

1. ``losses.get(name).g_loss(a)`` on logits a ∈ [−25, 25]: its gradient times N (the loss is a
   mean over the N logits) against the closed forms −σ(a) and −σ(−a) = −(1 − D).
2. Through a small D (pygan MLP 1 → 16 → 16 → 1, trained for a few hundred steps to tell
   p_data = N(2, 0.5²) from p_g = N(−2, 0.5²)): ∂L_G/∂x = D.backward(g) after
   g = g_loss(D(x)), against the closed form (∂L_G/∂a)(D(x))·∇ₓa(x), with ∇ₓa = D.backward(1);
   and the whole of ∂L_G/∂x against central finite differences of L_G(x).

    python examples/generator_saturation.py [--out examples/out] [--quick] [--seed 0]
"""
from __future__ import annotations


import numpy as np

import pygan
from pygan import losses, models, optim

import _lab  # the scripts' shared command line and figure saving (examples/_lab.py)

LOSSES = ("minimax", "nonsaturating")
REAL, FAKE, STD = 2.0, -2.0, 0.5


def sigmoid(a):
    """σ(a) = 1/(1 + e^{−a}), float64; exact enough for |a| ≤ 700 (no overflow below that)."""
    return 1.0 / (1.0 + np.exp(-a))


def closed_form(name, a):
    """∂L_G/∂a per sample: −D for minimax, −(1 − D) = −σ(−a) for nonsaturating."""
    return -sigmoid(a) if name == "minimax" else -sigmoid(-a)


def per_sample_logit_grad(loss, a):
    """pygan's ∂L_G/∂a for each logit: g_loss is a mean over the N logits, so scale by N."""
    _, g = loss.g_loss(a)
    return g * a.size


def rel_dev(got, want):
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-300)))


def train_small_d(steps, seed):
    """A float64 MLP D trained (minimax BCE, Adam 1e-2) to separate N(2, 0.5²) from N(−2, 0.5²)."""
    pygan.manual_seed(seed)
    rng = np.random.default_rng(seed)
    D = models.mlp_discriminator(data_dim=1, width=16, depth=2).double()
    opt = optim.Adam(D.parameters(), lr=1e-2)
    bce = losses.get("minimax")
    n = 128
    for _ in range(steps):
        x = np.concatenate([REAL + STD * rng.standard_normal((n, 1)),
                            FAKE + STD * rng.standard_normal((n, 1))])
        opt.zero_grad()
        logits = D(x)
        _, gr, gf = bce.d_loss(logits[:n], logits[n:])
        D.backward(np.concatenate([gr, gf]))
        opt.step()
    D.zero_grad()
    return D


def main(argv=None) -> dict:
    ap = _lab.parser(__doc__)
    args = ap.parse_args(argv)
    res = {"logit": {}, "through_d": {}}

    # 1. the loss alone: gradient w.r.t. the logit
    a = np.linspace(-25.0, 25.0, 201 if args.quick else 1001).reshape(-1, 1)
    d = sigmoid(a)
    grads = {}
    for name in LOSSES:
        loss = losses.get(name)
        g = per_sample_logit_grad(loss, a)
        want = closed_form(name, a)
        a32 = a.astype(np.float32)                      # compare at the float32 logits themselves
        g32 = per_sample_logit_grad(loss, a32).astype(np.float64)
        grads[name] = g
        res["logit"][name] = dict(max_abs_dev=float(np.max(np.abs(g - want))), max_rel_dev=rel_dev(g, want),
                                  max_rel_dev_float32=rel_dev(g32, closed_form(name, a32.astype(np.float64))),
                                  grad_at_min_D=float(g[0, 0]), grad_at_max_D=float(g[-1, 0]))

    # 2. through a small trained D into x
    D = train_small_d(150 if args.quick else 400, args.seed)
    x = np.linspace(-4.0, 4.0, 161 if args.quick else 801).reshape(-1, 1)
    logits = D(x)
    grad_a = D.backward(np.ones_like(logits))           # ∇ₓa(x), one row per point
    D.zero_grad()
    dx = sigmoid(logits)
    rng = np.random.default_rng(args.seed + 1)
    xg = FAKE + STD * rng.standard_normal((256, 1))      # G's samples
    h = 1e-6
    field = {}
    for name in LOSSES:
        loss = losses.get(name)
        _, g = loss.g_loss(D(x))
        gx = D.backward(g) * x.shape[0]                 # per-sample ∂L_G/∂x
        D.zero_grad()
        want = closed_form(name, logits) * grad_a
        # finite differences of the per-sample loss value L_G(x_i), rows independent
        vals = []
        for sgn in (+1.0, -1.0):
            ai = D(x + sgn * h)
            vals.append(-np.logaddexp(0, ai) if name == "minimax" else np.logaddexp(0, -ai))
        fd = (vals[0] - vals[1]) / (2 * h)
        # and at G's samples: the mean |∂L_G/∂x| and D(G(z))
        _, gs = loss.g_loss(D(xg))
        gxs = D.backward(gs) * xg.shape[0]
        D.zero_grad()
        field[name] = gx
        scale = np.maximum(np.abs(want), 1e-12 * np.abs(want).max())
        res["through_d"][name] = dict(
            max_rel_dev=float(np.max(np.abs(gx - want) / scale)),
            max_rel_err_fd=float(np.max(np.abs(gx - fd) / np.maximum(np.abs(fd), 1e-8 * np.abs(fd).max()))),
            mean_abs_grad_at_G=float(np.mean(np.abs(gxs))))
    dg = sigmoid(D(xg))
    res["mean_D_of_G"] = float(dg.mean())
    res["saturation_ratio"] = (res["through_d"]["minimax"]["mean_abs_grad_at_G"]
                               / res["through_d"]["nonsaturating"]["mean_abs_grad_at_G"])
    res["max_abs_dev_logit"] = max(v["max_abs_dev"] for v in res["logit"].values())
    res["max_rel_dev_through_d"] = max(v["max_rel_dev"] for v in res["through_d"].values())

    print("∂L_G/∂a from losses.get(name).g_loss (×N) vs the closed form, a ∈ [−25, 25], float64:")
    for name, v in res["logit"].items():
        cf = "−D" if name == "minimax" else "−(1 − D)"
        print(f"  {name:14s} closed form {cf:9s} max |dev| = {v['max_abs_dev']:.1e}, "
              f"max rel dev = {v['max_rel_dev']:.1e} (float32 logits: {v['max_rel_dev_float32']:.1e}); "
              f"at D = {d[0, 0]:.1e}: {v['grad_at_min_D']:.3e}, at D = 1 − {1 - d[-1, 0]:.0e}: {v['grad_at_max_D']:.3e}")
    print("∂L_G/∂x = D.backward(g_loss gradient) through a small trained D, x ∈ [−4, 4]:")
    for name, v in res["through_d"].items():
        print(f"  {name:14s} vs (∂L_G/∂a)·∇ₓa: max rel dev = {v['max_rel_dev']:.1e};  "
              f"vs finite differences: max rel err = {v['max_rel_err_fd']:.1e};  "
              f"mean |∂L_G/∂x| at G's samples = {v['mean_abs_grad_at_G']:.3e}")
    print(f"at G's samples (x ~ N({FAKE:g}, {STD:g}²)) mean D(G(z)) = {res['mean_D_of_G']:.2e}: the minimax "
          f"gradient is {res['saturation_ratio']:.1e} × the non-saturating one")
    print(f"max |dev| from the closed forms (logit) = {res['max_abs_dev_logit']:.1e}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), dpi=100)
    colors = {"minimax": "tab:red", "nonsaturating": "tab:blue"}
    ax = axes[0]
    dd = sigmoid(np.linspace(-25.0, 25.0, 800))
    for name in LOSSES:
        cf = dd if name == "minimax" else sigmoid(-np.linspace(-25.0, 25.0, 800))
        ax.plot(dd, cf, color=colors[name], lw=1.2,
                label=f"{name}: |∂L/∂a| = " + ("D" if name == "minimax" else "1 − D"))
        sel = slice(None, None, max(1, a.shape[0] // 60))
        ax.plot(d[sel, 0], np.abs(grads[name][sel, 0]), "o", ms=3.5, mfc="none", color=colors[name])
    ax.plot([], [], "o", mfc="none", color="0.3", label="pygan g_loss gradient × N")
    ax.set_xscale("logit")                      # log scale in D near 0 and in 1 − D near 1
    ax.set_yscale("log")
    ax.set_xlim(1e-11, 1 - 1e-11)
    ax.set_ylim(1e-11, 3)
    ax.set_xlabel("D(G(z)) = σ(a)   (logit scale: log D near 0, log(1 − D) near 1)")
    ax.set_ylabel("|∂L_G/∂a|")
    ax.set_title("generator gradient w.r.t. D's logit", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[1]
    xs = x[:, 0]
    pd = np.exp(-0.5 * ((xs - REAL) / STD) ** 2) / (STD * np.sqrt(2 * np.pi))
    pg = np.exp(-0.5 * ((xs - FAKE) / STD) ** 2) / (STD * np.sqrt(2 * np.pi))
    ax.fill_between(xs, pd, color="0.6", alpha=0.4, label="p_data = N(2, 0.5²)")
    ax.fill_between(xs, pg, color="tab:orange", alpha=0.4, label="p_g = N(−2, 0.5²)")
    ax.set_ylabel("density")
    ax.set_ylim(0, 1.3)
    ax2 = ax.twinx()
    ax2.semilogy(xs, dx[:, 0], color="black", lw=1.5, label="D(x) (trained small D)")
    ax2.set_ylabel("D(x), log scale")
    ax.set_xlabel("x")
    ax.set_title(f"a D that rejects G's samples: mean D(G(z)) = {res['mean_D_of_G']:.1e}", fontsize=10)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    ax = axes[2]
    ax.axvspan(FAKE - 2 * STD, FAKE + 2 * STD, color="tab:orange", alpha=0.15)
    for name in LOSSES:
        ax.semilogy(xs, np.abs(field[name][:, 0]), color=colors[name], lw=2, alpha=0.6)
        ax.semilogy(xs, np.abs(closed_form(name, logits) * grad_a)[:, 0], color="black", lw=0.8, ls="--")
    ax.legend([Line2D([], [], color=colors[n], lw=2, alpha=0.6) for n in LOSSES]
              + [Line2D([], [], color="black", lw=0.8, ls="--")],
              [f"{n}: D.backward(g)" for n in LOSSES] + ["closed form (∂L/∂a)·∇ₓa"], fontsize=8,
              loc="lower right")
    ax.set_xlabel("x   (shaded: where G's samples are)")
    ax.set_ylabel("|∂L_G/∂x|")
    ax.set_title(f"through D, at G's samples: minimax / non-sat. = {res['saturation_ratio']:.1e}",
                 fontsize=10)
    fig.tight_layout()
    path = _lab.save_figure(fig, args.out, "generator_saturation")
    res["figure"] = path
    return res


if __name__ == "__main__":
    main()
