"""How the NumPy backend uses the CPU's cores besides BLAS.

A GEMM runs on every core (OpenBLAS's threads); everything else NumPy does — the im2col and
layout copies, the activations, BatchNorm's passes, the optimizer's update — runs on the calling
thread.  On DCGAN-sized steps that single-threaded, memory-bound work is a third of the time
(benchmarks/README.md).  ``split_rows(fn, n, size)`` runs such work as ``fn(lo, hi)`` over
disjoint row ranges of [0, n) on the calling thread plus a small pool of worker threads (NumPy
releases the GIL inside copies and ufunc loops); each range writes its own rows, so the result is
bit-identical to one call ``fn(0, n)``.

Idle OpenBLAS threads busy-wait (~0.1 s, OpenBLAS's default THREAD_TIMEOUT) for their next GEMM,
so a worker thread started right after a GEMM would share its core with a spinning BLAS thread
and come out slower than one thread alone.  ``blas.quiet_idle_threads()`` makes the loaded OpenBLAS
put its idle threads to sleep at once (OPENBLAS_THREAD_TIMEOUT = 4, i.e. 2⁴ cycles; its threads
are restarted to pick it up): measured, a large GEMM is no slower, and the copies split over two
threads run 1.5× faster right after one.  Small products would now pay a sleeping thread's
wake-up (~0.1-0.2 ms on the 2-core VM), so from then on products under QUIET_SMALL_GEMM_MACS run
on one BLAS thread.  It holds while the pool is in use — from a split until QUIET_HOLD_S after the
last one, when OpenBLAS's default returns (a process whose arrays never reach MIN_SPLIT_ELEMENTS
keeps OpenBLAS as it was) — and only where it can be: an OpenBLAS that exports
``openblas_read_env`` and ``blas_thread_shutdown_``, and a user who did not set
OPENBLAS_THREAD_TIMEOUT.  Measured on W2 (benchmarks/bench_core.py): 94 → 86 ms a step.

Restarting OpenBLAS's threads is safe when no other thread is inside a BLAS call at that moment:
pygan assumes one thread drives it (and NumPy's BLAS) at a time, as a training loop does.  A
program that runs BLAS from several threads at once should set PYGAN_NUM_THREADS=1 (or its own
OPENBLAS_THREAD_TIMEOUT, which pygan then leaves alone).

Rounding: OpenBLAS does not round a product on one thread exactly as on several, so the last
bits of a product of 2M-16M multiply-adds depend on whether work was split in the last
QUIET_HOLD_S seconds — within one run the same every step, but a small model trained right after
an image model in the same process can differ from one trained in a fresh process by float32
rounding. ``blas.spin_idle_threads()`` returns to a fresh process's state; ``PYGAN_NUM_THREADS=1``
removes the dependence altogether.

``PYGAN_NUM_THREADS`` sets the number of threads (default: the BLAS's own thread count, so
OPENBLAS_NUM_THREADS=1 keeps all of pygan on one core; without a known BLAS, the cores, ≤ 8);
``PYGAN_NUM_THREADS=1`` turns the pool and the OpenBLAS change off.  ``set_num_threads(n)`` does
the same at run time.
"""
from __future__ import annotations

import ctypes
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

import numpy  # noqa: F401 — loads NumPy's BLAS before BlasThreads looks for it

# Products below this many multiply-adds run on one BLAS thread: a second thread's wake-up costs
# more than it saves on them. W1's and W4's 256×128×128 products (4.2M) gain from it on a quiet
# 2-core machine while OpenBLAS's idle threads spin (W4 step 2.22 vs 2.43 ms, W1 2.56 vs 2.73 ms,
# benchmarks/bench_core.py); once they sleep (BlasThreads.quiet_idle_threads) a wake-up costs ~0.1-0.2 ms on
# that VM and products up to QUIET_SMALL_GEMM_MACS are faster on the calling thread alone.
SMALL_GEMM_MACS = 2_000_000
QUIET_SMALL_GEMM_MACS = 16_000_000
# OpenBLAS runs a GEMM with m·n·k ≤ 65536·4 on one thread whatever its thread count
# (interface/gemm.c: SMP_THRESHOLD_MIN · GEMM_MULTITHREAD_THRESHOLD), so pygan does not switch the
# count for those: W4 switched 16 times a step between its 4.2M products and its tiny ones.
OPENBLAS_OWN_SINGLE_MACS = 65536 * 4
# Seconds without split work after which OpenBLAS's threads may spin again (BlasThreads.use).
QUIET_HOLD_S = 1.0

# Work below this many elements runs on the calling thread: waking a worker costs ~0.1-0.2 ms
# on the 2-core VM of benchmarks/README.md; W2 steps with 2^17...2^19 measure alike.
MIN_SPLIT_ELEMENTS = 1 << 19


def _default_threads(blas_threads=None) -> int:
    """PYGAN_NUM_THREADS if set, else as many threads as the BLAS was given (so that
    OPENBLAS_NUM_THREADS=1 / OMP_NUM_THREADS=1 keep pygan on one core too), else the cores (≤ 8)."""
    env = os.environ.get("PYGAN_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"PYGAN_NUM_THREADS={env!r}: expected a positive integer") from None
        if n < 1:
            raise ValueError(f"PYGAN_NUM_THREADS={env!r}: expected a positive integer")
        return n
    if blas_threads:
        return max(1, int(blas_threads))
    return max(1, min(os.cpu_count() or 1, 8))


class BlasThreads:
    """Switches OpenBLAS/MKL between one thread and its default, only when the wanted count
    changes (~1 µs a switch, through threadpoolctl; a no-op where threadpoolctl is missing).
    ``small_macs``: products below it run on one thread.  ``quiet``: OpenBLAS's idle threads
    sleep at once (``quiet_idle_threads``) — set while the row-split pool is in use, undone
    (``spin_idle_threads``) when no work was split for QUIET_HOLD_S seconds, so a process that goes
    from image models to small MLPs gets OpenBLAS's spinning threads back for its small products."""

    def __init__(self):
        self._lib, self._default, self._current = None, None, None
        self.small_macs = SMALL_GEMM_MACS
        self.quiet = False
        self.last_split = 0.0
        self._so = None
        self._ours = None      # None: not tried; False: the user's setting or not possible; True: ours
        try:
            from threadpoolctl import ThreadpoolController
            libs = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # noqa: BLE001 — threadpoolctl missing or unable to find the BLAS
            libs = []
        self.own_single_macs = 0
        if libs:
            self._lib = libs[0]
            self._default = self._current = self._lib.num_threads
            if self._lib.internal_api == "openblas":
                self.own_single_macs = OPENBLAS_OWN_SINGLE_MACS

    def use(self, small: bool):
        if self._lib is None:
            return
        if self.quiet:
            self.release_if_idle()
        want = 1 if small else self._default
        if want != self._current:
            self._lib.set_num_threads(want)
            self._current = want

    def release_if_idle(self):
        """Let OpenBLAS's threads spin again when nothing was split for QUIET_HOLD_S seconds."""
        if time.monotonic() - self.last_split > QUIET_HOLD_S:
            self.spin_idle_threads()

    def _set_timeout(self, value: str) -> bool:
        if self._ours is None:             # first time: is it ours to change?
            lib = self._lib
            self._ours = False
            if lib is not None and lib.internal_api == "openblas" and "OPENBLAS_THREAD_TIMEOUT" not in os.environ:
                try:
                    so = ctypes.CDLL(lib.filepath)
                    self._so = (so.openblas_read_env, so.blas_thread_shutdown_)
                    self._ours = True
                except Exception:  # noqa: BLE001 — a build that does not export them
                    pass
        if not self._ours:
            return False
        read_env, shutdown = self._so
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = value
        read_env()        # OpenBLAS reads its settings again (the others are unchanged)
        shutdown()        # its threads restart on the next threaded call, with the new timeout
        return True

    def quiet_idle_threads(self) -> bool:
        """Make OpenBLAS's idle threads sleep at once instead of spinning ~0.1 s (and keep
        products below QUIET_SMALL_GEMM_MACS on one thread); True if done now — see the module
        docstring for when it is not."""
        self.last_split = time.monotonic()
        if self.quiet or not self._set_timeout("4"):
            return False
        self.quiet = True
        self.small_macs = max(SMALL_GEMM_MACS, QUIET_SMALL_GEMM_MACS)
        return True

    def spin_idle_threads(self) -> bool:
        """Undo ``quiet_idle_threads``: OpenBLAS's default timeout (2²⁸ cycles) again."""
        if not self.quiet or not self._set_timeout("28"):
            return False
        self.quiet = False
        self.small_macs = SMALL_GEMM_MACS
        return True


blas = BlasThreads()   # one per process: its default is the count found at import


class RowSplitter:
    """``split(fn, n, size)``: fn(lo, hi) over a partition of [0, n) on ``threads`` threads."""

    def __init__(self, threads: int):
        self.threads = int(threads)
        self._pool = None
        self._inside = threading.local()    # set while a thread runs a part: nested calls run inline

    def __call__(self, fn, n: int, size: int) -> None:
        if self.threads <= 1 or n < 2 or size < MIN_SPLIT_ELEMENTS or getattr(self._inside, "on", False):
            fn(0, n)
            return
        blas.quiet_idle_threads()              # cheap when already quiet: notes the time
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="pygan-cpu")
        k = min(self.threads, n)
        bounds = [n * i // k for i in range(k + 1)]
        futures = [self._pool.submit(self._part, fn, bounds[i], bounds[i + 1]) for i in range(1, k)]
        try:
            self._part(fn, bounds[0], bounds[1])
        finally:
            wait(futures)        # every part is done before the caller reads or frees the arrays
        for f in futures:
            f.result()           # a worker's exception, re-raised here

    def _part(self, fn, lo, hi):
        inside = self._inside
        inside.on = True         # a split_rows inside fn runs inline: the pool may be all busy
        try:
            fn(lo, hi)
        finally:
            inside.on = False

    def set_threads(self, threads: int) -> None:
        if int(threads) < 1:
            raise ValueError(f"set_num_threads: expected a positive integer, got {threads!r}")
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.threads = int(threads)


split_rows = RowSplitter(_default_threads(blas._default))
# a forked child has the pool object but not its threads: it starts a fresh pool when it needs one
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: setattr(split_rows, "_pool", None))


def set_num_threads(threads: int) -> None:
    """Threads for pygan's own memory-bound NumPy work (1 = the calling thread only)."""
    split_rows.set_threads(threads)


def get_num_threads() -> int:
    return split_rows.threads
