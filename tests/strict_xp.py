"""A strict array module for CPU tests of the backend seam: device arrays that are not NumPy's.

``STRICT`` is a stand-in for ``cupy`` built on NumPy: its arrays are :class:`StrictArray`
objects (a wrapper, *not* an ndarray subclass), so a layer that calls NumPy directly on array
data, or mixes a NumPy array into device work, is caught on a machine without a GPU:

    kind            what happened                                                  on real CuPy
    host-mix        a numpy.ndarray met a device array in an op (a + h, xp.f(d, h))  TypeError
    to-numpy        a device array was converted to NumPy (np.asarray(d), h[...] = d) TypeError
    numpy-call      np.<f>(device array) called directly instead of xp.<f>           works only if
                                                                                   CuPy dispatches f
    host-assign     a numpy.ndarray was written into a device array (d[...] = h)     a hidden H→D copy
    host-out        a layer returned, or stored as parameter/grad/buffer, a numpy array  host data leaks

Each violation names the innermost frame under ``pygan/`` (file:line, function) and, for a
NumPy array, where that array was created when a pygan module made it with ``np.<f>`` (the
``np`` global of every pygan module is traced while a :func:`strict_backend` is active).

Explicit transfers are allowed, as on CuPy: ``xp.asarray/array/ascontiguousarray(host)``
(host → device) and ``device.get()`` (device → host).  ``float(d)``, ``int(d)``, ``bool(d)``
on 0-d arrays are allowed (a sync on CuPy).  Reductions and scalar indexing return 0-d device
arrays, like CuPy's.

Usage::

    with strict_backend() as rec:      # pygan.get_backend() is a StrictBackend until exit
        y = layer(to_device(x))
    rec.raise_if_any()                 # or inspect rec.violations
"""
from __future__ import annotations

import contextlib
import os
import sys
import types
import weakref

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

import pygan
import pygan.backend as _backend_mod
from pygan.backend.cupy_backend import XpBackend

_PYGAN_DIR = os.path.dirname(os.path.abspath(pygan.__file__)) + os.sep
_HERE = os.path.abspath(__file__)
_MIXINS = os.path.abspath(sys.modules[NDArrayOperatorsMixin.__module__].__file__)
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__)) + os.sep

# transfer functions: the only ones that accept host arrays (host → device)
_TRANSFER = {"asarray", "array", "asanyarray", "ascontiguousarray"}


# --- violations -------------------------------------------------------------------------------

class StrictLeak(AssertionError):
    """Raised by :meth:`Recorder.raise_if_any` (or at once when ``raise_at_once``)."""


class Violation:
    __slots__ = ("kind", "site", "detail", "created")

    def __init__(self, kind, site, detail, created=None):
        self.kind, self.site, self.detail, self.created = kind, site, detail, created

    def key(self):
        return self.kind, self.site, self.detail

    def __str__(self):
        s = f"{self.site}: {self.kind}: {self.detail}"
        return s + (f" (the NumPy array was created by {self.created})" if self.created else "")


def _pygan_site():
    """'pygan/nn/foo.py:12 in forward': the innermost stack frame outside this file and NumPy
    (the code that did it: a pygan module, or a test's own layer)."""
    f = sys._getframe(1)
    while f is not None:
        fn = os.path.abspath(f.f_code.co_filename)
        if fn != _HERE and not fn.startswith(_NUMPY_DIR):
            if fn.startswith(_PYGAN_DIR):
                fn = "pygan/" + fn[len(_PYGAN_DIR):].replace(os.sep, "/")
            else:
                fn = os.path.basename(fn)
            return f"{fn}:{f.f_lineno} in {f.f_code.co_name}"
        f = f.f_back
    return "(unknown)"


class Recorder:
    """Collects violations (deduplicated by kind, site and detail) while a strict backend is on."""

    def __init__(self, raise_at_once=False):
        self.violations: list[Violation] = []
        self._seen = set()
        self.raise_at_once = raise_at_once
        self.used_names: set[str] = set()     # xp.<name> used, for checking CuPy has them
        self._created = {}                     # id(host array) -> (weakref, site)

    def add(self, kind, detail, arrays=()):
        created = None
        for a in arrays:
            created = self.creation_site(a)
            if created:
                break
        v = Violation(kind, _pygan_site(), detail, created)
        if v.key() not in self._seen:
            self._seen.add(v.key())
            self.violations.append(v)
        if self.raise_at_once:
            raise StrictLeak(str(v))

    def note_created(self, arr, site):
        try:
            self._created[id(arr)] = (weakref.ref(arr), site)
        except TypeError:
            pass

    def creation_site(self, a):
        while isinstance(a, np.ndarray):
            entry = self._created.get(id(a))
            if entry is not None and entry[0]() is a:
                return entry[1]
            a = a.base
        return None

    def report(self) -> str:
        return "\n".join(f"  {v}" for v in self.violations)

    def raise_if_any(self, what=""):
        if self.violations:
            raise StrictLeak(f"{what}: {len(self.violations)} array-module violation(s):\n{self.report()}")


_recorder: Recorder | None = None


def _rec() -> Recorder:
    global _recorder
    if _recorder is None:
        _recorder = Recorder()
    return _recorder


# --- wrapping ---------------------------------------------------------------------------------

def _is_host(a):
    return isinstance(a, np.ndarray)


def _wrap(r):
    if isinstance(r, np.ndarray):
        return StrictArray(r)
    if isinstance(r, np.generic):                 # CuPy returns 0-d device arrays, not scalars
        return StrictArray(np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(e) for e in r)
    if isinstance(r, list):
        return [_wrap(e) for e in r]
    return r


def _unwrap(a, hosts=None):
    """Replace StrictArrays by their data (in lists/tuples/dicts too); collect host arrays."""
    if isinstance(a, StrictArray):
        return a._a
    if isinstance(a, np.ndarray):
        if hosts is not None:
            hosts.append(a)
        return a
    if isinstance(a, (list, tuple)):
        t = [_unwrap(e, hosts) for e in a]
        return t if isinstance(a, list) else tuple(t)
    if isinstance(a, dict):
        return {k: _unwrap(v, hosts) for k, v in a.items()}
    return a


class StrictArray(NDArrayOperatorsMixin):
    """A 'device' array: NumPy data behind a type NumPy will not convert implicitly."""

    __slots__ = ("_a", "__weakref__")
    __array_priority__ = 1000
    __hash__ = None

    def __init__(self, a):
        self._a = a

    # host transfer, as CuPy's ndarray.get()
    def get(self, stream=None, order="C", out=None):
        a = self._a.copy(order=order)
        if out is not None:
            out[...] = a
            return out
        return a

    # NumPy's implicit conversion: refused by CuPy
    def __array__(self, dtype=None, copy=None):
        _rec().add("to-numpy", f"implicit conversion of a device array {self._a.shape} {self._a.dtype} to "
                                f"NumPy (np.asarray/np.array, or a NumPy function that is not dispatched); "
                                f"use xp.<f>, or .get() for an explicit copy to the host")
        return self._a if dtype is None else self._a.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        hosts = []
        args = _unwrap(inputs, hosts)
        kw = _unwrap(kwargs, hosts)
        name = ufunc.__name__ + ("" if method == "__call__" else "." + method)
        caller = os.path.abspath(sys._getframe(1).f_code.co_filename)
        # operators (the mixin, or a NumPy scalar's operator, e.g. np.float32(2) * d) are fine
        operator = caller in (_MIXINS, _HERE) or any(isinstance(e, np.generic) for e in inputs)
        if not operator and not hosts:
            _rec().add("numpy-call", f"np.{name}(...) called directly on a device array; use xp.{name}")
        if hosts:
            _rec().add("host-mix", f"numpy.ndarray {hosts[0].shape} {hosts[0].dtype} used with a device array "
                                   f"in np.{name}", hosts)
        out = kwargs.get("out")
        r = getattr(ufunc, method)(*args, **kw)
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return _wrap(r)

    def __array_function__(self, func, types_, args, kwargs):
        hosts = []
        a = _unwrap(args, hosts)
        kw = _unwrap(kwargs, hosts)
        name = getattr(func, "__name__", str(func))
        _rec().add("numpy-call", f"np.{name}(...) called directly on a device array; use xp.{name}")
        if hosts:
            _rec().add("host-mix", f"numpy.ndarray {hosts[0].shape} {hosts[0].dtype} used with a device array "
                                   f"in np.{name}", hosts)
        out = kwargs.get("out")
        r = func(*a, **kw)
        return out if out is not None else _wrap(r)

    # --- indexing ---
    def __getitem__(self, key):
        hosts = []
        k = _unwrap(key, hosts)
        if hosts:
            _rec().add("host-mix", f"numpy.ndarray {hosts[0].shape} used as an index into a device array", hosts)
        return _wrap(self._a[k])

    def __setitem__(self, key, value):
        hosts = []
        k = _unwrap(key, hosts)
        if hosts:
            _rec().add("host-mix", f"numpy.ndarray {hosts[0].shape} used as an index into a device array", hosts)
        if _is_host(value):
            _rec().add("host-assign", f"numpy.ndarray {value.shape} {value.dtype} written into a device array "
                                      f"(a hidden host→device copy on CuPy); build it with xp", [value])
        self._a[k] = _unwrap(value)

    # --- Python protocol ---
    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(e) for e in self._a)

    def __float__(self):
        return float(self._a)

    def __int__(self):
        return int(self._a)

    def __index__(self):
        return self._a.__index__()

    def __bool__(self):
        return bool(self._a)

    def __complex__(self):
        return complex(self._a)

    def __repr__(self):
        return f"StrictArray({self._a!r})"

    def __copy__(self):
        return StrictArray(self._a.copy())

    def __deepcopy__(self, memo):
        return StrictArray(self._a.copy())

    def __reduce__(self):
        return StrictArray, (self._a,)

    # --- attributes: delegated, arrays wrapped; NumPy-only interfaces hidden (CuPy lacks them) ---
    _HIDDEN = {"__array_interface__", "__array_struct__", "ctypes", "tofile", "data"}

    def __getattr__(self, name):
        if name in StrictArray._HIDDEN or name.startswith("__"):
            raise AttributeError(f"StrictArray has no attribute {name!r} (a device array has none)")
        v = getattr(self._a, name)
        if callable(v):
            def method(*args, **kwargs):
                hosts = []
                a = _unwrap(args, hosts)
                kw = _unwrap(kwargs, hosts)
                if hosts:
                    _rec().add("host-mix", f"numpy.ndarray {hosts[0].shape} passed to device array .{name}()", hosts)
                r = v(*a, **kw)
                return self if r is self._a else _wrap(r)
            return method
        return _wrap(v)


# --- the array module -------------------------------------------------------------------------

class _Ufunc:
    """xp.<ufunc>: call and the methods reduce/accumulate/reduceat/outer/at on device arrays."""

    def __init__(self, uf, ns):
        self._uf, self._ns = uf, ns

    def __call__(self, *args, **kwargs):
        return self._ns._call(self._uf.__name__, self._uf, args, kwargs)

    def __getattr__(self, name):
        v = getattr(self._uf, name)
        if callable(v) and name in ("reduce", "accumulate", "reduceat", "outer", "at"):
            return lambda *a, **k: self._ns._call(f"{self._uf.__name__}.{name}", v, a, k)
        return v


class StrictNamespace(types.ModuleType):
    """``xp``: NumPy's functions on :class:`StrictArray` (host arrays refused except by the
    transfer functions); types, dtypes and constants are NumPy's own."""

    def __init__(self, mod=np, name="strict_numpy"):
        super().__init__(name)
        self._np = mod
        self._sub = {}

    ndarray = StrictArray

    def _call(self, name, fn, args, kwargs):
        _rec().used_names.add(f"{self.__name__}.{name}")
        hosts = []
        a = _unwrap(args, hosts)
        kw = _unwrap(kwargs, hosts)
        if hosts and name not in _TRANSFER:
            _rec().add("host-mix", f"numpy.ndarray {hosts[0].shape} {hosts[0].dtype} passed to xp.{name} "
                                   f"(CuPy refuses host arrays here)", hosts)
        out = kwargs.get("out")
        r = fn(*a, **kw)
        if out is not None and not isinstance(out, tuple):
            return out
        return _wrap(r)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        v = getattr(self._np, name)
        if isinstance(v, types.ModuleType):
            sub = self._sub.get(name)
            if sub is None:
                sub = self._sub[name] = StrictNamespace(v, f"{self.__name__}.{name}")
            return sub
        if isinstance(v, np.ufunc):
            return _Ufunc(v, self)
        if isinstance(v, type) or not callable(v):
            return v                                   # dtypes, scalar types, constants
        return lambda *a, **k: self._call(name, v, a, k)


STRICT = StrictNamespace()


class StrictBackend(XpBackend):
    """pygan's CuPy-backend code (matmul, convolution) over the strict array module."""

    name = "strict"

    def __init__(self):
        super().__init__(STRICT)


# --- tracing the np global of pygan's modules (creation sites of host arrays) ---------------------

class _TracedNumpy(types.ModuleType):
    """Stands in for ``np`` inside pygan modules: records where NumPy arrays are made."""

    def __init__(self, mod, site_of):
        super().__init__(mod.__name__)
        self._m = mod
        self._site_of = site_of

    def __getattr__(self, name):
        v = getattr(self._m, name)
        if isinstance(v, type) or not callable(v) or isinstance(v, types.ModuleType):
            return v
        if isinstance(v, np.ufunc):
            return v           # ufuncs keep their methods; their results are caught when mixed
        site_of = self._site_of

        def traced(*a, **k):
            r = v(*a, **k)
            if isinstance(r, np.ndarray):
                _rec().note_created(r, f"np.{name} at {site_of()}")
            return r
        return traced


@contextlib.contextmanager
def _traced_numpy():
    patched = []
    proxy = _TracedNumpy(np, _pygan_site)
    for modname, mod in list(sys.modules.items()):
        if modname.startswith("pygan") and getattr(mod, "np", None) is np:
            mod.np = proxy
            patched.append(mod)
    try:
        yield
    finally:
        for mod in patched:
            mod.np = np


@contextlib.contextmanager
def strict_backend(raise_at_once=False):
    """Make pygan's backend a :class:`StrictBackend` (and trace ``np`` in pygan's modules) for
    the block; yields the :class:`Recorder` of violations.  The previous backend is restored."""
    global _recorder
    prev_rec, prev_backend = _recorder, _backend_mod._current
    rec = _recorder = Recorder(raise_at_once)
    _backend_mod._current = StrictBackend()
    try:
        with _traced_numpy():
            yield rec
    finally:
        _backend_mod._current = prev_backend
        _recorder = prev_rec


def to_device(a):
    """Host → device (explicit), like cupy.asarray; dtype kept."""
    return StrictArray(np.array(a, copy=True))


def to_host(a):
    """Device → host (explicit), like cupy.asnumpy; anything else through np.asarray."""
    if isinstance(a, StrictArray):
        return a.get()
    return np.asarray(a)


def check_device(obj, what):
    """Record a 'host-out' violation for every numpy.ndarray in obj (arrays, tuples, lists, dicts)."""
    if isinstance(obj, np.ndarray):
        _rec().add("host-out", f"{what} is a numpy.ndarray {obj.shape} {obj.dtype}, not a device array", [obj])
    elif isinstance(obj, (list, tuple)):
        for i, e in enumerate(obj):
            check_device(e, f"{what}[{i}]")
    elif isinstance(obj, dict):
        for k, e in obj.items():
            check_device(e, f"{what}[{k!r}]")


def check_module_state(module, what):
    """Every parameter's data and grad and every buffer of module must be device arrays."""
    for name, p in module.named_parameters():
        check_device(p.data, f"{what}: parameter {name}.data")
        check_device(p.grad, f"{what}: parameter {name}.grad")
    for name, b in module.named_buffers():
        check_device(b, f"{what}: buffer {name}")


def instrument(module):
    """Wrap forward/backward/jvp/backward_jvp of module and every submodule (instance
    attributes) so that each call's outputs, and the module's state after it, are checked."""
    for _, m in module.named_modules():
        for meth in ("forward", "backward", "jvp", "backward_jvp"):
            orig = getattr(m, meth)

            def wrapped(*args, __orig=orig, __m=m, __meth=meth, **kwargs):
                r = __orig(*args, **kwargs)
                label = f"{__m.describe()}.{__meth}"
                check_device(r, f"{label} result")
                check_module_state(__m, f"after {label}")
                return r
            object.__setattr__(m, meth, wrapped)
    return module
