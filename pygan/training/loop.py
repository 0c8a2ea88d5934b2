"""The one training loop behind ``pygan train``, for every model family.

``Trainer(cfg, run_dir).run()`` trains the task of ``cfg.kind`` (:mod:`pygan.training.tasks`) to
``cfg.steps``; ``Trainer.resume(run_dir).run()`` continues a run from its last checkpoint. The
loop owns everything that is the same for every family:

* the run folder: config.toml, metrics.jsonl (one JSON object per step), checkpoint.npz,
  samples/…, the curves (the task draws them);
* the intervals: a log line (or progress-bar refresh, tqdm on a terminal) and the per-parameter
  gradient norms every ``log_every`` steps, quality figures every ``eval_every``, pictures every
  ``sample_every``, a checkpoint every ``checkpoint_every`` — each also at the last step;
* the stop on a NaN or inf: the task raises :class:`TrainingDiverged` naming the step and the
  term; the run keeps its last good checkpoint (parameters are checked finite before each
  checkpoint is written) and records the error in metrics.jsonl;
* exact resume: one ``numpy.random.Generator`` (seeded from ``(cfg.seed, task.stream_id)``) draws
  every random number of training; it, pygan's global generator (initialisation) and every
  module's own generator (Dropout) are saved in each checkpoint with the data stream's position,
  so ``--resume`` continues bit-identically, also after ``kill -9``. Pictures and evaluation use
  generators of their own and put the networks in eval mode, so they never change training;
* data-parallel training (``group``: :mod:`pygan.training.distributed`): every rank runs this
  loop on its slice of the global batch; rank 0 alone writes the run folder, logs (each line
  says K), evaluates and checkpoints, and the checkpoint (the generator states are the same on
  every rank) resumes with any K that divides the batch.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from ..backend import get_backend, set_backend
from ..files import atomic_write, clean_temporary_files
from . import checkpoint as ckpt
from .config import Config, ConfigError, from_dict, to_dict, to_toml, validate
from .tasks import TASKS, TrainingDiverged

__all__ = ["Trainer", "TrainingDiverged", "RunFolderError", "train", "resume", "make_task"]

#: what --resume may change: the length and the intervals, nothing that changes the trajectory
RESUMABLE = ("steps", "eval_every", "sample_every", "checkpoint_every", "log_every")


class RunFolderError(ValueError):
    """The run folder cannot be used (an existing run without --resume, …)."""


def make_task(cfg: Config):
    """The task that trains ``cfg`` (validated first; the config's backend is switched to)."""
    validate(cfg)
    if get_backend().name != cfg.backend:
        set_backend(cfg.backend)
    return TASKS[cfg.kind](cfg)


def _unique_folder(base):
    if not os.path.exists(base):
        return base
    i = 1
    while os.path.exists(f"{base}-{i}"):
        i += 1
    return f"{base}-{i}"


class Trainer:
    """One run. Attributes: ``cfg``, ``task`` (its ``model``, optimizers, data — also readable as
    the trainer's own: ``trainer.model``, ``trainer.opt_g``), ``rng`` (the training generator),
    ``step`` (steps done), ``records`` (metrics so far), ``run_dir``, ``last_checkpoint``
    ((path, step) of the last good checkpoint, or None)."""

    def __init__(self, cfg: Config, run_dir: str, checkpoint: ckpt.Checkpoint | None = None,
                 progress: bool | None = None, stream=None, group=None, parallel: dict | None = None):
        from . import distributed
        self.cfg = cfg
        self.task = make_task(cfg)
        parallel = dict(parallel or {})
        stored = (checkpoint.state.get("distributed", {}) if checkpoint is not None else {}).get("sync_batchnorm")
        if stored is not None:
            if parallel.get("sync_batchnorm") not in (None, stored):
                raise ConfigError(f"{checkpoint.path} was trained with BatchNorm "
                                  f"{'synchronised' if stored else 'per rank'}; --resume keeps it "
                                  f"({'drop' if not stored else 'add'} --sync-batchnorm)")
            parallel["sync_batchnorm"] = stored
        parallel = {k: v for k, v in parallel.items() if v is not None}
        self.dp = distributed.DataParallel(group or distributed.LOCAL_GROUP, self.task, **parallel)
        self.task.dp = self.dp
        self.rank, self.world = self.dp.rank, self.dp.size
        self.writer = self.rank == 0
        self.run_dir = os.fspath(run_dir)
        self.stream = stream if stream is not None else sys.stdout
        self.progress = progress
        self.rng = np.random.default_rng((cfg.seed, self.task.stream_id))
        self.step = 0
        self.elapsed = 0.0
        self.records = []
        self.last_checkpoint = None
        self._bar = None
        if checkpoint is not None:
            self._restore(checkpoint)

    def __getattr__(self, name):
        # the task's state (model, loss, opt_g, opt_d, ema, data, …) reads as the trainer's own
        task = self.__dict__.get("task")
        if task is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(task, name)

    # -- construction --
    @classmethod
    def new(cls, cfg: Config, out: str | None = None, overwrite: bool = False, **kw) -> "Trainer":
        """A fresh run in ``out`` (default cfg.out, else runs/<name> made unique). An existing
        folder holding a checkpoint is refused unless ``overwrite``."""
        out = out or cfg.out
        if not out:
            out = _unique_folder(os.path.join("runs", cfg.name or "run"))
        if os.path.exists(os.path.join(out, "checkpoint.npz")) and not overwrite:
            raise RunFolderError(f"{out} already holds a run (checkpoint.npz); continue it with "
                                 f"pygan train --resume {out}, or choose another --out (or --overwrite)")
        trainer = cls(cfg, out, **kw)
        if overwrite and trainer.writer and os.path.isdir(out):
            for name in ("checkpoint.npz", "metrics.jsonl"):
                p = os.path.join(out, name)
                if os.path.exists(p):
                    os.remove(p)
        cfg.out = out
        return trainer

    @classmethod
    def resume(cls, run: str, steps: int | None = None, intervals: dict | None = None, **kw) -> "Trainer":
        """Continue the run in folder ``run`` (or from a checkpoint file) from its last checkpoint;
        ``steps`` changes the total number of steps, ``intervals`` ({"eval_every": …,
        "sample_every": …, "checkpoint_every": …, "log_every": …}) the intervals — nothing that
        changes the trajectory."""
        ck = ckpt.load(run)
        cfg = stored_config(ck)
        if steps is not None:
            cfg.steps = int(steps)
        for k, v in (intervals or {}).items():
            if k not in RESUMABLE[1:]:
                raise ConfigError(f"resume: {k} cannot change when resuming (only steps and the intervals)")
            setattr(cfg, k, int(v))
        run_dir = os.path.dirname(os.path.abspath(ck.path))
        cfg.out = run_dir if os.path.abspath(cfg.out or "") != run_dir else cfg.out
        return cls(cfg, run_dir, checkpoint=ck, **kw)

    # -- checkpoints --
    @property
    def checkpoint_path(self):
        return os.path.join(self.run_dir, "checkpoint.npz")

    def _module_rngs(self):
        out = {}
        for name, mod in self.task.modules().items():
            out.update(ckpt.module_rngs(mod, name))
        return out

    def _rng_state(self):
        from ..random import get_rng
        return {"train": ckpt.generator_state(self.rng), "global": ckpt.generator_state(get_rng()),
                "modules": {k: ckpt.generator_state(r) for k, r in self._module_rngs().items()}}

    def save_checkpoint(self, path=None):
        path = path or self.checkpoint_path
        self.task.check_finite_parameters(self.step)
        dstate, darrays = self.task.data.state()
        tstate, tarrays = self.task.state()
        ckpt.save(path, kind=self.cfg.kind, step=self.step, config=to_dict(self.cfg), model=self.model.config(),
                  rng=self._rng_state(),
                  modules={n: m.state_dict() for n, m in self.task.modules().items()},
                  optimizers={n: o.state_dict() for n, o in self.task.optimizers().items()},
                  state={"elapsed": self.elapsed, "data": dstate, **tstate, **self._dist_state()},
                  extra={**darrays, **tarrays})
        self.last_checkpoint = (path, self.step)
        return path

    def _dist_state(self):
        if not self.dp.distributed:
            return {}
        return {"distributed": {"world_size": self.world, "sync_batchnorm": self.dp.sync_batchnorm}}

    def _check_ranks_agree(self):
        """Every rank's parameters must be the same (a bug or a faulty node otherwise)."""
        from .distributed import state_digest
        digests = self.dp.group.allgather(state_digest(self.task))
        odd = [r for r, d in enumerate(digests) if d != digests[0]]
        if odd:
            raise RuntimeError(f"step {self.step}: the parameters of rank{'s' if len(odd) > 1 else ''} "
                               f"{', '.join(map(str, odd))} differ from rank 0's (of {self.world})")

    def _restore(self, ck: ckpt.Checkpoint):
        from ..random import get_rng
        self.task.restore(ck)
        try:
            ckpt.set_generator_state(self.rng, ck.rng["train"])
            ckpt.set_generator_state(get_rng(), ck.rng["global"])
            saved = ck.rng.get("modules", {})
            for k, r in self._module_rngs().items():
                if k in saved:
                    ckpt.set_generator_state(r, saved[k])
        except (KeyError, TypeError, ValueError) as e:
            raise ckpt.CheckpointError(f"{ck.path}: the random generator states cannot be restored ({e})") from None
        self.task.data.load_state(ck.state.get("data", {}), ck.extra)
        self.step = ck.step
        self.elapsed = float(ck.state.get("elapsed", 0.0))
        self.last_checkpoint = (ck.path, ck.step)

    # -- one step --
    def _due(self, every: int, s: int) -> bool:
        return bool(every) and s % every == 0 or s == self.cfg.steps

    def train_step(self) -> dict:
        """One step of the task; returns its metrics record (gradient norms on logging steps)."""
        s = self.step + 1
        try:
            rec = self.task.train_step(s, self.rng, diagnose=self._due(self.cfg.log_every, s))
        except TrainingDiverged as e:
            e.checkpoint = self.last_checkpoint
            raise
        self.step = s
        return self.dp.average(rec)

    def evaluate(self) -> dict:
        """The task's quality figures now (as record fields: "eval", maybe "eval_raw")."""
        return self.task.evaluate(self.step)[0]

    # -- outputs --
    def _data_source(self) -> str:
        from ..data import describe_source
        return self.cfg.data if self.cfg.is_toy else describe_source(self.cfg.data, self.cfg.data_folder)

    def _write_config(self):
        text = (to_toml(self.cfg) + f"\n# data used by this run: {self._data_source()}\n").encode("utf-8")
        atomic_write(os.path.join(self.run_dir, "config.toml"), lambda f: f.write(text))

    def _open_metrics(self):
        path = os.path.join(self.run_dir, "metrics.jsonl")
        kept = []
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        r = json.loads(line)
                    except ValueError:
                        continue                # a line cut short by a kill
                    if isinstance(r, dict) and r.get("step", 0) <= self.step and "error" not in r:
                        kept.append(r)
            # steps after the checkpoint are lost with it: they will be redone
            body = "".join(json.dumps(r) + "\n" for r in kept).encode("utf-8")
            atomic_write(path, lambda f: f.write(body))
        self.records = kept
        self._metrics = open(path, "a", encoding="utf-8")

    def _log(self, msg):
        if not self.writer:
            return
        if self.dp.distributed:
            msg = f"[K={self.world}] {msg}"
        if self._bar is not None:
            self._bar.write(msg)
        else:
            print(msg, file=self.stream, flush=True)

    def _figures(self, final=False):
        self.task.figures(self.run_dir, self.step, final)
        self.task.curves(self.records, self.run_dir)

    def _start_bar(self):
        use_bar = self.progress if self.progress is not None else sys.stderr.isatty()
        use_bar = use_bar and self.writer and not self.dp.distributed     # plain lines, each saying K
        if not use_bar:
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        return tqdm(total=self.cfg.steps, initial=self.step, unit="step", dynamic_ncols=True, file=sys.stderr)

    # -- the loop --
    def run(self) -> dict:
        """Train to ``cfg.steps``; returns {"step", "elapsed", "quality", "run_dir"}.

        Raises TrainingDiverged (the last good checkpoint is kept) on NaN/inf."""
        cfg = self.cfg
        w = self.writer
        if w:
            os.makedirs(self.run_dir, exist_ok=True)
            clean_temporary_files(self.run_dir)
        start_step = self.step
        quality = {}
        self._log(f"pygan train {cfg.name}: {cfg.describe()}")
        if self.dp.distributed:
            self._log(f"data-parallel: {self.dp.describe()}; {cfg.batch_size // self.world} samples per process")
        self._log(f"run folder {self.run_dir}" + (f" (resumed at step {self.step})" if start_step else ""))
        source = self._data_source()
        self._log(f"data: {source}")
        if self.step >= cfg.steps:
            self._log(f"already at step {self.step} of {cfg.steps}; nothing to do "
                      f"(pass --steps to train further)")
            return {"step": self.step, "elapsed": self.elapsed, "quality": quality, "run_dir": self.run_dir}
        if w:
            self._write_config()
            self._open_metrics()
        else:
            self._metrics = _NoFile()
        self._bar = self._start_bar()
        t0 = time.perf_counter()
        base = self.elapsed
        t_log, s_log = t0, self.step
        try:
            while self.step < cfg.steps:
                rec = self.train_step()
                self.elapsed = base + time.perf_counter() - t0
                rec["time"] = self.elapsed
                s = self.step
                if s == start_step + 1:
                    rec["data"] = source         # which data this session trained on
                    if self.dp.distributed:
                        rec["processes"] = self.world
                last = s == cfg.steps
                if w and self._due(cfg.eval_every, s):
                    fields, msg = self.task.evaluate(s)
                    if fields:
                        rec.update(fields)
                        quality = fields.get("eval", {})
                        self._log(msg)
                self.records.append(rec)
                self._metrics.write(json.dumps(rec) + "\n")
                if self._bar is not None:
                    self._bar.update(1)
                if self._due(cfg.log_every, s):
                    now = time.perf_counter()
                    rate = (s - s_log) / max(now - t_log, 1e-9)
                    t_log, s_log = now, s
                    self._metrics.flush()
                    if self._bar is not None:
                        self._bar.set_postfix_str(self.task.summary(rec), refresh=False)
                    else:
                        self._log(f"step {s}/{cfg.steps}  {self.task.summary(rec)}  [{rate:.1f} steps/s]")
                if w and self._due(cfg.sample_every, s):
                    self._figures(final=last)
                if self._due(cfg.checkpoint_every, s):
                    if self.dp.distributed:
                        self._check_ranks_agree()
                    if w:
                        self._metrics.flush()
                        self.save_checkpoint()
                    else:
                        self.task.check_finite_parameters(self.step)
                        self.last_checkpoint = (self.checkpoint_path, self.step)
        except TrainingDiverged as e:
            e.checkpoint = self.last_checkpoint
            self._metrics.write(json.dumps({"step": e.step, "error": str(e)}) + "\n")
            self._metrics.flush()
            try:
                if w:
                    self.task.curves(self.records, self.run_dir)
            except Exception:       # noqa: BLE001 — the divergence is what the user must see
                pass
            raise
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            self._metrics.close()
        self.elapsed = base + time.perf_counter() - t0
        self._log(f"done: {self.step} steps in {self.elapsed:.1f} s"
                  + (f" ({self.step - start_step} this session)" if start_step else "")
                  + f"; samples in {os.path.join(self.run_dir, 'samples.png')}")
        return {"step": self.step, "elapsed": self.elapsed, "quality": quality, "run_dir": self.run_dir}


class _NoFile:
    """metrics.jsonl on a rank that writes nothing."""

    def write(self, text):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def stored_config(ck: ckpt.Checkpoint) -> Config:
    """The config a checkpoint was written with (a CheckpointError if it cannot be read)."""
    try:
        cfg = validate(from_dict({"kind": ck.kind, **ck.config}, f"{ck.path} (config)"))
    except ConfigError as e:
        raise ckpt.CheckpointError(f"{ck.path}: the stored config cannot be read: {e}") from None
    return cfg


def train(cfg: Config, out: str | None = None, overwrite: bool = False, **kw) -> dict:
    """Run a fresh experiment; see :class:`Trainer`."""
    return Trainer.new(cfg, out=out, overwrite=overwrite, **kw).run()


def resume(run: str, steps: int | None = None, **kw) -> dict:
    """Continue the run in ``run`` from its last checkpoint; see :meth:`Trainer.resume`."""
    return Trainer.resume(run, steps=steps, **kw).run()


def load_run(run: str, ema: bool = True):
    """(model, config, checkpoint) of a run folder or checkpoint file, for sampling and
    evaluation: the model rebuilt from the checkpoint with its saved parameters (a GAN that
    keeps an EMA of G gets the EMA weights unless ``ema`` is False)."""
    ck = ckpt.load(run)
    cfg = stored_config(ck)
    if get_backend().name != cfg.backend:
        set_backend(cfg.backend)
    return TASKS[cfg.kind].load_model(cfg, ck, ema=ema), cfg, ck
