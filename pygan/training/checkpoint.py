"""Checkpoints: one ``.npz`` with everything a run needs to continue bit-identically.

Layout of the archive, format version 2 (every entry a plain array — no pickles; it is read
with ``allow_pickle=False``):

    __format__               "pygan-checkpoint"            (a foreign .npz lacks it)
    __version__              2
    kind                     the model family ("gan", "vae", …): which task wrote it
    step                     training steps done (a GAN counts G steps)
    config                   the run's Config as JSON
    model                    the model's build arguments (``model.config()``) as JSON
    rng                      JSON: the training generator's bit-generator state, pygan's global
                             generator, and the generator of every module that owns one (Dropout)
    state                    JSON: small loop and task state (elapsed time, batch position, …)
    modules/<net>/<key>      the state dict of each network ("G", "D"; a VAE's "model")
    optimizers/<name>/<key>  each optimizer's state dict ("opt_g", "opt_d"; a VAE's "opt")
    extra/<key>              arrays of loop and task state (the epoch's data order, the EMA of G)

Version 1 (the release before) kept the two networks and optimizers under ``G/``, ``D/``,
``opt_g/``, ``opt_d/`` and no ``kind``; :func:`load` reads it into the same :class:`Checkpoint`
(a VAE's network and optimizer were stored as G and opt_g).

Writes are atomic (:func:`pygan.files.atomic_write`): a crash or an exception during a save
leaves the previous checkpoint as it was.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..backend import to_host
from ..files import atomic_write

__all__ = ["FORMAT", "VERSION", "CheckpointError", "Checkpoint", "save", "load", "generator_state",
           "set_generator_state", "module_rngs", "describe_mismatch"]

FORMAT = "pygan-checkpoint"
VERSION = 2
_READABLE = (1, 2)


class CheckpointError(ValueError):
    """A file that is not a usable pygan checkpoint (corrupt, foreign, other version or model)."""


@dataclass
class Checkpoint:
    """The contents of a checkpoint file (arrays on the host)."""

    step: int
    kind: str
    config: dict
    model: dict
    rng: dict
    state: dict = field(default_factory=dict)
    modules: dict = field(default_factory=dict)      # net name → state dict
    optimizers: dict = field(default_factory=dict)   # optimizer name → state dict
    extra: dict = field(default_factory=dict)
    path: str = ""
    version: int = VERSION


# --- RNG states ----------------------------------------------------------------------------------

def generator_state(rng: np.random.Generator) -> dict:
    """A JSON-ready copy of a Generator's bit-generator state."""
    return _jsonable(rng.bit_generator.state)


def set_generator_state(rng: np.random.Generator, state: dict):
    """Restore :func:`generator_state` into ``rng`` (same bit generator kind)."""
    kind = type(rng.bit_generator).__name__
    if state.get("bit_generator") != kind:
        raise CheckpointError(f"checkpoint: a {state.get('bit_generator')} generator state cannot be "
                              f"restored into a {kind} generator")
    rng.bit_generator.state = state


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def module_rngs(module, prefix: str) -> dict:
    """{"<prefix>.<module path>": Generator} for every submodule holding a Generator in ``.rng``
    (Dropout's masks)."""
    out = {}
    for name, m in module.named_modules():
        r = getattr(m, "rng", None)
        if isinstance(r, np.random.Generator):
            out[f"{prefix}.{name}" if name else prefix] = r
    return out



# --- writing -------------------------------------------------------------------------------------

def save(path, *, kind: str, step: int, config: dict, model: dict, rng: dict, modules: dict,
         optimizers: dict, state: dict | None = None, extra: dict | None = None):
    """Write a checkpoint atomically. ``modules`` and ``optimizers``: name → state dict (arrays or
    scalars); ``extra``: name → array; JSON-ready dicts for config, model, rng, state."""
    arrays = {
        "__format__": np.array(FORMAT),
        "__version__": np.array(VERSION, dtype=np.int64),
        "kind": np.array(kind),
        "step": np.array(int(step), dtype=np.int64),
        "config": np.array(json.dumps(config)),
        "model": np.array(json.dumps(model)),
        "rng": np.array(json.dumps(rng)),
        "state": np.array(json.dumps(state or {})),
    }
    groups = [(f"modules/{n}", d) for n, d in modules.items()]
    groups += [(f"optimizers/{n}", d) for n, d in optimizers.items()] + [("extra", extra or {})]
    for prefix, d in groups:
        for k, v in d.items():
            a = np.asarray(v) if isinstance(v, dict) else to_host(v)
            if a.dtype.kind == "O":
                raise TypeError(f"checkpoint: {prefix}/{k} is an object array ({v!r}); "
                                f"only numbers and strings can be saved")
            arrays[f"{prefix}/{k}"] = a
    atomic_write(path, lambda f: np.savez(f, **arrays))


# --- reading -------------------------------------------------------------------------------------

def _json(npz, key, path):
    try:
        return json.loads(str(npz[key][()]))
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: entry {key!r} is not valid JSON ({e}); the checkpoint is corrupt") from None


#: format version 1's top-level groups → (version 2's group, GAN's name, VAE's name)
_V1_GROUPS = {"G": ("modules", "G", "model"), "D": ("modules", "D", None),
              "opt_g": ("optimizers", "opt_g", "opt"), "opt_d": ("optimizers", "opt_d", None)}


def _v1_kind(model: dict) -> str:
    from ..models import VAE_MODELS
    return "vae" if model.get("name") in VAE_MODELS else "gan"


def _read_entries(npz, ck: Checkpoint):
    for k in npz.files:
        prefix, sep, rest = k.partition("/")
        if not sep:
            continue
        if ck.version >= 2:
            if prefix == "extra":
                ck.extra[rest] = npz[k]
            elif prefix in ("modules", "optimizers"):
                name, sep2, key = rest.partition("/")
                if sep2:
                    getattr(ck, prefix).setdefault(name, {})[key] = npz[k]
        elif prefix == "extra":
            ck.extra[rest] = npz[k]
        elif prefix in _V1_GROUPS:
            group, gan_name, vae_name = _V1_GROUPS[prefix]
            name = vae_name if ck.kind == "vae" else gan_name
            if name is not None:
                getattr(ck, group).setdefault(name, {})[rest] = npz[k]


def load(path) -> Checkpoint:
    """Read a checkpoint (format version 1 or 2); :class:`CheckpointError` (saying what is wrong)
    for a missing, corrupt or foreign file, or one written by a newer format version."""
    path = os.fspath(path)
    if os.path.isdir(path):
        cand = os.path.join(path, "checkpoint.npz")
        if not os.path.isfile(cand):
            raise CheckpointError(f"{path} is a folder without checkpoint.npz (not a pygan run folder, "
                                  f"or the run stopped before its first checkpoint)")
        path = cand
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path!r} not found")
    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise CheckpointError(f"{path} is not a readable .npz archive ({type(e).__name__}: {e}); "
                              f"the file is corrupt or truncated") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{path} holds a single array, not a pygan checkpoint (.npz archive)")
    try:
        with npz:
            keys = set(npz.files)
            if "__format__" not in keys or str(npz["__format__"][()]) != FORMAT:
                shown = ", ".join(sorted(keys)[:8]) + (", …" if len(keys) > 8 else "")
                raise CheckpointError(f"{path} is an .npz archive but not a pygan checkpoint "
                                      f"(no '__format__ = {FORMAT}' entry; it holds: {shown or 'nothing'})")
            version = int(npz["__version__"][()]) if "__version__" in keys else -1
            if version not in _READABLE:
                raise CheckpointError(f"{path}: checkpoint format version {version}; this pygan reads versions "
                                      f"{', '.join(map(str, _READABLE))} (a newer pygan wrote it: upgrade "
                                      f"pygan to continue or sample this run)")
            missing = [k for k in ("step", "config", "model", "rng") + (("kind",) if version >= 2 else ())
                       if k not in keys]
            if missing:
                raise CheckpointError(f"{path}: checkpoint lacks {missing}; the file is corrupt")
            model = _json(npz, "model", path)
            ck = Checkpoint(step=int(npz["step"][()]),
                            kind=str(npz["kind"][()]) if version >= 2 else _v1_kind(model),
                            config=_json(npz, "config", path), model=model, rng=_json(npz, "rng", path),
                            state=_json(npz, "state", path) if "state" in keys else {}, path=path,
                            version=version)
            _read_entries(npz, ck)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"{path}: an entry could not be read ({type(e).__name__}: {e}); "
                              f"the checkpoint is corrupt") from None
    return ck


def describe_mismatch(ck: Checkpoint, module, which: str) -> str | None:
    """Why ``ck``'s state dict of network ``which`` does not fit ``module``, or None."""
    own = module.state_dict()
    saved = ck.modules.get(which, {})
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    if missing or unexpected:
        return (f"{which} has different layers: missing {missing[:5]}{'…' if len(missing) > 5 else ''}, "
                f"unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}")
    for k, v in own.items():
        if tuple(saved[k].shape) != tuple(v.shape):
            return f"{which}.{k} has shape {tuple(saved[k].shape)} in the checkpoint but {tuple(v.shape)} in the model"
    return None
