import numpy as np
import pytest

from pygan import nn, gradcheck
from conftest import compare_with_torch, torch_or_skip


@pytest.mark.parametrize("batch,fin,fout,bias", [(1, 1, 1, True), (5, 3, 7, True), (4, 6, 2, False)])
def test_linear_backward_matches_finite_differences(rng, batch, fin, fout, bias):
    m = nn.Linear(fin, fout, bias=bias)
    gradcheck.check_module(m, rng.standard_normal((batch, fin))).raise_if_failed()


def test_linear_accepts_extra_leading_dims(rng):
    m = nn.Linear(4, 3)
    gradcheck.check_module(m, rng.standard_normal((2, 3, 4))).raise_if_failed()


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.LeakyReLU(0.2), nn.LeakyReLU(), nn.Tanh(), nn.Sigmoid()],
                         ids=lambda l: type(l).__name__)
def test_activation_backward_matches_finite_differences(rng, layer):
    x = rng.standard_normal((4, 7))
    x[np.abs(x) < 1e-3] = 0.5  # keep clear of the kink of (Leaky)ReLU
    gradcheck.check_module(layer, x).raise_if_failed()


def test_sigmoid_is_stable_at_huge_logits():
    y = nn.Sigmoid()(np.array([-1e4, -50.0, 0.0, 50.0, 1e4]))
    assert np.all(np.isfinite(y)) and y[0] == 0.0 and y[-1] == 1.0 and y[2] == 0.5


def test_gradcheck_catches_a_wrong_backward(rng):
    class WrongLinear(nn.Linear):
        def backward(self, gy):
            gx = super().backward(gy)
            self.weight.grad *= 1.001  # a 0.1% error must not pass
            return gx

    assert not gradcheck.check_module(WrongLinear(3, 4), rng.standard_normal((2, 3))).ok


def test_a_gradient_at_the_rounding_floor_is_reported_as_such():
    """A ~0 gradient passes on its absolute error (below 10·u·max|f|/ε); its relative error (1.0:
    the analytic value is exactly 0) is kept out of the summary, which says it passed that way."""
    r = gradcheck.Report("demo", [gradcheck.Entry("w", 4, 2e-10, 3e-8, 1e-6),
                                  gradcheck.Entry("b", 1, 1e-10, 1.0, 1e-6, atol=4e-9)])
    assert r.ok and r.entries[1].at_floor and not r.entries[0].at_floor
    assert r.summary() == "worst rel err 3.0e-08 (1 ~0 gradient at the rounding floor)"
    assert "yes*" in str(r) and "rounding floor" in str(r)
    bad = gradcheck.Entry("b", 1, 1e-8, 1.0, 1e-6, atol=4e-9)
    assert not bad.ok and not bad.at_floor


def test_mlp_backward_matches_finite_differences(rng):
    m = nn.Sequential(nn.Linear(3, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16), nn.Tanh(),
                      nn.Linear(16, 1), nn.Sigmoid())
    gradcheck.check_module(m, rng.standard_normal((6, 3))).raise_if_failed()


def test_named_parameters_and_state_dict_use_torch_names():
    m = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert list(m.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert m.parameters()[2] is m[2].weight


def test_load_state_dict_round_trip_and_errors():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    with pytest.raises(KeyError, match="missing keys"):
        b.load_state_dict({"weight": a.weight.data})
    with pytest.raises(ValueError, match=r"'weight' has shape \(2, 4\)"):
        b.load_state_dict({"weight": np.zeros((2, 4)), "bias": np.zeros(2)})


def test_backward_accumulates_into_grad_until_zero_grad(rng):
    m = nn.Linear(3, 2)
    x, gy = rng.standard_normal((4, 3)).astype(np.float32), np.ones((4, 2), np.float32)
    m(x); m.backward(gy)
    g1 = m.weight.grad.copy()
    m(x); m.backward(gy)
    np.testing.assert_allclose(m.weight.grad, 2 * g1, rtol=1e-6)
    m.zero_grad()
    assert not m.weight.grad.any()


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"Linear\(3→2\): backward\(\) called before forward"):
        nn.Linear(3, 2).backward(np.ones((1, 2), np.float32))


@pytest.mark.parametrize("x,exc,msg", [
    (np.zeros((4, 5), np.float32), ValueError, r"Linear\(3→2\): expected input \(\*, 3\), got \(4, 5\)"),
    (np.zeros((4, 3), np.float64), TypeError, r"Linear\(3→2\): input dtype float64 does not match"),
    (np.zeros((4, 3), np.int64), TypeError, r"expected a floating input"),
    ([[1.0, 2.0, 3.0]], TypeError, r"expected an array"),
])
def test_linear_rejects_bad_input_naming_the_layer(x, exc, msg):
    with pytest.raises(exc, match=msg):
        nn.Linear(3, 2)(x)


def test_default_init_matches_torch_bounds():
    m = nn.Linear(100, 300)
    bound = 1 / np.sqrt(100)
    assert np.abs(m.weight.data).max() <= bound and np.abs(m.weight.data).max() > 0.95 * bound
    assert m.weight.dtype == np.float32


def test_linear_and_activations_equal_torch(rng):
    torch = torch_or_skip()
    for bias in (True, False):
        compare_with_torch(nn.Linear(5, 3, bias=bias), torch.nn.Linear(5, 3, bias=bias), rng.standard_normal((4, 5)))
    pairs = [(nn.ReLU(), torch.nn.ReLU()), (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
             (nn.Tanh(), torch.nn.Tanh()), (nn.Sigmoid(), torch.nn.Sigmoid())]
    for mine, theirs in pairs:
        compare_with_torch(mine, theirs, rng.standard_normal((3, 6)))
    mine = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.LeakyReLU(0.2), torch.nn.Linear(16, 1))
    compare_with_torch(mine, theirs, rng.standard_normal((8, 2)))


@pytest.mark.parametrize("slope", [0.0, 0.2, 1.0, 2.5, -0.5])
def test_leaky_relu_any_slope_matches_finite_differences_and_definition(rng, slope):
    x = rng.standard_normal((4, 9))
    x[np.abs(x) < 1e-3] = 0.5
    layer = nn.LeakyReLU(slope)
    np.testing.assert_array_equal(layer(x), np.where(x > 0, x, slope * x))
    gradcheck.check_module(layer, x).raise_if_failed()


def test_backward_params_gives_the_same_parameter_gradients_without_the_input_gradient(rng):
    from pygan.nn.spectral_norm import spectral_norm
    for make, x in [(lambda: nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 1)), rng.standard_normal((5, 4))),
                    (lambda: nn.Sequential(nn.Conv2d(2, 3, 3, 2, 1), nn.ReLU()), rng.standard_normal((2, 2, 5, 5))),
                    (lambda: nn.Sequential(nn.ConvTranspose2d(2, 3, 4, 2, 1)), rng.standard_normal((2, 2, 3, 3))),
                    (lambda: nn.Sequential(spectral_norm(nn.Linear(4, 3))), rng.standard_normal((5, 4)))]:
        a, b = make().double(), make().double()
        b.load_state_dict(a.state_dict())
        gy = rng.standard_normal(a(x).shape)
        b(x)
        a.backward(gy)
        assert b.backward_params(gy) is None
        for (n, p), q in zip(a.named_parameters(), b.parameters()):
            np.testing.assert_array_equal(p.grad, q.grad, err_msg=n)


def test_backward_input_gives_the_input_gradient_and_leaves_grads_alone(rng):
    from pygan.nn.spectral_norm import spectral_norm
    for make, x in [(lambda: nn.Sequential(nn.Linear(4, 6), nn.LeakyReLU(0.2), nn.Linear(6, 1)), rng.standard_normal((5, 4))),
                    (lambda: nn.Sequential(nn.Conv2d(2, 3, 3, 2, 1), nn.Tanh(), nn.Flatten(), nn.Linear(27, 2)),
                     rng.standard_normal((2, 2, 5, 5))),
                    (lambda: nn.Sequential(nn.ConvTranspose2d(2, 3, 4, 2, 1), nn.BatchNorm2d(3), nn.Sigmoid()),
                     rng.standard_normal((2, 2, 3, 3))),
                    (lambda: nn.Sequential(spectral_norm(nn.Linear(4, 3)), nn.LayerNorm(3)), rng.standard_normal((5, 4)))]:
        a, b = make().double(), make().double()
        b.load_state_dict(a.state_dict())
        gy = rng.standard_normal(a(x).shape)
        b(x)
        for p in b.parameters():
            p.grad[...] = 7.0
        np.testing.assert_allclose(b.backward_input(gy), a.backward(gy), rtol=1e-13, atol=1e-15)
        assert all(np.all(p.grad == 7.0) for p in b.parameters())
