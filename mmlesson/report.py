"""metrics.json: what every run writes and what notebooks and the batch runner read.

Layout: ``{"config": {...}, "data": {resolved data-set knobs}, "history": [per-epoch dicts],
"final": {"acc", "macro_f1", "branch_acc": {m}, "probe_acc": {m}, "per_class_acc": [...],
"best_epoch", "val_acc"}, "env": {package versions, device, wall_seconds, ...}}``.
Every file is written to a temporary name in the same directory and then renamed, so a reader
never sees half a file: an interrupted run leaves either the old file or none.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from .errors import IncompleteRun, MMLessonError

METRICS_FILE = "metrics.json"
METRICS_FORMAT = 2  # 2: final.test / final.val, config.options; 1 (no "format"): flat final, flat config
PACKAGES = ("mmlesson", "torch", "torchvision", "torchaudio", "numpy")


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
def run_lock(run_dir: Path | None):
    """Hold an exclusive lock on ``run_dir`` (the directory itself: no lock file is written) while a
    process trains or reads the run there, so two processes (two chapters, a restarted worker and its
    orphan) never write one run at once. The second waits; the operating system releases the lock when
    its holder dies, so none is ever stale."""
    if run_dir is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # no advisory locks on this system (Windows): run unguarded
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


def atomic_write_json(path: Path, data: dict) -> None:
    text = json.dumps(data, indent=2, allow_nan=False)  # strict JSON: a NaN here is a bug, not a value
    atomic_write(path, lambda f: f.write(text.encode()))


def plain(value):
    """``value`` as JSON would give it back (tuples become lists), so stored and new configs compare."""
    return json.loads(json.dumps(value))


def atomic_torch_save(path: Path, obj) -> None:
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))


def environment(device) -> dict:
    """Package versions, interpreter, machine and device, for the ``env`` block."""
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {"packages": versions, "python": platform.python_version(), "platform": platform.platform(),
            "device": str(device), "device_name": device_name, "torch_threads": torch.get_num_threads()}


def write_metrics(out_dir: Path, metrics: dict) -> Path:
    """Write ``metrics`` (config, data, history, final, env) atomically to ``out_dir/metrics.json``."""
    missing = {"config", "history", "final", "env"} - set(metrics)
    if missing:
        raise ValueError(f"metrics lack {sorted(missing)}")
    path = Path(out_dir) / METRICS_FILE
    atomic_write_json(path, metrics)
    return path


def load_metrics(run_dir) -> dict:
    """Read a finished run's metrics.json (an older layout is upgraded to this one in memory); a run
    without one is reported as not complete."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        raise IncompleteRun(f"{run_dir} holds no complete run (no {METRICS_FILE}); "
                            f"run `mmlesson train ... --out {run_dir}` again to resume or start it")
    try:
        metrics = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MMLessonError(f"{path} is not valid JSON ({getattr(error, 'msg', error)}); delete it and run "
                            f"`mmlesson train ... --out {run_dir}` again") from error
    except OSError as error:  # no permission, or a directory by that name
        raise MMLessonError(f"{path} cannot be read ({error.strerror}); fix its permissions, or delete it and run "
                            f"`mmlesson train ... --out {run_dir}` again") from error
    missing = [key for key in ("config", "history", "final") if not isinstance(metrics, dict) or key not in metrics]
    if missing or not isinstance(metrics["config"], dict) or not isinstance(metrics["final"], dict):
        raise MMLessonError(f"{path} is not an mmlesson metrics.json (no {', '.join(missing) or 'valid config'}); "
                            f"delete it and run `mmlesson train ... --out {run_dir}` again")
    return upgrade_metrics(metrics)


def upgrade_metrics(metrics: dict) -> dict:
    """A metrics.json of the first layout in this one: ``final.acc`` -> ``final.test.acc``,
    ``final.val_acc`` -> ``final.val.acc``, and the method's options out of the flat config."""
    if metrics.get("format", 1) >= METRICS_FORMAT:
        return metrics
    from dataclasses import fields

    from .methods import METHODS

    final = dict(metrics["final"])
    val = {"acc": final.pop("val_acc", None)}
    best_epoch = final.pop("best_epoch", None)
    config = dict(metrics["config"])
    method = METHODS.get(config.get("method"))
    names = {f.name for cls in METHODS.values() for f in fields(cls.Options)}
    mine = {f.name for f in fields(method.Options)} if method else set()
    options = {name: config[name] for name in mine if name in config}
    config = {k: v for k, v in config.items() if k not in names}
    return {**metrics, "format": METRICS_FORMAT, "config": {**config, "options": options},
            "final": {"test": final, "val": val, "best_epoch": best_epoch}}
