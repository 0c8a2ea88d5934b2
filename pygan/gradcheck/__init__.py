"""Finite-difference checks of every hand-derived gradient in pygan.

All checks run in float64 with central differences,

    ∂f/∂θᵢ ≈ (f(θ + εeᵢ) − f(θ − εeᵢ)) / 2ε,   ε = 1e-6,

whose error is O(ε²·f''') + O(u/ε) ≈ 1e-10 relative for smooth f (u = 2.2e-16). A gradient
passes when its normwise relative error

    rel = max_i |aᵢ − nᵢ| / max(max_i |aᵢ|, max_i |nᵢ|, 1e-12)

is at most ``rtol`` (default 1e-6), or when every difference is below the rounding floor of the
differences themselves, atol = 10·u·max|f|/ε (a gradient that is exactly zero — the last bias
under a difference of two D values, say — can only be checked to that floor). Modules are checked through the scalar L = Σ y ⊙ r with a
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
    atol: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_abs) and (self.max_rel <= self.rtol or self.max_abs <= self.atol))

    @property
    def at_floor(self) -> bool:
        """Passed only because its absolute error is below the rounding floor ``atol`` (the
        gradient is ~0, so its relative error says nothing)."""
        return self.ok and self.max_rel > self.rtol


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
            self.entries.append(Entry(prefix + e.name, e.n_checked, e.max_abs, e.max_rel, e.rtol, e.atol))

    def __str__(self):
        w = max([len(e.name) for e in self.entries] + [9])
        lines = [self.title, f"  {'gradient':<{w}}  {'checked':>7}  {'max abs err':>11}  {'max rel err':>11}  ok"]
        for e in self.entries:
            lines.append(f"  {e.name:<{w}}  {e.n_checked:>7}  {e.max_abs:>11.2e}  {e.max_rel:>11.2e}  "
                         f"{('yes*' if e.at_floor else 'yes') if e.ok else 'NO'}")
        if not self.entries:
            lines.append("  (nothing checked)")
        if any(e.at_floor for e in self.entries):
            lines.append("  * a ~0 gradient: its absolute error is below the rounding floor 10·u·max|f|/ε")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: the worst relative error, and how many rows passed at the rounding floor."""
        worst = max((e.max_rel for e in self.entries if not e.at_floor), default=0.0)
        floor = sum(e.at_floor for e in self.entries)
        return f"worst rel err {worst:.1e}" + (f" ({floor} ~0 gradient{'s' * (floor > 1)} at the rounding floor)"
                                              if floor else "")

    def raise_if_failed(self):
        if not self.ok:
            raise AssertionError(f"gradient check failed:\n{self}")
        return self


def compare(name: str, analytic, numeric, rtol: float = RTOL, atol: float = 0.0) -> Entry:
    """Normwise relative error between two arrays of the same shape."""
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    if a.shape != n.shape:
        raise ValueError(f"{name}: analytic gradient has {a.size} elements, numeric {n.size}")
    if a.size == 0:
        return Entry(name, 0, 0.0, 0.0, rtol, atol)
    diff = np.abs(a - n)
    max_abs = float(diff.max())
    scale = max(float(np.abs(a).max()), float(np.abs(n).max()), 1e-12)
    return Entry(name, a.size, max_abs, max_abs / scale, rtol, atol)


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


def _rounding_floor(f_max: float, eps: float) -> float:
    """Below this, a central difference of f is rounding noise: 10·u·max|f|/ε."""
    return 10 * np.finfo(np.float64).eps * f_max / eps


def check_array(name, f, array, analytic, rng, max_elements=256, eps=EPS, rtol=RTOL) -> list[Entry]:
    """Compare ``analytic`` (∂f/∂array) with finite differences: element-wise on up to
    ``max_elements`` random elements, plus one random direction when the array is larger."""
    analytic = np.asarray(analytic, dtype=np.float64)
    f_max = [0.0]

    def f_tracked():
        v = f()
        f_max[0] = max(f_max[0], abs(float(v)))
        return v

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
    num = numeric_gradient(f_tracked, array, idx, eps)
    entries.append(compare(name, ref, num, rtol, _rounding_floor(f_max[0], eps)))
    if idx is not None:
        d = rng.standard_normal(array.shape)
        num_d = directional_derivative(f_tracked, array, d, eps)
        entries.append(compare(name + " (random direction)", [float(np.sum(analytic * d))], [num_d], rtol,
                               _rounding_floor(f_max[0], eps) * float(np.abs(d).max())))
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
    x = np.array(x, dtype=np.float64) if np.issubdtype(np.asarray(x).dtype, np.floating) else np.array(x)
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


# --- losses --------------------------------------------------------------------------------

def _off_kinks(x, kinks, margin=1e-3):
    """Move logits within ``margin`` of a kink (hinge: ±1) away from it: no derivative there."""
    for k in kinks:
        near = np.abs(x - k) < margin
        x[near] = k + 10 * margin
    return x


def check_loss(loss, real_logits, fake_logits, *, seed: int = 0, eps: float = EPS, rtol: float = RTOL,
               max_elements: int | None = 256) -> Report:
    """Check every gradient a GAN objective returns, in float64.

    ``d_loss`` w.r.t. the real and the fake logits, ``g_loss`` w.r.t. the fake logits, and the
    halves ``d_real``/``d_fake``; also that each gradient has its logits' shape, that the
    halves' gradients are exactly ``d_loss``'s, and that ``d_loss`` is the sum of its halves.
    Logits at a kink of the loss (``loss.kinks``) are moved off it first.
    """
    rng = np.random.default_rng(seed)
    kinks = getattr(loss, "kinks", ())
    real = _off_kinks(np.array(real_logits, dtype=np.float64), kinks)
    fake = _off_kinks(np.array(fake_logits, dtype=np.float64), kinks)
    title = loss.describe() if hasattr(loss, "describe") else getattr(loss, "name", type(loss).__name__)
    report = Report(f"check_loss: {title}, logits {tuple(real.shape)} / {tuple(fake.shape)}")
    value, g_real, g_fake = loss.d_loss(real, fake)
    _, g_gen = loss.g_loss(fake)
    v_real, g_real_half = loss.d_real(real)
    v_fake, g_fake_half = loss.d_fake(fake)
    for what, g, x in (("d_loss / real", g_real, real), ("d_loss / fake", g_fake, fake),
                       ("g_loss / fake", g_gen, fake), ("d_real / real", g_real_half, real),
                       ("d_fake / fake", g_fake_half, fake)):
        if np.shape(g) != x.shape:
            raise AssertionError(f"check_loss: {what} gradient has shape {np.shape(g)}, logits {x.shape}")
    checks = [("d_loss / real", lambda: loss.d_loss(real, fake)[0], real, g_real),
              ("d_loss / fake", lambda: loss.d_loss(real, fake)[0], fake, g_fake),
              ("g_loss / fake", lambda: loss.g_loss(fake)[0], fake, g_gen),
              ("d_real / real", lambda: loss.d_real(real)[0], real, g_real_half),
              ("d_fake / fake", lambda: loss.d_fake(fake)[0], fake, g_fake_half)]
    for name, f, x, g in checks:
        for e in check_array(name, f, x, g, rng, max_elements, eps, rtol):
            report.add(e)
    same = np.array_equal(g_real, g_real_half) and np.array_equal(g_fake, g_fake_half)
    report.add(Entry("halves' gradients = d_loss's (exactly)", g_real.size + g_fake.size,
                     0.0 if same else float("inf"), 0.0 if same else float("inf"), rtol))
    report.add(compare("d_loss = d_real + d_fake (value)", [value], [v_real + v_fake], rtol))
    return report


# --- a whole GAN: ∂V/∂θ_D and ∂V/∂θ_G through D(G(z)) -----------------------------------------

def gan_gradients(G, D, loss, z, real):
    """The analytic gradients of one training step, computed the way a training loop does.

    D step:  L_D = d_real(D(real)) + d_fake(D(G(z))), with G held fixed;
    G step:  L_G = g_loss(D(G(z))), back through D (whose parameters are not updated) into G.
    Each backward follows the forward it belongs to (a module's cache is its last forward's).
    Returns (L_D, {name: ∂L_D/∂θ_D}, L_G, {name: ∂L_G/∂θ_G}).
    """
    D.zero_grad()
    G.zero_grad()
    fake = G(z)
    v_real, g = loss.d_real(D(real))
    D.backward(g)
    v_fake, g = loss.d_fake(D(fake))
    D.backward(g)
    d_grads = {n: p.grad.copy() for n, p in D.named_parameters()}
    D.zero_grad()
    v_g, g = loss.g_loss(D(fake))
    G.backward(D.backward(g))
    g_grads = {n: p.grad.copy() for n, p in G.named_parameters()}
    D.zero_grad()
    G.zero_grad()
    return v_real + v_fake, d_grads, v_g, g_grads


def check_gan(G, D, loss, z, real, *, seed: int = 0, eps: float = EPS, rtol: float = RTOL,
              max_elements: int | None = 64) -> Report:
    """Prove ∂L_D/∂θ_D and ∂L_G/∂θ_G of the whole composition D(G(z)) by finite differences.

    Copies G and D, casts them to float64, computes the gradients as :func:`gan_gradients`
    (i.e. as training does) and compares every parameter of D with differences of L_D, and every
    parameter of G with differences of L_G. Catches the classic bug of a generator gradient that
    never reaches G through D.
    """
    rng = np.random.default_rng(seed)
    G, D = copy.deepcopy(G).double(), copy.deepcopy(D).double()
    z = np.array(z, dtype=np.float64)
    real = np.array(real, dtype=np.float64)
    states = _generator_states(G) + _generator_states(D)
    _restore(states)
    _, d_grads, _, g_grads = gan_gradients(G, D, loss, z, real)

    def loss_d():
        _restore(states)
        fake = G(z)
        return loss.d_real(D(real))[0] + loss.d_fake(D(fake))[0]

    def loss_g():
        _restore(states)
        return loss.g_loss(D(G(z)))[0]

    report = Report(f"check_gan: loss {getattr(loss, 'name', type(loss).__name__)}, "
                    f"z {tuple(z.shape)}, real {tuple(real.shape)}")
    for name, p in D.named_parameters():
        for e in check_array(f"D.{name}", loss_d, p.data, d_grads[name], rng, max_elements, eps, rtol):
            report.add(e)
    for name, p in G.named_parameters():
        for e in check_array(f"G.{name}", loss_g, p.data, g_grads[name], rng, max_elements, eps, rtol):
            report.add(e)
    return report


# --- pix2pix: the conditional image-to-image game, L1 included ---------------------------------

def pix2pix_gradients(G, D, loss, x, y, l1_weight=100.0, gan_weight=1.0):
    """The analytic gradients of one pix2pix training step (docs/gradients.md#the-objective-and-its-gradients),
    computed the way the trainer does.

    D step:  L_D = ½[d_real(D([x, y])) + d_fake(D([x, G(x)]))], G held fixed;
    G step:  L_G = gan_weight·g_loss(D([x, G(x)])) + l1_weight·E|y − G(x)|, back through D (not
             updated) into G: only the output's channels of the pair's gradient reach G.
    Returns (L_D, {name: ∂L_D/∂θ_D}, L_G, {name: ∂L_G/∂θ_G}).
    """
    from ..losses import l1_loss
    xp_cat = np.concatenate
    cx = x.shape[1]
    D.zero_grad()
    G.zero_grad()
    fake = G(x)
    v_real, g = loss.d_real(D(xp_cat([x, y], axis=1)))
    D.backward(0.5 * g)
    v_fake, g = loss.d_fake(D(xp_cat([x, fake], axis=1)))
    D.backward(0.5 * g)
    d_grads = {n: p.grad.copy() for n, p in D.named_parameters()}
    D.zero_grad()
    v_gan, g = loss.g_loss(D(xp_cat([x, fake], axis=1)))
    g_fake = gan_weight * D.backward(g)[:, cx:]
    v_l1, g_l1 = l1_loss(fake, y)
    G.backward(g_fake + l1_weight * g_l1)
    g_grads = {n: p.grad.copy() for n, p in G.named_parameters()}
    D.zero_grad()
    G.zero_grad()
    return 0.5 * (v_real + v_fake), d_grads, gan_weight * v_gan + l1_weight * v_l1, g_grads


def check_pix2pix(G, D, loss, x, y, *, l1_weight=100.0, gan_weight=1.0, seed: int = 0, eps: float = EPS,
                  rtol: float = RTOL, max_elements: int | None = 48) -> Report:
    """:func:`check_gan` for pix2pix: ∂L_D/∂θ_D and ∂L_G/∂θ_G of the whole game (G a generator of
    images from images, D a discriminator of channel-concatenated (x, y) pairs, any logit shape;
    L_G with its λ·L1 term) against central differences in float64. Targets within 1e-3 of G(x)
    are moved off the L1 kink first."""
    from ..losses import l1_loss
    rng = np.random.default_rng(seed)
    G, D = copy.deepcopy(G).double(), copy.deepcopy(D).double()
    x = np.array(x, dtype=np.float64)
    y = np.array(y, dtype=np.float64)
    states = _generator_states(G) + _generator_states(D)
    _restore(states)
    g0 = G(x)
    near = np.abs(y - g0) < 1e-3
    y[near] = g0[near] + 1e-2
    _restore(states)
    _, d_grads, _, g_grads = pix2pix_gradients(G, D, loss, x, y, l1_weight, gan_weight)

    def loss_d():
        _restore(states)
        fake = G(x)
        return 0.5 * (loss.d_real(D(np.concatenate([x, y], 1)))[0] + loss.d_fake(D(np.concatenate([x, fake], 1)))[0])

    def loss_g():
        _restore(states)
        fake = G(x)
        return gan_weight * loss.g_loss(D(np.concatenate([x, fake], 1)))[0] + l1_weight * l1_loss(fake, y)[0]

    report = Report(f"check_pix2pix: loss {getattr(loss, 'name', type(loss).__name__)}, λ = {l1_weight:g}, "
                    f"x {tuple(x.shape)}, y {tuple(y.shape)}")
    for name, p in D.named_parameters():
        for e in check_array(f"D.{name}", loss_d, p.data, d_grads[name], rng, max_elements, eps, rtol):
            report.add(e)
    for name, p in G.named_parameters():
        for e in check_array(f"G.{name}", loss_g, p.data, g_grads[name], rng, max_elements, eps, rtol):
            report.add(e)
    return report


# --- penalties -------------------------------------------------------------------------------

def check_penalty(penalty, D, *args, seed: int = 0, eps: float = EPS, rtol: float = RTOL,
                  max_elements: int | None = 64, **kwargs) -> Report:
    """Prove a penalty's parameter gradients by finite differences of its value.

    ``penalty(D, *args, **kwargs)`` must return the value and add ∂value/∂θ_D into D's grads
    (as every function of :mod:`pygan.penalties` does). Random draws must be fixed: pass
    ``alpha``/``eps`` explicitly, or a Generator (copied afresh for every evaluation).
    """
    rng = np.random.default_rng(seed)
    D = copy.deepcopy(D).double()
    args = [np.array(a, dtype=np.float64) if isinstance(a, np.ndarray) else a for a in args]
    kwargs = {k: (np.array(v, dtype=np.float64) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
    states = _generator_states(D)

    def call():
        _restore(states)
        kw = {k: copy.deepcopy(v) if isinstance(v, np.random.Generator) else v for k, v in kwargs.items()}
        return penalty(D, *args, **kw)

    D.zero_grad()
    call()
    grads = {n: p.grad.copy() for n, p in D.named_parameters()}
    report = Report(f"check_penalty: {getattr(penalty, '__name__', penalty)} on {D.describe()}")
    for name, p in D.named_parameters():
        for e in check_array(name, call, p.data, grads[name], rng, max_elements, eps, rtol):
            report.add(e)
    return report
