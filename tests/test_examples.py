"""The theory lab in examples/: each script's ``main(["--quick", "--out", tmp])`` runs, writes its
figure, and the numbers it returns satisfy the theory it illustrates (benchmarks/WORKLOADS.md, "Theory
checks"). Tolerances are tight where the identity is exact (closed forms, quadrature) and loose
only where a short training run is involved.
"""
from __future__ import annotations

import importlib.util
import math
import os
import sys

import numpy as np

from pygan import losses

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
LOG4 = math.log(4.0)


def load(name):
    if EXAMPLES not in sys.path:  # the scripts import their shared examples/_lab.py
        sys.path.insert(0, EXAMPLES)
    spec = importlib.util.spec_from_file_location(f"pygan_example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(name, tmp_path, *extra):
    res = load(name).main(["--quick", "--out", str(tmp_path), *extra])
    path = res["figure"]
    assert os.path.dirname(os.path.abspath(path)) == os.path.abspath(tmp_path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return res


# --- 1. the optimal discriminator ----------------------------------------------------------

def test_optimal_discriminator_trained_d_approaches_closed_form_d_star(tmp_path):
    r = run("optimal_discriminator", tmp_path)
    # the trained D is close to D* = p_data/(p_data + p_g) on the bulk of the mass
    assert r["max_abs_err_bulk"] < 0.2
    assert r["mean_abs_err"] < 0.04
    # and got closer during training (the first snapshot is after 2% of the steps)
    errs = list(r["max_abs_err_snapshots"].values())
    assert errs[-1] < 0.5 * errs[0]
    # D* maximises V point by point, so no D has a lower loss −V(D) than −V(D*) ...
    assert r["d_loss_trained"] >= r["d_loss_optimal"] - 1e-12
    # ... and the trained one is close to it; −V(D*) = log 4 − 2·JS
    assert r["d_loss_trained"] - r["d_loss_optimal"] < 0.02
    assert abs(r["d_loss_optimal"] - r["log4_minus_2js"]) < 1e-8
    assert 0.0 < r["js"] < math.log(2.0)


# --- 2. the value at the optimum ------------------------------------------------------------

def test_value_at_optimum_equals_minus_log4_plus_twice_js(tmp_path):
    r = run("value_at_optimum", tmp_path)
    assert r["max_discrepancy"] < 1e-8
    for fam in r["families"].values():
        v, js = np.array(fam["V"]), np.array(fam["JS"])
        assert np.all((js >= 0) & (js <= math.log(2.0)))
        assert np.all((v >= -LOG4 - 1e-8) & (v <= 1e-8))         # V(D*, G) ∈ [−log 4, 0]
        assert np.max(np.abs(v - (-LOG4 + 2 * js))) < 1e-8
    # p_g = p_data at zero shift of the shifted mixture: the global minimum −log 4
    assert abs(r["V_at_zero_shifted_mixture"] + LOG4) < 1e-8
    shifted = np.array(r["families"]["shifted mixture"]["V"])
    assert np.argmin(shifted) == int(np.argmin(np.abs(np.array(r["shifts"]))))
    # a trained D never beats D* (V(D) ≤ V(D*) pointwise in the integrand) and comes close
    for t in r["trained"]:
        assert t["V_trained"] <= t["V_opt"] + 1e-12
        assert t["V_opt"] - t["V_trained"] < 0.01
        assert abs(t["V_opt"] - t["rhs"]) < 1e-8
    # V(D_t) along training, for one shift: approaches V(D*) from below
    v_opt = next(t["V_opt"] for t in r["trained"] if t["shift"] == r["curve_shift"])
    gaps = np.array([v_opt - v for _, v in r["curve"]])
    assert len(gaps) >= 10 and np.all(gaps >= -1e-12)
    assert gaps[-1] < 0.02 * gaps[0]


# --- 3. generator saturation ----------------------------------------------------------------

def test_generator_saturation_gradients_match_closed_forms(tmp_path):
    r = run("generator_saturation", tmp_path)
    assert r["max_abs_dev_logit"] < 1e-10
    for name, v in r["logit"].items():
        assert v["max_abs_dev"] < 1e-10 and v["max_rel_dev"] < 1e-12, name
        assert v["max_rel_dev_float32"] < 1e-6, name
    # at D = σ(−25) ≈ 1.4e-11: minimax's gradient has vanished, the non-saturating one is −1
    assert abs(r["logit"]["minimax"]["grad_at_min_D"]) < 1e-10
    assert abs(r["logit"]["nonsaturating"]["grad_at_min_D"] + 1.0) < 1e-10
    assert abs(r["logit"]["minimax"]["grad_at_max_D"] + 1.0) < 1e-10
    assert abs(r["logit"]["nonsaturating"]["grad_at_max_D"]) < 1e-10
    # through D: D.backward of the loss gradient = (∂L/∂a)·∇ₓa, and matches finite differences
    assert r["max_rel_dev_through_d"] < 1e-10
    for name, v in r["through_d"].items():
        assert v["max_rel_err_fd"] < 1e-6, name
    # D rejects G's samples, and there the minimax gradient is smaller by about D(G(z))
    assert r["mean_D_of_G"] < 1e-2
    assert r["saturation_ratio"] < 1e-2


def test_generator_saturation_closed_form_matches_the_loss_module_directly():
    mod = load("generator_saturation")
    a = np.linspace(-30, 30, 61).reshape(-1, 1)
    for name in ("minimax", "nonsaturating"):
        g = mod.per_sample_logit_grad(losses.get(name), a)
        np.testing.assert_allclose(g, mod.closed_form(name, a), rtol=1e-13, atol=0)
    # the two differ: swapping them must be caught
    assert np.max(np.abs(mod.closed_form("minimax", a) - mod.closed_form("nonsaturating", a))) > 0.9


# --- 4. mode collapse -----------------------------------------------------------------------

def test_mode_collapse_reports_mode_metrics_at_every_snapshot(tmp_path):
    r = run("mode_collapse", tmp_path)
    snaps = r["snapshots"]
    assert len(snaps) == 8
    assert [s["step"] for s in snaps] == sorted(s["step"] for s in snaps)
    for s in snaps:
        assert 0 <= s["modes"] <= 8
        assert 0.0 <= s["hq_percent"] <= 100.0
        assert 0.0 <= s["kl"] <= math.log(8) + 1e-12
        assert (s["modes"] == 0) == (s["hq_percent"] == 0.0)
        assert s["spread"] >= 0.0
    assert r["settings"]["g_lr"] == 10 * r["settings"]["d_lr"]


def test_mode_collapse_spread_is_one_for_the_ring_and_zero_for_a_point(rng):
    mod = load("mode_collapse")
    from pygan import data
    assert abs(mod.spread(data.ring(4000, rng, dtype=np.float64)) - 1.0) < 0.01
    assert mod.spread(np.tile([[0.3, -0.2]], (50, 1))) < 1e-12


# --- 5. the gradient field ------------------------------------------------------------------

def test_gradient_field_covers_every_loss_and_matches_finite_differences(tmp_path):
    r = run("gradient_field", tmp_path)
    assert r["losses"] == losses.names()
    for name in losses.names():
        rows = r["table"][name]
        assert [t["step"] for t in rows] == r["snapshots"]
        for t in rows:
            assert t["fd_median_rel_err"] < 1e-6, (name, t)
            assert np.isfinite(t["mean_grad"]) and t["mean_grad"] > 0
            assert 0.0 <= t["toward_nearest_mode"] <= 100.0


def test_gradient_field_arrows_are_minus_the_loss_gradient(rng):
    """A small step along the arrows lowers L_G (the sign convention of the figure)."""
    mod = load("gradient_field")
    import pygan
    from pygan import models
    pygan.manual_seed(3)
    D = models.mlp_discriminator(2, 16, 2).double()
    x = rng.standard_normal((32, 2))
    for name in losses.names():
        loss = losses.get(name)
        f = mod.field(D, loss, x)
        before = loss.g_loss(D(x))[0]
        after = loss.g_loss(D(x + 1e-4 * f))[0]
        assert after < before, name
