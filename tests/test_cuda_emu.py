"""pygan's CUDA kernels (csrc/kernels) on the CPU emulator vs the NumPy reference, the layers and a
training step under the ``cuda-emu`` backend, nvcc compiling every kernel file for sm_80 and
sm_90, and (on a machine with a GPU) the same checks on the ``cuda`` backend.

The emulator is slow, so shapes are small and awkward: sizes that are not multiples of the
64×64 GEMM tile, size-1 dimensions, stride 2 with padding, stride larger than the kernel.
"""
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import pygan
from pygan import losses, nn, optim
from pygan.backend import conv_numpy
from pygan.backend.cuda_emu import _import_extension
from conftest import assert_close

ROOT = Path(__file__).resolve().parents[1]
_ext, _why = _import_extension()
if _ext is None:
    pytest.fail(f"the cuda-emu tests need pygan._cuda_emu: {_why}", pytrace=False)

F32 = 2e-6          # normwise relative error allowed between float32 results of different order


@pytest.fixture
def emu():
    return pygan.set_backend("cuda-emu")


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# --- sgemm -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("algo", [0, 1], ids=["naive", "tiled"])
@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)],
                         ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (67, 45, 33), (64, 64, 8), (1, 130, 7), (65, 1, 9), (3, 5, 0)])
def test_sgemm_matches_numpy_in_every_transpose_case(rng, algo, ta, tb, M, N, K):
    A = f32(rng, K, M) if ta else f32(rng, M, K)
    B = f32(rng, N, K) if tb else f32(rng, K, N)
    C = np.full((M, N), np.nan, np.float32)              # β = 0 must not read C
    _ext.sgemm(algo, ta, tb, M, N, K, 1.0, A.ctypes.data, max(A.shape[1], 1), 0, B.ctypes.data,
               max(B.shape[1], 1), 0, 0.0, C.ctypes.data, N, 0, 1, 0)
    ref = (A.T if ta else A).astype(np.float64) @ (B.T if tb else B).astype(np.float64)
    assert_close(C, ref, F32, f"sgemm algo {algo} {'T' if ta else 'N'}{'T' if tb else 'N'} {M}×{N}×{K}")


@pytest.mark.parametrize("algo", [0, 1])
def test_sgemm_alpha_beta_batch_and_leading_dimensions(rng, algo):
    M, N, K, batch = 70, 9, 17, 3
    A = f32(rng, M, K + 5)                               # lda = K + 5: a column slice
    B = f32(rng, batch, K, N)
    C = f32(rng, batch, M, N)
    ref = 0.5 * A[:, :K].astype(np.float64) @ B + (-2.0) * C
    _ext.sgemm(algo, False, False, M, N, K, 0.5, A.ctypes.data, K + 5, 0, B.ctypes.data, N, K * N, -2.0,
               C.ctypes.data, N, M * N, batch, 0)
    assert_close(C, ref, F32, "batched sgemm, shared A (stride 0), α = 0.5, β = −2")


def test_backend_matmul_takes_transposed_and_sliced_views_without_copies(rng, emu):
    a, b = f32(rng, 37, 21), f32(rng, 19, 21)
    for x, y in [(a, b.T), (b, a.T), (a.T, a), (a[3], b.T), (a[:, 2:9], b.T[2:9]), (a.T[2:9], a[:, 1:4]),
                 (a[::2], b.T)]:
        assert_close(emu.matmul(x, y), x.astype(np.float64) @ y, F32, f"matmul {x.shape} @ {y.shape}")
    out = np.empty((37, 19), np.float32)
    assert emu.matmul(a, b.T, out=out) is out


def test_float64_is_refused_with_a_clear_error(rng, emu):
    with pytest.raises(TypeError, match="float32 only"):
        emu.matmul(rng.standard_normal((2, 3)), rng.standard_normal((3, 2)))
    with pytest.raises(TypeError, match="float32 only"):
        losses.get("nonsaturating").g_loss(rng.standard_normal(4))


# --- convolution -----------------------------------------------------------------------------------

CONVS = [  # (N, C, H, W, O, (kh, kw), (sh, sw), (ph, pw))
    (2, 3, 7, 5, 4, (3, 3), (1, 1), (1, 1)),
    (1, 1, 5, 5, 1, (1, 1), (1, 1), (0, 0)),
    (3, 2, 9, 8, 5, (4, 4), (2, 2), (1, 1)),         # DCGAN's k4 s2 p1 on odd sizes
    (2, 3, 6, 7, 2, (3, 2), (2, 3), (1, 0)),
    (1, 2, 4, 5, 3, (2, 2), (3, 3), (0, 0)),         # stride > kernel: rows no window touches
    (2, 17, 5, 4, 70, (2, 3), (1, 2), (2, 1)),       # K = 102, O = 70: several GEMM tiles
]


@pytest.mark.parametrize("N,C,H,W,O,k,s,p", CONVS)
def test_im2col_and_col2im_are_adjoint_and_match_the_definition(rng, N, C, H, W, O, k, s, p):
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    OH, OW = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    x = f32(rng, N, C, H, W)
    cols = np.empty((N, C * kh * kw, OH * OW), np.float32)
    _ext.im2col(x.ctypes.data, cols.ctypes.data, N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, 0)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]
            np.testing.assert_array_equal(cols.reshape(N, C, kh, kw, OH, OW)[:, :, i, j], patch)
    d = f32(rng, *cols.shape)
    gx = np.full(x.shape, np.nan, np.float32)
    _ext.col2im(d.ctypes.data, gx.ctypes.data, N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW, 0)
    lhs = float(np.vdot(cols.astype(np.float64), d))      # ⟨im2col x, d⟩ = ⟨x, col2im d⟩
    rhs = float(np.vdot(x.astype(np.float64), gx))
    assert abs(lhs - rhs) <= 1e-5 * max(1.0, abs(lhs)), (lhs, rhs)


@pytest.mark.parametrize("N,C,H,W,O,k,s,p", CONVS)
def test_conv2d_kernels_match_the_numpy_reference(rng, emu, N, C, H, W, O, k, s, p):
    x, w = f32(rng, N, C, H, W), f32(rng, O, C, *k)
    y = emu.conv2d_forward(x, w, s, p)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    assert_close(y, conv_numpy.conv2d_reference(x64, w64, s, p), F32, "conv2d forward")
    gy = f32(rng, *y.shape)
    assert_close(emu.conv2d_backward_input(gy, w, x.shape, s, p),
                 conv_numpy.conv2d_backward_input_reference(gy.astype(np.float64), w64, x.shape, s, p),
                 F32, "conv2d backward-data")
    assert_close(emu.conv2d_backward_weight(x, gy, w.shape, s, p),
                 conv_numpy.conv2d_backward_weight_reference(x64, gy.astype(np.float64), w.shape, s, p),
                 F32, "conv2d backward-filter")


def test_conv2d_backward_is_deterministic(rng, emu):
    x, w = f32(rng, 3, 4, 9, 9), f32(rng, 6, 4, 4, 4)
    gy = f32(rng, 3, 6, 4, 4)
    a = emu.conv2d_backward_input(gy, w, x.shape, (2, 2), (1, 1))
    b = emu.conv2d_backward_input(gy, w, x.shape, (2, 2), (1, 1))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(emu.conv2d_backward_weight(x, gy, w.shape, (2, 2), (1, 1)),
                                  emu.conv2d_backward_weight(x, gy, w.shape, (2, 2), (1, 1)))


# --- fused GAN losses ------------------------------------------------------------------------------

LOSSES = [losses.get(n) for n in ("minimax", "nonsaturating", "wasserstein", "hinge")] + \
         [losses.get("least_squares"), losses.get("least_squares", a=-1, b=1, c=0)]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda l: l.describe())
@pytest.mark.parametrize("shape", [(1,), (257, 1), (1000,)])
def test_fused_losses_match_the_numpy_objectives(rng, loss, shape):
    r = (3 * rng.standard_normal(shape)).astype(np.float32)
    f = (3 * rng.standard_normal(shape)).astype(np.float32)
    if r.size > 4:
        r.ravel()[:4] = [1e4, -1e4, 0.0, 1.0]            # tails, the hinge kink
        f.ravel()[:4] = [-1e4, 1e4, -1.0, 0.0]
    if isinstance(loss, losses.LeastSquares):
        r, f = r / 100, f / 100                          # keep the squares finite in float32
    pygan.set_backend("numpy")
    ref = [loss.d_real(r), loss.d_fake(f), loss.g_loss(f)]
    pygan.set_backend("cuda-emu")
    got = [loss.d_real(r), loss.d_fake(f), loss.g_loss(f)]
    for (vr, gr), (vg, gg), term in zip(ref, got, ("d_real", "d_fake", "g_loss")):
        assert abs(vg - vr) <= 1e-5 * max(1.0, abs(vr)), f"{loss.describe()}.{term}: {vg} vs {vr}"
        assert gg.shape == gr.shape and gg.dtype == np.float32
        assert_close(gg, gr, 1e-6, f"{loss.describe()}.{term} gradient")


# --- bias + activation, batch norm, Adam -------------------------------------------------------------

@pytest.mark.parametrize("act", ["identity", "relu", "leaky_relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3, 5), (1, 1)])
def test_bias_activation_forward_and_backward(rng, emu, act, shape):
    x, b = f32(rng, *shape), f32(rng, shape[1])
    z = x.astype(np.float64) + b.reshape((1, -1) + (1,) * (len(shape) - 2))
    fwd = {"identity": z, "relu": np.maximum(z, 0), "leaky_relu": np.where(z > 0, z, 0.2 * z),
           "tanh": np.tanh(z), "sigmoid": 1 / (1 + np.exp(-z))}[act]
    y = emu.bias_act_forward(x, b, act, slope=0.2)
    assert_close(y, fwd, 1e-6, f"bias+{act} forward")
    gy = f32(rng, *shape)
    y64 = y.astype(np.float64)
    d = {"identity": 1.0, "relu": (y64 > 0) * 1.0, "leaky_relu": np.where(y64 > 0, 1.0, 0.2),
         "tanh": 1 - y64 ** 2, "sigmoid": y64 * (1 - y64)}[act]
    gx, gb = emu.bias_act_backward(gy, y, act, slope=0.2)
    assert_close(gx, gy * d, 1e-6, f"bias+{act} backward")
    axes = (0,) + tuple(range(2, len(shape)))
    assert_close(gb, (gy * d).sum(axis=axes), F32, f"bias+{act} bias gradient")


def test_bias_activation_refuses_bad_arguments_naming_them(rng, emu):
    x = f32(rng, 2, 3, 4)
    with pytest.raises(ValueError, match=r"bias \(4,\) does not match 3 channels of \(2, 3, 4\)"):
        emu.bias_act_forward(x, f32(rng, 4), "relu")
    y = emu.bias_act_forward(x, None, "leaky_relu", slope=0.2)
    with pytest.raises(ValueError, match=r"gy \(2, 3\) and y \(2, 3, 4\) differ"):
        emu.bias_act_backward(f32(rng, 2, 3), y, "leaky_relu", slope=0.2)
    with pytest.raises(ValueError, match="needs slope > 0"):
        emu.bias_act_backward(f32(rng, 2, 3, 4), y, "leaky_relu", slope=0.0)


@pytest.mark.parametrize("shape", [(7, 3), (3, 5, 4, 6), (1, 2, 1, 1)])
def test_batchnorm_reductions(rng, emu, shape):
    x = (f32(rng, *shape) + 1000).astype(np.float32)   # |mean| ≫ std: a one-pass variance would fail
    axes = (0,) + tuple(range(2, len(shape)))
    mean, var = emu.bn_stats(x)
    x64 = x.astype(np.float64)
    assert_close(mean, x64.mean(axis=axes), 1e-6, "batch-norm mean")
    assert_close(var, x64.var(axis=axes), 1e-4, "batch-norm variance")
    gy = f32(rng, *shape)
    invstd = (1 / np.sqrt(var + 1e-5)).astype(np.float32)
    sg, sgx = emu.bn_backward_reduce(gy, x, mean, invstd)
    bshape = (1, -1) + (1,) * (len(shape) - 2)
    xhat = (x64 - mean.reshape(bshape)) * invstd.reshape(bshape)
    assert_close(sg, gy.sum(axis=axes, dtype=np.float64), F32, "Σ gy")
    assert_close(sgx, (gy * xhat).sum(axis=axes), 1e-4, "Σ gy·x̂")


@pytest.mark.parametrize("wd,amsgrad,betas", [(0.0, False, (0.5, 0.999)), (0.01, True, (0.0, 0.9)),
                                              (0.0, False, (0.9, 0.999))])
def test_adam_kernel_matches_the_numpy_optimizer(rng, emu, wd, amsgrad, betas):
    pygan.set_backend("numpy")
    p = nn.Parameter(f32(rng, 301))
    opt = optim.Adam([p], lr=1e-2, betas=betas, weight_decay=wd, amsgrad=amsgrad)
    q = p.data.copy()
    m, v = np.zeros_like(q), np.zeros_like(q)
    vmax = np.zeros_like(q) if amsgrad else None
    for step in range(1, 4):
        g = f32(rng, 301)
        p.grad[...] = g
        opt.step()
        emu.adam_update(q, g, m, v, 1e-2, betas[0], betas[1], 1e-8, wd, step, vmax=vmax)
        np.testing.assert_allclose(q, p.data, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(m, opt.state_dict()["0.exp_avg"], rtol=2e-6, atol=1e-8)


# --- layers and a training step under set_backend("cuda-emu") -------------------------------------------

def _run_layer(make, x, gy, backend):
    pygan.set_backend("numpy")
    pygan.manual_seed(7)
    m = make()
    pygan.set_backend(backend)
    y = m(x)
    m.zero_grad()
    gx = m.backward(gy)
    return y, gx, {k: p.grad.copy() for k, p in m.named_parameters()}


LAYERS = [
    ("Linear(13→70)", lambda: nn.Linear(13, 70), (5, 13)),
    ("Linear(1→1)", lambda: nn.Linear(1, 1), (1, 1)),
    ("Conv2d k4 s2 p1", lambda: nn.Conv2d(3, 5, 4, stride=2, padding=1), (2, 3, 9, 8)),
    ("Conv2d k3", lambda: nn.Conv2d(2, 3, 3), (1, 2, 5, 6)),
    ("ConvTranspose2d k4 s2 p1", lambda: nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1), (2, 4, 5, 4)),
    ("ConvTranspose2d op1", lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1),
     (1, 2, 3, 4)),
]


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[l[0] for l in LAYERS])
def test_layers_under_cuda_emu_equal_the_numpy_backend(rng, name, make, shape):
    x = f32(rng, *shape)
    pygan.set_backend("numpy")
    pygan.manual_seed(7)
    gy = f32(rng, *make()(x).shape)
    y0, gx0, g0 = _run_layer(make, x, gy, "numpy")
    y1, gx1, g1 = _run_layer(make, x, gy, "cuda-emu")
    assert_close(y1, y0, F32, f"{name} forward")
    assert_close(gx1, gx0, F32, f"{name} input gradient")
    for k in g0:
        assert_close(g1[k], g0[k], F32, f"{name} ∂L/∂{k}")


def _w1(width, seed):
    pygan.manual_seed(seed)
    G = nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                      nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))
    D = nn.Sequential(nn.Linear(2, width), nn.LeakyReLU(0.2), nn.Linear(width, width), nn.LeakyReLU(0.2),
                      nn.Linear(width, width), nn.LeakyReLU(0.2), nn.Linear(width, 1))
    return G, D


def _w1_steps(backend, z, real, steps=2, width=48):
    pygan.set_backend(backend)
    G, D = _w1(width, 11)
    loss = losses.get("nonsaturating")
    og = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    values = []
    for _ in range(steps):
        od.zero_grad()
        vr, gr = loss.d_real(D(real))
        D.backward(gr)
        fake = G(z)
        vf, gf = loss.d_fake(D(fake))
        D.backward(gf)
        od.step()
        og.zero_grad()
        vg, gg = loss.g_loss(D(fake))
        G.backward(D.backward(gg))
        og.step()
        values.append((vr + vf, vg))
    return values, {**{"G." + k: v for k, v in G.state_dict().items()},
                    **{"D." + k: v for k, v in D.state_dict().items()}}


def test_a_w1_training_step_on_cuda_emu_equals_numpy(rng):
    z, real = f32(rng, 64, 2), f32(rng, 64, 2)
    v0, s0 = _w1_steps("numpy", z, real)
    v1, s1 = _w1_steps("cuda-emu", z, real)
    np.testing.assert_allclose(np.array(v1), np.array(v0), rtol=1e-5)
    for k in s0:
        assert_close(s1[k], s0[k], 1e-5, f"W1 parameter {k} after 2 steps")


# --- nvcc: every kernel file compiles for sm_80 and sm_90 and links -----------------------------------

def test_every_kernel_file_compiles_and_links_with_nvcc_for_sm80_and_sm90(tmp_path):
    nvcc = shutil.which("nvcc") or (os.environ.get("CUDA_HOME") and str(Path(os.environ["CUDA_HOME"]) / "bin/nvcc"))
    if not nvcc or not Path(nvcc).exists():
        pytest.skip("nvcc is not installed")
    kernels = sorted((ROOT / "csrc/kernels").glob("*.cu"))
    assert len(kernels) >= 6
    flags = ["-O3", "-std=c++17", "-Xcompiler", "-fPIC", "-I", str(ROOT / "csrc/include"),
             "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90"]

    def compile_one(cu):
        obj = tmp_path / (cu.stem + ".o")
        r = subprocess.run([nvcc, *flags, "-c", str(cu), "-o", str(obj)], capture_output=True, text=True)
        return cu.name, r.returncode, r.stdout + r.stderr, obj

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        results = list(pool.map(compile_one, kernels))
    failed = [f"{name}:\n{out}" for name, rc, out, _ in results if rc]
    assert not failed, "nvcc failed:\n" + "\n".join(failed)
    # link them all into one shared library with every symbol resolved (cudart linked statically)
    lib = tmp_path / "libpygan_kernels.so"
    r = subprocess.run([nvcc, "-shared", "-Xlinker", "--no-undefined", "-o", str(lib),
                        *[str(o) for *_, o in results]], capture_output=True, text=True)
    assert r.returncode == 0, f"nvcc link failed:\n{r.stdout}{r.stderr}"
    cuobjdump = [c for c in (shutil.which("cuobjdump"), Path(nvcc).resolve().parent / "cuobjdump",
                             os.environ.get("CUDA_HOME", "/usr/local/cuda") + "/bin/cuobjdump") if c and Path(c).exists()]
    if cuobjdump:                          # the library really holds SASS for both architectures
        archs = subprocess.run([str(cuobjdump[0]), "--list-elf", str(lib)], capture_output=True, text=True)
        assert archs.returncode == 0 and "sm_80" in archs.stdout and "sm_90" in archs.stdout, archs.stdout


# --- the GPU (skipped without one) -------------------------------------------------------------------------

_cuda_reason = pygan.available_backends()["cuda"]


@pytest.mark.skipif(_cuda_reason is not None, reason=f"cuda backend unavailable: {_cuda_reason}")
@pytest.mark.parametrize("N,C,H,W,O,k,s,p", CONVS[:4])
def test_cuda_kernels_on_the_gpu_match_numpy(rng, N, C, H, W, O, k, s, p):
    import cupy
    be = pygan.set_backend("cuda")
    x, w = f32(rng, N, C, H, W), f32(rng, O, C, *k)
    y = be.conv2d_forward(cupy.asarray(x), cupy.asarray(w), s, p)
    assert_close(y.get(), conv_numpy.conv2d_reference(x.astype(np.float64), w.astype(np.float64), s, p),
                 1e-5, "conv2d forward on the GPU")
    gy = f32(rng, *y.shape)
    assert_close(be.conv2d_backward_input(cupy.asarray(gy), cupy.asarray(w), x.shape, s, p).get(),
                 conv_numpy.conv2d_backward_input_reference(gy.astype(np.float64), w.astype(np.float64),
                                                            x.shape, s, p), 1e-5, "backward-data on the GPU")
    a, b = f32(rng, 300, 77), f32(rng, 130, 77)
    assert_close(be.matmul(cupy.asarray(a), cupy.asarray(b).T).get(), a.astype(np.float64) @ b.T, 1e-5,
                 "sgemm NT on the GPU")
    v, g = be.loss_softplus(cupy.asarray(a.ravel()), -1, 1.0)
    pygan.set_backend("numpy")
    v0, g0 = losses._softplus_term(a.ravel(), -1, 1.0)
    assert abs(v - v0) <= 1e-5 * abs(v0) and np.allclose(g.get(), g0, rtol=1e-5, atol=1e-12)


def _dcgan8_steps(backend, z, real, steps=3):
    from pygan import models
    pygan.set_backend(backend)
    pygan.manual_seed(5)
    m = models.build("dcgan-8", width=8)
    loss = losses.get("nonsaturating")
    # SGD, not Adam: a bias feeding BatchNorm has ∂L/∂b = 0 exactly, and Adam would turn each
    # backend's rounding noise in it into ±lr steps in unrelated directions
    og = optim.SGD(m.G.parameters(), lr=0.05, momentum=0.5)
    od = optim.SGD(m.D.parameters(), lr=0.05, momentum=0.5)
    for _ in range(steps):
        fake = m.g_forward(z)
        od.zero_grad()
        m.d_backward(loss.d_real(m.d_forward(real))[1])
        m.d_backward(loss.d_fake(m.d_forward(fake))[1])
        od.step()
        og.zero_grad()
        m.g_backward(m.d_backward_input(loss.g_loss(m.d_forward(fake))[1]))
        og.step()
    return {**{"G." + k: v for k, v in m.G.state_dict().items()},
            **{"D." + k: v for k, v in m.D.state_dict().items()}}


def test_a_few_digits_dcgan_steps_on_cuda_emu_equal_numpy(rng):
    """Conv, transposed conv and BatchNorm through the emulated kernels: 3 training steps of the
    8×8 digits DCGAN (narrowed to width 8 to keep the emulator quick) give numpy's parameters."""
    z = f32(rng, 6, 32)
    real = np.tanh(f32(rng, 6, 1, 8, 8))
    s0 = _dcgan8_steps("numpy", z, real)
    s1 = _dcgan8_steps("cuda-emu", z, real)
    pygan.set_backend("numpy")
    for k in s0:
        if k.endswith("num_batches_tracked"):
            assert s1[k] == s0[k]
            continue
        assert_close(s1[k], s0[k], 1e-4, f"dcgan-8 {k} after 3 steps", atol=1e-6)
