"""CPU-time ratio pygan / PyTorch of one training step, both on one thread.

Wall-clock ratios (bench_core.py) move with whatever else the machine runs; CPU time of a single
thread moves much less, so this is the load-robust companion figure quoted in the README.

    OPENBLAS_NUM_THREADS=1 python benchmarks/cpu_time_ratio.py W1 W2 W4
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_core as bc  # noqa: E402


def main(wids):
    import torch
    torch.set_num_threads(1)
    for wid in wids:
        wl = bc.WORKLOADS[wid]
        steps = {"pygan": bc.pygan_trainer(wl)[0], "torch": bc.torch_trainer(wl)[0]}
        n = 30 if wid == "W2" else 300
        best = {}
        for name, step in list(steps.items()) * 2:      # alternate, keep each one's best block
            for _ in range(3):
                step()
            t0 = time.process_time()
            for _ in range(n):
                step()
            best[name] = min(best.get(name, float("inf")), (time.process_time() - t0) / n * 1e3)
        print(f"{wid}: pygan {best['pygan']:.2f} ms, torch {best['torch']:.2f} ms CPU per step "
              f"(1 thread each): ratio {best['pygan'] / best['torch']:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["W1", "W2", "W4"])
