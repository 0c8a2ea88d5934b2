"""NumPy convolution kernels: im2col + one BLAS GEMM, and col2im as its adjoint.

Derivation: docs/gradients.md#conv2d.  Shapes (PyTorch's): x (N, C, H, W), w (O, C, kh, kw),
y (N, O, OH, OW) with OH = (H + 2·ph − kh)//sh + 1, OW = (W + 2·pw − kw)//sw + 1.

Layout.  The patch matrix ("cols") is built channels-last: the input is copied once to a
zero-padded NHWC array xh (N, Hp, Wp, C); row r = (n, oh, ow) of cols (N·OH·OW, K),
K = kh·kw·C, holds the patch xh[n, sh·oh + i, sw·ow + j, c] in (i, j, c) order.  For fixed
(n, oh, ow, i) the (j, c) entries are kw·C *consecutive* floats of xh, so im2col is a single
strided-view copy with long contiguous runs (a loop-free `as_strided` + copy).  The weight is
reordered once to Wm (O, K) with the same (i, j, c) order, and the three products are

    forward            Y  (NP, O) = cols (NP, K) · Wmᵀ          y = Y as NCHW
    backward-weight    G  (O, K)  = gy (O, NP) · cols (NP, K)   ∂L/∂w = G reordered
    backward-input     D  (NP, K) = gy (NP, O) · Wm (O, K)      ∂L/∂x = col2im(D)

(NP = N·OH·OW).  When K is small (few input channels, e.g. the first layer of a discriminator)
the per-image products (O, K)·(K, P) are memory-bound and the transposes of y / gy between NCHW
and the GEMM layout cost more than they save, so those products are done per image by one
batched ``np.matmul`` over the batch axis instead, on patches built straight from NCHW in w's
own (c, i, j) order, cols (N, K, P) with P = OH·OW: y[n] = W (O, K)·cols[n] is NCHW as it
comes out, and the input gradient D[n] = Wᵀ·gy[n] (N, C, kh, kw, OH, OW) is added back with
kh·kw strided adds on the padded NCHW gradient (``_col2im_nchw``).

Backward-input has two exact methods, chosen by a cost model (``_subpixel_is_cheaper``):
GEMM + col2im below, or the sub-pixel form (``_backward_input_subpixel``) where the GEMM itself
does the accumulation — better when C·sh·sw is large against O (DCGAN's k4 s2 layers).

col2im is the adjoint of im2col: D[(n, oh, ow), (i, j, c)] is added into the padded gradient at
(n, sh·oh + i, sw·ow + j, c).  It runs as a loop over the kh·kw offsets only.  Padded row
hp = sh·oh + i splits into a phase a = hp mod sh and hh = hp div sh = oh + i div sh, so each
offset adds a *contiguous* (N, OH, OW, C) block into phase buffer P[a, b] (N, Hh, Wh, C) at
shift (i div sh, j div sw); the phases are then interleaved and cropped into NCHW in sh·sw
strided copies.  No ``np.add.at``, no loop over the batch or pixels.

Every kernel keeps the dtype of its inputs.  ``conv2d_reference`` is the slow, obviously
correct definition the fast kernels are tested against.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .kernel_shapes import conv_dims, out_size as _out_size
from .cpu_threads import split_rows

# K = C·kh·kw at or below which the products are done per image (batched matmul, NCHW in and
# out) instead of as one GEMM on transposed copies; see the module docstring.
_BATCHED_MAX_K = 64


def _check(x_shape, w_shape, stride, padding):
    return conv_dims(x_shape, w_shape, stride, padding)[-2:]


def _copy(dst, src):
    """dst[...] = src (same shape, any strides), split over the batch axis (cpu_threads)."""
    def rows(lo, hi):
        np.copyto(dst[lo:hi], src[lo:hi])
    split_rows(rows, len(dst), dst.size)
    return dst


def _contiguous(a):
    """A C-contiguous copy of the (strided) view a (np.ascontiguousarray, split over axis 0)."""
    return _copy(np.empty(a.shape, dtype=a.dtype), a)


def _padded_nhwc(x, ph, pw):
    """x (N, C, H, W) → zero-padded channels-last copy (N, H + 2ph, W + 2pw, C)."""
    N, C, H, W = x.shape
    xh = np.empty((N, H + 2 * ph, W + 2 * pw, C), dtype=x.dtype)

    def rows(lo, hi):
        if ph:
            xh[lo:hi, :ph] = 0
            xh[lo:hi, ph + H:] = 0
        if pw:
            xh[lo:hi, ph:ph + H, :pw] = 0
            xh[lo:hi, ph:ph + H, pw + W:] = 0
        xh[lo:hi, ph:ph + H, pw:pw + W, :] = x[lo:hi].transpose(0, 2, 3, 1)
    split_rows(rows, N, xh.size)
    return xh


def _im2col(x, kh, kw, stride, padding, OH, OW, out=None):
    """x (N, C, H, W) → cols (N·OH·OW, kh·kw·C), columns in (i, j, c) order (one copy), written
    into ``out`` when it is an array of that shape and dtype (memory reused, not reallocated)."""
    sh, sw = stride
    N, C = x.shape[:2]
    xh = _padded_nhwc(x, *padding)
    sN, sH, sW, sC = xh.strides
    # (j, c) is one contiguous run of kw·C elements because sW == C·sC.
    win = as_strided(xh, shape=(N, OH, OW, kh, kw * C), strides=(sN, sh * sH, sw * sW, sH, sC),
                     writeable=False)
    return _materialise(win, (N * OH * OW, kh * kw * C), out)


def _materialise(win, shape, out):
    """The strided view win as a C-contiguous array reshaped to ``shape``: written into ``out``
    when out is a writeable array of that shape and dtype (a window that was already contiguous
    comes back from ascontiguousarray as a read-only view, which is never reused), else a copy."""
    if (out is not None and out.shape == shape and out.dtype == win.dtype and out.flags.c_contiguous
            and out.flags.writeable):
        _copy(out.reshape(win.shape), win)
        return out
    return _contiguous(win).reshape(shape)


def _im2col_nchw(x, kh, kw, stride, padding, OH, OW, out=None):
    """x (N, C, H, W) → cols (N, C·kh·kw, OH·OW), rows in w's own (c, i, j) order: the small-K
    layout (one strided copy of the zero-padded x; ``out`` reused as in ``_im2col``)."""
    sh, sw = stride
    ph, pw = padding
    N, C, H, W = x.shape
    if ph or pw:
        xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
        xp[:, :, ph:ph + H, pw:pw + W] = x
    else:
        xp = x
    sN, sC, sH, sW = xp.strides
    win = as_strided(xp, shape=(N, C, kh, kw, OH, OW), strides=(sN, sC, sH, sW, sh * sH, sw * sW),
                     writeable=False)
    return _materialise(win, (N, C * kh * kw, OH * OW), out)


def _col2im_nchw(d, x_shape, stride, padding):
    """Adjoint of ``_im2col_nchw``: d (N, C, kh, kw, OH, OW) → ∂L/∂x (N, C, H, W), one strided
    add per kernel offset into the zero-padded gradient, then the padding cropped."""
    N, C, H, W = x_shape
    _, _, kh, kw, OH, OW = d.shape
    sh, sw = stride
    ph, pw = padding
    Hp = max(H + 2 * ph, sh * (OH - 1) + kh)
    Wp = max(W + 2 * pw, sw * (OW - 1) + kw)
    g = np.empty((N, C, Hp, Wp), dtype=d.dtype)
    gx = np.empty(x_shape, dtype=d.dtype)

    def rows(lo, hi):
        gr = g[lo:hi]
        gr.fill(0)
        for i in range(kh):
            for j in range(kw):
                gr[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw] += d[lo:hi, :, i, j]
        gx[lo:hi] = gr[:, :, ph:ph + H, pw:pw + W]
    split_rows(rows, N, g.size)
    return gx


def _weight_matrix(w):
    """w (O, C, kh, kw) → Wm (O, kh·kw·C) in the (i, j, c) column order of cols."""
    O = w.shape[0]
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(O, -1)


def _col2im(d, x_shape, kh, kw, stride, padding, OH, OW):
    """Adjoint of ``_im2col``: d (N, OH, OW, kh, kw, C) → ∂L/∂x (N, C, H, W).

    Padded row hp = sh·oh + i has phase a = i mod sh and hh = oh + i div sh, so offset (i, j)
    adds the contiguous block d[:, :, :, i, j, :] into phase buffer (a, b) at shift
    (i div sh, j div sw).  Phases are done one after the other in one buffer (N, Hh, Wh, C),
    which stays in cache while its offsets are added, then copied (transposed, cropped) into
    gx[:, :, h0::sh, w0::sw].  Rows/columns no window reaches (stride > kernel) get 0.
    """
    N, C, H, W = x_shape
    sh, sw = stride
    ph, pw = padding
    # the buffer must reach the last padded row holding real input
    Hh = max(OH + (kh - 1) // sh, (ph + H - 1) // sh + 1)
    Wh = max(OW + (kw - 1) // sw, (pw + W - 1) // sw + 1)
    gx = np.empty(x_shape, dtype=d.dtype)
    buf = np.empty((N, Hh, Wh, C), dtype=d.dtype)
    for a in range(sh):
        h0 = (a - ph) % sh                   # first unpadded row h with (h + ph) mod sh == a
        if h0 >= H:
            continue
        nh, hh0 = len(range(h0, H, sh)), (h0 + ph) // sh
        for b in range(sw):
            w0 = (b - pw) % sw
            if w0 >= W:
                continue
            nw, ww0 = len(range(w0, W, sw)), (w0 + pw) // sw
            dst = gx[:, :, h0::sh, w0::sw]
            if a >= kh or b >= kw:           # stride > kernel: no window reaches these pixels
                dst[...] = 0
                continue
            buf[...] = 0
            for i in range(a, kh, sh):
                i2 = i // sh
                for j in range(b, kw, sw):
                    j2 = j // sw
                    buf[:, i2:i2 + OH, j2:j2 + OW, :] += d[:, :, :, i, j, :]
            dst[...] = buf[:, hh0:hh0 + nh, ww0:ww0 + nw, :].transpose(0, 3, 1, 2)
    return gx


def _backward_input_subpixel(gy, w, x_shape, stride, padding):
    """∂L/∂x as sh·sw interleaved stride-1 convolutions of gy (sub-pixel form), one GEMM.

    Padded row hp = sh·hh + a receives w[:, :, i] for i = a + sh·i' from gy row oh = hh − i'
    (i' < kh' = ⌈kh/sh⌉; w is zero-extended to kh'·sh rows).  So every phase (a, b) is a
    stride-1 correlation of zero-padded gy with a kh'×kw' sub-kernel, and all phases share the
    same gy windows: P (N·nH·nW, A·B·C) = G (N·nH·nW, kh'·kw'·O) · Wsub (kh'·kw'·O, A·B·C),
    G the (flipped) kh'×kw' windows of gy, A = min(sh, kh), B = min(sw, kw).  hh runs over the
    union of the rows the phases need.  No col2im: the GEMM does the accumulation.
    """
    N, C, H, W = x_shape
    O, _, kh, kw = w.shape
    sh, sw = stride
    ph, pw = padding
    _, _, OH, OW = gy.shape
    A, B = min(sh, kh), min(sw, kw)
    k2h, k2w = -(-kh // sh), -(-kw // sw)
    # per phase: first unpadded row h0, its phase row hh0 and the count (empty phases: n = 0)
    rows = [((a - ph) % sh, ((a - ph) % sh + ph) // sh, len(range((a - ph) % sh, H, sh))) for a in range(A)]
    cols = [((b - pw) % sw, ((b - pw) % sw + pw) // sw, len(range((b - pw) % sw, W, sw))) for b in range(B)]
    if not any(r[2] for r in rows) or not any(c[2] for c in cols):
        return np.zeros(x_shape, dtype=np.result_type(gy, w))   # no window reaches real input
    lo_h = min(r[1] for r in rows if r[2]); hi_h = max(r[1] + r[2] for r in rows if r[2])
    lo_w = min(c[1] for c in cols if c[2]); hi_w = max(c[1] + c[2] for c in cols if c[2])
    nH, nW = hi_h - lo_h, hi_w - lo_w
    # gy rows oh = hh − i' for hh ∈ [lo_h, hi_h), i' < k2h: zero-pad gy (NHWC) to cover them
    top, left = max(0, k2h - 1 - lo_h), max(0, k2w - 1 - lo_w)
    bottom, right = max(0, hi_h - OH), max(0, hi_w - OW)
    g = np.zeros((N, top + OH + bottom, left + OW + right, O), dtype=gy.dtype)
    _copy(g[:, top:top + OH, left:left + OW, :], gy.transpose(0, 2, 3, 1))
    # window u = k2h − 1 − i' (flipped): gy row = hh − (k2h − 1) + u, i.e. g row r0 + (hh − lo_h) + u
    r0, c0 = lo_h - (k2h - 1) + top, lo_w - (k2w - 1) + left
    sN, sH, sW, sO = g.strides
    win = as_strided(g[:, r0:, c0:, :], shape=(N, nH, nW, k2h, k2w * O), strides=(sN, sH, sW, sH, sO),
                     writeable=False)
    G = _contiguous(win).reshape(N * nH * nW, k2h * k2w * O)
    # Wsub[(u, v, o), (a, b, c)] = w[o, c, a + sh·(k2h − 1 − u), b + sw·(k2w − 1 − v)] (0 outside)
    wz = np.zeros((O, C, k2h * sh, k2w * sw), dtype=w.dtype)
    wz[:, :, :kh, :kw] = w
    wz = wz.reshape(O, C, k2h, sh, k2w, sw)[:, :, ::-1, :A, ::-1, :B]
    Wsub = np.ascontiguousarray(wz.transpose(2, 4, 0, 3, 5, 1)).reshape(k2h * k2w * O, A * B * C)
    P = np.matmul(G, Wsub).reshape(N, nH, nW, A, B, C)
    gx = np.empty(x_shape, dtype=np.result_type(gy, w))

    def interleave(n0, n1):
        for a in range(sh):
            h0 = (a - ph) % sh
            if h0 >= H:
                continue
            for b in range(sw):
                w0 = (b - pw) % sw
                if w0 >= W:
                    continue
                dst = gx[n0:n1, :, h0::sh, w0::sw]
                if a >= A or b >= B:             # stride > kernel: no window reaches these pixels
                    dst[...] = 0
                    continue
                (_, hh0, nh), (_, ww0, nw) = rows[a], cols[b]
                dst[...] = P[n0:n1, hh0 - lo_h:hh0 - lo_h + nh, ww0 - lo_w:ww0 - lo_w + nw, a, b, :].transpose(0, 3, 1, 2)
    split_rows(interleave, N, gx.size)
    return gx


# --- the three kernels called by NumpyBackend -----------------------------------------------

def conv2d_patches(x, w_shape, stride, padding, out=None):
    """The patch matrix of x for a kernel of shape w_shape — cols (N·OH·OW, kh·kw·C), or
    (N, C·kh·kw, OH·OW) when K = C·kh·kw ≤ _BATCHED_MAX_K — what ``conv2d_forward`` and
    ``conv2d_backward_weight`` both multiply by.  A layer that keeps it from
    its forward passes it to the weight gradient instead of building it twice (one copy of x's
    patches, about 20% of a forward on W2's second convolution), and passes its previous one as
    ``out`` to be overwritten (a fresh 10 MB array costs page faults on every step)."""
    _, C, kh, kw = w_shape
    OH, OW = _check(x.shape, w_shape, stride, padding)
    if C * kh * kw <= _BATCHED_MAX_K:
        return _im2col_nchw(x, kh, kw, stride, padding, OH, OW, out)
    return _im2col(x, kh, kw, stride, padding, OH, OW, out)


def _given_cols(cols, x, w_shape, stride, padding):
    if cols is None:
        return conv2d_patches(x, w_shape, stride, padding)
    OH, OW = _check(x.shape, w_shape, stride, padding)
    K = w_shape[1] * w_shape[2] * w_shape[3]
    want = (x.shape[0], K, OH * OW) if K <= _BATCHED_MAX_K else (x.shape[0] * OH * OW, K)
    if tuple(cols.shape) != want:
        raise ValueError(f"conv2d: patches of shape {tuple(cols.shape)} given, expected {want} for x "
                         f"{tuple(x.shape)} and weight {tuple(w_shape)}")
    return cols


def conv2d_forward(x, w, stride, padding, cols=None):
    """y[n, o, oh, ow] = Σ_{c,i,j} w[o, c, i, j] · xpad[n, c, sh·oh + i, sw·ow + j].

    x (N, C, H, W), w (O, C, kh, kw) → y (N, O, OH, OW), dtype of x.  ``cols``: x's patches
    from ``conv2d_patches`` if the caller has them.
    """
    O, C, kh, kw = w.shape
    N = x.shape[0]
    OH, OW = _check(x.shape, w.shape, stride, padding)
    cols = _given_cols(cols, x, w.shape, stride, padding)
    if C * kh * kw <= _BATCHED_MAX_K:
        # per image: y[n] (O, P) = W (O, K) · cols[n] (K, P) — NCHW out, no transpose copy
        return np.matmul(w.reshape(O, -1), cols).reshape(N, O, OH, OW)
    Wm = _weight_matrix(w)
    Y = np.matmul(cols, Wm.T)                                    # (N·OH·OW, O)
    return _contiguous(Y.reshape(N, OH, OW, O).transpose(0, 3, 1, 2))


def conv2d_backward_weight(x, gy, w_shape, stride, padding, cols=None):
    """∂L/∂w[o, c, i, j] = Σ_{n,oh,ow} gy[n, o, oh, ow] · xpad[n, c, sh·oh + i, sw·ow + j].

    x (N, C, H, W), gy (N, O, OH, OW) → (O, C, kh, kw) = w_shape, dtype of x.  ``cols``: x's
    patches from ``conv2d_patches`` (kept from the forward) if the caller has them.
    """
    O, C, kh, kw = w_shape
    N = x.shape[0]
    OH, OW = _check(x.shape, w_shape, stride, padding)
    if gy.shape != (N, O, OH, OW):
        raise ValueError(f"conv2d_backward_weight: gy has shape {tuple(gy.shape)}, expected {(N, O, OH, OW)}")
    cols = _given_cols(cols, x, w_shape, stride, padding)
    K = C * kh * kw
    if K <= _BATCHED_MAX_K:
        # Σ_n gy[n] (O, P) · cols[n]ᵀ (P, K): the (N, O, K) stack is small when K is; K is in
        # w's own (c, i, j) order
        G = np.matmul(gy.reshape(N, O, OH * OW), cols.transpose(0, 2, 1)).sum(axis=0)
        return G.reshape(w_shape)
    else:
        gyT = _contiguous(gy.transpose(1, 0, 2, 3)).reshape(O, -1)           # (O, N·OH·OW)
        G = np.matmul(gyT, cols)                                             # (O, K)
    return np.ascontiguousarray(G.reshape(O, kh, kw, C).transpose(0, 3, 1, 2))


def conv2d_backward_input(gy, w, x_shape, stride, padding):
    """∂L/∂x[n, c, h, w] = Σ_{o,i,j : sh·oh + i = h + ph, sw·ow + j = w + pw} gy[n, o, oh, ow] · w[o, c, i, j].

    gy (N, O, OH, OW), w (O, C, kh, kw) → (N, C, H, W) = x_shape, dtype of gy.  Two exact
    methods; the cheaper one by a cost model (GEMM multiply-adds plus memory passes):
    GEMM + col2im (few input channels, 'valid' stride-1 layers), or the sub-pixel GEMM
    (DCGAN's k4 s2 layers, 'same' convolutions), which needs no col2im.
    """
    O, C, kh, kw = w.shape
    N = x_shape[0]
    x_shape = tuple(int(s) for s in x_shape)
    OH, OW = _check(x_shape, w.shape, stride, padding)
    if gy.shape != (N, O, OH, OW):
        raise ValueError(f"conv2d_backward_input: gy has shape {tuple(gy.shape)}, expected {(N, O, OH, OW)}")
    if _subpixel_is_cheaper(x_shape, w.shape, stride, padding, OH, OW):
        return _backward_input_subpixel(gy, w, x_shape, stride, padding)
    return _backward_input_col2im(gy, w, x_shape, stride, padding)


# Cost-model weights, in GEMM multiply-adds per element (measured on a 2-core AVX-512 machine:
# ≈ 4 ps per multiply-add in sgemm, ≈ 0.3 ns per col2im element, ≈ 0.1 ns per copied element).
_COL2IM_COST, _COPY_COST = 80, 25


def _subpixel_is_cheaper(x_shape, w_shape, stride, padding, OH, OW):
    N, C, H, W = x_shape
    O, _, kh, kw = w_shape
    sh, sw = stride
    k2h, k2w = -(-kh // sh), -(-kw // sw)
    A, B = min(sh, kh), min(sw, kw)
    nH = -(-H // sh) + 1 if (padding[0] % sh) else -(-H // sh)    # rows of the phase grid
    nW = -(-W // sw) + 1 if (padding[1] % sw) else -(-W // sw)
    K = C * kh * kw
    standard = N * OH * OW * K * (O + _COL2IM_COST)
    subpixel = N * nH * nW * k2h * k2w * O * (A * B * C + _COPY_COST)
    return subpixel < standard


def _backward_input_col2im(gy, w, x_shape, stride, padding):
    """D = gy (N·OH·OW, O) · Wm (O, K), then ∂L/∂x = col2im(D)."""
    O, C, kh, kw = w.shape
    N, _, OH, OW = gy.shape
    if C * kh * kw <= _BATCHED_MAX_K:
        # per image: D[n] (K, P) = Wᵀ (K, O) · gy[n] (O, P) — reads NCHW gy, adds back into NCHW
        D = np.matmul(w.reshape(O, -1).T, gy.reshape(N, O, OH * OW))
        return _col2im_nchw(D.reshape(N, C, kh, kw, OH, OW), x_shape, stride, padding)
    Wm = _weight_matrix(w)                                                   # (O, K)
    gyr = np.ascontiguousarray(gy.transpose(0, 2, 3, 1)).reshape(-1, O)      # (N·OH·OW, O)
    D = np.matmul(gyr, Wm)                                                   # (N·OH·OW, K)
    return _col2im(D.reshape(N, OH, OW, kh, kw, C), x_shape, kh, kw, stride, padding, OH, OW)


# --- the slow reference -----------------------------------------------------------------------

def conv2d_reference(x, w, stride=(1, 1), padding=(0, 0)):
    """The definition, one einsum per kernel offset (slow; for tests only):

    y[n, o, oh, ow] = Σ_{i,j} Σ_c w[o, c, i, j] · xpad[n, c, sh·oh + i, sw·ow + j].
    """
    sh, sw = stride
    ph, pw = padding
    O, C, kh, kw = w.shape
    N, _, H, W = x.shape
    OH, OW = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((N, O, OH, OW), dtype=np.result_type(x, w))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return y


def conv2d_backward_input_reference(gy, w, x_shape, stride=(1, 1), padding=(0, 0)):
    """Scatter form of ∂L/∂x, one offset at a time (slow; for tests only)."""
    sh, sw = stride
    ph, pw = padding
    O, C, kh, kw = w.shape
    N, _, H, W = x_shape
    _, _, OH, OW = gy.shape
    gxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=np.result_type(gy, w))
    for i in range(kh):
        for j in range(kw):
            gxp[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw] += \
                np.einsum("nohw,oc->nchw", gy, w[:, :, i, j])
    return gxp[:, :, ph:ph + H, pw:pw + W]


def conv2d_backward_weight_reference(x, gy, w_shape, stride=(1, 1), padding=(0, 0)):
    """∂L/∂w one offset at a time (slow; for tests only)."""
    sh, sw = stride
    ph, pw = padding
    O, C, kh, kw = w_shape
    _, _, OH, OW = gy.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gw = np.zeros(w_shape, dtype=np.result_type(x, gy))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]
            gw[:, :, i, j] = np.einsum("nchw,nohw->oc", patch, gy)
    return gw
