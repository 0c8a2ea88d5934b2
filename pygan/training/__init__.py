"""Training (application layer): one config class, one preset registry, one loop, a task per
model family, checkpoints and run folders.

    from pygan.training import Trainer, presets
    Trainer.new(presets.preset("ring-8"), out="runs/ring-8").run()

Where things go:
* a new preset → :mod:`.presets` (one entry; its ``kind`` picks the task);
* a config field → :mod:`.config` (marked with the families it belongs to);
* a new model family → a task in :mod:`.tasks` (its step, evaluation, figures and state), its
  fields in :mod:`.config`, its presets in :mod:`.presets`;
* anything every family shares (intervals, run folder, resume, the divergence stop) → :mod:`.loop`;
* the checkpoint layout → :mod:`.checkpoint` (bump its format version and keep reading the old);
* learning-rate schedules → :mod:`.schedule`; parameter averages → :mod:`.ema`.
"""
from . import checkpoint, config, distributed, presets
from .checkpoint import Checkpoint, CheckpointError
from .config import Config, ConfigError, OptimConfig
from .loop import RunFolderError, Trainer, load_run, make_task, resume, stored_config, train
from .presets import DEFAULT_PRESET, preset
from .tasks import TASKS, TrainingDiverged

__all__ = ["Config", "OptimConfig", "ConfigError", "Checkpoint", "CheckpointError", "Trainer", "TrainingDiverged",
           "RunFolderError", "train", "resume", "load_run", "make_task", "stored_config", "preset",
           "DEFAULT_PRESET", "TASKS", "checkpoint", "config", "presets"]
