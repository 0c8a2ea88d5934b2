"""DCGAN (Radford et al. 2016) for one-channel square images whose side is a multiple of 4.

One family, two strided (de)convolutions (k4 s2 p1, each doubling or halving the side):

    G: z → Linear(in, 2c·s·s) → Unflatten(1, (2c, s, s)) → BN → ReLU
         → ConvT(2c→c, k4 s2 p1) → BN → ReLU → ConvT(c→1, k4 s2 p1) → Tanh        (1, 4s, 4s)
    D: x (1, 4s, 4s) → Conv(1→c, k4 s2 p1) → LReLU(0.2) → Conv(c→2c, k4 s2 p1) → [BN] → LReLU(0.2)
         → Flatten → Linear(2c·s·s → 1)

with c = ``width`` and s = side/4. At side 28, c = 64, z = 100 this is W2 of benchmarks/WORKLOADS.md
exactly (G 766,017 and D 138,817 parameters, every layer with its bias, as torch builds it).

At side 8 (scikit-learn digits, "dcgan-8") with c = 32: G z(32) → 256 → (64, 2, 2) → (32, 4, 4)
→ (1, 8, 8), D (1, 8, 8) → (32, 4, 4) → (64, 2, 2) → 256 → 1. Why these sizes: two stride-2
stages, like W2, so strokes are drawn at 4×4 and 8×8 by learned up-convolutions; the 32↔64
layers (≈ 17 MFLOP each per batch of 64) dominate a step of ≈ 0.22 GFLOP (G forward 19, D
forward 18 MFLOP; three D passes; backward ≈ 2× forward), 1/48 of a W2 step; z = 32 is plenty for
64-pixel images. What these models reach on the digits: the README and benchmarks/results/digits.md.

``batchnorm_in_d=False`` (what the trainer asks for under a gradient penalty, which needs the
samples of a batch to be independent) removes D's BatchNorm and puts nothing in its place (no
LayerNorm: plain convolutions are what R1/WGAN-GP critics commonly use, and the penalties then
need second-order passes only of Conv2d, LeakyReLU, Flatten and Linear).
"""
from __future__ import annotations

from .. import nn


def _side(image_size: int) -> int:
    if image_size % 4 or image_size < 4:
        raise ValueError(f"dcgan: image_size must be a positive multiple of 4, got {image_size}")
    return image_size // 4


def dcgan_generator(in_dim: int, image_size: int = 28, width: int = 64, channels: int = 1) -> nn.Sequential:
    """z (N, in_dim) → images (N, channels, image_size, image_size) in (−1, 1)."""
    s, c = _side(image_size), width
    return nn.Sequential(
        nn.Linear(in_dim, 2 * c * s * s), nn.Unflatten(1, (2 * c, s, s)), nn.BatchNorm2d(2 * c), nn.ReLU(),
        nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(),
        nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh())


def dcgan_features(image_size: int = 28, width: int = 64, channels: int = 1, batchnorm: bool = True) -> nn.Sequential:
    """D without its last Linear: images (N, channels, size, size) → features (N, 2c·s·s)."""
    c = width
    _side(image_size)
    norm = [nn.BatchNorm2d(2 * c)] if batchnorm else []
    return nn.Sequential(
        nn.Conv2d(channels, c, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(c, 2 * c, 4, 2, 1), *norm, nn.LeakyReLU(0.2), nn.Flatten())


def dcgan_discriminator(image_size: int = 28, width: int = 64, channels: int = 1,
                        batchnorm: bool = True) -> nn.Sequential:
    """images (N, channels, size, size) → logits (N, 1)."""
    s = _side(image_size)
    layers = list(dcgan_features(image_size, width, channels, batchnorm))
    return nn.Sequential(*layers, nn.Linear(2 * width * s * s, 1))


def feature_dim(image_size: int, width: int) -> int:
    s = _side(image_size)
    return 2 * width * s * s
