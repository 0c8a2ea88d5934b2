import numpy as np
import pytest

from pygan import gradcheck, nn, penalties
from conftest import assert_close, torch_or_skip

ACTIVATIONS = {"ReLU": nn.ReLU, "LeakyReLU": lambda: nn.LeakyReLU(0.2), "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid}


def mlp_critic(act, width=10, fin=3):
    return nn.Sequential(nn.Linear(fin, width), act(), nn.Linear(width, width), act(), nn.Linear(width, 1))


@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_gradient_penalty_theta_gradient_matches_finite_differences(rng, act):
    D = mlp_critic(ACTIVATIONS[act])
    real, fake = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    gradcheck.check_penalty(penalties.gradient_penalty, D, real, fake, lam=10.0, alpha=rng.random(5)).raise_if_failed()


@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_r1_penalty_theta_gradient_matches_finite_differences(rng, act):
    D = mlp_critic(ACTIVATIONS[act])
    gradcheck.check_penalty(penalties.r1_penalty, D, rng.standard_normal((4, 3)), gamma=10.0).raise_if_failed()


@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_lipschitz_penalty_theta_gradient_matches_finite_differences(rng, act):
    """Two-sided, on a default-initialised critic (slope < 1: the penalty pulls it up); the
    one-sided form is 0 there and is tested on steepened critics below."""
    D = mlp_critic(ACTIVATIONS[act])
    real, fake = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    gradcheck.check_penalty(penalties.lipschitz_penalty, D, real, fake, lam=3.0,
                            t=rng.random((6, 2))).raise_if_failed()


def test_check_penalty_catches_a_penalty_that_drops_second_order_terms(rng):
    """numpy-ml's WGAN-GP drops the second-derivative terms; check_penalty must notice."""
    real, fake = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))

    class NoCurvatureTanh(nn.Tanh):
        def backward_jvp(self, gy, gdy):
            _, gdx = super().backward_jvp(gy, gdy)
            return (None if gy is None else self.backward(gy)), gdx

    wrong_D = nn.Sequential(nn.Linear(3, 10), NoCurvatureTanh(), nn.Linear(10, 1))
    assert not gradcheck.check_penalty(penalties.gradient_penalty, wrong_D, real, fake, alpha=rng.random(5)).ok


def test_penalty_leaves_existing_grads_and_adds_its_own(rng):
    D = mlp_critic(nn.Tanh).double()
    real, fake = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    alpha = rng.random(4)
    D.zero_grad()
    penalties.gradient_penalty(D, real, fake, alpha=alpha)
    once = [p.grad.copy() for p in D.parameters()]
    penalties.gradient_penalty(D, real, fake, alpha=alpha)
    for p, g in zip(D.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-12)


def test_penalty_rejects_a_critic_with_more_than_one_logit(rng):
    D = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"one logit per sample.*got \(4, 2\)"):
        penalties.r1_penalty(D, rng.standard_normal((4, 3)).astype(np.float32))


def test_clip_weights_clips_every_parameter():
    D = mlp_critic(nn.ReLU)
    penalties.clip_weights(D, 0.01)
    assert all(np.abs(p.data).max() <= 0.01 for p in D.parameters())


def _torch_mlp(torch, act):
    acts = {"ReLU": torch.nn.ReLU, "LeakyReLU": lambda: torch.nn.LeakyReLU(0.2), "Tanh": torch.nn.Tanh,
            "Sigmoid": torch.nn.Sigmoid}[act]
    return torch.nn.Sequential(torch.nn.Linear(3, 10), acts(), torch.nn.Linear(10, 10), acts(), torch.nn.Linear(10, 1))


@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_critic_penalties_match_finite_differences(rng, affine):
    D = nn.Sequential(nn.Linear(3, 6), nn.LayerNorm(6, elementwise_affine=affine), nn.Tanh(), nn.Linear(6, 1))
    if affine:  # make γ, β non-trivial
        D[1].weight.data[...] = rng.uniform(0.5, 1.5, 6)
        D[1].bias.data[...] = rng.uniform(-0.5, 0.5, 6)
    real, fake = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    gradcheck.check_penalty(penalties.gradient_penalty, D, real, fake, alpha=rng.random(5)).raise_if_failed()
    gradcheck.check_penalty(penalties.r1_penalty, D, real).raise_if_failed()


def test_batchnorm_eval_critic_penalty_matches_finite_differences(rng):
    D = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.Sigmoid(), nn.Linear(6, 1))
    D[1].running_mean[...] = rng.standard_normal(6)
    D[1].running_var[...] = rng.uniform(0.5, 2, 6)
    D[1].weight.data[...] = rng.uniform(0.5, 1.5, 6)
    D.eval()
    real, fake = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    gradcheck.check_penalty(penalties.gradient_penalty, D, real, fake, alpha=rng.random(5)).raise_if_failed()


def test_batchnorm_in_train_mode_refuses_a_penalty_naming_itself(rng):
    D = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 1))
    x = rng.standard_normal((5, 3)).astype(np.float32)
    with pytest.raises(NotImplementedError, match=r"BatchNorm1d\(6\) in train mode couples the samples"):
        penalties.r1_penalty(D, x)


class _Opaque(nn.Module):
    """Wraps a critic so that the penalty cannot see it is a Sequential: the plain tangent adjoint."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)

    def backward(self, gy):
        return self.net.backward(gy)

    def backward_input(self, gy):
        return self.net.backward_input(gy)

    def jvp(self, dx):
        return self.net.jvp(dx)

    def backward_jvp(self, gy, gdy):
        return self.net.backward_jvp(gy, gdy)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("penalty", ["gp", "r1"])
def test_sequential_reuses_its_input_gradient_signals_and_gets_the_same_gradient(rng, act, penalty,
                                                                                 monkeypatch):
    """A Sequential critic's tangent adjoint takes ∂L/∂ẋ from the input-gradient pass instead of
    recomputing it (no Linear.backward_jvp call); the θ-gradient equals the plain path's."""
    D = mlp_critic(ACTIVATIONS[act]).to(np.float64)
    real, fake, alpha = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)), rng.random(5)
    run = ((lambda m: penalties.gradient_penalty(m, real, fake, alpha=alpha)) if penalty == "gp"
           else (lambda m: penalties.r1_penalty(m, real)))
    D.zero_grad()
    v_plain = run(_Opaque(D))
    plain = [p.grad.copy() for p in D.parameters()]
    calls = []
    full = nn.Linear.backward_jvp
    monkeypatch.setattr(nn.Linear, "backward_jvp", lambda self, gy, gdy: calls.append(1) or full(self, gy, gdy))
    D.zero_grad()
    assert run(D) == v_plain
    assert calls == []
    for p, g in zip(D.parameters(), plain):
        assert_close(p.grad, g, 1e-13, "θ-gradient")


def test_kept_signals_are_dropped_by_the_next_forward(rng):
    """Signals belong to one forward: after another forward the adjoint recomputes ∂L/∂ẋ."""
    D = mlp_critic(ACTIVATIONS["Tanh"]).to(np.float64)
    x, u = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    g, ones = penalties._input_gradient(D, rng.standard_normal((4, 3)))
    D(x)                                            # a new point: the kept signals are stale
    D.jvp(u)
    D.zero_grad()
    D.backward_jvp(None, ones)
    stale = [p.grad.copy() for p in D.parameters()]
    D.zero_grad()
    _Opaque(D)(x)
    D.jvp(u)
    D.backward_jvp(None, ones)
    for p, g in zip(D.parameters(), stale):
        assert_close(p.grad, g, 1e-13, "θ-gradient")


# --- convolutional critics: every activation, every penalty; PyTorch's double backward -------------

PENALTIES = ["gp", "r1", "lipschitz", "lipschitz-one-sided"]


def conv_critic(nn_, act, first):
    """first (2→3 channels, 5×5 input) → act → Conv2d(3→2, k3 s2 p1) → act → Flatten → Linear → 1.
    ``nn_`` is pygan.nn or torch.nn (same class names, argument orders and parameter names)."""
    if first == "conv":
        head = nn_.Conv2d(2, 3, 3, stride=2, padding=1)                   # 5×5 → 3×3 → 2×2
    else:
        head = nn_.ConvTranspose2d(2, 3, 2, stride=1, padding=1)          # 5×5 → 4×4 → 2×2
    a = {"ReLU": nn_.ReLU, "LeakyReLU": lambda: nn_.LeakyReLU(0.2), "Tanh": nn_.Tanh,
         "Sigmoid": nn_.Sigmoid}[act]
    return nn_.Sequential(head, a(), nn_.Conv2d(3, 2, 3, stride=2, padding=1), a(), nn_.Flatten(),
                          nn_.Linear(8, 1))


def _steep(D, real, fake, t):
    """Scale the last layer so that the critic's largest difference quotient over the pairs of
    ``t`` is 3: the one-sided Lipschitz penalty is then non-zero (on a default-initialised critic
    it is 0, which would prove nothing)."""
    bshape = (-1,) + (1,) * (real.ndim - 1)
    e1, e2 = t[:, 0].reshape(bshape), t[:, 1].reshape(bshape)
    y1, y2 = e1 * real + (1 - e1) * fake, e2 * real + (1 - e2) * fake
    n = real.shape[0]
    dt = next(iter(D.parameters())).data.dtype
    diff = (D(y1.astype(dt)) - D(y2.astype(dt))).reshape(n)
    q = np.abs(diff) / np.linalg.norm((y1 - y2).reshape(n, -1), axis=1)
    list(D)[-1].weight.data[...] *= 3.0 / q.max()   # the last layer is Linear: q scales with it
    return D


def _pygan_penalty(kind, D, real, fake, alpha, t, lam):
    if kind == "gp":
        return penalties.gradient_penalty(D, real, fake, lam=lam, alpha=alpha)
    if kind == "r1":
        return penalties.r1_penalty(D, real=real, gamma=lam)
    return penalties.lipschitz_penalty(D, real, fake, lam=lam, one_sided=kind.endswith("one-sided"), t=t)


def _torch_penalty(torch, kind, TD, real, fake, alpha, t, lam):
    """The same penalty the usual way: torch.autograd.grad(create_graph=True) where it needs ∇ₓD."""
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    bshape = (-1,) + (1,) * (real.ndim - 1)
    if kind in ("gp", "r1"):
        a = torch.from_numpy(alpha).reshape(bshape)
        x = (a * r + (1 - a) * f if kind == "gp" else r.clone()).requires_grad_(True)
        (g,) = torch.autograd.grad(TD(x).sum(), x, create_graph=True)
        norms2 = (g.reshape(g.shape[0], -1) ** 2).sum(1)
        p = lam * ((norms2.sqrt() - 1) ** 2).mean() if kind == "gp" else 0.5 * lam * norms2.mean()
    else:
        tt = torch.from_numpy(t)
        e1, e2 = tt[:, 0].reshape(bshape), tt[:, 1].reshape(bshape)
        y1, y2 = e1 * r + (1 - e1) * f, e2 * r + (1 - e2) * f
        out = TD(torch.cat([y1, y2])).reshape(-1)
        n = real.shape[0]
        q = (out[:n] - out[n:]).abs() / (y1 - y2).reshape(n, -1).norm(dim=1)
        excess = (q - 1).clamp(min=0) if kind.endswith("one-sided") else q - 1
        p = lam * (excess ** 2).mean()
    p.backward()
    return float(p.detach())


def _conv_problem(rng, act, first, kind):
    D = conv_critic(nn, act, first)
    n = 3
    real, fake = rng.standard_normal((n, 2, 5, 5)), rng.standard_normal((n, 2, 5, 5))
    alpha, t = rng.random(n), rng.random((n, 2))
    if kind == "lipschitz-one-sided":
        _steep(D, real, fake, t)
    return D, real, fake, alpha, t


@pytest.mark.parametrize("kind", PENALTIES)
@pytest.mark.parametrize("first", ["conv", "convT"])
@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_penalties_through_conv_critics_match_finite_differences(rng, act, first, kind):
    D, real, fake, alpha, t = _conv_problem(rng, act, first, kind)
    # steepened, the critic's last weights reach ~500 (Sigmoid) and D(y₁) − D(y₂) cancels ~10 bits
    # of D's value: a step of 1e-4 keeps that rounding out of the difference quotient (the
    # penalty is piecewise quadratic in those weights, so there the larger step costs no
    # truncation; in the inner layers' weights its truncation stays far below 1e-6)
    eps = 1e-4 if kind == "lipschitz-one-sided" else gradcheck.EPS
    report = gradcheck.check_penalty(lambda m: _pygan_penalty(kind, m, real, fake, alpha, t, 3.0), D, eps=eps)
    report.raise_if_failed()
    D64 = D.to(np.float64)
    D64.zero_grad()
    value = _pygan_penalty(kind, D64, real, fake, alpha, t, 3.0)
    assert value > 0 and any(np.abs(p.grad).max() > 0 for p in D64.parameters())  # not vacuous


@pytest.mark.parametrize("one_sided", [False, True])
@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_lipschitz_penalty_on_a_steep_mlp_critic_is_nonzero_and_matches_finite_differences(rng, act, one_sided):
    """The default-initialised MLP of the test above has slope < 1 between these pairs (the
    one-sided penalty is 0 there); steepened, both forms have work to do."""
    real, fake, t = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)), rng.random((6, 2))
    D = _steep(mlp_critic(ACTIVATIONS[act]), real, fake, t)
    gradcheck.check_penalty(penalties.lipschitz_penalty, D, real, fake, lam=3.0, one_sided=one_sided,
                            t=t).raise_if_failed()
    D64 = D.to(np.float64)
    D64.zero_grad()
    assert penalties.lipschitz_penalty(D64, real, fake, lam=3.0, one_sided=one_sided, t=t) > 0
    assert any(np.abs(p.grad).max() > 0 for p in D64.parameters())


def _assert_equals_torch(torch, D, TD, kind, real, fake, alpha, t, lam=10.0, also=()):
    TD.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in D.state_dict().items()})
    D.zero_grad()
    TD.zero_grad()
    v = _pygan_penalty(kind, D, real, fake, alpha, t, lam)
    tv = _torch_penalty(torch, kind, TD, real, fake, alpha, t, lam)
    assert tv > 0 and abs(v - tv) <= 1e-10 * tv, (v, tv)      # (> 0: the comparison is not vacuous)
    tgrads = {n: q.grad for n, q in TD.named_parameters()}
    for n, p in D.named_parameters():
        want = tgrads[n].numpy() if tgrads[n] is not None else np.zeros(p.grad.shape)
        assert_close(p.grad, want, 1e-10, f"{kind} ∂P/∂{n}")
    tstate = TD.state_dict()
    for k in also:                      # buffers the penalty's forward updates (spectral norm's u, v)
        assert_close(D.state_dict()[k], tstate[k].numpy(), 1e-10, k)


@pytest.mark.parametrize("kind", PENALTIES)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_penalties_through_mlp_critics_equal_torch_double_backward(rng, act, kind):
    torch = torch_or_skip()
    D = mlp_critic(ACTIVATIONS[act]).double()
    real, fake, alpha, t = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)), rng.random(6), rng.random((6, 2))
    if kind == "lipschitz-one-sided":
        _steep(D, real, fake, t)
    _assert_equals_torch(torch, D, _torch_mlp(torch, act).double(), kind, real, fake, alpha, t)


@pytest.mark.parametrize("kind", PENALTIES)
@pytest.mark.parametrize("first", ["conv", "convT"])
@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_penalties_through_conv_critics_equal_torch_double_backward(rng, act, first, kind):
    torch = torch_or_skip()
    D, real, fake, alpha, t = _conv_problem(rng, act, first, kind)
    D = D.to(np.float64)
    TD = conv_critic(torch.nn, act, first).double()
    _assert_equals_torch(torch, D, TD, kind, real, fake, alpha, t)


@pytest.mark.parametrize("kind", PENALTIES)
def test_penalties_through_a_layernorm_critic_equal_torch_double_backward(rng, kind):
    torch = torch_or_skip()

    def build(nn_):
        return nn_.Sequential(nn_.Linear(3, 6), nn_.LayerNorm(6), nn_.Tanh(), nn_.Linear(6, 1))
    D = build(nn).to(np.float64)
    D[1].weight.data[...] = rng.uniform(0.5, 1.5, 6)
    D[1].bias.data[...] = rng.uniform(-0.5, 0.5, 6)
    real, fake, alpha, t = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)), rng.random(5), rng.random((5, 2))
    if kind == "lipschitz-one-sided":
        _steep(D, real, fake, t)
    _assert_equals_torch(torch, D, build(torch.nn).double(), kind, real, fake, alpha, t)


@pytest.mark.parametrize("kind", PENALTIES)
def test_penalties_through_a_spectral_norm_critic_equal_torch_double_backward(rng, kind):
    """Linear, Conv2d and ConvTranspose2d under spectral norm, in train mode: the penalty's one
    forward does one power iteration on both sides; u, v are then constants of the step."""
    torch = torch_or_skip()
    from pygan.nn.spectral_norm import spectral_norm

    def build(nn_, sn):   # a plain last layer: σ-normalised layers alone could not be steepened
        return nn_.Sequential(sn(nn_.ConvTranspose2d(2, 3, 2, stride=1, padding=1)), nn_.LeakyReLU(0.2),
                              sn(nn_.Conv2d(3, 2, 3, stride=2, padding=1)), nn_.Tanh(), nn_.Flatten(),
                              sn(nn_.Linear(8, 4)), nn_.Tanh(), nn_.Linear(4, 1))
    D = build(nn, spectral_norm).to(np.float64)
    TD = build(torch.nn, torch.nn.utils.spectral_norm).double()
    real, fake, alpha, t = (rng.standard_normal((3, 2, 5, 5)), rng.standard_normal((3, 2, 5, 5)),
                            rng.random(3), rng.random((3, 2)))
    if kind == "lipschitz-one-sided":
        for _ in range(30):         # converge u, v first: σ's estimate then holds through the step
            D(real)
        _steep(D.eval(), real, fake, t).train()
    buffers = [k for k in D.state_dict() if k.endswith(("weight_u", "weight_v"))]
    assert len(buffers) == 6
    _assert_equals_torch(torch, D, TD, kind, real, fake, alpha, t, also=buffers)
