"""Backends on pygan's own CUDA kernels (csrc/kernels): ``cuda`` (GPU) and, through the same
class, ``cuda-emu`` (CPU emulator, see cuda_emu.py).

A kernel backend is an array module ``xp`` plus an extension module whose functions take raw
pointers (integers) and shapes; :class:`KernelBackend` turns arrays into those calls once, for
both.  ``cuda`` keeps arrays as CuPy arrays (device memory) and launches on their device
pointers on CuPy's current stream; ``cuda-emu`` keeps numpy arrays and runs the very same
kernel source on the CPU emulator on host pointers.  Kernels are float32 only: float64 inputs
raise ``TypeError`` (gradient checks in float64 belong to the numpy backend).

Methods (the NumpyBackend seam, same shapes and meaning):
    matmul(a, b, out=None)                                   2-D (or 1-D) a @ b; NN, NT, TN without copies
    conv2d_forward(x, w, stride, padding)                    im2col + batched sgemm
    conv2d_backward_input(gy, w, x_shape, stride, padding)   sgemm (TN) + col2im gather
    conv2d_backward_weight(x, gy, w_shape, stride, padding)  im2col + sgemm (NT) per image, β = 1
Fused GAN loss terms, picked up by pygan.losses when the backend has them (one pass: value and
gradient w.r.t. the logits, block reduction with warp shuffles):
    loss_softplus(x, sign, weight) -> (w·E sp(s·x), w·s·σ(s·x)/n)
    loss_linear(x, weight)         -> (w·E x, w/n)
    loss_hinge(x, sign, weight)    -> (w·E relu(1 + s·x), w·s·[1 + s·x > 0]/n)
    loss_square(x, target, weight) -> (½w·E (x − t)², w·(x − t)/n)
Fused ops layers and optimizers may adopt (documented in docs/backends.md#fused-ops):
    bias_act_forward(x, bias, act, slope=0.01, out=None)     act(x + b) per channel of (N, C, *)
    bias_act_backward(gy, y, act, slope=0.01, bias_grad=True) -> (gx, gb or None)
    bn_stats(x) -> (mean, biased var) per channel of (N, C, *)
    bn_backward_reduce(gy, x, mean, invstd) -> (Σ gy, Σ gy·x̂) per channel
    adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step, vmax=None)   in place, torch's rule
act is one of "identity", "relu", "leaky_relu", "tanh", "sigmoid".
"""
from __future__ import annotations

import math

import numpy as np

_ACTS = {"identity": 0, "none": 0, None: 0, "relu": 1, "leaky_relu": 2, "tanh": 3, "sigmoid": 4}
_LOSS = {"softplus": 0, "linear": 1, "hinge": 2, "square": 3}


from .kernel_shapes import check_bias_act, check_bias_act_backward, conv_dims, ncs  # noqa: E402


class KernelBackend:
    """The seam over an extension module of pygan's kernels (``_k``) and an array module."""

    name = "kernels"
    xp = np
    _k = None                       # the extension module (pygan._cuda or pygan._cuda_emu)

    @staticmethod
    def split_rows(fn, n, size):
        """fn(0, n) in one call: the device parallelises within each array operation."""
        fn(0, n)

    # --- per-backend array plumbing (overridden by the CUDA backend) ---------------------------
    def _ptr(self, a) -> int:
        return a.__array_interface__["data"][0]

    def _stream(self) -> int:
        return 0

    def _scalar(self, a) -> float:
        return float(a[0])

    # --- helpers ------------------------------------------------------------------------------
    def _check(self, a, what):
        """Raise unless a is a float32 array of this backend (float64 → a clear TypeError)."""
        xp = self.xp
        if not isinstance(a, xp.ndarray):
            raise TypeError(f"{self.name} backend: {what} must be a {xp.__name__}.ndarray, got {type(a).__name__}")
        if a.dtype != np.float32:
            raise TypeError(f"{self.name} backend: {what} is {a.dtype}, but pygan's CUDA kernels are float32 only "
                            f"(use the numpy backend for float64, e.g. gradient checks)")

    def _f32(self, a, what):
        """a as a C-contiguous float32 array of this backend (a copy only if not contiguous)."""
        self._check(a, what)
        return a if a.flags.c_contiguous else self.xp.ascontiguousarray(a)

    def _empty(self, shape):
        return self.xp.empty(shape, dtype=np.float32)

    def _gemm_operand(self, a):
        """(array, transposed, leading dimension) for a row-major sgemm, copying only if needed."""
        rows, cols = a.shape
        if a.flags.c_contiguous:
            return a, False, max(cols, 1)
        if a.flags.f_contiguous:
            return a, True, max(rows, 1)
        s0, s1 = a.strides
        if s1 == 4 and s0 % 4 == 0 and s0 >= 4 * cols:
            return a, False, s0 // 4
        if s0 == 4 and s1 % 4 == 0 and s1 >= 4 * rows:
            return a, True, s1 // 4
        return self.xp.ascontiguousarray(a), False, max(cols, 1)

    # --- dense --------------------------------------------------------------------------------
    def matmul(self, a, b, out=None, algo=1):
        """a @ b for 2-D (or 1-D) float32 arrays: C = op(A)·op(B) with op = transpose when an
        operand is a transposed view (no copy).  ``algo`` 0 is the naive reference kernel."""
        self._check(a, "matmul operand a")
        self._check(b, "matmul operand b")
        if a.ndim > 2 or b.ndim > 2:
            raise NotImplementedError(f"{self.name} backend: matmul of {a.ndim}-D by {b.ndim}-D arrays "
                                      f"(only 1-D and 2-D operands are supported)")
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        M, K = a2.shape
        K2, N = b2.shape
        if K != K2:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} are not aligned ({K} ≠ {K2})")
        shape = a.shape[:-1] + b.shape[1:] if b.ndim == 2 else a.shape[:-1]
        c = self._empty((M, N))
        if M and N:
            A, ta, lda = self._gemm_operand(a2)
            B, tb, ldb = self._gemm_operand(b2)
            self._k.sgemm(algo, ta, tb, M, N, K, 1.0, self._ptr(A), lda, 0, self._ptr(B), ldb, 0, 0.0,
                          self._ptr(c), N, 0, 1, self._stream())
        c = c.reshape(shape)
        if out is not None:
            out[...] = c
            return out
        return c

    # --- convolution ----------------------------------------------------------------------------
    def _conv_dims(self, x_shape, w_shape, stride, padding):
        *dims, OH, OW = conv_dims(x_shape, w_shape, stride, padding)
        return tuple(dims), (OH, OW)

    def conv2d_forward(self, x, w, stride, padding, patches=None):
        """y (N, O, OH, OW) = conv(x (N, C, H, W), w (O, C, kh, kw)); docs/gradients.md#conv2d. ``patches`` is
        ignored: this backend has no ``conv2d_patches`` (its im2col stays inside the kernel)."""
        x, w = self._f32(x, "conv2d input"), self._f32(w, "conv2d weight")
        dims, (OH, OW) = self._conv_dims(x.shape, w.shape, stride, padding)
        N, C, _, _, O, kh, kw = dims[:7]
        y = self._empty((N, O, OH, OW))
        cols = self._empty(max(N * C * kh * kw * OH * OW, 1))
        self._k.conv2d_forward(self._ptr(x), self._ptr(w), self._ptr(y), self._ptr(cols), *dims, self._stream())
        return y

    def conv2d_backward_input(self, gy, w, x_shape, stride, padding):
        """∂L/∂x (x_shape) from gy (N, O, OH, OW) and w (O, C, kh, kw): col2im(Wᵀ·gy), a gather."""
        gy, w = self._f32(gy, "conv2d output gradient"), self._f32(w, "conv2d weight")
        dims, (OH, OW) = self._conv_dims(x_shape, w.shape, stride, padding)
        N, C, H, W, O, kh, kw = dims[:7]
        if tuple(gy.shape) != (N, O, OH, OW):
            raise ValueError(f"conv2d_backward_input: gy has shape {tuple(gy.shape)}, expected {(N, O, OH, OW)}")
        gx = self._empty((N, C, H, W))
        cols = self._empty(max(N * C * kh * kw * OH * OW, 1))
        self._k.conv2d_backward_input(self._ptr(gy), self._ptr(w), self._ptr(gx), self._ptr(cols), *dims,
                                      self._stream())
        return gx

    def conv2d_backward_weight(self, x, gy, w_shape, stride, padding, patches=None):
        """∂L/∂w (w_shape) = Σₙ gy[n]·im2col(x[n])ᵀ, summed over the batch in a fixed order."""
        x, gy = self._f32(x, "conv2d input"), self._f32(gy, "conv2d output gradient")
        dims, (OH, OW) = self._conv_dims(x.shape, w_shape, stride, padding)
        N, C, H, W, O, kh, kw = dims[:7]
        if tuple(gy.shape) != (N, O, OH, OW):
            raise ValueError(f"conv2d_backward_weight: gy has shape {tuple(gy.shape)}, expected {(N, O, OH, OW)}")
        gw = self._empty((O, C, kh, kw))
        if N == 0:
            gw[...] = 0
            return gw
        cols = self._empty(max(N * C * kh * kw * OH * OW, 1))
        self._k.conv2d_backward_weight(self._ptr(x), self._ptr(gy), self._ptr(gw), self._ptr(cols), *dims,
                                       self._stream())
        return gw

    # --- fused GAN loss terms (pygan.losses looks these up by name) ------------------------------
    def _loss(self, kind, x, sign, weight, target):
        x = self._f32(x, "logits")
        n = x.size
        grad = self._empty(x.shape)
        partial = self._empty(self._k.loss_partial_count(n))
        total = self._empty(1)
        self._k.gan_loss(_LOSS[kind], self._ptr(x), self._ptr(grad), self._ptr(partial), self._ptr(total), n,
                         float(sign), float(weight), float(target), self._stream())
        s = self._scalar(total)
        return (0.5 if kind == "square" else 1.0) * weight * s / n, grad

    def loss_softplus(self, x, sign, weight):
        """(w·E sp(s·x), w·s·σ(s·x)/n) in one pass; docs/gradients.md#minimax."""
        return self._loss("softplus", x, sign, weight, 0.0)

    def loss_linear(self, x, weight):
        """(w·E x, w/n); docs/gradients.md#wasserstein."""
        return self._loss("linear", x, 1.0, weight, 0.0)

    def loss_hinge(self, x, sign, weight):
        """(w·E relu(1 + s·x), w·s·[1 + s·x > 0]/n); docs/gradients.md#hinge."""
        return self._loss("hinge", x, sign, weight, 0.0)

    def loss_square(self, x, target, weight):
        """(½w·E (x − t)², w·(x − t)/n); docs/gradients.md#least_squares."""
        return self._loss("square", x, 1.0, weight, target)

    # --- bias + activation ----------------------------------------------------------------------
    def bias_act_forward(self, x, bias, act, slope=0.01, out=None):
        """y = act(x + bias[c]) for x (N, C, *) and bias (C,) or None; ``out`` may be x (in place)."""
        x = self._f32(x, "bias_act input")
        if bias is not None:
            bias = self._f32(bias, "bias")
        N, C, S = check_bias_act(x.shape, None if bias is None else bias.shape)
        y = self._empty(x.shape) if out is None else self._f32(out, "bias_act output")
        self._k.bias_act_forward(self._ptr(x), 0 if bias is None else self._ptr(bias), self._ptr(y), N, C, S,
                                 _ACTS[act], float(slope), self._stream())
        return y

    def bias_act_backward(self, gy, y, act, slope=0.01, bias_grad=True):
        """(gx = gy·act'(y), gb = Σ_{n,s} gx or None), act' read from the forward output y."""
        gy, y = self._f32(gy, "bias_act output gradient"), self._f32(y, "bias_act output")
        N, C, S = check_bias_act_backward(gy.shape, y.shape, act, slope)
        gx = self._empty(y.shape)
        gb = self._empty(C) if bias_grad else None
        self._k.bias_act_backward(self._ptr(gy), self._ptr(y), self._ptr(gx), 0 if gb is None else self._ptr(gb),
                                  N, C, S, _ACTS[act], float(slope), self._stream())
        return gx, gb

    # --- batch-norm reductions ------------------------------------------------------------------
    def bn_stats(self, x):
        """(mean (C,), biased var (C,)) over all axes but 1 of x (N, C, *); two-pass variance."""
        x = self._f32(x, "batch-norm input")
        N, C, S = ncs(x.shape)
        mean, var = self._empty(C), self._empty(C)
        self._k.bn_stats(self._ptr(x), self._ptr(mean), self._ptr(var), N, C, S, self._stream())
        return mean, var

    def bn_backward_reduce(self, gy, x, mean, invstd):
        """(Σ gy, Σ gy·(x − mean)·invstd) per channel of (N, C, *); docs/gradients.md#batchnorm."""
        gy, x = self._f32(gy, "batch-norm output gradient"), self._f32(x, "batch-norm input")
        mean, invstd = self._f32(mean, "mean"), self._f32(invstd, "invstd")
        N, C, S = ncs(x.shape)
        a, b = self._empty(C), self._empty(C)
        self._k.bn_backward_reduce(self._ptr(gy), self._ptr(x), self._ptr(mean), self._ptr(invstd), self._ptr(a),
                                   self._ptr(b), N, C, S, self._stream())
        return a, b

    # --- optimizer ------------------------------------------------------------------------------
    def adam_update(self, p, g, m, v, lr, beta1, beta2, eps, weight_decay, step, vmax=None):
        """torch.optim.Adam's step on flat float32 arrays, in place on p, m, v (and vmax with
        AMSGrad), with pygan.optim.Adam's float32 rounding order; g is not modified.
        docs/gradients.md#adam."""
        arrays = [self._f32(a, n) for a, n in ((p, "parameters"), (g, "gradients"), (m, "exp_avg"), (v, "exp_avg_sq"))]
        if vmax is not None:
            arrays.append(self._f32(vmax, "max_exp_avg_sq"))
        if any(a is not b for a, b in zip(arrays, (p, g, m, v, vmax))):
            raise ValueError("adam_update: p, g, m, v (and vmax) must be contiguous float32 arrays (updated in place)")
        n = p.size
        if any(a.size != n for a in arrays):
            raise ValueError(f"adam_update: sizes differ: {[a.size for a in arrays]}")
        f = np.float32
        c1 = 1.0 - beta1
        neg_step = -(lr / (1.0 - beta1 ** step))
        sqrt_bc2 = math.sqrt(1.0 - beta2 ** step)
        self._k.adam_update(self._ptr(p), self._ptr(g), self._ptr(m), self._ptr(v),
                            0 if vmax is None else self._ptr(vmax), n, float(f(c1)), float(f(1.0 - c1)),
                            float(f(beta2)), float(f(1.0 - beta2)), float(f(neg_step)), float(f(sqrt_bc2)),
                            float(f(eps)), float(f(weight_decay)), self._stream())

    def synchronize(self):
        self._k.synchronize()

    def __repr__(self):
        return f"{type(self).__name__}()"


# --- the GPU backend ---------------------------------------------------------------------------------

def _import_cupy():
    try:
        import cupy
    except Exception as e:  # noqa: BLE001 — ImportError, or a broken CUDA install raising at import
        return None, f"CuPy is not installed or failed to import ({type(e).__name__}: {e}); pip install cupy-cuda12x"
    return cupy, None


def _import_extension():
    try:
        from .. import _cuda
    except ImportError as e:
        return None, (f"the extension pygan._cuda is not built ({e}); it is built at install time when nvcc "
                      f"is found (reinstall with nvcc on the PATH, PYGAN_CUDA=1 to see why it fails)")
    return _cuda, None


class CudaBackend(KernelBackend):
    """pygan's CUDA kernels on the GPU: CuPy arrays, launches on CuPy's current stream."""

    name = "cuda"

    def __init__(self):
        reason = self.unavailable_reason()
        if reason:
            raise RuntimeError(f"backend 'cuda' is not available: {reason}")
        import cupy
        from .. import _cuda
        self.xp = cupy
        self._k = _cuda

    @staticmethod
    def unavailable_reason():
        """None if the backend runs here, else why not (every reason found, '; '-joined)."""
        reasons = []
        cupy, why = _import_cupy()
        if why:
            reasons.append(why)
        ext, why_ext = _import_extension()
        if why_ext:
            reasons.append(why_ext)
        if cupy is not None:
            try:
                n = cupy.cuda.runtime.getDeviceCount()
            except Exception as e:  # noqa: BLE001 — no driver, no device
                n, why = 0, f"{type(e).__name__}: {e}"
            else:
                why = "no device"
            if n == 0:
                reasons.append(f"no CUDA GPU is visible ({why})")
            elif ext is not None:
                try:
                    ext.device_info()           # the kernels' runtime can talk to this driver
                except Exception as e:  # noqa: BLE001
                    reasons.append(f"pygan._cuda cannot use the GPU: {e}")
        return "; ".join(reasons) or None

    def _ptr(self, a) -> int:
        return a.data.ptr

    def _stream(self) -> int:
        return self.xp.cuda.get_current_stream().ptr

    def _scalar(self, a) -> float:
        return float(a[0].get())

    def synchronize(self):
        self.xp.cuda.get_current_stream().synchronize()
