"""The pix2pix ablation (Isola et al. 2017, Table 1 and Fig. 4) on the paired digits: L1 alone, cGAN
alone, L1 + cGAN, on the held-out pairs of each task.

For each task (edges → digit, lower half → whole digit) and each objective, trains the preset
(``pix2pix-<task>-l1``, ``pix2pix-<task>-cgan``, ``pix2pix-<task>``) with ``pygan train`` in a fresh
process (one BLAS thread each, ``--jobs`` at a time), scores it with ``pygan eval RUN --json`` on
the 500 held-out pairs — per-pixel L1, the judge's Fréchet distance of the outputs against the real
digits (beside the real-vs-real floor) and the judge's accuracy on the outputs against the target's
label — and writes ``benchmarks/results/pix2pix.json``, ``pix2pix.md`` (the table, with the command
behind each row) and ``pix2pix_<task>.png`` (rows input | L1 | cGAN | L1 + cGAN | target, one held-out
pair of each digit). A row "target" scores the held-out targets themselves: the ceiling.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_pix2pix.py              # both tasks, seed 0
    python benchmarks/bench_pix2pix.py --tasks lower-half --seeds 0 1
    python benchmarks/bench_pix2pix.py --quick                             # a smoke run (few steps)
    python benchmarks/bench_pix2pix.py --from-json benchmarks/results/pix2pix.json   # rewrite the .md only
    python benchmarks/bench_pix2pix.py --from-json benchmarks/results/pix2pix.json --reeval   # score the runs again
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TASKS = ["edges", "lower-half"]
VARIANTS = [("L1", "-l1"), ("cGAN", "-cgan"), ("L1 + cGAN", "")]


def _env():
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_one(preset, seed, runs_dir, steps=None):
    out = os.path.join(runs_dir, f"{preset}-s{seed}")
    cmd = ["nice", "-n", "10", sys.executable, "-m", "pygan", "train", preset, "--seed", str(seed), "--out", out,
           "--no-progress", "--overwrite"]
    if steps:
        cmd += ["--steps", str(steps)]
    t0 = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, env=_env())
    wall = time.time() - t0
    ev = subprocess.run([sys.executable, "-m", "pygan", "eval", out, "--json"], cwd=ROOT, check=True,
                        capture_output=True, text=True, env=_env())
    command = f"OPENBLAS_NUM_THREADS=1 pygan train {preset} --seed {seed}" + (f" --steps {steps}" if steps else "")
    return {"preset": preset, "seed": seed, "run": out, "wall_s": wall, "quality": json.loads(ev.stdout),
            "command": command, "eval_command": f"pygan eval {os.path.relpath(out, ROOT)}"}


def target_row(task):
    """The judge's figures of the held-out targets themselves (FD against the real training digits)."""
    import numpy as np

    from pygan.evaluation import judge
    from pygan.training import presets
    from pygan.training.tasks.pix2pix import heldout_pairs
    cfg = presets.preset(f"pix2pix-{task}")
    _, y, labels = heldout_pairs(cfg)
    q = judge.judge_images(y, labels, np.random.default_rng((cfg.seed, 3)), data=cfg.data,
                           data_folder=cfg.data_folder or None)
    return {"l1": 0.0, "fid": q["fid"], "real_vs_real_fid": q["real_vs_real_fid"], "accuracy": q["accuracy"],
            "sharpness": 1.0, "grey_fraction": float(np.mean(np.abs(y) < 0.5)), "n": len(y)}


def figure(task, runs, path):
    """rows input | L1 | cGAN | L1 + cGAN | target: one held-out pair of each digit."""
    from pygan.plots import pix2pix as plots
    from pygan.training import load_run
    from pygan.training.tasks.pix2pix import figure_rows, heldout_pairs, translate
    cols, names = None, ["input"]
    for label, run in runs:
        model, cfg, _ = load_run(run)
        x, y, labels = heldout_pairs(cfg)
        idx = figure_rows(labels, per_class=1, classes=range(10))
        if cols is None:
            cols = [x[idx]]
        cols.append(translate(model, x[idx]))
        names.append(label)
    cols.append(y[idx])
    names.append("target")
    plots.translation_rows(cols, names, path, title=f"pix2pix ablation, {task} (held-out pairs)", blocks=2)


def table(rows):
    lines = ["| task | objective | seed | L1 (per pixel) ↓ | FD (judge features) ↓ | real-vs-real floor | "
             "judge accuracy vs target's label ↑ | train time | command |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        q = r["quality"]
        lines.append(f"| {r['task']} | {r['objective']} | {r.get('seed', '—')} | {q['l1']:.4f} | {q['fid']:.2f} | "
                     f"{q['real_vs_real_fid']:.2f} | {100 * q['accuracy']:.1f}% | "
                     f"{r['wall_s']:.0f} s | {'`' + r['command'] + '`' if r.get('command') else '—'} |"
                     if "wall_s" in r else
                     f"| {r['task']} | {r['objective']} | — | {q['l1']:.4f} | {q['fid']:.2f} | "
                     f"{q['real_vs_real_fid']:.2f} | {100 * q['accuracy']:.1f}% | — | — |")
    return "\n".join(lines)


def summary_table(rows):
    """mean ± std over the seeds of each (task, objective)."""
    import numpy as np
    lines = ["| task | objective | seeds | L1 (per pixel) ↓ | FD (judge features) ↓ | judge accuracy vs target's label ↑ "
             "| sharpness (real = 1) | grey pixels |",
             "|---|---|---|---|---|---|---|---|"]
    groups = {}
    for r in rows:
        groups.setdefault((r["task"], r["objective"]), []).append(r["quality"])
    for (task, objective), qs in groups.items():
        def ms(key, scale=1.0, fmt=".4f"):
            v = np.array([q[key] for q in qs], dtype=np.float64) * scale
            return f"{v.mean():{fmt}}" + (f" ± {v.std():{fmt}}" if len(v) > 1 else "")
        lines.append(f"| {task} | {objective} | {len(qs) if 'target' not in objective else '—'} | {ms('l1')} | "
                     f"{ms('fid', fmt='.2f')} | {ms('accuracy', 100, '.1f')}% | "
                     f"{ms('sharpness', fmt='.3f') if 'sharpness' in qs[0] else '—'} | "
                     f"{ms('grey_fraction', 100, '.1f') + '%' if 'grey_fraction' in qs[0] else '—'} |")
    return "\n".join(lines)


def write_markdown(rows, figures, path, command):
    from pygan.files import atomic_write
    floor = rows[0]["quality"]["real_vs_real_fid"] if rows else float("nan")
    md = (f"# pix2pix ablation on the paired digits\n\nReproduce: `{command}` (then `pygan eval RUN` "
          f"prints a row's figures). 500 held-out pairs per task; FD against the real training digits, "
          f"real-vs-real floor {floor:.2f} at this size.\n\n## mean ± std over the seeds\n\n"
          f"{summary_table(rows)}\n\n## every run\n\n{table(rows)}\n\n"
          + "".join(f"![{t}]({os.path.basename(p)})\n\n" for t, p in figures.items()))
    atomic_write(path, lambda f: f.write(md.encode()))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=None, help="override every preset's steps")
    ap.add_argument("--quick", action="store_true", help="40 steps each: a smoke run, not a result")
    ap.add_argument("--jobs", type=int, default=2, help="trainings at a time (each on one BLAS thread)")
    ap.add_argument("--runs-dir", default=os.path.join(ROOT, "runs", "pix2pix"))
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "pix2pix.json"))
    ap.add_argument("--from-json", metavar="FILE", help="no training: rewrite FILE's .md from its rows")
    ap.add_argument("--reeval", action="store_true", help="with --from-json: score the kept runs again first")
    args = ap.parse_args(argv)
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as f:
            saved = json.load(f)
        if args.reeval:                      # the runs' folders are kept: score them again, no training
            for r in saved["rows"]:
                if "run" in r:
                    ev = subprocess.run([sys.executable, "-m", "pygan", "eval", r["run"], "--json"], cwd=ROOT,
                                        check=True, capture_output=True, text=True, env=_env())
                    r["quality"] = json.loads(ev.stdout)
                else:
                    r["quality"] = target_row(r["task"])
            from pygan.files import atomic_write
            body = json.dumps(saved, indent=1).encode()
            atomic_write(args.from_json, lambda f: f.write(body))
        write_markdown(saved["rows"], saved["figures"], os.path.splitext(args.from_json)[0] + ".md", saved["command"])
        print(summary_table(saved["rows"]))
        return
    steps = 40 if args.quick else args.steps
    jobs = [(task, label, f"pix2pix-{task}{suffix}", seed) for task in args.tasks for seed in args.seeds
            for label, suffix in VARIANTS]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_one, preset, seed, args.runs_dir, steps) for _, _, preset, seed in jobs]
        results = []
        for (task, label, preset, seed), fut in zip(jobs, futures):
            r = fut.result()
            r.update(task=task, objective=label)
            q = r["quality"]
            print(f"{preset} seed {seed}: L1 {q['l1']:.4f}  FD {q['fid']:.2f} (floor {q['real_vs_real_fid']:.2f})  "
                  f"accuracy {100 * q['accuracy']:.1f}%  [{r['wall_s']:.0f} s]", flush=True)
            results.append(r)
    rows = []
    folder = os.path.dirname(os.path.abspath(args.out))
    figures = {}
    for task in args.tasks:
        rows += [r for r in results if r["task"] == task]
        rows.append({"task": task, "objective": "target (the held-out digits)", "quality": target_row(task)})
        seed = args.seeds[0]
        runs = [(label, os.path.join(args.runs_dir, f"pix2pix-{task}{suffix}-s{seed}")) for label, suffix in VARIANTS]
        fig = os.path.join(folder, f"pix2pix_{task}.png")
        figure(task, runs, fig)
        figures[task] = os.path.relpath(fig, ROOT)
    from pygan.files import atomic_write
    body = json.dumps({"rows": rows, "figures": figures, "quick": bool(args.quick),
                       "command": "OPENBLAS_NUM_THREADS=1 python benchmarks/bench_pix2pix.py "
                                  + " ".join(sys.argv[1:] if argv is None else argv)}, indent=1).encode()
    atomic_write(args.out, lambda f: f.write(body))
    write_markdown(rows, figures, os.path.splitext(args.out)[0] + ".md", json.loads(body)["command"])
    print(summary_table(rows))


if __name__ == "__main__":
    main()
