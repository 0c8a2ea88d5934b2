"""The GAN task: any :class:`pygan.models.GANModel`, any loss, penalty, clipping and optimizer.

One step (a step is one generator step) is:

    repeat n_critic times                                    # D steps
        real, labels ← next batch;  z ← N(0, I);  fake ← G(z, labels)        (G forward)
        D.zero_grad()
        r ← D(real);  (ℓ_r, ∂ℓ_r/∂r) ← loss.d_real(r);  D.backward_params(∂ℓ_r/∂r)  (backward
        f ← D(fake);  (ℓ_f, ∂ℓ_f/∂f) ← loss.d_fake(f);  D.backward_params(∂ℓ_f/∂f)   right after
                      its forward; the samples need no gradient, so D's first layer skips ∂/∂x)
        penalty (gp | r1 | lipschitz) adds its θ_D-gradient;  D's optimizer steps;  clipping
    G.zero_grad()
    f ← D(fake)   — the last D step's fake batch, reused: G runs forward once per D step
    (ℓ_G, ∂ℓ_G/∂f) ← loss.g_loss(f);  G.backward(D.backward_input(∂ℓ_G/∂f))
    g_ortho > 0: BigGAN's orthogonal regularisation adds its gradient;  G's optimizer steps
    D.zero_grad()   (D.backward_input leaves D's grads alone; they are cleared all the same)

Conditional models generate with the real batch's labels, so a penalty on interpolates sees
one label per pair. The training generator (the loop's) draws the data order / toy samples, z,
and the penalties' interpolation weights. Two optional extras (config fields): ``lr_decay =
"linear"`` sets both optimizers' rates before every step from a schedule of the step alone, and
``ema_decay = β`` keeps an EMA of G's parameters (checkpointed as ``extra/ema.<key>``) that
evaluation, samples and ``pygan eval`` use (metrics.jsonl keeps the raw G's figures as
``eval_raw``). Neither changes the random draws.

Record of a step: ``d_loss`` and its halves ``d_loss.real``/``d_loss.fake`` and ``penalty``
(means over the D steps), ``g_loss`` (and ``g_ortho``, the regulariser's value, when on), mean D(x) and D(G(z)) (``D_real_prob``/``D_fake_prob``
for the sigmoid losses, else ``_score``), and on logging steps ``grad_norm``: ‖∂L/∂θ‖ of every
parameter (D's after the last D step, G's after its step).
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

from ... import losses, penalties
from ...backend import get_backend, to_device, to_host
from ...evaluation.sampling import generate
from ...files import copy_file
from ...nn.activation import sigmoid
from ..checkpoint import CheckpointError
from ..config import ConfigError
from ..ema import EMA
from ..schedule import lr_factor
from .base import Task, TrainingDiverged, grad_norms

__all__ = ["GANTask", "build_model", "make_stream", "sigmoid_loss"]

_SIGMOID_LOSSES = ("minimax", "nonsaturating")


def sigmoid_loss(name: str) -> bool:
    """Whether D's outputs are logits of a probability under this loss (σ is meaningful)."""
    return name in _SIGMOID_LOSSES


def build_model(cfg, model_config: dict | None = None):
    """The GAN of a config (``pygan.models.build(cfg.model, **cfg.model_args)``), or of a
    checkpoint's model config, after ``pygan.manual_seed(cfg.seed)``; the MLP's ``data_dim``
    follows the toy data unless given."""
    from ... import models
    from ...data import toy
    from ...random import manual_seed
    args = dict(cfg.model_args if model_config is None else model_config)
    name = args.pop("name", cfg.model)
    if name == "mlp" and "data_dim" not in args and cfg.is_toy:
        args["data_dim"] = toy(cfg.data).dim
    manual_seed(cfg.seed)
    try:
        return models.build(name, **args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model_args: {e}") from None


def make_stream(cfg):
    """The batch stream of a config: fresh toy samples, or the shuffled image set."""
    from ...data import ImageStream, ToyStream, load_images, toy
    if cfg.is_toy:
        return ToyStream(toy(cfg.data), cfg.data_scale)
    return ImageStream(*load_images(cfg.data, cfg.data_folder, "train"), scale=cfg.data_scale)


class GANTask(Task):
    """Training state of one GAN run: ``model``, ``data``, ``loss``, ``opt_g``, ``opt_d``, ``ema``."""

    kind = "gan"
    stream_id = 0x7472616E

    def __init__(self, cfg):
        super().__init__(cfg)
        self.data = make_stream(cfg)
        self.model = m = build_model(cfg)
        if tuple(m.data_shape) != tuple(self.data.shape):
            raise ConfigError(f"model {cfg.model!r} makes samples of shape {tuple(m.data_shape)} but "
                              f"{cfg.data!r} samples have shape {tuple(self.data.shape)}")
        if m.num_classes and self.data.labels is None:
            raise ConfigError(f"model {cfg.model!r} is conditional but {cfg.data!r} has no labels")
        self.loss = losses.get(cfg.loss, **cfg.loss_args)
        self._check_penalty()
        self.opt_g = cfg.optim_g.build(m.G.parameters())
        self.opt_d = cfg.optim_d.build(m.D.parameters())
        self._base_lr = (self.opt_g.lr, self.opt_d.lr)
        self._dx_key = "prob" if sigmoid_loss(cfg.loss) else "score"
        self.ema = EMA(m.G.parameters(), cfg.ema_decay) if cfg.ema_decay else None

    def _check_penalty(self):
        cfg, m = self.cfg, self.model
        if cfg.penalty == "none":
            return
        from ...nn import BatchNorm1d, BatchNorm2d
        bn = [name for name, mod in m.D.named_modules() if isinstance(mod, (BatchNorm1d, BatchNorm2d))]
        if bn:
            raise ConfigError(f"penalty {cfg.penalty!r} needs a critic that treats samples independently, "
                              f"but {cfg.model!r}'s D has BatchNorm ({', '.join(bn)}); set "
                              f"model_args.batchnorm_in_d = false (--set model_args.batchnorm_in_d=false)")
        if m.num_classes and not hasattr(m, "critic"):
            raise ConfigError(f"penalty {cfg.penalty!r} is supported for unconditional models only "
                              f"({cfg.model!r} is conditional and has no critic(labels))")

    # -- checkpoint contents --
    def modules(self):
        return {"G": self.model.G, "D": self.model.D}

    def optimizers(self):
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def state(self):
        if self.ema is None:
            return {}, {}
        names = [k for k, _ in self.model.G.named_parameters()]
        return {}, {f"ema.{k}": e for k, e in zip(names, self.ema.values)}

    def load_state(self, ck):
        if self.ema is None:
            return
        for i, (name, p) in enumerate(self.model.G.named_parameters()):
            self.ema.values[i] = _ema_entry(ck, name, p, self.cfg.ema_decay)

    # -- one step --
    def _penalty(self, real, fake, labels, rng):
        # the interpolation weights are drawn for the global batch; this process keeps its rows
        cfg, m, dp = self.cfg, self.model, self.dp
        lam, B = cfg.penalty_weight, cfg.batch_size
        critic = (lambda lab: m.critic(lab) if m.num_classes else m.D)
        if cfg.penalty == "gp":
            return penalties.gradient_penalty(critic(labels), real, fake, lam=lam, alpha=dp.shard(rng.random(B)))
        if cfg.penalty == "r1":
            return penalties.r1_penalty(critic(labels), real, gamma=lam)
        labels2 = None if labels is None else get_backend().xp.concatenate([labels, labels])
        return penalties.lipschitz_penalty(critic(labels2), real, fake, lam=lam,
                                           one_sided=cfg.penalty == "lipschitz-one-sided",
                                           t=dp.shard(rng.random((B, 2))))

    def train_step(self, step, rng, diagnose):
        """One G step with its n_critic D steps; returns the step's metrics record."""
        cfg, m, loss, dp = self.cfg, self.model, self.loss, self.dp
        B = cfg.batch_size                     # the global batch: this process trains on dp.shard of it
        if cfg.lr_decay != "none":
            f = lr_factor(cfg.lr_decay, step, cfg.steps, cfg.lr_decay_start)
            self.opt_g.lr = self._base_lr[0] * f
            self.opt_d.lr = self._base_lr[1] * f
        sums = {"d_loss.real": 0.0, "d_loss.fake": 0.0, "penalty": 0.0, "D_real": 0.0, "D_fake": 0.0}
        norms = {}
        prob = self._dx_key == "prob"
        for _ in range(cfg.n_critic):
            real, labels = self.data.next(B, rng)
            real = to_device(dp.shard(real))
            labels = None if (labels is None or not m.num_classes) else to_device(dp.shard(labels))
            z = dp.shard(m.sample_z(B, rng))
            fake = m.g_forward(z, labels)
            self.opt_d.zero_grad()
            r = m.d_forward(real, labels)
            vr, gr = self.term(loss.d_real, r, "d_loss.real", step)
            m.d_backward_params(gr)
            f = m.d_forward(fake, labels)
            vf, gf = self.term(loss.d_fake, f, "d_loss.fake", step)
            if cfg.penalty == "none":
                dp.arm("D")                    # D's grads complete in this pass
            m.d_backward_params(gf)
            pen = 0.0
            if cfg.penalty != "none":
                try:
                    pen = float(self._penalty(real, fake, labels, rng))
                except NotImplementedError as e:      # a layer without a second-order backward
                    raise ConfigError(f"penalty {cfg.penalty!r} cannot run on {cfg.model!r}'s D: {e}; "
                                      f"use penalty = \"lipschitz\" (first derivatives only)") from None
                if not np.isfinite(pen):
                    raise TrainingDiverged(step, "penalty", pen)
            dp.reduce("D")
            if diagnose:
                norms.update(grad_norms((("D." + k, p) for k, p in m.D.named_parameters()), step))
            self.opt_d.step()
            if cfg.clip:
                penalties.clip_weights(m.D, cfg.clip)
            sums["d_loss.real"] += vr
            sums["d_loss.fake"] += vf
            sums["penalty"] += pen
            sums["D_real"] += float((sigmoid(r) if prob else r).mean())
            sums["D_fake"] += float((sigmoid(f) if prob else f).mean())
        self.opt_g.zero_grad()
        f = m.d_forward(fake, labels)
        vg, gg = self.term(loss.g_loss, f, "g_loss", step)
        gx = m.d_backward_input(gg)
        dp.arm("G")
        m.g_backward(gx)
        dp.reduce("G")
        ortho = penalties.orthogonal_regularization(m.G, cfg.g_ortho) if cfg.g_ortho else None
        if diagnose:
            norms = {**grad_norms((("G." + k, p) for k, p in m.G.named_parameters()), step), **norms}
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(step)
        self.opt_d.zero_grad()
        k = float(cfg.n_critic)
        rec = {"step": step,
               "d_loss": (sums["d_loss.real"] + sums["d_loss.fake"]) / k,
               "d_loss.real": sums["d_loss.real"] / k, "d_loss.fake": sums["d_loss.fake"] / k,
               "penalty": sums["penalty"] / k, "g_loss": vg,
               f"D_real_{self._dx_key}": sums["D_real"] / k, f"D_fake_{self._dx_key}": sums["D_fake"] / k}
        if ortho is not None:
            rec["g_ortho"] = ortho
        if diagnose:
            rec["grad_norm"] = norms
        return rec

    def summary(self, rec):
        d = self._dx_key
        return (f"d_loss {rec['d_loss']:.4f}  g_loss {rec['g_loss']:.4f}  "
                + (f"penalty {rec['penalty']:.4f}  " if self.cfg.penalty != "none" else "")
                + f"D(x) {rec[f'D_real_{d}']:.3f}  D(G(z)) {rec[f'D_fake_{d}']:.3f}")

    # -- evaluation and figures --
    def use_ema(self, on: bool = True):
        """Context manager: G holds the EMA weights inside the block (no-op without EMA)."""
        return self.ema.swapped() if (on and self.ema is not None) else contextlib.nullcontext()

    def evaluate(self, step):
        """Quality figures now (the EMA G's if the run keeps one, with the raw G's beside them),
        on the evaluation generator of this step."""
        from ...evaluation.metrics import format_quality
        rng = lambda: np.random.default_rng((self.cfg.seed, 3, step))     # noqa: E731
        with self.use_ema():
            q = self.evaluate_model(self.model, self.cfg, rng=rng())
        if not q:
            return {}, None
        if self.ema is None:
            return {"eval": q}, f"step {step}: {format_quality(q)}"
        raw = self.evaluate_model(self.model, self.cfg, rng=rng())
        return ({"eval": q, "eval_raw": raw},
                f"step {step}: EMA G {format_quality(q)}; raw G {format_quality(raw)}")

    def _fixed_z(self, n):
        return self.model.sample_z(n, np.random.default_rng((self.cfg.seed, 2)))

    def figures(self, folder, step, final):
        """samples/step_XXXXXX.png: an image grid (64 fixed z; conditional models: one class per
        column; at the end also interpolation.png, latent paths), or for 2-D toy data a scatter over D's surface with the arrows −∂L_G/∂x, for 1-D a
        histogram with D's curve."""
        from ... import plots
        cfg, m = self.cfg, self.model
        path = os.path.join(folder, "samples", f"step_{step:06d}.png")
        title = f"{cfg.name} — step {step}" + (" (EMA of G)" if self.ema is not None else "")
        with self.use_ema():
            if not cfg.is_toy:
                nc = m.num_classes
                n = 8 * nc if nc else 64
                labels = np.arange(n) % nc if nc else None
                x = generate(m, n, None, labels=labels, z=self._fixed_z(n))
                plots.image_grid(x, path, nrow=nc or 8, title=f"{title} (column k: class k)" if nc else title)
            else:
                self._field_figure(path, title)
            if final and not cfg.is_toy:
                plots.latent_interpolation(m, os.path.join(folder, "interpolation.png"),
                                           np.random.default_rng((cfg.seed, 5)),
                                           title=f"{title}: slerp between two z per row"
                                           + (" (row r: class r)" if m.num_classes else ""))
        if final:
            copy_file(path, os.path.join(folder, "samples.png"))

    def _field_figure(self, path, title):
        from ... import plots
        label = "D(x) = σ(logit)" if self._dx_key == "prob" else "D(x) (score)"
        x, surface, arrows, real = self._field(2500, 250)
        if self.data.shape == (2,):
            plots.scatter_2d(x, path, real=real, surface=surface, arrows=arrows, title=title,
                             surface_label=label, means=self.data.dist.means)
        else:
            pdf = None
            if self.data.dist.pdf is not None:
                pdf = (surface[0], self.data.dist.pdf(surface[0]))
            plots.histogram_1d(x, path, real=real, curve=surface, pdf=pdf, title=title, curve_label=label)

    def _field(self, n, n_arrows):
        """Generated points, D on a grid, −∂L_G/∂x at some generated points (original coordinates)."""
        cfg, m = self.cfg, self.model
        s = cfg.data_scale
        rng = np.random.default_rng((cfg.seed, 4))
        x = generate(m, n, None, z=self._fixed_z(n))
        real = self.data.reference(1000, rng)
        fin = x[np.all(np.isfinite(x), axis=1)] * s
        both = np.concatenate([real, fin]) if len(fin) else real
        lo, hi = np.percentile(both, 0.5, axis=0), np.percentile(both, 99.5, axis=0)
        pad = 0.15 * np.maximum(hi - lo, 1e-3)
        lo, hi = lo - pad, hi + pad
        dt = m.D.dtype or np.float32
        prob = self._dx_key == "prob"
        with m.eval_mode():
            if x.shape[1] == 2:
                gx_, gy_ = np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120)
                X, Y = np.meshgrid(gx_, gy_)
                pts = np.stack([X.ravel(), Y.ravel()], axis=1) / s
                out = to_host(m.d_forward(to_device(pts, dt))).reshape(X.shape)
                surface = (gx_, gy_, to_host(sigmoid(out)) if prob else out)
            else:
                xs = np.linspace(lo[0], hi[0], 400)
                out = to_host(m.d_forward(to_device(xs[:, None] / s, dt))).reshape(-1)
                surface = (xs, to_host(sigmoid(out)) if prob else out)
            arrows = None
            k = min(n_arrows, len(x))
            pts = x[:k]
            if k and np.all(np.isfinite(pts)):
                logits = m.d_forward(to_device(pts, dt))
                try:
                    _, g = self.loss.g_loss(logits)
                    gx = to_host(m.d_backward(g)) * k       # per-sample ∂ℓ_G/∂x (undo the mean)
                    arrows = (pts * s, -gx / s)
                except losses.NonFiniteLoss:
                    arrows = None
                m.D.zero_grad()
        return x * s, surface, arrows, real

    def curves(self, records, folder):
        from ... import plots
        plots.curves(records, folder, title=self.cfg.name)

    # -- for pygan sample / eval --
    @classmethod
    def load_model(cls, cfg, ck, ema: bool = True):
        """The checkpoint's GAN with its saved weights; G gets the EMA weights of a run that keeps
        them unless ``ema`` is False."""
        try:
            model = build_model(cfg, ck.model)
        except ConfigError as e:
            raise CheckpointError(f"{ck.path}: cannot rebuild model {ck.model.get('name')!r} from the checkpoint: "
                                  f"{e}") from None
        from ..checkpoint import describe_mismatch
        for which, mod in (("G", model.G), ("D", model.D)):
            why = describe_mismatch(ck, mod, which)
            if why:
                raise CheckpointError(f"{ck.path}: the stored parameters do not fit model "
                                      f"{ck.model.get('name')!r}: {why}")
            mod.load_state_dict(ck.modules[which])
        if ema and cfg.ema_decay:
            for name, p in model.G.named_parameters():
                p.data = _ema_entry(ck, name, p, cfg.ema_decay)
        return model

    @classmethod
    def evaluate_model(cls, model, cfg, n=None, rng=None):
        """Quality figures of the model's samples.

        Toy data with modes (ring-8, grid-25, mixture-1d): ``mode_metrics`` on n samples (default
        ``cfg.eval_samples``) in the original coordinates (× data_scale) → {"modes",
        "total_modes", "hq_percent", "kl"}. Images: the judge's figures
        (:func:`pygan.evaluation.judge.evaluate`)."""
        from ...data import toy
        from ...evaluation import judge, metrics
        n = int(n or cfg.eval_samples)
        rng = rng if rng is not None else np.random.default_rng((cfg.seed, 3))
        if cfg.is_toy:
            dist = toy(cfg.data)
            if dist.means is None:
                return {}
            x = generate(model, n, rng).astype(np.float64) * cfg.data_scale
            return metrics.mode_metrics(x, dist.means, dist.std)
        return dict(judge.evaluate(model, data=cfg.data, n=n, rng=rng, data_folder=cfg.data_folder,
                                   data_scale=cfg.data_scale) or {})


def _ema_entry(ck, name, p, beta):
    """The checkpoint's EMA of G's parameter ``name`` as a device array like ``p``."""
    key = f"ema.{name}"
    if key not in ck.extra:
        raise CheckpointError(f"{ck.path}: the run keeps an EMA of G (ema_decay = {beta:g}) but the "
                              f"checkpoint lacks {key}")
    a = ck.extra[key]
    if tuple(a.shape) != tuple(p.data.shape):
        raise CheckpointError(f"{ck.path}: {key} has shape {tuple(a.shape)}, G's parameter {tuple(p.data.shape)}")
    return to_device(a, p.data.dtype).copy()
