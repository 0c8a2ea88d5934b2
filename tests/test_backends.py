"""Every layer and loss on every backend this machine runs equals the NumPy reference (float32).

The float64 finite-difference checks prove the NumPy backend; this suite carries that proof to
the others by comparing forward, input gradient and parameter gradients case by case. Backends
that cannot run here (no GPU, extension not built) are skipped with the reason.
"""
import copy

import numpy as np
import pytest

import pygan
from pygan import losses
from pygan.gradcheck import suite as gradcheck_suite

BACKENDS = [b for b in ("cuda-emu", "cupy", "cuda")]
LAYER_CASES = list(gradcheck_suite._layer_cases(np.random.default_rng(0)))


def _use(name):
    reason = pygan.available_backends().get(name)
    if reason is not None:
        pytest.skip(f"{name} backend unavailable: {reason}")
    return pygan.set_backend(name)


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layer_on_backend_equals_numpy(backend, case):
    title, make, x = case
    x = x.astype(np.float32)
    pygan.set_backend("numpy")
    pygan.manual_seed(0)
    ref = make()
    rng_states = [copy.deepcopy(g.bit_generator.state) for g in _generators(ref)]
    y_ref = ref(x)
    gy = np.random.default_rng(1).standard_normal(y_ref.shape).astype(np.float32)
    gx_ref = ref.backward(gy)
    state = ref.state_dict()
    be = _use(backend)
    pygan.manual_seed(0)
    m = make()
    m.load_state_dict(state)
    m.train(ref.training)
    for g, st in zip(_generators(m), rng_states):  # Dropout: the same masks
        g.bit_generator.state = st
    y = m(be.xp.asarray(x))
    gx = m.backward(be.xp.asarray(gy))
    pygan.set_backend("numpy")
    np.testing.assert_allclose(_host(y), y_ref, rtol=1e-4, atol=1e-5, err_msg=f"{title} forward")
    np.testing.assert_allclose(_host(gx), gx_ref, rtol=1e-4, atol=1e-5, err_msg=f"{title} input gradient")
    for (n, p), q in zip(m.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(_host(p.grad), q.grad, rtol=1e-4, atol=1e-5, err_msg=f"{title} ∂L/∂{n}")


def _generators(module):
    return [v for mod in module.modules() for v in vars(mod).values() if isinstance(v, np.random.Generator)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", losses.names())
def test_loss_on_backend_equals_numpy(backend, name):
    rng = np.random.default_rng(2)
    real, fake = (3 * rng.standard_normal((37, 1))).astype(np.float32), (3 * rng.standard_normal((37, 1))).astype(np.float32)
    pygan.set_backend("numpy")
    ref = losses.get(name)
    want = ref.d_loss(real, fake), ref.g_loss(fake)
    be = _use(backend)
    got = losses.get(name).d_loss(be.xp.asarray(real), be.xp.asarray(fake)), losses.get(name).g_loss(be.xp.asarray(fake))
    pygan.set_backend("numpy")
    (v, gr, gf), (vg, gg) = got
    (wv, wgr, wgf), (wvg, wgg) = want
    assert v == pytest.approx(wv, rel=1e-5) and vg == pytest.approx(wvg, rel=1e-5)
    for a, b in ((gr, wgr), (gf, wgf), (gg, wgg)):
        np.testing.assert_allclose(_host(a), b, rtol=1e-5, atol=1e-8)
