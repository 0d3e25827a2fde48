"""A run directory: the one place that knows a run's files, its status, and how each is read and written.

::

    run.json       the request: identity, its hash and the full config (written once the run starts)
    checkpoint.pt  while it trains: model, optimiser, schedule, RNGs, history, method state (atomic)
    model.pt       the weights of the epoch selected on validation, once complete
    metrics.json   config, identity, data, history, final scores, environment, once complete
    failed.json    why the last attempt failed (a divergence, or the runner giving up on it)

Every file is written atomically (``files.atomic_write``): a reader sees the old file or the new one,
never half of one, and a killed writer leaves a ``.NAME.*.tmp`` file that the next holder of the
run's lock removes. A run is ``complete`` once metrics.json and model.pt are both there.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .errors import ConfigError, IncompleteRun, MMLessonError
from .files import atomic_torch_save, atomic_write_json, read_json_file, run_lock
from .paths import locked_by_another

METRICS_FORMAT = 2  # 2: final.test / final.val, config.options
CHECKPOINT_KEYS = ("identity", "epoch", "model", "optimizer", "scheduler", "shuffle_rng", "torch_rng", "history",
                   "best", "method_state", "elapsed", "stage")


class RunDirectory:
    """The files of one run in ``path`` (which need not exist yet)."""

    RUN = "run.json"
    CHECKPOINT = "checkpoint.pt"
    MODEL = "model.pt"
    METRICS = "metrics.json"
    FAILED = "failed.json"
    RECALIBRATED = "recalibrated.json"
    FILES = (RUN, CHECKPOINT, MODEL, METRICS, FAILED, RECALIBRATED)

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    def has(self, name: str) -> bool:
        return (self.path / name).exists()

    # ---- status ----------------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return self.has(self.METRICS) and self.has(self.MODEL)

    @property
    def status(self) -> str:
        """``complete`` (metrics.json and model.pt), ``failed`` (failed.json), ``partial`` (a
        checkpoint), ``planned`` (run.json only) or ``missing``."""
        if self.complete:
            return "complete"
        if self.has(self.FAILED):
            return "failed"
        if self.has(self.CHECKPOINT):
            return "partial"
        return "planned" if self.has(self.RUN) else "missing"

    def lock(self):
        """Hold the run's exclusive lock (``files.run_lock``) for a ``with`` block."""
        return run_lock(self.path)

    def remove_unfinished_writes(self, locked_by_caller: bool = False) -> None:
        """Delete the temporary files a killed writer left here (``.checkpoint.pt.*.tmp``), and nothing
        else; unless the caller holds the run's lock, only when nobody does (a live writer's temporary
        file is its next checkpoint)."""
        if not self.path.is_dir() or not locked_by_caller and locked_by_another(self.path):
            return
        for name in self.FILES:
            for path in self.path.glob(f".{name}.*.tmp"):
                path.unlink(missing_ok=True)

    def discard(self, *names: str) -> None:
        for name in names:
            (self.path / name).unlink(missing_ok=True)

    # ---- the request (run.json) ----------------------------------------------------------------

    def write_request(self, identity: dict, identity_hash: str, config: dict) -> None:
        atomic_write_json(self.path / self.RUN, {"identity": identity, "hash": identity_hash, "config": config})

    def read_request(self) -> dict:
        return read_json_file(self.path / self.RUN)

    def stored_identity(self) -> dict:
        """The identity recorded here (metrics.json of a finished run, else run.json)."""
        for name in (self.METRICS, self.RUN):
            if self.has(name):
                record = read_json_file(self.path / name)
                if "identity" not in record:
                    raise ConfigError(f"{self.path} holds a run written by an older mmlesson (no run identity); "
                                      f"train it again with this version")
                return record["identity"]
        raise IncompleteRun(f"{self.path} holds no run (no {self.METRICS} or {self.RUN}); train it first")

    # ---- metrics.json --------------------------------------------------------------------------

    def write_metrics(self, metrics: dict) -> Path:
        """Write ``metrics`` (config, data, history, final, env) atomically."""
        missing = {"config", "history", "final", "env"} - set(metrics)
        if missing:
            raise ValueError(f"metrics lack {sorted(missing)}")
        atomic_write_json(self.path / self.METRICS, metrics)
        return self.path / self.METRICS

    def read_metrics(self) -> dict:
        """A finished run's metrics.json; a run without one is reported as not complete, a damaged or
        older one with the fix."""
        path, again = self.path / self.METRICS, f"`mmlesson train ... --out {self.path}` again"
        if not path.exists():
            raise IncompleteRun(f"{self.path} holds no complete run (no {self.METRICS}); run {again} to resume or "
                                f"start it")
        try:
            metrics = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise MMLessonError(f"{path} is not valid JSON ({getattr(error, 'msg', error)}); delete it and run "
                                f"{again}") from error
        except OSError as error:  # no permission, or a directory by that name
            raise MMLessonError(f"{path} cannot be read ({error.strerror}); fix its permissions, or delete it and "
                                f"run {again}") from error
        missing = [key for key in ("config", "history", "final") if not isinstance(metrics, dict) or key not in metrics]
        if missing or not isinstance(metrics["config"], dict) or not isinstance(metrics["final"], dict):
            raise MMLessonError(f"{path} is not an mmlesson metrics.json (no {', '.join(missing) or 'valid config'}); "
                                f"delete it and run {again}")
        if metrics.get("format", 1) < METRICS_FORMAT:
            raise MMLessonError(f"{path} was written by an older mmlesson (metrics format {metrics.get('format', 1)});"
                                f" delete {self.path} and train the run again")
        return metrics

    # ---- weights and checkpoints (torch files) ---------------------------------------------------

    def write_weights(self, state: dict) -> None:
        atomic_torch_save(self.path / self.MODEL, state)

    def read_weights(self) -> dict:
        """The selected model's weights of a finished run, or a one-line error that names the fix."""
        import torch

        path = self.path / self.MODEL
        fix = f"delete it and {self.path / self.METRICS}, then run again: the run finishes from its checkpoint"
        try:
            state = torch.load(path, map_location="cpu")
        except Exception as error:  # truncated, foreign or corrupt file
            raise MMLessonError(f"{path} is unreadable ({type(error).__name__}); {fix}") from error
        if not isinstance(state, dict):
            raise MMLessonError(f"{path} holds no model weights; {fix}")
        return state

    def write_checkpoint(self, checkpoint: dict) -> None:
        atomic_torch_save(self.path / self.CHECKPOINT, checkpoint)

    def read_checkpoint(self) -> dict:
        """The checkpoint, or a one-line error that names the fix for an unreadable or foreign file."""
        import torch

        path = self.path / self.CHECKPOINT
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # a truncated or foreign file: pickle, zip and torch errors alike
            raise MMLessonError(f"{path} is unreadable ({type(error).__name__}); delete it to restart the run "
                                f"from epoch 0") from error
        if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in CHECKPOINT_KEYS):
            raise MMLessonError(f"{path} is not an mmlesson checkpoint; delete it to restart the run from epoch 0")
        return checkpoint

    # ---- failure record --------------------------------------------------------------------------

    def record_failure(self, error: str, attempts: int) -> None:
        atomic_write_json(self.path / self.FAILED, {"error": error, "attempts": attempts, "time": time.time()})

    def clear_failure(self) -> None:
        self.discard(self.FAILED)

    def failure_message(self) -> str | None:
        return read_json_file(self.path / self.FAILED).get("error") if self.has(self.FAILED) else None


def load_metrics(run_dir) -> dict:
    """Read a finished run's metrics.json (``RunDirectory(run_dir).read_metrics()``)."""
    return RunDirectory(run_dir).read_metrics()
