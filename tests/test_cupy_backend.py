"""The ``cupy`` backend (pygan/backend/cupy_backend.py).

Without a GPU (CI): its array-module-generic matmul and convolution run with ``xp = numpy``
against pygan.backend.conv_numpy; ``unavailable_reason`` is checked against fake CuPy modules
(no driver, no device, no NVRTC); the csrc kernels turned into NVRTC sources are checked for
shape (and compiled, where libnvrtc is found); the fused-loss CUDA expressions are compiled by
g++ and compared with pygan.losses.  With CuPy and a GPU: every layer, loss and fused op on the
device against the numpy backend.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import pygan
import pygan.backend as backend_mod
from pygan import gradcheck, losses, nn, optim
from pygan.backend import conv_numpy, cupy_backend as cb

STEMS = ("gemm", "conv", "losses", "bias_act", "batchnorm", "adam")
_GPU_REASON = cb.CupyBackend.unavailable_reason()
needs_gpu = pytest.mark.skipif(_GPU_REASON is not None, reason=f"cupy backend unavailable: {_GPU_REASON}")
needs_csrc = pytest.mark.skipif(cb.csrc_dir() is None, reason="pygan's csrc/ is not beside the package")

CONV_CASES = [  # (N, C, H, W), (O, kh, kw), stride, padding
    ((2, 3, 7, 6), (4, 3, 3), (2, 2), (1, 1)),
    ((1, 1, 5, 5), (2, 1, 1), (1, 1), (0, 0)),
    ((2, 2, 8, 9), (3, 4, 4), (2, 2), (1, 1)),        # DCGAN's k4 s2 p1
    ((3, 2, 7, 7), (2, 2, 3), (3, 2), (0, 1)),        # stride > kernel along H
    ((2, 5, 4, 6), (3, 3, 2), (1, 2), (2, 0)),
]


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max(initial=0) / max(np.abs(b).max(initial=0), 1e-300))


# =============================================================================================
# the xp-generic kernels, on the CPU
# =============================================================================================

@pytest.mark.parametrize("xs,ws,stride,padding", CONV_CASES)
def test_xp_conv_kernels_match_the_numpy_reference(rng, xs, ws, stride, padding):
    be = cb.XpBackend(np)
    O, kh, kw = ws
    x = rng.standard_normal(xs)
    w = rng.standard_normal((O, xs[1], kh, kw))
    y = be.conv2d_forward(x, w, stride, padding)
    assert _rel(y, conv_numpy.conv2d_reference(x, w, stride, padding)) < 1e-13
    gy = rng.standard_normal(y.shape)
    gx = be.conv2d_backward_input(gy, w, x.shape, stride, padding)
    assert gx.shape == x.shape and gx.flags.c_contiguous
    assert _rel(gx, conv_numpy.conv2d_backward_input_reference(gy, w, x.shape, stride, padding)) < 1e-13
    gw = be.conv2d_backward_weight(x, gy, w.shape, stride, padding)
    assert _rel(gw, conv_numpy.conv2d_backward_weight_reference(x, gy, w.shape, stride, padding)) < 1e-13


def test_xp_conv_kernels_keep_float32(rng):
    be = cb.XpBackend(np)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    y = be.conv2d_forward(x, w, (2, 2), (1, 1))
    assert y.dtype == np.float32
    assert be.conv2d_backward_input(y, w, x.shape, (2, 2), (1, 1)).dtype == np.float32
    assert be.conv2d_backward_weight(x, y, w.shape, (2, 2), (1, 1)).dtype == np.float32
    np.testing.assert_allclose(y, conv_numpy.conv2d_forward(x, w, (2, 2), (1, 1)), rtol=1e-5, atol=1e-5)


def test_xp_conv_kernels_reject_bad_shapes(rng):
    be = cb.XpBackend(np)
    with pytest.raises(ValueError, match="3 channels but the weight"):
        be.conv2d_forward(np.zeros((1, 3, 5, 5)), np.zeros((2, 4, 3, 3)), 1, 0)
    with pytest.raises(ValueError, match="gy has shape"):
        be.conv2d_backward_input(np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 3, 3)), (1, 3, 5, 5), 1, 0)


@pytest.fixture
def xp_numpy_backend():
    prev = backend_mod._current
    backend_mod._current = cb.XpBackend(np)
    yield backend_mod._current
    backend_mod._current = prev


def test_layers_on_the_xp_kernels_match_finite_differences(rng, xp_numpy_backend):
    for m, shape in ((nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 2, 5, 6)),
                     (nn.ConvTranspose2d(2, 3, 4, stride=2, padding=1, output_padding=1), (2, 2, 3, 3)),
                     (nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)), (3, 4))):
        gradcheck.check_module(m, rng.standard_normal(shape)).raise_if_failed()


# =============================================================================================
# availability
# =============================================================================================

def _fake_cupy(monkeypatch, driver=12040, devices=1, nvrtc=True, import_error=None):
    cupy = types.ModuleType("cupy")

    class CUDARuntimeError(RuntimeError):
        pass

    def get_count():
        if isinstance(devices, Exception):
            raise devices
        return devices

    def nvrtc_version():
        if not nvrtc:
            raise OSError("libnvrtc.so.12: cannot open shared object file")
        return (12, 4)

    runtime = types.SimpleNamespace(driverGetVersion=lambda: driver, getDeviceCount=get_count,
                                    CUDARuntimeError=CUDARuntimeError)
    cupy.cuda = types.SimpleNamespace(runtime=runtime, nvrtc=types.SimpleNamespace(getVersion=nvrtc_version))
    if import_error:
        monkeypatch.setitem(sys.modules, "cupy", None)     # import cupy → ImportError
    else:
        monkeypatch.setitem(sys.modules, "cupy", cupy)
    return cupy


@pytest.mark.parametrize("kwargs,expected", [
    ({"import_error": True}, "CuPy is not installed"),
    ({"driver": 0}, "no CUDA driver is installed"),
    ({"devices": 0}, "no CUDA device is visible (cudaGetDeviceCount = 0"),
    ({"devices": RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")},
     "no CUDA device is visible (RuntimeError: cudaErrorNoDevice"),
    ({"nvrtc": False}, "NVRTC cannot be loaded"),
])
def test_unavailable_reason_says_precisely_what_is_missing(monkeypatch, kwargs, expected):
    _fake_cupy(monkeypatch, **kwargs)
    why = cb.CupyBackend.unavailable_reason()
    assert why is not None and expected in why, why
    assert backend_mod.available_backends()["cupy"] == why
    with pytest.raises(RuntimeError, match="backend 'cupy' is not available: " + expected.split("(")[0]):
        pygan.set_backend("cupy")
    assert pygan.get_backend().name == "numpy"


def test_unavailable_reason_lists_every_missing_piece(monkeypatch):
    _fake_cupy(monkeypatch, driver=0, nvrtc=False)
    why = cb.CupyBackend.unavailable_reason()
    assert "no CUDA driver" in why and "NVRTC" in why


def test_a_usable_fake_cupy_is_reported_available(monkeypatch):
    _fake_cupy(monkeypatch)
    assert cb.CupyBackend.unavailable_reason() is None


@pytest.mark.skipif(_GPU_REASON is None, reason="CuPy and a GPU are usable here")
def test_set_backend_cupy_without_a_gpu_raises_with_the_reason():
    assert pygan.available_backends()["cupy"] == _GPU_REASON
    with pytest.raises(RuntimeError, match="backend 'cupy' is not available"):
        pygan.set_backend("cupy")
    assert pygan.get_backend().name == "numpy"


# =============================================================================================
# pygan's kernels for NVRTC
# =============================================================================================

@needs_csrc
@pytest.mark.parametrize("stem", STEMS)
def test_nvrtc_source_is_device_code_only(stem):
    src = cb.nvrtc_source(stem)
    assert "<<<" not in src and "#include" not in src and "cudaGetLastError" not in src
    assert f"namespace k_{stem}" in src
    names = cb.name_expressions(stem)
    assert names and all(n.startswith(f"pygan::k_{stem}::") for n in names)
    for n in names:
        assert n.split("::")[-1].split("<")[0] in src


@needs_csrc
def test_raw_kernel_arguments_match_the_kernel_signatures():
    for kernel, (stem, kinds) in cb.RAW_KERNEL_ARGS.items():
        sig = cb.kernel_signatures(stem)
        assert kernel in sig, f"{kernel} not in csrc/kernels/{stem}.cu"
        assert sig[kernel] == kinds, f"{kernel}: launched with {kinds}, declared {sig[kernel]}"


def _find_nvrtc():
    cands = [os.environ.get("PYGAN_NVRTC_LIB"), ctypes.util.find_library("nvrtc")]
    for p in sys.path:
        cands += sorted(glob.glob(os.path.join(p, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*")))
        cands += sorted(glob.glob(os.path.join(p, "nvidia", "cu*", "lib", "libnvrtc.so*")))
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home:
            cands += sorted(glob.glob(os.path.join(home, "lib64", "libnvrtc.so*")))
    for c in filter(None, cands):
        if "builtins" in c or ".alt." in c:
            continue
        try:
            return ctypes.CDLL(c)
        except OSError:
            continue
    return None


@needs_csrc
@pytest.mark.parametrize("arch", ["compute_80", "compute_90"])
def test_nvrtc_compiles_every_kernel_file(arch):
    lib = _find_nvrtc()
    if lib is None:
        pytest.skip("libnvrtc not found (PYGAN_NVRTC_LIB, CUDA_HOME, or pip install nvidia-cuda-nvrtc-cu12)")
    for stem in STEMS:
        prog = ctypes.c_void_p()
        assert lib.nvrtcCreateProgram(ctypes.byref(prog), cb.nvrtc_source(stem).encode(), f"{stem}.cu".encode(),
                                      0, None, None) == 0
        names = cb.name_expressions(stem)
        for n in names:
            lib.nvrtcAddNameExpression(prog, n.encode())
        opts = [f"--gpu-architecture={arch}", *cb.NVRTC_OPTIONS]
        status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts]))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        assert status == 0, f"NVRTC failed on {stem}.cu for {arch}:\n{log.value.decode()}"
        for n in names:
            lowered = ctypes.c_char_p()
            assert lib.nvrtcGetLoweredName(prog, n.encode(), ctypes.byref(lowered)) == 0, n
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def test_csrc_dir_honours_pygan_csrc(monkeypatch, tmp_path):
    monkeypatch.setenv("PYGAN_CSRC", str(tmp_path))
    found = cb.csrc_dir()
    assert found is None or found != tmp_path            # an empty folder is not accepted
    (tmp_path / "kernels").mkdir()
    (tmp_path / "include" / "pygan").mkdir(parents=True)
    (tmp_path / "include" / "pygan" / "kernel.h").write_text("")
    assert cb.csrc_dir() == tmp_path


# =============================================================================================
# the fused-loss CUDA expressions, compiled by g++ and compared with pygan.losses
# =============================================================================================

_HARNESS = r"""
#include <cmath>
using namespace std;
#define KERNEL(KIND, MAP, OP)                                                                    \
template <typename T> static double red_##KIND(const T* xs, long n, T s) {                      \
    double a = 0; for (long i = 0; i < n; ++i) { const T x = xs[i]; double b = (double)(MAP); a = a + b; } \
    return a; }                                                                                  \
template <typename T> static void grad_##KIND(const T* xs, T* gs, long n, T scale, T s) {       \
    for (long i = 0; i < n; ++i) { const T x = xs[i]; T g; OP gs[i] = g; } }                    \
extern "C" double red_##KIND##_f32(const float* x, long n, float s) { return red_##KIND<float>(x, n, s); } \
extern "C" double red_##KIND##_f64(const double* x, long n, double s) { return red_##KIND<double>(x, n, s); } \
extern "C" void grad_##KIND##_f32(const float* x, float* g, long n, float c, float s) { grad_##KIND<float>(x, g, n, c, s); } \
extern "C" void grad_##KIND##_f64(const double* x, double* g, long n, double c, double s) { grad_##KIND<double>(x, g, n, c, s); }
"""


@pytest.fixture(scope="module")
def loss_kernels_on_cpu(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    src = _HARNESS + "".join(f"KERNEL({k}, {v['map_expr']}, {v['grad_op']})\n" for k, v in cb.LOSS_KERNELS.items())
    d = tmp_path_factory.mktemp("losskernels")
    (d / "k.cpp").write_text(src)
    r = subprocess.run([cxx, "-O1", "-shared", "-fPIC", "-o", str(d / "k.so"), str(d / "k.cpp")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return ctypes.CDLL(str(d / "k.so"))


class _CpuLossBackend:
    """CupyBackend's loss methods with the kernels replaced by the g++ build of their sources."""

    def __init__(self, lib):
        self.lib = lib

    def _kernel(self, kind, dtype):
        suffix, ct = ("f32", ctypes.c_float) if dtype == np.float32 else ("f64", ctypes.c_double)
        red, grad = getattr(self.lib, f"red_{kind}_{suffix}"), getattr(self.lib, f"grad_{kind}_{suffix}")
        red.restype = ctypes.c_double

        def red_fn(x, s):
            x = np.ascontiguousarray(x)
            return red(x.ctypes.data_as(ctypes.c_void_p), ctypes.c_long(x.size), ct(s))

        def grad_fn(x, scale, s):
            x = np.ascontiguousarray(x)
            g = np.empty_like(x)
            grad(x.ctypes.data_as(ctypes.c_void_p), g.ctypes.data_as(ctypes.c_void_p), ctypes.c_long(x.size),
                 ct(scale), ct(s))
            return g
        return red_fn, grad_fn


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_fused_loss_expressions_match_pygan_losses(loss_kernels_on_cpu, rng, dtype, rtol):
    cpu = _CpuLossBackend(loss_kernels_on_cpu)

    class Backend(cb.CupyBackend):
        def __init__(self):                       # no CuPy here: kernels from the g++ build
            self.xp = np

        def _loss(self, kind):
            return self._k[kind]
    be = Backend()
    x = (rng.standard_normal(257) * 4).astype(dtype)
    x[:6] = [1e4, -1e4, 0.0, 1.0, -1.0, 3e38 if dtype == np.float32 else 1e300]
    for sign in (1, -1):
        for weight in (1.0, -1.0):
            cases = [("softplus", be.loss_softplus, losses._softplus_term, (x, sign, weight)),
                     ("hinge", be.loss_hinge, losses._hinge_term, (x, sign, weight)),
                     ("square", be.loss_square, losses._square_term, (x[6:], 0.5 * sign, weight))]
            for kind, mine_fn, ref_fn, args in cases:
                be._k = {kind: cpu._kernel(kind, dtype)}
                v, g = mine_fn(*args)
                rv, rg = ref_fn(*args)
                assert g.dtype == dtype and g.shape == args[0].shape
                assert v == pytest.approx(rv, rel=rtol), (kind, sign, weight)
                np.testing.assert_allclose(g, rg, rtol=rtol, atol=0, err_msg=f"{kind} sign {sign} weight {weight}")


def test_fused_loss_expressions_propagate_nan(loss_kernels_on_cpu):
    cpu = _CpuLossBackend(loss_kernels_on_cpu)
    x = np.array([0.0, np.nan, 2.0])
    for kind in ("softplus", "hinge", "square"):
        red, _ = cpu._kernel(kind, np.float64)
        assert np.isnan(red(x, 1.0)), f"{kind}: a NaN logit must give a NaN value (NonFiniteLoss)"


# =============================================================================================
# on the GPU (skipped without CuPy and a device)
# =============================================================================================

@pytest.fixture
def cupy_backend():
    be = pygan.set_backend("cupy")
    yield be
    pygan.set_backend("numpy")


def _to(xp, a):
    return xp.asarray(a)


@needs_gpu
@pytest.mark.parametrize("xs,ws,stride,padding", CONV_CASES)
def test_cupy_conv_kernels_match_numpy(cupy_backend, rng, xs, ws, stride, padding):
    cp = cupy_backend.xp
    O, kh, kw = ws
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal((O, xs[1], kh, kw)).astype(np.float32)
    y = cupy_backend.conv2d_forward(cp.asarray(x), cp.asarray(w), stride, padding)
    assert isinstance(y, cp.ndarray) and y.dtype == np.float32
    assert _rel(y.get(), conv_numpy.conv2d_forward(x, w, stride, padding)) < 1e-5
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = cupy_backend.conv2d_backward_input(cp.asarray(gy), cp.asarray(w), x.shape, stride, padding)
    assert _rel(gx.get(), conv_numpy.conv2d_backward_input(gy, w, x.shape, stride, padding)) < 1e-5
    gw = cupy_backend.conv2d_backward_weight(cp.asarray(x), cp.asarray(gy), w.shape, stride, padding)
    assert _rel(gw.get(), conv_numpy.conv2d_backward_weight(x, gy, w.shape, stride, padding)) < 1e-5


@needs_gpu
@pytest.mark.parametrize("name", losses.names())
def test_cupy_fused_losses_match_numpy(cupy_backend, rng, name):
    cp = cupy_backend.xp
    r = (rng.standard_normal((64, 1)) * 3).astype(np.float32)
    f = (rng.standard_normal((64, 1)) * 3).astype(np.float32)
    r[0], f[0] = 1e4, -1e4
    mine = losses.get(name).d_loss(cp.asarray(r), cp.asarray(f))
    gmine = losses.get(name).g_loss(cp.asarray(f))
    pygan.set_backend("numpy")
    ref = losses.get(name).d_loss(r, f)
    gref = losses.get(name).g_loss(f)
    assert mine[0] == pytest.approx(ref[0], rel=1e-5) and gmine[0] == pytest.approx(gref[0], rel=1e-5)
    for a, b in zip(mine[1:] + gmine[1:], ref[1:] + gref[1:]):
        assert isinstance(a, cp.ndarray) and a.dtype == np.float32
        np.testing.assert_allclose(a.get(), b, rtol=1e-5, atol=1e-7)


@needs_gpu
def test_cupy_layers_and_a_training_step_match_numpy(rng):
    def run(backend):
        be = pygan.set_backend(backend)
        pygan.manual_seed(3)
        G = nn.Sequential(nn.Linear(8, 2 * 4 * 4), nn.Unflatten(1, (2, 4, 4)),
                          nn.ConvTranspose2d(2, 3, 4, stride=2, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.Conv2d(3, 1, 3, padding=1), nn.Tanh())
        D = nn.Sequential(nn.Conv2d(1, 4, 4, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Flatten(),
                          nn.LayerNorm(64), nn.Linear(64, 1))
        opt = optim.Adam(G.parameters() + D.parameters(), lr=1e-3, betas=(0.5, 0.999))
        z = be.xp.asarray(np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32))
        loss = losses.get("nonsaturating")
        x = G(z)
        v, g = loss.g_loss(D(x))
        G.backward(D.backward(g))
        opt.step()
        out = [v] + [np.asarray(p.data.get() if hasattr(p.data, "get") else p.data) for p in G.parameters() + D.parameters()]
        pygan.set_backend("numpy")
        return out
    gpu, cpu = run("cupy"), run("numpy")
    assert gpu[0] == pytest.approx(cpu[0], rel=1e-4)
    for a, b in zip(gpu[1:], cpu[1:]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@needs_gpu
@needs_csrc
def test_cupy_raw_module_fused_ops_match_numpy(cupy_backend, rng):
    cp = cupy_backend.xp
    x = rng.standard_normal((3, 5, 7)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    y = cupy_backend.bias_act_forward(cp.asarray(x), cp.asarray(b), "leaky_relu", 0.2).get()
    v = x + b[None, :, None]
    np.testing.assert_allclose(y, np.where(v > 0, v, 0.2 * v), rtol=1e-6, atol=1e-6)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    gx, gb = cupy_backend.bias_act_backward(cp.asarray(gy), cp.asarray(y), "leaky_relu", 0.2)
    ref = gy * np.where(y > 0, 1.0, 0.2)
    np.testing.assert_allclose(gx.get(), ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gb.get(), ref.sum(axis=(0, 2)), rtol=1e-5, atol=1e-5)
    mean, var = cupy_backend.bn_stats(cp.asarray(x))
    np.testing.assert_allclose(mean.get(), x.mean(axis=(0, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var.get(), x.var(axis=(0, 2)), rtol=1e-5, atol=1e-6)
    invstd = (1 / np.sqrt(x.var(axis=(0, 2)) + 1e-5)).astype(np.float32)
    a, bb = cupy_backend.bn_backward_reduce(cp.asarray(gy), cp.asarray(x), mean, cp.asarray(invstd))
    xhat = (x - x.mean(axis=(0, 2))[None, :, None]) * invstd[None, :, None]
    np.testing.assert_allclose(a.get(), gy.sum(axis=(0, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bb.get(), (gy * xhat).sum(axis=(0, 2)), rtol=1e-4, atol=1e-4)
    # Adam: the fused kernel against optim.Adam on the same flat arrays
    n = 1000
    p0, g0 = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    P, G, M, V = (cp.asarray(a) for a in (p0, g0, np.zeros(n, np.float32), np.zeros(n, np.float32)))
    for step in (1, 2):
        cupy_backend.adam_update(P, G, M, V, 1e-3, 0.5, 0.999, 1e-8, 0.0, step)
    pygan.set_backend("numpy")
    prm = nn.Parameter(p0.copy())
    opt = optim.Adam([prm], lr=1e-3, betas=(0.5, 0.999))
    for _ in range(2):
        prm.grad[...] = g0
        opt.step()
    np.testing.assert_allclose(P.get(), prm.data, rtol=1e-6, atol=1e-7)


@needs_gpu
def test_every_xp_function_pygan_uses_exists_in_cupy():
    import cupy
    sys.path.insert(0, os.path.dirname(__file__))
    from strict_xp import strict_backend, to_device
    with strict_backend() as rec:
        pygan.manual_seed(0)
        m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.LeakyReLU(0.2), nn.Flatten(),
                          nn.Linear(2 * 4 * 4, 3), nn.LayerNorm(3), nn.Dropout(0.2), nn.Tanh(), nn.Linear(3, 1))
        y = m(to_device(np.ones((2, 1, 6, 6))))
        for name in losses.names():
            losses.get(name).d_loss(y, y)
        m.backward(y)
        for make in (lambda ps: optim.Adam(ps, amsgrad=True), lambda ps: optim.RMSProp(ps, centered=True),
                     lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9)):
            make(m.parameters()).step()
    missing = []
    for full in sorted(rec.used_names):
        obj = cupy
        for part in full.split(".")[1:]:
            obj = getattr(obj, part, None)
            if obj is None:
                missing.append(full)
                break
    assert not missing, f"pygan uses xp functions CuPy does not have: {missing}"
