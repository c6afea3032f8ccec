"""Files written whole: an atomic write (temporary file, fsync, rename), JSON, and the clean-up after a crash.

Every file of a run directory, the trackers' state and the program cache go through
:func:`atomic_write_bytes`, so a reader, or a crash at any moment, sees the old file or the new one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "remove_stale_temporaries", "write_json"]


def _file_mode() -> int:
    """The mode ``open()`` would give a new file: ``0o666`` less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (temp file, fsync, rename).

    A reader, or a crash at any moment, sees the old file or the new one,
    never a mixture. The temporary file is ``.<name>.<random>.tmp`` beside
    ``path``; it gets the permissions a plain ``open()`` would give.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _file_mode())  # mkstemp makes 0o600
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def remove_stale_temporaries(run_dir, names) -> list[Path]:
    """Deletes temporary files that a killed :func:`atomic_write_bytes` left.

    Args:
      run_dir: the directory.
      names: the file names whose temporaries (``.<name>.*.tmp``) to remove.

    Returns:
      The paths removed.
    """
    removed = []
    for name in names:
        for tmp in Path(run_dir).glob(f".{name}.*.tmp"):
            if tmp.is_file():
                tmp.unlink()
                removed.append(tmp)
    return removed


def write_json(path, obj) -> None:
    """Writes ``obj`` as indented JSON, atomically (NaN written as null)."""

    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if type(x).__module__ == "numpy" and getattr(x, "ndim", None) == 0:  # a NumPy scalar (no NumPy import: the
            # scripts import this module before their signal handlers are up, see app.cli.exit_on_signals)
            return clean(x.item())
        return x

    atomic_write_bytes(path, (json.dumps(clean(obj), indent=2) + "\n").encode())
