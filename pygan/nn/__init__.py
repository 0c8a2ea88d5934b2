"""Layers with hand-derived backward passes, named and laid out like PyTorch's ``torch.nn``."""
from .module import Module, Parameter
from .linear import Linear
from .activation import ReLU, LeakyReLU, Tanh, Sigmoid
from .container import Sequential
from . import init
from .init import dcgan_init

__all__ = ["Module", "Parameter", "Linear", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Sequential",
           "init", "dcgan_init"]
