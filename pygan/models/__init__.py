"""Ready-made GANs behind one interface: ``build(name, **overrides) -> GANModel``.

=========== ============================================================================
name        what
=========== ============================================================================
mlp         W1: G z(2) → 128 → 128 → 128 → data_dim (ReLU), D data_dim → 128³ → 1 (LReLU 0.2)
dcgan-28    W2 exactly (MNIST-sized, (1, 28, 28) in [−1, 1]), DCGAN initialisation
dcgan-8     the same family at 8×8 for the scikit-learn digits: z(32), width 32
cgan-8      conditional dcgan-8: G gets [z, E_G[y]]; D is a projection discriminator
cgan-28     conditional dcgan-28, likewise
biggan-28   BigGAN at 28×28 (pygan/models/biggan.py): residual G with class-conditional BatchNorm,
            shared embedding, hierarchical z; residual projection D with spectral norm
=========== ============================================================================

Options (``build("dcgan-8", latent_dim=64)``; an unknown option is an error naming the valid ones):

* every model: ``latent_dim``, ``spectral_norm`` (False; True wraps every Linear/Conv2d of D —
  and D's projection embedding — in :func:`pygan.nn.spectral_norm`), ``batchnorm_in_d``
  (True for DCGANs; pass False under a gradient penalty: D's BatchNorm is removed, nothing
  replaces it; the MLP has no BatchNorm and ignores it);
* mlp: ``data_dim`` (2), ``width`` (128), ``depth`` (3 hidden layers);
* dcgan-*, cgan-*: ``width`` (channels of the first conv, 2·width of the second; 64 at 28×28,
  32 at 8×8);
* cgan-*: ``num_classes`` (10), ``embed_dim`` (10: G's label embedding), ``conditioning``
  ("projection", or "concat": D sees the label as an extra learned image channel).
* biggan-28: ``latent_dim`` (48), ``width`` (16: G's last and D's first channels), ``num_classes``,
  ``g_conditioning`` ("shared": CBN on [shared(y), z chunk]; "cbn": CBN on per-class gains only;
  "input": [z, E[y]] into G's first layer, plain BatchNorm), ``shared_dim`` (16),
  ``hierarchical`` (True: z split over the linear layer and the blocks), ``spectral_norm`` (True).

pix2pix (image-to-image: a U-Net G, a PatchGAN D on (input, output) pairs) is a family of its own:
``build_pix2pix("pix2pix-28", **options)`` in :mod:`.pix2pix`.

``GANModel.config()`` returns ``{"name": …, every option}``; ``build(**config)`` rebuilds it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import nn
from ..backend import get_backend
from ..random import get_rng
from .conditional import (ConcatDiscriminator, ConditionalGenerator, LabelConcat, ProjectionDiscriminator,
                          WithLabels)
from .biggan import BigGANGenerator, biggan_discriminator, orthogonal_init
from .dcgan import dcgan_discriminator, dcgan_features, dcgan_generator, feature_dim
from .mlp import mlp_discriminator, mlp_generator
from .vae import CVAE, VAE, VAE_MODELS, AutoEncoder, build_vae, check_elbo
from .pix2pix import PIX2PIX_MODELS, Pix2PixModel, build_pix2pix

_COMMON = dict(spectral_norm=False, batchnorm_in_d=True)
_DEFAULTS = {
    "mlp": dict(data_dim=2, latent_dim=2, width=128, depth=3, spectral_norm=False, batchnorm_in_d=False),
    "dcgan-28": dict(latent_dim=100, width=64, **_COMMON),
    "dcgan-8": dict(latent_dim=32, width=32, **_COMMON),
    "cgan-28": dict(latent_dim=100, width=64, num_classes=10, embed_dim=10, conditioning="projection", **_COMMON),
    "cgan-8": dict(latent_dim=32, width=32, num_classes=10, embed_dim=10, conditioning="projection", **_COMMON),
    "biggan-28": dict(latent_dim=48, width=16, num_classes=10, g_conditioning="shared", shared_dim=16,
                      hierarchical=True, spectral_norm=True),
}
MODELS = tuple(_DEFAULTS)
_SIZES = {"dcgan-28": 28, "dcgan-8": 8, "cgan-28": 28, "cgan-8": 8}


@dataclass(eq=False)
class GANModel:
    """A generator and a discriminator with the calls a training loop needs.

    G, D: Modules (their ``parameters()`` are what the optimizers train). z ~ N(0, I) of shape
    (N, latent_dim); samples have shape (N, *data_shape); D gives logits (N, 1). Conditional
    models (num_classes > 0) need integer labels (N,) in [0, num_classes); unconditional ones
    ignore labels. Each backward uses the cache of its module's most recent forward.
    """

    G: nn.Module
    D: nn.Module
    latent_dim: int
    data_shape: tuple
    num_classes: int = 0
    _config: dict = field(default_factory=dict, repr=False)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def name(self) -> str:
        return self._config.get("name", "custom")

    @property
    def dtype(self):
        """G's floating dtype (float32 unless cast): the dtype of z and of the samples."""
        return self.G.dtype or np.float32

    def sample_z(self, n: int, rng=None):
        """z ~ N(0, I), shape (n, latent_dim), in G's dtype (float32 unless cast), on the backend."""
        rng = rng or get_rng()
        z = rng.standard_normal((int(n), self.latent_dim)).astype(self.dtype)
        return get_backend().xp.asarray(z)

    def sample_labels(self, n: int, rng=None):
        """Uniform class labels (n,) int64 for a conditional model (None for an unconditional one)."""
        if not self.conditional:
            return None
        return get_backend().xp.asarray((rng or get_rng()).integers(0, self.num_classes, int(n)))

    def g_forward(self, z, labels=None):
        """x_fake = G(z[, labels]), shape (N, *data_shape); caches in G."""
        if getattr(z, "ndim", None) != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"{self.name}: z must have shape (N, {self.latent_dim}), "
                             f"got {tuple(getattr(z, 'shape', ()))}")
        return self.G(z, labels) if self.conditional else self.G(z)

    def g_backward(self, gx) -> None:
        """Adds ∂L/∂θ_G into G's grads, given gx = ∂L/∂x_fake."""
        self.G.backward_params(gx)  # z is not trained: skip the first layer's input gradient

    def d_forward(self, x, labels=None):
        """logits = D(x[, labels]), shape (N, 1); caches in D."""
        if tuple(getattr(x, "shape", ())[1:]) != tuple(self.data_shape):
            raise ValueError(f"{self.name}: D expects samples of shape (N, {', '.join(map(str, self.data_shape))}), "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        return self.D(x, labels) if self.conditional else self.D(x)

    def d_backward(self, glogits):
        """Adds ∂L/∂θ_D into D's grads and returns ∂L/∂x, given glogits = ∂L/∂logits (N, 1)."""
        return self.D.backward(glogits)

    def d_backward_params(self, glogits) -> None:
        """Adds ∂L/∂θ_D into D's grads without ∂L/∂x: the discriminator step, where the samples
        (data, or G's output held fixed) need no gradient — D's first layer skips its
        input-gradient product, as autograd does for an input that does not require grad."""
        self.D.backward_params(glogits)

    def d_backward_input(self, glogits):
        """∂L/∂x only, D's grads untouched: the generator step, where D is not trained."""
        return self.D.backward_input(glogits)

    def critic(self, labels=None) -> nn.Module:
        """D as a one-argument module (labels bound), for gradient penalties: D or WithLabels(D, labels)."""
        if not self.conditional:
            return self.D
        return WithLabels(self.D, labels)

    def config(self) -> dict:
        """The build arguments: ``build(**model.config())`` makes the same architecture."""
        return dict(self._config)

    def train(self, mode: bool = True):
        self.G.train(mode)
        self.D.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def eval_mode(self):
        """``with model.eval_mode(): …`` — G and D in eval mode inside the block, every module's
        own mode restored after."""
        return nn.eval_mode(self.G, self.D)


def _apply_spectral_norm(D: nn.Module):
    """spectral_norm on every Linear/Conv2d (and projection Embedding) of D, in place."""
    targets = (nn.Linear, nn.Conv2d)
    for m in D.modules():
        if isinstance(m, targets) and "weight" in m._parameters:
            nn.spectral_norm(m)
    if isinstance(D, ProjectionDiscriminator):
        nn.spectral_norm(D.embed)  # as Miyato & Koyama's SNEmbedID


def _check_options(name: str, cfg: dict):
    for key in ("latent_dim", "width", "depth", "data_dim", "num_classes", "embed_dim", "shared_dim"):
        if key in cfg:
            v = cfg[key]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"build({name!r}): {key} must be a positive integer, got {v!r}")
            cfg[key] = int(v)
    for key in [k for k in ("spectral_norm", "batchnorm_in_d", "hierarchical") if k in cfg]:
        if not isinstance(cfg[key], (bool, np.bool_)):
            raise ValueError(f"build({name!r}): {key} must be True or False, got {cfg[key]!r}")
        cfg[key] = bool(cfg[key])
    if "conditioning" in cfg and cfg["conditioning"] not in ("projection", "concat"):
        raise ValueError(f"build({name!r}): conditioning must be 'projection' or 'concat', "
                         f"got {cfg['conditioning']!r}")
    if "g_conditioning" in cfg and cfg["g_conditioning"] not in ("input", "cbn", "shared"):
        raise ValueError(f"build({name!r}): g_conditioning must be 'input', 'cbn' or 'shared', "
                         f"got {cfg['g_conditioning']!r}")


def build(name: str, **overrides) -> GANModel:
    """Build the model ``name`` (one of :data:`MODELS`) with option overrides; float32 parameters,
    initialised from pygan's global generator (``pygan.manual_seed`` makes it reproducible)."""
    if name not in _DEFAULTS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
    unknown = sorted(set(overrides) - set(_DEFAULTS[name]))
    if unknown:
        raise ValueError(f"build({name!r}): unknown option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; options: {', '.join(_DEFAULTS[name])}")
    cfg = {**_DEFAULTS[name], **overrides}
    _check_options(name, cfg)
    if name == "biggan-28":
        G = BigGANGenerator(cfg["latent_dim"], cfg["num_classes"], cfg["width"], cfg["g_conditioning"],
                            cfg["shared_dim"], cfg["hierarchical"])
        D = biggan_discriminator(cfg["num_classes"], cfg["width"])
        orthogonal_init(G)
        orthogonal_init(D)
        data_shape, num_classes = (1, 28, 28), cfg["num_classes"]
    elif name == "mlp":
        G = mlp_generator(cfg["latent_dim"], cfg["data_dim"], cfg["width"], cfg["depth"])
        D = mlp_discriminator(cfg["data_dim"], cfg["width"], cfg["depth"])
        data_shape, num_classes = (cfg["data_dim"],), 0
    else:
        size, width, z = _SIZES[name], cfg["width"], cfg["latent_dim"]
        data_shape = (1, size, size)
        bn = cfg["batchnorm_in_d"]
        if name.startswith("dcgan"):
            G = dcgan_generator(z, size, width)
            D = dcgan_discriminator(size, width, batchnorm=bn)
            num_classes = 0
        else:
            num_classes, e = cfg["num_classes"], cfg["embed_dim"]
            G = ConditionalGenerator(dcgan_generator(z + e, size, width), num_classes, e, z)
            if cfg["conditioning"] == "projection":
                D = ProjectionDiscriminator(dcgan_features(size, width, batchnorm=bn),
                                            feature_dim(size, width), num_classes)
            else:
                D = ConcatDiscriminator(dcgan_discriminator(size, width, channels=2, batchnorm=bn),
                                        num_classes, data_shape)
        nn.dcgan_init(G)
        nn.dcgan_init(D)
        if isinstance(D, ProjectionDiscriminator):  # ⟨E[y], h⟩ on the scale of ψ(h): N(0, 0.02) like ψ's w
            nn.init.normal_(D.embed.weight, 0.0, 0.02)
    if cfg["spectral_norm"]:
        _apply_spectral_norm(D)
    return GANModel(G, D, cfg["latent_dim"], data_shape, num_classes, {"name": name, **cfg})


__all__ = ["build", "MODELS", "GANModel", "PIX2PIX_MODELS", "Pix2PixModel", "build_pix2pix", "VAE", "AutoEncoder", "CVAE", "VAE_MODELS", "build_vae", "check_elbo", "ConditionalGenerator", "ConcatDiscriminator", "LabelConcat",
           "ProjectionDiscriminator", "WithLabels", "BigGANGenerator", "biggan_discriminator", "mlp_generator", "mlp_discriminator", "dcgan_generator",
           "dcgan_discriminator", "dcgan_features"]
