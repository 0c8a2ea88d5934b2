"""What a model family gives the trainer: a :class:`Task`.

The loop (:class:`pygan.training.loop.Trainer`) owns the run folder, metrics.jsonl, the
intervals, the progress bar, checkpoints, exact resume and the stop on a non-finite value. A task
owns only what is particular to its family:

    model, data                    the model (``sample_z``, ``g_forward``, ``num_classes``,
                                   ``data_shape``, ``eval_mode``, ``config``) and its batch stream
    modules(), optimizers()        name → Module / optimizer: what a checkpoint holds
    train_step(step, rng, diagnose)  one training step; returns its metrics record (Python
                                   numbers); with ``diagnose`` also the per-parameter gradient
                                   norms (the loop asks on logging steps only)
    evaluate(step)                 (record fields, log message) of the quality figures now
    figures(folder, step, final)   sample pictures;  curves(records, folder): the plots of the
                                   metrics so far
    summary(record)                the numbers of a log line
    state(), load_state(ck)        the task's own state beyond modules and optimizers (an EMA)
    evaluate_model(model, cfg, …)  (class method) the figures of ``pygan eval``
    load_model(cfg, ck, …)         (class method) the model of a checkpoint, for sampling

``stream_id`` keys the training generator's stream (seeded from the config's seed), so that
each family draws its own numbers.

``dp`` (:class:`pygan.training.distributed.DataParallel`; the trainer sets it, a no-op for one
process): a step draws every random number of the *global* batch and keeps ``dp.shard(…)`` of
it, calls ``dp.arm(net)`` before a network's last backward pass and ``dp.reduce(net)`` before
its optimizer steps (the gradient average over the processes).
"""
from __future__ import annotations

import math

import numpy as np

from ..checkpoint import CheckpointError, describe_mismatch
from ..distributed import LOCAL
from ...losses import NonFiniteLoss

__all__ = ["Task", "TrainingDiverged", "grad_norms"]


class TrainingDiverged(FloatingPointError):
    """A loss term, the penalty or a gradient norm became NaN or inf; the run stopped there.

    ``step`` (the step being computed, 1-based), ``term`` ("d_loss.fake", "penalty",
    "grad_norm.D.0.weight", "recon", …), ``value``, and ``checkpoint``: the last good
    checkpoint's path and step (or None), which was not overwritten."""

    def __init__(self, step, term, value, detail="", checkpoint=None):
        self.step, self.term, self.value, self.checkpoint = step, term, value, checkpoint
        msg = f"step {step}: {term} is {value}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


def grad_norms(named_params, step: int) -> dict:
    """{name: ‖∂L/∂θ‖₂} over ``(name, Parameter)`` pairs, each computed in float64 (a float32
    square can overflow where the norm does not); a non-finite norm raises TrainingDiverged."""
    out = {}
    for name, p in named_params:
        g = p.grad.reshape(-1)
        scale = float(abs(g).max()) if g.size else 0.0
        if not math.isfinite(scale):
            raise TrainingDiverged(step, f"grad_norm.{name}", scale, "the gradient of this parameter")
        if scale == 0.0:
            out[name] = 0.0
            continue
        gs = (g / scale).astype(np.float64)
        out[name] = scale * math.sqrt(float(gs @ gs))
    return out


class Task:
    """The base of every model family's task; see the module docstring for the protocol."""

    kind = ""
    stream_id = 0
    dp = LOCAL

    def __init__(self, cfg):
        self.cfg = cfg

    # -- what a checkpoint holds --
    def modules(self) -> dict:
        raise NotImplementedError

    def optimizers(self) -> dict:
        raise NotImplementedError

    def state(self):
        """(JSON-ready dict, name → array) of task state beyond modules and optimizers."""
        return {}, {}

    def load_state(self, ck) -> None:
        pass

    def restore(self, ck) -> None:
        """Load a checkpoint's modules, optimizers and task state into this task."""
        if ck.kind != self.kind:
            raise CheckpointError(f"{ck.path} holds a {ck.kind.upper()} run, not a {self.kind.upper()} run")
        for which, mod in self.modules().items():
            why = describe_mismatch(ck, mod, which)
            if why:
                raise CheckpointError(
                    f"{ck.path} was written by model {ck.model.get('name', '?')!r} ({_short(ck.model)}) and "
                    f"does not fit this model {self.cfg.model!r} ({_short(self.model.config())}): {why}")
            mod.load_state_dict(ck.modules[which])
        for name, opt in self.optimizers().items():
            try:
                opt.load_state_dict(ck.optimizers.get(name, {}))
            except (KeyError, ValueError) as e:
                raise CheckpointError(f"{ck.path}: {name} does not fit the configured optimizer: {e}") from None
        self.load_state(ck)

    # -- one step and what it reports --
    def train_step(self, step: int, rng, diagnose: bool) -> dict:
        raise NotImplementedError

    def check_finite_parameters(self, step: int) -> None:
        """Raise TrainingDiverged if a parameter is NaN or inf (before a checkpoint is written)."""
        for which, mod in self.modules().items():
            for name, p in mod.named_parameters():
                if not bool(np.isfinite(float(abs(p.data).sum()))):
                    raise TrainingDiverged(step, f"{which}.{name}", "not finite", "a parameter after the update")

    def term(self, fn, x, name: str, step: int):
        """``fn(x)`` (a loss term: value and gradient); a NaN/inf raises TrainingDiverged naming it."""
        try:
            return fn(x)
        except NonFiniteLoss as e:
            raise TrainingDiverged(step, name, e.value, str(e)) from None

    def summary(self, rec: dict) -> str:
        return ""

    def evaluate(self, step: int):
        return {}, None

    def figures(self, folder: str, step: int, final: bool) -> None:
        pass

    def curves(self, records: list, folder: str) -> None:
        pass

    # -- for pygan sample / eval --
    @classmethod
    def load_model(cls, cfg, ck, **options):
        raise NotImplementedError

    @classmethod
    def evaluate_model(cls, model, cfg, n=None, rng=None) -> dict:
        return {}


def _short(d: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in d.items() if k != "name")
