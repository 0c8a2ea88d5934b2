"""pygan.backend.cpu_threads: the row-split pool and OpenBLAS's idle threads.

Everything that runs split must give bit-identical results to the same work in one call: each
part writes only its own rows.  The tests force splitting (threshold 0, three threads, so parts
are uneven and the batch axis is cut in odd places) and compare with one thread.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import pygan
from pygan import nn, optim
from pygan.backend import conv_numpy, cpu_threads
from pygan.backend.cpu_threads import RowSplitter, split_rows


@pytest.fixture
def forced_split(monkeypatch):
    """Split everything over 3 threads; restores the pool's thread count afterwards."""
    before = split_rows.threads
    monkeypatch.setattr(cpu_threads, "MIN_SPLIT_ELEMENTS", 0)
    split_rows.set_threads(3)
    yield
    split_rows.set_threads(before)


def _python(code, set_env=(), drop_env=()):
    """stdout of ``python -c code`` in a fresh process (pygan importable), after the env changes."""
    env = {k: v for k, v in os.environ.items() if k not in drop_env}
    env.update(set_env)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(pygan.__file__)))
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _one_thread(fn, *args, **kw):
    before = split_rows.threads
    split_rows.set_threads(1)
    try:
        return fn(*args, **kw)
    finally:
        split_rows.set_threads(before)


# --- the splitter -------------------------------------------------------------------------------

@pytest.mark.parametrize("threads", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 64])
def test_parts_partition_the_range_once(monkeypatch, threads, n):
    monkeypatch.setattr(cpu_threads, "MIN_SPLIT_ELEMENTS", 0)
    s = RowSplitter(threads)
    parts, lock = [], threading.Lock()

    def fn(lo, hi):
        with lock:
            parts.append((lo, hi))
    s(fn, n, 10 ** 9)
    parts.sort()
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))      # contiguous, no overlap
    assert all(lo < hi for lo, hi in parts)
    assert len(parts) == (1 if threads == 1 else min(threads, n))
    s.set_threads(1)


def test_small_work_runs_in_one_call_on_the_calling_thread():
    s = RowSplitter(4)
    calls = []
    s(lambda lo, hi: calls.append((lo, hi, threading.get_ident())), 64, cpu_threads.MIN_SPLIT_ELEMENTS - 1)
    assert calls == [(0, 64, threading.get_ident())]
    assert s._pool is None                         # no pool started for it


@pytest.mark.parametrize("failing_part", [0, 1, 2])
def test_an_exception_in_any_part_reaches_the_caller_after_every_part_ran(monkeypatch, failing_part):
    monkeypatch.setattr(cpu_threads, "MIN_SPLIT_ELEMENTS", 0)
    s = RowSplitter(3)
    done = []

    def fn(lo, hi):
        if lo == [0, 3, 6][failing_part]:
            raise RuntimeError(f"part at {lo}")
        done.append(lo)
    with pytest.raises(RuntimeError, match=f"part at {[0, 3, 6][failing_part]}"):
        s(fn, 9, 10 ** 9)
    assert sorted(done) == sorted({0, 3, 6} - {[0, 3, 6][failing_part]})
    s.set_threads(1)


def test_a_split_inside_a_part_runs_inline_instead_of_deadlocking(monkeypatch):
    monkeypatch.setattr(cpu_threads, "MIN_SPLIT_ELEMENTS", 0)
    s = RowSplitter(2)                             # one worker: a nested submit would wait on itself
    inner = []

    def outer(lo, hi):
        s(lambda a, b: inner.append((lo, a, b)), 4, 10 ** 9)
    s(outer, 2, 10 ** 9)
    assert sorted(inner) == [(0, 0, 4), (1, 0, 4)]
    s.set_threads(1)


def test_thread_counts_are_checked(monkeypatch):
    with pytest.raises(ValueError, match="positive integer"):
        RowSplitter(2).set_threads(0)
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("PYGAN_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="PYGAN_NUM_THREADS"):
            cpu_threads._default_threads()
    monkeypatch.setenv("PYGAN_NUM_THREADS", "3")
    assert cpu_threads._default_threads(blas_threads=1) == 3
    monkeypatch.delenv("PYGAN_NUM_THREADS")
    assert cpu_threads._default_threads(blas_threads=1) == 1       # OPENBLAS_NUM_THREADS=1: one core
    assert cpu_threads._default_threads(blas_threads=4) == 4
    assert 1 <= cpu_threads._default_threads(blas_threads=None) <= 8


def test_one_blas_thread_means_one_pygan_thread():
    out = _python("from pygan.backend import cpu_threads as c; print(c.get_num_threads())",
                  set_env={"OPENBLAS_NUM_THREADS": "1"}, drop_env=("PYGAN_NUM_THREADS",))
    assert out == "1"


# --- OpenBLAS's idle threads ----------------------------------------------------------------------

def test_quieting_openblas_keeps_products_exact_and_moves_the_one_thread_threshold():
    code = (
        "import numpy as np\n"
        "from pygan.backend import cpu_threads as ct\n"
        "a = np.random.default_rng(0).standard_normal((300, 400)); b = a.T.copy()\n"
        "before = a @ b\n"
        "done = ct.blas.quiet_idle_threads()\n"
        "after = a @ b\n"
        "print(done, ct.blas.small_macs, np.array_equal(before, after), ct.blas.quiet_idle_threads())\n")
    done, small, same, again = _python(code, drop_env=("OPENBLAS_THREAD_TIMEOUT",)).split()
    assert same == "True"
    assert again == "False"                         # once per process
    if done == "True":
        assert int(small) == cpu_threads.QUIET_SMALL_GEMM_MACS
    else:                                           # not an OpenBLAS that allows it: nothing changed
        assert int(small) == cpu_threads.SMALL_GEMM_MACS


def test_openblas_threads_spin_again_after_a_pause_in_split_work_and_sleep_when_it_resumes():
    code = (
        "import os, numpy as np\n"
        "from pygan.backend import cpu_threads as ct, get_backend\n"
        "be = get_backend(); a = np.random.default_rng(0).standard_normal((300, 400)); b = a.T.copy()\n"
        "ref = a @ b\n"
        "if not ct.blas.quiet_idle_threads(): print('unsupported'); raise SystemExit\n"
        "log = [(ct.blas.quiet, os.environ['OPENBLAS_THREAD_TIMEOUT'])]\n"
        "be.matmul(a, b)\n"                              # within the hold: stays quiet
        "log.append((ct.blas.quiet, os.environ['OPENBLAS_THREAD_TIMEOUT']))\n"
        "ct.QUIET_HOLD_S = 0.0\n"
        "same = np.array_equal(be.matmul(a, b), ref)\n"  # idle past the hold: spins again
        "log.append((ct.blas.quiet, os.environ['OPENBLAS_THREAD_TIMEOUT'], ct.blas.small_macs == ct.SMALL_GEMM_MACS))\n"
        "ct.split_rows.set_threads(2)\n"
        "out = np.empty((64, 10000)); ct.split_rows(lambda lo, hi: out[lo:hi].fill(1), 64, 10 ** 7)\n"
        "log.append((ct.blas.quiet, os.environ['OPENBLAS_THREAD_TIMEOUT'], bool((out == 1).all())))\n"
        "print(same, log)\n")
    out = _python(code, drop_env=("OPENBLAS_THREAD_TIMEOUT",))
    if out == "unsupported":
        pytest.skip("this BLAS is not an OpenBLAS whose idle threads pygan can put to sleep")
    assert out == ("True [(True, '4'), (True, '4'), (False, '28', True), (True, '4', True)]")


def test_a_user_set_thread_timeout_is_left_alone(monkeypatch):
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "10")
    b = cpu_threads.BlasThreads()
    assert b.quiet_idle_threads() is False
    assert b.small_macs == cpu_threads.SMALL_GEMM_MACS and os.environ["OPENBLAS_THREAD_TIMEOUT"] == "10"


# --- split work equals unsplit work, bit for bit ------------------------------------------------------

CONV_CASES = [   # x shape, w shape, stride, padding
    ((5, 64, 14, 14), (128, 64, 4, 4), (2, 2), (1, 1)),     # W2's D conv: large K, sub-pixel backward
    ((3, 1, 28, 28), (64, 1, 4, 4), (2, 2), (1, 1)),        # small K: NCHW patches, col2im_nchw
    ((4, 8, 9, 7), (6, 8, 3, 3), (1, 1), (2, 1)),           # stride 1, col2im backward
    ((7, 16, 11, 11), (5, 16, 3, 3), (2, 2), (0, 0)),
]


@pytest.mark.parametrize("xs,ws,stride,padding", CONV_CASES)
def test_conv_kernels_split_equal_one_thread(forced_split, xs, ws, stride, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    y1 = _one_thread(conv_numpy.conv2d_forward, x, w, stride, padding)
    gy = rng.standard_normal(y1.shape).astype(np.float32)
    one = [y1, _one_thread(conv_numpy.conv2d_backward_input, gy, w, xs, stride, padding),
           _one_thread(conv_numpy.conv2d_backward_weight, x, gy, ws, stride, padding)]
    split = [conv_numpy.conv2d_forward(x, w, stride, padding),
             conv_numpy.conv2d_backward_input(gy, w, xs, stride, padding),
             conv_numpy.conv2d_backward_weight(x, gy, ws, stride, padding)]
    # both backward-input methods, whichever the cost model picks
    one += [_one_thread(conv_numpy._backward_input_subpixel, gy, w, xs, stride, padding),
            _one_thread(conv_numpy._backward_input_col2im, gy, w, xs, stride, padding)]
    split += [conv_numpy._backward_input_subpixel(gy, w, xs, stride, padding),
              conv_numpy._backward_input_col2im(gy, w, xs, stride, padding)]
    # patches written into a reused buffer
    p = conv_numpy.conv2d_patches(x, ws, stride, padding)
    p2 = conv_numpy.conv2d_patches(2 * x, ws, stride, padding, out=p)
    assert p2 is p
    one.append(_one_thread(conv_numpy.conv2d_patches, 2 * x, ws, stride, padding))
    split.append(p2)
    for a, b in zip(one, split):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    # and they are right: the reference convolution
    np.testing.assert_allclose(split[0], conv_numpy.conv2d_reference(x, w, stride, padding), rtol=1e-4, atol=1e-4)


def _layer_run(layer, x, gy):
    y = layer(x)
    gx = layer.backward(gy)
    grads = [p.grad.copy() for p in layer.parameters()]
    return [y, gx, *grads]


@pytest.mark.parametrize("make", [nn.ReLU, lambda: nn.LeakyReLU(0.2), lambda: nn.LeakyReLU(1.5),
                                  lambda: nn.LeakyReLU(-0.3), nn.Tanh, lambda: nn.BatchNorm2d(6),
                                  lambda: nn.BatchNorm1d(6)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_split_equal_one_thread(forced_split, make, dtype):
    rng = np.random.default_rng(2)
    layer = make().to(dtype)
    shape = (7, 6) if isinstance(layer, nn.BatchNorm1d) else (7, 6, 5, 3)
    x = rng.standard_normal(shape).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    for p in layer.parameters():
        p.data[...] = rng.standard_normal(p.data.shape)
    state = layer.state_dict()
    one = _one_thread(_layer_run, layer, x, gy)
    layer.load_state_dict(state)
    layer.zero_grad()
    split = _layer_run(layer, x, gy)
    assert len(one) == len(split)
    for a, b in zip(one, split):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_split_equals_one_thread(forced_split, amsgrad):
    rng = np.random.default_rng(3)
    init = [rng.standard_normal(s).astype(np.float32) for s in ((5, 7), (7,), (3, 2, 2))]
    grads = [[rng.standard_normal(a.shape).astype(np.float32) for a in init] for _ in range(4)]

    def run():
        ps = [nn.Parameter(a.copy()) for a in init]
        opt = optim.Adam(ps, lr=1e-2, betas=(0.5, 0.9), weight_decay=0.1, amsgrad=amsgrad)
        for gs in grads:
            for p, g in zip(ps, gs):
                p.grad[...] = g
            opt.step()
        return [p.data for p in ps]
    for a, b in zip(_one_thread(run), run()):
        np.testing.assert_array_equal(a, b)


def test_a_backend_without_split_rows_runs_the_body_in_one_call(monkeypatch):
    import pygan.backend as B

    class Minimal:                       # a third-party backend that predates split_rows
        xp = np
    monkeypatch.setattr(B, "_current", Minimal())
    monkeypatch.setattr(cpu_threads, "MIN_SPLIT_ELEMENTS", 0)
    calls = []
    B.by_rows(lambda s: calls.append(s), np.zeros((8, 3)))
    assert calls == [Ellipsis]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_a_working_pool(forced_split):
    import multiprocessing as mp
    split_rows.set_threads(2)            # one worker: in the child, the queued part would wait forever
    out = np.zeros((6, 4))
    split_rows(lambda lo, hi: out[lo:hi].fill(1), 6, 10 ** 9)      # the parent's pool is running
    assert split_rows._pool is not None

    def child(q):
        a = np.zeros((6, 4))
        split_rows(lambda lo, hi: a[lo:hi].fill(2), 6, 10 ** 9)
        q.put(float(a.sum()))
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(q,))
    p.start()
    p.join(timeout=30)
    alive = p.is_alive()
    if alive:
        p.kill()
    assert not alive, "the child hung on the parent's dead pool threads"
    assert q.get(timeout=5) == 48.0


@pytest.mark.parametrize("make", [nn.ReLU, lambda: nn.LeakyReLU(0.2)])
def test_activations_take_0_d_arrays(forced_split, make):
    layer = make()
    y = layer(np.array(-2.0))
    assert y.shape == () and float(y) == (0.0 if isinstance(layer, nn.ReLU) else -0.4)
    g = layer.backward(np.array(3.0))
    assert g.shape == () and float(g) == (0.0 if isinstance(layer, nn.ReLU) else pytest.approx(0.6))
