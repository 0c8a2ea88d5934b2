"""``pygan train vae-digits`` (and cvae-digits, ae-digits, vae-mnist, cvae-mnist): the autoencoder /
VAE / CVAE of :mod:`pygan.models.vae` trained by the GAN trainer's loop, with the same run folder.

:class:`VAETrainer` subclasses :class:`pygan.train.Trainer` and reuses its loop (``run``: run
folder, metrics.jsonl, tqdm bar on a terminal / plain log lines otherwise, intervals, the NaN stop
that keeps the last good checkpoint) and its ``new``; it replaces the step, the evaluation, the
pictures and the checkpoint contents. One step is

    x, y ← next batch (shuffled each epoch from the training generator);  ε ~ N(0, I) from it too
    β_t = β·min(1, t/beta_warmup) (β without warm-up);  zero grads
    (loss, parts) ← model.elbo(x, ε, y, β_t);  model.backward();  ‖∇θ‖ finite?;  Adam step

Record per step (metrics.jsonl): ``step``, ``loss`` (= recon + β_t·kl, minimised), ``recon``
(−log p(x|z), nats per image), ``kl`` (KL(q(z|x) ‖ N(0, I)), nats per image), ``elbo``
(= −(recon + kl)), ``beta``, ``grad_norm`` (‖∂loss/∂θ‖ over every parameter), ``time``; at the
evaluation steps also ``eval``: ``test_neg_elbo``, ``test_recon``, ``test_kl`` on held-out images
(one fixed ε per image) and the judge's figures of prior samples (``fid``, ``real_vs_real_fid``,
``cond_accuracy`` for a CVAE, …; see :func:`pygan.judge.evaluate`).

Held-out data: the digits' fixed split of :func:`pygan.vae_plots.digits_figures` (1,500 train,
297 held out); MNIST's / Fashion-MNIST's test files. A NaN/inf in the ELBO raises
:class:`pygan.train.TrainingDiverged` naming the step and the term (``recon`` or ``kl``; or
``grad_norm``). Randomness: one training generator (data order and ε), seeded from ``seed``, saved
in every checkpoint with pygan's global generator, so ``--resume`` is bit-identical. Pictures and
evaluation use generators of their own.

Checkpoint (:mod:`pygan.checkpoint`'s format, written atomically): ``G/<key>`` the model's state
dict, ``opt_g/<key>`` Adam's state, ``extra/perm`` the epoch's data order; ``model`` is
``model.config()`` (``build_vae(**it)`` rebuilds it). Run folder: config.toml, metrics.jsonl,
checkpoint.npz, samples/step_XXXXXX.png (prior samples, a CVAE one class per row),
samples/recon_XXXXXX.png (held-out inputs / reconstructions), samples.png and reconstructions.png
(the last), losses.png.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import shutil
from dataclasses import dataclass, field

import numpy as np

from . import checkpoint as ckpt
from .backend import get_backend, set_backend, to_host as _host
from .config import IMAGE_DATA, ConfigError, OptimConfig
from .config import _apply_optim, _coerce, _kind, _parse_scalar, _parse_toml, _tomllib, _toml_key, _toml_value
from .train import ImageData, Trainer, TrainingDiverged, _nonfinite_value, judge_module, slerp

__all__ = ["VAEConfig", "VAE_PRESETS", "VAETrainer", "presets", "preset", "validate", "to_toml", "loads",
           "from_dict", "replace", "is_vae_target", "is_vae_run", "resolve_config", "load_run", "load_split",
           "generate", "interpolate_latents", "evaluate"]


# --- configuration -------------------------------------------------------------------------------

@dataclass
class VAEConfig:
    """One VAE run. Fields as in :class:`pygan.config.Config` where they share a name; besides:

    model        a name from :data:`pygan.models.vae.VAE_MODELS` (ae-8, vae-8, cvae-8, …-28)
    model_args   overrides for :func:`build_vae` (e.g. {"latent_dim": 2}); not ``beta``
    optim        the one optimizer (default Adam(1e-3, betas (0.9, 0.999)))
    beta         the KL weight β (β-VAE; ignored by the autoencoder)
    beta_warmup  > 0: β rises linearly from 0 over that many steps
    eval_samples prior samples the judge scores
    """

    name: str = "vae-digits"
    model: str = "vae-8"
    model_args: dict = field(default_factory=dict)
    data: str = "digits"
    data_folder: str = ""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig("adam", lr=1e-3, betas=(0.9, 0.999)))
    batch_size: int = 64
    steps: int = 15000
    beta: float = 1.0
    beta_warmup: int = 0
    seed: int = 0
    eval_every: int = 5000
    eval_samples: int = 1000
    sample_every: int = 5000
    checkpoint_every: int = 2500
    log_every: int = 500
    out: str = ""
    backend: str = "numpy"

    is_toy = False          # for the code shared with GAN runs (pygan sample / eval)

    @property
    def deterministic(self) -> bool:
        return self.model.startswith("ae-")

    def describe(self) -> str:
        args = "".join(f", {k}={v}" for k, v in self.model_args.items())
        parts = [f"{self.model}{args} on {self.data}", self.optim.describe()]
        if not self.deterministic:
            parts.append(f"β {self.beta:g}" + (f" (warm-up {self.beta_warmup} steps)" if self.beta_warmup else ""))
        parts.append(f"batch {self.batch_size}, {self.steps} steps, seed {self.seed}")
        return "; ".join(parts)


_FIELDS = {f.name: _kind(getattr(VAEConfig(), f.name)) for f in dataclasses.fields(VAEConfig)}


def _preset(name, model, data, **kw):
    return dict(name=name, model=model, data=data, **kw)


# the digits presets: ~3 ms a step on two loaded cores, so about a minute each
_MNIST = dict(steps=5000, eval_every=0, sample_every=1000, checkpoint_every=500, log_every=100)
VAE_PRESETS = {
    "vae-digits": _preset("vae-digits", "vae-8", "digits"),
    "cvae-digits": _preset("cvae-digits", "cvae-8", "digits"),
    "ae-digits": _preset("ae-digits", "ae-8", "digits"),
    "vae-mnist": _preset("vae-mnist", "vae-28", "mnist", data_folder="data/mnist", **_MNIST),
    "cvae-mnist": _preset("cvae-mnist", "cvae-28", "mnist", data_folder="data/mnist", **_MNIST),
}


def presets() -> list:
    return list(VAE_PRESETS)


def preset(name: str) -> VAEConfig:
    if name not in VAE_PRESETS:
        raise ConfigError(f"unknown VAE preset {name!r}; VAE presets: {', '.join(VAE_PRESETS)}")
    return _apply(VAEConfig(), copy.deepcopy(VAE_PRESETS[name]), "preset")


def _apply(cfg: VAEConfig, d: dict, where: str) -> VAEConfig:
    for k, v in d.items():
        if k == "preset":
            continue
        if k not in _FIELDS:
            raise ConfigError(f"unknown key {k!r} in {where}; valid keys: {', '.join(sorted(list(_FIELDS) + ['preset']))}")
        if k == "optim":
            _apply_optim(cfg.optim, v, f"{where} [optim]")
        elif k == "model_args":
            if not isinstance(v, dict):
                raise ConfigError(f"{where}: model_args must be a table, got {v!r}")
            cfg.model_args.update(v)
        else:
            setattr(cfg, k, _coerce(f"{where}: {k}", _FIELDS[k], v))
    return cfg


def from_dict(d: dict, where: str = "config") -> VAEConfig:
    cfg = preset(d["preset"]) if "preset" in d else VAEConfig()
    return _apply(cfg, d, where)


def replace(cfg: VAEConfig, overrides: dict) -> VAEConfig:
    """A copy with dotted overrides ({"steps": 100, "optim.lr": 1e-4, "model_args.latent_dim": 2})."""
    cfg = copy.deepcopy(cfg)
    for key, v in overrides.items():
        head, _, rest = key.partition(".")
        if head == "optim" and rest:
            _apply_optim(cfg.optim, {rest: v}, "optim")
        elif head == "model_args" and rest:
            cfg.model_args[rest] = _parse_scalar(v) if isinstance(v, str) else v
        elif rest:
            raise ConfigError(f"unknown key {key!r}: only optim and model_args have sub-keys in a VAE config")
        else:
            _apply(cfg, {key: v}, "overrides")
    return cfg


def validate(cfg: VAEConfig) -> VAEConfig:
    """Raise :class:`ConfigError` naming the first field that cannot run; return ``cfg``."""
    from .models.vae import VAE_MODELS
    if cfg.model not in VAE_MODELS:
        raise ConfigError(f"model: unknown VAE model {cfg.model!r}; choose one of {', '.join(VAE_MODELS)}")
    if "beta" in cfg.model_args:
        raise ConfigError("model_args.beta: the KL weight is the config's beta (--beta)")
    if cfg.data not in IMAGE_DATA:
        raise ConfigError(f"data: a VAE trains on images: {', '.join(IMAGE_DATA)}; got {cfg.data!r}")
    if cfg.data in ("mnist", "fashion") and not cfg.data_folder:
        raise ConfigError(f"data {cfg.data!r} needs data_folder (the folder holding the IDX files)")
    if cfg.optim.name not in ("adam", "rmsprop", "sgd"):
        raise ConfigError(f"optim.name: unknown optimizer {cfg.optim.name!r}; choose adam, rmsprop or sgd")
    if not (cfg.optim.lr >= 0 and math.isfinite(cfg.optim.lr)):
        raise ConfigError(f"optim.lr must be a finite number ≥ 0, got {cfg.optim.lr}")
    if not (cfg.beta >= 0 and math.isfinite(cfg.beta)):
        raise ConfigError(f"beta must be a number ≥ 0, got {cfg.beta}")
    for k, lo in (("batch_size", 1), ("log_every", 1), ("eval_samples", 2), ("steps", 0), ("beta_warmup", 0),
                  ("eval_every", 0), ("sample_every", 0), ("checkpoint_every", 0)):
        if getattr(cfg, k) < lo:
            raise ConfigError(f"{k} must be ≥ {lo}, got {getattr(cfg, k)}")
    if not 0 <= cfg.seed < 2**63:
        raise ConfigError(f"seed must be in [0, 2⁶³), got {cfg.seed}")
    return cfg


def to_dict(cfg: VAEConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["optim"]["betas"] = list(d["optim"]["betas"])
    return d


def to_toml(cfg: VAEConfig) -> str:
    """The config as TOML (``pygan train this-file`` runs it again); :func:`loads` reads it back."""
    d = to_dict(cfg)
    lines = ["# pygan VAE run configuration (pygan train --config this-file)"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in d.items() if k not in ("model_args", "optim")]
    for t in ("model_args", "optim"):
        lines += ["", f"[{t}]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in d[t].items()]
    return "\n".join(lines) + "\n"


def loads(text: str, where: str = "<string>") -> VAEConfig:
    return validate(from_dict(_parse_toml(text, where), where))


# --- the command line's questions ----------------------------------------------------------------

def is_vae_target(what) -> bool:
    """Whether ``pygan train WHAT`` means a VAE: a VAE preset, or a TOML file whose ``preset`` is
    one or whose ``model`` is a VAE model."""
    from .models.vae import VAE_MODELS
    if not what:
        return False
    if what in VAE_PRESETS:
        return True
    if not (what.endswith(".toml") or os.path.isfile(what)):
        return False
    try:
        with open(what, "rb") as f:
            d = _tomllib().load(f)
    except Exception:               # unreadable: the GAN path reports it
        return False
    return d.get("preset") in VAE_PRESETS or d.get("model") in VAE_MODELS


def is_vae_run(run) -> bool:
    """Whether the run folder / checkpoint ``run`` holds a VAE (False if it cannot be read)."""
    from .models.vae import VAE_MODELS
    try:
        return ckpt.load(run).model.get("name") in VAE_MODELS
    except (ckpt.CheckpointError, OSError):
        return False


def resolve_config(args, flags) -> VAEConfig:
    """The config of ``pygan train`` for a VAE: WHAT / --config, then the flags (``flags`` is the
    command's table of (flag, key, type, help)), --beta and --set; flags only a GAN has are errors."""
    what = args.config or args.what
    cfg = preset(what) if what in VAE_PRESETS else from_dict(_read_toml(what), what)
    over = {}
    for flag, key, _, _ in flags:
        v = getattr(args, flag.lstrip("-").replace("-", "_"))
        if v is None:
            continue
        if key.partition(".")[0] not in _FIELDS:
            raise ConfigError(f"{flag} does not apply to a VAE ({cfg.name}: one network, one optimizer, "
                              f"no adversarial loss)")
        over[key] = v
    if getattr(args, "beta", None) is not None:
        over["beta"] = args.beta
    for item in args.set or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. model_args.latent_dim=2), got {item!r}")
        over[key.strip()] = value
    return validate(replace(cfg, over))


def _read_toml(path):
    try:
        with open(path, "rb") as f:
            return _tomllib().load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} not found") from None
    except _tomllib().TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


# --- data, model, sampling, evaluation -----------------------------------------------------------

class _Batches(ImageData):
    """:class:`pygan.train.ImageData`'s shuffled, checkpointed batches over given arrays."""

    def __init__(self, x, y):
        self.x, self.labels = np.ascontiguousarray(x), y
        self.shape = tuple(x.shape[1:])
        self.perm, self.pos = None, 0


def load_split(cfg: VAEConfig):
    """((x_train, y_train), (x_heldout, y_heldout)): the digits split 1,500 / 297 by a fixed
    permutation (as :func:`pygan.vae_plots.digits_figures`), MNIST's train / test files."""
    from . import data
    if cfg.data == "digits":
        x, y = data.load_digits()
        perm = np.random.default_rng(0).permutation(len(x))
        return (x[perm[:1500]], y[perm[:1500]]), (x[perm[1500:]], y[perm[1500:]])
    return (data.load_mnist(cfg.data_folder, kind=cfg.data, split="train"),
            data.load_mnist(cfg.data_folder, kind=cfg.data, split="test"))


def _build(name, args, seed, beta=None):
    from .models.vae import build_vae
    from .random import manual_seed
    manual_seed(seed)
    model = build_vae(name, **args)
    if beta is not None and not model.deterministic:
        model.beta = float(beta)
    return model


def load_run(run):
    """(model, config, checkpoint) of a VAE run folder or checkpoint file."""
    ck = ckpt.load(run)
    try:
        cfg = validate(from_dict(ck.config, f"{ck.path} (config)"))
    except ConfigError as e:
        raise ckpt.CheckpointError(f"{ck.path}: the stored config cannot be read: {e}") from None
    if get_backend().name != cfg.backend:
        set_backend(cfg.backend)
    margs = dict(ck.model)
    name = margs.pop("name", cfg.model)
    try:
        model = _build(name, margs, cfg.seed)
    except (TypeError, ValueError) as e:
        raise ckpt.CheckpointError(f"{ck.path}: cannot rebuild model {name!r} from the checkpoint: {e}") from None
    why = ckpt.describe_mismatch(ck, model, "G")
    if why:
        raise ckpt.CheckpointError(f"{ck.path}: the stored parameters do not fit model {name!r}: {why}")
    model.load_state_dict(ck.G)
    return model, cfg, ck


def generate(model, n: int, rng, labels=None, z=None, chunk: int = 1000) -> np.ndarray:
    """:func:`pygan.train.generate` for a VAE: decode(z) of n prior draws (or the given z) on the
    host, images in [−1, 1]; labels (n,) for a CVAE (default uniform from ``rng``)."""
    xp = get_backend().xp
    if z is None:
        z = model.sample_z(n, rng)
    if model.conditional and labels is None:
        labels = rng.integers(0, model.num_classes, n)
    out = [_host(model.decode(z[s:s + chunk], None if labels is None else
                              xp.asarray(np.asarray(labels)[s:s + chunk], dtype=np.int64)))
           for s in range(0, n, chunk)]
    return np.concatenate(out) if out else np.zeros((0,) + tuple(model.data_shape), np.float32)


def interpolate_latents(model, rows: int, steps: int, rng) -> np.ndarray:
    """(rows·steps, L): each row walks by slerp between two prior draws (as for a GAN)."""
    z0 = np.asarray(_host(model.sample_z(rows, rng)), dtype=np.float64)
    z1 = np.asarray(_host(model.sample_z(rows, rng)), dtype=np.float64)
    z = slerp(z0[:, None, :], z1[:, None, :], np.linspace(0.0, 1.0, steps)[None, :, None])
    return z.reshape(rows * steps, -1).astype(model.dtype)


def evaluate(model, cfg: VAEConfig, n: int | None = None, rng=None, heldout=None) -> dict:
    """Held-out ``test_neg_elbo`` = recon + KL (β = 1; for the autoencoder the reconstruction
    alone), ``test_recon``, ``test_kl`` (nats per image, one ε per image from a fixed
    generator), then the judge's figures of n (default ``cfg.eval_samples``) prior samples."""
    from .vae_training import evaluate_elbo
    x, y = heldout if heldout is not None else load_split(cfg)[1]
    p = evaluate_elbo(model, x, y if model.conditional else None, rng=np.random.default_rng((cfg.seed, 5)))
    q = {"test_neg_elbo": -p["elbo"], "test_recon": p["recon"], "test_kl": p["kl"]}
    judge = judge_module()
    if judge is not None and hasattr(judge, "evaluate"):
        rng = rng if rng is not None else np.random.default_rng((cfg.seed, 3))
        q.update(judge.evaluate(model, data=cfg.data, n=int(n or cfg.eval_samples), rng=rng,
                                data_folder=cfg.data_folder or None))
    return q


# --- the trainer ---------------------------------------------------------------------------------

class VAETrainer(Trainer):
    """One VAE run: ``VAETrainer.new(cfg, out=…).run()``; ``VAETrainer.resume(run_dir)`` continues one.

    Attributes: ``model``, ``opt``, ``rng`` (the training generator), ``step``, ``records``,
    ``run_dir``, ``heldout`` ((x, y) held-out images), ``last_checkpoint``."""

    ema = None                        # Trainer's hooks see a run without an EMA

    def __init__(self, cfg: VAEConfig, run_dir: str, checkpoint: ckpt.Checkpoint | None = None,
                 progress: bool | None = None, stream=None):
        import sys
        validate(cfg)
        if get_backend().name != cfg.backend:
            set_backend(cfg.backend)
        self.cfg, self.run_dir, self.progress = cfg, os.fspath(run_dir), progress
        self.stream = stream if stream is not None else sys.stdout
        (x, y), self.heldout = load_split(cfg)
        self.data = _Batches(x, y)
        try:
            self.model = m = _build(cfg.model, cfg.model_args, cfg.seed, cfg.beta)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"model_args: {e}") from None
        if tuple(m.data_shape) != self.data.shape:
            raise ConfigError(f"model {cfg.model!r} takes images of shape {tuple(m.data_shape)} but "
                              f"{cfg.data!r} images have shape {self.data.shape}")
        self.opt = cfg.optim.build(m.parameters())
        self._params = m.parameters()
        self.rng = np.random.default_rng((cfg.seed, 0x766165))
        self.step, self.elapsed, self.records, self.last_checkpoint = 0, 0.0, [], None
        if checkpoint is not None:
            self._restore(checkpoint)

    @staticmethod
    def _config_from_dict(d: dict, where: str):
        return from_dict(d, where)          # Trainer.resume reads the stored config through it

    # -- checkpoints --
    def _rng_state(self):
        from .random import get_rng
        return {"train": ckpt.generator_state(self.rng), "global": ckpt.generator_state(get_rng()),
                "modules": {k: ckpt.generator_state(r) for k, r in ckpt.module_rngs(self.model, "G").items()}}

    def save_checkpoint(self, path=None):
        path = path or self.checkpoint_path
        dstate, darrays = self.data.state()
        ckpt.save(path, step=self.step, config=to_dict(self.cfg), model=self.model.config(),
                  rng=self._rng_state(), G=self.model.state_dict(), D={}, opt_g=self.opt.state_dict(),
                  opt_d={}, state={"elapsed": self.elapsed, "data": dstate}, extra=darrays)
        self.last_checkpoint = (path, self.step)
        return path

    def _restore(self, ck: ckpt.Checkpoint):
        from .random import get_rng
        why = ckpt.describe_mismatch(ck, self.model, "G")
        if why:
            raise ckpt.CheckpointError(f"{ck.path} does not fit model {self.cfg.model!r}: {why}")
        self.model.load_state_dict(ck.G)
        try:
            self.opt.load_state_dict(ck.opt_g)
            ckpt.set_generator_state(self.rng, ck.rng["train"])
            ckpt.set_generator_state(get_rng(), ck.rng["global"])
            for k, r in ckpt.module_rngs(self.model, "G").items():
                if k in ck.rng.get("modules", {}):
                    ckpt.set_generator_state(r, ck.rng["modules"][k])
        except (KeyError, TypeError, ValueError) as e:
            raise ckpt.CheckpointError(f"{ck.path}: the optimizer or generator states cannot be restored ({e})") from None
        self.data.load_state(ck.state.get("data", {}), ck.extra)
        self.step, self.elapsed = ck.step, float(ck.state.get("elapsed", 0.0))
        self.last_checkpoint = (ck.path, ck.step)

    # -- one step --
    def train_step(self) -> dict:
        """One Adam step on one batch; returns the step's record. TrainingDiverged on NaN/inf."""
        from .losses import NonFiniteLoss
        from .vae_training import _eps
        cfg, m, xp = self.cfg, self.model, get_backend().xp
        s = self.step + 1
        x, y = self.data.next(cfg.batch_size, self.rng)
        x = xp.asarray(x)
        y = xp.asarray(y) if m.conditional else None
        beta = 0.0 if m.deterministic else (cfg.beta * min(1.0, s / cfg.beta_warmup) if cfg.beta_warmup else cfg.beta)
        self.opt.zero_grad()
        try:
            _, parts = m.elbo_and_backward(x, _eps(m, len(x), self.rng), y, beta)
        except NonFiniteLoss as e:
            raise TrainingDiverged(s, e.term or "elbo", _nonfinite_value(e), str(e), self.last_checkpoint) from None
        gn = math.sqrt(sum(float(xp.vdot(g, g)) for g in (p.grad.reshape(-1) for p in self._params)))
        if not math.isfinite(gn):
            raise TrainingDiverged(s, "grad_norm", gn, "the gradient of the loss", self.last_checkpoint)
        self.opt.step()
        self.step = s
        return {"step": s, **parts, "beta": beta, "grad_norm": gn}

    def evaluate(self) -> dict:
        return evaluate(self.model, self.cfg, rng=self._eval_rng(), heldout=self.heldout)

    # -- outputs --
    def _write_config(self):
        text = to_toml(self.cfg).encode("utf-8")
        ckpt.atomic_write(os.path.join(self.run_dir, "config.toml"), lambda f: f.write(text))

    def _summary(self, rec):
        return (f"loss {rec['loss']:.3f}  recon {rec['recon']:.3f}  kl {rec['kl']:.3f}  ELBO {rec['elbo']:.3f}"
                + (f"  β {rec['beta']:.3g}" if self.cfg.beta_warmup else ""))

    def _plots(self, final=False):
        from . import vae_plots
        cfg, m = self.cfg, self.model
        folder = os.path.join(self.run_dir, "samples")
        title = f"{cfg.name} — step {self.step}"
        s = os.path.join(folder, f"step_{self.step:06d}.png")
        vae_plots.prior_samples(m, s, 100, np.random.default_rng((cfg.seed, 2)),
                                title=f"{title}: samples from the prior" + (" (row r: class r)" if m.conditional else ""))
        x, y = self.heldout
        r = os.path.join(folder, f"recon_{self.step:06d}.png")
        vae_plots.reconstructions(m, x[:32], r, y[:32] if m.conditional else None,
                                  title=f"{title}: held-out input / reconstruction")
        if final:
            shutil.copyfile(s, os.path.join(self.run_dir, "samples.png"))
            shutil.copyfile(r, os.path.join(self.run_dir, "reconstructions.png"))
        self._curves()

    def _curves(self):
        """losses.png: loss, recon and −ELBO per training batch (left), KL (right), with the
        held-out −ELBO / recon / KL of the evaluations as dots."""
        from .plots import _plt, _save, _series, smooth
        recs = [r for r in self.records if "error" not in r]
        if not recs:
            return
        plt, win = _plt(), max(1, len(recs) // 200)
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
        for ax, keys in ((a, (("loss", "loss (minimised)"), ("recon", "recon"))), (b, (("kl", "KL"),))):
            for k, label in keys:
                xs, ys = _series(recs, k)
                ax.plot(xs, smooth(ys, win), lw=1.2, label=label)
        xs, ys = _series(recs, "elbo")
        a.plot(xs, smooth(-ys, win), lw=1.0, ls="--", label="−ELBO")
        ev = [r for r in recs if isinstance(r.get("eval"), dict)]
        for ax, k, label in ((a, "test_neg_elbo", "held-out −ELBO"), (a, "test_recon", "held-out recon"),
                             (b, "test_kl", "held-out KL")):
            pts = [(r["step"], r["eval"][k]) for r in ev if k in r["eval"]]
            if pts:
                ax.plot(*zip(*pts), "o", ms=4, label=label)
        for ax, what in ((a, "nats per image"), (b, "KL(q(z|x) ‖ N(0, I)), nats per image")):
            ax.set_xlabel("step")
            ax.set_ylabel(what + (f" (moving average of {win})" if win > 1 else ""), fontsize=8)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"{self.cfg.name} — {self.model.describe()}", fontsize=9)
        fig.tight_layout()
        _save(fig, os.path.join(self.run_dir, "losses.png"))

    def run(self) -> dict:
        """:meth:`pygan.train.Trainer.run`; on divergence its GAN curves are replaced by the VAE's."""
        try:
            return super().run()
        except TrainingDiverged:
            try:
                self._curves()
                os.remove(os.path.join(self.run_dir, "d_outputs.png"))
            except Exception:
                pass
            raise
