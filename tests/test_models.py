import numpy as np
import pytest

from pygan import gradcheck, losses, models, nn, penalties
from pygan.models import (ConcatDiscriminator, ConditionalGenerator, LabelConcat, ProjectionDiscriminator,
                          WithLabels)
from conftest import assert_close, torch_or_skip

# small, fast variants of every model (the defaults are built once each, in the build test)
SMALL = {"mlp": dict(width=8, depth=2), "dcgan-28": dict(width=2, latent_dim=5),
         "dcgan-8": dict(width=3, latent_dim=4), "cgan-8": dict(width=3, latent_dim=4, embed_dim=2),
         "cgan-28": dict(width=2, latent_dim=5, embed_dim=3),
         "biggan-28": dict(width=2, latent_dim=6, shared_dim=3)}


def _batch(m, n, rng):
    return m.sample_z(n, rng), m.sample_labels(n, rng)


# --- building ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", models.MODELS)
def test_every_model_builds_and_round_trips_g_to_d(name, rng):
    m = models.build(name)
    n = 3
    z, y = _batch(m, n, rng)
    assert z.shape == (n, m.latent_dim) and z.dtype == np.float32
    x = m.g_forward(z, y)
    assert x.shape == (n,) + m.data_shape and x.dtype == np.float32
    logits = m.d_forward(x, y)
    assert logits.shape == (n, 1) and logits.dtype == np.float32
    m.G.zero_grad(); m.D.zero_grad()
    gx = m.d_backward(np.ones_like(logits))
    assert gx.shape == x.shape and gx.dtype == np.float32
    m.g_backward(gx)
    # every weight (and embedding) learns; a bias feeding BatchNorm has gradient 0 by design
    for net in (m.G, m.D):
        for pname, p in net.named_parameters():
            assert np.isfinite(p.grad).all()
            assert p.grad.any() or pname.endswith("bias"), f"{pname} got no gradient"
    assert m.num_classes == (10 if name.startswith(("cgan", "biggan")) else 0)


def test_images_are_in_tanh_range_and_samples_match_data_shapes(rng):
    for name, shape in [("dcgan-28", (1, 28, 28)), ("dcgan-8", (1, 8, 8)), ("mlp", (2,))]:
        m = models.build(name, **SMALL[name])
        assert m.data_shape == shape
        x = m.g_forward(m.sample_z(4, rng))
        if len(shape) == 3:
            assert np.abs(x).max() < 1


@pytest.mark.parametrize("name, extra", [(n, {}) for n in models.MODELS]
                         + [("cgan-8", {"conditioning": "concat"}), ("mlp", {"spectral_norm": True})])
def test_d_backward_params_and_input_split_d_backward_exactly(name, extra, rng):
    """The D step's d_backward_params gives d_backward's parameter grads (without ∂L/∂x); the
    G step's d_backward_input gives its ∂L/∂x and leaves D's grads as they were."""
    m = models.build(name, **SMALL[name], **extra)
    m.G.to(np.float64); m.D.to(np.float64)
    if m.config()["spectral_norm"]:
        m.D.eval()          # no power iteration: the three forwards below see the same W/σ
    z, y = _batch(m, 3, rng)
    x = m.g_forward(z.astype(np.float64), y)
    g = rng.standard_normal((3, 1))
    m.d_forward(x, y)
    m.D.zero_grad()
    gx = m.d_backward(g)
    full = {k: p.grad.copy() for k, p in m.D.named_parameters()}
    m.D.zero_grad()
    m.d_forward(x, y)
    assert m.d_backward_params(g) is None
    for k, p in m.D.named_parameters():
        np.testing.assert_array_equal(p.grad, full[k], err_msg=k)
    m.d_forward(x, y)
    gx2 = m.d_backward_input(g)
    np.testing.assert_allclose(gx2, gx, rtol=1e-12, atol=1e-14)
    for k, p in m.D.named_parameters():
        np.testing.assert_array_equal(p.grad, full[k], err_msg=f"d_backward_input changed {k}'s grad")


@pytest.mark.parametrize("name", models.MODELS)
def test_config_rebuilds_the_same_architecture(name):
    m = models.build(name, spectral_norm=True, **SMALL[name])
    cfg = m.config()
    assert cfg["name"] == name and cfg["spectral_norm"] is True
    again = models.build(**cfg)
    for a, b in [(m.G, again.G), (m.D, again.D)]:
        assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
        b.load_state_dict(a.state_dict())


def test_build_rejects_unknown_names_and_options():
    with pytest.raises(ValueError, match="unknown model 'gan'; available: mlp, dcgan-28"):
        models.build("gan")
    with pytest.raises(ValueError, match=r"unknown option 'widht'; options: latent_dim, width"):
        models.build("dcgan-8", widht=3)
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        models.build("mlp", latent_dim=0)
    with pytest.raises(ValueError, match="conditioning must be 'projection' or 'concat'"):
        models.build("cgan-8", conditioning="both")


def test_mlp_is_w1_by_default():
    m = models.build("mlp")
    lin = [l for l in m.G if isinstance(l, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in lin] == [(2, 128), (128, 128), (128, 128), (128, 2)]
    assert all(isinstance(l, nn.ReLU) for l in list(m.G)[1:-1:2])
    lin = [l for l in m.D if isinstance(l, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in lin] == [(2, 128), (128, 128), (128, 128), (128, 1)]
    assert all(isinstance(l, nn.LeakyReLU) and l.negative_slope == 0.2 for l in list(m.D)[1:-1:2])
    m = models.build("mlp", data_dim=1, width=16, depth=5)
    assert len([l for l in m.D if isinstance(l, nn.Linear)]) == 6 and m.data_shape == (1,)


def _w2_torch(torch):
    t = torch.nn
    G = t.Sequential(t.Linear(100, 6272), t.Unflatten(1, (128, 7, 7)), t.BatchNorm2d(128), t.ReLU(),
                     t.ConvTranspose2d(128, 64, 4, 2, 1), t.BatchNorm2d(64), t.ReLU(),
                     t.ConvTranspose2d(64, 1, 4, 2, 1), t.Tanh())
    D = t.Sequential(t.Conv2d(1, 64, 4, 2, 1), t.LeakyReLU(0.2), t.Conv2d(64, 128, 4, 2, 1),
                     t.BatchNorm2d(128), t.LeakyReLU(0.2), t.Flatten(), t.Linear(6272, 1))
    return G, D


def test_dcgan28_has_w2_parameter_counts():
    m = models.build("dcgan-28")
    assert sum(p.data.size for p in m.G.parameters()) == 766_017
    assert sum(p.data.size for p in m.D.parameters()) == 138_817


def test_dcgan28_parameters_and_state_dict_keys_equal_torch_w2():
    torch = torch_or_skip()
    m = models.build("dcgan-28")
    tG, tD = _w2_torch(torch)
    for mine, theirs in [(m.G, tG), (m.D, tD)]:
        assert [(k, tuple(v.shape)) for k, v in mine.state_dict().items()] == \
               [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
        assert sum(p.data.size for p in mine.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_dcgan28_forward_and_gradients_equal_torch(rng):
    torch = torch_or_skip()
    m = models.build("dcgan-28")
    tG, tD = _w2_torch(torch)
    for mode in (True, False):  # BatchNorm with batch statistics, then with running statistics
        m.train(mode)
        _compare_with_torch(m.G, tG, rng.standard_normal((3, 100)), None, rng)
        _compare_with_torch(m.D, tD, rng.uniform(-1, 1, (3, 1, 28, 28)), None, rng)


def test_dcgan_init_draws_conv_weights_from_n_0_002():
    m = models.build("dcgan-28")
    w = m.G[4].weight.data
    assert abs(w.std() - 0.02) < 1e-3 and abs(w.mean()) < 1e-3 and not m.G[4].bias.data.any()
    assert abs(m.G[2].weight.data.mean() - 1) < 0.01


def test_spectral_norm_flag_wraps_every_linear_and_conv_of_d_only():
    m = models.build("dcgan-8", spectral_norm=True)
    wrapped = [n for n, _ in m.D.named_parameters() if n.endswith("weight_orig")]
    assert wrapped == ["0.weight_orig", "2.weight_orig", "6.weight_orig"]
    assert not any("weight_orig" in n for n, _ in m.G.named_parameters())
    m = models.build("mlp", spectral_norm=True, depth=2)
    assert [n for n, _ in m.D.named_parameters() if n.endswith("weight_orig")] == \
           ["0.weight_orig", "2.weight_orig", "4.weight_orig"]
    m = models.build("cgan-8", spectral_norm=True, **SMALL["cgan-8"])
    assert {"features.0.weight_orig", "features.2.weight_orig", "head.weight_orig", "embed.weight_orig"} \
        <= {n for n, _ in m.D.named_parameters()}


def test_spectral_normalised_d_has_unit_spectral_norm_layers(rng):
    m = models.build("mlp", spectral_norm=True, width=16)
    m.D.double()
    for _ in range(30):  # power iteration converges over training forwards
        m.D(rng.standard_normal((4, 2)))
    for layer in m.D:
        if isinstance(layer, nn.Linear):
            assert abs(np.linalg.svd(layer.weight.data, compute_uv=False)[0] - 1) < 1e-3


def test_batchnorm_in_d_false_makes_d_treat_samples_independently(rng):
    for name in ("dcgan-8", "cgan-8"):
        m = models.build(name, batchnorm_in_d=False, **SMALL[name])
        assert not any("BatchNorm" in type(l).__name__ for l in m.D.modules())
        x = rng.uniform(-1, 1, (4, 1, 8, 8)).astype(np.float32)
        y = m.sample_labels(4, rng)
        a = m.d_forward(x, y)
        x[1:] = 0
        assert np.array_equal(m.d_forward(x, y)[0], a[0])
        assert any("BatchNorm" in type(l).__name__ for l in models.build(name, **SMALL[name]).D.modules())


# --- interface errors ----------------------------------------------------------------------

def test_wrong_shapes_and_missing_labels_are_clear_errors(rng):
    m = models.build("dcgan-28", **SMALL["dcgan-28"])
    with pytest.raises(ValueError, match=r"dcgan-28: D expects samples of shape \(N, 1, 28, 28\), got \(2, 1, 8, 8\)"):
        m.d_forward(np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"dcgan-28: z must have shape \(N, 5\), got \(2, 100\)"):
        m.g_forward(np.zeros((2, 100), np.float32))
    c = models.build("cgan-8", **SMALL["cgan-8"])
    z = c.sample_z(2, rng)
    with pytest.raises(ValueError, match=r"ConditionalGenerator\(z 4 ⊕ label embedding 10×2\): this module is "
                                         r"conditional; pass the integer class labels"):
        c.g_forward(z)
    with pytest.raises(ValueError, match=r"expected labels of shape \(2,\) for a batch of 2, got \(3,\)"):
        c.g_forward(z, np.arange(3))
    with pytest.raises(TypeError, match="labels must be an integer array"):
        c.g_forward(z, np.zeros(2))
    with pytest.raises(IndexError, match=r"index 10 is out of range \[0, 10\)"):
        c.g_forward(z, np.array([0, 10]))
    x = np.zeros((2, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"ProjectionDiscriminator\(features 24, 10 classes\): this module is conditional"):
        c.d_forward(x)


def test_unconditional_models_ignore_labels(rng):
    m = models.build("dcgan-8", **SMALL["dcgan-8"])
    z = m.sample_z(3, rng)
    assert m.sample_labels(3, rng) is None
    m.eval()
    np.testing.assert_array_equal(m.g_forward(z, np.arange(3)), m.g_forward(z))


# --- conditional layers: finite differences -----------------------------------------------

def _labels(n, k, rng):
    y = rng.integers(0, k, n)
    y[: min(n, 3)] = 0  # repeated labels: embedding rows must accumulate
    return y


@pytest.mark.parametrize("latent,embed,classes", [(3, 2, 4), (1, 5, 2)])
def test_conditional_generator_backward_matches_finite_differences(rng, latent, embed, classes):
    net = nn.Sequential(nn.Linear(latent + embed, 6), nn.Tanh(), nn.Linear(6, 4))
    G = ConditionalGenerator(net, classes, embed, latent)
    gradcheck.check_module(WithLabels(G, _labels(5, classes, rng)), rng.standard_normal((5, latent))) \
        .raise_if_failed()


def test_concat_discriminator_backward_matches_finite_differences(rng):
    net = nn.Sequential(nn.Conv2d(3, 2, 3, 1, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(2 * 4 * 5, 1))
    D = ConcatDiscriminator(net, 3, (2, 4, 5))
    gradcheck.check_module(WithLabels(D, _labels(4, 3, rng)), rng.standard_normal((4, 2, 4, 5))).raise_if_failed()


@pytest.mark.parametrize("with_conv", [False, True])
def test_projection_discriminator_backward_matches_finite_differences(rng, with_conv):
    if with_conv:
        feats, x = nn.Sequential(nn.Conv2d(1, 2, 3, 2, 1), nn.Tanh(), nn.Flatten()), rng.standard_normal((5, 1, 4, 4))
        F = 8
    else:
        feats, x, F = nn.Sequential(nn.Linear(3, 6), nn.Tanh()), rng.standard_normal((5, 3)), 6
    D = ProjectionDiscriminator(feats, F, 4)
    nn.init.normal_(D.embed.weight, 0, 0.5)
    gradcheck.check_module(WithLabels(D, _labels(5, 4, rng)), x).raise_if_failed()


def test_gradcheck_catches_a_projection_without_its_embedding_term(rng):
    class NoProjectionGrad(ProjectionDiscriminator):
        def backward(self, gy):
            h, e = self._cache
            self.embed.backward(gy * h)
            return self.features.backward(self.head.backward(gy))  # drops g ⊙ E[y] from ∂L/∂h

    D = NoProjectionGrad(nn.Sequential(nn.Linear(3, 6), nn.Tanh()), 6, 3)
    assert not gradcheck.check_module(WithLabels(D, _labels(4, 3, rng)), rng.standard_normal((4, 3))).ok


def _composition_check(m, real, y_real, z, y_fake, loss, rng):
    """∂L_D/∂θ_D and ∂L_G/∂θ_G of the conditional composition D(G(z, y), y), computed as a
    training step does (through the GANModel calls), against central differences."""
    G, D = m.G, m.D

    def d_objective():
        fake = m.g_forward(z, y_fake)
        return loss.d_real(m.d_forward(real, y_real))[0] + loss.d_fake(m.d_forward(fake, y_fake))[0]

    def g_objective():
        return loss.g_loss(m.d_forward(m.g_forward(z, y_fake), y_fake))[0]

    G.zero_grad(); D.zero_grad()
    fake = m.g_forward(z, y_fake)
    _, g = loss.d_real(m.d_forward(real, y_real)); m.d_backward(g)
    _, g = loss.d_fake(m.d_forward(fake, y_fake)); m.d_backward(g)
    d_grads = {n: p.grad.copy() for n, p in D.named_parameters()}
    D.zero_grad()
    _, g = loss.g_loss(m.d_forward(fake, y_fake))
    m.g_backward(m.d_backward(g))
    g_grads = {n: p.grad.copy() for n, p in G.named_parameters()}
    report = gradcheck.Report("conditional G∘D")
    for name, p in D.named_parameters():
        for e in gradcheck.check_array(f"D.{name}", d_objective, p.data, d_grads[name], rng, 32):
            report.add(e)
    for name, p in G.named_parameters():
        for e in gradcheck.check_array(f"G.{name}", g_objective, p.data, g_grads[name], rng, 32):
            report.add(e)
    return report


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_conditional_gan_composition_matches_finite_differences(rng, conditioning):
    m = models.build("cgan-8", width=2, latent_dim=3, embed_dim=2, num_classes=3, conditioning=conditioning)
    m.G.double(); m.D.double()
    n = 4
    z = rng.standard_normal((n, 3))
    real = rng.uniform(-1, 1, (n, 1, 8, 8))
    y_fake, y_real = _labels(n, 3, rng), _labels(n, 3, rng)
    report = _composition_check(m, real, y_real, z, y_fake, losses.get("nonsaturating"), rng)
    assert any(e.name.startswith("G.embed") for e in report.entries)
    assert any(e.name.startswith("D.embed") for e in report.entries)
    report.raise_if_failed()


def test_conditional_composition_check_catches_a_generator_gradient_lost_at_the_embedding(rng):
    class Broken(ConditionalGenerator):
        def backward(self, gy):
            gh = self.net.backward(gy)
            self.embed.backward(2 * gh[:, self.in_shape[0]:])  # factor 2: wrong
            return gh[:, :self.in_shape[0]]

    net = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    D = ProjectionDiscriminator(nn.Sequential(nn.Linear(3, 5), nn.LeakyReLU(0.2)), 5, 3)
    m = models.GANModel(Broken(net, 3, 2, 2), D, 2, (3,), 3)
    m.G.double(); m.D.double()
    z, real = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
    report = _composition_check(m, real, _labels(4, 3, rng), z, _labels(4, 3, rng), losses.get("hinge"), rng)
    assert not report.ok and [e.name for e in report.entries if not e.ok] == ["G.embed.weight"]


# --- conditional critics under gradient penalties (second-order passes) --------------------

def test_projection_critic_gradient_penalty_matches_finite_differences(rng):
    D = ProjectionDiscriminator(nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 5), nn.Tanh()), 5, 3)
    nn.init.normal_(D.embed.weight, 0, 0.5)
    critic = WithLabels(D, _labels(4, 3, rng))
    real, fake = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    gradcheck.check_penalty(penalties.gradient_penalty, critic, real, fake, alpha=rng.random(4)).raise_if_failed()
    gradcheck.check_penalty(penalties.r1_penalty, critic, real).raise_if_failed()


def test_label_concat_critic_gradient_penalty_matches_finite_differences(rng):
    net = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 1))
    critic = WithLabels(LabelConcat(net, 3, (3,), (2,)), _labels(4, 3, rng))
    real, fake = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    report = gradcheck.check_penalty(penalties.gradient_penalty, critic, real, fake, alpha=rng.random(4))
    assert "module.embed.weight" in [e.name for e in report.entries]  # the curved net makes E matter
    report.raise_if_failed()


def test_gan_model_critic_binds_labels_for_penalties(rng):
    m = models.build("mlp", width=8)
    assert m.critic() is m.D
    c = models.build("cgan-8", **SMALL["cgan-8"])
    y = c.sample_labels(3, rng)
    x = rng.uniform(-1, 1, (3, 1, 8, 8)).astype(np.float32)
    c.eval()
    np.testing.assert_array_equal(c.critic(y)(x), c.d_forward(x, y))


# --- conditional models against a PyTorch reimplementation ---------------------------------

def _to_torch(seq, torch):
    t, layers = torch.nn, []
    for l in seq:
        k = type(l).__name__
        if k == "Linear":
            layers.append(t.Linear(l.in_features, l.out_features))
        elif k in ("Conv2d", "ConvTranspose2d"):
            layers.append(getattr(t, k)(l.in_channels, l.out_channels, l.kernel_size, l.stride, l.padding))
        elif k == "BatchNorm2d":
            layers.append(t.BatchNorm2d(l.num_features))
        elif k == "LeakyReLU":
            layers.append(t.LeakyReLU(l.negative_slope))
        elif k == "Unflatten":
            layers.append(t.Unflatten(l.dim, l.unflattened_size))
        else:
            layers.append(getattr(t, k)())
    return t.Sequential(*layers)


def _torch_conditional(mine, torch):
    t = torch.nn

    class TLabelConcat(t.Module):
        def __init__(s):
            super().__init__()
            s.embed = t.Embedding(mine.num_classes, mine.embed.embedding_dim)
            s.net = _to_torch(mine.net, torch)

        def forward(s, x, y):
            return s.net(torch.cat([x, s.embed(y).view((x.shape[0],) + mine.embed_shape)], 1))

    class TProjection(t.Module):
        def __init__(s):
            super().__init__()
            s.features = _to_torch(mine.features, torch)
            s.head = t.Linear(mine.feat_dim, 1)
            s.embed = t.Embedding(mine.num_classes, mine.feat_dim)

        def forward(s, x, y):
            h = s.features(x)
            return s.head(h) + (s.embed(y) * h).sum(1, keepdim=True)

    return TProjection() if isinstance(mine, ProjectionDiscriminator) else TLabelConcat()


def _assert_grad_close(mine, theirs, what):
    # a bias feeding BatchNorm in train mode has gradient exactly 0: both sides are rounding noise
    if max(np.abs(mine).max(), np.abs(theirs).max()) < 1e-12:
        return
    assert_close(mine, theirs, 1e-10, what)


def _compare_with_torch(mine, theirs, x, labels, rng):
    """Float64, same weights: output, ∂L/∂x, every ∂L/∂θ (by name) and buffers; labels optional."""
    torch = torch_or_skip()
    theirs.double().train(mine.training)
    mine.double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in mine.state_dict().items()})
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    y = mine(x) if labels is None else mine(x, labels)
    yt = theirs(xt) if labels is None else theirs(xt, torch.from_numpy(labels))
    assert_close(y, yt.detach().numpy(), 1e-10, f"{mine.describe()} forward")
    gy = rng.standard_normal(y.shape)
    mine.zero_grad()
    gx = mine.backward(gy)
    yt.backward(torch.from_numpy(gy))
    assert_close(gx, xt.grad.numpy(), 1e-10, f"{mine.describe()} input gradient")
    tgrads = dict(theirs.named_parameters())
    assert [n for n, _ in mine.named_parameters()] == list(tgrads)
    for name, p in mine.named_parameters():
        _assert_grad_close(p.grad, tgrads[name].grad.numpy(), f"{mine.describe()} ∂L/∂{name}")
    mine_bufs = dict(mine.named_buffers())
    for name, b in theirs.named_buffers():
        if b.dtype.is_floating_point:
            assert_close(mine_bufs[name], b.numpy(), 1e-10, f"buffer {name}")
    theirs.zero_grad()


@pytest.mark.parametrize("name,conditioning", [("cgan-8", "projection"), ("cgan-8", "concat"),
                                               ("cgan-28", "projection")])
def test_conditional_models_equal_a_torch_reimplementation(rng, name, conditioning):
    torch = torch_or_skip()
    m = models.build(name, conditioning=conditioning, **SMALL[name])
    n = 5
    y = _labels(n, 10, rng)
    for mode in (True, False):
        m.train(mode)
        _compare_with_torch(m.G, _torch_conditional(m.G, torch), rng.standard_normal((n, m.latent_dim)), y, rng)
        _compare_with_torch(m.D, _torch_conditional(m.D, torch), rng.uniform(-1, 1, (n,) + m.data_shape), y, rng)


def test_spectral_normalised_projection_critic_backward_matches_finite_differences(rng):
    m = models.build("cgan-8", spectral_norm=True, width=2, latent_dim=3, embed_dim=2, num_classes=3)
    x = rng.uniform(-1, 1, (4, 1, 8, 8)).astype(np.float32)
    y = _labels(4, 3, rng)
    m.d_forward(x, y)
    m.d_backward(np.ones((4, 1), np.float32))
    assert m.D.embed.weight_orig.grad.any()
    m.eval()  # u, v held fixed between the perturbed forwards, as within a training step
    gradcheck.check_module(WithLabels(m.D, y), x).raise_if_failed()


_FLATTEN_HAS_JVP = nn.Flatten.jvp is not nn.Module.jvp


@pytest.mark.xfail(not _FLATTEN_HAS_JVP, raises=NotImplementedError, strict=True,
                   reason="nn.Flatten has no jvp/backward_jvp yet (pygan/nn/shape.py)")
@pytest.mark.parametrize("name", ["dcgan-8", "cgan-8"])
def test_dcgan_critic_without_batchnorm_supports_gradient_penalties(rng, name):
    m = models.build(name, batchnorm_in_d=False, width=2, latent_dim=3)
    y = m.sample_labels(3, rng)
    real, fake = rng.uniform(-1, 1, (2, 3, 1, 8, 8))
    gradcheck.check_penalty(penalties.gradient_penalty, m.critic(y), real, fake,
                            alpha=rng.random(3)).raise_if_failed()
