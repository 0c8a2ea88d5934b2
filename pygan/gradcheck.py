"""Finite-difference checks of every hand-derived gradient in pygan.

All checks run in float64 with central differences,

    ∂f/∂θᵢ ≈ (f(θ + εeᵢ) − f(θ − εeᵢ)) / 2ε,   ε = 1e-6,

whose error is O(ε²·f''') + O(u/ε) ≈ 1e-10 relative for smooth f (u = 2.2e-16). A gradient
passes when its normwise relative error

    rel = max_i |aᵢ − nᵢ| / max(max_i |aᵢ|, max_i |nᵢ|, 1e-12)

is at most ``rtol`` (default 1e-6). Modules are checked through the scalar L = Σ y ⊙ r with a
fixed random r, so ``backward(r)`` is exactly ∂L/∂y. Large tensors are checked on a random
subset of elements plus one random direction d over the whole tensor (two forwards:
(L(θ+εd) − L(θ−εd))/2ε against ⟨∂L/∂θ, d⟩), the trick Chainer uses for big layers.

Every check returns a :class:`Report` that prints as a table and has ``.ok``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

EPS = 1e-6
RTOL = 1e-6


@dataclass
class Entry:
    """One checked gradient: which array, how many elements, and the errors found."""

    name: str
    n_checked: int
    max_abs: float
    max_rel: float
    rtol: float

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_rel) and self.max_rel <= self.rtol)


@dataclass
class Report:
    """A table of :class:`Entry` rows; ``ok`` when every row passes."""

    title: str
    entries: list[Entry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries) and bool(self.entries)

    def add(self, entry: Entry):
        self.entries.append(entry)

    def extend(self, other: "Report", prefix: str = ""):
        for e in other.entries:
            self.entries.append(Entry(prefix + e.name, e.n_checked, e.max_abs, e.max_rel, e.rtol))

    def __str__(self):
        w = max([len(e.name) for e in self.entries] + [9])
        lines = [self.title, f"  {'gradient':<{w}}  {'checked':>7}  {'max abs err':>11}  {'max rel err':>11}  ok"]
        for e in self.entries:
            lines.append(f"  {e.name:<{w}}  {e.n_checked:>7}  {e.max_abs:>11.2e}  {e.max_rel:>11.2e}  "
                         f"{'yes' if e.ok else 'NO'}")
        if not self.entries:
            lines.append("  (nothing checked)")
        return "\n".join(lines)

    def raise_if_failed(self):
        if not self.ok:
            raise AssertionError(f"gradient check failed:\n{self}")
        return self


def compare(name: str, analytic, numeric, rtol: float = RTOL) -> Entry:
    """Normwise relative error between two arrays of the same shape."""
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    if a.shape != n.shape:
        raise ValueError(f"{name}: analytic gradient has {a.size} elements, numeric {n.size}")
    if a.size == 0:
        return Entry(name, 0, 0.0, 0.0, rtol)
    diff = np.abs(a - n)
    max_abs = float(diff.max())
    scale = max(float(np.abs(a).max()), float(np.abs(n).max()), 1e-12)
    return Entry(name, a.size, max_abs, max_abs / scale, rtol)


# --- the generic engine: numeric gradient of a scalar function of arrays held in place -----

def numeric_gradient(f, array, indices=None, eps: float = EPS):
    """Central differences of the scalar ``f()`` w.r.t. ``array`` (perturbed in place).

    ``indices`` (flat) limits the elements checked; returns the gradient at those elements.
    """
    flat = array.reshape(-1)
    if flat.base is None and not np.shares_memory(flat, array):
        raise ValueError("numeric_gradient needs a contiguous array it can perturb in place")
    idx = np.arange(flat.size) if indices is None else np.asarray(indices)
    out = np.empty(idx.size)
    for k, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        out[k] = (fp - fm) / (2 * eps)
    return out


def directional_derivative(f, array, direction, eps: float = EPS):
    """(f(a + εd) − f(a − εd)) / 2ε, perturbing ``array`` in place and restoring it."""
    old = array.copy()
    array += eps * direction
    fp = f()
    array[...] = old - eps * direction
    fm = f()
    array[...] = old
    return (fp - fm) / (2 * eps)


def check_array(name, f, array, analytic, rng, max_elements=256, eps=EPS, rtol=RTOL) -> list[Entry]:
    """Compare ``analytic`` (∂f/∂array) with finite differences: element-wise on up to
    ``max_elements`` random elements, plus one random direction when the array is larger."""
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != array.shape:
        raise ValueError(f"{name}: analytic gradient shape {analytic.shape} != array shape {array.shape}")
    entries = []
    size = array.size
    if max_elements is None or size <= max_elements:
        idx = None
        ref = analytic.ravel()
    else:
        idx = np.sort(rng.choice(size, size=max_elements, replace=False))
        ref = analytic.ravel()[idx]
    num = numeric_gradient(f, array, idx, eps)
    entries.append(compare(name, ref, num, rtol))
    if idx is not None:
        d = rng.standard_normal(array.shape)
        num_d = directional_derivative(f, array, d, eps)
        entries.append(compare(name + " (random direction)", [float(np.sum(analytic * d))], [num_d], rtol))
    return entries


# --- randomness inside modules (Dropout masks) must repeat between perturbed forwards -------

def _generator_states(module):
    states = []
    for m in module.modules():
        for k, v in vars(m).items():
            if isinstance(v, np.random.Generator):
                states.append((v, copy.deepcopy(v.bit_generator.state)))
    return states


def _restore(states):
    for gen, st in states:
        gen.bit_generator.state = copy.deepcopy(st)


# --- modules -------------------------------------------------------------------------------

def check_module(module, x, *, seed: int = 0, eps: float = EPS, rtol: float = RTOL,
                 max_elements: int | None = 256, check_input: bool = True, copy_module: bool = True) -> Report:
    """Check ``module.backward`` against finite differences in float64.

    Checks ∂L/∂x (if ``check_input``) and ∂L/∂θ for every parameter, with L = Σ module(x) ⊙ r.
    The module is deep-copied and cast to float64 (unless ``copy_module=False``); its mode
    (train/eval) is kept, so BatchNorm is checked in whichever mode it is in.
    """
    rng = np.random.default_rng(seed)
    m = copy.deepcopy(module) if copy_module else module
    m.double()
    x = np.array(x, dtype=np.float64)
    states = _generator_states(m)

    _restore(states)
    y = m(x)
    r = rng.standard_normal(np.shape(y))
    m.zero_grad()
    gx = m.backward(r)
    grads = {name: p.grad.copy() for name, p in m.named_parameters()}

    def loss():
        _restore(states)
        return float(np.sum(m(x) * r))

    report = Report(f"check_module: {m.describe() if hasattr(m, 'describe') else type(m).__name__}, "
                    f"input {tuple(x.shape)}")
    if check_input and np.issubdtype(x.dtype, np.floating):
        for e in check_array("input", loss, x, gx, rng, max_elements, eps, rtol):
            report.add(e)
    for name, p in m.named_parameters():
        for e in check_array(name, loss, p.data, grads[name], rng, max_elements, eps, rtol):
            report.add(e)
    return report
