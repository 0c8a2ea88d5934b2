"""The training loop behind ``pygan train``: any :class:`pygan.models.GANModel`, any loss, penalty,
clipping and optimizer, with metrics, plots, checkpoints and exact resume.

One generator step (``step`` always counts G steps) is:

    repeat n_critic times                                    # D steps
        real, labels ← next batch;  z ← N(0, I);  fake ← G(z, labels)        (G forward)
        D.zero_grad()
        r ← D(real);  (ℓ_r, ∂ℓ_r/∂r) ← loss.d_real(r);  D.backward_params(∂ℓ_r/∂r)  (backward
        f ← D(fake);  (ℓ_f, ∂ℓ_f/∂f) ← loss.d_fake(f);  D.backward_params(∂ℓ_f/∂f)   right after
                      its forward; the samples need no gradient, so D's first layer skips ∂/∂x)
        penalty (gp | r1 | lipschitz) adds its θ_D-gradient;  D's optimizer steps;  clipping
    G.zero_grad()
    f ← D(fake)   — the last D step's fake batch, reused: G runs forward once per D step
    (ℓ_G, ∂ℓ_G/∂f) ← loss.g_loss(f);  G.backward(D.backward_input(∂ℓ_G/∂f));  G's optimizer steps
    D.zero_grad()   (D.backward_input leaves D's grads alone; they are cleared all the same)

Conditional models generate with the real batch's labels, so a penalty on interpolates sees
one label per pair. Randomness: one ``numpy.random.Generator`` (seeded from ``config.seed``)
draws the data order / toy samples, z, and the penalties' interpolation weights; pygan's
global generator (initialisation, seeded from ``config.seed`` too) and every module's own
generator (Dropout) are saved with it in each checkpoint, so ``--resume`` continues
bit-identically. Sampling, plots and evaluation use generators of their own (derived from the
seed and the step) and put both networks in eval mode, so they never change training.

Two optional extras (config fields): ``lr_decay = "linear"`` sets both optimizers' learning
rates before every G step from a schedule of the step alone (so resume stays exact), and
``ema_decay = β`` keeps an exponential moving average of G's parameters, updated after every
G step and saved in the checkpoint (``extra/ema.<key>``); evaluation, samples and
``pygan eval`` then use the averaged G (metrics.jsonl keeps the raw G's figures as
``eval_raw``). Neither changes the random draws, and the EMA is never read by training.

The run folder holds config.toml, metrics.jsonl (one JSON object per G step), checkpoint.npz,
samples/step_XXXXXX.png, samples.png (the last) and the curves losses.png, d_outputs.png,
grad_norms.png, quality.png.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import re
import sys
import time

import numpy as np

from . import checkpoint as ckpt
from . import config as config_mod
from . import losses, penalties
from .backend import get_backend, set_backend, to_host as _host
from .config import Config, ConfigError

__all__ = ["Trainer", "TrainingDiverged", "RunFolderError", "train", "resume", "build_model", "make_data",
           "load_run", "generate", "evaluate", "format_quality", "sigmoid_loss", "interpolate_latents",
           "judge_module", "lr_factor", "ema_weight"]

_SIGMOID_LOSSES = ("minimax", "nonsaturating")


class TrainingDiverged(FloatingPointError):
    """A loss term, the penalty or a gradient norm became NaN or inf; the run stopped there.

    ``step`` (the G step being computed, 1-based), ``term`` ("d_loss.fake", "penalty",
    "grad_norm.D.0.weight", …), ``value``, and ``checkpoint``: the last good checkpoint's path
    and step (or None), which was not overwritten."""

    def __init__(self, step, term, value, detail="", checkpoint=None):
        self.step, self.term, self.value, self.checkpoint = step, term, value, checkpoint
        msg = f"step {step}: {term} is {value}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class RunFolderError(ValueError):
    """The run folder cannot be used (an existing run without --resume, …)."""


def sigmoid_loss(name: str) -> bool:
    """Whether D's outputs are logits of a probability under this loss (σ is meaningful)."""
    return name in _SIGMOID_LOSSES


def _sigmoid(x):
    xp = get_backend().xp
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


# --- model and data ------------------------------------------------------------------------------

def _models():
    try:
        return importlib.import_module("pygan.models")
    except ModuleNotFoundError as e:
        if e.name in ("pygan.models", "pygan"):
            raise ImportError("pygan.models is not available in this installation") from None
        raise


def build_model(cfg: Config):
    """``pygan.models.build(cfg.model, **cfg.model_args)`` after ``pygan.manual_seed(cfg.seed)``;
    the MLP's ``data_dim`` follows the toy data unless given."""
    from .random import manual_seed
    models = _models()
    if cfg.model not in models.MODELS:
        raise ConfigError(f"model: unknown model {cfg.model!r}; choose one of {', '.join(models.MODELS)}")
    args = dict(cfg.model_args)
    if cfg.model == "mlp" and "data_dim" not in args and cfg.is_toy:
        from . import data
        args["data_dim"] = data.toy(cfg.data).dim
    manual_seed(cfg.seed)
    try:
        return models.build(cfg.model, **args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model_args: {e}") from None


class ToyData:
    """An endless stream of fresh samples from a toy distribution, divided by ``scale``."""

    def __init__(self, cfg: Config):
        from . import data
        self.dist = data.toy(cfg.data)
        self.scale = float(cfg.data_scale)
        self.shape = (self.dist.dim,)
        self.labels = None

    def next(self, n, rng):
        x = self.dist.sample(n, rng, np.float64)
        return (x / self.scale).astype(np.float32), None

    def reference(self, n, rng):
        """n real points in the original coordinates (for plots)."""
        return self.dist.sample(n, rng, np.float64)

    def state(self):
        return {}, {}

    def load_state(self, state, arrays):
        pass


class ImageData:
    """Shuffled minibatches of an image set, reshuffled (from the training generator) each epoch;
    the permutation and the position in it are checkpointed."""

    def __init__(self, cfg: Config):
        from . import data
        if cfg.data == "digits":
            x, y = data.load_digits()
        else:
            x, y = data.load_mnist(cfg.data_folder, kind=cfg.data, split="train")
        if cfg.data_scale != 1.0:
            x = (x / np.float32(cfg.data_scale)).astype(np.float32)
        self.x, self.labels = np.ascontiguousarray(x), y
        self.shape = tuple(x.shape[1:])
        self.perm = None
        self.pos = 0

    def next(self, n, rng):
        if n > len(self.x):
            raise ConfigError(f"batch_size {n} is larger than the data set ({len(self.x)} images)")
        if self.perm is None or self.pos + n > len(self.perm):
            self.perm = rng.permutation(len(self.x))
            self.pos = 0
        idx = self.perm[self.pos:self.pos + n]
        self.pos += n
        return self.x[idx], self.labels[idx]

    def reference(self, n, rng):
        return self.x[rng.choice(len(self.x), size=min(n, len(self.x)), replace=False)]

    def state(self):
        return {"pos": self.pos}, ({"perm": self.perm} if self.perm is not None else {})

    def load_state(self, state, arrays):
        self.pos = int(state.get("pos", 0))
        self.perm = np.asarray(arrays["perm"], dtype=np.int64) if "perm" in arrays else None


def make_data(cfg: Config):
    """The data source of a config (ToyData or ImageData). Raises FileNotFoundError (with where
    to put the files) for missing MNIST files and ImportError without scikit-learn for digits."""
    return ToyData(cfg) if cfg.is_toy else ImageData(cfg)


# --- sampling and evaluation ---------------------------------------------------------------------

class _EvalMode:
    """Both networks in eval mode inside the block, their previous modes restored after."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.modes = [(m, m.training) for m in self.model.G.modules() + self.model.D.modules()]
        self.model.G.eval()
        self.model.D.eval()

    def __exit__(self, *exc):
        for m, mode in self.modes:
            object.__setattr__(m, "training", mode)


def generate(model, n: int, rng, labels=None, z=None, chunk: int = 1000) -> np.ndarray:
    """n samples from G in eval mode, on the host, in the model's coordinates; labels (n,) for
    conditional models (default: uniform from ``rng``); z (n, latent_dim) if given."""
    xp = get_backend().xp
    cond = getattr(model, "num_classes", 0) > 0
    if z is None:
        z = model.sample_z(n, rng)
    if cond and labels is None:
        labels = rng.integers(0, model.num_classes, n)
    out = []
    with _EvalMode(model):
        for s in range(0, n, chunk):
            lab = None if not cond else xp.asarray(np.asarray(labels)[s:s + chunk], dtype=np.int64)
            out.append(_host(model.g_forward(z[s:s + chunk], lab)).copy())
    return np.concatenate(out) if out else np.zeros((0,) + tuple(model.data_shape), np.float32)


def slerp(z0, z1, t):
    """Spherical interpolation between latent vectors (rows), t ∈ [0, 1] (linear when parallel)."""
    z0 = np.asarray(z0, dtype=np.float64)
    z1 = np.asarray(z1, dtype=np.float64)
    n0 = np.linalg.norm(z0, axis=-1, keepdims=True)
    n1 = np.linalg.norm(z1, axis=-1, keepdims=True)
    cos = np.clip(np.sum(z0 * z1, axis=-1, keepdims=True) / np.maximum(n0 * n1, 1e-12), -1.0, 1.0)
    omega = np.arccos(cos)
    so = np.sin(omega)
    lin = so < 1e-6
    safe = np.where(lin, 1.0, so)
    a = np.where(lin, 1.0 - t, np.sin((1.0 - t) * omega) / safe)
    b = np.where(lin, t, np.sin(t * omega) / safe)
    return a * z0 + b * z1


def interpolate_latents(model, rows: int, steps: int, rng) -> np.ndarray:
    """(rows·steps, latent_dim) float32: each row walks from one z to another by slerp."""
    z0 = np.asarray(_host(model.sample_z(rows, rng)), dtype=np.float64)
    z1 = np.asarray(_host(model.sample_z(rows, rng)), dtype=np.float64)
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    z = slerp(z0[:, None, :], z1[:, None, :], t)
    return z.reshape(rows * steps, -1).astype(model.G.dtype or np.float32)


def judge_module():
    """``pygan.judge`` if this installation has it (image quality metrics), else None."""
    try:
        if importlib.util.find_spec("pygan.judge") is None:
            return None
    except (ImportError, ValueError):
        return None
    return importlib.import_module("pygan.judge")


def evaluate(model, cfg: Config, n: int | None = None, rng=None) -> dict:
    """Quality figures of the model's samples.

    Toy data with modes (ring-8, grid-25, mixture-1d): ``pygan.metrics.mode_metrics`` on n
    samples (default ``cfg.eval_samples``) in the original coordinates (× data_scale) →
    {"modes", "total_modes", "hq_percent", "kl"}. Images: ``pygan.judge.evaluate(model,
    data=…, n=…, rng=…, data_folder=…)`` if pygan.judge exists, else {}.
    """
    n = int(n or cfg.eval_samples)
    rng = rng if rng is not None else np.random.default_rng((cfg.seed, 3))
    if cfg.is_toy:
        from . import data, metrics
        dist = data.toy(cfg.data)
        if dist.means is None:
            return {}
        x = generate(model, n, rng).astype(np.float64) * cfg.data_scale
        return metrics.mode_metrics(x, dist.means, dist.std)
    judge = judge_module()
    if judge is None or not hasattr(judge, "evaluate"):
        return {}
    with _EvalMode(model):
        out = judge.evaluate(model, data=cfg.data, n=n, rng=rng, data_folder=cfg.data_folder)
    return dict(out or {})


def format_quality(q: dict) -> str:
    """One line of quality figures: ``modes 8/8  high-quality 94.1%  KL 0.006`` (toy) or the
    judge's figures."""
    if not q:
        return "no quality figures for this data"
    if "modes" in q and "hq_percent" in q:
        return (f"modes {q['modes']}/{q.get('total_modes', '?')}  high-quality {q['hq_percent']:.1f}%  "
                f"KL {q['kl']:.3f}")
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in q.items())


# --- learning-rate schedule and EMA ---------------------------------------------------------------

def lr_factor(cfg: Config, step: int) -> float:
    """The factor on both base learning rates during G step ``step`` (1-based; its D steps too).

    "none": 1. "linear", with T = cfg.steps and t₀ = ⌊lr_decay_start·T⌋: 1 for step ≤ t₀, then
    (T − step + 1)/(T − t₀) — falling by equal amounts to 1/(T − t₀) at the last step, never 0.
    A function of the step alone, so a resumed run gets the same rates (for the same T)."""
    if cfg.lr_decay == "none":
        return 1.0
    T = int(cfg.steps)
    t0 = int(math.floor(cfg.lr_decay_start * T))
    if step <= t0 or T <= t0:
        return 1.0
    return max(T - step + 1, 1) / float(T - t0)


def ema_weight(beta: float, step: int) -> float:
    """The weight w of the new parameters in the EMA update after G step ``step`` (1-based):
    ema ← ema + w·(θ − ema), w = 1 − min(β, (1 + step)/(10 + step)). The warm-up (the
    ``num_updates`` rule of TensorFlow's ExponentialMovingAverage) lets the average forget the
    initial weights quickly in short runs; from step ≈ 9/(1 − β) on, w = 1 − β."""
    return 1.0 - min(float(beta), (1.0 + step) / (10.0 + step))


class _UseEMA:
    """Inside the block, G's parameters hold the EMA weights (the arrays are swapped, not
    copied, and swapped back on exit); a no-op without EMA."""

    def __init__(self, trainer, on: bool = True):
        self.t, self.on = trainer, on and trainer.ema is not None

    def _swap(self):
        ema = self.t.ema
        for i, p in enumerate(self.t._g_params):
            p.data, ema[i] = ema[i], p.data

    def __enter__(self):
        if self.on:
            self._swap()
        return self

    def __exit__(self, *exc):
        if self.on:
            self._swap()


# --- the trainer ---------------------------------------------------------------------------------

def _unique_folder(base):
    if not os.path.exists(base):
        return base
    i = 1
    while os.path.exists(f"{base}-{i}"):
        i += 1
    return f"{base}-{i}"


def _nonfinite_value(e):
    m = re.search(r" is (nan|inf|-inf)\b", str(e))
    return m.group(1) if m else "not finite"


class Trainer:
    """One run: ``Trainer(cfg, run_dir).run()``; ``Trainer.resume(run_dir)`` continues one.

    Attributes after construction: ``model``, ``loss``, ``opt_g``, ``opt_d``, ``rng`` (the
    training generator), ``step`` (G steps done), ``records`` (metrics so far), ``run_dir``.
    """

    def __init__(self, cfg: Config, run_dir: str, checkpoint: ckpt.Checkpoint | None = None,
                 progress: bool | None = None, stream=None):
        config_mod.validate(cfg)
        if get_backend().name != cfg.backend:
            set_backend(cfg.backend)
        self.cfg = cfg
        self.run_dir = os.fspath(run_dir)
        self.stream = stream if stream is not None else sys.stdout
        self.progress = progress
        self.data = make_data(cfg)
        self.model = build_model(cfg)
        m = self.model
        if tuple(m.data_shape) != tuple(self.data.shape):
            raise ConfigError(f"model {cfg.model!r} makes samples of shape {tuple(m.data_shape)} but "
                              f"{cfg.data!r} samples have shape {tuple(self.data.shape)}")
        if m.num_classes and self.data.labels is None:
            raise ConfigError(f"model {cfg.model!r} is conditional but {cfg.data!r} has no labels")
        self.loss = losses.get(cfg.loss, **cfg.loss_args)
        self._check_penalty()
        self.opt_g = cfg.optim_g.build(m.G.parameters())
        self.opt_d = cfg.optim_d.build(m.D.parameters())
        self.rng = np.random.default_rng((cfg.seed, 0x7472616E))
        self.step = 0
        self.elapsed = 0.0
        self.records = []
        self.last_checkpoint = None     # (path, step) of the last good checkpoint
        self._g_names = [f"G.{k}" for k, _ in m.G.named_parameters()]
        self._d_names = [f"D.{k}" for k, _ in m.D.named_parameters()]
        self._g_params = m.G.parameters()
        self._d_params = m.D.parameters()
        self._dx_key = "prob" if sigmoid_loss(cfg.loss) else "score"
        self._base_lr = (self.opt_g.lr, self.opt_d.lr)
        # EMA of G's parameters (None = off): starts at G's initial weights
        self.ema = [p.data.copy() for p in self._g_params] if cfg.ema_decay else None
        self._ema_tmp = [get_backend().xp.empty_like(p.data) for p in self._g_params] if cfg.ema_decay else None
        if checkpoint is not None:
            self._restore(checkpoint)

    # -- construction helpers --
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
        if overwrite and os.path.isdir(out):
            for name in ("checkpoint.npz", "metrics.jsonl"):
                p = os.path.join(out, name)
                if os.path.exists(p):
                    os.remove(p)
        cfg.out = out
        return cls(cfg, out, **kw)

    @staticmethod
    def _config_from_dict(d: dict, where: str):
        """The stored config as this trainer's config class (VAETrainer: a VAEConfig)."""
        return config_mod.from_dict(d, where)

    @classmethod
    def resume(cls, run: str, steps: int | None = None, intervals: dict | None = None, **kw) -> "Trainer":
        """Continue the run in folder ``run`` (or from a checkpoint file) from its last checkpoint;
        ``steps`` changes the total number of G steps, ``intervals`` ({"eval_every": …,
        "sample_every": …, "checkpoint_every": …, "log_every": …}) the intervals — nothing that
        changes the trajectory."""
        ck = ckpt.load(run)
        try:
            cfg = cls._config_from_dict(ck.config, f"{ck.path} (config)")
        except ConfigError as e:
            raise ckpt.CheckpointError(f"{ck.path}: the stored config cannot be read: {e}") from None
        if steps is not None:
            cfg.steps = int(steps)
        for k, v in (intervals or {}).items():
            if k not in ("eval_every", "sample_every", "checkpoint_every", "log_every"):
                raise ConfigError(f"resume: {k} cannot change when resuming (only steps and the intervals)")
            setattr(cfg, k, int(v))
        run_dir = os.path.dirname(os.path.abspath(ck.path))
        cfg.out = run_dir if os.path.abspath(cfg.out or "") != run_dir else cfg.out
        return cls(cfg, run_dir, checkpoint=ck, **kw)

    def _check_penalty(self):
        cfg, m = self.cfg, self.model
        if cfg.penalty == "none":
            return
        from .nn import BatchNorm1d, BatchNorm2d
        bn = [name for name, mod in m.D.named_modules() if isinstance(mod, (BatchNorm1d, BatchNorm2d))]
        if bn:
            raise ConfigError(f"penalty {cfg.penalty!r} needs a critic that treats samples independently, "
                              f"but {cfg.model!r}'s D has BatchNorm ({', '.join(bn)}); set "
                              f"model_args.batchnorm_in_d = false (--set model_args.batchnorm_in_d=false)")
        if m.num_classes and not hasattr(m, "critic"):
            raise ConfigError(f"penalty {cfg.penalty!r} is supported for unconditional models only "
                              f"({cfg.model!r} is conditional and has no critic(labels))")

    # -- checkpoints --
    @property
    def checkpoint_path(self):
        return os.path.join(self.run_dir, "checkpoint.npz")

    def _rng_state(self):
        from .random import get_rng
        mods = {**ckpt.module_rngs(self.model.G, "G"), **ckpt.module_rngs(self.model.D, "D")}
        return {"train": ckpt.generator_state(self.rng), "global": ckpt.generator_state(get_rng()),
                "modules": {k: ckpt.generator_state(r) for k, r in mods.items()}}

    def save_checkpoint(self, path=None):
        path = path or self.checkpoint_path
        dstate, darrays = self.data.state()
        darrays = dict(darrays)
        if self.ema is not None:
            for name, e in zip(self._g_names, self.ema):
                darrays[f"ema.{name[2:]}"] = e          # name is "G.<key>"
        ckpt.save(path, step=self.step, config=config_mod.to_dict(self.cfg), model=self.model.config(),
                  rng=self._rng_state(), G=self.model.G.state_dict(), D=self.model.D.state_dict(),
                  opt_g=self.opt_g.state_dict(), opt_d=self.opt_d.state_dict(),
                  state={"elapsed": self.elapsed, "data": dstate}, extra=darrays)
        self.last_checkpoint = (path, self.step)
        return path

    def _restore(self, ck: ckpt.Checkpoint):
        from .random import get_rng
        m = self.model
        for which, mod in (("G", m.G), ("D", m.D)):
            why = ckpt.describe_mismatch(ck, mod, which)
            if why:
                raise ckpt.CheckpointError(
                    f"{ck.path} was written by model {ck.model.get('name', '?')!r} "
                    f"({_short(ck.model)}) and does not fit this model {self.cfg.model!r} "
                    f"({_short(m.config())}): {why}")
        m.G.load_state_dict(ck.G)
        m.D.load_state_dict(ck.D)
        for name, opt, state in (("opt_g", self.opt_g, ck.opt_g), ("opt_d", self.opt_d, ck.opt_d)):
            try:
                opt.load_state_dict(state)
            except (KeyError, ValueError) as e:
                raise ckpt.CheckpointError(f"{ck.path}: {name} does not fit the configured optimizer: {e}") from None
        try:
            ckpt.set_generator_state(self.rng, ck.rng["train"])
            ckpt.set_generator_state(get_rng(), ck.rng["global"])
            mods = {**ckpt.module_rngs(m.G, "G"), **ckpt.module_rngs(m.D, "D")}
            for k, r in mods.items():
                if k in ck.rng.get("modules", {}):
                    ckpt.set_generator_state(r, ck.rng["modules"][k])
        except (KeyError, TypeError, ValueError) as e:
            raise ckpt.CheckpointError(f"{ck.path}: the random generator states cannot be restored ({e})") from None
        self.data.load_state(ck.state.get("data", {}), ck.extra)
        if self.ema is not None:
            xp = get_backend().xp
            for i, (name, p) in enumerate(zip(self._g_names, self._g_params)):
                key = f"ema.{name[2:]}"
                if key not in ck.extra:
                    raise ckpt.CheckpointError(f"{ck.path}: the run keeps an EMA of G (ema_decay = "
                                               f"{self.cfg.ema_decay:g}) but the checkpoint lacks {key}")
                a = ck.extra[key]
                if tuple(a.shape) != tuple(p.data.shape):
                    raise ckpt.CheckpointError(f"{ck.path}: {key} has shape {tuple(a.shape)}, G's parameter "
                                               f"{tuple(p.data.shape)}")
                self.ema[i] = xp.asarray(a, dtype=p.data.dtype).copy()
        self.step = ck.step
        self.elapsed = float(ck.state.get("elapsed", 0.0))
        self.last_checkpoint = (ck.path, ck.step)

    # -- one step --
    def _term(self, fn, x, term):
        try:
            return fn(x)
        except losses.NonFiniteLoss as e:
            raise TrainingDiverged(self.step + 1, term, _nonfinite_value(e), str(e), self.last_checkpoint) from None

    def _finite(self, term, value):
        if not math.isfinite(value):
            raise TrainingDiverged(self.step + 1, term, value, checkpoint=self.last_checkpoint)

    def _grad_norms(self, params, names, out):
        for name, p in zip(names, params):
            g = p.grad.reshape(-1)
            v = math.sqrt(float(g @ g))
            if not math.isfinite(v):
                raise TrainingDiverged(self.step + 1, f"grad_norm.{name}", v, "the gradient of this parameter",
                                       self.last_checkpoint)
            out[name] = v

    def _critic(self, labels):
        m = self.model
        return m.critic(labels) if m.num_classes else m.D

    def _penalty(self, real, fake, labels):
        cfg, xp = self.cfg, get_backend().xp
        lam = cfg.penalty_weight
        if cfg.penalty == "gp":
            return penalties.gradient_penalty(self._critic(labels), real, fake, lam=lam, rng=self.rng)
        if cfg.penalty == "r1":
            return penalties.r1_penalty(self._critic(labels), real, gamma=lam)
        labels2 = None if labels is None else xp.concatenate([labels, labels])
        return penalties.lipschitz_penalty(self._critic(labels2), real, fake, lam=lam,
                                           one_sided=cfg.penalty == "lipschitz-one-sided", rng=self.rng)

    def train_step(self) -> dict:
        """One G step with its n_critic D steps; returns the step's metrics record."""
        cfg, m, loss, xp = self.cfg, self.model, self.loss, get_backend().xp
        B = cfg.batch_size
        if cfg.lr_decay != "none":
            f = lr_factor(cfg, self.step + 1)
            self.opt_g.lr = self._base_lr[0] * f
            self.opt_d.lr = self._base_lr[1] * f
        sums = {"d_loss.real": 0.0, "d_loss.fake": 0.0, "penalty": 0.0, "D_real": 0.0, "D_fake": 0.0}
        grad_norm = {}
        prob = self._dx_key == "prob"
        for _ in range(cfg.n_critic):
            real, labels = self.data.next(B, self.rng)
            real = xp.asarray(real)
            labels = None if (labels is None or not m.num_classes) else xp.asarray(labels)
            z = m.sample_z(B, self.rng)
            fake = m.g_forward(z, labels)
            self.opt_d.zero_grad()
            r = m.d_forward(real, labels)
            vr, gr = self._term(loss.d_real, r, "d_loss.real")
            m.d_backward_params(gr)
            f = m.d_forward(fake, labels)
            vf, gf = self._term(loss.d_fake, f, "d_loss.fake")
            m.d_backward_params(gf)
            pen = 0.0
            if cfg.penalty != "none":
                try:
                    pen = float(self._penalty(real, fake, labels))
                except NotImplementedError as e:      # a layer without a second-order backward
                    raise ConfigError(f"penalty {cfg.penalty!r} cannot run on {cfg.model!r}'s D: {e}; "
                                      f"use penalty = \"lipschitz\" (first derivatives only)") from None
                self._finite("penalty", pen)
            self._grad_norms(self._d_params, self._d_names, grad_norm)
            self.opt_d.step()
            if cfg.clip:
                penalties.clip_weights(m.D, cfg.clip)
            sums["d_loss.real"] += vr
            sums["d_loss.fake"] += vf
            sums["penalty"] += pen
            sums["D_real"] += float((_sigmoid(r) if prob else r).mean())
            sums["D_fake"] += float((_sigmoid(f) if prob else f).mean())
        self.opt_g.zero_grad()
        f = m.d_forward(fake, labels)
        vg, gg = self._term(loss.g_loss, f, "g_loss")
        m.g_backward(m.d_backward_input(gg))
        self._grad_norms(self._g_params, self._g_names, grad_norm)
        self.opt_g.step()
        if self.ema is not None:
            self._update_ema(self.step + 1)
        self.opt_d.zero_grad()
        k = float(cfg.n_critic)
        rec = {"step": self.step + 1,
               "d_loss": (sums["d_loss.real"] + sums["d_loss.fake"]) / k,
               "d_loss.real": sums["d_loss.real"] / k, "d_loss.fake": sums["d_loss.fake"] / k,
               "penalty": sums["penalty"] / k, "g_loss": vg,
               f"D_real_{self._dx_key}": sums["D_real"] / k, f"D_fake_{self._dx_key}": sums["D_fake"] / k,
               "grad_norm": {n: grad_norm[n] for n in self._g_names + self._d_names}}
        self.step += 1
        return rec

    def _update_ema(self, step):
        """ema ← ema + w·(θ − ema) for every G parameter (w from :func:`ema_weight`)."""
        xp = get_backend().xp
        w = ema_weight(self.cfg.ema_decay, step)
        for e, p, tmp in zip(self.ema, self._g_params, self._ema_tmp):
            xp.subtract(p.data, e, out=tmp)
            tmp *= tmp.dtype.type(w)
            e += tmp

    def use_ema(self, on: bool = True):
        """Context manager: G holds the EMA weights inside the block (no-op without EMA)."""
        return _UseEMA(self, on)

    def evaluate(self) -> dict:
        """Quality figures now (the EMA G's if the run keeps one, with the raw G's under
        "raw"), on the evaluation generator of this step."""
        q = {}
        with self.use_ema():
            q = evaluate(self.model, self.cfg, rng=self._eval_rng())
        if self.ema is not None and q:
            q = dict(q)
            q["raw"] = evaluate(self.model, self.cfg, rng=self._eval_rng())
        return q

    # -- outputs --
    def _write_config(self):
        from .checkpoint import atomic_write
        text = config_mod.to_toml(self.cfg).encode("utf-8")
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
            ckpt.atomic_write(path, lambda f: f.write(body))
        self.records = kept
        self._metrics = open(path, "a", encoding="utf-8")

    def _log(self, msg):
        if self._bar is not None:
            self._bar.write(msg)
        else:
            print(msg, file=self.stream, flush=True)

    def _summary(self, rec):
        d = self._dx_key
        return (f"d_loss {rec['d_loss']:.4f}  g_loss {rec['g_loss']:.4f}  "
                + (f"penalty {rec['penalty']:.4f}  " if self.cfg.penalty != "none" else "")
                + f"D(x) {rec[f'D_real_{d}']:.3f}  D(G(z)) {rec[f'D_fake_{d}']:.3f}")

    def _eval_rng(self):
        return np.random.default_rng((self.cfg.seed, 3, self.step))

    def _fixed_z(self, n):
        return self.model.sample_z(n, np.random.default_rng((self.cfg.seed, 2)))

    def snapshot(self, path):
        """Save the sample picture of the current model to ``path`` (PNG): an image grid (64 fixed
        z; conditional models: one class per column), or for 2-D toy data a scatter over D's
        surface with the arrows −∂L_G/∂x, for 1-D a histogram with D's curve."""
        with self.use_ema():
            self._snapshot(path)

    def _snapshot(self, path):
        from . import plots
        cfg, m = self.cfg, self.model
        title = f"{cfg.name} — step {self.step}" + (" (EMA of G)" if self.ema is not None else "")
        if not cfg.is_toy:
            nc = m.num_classes
            n = 8 * nc if nc else 64
            labels = np.arange(n) % nc if nc else None
            x = generate(m, n, None, labels=labels, z=self._fixed_z(n))
            plots.image_grid(x, path, nrow=nc or 8,
                             title=f"{title} (column k: class k)" if nc else title)
            return
        x, surface, arrows, real = self._field(2500, 250)
        if self.data.shape == (2,):
            dist = self.data.dist
            plots.scatter_2d(x, path, real=real, surface=surface, arrows=arrows, title=title,
                             surface_label="D(x) = σ(logit)" if self._dx_key == "prob" else "D(x) (score)",
                             means=dist.means)
        else:
            pdf = None
            if self.data.dist.pdf is not None:
                xs = surface[0]
                pdf = (xs, self.data.dist.pdf(xs))
            plots.histogram_1d(x, path, real=real, curve=surface, pdf=pdf, title=title,
                               curve_label="D(x) = σ(logit)" if self._dx_key == "prob" else "D(x) (score)")

    def _field(self, n, n_arrows):
        """Generated points, D on a grid, −∂L_G/∂x at some generated points (original coordinates)."""
        cfg, m, xp = self.cfg, self.model, get_backend().xp
        s = cfg.data_scale
        rng = np.random.default_rng((cfg.seed, 4))
        z = self._fixed_z(n)
        x = generate(m, n, None, z=z)
        real = self.data.reference(1000, rng)
        fin = x[np.all(np.isfinite(x), axis=1)] * s
        both = np.concatenate([real, fin]) if len(fin) else real
        lo, hi = np.percentile(both, 0.5, axis=0), np.percentile(both, 99.5, axis=0)
        pad = 0.15 * np.maximum(hi - lo, 1e-3)
        lo, hi = lo - pad, hi + pad
        dt = m.D.dtype or np.float32
        with _EvalMode(m):
            if x.shape[1] == 2:
                gx_, gy_ = np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120)
                X, Y = np.meshgrid(gx_, gy_)
                pts = np.stack([X.ravel(), Y.ravel()], axis=1) / s
                out = _host(m.d_forward(xp.asarray(pts.astype(dt)))).reshape(X.shape)
                surface = (gx_, gy_, _host(_sigmoid(out)) if self._dx_key == "prob" else out)
            else:
                xs = np.linspace(lo[0], hi[0], 400)
                out = _host(m.d_forward(xp.asarray((xs[:, None] / s).astype(dt)))).reshape(-1)
                surface = (xs, _host(_sigmoid(out)) if self._dx_key == "prob" else out)
            arrows = None
            k = min(n_arrows, len(x))
            pts = x[:k]
            if k and np.all(np.isfinite(pts)):
                logits = m.d_forward(xp.asarray(pts.astype(dt)))
                try:
                    _, g = self.loss.g_loss(logits)
                    gx = _host(m.d_backward(g)) * k       # per-sample ∂ℓ_G/∂x (undo the mean)
                    arrows = (pts * s, -gx / s)
                except losses.NonFiniteLoss:
                    arrows = None
                m.D.zero_grad()
        return x * s, surface, arrows, real

    def _plots(self, final=False):
        from . import plots
        os.makedirs(os.path.join(self.run_dir, "samples"), exist_ok=True)
        path = os.path.join(self.run_dir, "samples", f"step_{self.step:06d}.png")
        self.snapshot(path)
        if final:
            import shutil
            shutil.copyfile(path, os.path.join(self.run_dir, "samples.png"))
        plots.curves(self.records, self.run_dir, title=self.cfg.name)

    # -- the loop --
    def run(self) -> dict:
        """Train to ``cfg.steps``; returns {"step", "elapsed", "quality", "run_dir"}.

        Raises TrainingDiverged (the last good checkpoint is kept) on NaN/inf."""
        cfg = self.cfg
        os.makedirs(self.run_dir, exist_ok=True)
        ckpt.clean_temporary_files(self.run_dir)
        self._write_config()
        self._open_metrics()
        self._bar = None
        use_bar = self.progress if self.progress is not None else sys.stderr.isatty()
        start_step = self.step
        quality = {}
        self._log(f"pygan train {cfg.name}: {cfg.describe()}")
        self._log(f"run folder {self.run_dir}" + (f" (resumed at step {self.step})" if start_step else ""))
        if self.step >= cfg.steps:
            self._log(f"already at step {self.step} of {cfg.steps}; nothing to do "
                      f"(pass --steps to train further)")
            self._metrics.close()
            return {"step": self.step, "elapsed": self.elapsed, "quality": quality, "run_dir": self.run_dir}
        if use_bar:
            try:
                from tqdm import tqdm
                self._bar = tqdm(total=cfg.steps, initial=self.step, unit="step", dynamic_ncols=True,
                                 file=sys.stderr)
            except ImportError:
                self._bar = None
        t0 = time.perf_counter()
        base = self.elapsed
        t_log = t0
        s_log = self.step
        try:
            while self.step < cfg.steps:
                rec = self.train_step()
                self.elapsed = base + time.perf_counter() - t0
                rec["time"] = self.elapsed
                s = self.step
                last = s == cfg.steps
                if (cfg.eval_every and s % cfg.eval_every == 0) or last:
                    quality = self.evaluate()
                    if quality:
                        raw = quality.pop("raw", None)
                        rec["eval"] = quality
                        msg = f"step {s}: {format_quality(quality)}"
                        if raw is not None:
                            rec["eval_raw"] = raw
                            msg = f"step {s}: EMA G {format_quality(quality)}; raw G {format_quality(raw)}"
                        self._log(msg)
                self.records.append(rec)
                self._metrics.write(json.dumps(rec) + "\n")
                if self._bar is not None:
                    self._bar.update(1)
                if s % cfg.log_every == 0 or last:
                    now = time.perf_counter()
                    rate = (s - s_log) / max(now - t_log, 1e-9)
                    t_log, s_log = now, s
                    self._metrics.flush()
                    if self._bar is not None:
                        self._bar.set_postfix_str(self._summary(rec), refresh=False)
                    else:
                        self._log(f"step {s}/{cfg.steps}  {self._summary(rec)}  [{rate:.1f} steps/s]")
                if (cfg.sample_every and s % cfg.sample_every == 0) or last:
                    self._plots(final=last)
                if (cfg.checkpoint_every and s % cfg.checkpoint_every == 0) or last:
                    self._metrics.flush()
                    self.save_checkpoint()
        except TrainingDiverged as e:
            e.checkpoint = self.last_checkpoint
            self._metrics.write(json.dumps({"step": e.step, "error": str(e)}) + "\n")
            self._metrics.flush()
            try:
                from . import plots
                plots.curves(self.records, self.run_dir, title=cfg.name)
            except Exception:
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


def _short(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items() if k != "name")


def train(cfg: Config, out: str | None = None, overwrite: bool = False, **kw) -> dict:
    """Run a fresh experiment; see :class:`Trainer`."""
    return Trainer.new(cfg, out=out, overwrite=overwrite, **kw).run()


def resume(run: str, steps: int | None = None, **kw) -> dict:
    """Continue the run in ``run`` from its last checkpoint; see :meth:`Trainer.resume`."""
    return Trainer.resume(run, steps=steps, **kw).run()


def load_run(run: str, ema: bool = True):
    """(model, config, checkpoint) of a run folder or checkpoint file: the model rebuilt from the
    checkpoint's model config with the saved parameters (for sampling and evaluation). For a
    run that keeps an EMA of G (``ema_decay`` > 0), G gets the EMA weights unless ``ema`` is
    False."""
    ck = ckpt.load(run)
    try:
        cfg = config_mod.from_dict(ck.config, f"{ck.path} (config)")
    except ConfigError as e:
        raise ckpt.CheckpointError(f"{ck.path}: the stored config cannot be read: {e}") from None
    if get_backend().name != cfg.backend:
        set_backend(cfg.backend)
    models = _models()
    margs = dict(ck.model)
    name = margs.pop("name", cfg.model)
    from .random import manual_seed
    manual_seed(cfg.seed)
    try:
        model = models.build(name, **margs)
    except (TypeError, ValueError) as e:
        raise ckpt.CheckpointError(f"{ck.path}: cannot rebuild model {name!r} from the checkpoint: {e}") from None
    for which, mod in (("G", model.G), ("D", model.D)):
        why = ckpt.describe_mismatch(ck, mod, which)
        if why:
            raise ckpt.CheckpointError(f"{ck.path}: the stored parameters do not fit model {name!r}: {why}")
    model.G.load_state_dict(ck.G)
    model.D.load_state_dict(ck.D)
    if ema and cfg.ema_decay:
        xp = get_backend().xp
        for name, p in model.G.named_parameters():
            key = f"ema.{name}"
            if key not in ck.extra:
                raise ckpt.CheckpointError(f"{ck.path}: the run keeps an EMA of G but the checkpoint lacks {key}")
            p.data = xp.asarray(ck.extra[key], dtype=p.data.dtype).copy()
    return model, cfg, ck
