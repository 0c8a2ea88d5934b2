"""nn.Dropout2d: whole channels, its own (checkpointable) generator, eval identity,
finite differences with the mask replayed, torch's structure and edge cases."""
import numpy as np
import pytest

import pygan
from pygan import checkpoint, gradcheck, nn, penalties
from conftest import compare_with_torch, torch_or_skip


@pytest.mark.parametrize("shape", [(3, 4, 2, 5), (4, 3, 5)])
@pytest.mark.parametrize("p", [0.3, 0.7])
def test_dropout2d_matches_finite_differences_with_the_mask_replayed(rng, p, shape):
    gradcheck.check_module(nn.Dropout2d(p, rng=np.random.default_rng(3)), rng.standard_normal(shape)).raise_if_failed()


def test_dropout2d_in_a_conv_net_matches_finite_differences_and_a_penalty(rng):
    m = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Tanh(), nn.Dropout2d(0.5), nn.Flatten(),
                      nn.Linear(4 * 16, 1))
    x = rng.standard_normal((3, 2, 4, 4))
    gradcheck.check_module(m, x).raise_if_failed()
    gradcheck.check_penalty(penalties.r1_penalty, m, x).raise_if_failed()


def test_dropout2d_zeroes_whole_channels_and_scales_the_rest(rng):
    p = 0.4
    m = nn.Dropout2d(p, rng=np.random.default_rng(1))
    x = np.ones((200, 50, 3, 3), np.float32)
    y = m(x)
    assert y.dtype == np.float32
    per_channel = y.reshape(200, 50, 9)
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))      # constant per (n, c)
    kept = per_channel[:, :, 0] != 0
    np.testing.assert_allclose(per_channel[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < 0.02                                # 10k draws: std 0.005
    gx = m.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(gx, 2 * y)


def test_dropout2d_train_structure_like_torch_and_eval_and_edges_equal_torch(rng):
    torch = torch_or_skip()
    x = rng.standard_normal((40, 30, 2, 2)) + 5.0
    for y in (nn.Dropout2d(0.5)(x), torch.nn.Dropout2d(0.5)(torch.from_numpy(x)).numpy()):
        z = (y == 0).reshape(40, 30, 4)
        assert np.all(z.all(axis=2) == z.any(axis=2)) and 0.4 < z[:, :, 0].mean() < 0.6
    compare_with_torch(nn.Dropout2d(0.5).eval(), torch.nn.Dropout2d(0.5), x[:3])
    compare_with_torch(nn.Dropout2d(0.0), torch.nn.Dropout2d(0.0), x[:3])
    y, gx = compare_with_torch(nn.Dropout2d(1.0), torch.nn.Dropout2d(1.0), x[:3])
    assert not y.any() and not gx.any()
    m = nn.Dropout2d(0.5).eval()
    assert m(x) is x


def test_dropout2d_generator_is_seeded_from_pygans_and_checkpointed():
    x = np.ones((4, 6, 2, 2), np.float32)
    pygan.manual_seed(5)
    a = nn.Dropout2d(0.5)
    ya = a(x)
    pygan.manual_seed(5)
    b = nn.Dropout2d(0.5)
    np.testing.assert_array_equal(b(x), ya)
    net = nn.Sequential(nn.Conv2d(6, 6, 1), nn.Dropout2d(0.5))
    rngs = checkpoint.module_rngs(net, "D")
    assert list(rngs) == ["D.1"] and rngs["D.1"] is net[1].rng
    state = checkpoint.generator_state(net[1].rng)
    first = net[1](x)
    checkpoint.set_generator_state(net[1].rng, state)
    np.testing.assert_array_equal(net[1](x), first)


def test_dropout2d_errors_name_the_layer(rng):
    with pytest.raises(ValueError, match=r"Dropout2d\(p=0.5\): expected input \(N, C, H, W\) or \(N, C, L\), got \(4, 5\)"):
        nn.Dropout2d()(np.zeros((4, 5), np.float32))
    m = nn.Dropout2d(0.5)
    m(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"Dropout2d\(p=0.5\): backward got gy of shape \(2, 3, 5, 5\), "
                                         r"expected \(2, 3, 4, 4\)"):
        m.backward(np.zeros((2, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match="^Dropout2d: dropout probability has to be between 0 and 1"):
        nn.Dropout2d(1.5)
