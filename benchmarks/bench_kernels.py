"""W3 of benchmarks/WORKLOADS.md: single kernels in GFLOP/s and as a fraction of the device's peak.

    python benchmarks/bench_kernels.py [--repeat 20] [--quick]

Rows: numpy (CPU, BLAS), cupy (cuBLAS; convolutions through pygan's ``cupy`` backend when it
exists), cuda (pygan's own kernels, csrc/kernels, through pygan._cuda), torch-cuda (PyTorch on
the GPU, if installed).  On a machine without a GPU the GPU rows are skipped with the reason,
the numpy rows are still timed, and the CPU emulator is run once on a tiny shape — that figure
checks the plumbing and is NOT a speed figure (the emulator runs every GPU thread as a fiber).

FLOPs: sgemm 2·M·N·K; convolution 2·N·O·C·kh·kw·OH·OW per pass (forward, backward-data and
backward-filter alike); fused losses counted as 1 element each (reported in G elements/s).
The GPU's FP32 peak is SMs × clock × FP32 lanes per SM × 2 (lanes: 64 for sm_80, 128 for
sm_86/89/90); CuPy events time the GPU, medians are reported.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pygan  # noqa: E402
from pygan.backend import NumpyBackend  # noqa: E402

SGEMM = [(64, 6272, 100), (256, 128, 128), (1024, 1024, 1024), (2048, 2048, 2048)]
CONVS = [("conv 1→64 @28²", (64, 1, 28, 28), (64, 1, 4, 4)), ("conv 64→128 @14²", (64, 64, 14, 14), (128, 64, 4, 4))]
STRIDE, PAD = (2, 2), (1, 1)
LOGITS = 65536
LANES = {(8, 0): 64, (7, 0): 64, (7, 5): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128, (9, 0): 128, (10, 0): 128}


def conv_flops(xs, ws):
    N, C, H, W = xs
    O, _, kh, kw = ws
    OH, OW = (H + 2 * PAD[0] - kh) // STRIDE[0] + 1, (W + 2 * PAD[1] - kw) // STRIDE[1] + 1
    return 2 * N * O * C * kh * kw * OH * OW, (N, O, OH, OW)


def time_cpu(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def time_gpu(fn, repeat, cupy):
    fn()
    cupy.cuda.get_current_stream().synchronize()
    ts = []
    for _ in range(repeat):
        a, b = cupy.cuda.Event(), cupy.cuda.Event()
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(cupy.cuda.get_elapsed_time(a, b) / 1e3)
    return statistics.median(ts)


def cases(be, xp, rng):
    """(name, flops or elements, unit, callable) for every W3 kernel on backend ``be``."""
    out = []
    for M, N, K in SGEMM:
        a = xp.asarray(rng.standard_normal((M, K)).astype(np.float32))
        b = xp.asarray(rng.standard_normal((K, N)).astype(np.float32))
        out.append((f"sgemm {M}×{N}×{K}", 2 * M * N * K, "GFLOP/s", lambda a=a, b=b: be.matmul(a, b)))
    for name, xs, ws in CONVS:
        flops, ys = conv_flops(xs, ws)
        x = xp.asarray(rng.standard_normal(xs).astype(np.float32))
        w = xp.asarray(rng.standard_normal(ws).astype(np.float32))
        gy = xp.asarray(rng.standard_normal(ys).astype(np.float32))
        out.append((f"{name} forward", flops, "GFLOP/s", lambda x=x, w=w: be.conv2d_forward(x, w, STRIDE, PAD)))
        out.append((f"{name} backward-data", flops, "GFLOP/s",
                    lambda gy=gy, w=w, s=xs: be.conv2d_backward_input(gy, w, s, STRIDE, PAD)))
        out.append((f"{name} backward-filter", flops, "GFLOP/s",
                    lambda x=x, gy=gy, s=ws: be.conv2d_backward_weight(x, gy, s, STRIDE, PAD)))
    logits = xp.asarray(rng.standard_normal(LOGITS).astype(np.float32))
    from pygan import losses
    if hasattr(be, "loss_softplus"):
        out.append(("nonsaturating d_fake, 64k logits", LOGITS, "G elem/s",
                    lambda: be.loss_softplus(logits, 1, 1.0)))
    else:
        out.append(("nonsaturating d_fake, 64k logits", LOGITS, "G elem/s",
                    lambda: losses._softplus_term(logits, 1, 1.0)))
    return out


def report(backend_name, rows, peak=None):
    for name, work, unit, t in rows:
        rate = work / t / 1e9
        frac = f"{100 * work / t / peak:5.1f} % of peak" if peak and unit == "GFLOP/s" else ""
        print(f"  {backend_name:<11} {name:<40} {t * 1e3:9.3f} ms  {rate:9.2f} {unit:<8} {frac}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="skip the 2048³ sgemm")
    args = ap.parse_args(argv)
    if args.quick:
        SGEMM.remove((2048, 2048, 2048))
    rng = np.random.default_rng(0)
    avail = pygan.available_backends()
    print("W3 kernels (float32); backends:", {k: ("ok" if v is None else "unavailable") for k, v in avail.items()})

    print("numpy (CPU, BLAS):")
    report("numpy", [(n, w, u, time_cpu(f, max(3, args.repeat // 4))) for n, w, u, f in cases(NumpyBackend(), np, rng)])

    try:
        import cupy
        ndev = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001
        cupy, ndev, why = None, 0, f"CuPy unavailable ({type(e).__name__}: {e})"
    else:
        why = "no CUDA GPU visible" if ndev == 0 else None
    if cupy is None or ndev == 0:
        print(f"skipped cupy, cuda and torch-cuda rows: {why}")
    else:
        props = cupy.cuda.runtime.getDeviceProperties(0)
        cc = (props["major"], props["minor"])
        clock_khz = props.get("clockRate") or cupy.cuda.runtime.deviceGetAttribute(13, 0)
        peak = props["multiProcessorCount"] * clock_khz * 1e3 * LANES.get(cc, 128) * 2
        print(f"GPU: {props['name'].decode() if isinstance(props['name'], bytes) else props['name']}, sm_{cc[0]}{cc[1]}, "
              f"{props['multiProcessorCount']} SMs @ {clock_khz / 1e6:.2f} GHz → FP32 peak {peak / 1e12:.1f} TFLOP/s")

        class CupyMatmul:                   # cuBLAS through cupy.matmul; conv through pygan's cupy backend
            def matmul(self, a, b):
                return cupy.matmul(a, b)
        cupy_be = CupyMatmul()
        if avail.get("cupy") is None:
            cupy_be = pygan.set_backend("cupy")
        rows = []
        for n, w, u, f in cases(cupy_be, cupy, rng):
            try:
                rows.append((n, w, u, time_gpu(f, args.repeat, cupy)))
            except AttributeError:
                print(f"  cupy        {n:<40} skipped: no pygan cupy backend for it")
        print("cupy:")
        report("cupy", rows, peak)
        if avail["cuda"] is None:
            be = pygan.set_backend("cuda")
            print("cuda (pygan's kernels):")
            report("cuda", [(n, w, u, time_gpu(f, args.repeat, cupy)) for n, w, u, f in cases(be, cupy, rng)], peak)
        else:
            print(f"skipped cuda rows: {avail['cuda']}")
        try:
            import torch
            if not torch.cuda.is_available():
                raise RuntimeError("torch.cuda.is_available() is False")
        except Exception as e:  # noqa: BLE001
            print(f"skipped torch-cuda rows: {type(e).__name__}: {e}")
        else:
            print("torch-cuda:")
            rows = []
            for M, N, K in SGEMM:
                a = torch.randn(M, K, device="cuda")
                b = torch.randn(K, N, device="cuda")
                rows.append((f"sgemm {M}×{N}×{K}", 2 * M * N * K, "GFLOP/s",
                             time_gpu(lambda: torch.matmul(a, b), args.repeat, cupy)))
            for name, xs, ws in CONVS:
                flops, _ = conv_flops(xs, ws)
                x, w = torch.randn(*xs, device="cuda"), torch.randn(*ws, device="cuda")
                rows.append((f"{name} forward", flops, "GFLOP/s",
                             time_gpu(lambda: torch.nn.functional.conv2d(x, w, stride=STRIDE, padding=PAD),
                                      args.repeat, cupy)))
            report("torch-cuda", rows, peak)
        pygan.set_backend("numpy")

    if avail["cuda-emu"] is None:
        be = pygan.set_backend("cuda-emu")
        a = rng.standard_normal((67, 45)).astype(np.float32)
        b = rng.standard_normal((45, 33)).astype(np.float32)
        t = time_cpu(lambda: be.matmul(a, b), 3)
        print(f"cuda-emu (CPU emulator; NOT a speed figure, it runs every GPU thread as a fiber): "
              f"sgemm 67×33×45 in {t * 1e3:.1f} ms, max |error| vs numpy "
              f"{float(np.abs(be.matmul(a, b) - a @ b).max()):.1e}")
        pygan.set_backend("numpy")
    else:
        print(f"skipped cuda-emu: {avail['cuda-emu']}")


if __name__ == "__main__":
    main()
