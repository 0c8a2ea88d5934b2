import copy

import numpy as np
import pytest

import pygan
from pygan import nn, gradcheck
from conftest import compare_with_torch, torch_or_skip


# --- Dropout --------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_backward_matches_finite_differences_with_the_mask_replayed(rng, p):
    m = nn.Dropout(p, rng=np.random.default_rng(7))
    report = gradcheck.check_module(m, rng.standard_normal((5, 7)))  # odd size: 35 draws
    report.raise_if_failed()


def test_dropout_inside_a_network_matches_finite_differences(rng):
    m = nn.Sequential(nn.Linear(4, 16), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(16, 2))
    gradcheck.check_module(m, rng.standard_normal((5, 4))).raise_if_failed()


def test_dropout_without_replaying_the_mask_would_fail(rng):
    # guards the test above: a mask that changes between forwards breaks finite differences
    class Fresh(nn.Dropout):
        calls = 0

        def forward(self, x):
            Fresh.calls += 1
            self.rng = np.random.default_rng(Fresh.calls)
            return super().forward(x)

    assert not gradcheck.check_module(Fresh(0.5), rng.standard_normal((6, 7))).ok


def test_dropout_eval_is_the_identity(rng):
    m = nn.Dropout(0.5).eval()
    x = rng.standard_normal((3, 4)).astype(np.float32)
    assert m(x) is x
    gy = rng.standard_normal((3, 4)).astype(np.float32)
    assert m.backward(gy) is gy


def test_dropout_scales_kept_values_by_one_over_keep_probability(rng):
    p = 0.3
    m = nn.Dropout(p, rng=np.random.default_rng(1))
    x = np.ones((400, 500), np.float32)
    y = m(x)
    assert y.dtype == np.float32
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)
    assert abs(kept.mean() - (1 - p)) < 5e-3       # 200k Bernoulli draws: std 1e-3
    assert abs(y.mean() - 1.0) < 7e-3              # E[y] = x
    gx = m.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(gx, 2 * y)       # same mask, same scale


def test_dropout_p0_keeps_and_p1_zeroes_everything_like_torch(rng):
    torch = torch_or_skip()
    x = rng.standard_normal((4, 5))
    compare_with_torch(nn.Dropout(0.0), torch.nn.Dropout(0.0), x)
    y, gx = compare_with_torch(nn.Dropout(1.0), torch.nn.Dropout(1.0), x)
    assert not y.any() and not gx.any()
    compare_with_torch(nn.Dropout(0.5).eval(), torch.nn.Dropout(0.5), x)


def test_dropout_train_output_has_torchs_structure(rng):
    torch = torch_or_skip()
    x = rng.standard_normal((50, 60)) + 3.0  # no zeros in x
    p = 0.4
    mine = nn.Dropout(p)(x)
    theirs = torch.nn.Dropout(p)(torch.from_numpy(x)).numpy()
    for y in (mine, theirs):
        kept = y != 0
        np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-12)
        assert abs(kept.mean() - (1 - p)) < 0.03


def test_dropout_masks_come_from_its_own_generator_seeded_from_pygans():
    x = np.ones((8, 8), np.float32)
    pygan.manual_seed(3)
    a = nn.Dropout(0.5)
    ya1, ya2 = a(x), a(x)
    pygan.manual_seed(3)
    b = nn.Dropout(0.5)
    np.testing.assert_array_equal(b(x), ya1)
    np.testing.assert_array_equal(b(x), ya2)
    assert not np.array_equal(ya1, ya2)             # a fresh mask per forward
    assert isinstance(a.rng, np.random.Generator)
    # the mask does not depend on the input dtype
    c = nn.Dropout(0.5, rng=np.random.default_rng(9))
    d = nn.Dropout(0.5, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(c(x) != 0, d(x.astype(np.float64)) != 0)


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", None])
def test_dropout_rejects_a_bad_probability(p):
    with pytest.raises(ValueError, match="Dropout: dropout probability has to be between 0 and 1"):
        nn.Dropout(p)


def test_dropout_rejects_bad_input():
    with pytest.raises(TypeError, match=r"Dropout\(p=0.5\): expected a floating input, got dtype int64"):
        nn.Dropout(0.5)(np.zeros(3, np.int64))
    with pytest.raises(TypeError, match=r"Dropout\(p=0.5\): expected an array"):
        nn.Dropout(0.5)([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward"):
        nn.Dropout(0.5).backward(np.ones(3))


# --- Flatten / Unflatten ----------------------------------------------------------------------

FLATTEN_CASES = [((2, 3, 4, 5), 1, -1), ((2, 3, 4, 5), 0, -1), ((2, 3, 4, 5), 1, 2), ((2, 3, 4, 5), -3, -2),
                 ((2, 3, 4, 5), 2, 2), ((2, 3), 1, -1), ((4,), 0, 0)]
UNFLATTEN_CASES = [((2, 12), 1, (3, 4)), ((2, 12), -1, (2, -1, 3)), ((6, 5), 0, (2, 3)),
                   ((2, 8, 3), 1, (2, 2, 2)), ((2, 3), 1, (3,))]


@pytest.mark.parametrize("shape,start,end", FLATTEN_CASES, ids=str)
def test_flatten_backward_matches_finite_differences_and_torch(rng, shape, start, end):
    x = rng.standard_normal(shape)
    gradcheck.check_module(nn.Flatten(start, end), x).raise_if_failed()
    torch = torch_or_skip()
    compare_with_torch(nn.Flatten(start, end), torch.nn.Flatten(start, end), x)


@pytest.mark.parametrize("shape,dim,size", UNFLATTEN_CASES, ids=str)
def test_unflatten_backward_matches_finite_differences_and_torch(rng, shape, dim, size):
    x = rng.standard_normal(shape)
    gradcheck.check_module(nn.Unflatten(dim, size), x).raise_if_failed()
    torch = torch_or_skip()
    compare_with_torch(nn.Unflatten(dim, size), torch.nn.Unflatten(dim, size), x)


def test_flatten_then_unflatten_round_trips_in_a_network(rng):
    m = nn.Sequential(nn.Flatten(), nn.Linear(12, 12), nn.Unflatten(1, (3, 4)))
    x = rng.standard_normal((2, 3, 4))
    assert m(x.astype(np.float32)).shape == (2, 3, 4)
    gradcheck.check_module(m, x).raise_if_failed()


def test_flatten_and_unflatten_repr_match_torch():
    torch = torch_or_skip()
    assert repr(nn.Flatten()) == repr(torch.nn.Flatten())
    assert repr(nn.Unflatten(1, (2, 3))) == repr(torch.nn.Unflatten(1, (2, 3)))


@pytest.mark.parametrize("layer,x,exc,msg", [
    (nn.Unflatten(1, (2, 3)), np.zeros((4, 7)), ValueError,
     r"Unflatten\(dim=1, unflattened_size=\(2, 3\)\): sizes \(2, 3\) don't multiply up to the size "
     r"of dim 1 \(7\) of the input \(4, 7\)"),
    (nn.Unflatten(1, (2, -1)), np.zeros((4, 7)), ValueError, r"don't multiply up to the size of dim 1 \(7\)"),
    (nn.Unflatten(3, (2, 3)), np.zeros((4, 6)), IndexError,
     r"Unflatten\(dim=3, unflattened_size=\(2, 3\)\): dim 3 is out of range for an input of rank 2"),
    (nn.Flatten(2, 1), np.zeros((2, 3, 4)), ValueError,
     r"Flatten\(start_dim=2, end_dim=1\): start_dim cannot come after end_dim \(input \(2, 3, 4\)\)"),
    (nn.Flatten(5), np.zeros((2, 3, 4)), IndexError,
     r"Flatten\(start_dim=5, end_dim=-1\): start_dim 5 is out of range for an input of rank 3 "
     r"\(expected in \[-3, 2\]\)"),
    (nn.Flatten(), [[1.0]], TypeError, r"Flatten\(start_dim=1, end_dim=-1\): expected an array"),
], ids=lambda v: "" if not isinstance(v, str) else v[:25])
def test_shape_layers_reject_bad_input_naming_the_layer_and_shapes(layer, x, exc, msg):
    with pytest.raises(exc, match=msg):
        layer(x)


@pytest.mark.parametrize("size", [(2, -1, -1), (0, 3), (-2, 3), 6, ("a", 2)], ids=str)
def test_unflatten_rejects_bad_sizes(size):
    with pytest.raises((ValueError, TypeError), match="Unflatten: unflattened_size"):
        nn.Unflatten(1, size)


# --- Embedding ------------------------------------------------------------------------------

def _check_embedding_weight(m, idx, rng):
    """Finite differences of L = Σ y ⊙ r w.r.t. the weight (float64); indices have no gradient."""
    m = copy.deepcopy(m).double()
    r = rng.standard_normal(m(idx).shape)
    m.zero_grad()
    assert m.backward(r) is None
    entries = gradcheck.check_array("weight", lambda: float(np.sum(m(idx) * r)), m.weight.data,
                                    m.weight.grad.copy(), rng, max_elements=128)
    report = gradcheck.Report(f"Embedding {m.describe()}, indices {idx.shape}", entries)
    report.raise_if_failed()


@pytest.mark.parametrize("num,dim,shape", [(10, 4, (7,)), (10, 3, (3, 5)), (5, 2, ()), (3000, 3, (4, 20)),
                                           (1000, 2, (40, 50))], ids=str)
def test_embedding_weight_gradient_matches_finite_differences(rng, num, dim, shape):
    # (3000, …) and (1000, …) take the sorted-reduction path, the rest the one-hot path;
    # indices drawn from a few values so repeats must accumulate
    m = nn.Embedding(num, dim)
    idx = rng.choice(rng.integers(0, num, 6), size=shape)
    _check_embedding_weight(m, idx, rng)


@pytest.mark.parametrize("num,dim,shape", [(10, 4, (16,)), (10, 3, (3, 5)), (5000, 8, (64, 30))], ids=str)
def test_embedding_equals_torch(rng, num, dim, shape):
    torch = torch_or_skip()
    idx = rng.integers(0, num, shape)
    idx[..., 0] = num - 1
    for dtype in (np.int64, np.int32):
        m = nn.Embedding(num, dim)
        y, gx = compare_with_torch(m, torch.nn.Embedding(num, dim), idx.astype(dtype))
        assert gx is None and y.shape == shape + (dim,)
    assert list(nn.Embedding(num, dim).state_dict()) == list(torch.nn.Embedding(num, dim).state_dict())
    assert repr(nn.Embedding(num, dim)) == repr(torch.nn.Embedding(num, dim))


def test_embedding_gradient_paths_agree(rng):
    import pygan.nn.embedding as emb
    idx = rng.integers(0, 50, (30, 20))
    gy = rng.standard_normal((30, 20, 6))
    grads = []
    for limit in (0, 1 << 30):  # sorted reduction, then one-hot matmul
        m = nn.Embedding(50, 6).double()
        old, emb._ONE_HOT_MAX = emb._ONE_HOT_MAX, limit
        try:
            m(idx)
            m.backward(gy)
        finally:
            emb._ONE_HOT_MAX = old
        grads.append(m.weight.grad)
    ref = np.zeros((50, 6))
    for k, i in enumerate(idx.ravel()):
        ref[i] += gy.reshape(-1, 6)[k]
    np.testing.assert_allclose(grads[0], ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[1], ref, rtol=1e-12, atol=1e-12)


def test_embedding_init_is_standard_normal_and_float32():
    m = nn.Embedding(1000, 50)
    assert m.weight.dtype == np.float32 and m(np.array([3])).dtype == np.float32
    assert abs(m.weight.data.mean()) < 0.02 and abs(m.weight.data.std() - 1) < 0.02


@pytest.mark.parametrize("x,exc,msg", [
    (np.array([3, 12]), IndexError, r"Embedding\(10, 4\): index 12 is out of range \[0, 10\)"),
    (np.array([[3], [-1]]), IndexError, r"Embedding\(10, 4\): index -1 is out of range \[0, 10\)"),
    (np.array([1.0, 2.0]), TypeError, r"Embedding\(10, 4\): expected integer indices, got dtype float64"),
    (np.array([True, False]), TypeError, r"Embedding\(10, 4\): expected integer indices, got dtype bool"),
    ([1, 2], TypeError, r"Embedding\(10, 4\): expected an integer array of indices, got list"),
], ids=lambda v: "" if not isinstance(v, str) else v[:25])
def test_embedding_rejects_bad_indices_naming_the_layer(x, exc, msg):
    with pytest.raises(exc, match=msg):
        nn.Embedding(10, 4)(x)
