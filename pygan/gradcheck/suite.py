"""The suite behind ``pygan gradcheck``: every layer, every loss, a whole G∘D game per loss, and
the pix2pix game (U-Net G, PatchGAN D, the L1 term).

Each case builds a small float64 instance, runs the matching ``pygan.gradcheck`` check and
yields its :class:`~pygan.gradcheck.Report`. Shapes are small and odd on purpose (batch 1 and
3, sizes not multiples of anything) so that the run takes seconds.
"""
from __future__ import annotations

import copy
from typing import Callable, Iterator

import numpy as np

from .. import losses, nn, penalties
from .. import gradcheck


def _layer_cases(rng) -> Iterator[tuple[str, Callable[[], nn.Module], np.ndarray]]:
    r = rng.standard_normal
    yield "Linear(5→3)", lambda: nn.Linear(5, 3), r((3, 5))
    yield "Linear(4→2, no bias), batch 1", lambda: nn.Linear(4, 2, bias=False), r((1, 4))
    yield "Conv2d(2→3, k3 s1 p1)", lambda: nn.Conv2d(2, 3, 3, 1, 1), r((2, 2, 5, 6))
    yield "Conv2d(2→3, k4 s2 p1)", lambda: nn.Conv2d(2, 3, 4, 2, 1), r((1, 2, 7, 6))
    yield "Conv2d(1→2, k(2,3) s2 p2, no bias)", lambda: nn.Conv2d(1, 2, (2, 3), 2, 2, bias=False), r((3, 1, 5, 5))
    yield "ConvTranspose2d(3→2, k4 s2 p1)", lambda: nn.ConvTranspose2d(3, 2, 4, 2, 1), r((2, 3, 3, 4))
    yield "ConvTranspose2d(2→2, k3 s2 p1 op1)", lambda: nn.ConvTranspose2d(2, 2, 3, 2, 1, 1), r((1, 2, 3, 3))
    yield "BatchNorm1d(4), train", lambda: nn.BatchNorm1d(4), r((5, 4))
    yield "BatchNorm2d(3), train", lambda: nn.BatchNorm2d(3), r((2, 3, 3, 2))
    yield "BatchNorm2d(3), eval", lambda: _eval_bn(3), r((2, 3, 3, 2))
    yield "LayerNorm(6)", lambda: nn.LayerNorm(6), r((3, 6))
    yield "LayerNorm((2, 3))", lambda: nn.LayerNorm((2, 3)), r((4, 2, 3))
    yield "ReLU", nn.ReLU, _off_kink(r((3, 7)))
    yield "LeakyReLU(0.2)", lambda: nn.LeakyReLU(0.2), _off_kink(r((3, 7)))
    yield "Tanh", nn.Tanh, r((3, 7))
    yield "Sigmoid", nn.Sigmoid, r((3, 7))
    yield "Dropout(0.3), train", lambda: nn.Dropout(0.3), r((4, 5))
    yield "Flatten", nn.Flatten, r((2, 3, 2, 2))
    yield "Unflatten(1, (3, 2))", lambda: nn.Unflatten(1, (3, 2)), r((2, 6))
    yield "ConditionalBatchNorm2d(3, cond 4), train", lambda: ConditionAsParameter(_cbn(3, 4), r((2, 4))), r((2, 3, 3, 2))
    yield ("ConditionalBatchNorm2d(3, cond 4), eval", lambda: ConditionAsParameter(_cbn(3, 4), r((2, 4))).eval(),
           r((2, 3, 3, 2)))


class ConditionAsParameter(nn.Module):
    """A conditional layer (``forward(x, c)``, ∂L/∂c left in ``grad_condition``) as a one-input
    module whose conditioning vector c is the Parameter ``condition``: a finite-difference
    check then covers ∂L/∂c like any other parameter gradient."""

    def __init__(self, layer: nn.Module, c):
        super().__init__()
        self.layer = layer
        self.condition = nn.Parameter(np.asarray(c, dtype=layer.dtype))

    def describe(self):
        return f"{self.layer.describe()} with c as a parameter"

    def forward(self, x):
        return self.layer(x, self.condition.data)

    def backward(self, gy):
        gx = self.layer.backward(gy)
        self.condition.grad += self.layer.grad_condition
        return gx


def _cbn(c, d, train=True):
    """A ConditionalBatchNorm2d with non-zero projections (and running statistics for eval)."""
    rng = np.random.default_rng(7)
    m = nn.ConditionalBatchNorm2d(c, d, init_std=0.5)
    m.bn.running_mean[...] = rng.uniform(-0.5, 0.5, c)
    m.bn.running_var[...] = rng.uniform(0.5, 2.0, c)
    return m.train(train)


def _eval_bn(c):
    bn = nn.BatchNorm2d(c)
    bn.running_mean[...] = np.linspace(-0.5, 0.5, c)
    bn.running_var[...] = np.linspace(0.5, 2.0, c)
    return bn.eval()


def _off_kink(x):
    x[np.abs(x) < 1e-3] = 0.5  # finite differences are not defined at the kink of ReLU
    return x


def _gan_pair(rng):
    G = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
    D = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    return G, D, rng.standard_normal((5, 3)), rng.standard_normal((5, 2))


def _conv_gan_pair(rng):
    G = nn.Sequential(nn.Linear(3, 2 * 3 * 3), nn.Unflatten(1, (2, 3, 3)), nn.BatchNorm2d(2), nn.ReLU(),
                      nn.ConvTranspose2d(2, 1, 4, 2, 1), nn.Tanh())
    D = nn.Sequential(nn.Conv2d(1, 2, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(2 * 3 * 3, 1))
    return G, D, rng.standard_normal((4, 3)), rng.standard_normal((4, 1, 6, 6))


def _critics(rng):
    """Small critics with every layer a penalised critic may hold."""
    mlp = {"ReLU": nn.ReLU, "LeakyReLU": lambda: nn.LeakyReLU(0.2), "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid}
    for name, act in mlp.items():
        yield (f"MLP critic ({name})", nn.Sequential(nn.Linear(3, 8), act(), nn.Linear(8, 8), act(), nn.Linear(8, 1)),
               (5, 3))
    yield ("MLP critic (LayerNorm, Dropout eval)",
           nn.Sequential(nn.Linear(3, 8), nn.LayerNorm(8), nn.Tanh(), nn.Dropout(0.2), nn.Linear(8, 1)).eval(), (5, 3))
    conv = nn.Sequential(nn.Conv2d(1, 2, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(2, 3, 3, 1, 1), nn.Tanh(),
                         nn.Flatten(), nn.Linear(3 * 3 * 3, 1))
    yield "conv critic (Conv2d, Tanh, Flatten)", conv, (3, 1, 5, 5)
    convt = nn.Sequential(nn.ConvTranspose2d(1, 2, 3, 2, 1), nn.Sigmoid(), nn.Flatten(), nn.Unflatten(1, (2, 3, 3)),
                          nn.Conv2d(2, 1, 3), nn.Flatten(), nn.Linear(1, 1))
    yield "conv critic (ConvTranspose2d, Sigmoid, Unflatten)", convt, (2, 1, 2, 2)
    sn = nn.Sequential(nn.spectral_norm(nn.Linear(3, 8)), nn.Tanh(), nn.spectral_norm(nn.Linear(8, 1))).eval()
    yield "spectral-norm critic", sn, (4, 3)


def _penalty_cases(rng):
    for title, D, shape in _critics(rng):
        n = shape[0]
        real, fake = rng.standard_normal(shape), rng.standard_normal(shape)
        yield f"gradient penalty, {title}", penalties.gradient_penalty, D, (real, fake), {"alpha": rng.random(n)}
        yield f"R1, {title}", penalties.r1_penalty, D, (real,), {}
        if title.startswith("MLP critic (T"):
            yield (f"Lipschitz (two-sided), {title}", penalties.lipschitz_penalty, D, (real, fake),
                   {"t": rng.random((n, 2))})
            steep = copy.deepcopy(D)  # one-sided is zero unless some quotient exceeds 1
            for p in steep.parameters():
                p.data *= 4
            yield (f"Lipschitz (one-sided), steep {title}", penalties.lipschitz_penalty, steep, (real, fake),
                   {"t": rng.random((n, 2)), "one_sided": True})


def _vae_cases(rng):
    from ..models import build_vae
    small = {"hidden": 12, "latent_dim": 3}
    for name, kw in (("ae-8", small), ("vae-8", small), ("vae-8", dict(small, likelihood="gaussian", learn_sigma=True)),
                     ("cvae-8", small)):
        m = build_vae(name, **kw)
        x = np.tanh(rng.standard_normal((3, 1, 8, 8)))
        labels = rng.integers(0, 10, 3) if name.startswith("cvae") else None
        yield f"{name} {kw.get('likelihood', '')}".strip(), m, x, rng.standard_normal((3, 3)), labels


def run(sections=("layers", "losses", "gan", "penalties", "vae"), seed: int = 0) -> Iterator[gradcheck.Report]:
    """Yield one report per case of the chosen sections."""
    rng = np.random.default_rng(seed)
    if "layers" in sections:
        for title, make, x in _layer_cases(rng):
            rep = gradcheck.check_module(make(), x, seed=seed)
            rep.title = f"layer {title}"
            yield rep
    if "losses" in sections:
        for name in losses.names():
            for shape in [(1,), (6, 1)]:
                rep = gradcheck.check_loss(losses.get(name), 1.5 * rng.standard_normal(shape),
                                           1.5 * rng.standard_normal(shape))
                rep.title = f"loss {name}, logits {shape}"
                yield rep
    if "penalties" in sections:
        for title, fn, D, args, kwargs in _penalty_cases(rng):
            rep = gradcheck.check_penalty(fn, D, *args, seed=seed, **kwargs)
            rep.title = f"penalty: {title}"
            yield rep
    if "vae" in sections:
        from ..models import check_elbo
        for title, m, x, eps, labels in _vae_cases(rng):
            rep = check_elbo(m, x, eps, labels, seed=seed)
            rep.title = f"ELBO of {title} (ε fixed)"
            yield rep
    if "gan" in sections:
        from ..models.pix2pix import NLayerDiscriminator, UnetGenerator
        for name in ("nonsaturating", "least_squares"):
            G = UnetGenerator(1, 1, 3, ngf=2, image_size=12)
            D = NLayerDiscriminator(2, ndf=2, n_layers=1)
            x, y = rng.standard_normal((2, 1, 12, 12)), np.tanh(rng.standard_normal((2, 1, 12, 12)))
            rep = gradcheck.check_pix2pix(G, D, losses.get(name), x, y, l1_weight=100.0, seed=seed)
            rep.title = f"pix2pix game (U-Net, PatchGAN, + 100·L1), loss {name}"
            yield rep
        for name in losses.names():
            for arch, pair in (("MLP", _gan_pair), ("conv", _conv_gan_pair)):
                G, D, z, real = pair(rng)
                rep = gradcheck.check_gan(G, D, losses.get(name), z, real, seed=seed)
                rep.title = f"G∘D game ({arch}), loss {name}"
                yield rep
