"""Shape rules shared by every backend's kernels (PyTorch's conventions): convolution sizes,
the (N, C, S) view of the per-channel kernels, bias + activation arguments."""
from __future__ import annotations

import math

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


def ncs(shape) -> tuple[int, int, int]:
    """(N, C, S) of an (N, C, *) array for the per-channel kernels: S = the product of the rest
    (1 for (N,) or (N, C))."""
    N = int(shape[0])
    C = int(shape[1]) if len(shape) > 1 else 1
    return N, C, math.prod(int(s) for s in shape[2:])


def check_bias_act(x_shape, bias_shape):
    """bias_act_forward's arguments: bias (C,) for x (N, C, *), or None; returns ncs(x_shape)."""
    N, C, S = ncs(x_shape)
    if bias_shape is not None and tuple(bias_shape) != (C,):
        raise ValueError(f"bias_act_forward: bias {tuple(bias_shape)} does not match {C} channels "
                         f"of {tuple(x_shape)}")
    return N, C, S


def check_bias_act_backward(gy_shape, y_shape, act, slope):
    """bias_act_backward's arguments (act' is read from y); returns ncs(y_shape)."""
    if tuple(gy_shape) != tuple(y_shape):
        raise ValueError(f"bias_act_backward: gy {tuple(gy_shape)} and y {tuple(y_shape)} differ")
    if act == "leaky_relu" and not slope > 0:
        raise ValueError("bias_act_backward: leaky_relu's derivative is read from y, which needs slope > 0")
    return ncs(y_shape)
