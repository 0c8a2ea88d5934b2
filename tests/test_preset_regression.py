"""Every preset family trains as recorded: a short run of each (tests/preset_regression.py) gives
the recorded per-step metrics and, on a machine like the recording one, the same final state
bit for bit. Re-record only for a change that is meant to alter training, and say so."""
from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest

import preset_regression as pr

with open(pr.RECORD) as _f:
    RECORDED = json.load(_f)


@pytest.fixture(scope="module")
def mnist_folder():
    with tempfile.TemporaryDirectory() as folder:
        pr.synthetic_mnist(folder)
        yield folder


def _same_machine(a: dict, b: dict) -> bool:
    arch = lambda f: sorted({s.rsplit(" ", 1)[-1] for s in f["blas"]})   # noqa: E731
    return a["cpu"] == b["cpu"] and a["numpy"] == b["numpy"] and arch(a) == arch(b)


def test_the_record_covers_every_preset_family():
    assert set(RECORDED["runs"]) == set(pr.PRESETS) and RECORDED["steps"] == pr.STEPS


@pytest.mark.parametrize("name", pr.PRESETS)
def test_preset_trains_as_recorded(name, mnist_folder):
    got = pr.run_preset(name, mnist_folder)
    want = RECORDED["runs"][name]
    assert [sorted(m) for m in got["metrics"]] == [sorted(m) for m in want["metrics"]], "metric names changed"
    if _same_machine(pr.fingerprint(), RECORDED["fingerprint"]):
        for step, (g, w) in enumerate(zip(got["metrics"], want["metrics"]), 1):
            for k in w:
                if k.endswith("_prob"):     # σ of the mean logit: one shared sigmoid, rounding differs
                    np.testing.assert_allclose(g[k], w[k], rtol=1e-6, err_msg=f"step {step}: {k}")
                else:
                    assert g[k] == w[k], f"step {step}: {k} {g[k]!r} != {w[k]!r}"
        assert got["state_sha256"] == want["state_sha256"], "same metrics, different final state"
    else:       # other BLAS kernels round differently: the trajectory must still agree closely
        for step, (g, w) in enumerate(zip(got["metrics"], want["metrics"]), 1):
            for k in w:
                np.testing.assert_allclose(g[k], w[k], rtol=2e-3, atol=2e-4, err_msg=f"step {step}: {k}")
