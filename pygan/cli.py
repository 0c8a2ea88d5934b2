"""The ``pygan`` command: ``train``, ``sample``, ``eval``, ``presets``, ``gradcheck``, ``info``.

    pygan train                          the default experiment (dcgan-digits, a few minutes on a CPU)
    pygan train ring-8 --steps 5000      a preset with flags for the common fields
    pygan train my.toml --set optim_d.lr=1e-4
    pygan train --resume runs/ring-8     continue a run exactly where its last checkpoint left off
    pygan sample runs/ring-8 --n 2500 --out points.npy
    pygan sample runs/pix2pix-edges --input edges.png   translate the user's own inputs
    pygan eval runs/ring-8
    pygan presets                        every preset with a one-line description
"""
from __future__ import annotations

import argparse
import json
import os
import sys

_EXIT_ERROR = 2
_EXIT_DIVERGED = 1


def _cmd_gradcheck(args) -> int:
    from .gradcheck import suite

    n_ok = n_fail = 0
    for report in suite.run(sections=tuple(args.sections), seed=args.seed):
        if report.ok:
            n_ok += 1
        else:
            n_fail += 1
        if args.verbose or not report.ok:
            print(report)
            print()
        else:
            print(f"ok    {report.title:<58} {report.summary()}")
    print(f"\n{n_ok} passed, {n_fail} failed")
    return 1 if n_fail else 0


def _cmd_info(args) -> int:
    import numpy as np

    from . import __version__, available_backends, get_backend

    print(f"pygan {__version__}, numpy {np.__version__}, backend in use: {get_backend().name}")
    for name, reason in available_backends().items():
        print(f"  {name:<9} {'available' if reason is None else 'unavailable: ' + reason}")
    return 0


# --- train -------------------------------------------------------------------------------------

# flag -> (config key, type); None as the value means "not given"
_TRAIN_FLAGS = [
    ("--model", "model", str, "model name (mlp, dcgan-8, cgan-8, dcgan-28, cgan-28; vae-8, cvae-8, ae-8, …; pix2pix-28)"),
    ("--data", "data", str, "ring-8, grid-25, swiss-roll, mixture-1d, digits, mnist, fashion"),
    ("--data-folder", "data_folder", str, "folder with the MNIST / Fashion-MNIST IDX files"),
    ("--loss", "loss", str, "minimax, nonsaturating, wasserstein, least_squares, hinge"),
    ("--penalty", "penalty", str, "none, gp, r1, lipschitz, lipschitz-one-sided"),
    ("--penalty-weight", "penalty_weight", float, "λ of gp / lipschitz, γ of r1"),
    ("--clip", "clip", float, "WGAN weight clipping c (0 = none)"),
    ("--n-critic", "n_critic", int, "D steps per G step"),
    ("--beta", "beta", float, "KL weight β of a VAE"),
    ("--steps", "steps", int, "number of steps (with --resume: the new total)"),
    ("--batch", "batch_size", int, "batch size"),
    ("--lr", "optim.lr", float, "learning rate (a GAN: of both optimizers)"),
    ("--lr-g", "optim_g.lr", float, "G's learning rate"),
    ("--lr-d", "optim_d.lr", float, "D's learning rate"),
    ("--seed", "seed", int, "seed of initialisation and training"),
    ("--eval-every", "eval_every", int, "quality metrics every N steps (0 = at the end)"),
    ("--sample-every", "sample_every", int, "samples and plots every N steps (0 = at the end)"),
    ("--checkpoint-every", "checkpoint_every", int, "checkpoint every N steps (0 = at the end)"),
    ("--log-every", "log_every", int, "a log line (and gradient norms) every N steps"),
    ("--backend", "backend", str, "array backend (numpy, cupy, cuda, cuda-emu)"),
]

#: what a family does not have, for the message when a flag of another family is given
_KIND_NOTES = {"vae": "one network, one optimizer, no adversarial loss",
               "gan": "a generator and a discriminator, each with its own optimizer",
               "pix2pix": "an image-to-image U-Net G and a PatchGAN D: no latent, no penalty"}


def _dest(flag):
    return flag.lstrip("-").replace("-", "_")


def _resolve_config(args):
    from .training import config, presets

    what = args.what
    if args.config:
        if what:
            raise config.ConfigError(f"give either a preset/config file ({what!r}) or --config, not both")
        what = args.config
    if what is None:
        cfg = presets.preset(presets.DEFAULT_PRESET)
    elif what.endswith(".toml") or os.path.exists(what):
        cfg = config.load(what)
    else:
        cfg = presets.preset(what)
    own = config.fields_of(cfg.kind)
    overrides = {}
    for flag, key, _, _ in _TRAIN_FLAGS:
        v = getattr(args, _dest(flag))
        if v is None:
            continue
        head = key.partition(".")[0]
        if head not in own and not (head == "optim" and cfg.kind == "gan"):
            raise config.ConfigError(f"{flag} does not apply to a {cfg.kind.upper()} ({cfg.name}: "
                                     f"{_KIND_NOTES[cfg.kind]})")
        overrides[key] = v
    for item in args.set or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise config.ConfigError(f"--set expects KEY=VALUE (e.g. optim_d.lr=1e-4), got {item!r}")
        overrides[key.strip()] = value
    return config.validate(config.replace(cfg, overrides))


def _report_divergence(e):
    print(f"pygan train: training diverged at {e}", file=sys.stderr)
    if e.checkpoint:
        path, step = e.checkpoint
        print(f"the last good checkpoint is {path} (step {step}); it was kept as it was. "
              f"Lower the learning rate, or add a penalty / clipping, and start again.", file=sys.stderr)
    else:
        print("no checkpoint had been written yet.", file=sys.stderr)


def _cmd_train(args) -> int:
    from .training import ConfigError, Trainer, TrainingDiverged, config
    from .training.loop import RESUMABLE

    if args.list:
        return _cmd_presets(args)
    if args.resume:
        free = ["--" + k.replace("_", "-") for k in RESUMABLE]
        given = [flag for flag, _, _, _ in _TRAIN_FLAGS if flag not in free and getattr(args, _dest(flag)) is not None]
        given += ["--set"] if args.set else []
        given += [args.what] if args.what else []
        given += ["--config"] if args.config else []
        given += ["--out"] if args.out else []
        if given:
            raise ConfigError(f"--resume continues a run with its own configuration; "
                              f"only --steps and the intervals may change (got {', '.join(given)})")
        intervals = {_dest(f): getattr(args, _dest(f)) for f in free[1:] if getattr(args, _dest(f)) is not None}
        build = lambda **kw: Trainer.resume(args.resume, steps=args.steps, intervals=intervals,  # noqa: E731
                                            progress=args.progress, **kw)
    else:
        cfg = _resolve_config(args)
        if args.print_config:
            print(config.to_toml(cfg), end="")
            return 0
        build = lambda **kw: Trainer.new(cfg, out=args.out, overwrite=args.overwrite,  # noqa: E731
                                         progress=args.progress, **kw)
    if args.distributed:
        return _train_distributed(args, build)
    _check_single_process_flags(args)
    trainer = build()
    try:
        trainer.run()
    except TrainingDiverged as e:
        _report_divergence(e)
        return _EXIT_DIVERGED
    except KeyboardInterrupt:
        last = trainer.last_checkpoint
        print(f"\ninterrupted during step {trainer.step + 1}"
              + (f"; the last checkpoint is at step {last[1]}: pygan train --resume {trainer.run_dir}"
                 if last else "; no checkpoint was written"), file=sys.stderr)
        return 130
    return 0


_DIST_FLAGS = ("sync_batchnorm", "bucket_mb", "no_overlap", "ordered_reduction", "comm")


def _check_single_process_flags(args):
    from .training import ConfigError
    given = ["--" + k.replace("_", "-") for k in _DIST_FLAGS if getattr(args, k) not in (None, False)]
    if given:
        raise ConfigError(f"{', '.join(given)} only apply to data-parallel training: add --distributed "
                          f"(and launch with mpiexec -n K)")


def _train_distributed(args, build) -> int:
    """``mpiexec -n K pygan train … --distributed``: every rank builds its trainer, the ranks are
    compared before training (an error on one names it, on every rank), then they train; an
    exception on any rank prints that rank and its error and aborts the whole job (MPI_Abort),
    so no rank waits forever on a collective."""
    from .training import ConfigError, TrainingDiverged, distributed
    group = distributed.init_group(args.comm or "mpi")
    parallel = {"sync_batchnorm": True if args.sync_batchnorm else None,
                "bucket_mb": args.bucket_mb if args.bucket_mb is not None else 1.0,
                "overlap": not args.no_overlap, "ordered": args.ordered_reduction}
    try:
        trainer = distributed.check_ranks(group, lambda: build(group=group, parallel=parallel))
    except ConfigError:
        if group.rank != 0:
            return _EXIT_ERROR            # rank 0 prints the message that names the ranks
        raise
    tag = f"rank {group.rank} of K={group.size}"
    try:
        trainer.run()
    except TrainingDiverged as e:
        if group.size == 1:
            _report_divergence(e)
            return _EXIT_DIVERGED
        print(f"pygan train [{tag}]: training diverged at {e}; stopping every rank", file=sys.stderr, flush=True)
        group.abort(_EXIT_DIVERGED)
    except BaseException as e:          # noqa: BLE001 — any failure must stop every rank
        if group.size == 1:
            raise
        print(f"pygan train [{tag}]: error during step {trainer.step + 1}: {type(e).__name__}: {e}; "
              f"stopping every rank", file=sys.stderr, flush=True)
        sys.stdout.flush()
        group.abort(_EXIT_DIVERGED if isinstance(e, TrainingDiverged) else _EXIT_ERROR)
    return 0


def _cmd_presets(args) -> int:
    from .training import presets

    for name in presets.presets():
        print(f"{name:<36} {presets.preset(name).describe()}")
    return 0


# --- sample / eval ------------------------------------------------------------------------------

def _cmd_sample(args) -> int:
    import numpy as np

    from . import plots
    from .evaluation import generate, interpolate_latents
    from .training import load_run

    model, cfg, ck = load_run(args.run, ema=not args.no_ema)
    if cfg.kind == "pix2pix":
        return _sample_pix2pix(args, model, cfg, ck)
    if args.input or args.from_target:
        raise ValueError(f"--input translates images: only a pix2pix run takes inputs ({cfg.name} is a "
                         f"{cfg.kind.upper()} run, which samples from its latent space)")
    rng = np.random.default_rng(args.seed)
    nc = getattr(model, "num_classes", 0)
    out = args.out or os.path.join(os.path.dirname(ck.path), "interpolation.png" if args.interpolate else "sample.png")
    ext = os.path.splitext(out)[1].lower()
    if ext not in (".png", ".npy"):
        raise ValueError(f"--out must end in .png (a picture) or .npy (the raw samples), got {out!r}")
    if args.label is not None:
        if not nc:
            raise ValueError(f"--label: model {cfg.model!r} is unconditional (no classes)")
        if not 0 <= args.label < nc:
            raise ValueError(f"--label must be in 0…{nc - 1}, got {args.label}")
    if args.interpolate:
        rows, steps = args.rows, args.steps
        z = interpolate_latents(model, rows, steps, rng)
        n = rows * steps
    else:
        z, n = None, args.n
    if nc:
        if args.label is not None:
            labels = np.full(n, args.label, dtype=np.int64)
        elif args.interpolate:
            labels = np.repeat(rng.integers(0, nc, args.rows), args.steps)
        else:
            labels = np.arange(n, dtype=np.int64) % nc
    else:
        labels = None
    x = generate(model, n, rng, labels=labels, z=z)
    if cfg.is_toy:
        x = x * cfg.data_scale
    title = f"{cfg.name} — step {ck.step}"
    if ext == ".npy":
        if args.interpolate:
            x = x.reshape((args.rows, args.steps) + x.shape[1:])
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        np.save(out, x)
    elif cfg.is_toy:
        from .data import toy
        dist = toy(cfg.data)
        real = dist.sample(1000, np.random.default_rng(1), np.float64)
        if x.shape[1] == 1:
            plots.histogram_1d(x, out, real=real, title=title)
        elif args.interpolate:
            plots.interpolation_paths(x.reshape(args.rows, args.steps, -1), out, real=real, title=title)
        else:
            plots.scatter_2d(x, out, real=real, title=title, means=dist.means)
    else:
        nrow = args.steps if args.interpolate else (nc if nc and args.label is None else None)
        plots.image_grid(x, out, nrow=nrow, title=title)
    print(f"wrote {n} samples{' (latent interpolation)' if args.interpolate else ''} of {cfg.name} "
          f"(step {ck.step}) to {out}")
    return 0


def _sample_pix2pix(args, model, cfg, ck) -> int:
    """``pygan sample`` of a pix2pix run: G(input) of the user's images (--input), or of --n random
    held-out inputs (--seed); a .png of rows input | output (| target), or the outputs as .npy."""
    import numpy as np

    from .data import make_inputs, read_image_file
    from .plots import pix2pix as plots
    from .training.tasks.pix2pix import heldout_pairs, translate

    if args.label is not None or args.interpolate:
        raise ValueError("--label and --interpolate do not apply to a pix2pix run (it translates inputs; "
                         "give them with --input FILE.npy|png)")
    out = args.out or os.path.join(os.path.dirname(ck.path), "translation.png")
    ext = os.path.splitext(out)[1].lower()
    if ext not in (".png", ".npy"):
        raise ValueError(f"--out must end in .png (a picture) or .npy (the outputs), got {out!r}")
    if args.input:
        given = read_image_file(args.input, model.image_size)
        target = given if args.from_target else None
        x = make_inputs(cfg.pair_task, given) if args.from_target else given
        what = f"the {len(x)} image{'s' if len(x) > 1 else ''} of {args.input}"
    else:
        if args.from_target:
            raise ValueError("--from-target needs --input (the images to compute the inputs from)")
        hx, hy, _ = heldout_pairs(cfg)
        keep = np.sort(np.random.default_rng(args.seed).permutation(len(hx))[:args.n])
        x, target = hx[keep], hy[keep]
        what = f"{len(x)} held-out inputs"
    y = translate(model, x)
    if ext == ".npy":
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        np.save(out, y)
    else:
        cols, names = [x, y], ["input", "G(input)"]
        if target is not None:
            cols.append(target)
            names.append("target")
        plots.translation_rows(cols, names, out, title=f"{cfg.name}, step {ck.step}",
                               blocks=max(1, min(4, len(x) // 12)))
    print(f"wrote G(input) of {what} ({cfg.name}, step {ck.step}) to {out}")
    return 0


def _cmd_eval(args) -> int:
    import numpy as np

    from .evaluation import format_quality
    from .training import TASKS, load_run

    model, cfg, ck = load_run(args.run, ema=not args.no_ema)
    q = TASKS[cfg.kind].evaluate_model(model, cfg, n=args.n, rng=np.random.default_rng(args.seed))
    if args.json:
        print(json.dumps({"run": ck.path, "step": ck.step, **q}))
        return 0
    n = q.get("n", args.n or cfg.eval_samples) if cfg.kind == "pix2pix" else (args.n or cfg.eval_samples)
    what = "held-out pairs (L1 per pixel; the judge's FD and class accuracy of G(input))" \
        if cfg.kind == "pix2pix" else "samples"
    print(f"{cfg.name} at step {ck.step} ({ck.path}), {n} {what}:")
    if q:
        print(f"  {format_quality(q)}")
    else:
        print(f"  {cfg.data} has no modes to score")
    return 0


# --- parser ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pygan", description="GANs from scratch, every gradient derived and checked.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a GAN from a preset or a TOML config (default: dcgan-digits)",
                       description="Train a GAN. WHAT is a preset name (pygan presets lists them) or a "
                                   "TOML config file; without it, the dcgan-digits preset runs. The run "
                                   "folder gets config.toml, metrics.jsonl, checkpoint.npz, sample "
                                   "pictures and loss / D-output / gradient-norm plots.")
    p.add_argument("what", nargs="?", help="preset name (a GAN's, or vae-digits, cvae-digits, ae-digits, "
                                           "vae-mnist, cvae-mnist, pix2pix-edges, pix2pix-lower-half, …) or config.toml "
                                           "(default: dcgan-digits)")
    p.add_argument("--config", metavar="FILE", help="a TOML config (same as giving it as WHAT)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN from its last checkpoint")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/<name>, made unique)")
    p.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds a run")
    for flag, _, typ, help_ in _TRAIN_FLAGS:
        p.add_argument(flag, type=typ, default=None, help=help_)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="any config field, dotted for tables: optim_d.betas=[0,0.9], "
                        "model_args.width=32, loss_args.a=-1 (repeatable)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as TOML and exit")
    d = p.add_argument_group("data-parallel training (mpiexec -n K pygan train … --distributed)")
    d.add_argument("--distributed", action="store_true",
                   help="train on the K processes of mpiexec: the batch is the global batch, each rank "
                        "computes its slice, gradients are averaged with MPI all-reduce; rank 0 writes the run")
    d.add_argument("--sync-batchnorm", action="store_true", default=None,
                   help="BatchNorm statistics over the global batch (default: per rank, as PyTorch DDP)")
    d.add_argument("--bucket-mb", type=float, default=None, help="gradient bucket size in MB (default 1)")
    d.add_argument("--no-overlap", action="store_true",
                   help="all-reduce every bucket after backward instead of as each bucket completes")
    d.add_argument("--ordered-reduction", action="store_true",
                   help="sum the ranks' gradients in rank order on every rank (all-gather): bit-identical "
                        "ranks and runs for any K")
    d.add_argument("--comm", choices=["mpi", "nccl"], default=None,
                   help="mpi (default; NumPy buffers) or nccl (CuPy device buffers, one GPU per rank)")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="progress bar even when not on a terminal")
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="plain log lines even on a terminal")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run",
                       description="Samples of a run's generator as a picture (.png) or raw (.npy).")
    p.add_argument("run", help="run folder or checkpoint .npz")
    p.add_argument("--no-ema", action="store_true", help="use G's raw weights in a run that keeps an EMA of G")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--label", type=int, default=None, help="class of every sample (conditional models)")
    p.add_argument("--out", metavar="FILE", help="FILE.png (picture) or FILE.npy (raw samples, in the "
                                                 "data's coordinates); default RUN/sample.png")
    p.add_argument("--interpolate", action="store_true",
                   help="a latent-space interpolation grid: --rows walks of --steps points (slerp)")
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input", metavar="FILE", help="a pix2pix run: translate these images (FILE.npy: (N, 28, 28) "
                                                   "in [−1, 1] or uint8; FILE.png: a 28×28 picture or a grid of them)")
    p.add_argument("--from-target", action="store_true",
                   help="with --input: the images are targets (digits); compute the run's task input from them")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("eval", help="quality figures of a trained run",
                       description="Toy data: modes / % high-quality / KL (benchmarks/WORKLOADS.md Q1, Q2); "
                                   "images: the judge's Fréchet distance (and class accuracy); pix2pix: "
                                   "on held-out pairs, L1, the judge's FD and accuracy against the target's label.")
    p.add_argument("run", help="run folder or checkpoint .npz")
    p.add_argument("--no-ema", action="store_true", help="score G's raw weights in a run that keeps an EMA of G")
    p.add_argument("--n", type=int, default=None, help="samples (default: the run's eval_samples, 2,500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("presets", help="list the training presets")
    p.set_defaults(func=_cmd_presets)

    p = sub.add_parser("gradcheck", help="check every layer, loss and a whole G∘D game by finite differences")
    p.add_argument("--sections", nargs="+", choices=["layers", "losses", "penalties", "gan", "vae"],
                   default=["layers", "losses", "penalties", "gan", "vae"], help="what to check (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-v", "--verbose", action="store_true", help="print every table, not only failures")
    p.set_defaults(func=_cmd_gradcheck)
    p = sub.add_parser("info", help="version and which backends run on this machine")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv=None) -> int:
    from .training import CheckpointError, ConfigError, RunFolderError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, RunFolderError) as e:
        print(f"pygan {args.command}: error: {e}", file=sys.stderr)
    except FileNotFoundError as e:        # missing MNIST files: the message says where to put them
        print(f"pygan {args.command}: error: {e}", file=sys.stderr)
    except ImportError as e:              # scikit-learn missing for the digits
        print(f"pygan {args.command}: error: {e}", file=sys.stderr)
    except ValueError as e:
        if args.command in ("sample", "eval"):
            print(f"pygan {args.command}: error: {e}", file=sys.stderr)
        else:
            raise
    return _EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
