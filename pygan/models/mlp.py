"""MLP GAN for 1-D/2-D toy data (W1 of benchmarks/WORKLOADS.md at the defaults).

G: z(latent_dim) → width → … → width → data_dim, ReLU between layers, no output activation.
D: data_dim → width → … → width → 1, LeakyReLU(0.2) between layers, one logit per sample.
``depth`` is the number of hidden layers (W1: 3). PyTorch's default initialisation.
"""
from __future__ import annotations

from .. import nn


def mlp(in_dim: int, out_dim: int, width: int, depth: int, activation) -> nn.Sequential:
    """Sequential(Linear(in, w), act, [Linear(w, w), act] × (depth − 1), Linear(w, out))."""
    layers, d = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, width), activation()]
        d = width
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


def mlp_generator(latent_dim: int = 2, data_dim: int = 2, width: int = 128, depth: int = 3) -> nn.Sequential:
    return mlp(latent_dim, data_dim, width, depth, nn.ReLU)


def mlp_discriminator(data_dim: int = 2, width: int = 128, depth: int = 3, slope: float = 0.2) -> nn.Sequential:
    return mlp(data_dim, 1, width, depth, lambda: nn.LeakyReLU(slope))
