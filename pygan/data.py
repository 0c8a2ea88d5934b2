"""Data: toy distributions, the scikit-learn digits, MNIST / Fashion-MNIST, downloads, minibatches.

Everything here returns plain NumPy arrays on the host; a training loop moves them to the
backend's device. Randomness always comes from an explicit ``numpy.random.Generator``.

Toy distributions (WORKLOADS.md, Q1/Q2) — each also available as a :class:`ToyDistribution`
through :func:`toy`, which carries the mode centres and std that :func:`pygan.metrics.mode_metrics`
needs:

=============  ==========================================================================
``ring-8``     8 Gaussians, means (cos 2πi/8, sin 2πi/8), std 0.01            :func:`ring`
``grid-25``    25 Gaussians, means on {−4, −2, 0, 2, 4}², std 0.05             :func:`grid`
``swiss-roll`` a noisy 2-D spiral (no modes)                                   :func:`swiss_roll`
``mixture-1d`` a 1-D Gaussian mixture with a known density                    :func:`gaussian_mixture_1d`
=============  ==========================================================================

Images: :func:`load_digits` (8×8, bundled with scikit-learn) and :func:`load_mnist` (IDX files,
gzipped or not, in a folder the user gives; :func:`download_mnist` fetches them and checks their
SHA-256). Images are float32 (N, 1, H, W) scaled to [−1, 1] (a Tanh generator's range).
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from .checkpoint import atomic_write

__all__ = [
    "ring", "grid", "swiss_roll", "gaussian_mixture_1d", "gaussian_mixture_1d_pdf",
    "ToyDistribution", "toy", "TOY_DISTRIBUTIONS",
    "load_digits", "read_idx", "write_idx", "load_mnist", "mnist_file_names",
    "download", "download_mnist", "ChecksumError", "MNIST_MIRRORS", "MNIST_SHA256",
    "batches",
]


# ---------------------------------------------------------------------------------------------
# Toy distributions
# ---------------------------------------------------------------------------------------------

def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"number of samples must be a non-negative integer, got {n!r}")
    return int(n)


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def ring_means(modes: int = 8, radius: float = 1.0) -> np.ndarray:
    """The ``modes`` centres radius·(cos 2πi/modes, sin 2πi/modes), i = 0 … modes−1; (modes, 2)."""
    if modes < 1:
        raise ValueError(f"ring: modes must be ≥ 1, got {modes}")
    a = 2.0 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(a), np.sin(a)], axis=1)


def grid_means(side: int = 5, spacing: float = 2.0) -> np.ndarray:
    """The side² centres of a square grid centred on 0, row-major in (x, y); (side², 2).

    side=5, spacing=2 gives {−4, −2, 0, 2, 4}² (Q2 ``grid-25``).
    """
    if side < 1:
        raise ValueError(f"grid: side must be ≥ 1, got {side}")
    c = (np.arange(side) - (side - 1) / 2.0) * spacing
    gx, gy = np.meshgrid(c, c, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def _isotropic_mixture(n, rng, means, std, dtype):
    n = _check_n(n)
    rng = _check_rng(rng)
    if not std >= 0:
        raise ValueError(f"std must be ≥ 0, got {std}")
    k = rng.integers(0, len(means), size=n)        # equal weights
    x = means[k] + std * rng.standard_normal((n, means.shape[1]))
    return x.astype(dtype, copy=False)


def ring(n: int, rng: np.random.Generator, modes: int = 8, radius: float = 1.0,
         std: float = 0.01, dtype=np.float32) -> np.ndarray:
    """n points from an equal-weight mixture of ``modes`` isotropic Gaussians on a circle.

    x = radius·(cos 2πk/modes, sin 2πk/modes) + std·ε, k ~ U{0 … modes−1}, ε ~ N(0, I₂).
    Defaults are Q1 ``ring-8``. Returns (n, 2) of ``dtype``.
    """
    return _isotropic_mixture(n, rng, ring_means(modes, radius), std, dtype)


def grid(n: int, rng: np.random.Generator, side: int = 5, spacing: float = 2.0,
         std: float = 0.05, dtype=np.float32) -> np.ndarray:
    """n points from an equal-weight mixture of side² isotropic Gaussians on a square grid.

    Means :func:`grid_means` (side, spacing); defaults are Q2 ``grid-25`` (means on
    {−4, −2, 0, 2, 4}², std 0.05). Returns (n, 2) of ``dtype``.
    """
    return _isotropic_mixture(n, rng, grid_means(side, spacing), std, dtype)


def swiss_roll(n: int, rng: np.random.Generator, noise: float = 0.25, scale: float = 1.0 / 7.5,
               dtype=np.float32) -> np.ndarray:
    """n points of a 2-D Swiss roll (the spiral of scikit-learn's ``make_swiss_roll``, x and z).

    t ~ U[1.5π, 4.5π];  x = scale·(t cos t + noise·ε₁, t sin t + noise·ε₂),  ε ~ N(0, I₂).
    With the defaults (noise 0.25 before scaling by 1/7.5, as in the WGAN-GP authors' toy code)
    the points lie in about [−1.8, 1.8]². Returns (n, 2) of ``dtype``.
    """
    n = _check_n(n)
    rng = _check_rng(rng)
    if not noise >= 0:
        raise ValueError(f"swiss_roll: noise must be ≥ 0, got {noise}")
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    x += noise * rng.standard_normal((n, 2))
    x *= scale
    return x.astype(dtype, copy=False)


def _mixture_params(means, stds, weights):
    means = np.atleast_1d(np.asarray(means, dtype=np.float64))
    stds = np.atleast_1d(np.asarray(stds, dtype=np.float64))
    if means.ndim != 1 or len(means) == 0:
        raise ValueError(f"mixture: means must be a non-empty 1-D sequence, got shape {means.shape}")
    if stds.size == 1:
        stds = np.full_like(means, stds.item())
    if stds.shape != means.shape:
        raise ValueError(f"mixture: {len(means)} means but {stds.size} stds")
    if not np.all(stds > 0):
        raise ValueError(f"mixture: every std must be > 0, got {stds.tolist()}")
    if weights is None:
        weights = np.full_like(means, 1.0 / len(means))
    else:
        weights = np.atleast_1d(np.asarray(weights, dtype=np.float64))
        if weights.shape != means.shape:
            raise ValueError(f"mixture: {len(means)} means but {weights.size} weights")
        if not (np.all(weights >= 0) and weights.sum() > 0 and np.all(np.isfinite(weights))):
            raise ValueError(f"mixture: weights must be finite, ≥ 0 and not all 0, got {weights.tolist()}")
        weights = weights / weights.sum()
    if not np.all(np.isfinite(means)):
        raise ValueError(f"mixture: means must be finite, got {means.tolist()}")
    return means, stds, weights


def gaussian_mixture_1d(n: int, rng: np.random.Generator, means: Sequence[float] = (-2.0, 2.0),
                        stds: Sequence[float] | float = 0.5, weights: Sequence[float] | None = None,
                        dtype=np.float32) -> np.ndarray:
    """n points from the 1-D mixture p(x) = Σₖ wₖ N(x; μₖ, σₖ²); returns (n, 1) of ``dtype``.

    ``means`` (K,), ``stds`` (K,) or one float for all, ``weights`` (K,) non-negative, normalised
    to sum 1 here (None: equal). The density is :func:`gaussian_mixture_1d_pdf` with the same
    arguments. Shape (n, 1) so that it feeds ``nn.Linear(1, …)`` directly.
    """
    n = _check_n(n)
    rng = _check_rng(rng)
    means, stds, weights = _mixture_params(means, stds, weights)
    k = rng.choice(len(means), size=n, p=weights)
    x = means[k] + stds[k] * rng.standard_normal(n)
    return x.reshape(n, 1).astype(dtype, copy=False)


def gaussian_mixture_1d_pdf(x, means: Sequence[float] = (-2.0, 2.0),
                            stds: Sequence[float] | float = 0.5,
                            weights: Sequence[float] | None = None) -> np.ndarray:
    """The density p(x) = Σₖ wₖ · exp(−(x − μₖ)² / 2σₖ²) / (σₖ √(2π)) of :func:`gaussian_mixture_1d`.

    ``x`` any shape; returns float64 of the same shape. Same ``means``/``stds``/``weights``
    conventions (weights normalised to sum 1).
    """
    means, stds, weights = _mixture_params(means, stds, weights)
    x = np.asarray(x, dtype=np.float64)
    z = (x[..., None] - means) / stds
    return np.sum(weights / (stds * np.sqrt(2.0 * np.pi)) * np.exp(-0.5 * z * z), axis=-1)


@dataclass(frozen=True, eq=False)
class ToyDistribution:
    """A named toy distribution with what the quality metrics need.

    name     registry name (``"ring-8"``…)
    sampler  ``sampler(n, rng) -> (n, dim)`` float32 array (use :meth:`sample`)
    dim      data dimension
    means    (K, dim) float64 mode centres, or None when the distribution has no modes
    std      per-coordinate std of each mode (the "3 std" of the high-quality test), or None;
             for ``mixture-1d`` with unequal stds, the largest
    pdf      ``pdf(x) -> density`` for distributions with a known density (``mixture-1d``), else None

    ``mode_metrics(samples, d.means, d.std)`` scores samples against it (:mod:`pygan.metrics`).
    """

    name: str
    sampler: Callable[[int, np.random.Generator], np.ndarray] = field(repr=False)
    dim: int
    means: np.ndarray | None = field(default=None, repr=False)
    std: float | None = None
    pdf: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def sample(self, n: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
        """n samples, (n, dim) of ``dtype``."""
        return self.sampler(n, rng).astype(dtype, copy=False)

    @property
    def num_modes(self) -> int:
        return 0 if self.means is None else len(self.means)


def _toy_ring(modes=8, radius=1.0, std=0.01):
    return ToyDistribution(f"ring-{modes}", lambda n, rng: ring(n, rng, modes, radius, std, np.float64),
                           2, ring_means(modes, radius), float(std))


def _toy_grid(side=5, spacing=2.0, std=0.05):
    return ToyDistribution(f"grid-{side * side}",
                           lambda n, rng: grid(n, rng, side, spacing, std, np.float64),
                           2, grid_means(side, spacing), float(std))


def _toy_swiss_roll(noise=0.25, scale=1.0 / 7.5):
    return ToyDistribution("swiss-roll", lambda n, rng: swiss_roll(n, rng, noise, scale, np.float64), 2)


def _toy_mixture_1d(means=(-2.0, 2.0), stds=0.5, weights=None):
    m, s, w = _mixture_params(means, stds, weights)
    return ToyDistribution("mixture-1d",
                           lambda n, rng: gaussian_mixture_1d(n, rng, m, s, w, np.float64),
                           1, m.reshape(-1, 1), float(s.max()),
                           lambda x: gaussian_mixture_1d_pdf(x, m, s, w))


_TOY = {
    "ring-8": _toy_ring,
    "grid-25": _toy_grid,
    "swiss-roll": _toy_swiss_roll,
    "mixture-1d": _toy_mixture_1d,
}
TOY_DISTRIBUTIONS = tuple(_TOY)


def toy(name: str, **kwargs) -> ToyDistribution:
    """The toy distribution called ``name`` (one of :data:`TOY_DISTRIBUTIONS`).

    Keyword arguments override its parameters: ``toy("ring-8", std=0.02)``,
    ``toy("grid-25", spacing=1.0)``, ``toy("mixture-1d", means=(-1, 3), stds=(0.5, 1))``,
    ``toy("swiss-roll", noise=0.1)`` (the parameters of :func:`ring`, :func:`grid`,
    :func:`gaussian_mixture_1d`, :func:`swiss_roll`).
    """
    if name not in _TOY:
        raise ValueError(f"unknown toy distribution {name!r}; choose one of {', '.join(TOY_DISTRIBUTIONS)}")
    try:
        return _TOY[name](**kwargs)
    except TypeError as e:
        raise TypeError(f"toy({name!r}): {e}") from None


# ---------------------------------------------------------------------------------------------
# scikit-learn digits
# ---------------------------------------------------------------------------------------------

def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8×8 handwritten digits bundled with scikit-learn (Q3).

    Returns (images, labels): images float32 (1797, 1, 8, 8) with the 0…16 grey levels mapped
    linearly to [−1, 1] (g ↦ (g − 8)/8, exact in float32), labels int64 (1797,) in 0…9.
    Needs scikit-learn (``pip install pygan[digits]`` or ``pip install scikit-learn``);
    no network is used (the data ships with it).
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as e:
        raise ImportError("pygan.data.load_digits needs scikit-learn, which is not installed: "
                          "pip install 'pygan[digits]' (or pip install scikit-learn)") from e
    d = _sk_load_digits()
    x = np.asarray(d.images, dtype=np.float32)
    x = ((x - np.float32(8.0)) / np.float32(8.0)).reshape(-1, 1, 8, 8)
    return np.ascontiguousarray(x), np.asarray(d.target, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# IDX files (MNIST, Fashion-MNIST)
# ---------------------------------------------------------------------------------------------

# IDX type code → big-endian dtype
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzip-compressed.

    Compression is detected from the first two bytes (1f 8b), not from the file name. The
    header is: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64, all big-endian), the number of dimensions d, then d big-endian
    uint32 sizes; the data must fill exactly prod(sizes) items. Returns an array of that shape
    in native byte order.

    Raises ``ValueError`` naming the file and what was expected vs found for: a wrong magic
    number, an unknown type code, a short header, a truncated file, trailing bytes, or a corrupt
    gzip stream. ``FileNotFoundError`` if it does not exist.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    what = f"IDX file {path!r}"
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{what} starts with the gzip magic bytes 1f 8b but could not be "
                             f"decompressed ({type(e).__name__}: {e}); the file is corrupt or "
                             f"incomplete") from None
        what += " (gzip)"
    if len(raw) < 4:
        raise ValueError(f"{what}: too short for an IDX header: expected at least 4 bytes "
                         f"(00 00 <type> <ndim>), found {len(raw)}")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{what}: wrong magic number: expected the first two bytes 00 00, "
                         f"found {raw[:4].hex(' ')} (first four bytes); not an IDX file")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X} {t.name}" for c, t in _IDX_TYPES.items())
        raise ValueError(f"{what}: unknown IDX type code 0x{code:02X} (byte 3); expected one of {known}")
    if ndim == 0:
        raise ValueError(f"{what}: IDX header says 0 dimensions (byte 4); expected at least 1")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{what}: truncated header: {ndim} dimensions need {header} header bytes, "
                         f"found {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        kind = "truncated" if found < expected else f"{found - expected} trailing bytes"
        raise ValueError(f"{what}: {kind}: header says shape {tuple(dims)} of {dtype.name} = "
                         f"{expected} data bytes after the {header}-byte header, found {found}")
    a = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return a.astype(dtype.newbyteorder("="))   # native order; a writeable copy


def write_idx(path, array, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzip-compressed if ``compress``, default: name ends .gz).

    The dtype must be one of the IDX types (uint8, int8, int16, int32, float32, float64). The
    inverse of :func:`read_idx`; used by tests and to export data.
    """
    path = os.fspath(path)
    a = np.asarray(array)
    codes = {t.newbyteorder("=").str: c for c, t in _IDX_TYPES.items()}
    code = codes.get(a.dtype.newbyteorder("=").str)
    if code is None or a.ndim == 0 or a.ndim > 255:
        raise ValueError(f"write_idx({path!r}): cannot store dtype {a.dtype} with {a.ndim} dims in IDX")
    data = (bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape)
            + np.ascontiguousarray(a, dtype=_IDX_TYPES[code]).tobytes())
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        data = gzip.compress(data, mtime=0)
    with open(path, "wb") as f:
        f.write(data)


_MNIST_KINDS = ("mnist", "fashion")
_MNIST_SPLITS = {"train": "train", "test": "t10k"}


def mnist_file_names(split: str = "train") -> tuple[str, str]:
    """The standard (images, labels) file names of a split, without ``.gz``:
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte`` / ``t10k-…`` for ``"test"``.
    MNIST and Fashion-MNIST use the same names."""
    if split not in _MNIST_SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    p = _MNIST_SPLITS[split]
    return f"{p}-images-idx3-ubyte", f"{p}-labels-idx1-ubyte"


def _check_kind(kind):
    if kind not in _MNIST_KINDS:
        raise ValueError(f"kind must be 'mnist' or 'fashion', got {kind!r}")


def load_mnist(folder, kind: str = "mnist", split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST or Fashion-MNIST (Q4) from the standard IDX files in ``folder``.

    Reads ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (``t10k-…`` for
    ``split="test"``), each plain or ``.gz`` (a plain file wins if both exist; compression is
    detected from the content). ``kind`` ("mnist" | "fashion") only chooses where the error
    message says to get missing files — the two datasets share file names, so keep them in
    separate folders.

    Returns (images, labels): images float32 (N, 1, 28, 28) with grey levels 0…255 mapped to
    [−1, 1] (g ↦ (g − 127.5)/127.5, exact at both ends), labels int64 (N,).

    Raises ``FileNotFoundError`` listing the expected file names if they are missing (get them
    with :func:`download_mnist`), ``ValueError`` if a file is not a valid IDX file (see
    :func:`read_idx`), has the wrong type or rank, or the image and label counts differ.
    """
    _check_kind(kind)
    folder = os.fspath(folder)
    names = mnist_file_names(split)
    found, missing = [], []
    for base in names:
        for cand in (base, base + ".gz"):
            p = os.path.join(folder, cand)
            if os.path.isfile(p):
                found.append(p)
                break
        else:
            missing.append(base)
    if missing:
        label = "Fashion-MNIST" if kind == "fashion" else "MNIST"
        expected = ", ".join(f"{b}.gz (or {b})" for b in names)
        raise FileNotFoundError(
            f"{label} {split} files not found in {os.path.abspath(folder)!r}: missing "
            f"{', '.join(missing)}. Expected {expected}. Get them with "
            f"pygan.data.download_mnist({folder!r}, kind={kind!r}) (needs a network), or put the "
            f"files there yourself (from {MNIST_MIRRORS[kind][0]}).")
    img_path, lab_path = found
    images = read_idx(img_path)
    labels = read_idx(lab_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{img_path!r}: expected uint8 images of shape (N, rows, cols), "
                         f"found {images.dtype} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{lab_path!r}: expected uint8 labels of shape (N,), "
                         f"found {labels.dtype} of shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{split} split in {folder!r}: {len(images)} images in {img_path!r} but "
                         f"{len(labels)} labels in {lab_path!r}")
    x = np.empty((len(images), 1) + images.shape[1:], dtype=np.float32)
    np.subtract(images[:, None], np.float32(127.5), out=x, dtype=np.float32)
    x /= np.float32(127.5)
    return x, labels.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------------------------

class ChecksumError(ValueError):
    """A downloaded file's SHA-256 differs from the expected one (nothing was saved)."""


MNIST_MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

# SHA-256 of the official .gz files (the same bytes on every mirror above).
MNIST_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion": {
        "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    },
}


def _sha256_file(path, chunk=1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _check_sha256(sha256) -> str:
    s = str(sha256).strip().lower()
    if len(s) != 64 or any(c not in "0123456789abcdef" for c in s):
        raise ValueError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}")
    return s


def download(url: str, dest, sha256: str, timeout: float = 60.0, progress: bool = False) -> str:
    """Download ``url`` to the file ``dest`` and verify its SHA-256; returns ``dest``.

    The bytes go to a temporary file in dest's folder (created if needed), hashed while they
    arrive; only if the hash equals ``sha256`` is the file renamed onto ``dest`` (atomically:
    ``checkpoint.atomic_write``), so ``dest`` never holds a partial or unverified file. If
    ``dest`` already exists with the right hash nothing is downloaded.

    Raises :class:`ChecksumError` (a ``ValueError``) naming the file, the expected and the
    actual hash on a mismatch, and ``urllib.error.URLError`` / ``OSError`` when the download
    fails; in both cases the temporary file is removed and ``dest`` is left as it was.
    Proxies are taken from the usual environment variables (urllib's defaults).
    """
    expected = _check_sha256(sha256)
    dest = os.fspath(dest)
    if os.path.isfile(dest) and _sha256_file(dest) == expected:
        return dest

    def fetch(out):      # into atomic_write's temporary file: an error here leaves dest as it was
        h = hashlib.sha256()
        got = 0
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            total = resp.headers.get("Content-Length")
            while True:
                block = resp.read(1 << 20)
                if not block:
                    break
                h.update(block)
                out.write(block)
                got += len(block)
                if progress:
                    print(f"\r{os.path.basename(dest)}: {got:,} / {total or '?'} bytes", end="", flush=True)
        if progress:
            print()
        if total is not None and got != int(total):
            raise OSError(f"download of {url} to {dest!r} stopped after {got} of {total} bytes")
        actual = h.hexdigest()
        if actual != expected:
            raise ChecksumError(f"SHA-256 mismatch for {dest!r} downloaded from {url}: expected "
                                f"{expected}, got {actual} ({got} bytes); the file was not saved")

    atomic_write(dest, fetch)
    return dest


def download_mnist(folder, kind: str = "mnist", mirrors: Sequence[str] | None = None,
                   checksums: Mapping[str, str] | None = None, timeout: float = 60.0,
                   progress: bool = True) -> list[str]:
    """Download the four MNIST (``kind="mnist"``) or Fashion-MNIST (``"fashion"``) ``.gz`` files
    into ``folder`` and verify each against its SHA-256; returns their paths.

    The names are those :func:`load_mnist` reads (``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``).
    Files already present with the right hash are kept. ``mirrors`` (base URLs ending in ``/``)
    default to :data:`MNIST_MIRRORS` [kind], tried in order until one gives the right bytes;
    ``checksums`` (file name → SHA-256 hex) overrides entries of :data:`MNIST_SHA256` [kind]
    (e.g. for a private mirror of other data with the same names). Raises ``RuntimeError``
    listing every mirror's error if a file could not be fetched from any.
    """
    _check_kind(kind)
    folder = os.fspath(folder)
    sums = dict(MNIST_SHA256[kind])
    if checksums:
        sums.update({k: _check_sha256(v) for k, v in checksums.items()})
    bases = list(mirrors) if mirrors is not None else list(MNIST_MIRRORS[kind])
    if not bases:
        raise ValueError("download_mnist: no mirrors given")
    paths = []
    for split in ("train", "test"):
        for base in mnist_file_names(split):
            name = base + ".gz"
            dest = os.path.join(folder, name)
            errors = []
            for b in bases:
                url = b if b.endswith("/") else b + "/"
                try:
                    download(url + name, dest, sums[name], timeout=timeout, progress=progress)
                    break
                except (urllib.error.URLError, http.client.HTTPException, OSError, ChecksumError) as e:
                    errors.append(f"  {url + name}: {e}")
            else:
                raise RuntimeError(f"could not download {name} into {folder!r} from any mirror:\n"
                                   + "\n".join(errors))
            paths.append(dest)
    return paths


# ---------------------------------------------------------------------------------------------
# Minibatches
# ---------------------------------------------------------------------------------------------

def batches(x: np.ndarray, batch_size: int, rng: np.random.Generator, labels: np.ndarray | None = None,
            drop_last: bool = True, epochs: int | None = None) -> Iterator:
    """Shuffled minibatches of ``x`` (N, …) along axis 0, reshuffled every epoch.

    A generator. Each epoch draws a fresh permutation of the N rows from ``rng`` and yields
    its consecutive slices of ``batch_size`` rows: ``x[idx]`` (a copy), or ``(x[idx],
    labels[idx])`` when ``labels`` (N, …) is given. With ``drop_last`` the final short slice of
    an epoch is skipped, so every batch has exactly ``batch_size`` rows (N // batch_size
    batches an epoch); without it the epoch ends with the remaining N mod batch_size rows.

    ``epochs=None`` (default) never ends — the usual GAN loop draws ``next(it)`` once per step;
    ``epochs=k`` stops after k full passes (``for xb in batches(x, 64, rng, epochs=1)``).

    Raises ``ValueError`` if ``drop_last`` and ``batch_size > N`` (no batch could ever be made).
    """
    x = np.asarray(x)
    rng = _check_rng(rng)
    if x.ndim == 0:
        raise ValueError("batches: x must have a leading sample axis, got a scalar")
    n = len(x)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive integer, got {batch_size!r}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim == 0 or len(labels) != n:
            raise ValueError(f"batches: {n} samples but labels of shape {labels.shape}")
    if n == 0 or (drop_last and batch_size > n):
        raise ValueError(f"batches: batch_size {batch_size} > {n} samples with drop_last=True "
                         f"gives no batch; use a smaller batch or drop_last=False")
    if epochs is not None and (isinstance(epochs, bool) or epochs < 0):
        raise ValueError(f"batches: epochs must be None or ≥ 0, got {epochs!r}")
    return _batches(x, int(batch_size), rng, labels, drop_last, epochs)


def _batches(x, batch_size, rng, labels, drop_last, epochs):
    n = len(x)
    stop = n - n % batch_size if drop_last else n
    epoch = 0
    while epochs is None or epoch < epochs:
        perm = rng.permutation(n)
        for s in range(0, stop, batch_size):
            idx = perm[s:s + batch_size]
            yield x[idx] if labels is None else (x[idx], labels[idx])
        epoch += 1
