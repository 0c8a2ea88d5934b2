"""Identity, Residual and ConcatSkip (pix2pix's U-Net skip): finite differences, PyTorch as the
oracle (forward, gradients, the penalties' double backward), state dicts, cuda-emu, errors; and
the ``inplace`` argument of ReLU / LeakyReLU."""
import copy

import numpy as np
import pytest

import pygan
from pygan import gradcheck, nn, penalties
from conftest import assert_close, compare_with_torch, torch_or_skip


def _torch_modules(torch):
    """The same compositions written in PyTorch."""
    class TResidual(torch.nn.Module):
        def __init__(self, main, shortcut=None):
            super().__init__()
            self.main = main
            self.shortcut = shortcut if shortcut is not None else torch.nn.Identity()

        def forward(self, x):
            return self.main(x) + self.shortcut(x)

    class TConcatSkip(torch.nn.Module):
        def __init__(self, submodule, dim=1):
            super().__init__()
            self.submodule, self.dim = submodule, dim

        def forward(self, x):
            return torch.cat([x, self.submodule(x)], self.dim)
    return TResidual, TConcatSkip


def res_block(nn_, Res, c=3):
    """A BigGAN-style block: Conv-LeakyReLU-Conv main, 1×1 Conv shortcut."""
    return Res(nn_.Sequential(nn_.Conv2d(c, 4, 3, padding=1), nn_.LeakyReLU(0.2), nn_.Conv2d(4, c, 3, padding=1)),
               nn_.Conv2d(c, c, 1))


def unet(nn_, Cat, norm):
    """A 3-level recursive U-Net of UnetSkipConnectionBlock's shape on (N, 2, 8, 8) input:
    each level is cat([x, up(sub(down(x)))], 1)."""
    inner = Cat(nn_.Sequential(nn_.LeakyReLU(0.2), nn_.Conv2d(4, 4, 4, stride=2, padding=1), nn_.ReLU(),
                               nn_.ConvTranspose2d(4, 4, 4, stride=2, padding=1), norm(nn_, 4)))
    mid = Cat(nn_.Sequential(nn_.LeakyReLU(0.2), nn_.Conv2d(3, 4, 4, stride=2, padding=1), norm(nn_, 4), inner,
                             nn_.ReLU(), nn_.ConvTranspose2d(8, 3, 4, stride=2, padding=1), norm(nn_, 3)))
    return nn_.Sequential(nn_.Conv2d(2, 3, 3, padding=1), mid, nn_.ReLU(), nn_.ConvTranspose2d(6, 2, 3, padding=1),
                          nn_.Tanh())


def _bn(nn_, c):
    return nn_.BatchNorm2d(c)


def _randomise_bn(m, rng):
    for sub in m.modules():
        if isinstance(sub, nn.BatchNorm2d):
            sub.weight.data[...] = rng.uniform(0.5, 1.5, sub.weight.shape)
            sub.bias.data[...] = rng.standard_normal(sub.bias.shape)
            sub.running_mean[...] = rng.standard_normal(sub.running_mean.shape) * 0.1
            sub.running_var[...] = rng.uniform(0.5, 2.0, sub.running_var.shape)
    return m


# --- finite differences ----------------------------------------------------------------------

def test_identity_backward_and_tangent(rng):
    gradcheck.check_module(nn.Identity(), rng.standard_normal((3, 4))).raise_if_failed()
    m = nn.Identity(54, unused_argument=0.1)            # torch's Identity ignores arguments
    x = rng.standard_normal((2, 3))
    assert m(x) is x and m.jvp(x) is x
    assert m.backward_jvp(None, x) == (None, x)


@pytest.mark.parametrize("shortcut", ["identity", "conv"])
def test_residual_matches_finite_differences(rng, shortcut):
    m = res_block(nn, nn.Residual) if shortcut == "conv" else nn.Residual(
        nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 4)))
    x = rng.standard_normal((2, 3, 5, 4) if shortcut == "conv" else (5, 4))
    gradcheck.check_module(m, x).raise_if_failed()


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_unet_of_concat_skips_matches_finite_differences(rng, train):
    m = _randomise_bn(unet(nn, nn.ConcatSkip, _bn), rng).train(train)
    gradcheck.check_module(m, rng.standard_normal((2, 2, 8, 8)), max_elements=48).raise_if_failed()


def test_concat_skip_along_another_dim_matches_finite_differences(rng):
    m = nn.ConcatSkip(nn.Sequential(nn.Linear(3, 3), nn.Sigmoid()), dim=-2)
    gradcheck.check_module(m, rng.standard_normal((2, 4, 3))).raise_if_failed()


def test_backward_input_and_backward_params_agree_with_backward(rng):
    for m, shape in ((res_block(nn, nn.Residual).double(), (2, 3, 4, 4)),
                     (unet(nn, nn.ConcatSkip, _bn).double(), (2, 2, 8, 8))):
        x, gy = rng.standard_normal(shape), None
        y = m(x)
        gy = rng.standard_normal(y.shape)
        m.zero_grad()
        gx = m.backward(gy)
        grads = [p.grad.copy() for p in m.parameters()]
        m.zero_grad()
        m(x)
        np.testing.assert_array_equal(m.backward_input(gy), gx)
        assert all(not p.grad.any() for p in m.parameters())
        m(x)
        assert m.backward_params(gy) is None
        for p, g in zip(m.parameters(), grads):
            np.testing.assert_allclose(p.grad, g, rtol=1e-13, atol=1e-15)


# --- penalties through critics holding them ---------------------------------------------------

def critic(nn_, Res, Cat):
    """Residual with a curved (Tanh) main branch, then a ConcatSkip around a Sigmoid conv."""
    return nn_.Sequential(nn_.Conv2d(2, 3, 3, padding=1),
                          Res(nn_.Sequential(nn_.Tanh(), nn_.Conv2d(3, 3, 3, padding=1)), nn_.Conv2d(3, 3, 1)),
                          Cat(nn_.Sequential(nn_.Conv2d(3, 2, 3, stride=2, padding=1), nn_.Sigmoid(),
                                             nn_.ConvTranspose2d(2, 2, 2, stride=2))),
                          nn_.LeakyReLU(0.2), nn_.Flatten(), nn_.Linear(5 * 4 * 4, 1))


@pytest.mark.parametrize("kind", ["gp", "r1"])
def test_penalties_through_residual_and_concat_skip_match_finite_differences(rng, kind):
    D = critic(nn, nn.Residual, nn.ConcatSkip)
    real, fake = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((3, 2, 4, 4))
    if kind == "gp":
        rep = gradcheck.check_penalty(penalties.gradient_penalty, D, real, fake, alpha=rng.random(3))
    else:
        rep = gradcheck.check_penalty(penalties.r1_penalty, D, real)
    rep.raise_if_failed()


@pytest.mark.parametrize("kind", ["gp", "r1"])
def test_penalties_through_residual_and_concat_skip_equal_torch_double_backward(rng, kind):
    torch = torch_or_skip()
    from test_penalties import _assert_equals_torch
    TRes, TCat = _torch_modules(torch)
    D = critic(nn, nn.Residual, nn.ConcatSkip).double()
    TD = critic(torch.nn, TRes, TCat).double()
    real, fake = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((3, 2, 4, 4))
    _assert_equals_torch(torch, D, TD, kind, real, fake, rng.random(3), None)


# --- PyTorch as the oracle: forward, gradients, state dicts ------------------------------------

@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_unet_and_residual_equal_torch(rng, train):
    torch = torch_or_skip()
    TRes, TCat = _torch_modules(torch)
    m = _randomise_bn(unet(nn, nn.ConcatSkip, _bn), rng).train(train)
    compare_with_torch(m, unet(torch.nn, TCat, _bn), rng.standard_normal((2, 2, 8, 8)))
    compare_with_torch(res_block(nn, nn.Residual).train(train), res_block(torch.nn, TRes),
                       rng.standard_normal((2, 3, 5, 4)))


def test_state_dict_keys_are_torchs_and_a_torch_state_dict_loads(rng):
    torch = torch_or_skip()
    TRes, TCat = _torch_modules(torch)
    t = res_block(torch.nn, TRes).double()
    m = res_block(nn, nn.Residual).double()
    assert list(m.state_dict()) == list(t.state_dict()) == [
        "main.0.weight", "main.0.bias", "main.2.weight", "main.2.bias", "shortcut.weight", "shortcut.bias"]
    assert list(nn.Residual(nn.Linear(2, 2)).state_dict()) == ["main.weight", "main.bias"]
    m.load_state_dict(t.state_dict())
    x = rng.standard_normal((2, 3, 4, 4))
    assert_close(m(x), t(torch.from_numpy(x)).detach().numpy(), 1e-12, "Residual after loading torch's state")
    tu, mu = unet(torch.nn, TCat, _bn).double(), unet(nn, nn.ConcatSkip, _bn).double()
    assert list(mu.state_dict()) == list(tu.state_dict())
    assert "1.submodule.3.submodule.1.weight" in mu.state_dict()
    mu.load_state_dict(tu.state_dict())
    x = rng.standard_normal((2, 2, 8, 8))
    assert_close(mu.eval()(x), tu.eval()(torch.from_numpy(x)).detach().numpy(), 1e-12, "U-Net after loading")


# --- cuda-emu -------------------------------------------------------------------------------------

def test_unet_and_residual_on_cuda_emu_equal_numpy(rng):
    from pygan.backend.cuda_emu import _import_extension
    if _import_extension()[0] is None:
        pytest.skip("no pygan._cuda_emu")
    x = rng.standard_normal((2, 2, 8, 8)).astype(np.float32)
    outs = []
    for backend in ("numpy", "cuda-emu"):
        pygan.set_backend("numpy")
        pygan.manual_seed(5)
        m = nn.Sequential(unet(nn, nn.ConcatSkip, _bn), res_block(nn, nn.Residual, c=2))
        pygan.set_backend(backend)
        y = m(x)
        gx = m.backward(np.ones_like(y))
        outs.append((y, gx, [p.grad.copy() for p in m.parameters()]))
    (y0, g0, p0), (y1, g1, p1) = outs
    assert_close(y1, y0, 2e-6, "forward")
    assert_close(g1, g0, 2e-5, "input gradient")
    for a, b in zip(p1, p0):
        assert_close(a, b, 2e-5, "parameter gradient", atol=1e-4)   # biases feeding BatchNorm: ~0 ± 1e-5


# --- errors ---------------------------------------------------------------------------------------

def test_errors_name_the_layer_and_both_shapes(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    r = nn.Residual(nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r"Residual\(Linear.*main gives \(4, 2\) but shortcut gives \(4, 3\)"):
        r(x)
    r = nn.Residual(nn.Linear(3, 3))
    r(x)
    with pytest.raises(ValueError, match=r"Residual\(.*backward got gy of shape \(4, 2\), expected \(4, 3\)"):
        r.backward(np.ones((4, 2), np.float32))
    c = nn.ConcatSkip(nn.Linear(3, 2))
    assert c(x).shape == (4, 5)
    with pytest.raises(ValueError, match=r"ConcatSkip\(Linear.*dim=1\): backward got gy of shape \(4, 3\), "
                                         r"expected \(4, 5\)"):
        c.backward(x)
    with pytest.raises(ValueError, match=r"ConcatSkip\(.*submodule maps \(2, 3, 4, 4\) to \(2, 3, 2, 2\)"):
        nn.ConcatSkip(nn.Conv2d(3, 3, 3))(rng.standard_normal((2, 3, 4, 4)).astype(np.float32))
    with pytest.raises(TypeError, match="Residual: main must be a Module"):
        nn.Residual(3)
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward"):
        nn.ConcatSkip(nn.Identity()).backward(x)


# --- inplace ----------------------------------------------------------------------------------------

def test_relu_and_leaky_relu_accept_torchs_inplace_and_compute_out_of_place(rng):
    torch = torch_or_skip()
    assert nn.ReLU(True).inplace and nn.LeakyReLU(0.2, True).inplace and not nn.ReLU().inplace
    assert nn.LeakyReLU(0.2, True).negative_slope == 0.2
    x = rng.standard_normal((3, 4))
    for m, t in ((nn.ReLU(True), torch.nn.ReLU()), (nn.LeakyReLU(0.2, inplace=True), torch.nn.LeakyReLU(0.2))):
        x0 = x.copy()
        compare_with_torch(m, t, x)
        np.testing.assert_array_equal(x, x0)             # the input is left unchanged


def test_the_plain_tangent_adjoint_gives_the_same_penalty_gradient(rng):
    """Inside a Sequential the penalty reuses the input-gradient signals for ∂L/∂ẋ; wrapped so
    that it cannot, the compositions' own ∂L/∂ẋ (the split / summed tangent adjoint) is used."""
    from test_penalties import _Opaque
    D = critic(nn, nn.Residual, nn.ConcatSkip).double()
    real, fake, alpha = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((3, 2, 4, 4)), rng.random(3)
    D.zero_grad()
    v = penalties.gradient_penalty(D, real, fake, alpha=alpha)
    want = [p.grad.copy() for p in D.parameters()]
    D.zero_grad()
    assert penalties.gradient_penalty(_Opaque(D), real, fake, alpha=alpha) == pytest.approx(v, rel=1e-14)
    for p, g in zip(D.parameters(), want):
        assert_close(p.grad, g, 1e-12, "θ-gradient by the plain tangent adjoint")


def _in(nn_, c):
    return nn_.InstanceNorm2d(c, affine=True)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_unet_with_instance_norm_matches_finite_differences_and_torch(rng, train):
    torch = torch_or_skip()
    _, TCat = _torch_modules(torch)
    m = unet(nn, nn.ConcatSkip, _in).train(train)
    for sub in m.modules():
        if isinstance(sub, nn.InstanceNorm2d):
            sub.weight.data[...] = rng.uniform(0.5, 1.5, sub.weight.shape)
            sub.bias.data[...] = rng.standard_normal(sub.bias.shape)
    x = rng.standard_normal((2, 2, 8, 8))
    gradcheck.check_module(m, x, max_elements=48).raise_if_failed()
    compare_with_torch(m, unet(torch.nn, TCat, _in), x)


@pytest.mark.parametrize("which", ["residual", "concat"])
def test_tangent_adjoint_with_gy_is_the_backward_plus_the_tangent_adjoint_without(rng, which):
    """backward_jvp(gy, gẏ)'s ∂L/∂x is backward(gy) + backward_jvp(None, gẏ)'s, and its ∂L/∂ẋ and
    θ-gradients are the sums of the two parts'."""
    m = (critic(nn, nn.Residual, nn.ConcatSkip)[1] if which == "residual"
         else critic(nn, nn.Residual, nn.ConcatSkip)[2]).double()
    x, u = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((2, 3, 4, 4))
    y = m(x)
    gy, gd = rng.standard_normal(y.shape), rng.standard_normal(y.shape)
    m.jvp(u)
    m.zero_grad()
    gx, gdx = m.backward_jvp(gy, gd)
    both = [p.grad.copy() for p in m.parameters()]
    m.zero_grad()
    gx0, gdx0 = m.backward_jvp(None, gd)
    gx1 = m.backward(gy)
    assert_close(gx, gx0 + gx1, 1e-13, "∂L/∂x")
    assert_close(gdx, gdx0, 1e-13, "∂L/∂ẋ")
    for p, g in zip(m.parameters(), both):
        assert_close(p.grad, g, 1e-13, "θ-gradient")
