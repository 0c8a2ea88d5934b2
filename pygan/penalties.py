"""Penalties on the critic's input gradient, with exact hand-derived θ-gradients.

Each penalty returns its value (a float) and **adds** its gradient w.r.t. D's parameters into
``Parameter.grad``, like a layer's backward. D must map a batch (N, …) to one logit per sample,
(N,) or (N, 1), and treat samples independently (no BatchNorm in train mode — it raises).

The exact penalties need ∂/∂θ of a function of g = ∇ₓD(x). With u = ∂P/∂g held fixed,

    ∂P/∂θ = ∂/∂θ ⟨u, ∇ₓ Σᵢ D(xᵢ)⟩ = ∂/∂θ Σᵢ ẏᵢ,   ẏ = D'(x)·u (the directional derivative),

so each penalty runs: forward at x, backward (for g), the tangent pass ``D.jvp(u)`` (forward
mode, reusing the forward's cache), and ``D.backward_jvp(None, 1)`` — the adjoint of the
tangent pass — which adds ∂(Σ ẏ)/∂θ into the grads. Derivation: docs/gradients.md#second-order.
"""
from __future__ import annotations

from .backend import get_backend
from .nn.container import Sequential


def _per_sample_logits(D, y, n):
    if y.shape not in ((n,), (n, 1)):
        raise ValueError(f"penalty: the critic {D.describe()} must return one logit per sample, "
                         f"shape ({n},) or ({n}, 1), got {tuple(y.shape)}")


def input_gradient(D, x):
    """∇ₓ Σᵢ D(xᵢ) (= the per-sample gradients, rows of the result), leaving D's grads as they were.

    D's cache afterwards belongs to this forward at x, ready for ``D.jvp``.
    """
    return _input_gradient(D, x)[0]


def _input_gradient(D, x):
    """(∇ₓ Σ D(x), the all-ones top gradient used). A Sequential critic keeps its layers'
    signals, which the tangent adjoint of ``_add_directional_grad`` (same ones) reuses."""
    y = D(x)
    _per_sample_logits(D, y, x.shape[0])
    ones = get_backend().xp.ones_like(y)
    if isinstance(D, Sequential):
        return D.backward_input(ones, keep_signals=True), ones
    return D.backward_input(ones), ones


def _add_directional_grad(D, u, ones):
    """Add ∂/∂θ ⟨u, ∇ₓ Σ D(x)⟩ into D's grads, at the point of D's last forward; ``ones`` is the
    top gradient of the ``_input_gradient`` call at that point."""
    D.jvp(u)
    D.backward_jvp(None, ones)


def _row_norms(g):
    return get_backend().xp.sqrt((g.reshape(g.shape[0], -1) ** 2).sum(axis=1))


def _broadcast_rows(v, like):
    return v.reshape((like.shape[0],) + (1,) * (like.ndim - 1))


def gradient_penalty(D, real, fake, lam: float = 10.0, alpha=None, rng=None, target: float = 1.0):
    """WGAN-GP (Gulrajani et al. 2017): P = λ · E (‖∇ₓD(x̂)‖ − 1)², x̂ = α·real + (1 − α)·fake.

    ``alpha`` (N,) is drawn from U[0, 1) with ``rng`` (default: pygan's global generator) when not
    given. Returns P and adds ∂P/∂θ_D into D's grads.
    u = ∂P/∂gᵢ = (2λ/N)(‖gᵢ‖ − 1) gᵢ/‖gᵢ‖  (0 where gᵢ = 0).  docs/gradients.md#gradient-penalty
    """
    xp = get_backend().xp
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} "
                         f"must have the same shape")
    n = real.shape[0]
    if alpha is None:
        from .random import get_rng
        alpha = (rng or get_rng()).random(n)
    alpha = xp.asarray(alpha, dtype=real.dtype)
    if alpha.shape != (n,):
        raise ValueError(f"gradient_penalty: alpha must have shape ({n},), got {tuple(alpha.shape)}")
    a = _broadcast_rows(alpha, real)
    x_hat = a * real + (1 - a) * fake
    g, ones = _input_gradient(D, x_hat)
    norms = _row_norms(g)
    value = float(lam * xp.mean((norms - target) ** 2))
    safe = xp.where(norms > 0, norms, 1)
    coef = xp.where(norms > 0, (2 * lam / n) * (norms - target) / safe, 0).astype(g.dtype)
    _add_directional_grad(D, _broadcast_rows(coef, g) * g, ones)
    return value


def r1_penalty(D, real, gamma: float = 10.0):
    """R1 (Mescheder et al. 2018): P = (γ/2) · E ‖∇ₓD(x)‖² at x = ``real`` (given generated
    samples instead, it is R2).

    Returns P and adds ∂P/∂θ_D into D's grads.  u = ∂P/∂gᵢ = (γ/N) gᵢ.
    docs/gradients.md#r1-penalty
    """
    n = real.shape[0]
    g, ones = _input_gradient(D, real)
    value = float(0.5 * gamma * (g.reshape(n, -1) ** 2).sum(axis=1).mean())
    _add_directional_grad(D, g * g.dtype.type(gamma / n), ones)
    return value


def lipschitz_penalty(D, real, fake, lam: float = 10.0, one_sided: bool = False, t=None, rng=None):
    """The finite-difference Lipschitz penalty: no second derivative, two forwards.

    For each i, two interpolates y_{i,j} = t_{i,j}·realᵢ + (1 − t_{i,j})·fakeᵢ (j = 1, 2;
    t ~ U[0, 1) drawn from ``rng`` unless given, shape (N, 2); the seed note's ε_{i,j}) and the difference quotient
    qᵢ = |D(y_{i,1}) − D(y_{i,2})| / ‖y_{i,1} − y_{i,2}‖. Two-sided: P = λ·E (qᵢ − 1)²;
    one-sided: P = λ·E max(qᵢ − 1, 0)². Both interpolates go through D as one batch of 2N.
    ∂P/∂D(y_{i,1}) = −∂P/∂D(y_{i,2}) = (2λ/N)(qᵢ − 1)₊ sign(Δᵢ)/‖Δyᵢ‖.
    docs/gradients.md#lipschitz-penalty
    """
    xp = get_backend().xp
    n = real.shape[0]
    if t is None:
        from .random import get_rng
        t = (rng or get_rng()).random((n, 2))
    t = xp.asarray(t, dtype=real.dtype)
    if t.shape != (n, 2):
        raise ValueError(f"lipschitz_penalty: t must have shape ({n}, 2), got {tuple(t.shape)}")
    e1, e2 = _broadcast_rows(t[:, 0], real), _broadcast_rows(t[:, 1], real)
    y = xp.concatenate([e1 * real + (1 - e1) * fake, e2 * real + (1 - e2) * fake])
    logits = D(y)
    _per_sample_logits(D, logits, 2 * n)
    out = logits.reshape(2 * n)
    diff = out[:n] - out[n:]
    dist = _row_norms(y[:n] - y[n:])
    dist = xp.where(dist > 0, dist, 1)  # identical interpolates: q = 0 by convention
    excess = xp.abs(diff) / dist - 1
    if one_sided:
        excess = xp.maximum(excess, 0)
    value = float(lam * xp.mean(excess ** 2))
    w = (2 * lam / n) * excess * xp.sign(diff) / dist
    gy = xp.concatenate([w, -w]).astype(out.dtype)
    D.backward(gy.reshape(logits.shape))
    return value


def clip_weights(module, c: float = 0.01):
    """WGAN's weight clipping (Arjovsky et al. 2017): every parameter into [−c, c], in place."""
    xp = get_backend().xp
    for p in module.parameters():
        xp.clip(p.data, -c, c, out=p.data)


def orthogonal_weights(module):
    """The (name, Parameter) pairs orthogonal regularisation acts on: every parameter of ``module``
    with two or more axes (Linear (out, in), convolutions (out, in, kh, kw)), except the weights
    of Embedding layers — lookup tables, not linear maps (BigGAN leaves its shared class
    embedding out the same way)."""
    from .nn.embedding import Embedding
    out = []
    for prefix, mod in module.named_modules():
        if isinstance(mod, Embedding):
            continue
        for name, p in mod._parameters.items():
            if p is not None and p.data.ndim >= 2:
                out.append((f"{prefix}.{name}" if prefix else name, p))
    return out


def orthogonal_regularization(module, beta: float = 1e-4) -> float:
    """BigGAN's orthogonal regularisation (Brock et al. 2019, Section 3.1), summed over
    :func:`orthogonal_weights`: with each weight viewed as W (out, in·k·k) — one filter per row —

        R = β Σ_W ‖W Wᵀ ⊙ (1 − I)‖²_F,   ∂R/∂W = 4β (W Wᵀ ⊙ (1 − I)) W,

    which pushes the filters towards mutual orthogonality and leaves their norms free. (The
    paper writes WᵀW for a matrix whose columns are the filters.) Returns R and **adds** ∂R/∂W
    into the grads, like a layer's backward. BigGAN's released code adds 2β(·)W, the gradient of
    β/2·‖·‖²: its strength 1e-4 is β = 5e-5 here. Derivation:
    docs/gradients.md#orthogonal-regularisation."""
    if not (beta >= 0):
        raise ValueError(f"orthogonal_regularization: beta must be ≥ 0, got {beta!r}")
    from .backend import to_host
    be = get_backend()
    total = 0.0
    if beta == 0:
        return total
    for _, p in orthogonal_weights(module):
        W = p.data.reshape(p.data.shape[0], -1)
        A = be.matmul(W, be.xp.ascontiguousarray(W.T))
        idx = be.xp.arange(A.shape[0])
        A[idx, idx] = 0                                   # W Wᵀ ⊙ (1 − I)
        total += beta * float(to_host(be.xp.einsum("ij,ij->", A, A)))
        g = be.matmul(A, W)
        g *= W.dtype.type(4 * beta)
        p.grad += g.reshape(p.data.shape)
    return total
