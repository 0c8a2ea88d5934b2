import gzip
import hashlib
import http.client
import http.server
import os
import struct
import sys
import threading

import numpy as np
import pytest

from pygan import data


# --- toy distributions ------------------------------------------------------------------------

def test_ring_samples_sit_on_the_eight_ring_means(rng):
    x = data.ring(4000, rng)
    assert x.shape == (4000, 2) and x.dtype == np.float32
    means = data.ring_means()
    np.testing.assert_allclose(means[2], [0.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 1.0, rtol=1e-15)
    d = np.linalg.norm(x[:, None, :] - means[None], axis=2)
    k = d.argmin(1)
    assert np.bincount(k, minlength=8).min() > 400            # equal weights
    resid = x - means[k]
    assert np.std(resid) == pytest.approx(0.01, rel=0.05)


def test_grid_means_are_the_25_points_of_minus4_to_4_squared(rng):
    means = data.grid_means()
    assert means.shape == (25, 2)
    expected = {(a, b) for a in (-4.0, -2.0, 0.0, 2.0, 4.0) for b in (-4.0, -2.0, 0.0, 2.0, 4.0)}
    assert {tuple(m) for m in means} == expected
    x = data.grid(5000, rng)
    k = np.linalg.norm(x[:, None, :] - means[None], axis=2).argmin(1)
    assert np.std(x - means[k]) == pytest.approx(0.05, rel=0.05)


def test_toy_samplers_are_reproducible_from_the_generator():
    for name in data.TOY_DISTRIBUTIONS:
        d = data.toy(name)
        a = d.sample(100, np.random.default_rng(7))
        b = d.sample(100, np.random.default_rng(7))
        assert a.shape == (100, d.dim) and a.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_toy_registry_exposes_means_and_std_and_rejects_unknown_names():
    r = data.toy("ring-8")
    assert r.num_modes == 8 and r.std == 0.01 and r.means.shape == (8, 2)
    g = data.toy("grid-25")
    assert g.num_modes == 25 and g.std == 0.05
    s = data.toy("swiss-roll")
    assert s.means is None and s.std is None and s.num_modes == 0
    m = data.toy("mixture-1d", means=(-1.0, 3.0), stds=(0.2, 0.4))
    assert m.means.shape == (2, 1) and m.std == 0.4 and m.pdf is not None
    assert data.toy("ring-8", std=0.02).std == 0.02
    with pytest.raises(ValueError, match="ring-8, grid-25"):
        data.toy("ring8")
    with pytest.raises(TypeError, match="toy"):
        data.toy("ring-8", sigma=0.1)


def test_swiss_roll_without_noise_lies_on_the_spiral(rng):
    x = data.swiss_roll(1000, rng, noise=0.0, scale=1.0, dtype=np.float64)
    t = np.linalg.norm(x, axis=1)                          # ‖(t cos t, t sin t)‖ = t
    assert t.min() >= 1.5 * np.pi - 1e-9 and t.max() <= 4.5 * np.pi + 1e-9
    np.testing.assert_allclose(x, np.stack([t * np.cos(t), t * np.sin(t)], 1), atol=1e-9)
    y = data.swiss_roll(1000, rng)
    assert y.dtype == np.float32 and np.abs(y).max() < 2.2


def test_mixture_1d_samples_match_the_mixture_moments(rng):
    means, stds, weights = (-2.0, 1.0, 4.0), (0.5, 1.0, 0.3), (0.2, 0.5, 0.3)
    x = data.gaussian_mixture_1d(200_000, rng, means, stds, weights, dtype=np.float64)
    assert x.shape == (200_000, 1)
    w, mu, s = map(np.array, (weights, means, stds))
    mean = w @ mu
    var = w @ (s ** 2 + mu ** 2) - mean ** 2
    assert x.mean() == pytest.approx(mean, abs=5 * np.sqrt(var / len(x)))
    assert x.var() == pytest.approx(var, rel=0.02)


def test_mixture_1d_pdf_integrates_to_one_and_matches_the_formula():
    x = np.linspace(-25, 25, 50001)
    p = data.gaussian_mixture_1d_pdf(x, (-2.0, 3.0), (0.5, 2.0), (1.0, 3.0))   # weights normalised
    assert np.trapezoid(p, x) == pytest.approx(1.0, rel=1e-10)
    x0 = 0.7
    ref = (0.25 * np.exp(-0.5 * ((x0 + 2) / 0.5) ** 2) / (0.5 * np.sqrt(2 * np.pi))
           + 0.75 * np.exp(-0.5 * ((x0 - 3) / 2.0) ** 2) / (2.0 * np.sqrt(2 * np.pi)))
    assert data.gaussian_mixture_1d_pdf(x0, (-2.0, 3.0), (0.5, 2.0), (1.0, 3.0)) == pytest.approx(ref, rel=1e-14)
    assert data.gaussian_mixture_1d_pdf(np.zeros((3, 4))).shape == (3, 4)


def test_mixture_1d_rejects_inconsistent_parameters(rng):
    with pytest.raises(ValueError, match="2 means but 3 stds"):
        data.gaussian_mixture_1d(10, rng, (0.0, 1.0), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="std must be > 0"):
        data.gaussian_mixture_1d_pdf(0.0, (0.0,), (0.0,))
    with pytest.raises(ValueError, match="weights"):
        data.gaussian_mixture_1d(10, rng, (0.0, 1.0), 1.0, (-1.0, 2.0))
    with pytest.raises(TypeError, match="Generator"):
        data.ring(10, np.random.RandomState(0))


# --- digits -----------------------------------------------------------------------------------

def test_load_digits_gives_float32_images_in_minus1_1_and_int64_labels():
    pytest.importorskip("sklearn")
    x, y = data.load_digits()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.min() == -1.0 and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))


def test_load_digits_without_sklearn_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pygan\[digits\].*scikit-learn"):
        data.load_digits()


# --- IDX files --------------------------------------------------------------------------------

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@pytest.mark.parametrize("dtype", IDX_DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_read_idx_round_trips_every_type_plain_and_gzipped(tmp_path, rng, dtype, compress):
    a = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    p = tmp_path / "a.idx"
    data.write_idx(p, a, compress=compress)
    raw = p.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == compress
    b = data.read_idx(p)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.flags.writeable
    np.testing.assert_array_equal(a, b)


def test_read_idx_detects_gzip_by_content_not_by_name(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data.write_idx(tmp_path / "gz-without-suffix", a, compress=True)
    data.write_idx(tmp_path / "plain.gz", a, compress=False)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "gz-without-suffix"), a)
    np.testing.assert_array_equal(data.read_idx(str(tmp_path / "plain.gz")), a)


def _idx_bytes(code, dims, payload_len=None, itemsize=1):
    n = int(np.prod(dims)) * itemsize
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + bytes(
        n if payload_len is None else payload_len)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("raw,message", [
    (b"\x08\x03" + _idx_bytes(0x08, (2, 3))[2:], r"wrong magic number: expected .*00 00, found 08 03"),
    (_idx_bytes(0x07, (2, 3)), r"unknown IDX type code 0x07"),
    (_idx_bytes(0x08, (2, 3), payload_len=5), r"truncated: header says shape \(2, 3\) of uint8 = 6 data bytes.*found 5"),
    (_idx_bytes(0x0B, (2, 3), payload_len=14), r"2 trailing bytes: .*int16 = 12 data bytes.*found 14"),
    (_idx_bytes(0x08, (2, 3))[:9], r"truncated header: 2 dimensions need 12 header bytes, found 9"),
    (b"\x00\x00", r"too short"),
    (bytes([0, 0, 8, 0]), r"0 dimensions"),
], ids=["magic", "type", "truncated", "trailing", "short-header", "tiny", "ndim0"])
def test_read_idx_rejects_corrupt_files_naming_file_and_expectation(tmp_path, raw, message, compress):
    p = tmp_path / "bad-idx1-ubyte"
    p.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(ValueError, match=message) as e:
        data.read_idx(p)
    assert str(p) in str(e.value)


def test_read_idx_rejects_a_truncated_gzip_stream(tmp_path):
    p = tmp_path / "cut.gz"
    p.write_bytes(gzip.compress(_idx_bytes(0x08, (100, 10)))[:-12])
    with pytest.raises(ValueError, match="gzip.*could not be decompressed") as e:
        data.read_idx(p)
    assert str(p) in str(e.value)


def _write_mnist(folder, n=5, prefix="train", compress=True, n_labels=None, rng=None):
    rng = rng or np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    imgs[0, 0, 0], imgs[0, 0, 1] = 0, 255
    labels = rng.integers(0, 10, size=n if n_labels is None else n_labels, dtype=np.uint8)
    sfx = ".gz" if compress else ""
    data.write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{sfx}"), imgs, compress=compress)
    data.write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{sfx}"), labels, compress=compress)
    return imgs, labels


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("split,prefix", [("train", "train"), ("test", "t10k")])
def test_load_mnist_reads_standard_files_into_minus1_1(tmp_path, compress, split, prefix):
    imgs, labels = _write_mnist(tmp_path, n=5, prefix=prefix, compress=compress)
    x, y = data.load_mnist(tmp_path, kind="fashion", split=split)
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)
    assert x[0, 0, 0, 0] == -1.0 and x[0, 0, 0, 1] == 1.0
    np.testing.assert_allclose(x[:, 0], imgs / 127.5 - 1.0, atol=1e-6)


def test_load_mnist_rejects_mismatched_image_and_label_counts(tmp_path):
    _write_mnist(tmp_path, n=5, n_labels=4)
    with pytest.raises(ValueError, match="5 images .* but 4 labels"):
        data.load_mnist(tmp_path)


def test_load_mnist_rejects_files_of_the_wrong_type(tmp_path):
    data.write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.float32))
    data.write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="expected uint8 images.*float32"):
        data.load_mnist(tmp_path)


def test_load_mnist_missing_files_lists_expected_names_and_how_to_get_them(tmp_path):
    _write_mnist(tmp_path, prefix="train")               # only the train split is there
    with pytest.raises(FileNotFoundError) as e:
        data.load_mnist(tmp_path, split="test")
    msg = str(e.value)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "download_mnist", str(tmp_path)):
        assert name in msg
    with pytest.raises(ValueError, match="kind"):
        data.load_mnist(tmp_path, kind="emnist")
    with pytest.raises(ValueError, match="split"):
        data.load_mnist(tmp_path, split="val")


# --- downloads over a local HTTP server ---------------------------------------------------------

class _Server:
    def __init__(self):
        self.files = {}        # url path -> bytes
        self.requests = []
        files, requests = self.files, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                if self.path == "/cut-short":        # announces 100 bytes, sends 10, hangs up
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.write(b"0123456789")
                    self.close_connection = True
                    return
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    s = _Server()
    yield s
    s.close()


def _sha(b):
    return hashlib.sha256(b).hexdigest()


def test_download_writes_the_verified_file_and_leaves_no_temporary(server, tmp_path):
    body = gzip.compress(_idx_bytes(0x08, (4, 3)))
    server.files["/a/labels.gz"] = body
    dest = tmp_path / "sub" / "labels.gz"
    out = data.download(server.url + "/a/labels.gz", dest, _sha(body))
    assert out == str(dest) and dest.read_bytes() == body
    assert os.listdir(tmp_path / "sub") == ["labels.gz"]
    assert data.read_idx(dest).shape == (4, 3)
    data.download(server.url + "/a/labels.gz", dest, _sha(body).upper())
    assert server.requests == ["/a/labels.gz"]           # already there with the right hash


def test_download_checksum_mismatch_names_file_and_hashes_and_saves_nothing(server, tmp_path):
    body = b"not what you expected"
    server.files["/f.gz"] = body
    dest = tmp_path / "f.gz"
    wrong = "0" * 64
    with pytest.raises(data.ChecksumError) as e:
        data.download(server.url + "/f.gz", dest, wrong)
    msg = str(e.value)
    assert str(dest) in msg and wrong in msg and _sha(body) in msg
    assert isinstance(e.value, ValueError)
    assert os.listdir(tmp_path) == []                    # no dest, no temporary file


def test_download_replaces_a_corrupt_existing_file(server, tmp_path):
    body = b"the real bytes"
    server.files["/r"] = body
    dest = tmp_path / "r"
    dest.write_bytes(b"half a download")
    data.download(server.url + "/r", dest, _sha(body))
    assert dest.read_bytes() == body and os.listdir(tmp_path) == ["r"]


def test_download_http_error_saves_nothing(server, tmp_path):
    import urllib.error
    with pytest.raises(urllib.error.HTTPError):
        data.download(server.url + "/missing", tmp_path / "x", "0" * 64)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="64 hexadecimal"):
        data.download(server.url + "/missing", tmp_path / "x", "abc")


def test_download_cut_short_raises_and_saves_nothing(server, tmp_path):
    with pytest.raises((OSError, http.client.IncompleteRead)) as e:
        data.download(server.url + "/cut-short", tmp_path / "x.gz", "0" * 64)
    assert not isinstance(e.value, data.ChecksumError)   # the short read, not a hash mismatch
    assert os.listdir(tmp_path) == []


def test_download_mnist_from_a_mirror_then_load_mnist(server, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _write_mnist(src, n=6, prefix="train")
    _write_mnist(src, n=3, prefix="t10k")
    sums = {}
    for name in os.listdir(src):
        body = (src / name).read_bytes()
        server.files["/mirror/" + name] = body
        sums[name] = _sha(body)
    dest = tmp_path / "mnist"
    paths = data.download_mnist(dest, mirrors=[server.url + "/nothing-here/", server.url + "/mirror"],
                                checksums=sums, progress=False)
    assert sorted(os.listdir(dest)) == sorted(sums) and len(paths) == 4
    x, y = data.load_mnist(dest)
    assert x.shape == (6, 1, 28, 28)
    assert data.load_mnist(dest, split="test")[0].shape == (3, 1, 28, 28)


def test_download_mnist_fails_with_every_mirrors_error_when_hashes_differ(server, tmp_path):
    server.files["/m/train-images-idx3-ubyte.gz"] = b"tampered"
    with pytest.raises(RuntimeError, match="train-images-idx3-ubyte.gz") as e:
        data.download_mnist(tmp_path, mirrors=[server.url + "/m/"], progress=False)
    assert data.MNIST_SHA256["mnist"]["train-images-idx3-ubyte.gz"] in str(e.value)
    assert os.listdir(tmp_path) == []


def test_mnist_checksum_table_is_complete_and_well_formed():
    for kind in ("mnist", "fashion"):
        names = set(data.mnist_file_names("train") + data.mnist_file_names("test"))
        assert set(data.MNIST_SHA256[kind]) == {n + ".gz" for n in names}
        for h in data.MNIST_SHA256[kind].values():
            assert len(h) == 64 and int(h, 16) >= 0
        assert data.MNIST_MIRRORS[kind]


# --- minibatches ------------------------------------------------------------------------------

def test_batches_visit_every_sample_once_per_epoch_and_reshuffle(rng):
    x = np.arange(10)
    it = data.batches(x, 3, rng)                         # infinite, drop_last
    epochs = [np.concatenate([next(it) for _ in range(3)]) for _ in range(4)]
    for e in epochs:
        assert len(e) == 9 and len(set(e.tolist())) == 9
    assert any(not np.array_equal(epochs[0], e) for e in epochs[1:])


def test_batches_keep_labels_aligned_and_last_short_batch_without_drop_last(rng):
    x = np.arange(10)[:, None] * np.ones((1, 2))
    y = np.arange(10) * 10
    out = list(data.batches(x, 4, rng, labels=y, drop_last=False, epochs=2))
    assert [len(b[0]) for b in out] == [4, 4, 2, 4, 4, 2]
    for xb, yb in out:
        np.testing.assert_array_equal(xb[:, 0] * 10, yb)
    first = np.concatenate([b[1] for b in out[:3]])
    assert sorted(first.tolist()) == y.tolist()


def test_batches_are_reproducible_and_epochs_end(rng):
    x = np.arange(20)
    a = list(data.batches(x, 5, np.random.default_rng(3), epochs=2))
    b = list(data.batches(x, 5, np.random.default_rng(3), epochs=2))
    assert len(a) == 8 and all(np.array_equal(p, q) for p, q in zip(a, b))


def test_batches_reject_impossible_requests(rng):
    with pytest.raises(ValueError, match="batch_size 11 > 10"):
        data.batches(np.zeros(10), 11, rng)
    with pytest.raises(ValueError, match="labels"):
        data.batches(np.zeros(10), 2, rng, labels=np.zeros(9))
    with pytest.raises(ValueError, match="positive integer"):
        data.batches(np.zeros(10), 0, rng)
