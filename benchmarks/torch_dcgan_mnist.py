#!/usr/bin/env python
"""DCGAN-28 on MNIST, the same recipe in PyTorch and in pygan, scored by the same judge.

The PyTorch side is what a PyTorch user writes for the ``dcgan-mnist`` preset: W2's networks
(benchmarks/WORKLOADS.md, built from the layer specs of bench_core.py with ``torch.nn``), the DCGAN
initialisation (weights N(0, 0.02), BatchNorm γ ~ N(1, 0.02), biases 0), Adam(2e-4, (0.5, 0.999))
for both nets, batch 64 from a reshuffled pass over the same training images pygan trains on, the
nonsaturating loss with logits; per step one D update on a real batch and the detached fake
batch (two forwards, so BatchNorm sees each batch alone, as pygan's trainer does), then one G
update through D on the same fakes. PyTorch's own random numbers (``torch.manual_seed(seed)``):
the two libraries draw different batches and noise, which is why two seeds of each are run.

After training, the PyTorch generator's state dict (PyTorch's key names are pygan's) is loaded
into pygan's ``dcgan-28`` and scored exactly as ``pygan eval RUN`` scores a pygan run: the same
judge, the same number of samples, the same evaluation seed.

The pygan side is ``pygan train dcgan-mnist --seed S`` (its finished run folder is read; one is
trained first when it is missing). Wall time per step: PyTorch's from this script's loop, pygan's
from the run's metrics (the trainer's own time, checkpoints and figures included).

    python benchmarks/torch_dcgan_mnist.py                  # seeds 0 1, the preset's 5,000 steps
    python benchmarks/torch_dcgan_mnist.py --seeds 0 --steps 200    # a smoke run, not a result

Writes benchmarks/results/dcgan_mnist_torch.json and .md (the table the README quotes).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
PRESET = "dcgan-mnist"


def train_torch(cfg, seed: int, steps: int, log_every: int = 500):
    """Train W2 in PyTorch on cfg's data; returns (G's state dict as arrays, seconds per step)."""
    import torch
    from bench_core import W2_D, W2_G, build

    from pygan.data import load_images

    torch.manual_seed(seed)
    x, _ = load_images(cfg.data, cfg.data_folder, "train")
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) / np.float32(cfg.data_scale))
    G, D = build(W2_G, torch.nn), build(W2_D, torch.nn)

    def dcgan_init(m):
        kind = type(m).__name__
        if kind.startswith("BatchNorm"):
            torch.nn.init.normal_(m.weight, 1.0, 0.02)
            torch.nn.init.zeros_(m.bias)
        elif kind in ("Linear", "Conv2d", "ConvTranspose2d"):
            torch.nn.init.normal_(m.weight, 0.0, 0.02)
            torch.nn.init.zeros_(m.bias)

    G.apply(dcgan_init)
    D.apply(dcgan_init)
    og, od = cfg.optim_g, cfg.optim_d
    opt_g = torch.optim.Adam(G.parameters(), lr=og.lr, betas=tuple(og.betas))
    opt_d = torch.optim.Adam(D.parameters(), lr=od.lr, betas=tuple(od.betas))
    bce = torch.nn.BCEWithLogitsLoss()
    B, nz = cfg.batch_size, W2_G[0][1]
    ones, zeros = torch.ones(B, 1), torch.zeros(B, 1)
    perm, pos = torch.randperm(len(x)), 0
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        if pos + B > len(perm):
            perm, pos = torch.randperm(len(x)), 0
        real = x[perm[pos:pos + B]]
        pos += B
        fake = G(torch.randn(B, nz))
        opt_d.zero_grad()
        d_real = bce(D(real), ones)
        d_real.backward()
        d_fake = bce(D(fake.detach()), zeros)
        d_fake.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = bce(D(fake), ones)
        g_loss.backward()
        opt_g.step()
        if log_every and step % log_every == 0:
            print(f"  torch seed {seed} step {step}/{steps}  d_loss {float(d_real + d_fake):.4f}  "
                  f"g_loss {float(g_loss):.4f}  [{step / (time.perf_counter() - t0):.1f} steps/s]", flush=True)
    per_step = (time.perf_counter() - t0) / steps
    return {k: v.detach().numpy().copy() for k, v in G.state_dict().items()}, per_step


def score(model, cfg, eval_seed: int = 0) -> dict:
    """What ``pygan eval RUN --json`` reports (the run's eval_samples, evaluation seed 0)."""
    from pygan.training import TASKS
    return TASKS[cfg.kind].evaluate_model(model, cfg, rng=np.random.default_rng(eval_seed))


def torch_row(seed: int, steps: int) -> dict:
    import torch

    from pygan.training import TASKS, preset
    from pygan.training.tasks.gan import build_model

    cfg = preset(PRESET)
    cfg.seed = seed
    state, per_step = train_torch(cfg, seed, steps)
    model = build_model(cfg)
    model.G.load_state_dict(state)
    return {"library": f"PyTorch {torch.__version__}", "seed": seed, "steps": steps, "s_per_step": per_step,
            "threads": torch.get_num_threads(), "quality": score(model, cfg),
            "command": f"python benchmarks/torch_dcgan_mnist.py --seeds {seed} --steps {steps}"}


def pygan_row(seed: int, steps: int, runs_dir: str) -> dict:
    from pygan.training import load_run
    folder = os.path.join(runs_dir, f"{PRESET}-s{seed}")
    done = False
    if os.path.exists(os.path.join(folder, "checkpoint.npz")):
        _, cfg, ck = load_run(folder)
        done = ck.step == steps
    if not done:
        subprocess.run([sys.executable, "-m", "pygan", "train", PRESET, "--seed", str(seed), "--steps", str(steps),
                        "--out", folder, "--no-progress", "--overwrite"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    model, cfg, ck = load_run(folder)
    with open(os.path.join(folder, "metrics.jsonl")) as f:
        last = [json.loads(line) for line in f if line.strip()][-1]
    return {"library": "pygan (numpy backend)", "seed": seed, "steps": steps, "s_per_step": last["time"] / steps,
            "quality": score(model, cfg),
            "command": f"pygan train {PRESET} --seed {seed} --steps {steps}; pygan eval RUN --json"}


def table(rows) -> str:
    lines = ["| library | seed | steps | Fréchet distance (judge) | real-vs-real floor | s / step |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        q = r["quality"]
        lines.append(f"| {r['library']} | {r['seed']} | {r['steps']} | {q['fid']:.2f} | {q['real_vs_real_fid']:.2f} "
                     f"| {r['s_per_step']:.3f} |")
    for lib in dict.fromkeys(r["library"] for r in rows):
        fd = [r["quality"]["fid"] for r in rows if r["library"] == lib]
        t = [r["s_per_step"] for r in rows if r["library"] == lib]
        lines.append(f"| **{lib}: mean (spread)** | | | **{np.mean(fd):.2f}** ({min(fd):.2f}–{max(fd):.2f}) | | "
                     f"**{np.mean(t):.3f}** |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, default=None, help="default: the preset's steps")
    ap.add_argument("--runs-dir", default=os.path.join(ROOT, "runs", "mnist"))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "dcgan_mnist_torch.json"))
    args = ap.parse_args(argv)
    from pygan.data import describe_source
    from pygan.files import atomic_write
    from pygan.training import preset
    cfg = preset(PRESET)
    steps = args.steps or cfg.steps
    rows = []
    for seed in args.seeds:
        rows.append(pygan_row(seed, steps, args.runs_dir))
        print(f"pygan seed {seed}: {rows[-1]['quality']['fid']:.2f}, {rows[-1]['s_per_step']:.3f} s/step", flush=True)
        rows.append(torch_row(seed, steps))
        print(f"torch seed {seed}: {rows[-1]['quality']['fid']:.2f}, {rows[-1]['s_per_step']:.3f} s/step", flush=True)
    rows.sort(key=lambda r: (r["library"], r["seed"]))
    md = table(rows)
    print(md)
    data = describe_source(cfg.data, cfg.data_folder)
    atomic_write(args.out, lambda f: f.write(json.dumps({"preset": PRESET, "data": data, "rows": rows},
                                                         indent=1).encode()))
    text = (f"# DCGAN-28 on MNIST: pygan and PyTorch, the same recipe\n\nData: {data}. Written by "
            f"`python benchmarks/torch_dcgan_mnist.py --seeds {' '.join(map(str, args.seeds))} --steps {steps}`; "
            f"both generators scored by the same judge as `pygan eval RUN` scores a run.\n\n{md}\n")
    atomic_write(os.path.splitext(args.out)[0] + ".md", lambda f: f.write(text.encode()))

if __name__ == "__main__":
    main()
