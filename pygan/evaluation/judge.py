"""The image-quality judge (benchmarks/WORKLOADS.md Q3/Q4): a small classifier trained by pygan on the real data.

A :class:`Judge` is a small convolutional classifier built from :mod:`pygan.nn` layers and trained
with pygan's own Adam and softmax cross-entropy (:func:`pygan.losses.cross_entropy`) on the real
images. Two figures come out of it:

* ``fid``: the Fréchet distance between Gaussians fitted to the judge's penultimate-layer features
  of n generated and n real images (:func:`pygan.metrics.frechet_distance`) — the FID recipe with
  a classifier trained on the data set itself instead of Inception. Beside it, ``real_vs_real_fid``
  is the same distance between two disjoint random halves of the real data: the noise floor a
  perfect generator would reach at that sample size.
* for conditional models (``model.num_classes > 0``), ``cond_accuracy``: the judge's accuracy on
  samples generated for requested labels (balanced over the classes), and
  ``cond_accuracy_per_class``.

How the trainer calls it (at each evaluation, model in eval mode)::

    q = pygan.evaluation.judge.evaluate(model, data="digits", n=1000, rng=rng)                  # or
    q = pygan.evaluation.judge.evaluate(model, data="mnist", data_folder="data/mnist", n=1000, rng=rng)
    q = pygan.evaluation.judge.evaluate(model, real_images, real_labels, rng=rng, n=1000)       # any images

The first call of a process loads the judge from the cache (or trains and caches it) and
computes the real data's features; later calls with the same ``data`` reuse them from memory.

Cache: ``<cache_dir>/<dataset>-<key>.npz`` where the key hashes the training images and labels,
the architecture, the training settings and this module's format version; ``cache_dir`` is the
argument, else ``$PYGAN_CACHE/judges``, else ``$XDG_CACHE_HOME/pygan/judges`` (default
``~/.cache/pygan/judges``). Files are written atomically (temporary file + ``os.replace``) and
read with ``allow_pickle=False``; an unreadable, stale or mismatched file is retrained with a
:class:`JudgeCacheWarning`.

The judge runs on the current backend (float32). Its figures are in the data's coordinates:
pass ``data_scale`` if the model was trained on data / data_scale.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
import zipfile

import numpy as np

from .. import losses, nn, optim
from ..backend import get_backend, to_host as _to_host
from ..files import atomic_write
from ..random import get_rng
from . import metrics
from .sampling import generate

__all__ = ["Judge", "JudgeNet", "JudgeCacheWarning", "get_judge", "evaluate", "judge_images", "default_arch",
           "default_training", "cache_folder", "clear_memory_cache", "FORMAT_VERSION"]

#: bump when the architecture code, the training procedure or the file layout changes (old cache
#: files then get a different key and are never read)
FORMAT_VERSION = 1


class JudgeCacheWarning(UserWarning):
    """A cached judge could not be used (unreadable, stale or mismatched) or not be written."""




# --- architecture ------------------------------------------------------------------------------

def default_arch(image_shape) -> dict:
    """The judge architecture for images of shape (C, H, W).

    Small images (H, W < 16, e.g. the 8×8 digits): Conv(C→32, k3 s1 p1) → ReLU → Flatten →
    Linear(32·H·W → 64) → ReLU → Linear(64 → K).
    Larger images (28×28 MNIST): Conv(C→32, k4 s2 p1) → ReLU → Conv(32→64, k4 s2 p1) → ReLU →
    Flatten → Linear(→128) → ReLU → Linear(128→K). The features are the last ReLU's output.
    """
    c, h, w = _image_shape(image_shape)
    if min(h, w) < 16:
        return {"convs": [[32, 3, 1, 1]], "hidden": 64}
    return {"convs": [[32, 4, 2, 1], [64, 4, 2, 1]], "hidden": 128}


def default_training(n_train: int, image_shape) -> dict:
    """Training settings: Adam(lr 2e-3, betas (0.9, 0.999)) with lr decayed to 0 by a cosine,
    label smoothing 0.1, a fixed seed; ``shift`` (random translations, in pixels) is 0: on the
    8×8 digits it cost about 1% of held-out accuracy. Small data sets (< 10,000 images) get
    15 epochs of batch 32, larger ones 3 epochs of batch 64. Without a test set, a random
    ``holdout`` fraction (0.2) of the images is kept aside to measure the accuracy."""
    _image_shape(image_shape)
    small = n_train < 10_000
    return {"epochs": 15 if small else 3, "batch_size": 32 if small else 64, "lr": 2e-3,
            "label_smoothing": 0.1, "shift": 0, "seed": 0, "holdout": 0.2}


def _image_shape(shape):
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"judge: images must have shape (N, C, H, W); one image is {shape}")
    return shape


def _conv_out(size, k, s, p):
    return (size + 2 * p - k) // s + 1


class JudgeNet(nn.Module):
    """features: convolutions, Flatten, Linear, ReLU → (N, hidden); classifier: Linear(hidden → K)."""

    def __init__(self, image_shape, num_classes: int, arch: dict):
        super().__init__()
        c, h, w = _image_shape(image_shape)
        layers = []
        for out, k, s, p in arch["convs"]:
            layers += [nn.Conv2d(c, int(out), int(k), int(s), int(p)), nn.ReLU()]
            c, h, w = int(out), _conv_out(h, k, s, p), _conv_out(w, k, s, p)
            if h < 1 or w < 1:
                raise ValueError(f"judge architecture {arch} shrinks the image to nothing")
        hidden = int(arch["hidden"])
        layers += [nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(hidden, int(num_classes))
        self.feature_dim = hidden

    def describe(self):
        return f"JudgeNet({self.feature_dim} features → {self.classifier.out_features} classes)"

    def forward(self, x):
        return self.classifier(self.features(x))

    def backward(self, gy):
        return self.features.backward(self.classifier.backward(gy))


def _shift_batch(x, shift, rng):
    """Each image translated by (dy, dx) ∈ [−shift, shift]², borders padded with edge values."""
    if shift <= 0:
        return x
    xp = get_backend().xp
    n, c, h, w = x.shape
    pad = xp.pad(x, ((0, 0), (0, 0), (shift, shift), (shift, shift)), mode="edge")
    dy = xp.asarray(rng.integers(0, 2 * shift + 1, n))
    dx = xp.asarray(rng.integers(0, 2 * shift + 1, n))
    rows = (dy[:, None] + xp.arange(h))[:, None, :, None]
    cols = (dx[:, None] + xp.arange(w))[:, None, None, :]
    return pad[xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None], rows, cols]


class Judge:
    """A trained classifier of (C, H, W) images into ``num_classes`` classes, and its features.

    ``net`` is a :class:`JudgeNet`; ``heldout_accuracy`` the accuracy measured after training on
    images it never saw (None if none were held out); ``source`` is "trained", "cache" or "new";
    ``cache_path`` where it is stored (or None).
    """

    def __init__(self, image_shape, num_classes: int, arch: dict | None = None, seed: int = 0):
        self.image_shape = _image_shape(image_shape)
        self.num_classes = int(num_classes)
        self.arch = json.loads(json.dumps(arch or default_arch(self.image_shape)))
        g = get_rng()                                       # build without moving pygan's global stream
        state = g.bit_generator.state
        try:
            self.net = JudgeNet(self.image_shape, self.num_classes, self.arch)
        finally:
            g.bit_generator.state = state
        own = np.random.default_rng(seed)                  # the judge's weights depend on seed only
        for m in self.net.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.default_uniform_(m.weight, m.bias, rng=own)
        self.net.eval()
        self.heldout_accuracy = None
        self.meta = {}
        self.source = "new"
        self.cache_path = None

    # -- inference --
    def _input(self, x):
        xp = get_backend().xp
        x = xp.asarray(x, dtype=self.net.dtype)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"judge: expected images of shape (N, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(x.shape)}")
        return x

    def _map(self, fn, x, chunk):
        x = self._input(x)
        with self.net.eval_mode():
            out = [_to_host(fn(x[s:s + chunk])).copy() for s in range(0, len(x), chunk)]
        if not out:
            return np.zeros((0, self.net.feature_dim if fn is self.net.features else self.num_classes),
                            np.float32)
        return np.concatenate(out)

    def features(self, x, chunk: int = 500) -> np.ndarray:
        """Penultimate-layer activations (eval mode): x (N, C, H, W) → (N, feature_dim), host float32."""
        return self._map(self.net.features, x, chunk)

    def logits(self, x, chunk: int = 500) -> np.ndarray:
        """Class logits (eval mode): x (N, C, H, W) → (N, num_classes), host float32."""
        return self._map(self.net, x, chunk)

    def predict(self, x, chunk: int = 500) -> np.ndarray:
        """Predicted classes (N,) int64."""
        return self.logits(x, chunk).argmax(axis=1).astype(np.int64)

    def accuracy(self, x, labels) -> float:
        """Fraction of ``x`` classified as ``labels`` (N,)."""
        labels = np.asarray(_to_host(labels))
        return float(np.mean(self.predict(x) == labels)) if len(labels) else float("nan")

    # -- training --
    def fit(self, images, labels, epochs=15, batch_size=32, lr=2e-3, label_smoothing=0.1, shift=0,
            seed=0, log=None) -> list[float]:
        """Train on ``images`` (N, C, H, W) with integer ``labels`` (N,): Adam(lr) with lr decayed to
        0 by a cosine over all steps, mean softmax cross-entropy with ``label_smoothing``, each
        batch randomly shifted by up to ``shift`` pixels. Returns each epoch's mean loss."""
        xp = get_backend().xp
        x = self._input(images)
        y = xp.asarray(np.asarray(_to_host(labels), dtype=np.int64))
        n = len(x)
        batch_size = min(int(batch_size), n)
        rng = np.random.default_rng(seed)
        per_epoch = n // batch_size
        total = max(1, epochs * per_epoch)
        opt = optim.Adam(self.net.parameters(), lr=lr)
        ce = losses.CrossEntropy(label_smoothing)
        self.net.train()
        history, k = [], 0
        try:
            for epoch in range(int(epochs)):
                perm = xp.asarray(rng.permutation(n))
                tot = 0.0
                for b in range(per_epoch):
                    idx = perm[b * batch_size:(b + 1) * batch_size]
                    opt.lr = 0.5 * lr * (1.0 + math.cos(math.pi * k / total))
                    k += 1
                    out = self.net(_shift_batch(x[idx], int(shift), rng))
                    value, g = ce(out, y[idx])
                    opt.zero_grad()
                    self.net.backward(g)
                    opt.step()
                    tot += value
                history.append(tot / max(per_epoch, 1))
                if log:
                    log(f"judge epoch {epoch + 1}/{epochs}: loss {history[-1]:.4f}")
        finally:
            self.net.eval()
        return history

    # -- saving --
    def save(self, path):
        """Write the weights and ``meta`` (JSON) to ``path`` (.npz) atomically."""
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        meta = dict(self.meta, image_shape=list(self.image_shape), num_classes=self.num_classes,
                    arch=self.arch, heldout_accuracy=self.heldout_accuracy, format=FORMAT_VERSION)
        arrays = {"param/" + k: v for k, v in self.net.state_dict().items()}
        arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
        atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path, expect_key: str | None = None) -> "Judge":
        """Read a judge written by :meth:`save`; raises ValueError if it is not one (or, with
        ``expect_key``, if it was trained on other data or settings)."""
        with np.load(os.fspath(path), allow_pickle=False) as f:
            if "meta" not in f.files:
                raise ValueError("no 'meta' entry")
            meta = json.loads(str(f["meta"][()]))
            state = {k[len("param/"):]: f[k] for k in f.files if k.startswith("param/")}
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"format {meta.get('format')} (this pygan reads {FORMAT_VERSION})")
        if expect_key is not None and meta.get("key") != expect_key:
            raise ValueError(f"it was trained on other data or settings (key {meta.get('key')!r}, "
                             f"expected {expect_key!r})")
        judge = cls(meta["image_shape"], meta["num_classes"], meta["arch"])
        judge.net.load_state_dict(state)
        judge.heldout_accuracy = meta.get("heldout_accuracy")
        judge.meta = meta
        judge.source = "cache"
        judge.cache_path = os.fspath(path)
        return judge


# --- the cache ----------------------------------------------------------------------------------

def cache_folder(cache_dir=None) -> str:
    """Where judges are cached: ``cache_dir``, else ``$PYGAN_CACHE/judges``, else
    ``${XDG_CACHE_HOME:-~/.cache}/pygan/judges``."""
    if cache_dir is not None:
        return os.fspath(cache_dir)
    root = os.environ.get("PYGAN_CACHE")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                            "pygan")
    return os.path.join(root, "judges")


_JUDGES: dict = {}     # (cache path, backend) → Judge, so a process trains/loads each judge once
_DATASETS: dict = {}   # (data, folder, cache, backend) → _RealData


def clear_memory_cache():
    """Forget the judges and data sets held in memory (the files stay)."""
    _JUDGES.clear()
    _DATASETS.clear()


def _hash_array(h, a):
    a = np.ascontiguousarray(_to_host(a))
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B"))


def _cache_key(images, labels, test, num_classes, arch, training) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"format": FORMAT_VERSION, "num_classes": num_classes, "arch": arch,
                         "training": training}, sort_keys=True).encode())
    _hash_array(h, images)
    _hash_array(h, labels)
    if test is not None:
        _hash_array(h, test[0])
        _hash_array(h, test[1])
    return h.hexdigest()[:20]


def _check_data(images, labels, what="images"):
    images = _to_host(images)
    if images.ndim != 4:
        raise ValueError(f"judge: {what} must have shape (N, C, H, W), got {images.shape}")
    if images.dtype.kind != "f":
        raise TypeError(f"judge: {what} must be floating, got dtype {images.dtype}")
    images = np.ascontiguousarray(images, dtype=np.float32)
    if labels is None:
        raise ValueError(f"judge: training a judge needs the class labels of the {what}")
    labels = np.asarray(_to_host(labels))
    if labels.dtype.kind not in "iu" or labels.shape != (len(images),):
        raise ValueError(f"judge: labels must be integers of shape ({len(images)},), got "
                         f"{labels.dtype} {labels.shape}")
    if len(labels) and labels.min() < 0:
        raise ValueError(f"judge: labels must be ≥ 0, got {labels.min()}")
    return images, labels.astype(np.int64)


def get_judge(dataset_name: str, images, labels, *, test_images=None, test_labels=None,
              num_classes: int | None = None, cache_dir=None, arch: dict | None = None,
              training: dict | None = None, log=None) -> Judge:
    """Load the judge of this data set from the cache, or train it and cache it.

    dataset_name  names the cache file (``digits``, ``mnist``…; only [A-Za-z0-9_.-] kept)
    images        (N, C, H, W) floating real images, labels (N,) integers in [0, K)
    test_images, test_labels   a held-out set for ``heldout_accuracy``; without them a random
                  fraction ``training["holdout"]`` (0.2) of the images is held out (not trained on)
    num_classes   K (default max label + 1)
    arch, training  override :func:`default_arch` / :func:`default_training` entries
    log           a function taking progress strings (e.g. ``print``)

    The cache key covers the images, labels, held-out set, K, architecture and training settings,
    so changing any of them trains a new judge. A file that cannot be read or does not match is
    retrained with a :class:`JudgeCacheWarning`; a folder that cannot be written only warns.
    """
    x, y = _check_data(images, labels)
    test = None
    if test_images is not None:
        test = _check_data(test_images, test_labels, "test images")
        if test[0].shape[1:] != x.shape[1:]:
            raise ValueError(f"judge: test images {test[0].shape} and images {x.shape} differ in shape")
    k = int(num_classes) if num_classes is not None else int(max(y.max(initial=0),
                                                                 test[1].max(initial=0) if test else 0)) + 1
    if y.size and y.max() >= k:
        raise ValueError(f"judge: label {y.max()} out of range for num_classes={k}")
    shape = tuple(x.shape[1:])
    arch = {**default_arch(shape), **(arch or {})}
    training = {**default_training(len(x) if test else int(len(x) * 0.8), shape), **(training or {})}
    key = _cache_key(x, y, test, k, arch, training)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(dataset_name)) or "custom"
    path = os.path.join(cache_folder(cache_dir), f"{name}-{key}.npz")
    memo = (os.path.abspath(path), get_backend().name)
    if memo in _JUDGES:
        return _JUDGES[memo]
    if os.path.exists(path):
        try:
            judge = Judge.load(path, expect_key=key)
            _JUDGES[memo] = judge
            return judge
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as e:
            warnings.warn(f"judge cache {path} is unusable ({type(e).__name__}: {e}); retraining it",
                          JudgeCacheWarning, stacklevel=2)
    judge = _train(x, y, test, k, arch, training, log)
    judge.meta = {"key": key, "dataset": str(dataset_name), "training": training,
                  "n_train": judge.meta["n_train"], "n_heldout": judge.meta["n_heldout"]}
    try:
        judge.save(path)
        judge.cache_path = path
    except OSError as e:
        warnings.warn(f"could not write the judge cache {path} ({e}); it will be retrained next time",
                      JudgeCacheWarning, stacklevel=2)
    _JUDGES[memo] = judge
    return judge


def _train(x, y, test, k, arch, training, log) -> Judge:
    t = dict(training)
    if test is None:
        holdout = float(t.get("holdout", 0.2))
        perm = np.random.default_rng(int(t.get("seed", 0)) + 1).permutation(len(x))
        n_test = int(round(holdout * len(x)))
        if n_test:
            test = (x[perm[:n_test]], y[perm[:n_test]])
        x, y = x[perm[n_test:]], y[perm[n_test:]]
    judge = Judge(x.shape[1:], k, arch, seed=int(t.get("seed", 0)))
    judge.fit(x, y, epochs=int(t["epochs"]), batch_size=int(t["batch_size"]), lr=float(t["lr"]),
              label_smoothing=float(t["label_smoothing"]), shift=int(t["shift"]), seed=int(t.get("seed", 0)),
              log=log)
    judge.heldout_accuracy = judge.accuracy(*test) if test is not None and len(test[0]) else None
    judge.meta = {"n_train": int(len(x)), "n_heldout": int(len(test[0])) if test is not None else 0}
    judge.source = "trained"
    if log:
        log(f"judge trained on {len(x)} images: held-out accuracy {judge.heldout_accuracy}")
    if judge.heldout_accuracy is not None and judge.heldout_accuracy < 0.9:
        warnings.warn(f"the judge reaches only {judge.heldout_accuracy:.1%} held-out accuracy; "
                      f"its figures say little", UserWarning, stacklevel=3)
    return judge


# --- evaluation ---------------------------------------------------------------------------------

class _RealData:
    """A named data set's images and labels, its judge and the judge's features of every image
    (both loaded lazily, once per process)."""

    def __init__(self, name, images, labels, test, cache_dir, log):
        self.name, self.images, self.labels, self.test = name, images, labels, test
        self.cache_dir, self.log = cache_dir, log
        self._judge = None
        self._features = None
        self.floor = {}

    @property
    def judge(self) -> Judge:
        if self._judge is None:
            kw = {"test_images": self.test[0], "test_labels": self.test[1]} if self.test else {}
            self._judge = get_judge(self.name, self.images, self.labels, cache_dir=self.cache_dir,
                                    log=self.log, **kw)
        return self._judge

    def features(self):
        if self._features is None:
            self._features = self.judge.features(self.images)
        return self._features


def _load_named(data, data_folder):
    from ..data import load_images
    try:
        x, y = load_images(data, data_folder, "all" if data == "digits" else "train")
    except ValueError as e:
        raise ValueError(f"judge: {e}") from None
    test = None
    if data != "digits":
        try:
            test = load_images(data, data_folder, "test")
        except FileNotFoundError:
            pass
    return x, y, test


def _real_data(data, data_folder, cache_dir, log) -> _RealData:
    key = (data, os.path.abspath(data_folder) if data_folder else None,
           os.path.abspath(cache_folder(cache_dir)), get_backend().name)
    if key not in _DATASETS:
        x, y, test = _load_named(data, data_folder)
        _DATASETS[key] = _RealData(data, x, y, test, cache_dir, log)
    return _DATASETS[key]


#: the noise floor is the mean over this many random splits (one split alone can be off by 2×)
FLOOR_SPLITS = 10


def _floor(features, m, seed=12345, splits=FLOOR_SPLITS):
    """Mean Fréchet distance between two disjoint random halves of m rows each, over ``splits``
    fixed random splits of ``features`` (at least 2m rows)."""
    fds = []
    for s in range(splits):
        perm = np.random.default_rng(seed + s).permutation(len(features))
        fds.append(metrics.frechet_distance(features[perm[:m]], features[perm[m:2 * m]]))
    return float(np.mean(fds))


def evaluate(model, real_images=None, real_labels=None, rng=None, n: int = 1000, judge: Judge | None = None,
             *, data: str | None = None, data_folder=None, data_scale: float = 1.0, cache_dir=None,
             chunk: int = 500, log=None) -> dict:
    """Judge a generator: Fréchet distance on judge features and, if conditional, class accuracy.

    model        a generator as :func:`pygan.evaluation.sampling.generate` takes it (a
                 :class:`pygan.models.GANModel`, a VAE); it samples in eval mode
    real_images  (N, C, H, W) the real data (with ``real_labels`` (N,) to train a judge), or
    data         a data set name instead: "digits", or "mnist"/"fashion" with ``data_folder``
                 (its judge and real features are loaded once per process)
    rng          numpy Generator for z, the requested labels' order and the real subsample
                 (default: seed 0)
    n            generated samples; the real side uses min(n, N) real images
    judge        a :class:`Judge` (default: :func:`get_judge` on the real data)
    data_scale   samples are multiplied by it first (models trained on data / data_scale)

    Returns a dict of Python numbers (JSON-ready):
      fid                  Fréchet distance, judge features of n generated vs min(n, N) real images
                           (inf if a sample is NaN/inf)
      real_vs_real_fid     the same distance between two disjoint random halves of the real data,
                           averaged over 10 fixed random splits: the noise floor a perfect
                           generator would show
      real_vs_real_n       the size of each half, min(n, N//2) (the distance's sampling bias grows
                           as the samples shrink, so the floor is only comparable with fid at
                           similar sizes: n ≤ N/2 makes them equal)
      n                    generated samples used
      judge_heldout_accuracy   the judge's accuracy on real images it was not trained on
      cond_accuracy, cond_accuracy_per_class   (conditional models) the judge's accuracy on samples
                           generated for labels i mod K, i < n (balanced), overall and per class
      nonfinite_samples    (only when > 0) how many samples had a NaN/inf
    """
    n = int(n)
    if n < 2:
        raise ValueError(f"judge.evaluate: n must be ≥ 2, got {n}")
    rng = rng if rng is not None else np.random.default_rng(0)
    real_feats, floor_memo = None, None
    if data is not None:
        rd = _real_data(data, data_folder, cache_dir, log)
        real_images = rd.images
        if judge is None:                                   # the data set's own judge: memoized features
            judge, real_feats, floor_memo = rd.judge, rd.features(), rd.floor
    elif real_images is None:
        raise TypeError("judge.evaluate: give the real images (real_images=…) or a data set name (data=…)")
    else:
        real_images = _to_host(real_images)
        if judge is None:
            judge = get_judge("custom", real_images, real_labels, cache_dir=cache_dir, log=log)
    n_real = len(real_images)
    if n_real < 4:
        raise ValueError(f"judge.evaluate: need at least 4 real images, got {n_real}")

    k = int(getattr(model, "num_classes", 0) or 0)
    if k > judge.num_classes:
        raise ValueError(f"judge.evaluate: the model has {k} classes but the judge knows {judge.num_classes}")
    labels = (np.arange(n) % k).astype(np.int64) if k else None
    fake = generate(model, n, rng, labels=labels, chunk=int(chunk))
    if tuple(fake.shape) != (n,) + judge.image_shape:
        raise ValueError(f"judge.evaluate: the model generates {tuple(fake.shape[1:])} but the judge "
                         f"expects {judge.image_shape}")
    if data_scale != 1.0:
        fake *= np.float32(data_scale)
    finite = np.isfinite(fake.reshape(n, -1)).all(axis=1)
    n_bad = int(n - finite.sum())
    safe = np.where(finite[:, None, None, None], fake, np.float32(0))
    fake_feats = judge.features(safe)

    idx = rng.choice(n_real, size=min(n, n_real), replace=False)
    feats_real = real_feats[idx] if real_feats is not None else judge.features(real_images[idx])
    out = {"fid": float("inf") if n_bad else metrics.frechet_distance(fake_feats, feats_real)}
    m = min(n, n_real // 2)
    if floor_memo is not None:
        if m not in floor_memo:
            floor_memo[m] = _floor(real_feats, m)
        out["real_vs_real_fid"] = floor_memo[m]
    else:
        pool = np.random.default_rng(12345).permutation(n_real)[:min(n_real, 4 * m)]
        out["real_vs_real_fid"] = _floor(judge.features(real_images[pool]), m)
    out["real_vs_real_n"] = m
    out["n"] = n
    out["judge_heldout_accuracy"] = (None if judge.heldout_accuracy is None
                                     else float(judge.heldout_accuracy))
    if k:
        pred = judge.predict(safe)
        right = (pred == labels) & finite
        out["cond_accuracy"] = float(right.mean())
        out["cond_accuracy_per_class"] = [float(right[labels == c].mean()) if np.any(labels == c)
                                          else float("nan") for c in range(k)]
    if n_bad:
        out["nonfinite_samples"] = n_bad
    return out


def judge_images(images, labels=None, rng=None, *, data: str, data_folder=None, cache_dir=None, log=None) -> dict:
    """Judge given images (an image-to-image model's outputs, say) against the real data set ``data``.

    images  (n, C, H, W) host floats in [−1, 1]; labels (n,) the class each image should show (or None)
    rng     numpy Generator for the real subsample (default: seed 0)

    Returns {"fid", "real_vs_real_fid", "real_vs_real_n", "n", "judge_heldout_accuracy"} as
    :func:`evaluate` does (the Fréchet distance of the judge's features of the n images against
    min(n, N) real images, and the noise floor of two real halves of that size), and with labels
    "accuracy": the fraction of images the judge classifies as their label.
    """
    x = np.ascontiguousarray(_to_host(images), dtype=np.float32)
    n = len(x)
    if x.ndim != 4 or n < 2:
        raise ValueError(f"judge_images: expected at least 2 images (n, C, H, W), got shape {x.shape}")
    rng = rng if rng is not None else np.random.default_rng(0)
    rd = _real_data(data, data_folder, cache_dir, log)
    judge, real_feats = rd.judge, rd.features()
    if tuple(x.shape[1:]) != judge.image_shape:
        raise ValueError(f"judge_images: images of shape {tuple(x.shape[1:])}, the judge of {data!r} "
                         f"expects {judge.image_shape}")
    finite = np.isfinite(x.reshape(n, -1)).all(axis=1)
    safe = np.where(finite[:, None, None, None], x, np.float32(0))
    idx = rng.choice(len(real_feats), size=min(n, len(real_feats)), replace=False)
    out = {"fid": float("inf") if not finite.all() else metrics.frechet_distance(judge.features(safe), real_feats[idx])}
    m = min(n, len(real_feats) // 2)
    if m not in rd.floor:
        rd.floor[m] = _floor(real_feats, m)
    out.update(real_vs_real_fid=rd.floor[m], real_vs_real_n=m, n=n,
               judge_heldout_accuracy=None if judge.heldout_accuracy is None else float(judge.heldout_accuracy))
    if labels is not None:
        labels = np.asarray(_to_host(labels), dtype=np.int64)
        if labels.shape != (n,):
            raise ValueError(f"judge_images: labels must have shape ({n},), got {labels.shape}")
        out["accuracy"] = float(np.mean((judge.predict(safe) == labels) & finite))
    return out
