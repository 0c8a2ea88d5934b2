"""Evaluation (application layer): quality metrics, the image judge, sampling from a trained model.

:mod:`.metrics` — the numbers (modes / % high quality / KL of the toy mixtures, Fréchet distance,
JS divergence); :mod:`.judge` — a pygan-trained classifier whose features give the Fréchet
distance on images and whose predictions give a conditional model's class accuracy;
:mod:`.sampling` — drawing samples and latent walks from any generator. A new metric goes in
:mod:`.metrics`; a new judge (another image size or data set) in :mod:`.judge`.
"""
from . import judge, metrics, sampling
from .metrics import format_quality
from .sampling import generate, interpolate_latents, slerp

__all__ = ["judge", "metrics", "sampling", "generate", "interpolate_latents", "slerp", "format_quality"]
