"""Optimizers with PyTorch's exact update rules: SGD (momentum, Nesterov), Adam (AMSGrad),
RMSProp (centered, momentum).  Update rules written out: docs/gradients.md#sgd, #adam, #rmsprop.

    opt = optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt.zero_grad(); m.backward(...); opt.step()
    np.savez(path, **opt.state_dict());  opt2.load_state_dict(np.load(path))

How it is laid out: the parameters are grouped by dtype and each group's optimizer state
(exp_avg, momentum_buffer, …) lives in **one flat array** per buffer. A step copies the group's
gradients into a flat scratch array (one ``concatenate``), runs the update rule on the flat
arrays (a dozen in-place ufuncs, whatever the number of parameters) and adds the update into
each ``Parameter.data`` in place. Elementwise arithmetic is the same whichever layout it runs
on, so the results are those of a per-parameter loop, with ~1 ufunc per parameter instead of
~13 (MLP GANs have many small parameters). float32 parameters keep float32 state and float32
arithmetic (scalars are cast to the parameters' dtype).

``state_dict()`` is flat (scalars and arrays, ready for ``np.savez``): the optimizer's name,
``n_params``, ``step``, every hyperparameter, and per-parameter buffers under
``"<index>.<torch name>"`` (``"0.exp_avg"``, ``"3.momentum_buffer"``) with the index the
parameter's position in the list given to the constructor. ``load_state_dict`` restores all
of it, so a resumed run continues bit-identically.
"""
from __future__ import annotations

import math
from numbers import Real

import numpy as np

from .backend import by_rows, get_backend, to_host as _to_host

__all__ = ["Optimizer", "SGD", "Adam", "RMSProp", "RMSprop"]




class _Group:
    """The parameters of one dtype, with flat state buffers and per-parameter views of them."""

    def __init__(self, indices, params, dtype):
        xp = get_backend().xp
        self.indices = indices                      # positions in the optimizer's parameter list
        self.params = params
        self.dtype = np.dtype(dtype)
        self.shapes = [tuple(p.data.shape) for p in params]
        sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.size = self.offsets[-1]
        self.g = xp.empty(self.size, dtype=self.dtype)      # gradient (+ weight decay)
        self.s = xp.empty(self.size, dtype=self.dtype)      # scratch; ends as the update
        self.s_views = self.views(self.s)
        self.buffers = {}                                    # name -> flat array

    def views(self, flat):
        return [flat[a:b].reshape(shape)
                for a, b, shape in zip(self.offsets[:-1], self.offsets[1:], self.shapes)]

    def buffer(self, name):
        """The flat buffer ``name``, allocated as zeros on first use."""
        buf = self.buffers.get(name)
        if buf is None:
            buf = self.buffers[name] = get_backend().xp.zeros(self.size, dtype=self.dtype)
        return buf


class Optimizer:
    """Base class: parameter bookkeeping, gather/scatter, zero_grad, state_dict.

    Subclasses define ``_hyper`` (names of the scalar hyperparameters, saved in the state
    dict), ``_buffer_names()`` (the per-parameter buffers the current settings use) and
    ``_update(group, g, s)``, which must leave the update to add to the parameters in ``s``.
    """

    _hyper: tuple = ()

    def __init__(self, params, lr):
        from .nn.module import Parameter  # late import: nn imports backend only
        if isinstance(params, Parameter) or hasattr(params, "named_parameters"):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters, "
                            f"e.g. model.parameters(), got {type(params).__name__}")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        seen = {}
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, "
                                f"not a pygan nn.Parameter")
            if p.data.dtype.kind != "f":
                raise TypeError(f"{type(self).__name__}: parameter {i} has dtype {p.data.dtype}; "
                                f"only floating parameters can be optimized")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: parameter {i} is the same object as "
                                 f"parameter {seen[id(p)]} (each parameter may appear once)")
            seen[id(p)] = i
        self.params = params
        self.lr = lr
        self.step_count = 0
        by_dtype = {}
        for i, p in enumerate(params):
            by_dtype.setdefault(p.data.dtype, []).append(i)
        self._groups = [_Group(idx, [params[i] for i in idx], dt) for dt, idx in by_dtype.items()]

    # --- hyperparameters ---------------------------------------------------------------
    @property
    def lr(self) -> float:
        """Learning rate; may be changed between steps (schedules)."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _nonneg(type(self).__name__, "lr", value)

    def _validate(self):
        """Check every hyperparameter; raise ValueError naming the bad one."""

    def hyperparameters(self) -> dict:
        return {k: getattr(self, k) for k in self._hyper}

    def __repr__(self):
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({len(self.params)} parameters, {hp})"

    # --- the step ------------------------------------------------------------------------
    def zero_grad(self):
        """Set every parameter's ``grad`` to zero, in place."""
        for p in self.params:
            p.grad.fill(0)

    def step(self):
        """One update of every parameter, in place, from the gradients in ``Parameter.grad``."""
        self.step_count += 1
        for grp in self._groups:
            g = self._gather(grp)
            self._update(grp, g, grp.s)
            self._scatter(grp)

    def _gather(self, grp):
        """grp.g ← the flat gradient, plus weight_decay·θ when weight decay is on."""
        xp = get_backend().xp
        try:
            if xp is np:   # casting="no": a grad of another dtype is an error, not a silent cast
                np.concatenate([p.grad.reshape(-1) for p in grp.params], out=grp.g, casting="no")
            else:
                xp.concatenate([p.grad.reshape(-1) for p in grp.params], out=grp.g)
        except (AttributeError, ValueError, TypeError):
            self._check_params(grp, grads=True)
            raise
        wd = self.weight_decay
        if wd != 0:
            # torch: grad = grad + weight_decay·param (p.grad itself is left alone)
            xp.concatenate([p.data.reshape(-1) for p in grp.params], out=grp.s)
            grp.s *= grp.dtype.type(wd)
            grp.g += grp.s
        return grp.g

    def _scatter(self, grp):
        for p, u in zip(grp.params, grp.s_views):
            d = p.data
            if d.shape != u.shape or d.dtype != u.dtype:
                self._check_params(grp, grads=False)
            d += u

    def _check_params(self, grp, grads):
        name = type(self).__name__
        for i, p, shape in zip(grp.indices, grp.params, grp.shapes):
            for what in (("grad", "data") if grads else ("data",)):
                a = getattr(p, what)
                if a is None:
                    raise ValueError(f"{name}.step: parameter {i} has no {what} (None)")
                if tuple(a.shape) != shape or a.dtype != grp.dtype:
                    raise ValueError(f"{name}.step: parameter {i}'s {what} is {tuple(a.shape)} {a.dtype}, "
                                     f"but the optimizer was built for {shape} {grp.dtype}; "
                                     f"create the optimizer after casting or reshaping the model")

    def _update(self, grp, g, s):
        raise NotImplementedError

    def _buffer_names(self) -> tuple:
        return ()

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Flat dict of scalars and host arrays (copies), keys ``step``, the hyperparameters,
        ``optimizer``, ``n_params`` and ``"<index>.<buffer>"``; ready for ``np.savez``."""
        out = {"optimizer": type(self).__name__, "n_params": len(self.params), "step": self.step_count}
        out.update(self.hyperparameters())
        for name in self._saved_buffers():
            for grp in self._groups:
                for i, v in zip(grp.indices, grp.views(grp.buffer(name))):
                    out[f"{i}.{name}"] = _to_host(v).copy()
        return out

    def _saved_buffers(self):
        return self._buffer_names()

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` (a dict, or the ``NpzFile`` of ``np.load``): step,
        hyperparameters and every buffer (cast to the parameters' dtype). Checks that it comes
        from the same optimizer type over the same number of parameters and shapes."""
        name = type(self).__name__
        keys = list(state.keys())
        get = {k: state[k] for k in keys}
        if "optimizer" not in get:
            raise KeyError(f"{name}.load_state_dict: no 'optimizer' key (is this an optimizer state?)")
        kind = _scalar(get["optimizer"])
        if kind != name:
            raise ValueError(f"{name}.load_state_dict: the state is from a {kind} optimizer")
        scalars = ("optimizer", "n_params", "step") + tuple(self._hyper)
        missing = [k for k in scalars if k not in get]
        if missing:
            raise KeyError(f"{name}.load_state_dict: missing keys {missing}")
        n = int(_scalar(get["n_params"]))
        if n != len(self.params):
            raise ValueError(f"{name}.load_state_dict: the state has {n} parameters, "
                             f"this optimizer {len(self.params)}")
        # hyperparameters first (they decide which buffers exist), validated; restore on error
        old = self.hyperparameters()
        try:
            for k in self._hyper:
                setattr(self, k, _scalar(get[k]))
            self._validate()
        except Exception:
            for k, v in old.items():
                setattr(self, k, v)
            raise
        wanted = self._loadable_buffers(get)
        expected = set(scalars) | {f"{i}.{b}" for b in wanted for i in range(n)}
        missing = sorted(k for k in expected if k not in get)
        unexpected = sorted(k for k in keys if k not in expected)
        if missing or unexpected:
            raise KeyError(f"{name}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for b in wanted:                              # check every shape before copying anything
            for grp in self._groups:
                for i, shape in zip(grp.indices, grp.shapes):
                    v = get[f"{i}.{b}"]
                    if tuple(np.shape(v)) != shape:
                        raise ValueError(f"{name}.load_state_dict: parameter {i}: {b} has shape "
                                         f"{tuple(np.shape(v))} in the state but the parameter has shape {shape}")
        xp = get_backend().xp
        for b in wanted:
            for grp in self._groups:
                for i, view in zip(grp.indices, grp.views(grp.buffer(b))):
                    view[...] = xp.asarray(_host(get[f"{i}.{b}"]), dtype=grp.dtype)
        self.step_count = int(_scalar(get["step"]))
        self._after_load(wanted)

    def _loadable_buffers(self, state):
        return self._buffer_names()

    def _after_load(self, loaded):
        pass


def _host(v):
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return _to_host(v)


def _scalar(v):
    """A Python scalar from a scalar or a 0-d array (as np.load gives back)."""
    if isinstance(v, np.ndarray) or hasattr(v, "item"):
        return np.asarray(_host(v)).item()
    return v


def _number(opt, name, value):
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{opt}: {name} must be a finite number, got {value!r}")
    return float(value)


def _nonneg(opt, name, value):
    value = _number(opt, name, value)
    if value < 0:
        raise ValueError(f"{opt}: invalid {name} {value!r} (must be ≥ 0)")
    return value


def _unit(opt, name, value):
    value = _number(opt, name, value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{opt}: invalid {name} {value!r} (must be in [0, 1))")
    return value


def _lerp_(xp, start, end, weight, s):
    """start ← start + weight·(end − start) as torch.lerp computes it (s is scratch)."""
    xp.subtract(end, start, out=s)
    if abs(weight) < 0.5:
        s *= s.dtype.type(weight)
        start += s                                    # start + w·(end − start)
    else:
        s *= s.dtype.type(1.0 - weight)
        xp.subtract(end, s, out=start)                # end − (end − start)·(1 − w)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay.

    With g = ∇θ + λθ (λ = weight_decay), μ = momentum, τ = dampening, η = lr:
        b ← g on the first step, else μ·b + (1 − τ)·g         (when μ ≠ 0)
        g ← g + μ·b if nesterov else b                          (when μ ≠ 0)
        θ ← θ − η·g
    Shapes: every buffer has its parameter's shape and dtype. Exactly torch.optim.SGD.
    Derivation: docs/gradients.md#sgd
    """

    _hyper = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self._validate()
        super().__init__(params, lr)
        self._buf_ready = False

    def _validate(self):
        n = "SGD"
        self.momentum = _nonneg(n, "momentum", self.momentum)
        self.dampening = _number(n, "dampening", self.dampening)
        self.weight_decay = _nonneg(n, "weight_decay", self.weight_decay)
        self.nesterov = bool(self.nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")

    def _buffer_names(self):
        return ("momentum_buffer",) if self.momentum != 0 else ()

    def _saved_buffers(self):
        return ("momentum_buffer",) if self._buf_ready else ()

    def _loadable_buffers(self, state):
        return ("momentum_buffer",) if "0.momentum_buffer" in state else ()

    def _after_load(self, loaded):
        self._buf_ready = bool(loaded)

    def _update(self, grp, g, s):
        xp = get_backend().xp
        dt = grp.dtype.type
        mu = self.momentum
        if mu != 0:
            buf = grp.buffer("momentum_buffer")
            if not self._buf_ready:
                xp.copyto(buf, g)                     # torch: buf = clone(g) on the first step
            else:
                buf *= dt(mu)
                if self.dampening != 0:
                    xp.multiply(g, dt(1.0 - self.dampening), out=s)
                    buf += s                          # μ·b + (1 − τ)·g
                else:
                    buf += g
            if self.nesterov:
                xp.multiply(buf, dt(mu), out=s)
                g += s                                # g + μ·b
            else:
                g = buf
        xp.multiply(g, dt(-self.lr), out=s)           # update −η·g

    def step(self):
        super().step()
        if self.momentum != 0:
            self._buf_ready = True


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with L2 weight decay and AMSGrad, as torch.optim.Adam computes it.

    With g = ∇θ + λθ, step t = 1, 2, …, η = lr, β₁, β₂ = betas:
        m ← m + (1 − β₁)·(g − m)               (torch.lerp)
        v ← β₂·v + (1 − β₂)·g·g
        u ← max(u, v) with amsgrad, else u = v
        θ ← θ − (η / (1 − β₁ᵗ)) · m / (√u / √(1 − β₂ᵗ) + ε)
    Shapes: every buffer has its parameter's shape and dtype.
    Derivation: docs/gradients.md#adam
    """

    _hyper = ("lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        try:
            self.beta1, self.beta2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.eps = eps
        self.weight_decay = weight_decay
        self.amsgrad = amsgrad
        self._validate()
        super().__init__(params, lr)
        for grp in self._groups:
            for b in self._buffer_names():
                grp.buffer(b)

    @property
    def betas(self):
        return (self.beta1, self.beta2)

    @betas.setter
    def betas(self, value):
        self.beta1, self.beta2 = value
        self._validate()

    def _validate(self):
        self.beta1 = _unit("Adam", "beta1 (betas[0])", self.beta1)
        self.beta2 = _unit("Adam", "beta2 (betas[1])", self.beta2)
        self.eps = _nonneg("Adam", "eps", self.eps)
        self.weight_decay = _nonneg("Adam", "weight_decay", self.weight_decay)
        self.amsgrad = bool(self.amsgrad)

    def _buffer_names(self):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def _update(self, grp, g, s):
        xp = get_backend().xp
        dt = grp.dtype.type
        b1, b2, t = self.beta1, self.beta2, self.step_count
        m_all, v_all = grp.buffer("exp_avg"), grp.buffer("exp_avg_sq")
        vmax_all = grp.buffer("max_exp_avg_sq") if self.amsgrad else None
        bias_correction1 = 1.0 - b1 ** t
        bias_correction2 = 1.0 - b2 ** t
        step_size = self.lr / bias_correction1
        g_all, s_all = g, s

        def update(r):                                # elementwise: any partition r of the flat arrays
            m, v, g, s = m_all[r], v_all[r], g_all[r], s_all[r]
            _lerp_(xp, m, g, 1.0 - b1, s)             # m ← lerp(m, g, 1 − β₁)
            v *= dt(b2)
            xp.multiply(g, dt(1.0 - b2), out=s)
            s *= g
            v += s                                    # v ← β₂·v + (1 − β₂)·g·g
            if vmax_all is not None:
                vmax = vmax_all[r]
                xp.maximum(vmax, v, out=vmax)
                v = vmax
            xp.sqrt(v, out=s)
            s /= dt(math.sqrt(bias_correction2))
            s += dt(self.eps)                         # denom = √v / √bc₂ + ε
            xp.multiply(m, dt(-step_size), out=g)     # g is free now
            xp.divide(g, s, out=s)                    # update (−step_size·m) / denom, as torch.addcdiv
        by_rows(update, s_all)


class RMSProp(Optimizer):
    """RMSProp (Hinton 2012), centered (Graves 2013) and with momentum, as torch.optim.RMSprop.

    With g = ∇θ + λθ, α = alpha, η = lr, μ = momentum:
        v ← α·v + (1 − α)·g·g
        ḡ ← ḡ + (1 − α)·(g − ḡ)                        (centered only; torch.lerp)
        a ← √max(v − ḡ·ḡ, 0) + ε if centered else √v + ε
        b ← μ·b + g / a;  θ ← θ − η·b                  (μ > 0)
        θ ← θ − η·g / a                                (μ = 0)
    Note ε is added after the square root, with no bias correction (unlike Adam).
    Shapes: every buffer has its parameter's shape and dtype.
    Derivation: docs/gradients.md#rmsprop
    """

    _hyper = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        self.alpha = alpha
        self.eps = eps
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.centered = centered
        self._validate()
        super().__init__(params, lr)
        for grp in self._groups:
            for b in self._buffer_names():
                grp.buffer(b)

    def _validate(self):
        n = "RMSProp"
        self.alpha = _unit(n, "alpha", self.alpha)
        self.eps = _nonneg(n, "eps", self.eps)
        self.weight_decay = _nonneg(n, "weight_decay", self.weight_decay)
        self.momentum = _nonneg(n, "momentum", self.momentum)
        self.centered = bool(self.centered)

    def _buffer_names(self):
        return (("square_avg",) + (("momentum_buffer",) if self.momentum > 0 else ())
                + (("grad_avg",) if self.centered else ()))

    def _update(self, grp, g, s):
        xp = get_backend().xp
        dt = grp.dtype.type
        a = self.alpha
        v = grp.buffer("square_avg")
        v *= dt(a)
        xp.multiply(g, dt(1.0 - a), out=s)
        s *= g
        v += s                                        # v ← α·v + (1 − α)·g·g
        if self.centered:
            ga = grp.buffer("grad_avg")
            _lerp_(xp, ga, g, 1.0 - a, s)             # ḡ ← lerp(ḡ, g, 1 − α)
            xp.multiply(ga, ga, out=s)
            xp.subtract(v, s, out=s)                  # v − ḡ² ≥ 0 in exact arithmetic;
            xp.maximum(s, 0, out=s)                   # clamp rounding below 0 (torch: NaN)
            xp.sqrt(s, out=s)
        else:
            xp.sqrt(v, out=s)
        s += dt(self.eps)                             # a = √(…) + ε
        if self.momentum > 0:
            buf = grp.buffer("momentum_buffer")
            buf *= dt(self.momentum)
            xp.divide(g, s, out=s)
            buf += s                                  # b ← μ·b + g/a
            xp.multiply(buf, dt(-self.lr), out=s)     # update −η·b
        else:
            g *= dt(-self.lr)
            xp.divide(g, s, out=s)                    # update (−η·g)/a, as torch.addcdiv


RMSprop = RMSProp
