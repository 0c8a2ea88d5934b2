"""Softmax cross-entropy (finite differences, PyTorch, stability, validation) and the image judge:
held-out accuracy on the digits, the cache (round trip, corrupt and stale files, atomic writes),
the Fréchet distance on its features and the conditional accuracy, with stub generators."""
import contextlib
import json
import os

import numpy as np
import pytest

import pygan
from pygan import gradcheck, losses, models
from pygan.evaluation import judge as J
from pygan.random import get_rng
from conftest import assert_close, torch_or_skip


@contextlib.contextmanager
def one_blas_thread():
    """The judge's matrices are small; on a busy 2-core machine OpenBLAS's spinning threads can
    slow them tenfold, so the tests that train one use a single BLAS thread when they can."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# --- cross-entropy ---------------------------------------------------------------------------

def naive_cross_entropy(z, y, eps=0.0):
    z = np.asarray(z, np.float64)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    q = (1 - eps) * np.eye(z.shape[1])[y] + eps / z.shape[1]
    return float(-(q * np.log(p)).sum() / len(z))


@pytest.mark.parametrize("n,k", [(1, 2), (6, 5), (17, 10)])
@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_cross_entropy_gradient_matches_finite_differences(rng, n, k, eps):
    z = 2.0 * rng.standard_normal((n, k))
    y = rng.integers(0, k, n)
    value, g = losses.cross_entropy(z, y, label_smoothing=eps)
    assert g.shape == z.shape and g.dtype == np.float64
    report = gradcheck.Report(f"cross_entropy n={n} k={k} eps={eps}")
    for e in gradcheck.check_array("logits", lambda: losses.cross_entropy(z, y, eps)[0], z, g, rng):
        report.add(e)
    report.raise_if_failed()
    assert abs(value - naive_cross_entropy(z, y, eps)) <= 1e-12 * max(1.0, abs(value))


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_cross_entropy_matches_torch(rng, eps, scale):
    torch = torch_or_skip()
    z = scale * rng.standard_normal((13, 7))
    y = rng.integers(0, 7, 13)
    value, g = losses.CrossEntropy(eps)(z, y)
    zt = torch.from_numpy(z.copy()).requires_grad_(True)
    lt = torch.nn.functional.cross_entropy(zt, torch.from_numpy(y), label_smoothing=eps)
    lt.backward()
    assert_close(np.array([value]), np.array([lt.item()]), 1e-10, "cross_entropy value")
    assert_close(g, zt.grad.numpy(), 1e-10, "cross_entropy gradient")


@pytest.mark.parametrize("dtype,big", [(np.float32, 1e4), (np.float32, 1e30), (np.float64, 1e300)])
def test_cross_entropy_stays_finite_at_huge_logits(dtype, big):
    z = np.array([[big, -big, 0.0], [-big, big, 0.0], [0.0, 0.0, big]], dtype=dtype)
    y = np.array([0, 0, 2])
    value, g = losses.cross_entropy(z, y)
    assert np.isfinite(value) and np.all(np.isfinite(g)) and g.dtype == dtype
    # row 0 and 2 are certain and right (loss 0, gradient 0); row 1 is certain and wrong:
    # −log p₀ = 2·big, gradient (p − onehot)/N = (−1, 1, 0)/3
    assert value == pytest.approx(2 * float(big) / 3, rel=1e-6)
    np.testing.assert_allclose(g, np.array([[0, 0, 0], [-1, 1, 0], [0, 0, 0]]) / 3, atol=1e-7)
    v_s, g_s = losses.cross_entropy(z, y, label_smoothing=0.1)
    assert np.isfinite(v_s) and np.all(np.isfinite(g_s))


def test_cross_entropy_keeps_float32(rng):
    z = rng.standard_normal((8, 4)).astype(np.float32)
    value, g = losses.cross_entropy(z, rng.integers(0, 4, 8), label_smoothing=0.2)
    assert g.dtype == np.float32 and isinstance(value, float)
    assert abs(g.sum()) < 1e-6                     # each row of p − q sums to 0


def test_cross_entropy_rejects_bad_labels_and_logits(rng):
    z = rng.standard_normal((4, 3))
    with pytest.raises(ValueError, match=r"label 3 is out of range for 3 classes"):
        losses.cross_entropy(z, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"label -1 is out of range"):
        losses.cross_entropy(z, np.array([0, -1, 2, 1]))
    with pytest.raises(TypeError, match="integer class labels"):
        losses.cross_entropy(z, np.array([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels of shape \(4,\)"):
        losses.cross_entropy(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        losses.cross_entropy(z[:, 0], np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.CrossEntropy(1.5)
    z[1, 2] = np.nan
    with pytest.raises(losses.NonFiniteLoss, match="NaN"):
        losses.cross_entropy(z, np.array([0, 1, 2, 1]))


def test_cross_entropy_is_not_a_gan_objective():
    assert "cross_entropy" not in losses.names()
    with pytest.raises(ValueError):
        losses.get("cross_entropy")


# --- the judge -------------------------------------------------------------------------------

# the cache tests train deliberately poor judges (one epoch) to be quick
quick_judges = pytest.mark.filterwarnings("ignore:the judge reaches only:UserWarning")

@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return pygan.data.load_digits()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("judges")


@pytest.fixture(scope="module")
def digits_judge(digits, cache):
    """The default digits judge (what ``evaluate(model, data="digits")`` uses), in a tmp cache."""
    J.clear_memory_cache()
    x, y = digits
    with one_blas_thread():
        judge = J.get_judge("digits", x, y, cache_dir=cache)
    yield judge
    J.clear_memory_cache()


def split(n, seed=7, test=360):
    perm = np.random.default_rng(seed).permutation(n)
    return perm[test:], perm[:test]


def test_judge_reaches_97_percent_on_held_out_digits(digits, tmp_path):
    x, y = digits
    train, test = split(len(x))
    with one_blas_thread():
        judge = J.get_judge("digits-split", x[train], y[train], test_images=x[test], test_labels=y[test],
                            cache_dir=tmp_path)
    acc = float(np.mean(judge.predict(x[test]) == y[test]))
    assert acc >= 0.97, f"held-out accuracy {acc:.4f}"
    assert judge.heldout_accuracy == pytest.approx(acc)
    assert judge.source == "trained"
    f = judge.features(x[:5])
    assert f.shape == (5, judge.net.feature_dim) and f.dtype == np.float32


def test_default_digits_judge_holds_out_a_fifth_and_is_accurate(digits_judge):
    assert digits_judge.meta["n_heldout"] == 359 and digits_judge.meta["n_train"] == 1797 - 359
    assert digits_judge.heldout_accuracy >= 0.97


def test_judge_does_not_move_pygans_global_generator():
    before = get_rng().bit_generator.state
    J.Judge((1, 8, 8), 10)
    assert get_rng().bit_generator.state == before


def test_judge_weights_depend_only_on_its_seed():
    a, b = J.Judge((1, 8, 8), 10, seed=3), J.Judge((1, 8, 8), 10, seed=3)
    pygan.manual_seed(99)
    c = J.Judge((1, 8, 8), 10, seed=3)
    for (k, va), vb, vc in zip(a.net.state_dict().items(), b.net.state_dict().values(),
                                c.net.state_dict().values()):
        assert np.array_equal(va, vb) and np.array_equal(va, vc), k


def test_cache_round_trip_loads_without_training(digits, digits_judge, cache, monkeypatch):
    x, y = digits
    path = digits_judge.cache_path
    assert path is not None and os.path.dirname(path) == str(cache)
    assert os.path.basename(path).startswith("digits-") and path.endswith(".npz")
    assert [p for p in os.listdir(cache) if p.endswith(".tmp")] == []     # nothing left behind
    with np.load(path, allow_pickle=False) as f:                          # a plain npz, no pickles
        assert json.loads(str(f["meta"][()]))["key"] in path
    J.clear_memory_cache()

    def no_training(*a, **k):
        raise AssertionError("the judge was retrained although its cache file is valid")

    monkeypatch.setattr(J.Judge, "fit", no_training)
    loaded = J.get_judge("digits", x, y, cache_dir=cache)
    assert loaded.source == "cache" and loaded is not digits_judge
    assert loaded.heldout_accuracy == digits_judge.heldout_accuracy
    np.testing.assert_array_equal(loaded.features(x[:100]), digits_judge.features(x[:100]))
    assert J.get_judge("digits", x, y, cache_dir=cache) is loaded         # then from memory


@quick_judges
def test_cache_key_changes_with_data_and_settings(digits, tmp_path):
    x, y = digits
    quick = {"epochs": 1}
    with one_blas_thread():
        a = J.get_judge("d", x[:300], y[:300], cache_dir=tmp_path, training=quick)
        b = J.get_judge("d", x[:300], y[:300], cache_dir=tmp_path, training={"epochs": 2})
        y2 = y[:300].copy()
        y2[0] = (y2[0] + 1) % 10
        c = J.get_judge("d", x[:300], y2, cache_dir=tmp_path, training=quick)
    assert len({a.cache_path, b.cache_path, c.cache_path}) == 3


@quick_judges
@pytest.mark.parametrize("damage", ["garbage", "truncated", "other key", "wrong shapes"])
def test_unusable_cache_is_retrained_with_a_warning(digits, tmp_path, damage):
    x, y = digits[0][:300], digits[1][:300]
    quick = {"epochs": 1}
    with one_blas_thread():
        good = J.get_judge("d", x, y, cache_dir=tmp_path, training=quick)
    path = good.cache_path
    raw = open(path, "rb").read()
    if damage == "garbage":
        open(path, "wb").write(b"not an npz file at all")
    elif damage == "truncated":
        open(path, "wb").write(raw[: len(raw) // 2])
    else:
        other = J.Judge((1, 8, 8), 10, {"convs": [[4, 3, 1, 1]], "hidden": 8}) if damage == "wrong shapes" \
            else J.Judge((1, 8, 8), 10, good.arch)
        other.meta = dict(good.meta) if damage == "wrong shapes" else dict(good.meta, key="0" * 20)
        other.arch = good.arch                        # the meta claims the right architecture
        other.save(path)
    J.clear_memory_cache()
    with one_blas_thread(), pytest.warns(J.JudgeCacheWarning, match="unusable.*retraining"):
        again = J.get_judge("d", x, y, cache_dir=tmp_path, training=quick)
    assert again.source == "trained"
    np.testing.assert_array_equal(again.features(x[:20]), good.features(x[:20]))   # same seed, same judge
    J.clear_memory_cache()
    assert J.get_judge("d", x, y, cache_dir=tmp_path, training=quick).source == "cache"  # rewritten


def test_a_poor_judge_warns(digits, tmp_path):
    x, y = digits
    with pytest.warns(UserWarning, match=r"reaches only \d+\.\d% held-out accuracy"):
        J.get_judge("d", x[:200], y[:200], cache_dir=tmp_path, training={"epochs": 1})


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    judge = J.Judge((1, 8, 8), 10)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        judge.save(tmp_path / "j.npz")
    assert os.listdir(tmp_path) == []


def test_cache_folder_honours_argument_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PYGAN_CACHE", str(tmp_path / "pc"))
    assert J.cache_folder() == str(tmp_path / "pc" / "judges")
    assert J.cache_folder(tmp_path / "mine") == str(tmp_path / "mine")
    monkeypatch.delenv("PYGAN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert J.cache_folder() == str(tmp_path / "xdg" / "pygan" / "judges")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert J.cache_folder() == os.path.join(os.path.expanduser("~"), ".cache", "pygan", "judges")


# --- evaluate, with stub generators ---------------------------------------------------------------

class StubModel:
    """Implements the part of GANModel that evaluate uses. ``mode``: "real" returns images of the
    pool (of the requested class when conditional), "random class" images of a class drawn from z
    whatever was asked, "noise" uniform noise in [−1, 1]."""

    latent_dim = 3
    data_shape = (1, 8, 8)

    def __init__(self, images, labels, num_classes=0, mode="real"):
        self.images, self.labels, self.num_classes, self.mode = images, labels, num_classes, mode
        self.pools = [np.nonzero(labels == c)[0] for c in range(10)]

    def sample_z(self, n, rng):
        return rng.random((n, self.latent_dim)).astype(np.float32)

    def g_forward(self, z, labels=None):
        n = len(z)
        pick = (z[:, 0].astype(np.float64) * 2 ** 20).astype(np.int64)
        if self.mode == "noise":
            return np.random.default_rng(int(pick.sum())).uniform(-1, 1, (n, 1, 8, 8)).astype(np.float32)
        if self.num_classes == 0:
            return self.images[pick % len(self.images)]
        cls = np.asarray(labels) if self.mode == "real" else (z[:, 1] * 10).astype(np.int64) % 10
        return np.stack([self.images[self.pools[c][p % len(self.pools[c])]] for c, p in zip(cls, pick)])


def halves(digits):
    x, y = digits
    a, b = split(len(x), seed=11, test=len(x) // 2)
    return (x[a], y[a]), (x[b], y[b])


def test_fid_of_real_digits_is_near_the_noise_floor_and_of_noise_is_large(digits, digits_judge):
    (xa, ya), (xb, yb) = halves(digits)
    n = 400                                        # ≤ N/2 of the real half: floor at the same size
    real = J.evaluate(StubModel(xb, yb), xa, ya, rng=np.random.default_rng(1), n=n, judge=digits_judge)
    noise = J.evaluate(StubModel(xb, yb, mode="noise"), xa, ya, rng=np.random.default_rng(1), n=n,
                       judge=digits_judge)
    assert real["real_vs_real_n"] == n and real["n"] == n
    floor = real["real_vs_real_fid"]
    assert floor == noise["real_vs_real_fid"] and floor > 0
    assert real["fid"] < 2.0 * floor, real
    assert noise["fid"] > 20.0 * floor, noise
    assert "cond_accuracy" not in real
    json.dumps(real)                               # JSON-ready for metrics.jsonl


def test_cond_accuracy_of_a_faithful_stub_is_one_and_of_a_random_one_a_tenth(digits, digits_judge):
    x, y = digits
    faithful = J.evaluate(StubModel(x, y, 10), x, y, rng=np.random.default_rng(2), n=1000, judge=digits_judge)
    assert faithful["cond_accuracy"] >= 0.97
    assert len(faithful["cond_accuracy_per_class"]) == 10
    assert min(faithful["cond_accuracy_per_class"]) >= 0.9
    rand = J.evaluate(StubModel(x, y, 10, "random class"), x, y, rng=np.random.default_rng(2), n=1000,
                      judge=digits_judge)
    assert 0.06 <= rand["cond_accuracy"] <= 0.14, rand
    assert max(rand["cond_accuracy_per_class"]) < 0.35


def test_evaluate_by_data_set_name_reuses_the_cached_judge(digits, digits_judge, cache, monkeypatch):
    x, y = digits
    monkeypatch.setattr(J.Judge, "fit", lambda *a, **k: pytest.fail("retrained"))
    q1 = J.evaluate(StubModel(x, y, 10), data="digits", cache_dir=cache, n=500, rng=np.random.default_rng(3))
    q2 = J.evaluate(StubModel(x, y, 10), data="digits", cache_dir=cache, n=500, rng=np.random.default_rng(3))
    assert q1 == q2
    assert q1["judge_heldout_accuracy"] == pytest.approx(digits_judge.heldout_accuracy)
    assert q1["cond_accuracy"] >= 0.97 and q1["fid"] < 3 * q1["real_vs_real_fid"]


def test_evaluate_reports_nonfinite_samples_and_wrong_shapes(digits, digits_judge):
    x, y = digits

    class Broken(StubModel):
        def g_forward(self, z, labels=None):
            out = super().g_forward(z, labels).copy()
            out[::10, 0, 0, 0] = np.nan
            return out

    q = J.evaluate(Broken(x, y, 10), x, y, rng=np.random.default_rng(4), n=200, judge=digits_judge)
    assert q["fid"] == float("inf") and q["nonfinite_samples"] == 20
    assert q["cond_accuracy"] <= 0.9 + 1e-12         # the NaN samples count as wrong

    class Wrong(StubModel):
        def g_forward(self, z, labels=None):
            return np.zeros((len(z), 1, 6, 6), np.float32)

    with pytest.raises(ValueError, match=r"generates \(1, 6, 6\) but the judge expects \(1, 8, 8\)"):
        J.evaluate(Wrong(x, y), x, y, n=10, judge=digits_judge)
    with pytest.raises(TypeError, match="real_images"):
        J.evaluate(StubModel(x, y))


def test_evaluate_samples_in_eval_mode_and_restores_modes(digits, digits_judge):
    x, y = digits
    model = models.build("cgan-8")
    model.train()
    model.D.eval()
    seen = []
    g_forward = model.g_forward

    def spy(z, labels=None):
        seen.append(model.G.training)
        return g_forward(z, labels)

    model.g_forward = spy
    q = J.evaluate(model, x, y, rng=np.random.default_rng(5), n=50, judge=digits_judge)
    assert seen and not any(seen)
    assert model.G.training and not model.D.training
    assert set(q) >= {"fid", "real_vs_real_fid", "cond_accuracy", "cond_accuracy_per_class"}
    assert 0.0 <= q["cond_accuracy"] <= 1.0
