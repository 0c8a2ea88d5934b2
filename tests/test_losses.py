"""GAN losses: gradients by finite differences, values against the naive formulas and PyTorch,
stability at huge logits, the saturation claim of benchmarks/WORKLOADS.md, and input validation."""
import numpy as np
import pytest

from pygan import gradcheck, losses
from conftest import assert_close, torch_or_skip

ALL = [("minimax", {}), ("nonsaturating", {}), ("wasserstein", {}), ("hinge", {}),
       ("least_squares", {}), ("least_squares", {"a": -1.0, "b": 1.0, "c": 0.0}),
       ("least_squares", {"a": 0.3, "b": -2.0, "c": 0.7})]
IDS = [n + ("" if not kw else "(" + ",".join(f"{k}={v:g}" for k, v in kw.items()) + ")") for n, kw in ALL]


def sigmoid_naive(x):
    return 1.0 / (1.0 + np.exp(-x))


def naive(name, kw, r, f):
    """(d_real, d_fake, g_loss) values from the textbook formulas, float64."""
    if name in ("minimax", "nonsaturating"):
        dr = np.mean(-np.log(sigmoid_naive(r)))
        df = np.mean(-np.log(1.0 - sigmoid_naive(f)))
        g = np.mean(np.log(1.0 - sigmoid_naive(f))) if name == "minimax" else np.mean(-np.log(sigmoid_naive(f)))
    elif name == "wasserstein":
        dr, df, g = -np.mean(r), np.mean(f), -np.mean(f)
    elif name == "hinge":
        dr, df, g = np.mean(np.maximum(1 - r, 0)), np.mean(np.maximum(1 + f, 0)), -np.mean(f)
    else:
        a, b, c = kw.get("a", 0.0), kw.get("b", 1.0), kw.get("c", 1.0)
        dr, df, g = 0.5 * np.mean((r - b) ** 2), 0.5 * np.mean((f - a) ** 2), 0.5 * np.mean((f - c) ** 2)
    return dr, df, g


def logits(rng, shape, scale=2.0, avoid_kinks=True):
    x = scale * rng.standard_normal(shape)
    if avoid_kinks:  # keep finite differences away from the hinge kinks at ±1
        near = np.abs(np.abs(x) - 1.0) < 1e-3
        x[near] += 0.1
    return x


def _check(loss, r, f):
    if hasattr(gradcheck, "check_loss"):
        return gradcheck.check_loss(loss, r, f)
    report = gradcheck.Report(f"{loss.describe()}")
    _, gr, gf = loss.d_loss(r, f)
    report.add(gradcheck.compare("d_loss / real", gr, gradcheck.numeric_gradient(lambda: loss.d_loss(r, f)[0], r)))
    report.add(gradcheck.compare("d_loss / fake", gf, gradcheck.numeric_gradient(lambda: loss.d_loss(r, f)[0], f)))
    report.add(gradcheck.compare("g_loss / fake", loss.g_loss(f)[1],
                                 gradcheck.numeric_gradient(lambda: loss.g_loss(f)[0], f)))
    report.add(gradcheck.compare("d_real / real", loss.d_real(r)[1],
                                 gradcheck.numeric_gradient(lambda: loss.d_real(r)[0], r)))
    report.add(gradcheck.compare("d_fake / fake", loss.d_fake(f)[1],
                                 gradcheck.numeric_gradient(lambda: loss.d_fake(f)[0], f)))
    return report


# --- gradients ----------------------------------------------------------------------------

@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
@pytest.mark.parametrize("n_real,n_fake,trailing", [(1, 1, ()), (3, 5, ()), (8, 8, (1,)), (1, 4, (1,))])
def test_loss_gradients_match_finite_differences(rng, name, kw, n_real, n_fake, trailing):
    loss = losses.get(name, **kw)
    r = logits(rng, (n_real,) + trailing)
    f = logits(rng, (n_fake,) + trailing)
    _check(loss, r, f).raise_if_failed()


@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
def test_loss_gradient_check_catches_a_wrong_gradient(rng, name, kw):
    class Wrong(type(losses.get(name, **kw))):
        def _g(self, x):
            v, g = super()._g(x)
            return v, g * 1.001

    r, f = logits(rng, (4,)), logits(rng, (4,))
    assert not _check(Wrong(**kw), r, f).ok


# --- values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
def test_loss_values_equal_the_naive_formulas(rng, name, kw):
    loss = losses.get(name, **kw)
    r, f = logits(rng, (7, 1), scale=3.0), logits(rng, (5, 1), scale=3.0)
    dr, df, g = naive(name, kw, r, f)
    v, _, _ = loss.d_loss(r, f)
    assert isinstance(v, float)
    assert v == pytest.approx(dr + df, rel=1e-12, abs=1e-14)
    assert loss.d_real(r)[0] == pytest.approx(dr, rel=1e-12, abs=1e-14)
    assert loss.d_fake(f)[0] == pytest.approx(df, rel=1e-12, abs=1e-14)
    assert loss.g_loss(f)[0] == pytest.approx(g, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
def test_d_loss_is_the_sum_of_its_halves(rng, name, kw):
    loss = losses.get(name, **kw)
    r, f = logits(rng, (6,)), logits(rng, (9,))
    v, gr, gf = loss.d_loss(r, f)
    vr, gr2 = loss.d_real(r)
    vf, gf2 = loss.d_fake(f)
    assert v == vr + vf
    np.testing.assert_array_equal(gr, gr2)
    np.testing.assert_array_equal(gf, gf2)


@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5,), (5, 1)])
def test_gradients_keep_the_logits_shape_and_dtype(rng, name, kw, dtype, shape):
    loss = losses.get(name, **kw)
    r, f = logits(rng, shape).astype(dtype), logits(rng, shape).astype(dtype)
    _, gr, gf = loss.d_loss(r, f)
    _, gg = loss.g_loss(f)
    for g in (gr, gf, gg):
        assert g.shape == shape and g.dtype == dtype
    if dtype == np.float32:  # float32 work agrees with float64 to float32 precision
        _, gr64, gf64 = loss.d_loss(r.astype(np.float64), f.astype(np.float64))
        assert_close(gr, gr64, 1e-6, f"{name} float32 ∂/∂r")
        assert_close(gf, gf64, 1e-6, f"{name} float32 ∂/∂f")


# --- stability --------------------------------------------------------------------------------

def expected_limits(name, kw, r, f):
    """Exact values and gradients at huge |logits|: sp(x) → max(x, 0), σ(x) → [x > 0]."""
    n_r, n_f = float(r.size), float(f.size)
    pos = lambda x: (x > 0).astype(np.float64)  # noqa: E731
    if name in ("minimax", "nonsaturating"):
        dr, gr = np.mean(np.maximum(-r, 0)), -pos(-r) / n_r
        df, gf = np.mean(np.maximum(f, 0)), pos(f) / n_f
        if name == "minimax":
            g, gg = -np.mean(np.maximum(f, 0)), -pos(f) / n_f
        else:
            g, gg = np.mean(np.maximum(-f, 0)), -pos(-f) / n_f
        return dr + df, gr, gf, g, gg
    return None


SOFTPLUS = ["minimax", "nonsaturating"]


@pytest.mark.parametrize("name", SOFTPLUS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("big", [1e4, 1e30])
def test_softplus_losses_reach_their_exact_limits_at_huge_logits(name, dtype, big):
    loss = losses.get(name)
    r = np.array([big, -big, big, -big], dtype=dtype)
    f = np.array([big, -big, -big, -big], dtype=dtype)
    v, gr, gf = loss.d_loss(r, f)
    g, gg = loss.g_loss(f)
    ev, egr, egf, eg, egg = expected_limits(name, {}, r.astype(np.float64), f.astype(np.float64))
    for a in (gr, gf, gg):
        assert np.all(np.isfinite(a)) and a.dtype == dtype
    assert v == pytest.approx(ev, rel=1e-6) and g == pytest.approx(eg, rel=1e-6)
    np.testing.assert_array_equal(gr, egr.astype(dtype))
    np.testing.assert_array_equal(gf, egf.astype(dtype))
    np.testing.assert_array_equal(gg, egg.astype(dtype))


@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_are_finite_and_exact_at_logits_1e4(name, kw, dtype):
    loss = losses.get(name, **kw)
    r = np.array([1e4, -1e4, 0.5], dtype=dtype)
    f = np.array([-1e4, 1e4], dtype=dtype)
    v, gr, gf = loss.d_loss(r, f)
    g, gg = loss.g_loss(f)
    assert np.isfinite(v) and np.isfinite(g)
    for a in (gr, gf, gg):
        assert np.all(np.isfinite(a))
    r64, f64 = r.astype(np.float64), f.astype(np.float64)
    if name in SOFTPLUS:
        # sp(x) = max(x, 0) + log1p(e^−|x|): exact at ±1e4 except for the moderate entry
        dr = np.mean([0.0, 1e4, np.log1p(np.exp(-0.5))])   # sp(−r) for r = (1e4, −1e4, 0.5)
        assert loss.d_real(r)[0] == pytest.approx(dr, rel=1e-6)
        assert gr[0] == 0 and gr[1] == pytest.approx(-1 / 3, rel=1e-6)
    else:
        dr, df, gv = naive(name, kw, r64, f64)
        assert v == pytest.approx(dr + df, rel=1e-6)
        assert g == pytest.approx(gv, rel=1e-6)
        # gradients are exact functions of the logits at this size too
        _, gr64, gf64 = loss.d_loss(r64, f64)
        assert_close(gr, gr64, 1e-6, f"{name} ∂/∂r at ±1e4")
        assert_close(gf, gf64, 1e-6, f"{name} ∂/∂f at ±1e4")


@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
def test_nan_logits_raise_naming_the_loss_and_term(name, kw):
    loss = losses.get(name, **kw)
    f = np.array([0.0, np.nan])
    with pytest.raises(losses.NonFiniteLoss, match=rf"{name}.*g_loss.*1 NaN") as info:
        loss.g_loss(f)
    assert info.value.loss == name and info.value.term == "g_loss"
    with pytest.raises(losses.NonFiniteLoss, match="fake term"):
        loss.d_loss(np.zeros(2), f)


def test_least_squares_overflow_in_float32_is_reported_not_returned():
    with pytest.raises(losses.NonFiniteLoss, match="overflowed"), np.errstate(over="ignore"):
        losses.get("least_squares").g_loss(np.array([1e30, 0.0], dtype=np.float32))


# --- the theory check of benchmarks/WORKLOADS.md: saturation -----------------------------------------------

def test_minimax_generator_gradient_is_minus_D_and_saturates(rng):
    a = np.concatenate([np.linspace(-30, 5, 15), rng.standard_normal(5)])
    n, D = a.size, sigmoid_naive(a)
    _, g = losses.get("minimax").g_loss(a)
    assert_close(g, -D / n, 1e-12, "minimax ∂g_loss/∂a = −D/N")
    # as D → 0 (G's samples are easily rejected) the gradient vanishes
    _, g = losses.get("minimax").g_loss(np.array([-30.0, -100.0]))
    assert np.all(np.abs(g) < 1e-13)


def test_nonsaturating_generator_gradient_is_minus_one_minus_D_and_does_not_saturate(rng):
    a = np.concatenate([np.linspace(-30, 5, 15), rng.standard_normal(5)])
    n, D = a.size, sigmoid_naive(a)
    _, g = losses.get("nonsaturating").g_loss(a)
    assert_close(g, -(1 - D) / n, 1e-12, "nonsaturating ∂g_loss/∂a = −(1 − D)/N")
    _, g = losses.get("nonsaturating").g_loss(np.array([-30.0, -100.0]))
    np.testing.assert_allclose(g, -0.5, rtol=1e-12)  # → −1/N with N = 2


# --- PyTorch as an oracle -------------------------------------------------------------------

def torch_losses(torch, name, kw, r, f):
    """(d_loss, g_loss) written with torch's own BCEWithLogits / softplus / relu / mse."""
    F = torch.nn.functional
    if name in SOFTPLUS:
        d = (F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
             + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))
        if name == "minimax":
            g = -F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
        else:
            g = F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
        d_sp = F.softplus(-r).mean() + F.softplus(f).mean()
        g_sp = -F.softplus(f).mean() if name == "minimax" else F.softplus(-f).mean()
        return d, g, d_sp, g_sp
    if name == "wasserstein":
        return f.mean() - r.mean(), -f.mean(), None, None
    if name == "hinge":
        return F.relu(1 - r).mean() + F.relu(1 + f).mean(), -f.mean(), None, None
    a, b, c = kw.get("a", 0.0), kw.get("b", 1.0), kw.get("c", 1.0)
    d = 0.5 * F.mse_loss(r, torch.full_like(r, b)) + 0.5 * F.mse_loss(f, torch.full_like(f, a))
    return d, 0.5 * F.mse_loss(f, torch.full_like(f, c)), None, None


@pytest.mark.parametrize("name,kw", ALL, ids=IDS)
@pytest.mark.parametrize("shape_r,shape_f", [((16, 1), (16, 1)), ((1,), (7,))])
def test_loss_values_and_gradients_match_torch(rng, name, kw, shape_r, shape_f):
    torch = torch_or_skip()
    loss = losses.get(name, **kw)
    r, f = logits(rng, shape_r, scale=3.0), logits(rng, shape_f, scale=3.0)
    v, gr, gf = loss.d_loss(r, f)
    gv, gg = loss.g_loss(f)
    outs = torch_losses(torch, name, kw, torch.tensor(r), torch.tensor(f))
    for k in range(0, len(outs), 2):
        if outs[k] is None:
            continue
        rt = torch.tensor(r, requires_grad=True)
        ft = torch.tensor(f, requires_grad=True)
        d_t, g_t = torch_losses(torch, name, kw, rt, ft)[k:k + 2]
        assert_close(v, d_t.item(), 1e-10, f"{name} d_loss value")
        d_t.backward()
        assert_close(gr, rt.grad.numpy(), 1e-10, f"{name} ∂d_loss/∂r")
        assert_close(gf, ft.grad.numpy(), 1e-10, f"{name} ∂d_loss/∂f")
        ft.grad = None
        assert_close(gv, g_t.item(), 1e-10, f"{name} g_loss value")
        g_t.backward()
        assert_close(gg, ft.grad.numpy(), 1e-10, f"{name} ∂g_loss/∂f")


# --- API and validation -------------------------------------------------------------------------

def test_names_and_get():
    assert losses.names() == ["minimax", "nonsaturating", "wasserstein", "least_squares", "hinge"]
    for n in losses.names():
        loss = losses.get(n)
        assert loss.name == n and losses.get(loss) is loss
        assert n in loss.describe() and "d:" in str(loss)
        assert f"docs/gradients.md#{n}" in type(loss).__doc__
    ls = losses.get("least_squares", a=-1, b=1, c=0)
    assert (ls.a, ls.b, ls.c) == (-1.0, 1.0, 0.0)
    assert ls.describe() == "least_squares(a=-1, b=1, c=0)"
    assert repr(ls) == "LeastSquares(a=-1.0, b=1.0, c=0.0)"


def test_get_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match="unknown loss 'wgan'.*wasserstein"):
        losses.get("wgan")
    with pytest.raises(TypeError, match="'hinge' takes no options"):
        losses.get("hinge", a=1)
    with pytest.raises(TypeError, match="a, b, c"):
        losses.get("least_squares", d=1)
    with pytest.raises(ValueError, match="target b must be a finite number"):
        losses.get("least_squares", b=float("nan"))


@pytest.mark.parametrize("name", losses.names())
def test_bad_logits_raise_clear_errors(name):
    loss = losses.get(name)
    with pytest.raises(ValueError, match=rf"{name}.*d_loss.*\(8, 1\).*\(8,\).*trailing"):
        loss.d_loss(np.zeros((8, 1)), np.zeros(8))
    with pytest.raises(TypeError, match=rf"{name}.*float32.*float64"):
        loss.d_loss(np.zeros(4, np.float32), np.zeros(4))
    with pytest.raises(TypeError, match="floating"):
        loss.g_loss(np.zeros(4, dtype=np.int64))
    with pytest.raises(TypeError, match="array"):
        loss.g_loss([0.0, 1.0])
    with pytest.raises(ValueError, match=r"N ≥ 1.*\(0,\)"):
        loss.d_real(np.zeros(0))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        loss.d_fake(np.array(1.0))
