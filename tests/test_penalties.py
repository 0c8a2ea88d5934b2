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


@pytest.mark.parametrize("one_sided", [False, True])
@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_lipschitz_penalty_theta_gradient_matches_finite_differences(rng, act, one_sided):
    D = mlp_critic(ACTIVATIONS[act])
    real, fake = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    gradcheck.check_penalty(penalties.lipschitz_penalty, D, real, fake, lam=3.0, one_sided=one_sided,
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


@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
def test_gradient_penalty_and_r1_equal_torch_double_backward(rng, act):
    torch = torch_or_skip()
    D = mlp_critic(ACTIVATIONS[act]).double()
    TD = _torch_mlp(torch, act).double()
    TD.load_state_dict({k: torch.from_numpy(v) for k, v in D.state_dict().items()})
    real, fake, alpha = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)), rng.random(6)

    def torch_grads(kind):
        TD.zero_grad()
        if kind == "gp":
            a = torch.from_numpy(alpha)[:, None]
            x = (a * torch.from_numpy(real) + (1 - a) * torch.from_numpy(fake)).requires_grad_(True)
        else:
            x = torch.from_numpy(real.copy()).requires_grad_(True)
        (g,) = torch.autograd.grad(TD(x).sum(), x, create_graph=True)
        p = 10.0 * ((g.norm(dim=1) - 1) ** 2).mean() if kind == "gp" else 5.0 * (g ** 2).sum(1).mean()
        p.backward()
        return float(p.detach()), {n: (q.grad.numpy() if q.grad is not None else np.zeros(q.shape))
                          for n, q in TD.named_parameters()}

    for kind in ("gp", "r1"):
        D.zero_grad()
        v = (penalties.gradient_penalty(D, real, fake, lam=10.0, alpha=alpha) if kind == "gp"
             else penalties.r1_penalty(D, real, gamma=10.0))
        tv, tg = torch_grads(kind)
        assert abs(v - tv) <= 1e-10 * abs(tv)
        for n, p in D.named_parameters():
            assert_close(p.grad, tg[n], 1e-10, f"{kind} ∂P/∂{n}")


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
