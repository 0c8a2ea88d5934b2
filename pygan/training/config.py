"""Experiment configuration: one dataclass for every model family, TOML files, dotted overrides.

A :class:`Config` holds everything ``pygan train`` needs to run an experiment. Its ``kind`` names
the model family — "gan", "vae" or "pix2pix" — and so the task that trains it (:mod:`pygan.training.tasks`);
the fields shared by every family (model, data, batch, steps, seed, intervals, run folder) come
first, then each family's own (a GAN's loss, penalty and two optimizers; a VAE's one optimizer
and KL weight). A field of another family is an error, never silently ignored.

    cfg = presets.preset("wgan-gp-ring-8")            # a named preset (pygan.training.presets)
    cfg = config.load("my.toml")                      # a TOML file (unknown keys are errors)
    cfg = config.replace(cfg, {"steps": 500, "optim_d.lr": 1e-4})   # dotted overrides
    text = config.to_toml(cfg)                        # what the run folder's config.toml holds

A TOML file may start from a preset (``preset = "ring-8"``) and override any field; tables
``[model_args]``, ``[loss_args]``, ``[optim_g]``, ``[optim_d]`` (a VAE: ``[optim]``) hold the
nested parts. Without ``kind`` (files written before it existed) the kind follows the preset or
the model::

    preset = "ring-8"
    loss = "wasserstein"
    penalty = "gp"
    penalty_weight = 0.1
    n_critic = 5
    [optim_d]
    lr = 1e-4
    betas = [0.0, 0.9]

TOML has no null: ``clip = 0`` means no weight clipping.

Adding a model family (as pix2pix was): add its fields below with ``_only("kind")``, its defaults to
``KIND_DEFAULTS``, its checks to :func:`validate`, and its task to :mod:`pygan.training.tasks`.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field

from .schedule import SCHEDULES as LR_DECAYS

__all__ = ["Config", "OptimConfig", "ConfigError", "KINDS", "KIND_DEFAULTS", "load", "loads", "replace",
           "to_toml", "to_dict", "from_dict", "validate", "fields_of", "kind_of_model", "PENALTIES",
           "OPTIMIZERS", "LR_DECAYS"]

KINDS = ("gan", "vae", "pix2pix")
PENALTIES = ("none", "gp", "r1", "lipschitz", "lipschitz-one-sided")
OPTIMIZERS = ("adam", "rmsprop", "sgd")


class ConfigError(ValueError):
    """A configuration that cannot run: unknown key, wrong type, bad value."""


@dataclass
class OptimConfig:
    """One network's optimizer (PyTorch's names and defaults for each kind).

    name          "adam" | "rmsprop" | "sgd"
    lr            learning rate
    betas         Adam's (β₁, β₂)
    eps           Adam / RMSProp ε
    alpha         RMSProp's smoothing constant
    momentum      SGD / RMSProp momentum
    weight_decay  L2 penalty added to the gradient (all three)
    """

    name: str = "adam"
    lr: float = 2e-4
    betas: tuple = (0.5, 0.999)
    eps: float = 1e-8
    alpha: float = 0.99
    momentum: float = 0.0
    weight_decay: float = 0.0

    def build(self, params):
        """The pygan optimizer over ``params``."""
        from .. import optim
        if self.name == "adam":
            return optim.Adam(params, lr=self.lr, betas=tuple(self.betas), eps=self.eps,
                              weight_decay=self.weight_decay)
        if self.name == "rmsprop":
            return optim.RMSProp(params, lr=self.lr, alpha=self.alpha, eps=self.eps,
                                 weight_decay=self.weight_decay, momentum=self.momentum)
        if self.name == "sgd":
            return optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        raise ConfigError(f"unknown optimizer {self.name!r}; choose one of {', '.join(OPTIMIZERS)}")

    def describe(self) -> str:
        if self.name == "adam":
            return f"Adam(lr={self.lr:g}, betas=({self.betas[0]:g}, {self.betas[1]:g}))"
        if self.name == "rmsprop":
            return f"RMSProp(lr={self.lr:g}, alpha={self.alpha:g})"
        return f"SGD(lr={self.lr:g}, momentum={self.momentum:g})"


def _only(*kinds, default=dataclasses.MISSING, factory=dataclasses.MISSING):
    """A field that belongs to the given model families only."""
    meta = {"kinds": kinds}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Config:
    """Everything one training run needs. Field by field:

    Every family:
    kind              "gan" | "vae" | "pix2pix": the model family, and so the task that trains it
    name              the run's name (a preset's name; the default run folder is runs/<name>)
    model             a GAN from ``pygan.models.MODELS`` ("mlp", "dcgan-8", "cgan-8", "dcgan-28",
                      …) or a VAE from ``pygan.models.VAE_MODELS`` ("vae-8", "cvae-28", "ae-8", …)
    model_args        overrides for the model's build function (e.g. {"width": 64}); a TOML table
    data              a toy distribution (ring-8, grid-25, swiss-roll, mixture-1d) or images
                      (digits, mnist, fashion)
    data_folder       where the MNIST / Fashion-MNIST IDX files are (images only)
    batch_size        samples per batch (a GAN: real and generated alike)
    steps             training steps (the run's length; a GAN's step is one G step)
    seed              seeds model initialisation and the training generator
    eval_every        quality metrics every this many steps (and at the end); 0 = only at the end
    eval_samples      samples used for the quality metrics (2,500 for Q1/Q2)
    sample_every      sample pictures and the curves every this many steps; 0 = end only
    checkpoint_every  checkpoint every this many steps (and at the end); 0 = only at the end
    log_every         a log line (or progress-bar refresh) and the per-parameter gradient norms
                      every this many steps
    out               the run folder ("" = runs/<name>, made unique)
    backend           the array backend ("numpy", "cupy", "cuda", "cuda-emu")

    A GAN ("gan"):
    data_scale        the model trains on data / data_scale; samples and metrics are in the
                      original coordinates (grid-25 uses 4)
    loss              minimax | nonsaturating | wasserstein | least_squares | hinge
    loss_args         options of the loss (least_squares: a, b, c)
    penalty           none | gp (WGAN-GP on interpolates) | r1 (on real data) | lipschitz |
                      lipschitz-one-sided (finite-difference Lipschitz penalty)
    penalty_weight    λ of gp / lipschitz, γ of r1
    clip              WGAN weight clipping: every D parameter into [−clip, clip] after each D
                      step; 0 = none
    n_critic          D steps per G step
    g_ortho           β of BigGAN's orthogonal regularisation β‖WWᵀ ⊙ (1 − I)‖²_F on every G
                      weight (conv weights as (out, in·k·k); embeddings left out), added to G's
                      gradient each G step; 0 = none (BigGAN's code: 1e-4 ≙ 5e-5 here)
    optim_g, optim_d  the two optimizers (:class:`OptimConfig`)
    lr_decay          "none" | "linear": both learning rates fall linearly from their value at
                      G step ⌊lr_decay_start·steps⌋ to 1/(steps − that) of it at the last step
    lr_decay_start    where the decay starts, as a fraction of ``steps`` in [0, 1)
    ema_decay         β of an exponential moving average of G's parameters, kept beside G and
                      used for evaluation, samples and ``pygan eval`` (0 = none; e.g. 0.999).
                      Training never reads it: a run with it follows the same trajectory as
                      one without

    A VAE ("vae": the autoencoder, VAE and CVAE):
    optim             the one optimizer (default Adam(1e-3, betas (0.9, 0.999)))
    beta              the KL weight β (β-VAE; ignored by the autoencoder)
    beta_warmup       > 0: β rises linearly from 0 over that many steps

    An image-to-image GAN ("pix2pix": a U-Net G, a PatchGAN D on (input, output) pairs):
    loss              the cGAN term's objective (nonsaturating = BCE, as the authors', or
                      least_squares, …); loss_args as a GAN's
    optim_g, optim_d  the two optimizers (Adam(2e-4, (0.5, 0.999)), the authors')
    pair_task         "edges" (the digit's outline → the digit) | "lower-half" (→ the whole digit)
    l1_weight         λ of L_G = gan_weight·cGAN + λ·E|y − G(x)| (100, the paper's); 0 = cGAN alone
    gan_weight        the cGAN term's weight (1); 0 = L1 alone (D is then not trained)
    """

    kind: str = "gan"
    name: str = "ring-8"
    model: str = "mlp"
    model_args: dict = field(default_factory=dict)
    data: str = "ring-8"
    data_folder: str = ""
    data_scale: float = _only("gan", default=1.0)
    loss: str = _only("gan", "pix2pix", default="nonsaturating")
    loss_args: dict = _only("gan", "pix2pix", factory=dict)
    penalty: str = _only("gan", default="none")
    penalty_weight: float = _only("gan", default=10.0)
    clip: float = _only("gan", default=0.0)
    n_critic: int = _only("gan", default=1)
    g_ortho: float = _only("gan", default=0.0)
    optim_g: OptimConfig = _only("gan", "pix2pix", factory=OptimConfig)
    optim_d: OptimConfig = _only("gan", "pix2pix", factory=OptimConfig)
    optim: OptimConfig = _only("vae", factory=lambda: OptimConfig("adam", lr=1e-3, betas=(0.9, 0.999)))
    beta: float = _only("vae", default=1.0)
    beta_warmup: int = _only("vae", default=0)
    pair_task: str = _only("pix2pix", default="edges")
    l1_weight: float = _only("pix2pix", default=100.0)
    gan_weight: float = _only("pix2pix", default=1.0)
    batch_size: int = 256
    steps: int = 20000
    lr_decay: str = _only("gan", default="none")
    lr_decay_start: float = _only("gan", default=0.5)
    ema_decay: float = _only("gan", default=0.0)
    seed: int = 0
    eval_every: int = 1000
    eval_samples: int = 2500
    sample_every: int = 1000
    checkpoint_every: int = 1000
    log_every: int = 100
    out: str = ""
    backend: str = "numpy"

    @classmethod
    def default(cls, kind: str = "gan") -> "Config":
        """The defaults of a model family."""
        if kind not in KINDS:
            raise ConfigError(f"kind: unknown model family {kind!r}; choose one of {', '.join(KINDS)}")
        return cls(kind=kind, **copy.deepcopy(KIND_DEFAULTS[kind]))

    @property
    def is_toy(self) -> bool:
        from ..data import TOY_DATA
        return self.data in TOY_DATA

    @property
    def deterministic(self) -> bool:
        """A VAE run of the (deterministic) autoencoder."""
        return self.kind == "vae" and self.model.startswith("ae-")

    def describe(self) -> str:
        """One line: model, data, objective, optimizers, batch, steps, seed."""
        margs = ", ".join(f"{k}={v}" for k, v in self.model_args.items())
        head = f"{self.model}({margs}) on {self.data}" if margs else f"{self.model} on {self.data}"
        if self.kind == "pix2pix":
            terms = ([f"{self.gan_weight:g}·cGAN({self.loss})"] if self.gan_weight else []) + \
                ([f"{self.l1_weight:g}·L1"] if self.l1_weight else [])
            parts = [f"{head}, task {self.pair_task}", " + ".join(terms),
                     f"G {self.optim_g.describe()}, D {self.optim_d.describe()}"]
        elif self.kind == "vae":
            parts = [head, self.optim.describe()]
            if not self.deterministic:
                parts.append(f"β {self.beta:g}" + (f" (warm-up {self.beta_warmup} steps)" if self.beta_warmup else ""))
        else:
            parts = [head, self.loss]
            if self.data_scale != 1:
                parts[0] += f" (trained on data / {self.data_scale:g})"
            if self.penalty != "none":
                parts.append(f"{self.penalty}(λ={self.penalty_weight:g})")
            if self.clip:
                parts.append(f"clip {self.clip:g}")
            if self.n_critic != 1:
                parts.append(f"n_critic {self.n_critic}")
            if self.g_ortho:
                parts.append(f"orthogonal regularisation of G (β={self.g_ortho:g})")
            parts.append(f"G {self.optim_g.describe()}, D {self.optim_d.describe()}")
            if self.lr_decay != "none":
                parts.append(f"lr {self.lr_decay} decay from {self.lr_decay_start:.0%} of the steps")
            if self.ema_decay:
                parts.append(f"EMA of G (β={self.ema_decay:g}) evaluated")
        parts.append(f"batch {self.batch_size}, {self.steps} steps, seed {self.seed}")
        return "; ".join(parts)


#: each family's defaults where they differ from the class's (which are a GAN's on ring-8)
KIND_DEFAULTS = {
    "gan": {},
    "vae": dict(name="vae-digits", model="vae-8", data="digits", batch_size=64, steps=15000, eval_every=5000,
                eval_samples=1000, sample_every=5000, checkpoint_every=2500, log_every=500),
    "pix2pix": dict(name="pix2pix-edges", model="pix2pix-28", data="mnist", batch_size=32, steps=1500, eval_every=0,
                    eval_samples=500, sample_every=500, checkpoint_every=500, log_every=100),
}


# --- fields and their types (for parsing TOML and --set values) -------------------------------

_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_OPT = {f.name: f for f in dataclasses.fields(OptimConfig)}
_OPTIMIZER_FIELDS = ("optim_g", "optim_d", "optim")
_DICT_FIELDS = ("model_args", "loss_args")


def fields_of(kind: str) -> list:
    """The config fields of a model family, in their order."""
    return [n for n, f in _FIELDS.items() if kind in f.metadata.get("kinds", KINDS)]


def kind_of_model(model: str) -> str | None:
    """The family of a model name ("gan", "vae"), or None for a name no family has."""
    from .. import models
    if model in models.MODELS:
        return "gan"
    if model in models.VAE_MODELS:
        return "vae"
    if model in models.PIX2PIX_MODELS:
        return "pix2pix"
    return None


def _kind(default):
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    if isinstance(default, tuple):
        return tuple
    return dict


_TOP_KIND = {k: _kind(getattr(Config(), k)) for k in _FIELDS}
_OPT_KIND = {k: _kind(getattr(OptimConfig(), k)) for k in _OPT}


def _coerce(where, kind, value):
    """``value`` as ``kind`` (int → float allowed; strings parsed for --set)."""
    if isinstance(value, str) and kind is not str:
        value = _parse_scalar(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if kind is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ConfigError(f"{where} must be a pair of numbers like [0.5, 0.999], got {value!r}")
        return tuple(_coerce(where, float, v) for v in value)
    if kind is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        return dict(value)
    raise AssertionError(kind)


def _parse_scalar(text: str):
    """A --set value: TOML/JSON literal if it parses (1e-4, true, [0, 0.9]), else the string."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def _check_field(cfg: Config, key: str, where: str):
    if key not in _FIELDS:
        raise ConfigError(f"unknown key {key!r} in {where}; valid keys: "
                          f"{', '.join(sorted(fields_of(cfg.kind) + ['preset']))}")
    if key not in fields_of(cfg.kind):
        raise ConfigError(f"{where}: {key} does not apply to a {cfg.kind.upper()} run ({cfg.name}); "
                          f"its keys: {', '.join(fields_of(cfg.kind))}")


def _apply_optim(opt: OptimConfig, table, where):
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {table!r}")
    for k, v in table.items():
        if k not in _OPT:
            raise ConfigError(f"unknown key {k!r} in {where}; valid keys: {', '.join(sorted(_OPT))}")
        setattr(opt, k, _coerce(f"{where}.{k}", _OPT_KIND[k], v))


def _apply(cfg: Config, d: dict, where: str) -> Config:
    """Set the fields named in ``d`` (nested tables for the optimizers and *_args)."""
    for k, v in d.items():
        if k in ("preset", "kind"):
            continue
        _check_field(cfg, k, where)
        if k in _OPTIMIZER_FIELDS:
            _apply_optim(getattr(cfg, k), v, f"{where} [{k}]")
        elif k in _DICT_FIELDS:
            if not isinstance(v, dict):
                raise ConfigError(f"{where}: {k} must be a table, got {v!r}")
            getattr(cfg, k).update(v)
        else:
            setattr(cfg, k, _coerce(f"{where}: {k}", _TOP_KIND[k], v))
    return cfg


# --- validation --------------------------------------------------------------------------------

def validate(cfg: Config) -> Config:
    """Raise :class:`ConfigError` naming the first field that cannot run; return ``cfg``."""
    from .. import losses, models
    from ..data import IMAGE_DATA, TOY_DATA
    PAIRED_DATA = ("mnist", "fashion")
    if cfg.kind not in KINDS:
        raise ConfigError(f"kind: unknown model family {cfg.kind!r}; choose one of {', '.join(KINDS)}")
    family = {"gan": models.MODELS, "vae": models.VAE_MODELS, "pix2pix": models.PIX2PIX_MODELS}[cfg.kind]
    if cfg.model not in family:
        other = kind_of_model(cfg.model)
        raise ConfigError(f"model: {cfg.model!r} is " + (f"a {other.upper()}, not a {cfg.kind.upper()}"
                                                          if other else "unknown")
                          + f"; {cfg.kind.upper()} models: {', '.join(family)}")
    data = {"vae": IMAGE_DATA, "pix2pix": PAIRED_DATA}.get(cfg.kind, TOY_DATA + IMAGE_DATA)
    if cfg.data not in data:
        raise ConfigError(f"data: unknown data {cfg.data!r} for a {cfg.kind.upper()}; choose one of {', '.join(data)}")
    if cfg.data == "fashion" and not cfg.data_folder:
        raise ConfigError(f"data {cfg.data!r} needs data_folder (the folder holding the IDX files)")
    for k in ("batch_size",):
        if getattr(cfg, k) < 1:
            raise ConfigError(f"{k} must be ≥ 1, got {getattr(cfg, k)}")
    for k in ("steps", "eval_every", "sample_every", "checkpoint_every"):
        if getattr(cfg, k) < 0:
            raise ConfigError(f"{k} must be ≥ 0, got {getattr(cfg, k)}")
    if cfg.log_every < 1:
        raise ConfigError(f"log_every must be ≥ 1, got {cfg.log_every}")
    lowest = 1 if cfg.kind == "gan" else 2        # the judge needs two samples
    if cfg.eval_samples < lowest:
        raise ConfigError(f"eval_samples must be ≥ {lowest}, got {cfg.eval_samples}")
    if not 0 <= cfg.seed < 2**63:
        raise ConfigError(f"seed must be in [0, 2⁶³), got {cfg.seed}")
    for opt_name in [n for n in _OPTIMIZER_FIELDS if n in fields_of(cfg.kind)]:
        o = getattr(cfg, opt_name)
        if o.name not in OPTIMIZERS:
            raise ConfigError(f"{opt_name}.name: unknown optimizer {o.name!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not (o.lr >= 0 and math.isfinite(o.lr)):
            raise ConfigError(f"{opt_name}.lr must be a finite number ≥ 0, got {o.lr}")
    if cfg.kind == "vae":
        if "beta" in cfg.model_args:
            raise ConfigError("model_args.beta: the KL weight is the config's beta (--beta)")
        if not (cfg.beta >= 0 and math.isfinite(cfg.beta)):
            raise ConfigError(f"beta must be a number ≥ 0, got {cfg.beta}")
        if cfg.beta_warmup < 0:
            raise ConfigError(f"beta_warmup must be ≥ 0, got {cfg.beta_warmup}")
        return cfg
    if cfg.loss not in losses.names():
        raise ConfigError(f"loss: unknown loss {cfg.loss!r}; choose one of {', '.join(losses.names())}")
    if cfg.kind == "pix2pix":
        return _validate_pix2pix(cfg)
    try:
        losses.get(cfg.loss, **cfg.loss_args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"loss_args: {e}") from None
    if cfg.penalty not in PENALTIES:
        raise ConfigError(f"penalty: unknown penalty {cfg.penalty!r}; choose one of {', '.join(PENALTIES)}")
    if cfg.n_critic < 1:
        raise ConfigError(f"n_critic must be ≥ 1, got {cfg.n_critic}")
    if not (cfg.clip >= 0 and math.isfinite(cfg.clip)):
        raise ConfigError(f"clip must be ≥ 0 (0 = no clipping), got {cfg.clip}")
    if not (cfg.g_ortho >= 0 and math.isfinite(cfg.g_ortho)):
        raise ConfigError(f"g_ortho must be ≥ 0 (0 = no orthogonal regularisation), got {cfg.g_ortho}")
    if not (cfg.penalty_weight >= 0 and math.isfinite(cfg.penalty_weight)):
        raise ConfigError(f"penalty_weight must be ≥ 0, got {cfg.penalty_weight}")
    if cfg.lr_decay not in LR_DECAYS:
        raise ConfigError(f"lr_decay: unknown schedule {cfg.lr_decay!r}; choose one of {', '.join(LR_DECAYS)}")
    if not 0.0 <= cfg.lr_decay_start < 1.0:
        raise ConfigError(f"lr_decay_start must be in [0, 1) (a fraction of steps), got {cfg.lr_decay_start}")
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ConfigError(f"ema_decay must be in [0, 1) (0 = no EMA), got {cfg.ema_decay}")
    if not (cfg.data_scale > 0 and math.isfinite(cfg.data_scale)):
        raise ConfigError(f"data_scale must be > 0, got {cfg.data_scale}")
    return cfg


def _validate_pix2pix(cfg: Config) -> Config:
    from .. import losses
    from ..data import PAIR_TASKS
    try:
        losses.get(cfg.loss, **cfg.loss_args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"loss_args: {e}") from None
    if cfg.pair_task not in PAIR_TASKS:
        raise ConfigError(f"pair_task: unknown paired task {cfg.pair_task!r}; choose one of {', '.join(PAIR_TASKS)}")
    for k in ("l1_weight", "gan_weight"):
        v = getattr(cfg, k)
        if not (v >= 0 and math.isfinite(v)):
            raise ConfigError(f"{k} must be a finite number ≥ 0, got {v}")
    if cfg.l1_weight == 0 and cfg.gan_weight == 0:
        raise ConfigError("l1_weight and gan_weight are both 0: nothing to train (L1 alone: gan_weight = 0; "
                          "cGAN alone: l1_weight = 0)")
    if cfg.eval_samples > 10000:
        raise ConfigError(f"eval_samples: a pix2pix run is evaluated on held-out pairs, at most 10000, "
                          f"got {cfg.eval_samples}")
    return cfg


# --- dict / TOML conversion --------------------------------------------------------------------

def to_dict(cfg: Config) -> dict:
    """A plain dict of the config's own fields (those of its kind; tuples as lists), JSON- and
    TOML-ready."""
    d = dataclasses.asdict(cfg)
    out = {k: d[k] for k in fields_of(cfg.kind)}
    for o in _OPTIMIZER_FIELDS:
        if o in out:
            out[o]["betas"] = list(out[o]["betas"])
    return out


def _infer_kind(d: dict, where: str) -> str:
    if "kind" in d:
        return d["kind"]
    if "preset" in d:
        from .presets import PRESETS
        if d["preset"] in PRESETS:
            return PRESETS[d["preset"]]["kind"]
    if isinstance(d.get("model"), str) and kind_of_model(d["model"]):
        return kind_of_model(d["model"])
    if "optim" in d or "beta" in d:
        return "vae"
    return "gan"


def from_dict(d: dict, where: str = "config") -> Config:
    """The inverse of :func:`to_dict` (missing keys keep their defaults; unknown ones are errors).
    ``preset`` starts from that preset; without ``kind`` the family follows the preset or model."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a table of settings, got {type(d).__name__}")
    kind = _infer_kind(d, where)
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind: unknown model family {kind!r}; choose one of {', '.join(KINDS)}")
    if "preset" in d:
        from .presets import preset
        cfg = preset(d["preset"])
        if cfg.kind != kind:
            raise ConfigError(f"{where}: preset {d['preset']!r} is a {cfg.kind.upper()}, but kind = {kind!r}")
    else:
        cfg = Config.default(kind)
    return _apply(cfg, d, where)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        r = repr(v)                     # shortest round-trip form; TOML needs a digit after '.'
        return r if any(c in r for c in ".en") else r + ".0"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)   # a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def _toml_key(k: str) -> str:
    return k if k and all(c.isalnum() or c in "-_" for c in k) else json.dumps(k)


def to_toml(cfg: Config) -> str:
    """The config as TOML: top-level keys, then one table per nested part.

    Written by hand (the config is flat apart from a few one-level tables), so no TOML-writing
    dependency is needed; :func:`loads` reads it back to an equal config.
    """
    d = to_dict(cfg)
    tables = [k for k in d if k in _OPTIMIZER_FIELDS + _DICT_FIELDS]
    lines = ["# pygan run configuration (pygan train --config this-file)"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in d.items() if k not in tables]
    for t in sorted(tables, key=lambda t: (_DICT_FIELDS + _OPTIMIZER_FIELDS).index(t)):
        lines += ["", f"[{t}]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in d[t].items()]
    return "\n".join(lines) + "\n"


def _tomllib():
    try:
        import tomllib
    except ModuleNotFoundError:          # Python < 3.11
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ImportError("reading TOML on Python < 3.11 needs tomli: pip install tomli") from None
    return tomllib


def _parse_toml(text: str, where: str) -> dict:
    """TOML text as a dict; invalid TOML is a ConfigError naming ``where``."""
    tomllib = _tomllib()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: not valid TOML: {e}") from None


def loads(text: str, where: str = "<string>") -> Config:
    """A config from TOML text (``preset = "…"`` starts from a preset)."""
    return validate(from_dict(_parse_toml(text, where), where))


def load(path) -> Config:
    """A config from a TOML file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path!r} is a folder, not a TOML config file (to continue a run in it: "
                          f"pygan train --resume {path})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start}); "
                          f"a TOML config is UTF-8 text") from None
    return loads(text, path)


def replace(cfg: Config, overrides: dict) -> Config:
    """A copy of ``cfg`` with dotted overrides applied: {"steps": 100, "optim_d.lr": 1e-4,
    "model_args.hidden": 64}. ``optim.<key>`` sets a VAE's optimizer, and both of a GAN's.
    Values may be strings (parsed like TOML literals)."""
    cfg = copy.deepcopy(cfg)
    own = fields_of(cfg.kind)
    for key, v in overrides.items():
        head, _, rest = key.partition(".")
        if head == "kind":
            raise ConfigError(f"kind cannot be overridden (it follows the preset or the model); "
                              f"start from a {v} preset or config instead")
        if rest:
            if head == "optim" and "optim" not in own:     # a GAN: both optimizers
                _apply_optim(cfg.optim_g, {rest: v}, "optim_g")
                _apply_optim(cfg.optim_d, {rest: v}, "optim_d")
            elif head in _OPTIMIZER_FIELDS:
                _check_field(cfg, head, "overrides")
                _apply_optim(getattr(cfg, head), {rest: v}, head)
            elif head in _DICT_FIELDS:
                _check_field(cfg, head, "overrides")
                getattr(cfg, head)[rest] = _parse_scalar(v) if isinstance(v, str) else v
            else:
                tables = [t for t in _OPTIMIZER_FIELDS + _DICT_FIELDS if t in own]
                raise ConfigError(f"unknown key {key!r}: only {', '.join(tables)}"
                                  + (", optim (both)" if "optim" not in own else "") + " have sub-keys")
        else:
            _apply(cfg, {key: v}, "overrides")
    return cfg
