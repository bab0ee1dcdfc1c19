"""Atomic file writes: every file ebmlib writes (checkpoints, downloads, caches, run files) appears
under its name complete or not at all.

The bytes go to a temporary file in the target's folder (``os.replace`` is atomic only within one file
system), are flushed to disk, and the temporary file is then renamed over the target. A crash, a full
disk or Ctrl-C leaves the old file, if any, as it was, and removes the temporary one.
"""
import contextlib
import os
import tempfile
from pathlib import Path

import torch


@contextlib.contextmanager
def temporary_beside(path):
    """Yield a fresh temporary path in ``path``'s folder (created if needed); it is removed on leaving the
    block unless :func:`publish` has moved it away."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def publish(tmp, path) -> Path:
    """Move the finished temporary file ``tmp`` to ``path`` atomically, after syncing its bytes to disk."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_folder(Path(path).parent)  # make the rename itself durable where the OS allows it
    return Path(path)


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a file for writing that replaces ``path`` only when the block ends without an error.

    ``with atomic_write(p) as f: torch.save(state, f)``; ``mode`` is 'wb' or 'w'.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write writes whole files: mode must be 'wb' or 'w', got {mode!r}")
    with temporary_beside(path) as tmp:
        with open(tmp, mode) as f:
            yield f
        publish(tmp, path)


def write_text(path, text) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def torch_save(obj, path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    with atomic_write(path) as f:
        torch.save(obj, f)
    return Path(path)


def _fsync_folder(folder):
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
