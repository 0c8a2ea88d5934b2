"""Autoencoder, VAE and CVAE (pygan.models.vae): ELBO gradients by finite differences and against
PyTorch, the closed-form KL against Monte Carlo, shapes, errors, training and conditional decoding."""
import math

import numpy as np
import pytest

import pygan
from pygan.models.vae import VAE, VAE_MODELS, AutoEncoder, CVAE, build_vae, check_elbo
from pygan.training import Trainer, config, presets
from pygan.training.tasks.vae import evaluate_elbo, kl_weight
from conftest import assert_close, torch_or_skip

# small, fast variants: (class, options). Latent 3, batch 3; every likelihood, both architectures
# at 8×8, one conv model at 28×28, one-hot and embedding conditioning.
SMALL = dict(hidden=8, width=2, latent_dim=3)
CASES = {
    "ae-mlp-bernoulli": (AutoEncoder, dict(image_size=8, **SMALL)),
    "ae-conv-gaussian": (AutoEncoder, dict(image_size=8, arch="conv", likelihood="gaussian", **SMALL)),
    "vae-mlp-bernoulli": (VAE, dict(image_size=8, **SMALL)),
    "vae-mlp-gaussian-fixed": (VAE, dict(image_size=8, likelihood="gaussian", sigma=0.3, **SMALL)),
    "vae-mlp-gaussian-learned": (VAE, dict(image_size=8, likelihood="gaussian", learn_sigma=True, **SMALL)),
    "vae-conv-bernoulli": (VAE, dict(image_size=8, arch="conv", **SMALL)),
    "vae-conv-gaussian-learned": (VAE, dict(image_size=8, arch="conv", likelihood="gaussian", learn_sigma=True,
                                            beta=0.5, **SMALL)),
    "vae-conv28-bernoulli": (VAE, dict(image_size=28, arch="conv", **SMALL)),
    "cvae-mlp-onehot": (CVAE, dict(image_size=8, num_classes=4, **SMALL)),
    "cvae-mlp-embedding-gaussian": (CVAE, dict(image_size=8, num_classes=4, conditioning="embedding", embed_dim=2,
                                               likelihood="gaussian", learn_sigma=True, **SMALL)),
    "cvae-conv-embedding": (CVAE, dict(image_size=8, num_classes=4, arch="conv", conditioning="embedding",
                                       embed_dim=2, **SMALL)),
    "cvae-conv-onehot-gaussian": (CVAE, dict(image_size=8, num_classes=4, arch="conv", likelihood="gaussian",
                                             sigma=0.5, **SMALL)),
}


def _inputs(m, n, rng):
    s = m.image_size
    x = rng.uniform(-1, 1, (n, 1, s, s))
    eps = rng.standard_normal((n, m.latent_dim))
    labels = rng.integers(0, m.num_classes, n) if m.conditional else None
    return x, eps, labels


def _digits():
    pytest.importorskip("sklearn")
    return pygan.data.load_digits()


# --- gradients ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_elbo_gradients_match_finite_differences_with_eps_fixed(case, rng):
    cls, kw = CASES[case]
    m = cls(**kw)
    x, eps, labels = _inputs(m, 3, rng)
    report = check_elbo(m, x, eps, labels, max_elements=64)
    report.raise_if_failed()
    names = {e.name for e in report.entries}
    assert {n for n, _ in m.named_parameters()} <= names          # every parameter was checked
    if m.learn_sigma:
        assert "log_sigma2" in names


def _torch_layer(layer):
    torch = torch_or_skip()
    t, f64 = torch.nn, torch.float64
    if isinstance(layer, pygan.nn.Sequential):
        return t.Sequential(*[_torch_layer(c) for c in layer])
    if isinstance(layer, pygan.nn.Linear):
        return t.Linear(layer.in_features, layer.out_features, dtype=f64)
    if isinstance(layer, pygan.nn.ConvTranspose2d):
        return t.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                 layer.padding, dtype=f64)
    if isinstance(layer, pygan.nn.Conv2d):
        return t.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                        dtype=f64)
    if isinstance(layer, pygan.nn.Embedding):
        return t.Embedding(layer.num_embeddings, layer.embedding_dim, dtype=f64)
    simple = {pygan.nn.ReLU: lambda l: t.ReLU(), pygan.nn.LeakyReLU: lambda l: t.LeakyReLU(l.negative_slope),
              pygan.nn.Flatten: lambda l: t.Flatten(l.start_dim, l.end_dim),
              pygan.nn.Unflatten: lambda l: t.Unflatten(l.dim, l.unflattened_size)}
    return simple[type(layer)](layer)


def _torch_negative_elbo(m, x, eps, labels, beta):
    """The same loss written with torch ops on a torch copy of m's weights (autograd differentiates it)."""
    torch = torch_or_skip()
    F = torch.nn.functional
    t = torch.nn.Module()
    for name, child in m._modules.items():
        setattr(t, name, _torch_layer(child))
    if m.learn_sigma:
        t.log_sigma2 = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    t.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in m.state_dict().items()})
    xt = torch.from_numpy(x)
    n, L = x.shape[0], m.latent_dim
    lab = None if labels is None else torch.from_numpy(labels)

    def code(emb):
        return F.one_hot(lab, m.num_classes).double() if m.conditioning == "onehot" else getattr(t, emb)(lab)

    h = t.encoder(xt)
    if m.conditional:
        h = torch.cat([h, code("enc_label")], 1)
    out = t.to_latent(h)
    if m.deterministic:
        z, kl = out, torch.zeros((), dtype=torch.float64)
    else:
        mu, lv = out[:, :L], out[:, L:]
        z = mu + torch.exp(lv / 2) * torch.from_numpy(eps)
        kl = 0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum() / n
    a = t.decoder(torch.cat([z, code("dec_label")], 1) if m.conditional else z)
    target = (xt + 1) / 2
    if m.likelihood == "bernoulli":
        recon = F.binary_cross_entropy_with_logits(a, target, reduction="sum") / n
    else:
        s = t.log_sigma2 if m.learn_sigma else torch.tensor(2 * math.log(m.sigma), dtype=torch.float64)
        recon = (0.5 * (a - target) ** 2 * torch.exp(-s) + 0.5 * (s + math.log(2 * math.pi))).sum() / n
    loss = recon + beta * kl
    loss.backward()
    return t, loss.item(), recon.item(), kl.item()


@pytest.mark.parametrize("case", list(CASES))
def test_elbo_and_every_gradient_equal_torch_autograd(case, rng):
    cls, kw = CASES[case]
    m = cls(**{**kw, "hidden": 16, "width": 4}).double()
    x, eps, labels = _inputs(m, 5, rng)
    beta = 0.7
    m.zero_grad()
    loss, parts = m.elbo_and_backward(x, eps, labels, beta=beta)
    t, t_loss, t_recon, t_kl = _torch_negative_elbo(m, x, eps, labels, beta if not m.deterministic else 0.0)
    assert_close(loss, t_loss, 1e-10, "loss")
    assert_close(parts["recon"], t_recon, 1e-10, "recon")
    assert_close(parts["kl"], t_kl, 1e-10, "kl", atol=0)
    tgrads = dict(t.named_parameters())
    assert set(tgrads) == {n for n, _ in m.named_parameters()}
    for name, p in m.named_parameters():
        assert_close(p.grad, tgrads[name].grad.numpy(), 1e-10, f"{case} ∂loss/∂{name}")


def test_backward_adds_into_grads_like_pytorch(rng):
    m = VAE(**SMALL).double()
    x, eps, _ = _inputs(m, 4, rng)
    m.zero_grad()
    m.elbo_and_backward(x, eps)
    once = [p.grad.copy() for p in m.parameters()]
    m.elbo_and_backward(x, eps)
    for g1, p in zip(once, m.parameters()):
        np.testing.assert_allclose(p.grad, 2 * g1, rtol=1e-13, atol=1e-300)


# --- the loss --------------------------------------------------------------------------------------

def test_kl_closed_form_matches_monte_carlo_estimate(rng):
    m = VAE(latent_dim=4, hidden=16).double()
    x = rng.uniform(-1, 1, (3, 1, 8, 8))
    last = m.to_latent[-1]                       # μ and log σ² far from N(0, I), a little different per row
    last.weight.data *= 0.3
    last.bias.data[:] = [1.5, -0.5, 0.3, 2.0, -1.0, 0.7, 0.0, -2.0]
    out = m(x, rng.standard_normal((3, 4)))
    mu, lv = out["mu"], out["logvar"]
    _, parts = m.elbo(x, rng.standard_normal((3, 4)))
    # KL = E_q[log q(z) − log p(z)], z = μ + σε: log q − log p = −½Σε² − ½Σ log σ² + ½Σ z²
    k = 200_000
    e = rng.standard_normal((k, 3, 4))
    z = mu + np.exp(lv / 2) * e
    mc = (0.5 * (z ** 2).sum(-1) - 0.5 * (e ** 2).sum(-1) - 0.5 * lv.sum(-1)).mean(0)   # (3,)
    se = (0.5 * (z ** 2).sum(-1) - 0.5 * (e ** 2).sum(-1)).std(0) / math.sqrt(k)
    closed = 0.5 * (mu ** 2 + np.exp(lv) - 1 - lv).sum(1)
    assert np.all(np.abs(mc - closed) < 5 * se + 1e-12), (mc, closed, se)
    assert parts["kl"] == pytest.approx(closed.mean(), rel=1e-12)
    assert closed.mean() > 1.0


def test_negative_elbo_parts_add_up_and_match_the_likelihoods(rng):
    x = rng.uniform(-1, 1, (5, 1, 8, 8))
    t = (x + 1) / 2
    eps = rng.standard_normal((5, 3))
    m = VAE(**SMALL, beta=0.25).double()
    loss, parts = m.elbo(x, eps)
    a = m(x, eps)["recon"]
    bce = (np.logaddexp(0, a) - t * a).reshape(5, -1).sum(1).mean()
    assert parts["recon"] == pytest.approx(bce, rel=1e-12)
    assert loss == parts["loss"] == pytest.approx(parts["recon"] + 0.25 * parts["kl"], rel=1e-14)
    assert parts["elbo"] == pytest.approx(-(parts["recon"] + parts["kl"]), rel=1e-14)
    g = VAE(**SMALL, likelihood="gaussian", sigma=0.2).double()
    _, gp = g.elbo(x, eps)
    mean = g(x, eps)["recon"]
    nll = ((mean - t) ** 2 / (2 * 0.04) + 0.5 * math.log(2 * math.pi * 0.04)).reshape(5, -1).sum(1).mean()
    assert gp["recon"] == pytest.approx(nll, rel=1e-12)
    ae = AutoEncoder(**SMALL).double()
    _, ap = ae.elbo(x)
    assert ap["kl"] == 0.0 and ap["loss"] == ap["recon"]


def test_bernoulli_loss_is_finite_for_huge_logits(rng):
    m = VAE(**SMALL).double()
    m.decoder[4].bias.data[:] = 1e4 * np.where(np.arange(64) % 2, 1, -1)
    x = rng.uniform(-1, 1, (2, 1, 8, 8))
    loss, _ = m.elbo_and_backward(x, rng.standard_normal((2, 3)))
    assert np.isfinite(loss)
    assert all(np.isfinite(p.grad).all() for p in m.parameters())


# --- shapes, dtypes, API ---------------------------------------------------------------------

@pytest.mark.parametrize("name", VAE_MODELS)
def test_every_preset_builds_with_the_right_shapes_and_dtypes(name, rng):
    m = build_vae(name, hidden=8, width=2)
    s, L, n = m.image_size, m.latent_dim, 3
    x = rng.uniform(-1, 1, (n, 1, s, s)).astype(np.float32)
    y = np.array([0, 5, 9]) if m.conditional else None
    out = m(x, None, y)
    assert out["recon"].shape == (n, 1, s, s) and out["recon"].dtype == np.float32
    assert out["z"].shape == (n, L) and out["mu"].shape == (n, L)
    assert (out["logvar"] is None) == m.deterministic
    loss, parts = m.elbo_and_backward(x, None, y)
    assert set(parts) == {"loss", "recon", "kl", "elbo"} and all(isinstance(v, float) for v in parts.values())
    assert all(p.grad.dtype == np.float32 and np.isfinite(p.grad).all() for p in m.parameters())
    mu, lv = m.encode(x, y)
    assert mu.shape == (n, L) and mu.dtype == np.float32 and (lv is None) == m.deterministic
    for imgs in (m.decode(mu, y), m.reconstruct(x, y), m.sample(n, rng, y), m.g_forward(m.sample_z(n, rng), y)):
        assert imgs.shape == (n, 1, s, s) and imgs.dtype == np.float32
        assert imgs.min() >= -1 and imgs.max() <= 1
    again = build_vae(**m.config())
    assert type(again) is type(m)
    again.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(again.decode(mu, y), m.decode(mu, y))


def test_cvae_sample_defaults_to_balanced_labels_and_labels_change_the_output(rng):
    m = CVAE(**SMALL, num_classes=5)
    z = m.sample_z(5, rng)
    a = m.decode(z, np.zeros(5, dtype=np.int64))
    b = m.decode(z, np.arange(5))
    assert np.array_equal(a[0], b[0]) and not np.allclose(a[1:], b[1:])
    np.testing.assert_array_equal(m.sample(5, np.random.default_rng(3)),
                                  m.decode(m.sample_z(5, np.random.default_rng(3)), np.arange(5)))


def test_eps_none_draws_from_pygans_generator_and_a_fixed_eps_repeats(rng):
    m = VAE(**SMALL)
    x = rng.uniform(-1, 1, (4, 1, 8, 8)).astype(np.float32)
    pygan.manual_seed(7)
    l1, _ = m.elbo(x)
    pygan.manual_seed(7)
    l2, _ = m.elbo(x)
    l3, _ = m.elbo(x)
    eps = rng.standard_normal((4, 3)).astype(np.float32)
    assert l1 == l2 != l3
    assert m.elbo(x, eps)[0] == m.elbo(x, eps)[0]


def test_errors_name_the_model_and_what_was_wrong(rng):
    m = VAE(**SMALL)
    x = rng.uniform(-1, 1, (2, 1, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"VAE\(mlp 1×8×8 → z 3.*expected images \(N, 1, 8, 8\), got \(2, 1, 28, 28\)"):
        m.elbo(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(TypeError, match="float64 but the parameters are float32"):
        m.elbo(x.astype(np.float64))
    with pytest.raises(ValueError, match=r"eps must be an array of shape \(2, 3\)"):
        m.elbo(x, np.zeros((2, 4), np.float32))
    with pytest.raises(RuntimeError, match="backward\\(\\) needs a preceding elbo"):
        m.backward()
    m.elbo(x)
    m.decode(np.zeros((1, 3), np.float32))          # overwrites the decoder's caches
    with pytest.raises(RuntimeError, match="preceding elbo"):
        m.backward()
    c = CVAE(**SMALL, num_classes=4)
    with pytest.raises(ValueError, match="conditional; pass integer labels"):
        c.elbo(x)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        c.elbo(x, None, np.array([0, 4]))
    with pytest.raises(ValueError, match="unconditional"):
        m.elbo(x, None, np.array([0, 1]))
    with pytest.raises(ValueError, match="unknown option 'latent'"):
        build_vae("vae-8", latent=2)
    with pytest.raises(ValueError, match="unknown VAE model"):
        build_vae("vae-9")
    with pytest.raises(ValueError, match="multiple of 4"):
        VAE(image_size=10, arch="conv")
    with pytest.raises(pygan.losses.NonFiniteLoss, match="recon"):
        m.decoder[4].bias.data[0] = np.nan
        m.elbo(x)


def test_check_elbo_catches_a_wrong_reparameterisation_gradient(rng, monkeypatch):
    """The finite-difference check can fail: drop the ½ of ∂z/∂log σ² = ε·σ/2 and it must."""
    m = VAE(**SMALL)
    x, eps, _ = _inputs(m, 3, rng)
    orig = VAE.backward

    def wrong(self):
        self._cache["std"] = self._cache["std"] * 2
        orig(self)

    monkeypatch.setattr(VAE, "backward", wrong)
    report = check_elbo(m, x, eps, max_elements=32)
    assert not report.ok
    bad = {e.name.split(" ")[0] for e in report.entries if not e.ok}
    assert bad and all(n.startswith(("to_latent", "encoder")) for n in bad)


# --- training -------------------------------------------------------------------------------------

def _trained(tmp_path, preset, steps, **over):
    """The trainer of ``preset`` after ``steps`` steps (no run folder written)."""
    cfg = config.replace(presets.preset(preset), {"steps": steps, "eval_every": 0, "sample_every": 0,
                                                   "checkpoint_every": 0, "log_every": 50, **over})
    t = Trainer(cfg, tmp_path, progress=False)
    t.history = [t.train_step() for _ in range(steps)]
    return t


def test_a_short_training_run_lowers_the_negative_elbo(tmp_path):
    x, y = _digits()
    t = _trained(tmp_path, "vae-digits", 0, **{"model_args.hidden": 64, "model_args.latent_dim": 4,
                                               "optim.lr": 2e-3})
    before = evaluate_elbo(t.model, x[:500], rng=np.random.default_rng(5))
    hist = [t.train_step() for _ in range(150)]
    after = evaluate_elbo(t.model, x[:500], rng=np.random.default_rng(5))
    assert [r["step"] for r in hist if "grad_norm" in r] == [50, 100, 150]
    assert set(hist[0]) == {"step", "loss", "recon", "kl", "elbo", "beta"}
    assert after["loss"] < before["loss"] - 5, (before, after)
    assert np.mean([r["loss"] for r in hist[-20:]]) < np.mean([r["loss"] for r in hist[:10]]) - 5


def test_kl_warmup_and_the_autoencoder_step(tmp_path):
    assert kl_weight(0, 2.0, 10) == 0 and kl_weight(5, 2.0, 10) == 1.0 and kl_weight(50, 2.0, 10) == 2.0
    assert kl_weight(0, 2.0, 0) == 2.0
    t = _trained(tmp_path, "ae-digits", 0)
    before = [p.data.copy() for p in t.model.parameters()]
    parts = t.train_step()
    assert parts["loss"] == pytest.approx(parts["recon"]) and parts["beta"] == 0.0
    assert all(not np.array_equal(b, p.data) for b, p in zip(before, t.model.parameters()))
    w = _trained(tmp_path, "vae-digits", 6, beta=2.0, beta_warmup=4)
    assert [r["beta"] for r in w.history] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]


def test_conditional_samples_decode_to_the_requested_digit(tmp_path):
    """A CVAE trained briefly draws, for each label, images nearest to that class's mean digit."""
    x, y = _digits()
    m = _trained(tmp_path, "cvae-digits", 400, **{"model_args.hidden": 64, "model_args.latent_dim": 2,
                                                  "optim.lr": 2e-3}).model
    means = np.stack([x[y == k].reshape(-1, 64).mean(0) for k in range(10)])
    labels = np.repeat(np.arange(10), 20)
    s = m.sample(200, np.random.default_rng(2), labels).reshape(200, 64)
    nearest = np.argmin(((s[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    acc = (nearest == labels).mean()
    assert acc >= 0.9, acc
