#!/usr/bin/env python
"""pygan's quality benchmark: Q1 ``ring-8`` and Q2 ``grid-25`` of benchmarks/WORKLOADS.md, every method × seeds.

Each (method, dataset, seed) is one ordinary ``pygan train`` run in a child process (so the
row's command reproduces it exactly), with OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = 1 so that
``--jobs`` children do not fight over the cores. Each final model is then scored on 2,500
samples in the data's original coordinates with ``pygan.evaluation.metrics.mode_metrics`` — exactly
``pygan eval RUN --json`` (evaluation generator seed 0):

* high quality (HQ) = within 3 std of the nearest mean; % HQ = 100·#HQ / 2,500;
* modes = means nearest to at least one HQ point;
* KL = KL(mode histogram of the HQ points ‖ uniform).

Runs that keep an EMA of G (``ema_decay`` > 0) are scored with the averaged G (what ``pygan
eval`` reports); the raw G's figures of the same run are stored too.

Outputs (``--out``, default benchmarks/results):

* quality.json — the config, the command line, the machine, and for every run: method, preset,
  dataset, seed, steps, the figures (and the raw G's where there is an EMA), the evaluation
  curve during training (every 1,000 steps), wall time of the child process and the trainer's
  own training time;
* quality.md — a table: mean ± std over seeds of modes, % HQ and KL per method and dataset, the
  G steps (and D steps per G step), and the commands that reproduce the row;
* quality_<dataset>.png — one panel per method (seed 0): D's output surface, real points and
  2,500 generated points.

Run from the repository root:

    python benchmarks/bench_quality.py                  # every method, both datasets, seeds 0 1 2
    python benchmarks/bench_quality.py --methods nonsaturating-ema wgan-gp --datasets ring-8 \\
        --seeds 0 --steps 2000 --jobs 2
    python benchmarks/bench_quality.py --quick          # seconds: a smoke test of the pipeline
    python benchmarks/bench_quality.py --report-only    # rebuild json/md/png from finished runs
    python benchmarks/bench_quality.py --methods lipschitz-decay-ema --datasets grid-25 --merge
                                                        # re-run one row, keep the others' figures

Finished runs are reused (a run folder whose checkpoint is at the requested step is not
trained again; one that stopped earlier is continued with ``pygan train --resume``), so an
interrupted sweep can simply be started again. Run folders are not kept in the repository
(``runs/`` is ignored): ``--merge`` takes every run whose folder is gone from the quality.json
already in ``--out`` (as scored when it was trained, provided its preset's settings, seed and
steps are unchanged), so one row can be re-run without training the whole sweep again; the
figure is then drawn from the runs on disk only, as quality_<dataset>_rerun.png.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

DATASETS = ("ring-8", "grid-25")
EVAL_SAMPLES = 2500
EVAL_SEED = 0                   # = `pygan eval RUN` (its --seed default)
RETRIES, RETRY_PAUSE_S = 3, 20.0

# PacGAN4's published figures (PacGAN paper; benchmarks/WORKLOADS.md) and the quality targets pygan holds its recipes to.
PUBLISHED = {"ring-8": (7.8, 95.9, 0.07), "grid-25": (24.8, 93.6, 0.04)}
TARGETS = {"ring-8": (8, 96.0, 0.02), "grid-25": (25, 95.0, 0.02)}


@dataclass(frozen=True)
class Method:
    key: str          # --methods name
    label: str        # table label
    preset: str       # preset name pattern, {data} = ring-8 | grid-25
    steps: int | None = None   # the sweep's G steps when fewer than the preset's (compute budget)
    # scored as the *raw* G of this other method's runs (same preset but for ema_decay, which
    # training never reads: the two runs' G are bit-identical), instead of training again
    raw_of: str | None = None


# The sweep's steps: the presets' own (20k G steps) for the recipes that the targets are about,
# fewer for the others, to fit the benchmark's budget (about 80 minutes on a shared 2-core
# machine): a WGAN / WGAN-GP / WGAN-LP G step is 5 critic steps (with a double backward for the
# gradient penalties), 3–7× a nonsaturating step. The table gives every row's steps.
METHODS = [
    Method("nonsaturating", "GAN (non-saturating)", "{data}", raw_of="nonsaturating-ema"),
    Method("nonsaturating-ema", "GAN + EMA of G", "{data}-ema"),
    Method("nonsaturating-decay", "GAN + lr schedule (the recipe, raw G)", "{data}-decay-ema",
           raw_of="nonsaturating-decay-ema"),
    Method("nonsaturating-decay-ema", "**GAN + lr schedule + EMA of G (the recipe)**", "{data}-decay-ema"),
    Method("wgan", "WGAN (clip 0.01)", "wgan-{data}", steps=10000),
    Method("wgan-gp", "WGAN-GP λ=10", "wgan-gp-{data}", steps=5000),
    Method("wgan-gp-decay-ema", "WGAN-GP λ=10, rescaled data (see λ_eff) + recipe", "wgan-gp-{data}-decay-ema"),
    Method("wgan-gp-0.1", "WGAN-GP λ=0.1", "wgan-gp-0.1-{data}", steps=5000),
    Method("wgan-gp-0.1-decay-ema", "WGAN-GP λ=0.1 + recipe", "wgan-gp-0.1-{data}-decay-ema"),
    Method("r1", "GAN + R1 (γ=10)", "r1-{data}"),
    Method("r1-decay-ema", "GAN + R1 (γ=10) + recipe", "r1-{data}-decay-ema"),
    Method("lipschitz", "WGAN-LP λ=10 (finite-difference Lipschitz)", "lipschitz-{data}", steps=5000),
    Method("lipschitz-decay-ema", "WGAN-LP λ=10, rescaled data (see λ_eff) + recipe", "lipschitz-{data}-decay-ema"),
    Method("lipschitz-one-sided-decay-ema", "WGAN-LP λ=10, one-sided + recipe", "lipschitz-one-sided-{data}-decay-ema"),
    Method("sn-hinge", "hinge + spectral norm D", "sn-hinge-{data}"),
    Method("sn-hinge-decay-ema", "hinge + spectral norm D, data ×4 + recipe", "sn-hinge-{data}-decay-ema"),
]
# "+ recipe": the GAN recipe's lr decay and EMA of G, and for the critics of bounded slope the
# data scaled up (config._PENALISED_DECAY_EMA; each preset's settings are listed below the table)
EXTRA_METHODS = []
METHOD = {m.key: m for m in METHODS + EXTRA_METHODS}

QUICK = dict(steps=40, seeds=[0], datasets=["ring-8"], methods=["nonsaturating", "nonsaturating-ema", "wgan-gp"])


# --- one run -------------------------------------------------------------------------------------

def child_env():
    env = dict(os.environ)
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = "1"
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_steps(method: Method, dataset: str, override: int | None) -> int:
    from pygan.training import presets
    if override is not None:
        return int(override)
    return int(method.steps or presets.preset(method.preset.format(data=dataset)).steps)


def train_argv(preset: str, seed: int, out: str, steps: int, quick: bool) -> list:
    argv = ["train", preset, "--seed", str(seed), "--out", out, "--steps", str(steps), "--no-progress",
            "--sample-every", "0"]
    if quick:                       # a smoke test: no intermediate checkpoints or evaluations
        argv += ["--eval-every", "0", "--checkpoint-every", "0", "--log-every", "1000000"]
    return argv


def reproduce_cmd(preset, seed, out, steps, quick) -> str:
    a = train_argv(preset, seed, out, steps, quick)
    a = [x for x in a if x not in ("--no-progress",)]
    return "pygan " + " ".join(shlex.quote(x) for x in a) + f" && pygan eval {shlex.quote(out)}"


def checkpoint_step(run_dir: str):
    from pygan.training import checkpoint as ckpt
    try:
        return ckpt.load(run_dir).step
    except ckpt.CheckpointError:
        return None


def train_one(job: dict, log) -> dict:
    """Train (or reuse / continue) one run in a child process; returns the job with wall time."""
    out, steps = job["run_dir"], job["steps"]
    done = checkpoint_step(out)
    if done is not None and done > steps:        # a longer run than asked for: start afresh
        done = None
    if done is not None and done == steps:
        job.update(wall_s=None, reused=True, rc=0)
        log(f"reuse  {job['name']} (checkpoint at step {done})")
        return job
    if done is not None:
        argv = ["train", "--resume", out, "--steps", str(steps), "--no-progress"]
    else:
        argv = train_argv(job["preset"], job["seed"], out, steps, job["quick"])
        if os.path.isdir(out):
            argv.append("--overwrite")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    log(f"start  {job['name']} ({steps} steps{', resumed at ' + str(done) if done else ''})")
    t0 = time.perf_counter()
    for attempt in range(1 + RETRIES):
        with open(out.rstrip("/") + ".log", "a", encoding="utf-8") as f:
            rc = subprocess.call([sys.executable, "-m", "pygan"] + argv, stdout=f, stderr=subprocess.STDOUT,
                                 env=child_env(), cwd=ROOT)
        if rc in (0, 1):        # done, or diverged (exit 1: a real result, not retried)
            break
        # anything else (a crash outside training, e.g. an import error): continue from the last
        # checkpoint — resume is bit-identical, so the result is the same as one clean run
        at = checkpoint_step(out)
        log(f"retry  {job['name']} (exit {rc}; checkpoint at step {at})")
        time.sleep(RETRY_PAUSE_S)
        if at is not None:
            argv = ["train", "--resume", out, "--steps", str(steps), "--no-progress"]
    wall = time.perf_counter() - t0
    job.update(wall_s=round(wall, 2), reused=False, rc=rc)
    if rc == 0:
        with open(out.rstrip("/") + ".wall.json", "w", encoding="utf-8") as f:
            json.dump({"wall_s": job["wall_s"], "steps": steps, "resumed_from": done}, f)
    log(f"{'done ' if rc == 0 else 'FAILED'} {job['name']} in {wall:.0f} s" + ("" if rc == 0 else f" (exit {rc}; "
        f"see {out.rstrip('/')}.log)"))
    return job


def score(run_dir: str, ema: bool = True) -> dict:
    """``pygan eval RUN --json``: 2,500 samples, evaluation generator seed 0, original coordinates."""
    from pygan.training import TASKS, load_run
    model, cfg, ck = load_run(run_dir, ema=ema)
    q = TASKS[cfg.kind].evaluate_model(model, cfg, n=EVAL_SAMPLES, rng=np.random.default_rng(EVAL_SEED))
    return {"step": ck.step, **q}


def curve(run_dir: str) -> list:
    """[(step, modes, % HQ, KL[, raw % HQ])] of the evaluations during training (metrics.jsonl)."""
    path = os.path.join(run_dir, "metrics.jsonl")
    out = []
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            e = r.get("eval")
            if isinstance(e, dict) and "modes" in e:
                row = [r["step"], e["modes"], round(e["hq_percent"], 2), round(e["kl"], 4)]
                if isinstance(r.get("eval_raw"), dict):
                    row.append(round(r["eval_raw"]["hq_percent"], 2))
                out.append(row)
    return out


# --- the report ----------------------------------------------------------------------------------

def _ms(values, fmt):
    a = np.asarray(values, dtype=np.float64)
    if len(a) == 0:
        return "—"
    if len(a) == 1:
        return format(a[0], fmt)
    return f"{format(a.mean(), fmt)} ± {format(a.std(ddof=0), fmt)}"


def summarise(runs: list) -> list:
    """One row per (method, dataset): mean and std (population, over seeds) of the figures."""
    rows = []
    keys = []
    for r in runs:
        k = (r["method"], r["dataset"])
        if k not in keys:
            keys.append(k)
    order = {m.key: i for i, m in enumerate(METHODS)}
    keys.sort(key=lambda k: (DATASETS.index(k[1]) if k[1] in DATASETS else 9, order.get(k[0], 99)))
    for method, dataset in keys:
        rs = [r for r in runs if r["method"] == method and r["dataset"] == dataset and r.get("quality")]
        if not rs:
            continue
        q = [r["quality"] for r in rs]
        row = {"method": method, "label": METHOD[method].label if method in METHOD else method,
               "dataset": dataset, "seeds": [r["seed"] for r in rs],
               "steps": sorted({r["steps"] for r in rs}), "n_critic": rs[0]["n_critic"],
               "modes_mean": float(np.mean([x["modes"] for x in q])),
               "modes_std": float(np.std([x["modes"] for x in q])),
               "total_modes": q[0]["total_modes"],
               "hq_mean": float(np.mean([x["hq_percent"] for x in q])),
               "hq_std": float(np.std([x["hq_percent"] for x in q])),
               "kl_mean": float(np.mean([x["kl"] for x in q])),
               "kl_std": float(np.std([x["kl"] for x in q])),
               "all_modes_every_seed": all(x["modes"] == x["total_modes"] for x in q),
               "preset": rs[0]["preset"], "commands": [r["command"] for r in rs],
               "wall_s": [r.get("wall_s") for r in rs]}
        if all("quality_raw" in r for r in rs):
            row["raw_hq_mean"] = float(np.mean([r["quality_raw"]["hq_percent"] for r in rs]))
            row["raw_kl_mean"] = float(np.mean([r["quality_raw"]["kl"] for r in rs]))
        t = TARGETS.get(dataset)
        if t:
            row["meets_target"] = (row["modes_mean"] >= t[0] and row["hq_mean"] >= t[1] and row["kl_mean"] <= t[2])
        rows.append(row)
    return rows


def markdown(rows: list, meta: dict, runs=(), holdout=()) -> str:
    lines = ["# Quality on Q1 `ring-8` and Q2 `grid-25` (benchmarks/WORKLOADS.md)", "",
             f"Generated by `{meta['command']}` on {meta['date']} ({meta['machine']}"
             + (f", pygan at {meta['git']}" if meta.get("git") else "") + ").", "",
             "Figures on 2,500 samples of the final model in the original coordinates "
             "(`pygan eval RUN`): **modes** = means nearest to at least one high-quality point, "
             "**% HQ** = share of samples within 3 std of the nearest mean, **KL** = KL(mode histogram "
             "of the HQ points ‖ uniform). Mean ± std over the seeds (population std). "
             "Steps = generator steps (× D steps per G step). Runs with an EMA of G are scored with "
             "the averaged G; the raw G's % HQ of the same runs is in brackets.", ""]
    for ds in DATASETS:
        rs = [r for r in rows if r["dataset"] == ds]
        if not rs:
            continue
        pub = PUBLISHED[ds]
        tgt = TARGETS[ds]
        lines += [f"## {ds}", "",
                  "| method | preset | modes | % HQ | KL | steps | seeds | all modes, every seed | "
                  "target met (modes, HQ, KL) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in rs:
            steps = ", ".join(f"{s // 1000}k" if s % 1000 == 0 else str(s) for s in r["steps"])
            if r["n_critic"] != 1:
                steps += f" (×{r['n_critic']} D)"
            hq = _ms_from(r, "hq", ".1f")
            if "raw_hq_mean" in r:
                hq += f" [raw {r['raw_hq_mean']:.1f}]"
            lines.append(f"| {r['label']} | `{r['preset']}` | {_ms_from(r, 'modes', '.1f')} / {r['total_modes']} | {hq} | "
                         f"{_ms_from(r, 'kl', '.3f')} | {steps} | {len(r['seeds'])} | "
                         f"{'yes' if r['all_modes_every_seed'] else 'no'} | "
                         f"{'yes' if r.get('meets_target') else 'no'} |")
        lines += [f"| *PacGAN4 (published)* | | {pub[0]} | {pub[1]} | {pub[2]} | | | | |",
                  f"| *target* | | {tgt[0]} | ≥ {tgt[1]:g} | ≤ {tgt[2]:g} | | | | |", ""]
    if holdout:
        lines += ["## Held-out seeds", "",
                  "The recipes were chosen by pilot runs on seeds 0–2; the same recipes on seeds they were "
                  "not chosen on:", "",
                  "| method | data | seeds | modes | % HQ | KL | steps | target met |", "|---|---|---|---|---|---|---|---|"]
        for r in holdout:
            lines.append(f"| {r['label']} | {r['dataset']} | {', '.join(map(str, r['seeds']))} | "
                         f"{_ms_from(r, 'modes', '.1f')} / {r['total_modes']} | {_ms_from(r, 'hq', '.1f')} | "
                         f"{_ms_from(r, 'kl', '.3f')} | {', '.join(str(x) for x in r['steps'])} | "
                         f"{'yes' if r.get('meets_target') else 'no'} |")
        lines.append("")
    notes = sorted({(r["name"] if "name" in r else r["preset"] + f" seed {r['seed']}", r["note"])
                    for r in runs if r.get("note")})
    short = [m for m in METHODS if m.steps and m.key in meta.get("methods", {})]
    missing = list(dict.fromkeys(os.path.basename(r["run_dir"]) for r in runs if r.get("error")))
    merged = sorted({r["merged_from"] for r in runs if r.get("merged_from")})
    if merged:
        fresh = sorted({f"`{r['preset']}`" for r in runs if not r.get("merged_from") and not r.get("error")})
        notes.append(("Merged report", f"the runs of {', '.join(fresh) or 'no preset'} were scored now; "
                      f"every other run is taken from the report of {', '.join(merged)} (`--merge`: its "
                      f"folder is gone, its preset's settings are unchanged), and its figure panel is in "
                      f"that report's quality_<dataset>.png; this invocation's runs are drawn in "
                      f"quality_<dataset>_rerun.png"))
    if short or notes or missing:
        lines += ["## Notes", ""]
    if missing:
        lines.append("* Not finished when this table was made (left out of it): " + ", ".join(missing) + ".")
    if short:
        lines.append("* Steps: to fit the sweep into its compute budget (about 80 minutes on a shared 2-core "
                     "machine), these methods ran fewer G steps than their presets: "
                     + "; ".join(f"{m.label} {m.steps} (preset {_preset_steps(m)})" for m in short) + ".")
    for name, note in notes:
        lines.append(f"* {name}: {note}")
    if short or notes or missing:
        lines.append("")
    from pygan.training import presets as registry
    names = []
    for r in rows:
        if r["preset"] not in names:
            names.append(r["preset"])
    scaled = [(p, registry.preset(p)) for p in names]
    scaled = [(p, c) for p, c in scaled if c.data_scale != 1 and (c.penalty != "none" or
                                                                  c.model_args.get("spectral_norm"))]
    if scaled:
        lines += ["## The data scale is part of a constrained critic's setting", "",
                  "Training on data / S (samples scored in the original coordinates) is neutral for an "
                  "unconstrained GAN but not for a constraint on ∇ₓD: with D(x) = S·D̃(x/S), the WGAN-GP "
                  "and Lipschitz objectives on the scaled data equal (1/S)·[W(D) + λS·penalty(D)] — weight "
                  "λ·S in the original coordinates (Adam ignores the 1/S) —, R1's γ becomes γ·S², and spectral "
                  "norm bounds D's slope by 1/S per original unit. In the original coordinates:", ""]
        for p, c in scaled:
            S = c.data_scale
            if c.penalty in ("gp", "lipschitz", "lipschitz-one-sided"):
                eff = f"λ = {c.penalty_weight:g} × {S:g} = {c.penalty_weight * S:g}"
            elif c.penalty == "r1":
                eff = f"γ = {c.penalty_weight:g} × {S:g}² = {c.penalty_weight * S * S:g}"
            else:
                eff = f"slope bound 1/{S:g} = {1 / S:g}"
            lines.append(f"* `{p}` (S = {S:g}): {eff}")
        lines.append("")
    lines += ["## Presets", "", "`pygan presets` (the sweep's step counts are in the tables):", ""]
    lines += [f"* `{p}`: {registry.preset(p).describe().rsplit('; batch', 1)[0]}" for p in names]
    lines.append("")
    lines += ["## Reproduce a row", "",
              "Each seed's run is one `pygan train` command followed by `pygan eval` on its folder "
              "(`--sample-every 0` only skips the intermediate pictures; it does not change training):", ""]
    for r in rows:
        lines.append(f"* **{r['label'].replace('**', '')}, {r['dataset']}**")
        lines.append("")
        lines.append("  ```")
        for c in r["commands"]:
            lines.append(f"  {c}")
        lines.append("  ```")
    lines.append("")
    return "\n".join(lines)


def _preset_steps(m):
    from pygan.training import presets
    return presets.preset(m.preset.format(data="ring-8")).steps


def _ms_from(r, key, fmt):
    if len(r["seeds"]) == 1:
        return format(r[f"{key}_mean"], fmt)
    return f"{format(r[f'{key}_mean'], fmt)} ± {format(r[f'{key}_std'], fmt)}"


def figure(runs: list, dataset: str, path: str) -> str | None:
    """One panel per method (its lowest seed): D's surface, real points, 2,500 generated points."""
    from pygan.training import Trainer
    rs = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        if r["dataset"] == dataset and r.get("quality") and r["method"] not in rs:
            rs[r["method"]] = r
    order = [m.key for m in METHODS if m.key in rs] + [k for k in rs if k not in METHOD]
    if not order:
        return None
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    n = len(order)
    cols = min(4, n)
    rows_ = math.ceil(n / cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.2 * cols, 4.2 * rows_), dpi=90, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    for ax, key in zip(axes.ravel(), order):
        r = rs[key]
        t = Trainer.resume(r["run_dir"], progress=False, stream=open(os.devnull, "w"))
        with t.use_ema(r.get("ema", True)):
            x, surface, _, real = t._field(EVAL_SAMPLES, 0)
        xs, ys, v = surface
        ax.contourf(xs, ys, v, levels=30, cmap="RdBu_r", alpha=0.7)
        ax.scatter(real[:, 0], real[:, 1], s=2, c="black", alpha=0.4, linewidths=0)
        ok = np.all(np.isfinite(x), axis=1)
        ax.scatter(x[ok, 0], x[ok, 1], s=2, c="tab:orange", alpha=0.5, linewidths=0)
        means = t.data.dist.means
        ax.scatter(means[:, 0], means[:, 1], marker="+", s=30, c="black", linewidths=0.7)
        ax.set_xlim(xs[0], xs[-1])
        ax.set_ylim(ys[0], ys[-1])
        ax.set_aspect("equal")
        q = r["quality"]
        label = (METHOD[key].label if key in METHOD else key).replace("**", "")
        ax.set_title(f"{label}\n{q['modes']}/{q['total_modes']} modes, {q['hq_percent']:.1f}% HQ, "
                     f"KL {q['kl']:.3f} (seed {r['seed']}, {r['steps']} steps)", fontsize=8)
        ax.tick_params(labelsize=6)
    title = textwrap.fill(f"{dataset}: generated (orange) and real (black) points over D's output (red high, "
                          f"blue low; σ(logit) for sigmoid losses, the raw score otherwise)", width=int(13 * 4.2 * cols))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.2 + 0.17 * title.count("\n")) / fig.get_figheight()))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# --- main ----------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Q1 ring-8 / Q2 grid-25 quality sweep (benchmarks/WORKLOADS.md).")
    p.add_argument("--methods", nargs="+", choices=list(METHOD), default=None,
                   help="methods (default: all)")
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=None, help="default: both")
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0 1 2")
    p.add_argument("--steps", type=int, default=None,
                   help="G steps of every run (default: each method's sweep steps, see METHODS)")
    p.add_argument("--holdout-seeds", nargs="+", type=int, default=None,
                   help="extra seeds for --holdout-methods, reported in a table of their own")
    p.add_argument("--holdout-methods", nargs="+", choices=list(METHOD), default=None,
                   help="methods run on the held-out seeds (default: the lr-decay recipes in --methods)")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2; each on one thread)")
    p.add_argument("--quick", action="store_true",
                   help=f"a smoke test: {QUICK['steps']} steps, methods {' '.join(QUICK['methods'])}, "
                        f"ring-8, seed 0 (unless given)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"),
                   help="folder for quality.json / .md / _<dataset>.png (default benchmarks/results)")
    p.add_argument("--runs-dir", default=None,
                   help="where the run folders go (default runs/quality, or runs/quality-quick with --quick)")
    p.add_argument("--order", choices=("cost", "seed"), default="cost",
                   help="training order: longest runs first (default), or seed by seed (every method's "
                        "first seed first: a sweep cut short still has one run of each)")
    p.add_argument("--report-only", action="store_true", help="no training: score the runs that exist")
    p.add_argument("--no-figure", action="store_true", help="skip the PNG figures")
    p.add_argument("--merge", action="store_true",
                   help="runs whose folders are gone: take them from the quality.json in --out (same "
                        "preset settings, seed and steps), and report every method, not only --methods")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from pygan.training import config, presets
    quick = args.quick
    methods = args.methods or (QUICK["methods"] if quick else [m.key for m in METHODS])
    datasets = args.datasets or (QUICK["datasets"] if quick else list(DATASETS))
    seeds = args.seeds if args.seeds is not None else (QUICK["seeds"] if quick else [0, 1, 2])
    holdout = [h for h in (args.holdout_seeds or []) if h not in seeds]
    holdout_methods = set(args.holdout_methods or [m for m in methods if "decay" in m])
    steps_override = args.steps if args.steps is not None else (QUICK["steps"] if quick else None)
    runs_dir = os.path.abspath(args.runs_dir) if args.runs_dir else \
        os.path.join(ROOT, "runs", "quality-quick" if quick else "quality")
    lock = threading.Lock()

    def log(msg):
        with lock:
            print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", flush=True)

    jobs, trains = [], {}
    for ds in datasets:
        for key in methods:
            m = METHOD[key]
            src = METHOD[m.raw_of] if m.raw_of else m
            preset, run_preset = m.preset.format(data=ds), src.preset.format(data=ds)
            cfg = presets.preset(run_preset)
            steps = run_steps(src, ds, steps_override)
            for seed in seeds + [h for h in holdout if key in holdout_methods]:
                out = os.path.join(runs_dir, f"{run_preset}-s{seed}")
                shown = os.path.relpath(out, ROOT) if out.startswith(ROOT + os.sep) else out
                if out not in trains:
                    trains[out] = {"name": f"{run_preset} seed {seed}", "preset": run_preset, "seed": seed,
                                   "steps": steps, "run_dir": out, "quick": quick, "order": len(trains),
                                   "cost": steps * (1 + cfg.n_critic * (4 if cfg.penalty in ("gp", "lipschitz") else 1))}
                if m.raw_of:
                    own = os.path.join(os.path.dirname(shown), f"{preset}-s{seed}")
                    cmd = (reproduce_cmd(preset, seed, own, steps, quick) + f"   # G is bit-identical to the "
                           f"raw G of {shown} (training never reads the EMA); the sweep scored that one")
                else:
                    cmd = reproduce_cmd(preset, seed, shown, steps, quick)
                jobs.append({"name": f"{preset} seed {seed}", "method": key, "dataset": ds, "seed": seed,
                             "holdout": seed not in seeds,
                             "preset": preset, "steps": steps, "n_critic": cfg.n_critic, "run_dir": out,
                             "ema": not m.raw_of, "command": cmd})
    t_start = time.perf_counter()
    if not args.report_only:
        log(f"{len(jobs)} runs, {args.jobs} at a time, run folders under {runs_dir}")
        with cf.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            if args.order == "cost":
                order = sorted(trains.values(), key=lambda j: -j["cost"])
            else:          # seed by seed: every method's first seed before any second seed
                order = sorted(trains.values(), key=lambda j: (j["seed"], j["order"]))
            done = {j["run_dir"]: j for j in ex.map(lambda j: train_one(j, log), order)}
    else:
        done = {}
    wall_total = time.perf_counter() - t_start

    runs = []
    for j in jobs:
        r = {k: v for k, v in j.items() if k not in ("name",)}
        t = done.get(j["run_dir"], {})
        r["wall_s"] = t.get("wall_s")
        if r["wall_s"] is None and os.path.exists(j["run_dir"].rstrip("/") + ".wall.json"):
            with open(j["run_dir"].rstrip("/") + ".wall.json", encoding="utf-8") as f:
                w = json.load(f)                              # measured when the run was trained
            r["wall_s"] = w.get("wall_s")
            if w.get("note"):
                r["note"] = w["note"]
        r["reused"] = t.get("reused", True)
        step = checkpoint_step(j["run_dir"])
        if step is None or step != j["steps"]:
            r["error"] = f"no finished run in {j['run_dir']} (checkpoint step {step})"
            log(f"missing {j['name']}: {r['error']}")
            runs.append(r)
            continue
        r["quality"] = score(j["run_dir"], ema=j["ema"])
        if j["ema"] and config.from_dict(_stored_config(j["run_dir"])).ema_decay:
            r["quality_raw"] = score(j["run_dir"], ema=False)
        r["train_elapsed_s"] = round(float(_stored_state(j["run_dir"]).get("elapsed", float("nan"))), 2)
        r["curve"] = curve(j["run_dir"])
        runs.append(r)
        q = r["quality"]
        log(f"{j['name']}: modes {q['modes']}/{q['total_modes']}  HQ {q['hq_percent']:.1f}%  KL {q['kl']:.4f}")

    if args.merge:
        runs = merge_previous(runs, os.path.join(args.out, "quality.json"), log)
    rows = summarise([r for r in runs if not r.get("holdout")])
    meta_holdout = summarise([r for r in runs if r.get("holdout")])
    meta = {"command": "python benchmarks/bench_quality.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                       f"numpy {np.__version__}",
            "git": _git_describe(), "jobs": args.jobs, "quick": quick, "eval_samples": EVAL_SAMPLES, "eval_seed": EVAL_SEED,
            "wall_s_this_invocation": round(wall_total, 1),
            "methods": {m.key: {"label": m.label, "preset": m.preset, "sweep_steps": m.steps} for m in METHODS
                        if m.key in {r["method"] for r in runs}},
            "presets": {r["preset"]: config.to_dict(presets.preset(r["preset"])) for r in runs},
            "published_pacgan4": PUBLISHED, "targets": TARGETS}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "quality.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "summary": rows, "summary_holdout_seeds": meta_holdout, "runs": runs}, f, indent=1)
    with open(os.path.join(args.out, "quality.md"), "w", encoding="utf-8") as f:
        f.write(markdown(rows, meta, runs, meta_holdout))
    if not args.no_figure:
        for ds in datasets:
            on_disk = [r for r in runs if not r.get("merged_from")]
            name = f"quality_{ds}_rerun.png" if len(on_disk) < len(runs) else f"quality_{ds}.png"
            p = figure(on_disk, ds, os.path.join(args.out, name))
            if p:
                log(f"wrote {p}")
    log(f"wrote {os.path.join(args.out, 'quality.json')} and quality.md ({wall_total:.0f} s of training)")
    print(markdown(rows, meta, runs).split("## Reproduce")[0])
    failed = [r for r in runs if "error" in r]
    return 1 if failed else 0


def merge_previous(runs: list, path: str, log) -> list:
    """``runs`` with each one that has no finished folder (``error``) replaced by the same run of
    the report at ``path`` — same method, dataset, seed, steps and preset settings — and every
    other run of that report added; a run whose settings changed stays missing."""
    from pygan.training import config, presets
    if not os.path.exists(path):
        log(f"--merge: no {path}; nothing to merge")
        return runs
    with open(path, encoding="utf-8") as f:
        prev = json.load(f)
    stamp = f"{prev['meta'].get('date')} at {prev['meta'].get('git')}"

    def key(r):
        return r["method"], r["dataset"], r["seed"], r.get("holdout", False)

    def same_settings(old):
        stored = prev["meta"].get("presets", {}).get(old["preset"])
        return stored == config.to_dict(presets.preset(old["preset"]))

    old_by_key = {key(r): r for r in prev.get("runs", []) if r.get("quality")}
    out, seen = [], set()
    for r in runs:
        seen.add(key(r))
        old = old_by_key.get(key(r))
        if "error" in r and old and old["steps"] == r["steps"] and same_settings(old):
            r = {**old, "merged_from": old.get("merged_from", stamp)}   # the report that scored it
        out.append(r)
    for k, old in old_by_key.items():
        if k in seen:
            continue
        if old["method"] in METHOD and same_settings(old):
            out.append({**old, "merged_from": old.get("merged_from", stamp)})
        else:
            log(f"--merge: left out {old['preset']} seed {old['seed']} (its preset's settings changed)")
    n = sum(1 for r in out if r.get("merged_from"))
    log(f"--merge: {n} runs taken from {path} ({stamp})")
    return out


def _git_describe():
    """The commit the report was made at (+ "-dirty" for uncommitted changes), or None."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("-dirty" if dirty else "")) or None


def _stored_config(run_dir):
    from pygan.training import checkpoint as ckpt
    return ckpt.load(run_dir).config


def _stored_state(run_dir):
    from pygan.training import checkpoint as ckpt
    return ckpt.load(run_dir).state


if __name__ == "__main__":
    sys.exit(main())
