"""The BigGAN-style model (pygan/models/biggan.py) and the layers it brought: AvgPool2d (FD, torch,
under a penalty, cuda-emu), Conditioned (∂L/∂c summed over the layers reading c), the generator of
each conditioning by finite differences (∂L/∂z through the hierarchical chunks included), the
whole G∘D game in float64, build options and errors, orthogonal initialisation."""
import copy

import numpy as np
import pytest

import pygan
from pygan import gradcheck, losses, models, nn, penalties
from pygan.models import WithLabels
from conftest import assert_close, compare_with_torch, torch_or_skip


# --- AvgPool2d ---------------------------------------------------------------------------------

POOLS = [dict(kernel_size=2), dict(kernel_size=(2, 3)), dict(kernel_size=3, divisor_override=1)]


@pytest.mark.parametrize("kw", POOLS, ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 6, 6), (1, 2, 7, 8)], ids=str)      # the second has a remainder
def test_avgpool_matches_finite_differences_and_torch(rng, kw, shape):
    gradcheck.check_module(nn.AvgPool2d(**kw), rng.standard_normal(shape)).raise_if_failed()
    torch = torch_or_skip()
    compare_with_torch(nn.AvgPool2d(**kw), torch.nn.AvgPool2d(**kw), rng.standard_normal(shape))


def test_avgpool_in_a_penalised_critic(rng):
    D = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 1))
    real, fake = rng.standard_normal((3, 1, 4, 4)), rng.standard_normal((3, 1, 4, 4))
    gradcheck.check_penalty(penalties.gradient_penalty, D, real, fake, alpha=rng.random(3)).raise_if_failed()
    gradcheck.check_penalty(penalties.r1_penalty, D, real).raise_if_failed()


def test_avgpool_errors():
    with pytest.raises(NotImplementedError, match="only non-overlapping windows"):
        nn.AvgPool2d(3, stride=1)
    with pytest.raises(ValueError, match=r"AvgPool2d\(4\): input \(1, 1, 3, 3\) is smaller than one window"):
        nn.AvgPool2d(4)(np.zeros((1, 1, 3, 3), np.float32))
    p = nn.AvgPool2d(2)
    p(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"backward got gy of shape \(1, 1, 3, 3\), expected \(1, 1, 2, 2\)"):
        p.backward(np.zeros((1, 1, 3, 3), np.float32))


# --- Conditioned --------------------------------------------------------------------------------

def test_conditioned_sums_the_condition_gradient_of_its_layers(rng):
    from pygan.gradcheck.suite import ConditionAsParameter
    block = nn.Conditioned(nn.Sequential(nn.ConditionalBatchNorm2d(2, 3, init_std=0.5), nn.Tanh(),
                                         nn.ConditionalBatchNorm2d(2, 3, init_std=0.5)))
    m = ConditionAsParameter(block, rng.standard_normal((4, 3)))
    gradcheck.check_module(m, rng.standard_normal((4, 2, 3, 3))).raise_if_failed()
    plain = nn.Conditioned(nn.Sequential(nn.BatchNorm2d(2), nn.ReLU()))
    x = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    assert plain(x).shape == x.shape and plain.backward(x).shape == x.shape and plain.grad_condition is None
    with pytest.raises(ValueError, match="pass the conditioning vector as forward"):
        block(x.astype(np.float64))


# --- the generator and the whole game ------------------------------------------------------------

VARIANTS = {"shared": dict(g_conditioning="shared", hierarchical=True),
            "shared-flat-z": dict(g_conditioning="shared", hierarchical=False),
            "cbn": dict(g_conditioning="cbn", hierarchical=False),
            "cbn-hier": dict(g_conditioning="cbn", hierarchical=True),
            "input": dict(g_conditioning="input", hierarchical=False)}


def _small(kw, rng):
    pygan.manual_seed(3)
    m = models.build("biggan-28", latent_dim=6, width=2, shared_dim=3, **kw)
    for mod in m.G.modules():            # non-trivial gains and biases (they start at zero)
        if isinstance(mod, nn.ConditionalBatchNorm2d):
            for p in mod.parameters():
                p.data[...] = 0.5 * rng.standard_normal(p.shape)
    # biases start at zero, so a zero patch of a sample (G's ReLUs) makes D's pre-activations exactly
    # 0 — ReLU's kink, where finite differences are undefined; random biases move them off it
    for name, p in list(m.G.named_parameters()) + list(m.D.named_parameters()):
        if name.endswith("bias") and p.data.ndim == 1 and "gain" not in name:
            p.data[...] = 0.1 * rng.standard_normal(p.shape)
    return m


def _raise_if_failed(rep):
    """Like ``Report.raise_if_failed``, except for the convolution biases that feed a
    normalisation: their gradient is exactly zero (the mean is subtracted; a block's output
    reaches the next block's and the output's BatchNorm), and the differences are rounding noise
    of a few 1e-8 — just above the checker's floor at this width."""
    bad = [e for e in rep.entries if not e.ok and not (e.name.endswith(".bias") and e.max_abs < 1e-7)]
    assert not bad, str(rep)


@pytest.mark.parametrize("variant", VARIANTS)
def test_generator_matches_finite_differences(rng, variant):
    m = _small(VARIANTS[variant], rng)
    labels = np.array([0, 3, 3, 9])
    z = rng.standard_normal((4, 6))
    rep = gradcheck.check_module(WithLabels(m.G, labels), z, max_elements=48)
    _raise_if_failed(rep)
    names = {e.name for e in rep.entries}
    assert "input" in names                                   # ∂L/∂z, through every chunk
    emb = "module.shared.weight" if variant.startswith("shared") else "module.embed.weight"
    assert (emb in names) == (variant != "cbn" and variant != "cbn-hier")


@pytest.mark.parametrize("variant", ["shared", "cbn", "input"])
def test_whole_game_in_float64(rng, variant):
    """∂L_D/∂θ_D and ∂L_G/∂θ_G of hinge(D(G(z, y), y)) by finite differences: G in train mode
    (batch statistics), D in eval mode (spectral norm's u held, so repeated forwards agree)."""
    m = _small(VARIANTS[variant], rng)
    labels = np.array([1, 4, 4, 7, 0])
    real = np.tanh(rng.standard_normal((5, 1, 28, 28)))
    for _ in range(20):                  # power iterations: spectral norm's σ estimates converge
        m.D(real.astype(np.float32), labels)
    G = WithLabels(m.G, labels)
    D = WithLabels(m.D, labels).eval()
    z = rng.standard_normal((5, 6))
    # ε = 1e-7: one of the ~40k ReLU inputs of the "cbn" case lies within ~1e-6 of its kink, which
    # the whole-tensor direction of ε = 1e-6 crosses (at 1e-7 and 1e-8 the difference is the gradient)
    rep = gradcheck.check_gan(G, D, losses.get("hinge"), z, real, max_elements=24, eps=1e-7)
    _raise_if_failed(rep)
    assert any(e.name.startswith("G.module.blocks.0.module.main.0.gain") for e in rep.entries) == (variant != "input")


def test_training_step_variants_agree(rng):
    """g_backward (backward_params: no ∂L/∂z) leaves the same grads as the full backward."""
    m = _small(VARIANTS["shared"], rng)
    m.G.double()
    labels = np.array([2, 5, 5])
    z = rng.standard_normal((3, 6))
    gx = rng.standard_normal((3, 1, 28, 28))
    m.G(z, labels)
    m.G.zero_grad()
    m.G.backward(gx)
    full = [p.grad.copy() for p in m.G.parameters()]
    m.G.zero_grad()
    m.G(z, labels)
    m.g_backward(gx)
    for a, b in zip(full, [p.grad for p in m.G.parameters()]):
        assert_close(b, a, 1e-13, "backward_params vs backward")


def test_build_options_shapes_and_errors():
    m = models.build("biggan-28")
    assert m.conditional and m.data_shape == (1, 28, 28) and m.latent_dim == 48
    cfg = m.config()
    assert cfg["g_conditioning"] == "shared" and cfg["hierarchical"] and cfg["spectral_norm"]
    keys = list(m.G.state_dict())
    assert keys[0] == "shared.weight" and "blocks.0.module.main.0.gain.weight" in keys
    assert "blocks.1.module.main.4.bn.running_var" in keys
    assert any(k.endswith("weight_orig") for k in m.D.state_dict())        # spectral norm on D
    assert models.build(**cfg).G.describe() == m.G.describe()
    with pytest.raises(ValueError, match="cannot be split into 3 equal chunks"):
        models.build("biggan-28", latent_dim=50)
    with pytest.raises(ValueError, match="g_conditioning must be 'input', 'cbn' or 'shared'"):
        models.build("biggan-28", g_conditioning="concat")
    with pytest.raises(ValueError, match="set hierarchical = false"):
        models.build("biggan-28", g_conditioning="input")
    with pytest.raises(ValueError, match="hierarchical must be True or False"):
        models.build("biggan-28", hierarchical=1)


def test_orthogonal_init_gives_orthonormal_rows_or_columns():
    w = nn.Parameter(np.zeros((4, 2, 3, 3), np.float64))
    nn.init.orthogonal_(w, rng=np.random.default_rng(0))
    W = w.data.reshape(4, -1)
    assert_close(W @ W.T, np.eye(4), 1e-12, "rows orthonormal")
    w = nn.Parameter(np.zeros((7, 3), np.float64))
    nn.init.orthogonal_(w, gain=2.0, rng=np.random.default_rng(0))
    assert_close(w.data.T @ w.data, 4 * np.eye(3), 1e-12, "columns orthogonal with the gain")


def test_biggan_on_cuda_emu_equals_numpy(rng):
    from pygan.backend.cuda_emu import _import_extension
    if _import_extension()[0] is None:
        pytest.skip("no pygan._cuda_emu")
    labels = np.array([1, 2, 2, 9])
    z = rng.standard_normal((4, 6)).astype(np.float32)
    outs = []
    for backend in ("numpy", "cuda-emu"):
        pygan.set_backend("numpy")
        m = _small(VARIANTS["shared"], np.random.default_rng(0))
        pygan.set_backend(backend)
        x = m.g_forward(z, labels)
        v, g = losses.get("hinge").g_loss(m.d_forward(x, labels))
        m.g_backward(m.d_backward_input(g))
        outs.append((x, [p.grad.copy() for p in m.G.parameters()]))
    pygan.set_backend("numpy")
    (x0, g0), (x1, g1) = outs
    assert_close(x1, x0, 2e-6, "samples")
    for a, b in zip(g1, g0):
        assert_close(a, b, 2e-4, "G's gradients", atol=1e-5)
