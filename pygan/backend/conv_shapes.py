"""Shape rules shared by every backend's convolution kernels (PyTorch's conventions)."""
from __future__ import annotations

import numpy as np


def pair(v) -> tuple[int, int]:
    """An int or a pair of ints → (int, int)."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def out_size(size: int, k: int, s: int, p: int) -> int:
    """Output length of a convolution: (size + 2p − k) // s + 1."""
    return (size + 2 * p - k) // s + 1


def conv_dims(x_shape, w_shape, stride, padding):
    """Validate a conv2d problem; returns (N, C, H, W, O, kh, kw, sh, sw, ph, pw, OH, OW).

    x (N, C, H, W), w (O, C, kh, kw); errors say what was expected and what arrived.
    """
    N, C, H, W = (int(s) for s in x_shape)
    O, Cw, kh, kw = (int(s) for s in w_shape)
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    if C != Cw:
        raise ValueError(f"conv2d: input has {C} channels but the weight {tuple(w_shape)} expects {Cw}")
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError(f"conv2d: stride must be ≥ 1 and padding ≥ 0, got stride {stride}, padding {padding}")
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ValueError(f"conv2d: padded input {(H + 2 * ph, W + 2 * pw)} is smaller than the kernel {(kh, kw)}")
    return N, C, H, W, O, kh, kw, sh, sw, ph, pw, out_size(H, kh, sh, ph), out_size(W, kw, sw, pw)
