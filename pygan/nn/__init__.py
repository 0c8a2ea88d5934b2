"""Layers with hand-derived backward passes, named and laid out like PyTorch's ``torch.nn``.

Compositions: ``Sequential``; ``Residual(main, shortcut=None)`` (main(x) + shortcut(x)) and
``ConcatSkip(submodule, dim=1)`` (cat([x, submodule(x)]), pix2pix's U-Net skip); ``Identity``.
``Upsample`` (nearest; size or integer scale_factor); ``AvgPool2d`` (non-overlapping windows). ``ConditionalBatchNorm2d`` (BigGAN's
class-conditional BatchNorm) takes a second input, bound with ``set_condition`` inside one-input
compositions. ``ReLU`` and ``LeakyReLU`` accept torch's
``inplace`` and compute out of place. ``eval_mode(*modules)``: eval mode for a block.

A new layer goes here (one concept per module file): forward, backward, ``jvp``/``backward_jvp``
if a critic may hold it, its derivation in docs/gradients.md, a case in pygan/gradcheck/suite.py."""
from .module import Module, Parameter, eval_mode
from .linear import Linear
from .conv import Conv2d, ConvTranspose2d
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm, InstanceNorm2d, sync_batchnorm
from .conditional_batchnorm import ConditionalBatchNorm2d, Conditioned
from .activation import ReLU, LeakyReLU, Tanh, Sigmoid
from .dropout import Dropout, Dropout2d
from .shape import Flatten, Unflatten
from .embedding import Embedding
from .container import Sequential
from .skip import Identity, Residual, ConcatSkip
from .upsample import Upsample
from .pooling import AvgPool2d
from .spectral_norm import spectral_norm
from . import init
from .init import dcgan_init

__all__ = ["Module", "Parameter", "Linear", "Conv2d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d",
           "LayerNorm", "InstanceNorm2d", "ConditionalBatchNorm2d", "Conditioned", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Dropout", "Dropout2d", "Flatten", "Unflatten",
           "Embedding", "Sequential", "Identity", "Residual", "ConcatSkip", "Upsample", "AvgPool2d", "spectral_norm", "sync_batchnorm", "init", "dcgan_init", "eval_mode"]
