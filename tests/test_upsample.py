"""nn.Upsample (nearest): finite differences, PyTorch as the oracle (incl. a penalty's double
backward through it), cuda-emu, errors."""
import numpy as np
import pytest

import pygan
from pygan import gradcheck, nn, penalties
from conftest import assert_close, compare_with_torch, torch_or_skip

CASES = [dict(scale_factor=2), dict(scale_factor=(3, 1)), dict(scale_factor=1), dict(size=7),
         dict(size=(5, 9)), dict(size=(3, 4)), dict(size=(8, 6))]   # input 3×4: also size = input


def _id(kw):
    return ",".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("kw", CASES, ids=_id)
def test_upsample_matches_finite_differences(rng, kw):
    gradcheck.check_module(nn.Upsample(**kw), rng.standard_normal((2, 3, 3, 4))).raise_if_failed()


@pytest.mark.parametrize("kw", CASES + [dict(size=(13, 17)), dict(size=(29, 30))], ids=_id)
def test_upsample_equals_torch(rng, kw):
    torch = torch_or_skip()
    y, _ = compare_with_torch(nn.Upsample(**kw), torch.nn.Upsample(**kw), rng.standard_normal((2, 3, 3, 4)))
    assert y.shape[2:] == nn.Upsample(**kw).output_shape((2, 3, 3, 4))[2:]


def _critic(nn_):
    return nn_.Sequential(nn_.Conv2d(2, 3, 3, padding=1), nn_.Tanh(), nn_.Upsample(scale_factor=2),
                          nn_.Conv2d(3, 2, 3, stride=2), nn_.Sigmoid(), nn_.Upsample(size=(4, 5)),
                          nn_.Flatten(), nn_.Linear(40, 1))


@pytest.mark.parametrize("kind", ["gp", "r1"])
def test_penalties_through_upsample_equal_torch_and_finite_differences(rng, kind):
    torch = torch_or_skip()
    from test_penalties import _assert_equals_torch
    real, fake, alpha = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((3, 2, 4, 4)), rng.random(3)
    D = _critic(nn)
    if kind == "gp":
        gradcheck.check_penalty(penalties.gradient_penalty, D, real, fake, alpha=alpha).raise_if_failed()
    else:
        gradcheck.check_penalty(penalties.r1_penalty, D, real).raise_if_failed()
    _assert_equals_torch(torch, D.double(), _critic(torch.nn).double(), kind, real, fake, alpha, None)


def test_upsample_tangent_adjoint_is_its_backward(rng):
    m = nn.Upsample(size=(5, 7)).double()
    x, u = rng.standard_normal((2, 1, 3, 4)), rng.standard_normal((2, 1, 3, 4))
    y = m(x)
    g, gd = rng.standard_normal(y.shape), rng.standard_normal(y.shape)
    np.testing.assert_array_equal(m.jvp(u), m(u))
    gx, gdx = m.backward_jvp(g, gd)
    np.testing.assert_array_equal(gx, m.backward(g))
    np.testing.assert_array_equal(gdx, m.backward(gd))
    # adjointness: ⟨Pu, g⟩ = ⟨u, Pᵀg⟩
    assert abs(np.vdot(m(u), g) - np.vdot(u, m.backward(g))) < 1e-12


@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(size=(5, 7))], ids=_id)
def test_upsample_on_cuda_emu_equals_numpy(rng, kw):
    from pygan.backend.cuda_emu import _import_extension
    if _import_extension()[0] is None:
        pytest.skip("no pygan._cuda_emu")
    x = rng.standard_normal((2, 3, 3, 4)).astype(np.float32)
    gy = rng.standard_normal(nn.Upsample(**kw).output_shape(x.shape)).astype(np.float32)
    out = []
    for backend in ("numpy", "cuda-emu"):
        pygan.set_backend(backend)
        m = nn.Upsample(**kw)
        out.append((m(x), m.backward(gy)))
    assert_close(out[1][0], out[0][0], 2e-6, "forward")
    assert_close(out[1][1], out[0][1], 2e-6, "input gradient")


def test_upsample_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"^Upsample\(scale_factor=2\): expected input \(N, C, H, W\), "
                                         r"got \(64, 784\)$"):
        nn.Upsample(scale_factor=2)(np.zeros((64, 784), np.float32))
    m = nn.Upsample(size=(4, 6))
    m(np.zeros((1, 2, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"Upsample\(size=\(4, 6\)\): backward got gy of shape \(1, 2, 4, 4\), "
                                         r"expected \(1, 2, 4, 6\)"):
        m.backward(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="give exactly one of size and scale_factor"):
        nn.Upsample()
    with pytest.raises(ValueError, match="scale_factor must be a positive integer"):
        nn.Upsample(scale_factor=1.5)
    with pytest.raises(NotImplementedError, match="mode 'bicubic' is not implemented"):
        nn.Upsample(scale_factor=2, mode="bicubic")
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2, mode='nearest')"
