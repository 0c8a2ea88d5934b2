"""Conv2d and ConvTranspose2d: finite differences, the slow reference, PyTorch, and errors."""
import numpy as np
import pytest

from pygan import gradcheck, nn, penalties
from pygan.backend import conv_numpy as cn
from pygan.nn.module import Module
from conftest import compare_with_torch, rel_err, torch_or_skip

# (N, C_in, C_out, H, W, kernel, stride, padding, bias) — small on purpose: every element of
# x and the weight is perturbed twice.
CONV_CONFIGS = [
    (1, 2, 3, 5, 5, 3, 1, 0, True),           # batch 1, square
    (3, 2, 2, 7, 6, (2, 3), 2, 1, True),      # odd batch, non-square kernel, stride 2
    (2, 1, 3, 5, 7, (3, 1), (1, 2), 2, False),  # padding 2, mixed stride, no bias
    (3, 3, 2, 6, 5, 4, 2, (1, 0), True),      # even kernel, k4 s2 like DCGAN, odd width
    (1, 2, 2, 3, 3, 3, 1, 1, False),          # 'same' padding, input = kernel
]
CONVT_CONFIGS = [
    # (N, C_in, C_out, H, W, kernel, stride, padding, output_padding, bias)
    (1, 2, 3, 3, 3, 3, 1, 0, 0, True),
    (3, 3, 2, 3, 4, 4, 2, 1, 0, True),        # DCGAN's k4 s2 p1, odd batch
    (2, 2, 2, 3, 2, (2, 3), 2, 1, 1, False),  # output_padding 1, non-square kernel
    (3, 1, 2, 2, 3, 3, (2, 3), (2, 0), (1, 2), True),  # padding 2, mixed stride / output_padding
    (1, 2, 1, 4, 3, (1, 2), 1, 0, 0, False),
]


def _ids(configs):
    return [f"cfg{i}" for i in range(len(configs))]


@pytest.mark.parametrize("N,cin,cout,H,W,k,s,p,bias", CONV_CONFIGS, ids=_ids(CONV_CONFIGS))
def test_conv2d_backward_matches_finite_differences(rng, N, cin, cout, H, W, k, s, p, bias):
    m = nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=bias)
    gradcheck.check_module(m, rng.standard_normal((N, cin, H, W))).raise_if_failed()


@pytest.mark.parametrize("N,cin,cout,H,W,k,s,p,op,bias", CONVT_CONFIGS, ids=_ids(CONVT_CONFIGS))
def test_conv_transpose2d_backward_matches_finite_differences(rng, N, cin, cout, H, W, k, s, p, op, bias):
    m = nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p, output_padding=op, bias=bias)
    gradcheck.check_module(m, rng.standard_normal((N, cin, H, W))).raise_if_failed()


def test_gradcheck_catches_a_wrong_conv_weight_gradient(rng):
    class Wrong(nn.Conv2d):
        def backward(self, gy):
            gx = super().backward(gy)
            self.weight.grad[0, 0, 0, 0] *= 1.01
            return gx

    assert not gradcheck.check_module(Wrong(2, 2, 3), rng.standard_normal((2, 2, 4, 4)), max_elements=None).ok


def _random_case(rng, batched):
    """Awkward shapes; ``batched`` picks C·kh·kw on either side of the per-image-matmul switch."""
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    ph, pw = (int(v) for v in rng.integers(0, 3, 2))
    C = int(rng.integers(1, 3)) if batched else int(rng.integers(cn._BATCHED_MAX_K // (kh * kw) + 1, 70))
    N, O = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    H = int(rng.integers(max(1, kh - 2 * ph), 12))
    W = int(rng.integers(max(1, kw - 2 * pw), 12))
    return (N, C, H, W), (O, C, kh, kw), (sh, sw), (ph, pw)


@pytest.mark.parametrize("batched", [True, False], ids=["small-K", "large-K"])
def test_fast_kernels_equal_the_reference_on_awkward_shapes(rng, batched):
    for _ in range(40):
        xs, ws, s, p = _random_case(rng, batched)
        assert (xs[1] * ws[2] * ws[3] <= cn._BATCHED_MAX_K) == batched
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        y = cn.conv2d_forward(x, w, s, p)
        yr = cn.conv2d_reference(x, w, s, p)
        gy = rng.standard_normal(yr.shape)
        case = f"x {xs}, w {ws}, stride {s}, padding {p}"
        assert y.shape == yr.shape and rel_err(y, yr) <= 1e-12, case
        gxr = cn.conv2d_backward_input_reference(gy, w, xs, s, p)
        assert rel_err(cn.conv2d_backward_input(gy, w, xs, s, p), gxr) <= 1e-12, case
        # both methods, whichever the cost model would pick
        assert rel_err(cn._backward_input_col2im(gy, w, xs, s, p), gxr) <= 1e-12, case
        assert rel_err(cn._backward_input_subpixel(gy, w, xs, s, p), gxr) <= 1e-12, case
        gw = cn.conv2d_backward_weight(x, gy, ws, s, p)
        assert rel_err(gw, cn.conv2d_backward_weight_reference(x, gy, ws, s, p)) <= 1e-12, case


def test_kernels_given_the_patches_equal_the_kernels_that_build_them(rng):
    """The im2col matrix a layer keeps from its forward gives the same products; a matrix of the
    wrong shape (another x, another kernel) is refused, not multiplied."""
    for batched in (True, False):
        for _ in range(10):
            xs, ws, s, p = _random_case(rng, batched)
            x, w = rng.standard_normal(xs), rng.standard_normal(ws)
            cols = cn.conv2d_patches(x, ws, s, p)
            y = cn.conv2d_forward(x, w, s, p)
            np.testing.assert_array_equal(cn.conv2d_forward(x, w, s, p, cols), y)
            gy = rng.standard_normal(y.shape)
            np.testing.assert_array_equal(cn.conv2d_backward_weight(x, gy, ws, s, p, cols),
                                          cn.conv2d_backward_weight(x, gy, ws, s, p))
    x, w = rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))     # small K: (N, K, P)
    other = cn.conv2d_patches(x[:1], w.shape, (1, 1), (0, 0))
    with pytest.raises(ValueError, match=r"patches of shape \(1, 27, 36\) given, expected \(2, 27, 36\)"):
        cn.conv2d_forward(x, w, (1, 1), (0, 0), other)
    x, w = rng.standard_normal((2, 8, 8, 8)), rng.standard_normal((4, 8, 3, 3))     # large K: (N·P, K)
    other = cn.conv2d_patches(x[:1], w.shape, (1, 1), (0, 0))
    with pytest.raises(ValueError, match=r"patches of shape \(36, 72\) given, expected \(72, 72\)"):
        cn.conv2d_backward_weight(x, rng.standard_normal((2, 4, 6, 6)), w.shape, (1, 1), (0, 0), other)


@pytest.mark.parametrize("layer", ["conv", "convT"])
def test_layers_build_the_patches_once_per_forward_and_backward(rng, layer, monkeypatch):
    """Conv2d: one im2col of x (forward), reused by the weight gradient; ConvTranspose2d: one
    im2col of gy in backward, shared by its input and weight gradients."""
    m = nn.Conv2d(3, 4, 3, stride=2, padding=1) if layer == "conv" else nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1)
    calls = []
    real = cn.conv2d_patches
    monkeypatch.setattr(cn, "conv2d_patches", lambda *a: calls.append(a[0].shape) or real(*a))
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    y = m(x)
    m.backward(np.ones_like(y))
    assert calls == ([x.shape] if layer == "conv" else [y.shape])


def test_reference_kernels_are_adjoint_to_each_other(rng):
    """⟨conv(x, w), gy⟩ = ⟨x, convᵀ(gy, w)⟩ = ⟨w, bw(x, gy)⟩: the three references agree."""
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    s, p = (2, 1), (1, 2)
    y = cn.conv2d_reference(x, w, s, p)
    gy = rng.standard_normal(y.shape)
    v = np.sum(y * gy)
    assert abs(np.sum(x * cn.conv2d_backward_input_reference(gy, w, x.shape, s, p)) - v) <= 1e-12 * abs(v)
    assert abs(np.sum(w * cn.conv2d_backward_weight_reference(x, gy, w.shape, s, p)) - v) <= 1e-12 * abs(v)


def test_stride_larger_than_kernel_leaves_skipped_pixels_with_zero_gradient(rng):
    x, w = rng.standard_normal((2, 2, 7, 8)), rng.standard_normal((3, 2, 2, 1))
    gy = rng.standard_normal(cn.conv2d_forward(x, w, (3, 3), (0, 0)).shape)
    for method in (cn._backward_input_col2im, cn._backward_input_subpixel):
        gx = method(gy, w, x.shape, (3, 3), (0, 0))
        np.testing.assert_array_equal(gx[:, :, 2::3], 0)
        np.testing.assert_array_equal(gx[:, :, :, 1::3], 0)
        assert rel_err(gx, cn.conv2d_backward_input_reference(gy, w, x.shape, (3, 3), (0, 0))) <= 1e-12


def test_backward_input_picks_subpixel_for_dcgan_layers_and_col2im_for_one_channel():
    assert cn._subpixel_is_cheaper((64, 64, 14, 14), (128, 64, 4, 4), (2, 2), (1, 1), 7, 7)
    assert not cn._subpixel_is_cheaper((64, 1, 28, 28), (64, 1, 4, 4), (2, 2), (1, 1), 14, 14)


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3),
    dict(kernel_size=(2, 3), stride=2, padding=1),
    dict(kernel_size=4, stride=2, padding=1, bias=False),
    dict(kernel_size=(3, 1), stride=(1, 2), padding=(2, 0)),
])
def test_conv2d_equals_torch(rng, kw):
    torch = torch_or_skip()
    compare_with_torch(nn.Conv2d(3, 4, **kw), torch.nn.Conv2d(3, 4, **kw), rng.standard_normal((3, 3, 9, 8)))


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3),
    dict(kernel_size=4, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=2, padding=1, output_padding=1, bias=False),
    dict(kernel_size=3, stride=(3, 2), padding=(2, 0), output_padding=(2, 1)),
])
def test_conv_transpose2d_equals_torch(rng, kw):
    torch = torch_or_skip()
    compare_with_torch(nn.ConvTranspose2d(3, 4, **kw), torch.nn.ConvTranspose2d(3, 4, **kw),
                       rng.standard_normal((3, 3, 5, 4)))


def test_dcgan_shapes_equal_torch(rng):
    """The layers of the DCGAN used in the benchmarks, at their real channel counts."""
    torch = torch_or_skip()
    compare_with_torch(nn.Conv2d(1, 64, 4, 2, 1), torch.nn.Conv2d(1, 64, 4, 2, 1), rng.standard_normal((2, 1, 28, 28)))
    compare_with_torch(nn.Conv2d(64, 128, 4, 2, 1), torch.nn.Conv2d(64, 128, 4, 2, 1),
                       rng.standard_normal((2, 64, 14, 14)))
    compare_with_torch(nn.ConvTranspose2d(128, 64, 4, 2, 1), torch.nn.ConvTranspose2d(128, 64, 4, 2, 1),
                       rng.standard_normal((2, 128, 7, 7)))
    compare_with_torch(nn.ConvTranspose2d(64, 1, 4, 2, 1), torch.nn.ConvTranspose2d(64, 1, 4, 2, 1),
                       rng.standard_normal((2, 64, 14, 14)))


def test_output_shapes_follow_torch_formulas():
    x = np.zeros((2, 3, 28, 28), np.float32)
    assert nn.Conv2d(3, 5, 4, 2, 1)(x).shape == (2, 5, 14, 14)
    assert nn.Conv2d(3, 5, (3, 5), (2, 3), (0, 2))(x).shape == (2, 5, 13, 10)
    assert nn.ConvTranspose2d(3, 5, 4, 2, 1)(x).shape == (2, 5, 56, 56)
    assert nn.ConvTranspose2d(3, 5, 3, 2, 1, output_padding=1)(x).shape == (2, 5, 56, 56)
    assert nn.ConvTranspose2d(3, 5, 3, 2, 1)(x).shape == (2, 5, 55, 55)


@pytest.mark.parametrize("layer", [lambda: nn.Conv2d(3, 4, 3, 2, 1), lambda: nn.ConvTranspose2d(3, 4, 4, 2, 1)],
                         ids=["Conv2d", "ConvTranspose2d"])
def test_float32_stays_float32(rng, layer):
    m = layer()
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    y = m(x)
    gx = m.backward(np.ones_like(y))
    assert y.dtype == gx.dtype == m.weight.grad.dtype == m.bias.grad.dtype == np.float32
    assert m.jvp(x).dtype == np.float32


def test_default_init_matches_torch_bounds():
    conv = nn.Conv2d(8, 16, (3, 2))
    bound = 1 / np.sqrt(8 * 3 * 2)
    assert conv.weight.shape == (16, 8, 3, 2) and conv.weight.dtype == np.float32
    assert 0.9 * bound < np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    convt = nn.ConvTranspose2d(8, 16, 4)
    bound = 1 / np.sqrt(16 * 4 * 4)          # torch's fan-in: weight.size(1)·kh·kw = C_out·kh·kw
    assert convt.weight.shape == (8, 16, 4, 4)
    assert 0.9 * bound < np.abs(convt.weight.data).max() <= bound and np.abs(convt.bias.data).max() <= bound


def test_state_dict_loads_into_torch_layers():
    torch = torch_or_skip()
    for mine, theirs in [(nn.Conv2d(3, 4, 3), torch.nn.Conv2d(3, 4, 3)),
                         (nn.ConvTranspose2d(3, 4, 3, bias=False), torch.nn.ConvTranspose2d(3, 4, 3, bias=False))]:
        theirs.load_state_dict({k: torch.from_numpy(v) for k, v in mine.state_dict().items()})


def test_backward_accumulates_into_grad(rng):
    m = nn.ConvTranspose2d(2, 3, 3, 2)
    x = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    y = m(x)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    m.backward(gy)
    g1, b1 = m.weight.grad.copy(), m.bias.grad.copy()
    m(x); m.backward(gy)
    np.testing.assert_allclose(m.weight.grad, 2 * g1, rtol=1e-6)
    np.testing.assert_allclose(m.bias.grad, 2 * b1, rtol=1e-6)


@pytest.mark.parametrize("x,exc,msg", [
    (np.zeros((2, 3, 8), np.float32), ValueError,
     r"Conv2d\(3→64\): expected input of rank 4 \(N, 3, H, W\), got shape \(2, 3, 8\)"),
    (np.zeros((64, 1, 28, 28), np.float32), ValueError,
     r"Conv2d\(3→64\): expected input \(N, 3, H, W\), got \(64, 1, 28, 28\)"),
    (np.zeros((2, 3, 8, 8), np.float64), TypeError, r"Conv2d\(3→64\): input dtype float64 does not match"),
    (np.zeros((2, 3, 8, 8), np.int32), TypeError, r"Conv2d\(3→64\): expected a floating input"),
    (np.zeros((2, 3, 2, 8), np.float32), ValueError,
     r"Conv2d\(3→64\): input \(2, 3, 2, 8\) padded by \(0, 0\) is \(2, 8\), smaller than the kernel \(3, 3\)"),
])
def test_conv2d_rejects_bad_input_naming_the_layer(x, exc, msg):
    with pytest.raises(exc, match=msg):
        nn.Conv2d(3, 64, 3)(x)


@pytest.mark.parametrize("x,exc,msg", [
    (np.zeros((7, 7), np.float32), ValueError, r"ConvTranspose2d\(128→64\): expected input of rank 4"),
    (np.zeros((2, 64, 7, 7), np.float32), ValueError,
     r"ConvTranspose2d\(128→64\): expected input \(N, 128, H, W\), got \(2, 64, 7, 7\)"),
    (np.zeros((2, 128, 7, 7), np.float64), TypeError, r"ConvTranspose2d\(128→64\): input dtype float64"),
])
def test_conv_transpose2d_rejects_bad_input_naming_the_layer(x, exc, msg):
    with pytest.raises(exc, match=msg):
        nn.ConvTranspose2d(128, 64, 4, 2, 1)(x)


def test_conv_transpose2d_rejects_a_non_positive_output_size():
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(2→2\): input \(1, 2, 1, 1\) gives a non-positive"):
        nn.ConvTranspose2d(2, 2, 1, padding=1)(np.zeros((1, 2, 1, 1), np.float32))


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"output_padding \(2, 2\) must be smaller than stride \(2, 2\)"):
        nn.ConvTranspose2d(3, 4, 4, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"output_padding \(1, 1\) must be smaller than stride \(1, 1\)"):
        nn.ConvTranspose2d(3, 4, 3, output_padding=1)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        nn.Conv2d(3, 4, (3, 3, 3))
    with pytest.raises(ValueError, match=r"stride must be ≥ 1"):
        nn.Conv2d(3, 4, 3, stride=0)
    with pytest.raises(ValueError, match=r"padding must be ≥ 0"):
        nn.Conv2d(3, 4, 3, padding=-1)
    with pytest.raises(TypeError, match="dtype must be floating"):
        nn.Conv2d(3, 4, 3, dtype=np.int64)


def test_backward_rejects_a_gradient_of_the_wrong_shape():
    m = nn.Conv2d(2, 3, 3)
    m(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d\(2→3\): backward got gy of shape \(1, 3, 4, 4\), expected \(1, 3, 3, 3\)"):
        m.backward(np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(RuntimeError, match=r"ConvTranspose2d\(2→3\): backward\(\) called before forward"):
        nn.ConvTranspose2d(2, 3, 3).backward(np.zeros((1, 3, 5, 5), np.float32))


class _Flatten(Module):
    """(N, 1, 1, 1) → (N, 1) with a tangent pass, so a conv critic can be penalised here."""

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, gy):
        return gy.reshape(self._shape)

    def jvp(self, dx):
        return dx.reshape(dx.shape[0], -1)

    def backward_jvp(self, gy, gdy):
        return (None if gy is None else gy.reshape(self._shape)), gdy.reshape(self._shape)


@pytest.mark.parametrize("first", ["conv", "convT"])
def test_gradient_penalty_through_conv_critic_matches_finite_differences(rng, first):
    """jvp/backward_jvp: ∂/∂θ of the WGAN-GP penalty through a small conv critic."""
    head = (nn.Conv2d(2, 3, 3, stride=2, padding=1) if first == "conv"
            else nn.ConvTranspose2d(2, 3, 2, stride=1, padding=1))
    # spatial: conv 5→3, convT 5→4; the last conv covers the whole map → (N, 1, 1, 1)
    size = 3 if first == "conv" else 4
    D = nn.Sequential(head, nn.Tanh(), nn.Conv2d(3, 1, size), _Flatten())
    real, fake = rng.standard_normal((3, 2, 5, 5)), rng.standard_normal((3, 2, 5, 5))
    gradcheck.check_penalty(penalties.gradient_penalty, D, real, fake, lam=10.0,
                            alpha=rng.random(3)).raise_if_failed()
