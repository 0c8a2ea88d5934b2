"""The named presets of ``pygan train``: one registry for every model family.

``preset(name)`` gives a fresh :class:`~pygan.training.config.Config`; ``presets()`` lists the
names, ``DEFAULT_PRESET`` is what ``pygan train`` runs without arguments. Each entry is a dict of
config fields with its ``kind``. The settings behind the quality tables (their measured figures
are in benchmarks/results/ and the README) are defined here once.

Adding a preset: add an entry to :func:`_gan_presets`, :func:`_vae_presets` or
:func:`_pix2pix_presets` (or a new family's function), with a name that says model, objective and data (``wgan-gp-ring-8``).
"""
from __future__ import annotations

import copy

from .config import Config, ConfigError, OptimConfig

__all__ = ["PRESETS", "DEFAULT_PRESET", "presets", "preset"]

DEFAULT_PRESET = "dcgan-digits"


def _adam(lr=2e-4, betas=(0.5, 0.999)):
    return OptimConfig("adam", lr=lr, betas=betas)


def _toy(name, data, **kw):
    base = dict(name=name, model="mlp", data=data, data_scale=4.0 if data == "grid-25" else 1.0,
                batch_size=256, steps=20000, eval_every=1000, sample_every=2000, checkpoint_every=1000)
    base.update(kw)
    return base


def _wgan_settings():      # Arjovsky et al.: clipping 0.01, RMSProp 5e-5, n_critic 5
    return dict(loss="wasserstein", clip=0.01, n_critic=5, optim_g=OptimConfig("rmsprop", lr=5e-5),
                optim_d=OptimConfig("rmsprop", lr=5e-5))


def _critic_adam():         # Gulrajani et al.'s training: n_critic 5, Adam(1e-4, (0, 0.9)) for G and D
    return dict(n_critic=5, optim_g=_adam(1e-4, (0.0, 0.9)), optim_d=_adam(1e-4, (0.0, 0.9)))


def _wgan(name, data):
    return _toy(name, data, **_wgan_settings())


def _wgan_gp(name, data, lam):   # Gulrajani et al.: λ = 10
    return _toy(name, data, loss="wasserstein", penalty="gp", penalty_weight=lam, steps=10000,
                **_critic_adam())


# The Q1/Q2 recipe per data set: a constant learning rate, then a linear decay over the last
# steps, and the EMA of G evaluated. ring-8: a 5× larger rate (1e-3) for 15k steps moves mass
# between modes fast enough to even them out (at 2e-4 a starved mode stays starved), the EMA
# removes the jitter that rate causes, the decay over the last 5k sharpens. grid-25: the plain
# GAN's rate for 28k steps (its 25 modes need the time), then 12k steps of decay.
_DECAY_EMA = {"ring-8": dict(steps=20000, lr_decay_start=0.75, optim_g=_adam(1e-3), optim_d=_adam(1e-3)),
              "grid-25": dict(steps=40000, lr_decay_start=0.7)}


# The same recipe for the penalised critics (Q1/Q2 table; benchmarks/results/quality.md holds the
# figures and the sweeps behind each setting): the linear lr decay over the last quarter and the EMA of
# G, and for the critics whose slope is bounded (spectral norm, the gradient and Lipschitz
# penalties) the data scaled *up* (data_scale < 1: the model trains on data / data_scale). A
# 1-Lipschitz critic separates two points at distance d by at most d: on ring-8 (radius 1, modes
# of std 0.01) its values span ~0.3 under spectral norm — it never reaches the hinge margins ±1 —
# and the gradient penalty's critic is too flat around each mode to pull G's samples within
# 3 std. Scaling the data by 4-10 gives the critic the range the hinge loss and the penalty
# assume, in the coordinates the metrics never see (samples are scored in the original ones).
_PENALISED_DECAY_EMA = {
    ("wgan-gp", "ring-8"): dict(data_scale=0.1, steps=5000),
    ("wgan-gp-0.1", "ring-8"): dict(steps=5000),
    ("r1", "ring-8"): dict(steps=20000, optim_g=_adam(1e-3), optim_d=_adam(1e-3)),   # the GAN recipe's rate
    ("lipschitz", "ring-8"): dict(data_scale=0.1, steps=5000),
    ("sn-hinge", "ring-8"): dict(data_scale=0.25, steps=5000),
    # grid-25 at λ = 10 needs capacity: at width 128 the critic follows 23-24 of the 25 modes;
    # width 256 at twice the rate follows all 25
    ("wgan-gp", "grid-25"): dict(data_scale=0.4, steps=10000, model_args={"width": 256},
                                 optim_g=_adam(2e-4, (0.0, 0.9)), optim_d=_adam(2e-4, (0.0, 0.9))),
    ("wgan-gp-0.1", "grid-25"): dict(steps=5000),
    ("r1", "grid-25"): dict(steps=60000, lr_decay_start=0.7),      # longer than the GAN recipe
    # the two-sided Lipschitz penalty has a barrier at slope 0 (README): data ×10 removes it; like
    # WGAN-GP it needs width 256 at twice the rate, and 30k G steps to even out the 25 modes
    ("lipschitz", "grid-25"): dict(data_scale=0.1, steps=30000, model_args={"width": 256},
                                   optim_g=_adam(2e-4, (0.0, 0.9)), optim_d=_adam(2e-4, (0.0, 0.9))),
    ("sn-hinge", "grid-25"): dict(data_scale=0.25, n_critic=2, steps=20000),
    # WGAN-LP as Petzka et al. define it: only slopes above 1 are penalised
    ("lipschitz", "ring-8", "one-sided"): dict(penalty="lipschitz-one-sided", steps=5000),
    ("lipschitz", "grid-25", "one-sided"): dict(penalty="lipschitz-one-sided", steps=15000),
}


def _gan_presets():
    p = {}
    for data in ("ring-8", "grid-25"):
        p[data] = _toy(data, data)
        p[f"minimax-{data}"] = _toy(f"minimax-{data}", data, loss="minimax")
        p[f"lsgan-{data}"] = _toy(f"lsgan-{data}", data, loss="least_squares")
        p[f"hinge-{data}"] = _toy(f"hinge-{data}", data, loss="hinge")
        p[f"wgan-{data}"] = _wgan(f"wgan-{data}", data)
        p[f"wgan-gp-{data}"] = _wgan_gp(f"wgan-gp-{data}", data, 10.0)
        p[f"wgan-gp-0.1-{data}"] = _wgan_gp(f"wgan-gp-0.1-{data}", data, 0.1)
        p[f"r1-{data}"] = _toy(f"r1-{data}", data, penalty="r1", penalty_weight=10.0)
        p[f"sn-hinge-{data}"] = _toy(f"sn-hinge-{data}", data, loss="hinge",
                                     model_args={"spectral_norm": True})
        # sharper modes for Q1/Q2 (benchmarks/bench_quality.py): the plain GAN with an EMA of G's
        # weights (β = 0.999) evaluated, and the recipe (lr decay + EMA)
        p[f"{data}-ema"] = _toy(f"{data}-ema", data, ema_decay=0.999)
        p[f"{data}-decay-ema"] = _toy(f"{data}-decay-ema", data, ema_decay=0.999, lr_decay="linear",
                                      **_DECAY_EMA[data])
        p[f"lipschitz-{data}"] = _toy(f"lipschitz-{data}", data, loss="wasserstein", penalty="lipschitz",
                                      penalty_weight=10.0, steps=10000, **_critic_adam())
    for (method, data, *variant), kw in _PENALISED_DECAY_EMA.items():
        name = "-".join([method, *variant, data, "decay-ema"])
        p[name] = {**p[f"{method}-{data}"], "name": name, "ema_decay": 0.999, "lr_decay": "linear",
                   "lr_decay_start": 0.75, **kw}
    p["mixture-1d"] = _toy("mixture-1d", "mixture-1d", steps=5000, sample_every=1000)
    img = dict(batch_size=64, eval_every=0, eval_samples=1000, log_every=250)
    # the default of `pygan train` (its time on two cores: README)
    p["dcgan-digits"] = dict(name="dcgan-digits", model="dcgan-8", model_args={"width": 32}, data="digits",
                             steps=4000, sample_every=1000, checkpoint_every=1000, **img)
    p["cgan-digits"] = dict(name="cgan-digits", model="cgan-8", model_args={"width": 32}, data="digits",
                            steps=4000, sample_every=1000, checkpoint_every=1000, **img)
    # the constrained critics of Q1/Q2 on the digits (D without BatchNorm where a penalty or
    # spectral norm needs a critic that treats samples independently; WGAN's clipping keeps the
    # DCGAN critic, BatchNorm included, as Arjovsky et al. did): WGAN's and WGAN-GP's authors'
    # optimizers for those two and the Lipschitz penalties, the GAN's for R1
    digits = dict(model="dcgan-8", data="digits", sample_every=500, checkpoint_every=500, **img)
    per_sample = {"width": 32, "batchnorm_in_d": False}
    p["wgan-digits"] = dict(name="wgan-digits", model_args={"width": 32}, steps=2000, **_wgan_settings(),
                            **digits)
    for pen in ("gp", "lipschitz", "lipschitz-one-sided"):
        name = f"{'wgan-gp' if pen == 'gp' else pen}-digits"
        p[name] = dict(name=name, model_args=per_sample, loss="wasserstein", penalty=pen, penalty_weight=10.0,
                       steps=2000, **_critic_adam(), **digits)
    p["r1-digits"] = dict(name="r1-digits", model_args=per_sample, penalty="r1", penalty_weight=10.0,
                          steps=4000, **digits)
    # WGAN-GP's optimizer (Adam 1e-4, (0, 0.9), 5 D steps): the spectral-norm critic with the GAN's
    # Adam and one or two D steps trains worse (benchmarks/results/digits_penalties.md)
    p["sn-hinge-digits"] = dict(name="sn-hinge-digits", model_args={**per_sample, "spectral_norm": True},
                                loss="hinge", steps=4000, **_critic_adam(), **digits)
    # the constrained critics at 28×28, as on the digits: the DCGAN-28 critic without BatchNorm
    mnist = dict(model="dcgan-28", data="mnist", data_folder="data/mnist", sample_every=500, checkpoint_every=500,
                 **img)
    p["wgan-gp-mnist"] = dict(name="wgan-gp-mnist", model_args={"batchnorm_in_d": False}, loss="wasserstein",
                              penalty="gp", penalty_weight=10.0, steps=1000, **_critic_adam(), **mnist)
    p["sn-hinge-mnist"] = dict(name="sn-hinge-mnist", model_args={"batchnorm_in_d": False, "spectral_norm": True},
                               loss="hinge", steps=2000, **_critic_adam(), **mnist)
    p["r1-mnist"] = dict(name="r1-mnist", model_args={"batchnorm_in_d": False}, penalty="r1", penalty_weight=10.0,
                         steps=4000, **mnist)
    for kind in ("mnist", "fashion"):
        p[f"dcgan-{kind}"] = dict(name=f"dcgan-{kind}", model="dcgan-28", data=kind,
                                  data_folder=f"data/{kind}", steps=5000, sample_every=500,
                                  checkpoint_every=500, **img)
        p[f"cgan-{kind}"] = dict(name=f"cgan-{kind}", model="cgan-28", data=kind,
                                 data_folder=f"data/{kind}", steps=5000, sample_every=500,
                                 checkpoint_every=500, **img)
    # BigGAN (Brock et al. 2019) scaled to the 28×28 digits: hinge loss, 2 D steps per G step, Adam
    # (β₁ = 0, β₂ = 0.999) at one rate for both, orthogonal regularisation of G at the code's
    # strength (1e-4 there ≙ 5e-5 here), an EMA of G evaluated; width 16 and 1,000 G steps keep a
    # run within ~4 minutes on one core (benchmarks/bench_biggan.py runs the ablation)
    p["biggan-mnist"] = dict(name="biggan-mnist", model="biggan-28", data="mnist", data_folder="data/mnist",
                             loss="hinge", n_critic=2, optim_g=_adam(2e-4, (0.0, 0.999)),
                             optim_d=_adam(2e-4, (0.0, 0.999)), g_ortho=5e-5, ema_decay=0.999,
                             steps=1000, batch_size=32, eval_every=0, eval_samples=1000, log_every=100,
                             sample_every=500, checkpoint_every=500)
    return p

def _vae_presets():
    mnist = dict(data_folder="data/mnist", steps=5000, eval_every=0, sample_every=1000, checkpoint_every=500,
                 log_every=100)
    return {
        "vae-digits": dict(name="vae-digits", model="vae-8", data="digits"),
        "cvae-digits": dict(name="cvae-digits", model="cvae-8", data="digits"),
        "ae-digits": dict(name="ae-digits", model="ae-8", data="digits"),
        "vae-mnist": dict(name="vae-mnist", model="vae-28", data="mnist", **mnist),
        "cvae-mnist": dict(name="cvae-mnist", model="cvae-28", data="mnist", **mnist),
    }


def _pix2pix_presets():
    """pix2pix on the real digits, each task with the paper's ablation (Isola et al. 2017, Table 1):
    L1 + cGAN (λ = 100, BCE), L1 alone, cGAN alone; sized to train in a few minutes on one core."""
    p = {}
    base = dict(model="pix2pix-28", data="mnist", data_folder="data/mnist", batch_size=32, steps=1500,
                sample_every=500, checkpoint_every=500, log_every=100, eval_every=0, eval_samples=500)
    for task in ("edges", "lower-half"):
        p[f"pix2pix-{task}"] = dict(name=f"pix2pix-{task}", pair_task=task, **base)
        p[f"pix2pix-{task}-l1"] = dict(name=f"pix2pix-{task}-l1", pair_task=task, gan_weight=0.0, **base)
        p[f"pix2pix-{task}-cgan"] = dict(name=f"pix2pix-{task}-cgan", pair_task=task, l1_weight=0.0, **base)
    return p


def _registry():
    out = {}
    for kind, entries in (("gan", _gan_presets()), ("vae", _vae_presets()), ("pix2pix", _pix2pix_presets())):
        for name, d in entries.items():
            out[name] = {"kind": kind, **d}
    return out


PRESETS = _registry()


def presets() -> list:
    """The preset names."""
    return list(PRESETS)


def preset(name: str) -> Config:
    """A fresh :class:`Config` for the preset ``name``."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)} (pygan presets "
                          f"describes each)")
    d = copy.deepcopy(PRESETS[name])
    cfg = Config.default(d.pop("kind"))
    for k, v in d.items():
        setattr(cfg, k, v)
    return cfg
