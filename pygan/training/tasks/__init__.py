"""One task per model family: what the one trainer needs to train it (see :mod:`.base`).

``TASKS`` maps a config's ``kind`` to its task class. A new family (pix2pix, say) is a new module
here with a :class:`~.base.Task` subclass, registered below, plus its config fields and presets
(:mod:`pygan.training.config`, :mod:`pygan.training.presets`).
"""
from .base import Task, TrainingDiverged
from .gan import GANTask
from .vae import VAETask

TASKS = {GANTask.kind: GANTask, VAETask.kind: VAETask}

__all__ = ["Task", "TrainingDiverged", "GANTask", "VAETask", "TASKS"]
