"""Data-parallel training under ``mpiexec -n 2`` (subprocesses with a bounded timeout; skipped
cleanly without mpi4py or mpiexec): K = 2 trains the parameters of K = 1."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mpi4py")
MPIEXEC = shutil.which("mpiexec") or (os.path.join(os.path.dirname(sys.executable), "mpiexec")
                                      if os.path.exists(os.path.join(os.path.dirname(sys.executable), "mpiexec")) else None)
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install 'pygan[mpi]')")

QUIET = ["--eval-every", "0", "--sample-every", "0", "--checkpoint-every", "0", "--log-every", "50", "--no-progress"]


def _env():
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _train(k, out, *args, timeout=180):
    cmd = [sys.executable, "-m", "pygan", "train", *args, "--out", str(out), *QUIET]
    if k:
        cmd = [MPIEXEC, "-n", str(k), *cmd, "--distributed"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())


def _params(run):
    from pygan.training import checkpoint
    ck = checkpoint.load(str(run))
    return {f"{n}.{k}": v for n, sd in ck.modules.items() for k, v in sd.items()}


@pytest.mark.parametrize("preset", ["ring-8"])
def test_k2_equals_k1_to_float32_rounding(tmp_path, preset):
    args = [preset, "--steps", "100", "--batch", "64"]
    r1 = _train(0, tmp_path / "k1", *args)
    assert r1.returncode == 0, r1.stderr
    r2 = _train(2, tmp_path / "k2", *args)
    assert r2.returncode == 0, r2.stderr
    assert all(line.startswith("[K=2]") for line in r2.stdout.splitlines() if line.strip())
    a, b = _params(tmp_path / "k1"), _params(tmp_path / "k2")
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=2e-6, err_msg=k)


def test_batch_not_divisible_is_an_error_before_training(tmp_path):
    r = _train(2, tmp_path / "k2", "ring-8", "--steps", "5", "--batch", "63")
    assert r.returncode != 0
    assert "does not divide among 2 processes" in r.stderr
    assert not os.path.exists(tmp_path / "k2" / "checkpoint.npz")
