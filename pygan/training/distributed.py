"""Data-parallel training on K processes (MPI, or NCCL through CuPy): the same run, whatever K.

``mpiexec -n K pygan train PRESET --distributed`` runs K copies of the one trainer
(:class:`pygan.training.loop.Trainer`); this module is all they need to act as one:

* **groups** — :class:`LocalGroup` (K = 1, nothing to talk to), :class:`MPIGroup` (mpi4py on
  NumPy buffers: no pickling on the gradient path) and :class:`NCCLGroup` (``cupy.cuda.nccl`` on
  device buffers, one GPU per rank, the NCCL id handed out over MPI). Each has ``rank``,
  ``size``, ``allreduce(a)`` (the element-wise sum, a new array), ``iallreduce(buf)`` (in place,
  non-blocking: a request with ``wait()``), ``iallgather(buf, out)``, ``allgather(obj)`` /
  ``bcast(obj)`` for small Python objects (start-up checks only) and ``abort(code)``.
* **the global batch** — the configured ``batch_size`` is the batch of the whole group. Every
  rank keeps the same training generator and draws every random number of the *global* batch
  (data order, z, ε, the penalties' interpolation weights), then keeps its rows
  ``[rank·B/K, (rank+1)·B/K)`` (:meth:`DataParallel.shard`). The K slices of a step are the
  single-process batch, and the generator's state is the same on every rank, so a checkpoint
  written by rank 0 holds the state of all of them and resumes with any K that divides B.
* **gradients** — :class:`GradientReducer`: each network's parameters are grouped, in the order
  backward completes them (last layer first), into buckets of about ``bucket_mb`` MB; each
  ``Parameter.grad`` becomes a view into its bucket's one flat buffer, so a bucket is reduced by
  one call on one buffer, in place. With ``overlap`` the all-reduce of a bucket starts
  (non-blocking) as soon as the last layer owning one of its parameters has run its backward in
  the network's final backward pass of the step; every bucket is waited for, and divided by K,
  before the optimizer steps. ``ordered`` replaces MPI's sum by an all-gather and a sum in rank
  order on every rank: bit-identical on every rank and reproducible, for any K.
* **BatchNorm** — per-rank statistics by default (as PyTorch's DistributedDataParallel);
  ``sync_batchnorm`` hands the group to every BatchNorm (:func:`pygan.nn.sync_batchnorm`).
* **records** — a step's losses are means over the rank's slice; :meth:`DataParallel.average`
  makes them the global batch's means with one small all-reduce.
* **checks before training** — every rank builds its trainer; an error on any rank (a missing
  data folder, another config, other initial parameters) is gathered and raised on every rank
  naming the rank, before the first step (:func:`check_ranks`).

The library (``pygan.nn`` …) never imports this module or mpi4py; SyncBatchNorm is handed the
group object.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time

import numpy as np

from ..backend import get_backend, to_host
from .config import ConfigError

__all__ = ["LocalGroup", "MPIGroup", "NCCLGroup", "GradientReducer", "DataParallel", "LOCAL", "init_group",
           "check_ranks", "state_digest", "COMM_BACKENDS"]

COMM_BACKENDS = ("mpi", "nccl")


class _Done:
    """A request that is already complete (K = 1)."""

    def wait(self):
        return None


class LocalGroup:
    """One process: every collective is the identity."""

    rank, size = 0, 1
    name = "local"

    def allreduce(self, a):
        return a.copy()

    def iallreduce(self, buf):
        return _Done()

    def iallgather(self, buf, out):
        out[0] = buf
        return _Done()

    def allgather(self, obj):
        return [obj]

    def bcast(self, obj):
        return obj

    def barrier(self):
        pass

    def abort(self, code=1):
        sys.exit(code)


class MPIGroup:
    """The processes of an MPI communicator (mpi4py), sums on host NumPy buffers (a device array
    goes through the host)."""

    name = "mpi"

    def __init__(self, comm=None):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()

    def allreduce(self, a):
        xp = get_backend().xp
        h = np.ascontiguousarray(to_host(a))
        out = np.empty_like(h)
        self.comm.Allreduce(h, out, op=self.MPI.SUM)
        return out if xp is np else xp.asarray(out)

    def iallreduce(self, buf):
        if not isinstance(buf, np.ndarray):
            return _HostRoundTrip(self, buf)
        return self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)

    def iallgather(self, buf, out):
        return self.comm.Iallgather(buf, out)

    def allgather(self, obj):
        return self.comm.allgather(obj)

    def bcast(self, obj):
        return self.comm.bcast(obj, root=0)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code=1):
        self.comm.Abort(code)


class _HostRoundTrip:
    """A device buffer reduced over MPI through the host (blocking; MPI without CUDA support)."""

    def __init__(self, group, buf):
        buf[...] = group.allreduce(buf)

    def wait(self):
        return None


class NCCLGroup(MPIGroup):
    """NCCL through CuPy (``cupy.cuda.nccl``) for the device buffers of the cupy / cuda backends,
    one GPU per rank (rank r uses device r mod the visible count); MPI hands out the NCCL id and
    carries the small start-up objects. Reductions run on CuPy's current stream, so the
    optimizer's kernels (same stream) see their result."""

    name = "nccl"

    def __init__(self, comm=None):
        super().__init__(comm)
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as e:
            raise ConfigError(f"--comm nccl needs CuPy with NCCL ({e}); pip install 'pygan[cupy]', "
                              f"or use --comm mpi") from None
        self.cupy, self.nccl = cupy, nccl
        ndev = cupy.cuda.runtime.getDeviceCount()
        cupy.cuda.Device(self.rank % ndev).use()
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = self.comm.bcast(uid, root=0)
        self.nc = nccl.NcclCommunicator(self.size, uid, self.rank)

    def _dtype(self, a):
        n = self.nccl
        return {np.dtype(np.float32): n.NCCL_FLOAT32, np.dtype(np.float64): n.NCCL_FLOAT64}[np.dtype(a.dtype)]

    def allreduce(self, a):
        if isinstance(a, np.ndarray):
            return super().allreduce(a)
        a = self.cupy.ascontiguousarray(a)
        out = self.cupy.empty_like(a)
        self.nc.allReduce(a.data.ptr, out.data.ptr, a.size, self._dtype(a), self.nccl.NCCL_SUM,
                          self.cupy.cuda.get_current_stream().ptr)
        return out

    def iallreduce(self, buf):
        if isinstance(buf, np.ndarray):
            return super().iallreduce(buf)
        # enqueued on the stream: asynchronous to the host; the stream orders it before the step
        self.nc.allReduce(buf.data.ptr, buf.data.ptr, buf.size, self._dtype(buf), self.nccl.NCCL_SUM,
                          self.cupy.cuda.get_current_stream().ptr)
        return _Done()

    def iallgather(self, buf, out):
        if isinstance(buf, np.ndarray):
            return super().iallgather(buf, out)
        self.nc.allGather(buf.data.ptr, out.data.ptr, buf.size, self._dtype(buf),
                          self.cupy.cuda.get_current_stream().ptr)
        return _Done()


LOCAL_GROUP = LocalGroup()


def init_group(comm: str = "mpi"):
    """The group of this process under ``mpiexec`` (K = 1 without it): MPI, or NCCL over MPI."""
    if comm not in COMM_BACKENDS:
        raise ConfigError(f"--comm: unknown communication backend {comm!r}; choose one of {', '.join(COMM_BACKENDS)}")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise ConfigError("--distributed needs mpi4py and an MPI (pip install 'pygan[mpi]' brings both, "
                          "MPICH included); then launch with mpiexec -n K pygan train … --distributed") from None
    return NCCLGroup() if comm == "nccl" else MPIGroup()


# ---------------------------------------------------------------------------------------------
# gradients: buckets of flat buffers, reduced as backward completes them
# ---------------------------------------------------------------------------------------------

_BACKWARDS = ("backward", "backward_params", "backward_jvp", "backward_jvp_params")


class _Bucket:
    __slots__ = ("params", "flat", "gathered", "owners", "done", "req")

    def __init__(self, params, flat):
        self.params, self.flat = params, flat
        self.gathered = None
        self.owners = set()           # ids of the leaf modules holding its parameters
        self.done = set()             # of those, the ones whose backward has run this pass
        self.req = None


class GradientReducer:
    """The gradient average of one network over a group, in buckets of flat buffers.

    ``arm()`` before the network's last backward pass of a step (its grads complete as that pass
    runs): each bucket's reduction starts when every layer owning one of its parameters has run
    its backward (``overlap``); ``finish()`` starts the rest, waits for all, and leaves in every
    ``Parameter.grad`` the mean over the group. Without ``arm()`` (a pass whose grads are not
    final when the layers run, e.g. the penalty's tangent adjoint), ``finish()`` reduces all the
    buckets at once. ``stats`` accumulates the seconds spent waiting in ``finish`` and the
    buckets started early."""

    def __init__(self, group, module, bucket_mb: float = 1.0, overlap: bool = True, ordered: bool = False):
        self.group, self.module = group, module
        self.overlap, self.ordered = bool(overlap), bool(ordered)
        self.armed = False
        self._entered = []
        self.stats = {"wait_s": 0.0, "early_buckets": 0, "buckets": 0, "steps": 0}
        xp = get_backend().xp
        params = [p for _, p in module.named_parameters()]
        limit = max(1, int(bucket_mb * 2 ** 20))
        groups, cur, size = [], [], 0
        for p in reversed(params):                       # backward completes the last layers first
            nbytes = p.data.size * p.data.itemsize
            if cur and (size + nbytes > limit or p.data.dtype != cur[0].data.dtype):
                groups.append(cur)
                cur, size = [], 0
            cur.append(p)
            size += nbytes
        if cur:
            groups.append(cur)
        self.buckets = []
        self._bucket_of = {}
        for ps in groups:
            flat = xp.zeros(sum(p.data.size for p in ps), dtype=ps[0].data.dtype)
            off = 0
            for p in ps:
                view = flat[off:off + p.data.size].reshape(p.data.shape)
                view[...] = p.grad
                p.grad = view
                off += p.data.size
            b = _Bucket(ps, flat)
            if ordered:
                b.gathered = xp.empty((group.size, flat.size), dtype=flat.dtype)
            self._bucket_of.update({id(p): b for p in ps})
            self.buckets.append(b)
        self._leaf_buckets = {}
        if self.overlap and group.size > 1:
            self._hook_leaves()

    @property
    def nbytes(self) -> int:
        return sum(b.flat.size * b.flat.itemsize for b in self.buckets)

    def _hook_leaves(self):
        for mod in self.module.modules():
            own = [p for p in mod._parameters.values() if p is not None and id(p) in self._bucket_of]
            if not own:
                continue
            buckets = list({id(self._bucket_of[id(p)]): self._bucket_of[id(p)] for p in own}.values())
            self._leaf_buckets[id(mod)] = buckets
            for b in buckets:
                b.owners.add(id(mod))
            for name in _BACKWARDS:
                if hasattr(mod, name):
                    object.__setattr__(mod, name, self._wrap(mod, getattr(mod, name)))
            if hasattr(mod, "backward_input"):
                object.__setattr__(mod, "backward_input", self._quiet(getattr(mod, "backward_input")))

    def _wrap(self, mod, fn):
        key = id(mod)

        def hooked(*args, **kwargs):
            # a layer's backward_params may run its own backward (nested calls): the layers
            # entered count as done when the outermost hooked call returns
            self._depth += 1
            self._entered.append(key)
            try:
                out = fn(*args, **kwargs)
            finally:
                self._depth -= 1
            if self._depth == 0:
                entered, self._entered = self._entered, []
                if self.armed and not self._quiet_depth:
                    for k in dict.fromkeys(entered):
                        self._leaf_done(k)
            return out
        return hooked

    _quiet_depth = 0
    _depth = 0

    def _quiet(self, fn):
        # a layer's default backward_input runs its backward and restores the grads: not a
        # contribution to the gradient
        def quiet(*args, **kwargs):
            self._quiet_depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._quiet_depth -= 1
        return quiet

    def _leaf_done(self, key):
        for b in self._leaf_buckets.get(key, ()):
            if b.req is not None:
                raise RuntimeError(f"data-parallel gradient reduction: a layer of {self.module.describe()} ran "
                                   f"its backward again after its bucket was reduced (a layer used twice in "
                                   f"one pass); run with --no-overlap")
            b.done.add(key)
            if len(b.done) == len(b.owners) and b.req is None:
                self._start(b)
                self.stats["early_buckets"] += 1

    def _start(self, b):
        if self.ordered:
            b.req = self.group.iallgather(b.flat, b.gathered)
        else:
            b.req = self.group.iallreduce(b.flat)

    def arm(self):
        """The network's final backward pass of this step starts now."""
        self.armed = True

    def finish(self):
        """Wait for every bucket; grads hold the mean over the group."""
        self.armed = False
        if self.group.size == 1:
            return
        t0 = time.perf_counter()
        for b in self.buckets:
            for p, off in zip(b.params, _offsets(b.params)):
                if p.grad.base is not b.flat and p.grad is not b.flat:
                    # someone rebound p.grad (Module.to): fold it back into the bucket
                    b.flat[off:off + p.data.size] = p.grad.reshape(-1)
                    p.grad = b.flat[off:off + p.data.size].reshape(p.data.shape)
            if b.req is None:
                self._start(b)
        for b in self.buckets:
            b.req.wait()
            b.req = None
            b.done.clear()
            if self.ordered:
                acc = b.gathered[0].copy()
                for k in range(1, self.group.size):
                    acc += b.gathered[k]
                b.flat[...] = acc
            b.flat *= b.flat.dtype.type(1.0 / self.group.size)
        self.stats["wait_s"] += time.perf_counter() - t0
        self.stats["buckets"] += len(self.buckets)
        self.stats["steps"] += 1


def _offsets(params):
    off = 0
    for p in params:
        yield off
        off += p.data.size


# ---------------------------------------------------------------------------------------------
# what a task sees
# ---------------------------------------------------------------------------------------------

class DataParallel:
    """A task's view of the group: its slice of the global batch, the gradient reducers of its
    networks (``task.modules()``), the record average. ``DataParallel(LocalGroup())`` (K = 1)
    changes nothing: ``shard`` returns its argument, ``arm``/``reduce`` do nothing."""

    def __init__(self, group, task=None, *, sync_batchnorm: bool = False, bucket_mb: float = 1.0,
                 overlap: bool = True, ordered: bool = False):
        self.group = group
        self.rank, self.size = group.rank, group.size
        self.sync_batchnorm = bool(sync_batchnorm)
        self.bucket_mb, self.overlap, self.ordered = float(bucket_mb), bool(overlap), bool(ordered)
        self.reducers = {}
        if task is None:
            return
        B = task.cfg.batch_size
        if B % self.size:
            raise ConfigError(f"batch_size {B} (the global batch) does not divide among {self.size} processes; "
                              f"choose a batch size that is a multiple of {self.size} (--batch)")
        if not bucket_mb > 0:
            raise ConfigError(f"--bucket-mb must be positive, got {bucket_mb!r}")
        from ..nn import sync_batchnorm as _sync
        for name, mod in task.modules().items():
            if self.sync_batchnorm and self.size > 1:
                _sync(mod, group)
            if self.size > 1:
                self.reducers[name] = GradientReducer(group, mod, bucket_mb, overlap, ordered)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard(self, x):
        """This rank's rows of a global-batch array (None stays None)."""
        if x is None or self.size == 1:
            return x
        n = x.shape[0] // self.size
        return x[self.rank * n:(self.rank + 1) * n]

    def arm(self, which: str):
        """Network ``which``'s last backward pass of the step begins (its buckets start as they complete)."""
        r = self.reducers.get(which)
        if r is not None:
            r.arm()

    def reduce(self, which: str):
        """Average network ``which``'s grads over the group (before its optimizer steps)."""
        r = self.reducers.get(which)
        if r is not None:
            r.finish()

    def average(self, rec: dict) -> dict:
        """The record with every top-level number replaced by its mean over the group (``step``
        and the gradient norms, already global, kept)."""
        if self.size == 1:
            return rec
        keys = [k for k, v in rec.items() if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)]
        vals = np.array([float(rec[k]) for k in keys], dtype=np.float64)
        tot = to_host(self.group.allreduce(vals)) / self.size
        out = dict(rec)
        out.update({k: float(v) for k, v in zip(keys, tot)})
        return out

    def stats(self) -> dict:
        """{network: {wait_s, early_buckets, buckets, steps, bytes}} of the gradient reducers."""
        return {n: {**r.stats, "bytes": r.nbytes, "n_buckets": len(r.buckets)} for n, r in self.reducers.items()}

    def describe(self) -> str:
        if self.size == 1:
            return "1 process"
        return (f"{self.size} processes ({self.group.name}), global batch sliced {self.size} ways, "
                f"BatchNorm {'synchronised' if self.sync_batchnorm else 'per rank'}, "
                f"{'ordered ' if self.ordered else ''}all-reduce in {self.bucket_mb:g} MB buckets"
                f"{' overlapping backward' if self.overlap else ''}")


LOCAL = DataParallel(LOCAL_GROUP)


def state_digest(task) -> str:
    """SHA-256 of the task's parameters and buffers other than BatchNorm's running statistics
    (which are per rank under per-rank BatchNorm): equal on every rank of a healthy run."""
    h = hashlib.sha256()
    for which, mod in task.modules().items():
        for key, a in mod.state_dict().items():
            if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
                continue
            h.update(f"{which}.{key}".encode())
            h.update(np.ascontiguousarray(to_host(a)).tobytes())
    return h.hexdigest()


def _data_digest(task) -> str:
    d = task.data
    x = getattr(d, "x", None)
    if x is None:
        return json.dumps(list(d.shape))
    h = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    if getattr(d, "labels", None) is not None:
        h.update(np.ascontiguousarray(d.labels).tobytes())
    return f"{x.shape} {h.hexdigest()[:16]}"


def check_ranks(group, build):
    """Run ``build()`` (a trainer's construction) on every rank and compare the ranks before any
    training: an exception on one rank, another config, other data or other initial state
    raises ConfigError on every rank, naming the ranks. Returns ``build()``'s result."""
    result, error = None, None
    try:
        result = build()
    except Exception as e:       # noqa: BLE001 — gathered and re-raised with the rank named
        error = f"{type(e).__name__}: {e}" if not isinstance(e, (ConfigError, ValueError, FileNotFoundError,
                                                                  ImportError)) else str(e)
    errors = group.allgather(error)
    bad = [(r, m) for r, m in enumerate(errors) if m is not None]
    if bad:
        raise ConfigError("; ".join(f"rank {r} of {group.size}: {m}" for r, m in bad)
                          + " (found before training; no rank started)")
    task = result.task
    from .config import to_dict
    mine = {"config": json.dumps(to_dict(task.cfg), sort_keys=True, default=str), "data": _data_digest(task),
            "state": state_digest(task), "step": result.step}
    every = group.allgather(mine)
    for what, label in (("config", "configuration"), ("data", "training data"), ("step", "checkpoint step"),
                        ("state", "initial parameters")):
        vals = [e[what] for e in every]
        if len(set(map(str, vals))) > 1:
            odd = [r for r, v in enumerate(vals) if str(v) != str(vals[0])]
            raise ConfigError(f"the ranks disagree on the {label}: rank{'s' if len(odd) > 1 else ''} "
                              f"{', '.join(map(str, odd))} differ{'' if len(odd) > 1 else 's'} from rank 0 "
                              f"(every rank must see the same config, data and code; "
                              f"{'data: ' + ', '.join(str(v) for v in vals) if what == 'data' else 'check the installs'})")
    return result


def modelled_ring_allreduce_s(nbytes: float, k: int, gbit_s: float, latency_s: float = 5e-6) -> float:
    """The ring all-reduce's time for ``nbytes`` over K machines on links of ``gbit_s`` Gb/s:
    2(K−1) steps each moving nbytes/K, plus a latency per step (a model, not a measurement)."""
    if k <= 1:
        return 0.0
    return 2 * (k - 1) * (latency_s + nbytes / k / (gbit_s * 1e9 / 8))

