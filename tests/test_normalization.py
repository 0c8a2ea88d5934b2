import copy

import numpy as np
import pytest

from pygan import nn, gradcheck
from conftest import assert_close, compare_with_torch, rel_err, torch_or_skip


def _randomise(m, rng):
    """Non-trivial γ, β and running statistics, so every term of the gradient matters."""
    if m.weight is not None:
        m.weight.data[...] = rng.uniform(0.5, 1.5, m.weight.shape)
    if m.bias is not None:
        m.bias.data[...] = rng.standard_normal(m.bias.shape)
    if getattr(m, "running_mean", None) is not None:
        m.running_mean[...] = rng.standard_normal(m.running_mean.shape)
        m.running_var[...] = rng.uniform(0.5, 2.0, m.running_var.shape)
    return m


BN_CASES = [  # (class, input shape) — batch 2, odd sizes, 2-D and 3-D input for BatchNorm1d
    (nn.BatchNorm1d, (2, 3)),
    (nn.BatchNorm1d, (7, 5)),
    (nn.BatchNorm1d, (2, 3, 5)),
    (nn.BatchNorm1d, (3, 4, 1)),
    (nn.BatchNorm2d, (2, 3, 3, 5)),
    (nn.BatchNorm2d, (5, 2, 1, 3)),
    (nn.BatchNorm2d, (1, 3, 2, 2)),  # N = 1 is fine when H·W > 1
]


def _ids(case):
    return f"{case[0].__name__}{case[1]}"


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", BN_CASES, ids=_ids)
def test_batchnorm_backward_matches_finite_differences(rng, case, train, affine):
    cls, shape = case
    m = _randomise(cls(shape[1], affine=affine), rng).train(train)
    x = rng.standard_normal(shape) * 2.0 + 0.7
    gradcheck.check_module(m, x).raise_if_failed()


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_batchnorm_without_running_stats_uses_batch_stats_and_matches_finite_differences(rng, train):
    m = _randomise(nn.BatchNorm2d(3, track_running_stats=False), rng).train(train)
    x = rng.standard_normal((2, 3, 2, 3))
    gradcheck.check_module(m, x).raise_if_failed()
    y_train = copy.deepcopy(m).train()(x.astype(np.float32))
    y_eval = copy.deepcopy(m).eval()(x.astype(np.float32))
    np.testing.assert_array_equal(y_train, y_eval)
    assert m.running_mean is None and m.num_batches_tracked is None


def test_batchnorm_without_bias_matches_finite_differences(rng):
    m = _randomise(nn.BatchNorm1d(4, bias=False), rng)
    gradcheck.check_module(m, rng.standard_normal((3, 4, 2))).raise_if_failed()


def test_batchnorm_train_output_is_normalised_per_channel(rng):
    m = nn.BatchNorm2d(4)
    x = (rng.standard_normal((8, 4, 5, 5)) * np.array([1.0, 3.0, 0.1, 10.0])[None, :, None, None]
         + np.arange(4)[None, :, None, None]).astype(np.float32)
    y = m(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    v = x.astype(np.float64).var(axis=(0, 2, 3))
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), v / (v + 1e-5), rtol=1e-4)  # eps shrinks it


def test_batchnorm_input_gradient_is_orthogonal_to_constants_and_to_x_hat(rng):
    # the compact formula implies Σ ∂L/∂x = 0 and Σ ∂L/∂x·x̂ = 0 per channel (train mode; the
    # second identity is exact for eps → 0, since Σ x̂² = n·var/(var + eps))
    m = _randomise(nn.BatchNorm2d(3, eps=1e-14), rng).double()
    x = rng.standard_normal((4, 3, 3, 3))
    m(x)
    gx = m.backward(rng.standard_normal(x.shape))
    xhat = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / x.std(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(gx.sum(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose((gx * xhat).sum(axis=(0, 2, 3)), 0, atol=1e-10)


def test_batchnorm_float32_stays_float32_and_agrees_with_float64(rng):
    m32 = _randomise(nn.BatchNorm2d(5), rng)
    m64 = copy.deepcopy(m32).double()
    x = rng.standard_normal((6, 5, 4, 4)) * 3 + 2
    gy = rng.standard_normal(x.shape)
    y32 = m32(x.astype(np.float32))
    gx32 = m32.backward(gy.astype(np.float32))
    y64 = m64(x)
    gx64 = m64.backward(gy)
    assert y32.dtype == gx32.dtype == np.float32
    for name, p in m32.named_parameters():
        assert p.grad.dtype == np.float32, name
    for name, b in m32.named_buffers():
        assert b.dtype == (np.int64 if name == "num_batches_tracked" else np.float32), name
    assert rel_err(y32, y64) < 1e-5 and rel_err(gx32, gx64) < 1e-5
    assert rel_err(m32.running_var, m64.running_var) < 1e-5
    assert rel_err(m32.weight.grad, m64.weight.grad) < 1e-5


def test_batchnorm_backward_accumulates_into_grad(rng):
    m = _randomise(nn.BatchNorm1d(3), rng)
    x, gy = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal((5, 3)).astype(np.float32)
    m(x); m.backward(gy)
    g1 = m.weight.grad.copy(), m.bias.grad.copy()
    m(x); m.backward(gy)
    np.testing.assert_allclose(m.weight.grad, 2 * g1[0], rtol=1e-6)
    np.testing.assert_allclose(m.bias.grad, 2 * g1[1], rtol=1e-6)


# --- PyTorch as the oracle ------------------------------------------------------------------

@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", BN_CASES, ids=_ids)
def test_batchnorm_equals_torch(rng, case, train, affine):
    torch = torch_or_skip()
    cls, shape = case
    m = _randomise(cls(shape[1], affine=affine), rng).train(train)
    t = getattr(torch.nn, cls.__name__)(shape[1], affine=affine)
    compare_with_torch(m, t, rng.standard_normal(shape) * 2 + 0.5)


@pytest.mark.parametrize("kwargs", [dict(track_running_stats=False), dict(bias=False), dict(momentum=None),
                                    dict(eps=1e-3, momentum=0.5)], ids=str)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_batchnorm_options_equal_torch(rng, kwargs, train):
    torch = torch_or_skip()
    m = _randomise(nn.BatchNorm2d(3, **kwargs), rng).train(train)
    compare_with_torch(m, torch.nn.BatchNorm2d(3, **kwargs), rng.standard_normal((3, 3, 2, 5)))


@pytest.mark.parametrize("momentum", [0.1, 0.7, None], ids=lambda m: f"momentum={m}")
@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (6, 4)), (nn.BatchNorm1d, (3, 4, 5)),
                                       (nn.BatchNorm2d, (3, 4, 3, 2))], ids=["1d", "1d3", "2d"])
def test_batchnorm_running_stats_evolve_like_torch_over_train_steps_then_eval(rng, cls, shape, momentum):
    torch = torch_or_skip()
    m = _randomise(cls(shape[1], momentum=momentum), rng).double()
    t = getattr(torch.nn, cls.__name__)(shape[1], momentum=momentum).double()
    t.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})

    def step(batch):
        x = rng.standard_normal((batch,) + shape[1:]) * rng.uniform(0.5, 3) + rng.standard_normal()
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        y, yt = m(x), t(xt)
        gy = rng.standard_normal(y.shape)
        m.zero_grad()
        gx = m.backward(gy)
        yt.backward(torch.from_numpy(gy))
        assert_close(y, yt.detach().numpy(), 1e-10, "output")
        assert_close(gx, xt.grad.numpy(), 1e-10, "input gradient")
        for name, p in m.named_parameters():
            assert_close(p.grad, dict(t.named_parameters())[name].grad.numpy(), 1e-10, name)
            dict(t.named_parameters())[name].grad = None
        tb = dict(t.named_buffers())
        for name, b in m.named_buffers():
            assert_close(b, tb[name].numpy(), 1e-10, f"buffer {name}")

    for batch in (shape[0], shape[0] + 3, 2, shape[0]):
        step(batch)
    assert int(m.num_batches_tracked) == 4 and m.num_batches_tracked.dtype == np.int64
    m.eval(); t.eval()
    before = {k: v.copy() for k, v in m.state_dict().items()}
    step(shape[0])
    step(1)  # a single sample is fine in eval mode
    for k, v in m.state_dict().items():  # eval mode leaves the buffers alone
        np.testing.assert_array_equal(v, before[k])


def test_batchnorm_cumulative_average_with_momentum_none_is_the_plain_mean(rng):
    m = nn.BatchNorm1d(2, momentum=None).double()
    xs = [rng.standard_normal((5, 2)) + i for i in range(3)]
    for x in xs:
        m(x)
    np.testing.assert_allclose(m.running_mean, np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-12)
    np.testing.assert_allclose(m.running_var, np.mean([x.var(0, ddof=1) for x in xs], axis=0), rtol=1e-12)


@pytest.mark.parametrize("kwargs", [{}, dict(affine=False), dict(track_running_stats=False), dict(bias=False)],
                         ids=str)
def test_batchnorm_state_dict_keys_equal_torch_and_round_trip(rng, kwargs):
    torch = torch_or_skip()
    t = torch.nn.BatchNorm2d(3, **kwargs)
    m = nn.BatchNorm2d(3, **kwargs)
    assert list(m.state_dict()) == list(t.state_dict())
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]
    # train torch a little so every entry is non-trivial, then torch → pygan → torch
    with torch.no_grad():
        for p in t.parameters():
            p.uniform_(0.5, 1.5)
    for _ in range(3):
        t(torch.randn(4, 3, 2, 2))
    m.load_state_dict(t.state_dict())
    t2 = torch.nn.BatchNorm2d(3, **kwargs)
    t2.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    for k, v in t.state_dict().items():
        assert torch.equal(t2.state_dict()[k], v.to(t2.state_dict()[k].dtype)), k
        np.testing.assert_allclose(m.state_dict()[k], v.numpy(), rtol=1e-7)
    if "num_batches_tracked" in m.state_dict():
        assert m.state_dict()["num_batches_tracked"].dtype == np.int64
        assert m.state_dict()["num_batches_tracked"].shape == ()
        assert int(m.num_batches_tracked) == 3


def test_batchnorm_buffers_stay_registered_after_training_steps(rng):
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    for _ in range(2):
        m(rng.standard_normal((5, 3)).astype(np.float32))
    assert list(m.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                    "1.running_var", "1.num_batches_tracked"]
    assert int(m.state_dict()["1.num_batches_tracked"]) == 2
    assert m[1].running_mean is m[1]._buffers["running_mean"]


def test_batchnorm_defaults_and_repr_match_torch():
    torch = torch_or_skip()
    m, t = nn.BatchNorm2d(7), torch.nn.BatchNorm2d(7)
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], v.numpy())
    assert repr(m) == repr(t)
    assert repr(nn.BatchNorm1d(3, momentum=None, affine=False)) == repr(torch.nn.BatchNorm1d(3, momentum=None, affine=False))


@pytest.mark.parametrize("layer,x,exc,msg", [
    (nn.BatchNorm1d(3), np.zeros((2, 3, 4, 5), np.float32), ValueError,
     r"BatchNorm1d\(3\): expected input of rank 2 or 3 \(N, 3\) or \(N, 3, L\), got shape \(2, 3, 4, 5\)"),
    (nn.BatchNorm2d(3), np.zeros((2, 3, 5), np.float32), ValueError,
     r"BatchNorm2d\(3\): expected input of rank 4 \(N, 3, H, W\), got shape \(2, 3, 5\)"),
    (nn.BatchNorm2d(3), np.zeros((2, 4, 5, 5), np.float32), ValueError,
     r"BatchNorm2d\(3\): expected input \(N, 3, H, W\), got \(2, 4, 5, 5\)"),
    (nn.BatchNorm1d(3), np.zeros((2, 4), np.float32), ValueError,
     r"BatchNorm1d\(3\): expected input \(N, 3\) or \(N, 3, L\), got \(2, 4\)"),
    (nn.BatchNorm1d(3), np.zeros((2, 3), np.float64), TypeError,
     r"BatchNorm1d\(3\): input dtype float64 does not match"),
    (nn.BatchNorm1d(3, affine=False), np.zeros((2, 3), np.float64), TypeError,
     r"BatchNorm1d\(3\): input dtype float64 does not match"),
    (nn.BatchNorm1d(3), np.zeros((2, 3), np.int64), TypeError, r"BatchNorm1d\(3\): expected a floating input"),
    (nn.BatchNorm1d(3), np.zeros((1, 3), np.float32), ValueError,
     r"BatchNorm1d\(3\): expected more than 1 value per channel when training, got input size \(1, 3\)"),
    (nn.BatchNorm1d(3), np.zeros((1, 3, 1), np.float32), ValueError, r"more than 1 value per channel"),
    (nn.BatchNorm2d(3), np.zeros((1, 3, 1, 1), np.float32), ValueError, r"more than 1 value per channel"),
    (nn.BatchNorm2d(3, track_running_stats=False).eval(), np.zeros((1, 3, 1, 1), np.float32), ValueError,
     r"more than 1 value per channel"),
    (nn.LayerNorm(4), np.zeros((2, 3), np.float32), ValueError, r"LayerNorm\(\(4,\)\): expected input \(\*, 4\), got \(2, 3\)"),
    (nn.LayerNorm((3, 4)), np.zeros((2, 4, 3), np.float32), ValueError,
     r"LayerNorm\(\(3, 4\)\): expected input \(\*, 3, 4\), got \(2, 4, 3\)"),
    (nn.LayerNorm((3, 4)), np.zeros((4,), np.float32), ValueError, r"LayerNorm\(\(3, 4\)\): expected input of rank"),
    (nn.LayerNorm(4), np.zeros((2, 4), np.float64), TypeError, r"LayerNorm\(\(4,\)\): input dtype float64"),
], ids=lambda v: "" if not isinstance(v, str) else v[:30])
def test_normalization_rejects_bad_input_naming_the_layer(layer, x, exc, msg):
    with pytest.raises(exc, match=msg):
        layer(x)


def test_batchnorm_accepts_one_value_per_channel_in_eval_mode():
    m = nn.BatchNorm1d(3).eval()
    assert m(np.ones((1, 3), np.float32)).shape == (1, 3)


def test_normalization_backward_before_forward_is_a_clear_error():
    for m in (nn.BatchNorm2d(3), nn.LayerNorm(3)):
        with pytest.raises(RuntimeError, match=r"backward\(\) called before forward"):
            m.backward(np.ones((2, 3, 1, 1), np.float32))


@pytest.mark.parametrize("kwargs,msg", [(dict(num_features=0), "num_features"), (dict(num_features=3, eps=0), "eps"),
                                        (dict(num_features=3, momentum=1.5), "momentum")], ids=str)
def test_batchnorm_rejects_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        nn.BatchNorm2d(**kwargs)


# --- LayerNorm -----------------------------------------------------------------------------

LN_CASES = [  # (normalized_shape, input shape, kwargs)
    (5, (4, 5), {}),
    (5, (2, 3, 5), {}),
    ((3, 4), (2, 3, 4), {}),
    ((3, 4), (2, 2, 3, 4), {}),
    ((2, 3), (2, 3), {}),  # no leading dims
    (5, (3, 5), dict(elementwise_affine=False)),
    ((3, 2), (4, 3, 2), dict(bias=False)),
]


@pytest.mark.parametrize("ns,shape,kwargs", LN_CASES, ids=str)
def test_layernorm_backward_matches_finite_differences(rng, ns, shape, kwargs):
    m = _randomise(nn.LayerNorm(ns, **kwargs), rng)
    gradcheck.check_module(m, rng.standard_normal(shape) * 2 + 0.3).raise_if_failed()


@pytest.mark.parametrize("ns,shape,kwargs", LN_CASES, ids=str)
def test_layernorm_equals_torch(rng, ns, shape, kwargs):
    torch = torch_or_skip()
    m = _randomise(nn.LayerNorm(ns, **kwargs), rng)
    t = torch.nn.LayerNorm(ns, **kwargs)
    assert list(m.state_dict()) == list(t.state_dict())
    compare_with_torch(m, t, rng.standard_normal(shape) * 2 + 0.3)
    assert repr(nn.LayerNorm(ns, **kwargs)) == repr(torch.nn.LayerNorm(ns, **kwargs))


def test_layernorm_float32_stays_float32(rng):
    m = _randomise(nn.LayerNorm((3, 4)), rng)
    x = rng.standard_normal((5, 3, 4)).astype(np.float32)
    y = m(x)
    gx = m.backward(np.ones_like(y))
    assert y.dtype == gx.dtype == m.weight.grad.dtype == np.float32
    np.testing.assert_allclose(((y - m.bias.data) / m.weight.data).reshape(5, -1).mean(1), 0, atol=1e-5)


@pytest.mark.parametrize("make,shape", [(lambda: nn.BatchNorm2d(3), (4, 3, 5, 5)),
                                        (lambda: nn.BatchNorm1d(3, affine=False), (6, 3)),
                                        (lambda: nn.LayerNorm(5, elementwise_affine=False), (4, 5)),
                                        (lambda: nn.LayerNorm((2, 5)), (3, 2, 5))], ids=["bn2d", "bn1d", "ln", "ln2"])
def test_normalization_outputs_survive_later_forwards_and_backward_uses_the_latest(rng, make, shape):
    # the layers reuse an internal buffer across forwards; returned arrays must never alias it
    m = make()
    x1, x2 = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    gy = rng.standard_normal(shape).astype(np.float32)
    y1 = m(x1)
    y1_copy = y1.copy()
    gx1 = m.backward(gy)
    gx1_copy = gx1.copy()
    m(x2)
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(m.backward(gy), m.backward(gy))  # the cache is not consumed
    np.testing.assert_array_equal(gx1, gx1_copy)
    m(x1)
    np.testing.assert_allclose(m.backward(gy), gx1_copy, rtol=1e-6)


def test_batchnorm_float32_statistics_are_accurate_on_large_offset_maps(rng):
    # 16·32·32 = 16384 values per channel, mean 5: float32 sums must not drift
    x = rng.standard_normal((16, 4, 32, 32)) * 0.5 + 5.0
    gy = rng.standard_normal(x.shape)
    m32 = _randomise(nn.BatchNorm2d(4), rng)
    m64 = copy.deepcopy(m32).double()
    y32, y64 = m32(x.astype(np.float32)), m64(x)
    gx32, gx64 = m32.backward(gy.astype(np.float32)), m64.backward(gy)
    assert rel_err(y32, y64) < 2e-5 and rel_err(gx32, gx64) < 2e-5
    assert rel_err(m32.running_mean, m64.running_mean) < 1e-6
    assert rel_err(m32.running_var, m64.running_var) < 1e-5
