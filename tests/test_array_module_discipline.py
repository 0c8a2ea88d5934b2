"""No module under pygan/ may call NumPy on array data where it should use the backend's ``xp``.

Every layer (forward, backward and, for critic layers, jvp/backward_jvp), every loss, every
optimizer and every penalty runs under :func:`strict_xp.strict_backend`, whose arrays are not
NumPy arrays (a stand-in for CuPy on the CPU).  A violation — a NumPy array mixed with device
arrays, a device array converted to NumPy, ``np.<f>`` called on device data, a host array
written into a device array, or a layer returning / storing a host array — is reported with the
file:line of the pygan code that did it (and where the NumPy array was created).  Results are
also compared with the numpy backend, so the strict run computes the same thing.

Known leaks in code this file does not own are marked ``xfail(strict=True)`` with the leak and
its fix: fixing one makes its case XPASS, which fails the suite until the mark is removed.
"""
from __future__ import annotations

import numpy as np
import pytest

import pygan
from pygan import losses, nn, optim, penalties
from pygan.models.pix2pix import NLayerDiscriminator, UnetGenerator

from strict_xp import (STRICT, StrictArray, StrictLeak, check_device, check_module_state, instrument,
                       strict_backend, to_device, to_host)


def _close(mine, ref, what, rtol=1e-10):
    mine, ref = np.asarray(to_host(mine), np.float64), np.asarray(ref, np.float64)
    assert mine.shape == ref.shape, f"{what}: shape {mine.shape} vs {ref.shape}"
    scale = max(np.abs(ref).max(initial=0), 1e-300)
    err = np.abs(mine - ref).max(initial=0) / scale
    assert err <= rtol, f"{what}: strict run differs from the numpy backend (relative error {err:.2e})"


# =============================================================================================
# layers
# =============================================================================================

def _critic_mlp():
    return nn.Sequential(nn.Linear(5, 8), nn.LeakyReLU(0.2), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 1),
                         nn.Sigmoid())


def _critic_conv():
    return nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Flatten(),
                         nn.Linear(3 * 3 * 3, 1))


def _critic_norm():
    return nn.Sequential(nn.Linear(5, 6), nn.LayerNorm(6), nn.ReLU(), nn.Dropout(0.3), nn.Linear(6, 4),
                         nn.BatchNorm1d(4), nn.Unflatten(1, (2, 2)), nn.Flatten(), nn.Linear(4, 1))


def _cbn():
    from pygan.gradcheck.suite import ConditionAsParameter
    c = np.random.default_rng(0).standard_normal((2, 4))
    return ConditionAsParameter(nn.ConditionalBatchNorm2d(3, 4, init_std=0.5), c)


def _sn(layer):
    return nn.spectral_norm(layer)


# id: (constructor, input shape or ("int", high, shape), train mode, second order)
LAYERS = {
    "Linear": (lambda: nn.Linear(5, 3), (4, 5), True, True),
    "Linear-nobias-3d": (lambda: nn.Linear(5, 3, bias=False), (2, 3, 5), True, True),
    "Conv2d-s2p1": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 7, 6), True, True),
    "Conv2d-rect": (lambda: nn.Conv2d(2, 3, (3, 2), stride=(1, 2)), (2, 2, 5, 6), True, True),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1, output_padding=1),
                        (2, 3, 4, 3), True, True),
    "BatchNorm1d-train": (lambda: nn.BatchNorm1d(4), (6, 4), True, False),
    "BatchNorm1d-3d-train": (lambda: nn.BatchNorm1d(4, momentum=None), (3, 4, 5), True, False),
    "BatchNorm2d-train": (lambda: nn.BatchNorm2d(3), (2, 3, 4, 4), True, False),
    "BatchNorm2d-eval": (lambda: nn.BatchNorm2d(3), (2, 3, 4, 4), False, True),
    "LayerNorm": (lambda: nn.LayerNorm((4, 5)), (3, 4, 5), True, True),
    "ReLU": (nn.ReLU, (4, 6), True, True),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), (4, 6), True, True),
    "Tanh": (nn.Tanh, (4, 6), True, True),
    "Sigmoid": (nn.Sigmoid, (4, 6), True, True),
    "Flatten": (nn.Flatten, (2, 3, 4), True, True),
    "Unflatten": (lambda: nn.Unflatten(1, (2, 3)), (4, 6), True, True),
    "Dropout-train": (lambda: nn.Dropout(0.3), (5, 7), True, True),
    "Dropout-p1": (lambda: nn.Dropout(1.0), (5, 7), True, True),
    "Dropout-eval": (lambda: nn.Dropout(0.3), (5, 7), False, True),
    "Embedding-onehot": (lambda: nn.Embedding(10, 4), ("int", 10, (3, 5)), True, False),
    "Embedding-sorted": (lambda: nn.Embedding(5000, 3), ("int", 5000, (12,)), True, False),
    "SpectralNorm-Linear": (lambda: _sn(nn.Linear(5, 3)), (4, 5), True, True),
    "SpectralNorm-Conv2d": (lambda: _sn(nn.Conv2d(2, 3, 3)), (2, 2, 5, 5), True, True),
    "SpectralNorm-ConvT": (lambda: _sn(nn.ConvTranspose2d(2, 3, 3, stride=2)), (2, 2, 3, 3), True, True),
    "Identity": (nn.Identity, (4, 6), True, True),
    "Residual-conv": (lambda: nn.Residual(nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(),
                                                        nn.Conv2d(3, 2, 3, padding=1)), nn.Conv2d(2, 2, 1)),
                      (2, 2, 5, 4), True, True),
    "Residual-identity": (lambda: nn.Residual(nn.Sequential(nn.Linear(6, 6), nn.Sigmoid())), (4, 6), True, True),
    "ConcatSkip": (lambda: nn.ConcatSkip(nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                                                       nn.ConvTranspose2d(3, 2, 2, stride=2))), (2, 2, 4, 6), True, True),
    "Upsample-scale": (lambda: nn.Upsample(scale_factor=2), (2, 3, 3, 4), True, True),
    "Upsample-size": (lambda: nn.Upsample(size=(5, 7)), (2, 3, 3, 4), True, True),
    "Dropout2d-train": (lambda: nn.Dropout2d(0.4), (3, 4, 2, 3), True, True),
    "Dropout2d-eval": (lambda: nn.Dropout2d(0.4), (3, 4, 2, 3), False, True),
    "ConditionalBatchNorm2d-train": (lambda: _cbn(), (2, 3, 4, 3), True, False),
    "ConditionalBatchNorm2d-eval": (lambda: _cbn(), (2, 3, 4, 3), False, False),
    "InstanceNorm2d": (lambda: nn.InstanceNorm2d(3), (2, 3, 4, 3), True, True),
    "InstanceNorm2d-affine-running": (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
                                      (2, 3, 4, 3), True, True),
    "InstanceNorm2d-eval-running": (lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
                                    (2, 3, 4, 3), False, True),
    "UnetGenerator-28": (lambda: UnetGenerator(1, 1, 4, ngf=2, image_size=28), (2, 1, 28, 28), True, False),
    # no norm where a bias feeds InstanceNorm: its gradient is 0 in theory, rounding noise on both sides
    "UnetGenerator-nearest-no-norm": (lambda: UnetGenerator(1, 1, 4, ngf=2, norm_layer=lambda c: nn.Identity(),
                                                            image_size=28, up="nearest"), (2, 1, 28, 28), True, True),
    "PatchGAN-no-norm": (lambda: NLayerDiscriminator(2, ndf=2, n_layers=1, norm_layer=lambda c: nn.Identity()),
                         (2, 2, 28, 28), True, True),
    "critic-MLP": (_critic_mlp, (4, 5), True, True),
    "critic-conv": (_critic_conv, (2, 2, 6, 6), True, True),
    "MLP-norm-dropout": (_critic_norm, (6, 5), True, False),
}

# Leaks found in code this file does not own: case id -> (where, fix).  See the module docstring.
KNOWN_LEAKS: dict[str, str] = {}


def _input(spec, rng):
    if spec[0] == "int":
        return rng.integers(0, spec[1], size=spec[2])
    x = rng.standard_normal(spec)
    x[np.abs(x) < 1e-3] = 0.5                  # away from ReLU's kink
    return x


def _run_layer(make, x, train, second_order, rng, backend_is_strict):
    dev = to_device if backend_is_strict else (lambda a: a)
    pygan.manual_seed(7)
    m = make()
    if x.dtype.kind == "f":
        m.double()
    m.train(train)
    if backend_is_strict:
        instrument(m)
    if not train and any(isinstance(s, nn.BatchNorm2d) for s in m.modules()):
        m(dev(x))                                # eval statistics: any running stats will do
    out = {}
    y = m(dev(x))
    gy = rng.standard_normal(tuple(y.shape))
    out["y"] = y
    out["gx"] = m.backward(dev(gy))
    if second_order:
        u = rng.standard_normal(x.shape)
        out["dy"] = m.jvp(dev(u))
        g2 = rng.standard_normal(tuple(out["dy"].shape))
        out["bjvp"] = m.backward_jvp(dev(gy), dev(g2))
    for name, p in m.named_parameters():
        out["grad " + name] = p.grad
    for name, b in m.named_buffers():
        out["buffer " + name] = b
    sd = m.state_dict()                          # checkpoints: host copies
    return out, sd


def _compare(strict_out, ref_out, case):
    for k, ref in ref_out.items():
        mine = strict_out[k]
        if ref is None:
            assert mine is None, f"{case} {k}"
        elif isinstance(ref, tuple):
            for i, (a, b) in enumerate(zip(mine, ref)):
                if b is not None:
                    _close(a, b, f"{case} {k}[{i}]")
        else:
            _close(mine, ref, f"{case} {k}")


def _xfail_known(cases):
    return [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_LEAKS[c])) if c in KNOWN_LEAKS
            else c for c in cases]


@pytest.mark.parametrize("case", _xfail_known(LAYERS))
def test_layer_uses_only_the_backend_array_module(case):
    make, spec, train, second_order = LAYERS[case]
    x = _input(spec, np.random.default_rng(1))
    ref, _ = _run_layer(make, x, train, second_order, np.random.default_rng(2), False)
    with strict_backend() as rec:
        out, sd = _run_layer(make, x, train, second_order, np.random.default_rng(2), True)
        for k, v in sd.items():
            assert type(v) is np.ndarray, f"state_dict()[{k!r}] is {type(v).__name__}, not a host array"
    rec.raise_if_any(case)
    _compare(out, ref, case)


# =============================================================================================
# losses
# =============================================================================================

LOSSES = {name: (lambda name=name: losses.get(name)) for name in losses.names()}
LOSSES["least_squares(-1,1,0)"] = lambda: losses.get("least_squares", a=-1, b=1, c=0)


def _run_loss(make, r, f, dev):
    loss = make()
    out = {}
    out["d_loss"] = loss.d_loss(dev(r), dev(f))
    out["d_real"] = loss.d_real(dev(r))
    out["d_fake"] = loss.d_fake(dev(f))
    out["g_loss"] = loss.g_loss(dev(f))
    return out


@pytest.mark.parametrize("case", _xfail_known(LOSSES))
def test_loss_uses_only_the_backend_array_module(case):
    rng = np.random.default_rng(3)
    r, f = rng.standard_normal((6, 1)) * 3, rng.standard_normal((5, 1)) * 3
    r[0, 0], f[0, 0] = 1e4, -1e4                     # the stable tails take other branches
    ref = _run_loss(LOSSES[case], r, f, lambda a: a)
    with strict_backend() as rec:
        out = _run_loss(LOSSES[case], r, f, to_device)
        for k, v in out.items():
            assert isinstance(v[0], float), f"{case}.{k}: the value is {type(v[0]).__name__}, not a float"
            check_device(v[1:], f"{case}.{k} gradients")
    rec.raise_if_any(case)
    for k in ref:
        assert out[k][0] == pytest.approx(ref[k][0], rel=1e-12), f"{case}.{k} value"
        for a, b in zip(out[k][1:], ref[k][1:]):
            _close(a, b, f"{case}.{k} gradient")


def test_loss_on_a_logit_map_and_l1_use_only_the_backend_array_module():
    rng = np.random.default_rng(4)
    r, f = rng.standard_normal((2, 1, 3, 4)) * 3, rng.standard_normal((3, 1, 3, 4)) * 3
    p, t = rng.standard_normal((2, 1, 5, 5)), rng.standard_normal((2, 1, 5, 5))
    refs = {name: _run_loss(make, r, f, lambda a: a) for name, make in LOSSES.items()}
    ref_l1 = losses.l1_loss(p, t)
    with strict_backend() as rec:
        outs = {name: _run_loss(make, r, f, to_device) for name, make in LOSSES.items()}
        l1 = losses.l1_loss(to_device(p), to_device(t))
        check_device([l1[1]], "l1_loss gradient")
    rec.raise_if_any("logit map / l1_loss")
    for name, out in outs.items():
        for k in out:
            assert out[k][0] == pytest.approx(refs[name][k][0], rel=1e-12), f"{name}.{k} value on a map"
            for a, b in zip(out[k][1:], refs[name][k][1:]):
                _close(a, b, f"{name}.{k} gradient on a map")
    assert isinstance(l1[0], float) and l1[0] == pytest.approx(ref_l1[0], rel=1e-12)
    _close(l1[1], ref_l1[1], "l1_loss gradient")


def test_nonfinite_loss_error_works_on_device_arrays():
    with strict_backend() as rec:
        x = to_device(np.array([0.0, np.nan, 1.0]))
        with pytest.raises(losses.NonFiniteLoss, match="1 NaN"):
            losses.get("minimax").d_fake(x)
    rec.raise_if_any("NonFiniteLoss")


# =============================================================================================
# optimizers
# =============================================================================================

OPTIMIZERS = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.1),
    "SGD-nesterov-wd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "SGD-dampening": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.5),
    "Adam": lambda ps: optim.Adam(ps, lr=1e-2, betas=(0.5, 0.999)),
    "Adam-amsgrad-wd": lambda ps: optim.Adam(ps, lr=1e-2, amsgrad=True, weight_decay=0.1),
    "RMSProp": lambda ps: optim.RMSProp(ps, lr=1e-2),
    "RMSProp-centered-momentum": lambda ps: optim.RMSProp(ps, lr=1e-2, centered=True, momentum=0.5, weight_decay=0.1),
}


def _run_optimizer(make, dev, dtype):
    pygan.manual_seed(11)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).to(dtype)
    opt = make(m.parameters())
    rng = np.random.default_rng(5)
    for _ in range(3):
        opt.zero_grad()
        for p in m.parameters():
            p.grad += dev(rng.standard_normal(p.shape).astype(dtype))
        opt.step()
    state = opt.state_dict()
    opt2 = make(m.parameters())
    opt2.load_state_dict(state)
    opt2.step()
    return [p.data for p in m.parameters()], state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", _xfail_known(OPTIMIZERS))
def test_optimizer_uses_only_the_backend_array_module(case, dtype):
    ref, ref_state = _run_optimizer(OPTIMIZERS[case], lambda a: a, dtype)
    with strict_backend() as rec:
        out, state = _run_optimizer(OPTIMIZERS[case], to_device, dtype)
        for k, v in state.items():
            assert not isinstance(v, StrictArray), f"{case}.state_dict()[{k!r}] is a device array"
        for i, p in enumerate(out):
            check_device(p, f"{case}: parameter {i} after step")
    rec.raise_if_any(case)
    for i, (a, b) in enumerate(zip(out, ref)):
        _close(a, b, f"{case} parameter {i}", rtol=0)        # bit-identical to the numpy backend
    assert sorted(state) == sorted(ref_state)


# =============================================================================================
# penalties
# =============================================================================================

def _critic():
    return nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.2), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))


PENALTIES = {
    "gradient_penalty-rng": lambda D, r, f, dev: penalties.gradient_penalty(D, r, f, lam=10.0,
                                                                            rng=np.random.default_rng(9)),
    "gradient_penalty-alpha": lambda D, r, f, dev: penalties.gradient_penalty(
        D, r, f, alpha=dev(np.linspace(0.1, 0.9, r.shape[0]))),
    "r1_penalty": lambda D, r, f, dev: penalties.r1_penalty(D, r, gamma=5.0),
    "lipschitz_penalty": lambda D, r, f, dev: penalties.lipschitz_penalty(D, r, f, rng=np.random.default_rng(9)),
    "lipschitz_penalty-one-sided-t": lambda D, r, f, dev: penalties.lipschitz_penalty(
        D, r, f, one_sided=True, t=dev(np.random.default_rng(4).random((r.shape[0], 2)))),
    "clip_weights": lambda D, r, f, dev: penalties.clip_weights(D, 0.05),
}


def _run_penalty(fn, dev):
    pygan.manual_seed(13)
    D = _critic().double()
    rng = np.random.default_rng(6)
    real, fake = dev(rng.standard_normal((5, 4))), dev(rng.standard_normal((5, 4)))
    value = fn(D, real, fake, dev)
    return value, [p.grad for p in D.parameters()] + [p.data for p in D.parameters()], D


@pytest.mark.parametrize("case", _xfail_known(PENALTIES))
def test_penalty_uses_only_the_backend_array_module(case):
    ref_value, ref, _ = _run_penalty(PENALTIES[case], lambda a: a)
    with strict_backend() as rec:
        value, out, D = _run_penalty(PENALTIES[case], to_device)
        assert value is None or isinstance(value, float), f"{case} returned {type(value).__name__}"
        check_module_state(D, case)
    rec.raise_if_any(case)
    if value is not None:
        assert value == pytest.approx(ref_value, rel=1e-12)
    for i, (a, b) in enumerate(zip(out, ref)):
        _close(a, b, f"{case} array {i}")


# =============================================================================================
# the strict module itself: it must be able to fail, and say where
# =============================================================================================

class _LeakyAdd(nn.Module):
    def forward(self, x):
        bias = np.zeros(x.shape[-1])                     # the leak: should be xp.zeros
        return x + bias

    def backward(self, gy):
        return gy


class _LeakyReturn(nn.Module):
    def forward(self, x):
        return np.asarray(x) * 2                         # converts a device array to NumPy

    def backward(self, gy):
        return gy


def test_strict_backend_reports_a_host_array_mixed_into_device_work_with_its_line():
    with strict_backend() as rec:
        _LeakyAdd()(to_device(np.ones((2, 3))))
    kinds = {v.kind for v in rec.violations}
    assert kinds == {"host-mix"}, rec.report()
    v = rec.violations[0]
    line = _LeakyAdd.forward.__code__.co_firstlineno + 2
    assert f"test_array_module_discipline.py:{line}" in v.site, v
    with pytest.raises(StrictLeak, match="host-mix"):
        rec.raise_if_any("leaky")


def test_strict_backend_reports_implicit_conversion_and_host_results():
    m = _LeakyReturn()
    with strict_backend() as rec:
        instrument(m)
        m(to_device(np.ones(3)))
    kinds = sorted({v.kind for v in rec.violations})
    assert kinds == ["host-out", "to-numpy"], rec.report()


def test_strict_backend_names_the_pygan_line_of_a_numpy_only_kernel():
    # pygan.backend.conv_numpy is NumPy's reference kernel, not written against xp: run on device
    # arrays it must be reported at its own lines
    from pygan.backend import conv_numpy
    with strict_backend() as rec:
        conv_numpy.conv2d_forward(to_device(np.ones((2, 3, 5, 5))), to_device(np.ones((4, 3, 3, 3))), (1, 1), (1, 1))
    assert any(v.kind == "to-numpy" and v.site.startswith("pygan/backend/conv_numpy.py:") for v in rec.violations), \
        rec.report()


def test_strict_backend_says_where_a_pygan_module_made_the_numpy_array():
    import pygan.nn.linear as linear

    class Leaky(nn.Module):
        def forward(self, x):
            bias = linear.np.zeros(x.shape[-1])          # pygan's (traced) np global
            return x + bias
    with strict_backend() as rec:
        Leaky()(to_device(np.ones((2, 3))))
    line = Leaky.forward.__code__.co_firstlineno + 1
    (v,) = rec.violations
    assert v.kind == "host-mix" and v.created == f"np.zeros at test_array_module_discipline.py:{line} in forward", v


def test_strict_backend_restores_the_previous_backend_and_numpy():
    import pygan.nn.linear as linear
    before = pygan.get_backend()
    with strict_backend():
        assert pygan.get_backend().xp is STRICT
        assert linear.np is not np
    assert pygan.get_backend() is before and linear.np is np


def test_strict_arrays_are_not_numpy_arrays():
    d = to_device(np.arange(6.0).reshape(2, 3))
    assert not isinstance(d, np.ndarray) and isinstance(d, STRICT.ndarray)
    assert isinstance(d.sum(), StrictArray) and float(d.sum()) == 15.0   # 0-d device results, like CuPy
    assert not hasattr(d, "__array_interface__")
    np.testing.assert_array_equal(d.T.get(), np.arange(6.0).reshape(2, 3).T)


# =============================================================================================
# ready-made models: one G/D step and a gradient penalty through the critic
# =============================================================================================

MODELS = {
    "mlp": {},
    "dcgan-8": {},
    "dcgan-8-sn-nobn": {"spectral_norm": True, "batchnorm_in_d": False},
    "cgan-8-projection": {},
    "cgan-8-concat": {"conditioning": "concat"},
    "biggan-28": {"width": 4},
}


@pytest.mark.parametrize("case", _xfail_known(MODELS))
def test_model_step_uses_only_the_backend_array_module(case):
    from pygan import models
    name = case.split("-sn")[0].rsplit("-projection", 1)[0].rsplit("-concat", 1)[0]
    kw = MODELS[case]
    with strict_backend() as rec:
        pygan.manual_seed(0)
        m = models.build(name, **kw)
        instrument(m.G)
        instrument(m.D)
        rng = np.random.default_rng(0)
        z, labels = m.sample_z(4, rng), m.sample_labels(4, rng)
        check_device((z, labels), f"{case} sample_z / sample_labels")
        x = m.g_forward(z, labels)
        value, g = losses.get("nonsaturating").g_loss(m.d_forward(x, labels))
        m.g_backward(m.d_backward(g))
        if kw.get("batchnorm_in_d", True) is False or name == "mlp":
            penalties.gradient_penalty(m.critic(labels), x, x * x.dtype.type(0.5), rng=rng)
    rec.raise_if_any(case)
