"""W1 training steps (nonsaturating GAN, MLPs of width 128, batch 256, Adam) on the ``cupy`` and
``cuda`` backends against PyTorch CUDA: median seconds per step, one JSON line per contender.
A helper of benchmarks/gpu_check.sh; backends that cannot run here print why and are skipped.

    python benchmarks/gpu_train_steps.py [--steps 20]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pygan  # noqa: E402
from pygan import losses, nn, optim  # noqa: E402

WIDTH, BATCH = 128, 256


def mlp(sizes, act):
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def pygan_step_fn(backend):
    be = pygan.set_backend(backend)
    xp = be.xp
    G = mlp([2, WIDTH, WIDTH, WIDTH, 2], nn.ReLU)
    D = mlp([2, WIDTH, WIDTH, WIDTH, 1], lambda: nn.LeakyReLU(0.2))
    og = optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    loss = losses.get("nonsaturating")
    rng = np.random.default_rng(0)
    z = xp.asarray(rng.standard_normal((BATCH, 2)).astype(np.float32))
    real = xp.asarray(rng.standard_normal((BATCH, 2)).astype(np.float32))

    def step():
        od.zero_grad()
        D.backward(loss.d_real(D(real))[1])
        fake = G(z)
        D.backward(loss.d_fake(D(fake))[1])
        od.step()
        og.zero_grad()
        G.backward(D.backward(loss.g_loss(D(fake))[1]))
        og.step()
        be.synchronize()
    return step


def torch_step_fn():
    import torch
    F = torch.nn.functional

    def tmlp(sizes, act):
        layers = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(act())
        return torch.nn.Sequential(*layers).cuda()
    G = tmlp([2, WIDTH, WIDTH, WIDTH, 2], torch.nn.ReLU)
    D = tmlp([2, WIDTH, WIDTH, WIDTH, 1], lambda: torch.nn.LeakyReLU(0.2))
    og = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    z, real = torch.randn(BATCH, 2, device="cuda"), torch.randn(BATCH, 2, device="cuda")

    def step():
        od.zero_grad()
        fake = G(z)
        (F.softplus(-D(real)).mean() + F.softplus(D(fake.detach())).mean()).backward()
        od.step()
        og.zero_grad()
        F.softplus(-D(fake)).mean().backward()
        og.step()
        torch.cuda.synchronize()
    return step


def median_time(step, n):
    for _ in range(3):
        step()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    avail = pygan.available_backends()
    for name in ("cupy", "cuda"):
        if avail.get(name) is not None:
            print(json.dumps({"workload": "W1", "contender": name, "skipped": avail[name]}))
            continue
        try:
            t = median_time(pygan_step_fn(name), args.steps)
            print(json.dumps({"workload": "W1", "contender": name, "seconds_per_step": t}))
        except Exception as e:  # noqa: BLE001 — one contender failing never stops the others
            print(json.dumps({"workload": "W1", "contender": name, "error": f"{type(e).__name__}: {e}"}))
    pygan.set_backend("numpy")
    try:
        t = median_time(torch_step_fn(), args.steps)
        print(json.dumps({"workload": "W1", "contender": "torch-cuda", "seconds_per_step": t}))
    except Exception as e:  # noqa: BLE001
        print(json.dumps({"workload": "W1", "contender": "torch-cuda", "error": f"{type(e).__name__}: {e}"}))


if __name__ == "__main__":
    main()
