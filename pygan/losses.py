"""GAN objectives, each with its gradient w.r.t. the discriminator's logits.

With r = D's logits on real data, f = D's logits on generated data, sp = softplus,
σ = sigmoid and E = mean over all elements of the logits array:

    name            d_loss = d_real + d_fake            g_loss
    minimax         E sp(−r) + E sp(f)                  −E sp(f)    (= E log(1 − σ(f)))
    nonsaturating   E sp(−r) + E sp(f)                  E sp(−f)    (= −E log σ(f))
    wasserstein     −E r + E f                          −E f
    hinge           E relu(1 − r) + E relu(1 + f)       −E f
    least_squares   ½E (r − b)² + ½E (f − a)²           ½E (f − c)²

Every method returns the value as a Python float and the gradient of that value w.r.t. the
logits it was given (same shape and dtype as the logits):

    value, g_real, g_fake = loss.d_loss(real_logits, fake_logits)
    value, g_real         = loss.d_real(real_logits)
    value, g_fake         = loss.d_fake(fake_logits)
    value, g_fake         = loss.g_loss(fake_logits)

Logits are arrays of shape (N,) or (N, 1), or a PatchGAN's logit map (N, 1, H, W) (any (N, ...)
works: E is the mean over all elements, so a map's loss is the mean over patches and batch, the
same value and — reshaped — the same gradient as its flattened (N·H·W,) logits); real and fake
batches may differ in N but not in the trailing shape.

Which backward gets the gradient: a module's backward uses the cache of its **most recent**
forward. Run ``D.backward(g_real)`` right after ``D(real)`` and ``D.backward(g_fake)`` right
after ``D(fake)`` (that is what the halves ``d_real``/``d_fake`` are for). Calling ``D(real)``,
``D(fake)`` and then backward with both gradients differentiates twice at the fake batch.

Stability: softplus and sigmoid are computed from e = exp(−|x|) ≤ 1,

    sp(x) = max(x, 0) + log1p(e),   σ(x) = 1/(1 + e) if x ≥ 0 else e/(1 + e),

so no exponential overflows and both are relatively accurate in their tails; the loss value
and its gradient share that one exponential (one fused pass). Finite logits of any magnitude
(±1e30 in float32) give finite values and the exact limits. A loss whose value is not finite
(NaN/inf logits, or a squared error overflowing) raises :class:`NonFiniteLoss` naming the loss
and the term.

Derivations: docs/gradients.md#minimax, #nonsaturating, #wasserstein, #hinge, #least_squares.
"""
from __future__ import annotations

import math

import numpy as np

from .backend import get_backend

__all__ = ["Loss", "Minimax", "NonSaturating", "Wasserstein", "Hinge", "LeastSquares",
           "NonFiniteLoss", "get", "names"]


class NonFiniteLoss(FloatingPointError):
    """A loss term came out NaN or inf; ``.loss`` and ``.term`` say which, ``.value`` is what
    it came out as (nan, inf or -inf)."""

    def __init__(self, message, loss=None, term=None, value=float("nan")):
        super().__init__(message)
        self.loss = loss
        self.term = term
        self.value = float(value)


# --- fused kernels: one pass over the logits gives the value and the gradient ------------------
# Each returns (value: float, grad: array like x). n = x.size; E = mean over all elements.
# A backend may provide the same functions (``loss_softplus`` etc.) to run them on its device.

def _softplus_term(x, sign, weight):
    """value = w·E sp(s·x),  grad = w·s·σ(s·x)/n   (s = ±1, w a float).

    sp(s·x) = max(s·x, 0) + log1p(e) and σ(s·x) = (1 if s·x ≥ 0 else e)/(1 + e), e = exp(−|x|).
    """
    xp = get_backend().xp
    n = x.size
    e = xp.abs(x)
    xp.negative(e, out=e)
    xp.exp(e, out=e)                                  # e = exp(−|x|) ∈ (0, 1]
    t = xp.log1p(e)
    if sign > 0:
        t += xp.maximum(x, 0)                         # sp(x) = max(x, 0) + log1p(e)
    else:
        t -= xp.minimum(x, 0)                         # sp(−x) = max(−x, 0) + log1p(e)
    value = weight * float(t.sum()) / n
    g = t                                             # reuse t's memory
    xp.add(e, 1, out=g)
    xp.divide(x.dtype.type(weight * sign / n), g, out=g)   # w·s/(n(1 + e))
    # where s·x < 0: σ(s·x) = e/(1 + e), so g *= e there and *= 1 elsewhere. Branch-free (a
    # masked multiply on random signs is 12× slower): e ≤ 1, so max(e, [s·x ≥ 0]) is exactly 1
    # or e, and multiplying by 1 changes nothing
    head = xp.empty_like(g)
    (xp.greater_equal if sign > 0 else xp.less_equal)(x, 0, out=head)
    xp.maximum(head, e, out=head)
    g *= head
    return value, g


def _linear_term(x, weight):
    """value = w·E x,  grad = w/n everywhere."""
    xp = get_backend().xp
    n = x.size
    value = weight * float(x.sum()) / n
    return value, xp.full_like(x, weight / n)


def _hinge_term(x, sign, weight):
    """value = w·E relu(1 + s·x),  grad = w·s·[1 + s·x > 0]/n  (0 at the kink, like torch)."""
    xp = get_backend().xp
    n = x.size
    t = (1 - x) if sign < 0 else (x + 1)              # 1 + s·x
    xp.maximum(t, 0, out=t)
    value = weight * float(t.sum()) / n
    g = (t > 0).astype(x.dtype)
    g *= x.dtype.type(weight * sign / n)
    return value, g


def _square_term(x, target, weight):
    """value = w·½E (x − t)²,  grad = w·(x − t)/n."""
    xp = get_backend().xp
    n = x.size
    d = x - x.dtype.type(target)
    flat = d.reshape(-1)
    value = 0.5 * weight * float(xp.dot(flat, flat)) / n
    d *= x.dtype.type(weight / n)
    return value, d


def _kernel(name, default):
    return getattr(get_backend(), name, default)


# --- the objectives ------------------------------------------------------------------------

class Loss:
    """Base class: validation, the d_loss = d_real + d_fake composition and printing.

    Subclasses implement ``_d_real(x)``, ``_d_fake(x)`` and ``_g(x)``, each returning
    (value, gradient) for an already validated array x.
    """

    name = "loss"
    #: logit values where the loss is not differentiable (finite-difference checks avoid them)
    kinks: tuple = ()

    # -- public API --
    def d_real(self, real_logits):
        """D's loss on the real batch: (value, ∂value/∂real_logits)."""
        x = self._check(real_logits, "d_real", "real logits")
        return self._finite(self._d_real(x), "d_real", x, "real logits")

    def d_fake(self, fake_logits):
        """D's loss on the generated batch: (value, ∂value/∂fake_logits)."""
        x = self._check(fake_logits, "d_fake", "fake logits")
        return self._finite(self._d_fake(x), "d_fake", x, "fake logits")

    def d_loss(self, real_logits, fake_logits):
        """D's whole loss: (d_real + d_fake, ∂/∂real_logits, ∂/∂fake_logits)."""
        r = self._check(real_logits, "d_loss", "real logits")
        f = self._check(fake_logits, "d_loss", "fake logits")
        if r.shape[1:] != f.shape[1:]:
            raise ValueError(f"{self.describe()}.d_loss: real logits {tuple(r.shape)} and fake logits "
                             f"{tuple(f.shape)} have different trailing shapes "
                             f"({tuple(r.shape[1:])} vs {tuple(f.shape[1:])}); give both as (N,) or both as (N, 1)")
        if r.dtype != f.dtype:
            raise TypeError(f"{self.describe()}.d_loss: real logits are {r.dtype} but fake logits are {f.dtype}")
        vr, gr = self._finite(self._d_real(r), "d_loss (real term)", r, "real logits")
        vf, gf = self._finite(self._d_fake(f), "d_loss (fake term)", f, "fake logits")
        return vr + vf, gr, gf

    def g_loss(self, fake_logits):
        """G's loss on the generated batch: (value, ∂value/∂fake_logits)."""
        x = self._check(fake_logits, "g_loss", "fake logits")
        return self._finite(self._g(x), "g_loss", x, "fake logits")

    # -- printing --
    def describe(self) -> str:
        """Short name used in errors and logs, e.g. ``least_squares(a=0, b=1, c=1)``."""
        return self.name

    def formula(self) -> str:
        """The objective in words, e.g. ``d: E sp(−r) + E sp(f); g: E sp(−f)``."""
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self._args()})"

    def __str__(self):
        return f"{self.describe()}: {self.formula()}"

    def _args(self) -> str:
        return ""

    # -- validation --
    def _check(self, x, method, what):
        xp = get_backend().xp
        if not isinstance(x, xp.ndarray):
            raise TypeError(f"{self.describe()}.{method}: expected {what} as an array "
                            f"({xp.__name__}.ndarray), got {type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"{self.describe()}.{method}: expected floating {what}, got dtype {x.dtype}")
        if x.ndim == 0 or x.size == 0:
            raise ValueError(f"{self.describe()}.{method}: expected {what} of shape (N,), (N, 1) or a "
                             f"logit map (N, 1, H, W) with N ≥ 1, got shape {tuple(x.shape)}")
        return x

    def _finite(self, result, term, x, what):
        value = result[0]
        if not math.isfinite(value):
            xp = get_backend().xp
            n_nan = int(xp.isnan(x).sum())
            n_inf = int(xp.isinf(x).sum())
            why = (f"the {what} contain {n_nan} NaN and {n_inf} inf of {x.size} values"
                   if n_nan or n_inf else
                   f"the {what} are finite (|max| = {float(xp.abs(x).max()):.3g}) but the {x.dtype} "
                   f"arithmetic overflowed")
            raise NonFiniteLoss(f"{self.describe()}.{term} is {value}: {why}", self.name, term, value)
        return result


class Minimax(Loss):
    """The original (saturating) GAN objective, Goodfellow et al. 2014.

    d_loss = E sp(−r) + E sp(f)   (= −E log σ(r) − E log(1 − σ(f)), binary cross-entropy)
    g_loss = −E sp(f)             (= E log(1 − σ(f)); G minimizes D's success)

    Gradients, with n the number of logits in the batch and dsp/dx = σ(x):
        ∂d_loss/∂r = −σ(−r)/n = (σ(r) − 1)/n,   ∂d_loss/∂f = σ(f)/n,
        ∂g_loss/∂f = −σ(f)/n = −D/n             (vanishes as D = σ(f) → 0: saturation).
    Shapes: r (N_r,) or (N_r, 1), f (N_f,) or (N_f, 1); gradients like the logits.
    Derivation: docs/gradients.md#minimax
    """

    name = "minimax"

    def formula(self):
        return "d: E sp(−r) + E sp(f); g: −E sp(f)"

    def _d_real(self, x):
        return _kernel("loss_softplus", _softplus_term)(x, -1, 1.0)

    def _d_fake(self, x):
        return _kernel("loss_softplus", _softplus_term)(x, 1, 1.0)

    def _g(self, x):
        return _kernel("loss_softplus", _softplus_term)(x, 1, -1.0)


class NonSaturating(Minimax):
    """The non-saturating GAN objective (Goodfellow et al. 2014, §3): same D loss as minimax.

    d_loss = E sp(−r) + E sp(f)
    g_loss = E sp(−f)             (= −E log σ(f))

    Gradients (n = number of logits):
        ∂d_loss/∂r = −σ(−r)/n,   ∂d_loss/∂f = σ(f)/n,
        ∂g_loss/∂f = −σ(−f)/n = −(1 − D)/n   (tends to −1/n as D = σ(f) → 0: no saturation).
    Shapes: r (N_r,) or (N_r, 1), f (N_f,) or (N_f, 1); gradients like the logits.
    Derivation: docs/gradients.md#nonsaturating
    """

    name = "nonsaturating"

    def formula(self):
        return "d: E sp(−r) + E sp(f); g: E sp(−f)"

    def _g(self, x):
        return _kernel("loss_softplus", _softplus_term)(x, -1, 1.0)


class Wasserstein(Loss):
    """The WGAN critic objective (Arjovsky et al. 2017); logits are the critic's scores.

    d_loss = E f − E r,   g_loss = −E f.
    Gradients (n = number of logits): ∂d_loss/∂r = −1/n, ∂d_loss/∂f = 1/n, ∂g_loss/∂f = −1/n.
    Needs a Lipschitz constraint on D (weight clipping or a gradient penalty, pygan.penalties).
    Shapes: r (N_r,) or (N_r, 1), f (N_f,) or (N_f, 1); gradients like the logits.
    Derivation: docs/gradients.md#wasserstein
    """

    name = "wasserstein"

    def formula(self):
        return "d: E f − E r; g: −E f"

    def _d_real(self, x):
        return _kernel("loss_linear", _linear_term)(x, -1.0)

    def _d_fake(self, x):
        return _kernel("loss_linear", _linear_term)(x, 1.0)

    def _g(self, x):
        return _kernel("loss_linear", _linear_term)(x, -1.0)


class Hinge(Loss):
    """The hinge GAN objective (Lim & Ye 2017; Miyato et al. 2018).

    d_loss = E relu(1 − r) + E relu(1 + f),   g_loss = −E f.
    Gradients (n = number of logits, [·] the indicator, 0 at the kinks as in torch's relu):
        ∂d_loss/∂r = −[r < 1]/n,   ∂d_loss/∂f = [f > −1]/n,   ∂g_loss/∂f = −1/n.
    Shapes: r (N_r,) or (N_r, 1), f (N_f,) or (N_f, 1); gradients like the logits.
    Derivation: docs/gradients.md#hinge
    """

    name = "hinge"
    kinks = (-1.0, 1.0)

    def formula(self):
        return "d: E relu(1 − r) + E relu(1 + f); g: −E f"

    def _d_real(self, x):
        return _kernel("loss_hinge", _hinge_term)(x, -1, 1.0)

    def _d_fake(self, x):
        return _kernel("loss_hinge", _hinge_term)(x, 1, 1.0)

    def _g(self, x):
        return _kernel("loss_linear", _linear_term)(x, -1.0)


class LeastSquares(Loss):
    """The least-squares GAN objective (LSGAN, Mao et al. 2017) with targets a, b, c.

    d_loss = ½E (r − b)² + ½E (f − a)²,   g_loss = ½E (f − c)².
    D pushes real logits to b and fake ones to a; G pushes fake logits to c. Defaults
    (a, b, c) = (0, 1, 1); the paper's other choice is (−1, 1, 0).
    Gradients (n = number of logits): ∂d_loss/∂r = (r − b)/n, ∂d_loss/∂f = (f − a)/n,
    ∂g_loss/∂f = (f − c)/n.
    Shapes: r (N_r,) or (N_r, 1), f (N_f,) or (N_f, 1); gradients like the logits.
    Derivation: docs/gradients.md#least_squares
    """

    name = "least_squares"

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0):
        for k, v in (("a", a), ("b", b), ("c", c)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(float(v)):
                raise ValueError(f"least_squares: target {k} must be a finite number, got {v!r}")
        self.a, self.b, self.c = float(a), float(b), float(c)

    def describe(self):
        return f"least_squares(a={self.a:g}, b={self.b:g}, c={self.c:g})"

    def _args(self):
        return f"a={self.a!r}, b={self.b!r}, c={self.c!r}"

    def formula(self):
        return f"d: ½E (r − {self.b:g})² + ½E (f − {self.a:g})²; g: ½E (f − {self.c:g})²"

    def _d_real(self, x):
        return _kernel("loss_square", _square_term)(x, self.b, 1.0)

    def _d_fake(self, x):
        return _kernel("loss_square", _square_term)(x, self.a, 1.0)

    def _g(self, x):
        return _kernel("loss_square", _square_term)(x, self.c, 1.0)


_REGISTRY = {cls.name: cls for cls in (Minimax, NonSaturating, Wasserstein, LeastSquares, Hinge)}


def names() -> list[str]:
    """The loss names ``get`` accepts."""
    return list(_REGISTRY)


def get(name, **kwargs) -> Loss:
    """The loss called ``name`` (see :func:`names`); ``kwargs`` go to its constructor
    (only ``least_squares`` takes any: a, b, c). A :class:`Loss` instance is returned as is."""
    if isinstance(name, Loss):
        if kwargs:
            raise TypeError(f"losses.get: options {sorted(kwargs)} given with a loss object {name.describe()}")
        return name
    if name not in _REGISTRY:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(_REGISTRY)}")
    cls = _REGISTRY[name]
    if cls is not LeastSquares and kwargs:
        raise TypeError(f"loss {name!r} takes no options, got {sorted(kwargs)}")
    try:
        return cls(**kwargs)
    except TypeError:
        raise TypeError(f"loss {name!r} accepts options a, b, c; got {sorted(kwargs)}") from None


# --- classification: softmax cross-entropy (not a GAN objective; not in names()/get()) --------

class CrossEntropy:
    """Softmax cross-entropy of class logits against integer labels, as ``torch.nn.CrossEntropyLoss``
    (mean reduction, optional ``label_smoothing``). Used to train the image judge's classifier (pygan.evaluation.judge).

    With z = logits (N, K), y = labels (N,) integers in [0, K), ε = label_smoothing ∈ [0, 1],
    log pᵢ = zᵢ − mᵢ − log Σₖ exp(zᵢₖ − mᵢ) (mᵢ = maxₖ zᵢₖ: every exponent ≤ 0, so nothing
    overflows) and target qᵢ = (1 − ε)·onehot(yᵢ) + ε/K:

        value = −(1/N) Σᵢ Σₖ qᵢₖ log pᵢₖ        (ε = 0: −(1/N) Σᵢ log pᵢ,yᵢ)
        ∂value/∂zᵢₖ = (pᵢₖ − qᵢₖ)/N

    ``loss(logits, labels)`` returns (value: float, gradient like the logits). Finite logits of any
    magnitude give a finite value and gradient; NaN/inf logits raise :class:`NonFiniteLoss`.
    Derivation: docs/gradients.md#cross-entropy
    """

    name = "cross_entropy"

    def __init__(self, label_smoothing: float = 0.0):
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.integer, np.floating)) \
                or not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"cross_entropy: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def describe(self) -> str:
        return (self.name if not self.label_smoothing
                else f"{self.name}(label_smoothing={self.label_smoothing:g})")

    def __repr__(self):
        return f"CrossEntropy(label_smoothing={self.label_smoothing!r})"

    def __call__(self, logits, labels):
        xp = get_backend().xp
        z, y = self._check(logits, labels)
        n, k = z.shape
        rows = xp.arange(n)
        m = z.max(axis=1, keepdims=True)
        s = z - m                                        # s ≤ 0
        p = xp.exp(s)
        se = p.sum(axis=1, keepdims=True)                # ∈ [1, K]
        lse = xp.log(se)                                 # log Σ exp(s)
        eps = self.label_smoothing
        nll = float(lse.sum()) - float(s[rows, y].sum())  # −Σᵢ log pᵢ,yᵢ
        if eps:
            # −Σᵢ (1/K) Σₖ log pᵢₖ = Σᵢ lseᵢ − (1/K) Σᵢₖ sᵢₖ
            smooth = float(lse.sum()) - float(s.sum()) / k
            value = ((1.0 - eps) * nll + eps * smooth) / n
        else:
            value = nll / n
        p /= se                                          # softmax
        if eps:
            p -= z.dtype.type(eps / k)
        p[rows, y] -= z.dtype.type(1.0 - eps)            # p − q  (one (i, yᵢ) per row: no scatter-add)
        p *= z.dtype.type(1.0 / n)
        if not math.isfinite(value):
            n_bad = int((~xp.isfinite(z)).sum())
            why = (f"the logits contain {n_bad} NaN/inf of {z.size} values" if n_bad else
                   f"the logits are finite (|max| = {float(xp.abs(z).max()):.3g}) but the {z.dtype} "
                   f"arithmetic overflowed")
            raise NonFiniteLoss(f"{self.describe()} is {value}: {why}", self.name, "value", value)
        return value, p

    def _check(self, logits, labels):
        xp = get_backend().xp
        who = self.describe()
        if not isinstance(logits, xp.ndarray):
            raise TypeError(f"{who}: expected logits as an array ({xp.__name__}.ndarray), got {type(logits).__name__}")
        if logits.dtype.kind != "f":
            raise TypeError(f"{who}: expected floating logits, got dtype {logits.dtype}")
        if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
            raise ValueError(f"{who}: expected logits of shape (N, K) with N, K ≥ 1, got {tuple(logits.shape)}")
        n, k = logits.shape
        if not isinstance(labels, xp.ndarray):
            labels = xp.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"{who}: expected integer class labels, got dtype {labels.dtype}")
        if labels.shape != (n,):
            raise ValueError(f"{who}: expected labels of shape ({n},) for logits {tuple(logits.shape)}, "
                             f"got {tuple(labels.shape)}")
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= k:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{who}: label {bad} is out of range for {k} classes (labels must be in [0, {k - 1}])")
        return logits, labels


def cross_entropy(logits, labels, label_smoothing: float = 0.0):
    """(value, ∂value/∂logits) of the mean softmax cross-entropy; see :class:`CrossEntropy`.

    logits (N, K) floating, labels (N,) integers in [0, K). Derivation: docs/gradients.md#cross-entropy
    """
    return CrossEntropy(label_smoothing)(logits, labels)


__all__ += ["CrossEntropy", "cross_entropy"]


# --- regression: the L1 distance (pix2pix's reconstruction term; not in names()/get()) -------------

def l1_loss(pred, target):
    """Mean absolute error, as ``torch.nn.functional.l1_loss`` (mean reduction):

        value = E |p − t|   (mean over all n elements),   ∂value/∂p = sign(p − t)/n

    with sign(0) = 0 (torch's subgradient at the kink). pred and target: floating arrays of the
    same shape and dtype (target is data: no gradient is returned for it). Returns (value: float,
    gradient like pred). A NaN/inf value raises :class:`NonFiniteLoss`.
    Derivation: docs/gradients.md#l1-distance
    """
    xp = get_backend().xp
    for what, a in (("pred", pred), ("target", target)):
        if not isinstance(a, xp.ndarray):
            raise TypeError(f"l1_loss: expected {what} as an array ({xp.__name__}.ndarray), got {type(a).__name__}")
        if a.dtype.kind != "f":
            raise TypeError(f"l1_loss: expected floating {what}, got dtype {a.dtype}")
    if pred.shape != target.shape or pred.size == 0:
        raise ValueError(f"l1_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the "
                         f"same non-empty shape")
    if pred.dtype != target.dtype:
        raise TypeError(f"l1_loss: pred is {pred.dtype} but target is {target.dtype}")
    n = pred.size
    d = pred - target
    value = float(xp.abs(d).sum()) / n
    if not math.isfinite(value):
        raise NonFiniteLoss(f"l1_loss is {value}: pred or target contain NaN/inf", "l1", "l1", value)
    g = xp.sign(d)
    g *= pred.dtype.type(1.0 / n)
    return value, g


__all__ += ["l1_loss"]
