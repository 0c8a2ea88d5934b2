"""A BigGAN-style class-conditional GAN at 28×28 (Brock et al. 2019), small.

The structure of the authors' released code (BigGAN-PyTorch's ``BigGAN.py`` and ``layers.py``),
scaled to MNIST:

Generator ``BigGANGenerator``: z (latent_dim) — with the hierarchical latent space split into
num_blocks + 1 equal chunks: the first feeds the linear layer, chunk i + 1 conditions block i —
→ Linear → (4·width, 7, 7) → GBlock(4w → 2w, 7 → 14) → GBlock(2w → w, 14 → 28) → BatchNorm →
ReLU → Conv3×3(w → 1) → tanh. A GBlock is ``Conditioned(Residual(main, shortcut))`` with

    main     = CBN → ReLU → Upsample(2) → Conv3×3 → CBN → ReLU → Conv3×3
    shortcut = Upsample(2) → Conv1×1

(the code's order; normalising before the nearest upsampling gives the same statistics and the
same values as after it, since every pixel is copied s² times). Each CBN's gain 1 + W_γc and bias
W_βc read the block's conditioning vector c = [shared(y), z_chunk] — one class embedding
``shared`` for every block. The ablation's variants (``conditioning``):

* ``"input"``: today's cGAN — [z, E[y]] into the linear layer, plain BatchNorm (with γ, β) in
  the blocks; no hierarchical z;
* ``"cbn"``: CBN whose gain and bias are per-class rows (a linear map of one-hot(y): BigGAN's
  ccbn without a shared embedding), the whole z into the linear layer;
* ``"shared"`` (BigGAN): CBN on [shared(y), z_chunk], hierarchical z (``hierarchical``).

Discriminator: a residual projection discriminator with spectral norm on every Conv2d, Linear
and the projection embedding: DBlock(1 → w, 28 → 14), DBlock(w → 2w, 14 → 7), DBlock(2w → 2w, 7)
→ ReLU → global sum pool → ψ(h) + ⟨E[y], h⟩ (:class:`~pygan.models.conditional.ProjectionDiscriminator`).
A DBlock is Residual(main, shortcut) with main = [ReLU] → Conv3×3 → ReLU → Conv3×3 [→ AvgPool(2)]
(the first block has no leading ReLU: its input is the image) and a learned 1×1 shortcut where the
channels change or the block downsamples (pooling first in the first block, after otherwise).

Weights start orthogonal (the code's ``G_init = D_init = 'ortho'``), biases zero. Every layer
is pygan's, with its own checked backward (docs/gradients.md#conditionalbatchnorm2d and the
sections it links); the whole game is checked by ``check_biggan`` in float64.
"""
from __future__ import annotations

from .. import nn
from ..backend import get_backend
from .conditional import ProjectionDiscriminator, _check_labels

CONDITIONINGS = ("input", "cbn", "shared")


def gblock(in_ch: int, out_ch: int, norm) -> nn.Module:
    """BigGAN's generator block, ``Conditioned(Residual(main, shortcut))``: ``norm(channels)``
    makes its two normalisation layers (ConditionalBatchNorm2d, or BatchNorm2d for an
    unconditional block)."""
    main = nn.Sequential(norm(in_ch), nn.ReLU(), nn.Upsample(scale_factor=2), nn.Conv2d(in_ch, out_ch, 3, padding=1),
                         norm(out_ch), nn.ReLU(), nn.Conv2d(out_ch, out_ch, 3, padding=1))
    shortcut = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(in_ch, out_ch, 1))
    return nn.Conditioned(nn.Residual(main, shortcut))


def dblock(in_ch: int, out_ch: int, downsample: bool, preactivation: bool) -> nn.Module:
    """BigGAN's discriminator block (before spectral norm): Residual(main, shortcut)."""
    main = ([nn.ReLU()] if preactivation else []) + [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.ReLU(),
                                                     nn.Conv2d(out_ch, out_ch, 3, padding=1)]
    if downsample:
        main.append(nn.AvgPool2d(2))
    shortcut = None
    if in_ch != out_ch or downsample:
        sc = [nn.Conv2d(in_ch, out_ch, 1)]
        if downsample:
            sc = sc + [nn.AvgPool2d(2)] if preactivation else [nn.AvgPool2d(2)] + sc
        shortcut = nn.Sequential(*sc)
    return nn.Residual(nn.Sequential(*main), shortcut)


class BigGANGenerator(nn.Module):
    """G(z, y) of a BigGAN (see the module docstring). Shapes: z (N, latent_dim), labels (N,) →
    images (N, 1, 28, 28) in [−1, 1].

    Backward: the tail, the blocks in reverse (each leaving ∂L/∂c_i in ``grad_condition``), the
    linear layer; then c_i = [e, z_{i+1}] splits: ∂L/∂e = Σ_i ∂L/∂c_i[:, :E] goes into the shared
    embedding (one gradient, summed over the blocks that read it), ∂L/∂z_{i+1} = ∂L/∂c_i[:, E:].
    Returns ∂L/∂z. Parameters: ``shared`` (or ``embed`` for "input"), ``linear``, ``blocks.*``,
    ``out.*``.
    """

    def __init__(self, latent_dim: int, num_classes: int, width: int, conditioning: str = "shared",
                 shared_dim: int = 16, hierarchical: bool = True, num_blocks: int = 2, bottom: int = 7):
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"BigGANGenerator: conditioning must be one of {', '.join(CONDITIONINGS)}, "
                             f"got {conditioning!r}")
        hierarchical = bool(hierarchical)
        if hierarchical and conditioning == "input":
            raise ValueError("BigGANGenerator: a hierarchical z conditions the blocks' CBN, which "
                             "conditioning 'input' does not have; set hierarchical = false")
        self.latent_dim, self.num_classes, self.width = int(latent_dim), int(num_classes), int(width)
        self.conditioning, self.hierarchical, self.num_blocks = conditioning, hierarchical, int(num_blocks)
        self.bottom = int(bottom)
        if hierarchical and self.latent_dim % (self.num_blocks + 1):
            raise ValueError(f"BigGANGenerator: a hierarchical z of {self.latent_dim} cannot be split into "
                             f"{self.num_blocks + 1} equal chunks (one per block and one for the linear layer); "
                             f"choose latent_dim divisible by {self.num_blocks + 1}")
        self.chunk = self.latent_dim // (self.num_blocks + 1) if hierarchical else self.latent_dim
        chans = [width * 2 ** (self.num_blocks - i) for i in range(self.num_blocks + 1)]    # 4w, 2w, w
        self.shared_dim = int(shared_dim) if conditioning == "shared" else 0
        if conditioning == "input":
            self.embed = nn.Embedding(num_classes, int(shared_dim))
            lin_in = self.latent_dim + self.embed.embedding_dim
            cond_dim = None
        else:
            if conditioning == "shared":
                self.shared = nn.Embedding(num_classes, self.shared_dim)
            e = self.shared_dim if conditioning == "shared" else num_classes
            cond_dim = e + (self.chunk if hierarchical else 0)
            lin_in = self.chunk
        self.cond_dim = cond_dim
        self.linear = nn.Linear(lin_in, chans[0] * self.bottom * self.bottom)
        self.unflatten = nn.Unflatten(1, (chans[0], self.bottom, self.bottom))

        def norm(c):
            return nn.BatchNorm2d(c) if cond_dim is None else nn.ConditionalBatchNorm2d(c, cond_dim)
        self.blocks = nn.Sequential(*[gblock(chans[i], chans[i + 1], norm) for i in range(self.num_blocks)])
        self.out = nn.Sequential(nn.BatchNorm2d(chans[-1]), nn.ReLU(), nn.Conv2d(chans[-1], 1, 3, padding=1),
                                 nn.Tanh())
        self._cache = None

    def describe(self):
        return (f"BigGANGenerator(z {self.latent_dim}, width {self.width}, {self.conditioning}"
                f"{', hierarchical z' if self.hierarchical else ''})")

    def extra_repr(self):
        return (f"latent_dim={self.latent_dim}, num_classes={self.num_classes}, width={self.width}, "
                f"conditioning={self.conditioning!r}, hierarchical={self.hierarchical}")

    def _class_code(self, labels):
        """The class part e of every block's c: shared(y), or one-hot(y) for "cbn"."""
        xp = get_backend().xp
        if self.conditioning == "shared":
            return self.shared(labels)
        onehot = xp.zeros((labels.shape[0], self.num_classes), dtype=self.dtype)
        onehot[xp.arange(labels.shape[0]), labels] = 1
        return onehot

    def forward(self, z, labels=None):
        from ..nn.module import check_input
        check_input(self, z, ndim=2, channels_axis=1, channels=self.latent_dim, what="z")
        n = z.shape[0]
        _check_labels(self, labels, n)
        xp = get_backend().xp
        if self.conditioning == "input":
            h = self.linear(xp.concatenate([z, self.embed(labels)], axis=1))
            conds = [None] * self.num_blocks
        else:
            e = self._class_code(labels)
            if self.hierarchical:
                k = self.chunk
                h = self.linear(xp.ascontiguousarray(z[:, :k]))
                conds = [xp.concatenate([e, z[:, k * (i + 1):k * (i + 2)]], axis=1) for i in range(self.num_blocks)]
            else:
                h = self.linear(z)
                conds = [e] * self.num_blocks
        h = self.unflatten(h)
        for block, c in zip(self.blocks, conds):
            h = block(h, c)
        self._cache = n
        return self.out(h)

    def _backward(self, gy, params_only):
        n = self._need_cache(self._cache)
        xp = get_backend().xp
        gh = self.out.backward(gy)
        gcs = []
        for block in reversed(list(self.blocks)):
            gh = block.backward(gh)
            gcs.append(block.grad_condition)
        gcs.reverse()
        gh = self.unflatten.backward(gh)
        if self.conditioning == "input":
            gin = self.linear.backward(gh)
            k = self.latent_dim
            self.embed.backward(xp.ascontiguousarray(gin[:, k:]))
            return None if params_only else gin[:, :k]
        e_dim = self.cond_dim - (self.chunk if self.hierarchical else 0)
        if self.conditioning == "shared":
            ge = gcs[0][:, :e_dim].copy()
            for g in gcs[1:]:
                ge += g[:, :e_dim]
            self.shared.backward(ge)
        if params_only:
            self.linear.backward_params(gh)
            return None
        gz0 = self.linear.backward(gh)
        if not self.hierarchical:
            return gz0
        return xp.concatenate([gz0] + [g[:, e_dim:] for g in gcs], axis=1)

    def backward(self, gy):
        return self._backward(gy, False)

    def backward_params(self, gy):
        """Parameter grads only (z is not trained): the linear layer skips its input gradient."""
        self._backward(gy, True)


def biggan_discriminator(num_classes: int, width: int) -> ProjectionDiscriminator:
    """The residual projection discriminator at 28×28, before spectral norm (see the module
    docstring): features end in ReLU and a global sum pool, (N, 2·width)."""
    w = width
    features = nn.Sequential(dblock(1, w, True, False), dblock(w, 2 * w, True, True), dblock(2 * w, 2 * w, False, True),
                             nn.ReLU(), nn.AvgPool2d(7, divisor_override=1), nn.Flatten())
    return ProjectionDiscriminator(features, 2 * w, num_classes)


def orthogonal_init(module: nn.Module):
    """BigGAN's initialisation: every Conv2d, Linear and Embedding weight orthogonal
    (``nn.init.orthogonal_``), biases zero; BatchNorm keeps γ = 1, β = 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            w = m._parameters.get("weight_orig", m._parameters.get("weight"))
            nn.init.orthogonal_(w)
            b = m._parameters.get("bias")
            if b is not None:
                nn.init.zeros_(b)
    return module


__all__ = ["BigGANGenerator", "biggan_discriminator", "gblock", "dblock", "orthogonal_init", "CONDITIONINGS"]
