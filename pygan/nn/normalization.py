"""Batch and layer normalisation.  Derivations: docs/gradients.md#batchnorm, #layernorm.

Both use the compact input gradient of a normalisation x̂ = (x − μ)/σ,

    ∂L/∂x = (1/σ) · (h − mean(h) − x̂ · mean(h·x̂)),   h = ∂L/∂x̂,

with the means over the values that share μ and σ (a channel over (N, H, W) for BatchNorm, a
row over the trailing dims for LayerNorm). BatchNorm caches the centred input x − μ and 1/σ,
LayerNorm x̂ and 1/σ, each in a buffer reused by the next forward. Reductions are ``einsum``
calls: one pass over the data, no temporary for products such as Σ g·xc.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import by_rows, get_backend, to_host
from . import init
from .module import Module, Parameter, check_input


class _NormBase(Module):
    """What BatchNorm and InstanceNorm share (PyTorch's ``_NormBase``): the argument checks, γ and β
    (``affine``), the running statistics (``track_running_stats``: running_mean, running_var,
    num_batches_tracked, saved under torch's keys) and their resets."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=np.float32, *,
                 bias: bool = True):
        super().__init__()
        name = type(self).__name__
        if isinstance(num_features, bool) or int(num_features) != num_features or num_features <= 0:
            raise ValueError(f"{name}: num_features must be a positive integer, got {num_features!r}")
        if not eps > 0:
            raise ValueError(f"{name}: eps must be positive, got {eps!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1] or None, got {momentum!r}")
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"{name}: dtype must be floating, got {dtype}")
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self._dtype = dtype
        xp = get_backend().xp
        if self.affine:
            self.weight = Parameter(xp.ones(self.num_features, dtype=dtype))
            self.bias = Parameter(xp.zeros(self.num_features, dtype=dtype)) if bias else None
        else:
            self.weight = None
            self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", xp.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", xp.ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", xp.zeros((), dtype=np.int64))
        else:
            # like torch's register_buffer(name, None): attributes exist, nothing is saved
            self.running_mean = None
            self.running_var = None
            self.num_batches_tracked = None
        self._cache = None

    # --- description -------------------------------------------------------------------
    def describe(self):
        return f"{type(self).__name__}({self.num_features})"

    @property
    def dtype(self):
        """The layer's floating dtype (parameters and running statistics)."""
        return self._dtype

    def _on_dtype_change(self, dtype):
        self._dtype = np.dtype(dtype)

    def _set_buffer(self, name, array):
        # keep num_batches_tracked 0-d like torch's (np.ascontiguousarray, used by
        # Module.load_state_dict, turns a 0-d array into shape (1,))
        if name == "num_batches_tracked" and array is not None:
            array = array.reshape(())
        super()._set_buffer(name, array)

    # --- resets (torch's names) ----------------------------------------------------------
    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

class _BatchNorm(_NormBase):
    """Shared implementation of BatchNorm1d/2d (PyTorch's ``_BatchNorm``).

    The input is viewed as (N, C, M) with M the product of the dims after C (M = 1 for (N, C)
    input, which is handled as a 2-D view). Per channel c, over the n = N·M values:

        μ = mean(x),  var = mean((x − μ)²)  (biased),  x̂ = (x − μ)/√(var + eps),
        y = γ x̂ + β.

    Train mode (or ``track_running_stats=False``) normalises with the batch statistics and, when
    tracking, updates ``running_mean``/``running_var`` with the *unbiased* variance
    var·n/(n − 1): r ← (1 − m)·r + m·stat, with m = momentum, or m = 1/num_batches_tracked
    (cumulative average) when ``momentum=None``. Eval mode uses the running statistics, so the
    layer is the per-channel affine map y = x·γ/σ_r + (β − μ_r·γ/σ_r).

    Backward (docs/gradients.md#batchnorm), g = ∂L/∂y, sums over (N, spatial):
    train: ∂L/∂x = (γ/σ)(g − mean(g) − x̂·mean(g·x̂));  eval: ∂L/∂x = g·γ/σ_r;
    both: ∂L/∂γ += Σ g·x̂,  ∂L/∂β += Σ g.

    Synchronised statistics (data-parallel training on K processes, each holding a slice of the
    batch): with ``group`` set (see :func:`sync_batchnorm`), a train-mode forward takes μ and var
    over the union of the K slices and backward takes mean(g) and mean(g·x̂) over it, so the K
    layers together compute exactly the single-process layer on the whole batch; γ's and β's
    grads stay the slice's own (the data-parallel gradient average sums them).
    docs/gradients.md#synchronised-batchnorm
    """

    _ranks: tuple = ()
    #: None (statistics of this process's batch), or an object whose ``allreduce(a)`` returns the
    #: element-wise sum of ``a`` over the processes of a data-parallel group (same shape, dtype)
    group = None

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=np.float32, *,
                 bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype, bias=bias)
        self._xc_buf = None

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")

    # --- forward ------------------------------------------------------------------------
    # Reductions run on the (N, C, M) view (einsum, one pass, no temporaries); elementwise work
    # runs on the flat (N, C·M) view with the per-channel constants repeated to length C·M, so
    # NumPy's inner loop spans C·M elements instead of M (7×7 = 49 for DCGAN's 7×7 maps).

    def _views(self, a, shape):
        if len(shape) == 2:
            return a, a, "nc"
        n, c, m = shape[0], self.num_features, math.prod(shape[2:])
        return a.reshape(n, c, m), a.reshape(n, c * m), "ncm"

    @staticmethod
    def _expand(v, m):
        """Per-channel vector (C,) → (C·M,) matching the flat view's columns."""
        return v if m == 1 else get_backend().xp.repeat(v, m)

    def forward(self, x):
        check_input(self, x, ndim=self._ranks, channels_axis=1, channels=self.num_features)
        xp = get_backend().xp
        use_batch_stats = self.training or not self.track_running_stats
        n = x.size // self.num_features          # values per channel
        if use_batch_stats and n <= 1:
            raise ValueError(f"{self.describe()}: expected more than 1 value per channel when training, "
                             f"got input size {tuple(x.shape)}")
        x = xp.ascontiguousarray(x)
        x3, x2, sub = self._views(x, x.shape)
        m = math.prod(x.shape[2:])               # spatial size M
        dt = x.dtype.type
        gamma = self.weight.data if self.weight is not None else None
        beta = self.bias.data if self.bias is not None else None

        if not use_batch_stats:
            # eval: y = x·scale + shift, scale = γ/σ_r, shift = β − μ_r·scale
            invstd = 1 / xp.sqrt(self.running_var + dt(self.eps))
            scale = invstd if gamma is None else gamma * invstd
            shift = -self.running_mean * scale
            if beta is not None:
                shift += beta
            y = x2 * self._expand(scale, m)
            y += self._expand(shift, m)
            self._cache = ("eval", x, invstd, scale, self.running_mean.copy(), n)
            return y.reshape(x.shape)

        group = self.group
        if group is not None:
            # the union of the group's slices: n over all of them, μ from the summed Σx
            n = int(round(float(to_host(group.allreduce(xp.asarray([float(n)], dtype=np.float64)))[0])))
        inv_n = dt(1.0 / n)
        sum_x = xp.einsum(f"{sub}->c", x3)
        mean = (sum_x if group is None else group.allreduce(sum_x)) * inv_n
        # xc = x − μ goes into a buffer kept from the previous forward (whose cache is dead now)
        buf = self._xc_buf
        if buf is None or buf.shape != x.shape or buf.dtype != x.dtype:
            buf = self._xc_buf = xp.empty_like(x)
        xc3, xc2, _ = self._views(buf, x.shape)
        mean_e = self._expand(mean, m)
        by_rows(lambda s: xp.subtract(x2[s], mean_e, out=xc2[s]), xc2)
        sum_xc2 = xp.einsum(f"{sub},{sub}->c", xc3, xc3)
        var = (sum_xc2 if group is None else group.allreduce(sum_xc2)) * inv_n        # biased
        invstd = 1 / xp.sqrt(var + dt(self.eps))
        scale = invstd if gamma is None else gamma * invstd
        y = xp.empty_like(xc2)
        scale_e = self._expand(scale, m)
        beta_e = None if beta is None else self._expand(beta, m)

        def affine(s):                                               # y = xc·scale + β
            xp.multiply(xc2[s], scale_e, out=y[s])
            if beta_e is not None:
                y[s] += beta_e
        by_rows(affine, y)

        if self.training and self.track_running_stats:
            nbt = self.num_batches_tracked
            nbt += 1  # in place (0-d array); never rebind a buffer attribute
            f = 1.0 / float(nbt) if self.momentum is None else self.momentum
            rm, rv = self.running_mean, self.running_var
            rm *= dt(1.0 - f)
            rm += dt(f) * mean
            rv *= dt(1.0 - f)
            rv += dt(f * n / (n - 1)) * var                          # unbiased
        self._cache = ("train", buf, invstd, scale, None, n)
        return y.reshape(x.shape)

    # --- backward -----------------------------------------------------------------------
    def backward(self, gy):
        mode, a, invstd, scale, rmean, n = self._need_cache(self._cache)
        xp = get_backend().xp
        shape = a.shape
        if tuple(gy.shape) != tuple(shape):
            raise ValueError(f"{self.describe()}: backward got gy of shape {tuple(gy.shape)}, "
                             f"expected {tuple(shape)}")
        gy = xp.ascontiguousarray(gy).reshape(shape)
        g3, g2, sub = self._views(gy, shape)
        m = math.prod(shape[2:])
        sum_g = xp.einsum(f"{sub}->c", g3)
        if mode == "eval":
            # a is x; the map is affine per channel
            if self.weight is not None:
                xc = self._views(a, shape)[1] - self._expand(rmean, m)
                self.weight.grad += xp.einsum(f"{sub},{sub}->c", g3, self._views(xc, shape)[0]) * invstd
            if self.bias is not None:
                self.bias.grad += sum_g
            return (g2 * self._expand(scale, m)).reshape(shape)

        # train: a is xc = x − μ, x̂ = xc·invstd
        a3, a2, _ = self._views(a, shape)
        dt = a.dtype.type
        sum_gxc = xp.einsum(f"{sub},{sub}->c", g3, a3)               # Σ g·xc
        if self.weight is not None:
            self.weight.grad += sum_gxc * invstd                     # Σ g·x̂
        if self.bias is not None:
            self.bias.grad += sum_g
        if self.group is not None:
            # mean(g) and mean(g·xc) over the group's slices (n is already the union's count)
            c = self.num_features
            both = self.group.allreduce(xp.concatenate([sum_g, sum_gxc]))
            sum_g, sum_gxc = both[:c], both[c:]
        # ∂L/∂x = scale·(g − mean(g) − xc·invstd²·mean(g·xc)),  scale = γ·invstd
        inv_n = dt(1.0 / n)
        coef = -(invstd * invstd) * (sum_gxc * inv_n)
        coef_e, mean_g_e, scale_e = (self._expand(v, m) for v in (coef, sum_g * inv_n, scale))
        gx = xp.empty_like(a2)

        def rows(s):
            gs = gx[s]
            xp.multiply(a2[s], coef_e, out=gs)
            gs += g2[s]
            gs -= mean_g_e
            gs *= scale_e
        by_rows(rows, gx)
        return gx.reshape(shape)


    # --- tangent mode (penalties on ∇ₓD): docs/gradients.md#second-order --------------------
    def _eval_cache_for_penalty(self):
        mode = self._need_cache(self._cache)[0]
        if mode != "eval":
            raise NotImplementedError(
                f"{self.describe()} in train mode couples the samples of a batch, so a per-sample "
                f"input gradient (gradient penalty, R1) is not defined; put the critic's BatchNorm in "
                f"eval mode, or use LayerNorm or no normalisation in a penalised critic")
        return self._cache

    def jvp(self, dx):
        # eval mode is the per-channel affine map y = x·scale + shift: ẏ = ẋ·scale
        _, x, invstd, scale, _, _ = self._eval_cache_for_penalty()
        xp = get_backend().xp
        self._dx = dx = xp.ascontiguousarray(dx)
        m = math.prod(dx.shape[2:])
        return (self._views(dx, dx.shape)[1] * self._expand(scale, m)).reshape(dx.shape)

    def backward_jvp(self, gy, gdy):
        # adjoint: ∂/∂γ += Σ gdy·ẋ/σ_r (plus the gy terms of backward); gẋ = gdy·scale
        _, x, invstd, scale, _, _ = self._eval_cache_for_penalty()
        xp = get_backend().xp
        dx = self._need_cache(getattr(self, "_dx", None))
        gdy = xp.ascontiguousarray(gdy).reshape(dx.shape)
        g3, g2, sub = self._views(gdy, dx.shape)
        if self.weight is not None:
            self.weight.grad += xp.einsum(f"{sub},{sub}->c", g3, self._views(dx, dx.shape)[0]) * invstd
        m = math.prod(dx.shape[2:])
        gdx = (g2 * self._expand(scale, m)).reshape(dx.shape)
        return (None if gy is None else self.backward(gy)), gdx


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) input (PyTorch's ``nn.BatchNorm1d``);
    statistics per channel C over N (and L). See :class:`_BatchNorm` for the math,
    docs/gradients.md#batchnorm for the derivation."""

    _ranks = (2, 3)

    def _shape_hint(self):
        return f"(N, {self.num_features}) or (N, {self.num_features}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W) input (PyTorch's ``nn.BatchNorm2d``); statistics per
    channel C over (N, H, W). See :class:`_BatchNorm` for the math,
    docs/gradients.md#batchnorm for the derivation."""

    _ranks = (4,)

    def _shape_hint(self):
        return f"(N, {self.num_features}, H, W)"


class LayerNorm(Module):
    """Layer normalisation over the trailing dims ``normalized_shape`` (PyTorch's
    ``nn.LayerNorm``).

    Shapes: x (*, *normalized_shape) → y of the same shape; weight γ and bias β have shape
    ``normalized_shape``. Per row r (one row = the F = prod(normalized_shape) trailing values):

        μ_r = mean(x_r),  σ_r = √(mean((x_r − μ_r)²) + eps),  x̂ = (x − μ)/σ,  y = γ ⊙ x̂ + β.

    Backward (docs/gradients.md#layernorm), g = ∂L/∂y, h = g ⊙ γ, means over the row:
    ∂L/∂x = (h − mean(h) − x̂·mean(h·x̂))/σ;  ∂L/∂γ += Σ_rows g·x̂;  ∂L/∂β += Σ_rows g.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=np.float32):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (normalized_shape,)
        normalized_shape = tuple(int(s) for s in normalized_shape)
        if not normalized_shape or any(s <= 0 for s in normalized_shape):
            raise ValueError(f"LayerNorm: normalized_shape must be non-empty positive sizes, "
                             f"got {normalized_shape}")
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps!r}")
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"LayerNorm: dtype must be floating, got {dtype}")
        self.normalized_shape = normalized_shape
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self._dtype = dtype
        self._features = math.prod(normalized_shape)
        xp = get_backend().xp
        if self.elementwise_affine:
            self.weight = Parameter(xp.ones(normalized_shape, dtype=dtype))
            self.bias = Parameter(xp.zeros(normalized_shape, dtype=dtype)) if bias else None
        else:
            self.weight = None
            self.bias = None
        self._cache = None
        self._buf = None

    def describe(self):
        return f"LayerNorm({self.normalized_shape})"

    def _shape_hint(self):
        return "(*, " + ", ".join(map(str, self.normalized_shape)) + ")"

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")

    @property
    def dtype(self):
        return self._dtype

    def _on_dtype_change(self, dtype):
        self._dtype = np.dtype(dtype)

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x):
        d = len(self.normalized_shape)
        check_input(self, x, ndim=range(d, 33))
        if tuple(x.shape[x.ndim - d:]) != self.normalized_shape:
            raise ValueError(f"{self.describe()}: expected input {self._shape_hint()}, got {tuple(x.shape)}")
        xp = get_backend().xp
        dt = x.dtype.type
        f = self._features
        x2 = x.reshape(-1, f)
        inv_f = dt(1.0 / f)
        mean = xp.einsum("rf->r", x2) * inv_f
        # x̂ goes into a buffer kept from the previous forward (whose cache is dead now)
        xhat = self._buf
        if xhat is None or xhat.shape != x2.shape or xhat.dtype != x.dtype:
            xhat = self._buf = xp.empty(x2.shape, dtype=x.dtype)
        xp.subtract(x2, mean[:, None], out=xhat)
        var = xp.einsum("rf,rf->r", xhat, xhat) * inv_f
        rstd = 1 / xp.sqrt(var + dt(self.eps))
        xhat *= rstd[:, None]
        if self.weight is not None:
            y = xhat * self.weight.data.reshape(f)
            if self.bias is not None:
                y += self.bias.data.reshape(f)
        else:
            y = xhat.copy()  # the buffer is reused by the next forward
        self._cache = (xhat, rstd, x.shape)
        return y.reshape(x.shape)

    def backward(self, gy):
        xhat, rstd, x_shape = self._need_cache(self._cache)
        if tuple(gy.shape) != tuple(x_shape):
            raise ValueError(f"{self.describe()}: backward got gy of shape {tuple(gy.shape)}, "
                             f"expected {tuple(x_shape)}")
        xp = get_backend().xp
        f = self._features
        g2 = gy.reshape(-1, f)
        if self.weight is not None:
            self.weight.grad += xp.einsum("rf,rf->f", g2, xhat).reshape(self.normalized_shape)
            if self.bias is not None:
                self.bias.grad += xp.einsum("rf->f", g2).reshape(self.normalized_shape)
            h = g2 * self.weight.data.reshape(f)
        else:
            h = g2
        inv_f = xhat.dtype.type(1.0 / f)
        mean_h = xp.einsum("rf->r", h) * inv_f
        mean_hx = xp.einsum("rf,rf->r", h, xhat) * inv_f
        gx = xhat * (-mean_hx)[:, None]
        gx += h
        gx -= mean_h[:, None]
        gx *= rstd[:, None]
        return gx.reshape(x_shape)

    # --- tangent mode (penalties on ∇ₓD): docs/gradients.md#layernorm-second-order ------------
    # With J = ∂x̂/∂x = (I − 11ᵀ/F − x̂x̂ᵀ/F)/σ (symmetric), the tangent is ẋ̂ = Jẋ and ẏ = γ ⊙ ẋ̂.
    def jvp(self, dx):
        xhat, rstd, x_shape = self._need_cache(self._cache)
        xp = get_backend().xp
        f = self._features
        d2 = dx.reshape(-1, f)
        inv_f = xhat.dtype.type(1.0 / f)
        a = xp.einsum("rf,rf->r", xhat, d2) * inv_f                  # mean(x̂ ẋ)
        dxhat = d2 - (xp.einsum("rf->r", d2) * inv_f)[:, None]
        dxhat -= xhat * a[:, None]
        dxhat *= rstd[:, None]
        self._tangent = (d2, dxhat, a)
        dy = dxhat * self.weight.data.reshape(f) if self.weight is not None else dxhat.copy()
        return dy.reshape(x_shape)

    def backward_jvp(self, gy, gdy):
        """Adjoint of (x, ẋ) ↦ (y, ẏ). With h = gdy ⊙ γ, c = ẋ − mean(ẋ), a = mean(x̂ẋ):
        gẋ = Jh;  ∂L/∂γ += Σ gdy·ẋ̂;  gx (from gdy) = ((mean(hx̂)·a − mean(hc))/σ²)·x̂
        − (a·Jh + mean(hx̂)·ẋ̂)/σ, plus the ordinary backward of gy."""
        xhat, rstd, x_shape = self._need_cache(self._cache)
        d2, dxhat, a = self._need_cache(getattr(self, "_tangent", None))
        xp = get_backend().xp
        f = self._features
        inv_f = xhat.dtype.type(1.0 / f)
        gd2 = gdy.reshape(-1, f)
        if self.weight is not None:
            self.weight.grad += xp.einsum("rf,rf->f", gd2, dxhat).reshape(self.normalized_shape)
            h = gd2 * self.weight.data.reshape(f)
        else:
            h = gd2
        mean_h = xp.einsum("rf->r", h) * inv_f
        mean_hx = xp.einsum("rf,rf->r", h, xhat) * inv_f
        jh = h - mean_h[:, None]
        jh -= xhat * mean_hx[:, None]
        jh *= rstd[:, None]                                            # Jh = gẋ
        mean_hc = xp.einsum("rf,rf->r", h, d2) * inv_f - mean_h * (xp.einsum("rf->r", d2) * inv_f)
        r2 = rstd * rstd
        gx = xhat * ((mean_hx * a - mean_hc) * r2)[:, None]
        gx -= (jh * a[:, None] + dxhat * mean_hx[:, None]) * rstd[:, None]
        if gy is not None:
            gx += self.backward(gy).reshape(-1, f)
        return gx.reshape(x_shape), jh.reshape(x_shape)


class InstanceNorm2d(_NormBase):
    """Instance normalisation of (N, C, H, W) input (PyTorch's ``nn.InstanceNorm2d``; (C, H, W)
    is read as one sample): each (sample, channel) map is normalised over its F = H·W values.

        μ_nc = mean(x_nc),  σ_nc = √(mean((x_nc − μ_nc)²) + eps),  x̂ = (x − μ)/σ,  y = γ_c x̂ + β_c

    (γ, β of shape (C,) with ``affine=True``; none otherwise, as torch's default). With
    ``track_running_stats`` the buffers ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` exist as torch's: train mode updates r ← (1 − m)·r + m·mean_n(stat_nc)
    with the unbiased variance var·F/(F − 1) (momentum=None means m = 0 in torch: no update;
    num_batches_tracked is never incremented, as in torch), and eval mode normalises with them,
    the per-channel affine map y = x·γ/σ_r + (β − μ_r·γ/σ_r). Without it both modes use the
    instance statistics.

    Backward (docs/gradients.md#instancenorm2d), g = ∂L/∂y, h = g·γ_c, means over each map:
    ∂L/∂x = (h − mean(h) − x̂·mean(h·x̂))/σ_nc;  ∂L/∂γ += Σ_{n,h,w} g·x̂;  ∂L/∂β += Σ_{n,h,w} g
    (eval with running statistics: ∂L/∂x = g·γ/σ_r). Samples are independent, so it may sit in
    a penalised critic: its tangent and adjoint are LayerNorm's per map
    (docs/gradients.md#layernorm-second-order) with γ per channel.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = False, track_running_stats: bool = False, dtype=np.float32):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)
        self._tangent = None

    def _shape_hint(self):
        return f"(N, {self.num_features}, H, W)"

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

    def _gamma_rows(self, n):
        """γ per row of the (N·C, F) view, (N·C, 1); None without affine."""
        if self.weight is None:
            return None
        return get_backend().xp.tile(self.weight.data, n)[:, None]

    def forward(self, x):
        xp = get_backend().xp
        x4 = x[None] if isinstance(x, xp.ndarray) and x.ndim == 3 else x    # (C, H, W): one sample
        check_input(self, x4, ndim=4, channels_axis=1, channels=self.num_features)
        n, c, hh, ww = x4.shape
        f = hh * ww
        dt = x.dtype.type
        use_instance = self.training or not self.track_running_stats
        if not use_instance:
            invstd = 1 / xp.sqrt(self.running_var + dt(self.eps))
            scale = invstd if self.weight is None else self.weight.data * invstd
            shift = -self.running_mean * scale
            if self.bias is not None:
                shift = shift + self.bias.data
            y = x4 * scale[:, None, None] + shift[:, None, None]
            self._cache = ("eval", x.shape, x4, invstd, scale)
            self._tangent = None
            return y.reshape(x.shape)
        if f <= 1:
            raise ValueError(f"{self.describe()}: expected more than 1 spatial element when training, "
                             f"got input size {tuple(x.shape)}")
        x2 = xp.ascontiguousarray(x4).reshape(n * c, f)
        inv_f = dt(1.0 / f)
        mean = xp.einsum("rf->r", x2) * inv_f
        xhat = x2 - mean[:, None]
        var = xp.einsum("rf,rf->r", xhat, xhat) * inv_f
        rstd = 1 / xp.sqrt(var + dt(self.eps))
        xhat *= rstd[:, None]
        g_rows = self._gamma_rows(n)
        y = xhat * g_rows if g_rows is not None else xhat.copy()
        if self.bias is not None:
            y += xp.tile(self.bias.data, n)[:, None]
        if self.training and self.track_running_stats:
            m = 0.0 if self.momentum is None else self.momentum
            rm, rv = self.running_mean, self.running_var
            rm *= dt(1.0 - m)
            rm += dt(m) * mean.reshape(n, c).mean(axis=0)
            rv *= dt(1.0 - m)
            rv += dt(m * f / (f - 1)) * var.reshape(n, c).mean(axis=0)
        self._cache = ("instance", x.shape, xhat, rstd, n)
        self._tangent = None
        return y.reshape(x.shape)

    def _check_gy(self, gy, shape, what="gy"):
        if tuple(gy.shape) != tuple(shape):
            raise ValueError(f"{self.describe()}: backward got {what} of shape {tuple(gy.shape)}, "
                             f"expected {tuple(shape)}")

    def backward(self, gy):
        cache = self._need_cache(self._cache)
        mode, shape = cache[0], cache[1]
        self._check_gy(gy, shape)
        xp = get_backend().xp
        c = self.num_features
        if mode == "eval":
            _, _, x4, invstd, scale = cache
            g4 = gy.reshape(x4.shape)
            if self.weight is not None:
                xc = x4 - self.running_mean[:, None, None]
                self.weight.grad += xp.einsum("nchw,nchw->c", g4, xc) * invstd
                self.bias.grad += xp.einsum("nchw->c", g4)
            return (g4 * scale[:, None, None]).reshape(shape)
        _, _, xhat, rstd, n = cache
        g2 = xp.ascontiguousarray(gy).reshape(xhat.shape)
        if self.weight is not None:
            self.weight.grad += xp.einsum("ncf,ncf->c", g2.reshape(n, c, -1), xhat.reshape(n, c, -1))
            self.bias.grad += xp.einsum("ncf->c", g2.reshape(n, c, -1))
            h = g2 * self._gamma_rows(n)
        else:
            h = g2
        inv_f = xhat.dtype.type(1.0 / xhat.shape[1])
        mean_h = xp.einsum("rf->r", h) * inv_f
        mean_hx = xp.einsum("rf,rf->r", h, xhat) * inv_f
        gx = xhat * (-mean_hx)[:, None]
        gx += h
        gx -= mean_h[:, None]
        gx *= rstd[:, None]
        return gx.reshape(shape)

    # --- tangent mode (penalties on ∇ₓD): docs/gradients.md#instancenorm2d ---------------------
    def jvp(self, dx):
        cache = self._need_cache(self._cache)
        mode, shape = cache[0], cache[1]
        if tuple(dx.shape) != tuple(shape):
            raise ValueError(f"{self.describe()}: jvp got a tangent of shape {tuple(dx.shape)}, "
                             f"expected the input's {tuple(shape)}")
        xp = get_backend().xp
        if mode == "eval":
            x4, scale = cache[2], cache[4]
            self._tangent = (dx.reshape(x4.shape),)
            return (dx.reshape(x4.shape) * scale[:, None, None]).reshape(shape)
        _, _, xhat, rstd, n = cache
        d2 = xp.ascontiguousarray(dx).reshape(xhat.shape)
        inv_f = xhat.dtype.type(1.0 / xhat.shape[1])
        a = xp.einsum("rf,rf->r", xhat, d2) * inv_f                  # mean(x̂ ẋ)
        dxhat = d2 - (xp.einsum("rf->r", d2) * inv_f)[:, None]
        dxhat -= xhat * a[:, None]
        dxhat *= rstd[:, None]
        self._tangent = (d2, dxhat, a)
        g_rows = self._gamma_rows(n)
        dy = dxhat * g_rows if g_rows is not None else dxhat.copy()
        return dy.reshape(shape)

    def backward_jvp(self, gy, gdy):
        cache = self._need_cache(self._cache)
        tangent = self._need_cache(self._tangent)
        mode, shape = cache[0], cache[1]
        self._check_gy(gdy, shape, "gẏ")
        xp = get_backend().xp
        c = self.num_features
        if mode == "eval":
            x4, invstd, scale = cache[2], cache[3], cache[4]
            d4 = tangent[0]
            gd4 = gdy.reshape(x4.shape)
            if self.weight is not None:
                self.weight.grad += xp.einsum("nchw,nchw->c", gd4, d4) * invstd
            gdx = (gd4 * scale[:, None, None]).reshape(shape)
            return (None if gy is None else self.backward(gy)), gdx
        _, _, xhat, rstd, n = cache
        d2, dxhat, a = tangent
        inv_f = xhat.dtype.type(1.0 / xhat.shape[1])
        gd2 = xp.ascontiguousarray(gdy).reshape(xhat.shape)
        if self.weight is not None:
            self.weight.grad += xp.einsum("ncf,ncf->c", gd2.reshape(n, c, -1), dxhat.reshape(n, c, -1))
            h = gd2 * self._gamma_rows(n)
        else:
            h = gd2
        mean_h = xp.einsum("rf->r", h) * inv_f
        mean_hx = xp.einsum("rf,rf->r", h, xhat) * inv_f
        jh = h - mean_h[:, None]
        jh -= xhat * mean_hx[:, None]
        jh *= rstd[:, None]                                            # Jh = gẋ
        mean_hc = xp.einsum("rf,rf->r", h, d2) * inv_f - mean_h * (xp.einsum("rf->r", d2) * inv_f)
        r2 = rstd * rstd
        gx = xhat * ((mean_hx * a - mean_hc) * r2)[:, None]
        gx -= (jh * a[:, None] + dxhat * mean_hx[:, None]) * rstd[:, None]
        if gy is not None:
            gx += self.backward(gy).reshape(xhat.shape)
        return gx.reshape(shape), jh.reshape(shape)


def sync_batchnorm(module: Module, group) -> int:
    """Make every BatchNorm1d/2d inside ``module`` synchronise its batch statistics over
    ``group`` (an object with ``allreduce(a)`` → the sum of ``a`` over the group's processes;
    None switches back to per-process statistics), in place, like PyTorch's
    ``SyncBatchNorm.convert_sync_batchnorm``. Parameters, buffers and state-dict keys are
    unchanged. Returns the number of layers changed. docs/gradients.md#synchronised-batchnorm"""
    count = 0
    for mod in module.modules():
        if isinstance(mod, _BatchNorm):
            mod.group = group
            count += 1
    return count
