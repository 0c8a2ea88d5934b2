"""Sequential: forward through the layers in order, backward in reverse; tangents forward and
their adjoint in reverse, reusing the input-gradient pass's signals (docs/gradients.md#second-order)."""
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
        self._signals = None

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
        if self._signals is not None:
            self._signals = None
        for layer in self._modules.values():
            x = layer.forward(x)       # (Module.__call__ only forwards to it)
        return x

    def backward(self, gy):
        for layer in reversed(self._modules.values()):
            gy = layer.backward(gy)
        return gy

    def backward_input(self, gy, keep_signals: bool = False):
        """Backward for ∂L/∂x only: every layer leaves its parameter grads untouched.

        ``keep_signals``: keep gy and each layer's input gradient (until the next forward), for
        a ``backward_jvp(None, gy)`` with this very gy array — a penalty's tangent adjoint, whose
        ∂L/∂ẋ at every layer are these signals (docs/gradients.md#second-order)."""
        signals = [gy] if keep_signals else None
        for layer in reversed(self._modules.values()):
            gy = layer.backward_input(gy)
            if signals is not None:
                signals.append(gy)
        if signals is not None or self._signals is not None:
            self._signals = signals
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
        signals = self._signals
        if gy is None and signals is not None and signals[0] is gdy:
            # ∂L/∂ẋ below every layer is already known (kept by backward_input from this gdy):
            # the layers add their θ-gradients without recomputing it
            for layer, g in zip(reversed(self._modules.values()), signals):
                gy = layer.backward_jvp_params(gy, g)
            return gy, signals[-1]
        for layer in reversed(self._modules.values()):
            gy, gdy = layer.backward_jvp(gy, gdy)
        return gy, gdy
