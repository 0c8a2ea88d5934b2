"""pix2pix (Isola et al. 2017): a U-Net generator and a PatchGAN discriminator, scaled to 28×28.

The networks follow the authors' ``models/networks.py`` (pytorch-CycleGAN-and-pix2pix) layer
for layer, with their class names, argument orders and state-dict keys, so a state dict moves
between this module and theirs:

* :class:`UnetSkipConnectionBlock` — one level of the U-Net, built recursively around the level
  below (``submodule``). A level is ``cat([x, up(sub(down(x)))], 1)`` (a
  :class:`~pygan.nn.ConcatSkip` whose submodule is ``self.model``), the outermost level just
  ``up(sub(down(x)))``:

      outermost  [Conv(k4 s2 p1)] + [sub] + [ReLU, ConvT(2·inner → outer), Tanh]
      innermost  [LReLU(0.2), Conv] + [ReLU, ConvT(inner → outer), Norm]
      otherwise  [LReLU(0.2), Conv, Norm] + [sub] + [ReLU, ConvT(2·inner → outer), Norm] (+ Dropout(0.5))

  Convolutions before a norm have no bias under BatchNorm (the authors' ``use_bias``).
* :class:`UnetGenerator` — ``num_downs`` levels. The authors' channel rule, level i (0 = outermost)
  taking ngf·min(2^(i−1), 8) channels to ngf·min(2^i, 8), written for any depth (their code spells
  it out for ≥ 5 levels; at 256×256, 8 levels); Dropout on the levels whose channels are
  8·ngf → 8·ngf (none below 5 levels). Scaled to 28×28: 4 levels, 28 → 14 → 7 → 3 → 1 (a 1×1
  bottleneck, as their 8 levels give at 256), each transposed convolution taking
  ``output_padding`` = s_i − 2·s_{i+1} (7 → 3 and 3 → 1 lose a row: the way up adds it back).
  ``up="nearest"`` replaces each ConvT(k4 s2 p1) by Upsample(size=s_i, nearest) → Conv(k3 s1 p1)
  (the alternative that avoids checkerboard artefacts).
* :class:`NLayerDiscriminator` — the PatchGAN: ``n_layers`` stride-2 Conv(k4 p1) (the first without
  a norm), a stride-1 Conv(k4 p1) → Norm → LReLU, a stride-1 Conv(k4 p1) to one channel: one logit
  per patch. On (input, output) pairs of 28×28 with ``n_layers=1``: 28 → 14 → 13 → 12, a 12×12 map
  of logits each seeing a 16×16 patch (n_layers=2: a 5×5 map of 34×34 patches, the whole digit).

``build_pix2pix(name, **options) -> Pix2PixModel`` (name "pix2pix-28"); options:
``in_channels`` (1), ``out_channels`` (1), ``image_size`` (28), ``ngf`` (16), ``ndf`` (16),
``num_downs`` (4), ``n_layers`` (1), ``norm`` ("batch" | "instance" | "none"), ``use_dropout``
(False), ``up`` ("transpose" | "nearest"). Weights: the authors' ``init_weights("normal", 0.02)``
(= :func:`pygan.nn.dcgan_init`). Gradients: everything is made of layers whose backward is derived
in docs/gradients.md (ConcatSkip: #identity-residual-and-concatskip); the conditional
discriminator's input split and the L1 term: docs/gradients.md#pix2pix.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import nn
from ..backend import get_backend

__all__ = ["UnetSkipConnectionBlock", "UnetGenerator", "NLayerDiscriminator", "Pix2PixModel",
           "build_pix2pix", "PIX2PIX_MODELS", "NORMS", "level_sizes", "patch_map_size"]

NORMS = ("batch", "instance", "none")
_UPS = ("transpose", "nearest")


def _norm_layer(norm: str):
    if norm == "batch":
        return nn.BatchNorm2d
    if norm == "instance":
        return nn.InstanceNorm2d            # affine=False, no running statistics: the authors' choice
    if norm == "none":
        return lambda c: nn.Identity()
    raise ValueError(f"pix2pix: norm must be one of {', '.join(NORMS)}, got {norm!r}")


def _up(in_c, out_c, out_size, output_padding, bias, up):
    if up == "transpose":
        return [nn.ConvTranspose2d(in_c, out_c, 4, 2, 1, output_padding=output_padding, bias=bias)]
    return [nn.Upsample(size=out_size), nn.Conv2d(in_c, out_c, 3, 1, 1, bias=bias)]


class _Wrapper(nn.Module):
    """A module that is ``self.model`` (the authors' networks wrap one nn.Sequential)."""

    def forward(self, x):
        return self.model(x)

    def backward(self, gy):
        return self.model.backward(gy)

    def backward_input(self, gy):
        return self.model.backward_input(gy)

    def backward_params(self, gy):
        self.model.backward_params(gy)

    def jvp(self, dx):
        return self.model.jvp(dx)

    def backward_jvp(self, gy, gdy):
        return self.model.backward_jvp(gy, gdy)


class UnetSkipConnectionBlock(nn.ConcatSkip):
    """One U-Net level (the authors' class of the same name): y = cat([x, model(x)], 1), or
    y = model(x) for the outermost level. See the module docstring for ``model``'s layers.

    outer_nc / inner_nc: channels outside / inside this level (input_nc: the outermost level's
    input channels, default outer_nc); submodule: the level below (None for the innermost);
    norm_layer: a constructor C ↦ Module (nn.BatchNorm2d, nn.InstanceNorm2d, …); output_padding
    of the way-up transposed convolution, and out_size (this level's input side) for
    ``up="nearest"``. State-dict keys: ``model.<i>.*`` as the authors'.

    Backward: ConcatSkip's (docs/gradients.md#identity-residual-and-concatskip): gy splits into the
    skip's part and model's; ∂L/∂x = gy_skip + model.backward(gy_model).
    """

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=nn.BatchNorm2d, use_dropout=False, output_padding=0, out_size=None, up="transpose"):
        nn.Module.__init__(self)
        if up not in _UPS:
            raise ValueError(f"UnetSkipConnectionBlock: up must be one of {', '.join(_UPS)}, got {up!r}")
        if up == "nearest" and out_size is None:
            raise ValueError("UnetSkipConnectionBlock: up='nearest' needs out_size (this level's input side)")
        if not innermost and submodule is None:
            raise ValueError("UnetSkipConnectionBlock: only the innermost level may have no submodule")
        self.outermost = bool(outermost)
        self.innermost = bool(innermost)
        self.dim = 1
        self._cache = None
        use_bias = norm_layer is not nn.BatchNorm2d
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = _up(inner_nc * 2, outer_nc, out_size, output_padding, True, up)
            model = [downconv, submodule, uprelu, *upconv, nn.Tanh()]
        elif innermost:
            upconv = _up(inner_nc, outer_nc, out_size, output_padding, use_bias, up)
            model = [downrelu, downconv, uprelu, *upconv, upnorm]
        else:
            upconv = _up(inner_nc * 2, outer_nc, out_size, output_padding, use_bias, up)
            model = [downrelu, downconv, downnorm, submodule, uprelu, *upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    @property
    def submodule(self):
        """The concatenated branch of the skip (ConcatSkip's ``submodule``) is ``self.model``."""
        return self.model

    def describe(self):
        where = "outermost" if self.outermost else "innermost" if self.innermost else "level"
        return f"UnetSkipConnectionBlock({where})"

    def forward(self, x):
        return self.model(x) if self.outermost else super().forward(x)

    def backward(self, gy):
        return self.model.backward(gy) if self.outermost else super().backward(gy)

    def backward_input(self, gy):
        return self.model.backward_input(gy) if self.outermost else super().backward_input(gy)

    def backward_params(self, gy):
        if self.outermost:
            self.model.backward_params(gy)
        else:
            super().backward_params(gy)

    def jvp(self, dx):
        return self.model.jvp(dx) if self.outermost else super().jvp(dx)

    def backward_jvp(self, gy, gdy):
        return self.model.backward_jvp(gy, gdy) if self.outermost else super().backward_jvp(gy, gdy)


def level_sizes(image_size: int, num_downs: int) -> list:
    """The side at each U-Net level: s₀ = image_size, s_{i+1} = ⌊(s_i − 2)/2⌋ + 1 (Conv k4 s2 p1)."""
    sizes = [int(image_size)]
    for _ in range(num_downs):
        sizes.append((sizes[-1] + 2 - 4) // 2 + 1)
    return sizes


class UnetGenerator(_Wrapper):
    """The authors' ``UnetGenerator(input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout)``
    for images of side ``image_size``: (N, input_nc, s, s) → (N, output_nc, s, s) in (−1, 1).

    Level i of ``num_downs`` (0 the outermost) maps ngf·min(2^(i−1), 8) channels (output_nc at
    level 0) to ngf·min(2^i, 8) and halves the side by Conv(k4 s2 p1); the way up restores it with
    ``output_padding`` s_i − 2·s_{i+1}. The innermost level's side must be ≥ 1. Keys: ``model.*``.
    """

    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm_layer=nn.BatchNorm2d, use_dropout=False,
                 image_size=256, up="transpose"):
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"UnetGenerator: num_downs must be ≥ 2 (an outermost and an innermost level), got {num_downs}")
        sizes = level_sizes(image_size, num_downs)
        if sizes[-1] < 1:
            raise ValueError(f"UnetGenerator: {num_downs} stride-2 levels shrink a side of {image_size} to nothing "
                             f"(sides {sizes}); use fewer levels")
        self.sizes = sizes

        def ch(i):
            return ngf * min(2 ** i, 8)

        block = None
        for i in range(num_downs - 1, -1, -1):
            outer, inner = (output_nc if i == 0 else ch(i - 1)), ch(i)
            kw = dict(norm_layer=norm_layer, output_padding=sizes[i] - 2 * sizes[i + 1], out_size=sizes[i], up=up)
            if i == num_downs - 1:
                block = UnetSkipConnectionBlock(outer, inner, innermost=True, **kw)
            elif i == 0:
                block = UnetSkipConnectionBlock(outer, inner, input_nc=input_nc, submodule=block, outermost=True, **kw)
            else:
                block = UnetSkipConnectionBlock(outer, inner, submodule=block,
                                                use_dropout=use_dropout and outer == inner == 8 * ngf, **kw)
        self.model = block

    def describe(self):
        return f"UnetGenerator({len(self.sizes) - 1} levels, sides {self.sizes})"


class NLayerDiscriminator(_Wrapper):
    """The authors' PatchGAN ``NLayerDiscriminator(input_nc, ndf, n_layers, norm_layer)``: (N,
    input_nc, H, W) → (N, 1, H', W'), one logit per patch. Keys: ``model.<i>.*``."""

    def __init__(self, input_nc, ndf=64, n_layers=3, norm_layer=nn.BatchNorm2d):
        super().__init__()
        use_bias = norm_layer is not nn.BatchNorm2d
        kw, padw = 4, 1
        sequence = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2 ** n, 8)
            sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw,
                                   bias=use_bias), norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True)]
        nf_mult_prev, nf_mult = nf_mult, min(2 ** n_layers, 8)
        sequence += [nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw,
                               bias=use_bias), norm_layer(ndf * nf_mult), nn.LeakyReLU(0.2, True)]
        sequence += [nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]
        self.model = nn.Sequential(*sequence)
        self.n_layers = int(n_layers)

    def describe(self):
        return f"NLayerDiscriminator({self.n_layers} layers)"


def patch_map_size(image_size: int, n_layers: int) -> int:
    """The side of the PatchGAN's logit map: n_layers halvings (k4 s2 p1), then two k4 s1 p1 (−1 each)."""
    s = int(image_size)
    for _ in range(n_layers):
        s = (s + 2 - 4) // 2 + 1
    return s - 2


@dataclass(eq=False)
class Pix2PixModel:
    """A conditional image-to-image GAN: G maps an input x (N, in_channels, H, W) to an output
    (N, out_channels, H, W); D judges the channel-concatenated pair cat([x, y], 1) with one logit
    per patch, (N, 1, H', W').

    ``d_backward_input`` returns only ∂L/∂y (the output's channels of the pair's gradient): x is
    data, so its part of the gradient is not needed (docs/gradients.md#pix2pix). Each backward
    uses the cache of its module's most recent forward.
    """

    G: nn.Module
    D: nn.Module
    in_channels: int
    out_channels: int
    image_size: int
    _config: dict = field(default_factory=dict, repr=False)
    num_classes: int = 0

    @property
    def name(self) -> str:
        return self._config.get("name", "custom")

    @property
    def dtype(self):
        return self.G.dtype or np.float32

    @property
    def input_shape(self) -> tuple:
        return (self.in_channels, self.image_size, self.image_size)

    @property
    def data_shape(self) -> tuple:
        """The shape of one output (and target) image."""
        return (self.out_channels, self.image_size, self.image_size)

    def _check(self, a, shape, what):
        if tuple(getattr(a, "shape", ())[1:]) != tuple(shape) or getattr(a, "ndim", 0) != 4:
            raise ValueError(f"{self.name}: {what} must have shape (N, {', '.join(map(str, shape))}), "
                             f"got {tuple(getattr(a, 'shape', ()))}")

    def g_forward(self, x):
        """G(x), shape (N, out_channels, H, W); caches in G."""
        self._check(x, self.input_shape, "the input")
        return self.G(x)

    def g_backward(self, gy) -> None:
        """Adds ∂L/∂θ_G into G's grads given gy = ∂L/∂G(x) (x is data: no input gradient)."""
        self.G.backward_params(gy)

    def d_forward(self, x, y):
        """D(cat([x, y], 1)): logits (N, 1, H', W'); caches in D."""
        self._check(x, self.input_shape, "the input")
        self._check(y, self.data_shape, "the output")
        return self.D(get_backend().xp.concatenate([x, y], axis=1))

    def d_backward_params(self, glogits) -> None:
        """Adds ∂L/∂θ_D into D's grads (the pair is held fixed: no input gradient)."""
        self.D.backward_params(glogits)

    def d_backward_input(self, glogits):
        """∂L/∂y of the pair's output part only, D's grads untouched (the generator step)."""
        g = self.D.backward_input(glogits)
        return get_backend().xp.ascontiguousarray(g[:, self.in_channels:])

    def parameters(self):
        return self.G.parameters() + self.D.parameters()

    def config(self) -> dict:
        return dict(self._config)

    def train(self, mode: bool = True):
        self.G.train(mode)
        self.D.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def eval_mode(self):
        return nn.eval_mode(self.G, self.D)

    def describe(self) -> str:
        return f"{self.name}: {self.G.describe()}, {self.D.describe()}"


_DEFAULTS = {
    "pix2pix-28": dict(in_channels=1, out_channels=1, image_size=28, ngf=16, ndf=16, num_downs=4, n_layers=1,
                       norm="batch", use_dropout=False, up="transpose"),
}
PIX2PIX_MODELS = tuple(_DEFAULTS)


def _check_options(name, cfg):
    for key in ("in_channels", "out_channels", "image_size", "ngf", "ndf", "num_downs", "n_layers"):
        v = cfg[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"build_pix2pix({name!r}): {key} must be a positive integer, got {v!r}")
        cfg[key] = int(v)
    if cfg["norm"] not in NORMS:
        raise ValueError(f"build_pix2pix({name!r}): norm must be one of {', '.join(NORMS)}, got {cfg['norm']!r}")
    if cfg["up"] not in _UPS:
        raise ValueError(f"build_pix2pix({name!r}): up must be one of {', '.join(_UPS)}, got {cfg['up']!r}")
    if not isinstance(cfg["use_dropout"], (bool, np.bool_)):
        raise ValueError(f"build_pix2pix({name!r}): use_dropout must be True or False, got {cfg['use_dropout']!r}")
    cfg["use_dropout"] = bool(cfg["use_dropout"])
    sizes = level_sizes(cfg["image_size"], cfg["num_downs"])
    if sizes[-1] < 1 or cfg["num_downs"] < 2:
        raise ValueError(f"build_pix2pix({name!r}): num_downs {cfg['num_downs']} does not fit image_size "
                         f"{cfg['image_size']} (sides {sizes}); use 2…{max(2, len([s for s in sizes if s >= 1]) - 1)}")
    if patch_map_size(cfg["image_size"], cfg["n_layers"]) < 1:
        raise ValueError(f"build_pix2pix({name!r}): n_layers {cfg['n_layers']} leaves no patch of a "
                         f"{cfg['image_size']}×{cfg['image_size']} image; use fewer layers")


def build_pix2pix(name: str = "pix2pix-28", **overrides) -> Pix2PixModel:
    """The pix2pix model ``name`` (one of :data:`PIX2PIX_MODELS`) with option overrides (module
    docstring); float32, initialised N(0, 0.02) from pygan's global generator."""
    if name not in _DEFAULTS:
        raise ValueError(f"unknown pix2pix model {name!r}; available: {', '.join(PIX2PIX_MODELS)}")
    unknown = sorted(set(overrides) - set(_DEFAULTS[name]))
    if unknown:
        raise ValueError(f"build_pix2pix({name!r}): unknown option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; options: {', '.join(_DEFAULTS[name])}")
    cfg = {**_DEFAULTS[name], **overrides}
    _check_options(name, cfg)
    norm = _norm_layer(cfg["norm"])
    G = UnetGenerator(cfg["in_channels"], cfg["out_channels"], cfg["num_downs"], cfg["ngf"], norm,
                      cfg["use_dropout"], image_size=cfg["image_size"], up=cfg["up"])
    D = NLayerDiscriminator(cfg["in_channels"] + cfg["out_channels"], cfg["ndf"], cfg["n_layers"], norm)
    nn.dcgan_init(G)
    nn.dcgan_init(D)
    return Pix2PixModel(G, D, cfg["in_channels"], cfg["out_channels"], cfg["image_size"], {"name": name, **cfg})
