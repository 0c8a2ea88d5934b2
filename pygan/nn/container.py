"""Sequential: forward through the layers in order, backward in reverse."""
from __future__ import annotations

from .module import Module


class Sequential(Module):
    """Children are named "0", "1", … as in PyTorch, so parameter names are "0.weight", …"""

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(layer).__name__}, not a Module")
            setattr(self, str(i), layer)

    def __len__(self):
        return len(self._modules)

    def __getitem__(self, i):
        layers = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(*layers[i])
        return layers[i]

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, layer: Module):
        setattr(self, str(len(self)), layer)
        return self

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def backward(self, gy):
        for layer in reversed(self._modules.values()):
            gy = layer.backward(gy)
        return gy

    def backward_input(self, gy):
        """Backward for ∂L/∂x only: every layer leaves its parameter grads untouched."""
        for layer in reversed(self._modules.values()):
            gy = layer.backward_input(gy)
        return gy

    def backward_params(self, gy):
        """Backward without ∂L/∂x: the first layer skips its input-gradient product."""
        layers = list(self._modules.values())
        for layer in reversed(layers[1:]):
            gy = layer.backward(gy)
        if layers:
            layers[0].backward_params(gy)

    def jvp(self, dx):
        for layer in self._modules.values():
            dx = layer.jvp(dx)
        return dx

    def backward_jvp(self, gy, gdy):
        for layer in reversed(self._modules.values()):
            gy, gdy = layer.backward_jvp(gy, gdy)
        return gy, gdy
