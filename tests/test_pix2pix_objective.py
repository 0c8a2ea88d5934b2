"""pix2pix's objective: every GAN loss on a PatchGAN logit map equals the flattened case (value and
gradient, on every backend), the L1 term (finite differences, PyTorch), and the whole G∘D game with
L1 through ``gradcheck.check_pix2pix`` and against the same step written in PyTorch."""
import numpy as np
import pytest

import pygan
from pygan import gradcheck, losses, nn
from pygan.models.pix2pix import NLayerDiscriminator, UnetGenerator, build_pix2pix
from conftest import assert_close, torch_or_skip

LOSSES = [("minimax", {}), ("nonsaturating", {}), ("wasserstein", {}), ("hinge", {}), ("least_squares", {}),
          ("least_squares", {"a": -1.0, "b": 1.0, "c": 0.0})]
IDS = ["minimax", "nonsaturating", "wasserstein", "hinge", "least_squares", "least_squares(-1,1,0)"]


def _backends():
    from pygan.backend.cuda_emu import _import_extension
    return ["numpy"] + (["cuda-emu"] if _import_extension()[0] is not None else [])


# --- every loss on a logit map ---------------------------------------------------------------------

@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("name, kw", LOSSES, ids=IDS)
def test_every_loss_on_a_logit_map_equals_the_flattened_logits(rng, name, kw, backend):
    pygan.set_backend(backend)
    loss = losses.get(name, **kw)
    dtype = np.float32 if backend == "cuda-emu" else np.float64
    real = (1.5 * rng.standard_normal((3, 1, 5, 4))).astype(dtype)
    fake = (1.5 * rng.standard_normal((2, 1, 5, 4))).astype(dtype)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    flat_r, flat_f = real.reshape(-1), fake.reshape(-1)
    v, gr, gf = loss.d_loss(real, fake)
    v0, gr0, gf0 = loss.d_loss(flat_r, flat_f)
    assert gr.shape == real.shape and gf.shape == fake.shape
    assert_close([v], [v0], rtol, f"{name} d_loss value")
    assert_close(gr.reshape(-1), gr0, rtol, f"{name} ∂d_loss/∂real")
    assert_close(gf.reshape(-1), gf0, rtol, f"{name} ∂d_loss/∂fake")
    for method in ("d_real", "d_fake", "g_loss"):
        x = real if method == "d_real" else fake
        (vm, gm), (vm0, gm0) = getattr(loss, method)(x), getattr(loss, method)(x.reshape(-1))
        assert gm.shape == x.shape
        assert_close([vm], [vm0], rtol, f"{name}.{method} value")
        assert_close(gm.reshape(-1), gm0, rtol, f"{name}.{method} gradient")
    # and the mean is over patches and batch: a map of equal logits gives the one-logit value
    same = np.full((2, 1, 3, 3), 0.7, dtype)
    assert_close([loss.g_loss(same)[0]], [loss.g_loss(same[:1, :, :1, 0])[0]], rtol, f"{name} mean over patches")
    pygan.set_backend("numpy")


@pytest.mark.parametrize("name, kw", LOSSES, ids=IDS)
def test_every_loss_on_a_logit_map_matches_finite_differences(rng, name, kw):
    gradcheck.check_loss(losses.get(name, **kw), 1.5 * rng.standard_normal((2, 1, 4, 3)),
                         1.5 * rng.standard_normal((3, 1, 4, 3))).raise_if_failed()


# --- L1 -----------------------------------------------------------------------------------------------

def test_l1_matches_finite_differences_and_torch(rng):
    p, t = rng.standard_normal((3, 1, 5, 5)), rng.standard_normal((3, 1, 5, 5))
    v, g = losses.l1_loss(p, t)
    entries = gradcheck.check_array("pred", lambda: losses.l1_loss(p, t)[0], p, g, rng)
    assert all(e.ok for e in entries), entries
    torch = torch_or_skip()
    pt = torch.from_numpy(p.copy()).requires_grad_(True)
    vt = torch.nn.functional.l1_loss(pt, torch.from_numpy(t))
    vt.backward()
    assert_close([v], [vt.item()], 1e-13, "l1 value")
    assert_close(g, pt.grad.numpy(), 1e-13, "l1 gradient")


def test_l1_subgradient_at_zero_is_zero_as_torchs_and_errors_are_named(rng):
    p = np.array([[0.5, -1.0, 2.0]])
    v, g = losses.l1_loss(p, p.copy())
    assert v == 0.0 and not g.any()
    with pytest.raises(ValueError, match=r"l1_loss: pred \(1, 3\) and target \(3,\) must have the same"):
        losses.l1_loss(p, p[0])
    with pytest.raises(TypeError, match="l1_loss: pred is float64 but target is float32"):
        losses.l1_loss(p, p.astype(np.float32))
    with pytest.raises(losses.NonFiniteLoss, match="l1_loss is nan"):
        losses.l1_loss(p, np.array([[np.nan, 0.0, 0.0]]))


@pytest.mark.parametrize("backend", _backends())
def test_l1_on_every_backend_equals_numpy(rng, backend):
    p = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    t = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    v0, g0 = losses.l1_loss(p, t)
    pygan.set_backend(backend)
    v, g = losses.l1_loss(p, t)
    pygan.set_backend("numpy")
    assert_close([v], [v0], 1e-6, "value")
    assert_close(g, g0, 1e-7, "gradient")


# --- the whole game -------------------------------------------------------------------------------

def _small_pair(norm=nn.BatchNorm2d):
    pygan.manual_seed(3)
    return (UnetGenerator(1, 1, 3, ngf=2, norm_layer=norm, image_size=12),
            NLayerDiscriminator(2, ndf=2, n_layers=1, norm_layer=norm))


@pytest.mark.parametrize("name", ["nonsaturating", "least_squares", "minimax", "wasserstein", "hinge"])
def test_the_pix2pix_game_with_l1_matches_finite_differences(rng, name):
    G, D = _small_pair()
    x, y = rng.standard_normal((2, 1, 12, 12)), np.tanh(rng.standard_normal((2, 1, 12, 12)))
    rep = gradcheck.check_pix2pix(G, D, losses.get(name), x, y, l1_weight=100.0)
    rep.raise_if_failed()
    assert any(e.name.startswith("G.") for e in rep.entries) and any(e.name.startswith("D.") for e in rep.entries)


@pytest.mark.parametrize("l1_weight, gan_weight", [(0.0, 1.0), (100.0, 0.0), (3.0, 0.5)],
                         ids=["cGAN alone", "L1 alone", "weighted"])
def test_each_ablation_objective_matches_finite_differences(rng, l1_weight, gan_weight):
    G, D = _small_pair(nn.InstanceNorm2d)
    x, y = rng.standard_normal((2, 1, 12, 12)), np.tanh(rng.standard_normal((2, 1, 12, 12)))
    gradcheck.check_pix2pix(G, D, losses.get("nonsaturating"), x, y, l1_weight=l1_weight,
                            gan_weight=gan_weight).raise_if_failed()


def test_the_pix2pix_step_equals_the_same_step_written_in_torch(rng):
    """The authors' objective in torch (BCEWithLogits GAN loss on the patch map, D's loss halved,
    λ·L1) against pix2pix_gradients, float64, to 1e-10."""
    torch = torch_or_skip()
    from test_pix2pix_model import torch_networks
    TG, TD = torch_networks(torch)
    m = build_pix2pix(ngf=4, ndf=4)
    G, D = m.G.double(), m.D.double()
    tg, td = TG(1, 1, 4, ngf=4, image_size=28).double(), TD(2, ndf=4, n_layers=1).double()
    tg.load_state_dict({k: torch.from_numpy(v) for k, v in G.state_dict().items()})
    td.load_state_dict({k: torch.from_numpy(v) for k, v in D.state_dict().items()})
    x, y = rng.standard_normal((3, 1, 28, 28)), np.tanh(rng.standard_normal((3, 1, 28, 28)))
    ld, dg, lg, gg = gradcheck.pix2pix_gradients(G, D, losses.get("nonsaturating"), x, y, 100.0)

    bce = torch.nn.BCEWithLogitsLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    fake = tg(xt)
    pr, pf = td(torch.cat([xt, yt], 1)), td(torch.cat([xt, fake.detach()], 1))
    loss_d = 0.5 * (bce(pr, torch.ones_like(pr)) + bce(pf, torch.zeros_like(pf)))
    loss_d.backward()
    assert_close([ld], [loss_d.item()], 1e-12, "L_D")
    for name, p in td.named_parameters():
        assert_close(dg[name], p.grad.numpy(), 1e-10, f"∂L_D/∂{name}")
    td.zero_grad()
    pf = td(torch.cat([xt, fake], 1))
    loss_g = bce(pf, torch.ones_like(pf)) + 100.0 * torch.nn.functional.l1_loss(fake, yt)
    loss_g.backward()
    assert_close([lg], [loss_g.item()], 1e-12, "L_G")
    for name, p in tg.named_parameters():
        assert_close(gg[name], p.grad.numpy(), 1e-10, f"∂L_G/∂{name}")
