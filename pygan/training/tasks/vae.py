"""The VAE task: the autoencoder, VAE and CVAE of :mod:`pygan.models.vae` (``vae-digits``,
``cvae-digits``, ``ae-digits``, ``vae-mnist``, ``cvae-mnist``). One step is

    x, y ← next batch (shuffled each epoch from the training generator);  ε ~ N(0, I) from it too
    β_t = β·min(1, t/beta_warmup) (β without warm-up);  zero grads
    (loss, parts) ← model.elbo(x, ε, y, β_t);  model.backward();  the optimizer steps

Record of a step: ``loss`` (= recon + β_t·kl, minimised), ``recon`` (−log p(x|z), nats per image),
``kl`` (KL(q(z|x) ‖ N(0, I)), nats per image), ``elbo`` (= −(recon + kl)), ``beta``, and on logging
steps ``grad_norm`` (‖∂loss/∂θ‖ of every parameter). Evaluation: ``test_neg_elbo``,
``test_recon``, ``test_kl`` on held-out images (one fixed ε per image) and the judge's figures
of prior samples (``fid``, ``real_vs_real_fid``, ``cond_accuracy`` for a CVAE, …).

Held-out data: the digits' fixed split (:func:`pygan.data.digits_split`: 1,500 to train, 297
held out); MNIST's / Fashion-MNIST's test files. A NaN/inf in the ELBO stops the run naming the
term (``recon`` or ``kl``). Figures: samples/step_XXXXXX.png (prior samples, a CVAE one class
per row), samples/recon_XXXXXX.png (held-out inputs / reconstructions), samples.png and
reconstructions.png (the last), losses.png.
"""
from __future__ import annotations

import os

import numpy as np

from ...backend import to_device
from ...files import copy_file
from ...losses import NonFiniteLoss
from ..checkpoint import CheckpointError, describe_mismatch
from ..config import ConfigError
from .base import Task, TrainingDiverged, grad_norms

__all__ = ["VAETask", "build_model", "load_split", "kl_weight", "evaluate_elbo"]


def kl_weight(step: int, beta: float, warmup: int) -> float:
    """β·min(1, step/warmup): linear KL warm-up over the first ``warmup`` steps (0: constant β)."""
    if warmup <= 0:
        return float(beta)
    return float(beta) * min(1.0, step / warmup)


def _eps(model, n, rng):
    """ε ~ N(0, I) (n, L) from ``rng`` in the model's dtype (None for the autoencoder)."""
    if model.deterministic:
        return None
    return to_device(rng.standard_normal((n, model.latent_dim)).astype(model.dtype))


def evaluate_elbo(model, images, labels=None, rng: np.random.Generator | None = None, batch: int = 500) -> dict:
    """Mean ``loss``/``recon``/``kl``/``elbo`` per image over a whole set (one ε per image, from
    ``rng``); no parameter changes (the grads are not touched)."""
    rng = np.random.default_rng(0) if rng is None else rng
    n = len(images)
    totals = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "elbo": 0.0}
    for s in range(0, n, batch):
        xb = to_device(images[s:s + batch], model.dtype)
        lb = None if not model.conditional else to_device(labels[s:s + batch])
        _, parts = model.elbo(xb, _eps(model, xb.shape[0], rng), lb)
        for k in totals:
            totals[k] += parts[k] * xb.shape[0]
    model._cache = None          # disarm backward: these caches are not meant for an update
    return {k: v / n for k, v in totals.items()}


def load_split(cfg):
    """((x_train, y_train), (x_heldout, y_heldout)): the digits' fixed 1,500 / 297 split, or
    MNIST's train / test files."""
    from ...data import load_images
    if cfg.data == "digits":
        return load_images("digits", split="fit"), load_images("digits", split="heldout")
    return load_images(cfg.data, cfg.data_folder, "train"), load_images(cfg.data, cfg.data_folder, "test")


def build_model(cfg, model_config: dict | None = None):
    """The VAE of a config (or of a checkpoint's model config) after ``pygan.manual_seed(cfg.seed)``;
    the KL weight is the config's ``beta``."""
    from ...models.vae import build_vae
    from ...random import manual_seed
    args = dict(cfg.model_args if model_config is None else model_config)
    name = args.pop("name", cfg.model)
    manual_seed(cfg.seed)
    try:
        model = build_vae(name, **args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model_args: {e}") from None
    if model_config is None and not model.deterministic:
        model.beta = float(cfg.beta)
    return model


class VAETask(Task):
    """Training state of one VAE run: ``model``, ``data``, ``opt``, ``heldout`` ((x, y))."""

    kind = "vae"
    stream_id = 0x766165

    def __init__(self, cfg):
        from ...data import ImageStream
        super().__init__(cfg)
        (x, y), self.heldout = load_split(cfg)
        self.data = ImageStream(x, y)
        self.model = m = build_model(cfg)
        if tuple(m.data_shape) != self.data.shape:
            raise ConfigError(f"model {cfg.model!r} takes images of shape {tuple(m.data_shape)} but "
                              f"{cfg.data!r} images have shape {self.data.shape}")
        self.opt = cfg.optim.build(m.parameters())

    def modules(self):
        return {"model": self.model}

    def optimizers(self):
        return {"opt": self.opt}

    def train_step(self, step, rng, diagnose):
        """One optimizer step on one batch; returns the step's record."""
        cfg, m, dp = self.cfg, self.model, self.dp
        x, y = self.data.next(cfg.batch_size, rng)     # the global batch; this process keeps its rows
        x = to_device(dp.shard(x))
        y = to_device(dp.shard(y)) if m.conditional else None
        beta = 0.0 if m.deterministic else kl_weight(step, cfg.beta, cfg.beta_warmup)
        eps = dp.shard(_eps(m, cfg.batch_size, rng))
        self.opt.zero_grad()
        dp.arm("model")
        try:
            _, parts = m.elbo_and_backward(x, eps, y, beta)
        except NonFiniteLoss as e:          # the ELBO names its term: recon or kl
            raise TrainingDiverged(step, e.term or "elbo", e.value, str(e)) from None
        dp.reduce("model")
        rec = {"step": step, **parts, "beta": beta}
        if diagnose:
            rec["grad_norm"] = grad_norms(m.named_parameters(), step)
        self.opt.step()
        return rec

    def summary(self, rec):
        return (f"loss {rec['loss']:.3f}  recon {rec['recon']:.3f}  kl {rec['kl']:.3f}  ELBO {rec['elbo']:.3f}"
                + (f"  β {rec['beta']:.3g}" if self.cfg.beta_warmup else ""))

    def evaluate(self, step):
        from ...evaluation.metrics import format_quality
        q = self.evaluate_model(self.model, self.cfg, rng=np.random.default_rng((self.cfg.seed, 3, step)),
                                heldout=self.heldout)
        return {"eval": q}, f"step {step}: {format_quality(q)}"

    def figures(self, folder, step, final):
        from ...plots import vae as vae_plots
        cfg, m = self.cfg, self.model
        title = f"{cfg.name} — step {step}"
        s = os.path.join(folder, "samples", f"step_{step:06d}.png")
        vae_plots.prior_samples(m, s, 100, np.random.default_rng((cfg.seed, 2)),
                                title=f"{title}: samples from the prior" + (" (row r: class r)" if m.conditional else ""))
        x, y = self.heldout
        r = os.path.join(folder, "samples", f"recon_{step:06d}.png")
        vae_plots.reconstructions(m, x[:32], r, y[:32] if m.conditional else None,
                                  title=f"{title}: held-out input / reconstruction")
        if final:
            copy_file(s, os.path.join(folder, "samples.png"))
            copy_file(r, os.path.join(folder, "reconstructions.png"))
            a, b = slice(0, 8), slice(8, 16)      # eight held-out pairs
            vae_plots.interpolations(m, x[a], x[b], os.path.join(folder, "interpolation.png"),
                                     labels_a=y[a] if m.conditional else None,
                                     labels_b=y[b] if m.conditional else None,
                                     title=f"{title}: decoding between the posterior means of held-out pairs")

    def curves(self, records, folder):
        from ...plots import vae as vae_plots
        from ...plots import grad_norm_figure
        vae_plots.curves(records, folder, title=f"{self.cfg.name} — {self.model.describe()}")
        grad_norm_figure(records, os.path.join(folder, "grad_norms.png"), self.cfg.name)

    @classmethod
    def load_model(cls, cfg, ck, **options):
        try:
            model = build_model(cfg, ck.model)
        except ConfigError as e:
            raise CheckpointError(f"{ck.path}: cannot rebuild model {ck.model.get('name')!r} from the "
                                  f"checkpoint: {e}") from None
        why = describe_mismatch(ck, model, "model")
        if why:
            raise CheckpointError(f"{ck.path}: the stored parameters do not fit model {ck.model.get('name')!r}: {why}")
        model.load_state_dict(ck.modules["model"])
        return model

    @classmethod
    def evaluate_model(cls, model, cfg, n=None, rng=None, heldout=None):
        """Held-out ``test_neg_elbo`` = recon + KL (β = 1; for the autoencoder the reconstruction
        alone), ``test_recon``, ``test_kl`` (nats per image, one ε per image from a fixed
        generator), then the judge's figures of n (default ``cfg.eval_samples``) prior samples."""
        from ...evaluation import judge
        x, y = heldout if heldout is not None else load_split(cfg)[1]
        p = evaluate_elbo(model, x, y if model.conditional else None, rng=np.random.default_rng((cfg.seed, 5)))
        q = {"test_neg_elbo": -p["elbo"], "test_recon": p["recon"], "test_kl": p["kl"]}
        rng = rng if rng is not None else np.random.default_rng((cfg.seed, 3))
        q.update(judge.evaluate(model, data=cfg.data, n=int(n or cfg.eval_samples), rng=rng,
                                data_folder=cfg.data_folder or None))
        return q
