import numpy as np
import pytest

from pygan import gradcheck, nn, penalties
from pygan.nn.spectral_norm import spectral_norm
from conftest import assert_close, torch_or_skip


def test_spectral_norm_linear_backward_matches_finite_differences(rng):
    # eval mode: u, v fixed between the perturbed forwards, as they are within a training step
    m = spectral_norm(nn.Linear(4, 3)).eval()
    gradcheck.check_module(m, rng.standard_normal((5, 4))).raise_if_failed()


def test_spectral_norm_divides_by_the_largest_singular_value(rng):
    m = spectral_norm(nn.Linear(6, 5), n_power_iterations=50).double()
    m(rng.standard_normal((2, 6)))
    assert abs(np.linalg.svd(m.weight.data, compute_uv=False)[0] - 1) < 1e-8


def test_spectral_norm_state_dict_uses_torch_keys():
    m = spectral_norm(nn.Linear(4, 3))
    assert sorted(m.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight_orig"]


def test_spectral_norm_in_a_gradient_penalty_critic(rng):
    D = nn.Sequential(spectral_norm(nn.Linear(3, 8)), nn.Tanh(), spectral_norm(nn.Linear(8, 1))).eval()
    real, fake = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    gradcheck.check_penalty(penalties.gradient_penalty, D, real, fake, alpha=rng.random(4)).raise_if_failed()


def test_spectral_norm_linear_equals_torch_over_training_steps(rng):
    torch = torch_or_skip()
    m = spectral_norm(nn.Linear(5, 4)).double()
    t = torch.nn.utils.spectral_norm(torch.nn.Linear(5, 4)).double()
    t.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in m.state_dict().items()})
    for step in range(3):
        x = rng.standard_normal((3, 5))
        gy = rng.standard_normal((3, 4))
        m.zero_grad(); t.zero_grad()
        y = m(x)
        xt = torch.from_numpy(x).requires_grad_(True)
        yt = t(xt)
        assert_close(y, yt.detach().numpy(), 1e-10, f"step {step} forward")
        gx = m.backward(gy)
        yt.backward(torch.from_numpy(gy))
        assert_close(gx, xt.grad.numpy(), 1e-10, "input grad")
        assert_close(m.weight_orig.grad, t.weight_orig.grad.numpy(), 1e-10, "weight_orig grad")
        assert_close(m.weight_u, t.weight_u.numpy(), 1e-10, "u")
        with torch.no_grad():  # the same update on both sides keeps the comparison going
            for p, q in zip(m.parameters(), [t.bias, t.weight_orig]):
                p.data -= 0.1 * p.grad
                q -= 0.1 * q.grad


def test_spectral_norm_rejects_a_module_without_weight():
    with pytest.raises(TypeError, match="has no parameter 'weight'"):
        spectral_norm(nn.Tanh())
