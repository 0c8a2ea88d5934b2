"""Conditional GAN layers: label-embedding concatenation and the projection discriminator.

Both take integer class labels y (N,) as a second argument, ``forward(x, labels)``, and their
``backward(gy)`` returns the gradient for x only (labels are integers); the gradient of the
label embedding is added into its ``weight.grad``. Derivations: docs/gradients.md#conditional-layers.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import get_backend
from ..nn import Embedding, Linear, Module
from ..nn.module import check_input


def _check_labels(layer: Module, labels, n: int):
    xp = get_backend().xp
    if labels is None:
        raise ValueError(f"{layer.describe()}: this module is conditional; pass the integer class labels "
                         f"(shape ({n},)) as the second argument")
    if not isinstance(labels, xp.ndarray) or not np.issubdtype(labels.dtype, np.integer):
        what = labels.dtype if isinstance(labels, xp.ndarray) else type(labels).__name__
        raise TypeError(f"{layer.describe()}: labels must be an integer array of shape ({n},), got {what}")
    if labels.shape != (n,):
        raise ValueError(f"{layer.describe()}: expected labels of shape ({n},) for a batch of {n}, "
                         f"got {tuple(labels.shape)}")


class LabelConcat(Module):
    """y = net([x, E[labels]]): a learned label embedding concatenated with x along axis 1.

    Shapes: x (N, C, *S) with per-sample shape ``in_shape`` = (C, *S); labels (N,) integers in
    [0, num_classes); embedding ``embed.weight`` E (num_classes, K·∏S), whose row E[y] is viewed
    as ``embed_shape`` = (K, *S); ``net`` receives h = [x, E[y]] of shape (N, C + K, *S).

    Backward (docs/gradients.md#conditional-layers), with gh = net.backward(gy) = ∂L/∂h:
    ∂L/∂x = gh[:, :C],   ∂L/∂E_k += Σ_{i: yᵢ = k} gh_i[C:]  (flattened).
    The tangent pass (for gradient penalties) feeds ḣ = [ẋ, 0]: labels carry no tangent.
    """

    def __init__(self, net: Module, num_classes: int, in_shape, embed_shape):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)
        self.embed_shape = tuple(int(s) for s in embed_shape)
        if self.embed_shape[1:] != self.in_shape[1:]:
            raise ValueError(f"{type(self).__name__}: embed_shape {self.embed_shape} must match in_shape "
                             f"{self.in_shape} after the first (channel) axis")
        self.num_classes = int(num_classes)
        self.embed = Embedding(self.num_classes, math.prod(self.embed_shape))
        self.net = net
        self._n = None

    def describe(self):
        return (f"{type(self).__name__}(x {self.in_shape} ⊕ label embedding "
                f"{self.num_classes}→{self.embed_shape})")

    def _shape_hint(self):
        return "(N, " + ", ".join(map(str, self.in_shape)) + ")"

    def extra_repr(self):
        return f"in_shape={self.in_shape}, num_classes={self.num_classes}, embed_shape={self.embed_shape}"

    def forward(self, x, labels=None):
        check_input(self, x, ndim=len(self.in_shape) + 1)
        if tuple(x.shape[1:]) != self.in_shape:
            raise ValueError(f"{self.describe()}: expected input {self._shape_hint()}, got {tuple(x.shape)}")
        n = x.shape[0]
        _check_labels(self, labels, n)
        e = self.embed(labels).reshape((n,) + self.embed_shape)
        self._n = n
        return self.net(get_backend().xp.concatenate([x, e], axis=1))

    def backward(self, gy):
        self._need_cache(self._n)
        gh = self.net.backward(gy)
        c = self.in_shape[0]
        self.embed.backward(gh[:, c:])
        return gh[:, :c]

    # ẏ = net'(h)·[ẋ, 0]; the adjoint's ∂L/∂h (second-order terms included) feeds E as above.
    def jvp(self, dx):
        n = self._need_cache(self._n)
        xp = get_backend().xp
        return self.net.jvp(xp.concatenate([dx, xp.zeros((n,) + self.embed_shape, dtype=dx.dtype)], axis=1))

    def backward_jvp(self, gy, gdy):
        gh, gdh = self.net.backward_jvp(gy, gdy)
        c = self.in_shape[0]
        if gh is None:
            return None, gdh[:, :c]
        self.embed.backward(gh[:, c:])
        return gh[:, :c], gdh[:, :c]


class ConditionalGenerator(LabelConcat):
    """G(z, y) = net([z, E[y]]) (Mirza & Osindero 2014): the label embedding (num_classes, embed_dim)
    concatenated with z.

    Shapes: z (N, latent_dim), labels (N,) → net's output; net takes (N, latent_dim + embed_dim).
    Backward: see :class:`LabelConcat` (returns ∂L/∂z; docs/gradients.md#conditional-layers).
    """

    def __init__(self, net: Module, num_classes: int, embed_dim: int, latent_dim: int):
        super().__init__(net, num_classes, (latent_dim,), (embed_dim,))

    def describe(self):
        return (f"ConditionalGenerator(z {self.in_shape[0]} ⊕ label embedding "
                f"{self.num_classes}×{self.embed_shape[0]})")


class ConcatDiscriminator(LabelConcat):
    """D(x, y) = net([x, E[y]]) with E[y] one extra image channel: E (num_classes, H·W).

    Shapes: x (N, C, H, W), labels (N,) → net's logits (N, 1); net takes (N, C + 1, H, W).
    Backward: see :class:`LabelConcat` (returns ∂L/∂x; docs/gradients.md#conditional-layers).
    """

    def __init__(self, net: Module, num_classes: int, image_shape):
        c, h, w = image_shape
        super().__init__(net, num_classes, (c, h, w), (1, h, w))

    def describe(self):
        return f"ConcatDiscriminator(x {self.in_shape} ⊕ label map {self.num_classes}→{self.embed_shape})"


class ProjectionDiscriminator(Module):
    """D(x, y) = ψ(φ(x)) + ⟨E[y], φ(x)⟩ — the projection discriminator (Miyato & Koyama 2018).

    Shapes: x (N, …) as ``features`` (φ) takes it; h = φ(x) (N, F) with F = ``feat_dim``;
    ψ = ``head`` = Linear(F, 1) with weight w (1, F); ``embed.weight`` E (num_classes, F);
    labels (N,) integers; logits (N, 1).

    Backward (docs/gradients.md#conditional-layers), g = ∂L/∂logit (N, 1):
    ∂L/∂h = g w + g ⊙ E[y],   ∂L/∂E_k += Σ_{i: yᵢ = k} gᵢ hᵢ,   ψ's grads as Linear's,
    ∂L/∂x = φ.backward(∂L/∂h).
    Tangent pass: ẏ = ψ_w(ḣ) + ⟨E[y], ḣ⟩ with ḣ = φ'(x)ẋ; its adjoint adds gẏ ḣᵢ to E's rows and
    gẏ E[y] to ∂L/∂ḣ (docs/gradients.md#conditional-layers).
    """

    def __init__(self, features: Module, feat_dim: int, num_classes: int):
        super().__init__()
        self.feat_dim, self.num_classes = int(feat_dim), int(num_classes)
        self.features = features
        self.head = Linear(self.feat_dim, 1)
        self.embed = Embedding(self.num_classes, self.feat_dim)
        self._cache = None
        self._dh = None

    def describe(self):
        return f"ProjectionDiscriminator(features {self.feat_dim}, {self.num_classes} classes)"

    def extra_repr(self):
        return f"feat_dim={self.feat_dim}, num_classes={self.num_classes}"

    def forward(self, x, labels=None):
        check_input(self, x, ndim=range(2, 33))
        n = x.shape[0]
        _check_labels(self, labels, n)
        h = self.features(x)
        if h.shape != (n, self.feat_dim):
            raise ValueError(f"{self.describe()}: the features module returned shape {tuple(h.shape)}, "
                             f"expected ({n}, {self.feat_dim})")
        e = self.embed(labels)
        out = self.head(h)
        out += get_backend().xp.einsum("nf,nf->n", e, h)[:, None]
        self._cache = (h, e)
        return out

    def backward(self, gy):
        h, e = self._need_cache(self._cache)
        gh = self.head.backward(gy)
        gh += gy * e
        self.embed.backward(gy * h)
        return self.features.backward(gh)

    def backward_params(self, gy):
        """Parameter grads only: φ's first layer skips its input-gradient product."""
        h, e = self._need_cache(self._cache)
        gh = self.head.backward(gy)
        gh += gy * e
        self.embed.backward(gy * h)
        self.features.backward_params(gh)

    def backward_input(self, gy):
        """∂L/∂x only (a generator step): ∂L/∂h = g w + g ⊙ E[y], no parameter grads."""
        h, e = self._need_cache(self._cache)
        gh = self.head.backward_input(gy)
        gh += gy * e
        return self.features.backward_input(gh)

    def jvp(self, dx):
        h, e = self._need_cache(self._cache)
        dh = self.features.jvp(dx)
        self._dh = dh
        out = self.head.jvp(dh)
        out += get_backend().xp.einsum("nf,nf->n", e, dh)[:, None]
        return out

    def backward_jvp(self, gy, gdy):
        h, e = self._need_cache(self._cache)
        dh = self._need_cache(self._dh)
        gh, gdh = self.head.backward_jvp(gy, gdy)
        gdh += gdy * e
        ge = gdy * dh
        if gy is not None:
            gh += gy * e
            ge += gy * h
        self.embed.backward(ge)
        return self.features.backward_jvp(gh, gdh)


class WithLabels(Module):
    """Binds fixed labels to a conditional module: forward(x) = module(x, labels).

    For code that takes a one-argument module — gradient penalties on a conditional critic,
    ``gradcheck.check_module``. Parameters are the wrapped module's (names prefixed "module.").
    """

    def __init__(self, module: Module, labels):
        super().__init__()
        self.module = module
        self.labels = labels

    def describe(self):
        return f"{self.module.describe()} with labels bound"

    def forward(self, x):
        return self.module(x, self.labels)

    def backward(self, gy):
        return self.module.backward(gy)

    def backward_input(self, gy):
        return self.module.backward_input(gy)

    def backward_params(self, gy):
        return self.module.backward_params(gy)

    def jvp(self, dx):
        return self.module.jvp(dx)

    def backward_jvp(self, gy, gdy):
        return self.module.backward_jvp(gy, gdy)
