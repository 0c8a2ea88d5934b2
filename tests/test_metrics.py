import numpy as np
import pytest

from pygan import data
from pygan.evaluation import metrics


# --- mode_metrics (benchmarks/WORKLOADS.md Q1/Q2) -------------------------------------------------------

# A 2-D isotropic Gaussian lies within 3σ of its mean with probability P(χ²₂ ≤ 9) = 1 − e^{−4.5}.
HQ_2D = 100.0 * (1.0 - np.exp(-4.5))    # 98.89%


def test_mode_metrics_true_ring8_covers_all_modes_with_tiny_kl(rng):
    d = data.toy("ring-8")
    m = metrics.mode_metrics(d.sample(2500, rng), d.means, d.std)
    assert m["modes"] == 8 and m["total_modes"] == 8
    assert abs(m["hq_percent"] - HQ_2D) < 1.0     # binomial sd is 0.21 points
    assert m["hq_percent"] > 97.5
    assert 0.0 <= m["kl"] < 0.01


def test_mode_metrics_true_grid25_covers_all_modes_with_tiny_kl(rng):
    x = data.grid(2500, rng)
    m = metrics.mode_metrics(x, data.grid_means(), 0.05)
    assert m["modes"] == 25 and m["total_modes"] == 25
    assert abs(m["hq_percent"] - HQ_2D) < 1.0
    assert 0.0 <= m["kl"] < 0.01


def test_mode_metrics_all_samples_on_one_mode_gives_one_mode_and_kl_log8(rng):
    d = data.toy("ring-8")
    x = d.means[3] + 0.001 * rng.standard_normal((2500, 2))
    m = metrics.mode_metrics(x, d.means, d.std)
    assert m["modes"] == 1
    assert m["hq_percent"] == 100.0
    assert m["kl"] == pytest.approx(np.log(8), rel=1e-12)


def test_mode_metrics_samples_far_from_every_mode_are_not_high_quality(rng):
    d = data.toy("grid-25")
    x = 100.0 + rng.standard_normal((500, 2))
    m = metrics.mode_metrics(x, d.means, d.std)
    assert m["hq_percent"] == 0.0 and m["modes"] == 0
    assert m["kl"] == pytest.approx(np.log(25))   # documented convention without HQ points


def test_mode_metrics_threshold_is_three_std_of_the_nearest_mean():
    means = np.array([[0.0, 0.0], [10.0, 0.0]])
    x = np.array([[2.9, 0.0], [0.0, -3.1], [10.0, 2.99], [6.95, 0.0], [5.0, 0.0]])
    m = metrics.mode_metrics(x, means, std=1.0)
    assert m["hq_percent"] == pytest.approx(40.0)     # (2.9, 0) and (10, 2.99)
    assert m["modes"] == 2


def test_mode_metrics_kl_matches_the_hand_computed_value():
    means = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    x = np.array([[0.0, 0.0], [0.01, 0.0], [0.0, 0.01], [1.0, 0.0], [5.0, 5.0]])
    m = metrics.mode_metrics(x, means, std=0.1)
    # HQ histogram p = (3/4, 1/4, 0, 0) against u = 1/4: KL = 3/4 log 3 + 1/4 log 1
    assert m["kl"] == pytest.approx(0.75 * np.log(3.0), rel=1e-12)
    assert m["modes"] == 2 and m["hq_percent"] == pytest.approx(80.0)


def test_mode_metrics_even_spread_over_modes_gives_zero_kl():
    d = data.toy("ring-8")
    x = np.repeat(d.means, 3, axis=0)
    m = metrics.mode_metrics(x, d.means, d.std)
    assert m["modes"] == 8 and m["kl"] == pytest.approx(0.0, abs=1e-15)


def test_mode_metrics_counts_nonfinite_samples_as_not_high_quality():
    d = data.toy("ring-8")
    x = np.vstack([d.means, [[np.nan, 0.0], [np.inf, np.inf]]])
    m = metrics.mode_metrics(x, d.means, d.std)
    assert m["modes"] == 8 and m["hq_percent"] == pytest.approx(80.0)


def test_mode_metrics_chunking_does_not_change_the_result(rng):
    d = data.toy("grid-25")
    x = d.sample(1000, rng) * rng.uniform(0.9, 1.1, size=(1000, 1))
    assert metrics.mode_metrics(x, d.means, d.std, chunk=7) == metrics.mode_metrics(x, d.means, d.std)


def test_mode_metrics_accepts_1d_means_and_samples(rng):
    d = data.toy("mixture-1d", stds=0.1)
    x = d.sample(2000, rng)
    m_flat = metrics.mode_metrics(x.ravel(), d.means.ravel(), 0.1)
    assert m_flat == metrics.mode_metrics(x, d.means, 0.1)
    assert m_flat["modes"] == 2
    assert abs(m_flat["hq_percent"] - 99.73) < 0.6    # 1-D: P(|z| ≤ 3)


def test_mode_metrics_rejects_bad_input():
    means = np.zeros((8, 2))
    with pytest.raises(ValueError, match="dimension 2"):
        metrics.mode_metrics(np.zeros((10, 3)), means, 0.1)
    with pytest.raises(ValueError, match="std"):
        metrics.mode_metrics(np.zeros((10, 2)), means, 0.0)
    with pytest.raises(ValueError, match="no samples"):
        metrics.mode_metrics(np.zeros((0, 2)), means, 0.1)


# --- Fréchet distance -------------------------------------------------------------------------

def _random_rotation(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _closed_form_commuting(mu_a, va, mu_b, vb):
    """FD for covariances diagonal in the same basis: ‖Δμ‖² + Σ (√va − √vb)²."""
    return np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(va) - np.sqrt(vb)) ** 2)


def test_frechet_distance_of_identical_feature_sets_is_zero(rng):
    f = rng.standard_normal((300, 16)) @ rng.standard_normal((16, 16)) + 3.0
    fd = metrics.frechet_distance(f, f.copy())
    assert 0.0 <= fd < 1e-9 * np.trace(np.cov(f, rowvar=False))


@pytest.mark.parametrize("rotate", [False, True])
def test_gaussian_frechet_distance_matches_closed_form_for_diagonal_covariances(rng, rotate):
    d = 12
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    va, vb = rng.uniform(0.1, 5.0, d), rng.uniform(0.1, 5.0, d)
    ca, cb = np.diag(va), np.diag(vb)
    if rotate:   # the same rotation of both: not diagonal any more, the distance is invariant
        q = _random_rotation(rng, d)
        ca, cb, mu_a, mu_b = q @ ca @ q.T, q @ cb @ q.T, q @ mu_a, q @ mu_b
        expected = _closed_form_commuting(q.T @ mu_a, va, q.T @ mu_b, vb)
    else:
        expected = _closed_form_commuting(mu_a, va, mu_b, vb)
    got = metrics.gaussian_frechet_distance(mu_a, ca, mu_b, cb)
    assert got == pytest.approx(expected, rel=1e-12)


def test_gaussian_frechet_distance_in_1d_is_mean_and_std_differences():
    got = metrics.gaussian_frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]])
    assert got == pytest.approx(3.0 ** 2 + (2.0 - 3.0) ** 2, rel=1e-14)


def test_gaussian_frechet_distance_is_robust_for_singular_and_ill_conditioned_covariances(rng):
    d = 10
    q = _random_rotation(rng, d)
    va = np.logspace(-12, 2, d)
    vb = va[::-1].copy()
    va[3] = vb[5] = 0.0                                         # singular
    ca, cb = q @ np.diag(va) @ q.T, q @ np.diag(vb) @ q.T
    mu = np.zeros(d)
    got = metrics.gaussian_frechet_distance(mu, ca, mu, cb)
    assert got == pytest.approx(_closed_form_commuting(mu, va, mu, vb), rel=1e-9)


def test_frechet_distance_matches_scipy_sqrtm_on_general_covariances(rng):
    scipy_linalg = pytest.importorskip("scipy.linalg")
    fa = rng.standard_normal((200, 8)) @ rng.standard_normal((8, 8))
    fb = rng.standard_normal((150, 8)) @ rng.standard_normal((8, 8)) + 0.5
    mu_a, ca = np.mean(fa, 0), np.cov(fa, rowvar=False)
    mu_b, cb = np.mean(fb, 0), np.cov(fb, rowvar=False)
    ref = (np.sum((mu_a - mu_b) ** 2) + np.trace(ca) + np.trace(cb)
           - 2.0 * np.trace(scipy_linalg.sqrtm(ca @ cb)).real)
    assert metrics.frechet_distance(fa, fb) == pytest.approx(ref, rel=1e-9)
    assert metrics.frechet_distance(fb, fa) == pytest.approx(ref, rel=1e-9)


def test_frechet_distance_with_fewer_samples_than_features_is_finite(rng):
    fa, fb = rng.standard_normal((5, 20)), rng.standard_normal((7, 20)) + 1.0
    fd = metrics.frechet_distance(fa, fb)
    assert np.isfinite(fd) and fd > 20.0 * 0.5   # the mean shift alone contributes 20


def test_feature_statistics_are_mean_and_unbiased_covariance(rng):
    f = rng.standard_normal((50, 4))
    mu, cov = metrics.feature_statistics(f)
    np.testing.assert_allclose(mu, f.mean(0), rtol=1e-14)
    np.testing.assert_allclose(cov, np.cov(f, rowvar=False), rtol=1e-12, atol=1e-15)


def test_frechet_distance_rejects_mismatched_or_bad_features(rng):
    with pytest.raises(ValueError, match="different dimension"):
        metrics.frechet_distance(rng.standard_normal((10, 3)), rng.standard_normal((10, 4)))
    with pytest.raises(ValueError, match="N ≥ 2"):
        metrics.frechet_distance(rng.standard_normal((1, 3)), rng.standard_normal((10, 3)))
    bad = rng.standard_normal((10, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.frechet_distance(bad, rng.standard_normal((10, 3)))


# --- JS divergence on a grid ------------------------------------------------------------------

def _normal(x, mu, s):
    return np.exp(-0.5 * ((x - mu) / s) ** 2) / (s * np.sqrt(2 * np.pi))


X = np.linspace(-12.0, 12.0, 4001)


def test_js_divergence_of_a_density_with_itself_is_zero():
    p = data.gaussian_mixture_1d_pdf(X)
    assert metrics.js_divergence_1d(p, p, X) == pytest.approx(0.0, abs=1e-15)


def test_js_divergence_of_disjoint_densities_is_log2():
    p = _normal(X, -8.0, 0.3)
    q = _normal(X, 8.0, 0.3)
    assert metrics.js_divergence_1d(p, q, X) == pytest.approx(np.log(2.0), rel=1e-12)


def test_js_divergence_of_a_small_shift_matches_the_fisher_approximation():
    # JS(N(0,σ²) ‖ N(δ,σ²)) = δ²/(8σ²) + O(δ⁴)
    delta, s = 0.01, 1.0
    got = metrics.js_divergence_1d(_normal(X, 0.0, s), _normal(X, delta, s), X)
    assert got == pytest.approx(delta ** 2 / (8 * s ** 2), rel=1e-3)


def test_js_divergence_equals_entropy_form_and_is_symmetric_and_bounded(rng):
    p = data.gaussian_mixture_1d_pdf(X, means=(-3.0, 1.0), stds=(0.7, 1.5), weights=(0.3, 0.7))
    q = _normal(X, 0.5, 2.0)
    js = metrics.js_divergence_1d(p, q, X)

    # independent route: JS = H(m) − (H(p) + H(q))/2, trapezoid rule
    def entropy(f):
        f = f / np.trapezoid(f, X)
        return -np.trapezoid(np.where(f > 0, f * np.log(np.where(f > 0, f, 1.0)), 0.0), X)

    pn, qn = p / np.trapezoid(p, X), q / np.trapezoid(q, X)
    ref = entropy(0.5 * (pn + qn)) - 0.5 * (entropy(pn) + entropy(qn))
    assert js == pytest.approx(ref, rel=1e-10)
    assert metrics.js_divergence_1d(q, p, X) == pytest.approx(js, rel=1e-12)
    assert 0.0 < js < np.log(2.0)
    assert metrics.js_divergence_1d(3.0 * p, q, X) == pytest.approx(js, rel=1e-12)   # normalised


def test_js_divergence_rejects_bad_grids_and_densities():
    p = _normal(X, 0.0, 1.0)
    with pytest.raises(ValueError, match="uniform"):
        metrics.js_divergence_1d(p[:3], p[:3], np.array([0.0, 1.0, 3.0]))
    with pytest.raises(ValueError, match="≥ 0"):
        metrics.js_divergence_1d(-p, p, X)
    with pytest.raises(ValueError, match="must match"):
        metrics.js_divergence_1d(p[:-1], p, X)
    with pytest.raises(ValueError, match="integrates to 0"):
        metrics.js_divergence_1d(np.zeros_like(p), p, X)
