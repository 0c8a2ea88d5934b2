"""A short run of one preset of every family, reduced to numbers that pin its trajectory.

``python tests/preset_regression.py`` writes ``tests/data/preset_regression.json`` (``… NAME …``
re-records only the named presets); the test
``tests/test_preset_regression.py`` trains the same presets again and compares. Each entry holds
the scalar metrics of every step and a SHA-256 of the final state (parameters, buffers, EMA,
optimizer state). The checksum is compared only on a machine like the recording one (same CPU
model, BLAS kernels and NumPy, see :func:`fingerprint`): other BLAS kernels round differently.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RECORD = os.path.join(HERE, "data", "preset_regression.json")
STEPS = 30

GAN_PRESETS = [
    "ring-8", "minimax-ring-8", "lsgan-ring-8", "hinge-ring-8", "wgan-ring-8", "wgan-gp-ring-8",
    "r1-ring-8", "sn-hinge-ring-8", "lipschitz-ring-8", "lipschitz-one-sided-ring-8-decay-ema",
    "ring-8-ema", "grid-25-decay-ema", "mixture-1d",
    "dcgan-digits", "cgan-digits", "wgan-digits", "wgan-gp-digits", "r1-digits", "sn-hinge-digits",
    "lipschitz-digits", "dcgan-mnist", "cgan-mnist", "wgan-gp-mnist", "sn-hinge-mnist", "r1-mnist",
]
VAE_PRESETS = ["vae-digits", "cvae-digits", "ae-digits", "vae-mnist", "cvae-mnist"]
PRESETS = GAN_PRESETS + VAE_PRESETS
_SKIP = ("step", "time", "grad_norm")


def fingerprint() -> dict:
    """What decides float32 rounding here: CPU model, BLAS kernel set, NumPy version."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info
        blas = sorted(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                      for i in threadpool_info() if i.get("user_api") == "blas")
    except ImportError:
        blas = []
    return {"cpu": model, "blas": blas, "numpy": np.__version__}


def synthetic_mnist(folder, n=256, seed=0):
    """IDX files of random 28×28 images (train and test), enough for a short run."""
    from pygan import data
    rng = np.random.default_rng(seed)
    for prefix, m in (("train", n), ("t10k", n // 4)):
        data.write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte"),
                       rng.integers(0, 256, size=(m, 28, 28), dtype=np.uint8))
        data.write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"),
                       rng.integers(0, 10, size=m, dtype=np.uint8))


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[k]))
        h.update(k.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _scalars(rec: dict) -> dict:
    return {k: float(v) for k, v in rec.items() if k not in _SKIP and isinstance(v, (int, float))}


def _trainer(name, mnist_folder, run_dir):
    from pygan.training import Trainer, config, presets
    over = {"steps": STEPS, "eval_every": 0, "sample_every": 0, "checkpoint_every": 0, "log_every": 1000}
    if name.endswith("-mnist"):
        over["data_folder"] = mnist_folder
    return Trainer(config.validate(config.replace(presets.preset(name), over)), run_dir)


def _state(t) -> dict:
    out = {}
    for which, mod in t.task.modules().items():
        out.update({f"{'G' if which == 'model' else which}.{k}": v for k, v in mod.state_dict().items()})
    for which, opt in t.task.optimizers().items():
        which = {"opt": "opt"}.get(which, which)
        out.update({f"{which}.{k}": v for k, v in opt.state_dict().items() if not isinstance(v, dict)})
    ema = getattr(t.task, "ema", None)
    for i, e in enumerate(ema.values if ema is not None else []):
        out[f"ema.{i}"] = e
    return out


def run_preset(name: str, mnist_folder: str) -> dict:
    """{"metrics": [per-step scalars], "state_sha256": …} after STEPS steps of preset ``name``."""
    from pygan.backend import set_backend
    from pygan.backend.cpu_threads import blas
    set_backend("numpy")
    # as in a fresh process: OpenBLAS's threads spin again and products of 2M-16M multiply-adds
    # use its own thread count (after an image model's step they run on one thread for a second,
    # cpu_threads.QUIET_HOLD_S, and OpenBLAS rounds them differently on one thread)
    blas.spin_idle_threads()
    with tempfile.TemporaryDirectory() as run_dir:
        t = _trainer(name, mnist_folder, run_dir)
        metrics = [_scalars(t.train_step()) for _ in range(STEPS)]
        return {"metrics": metrics, "state_sha256": _digest(_state(t))}


def record(path=RECORD, names=None):
    """Write the record of every preset, or with ``names`` re-record only those in the existing file."""
    runs, old = {}, None
    if names:
        unknown = sorted(set(names) - set(PRESETS))
        if unknown:
            raise SystemExit(f"not in the record's preset list (PRESETS above): {', '.join(unknown)}")
        with open(path) as f:
            old = json.load(f)
        runs, here = old["runs"], fingerprint()
        if (old["fingerprint"]["cpu"], old["fingerprint"]["numpy"]) != (here["cpu"], here["numpy"]):
            raise SystemExit("the record was made on another machine or NumPy: re-record every preset")
    with tempfile.TemporaryDirectory() as folder:
        synthetic_mnist(folder)
        for name in (names or PRESETS):
            runs[name] = run_preset(name, folder)
    runs = {name: runs[name] for name in PRESETS if name in runs}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"fingerprint": old["fingerprint"] if names else fingerprint(), "steps": STEPS, "runs": runs},
                  f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    import argparse
    sys.path.insert(0, os.path.dirname(HERE))
    ap = argparse.ArgumentParser(description="record the preset regression (all presets, or the named ones)")
    ap.add_argument("names", nargs="*", help="re-record only these presets in the existing record")
    ap.add_argument("--out", default=RECORD)
    args = ap.parse_args()
    record(args.out, args.names)
