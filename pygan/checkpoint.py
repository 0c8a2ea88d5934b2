"""Checkpoints: one ``.npz`` with everything a run needs to continue bit-identically.

Layout of the archive (every entry a plain array — no pickles; load with ``allow_pickle=False``):

    __format__        "pygan-checkpoint"              (a foreign .npz lacks it)
    __version__       1
    step              G steps done
    config            the run's Config as JSON
    model             {"name": …, "args": model.config()} as JSON (to rebuild the model)
    rng               JSON: the training generator's bit-generator state, pygan's global
                      generator, and the generator of every module that owns one (Dropout)
    state             JSON: small trainer state (elapsed time, batch position, …)
    G/<key>, D/<key>  the two state dicts (parameters and buffers, PyTorch's key names)
    opt_g/<key>, opt_d/<key>   the two optimizers' state dicts
    extra/<key>       arrays of trainer state (the data order of the current epoch)

Writes are atomic: the archive goes to a temporary file in the same folder, is flushed and
fsync'ed, then ``os.replace``d over the target (and the folder fsync'ed), so a crash or an
exception during a save leaves the previous checkpoint as it was.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .backend import to_host

__all__ = ["FORMAT", "VERSION", "CheckpointError", "Checkpoint", "save", "load", "atomic_write",
           "generator_state", "set_generator_state", "module_rngs", "clean_temporary_files"]

FORMAT = "pygan-checkpoint"
VERSION = 1
_TMP_PREFIX = ".tmp-"


class CheckpointError(ValueError):
    """A file that is not a usable pygan checkpoint (corrupt, foreign, other version or model)."""


@dataclass
class Checkpoint:
    """The contents of a checkpoint file (arrays on the host)."""

    step: int
    config: dict
    model: dict
    rng: dict
    state: dict = field(default_factory=dict)
    G: dict = field(default_factory=dict)
    D: dict = field(default_factory=dict)
    opt_g: dict = field(default_factory=dict)
    opt_d: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    path: str = ""


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

def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Call ``write(f)`` on a temporary binary file beside ``path``, then rename it over ``path``.

    The temporary file is flushed and fsync'ed before the rename and removed on any error, so
    ``path`` holds either its old content or the complete new one.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX + os.path.basename(path) + ".", dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~_umask())       # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def clean_temporary_files(folder) -> list:
    """Remove temporary files a killed save left in ``folder``; returns their paths."""
    removed = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return removed
    for n in names:
        if n.startswith(_TMP_PREFIX):
            p = os.path.join(folder, n)
            try:
                os.unlink(p)
                removed.append(p)
            except OSError:
                pass
    return removed


def save(path, *, step: int, config: dict, model: dict, rng: dict, G: dict, D: dict, opt_g: dict,
         opt_d: dict, state: dict | None = None, extra: dict | None = None):
    """Write a checkpoint atomically. Dicts of arrays/scalars for G, D, opt_g, opt_d, extra;
    JSON-ready dicts for config, model, rng, state."""
    arrays = {
        "__format__": np.array(FORMAT),
        "__version__": np.array(VERSION, dtype=np.int64),
        "step": np.array(int(step), dtype=np.int64),
        "config": np.array(json.dumps(config)),
        "model": np.array(json.dumps(model)),
        "rng": np.array(json.dumps(rng)),
        "state": np.array(json.dumps(state or {})),
    }
    for prefix, d in (("G", G), ("D", D), ("opt_g", opt_g), ("opt_d", opt_d), ("extra", extra or {})):
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


def load(path) -> Checkpoint:
    """Read a checkpoint; :class:`CheckpointError` (saying what is wrong) for a missing, corrupt
    or foreign file, or one written by a newer format version."""
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
            if version != VERSION:
                raise CheckpointError(f"{path}: checkpoint format version {version}, this pygan reads "
                                      f"version {VERSION}")
            missing = [k for k in ("step", "config", "model", "rng") if k not in keys]
            if missing:
                raise CheckpointError(f"{path}: checkpoint lacks {missing}; the file is corrupt")
            ck = Checkpoint(step=int(npz["step"][()]), config=_json(npz, "config", path),
                            model=_json(npz, "model", path), rng=_json(npz, "rng", path),
                            state=_json(npz, "state", path) if "state" in keys else {}, path=path)
            for k in npz.files:
                prefix, sep, rest = k.partition("/")
                if sep and prefix in ("G", "D", "opt_g", "opt_d", "extra"):
                    getattr(ck, prefix)[rest] = npz[k]
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"{path}: an entry could not be read ({type(e).__name__}: {e}); "
                              f"the checkpoint is corrupt") from None
    return ck


def describe_mismatch(ck: Checkpoint, module, which: str) -> str | None:
    """Why ``ck``'s state dict ``which`` ("G" or "D") does not fit ``module``, or None."""
    own = module.state_dict()
    saved = getattr(ck, which)
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    if missing or unexpected:
        return (f"{which} has different layers: missing {missing[:5]}{'…' if len(missing) > 5 else ''}, "
                f"unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}")
    for k, v in own.items():
        if tuple(saved[k].shape) != tuple(v.shape):
            return f"{which}.{k} has shape {tuple(saved[k].shape)} in the checkpoint but {tuple(v.shape)} in the model"
    return None
