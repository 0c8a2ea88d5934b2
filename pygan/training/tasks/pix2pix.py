"""The pix2pix task: image-to-image translation on paired digits (``pix2pix-edges``,
``pix2pix-lower-half`` and the ablation presets ``*-l1``, ``*-cgan``). One step is the authors'
(``pix2pix_model.optimize_parameters``), with the pair (x, y) from the training generator:

    ŷ ← G(x)
    if gan_weight > 0:                                             # D step (skipped for L1 alone)
        D.zero_grad();  r ← D([x, y]);  D.backward_params(½ ∂ℓ_real/∂r)
                        f ← D([x, ŷ]);  D.backward_params(½ ∂ℓ_fake/∂f);  D's optimizer steps
    G.zero_grad()
    g ← gan_weight · (D.backward_input(∂ℓ_G/∂D([x, ŷ])))[:, C_x:]   (through the updated D)
    g += l1_weight · sign(ŷ − y)/n                                  (the L1 term)
    G.backward_params(g);  G's optimizer steps;  D.zero_grad()

(docs/gradients.md#the-objective-and-its-gradients). Record of a step: ``g_loss`` (= gan_weight·g_gan +
l1_weight·l1, minimised), ``l1`` (E|y − G(x)| per pixel), ``g_gan`` (G's cGAN term), and when D is
trained ``d_loss`` (½(real + fake)) with its halves ``d_loss.real`` / ``d_loss.fake`` and mean
D(x, y), D(x, G(x)) over patches (``D_real_prob``/``D_fake_prob`` for the sigmoid losses, else
``_score``); on logging steps ``grad_norm``.

Evaluation (``pygan eval``, and at ``eval_every``): on the task's held-out pairs, G in eval mode:
``l1`` (per pixel), the judge's ``fid`` of the outputs against the real digits and its
``accuracy`` on the outputs against the target's label (with ``real_vs_real_fid``, the noise
floor, and ``target_accuracy``: the judge's accuracy on the targets themselves) and the blur
measures ``sharpness`` and ``grey_fraction``. Figures:
samples/step_XXXXXX.png — rows input | output | target of 16 fixed held-out pairs (two of each of
eight digits); samples.png (the last); losses.png.
"""
from __future__ import annotations

import os

import numpy as np

from ... import losses
from ...backend import to_device, to_host
from ...files import copy_file
from ...nn.activation import sigmoid
from ..checkpoint import CheckpointError, describe_mismatch
from ..config import ConfigError
from .base import Task, TrainingDiverged, grad_norms
from .gan import sigmoid_loss

__all__ = ["Pix2PixTask", "build_model", "translate", "heldout_pairs", "figure_rows"]


def build_model(cfg, model_config: dict | None = None):
    """The pix2pix model of a config (or of a checkpoint's model config) after
    ``pygan.manual_seed(cfg.seed)``."""
    from ...models.pix2pix import build_pix2pix
    from ...random import manual_seed
    args = dict(cfg.model_args if model_config is None else model_config)
    name = args.pop("name", cfg.model)
    manual_seed(cfg.seed)
    try:
        return build_pix2pix(name, **args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model_args: {e}") from None


def heldout_pairs(cfg):
    """(inputs, targets, labels) of the config's task on the held-out split."""
    from ...data import load_pairs
    return load_pairs(cfg.pair_task, cfg.data, cfg.data_folder or None, "test")


def translate(model, inputs, chunk: int = 500) -> np.ndarray:
    """G(inputs) with every network in eval mode (each module's mode restored after), in chunks,
    as host float32."""
    x = np.asarray(inputs, dtype=np.float32)
    out = []
    with model.eval_mode():
        for s in range(0, len(x), chunk):
            out.append(np.array(to_host(model.g_forward(to_device(x[s:s + chunk], model.dtype))), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0,) + tuple(model.data_shape), np.float32)


def figure_rows(labels, per_class: int = 2, classes=range(8)) -> np.ndarray:
    """Indices of ``per_class`` examples of each class in ``classes`` (the first ones in order)."""
    labels = np.asarray(labels)
    idx = [i for c in classes for i in np.flatnonzero(labels == c)[:per_class]]
    return np.asarray(idx, dtype=np.int64)


class Pix2PixTask(Task):
    """Training state of one pix2pix run: ``model``, ``data`` (pairs stacked as channels
    [x, y]), ``loss``, ``opt_g``, ``opt_d``."""

    kind = "pix2pix"
    stream_id = 0x70327078

    def __init__(self, cfg):
        from ...data import ImageStream, load_pairs
        super().__init__(cfg)
        x, y, labels = load_pairs(cfg.pair_task, cfg.data, cfg.data_folder or None, "train")
        self.model = m = build_model(cfg)
        if tuple(x.shape[1:]) != m.input_shape or tuple(y.shape[1:]) != m.data_shape:
            raise ConfigError(f"model {cfg.model!r} maps {m.input_shape} to {m.data_shape} but the "
                              f"{cfg.pair_task!r} pairs of {cfg.data!r} are {tuple(x.shape[1:])} → {tuple(y.shape[1:])}")
        if cfg.batch_size > len(x):
            raise ConfigError(f"batch_size {cfg.batch_size} is larger than the {len(x)} training pairs")
        self.data = ImageStream(np.concatenate([x, y], axis=1), labels)
        self.loss = losses.get(cfg.loss, **cfg.loss_args)
        self.opt_g = cfg.optim_g.build(m.G.parameters())
        self.opt_d = cfg.optim_d.build(m.D.parameters())
        self._dx_key = "prob" if sigmoid_loss(cfg.loss) else "score"
        self._heldout = None

    @property
    def heldout(self):
        if self._heldout is None:
            self._heldout = heldout_pairs(self.cfg)
        return self._heldout

    def modules(self):
        return {"G": self.model.G, "D": self.model.D}

    def optimizers(self):
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    # -- one step --
    def train_step(self, step, rng, diagnose):
        cfg, m, loss = self.cfg, self.model, self.loss
        pair, _ = self.data.next(cfg.batch_size, rng)
        c = m.in_channels
        x, y = to_device(np.ascontiguousarray(pair[:, :c])), to_device(np.ascontiguousarray(pair[:, c:]))
        fake = m.g_forward(x)
        rec = {"step": step}
        norms = {}
        gan = cfg.gan_weight > 0
        prob = self._dx_key == "prob"
        if gan:
            self.opt_d.zero_grad()
            r = m.d_forward(x, y)
            vr, gr = self.term(loss.d_real, r, "d_loss.real", step)
            gr *= gr.dtype.type(0.5)
            m.d_backward_params(gr)
            f = m.d_forward(x, fake)
            vf, gf = self.term(loss.d_fake, f, "d_loss.fake", step)
            gf *= gf.dtype.type(0.5)
            m.d_backward_params(gf)
            if diagnose:
                norms.update(grad_norms((("D." + k, p) for k, p in m.D.named_parameters()), step))
            self.opt_d.step()
            rec.update({"d_loss": 0.5 * (vr + vf), "d_loss.real": vr, "d_loss.fake": vf,
                        f"D_real_{self._dx_key}": float((sigmoid(r) if prob else r).mean()),
                        f"D_fake_{self._dx_key}": float((sigmoid(f) if prob else f).mean())})
        self.opt_g.zero_grad()
        v_l1, g = self.term(lambda a: losses.l1_loss(a, y), fake, "l1", step)
        g *= g.dtype.type(cfg.l1_weight)
        v_gan = 0.0
        if gan:
            f = m.d_forward(x, fake)
            v_gan, gg = self.term(loss.g_loss, f, "g_gan", step)
            gy = m.d_backward_input(gg)
            gy *= gy.dtype.type(cfg.gan_weight)
            g += gy
        m.g_backward(g)
        if diagnose:
            norms = {**grad_norms((("G." + k, p) for k, p in m.G.named_parameters()), step), **norms}
        self.opt_g.step()
        self.opt_d.zero_grad()
        rec.update({"g_loss": cfg.gan_weight * v_gan + cfg.l1_weight * v_l1, "l1": v_l1, "g_gan": v_gan})
        if diagnose:
            rec["grad_norm"] = norms
        return rec

    def summary(self, rec):
        s = f"g_loss {rec['g_loss']:.4f}  L1 {rec['l1']:.4f}"
        if "d_loss" in rec:
            d = self._dx_key
            s += (f"  g_gan {rec['g_gan']:.4f}  d_loss {rec['d_loss']:.4f}  D(x,y) {rec[f'D_real_{d}']:.3f}  "
                  f"D(x,G(x)) {rec[f'D_fake_{d}']:.3f}")
        return s

    # -- evaluation and figures --
    def evaluate(self, step):
        from ...evaluation.metrics import format_quality
        q = self.evaluate_model(self.model, self.cfg, rng=np.random.default_rng((self.cfg.seed, 3, step)),
                                heldout=self.heldout)
        return {"eval": q}, f"step {step}: {format_quality(q)}"

    def figures(self, folder, step, final):
        from ...plots import pix2pix as plots
        x, y, labels = self.heldout
        idx = figure_rows(labels)
        out = translate(self.model, x[idx])
        path = os.path.join(folder, "samples", f"step_{step:06d}.png")
        plots.translation_rows([x[idx], out, y[idx]], ["input", "G(input)", "target"], path,
                               title=f"{self.cfg.name}, step {step} (held out)", blocks=2)
        if final:
            copy_file(path, os.path.join(folder, "samples.png"))

    def curves(self, records, folder):
        from ...plots import pix2pix as plots
        plots.curves(records, folder, title=f"{self.cfg.name} — {self.cfg.describe()}")

    # -- for pygan sample / eval --
    @classmethod
    def load_model(cls, cfg, ck, **options):
        try:
            model = build_model(cfg, ck.model)
        except ConfigError as e:
            raise CheckpointError(f"{ck.path}: cannot rebuild model {ck.model.get('name')!r} from the "
                                  f"checkpoint: {e}") from None
        for which, mod in (("G", model.G), ("D", model.D)):
            why = describe_mismatch(ck, mod, which)
            if why:
                raise CheckpointError(f"{ck.path}: the stored parameters do not fit model "
                                      f"{ck.model.get('name')!r}: {why}")
            mod.load_state_dict(ck.modules[which])
        return model

    @classmethod
    def evaluate_model(cls, model, cfg, n=None, rng=None, heldout=None):
        """The ablation's figures on n (default ``cfg.eval_samples``; fewer than all: a fixed random
        subset) held-out pairs:
        ``l1`` (mean |G(x) − y| per pixel, in the [−1, 1] grey levels), the judge's ``fid`` of the
        outputs against the real digits (``real_vs_real_fid``: two real halves of that size),
        ``accuracy`` (the judge's class of G(x) = the target's label) and ``target_accuracy``
        (the judge's on the targets themselves: the ceiling), ``n``; and two measures of blur:
        ``sharpness`` (the outputs' mean Sobel gradient magnitude over the targets': 1 is as sharp as
        the real digits, a blurred output less) and ``grey_fraction`` (the fraction of output pixels
        in (−0.5, 0.5), between ink and paper; the real digits: ``target_grey_fraction``)."""
        from ...evaluation import judge
        x, y, labels = heldout if heldout is not None else heldout_pairs(cfg)
        n = min(int(n or cfg.eval_samples), len(x))
        if n < 2:
            raise ValueError(f"pix2pix evaluation needs at least 2 held-out pairs, got n = {n}")
        if n < len(x):                       # a fixed random subset (the held-out pairs are sorted by class)
            keep = np.sort(np.random.default_rng(0).permutation(len(x))[:n])
            x, y, labels = x[keep], y[keep], labels[keep]
        out = translate(model, x)
        if not np.isfinite(out).all():
            raise TrainingDiverged(0, "G(x)", "not finite", "the generator's outputs on held-out inputs")
        from ...data.paired import sobel_magnitude
        q = {"l1": float(np.mean(np.abs(out.astype(np.float64) - y))),
             "sharpness": float(sobel_magnitude(out).mean() / sobel_magnitude(y).mean()),
             "grey_fraction": float(np.mean(np.abs(out) < 0.5))}
        rng = rng if rng is not None else np.random.default_rng((cfg.seed, 3))
        scores = judge.judge_images(out, labels, rng, data=cfg.data, data_folder=cfg.data_folder or None)
        q.update({k: scores[k] for k in ("fid", "real_vs_real_fid", "accuracy")})
        q["target_accuracy"] = judge.judge_images(y, labels, np.random.default_rng(0), data=cfg.data,
                                                  data_folder=cfg.data_folder or None)["accuracy"]
        q["target_grey_fraction"] = float(np.mean(np.abs(y) < 0.5))
        q["n"] = n
        return q
