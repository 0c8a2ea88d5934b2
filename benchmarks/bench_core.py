#!/usr/bin/env python
"""pygan's core benchmark: W1 and W2 training steps, W3 kernels and peak memory, against PyTorch CPU.

Workloads are those of benchmarks/WORKLOADS.md (see benchmarks/README.md for how to read the output):

* W1 ``toy-mlp``   — one nonsaturating-GAN training step (D step on real + fake, G step through
  D), Adam(2e-4, (0.5, 0.999)), MLPs of width 128, batch 256.
* W2 ``dcgan-28``  — the same step on the 28×28 DCGAN, batch 64; G runs forward once per step.
* W3 ``kernels``   — sgemm (numpy.matmul vs torch.mm), the conv2d forward / backward-data /
  backward-filter kernels of the backend on W2's two D convolutions, and the nonsaturating losses
  on 64k logits; GFLOP/s and the fraction of the FLOP limit.
* memory           — peak resident memory of N steps of W1 and W2, pygan and PyTorch each in a
  fresh process.

"FLOP limit" here means the best single-precision GEMM rate this machine reached in this run: the
fastest 2048³ sgemm of NumPy or PyTorch, measured in W3. A workload's floor time is its GEMM-like
FLOPs (matmuls and convolutions, counted from the layer shapes) divided by that rate.

Protocol: pygan and PyTorch are timed in the same process, alternating in blocks of steps with a
0.5 s pause before each block (idle OpenBLAS / OpenMP threads spin for a while after work and slow
whoever runs next); warm-up steps first; medians of the per-step times; ratio = pygan / torch.

Run from the repository root:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_core.py \
        [--workloads W1,W2,W3] [--repeats N] [--out benchmarks/results/core.json]
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Targets from the project plan: pygan / torch.
TARGETS = {"W1": 1.0, "W2": 1.5, "W4": 0.7, "memory": 1.5}
PAUSE_S = 0.5
LR, BETAS = 2e-4, (0.5, 0.999)

# --- the reference workloads (benchmarks/WORKLOADS.md), as layer specs both libraries are built from ------
# torch.nn and pygan.nn share every class name and argument order used here.
W1_G = [("Linear", 2, 128), ("ReLU",), ("Linear", 128, 128), ("ReLU",),
        ("Linear", 128, 128), ("ReLU",), ("Linear", 128, 2)]
W1_D = [("Linear", 2, 128), ("LeakyReLU", 0.2), ("Linear", 128, 128), ("LeakyReLU", 0.2),
        ("Linear", 128, 128), ("LeakyReLU", 0.2), ("Linear", 128, 1)]
W2_G = [("Linear", 100, 6272), ("Unflatten", 1, (128, 7, 7)), ("BatchNorm2d", 128), ("ReLU",),
        ("ConvTranspose2d", 128, 64, 4, 2, 1), ("BatchNorm2d", 64), ("ReLU",),
        ("ConvTranspose2d", 64, 1, 4, 2, 1), ("Tanh",)]
W2_D = [("Conv2d", 1, 64, 4, 2, 1), ("LeakyReLU", 0.2), ("Conv2d", 64, 128, 4, 2, 1),
        ("BatchNorm2d", 128), ("LeakyReLU", 0.2), ("Flatten",), ("Linear", 6272, 1)]
WORKLOADS = {
    "W1": dict(name="toy-mlp", G=W1_G, D=W1_D, batch=256, nz=2, data=(2,)),
    "W2": dict(name="dcgan-28", G=W2_G, D=W2_D, batch=64, nz=100, data=(1, 28, 28)),
    # one WGAN-GP critic step on W1's critic: the "z" a step takes is (batch, 1) and only sets
    # the interpolation weights α = σ(z), so the agreement check can give both libraries one α
    "W4": dict(name="wgan-gp-critic", kind="critic-gp", G=W1_G, D=W1_D, batch=256, nz=1, data=(2,),
               lam=10.0, lr=1e-4, betas=(0.0, 0.9)),
}
# W3: sgemm shapes m×n×k, i.e. (m, k) @ (k, n); conv shapes (C_in, C_out, H) with k4 s2 p1, batch 64.
GEMM_SHAPES = [(64, 6272, 100), (256, 128, 128), (1024, 1024, 1024), (2048, 2048, 2048)]
CONV_SHAPES = [(1, 64, 28), (64, 128, 14)]
CONV_K, CONV_S, CONV_P, CONV_N = 4, 2, 1, 64
LOSS_N = 65536


# =============================================================================================
# Environment
# =============================================================================================
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> list[dict]:
    """Thread pools (BLAS / OpenMP) loaded in this process, via threadpoolctl when installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        try:
            cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
            return [{"source": "numpy build config", "name": cfg.get("name"),
                     "version": cfg.get("version")}]
        except Exception:  # pragma: no cover - very old numpy
            return [{"source": "unknown"}]
    keys = ("user_api", "internal_api", "prefix", "version", "num_threads", "architecture",
            "threading_layer")
    return [{k: d.get(k) for k in keys if d.get(k) is not None} for d in threadpool_info()]


def environment(torch=None) -> dict:
    env_vars = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                               "MKL_NUM_THREADS")}
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(ROOT)
                             else sys.executable] + sys.argv),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "env": env_vars,
        "openblas_env_set": [k for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if env_vars[k]],
        "blas": blas_info(),
        "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        import pygan
        info["pygan"] = getattr(pygan, "__version__", "?")
        info["pygan_backend"] = pygan.get_backend().name
    except Exception as e:  # pragma: no cover
        info["pygan"] = f"import failed: {e}"
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads_default"] = torch.get_num_threads()
        info["torch_interop_threads"] = torch.get_num_interop_threads()
    return info


def cpu_snapshot():
    """(wall s, busy CPU-seconds of the whole machine, CPU-seconds of this process and children)."""
    busy = None
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = (sum(v) - v[3] - (v[4] if len(v) > 4 else 0)) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    t = os.times()
    return time.perf_counter(), busy, t.user + t.system + t.children_user + t.children_system


def other_load(before, after):
    """Average number of cores used by *other* processes between two snapshots (None if unknown)."""
    if before[1] is None or after[1] is None:
        return None
    wall = after[0] - before[0]
    return max(0.0, ((after[1] - before[1]) - (after[2] - before[2])) / max(wall, 1e-9))


def print_environment(info: dict):
    print(f"pygan benchmark — {info['date']}")
    print(f"  cpu: {info['cpu_model']} ({info['cpus_usable']} usable of {info['cpu_count']})")
    print(f"  python {info['python']}, numpy {info['numpy']}, torch {info.get('torch', '—')} "
          f"(default {info.get('torch_threads_default', '?')} threads), pygan {info.get('pygan')} "
          f"backend {info.get('pygan_backend')}")
    if info["loadavg_at_start"]:
        la = info["loadavg_at_start"]
        print(f"  load average at start: {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}"
              + ("   (WARNING: the machine is busy; timings will be noisy)" if la[0] > 0.5 else ""))
    for b in info["blas"]:
        print("  thread pool: " + ", ".join(f"{k}={v}" for k, v in b.items()))
    if info["openblas_env_set"]:
        print("  WARNING: " + ", ".join(f"{k}={info['env'][k]}" for k in info["openblas_env_set"])
              + " is set; it can slow OpenBLAS (and so numpy / pygan) considerably. Rerun with\n"
              "           env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_core.py")
    else:
        print("  OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: not set (good)")


# =============================================================================================
# Models, data and FLOPs
# =============================================================================================
def build(spec, nn):
    """Build a Sequential from a layer spec with ``nn`` = pygan.nn or torch.nn."""
    return nn.Sequential(*[getattr(nn, kind)(*args) for kind, *args in spec])


def make_real(wl, seed=0):
    rng = np.random.default_rng(seed)
    if wl["data"] == (2,):   # ring-8 (Q1): 8 Gaussians on the unit circle, std 0.01
        k = rng.integers(0, 8, wl["batch"])
        mu = np.stack([np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8)], axis=1)
        return (mu + 0.01 * rng.standard_normal(mu.shape)).astype(np.float32)
    return rng.uniform(-1, 1, (wl["batch"],) + wl["data"]).astype(np.float32)


def layer_flops(spec, batch, in_shape):
    """Forward GEMM-like FLOPs (2 per multiply-add) of each Linear / convolution, from shapes.

    Returns [(label, flops)], elementwise layers omitted (they are memory-bound and cheap).
    """
    shape, out = tuple(in_shape), []
    for kind, *a in spec:
        if kind == "Linear":
            fin, fout = a
            out.append((f"Linear({fin}→{fout})", 2 * batch * fin * fout))
            shape = shape[:-1] + (fout,)
        elif kind == "Unflatten":
            shape = tuple(a[1])
        elif kind == "Flatten":
            shape = (int(np.prod(shape)),)
        elif kind == "Conv2d":
            cin, cout, k, s, p = a
            ho, wo = ((d + 2 * p - k) // s + 1 for d in shape[1:])
            out.append((f"Conv2d({cin}→{cout})", 2 * batch * cout * ho * wo * cin * k * k))
            shape = (cout, ho, wo)
        elif kind == "ConvTranspose2d":
            cin, cout, k, s, p = a
            h, w = shape[1:]
            out.append((f"ConvT({cin}→{cout})", 2 * batch * cin * h * w * cout * k * k))
            shape = (cout, (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k)
    return out


def step_flops(wl):
    """GEMM FLOPs of one training step with the usual convention backward = 2 × forward:
    G forward once, D forward three times (real, fake, fake again for the G step), each pass
    followed by its backward."""
    g = sum(f for _, f in layer_flops(wl["G"], wl["batch"], (wl["nz"],)))
    d = sum(f for _, f in layer_flops(wl["D"], wl["batch"], wl["data"]))
    return {"G_forward": g, "D_forward": d, "step": 3 * g + 3 * 3 * d}


# =============================================================================================
# Training steps
# =============================================================================================
def _alpha(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)[:, 0]))


def pygan_critic_gp(wl, seed=0):
    """W4 in pygan: D(fake), D(real), the exact gradient penalty, one Adam step of D."""
    import pygan
    from pygan import nn, losses, optim, penalties
    pygan.set_backend("numpy")
    pygan.manual_seed(seed)
    G, D = build(wl["G"], nn), build(wl["D"], nn)
    loss = losses.get("wasserstein")
    opt = optim.Adam(D.parameters(), lr=wl["lr"], betas=wl["betas"])
    rng = np.random.default_rng(seed + 1)
    real = make_real(wl, seed)
    fake = rng.standard_normal(real.shape).astype(np.float32)

    def step(z=None):
        alpha = (rng.random(wl["batch"]) if z is None else _alpha(z)).astype(np.float32)
        opt.zero_grad()
        v_fake, g = loss.d_fake(D(fake))
        D.backward_params(g)                     # the data need no gradient
        v_real, g = loss.d_real(D(real))
        D.backward_params(g)
        gp = penalties.gradient_penalty(D, real, fake, lam=wl["lam"], alpha=alpha)
        opt.step()
        return v_real + v_fake + gp, gp

    return step, G, D


def torch_critic_gp(wl, seed=0):
    """W4 in PyTorch: the usual double backward, torch.autograd.grad(create_graph=True)."""
    import torch
    torch.manual_seed(seed)
    G, D = build(wl["G"], torch.nn), build(wl["D"], torch.nn)
    opt = torch.optim.Adam(D.parameters(), lr=wl["lr"], betas=wl["betas"])
    rng = np.random.default_rng(seed + 1)
    real_np = make_real(wl, seed)
    real = torch.from_numpy(real_np)
    fake = torch.from_numpy(rng.standard_normal(real_np.shape).astype(np.float32))

    def step(z=None):
        alpha = torch.rand(wl["batch"], 1) if z is None else torch.from_numpy(_alpha(z).astype(np.float32))[:, None]
        opt.zero_grad()
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (g,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        gp = wl["lam"] * ((g.norm(dim=1) - 1) ** 2).mean()
        loss = D(fake).mean() - D(real).mean() + gp
        loss.backward()
        opt.step()
        return loss.detach(), gp.detach()

    return step, G, D


def pygan_trainer(wl, seed=0):
    """One pygan training step; returns (step, G, D). ``step(z=None)`` draws z if not given."""
    if wl.get("kind") == "critic-gp":
        return pygan_critic_gp(wl, seed)
    import pygan
    from pygan import nn, losses, optim
    pygan.set_backend("numpy")
    pygan.manual_seed(seed)
    G, D = build(wl["G"], nn), build(wl["D"], nn)
    loss = losses.get("nonsaturating")
    opt_g = optim.Adam(G.parameters(), lr=LR, betas=BETAS)
    opt_d = optim.Adam(D.parameters(), lr=LR, betas=BETAS)
    real = make_real(wl, seed)
    rng = np.random.default_rng(seed + 1)
    shape = (wl["batch"], wl["nz"])

    def step(z=None):
        if z is None:
            z = rng.standard_normal(shape, dtype=np.float32)
        fake = G(z)                              # G runs forward once per step
        # D step. A module's backward uses the cache of its most recent forward, so each D
        # forward is followed by its backward before the next forward. The samples need no
        # gradient (torch: real has requires_grad False, fake is detached), so backward_params.
        opt_d.zero_grad()
        v_real, g = loss.d_real(D(real))
        D.backward_params(g)
        v_fake, g = loss.d_fake(D(fake))
        D.backward_params(g)
        opt_d.step()
        # G step: D (updated) forward on the same fake, backward to the image only (D's own
        # gradient is not wanted here), then through G (z needs no gradient, as in torch).
        opt_g.zero_grad()
        v_g, g = loss.g_loss(D(fake))
        G.backward_params(D.backward_input(g))
        opt_g.step()
        return v_real + v_fake, v_g

    return step, G, D


#: the preset whose trainer runs each workload's networks (W2's data: random 28×28 IDX images)
TRAINER_PRESETS = {"W1": "ring-8", "W2": "dcgan-mnist"}


def pygan_engine_step(wid, seed=0):
    """One step of the trainer behind ``pygan train`` on the workload's networks: the batch from
    the data stream, the step, the logging decision (gradient norms every log_every = 100 steps,
    the default), the record written as a metrics line — everything ``Trainer.run`` does per step
    between its intervals."""
    import json
    import tempfile
    from pygan.training import Trainer, config, presets
    over = {"seed": seed, "steps": 10**9, "log_every": 100, "eval_every": 0, "sample_every": 0,
            "checkpoint_every": 0}
    folder = tempfile.mkdtemp(prefix="pygan-bench-")
    if wid == "W2":
        from pygan import data
        rng = np.random.default_rng(seed)
        for prefix in ("train", "t10k"):
            data.write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte"),
                           rng.integers(0, 256, size=(1024, 28, 28), dtype=np.uint8))
            data.write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"),
                           rng.integers(0, 10, size=1024, dtype=np.uint8))
        over["data_folder"] = folder
    t = Trainer(config.replace(presets.preset(TRAINER_PRESETS[wid]), over), folder, progress=False)
    sink = open(os.devnull, "w")
    t0 = time.perf_counter()

    def step(z=None):
        rec = t.train_step()
        rec["time"] = time.perf_counter() - t0
        sink.write(json.dumps(rec) + "\n")
        return rec

    return step


def torch_trainer(wl, seed=0):
    """The same step in PyTorch: the usual detach() pattern with BCEWithLogitsLoss."""
    if wl.get("kind") == "critic-gp":
        return torch_critic_gp(wl, seed)
    import torch
    torch.manual_seed(seed)
    G, D = build(wl["G"], torch.nn), build(wl["D"], torch.nn)
    bce = torch.nn.BCEWithLogitsLoss()
    opt_g = torch.optim.Adam(G.parameters(), lr=LR, betas=BETAS)
    opt_d = torch.optim.Adam(D.parameters(), lr=LR, betas=BETAS)
    real = torch.from_numpy(make_real(wl, seed))
    ones, zeros = torch.ones(wl["batch"], 1), torch.zeros(wl["batch"], 1)
    shape = (wl["batch"], wl["nz"])

    def step(z=None):
        z = torch.randn(shape) if z is None else z
        fake = G(z)
        opt_d.zero_grad()
        d_loss = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = bce(D(fake), ones)
        g_loss.backward()
        opt_g.step()
        return d_loss.detach(), g_loss.detach()

    return step, G, D


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0), 1e-30)
    return float(np.abs(a - b).max(initial=0) / scale)


def biases_before_batchnorm(spec):
    """State-dict keys of biases that feed a BatchNorm (through reshapes only).

    BatchNorm subtracts the batch mean, so their gradient is exactly zero in exact arithmetic and
    only rounding noise in float32; Adam divides that noise by its own magnitude, so the two
    libraries move such a bias by ±lr in unrelated directions. They are left out of the check.
    """
    out = []
    for i, (kind, *_) in enumerate(spec):
        if kind in ("Linear", "Conv2d", "ConvTranspose2d"):
            nxt = next((k for k, *_ in spec[i + 1:] if k not in ("Flatten", "Unflatten")), None)
            if nxt in ("BatchNorm1d", "BatchNorm2d"):
                out.append(f"{i}.bias")
    return out


def agreement(wl, steps=2):
    """Same weights, z and data in both libraries: losses and parameters after ``steps`` steps
    (buffers are implied: the losses agree).

    Guards the benchmark against timing two different computations (float32, so ~1e-6 is normal).
    """
    import torch
    p_step, pG, pD = pygan_trainer(wl)
    t_step, tG, tD = torch_trainer(wl)
    for pm, tm in ((pG, tG), (pD, tD)):
        keys = set(pm.state_dict())
        pm.load_state_dict({k: v for k, v in tm.state_dict().items() if k in keys})
    rng = np.random.default_rng(7)
    worst_loss = 0.0
    for _ in range(steps):
        z = rng.standard_normal((wl["batch"], wl["nz"])).astype(np.float32)
        pl = p_step(z)
        tl = t_step(torch.from_numpy(z.copy()))
        worst_loss = max(worst_loss, *(rel_err(a, float(b)) for a, b in zip(pl, tl)))
    worst_param, where = 0.0, ""
    for tag, pm, tm in (("G", pG, tG), ("D", pD, tD)):
        tsd = dict(tm.named_parameters())
        skip = biases_before_batchnorm(wl[tag])
        for k, v in pm.named_parameters():
            if k in skip:
                continue
            e = rel_err(v.data, tsd[k].detach().numpy())
            if e > worst_param:
                worst_param, where = e, f"{tag}.{k}"
    return {"steps": steps, "loss_rel_err": worst_loss, "param_rel_err": worst_param,
            "worst_param": where, "not_compared": {t: biases_before_batchnorm(wl[t]) for t in "GD"}, "ok": bool(worst_loss < 1e-3 and worst_param < 1e-3)}


# =============================================================================================
# Timing protocol
# =============================================================================================
def time_alternating(contenders, repeats, block_s, warmup):
    """Time each contender in blocks of steps, alternating, with a pause before every block.

    ``contenders``: {name: (fn, before_block or None)}. All blocks have the same number of
    steps, chosen from the fastest warm-up call so that one block of the slowest contender lasts
    ≈ block_s.
    The order of contenders rotates from block to block. Returns {name: [[seconds per step]
    for each block]}.
    """
    names = list(contenders)
    slowest = 0.0
    for name in names:
        fn, before = contenders[name]
        if before:
            before()
        warm = []
        for _ in range(max(3, warmup)):
            t0 = time.perf_counter()
            fn()
            warm.append(time.perf_counter() - t0)
        slowest = max(slowest, min(warm))     # the undisturbed cost: robust to a busy machine
    n = int(min(500, max(3, math.ceil(block_s / max(slowest, 1e-6)))))
    times = {name: [] for name in names}
    preempted = {name: 0 for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, before = contenders[name]
            if before:
                before()
            gc.collect()
            time.sleep(PAUSE_S)
            block = []
            cs0 = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
            for _ in range(n):
                t0 = time.perf_counter()
                fn()
                block.append(time.perf_counter() - t0)
            preempted[name] += resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - cs0
            times[name].append(block)
    return times, preempted


def summary(blocks, preempted=None):
    """Median (the headline), spread, fastest call, the best block's median (less sensitive to
    other processes stealing the CPU for part of the run) and involuntary context switches of
    this process per second of timed work (≈ 0 on a quiet machine)."""
    a = np.concatenate([np.asarray(b) for b in blocks])
    return {"preemptions_per_s": None if preempted is None else float(preempted / a.sum()),"median_ms": float(np.median(a) * 1e3), "p10_ms": float(np.percentile(a, 10) * 1e3),
            "p90_ms": float(np.percentile(a, 90) * 1e3), "min_ms": float(a.min() * 1e3),
            "best_block_median_ms": float(min(np.median(b) for b in blocks) * 1e3),
            "n": int(a.size), "blocks": len(blocks)}


# =============================================================================================
# W1 / W2
# =============================================================================================
def bench_step(wid, args, torch):
    wl = WORKLOADS[wid]
    print(f"\n[{wid} {wl['name']}] batch {wl['batch']}, float32")
    try:
        p_step, _, _ = pygan_trainer(wl)
    except (NotImplementedError, ImportError, AttributeError) as e:
        print(f"  skipped: pygan cannot build it yet ({type(e).__name__}: {e})")
        return {"skipped": f"{type(e).__name__}: {e}"}
    t_step, _, _ = torch_trainer(wl)
    res = {"name": wl["name"], "batch": wl["batch"]}
    res["agreement"] = agreement(wl)
    a = res["agreement"]
    print(f"  agreement with torch after {a['steps']} steps from the same weights: "
          f"losses {a['loss_rel_err']:.1e}, parameters {a['param_rel_err']:.1e} "
          f"({'ok' if a['ok'] else 'MISMATCH at ' + a['worst_param']})")

    default_threads = torch.get_num_threads()
    blas = {"ctx": None}

    def blas_restore():
        if blas["ctx"] is not None:
            blas["ctx"].restore_original_limits()
            blas["ctx"] = None

    contenders = {"pygan": (p_step, blas_restore)}
    if wid in TRAINER_PRESETS:
        contenders["pygan trainer"] = (pygan_engine_step(wid), blas_restore)
    if wid in ("W1", "W4"):
        for k in sorted({1, 2, default_threads}):
            contenders[f"torch@{k}"] = (t_step, (lambda k=k: (blas_restore(), torch.set_num_threads(k))))
        try:   # informative only: pygan with numpy's BLAS limited to one thread
            from threadpoolctl import threadpool_limits

            def blas_one():
                blas["ctx"] = threadpool_limits(limits=1, user_api="blas")
            contenders["pygan@1 (info)"] = (p_step, blas_one)
        except ImportError:
            pass
    else:
        contenders["torch"] = (t_step, lambda: torch.set_num_threads(default_threads))
    times, preempted = time_alternating(contenders, args.repeats, args.block_s[wid], args.warmup)
    blas_restore()
    torch.set_num_threads(default_threads)

    res["times"] = {k: summary(v, preempted[k]) for k, v in times.items()}
    torch_keys = [k for k in res["times"] if k.startswith("torch")]
    best = min(torch_keys, key=lambda k: res["times"][k]["median_ms"])
    res["torch_best"] = best
    res["pygan_ms"] = res["times"]["pygan"]["median_ms"]
    res["torch_ms"] = res["times"][best]["median_ms"]
    res["ratio"] = res["pygan_ms"] / res["torch_ms"]
    res["target"] = TARGETS[wid]
    res["flops"] = step_flops(wl)
    for k, s in res["times"].items():
        print(f"  {k:<16} median {s['median_ms']:8.2f} ms  (p10 {s['p10_ms']:.2f}, p90 {s['p90_ms']:.2f}, "
              f"best block {s['best_block_median_ms']:.2f}; {s['blocks']} blocks × {s['n'] // s['blocks']} steps; "
              f"{s['preemptions_per_s']:.0f} preemptions/s)")
    print(f"  ratio pygan / {best} = {res['ratio']:.2f}×   (target ≤ {TARGETS[wid]:.1f}×: "
          f"{'met' if res['ratio'] <= TARGETS[wid] else 'NOT met'})")
    if "pygan trainer" in res["times"]:
        res["trainer_ms"] = res["times"]["pygan trainer"]["median_ms"]
        res["trainer_over_bare"] = res["trainer_ms"] / res["pygan_ms"]
        print(f"  the trainer's whole step / the bare step = {res['trainer_over_bare']:.3f}×")
    return res


# =============================================================================================
# W3 kernels
# =============================================================================================
def bench_kernels(args, torch):
    import torch.nn.functional as F
    import pygan
    be = pygan.get_backend()
    print(f"\n[W3 kernels] pygan backend {be.name!r} vs torch ({torch.get_num_threads()} threads)")
    rows, rng = [], np.random.default_rng(3)

    def add(op, flops, p_fn, t_fn, check=None):
        times, pre = time_alternating({"pygan": (p_fn, None), "torch": (t_fn, None)},
                                      args.repeats, args.block_s["W3"], args.warmup)
        row = {"op": op, "flops": flops, "pygan": summary(times["pygan"], pre["pygan"]),
               "torch": summary(times["torch"], pre["torch"])}
        row["ratio"] = row["pygan"]["median_ms"] / row["torch"]["median_ms"]
        for side in ("pygan", "torch"):
            row[side]["gflops"] = flops / (row[side]["median_ms"] * 1e-3) / 1e9 if flops else None
            row[side]["best_gflops"] = flops / (row[side]["min_ms"] * 1e-3) / 1e9 if flops else None
        if check is not None:
            row["rel_err_vs_torch"] = check
        rows.append(row)
        print(f"  {op:<38} pygan {row['pygan']['median_ms']:8.3f} ms  torch {row['torch']['median_ms']:8.3f} ms"
              f"  ratio {row['ratio']:5.2f}×"
              + (f"  {row['pygan']['gflops']:6.1f} / {row['torch']['gflops']:6.1f} GFLOP/s" if flops else ""))

    # sgemm: numpy.matmul (pygan's NumpyBackend.matmul) vs torch.mm
    for m, n, k in GEMM_SHAPES:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        at, bt = torch.from_numpy(a), torch.from_numpy(b)
        add(f"sgemm {m}×{n}×{k}", 2 * m * n * k,
            lambda a=a, b=b: be.matmul(a, b), lambda at=at, bt=bt: torch.mm(at, bt))

    # convolutions of W2's D through the backend's kernels
    s, p = CONV_S, CONV_P
    s2, p2 = (s, s), (p, p)          # the backend kernels take (sh, sw), (ph, pw)
    for cin, cout, h in CONV_SHAPES:
        ho = (h + 2 * p - CONV_K) // s + 1
        x = rng.uniform(-1, 1, (CONV_N, cin, h, h)).astype(np.float32)
        w = (0.1 * rng.standard_normal((cout, cin, CONV_K, CONV_K))).astype(np.float32)
        gy = rng.standard_normal((CONV_N, cout, ho, ho), dtype=np.float32)
        xt, wt, gyt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)
        flops = 2 * CONV_N * cout * ho * ho * cin * CONV_K * CONV_K
        tag = f"conv {cin}→{cout} @{h}²"
        ops = [
            ("forward", lambda: be.conv2d_forward(x, w, s2, p2),
             lambda: F.conv2d(xt, wt, stride=s, padding=p)),
            ("backward-data", lambda: be.conv2d_backward_input(gy, w, x.shape, s2, p2),
             lambda: torch.nn.grad.conv2d_input(xt.shape, wt, gyt, stride=s, padding=p)),
            ("backward-filter", lambda: be.conv2d_backward_weight(x, gy, w.shape, s2, p2),
             lambda: torch.nn.grad.conv2d_weight(xt, wt.shape, gyt, stride=s, padding=p)),
        ]
        for name, pf, tf in ops:
            try:
                err = rel_err(pf(), tf().numpy())
            except (NotImplementedError, ImportError, AttributeError, TypeError) as e:
                print(f"  {tag} {name}: skipped ({type(e).__name__}: {e})")
                continue
            add(f"{tag} {name}", flops, pf, tf, check=err)

    # the nonsaturating losses, value and gradient, on 64k logits
    try:
        from pygan import losses
        loss = losses.get("nonsaturating")
        r = rng.standard_normal((LOSS_N, 1), dtype=np.float32) * 3
        f = rng.standard_normal((LOSS_N, 1), dtype=np.float32) * 3
        rt, ft = torch.from_numpy(r).requires_grad_(), torch.from_numpy(f).requires_grad_()
        ones, zeros = torch.ones(LOSS_N, 1), torch.zeros(LOSS_N, 1)
        bce = F.binary_cross_entropy_with_logits

        def p_d():
            (v1, g1), (v2, g2) = loss.d_real(r), loss.d_fake(f)
            return v1 + v2, g1, g2

        def t_d():
            v = bce(rt, ones) + bce(ft, zeros)
            return (v, *torch.autograd.grad(v, (rt, ft)))

        pv, tv = p_d(), t_d()
        err = max(rel_err(a, b.detach().numpy()) for a, b in zip(pv, tv))
        add(f"nonsaturating D loss+grad, 2×{LOSS_N // 1024}k", 0, p_d, t_d, check=err)

        def p_g():
            return loss.g_loss(f)

        def t_g():
            v = bce(ft, ones)
            return v, torch.autograd.grad(v, ft)[0]

        err = max(rel_err(a, b.detach().numpy()) for a, b in zip(p_g(), t_g()))
        add(f"nonsaturating G loss+grad, {LOSS_N // 1024}k", 0, p_g, t_g, check=err)
    except (NotImplementedError, ImportError, AttributeError) as e:
        print(f"  losses: skipped ({type(e).__name__}: {e})")

    # FLOP limit: the best 2048³ sgemm of either library in this run
    big = next(r for r in rows if r["op"].startswith("sgemm 2048"))
    peak = max(big["pygan"]["best_gflops"], big["torch"]["best_gflops"])
    for row in rows:
        for side in ("pygan", "torch"):
            g = row[side]["gflops"]
            row[side]["frac_of_peak"] = g / peak if g else None
    print(f"  FLOP limit (best 2048³ sgemm of numpy or torch in this run): {peak:.1f} GFLOP/s")
    over = [r["op"] for r in rows if r["flops"] and max(r["pygan"]["gflops"], r["torch"]["gflops"]) > peak]
    if over:
        print(f"  WARNING: {', '.join(over)} ran above that limit: the 2048³ sgemm was disturbed "
              f"(other processes?), so the FLOP-limit fractions of this run are overstated")
    return {"rows": rows, "peak_gflops": peak,
            "peak_definition": "best single 2048x2048x2048 sgemm rate of numpy or torch in this run"}


# =============================================================================================
# Peak memory (fresh processes)
# =============================================================================================
def _proc_status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_child(spec, steps):
    """Hidden entry point: ``--_child pygan:W2`` — run ``steps`` steps and print one JSON line.

    The peak is VmHWM (the resident high-water mark of this process's own address space). On
    Linux ``ru_maxrss`` of a process started by subprocess also counts the parent's RSS at the
    moment of exec, so it is reported for reference only.
    """
    lib, wid = spec.split(":")
    wl = WORKLOADS[wid]
    if lib == "torch":
        import torch  # noqa: F401
        trainer = torch_trainer
    else:
        import pygan  # noqa: F401
        trainer = pygan_trainer
    base_hwm = _proc_status_kib("VmHWM")
    base_rss = _proc_status_kib("VmRSS")
    step, _, _ = trainer(wl)
    for _ in range(steps):
        step()
    out = {"lib": lib, "workload": wid, "steps": steps,
           "baseline_rss_kib": base_rss, "baseline_hwm_kib": base_hwm,
           "peak_hwm_kib": _proc_status_kib("VmHWM"),
           "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
           "torch_imported": "torch" in sys.modules}
    print("RESULT " + json.dumps(out))


def bench_memory(wids, steps):
    print(f"\n[memory] peak resident memory of {steps} steps, each library in a fresh process")
    res = {}
    for wid in wids:
        entry = {}
        for lib in ("pygan", "torch"):
            cmd = [sys.executable, os.path.abspath(__file__), "--_child", f"{lib}:{wid}",
                   "--mem-steps", str(steps)]
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
            if r.returncode != 0 or not line:
                msg = (r.stderr.strip().splitlines() or ["?"])[-1]
                print(f"  {wid} {lib}: failed ({msg})")
                entry[lib] = {"error": msg}
                continue
            entry[lib] = json.loads(line[0][7:])
        if all("peak_hwm_kib" in entry.get(k, {}) for k in ("pygan", "torch")):
            p, t = entry["pygan"], entry["torch"]
            entry["ratio_peak"] = p["peak_hwm_kib"] / t["peak_hwm_kib"]
            entry["pygan_increment_kib"] = p["peak_hwm_kib"] - p["baseline_hwm_kib"]
            entry["torch_increment_kib"] = t["peak_hwm_kib"] - t["baseline_hwm_kib"]
            entry["ratio_increment"] = entry["pygan_increment_kib"] / max(entry["torch_increment_kib"], 1)
            entry["target"] = TARGETS["memory"]
            for lib in ("pygan", "torch"):
                e = entry[lib]
                print(f"  {wid} {lib:<6} after imports {e['baseline_hwm_kib'] / 1024:7.1f} MiB   peak "
                      f"{e['peak_hwm_kib'] / 1024:7.1f} MiB   (+{(e['peak_hwm_kib'] - e['baseline_hwm_kib']) / 1024:.1f} MiB)")
            print(f"  {wid} ratio pygan / torch: peak {entry['ratio_peak']:.2f}×, above imports "
                  f"{entry['ratio_increment']:.2f}×   (target ≤ {TARGETS['memory']:.1f}×)")
        res[wid] = entry
    return res


# =============================================================================================
# Report
# =============================================================================================
def print_table(out):
    print("\n" + "=" * 96)
    print("Summary (ratio = pygan / torch; < 1 means pygan is faster / smaller)")
    print("=" * 96)
    hdr = f"{'figure':<44}{'pygan':>11}{'torch':>11}{'ratio':>9}  {'target':<10}"
    print(hdr)
    print("-" * len(hdr))
    for wid in ("W1", "W2", "W4"):
        r = out.get(wid)
        if not r or "skipped" in r:
            if r:
                print(f"{wid + ' step':<44}{'skipped':>11}")
            continue
        ok = "met" if r["ratio"] <= r["target"] else "NOT met"
        print(f"{wid + ' ' + r['name'] + ' step (' + r['torch_best'] + ')':<44}{r['pygan_ms']:>9.2f}ms"
              f"{r['torch_ms']:>9.2f}ms{r['ratio']:>8.2f}×  ≤{r['target']:.1f}× {ok}")
    k = out.get("W3")
    if k:
        peak = k["peak_gflops"]
        for row in k["rows"]:
            print(f"{row['op']:<44}{row['pygan']['median_ms']:>9.3f}ms{row['torch']['median_ms']:>9.3f}ms"
                  f"{row['ratio']:>8.2f}×")
        print(f"\n{'GFLOP/s (median; % of FLOP limit)':<44}{'pygan':>16}{'torch':>16}")
        for row in k["rows"]:
            if row["flops"]:
                p, t = row["pygan"], row["torch"]
                print(f"{row['op']:<44}{p['gflops']:>8.1f} ({100 * p['frac_of_peak']:3.0f}%)"
                      f"{t['gflops']:>8.1f} ({100 * t['frac_of_peak']:3.0f}%)")
        print(f"FLOP limit = best 2048³ sgemm in this run = {peak:.1f} GFLOP/s")
        for wid in ("W1", "W2"):
            r = out.get(wid)
            if r and "ratio" in r:
                f = r["flops"]["step"]
                floor = f / (peak * 1e9) * 1e3
                r["floor_ms"] = floor
                r["pygan_frac_of_floor"] = floor / r["pygan_ms"]
                r["torch_frac_of_floor"] = floor / r["torch_ms"]
                print(f"{wid} step: {f / 1e9:.3f} GFLOP (GEMM/conv only, backward = 2× forward) → floor "
                      f"{floor:.2f} ms; pygan at {100 * r['pygan_frac_of_floor']:.0f}% of it, torch at "
                      f"{100 * r['torch_frac_of_floor']:.0f}%")
    m = out.get("memory")
    if m:
        print()
        for wid, e in m.items():
            if "ratio_peak" in e:
                ok = "met" if e["ratio_peak"] <= e["target"] else "NOT met"
                ok2 = "met" if e["ratio_increment"] <= e["target"] else "NOT met"
                print(f"{wid + ' peak RSS (whole process)':<44}{e['pygan']['peak_hwm_kib'] / 1024:>8.1f}MiB"
                      f"{e['torch']['peak_hwm_kib'] / 1024:>8.1f}MiB{e['ratio_peak']:>8.2f}×  ≤{e['target']:.1f}× {ok}")
                print(f"{wid + ' peak RSS above post-import baseline':<44}{e['pygan_increment_kib'] / 1024:>8.1f}MiB"
                      f"{e['torch_increment_kib'] / 1024:>8.1f}MiB{e['ratio_increment']:>8.2f}×  ≤{e['target']:.1f}× {ok2}")


def plot(out, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return None
    labels, ratios, targets = [], [], []
    for wid in ("W1", "W2", "W4"):
        r = out.get(wid)
        if r and "ratio" in r:
            labels.append(f"{wid} {r['name']} step")
            ratios.append(r["ratio"])
            targets.append(r["target"])
    for row in (out.get("W3") or {}).get("rows", []):
        labels.append(row["op"])
        ratios.append(row["ratio"])
        targets.append(None)
    for wid, e in (out.get("memory") or {}).items():
        if "ratio_peak" in e:
            labels += [f"{wid} peak memory", f"{wid} memory above imports"]
            ratios += [e["ratio_peak"], e["ratio_increment"]]
            targets += [e["target"], e["target"]]
    if not labels:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(labels) + 1.4))
    ys = np.arange(len(labels))[::-1]
    colors = ["tab:green" if (t is not None and v <= t) or (t is None and v <= 1) else "tab:red"
              if t is not None else "tab:orange" for v, t in zip(ratios, targets)]
    ax.barh(ys, ratios, color=colors)
    for y, v, t in zip(ys, ratios, targets):
        ax.text(v * 1.03, y, f"{v:.2f}×", va="center", fontsize=8)
        if t is not None:
            ax.plot([t, t], [y - 0.4, y + 0.4], color="black", lw=1.5)
    ax.axvline(1.0, color="gray", ls="--", lw=1)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter, NullFormatter
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(min(ratios + [1.0]) / 1.6, max(ratios + [t or 1 for t in targets]) * 1.6)
    ax.set_xlabel("pygan / PyTorch CPU (time or memory; lower is better; black tick = target)")
    ax.set_title(f"pygan vs PyTorch — {out['environment']['cpu_model']}, {out['environment']['date'][:10]}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# =============================================================================================
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="W1,W2,W4,W3",
                    help="comma-separated subset of W1,W2,W3 (memory runs with W1/W2)")
    ap.add_argument("--repeats", type=int, default=6, help="timed blocks per contender (default 6)")
    ap.add_argument("--warmup", type=int, default=5, help="warm-up calls per contender (default 5)")
    ap.add_argument("--mem-steps", type=int, default=20, help="steps per memory process (default 20)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--out", default=os.path.join("benchmarks", "results", "core.json"),
                    help="JSON output; the PNG goes next to it (default benchmarks/results/core.json)")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._child:
        memory_child(args._child, args.mem_steps)
        return 0

    wids = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    bad = [w for w in wids if w not in ("W1", "W2", "W3", "W4")]
    if bad:
        ap.error(f"unknown workload(s) {bad}; choose from W1, W2, W3")
    args.block_s = {"W1": 0.3, "W2": 1.0, "W4": 0.3, "W3": 0.3}

    snap0 = cpu_snapshot()
    import torch
    info = environment(torch)
    print_environment(info)
    out = {"environment": info, "targets": TARGETS,
           "protocol": {"repeats": args.repeats, "warmup": args.warmup, "pause_s": PAUSE_S,
                        "block_s": args.block_s, "statistic": "median of per-step times",
                        "ratio": "pygan / torch"}}
    for wid in ("W1", "W2", "W4"):
        if wid in wids:
            out[wid] = bench_step(wid, args, torch)
    if "W3" in wids:
        out["W3"] = bench_kernels(args, torch)
    mem_wids = [w for w in ("W1", "W2") if w in wids and "skipped" not in out.get(w, {})]
    if mem_wids and not args.no_memory:
        out["memory"] = bench_memory(mem_wids, args.mem_steps)
    busy = other_load(snap0, cpu_snapshot())
    out["environment"]["other_processes_cores_during_run"] = busy
    print_table(out)
    if busy is not None:
        print(f"\nOther processes used {busy:.2f} of {info['cpus_usable']} cores on average during the run"
              + ("  (WARNING: timings disturbed; rerun on a quiet machine)" if busy > 0.2 else "."))

    path = os.path.join(ROOT, args.out) if not os.path.isabs(args.out) else args.out
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    png = plot(out, os.path.splitext(path)[0] + ".png")
    print(f"\nwrote {os.path.relpath(path, ROOT)}" + (f" and {os.path.relpath(png, ROOT)}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
