"""nn.InstanceNorm2d: finite differences (train / eval, affine or not, with and without running
statistics), PyTorch as the oracle (forward, gradients, buffers, state dicts, a penalty's double
backward), the penalty by finite differences, cuda-emu, errors."""
import copy

import numpy as np
import pytest

import pygan
from pygan import gradcheck, nn, penalties
from conftest import assert_close, compare_with_torch, torch_or_skip


def _randomise(m, rng):
    if m.weight is not None:
        m.weight.data[...] = rng.uniform(0.5, 1.5, m.weight.shape)
        m.bias.data[...] = rng.standard_normal(m.bias.shape)
    if m.running_mean is not None:
        m.running_mean[...] = rng.standard_normal(m.running_mean.shape)
        m.running_var[...] = rng.uniform(0.5, 2.0, m.running_var.shape)
    return m


CONFIGS = [dict(affine=False), dict(affine=True), dict(affine=True, track_running_stats=True),
           dict(affine=False, track_running_stats=True, momentum=0.3),
           dict(affine=True, track_running_stats=True, momentum=None)]


def _id(kw):
    return ",".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kw", CONFIGS, ids=_id)
def test_instancenorm_matches_finite_differences(rng, kw, train):
    m = _randomise(nn.InstanceNorm2d(3, **kw), rng).train(train)
    gradcheck.check_module(m, rng.standard_normal((2, 3, 3, 4)) * 2 + 0.5).raise_if_failed()


@pytest.mark.parametrize("shape", [(2, 3, 3, 4), (1, 3, 1, 5), (3, 5, 4)], ids=str)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kw", CONFIGS, ids=_id)
def test_instancenorm_equals_torch(rng, kw, train, shape):
    torch = torch_or_skip()
    c = shape[1] if len(shape) == 4 else shape[0]
    m = _randomise(nn.InstanceNorm2d(c, **kw), rng).train(train)
    t = torch.nn.InstanceNorm2d(c, **kw)
    compare_with_torch(m, t, rng.standard_normal(shape) * 2 + 0.5)
    if m.running_mean is not None:                 # the buffers after a second batch too
        x2 = rng.standard_normal(shape)
        m(x2)
        t(torch.from_numpy(x2))
        for name in ("running_mean", "running_var"):
            assert_close(getattr(m, name), getattr(t, name).numpy(), 1e-12, name)
        assert int(m.num_batches_tracked) == int(t.num_batches_tracked) == 0


def test_state_dict_round_trip_with_torch(rng):
    torch = torch_or_skip()
    t = torch.nn.InstanceNorm2d(4, affine=True, track_running_stats=True).double()
    t(torch.randn(3, 4, 5, 5, dtype=torch.float64))           # non-trivial running statistics
    with torch.no_grad():
        t.weight.uniform_(0.5, 1.5)
        t.bias.normal_()
    m = nn.InstanceNorm2d(4, affine=True, track_running_stats=True).double()
    assert list(m.state_dict()) == list(t.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                                            "num_batches_tracked"]
    m.load_state_dict(t.state_dict())
    assert m.num_batches_tracked.shape == ()
    x = rng.standard_normal((2, 4, 3, 3))
    for mode in (True, False):
        assert_close(m.train(mode)(x), t.train(mode)(torch.from_numpy(x)).detach().numpy(), 1e-12,
                     f"output after loading torch's state (train={mode})")
    assert list(nn.InstanceNorm2d(4).state_dict()) == list(torch.nn.InstanceNorm2d(4).state_dict()) == []


def _critic(nn_, kw):
    return nn_.Sequential(nn_.Conv2d(2, 3, 3, padding=1), nn_.InstanceNorm2d(3, **kw), nn_.Tanh(),
                          nn_.Conv2d(3, 2, 3, stride=2, padding=1), nn_.InstanceNorm2d(2, **kw), nn_.LeakyReLU(0.2),
                          nn_.Flatten(), nn_.Linear(8, 1))


PEN_CONFIGS = [(dict(affine=False), True), (dict(affine=True), True),
               (dict(affine=True, track_running_stats=True), False)]


def _pen_ids(case):
    return _id(case[0]) + (",train" if case[1] else ",eval")


@pytest.mark.parametrize("kind", ["gp", "r1"])
@pytest.mark.parametrize("case", PEN_CONFIGS, ids=_pen_ids)
def test_penalties_through_instancenorm_match_finite_differences_and_torch(rng, case, kind):
    torch = torch_or_skip()
    from test_penalties import _assert_equals_torch, _Opaque
    kw, train = case
    D = _critic(nn, kw)
    for m in D:
        if isinstance(m, nn.InstanceNorm2d):
            _randomise(m, rng)
    D.train(train)
    real, fake, alpha = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((3, 2, 4, 4)), rng.random(3)
    if kind == "gp":
        gradcheck.check_penalty(penalties.gradient_penalty, D, real, fake, alpha=alpha).raise_if_failed()
        gradcheck.check_penalty(penalties.gradient_penalty, _Opaque(D), real, fake, alpha=alpha).raise_if_failed()
    else:
        gradcheck.check_penalty(penalties.r1_penalty, D, real).raise_if_failed()
    TD = _critic(torch.nn, kw).double().train(train)
    _assert_equals_torch(torch, D.double(), TD, kind, real, fake, alpha, None)


def test_instancenorm_on_cuda_emu_equals_numpy(rng):
    from pygan.backend.cuda_emu import _import_extension
    if _import_extension()[0] is None:
        pytest.skip("no pygan._cuda_emu")
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    out = []
    for backend in ("numpy", "cuda-emu"):
        pygan.set_backend("numpy")
        m = _randomise(nn.InstanceNorm2d(3, affine=True, track_running_stats=True), np.random.default_rng(0))
        pygan.set_backend(backend)
        y = m(x)
        gx = m.backward(gy)
        out.append((y, gx, m.weight.grad.copy(), m.bias.grad.copy(), m.running_var.copy()))
    for a, b, what in zip(out[1], out[0], ["forward", "input gradient", "∂γ", "∂β", "running_var"]):
        assert_close(a, b, 2e-6, what)


def test_instancenorm_errors_name_the_layer(rng):
    m = nn.InstanceNorm2d(3)
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(3\): expected input of rank 4 \(N, 3, H, W\), got shape \(4, 3\)"):
        m(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(3\): expected input \(N, 3, H, W\), got \(2, 4, 3, 3\)"):
        m(np.zeros((2, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match="more than 1 spatial element when training"):
        m(np.zeros((2, 3, 1, 1), np.float32))
    m(np.zeros((2, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"InstanceNorm2d\(3\): backward got gy of shape \(2, 3, 2, 3\), "
                                         r"expected \(2, 3, 2, 2\)"):
        m.backward(np.zeros((2, 3, 2, 3), np.float32))
    with pytest.raises(ValueError, match="InstanceNorm2d: num_features must be a positive integer, got 2.5"):
        nn.InstanceNorm2d(2.5)
    assert repr(nn.InstanceNorm2d(3)) == ("InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, "
                                          "track_running_stats=False)")
