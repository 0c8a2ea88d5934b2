"""Files the application writes: always atomically, so a crash or a full disk mid-write leaves
the previous file as it was (checkpoints, metrics rewrites, configs, downloads, judge caches).
"""
from __future__ import annotations

import os
import tempfile

__all__ = ["atomic_write", "copy_file", "clean_temporary_files", "TMP_PREFIX"]

#: temporary files start with this; :func:`clean_temporary_files` removes those a kill left behind
TMP_PREFIX = ".tmp-"


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
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + os.path.basename(path) + ".", dir=folder)
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
        if n.startswith(TMP_PREFIX):
            p = os.path.join(folder, n)
            try:
                os.unlink(p)
                removed.append(p)
            except OSError:
                pass
    return removed


def copy_file(src, dst):
    """Copy ``src`` over ``dst`` atomically."""
    with open(src, "rb") as f:
        body = f.read()
    atomic_write(dst, lambda out: out.write(body))
