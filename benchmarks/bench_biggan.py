"""BigGAN's ideas at 28×28 (the 5,000 real MNIST digits): the ablation and the truncation trick.

Ablation: the preset ``biggan-mnist`` with G's conditioning switched (everything else equal:
hinge, 2 D steps, Adam (0, 0.999), orthogonal regularisation, EMA of G, 1,000 G steps, width 16):

    input    [z, E[y]] into G's first layer, plain BatchNorm in the blocks (today's cGAN)
    cbn      class-conditional BatchNorm, per-class gains and biases, z at the input only
    shared   CBN on [shared embedding(y), z chunk], hierarchical z (BigGAN)

Each run is a fresh ``pygan train`` process on one BLAS thread, scored by ``pygan eval RUN
--json`` (the EMA G: Fréchet distance on the 28×28 judge's features, conditional accuracy).
Truncation: ``pygan eval RUN --json --truncation ψ`` for ψ in PSIS on the runs of --sweep. That
option (and ``pygan.evaluation.sampling.truncated_z``) does not exist yet: until it does, pass
``--sweep`` with no runs to skip the sweep.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_biggan.py --seeds 0 1
    python benchmarks/bench_biggan.py --report-only       # tables and figures from the saved JSON

Writes benchmarks/results/biggan.json and biggan.md, and the figures biggan_truncation.png and
biggan_samples.png.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
VARIANTS = {
    "input": ["--set", "model_args.g_conditioning=input", "--set", "model_args.hierarchical=false"],
    "cbn": ["--set", "model_args.g_conditioning=cbn", "--set", "model_args.hierarchical=false"],
    "shared": [],
}
PSIS = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0]


def _env():
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _eval(run, psi=None):
    cmd = [sys.executable, "-m", "pygan", "eval", run, "--json"]
    if psi is not None:
        cmd += ["--truncation", str(psi)]
    ev = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=_env())
    return json.loads(ev.stdout)


def train_one(variant, seed, runs_dir, steps=None):
    out = os.path.join(runs_dir, f"biggan-{variant}-s{seed}")
    args = ["biggan-mnist", "--seed", str(seed)] + VARIANTS[variant] + (["--steps", str(steps)] if steps else [])
    cmd = [sys.executable, "-m", "pygan", "train", *args, "--out", out, "--no-progress", "--overwrite"]
    t0 = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=_env())
    wall = time.time() - t0
    return {"variant": variant, "seed": seed, "run": out, "wall_s": wall, "quality": _eval(out),
            "command": "OPENBLAS_NUM_THREADS=1 pygan train " + " ".join(args)}


def _load(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"ablation": [], "truncation": {}}


def _write_text(path, text):
    sys.path.insert(0, ROOT)
    from pygan.files import atomic_write
    atomic_write(path, lambda f: f.write(text.encode()))


def _save_figure(fig, path):
    from pygan.files import atomic_write
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=fig.dpi))


def _save(path, data):
    _write_text(path, json.dumps(data, indent=1) + "\n")


def ablation_table(rows):
    import numpy as np
    lines = ["| G's conditioning | seed | FD (judge features) | conditional accuracy | train time | command |",
             "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"])):
        q = r["quality"]
        lines.append(f"| {r['variant']} | {r['seed']} | {q['fid']:.2f} | {100 * q['cond_accuracy']:.1f}% | "
                     f"{r['wall_s']:.0f} s | `{r['command']}` |")
    lines += ["", "| G's conditioning | FD, mean of seeds | conditional accuracy, mean of seeds |", "|---|---|---|"]
    for v in VARIANTS:
        rs = [r["quality"] for r in rows if r["variant"] == v]
        if rs:
            f = [q["fid"] for q in rs]
            a = [100 * q["cond_accuracy"] for q in rs]
            lines.append(f"| {v} | {np.mean(f):.2f} ({', '.join(f'{x:.2f}' for x in f)}) | "
                         f"{np.mean(a):.1f}% ({', '.join(f'{x:.1f}' for x in a)}) |")
    return "\n".join(lines)


def truncation_table(trunc):
    lines = ["| run | " + " | ".join(f"ψ = {p:g}" for p in PSIS) + " | untruncated |",
             "|---|" + "---|" * (len(PSIS) + 1)]
    for run, by_psi in trunc.items():
        cells = [f"{by_psi[str(p)]['fid']:.2f} / {100 * by_psi[str(p)]['cond_accuracy']:.1f}%" if str(p) in by_psi
                 else "—" for p in PSIS + ["none"]]
        lines.append(f"| {os.path.basename(run)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def truncation_figure(trunc, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for run, by_psi in trunc.items():
        ps = [p for p in PSIS if str(p) in by_psi]
        a1.plot(ps, [by_psi[str(p)]["fid"] for p in ps], "o-", label=os.path.basename(run))
        a2.plot(ps, [100 * by_psi[str(p)]["cond_accuracy"] for p in ps], "o-", label=os.path.basename(run))
        if "none" in by_psi:
            a1.axhline(by_psi["none"]["fid"], ls=":", color=a1.lines[-1].get_color())
            a2.axhline(100 * by_psi["none"]["cond_accuracy"], ls=":", color=a2.lines[-1].get_color())
    a1.set(xlabel="truncation threshold ψ", ylabel="Fréchet distance (judge features; lower: closer to the data)",
           title="FD against ψ (dotted: untruncated z)")
    a2.set(xlabel="truncation threshold ψ", ylabel="conditional accuracy (%)", title="class fidelity against ψ")
    a1.legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def samples_figure(run, path, psis=(0.25, 1.0, 2.0)):
    """Class × sample grids of one run's EMA G at a few thresholds (the same z before truncation)."""
    sys.path.insert(0, ROOT)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from pygan.evaluation.sampling import generate, truncated_z
    from pygan.training import load_run
    model = load_run(run).model
    fig, axes = plt.subplots(1, len(psis), figsize=(4.2 * len(psis), 4.6))
    for ax, psi in zip(axes, psis):
        labels = np.repeat(np.arange(10), 8)                      # row k: class k
        z = truncated_z(model, len(labels), psi, np.random.default_rng(7))
        x = generate(model, len(labels), None, labels=labels, z=z)
        grid = x.reshape(10, 8, 28, 28).transpose(0, 2, 1, 3).reshape(280, 224)
        ax.imshow(grid, cmap="gray", vmin=-1, vmax=1)
        ax.set(title=f"ψ = {psi:g} (row k: class k)", xticks=[], yticks=[])
    fig.suptitle(f"{os.path.basename(run)}: EMA G, 8 samples per class, truncated z")
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--sweep", nargs="*", default=None, help="runs for the truncation sweep "
                    "(default: the shared-embedding runs of the ablation)")
    ap.add_argument("--no-train", action="store_true", help="skip training: sweep and report only")
    ap.add_argument("--report-only", action="store_true", help="only write biggan.md and the figures")
    ap.add_argument("--runs-dir", default=os.path.join(ROOT, "runs", "biggan"))
    ap.add_argument("--out", default=os.path.join(RESULTS, "biggan.json"))
    a = ap.parse_args(argv)
    data = _load(a.out)
    if not (a.no_train or a.report_only):
        for v in a.variants:
            for s in a.seeds:
                row = train_one(v, s, a.runs_dir, a.steps)
                print(json.dumps({k: row[k] for k in ("variant", "seed", "wall_s")}), row["quality"]["fid"],
                      row["quality"]["cond_accuracy"], flush=True)
                data = _load(a.out)
                data["ablation"] = [r for r in data["ablation"] if (r["variant"], r["seed"]) != (v, s)] + [row]
                _save(a.out, data)
    if not a.report_only:
        sweep = a.sweep if a.sweep is not None else [r["run"] for r in data["ablation"] if r["variant"] == "shared"]
        for run in sweep:
            by_psi = {str(p): _eval(run, p) for p in PSIS}
            by_psi["none"] = _eval(run)
            data = _load(a.out)
            data["truncation"][run] = by_psi
            _save(a.out, data)
            print(run, {p: (round(q["fid"], 2), q["cond_accuracy"]) for p, q in by_psi.items()}, flush=True)
    md = ["# BigGAN's ideas at 28×28 (real MNIST digits, 1,000 G steps, width 16)", "",
          "Written by `benchmarks/bench_biggan.py`; FD = Fréchet distance on the 28×28 judge's features "
          "(1,000 samples of the EMA G against 1,000 real images), conditional accuracy = the judge's "
          "accuracy on samples of each requested class.", "", "## Ablation", "", ablation_table(data["ablation"]),
          "", "## Truncation (FD / conditional accuracy)", "", truncation_table(data["truncation"]), ""]
    _write_text(os.path.join(RESULTS, "biggan.md"), "\n".join(md))
    if data["truncation"]:
        truncation_figure(data["truncation"], os.path.join(RESULTS, "biggan_truncation.png"))
        samples_figure(next(iter(data["truncation"])), os.path.join(RESULTS, "biggan_samples.png"))


if __name__ == "__main__":
    main()
