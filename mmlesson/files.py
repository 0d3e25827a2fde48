"""Files written so that a reader never sees half of one, and read back with one-line errors.

``atomic_write`` writes to a temporary name in the same directory (``.NAME.*.tmp``) and renames it,
so an interrupted writer leaves the old file or none; ``run_lock`` keeps two processes from writing
one run directory at once; ``plain`` gives a value as JSON would give it back, so stored and new
records compare.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None

from .errors import MMLessonError


def file_sha256(path) -> str:
    """The sha256 hex digest of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a shared results directory needs the umask's
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold an exclusive lock on ``run_dir`` (the directory itself: no lock file is written) while a
    process trains the run there, so two processes (two chapters, a restarted worker and its orphan)
    never write one run at once. The second waits; the operating system releases the lock when its
    holder dies, so none is ever stale."""
    if fcntl is None:  # no advisory locks on this system (Windows): run unguarded
        yield
        return
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    descriptor = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"mmlesson: {run_dir} is being trained by another process; waiting for it", file=sys.stderr)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def locked_by_another(directory: Path) -> bool:
    """Whether another process holds the run lock on ``directory`` (``run_lock``) now."""
    if fcntl is None:  # no advisory locks (Windows): nobody can be seen holding one
        return False
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # releases the lock if it was taken


def atomic_write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=2, allow_nan=False)  # strict JSON: a NaN here is a bug, not a value
    atomic_write(path, lambda f: f.write(text.encode()))


def plain(value):
    """``value`` as JSON would give it back (tuples become lists), so stored and new configs compare."""
    return json.loads(json.dumps(value))


def atomic_torch_save(path: Path, obj) -> None:
    import torch  # imported here: rundir, the runner and the Dask workers (cluster) start without torch

    atomic_write(path, lambda f: torch.save(obj, f))


def read_torch_file(path: Path, **options):
    """``torch.load`` of ``path`` onto the CPU (``options``: torch.load's, e.g. ``weights_only=False``)."""
    import torch  # imported here: rundir, the runner and the Dask workers (cluster) start without torch

    return torch.load(path, map_location="cpu", **options)


def read_json_file(path: Path) -> dict:
    """A JSON object from ``path``, or a one-line error that names the fix."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise MMLessonError(f"{path} is unreadable ({type(error).__name__}); delete it and train the run "
                            f"again") from error
    if not isinstance(data, dict):
        raise MMLessonError(f"{path} does not hold a run record; delete it and train the run again")
    return data
