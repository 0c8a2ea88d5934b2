"""One task per model family: what the one trainer needs to train it (see :mod:`.base`).

``TASKS`` maps a config's ``kind`` to its task class (gan, vae, pix2pix). A new family is a new module
here with a :class:`~.base.Task` subclass, registered below, plus its config fields and presets
(:mod:`pygan.training.config`, :mod:`pygan.training.presets`).
"""
from .base import Task, TrainingDiverged
from .gan import GANTask
from .vae import VAETask
from .pix2pix import Pix2PixTask

TASKS = {GANTask.kind: GANTask, VAETask.kind: VAETask, Pix2PixTask.kind: Pix2PixTask}

__all__ = ["Task", "TrainingDiverged", "GANTask", "VAETask", "Pix2PixTask", "TASKS"]
