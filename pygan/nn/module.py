"""Module and Parameter: the containers every layer is built on.

The contract (see the README, "Which forward does backward use?" in its first section):

* ``y = m(x)`` runs ``forward`` and caches what ``backward`` needs. The cache belongs to the
  **most recent** forward: calling ``m(a); m(b); m.backward(g)`` differentiates at ``b``.
* ``gx = m.backward(gy)`` returns dL/dx for the upstream gradient gy = dL/dy and **adds**
  dL/dθ into every ``Parameter.grad`` (gradients accumulate, as in PyTorch, until
  ``zero_grad``).
* Names, registration order, ``state_dict`` keys and weight layouts are PyTorch's, so a state
  dict moves between the two.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Iterator

import numpy as np

from ..backend import get_backend, to_host as _to_host


class Parameter:
    """A trainable array ``data`` with its accumulated gradient ``grad`` (same shape/dtype)."""

    __slots__ = ("data", "grad")

    def __init__(self, data):
        xp = get_backend().xp
        self.data = xp.ascontiguousarray(data)
        self.grad = xp.zeros_like(self.data)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def zero_grad(self):
        self.grad[...] = 0

    def __repr__(self):
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype})"


class Module:
    """Base class: registers Parameters, buffers and child modules in assignment order."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration ------------------------------------------------------------------
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                                 f"before assigning {name!r}")
        if (not isinstance(value, (Parameter, Module)) and name not in d["_parameters"]
                and name not in d["_buffers"] and name not in d["_modules"]):
            object.__setattr__(self, name, value)  # a cache or setting (every forward): fast path
            return
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            # `self.running_mean *= 0.9` re-assigns: keep it a registered buffer, as torch does
            self._buffers[name] = value
            object.__setattr__(self, name, value)
            return
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, array):
        """A non-trainable array saved in ``state_dict`` (e.g. BatchNorm's running_mean)."""
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def _set_buffer(self, name: str, array):
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    # --- forward / backward --------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    def backward_input(self, gy):
        """Like ``backward`` but only for ∂L/∂x: parameter grads are left untouched (D's input
        gradient in a generator step or a gradient penalty, where D's own gradient is not
        wanted). Layers whose parameter gradient costs a GEMM skip it; this default computes
        it and restores the grads."""
        params = self.parameters()
        saved = [p.grad.copy() for p in params]
        gx = self.backward(gy)
        for p, g in zip(params, saved):
            p.grad[...] = g
        return gx

    def backward_params(self, gy):
        """Like ``backward`` but only for the parameter gradients: the input gradient is not
        needed (the first layer of a generator, whose input z is not trained). Layers whose
        input gradient costs a GEMM (Linear, convolutions) skip it; returns None."""
        self.backward(gy)

    # --- tangent mode, for penalties on ∇ₓD (docs/gradients.md#second-order) --------------------
    def jvp(self, dx):
        """Forward-mode derivative at the cached forward input: ẏ = (∂y/∂x) ẋ.

        Caches ẋ for :meth:`backward_jvp`. Layers that may sit in a critic under a gradient
        penalty implement it; the others raise, naming themselves.
        """
        raise NotImplementedError(f"{self.describe()} does not support gradient penalties "
                                  f"(no jvp/backward_jvp: its second derivative is not implemented)")

    def backward_jvp(self, gy, gdy):
        """Adjoint of (θ, x, ẋ) ↦ (y, ẏ) at the cached point.

        Given gy = ∂L/∂y (or None for zero) and gdy = ∂L/∂ẏ, returns (∂L/∂x or None, ∂L/∂ẋ) and
        adds ∂L/∂θ into the parameters' grads. With L = Σ ẏ this is ∂/∂θ of the directional
        derivative ⟨∇ₓD, ẋ⟩, which is what the gradient penalty's θ-gradient needs.
        """
        raise NotImplementedError(f"{self.describe()} does not support gradient penalties "
                                  f"(no jvp/backward_jvp: its second derivative is not implemented)")

    def backward_jvp_params(self, gy, gdy):
        """``backward_jvp`` for a caller that already has ∂L/∂ẋ: adds ∂L/∂θ, returns ∂L/∂x (or
        None) only. A penalty's tangent adjoint ∂L/∂ẋ equals the input-gradient pass's signal
        at every layer (same linear maps, same top), so ``Sequential`` passes those kept signals
        and layers whose ∂L/∂ẋ costs a product (Linear, convolutions, activations) skip it.
        This default computes it and drops it."""
        return self.backward_jvp(gy, gdy)[0]

    def _need_cache(self, cache):
        """Return ``cache`` or raise if ``backward`` comes before any ``forward``."""
        if cache is None:
            raise RuntimeError(f"{self.describe()}: backward() called before forward() "
                               f"(backward uses the cache of the most recent forward)")
        return cache

    def describe(self) -> str:
        """Short name used in error messages, e.g. ``Conv2d(3→64)``."""
        return type(self).__name__

    # --- traversal -----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def children(self):
        return list(self._modules.values())

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Dotted names identical to PyTorch's ("0.weight", "2.bias")."""
        for mod_prefix, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), p

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = ""):
        for mod_prefix, mod in self.named_modules(prefix):
            for name, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), b

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    # --- modes and dtypes --------------------------------------------------------------------
    def train(self, mode: bool = True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    @contextlib.contextmanager
    def eval_mode(self):
        """``with m.eval_mode(): …`` — every submodule in eval mode inside the block (BatchNorm
        uses its running statistics, Dropout passes through), each one's own mode restored after."""
        with eval_mode(self):
            yield self

    def to(self, dtype):
        """Cast every parameter (and its grad) and every floating buffer to ``dtype``, in place."""
        dtype = np.dtype(dtype)
        for m in self.modules():
            for p in m._parameters.values():
                p.data = p.data.astype(dtype, copy=False)
                p.grad = p.grad.astype(dtype, copy=False)
            for name, b in list(m._buffers.items()):
                if b is not None and np.issubdtype(b.dtype, np.floating):
                    m._set_buffer(name, b.astype(dtype, copy=False))
            m._on_dtype_change(dtype)
        return self

    def _on_dtype_change(self, dtype):
        """Hook for layers holding other dtype-dependent state."""

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    @property
    def dtype(self):
        """The dtype of the first parameter (float32 unless cast)."""
        for p in self._parameters.values():  # a layer's own parameters: no traversal (hot path)
            if p is not None:
                return p.data.dtype
        for p in self.parameters():
            return p.data.dtype
        return None

    # --- state dict ----------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters then buffers of each module, children after, with PyTorch's key names.

        Arrays are copies (on the host), so later training does not change a saved dict.
        """
        out = OrderedDict()
        for mod_prefix, mod in self.named_modules():
            pre = f"{mod_prefix}." if mod_prefix else ""
            for name, p in mod._parameters.items():
                out[pre + name] = _to_host(p.data).copy()
            for name, b in mod._buffers.items():
                if b is not None:
                    out[pre + name] = _to_host(b).copy()
        return out

    def load_state_dict(self, state, strict: bool = True):
        """Copy arrays from ``state`` (torch tensors or arrays) into parameters and buffers.

        Shapes must match exactly; with ``strict``, missing and unexpected keys are errors.
        The module keeps its own dtype (values are cast to it).
        """
        state = {k: _as_numpy(v) for k, v in state.items()}
        own = {}
        for mod_prefix, mod in self.named_modules():
            pre = f"{mod_prefix}." if mod_prefix else ""
            for name in mod._parameters:
                own[pre + name] = (mod, name, "param")
            for name, b in mod._buffers.items():
                if b is not None:
                    own[pre + name] = (mod, name, "buffer")
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        xp = get_backend().xp
        for key, (mod, name, kind) in own.items():
            if key not in state:
                continue
            value = state[key]
            current = mod._parameters[name].data if kind == "param" else mod._buffers[name]
            if tuple(value.shape) != tuple(current.shape):
                raise ValueError(f"load_state_dict: {key!r} has shape {tuple(value.shape)} in the "
                                 f"state dict but {tuple(current.shape)} in the module")
            value = xp.array(value, dtype=current.dtype, order="C", copy=True)  # keeps 0-d shapes
            if kind == "param":
                mod._parameters[name].data = value
            else:
                mod._set_buffer(name, value)
        return {"missing_keys": missing, "unexpected_keys": unexpected}

    # --- printing ------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, child in self._modules.items():
                child_repr = repr(child).replace("\n", "\n  ")
                lines.append(f"\n  ({name}): {child_repr}")
            lines.append("\n")
        return "".join(lines) + ")"


def _as_numpy(v):
    if hasattr(v, "detach"):  # a torch tensor handed over from PyTorch code
        return v.detach().cpu().numpy()
    return _to_host(v)


def check_input(layer: Module, x, ndim, channels_axis=None, channels=None, what="input"):
    """Validate an input array for ``layer``; errors name the layer and both shapes.

    ``ndim`` is an int or a tuple of accepted ranks; ``channels`` is the size required along
    ``channels_axis``. The dtype must be floating and equal to the layer's parameters' dtype.
    """
    xp = get_backend().xp
    if not isinstance(x, xp.ndarray):
        raise TypeError(f"{layer.describe()}: expected an array ({xp.__name__}.ndarray) as {what}, "
                        f"got {type(x).__name__}")
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if x.ndim not in ranks:
        raise ValueError(f"{layer.describe()}: expected {what} of rank {' or '.join(map(str, ranks))}"
                         f"{' ' + layer._shape_hint() if hasattr(layer, '_shape_hint') else ''}, "
                         f"got shape {tuple(x.shape)}")
    if channels is not None and x.shape[channels_axis] != channels:
        hint = layer._shape_hint() if hasattr(layer, "_shape_hint") else f"size {channels} on axis {channels_axis}"
        raise ValueError(f"{layer.describe()}: expected {what} {hint}, got {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{layer.describe()}: expected a floating {what}, got dtype {x.dtype}")
    dtype = layer.dtype
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{layer.describe()}: {what} dtype {x.dtype} does not match the layer's "
                        f"parameters ({dtype}); cast the input or call .to({dtype})")
    return x


@contextlib.contextmanager
def eval_mode(*modules):
    """``with eval_mode(G, D): …`` — every given module (and each submodule) in eval mode inside
    the block; each one's previous mode is restored on exit, also after an exception."""
    saved = [(m, m.training) for mod in modules for m in mod.modules()]
    try:
        for mod in modules:
            mod.eval()
        yield
    finally:
        for m, mode in saved:
            object.__setattr__(m, "training", mode)
