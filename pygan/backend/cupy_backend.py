"""The ``cupy`` backend: the same layers on the GPU through CuPy.  docs/backends.md#the-cupy-backend.

Arrays are CuPy arrays (device memory); layers reach them through ``backend.xp`` (= ``cupy``)
and the hot kernels through the seam of :class:`pygan.backend.numpy_backend.NumpyBackend`:

    matmul(a, b, out=None)                                   cupy.matmul → cuBLAS (batched when 3-D)
    conv2d_forward(x, w, stride, padding)                    im2col (one strided copy) + batched GEMM
    conv2d_backward_input(gy, w, x_shape, stride, padding)   batched GEMM + col2im (kh·kw strided adds)
    conv2d_backward_weight(x, gy, w_shape, stride, padding)  im2col (K, N·P) + one GEMM
    loss_softplus / loss_linear / loss_hinge / loss_square   fused GAN loss terms (pygan.losses looks
                                                             them up by name): one ReductionKernel for
                                                             the value, one ElementwiseKernel for the
                                                             gradient, float32 and float64

and, compiled at run time by NVRTC from pygan's own ``csrc/kernels`` through ``cupy.RawModule``
(float32 only, same API as :class:`pygan.backend.cuda.KernelBackend`):

    bias_act_forward, bias_act_backward, bn_stats, bn_backward_reduce, adam_update

The convolution and matmul code is written once against an array module ``xp``
(:class:`XpBackend`); with ``xp = numpy`` it runs on the CPU, which is how it is tested without a
GPU (tests/test_cupy_backend.py compares it with pygan.backend.conv_numpy, and
tests/test_array_module_discipline.py runs it under a strict array module that rejects NumPy
arrays).  Kernel sources for NVRTC: :func:`nvrtc_source` turns a ``csrc/kernels/*.cu`` file into
device-only code (the host launchers are dropped, the header's CUDA spelling is inlined).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

__all__ = ["XpBackend", "CupyBackend", "csrc_dir", "nvrtc_source", "kernel_signatures", "LOSS_KERNELS",
           "RAW_KERNEL_ARGS"]


from .kernel_shapes import check_bias_act, check_bias_act_backward, conv_dims, ncs  # noqa: E402


# =============================================================================================
# The array-module-generic seam: matmul and convolution written against ``xp`` only
# =============================================================================================

class XpBackend:
    """matmul and the three convolution kernels on any NumPy-compatible array module ``xp``.

    Nothing here names numpy on array data: every array comes from ``self.xp``, so the same code
    runs with ``xp = cupy`` (GPU), ``xp = numpy`` (CPU, tests) or a strict test module.  Dtypes
    are kept (float32 and float64).  Shapes as in PyTorch: x (N, C, H, W), w (O, C, kh, kw),
    y (N, O, OH, OW); K = C·kh·kw, P = OH·OW.  docs/gradients.md#conv2d.
    """

    name = "xp"
    xp = np

    def __init__(self, xp=None):
        if xp is not None:
            self.xp = xp

    @staticmethod
    def split_rows(fn, n, size):
        """fn(0, n) in one call: the device parallelises within each array operation."""
        fn(0, n)

    # --- dense -------------------------------------------------------------------------
    def matmul(self, a, b, out=None):
        """a @ b (cuBLAS on CuPy; transposed views are passed to the GEMM without copies)."""
        return self.xp.matmul(a, b, out=out)

    # --- convolution -------------------------------------------------------------------
    _dims = staticmethod(conv_dims)

    def _im2col(self, x, kh, kw, sh, sw, ph, pw, OH, OW, batch_first):
        """Patches of x, one contiguous copy: (N, C, kh, kw, OH, OW) if batch_first, else
        (C, kh, kw, N, OH, OW) — rows k = (c, i, j) in w's own order, so w needs no reordering."""
        xp = self.xp
        N, C, H, W = x.shape
        if ph or pw:
            xpad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
            xpad[:, :, ph:ph + H, pw:pw + W] = x
        else:
            xpad = xp.ascontiguousarray(x)
        sN, sC, sH, sW = xpad.strides
        if batch_first:
            shape, strides = (N, C, kh, kw, OH, OW), (sN, sC, sH, sW, sh * sH, sw * sW)
        else:
            shape, strides = (C, kh, kw, N, OH, OW), (sC, sH, sW, sN, sh * sH, sw * sW)
        return xp.ascontiguousarray(xp.lib.stride_tricks.as_strided(xpad, shape=shape, strides=strides))

    def conv2d_forward(self, x, w, stride, padding, patches=None):
        """y[n] (O, P) = W (O, K) · cols[n] (K, P), one batched GEMM; y (N, O, OH, OW) NCHW. ``patches`` is
        ignored: this backend has no ``conv2d_patches`` (its im2col stays inside the kernel)."""
        N, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW = self._dims(x.shape, w.shape, stride, padding)
        cols = self._im2col(x, kh, kw, sh, sw, ph, pw, OH, OW, True).reshape(N, C * kh * kw, OH * OW)
        y = self.xp.matmul(w.reshape(O, C * kh * kw), cols)
        return y.reshape(N, O, OH, OW)

    def conv2d_backward_weight(self, x, gy, w_shape, stride, padding, patches=None):
        """∂L/∂w (O, K) = gy (O, N·P) · cols (K, N·P)ᵀ, one GEMM over the whole batch."""
        N, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW = self._dims(x.shape, w_shape, stride, padding)
        if tuple(gy.shape) != (N, O, OH, OW):
            raise ValueError(f"conv2d_backward_weight: gy has shape {tuple(gy.shape)}, expected {(N, O, OH, OW)}")
        xp = self.xp
        K, NP = C * kh * kw, N * OH * OW
        cols = self._im2col(x, kh, kw, sh, sw, ph, pw, OH, OW, False).reshape(K, NP)
        gyT = xp.ascontiguousarray(gy.transpose(1, 0, 2, 3)).reshape(O, NP)
        return xp.matmul(gyT, cols.T).reshape(O, C, kh, kw)

    def conv2d_backward_input(self, gy, w, x_shape, stride, padding):
        """D[n] (K, P) = Wᵀ (K, O) · gy[n] (O, P) (batched GEMM), then col2im: offset (i, j) of D
        is added into the padded gradient at rows sh·oh + i, columns sw·ow + j (kh·kw strided
        adds, no scatter), and the padding is cropped."""
        N, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW = self._dims(x_shape, w.shape, stride, padding)
        if tuple(gy.shape) != (N, O, OH, OW):
            raise ValueError(f"conv2d_backward_input: gy has shape {tuple(gy.shape)}, expected {(N, O, OH, OW)}")
        xp = self.xp
        K = C * kh * kw
        D = xp.matmul(w.reshape(O, K).T, gy.reshape(N, O, OH * OW)).reshape(N, C, kh, kw, OH, OW)
        gxp = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=D.dtype)
        hs, ws = sh * (OH - 1) + 1, sw * (OW - 1) + 1
        for i in range(kh):
            for j in range(kw):
                gxp[:, :, i:i + hs:sh, j:j + ws:sw] += D[:, :, i, j]
        if ph or pw:
            return xp.ascontiguousarray(gxp[:, :, ph:ph + H, pw:pw + W])
        return gxp

    def synchronize(self):
        """Wait for queued device work (a no-op on the CPU)."""

    def __repr__(self):
        return f"{type(self).__name__}(xp={getattr(self.xp, '__name__', self.xp)!r})"


# =============================================================================================
# Fused GAN losses as CuPy ElementwiseKernel / ReductionKernel sources
# =============================================================================================
# For each term: the value's map expression (summed by a ReductionKernel in double) and the
# gradient's elementwise operation, over T = float or double.  Semantics = pygan.losses':
#   softplus  t = sp(s·x) = max(s·x, 0) + log1p(e), e = exp(−|x|);  g = scale·σ(s·x), scale = w·s/n
#   hinge     t = relu(1 + s·x);                                     g = scale·[1 + s·x > 0]
#   square    t = (x − a)²;                                          g = scale·(x − a), scale = w/n
# The max is written `v < 0 ? 0 : v` so that a NaN logit gives a NaN value (NonFiniteLoss),
# like numpy.maximum, not 0 like fmax.
LOSS_KERNELS = {
    "softplus": {
        "reduce_params": "T x, T s",
        "map_expr": "log1p(exp(-fabs(x))) + (s * x < (T)0 ? (T)0 : s * x)",
        "grad_params": "T x, T scale, T s",
        "grad_op": "T e = exp(-fabs(x)); g = scale / (e + (T)1); if (s * x < (T)0) g *= e;",
    },
    "hinge": {
        "reduce_params": "T x, T s",
        "map_expr": "((T)1 + s * x < (T)0 ? (T)0 : (T)1 + s * x)",
        "grad_params": "T x, T scale, T s",
        "grad_op": "g = ((T)1 + s * x > (T)0) ? scale : (T)0;",
    },
    "square": {
        "reduce_params": "T x, T s",            # s is the target a here
        "map_expr": "(x - s) * (x - s)",
        "grad_params": "T x, T scale, T s",
        "grad_op": "g = (x - s) * scale;",
    },
}


# =============================================================================================
# pygan's CUDA kernels (csrc/kernels) for NVRTC
# =============================================================================================

def csrc_dir() -> Path | None:
    """Where pygan's CUDA sources are: ``$PYGAN_CSRC``, else ``pygan/_csrc`` (shipped by
    ``pip install .``), else ``csrc/`` beside the ``pygan`` package (a checkout or an editable
    install).  None when not found."""
    env = os.environ.get("PYGAN_CSRC")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent                      # .../pygan/backend
    candidates += [here.parent / "_csrc", here.parent.parent / "csrc"]
    for c in candidates:
        if (c / "kernels").is_dir() and (c / "include" / "pygan" / "kernel.h").is_file():
            return c
    return None


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _matching_brace(text: str, open_at: int) -> int:
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    raise ValueError("unbalanced braces")


def _namespace_body(text: str, opener: str, what: str) -> tuple[int, int]:
    """(start, end) of the body of the first ``opener`` (e.g. 'namespace pygan {') in text."""
    m = re.search(opener, text)
    if not m:
        raise ValueError(f"{what}: no '{opener}' found")
    brace = text.index("{", m.start())
    return brace + 1, _matching_brace(text, brace)


def nvrtc_source(stem: str, root: Path | None = None) -> str:
    """Device-only CUDA C++ of ``csrc/kernels/<stem>.cu`` that NVRTC compiles (with the
    ``-default-device`` option): the header's CUDA branch and the enums of launchers.h inlined,
    the host launchers (everything after the file's anonymous namespace) dropped, and that
    namespace named ``pygan::k_<stem>`` so kernels have stable names for ``RawModule``
    (``pygan::k_gemm::sgemm_tiled<false, true>``).  ``PYGAN_LAUNCH`` expands to nothing."""
    root = root or csrc_dir()
    if root is None:
        raise FileNotFoundError("pygan's CUDA sources (csrc/) were not found; set PYGAN_CSRC to the csrc folder")
    header = _strip_comments((root / "include/pygan/kernel.h").read_text())
    launchers = _strip_comments((root / "include/pygan/launchers.h").read_text())
    src_path = root / "kernels" / f"{stem}.cu"
    src = _strip_comments(src_path.read_text())
    a, b = _namespace_body(header, r"namespace\s+pygan\s*\{", "kernel.h")
    helpers = header[a:b].replace("#include \"launchers.h\"", "")
    enums = "\n".join(re.findall(r"enum\s+\w+\s*\{[^}]*\};", launchers))
    a, b = _namespace_body(src, r"namespace\s+pygan\s*\{", src_path.name)
    body = src[a:b]
    m = re.search(r"namespace\s*\{", body)
    if not m:
        raise ValueError(f"{src_path.name}: no anonymous namespace holding the kernels")
    close = _matching_brace(body, body.index("{", m.start()))
    kernels = body[m.end():close]
    return "\n".join([
        f"// {src_path.name} for NVRTC, generated by pygan.backend.cupy_backend.nvrtc_source",
        "#define PYGAN_EXTERN_SHARED(T, name) extern __shared__ __align__(16) unsigned char "
        "pygan_dynamic_smem_[]; T* name = reinterpret_cast<T*>(pygan_dynamic_smem_)",
        "#define PYGAN_LAUNCH(...) ((void)0)",
        "#define PYGAN_LAST_ERROR() 0",
        "namespace pygan {", enums, helpers, "}  // namespace pygan",
        f"namespace pygan {{ namespace k_{stem} {{", kernels, f"}} }}  // namespace pygan::k_{stem}", "",
    ])


NVRTC_OPTIONS = ("-std=c++17", "-default-device")

# template kernels: the instantiations RawModule must emit (name_expressions)
_TEMPLATE_INSTANCES = {"sgemm_tiled": ("<false, false>", "<false, true>", "<true, false>", "<true, true>")}

_GLOBAL_RE = re.compile(r"(template\s*<[^>]*>\s*)?__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(")


def kernel_signatures(stem: str, root: Path | None = None) -> dict:
    """{kernel name: tuple of parameter kinds} of the __global__ functions of a kernel file;
    kinds are 'ptr', 'int32', 'int64', 'float32', 'bool' (how RawKernel must be called)."""
    text = _strip_comments(((root or csrc_dir()) / "kernels" / f"{stem}.cu").read_text())
    out = {}
    for m in _GLOBAL_RE.finditer(text):
        start = m.end()
        depth, k = 1, start
        while depth:
            depth += {"(": 1, ")": -1}.get(text[k], 0)
            k += 1
        kinds = []
        for p in text[start:k - 1].split(","):
            t = re.sub(r"\b(const|__restrict__)\b", " ", p).strip()
            t = " ".join(t.split()[:-1]) if "*" not in t else t
            if "*" in t:
                kinds.append("ptr")
            else:
                kinds.append({"int": "int32", "long long": "int64", "float": "float32", "bool": "bool",
                              "unsigned": "uint32"}.get(t, t))
        out[m.group(2)] = tuple(kinds)
    return out


def name_expressions(stem: str, root: Path | None = None) -> list[str]:
    """The RawModule name expressions of a kernel file's kernels (templates instantiated)."""
    names = []
    for k in kernel_signatures(stem, root):
        for inst in _TEMPLATE_INSTANCES.get(k, ("",)):
            names.append(f"pygan::k_{stem}::{k}{inst}")
    return names


# How CupyBackend launches the csrc kernels it uses: (file stem, kernel, argument kinds).  The
# kinds must equal the kernel's parameters (tests check them against the source on the CPU).
RAW_KERNEL_ARGS = {
    "adam_kernel": ("adam", ("ptr", "ptr", "ptr", "ptr", "ptr", "int64") + ("float32",) * 8),
    "bias_act_fwd": ("bias_act", ("ptr", "ptr", "ptr", "int64", "int32", "int64", "int32", "float32")),
    "act_bwd": ("bias_act", ("ptr", "ptr", "ptr", "int64", "int32", "float32")),
    "channel_sum": ("bias_act", ("ptr", "ptr", "int64", "int32", "int64")),
    "bn_stats_kernel": ("batchnorm", ("ptr", "ptr", "ptr", "int64", "int32", "int64")),
    "bn_backward_reduce_kernel": ("batchnorm", ("ptr",) * 6 + ("int64", "int32", "int64")),
}

_ACTS = {"identity": 0, "none": 0, None: 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sigmoid": 4}
_THREADS = 256


def _grid(total, cap):
    return max(1, min(-(-int(total) // _THREADS), cap))


# =============================================================================================
# The CuPy backend
# =============================================================================================

class CupyBackend(XpBackend):
    """pygan on the GPU through CuPy: cupy arrays, cuBLAS GEMMs, CuPy-compiled fused losses and
    pygan's own csrc kernels loaded through NVRTC (``cupy.RawModule``)."""

    name = "cupy"
    xp = None                       # set to the cupy module by __init__

    def __init__(self):
        reason = self.unavailable_reason()
        if reason:
            raise RuntimeError(f"backend 'cupy' is not available: {reason}")
        import cupy
        self.xp = cupy
        self._loss_kernels = {}
        self._modules = {}

    # --- availability ------------------------------------------------------------------
    @staticmethod
    def unavailable_reason():
        """None if CuPy can run here, else every reason it cannot ('; '-joined): CuPy not
        installed (or failing to import), no CUDA driver, no CUDA device, NVRTC missing."""
        try:
            import cupy
        except ImportError as e:
            return (f"CuPy is not installed ({e}); install the wheel matching the CUDA driver, "
                    f"e.g. pip install cupy-cuda12x (or cupy-cuda13x)")
        except Exception as e:  # noqa: BLE001 — a broken CUDA install can raise anything at import
            return f"CuPy failed to import ({type(e).__name__}: {e})"
        reasons = []
        runtime = cupy.cuda.runtime
        try:
            driver = runtime.driverGetVersion()
        except Exception as e:  # noqa: BLE001
            driver, why = 0, f"{type(e).__name__}: {e}"
        else:
            why = "cudaDriverGetVersion reports no driver"
        if driver == 0:
            reasons.append(f"no CUDA driver is installed or it cannot be loaded ({why}); "
                           f"install the NVIDIA driver (libcuda.so)")
        else:
            try:
                n = runtime.getDeviceCount()
            except Exception as e:  # noqa: BLE001 — cudaErrorNoDevice, cudaErrorInsufficientDriver
                n, why = 0, f"{type(e).__name__}: {e}"
            else:
                why = "cudaGetDeviceCount = 0"
            if n == 0:
                reasons.append(f"no CUDA device is visible ({why}; CUDA_VISIBLE_DEVICES="
                               f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')})")
        try:
            cupy.cuda.nvrtc.getVersion()
        except Exception as e:  # noqa: BLE001
            reasons.append(f"NVRTC cannot be loaded ({type(e).__name__}: {e}); CuPy needs it to compile "
                           f"kernels: pip install nvidia-cuda-nvrtc-cu12 (or the CUDA toolkit)")
        return "; ".join(reasons) or None

    def synchronize(self):
        self.xp.cuda.get_current_stream().synchronize()

    # --- fused GAN losses (pygan.losses looks these up by name) -------------------------------
    def _loss(self, kind):
        k = self._loss_kernels.get(kind)
        if k is None:
            cp, spec = self.xp, LOSS_KERNELS[kind]
            red = cp.ReductionKernel(spec["reduce_params"], "float64 y", spec["map_expr"], "a + b", "y = a", "0",
                                     name=f"pygan_{kind}_sum", reduce_type="double")
            grad = cp.ElementwiseKernel(spec["grad_params"], "T g", spec["grad_op"], name=f"pygan_{kind}_grad")
            k = self._loss_kernels[kind] = (red, grad)
        return k

    def _fused(self, kind, x, s, scale_num, weight, half=False):
        red, grad = self._loss(kind)
        n = x.size
        dt = x.dtype.type
        total = float(red(x, dt(s)))
        g = grad(x, dt(scale_num / n), dt(s))
        return (0.5 if half else 1.0) * weight * total / n, g

    def loss_softplus(self, x, sign, weight):
        """(w·E sp(s·x), w·s·σ(s·x)/n); docs/gradients.md#minimax."""
        s = 1.0 if sign > 0 else -1.0
        return self._fused("softplus", x, s, weight * s, weight)

    def loss_hinge(self, x, sign, weight):
        """(w·E relu(1 + s·x), w·s·[1 + s·x > 0]/n); docs/gradients.md#hinge."""
        s = 1.0 if sign > 0 else -1.0
        return self._fused("hinge", x, s, weight * s, weight)

    def loss_square(self, x, target, weight):
        """(½w·E (x − t)², w·(x − t)/n); docs/gradients.md#least_squares."""
        return self._fused("square", x, target, weight, weight, half=True)

    def loss_linear(self, x, weight):
        """(w·E x, w/n); docs/gradients.md#wasserstein (one reduction, one fill)."""
        n = x.size
        return weight * float(x.sum()) / n, self.xp.full_like(x, weight / n)

    # --- pygan's csrc kernels through NVRTC ----------------------------------------------------
    def raw_module(self, stem):
        """``cupy.RawModule`` of csrc/kernels/<stem>.cu (compiled once, cached by CuPy on disk)."""
        mod = self._modules.get(stem)
        if mod is None:
            mod = self._modules[stem] = self.xp.RawModule(code=nvrtc_source(stem), options=NVRTC_OPTIONS,
                                                           name_expressions=name_expressions(stem))
        return mod

    _KIND = {"int32": np.int32, "int64": np.int64, "float32": np.float32, "bool": np.bool_, "uint32": np.uint32}

    def _launch(self, kernel, grid, args):
        stem, kinds = RAW_KERNEL_ARGS[kernel]
        packed = []
        for a, kind in zip(args, kinds, strict=True):
            if kind == "ptr":
                packed.append(np.uint64(0) if a is None else a)          # None → null pointer
            else:
                packed.append(self._KIND[kind](a))
        fn = self.raw_module(stem).get_function(f"pygan::k_{stem}::{kernel}")
        fn((int(grid),), (_THREADS,), tuple(packed))

    def _f32(self, a, what):
        cp = self.xp
        if not isinstance(a, cp.ndarray):
            raise TypeError(f"cupy backend: {what} must be a cupy.ndarray, got {type(a).__name__}")
        if a.dtype != np.float32:
            raise TypeError(f"cupy backend: {what} is {a.dtype}, but pygan's csrc kernels are float32 only")
        return a if a.flags.c_contiguous else cp.ascontiguousarray(a)

    def bias_act_forward(self, x, bias, act, slope=0.01, out=None):
        """y = act(x + bias[c]) for x (N, C, *) (csrc/kernels/bias_act.cu); ``out`` may be x."""
        x = self._f32(x, "bias_act input")
        if bias is not None:
            bias = self._f32(bias, "bias")
        N, C, S = check_bias_act(x.shape, None if bias is None else bias.shape)
        y = self.xp.empty_like(x) if out is None else self._f32(out, "bias_act output")
        if x.size:
            self._launch("bias_act_fwd", _grid(x.size, 4096), (x, bias, y, x.size, C, S, _ACTS[act], slope))
        return y

    def bias_act_backward(self, gy, y, act, slope=0.01, bias_grad=True):
        """(gx = gy·act'(y), gb = Σ_{n,s} gx or None)."""
        gy, y = self._f32(gy, "bias_act output gradient"), self._f32(y, "bias_act output")
        N, C, S = check_bias_act_backward(gy.shape, y.shape, act, slope)
        gx = self.xp.empty_like(y)
        gb = self.xp.empty(C, dtype=np.float32) if bias_grad else None
        if y.size:
            self._launch("act_bwd", _grid(y.size, 4096), (gy, y, gx, y.size, _ACTS[act], slope))
            if gb is not None:
                self._launch("channel_sum", C, (gx, gb, N, C, S))
        elif gb is not None:
            gb[...] = 0
        return gx, gb

    def bn_stats(self, x):
        """(mean (C,), biased var (C,)) per channel of x (N, C, *), two-pass variance."""
        x = self._f32(x, "batch-norm input")
        N, C, S = ncs(x.shape)
        mean, var = self.xp.empty(C, dtype=np.float32), self.xp.empty(C, dtype=np.float32)
        if C:
            self._launch("bn_stats_kernel", C, (x, mean, var, N, C, S))
        return mean, var

    def bn_backward_reduce(self, gy, x, mean, invstd):
        """(Σ gy, Σ gy·(x − mean)·invstd) per channel of (N, C, *)."""
        gy, x = self._f32(gy, "batch-norm output gradient"), self._f32(x, "batch-norm input")
        mean, invstd = self._f32(mean, "mean"), self._f32(invstd, "invstd")
        N, C, S = ncs(x.shape)
        a, b = self.xp.empty(C, dtype=np.float32), self.xp.empty(C, dtype=np.float32)
        if C:
            self._launch("bn_backward_reduce_kernel", C, (gy, x, mean, invstd, a, b, N, C, S))
        return a, b

    def adam_update(self, p, g, m, v, lr, beta1, beta2, eps, weight_decay, step, vmax=None):
        """torch.optim.Adam's step on flat float32 arrays, in place on p, m, v (and vmax);
        the constants rounded as pygan.optim.Adam rounds them.  docs/gradients.md#adam."""
        arrays = [self._f32(a, n) for a, n in ((p, "parameters"), (g, "gradients"), (m, "exp_avg"), (v, "exp_avg_sq"))]
        if vmax is not None:
            arrays.append(self._f32(vmax, "max_exp_avg_sq"))
        if any(a is not b for a, b in zip(arrays, (p, g, m, v, vmax))):
            raise ValueError("adam_update: p, g, m, v (and vmax) must be contiguous float32 arrays (updated in place)")
        n = p.size
        if any(a.size != n for a in arrays):
            raise ValueError(f"adam_update: sizes differ: {[a.size for a in arrays]}")
        if n == 0:
            return
        c1 = 1.0 - beta1
        self._launch("adam_kernel", _grid(n, 4096),
                     (p, g, m, v, vmax, n, c1, 1.0 - c1, beta2, 1.0 - beta2, -(lr / (1.0 - beta1 ** step)),
                      math.sqrt(1.0 - beta2 ** step), eps, weight_decay))

    def __repr__(self):
        return "CupyBackend()"
