"""A run directory: a run's files and its lifecycle, in one place.

::

    run.json       the request: identity, its hash and the full config (written once the run starts)
    checkpoint.pt  while it trains: model, optimiser, schedule, RNGs, history, method state (atomic)
    model.pt       the weights of the epoch selected on validation, once complete
    metrics.json   config, identity, data, history, final scores, environment, once complete
    failed.json    why the last attempt failed (a divergence, or the runner giving up on it)

``RunDirectory.attempt(identity)`` holds the run's lock and decides, from what the directory holds,
what the run about to train does: read a finished run back, resume from a checkpoint, start fresh,
replace a failed attempt of another run, or refuse another run's files. The training loop then
reports to it: ``start`` (the run has really started), ``save_checkpoint`` when ``checkpoint_due``,
``finish`` (weights and metrics); a divergence is recorded in failed.json (``record_failure``). A run
without a directory (no ``--out``) reports to ``NoRunDirectory``, which keeps nothing.

Every file is written atomically (``files.atomic_write``): a reader sees the old file or the new one,
never half of one, and a killed writer leaves a ``.NAME.*.tmp`` file that the next holder of the
run's lock removes. A run is ``complete`` once metrics.json and model.pt are both there.
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, IncompleteRun, MMLessonError, TrainingDiverged
from .files import (atomic_torch_save, atomic_write_json, locked_by_another, plain, read_json_file, read_torch_file,
                    run_lock)
from .identity import check_same_run, flat_differences, identity_hash
from .paths import check_directory_target, check_writable_directory, made_for_this_command
from .progress import warn

METRICS_FORMAT = 2  # 2: final.test / final.val, config.options
CHECKPOINT_SECONDS = 30.0  # training time between checkpoints after the first one
CHECKPOINT_KEYS = ("identity", "epoch", "model", "optimizer", "scheduler", "shuffle_rng", "torch_rng", "history",
                   "best", "method_state", "elapsed", "stage")


@dataclass
class Attempt:
    """What ``RunDirectory.attempt`` decided for the run about to train."""

    metrics: dict | None = None  # a finished run of this identity: its metrics.json ...
    weights: dict | None = None  # ... and its selected weights, read back instead of training
    checkpoint: dict | None = None  # an interrupted run of this identity: resumed from here
    replaces: str | None = None  # why another run's attempt held here may be replaced (``start`` discards it)

    @property
    def finished(self) -> bool:
        return self.metrics is not None


def run_directory_for(out) -> "RunDirectory | NoRunDirectory":
    """The run directory ``--out`` names (refused now, before any data is loaded, if it cannot be one),
    or ``NoRunDirectory`` without one."""
    if not out:
        return NoRunDirectory()
    run = RunDirectory(out)
    check_directory_target(run.path, "--out")
    return run


class RunDirectory:
    """The files of one run in ``path`` (which need not exist yet), and the lifecycle of the run that trains there."""

    RUN = "run.json"
    CHECKPOINT = "checkpoint.pt"
    MODEL = "model.pt"
    METRICS = "metrics.json"
    FAILED = "failed.json"
    RECALIBRATED = "recalibrated.json"
    FILES = (RUN, CHECKPOINT, MODEL, METRICS, FAILED, RECALIBRATED)

    def __init__(self, path):
        self.path = Path(path)
        self.saved_epoch: int | None = None  # the epoch of the last checkpoint written or resumed from
        self.saved_at = 0.0  # when it was written (time.perf_counter), or when training started

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

    # ---- the lifecycle of a run that trains here ----------------------------------------------------

    @contextlib.contextmanager
    def attempt(self, identity: dict):
        """Hold the run's lock for the body and give it what to do (``decide``). A directory this call
        creates is removed again if the body fails before writing in it; a divergence in the body is
        recorded in failed.json, so that the store says why and a corrected command replaces it."""
        with made_for_this_command(self.path, "--out"), self.lock():
            self.remove_unfinished_writes(locked_by_caller=True)  # a killed writer's: no live one's
            attempt = self.decide(identity)
            try:
                yield attempt
            except TrainingDiverged as error:
                self.record_failure(f"TrainingDiverged: {error}", attempts=1)
                raise

    def decide(self, identity: dict) -> Attempt:
        """A finished run is read back and a checkpoint resumed, if they are this run's (refused otherwise);
        an attempt of another run that left nothing to resume or that diverged is replaced; else a fresh start.
        Nothing is written or deleted here: ``start`` does that once the run has really started."""
        if self.complete:
            metrics = self.read_metrics()
            check_same_run(metrics.get("identity"), identity, self.path, "finished run")
            return Attempt(metrics=metrics, weights=self.read_weights())
        replaces, checkpoint = self.replaceable(identity), None
        if not replaces and self.has(self.CHECKPOINT):
            checkpoint = self.read_checkpoint()  # refused before anything is written
            check_same_run(checkpoint.get("identity"), identity, self.path, "checkpoint")
            self.saved_epoch = checkpoint["epoch"]
        check_writable_directory(self.path, "--out")
        return Attempt(checkpoint=checkpoint, replaces=replaces)

    def replaceable(self, identity: dict) -> str | None:
        """Why the attempt of another run held here may be replaced (a corrected command, a lower --lr, takes
        its place): it left nothing to resume (a request only) or it diverged. None when the request here is
        this run's or there is none; any other run's is refused."""
        if not self.has(self.RUN):
            return None
        saved = self.read_request().get("identity")
        failure = self.failure_message() or ""
        if saved is not None and flat_differences(plain(saved), plain(identity)):
            if failure.startswith(TrainingDiverged.__name__):
                return f"it failed: {failure}"
            if not self.has(self.CHECKPOINT):
                return "it never got past its first epoch"
        check_same_run(saved, identity, self.path, "run")  # a resumable checkpoint of another run is never replaced
        return None

    def start(self, identity: dict, config: dict, attempt: Attempt) -> None:
        """The run has really started (validated, built and initialised): the attempt it replaces is
        discarded, its request written, and the time to the next checkpoint counted from now."""
        if attempt.replaces:
            warn(f"{self.path} held an attempt of another run ({attempt.replaces}); this run replaces it")
            self.discard(self.RUN, self.CHECKPOINT, self.FAILED)
        self.write_request(identity, identity_hash(identity), config)
        self.saved_at = time.perf_counter()

    def checkpoint_due(self, stopping: bool) -> bool:
        """Checkpoint after the first epoch, before stopping, and then at most every ``CHECKPOINT_SECONDS``:
        each costs tens of milliseconds, a tenth of a small SynthAV run if written every epoch."""
        return self.saved_epoch is None or stopping or time.perf_counter() - self.saved_at >= CHECKPOINT_SECONDS

    def save_checkpoint(self, checkpoint: dict) -> None:
        self.saved_epoch, self.saved_at = checkpoint["epoch"], time.perf_counter()
        atomic_torch_save(self.path / self.CHECKPOINT, checkpoint)

    def kept_checkpoint(self) -> str:
        """What a failed run leaves to resume from, for its message."""
        if self.saved_epoch is None:
            return "no checkpoint was written yet"
        return f"the checkpoint after epoch {self.saved_epoch + 1} is kept in {self.path}"

    def finish(self, weights: dict, metrics: dict) -> None:
        """The run is complete: its selected weights, its metrics.json, and no failure record."""
        self.write_weights(weights)
        self.write_metrics(metrics)
        self.clear_failure()

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
        path = self.path / self.MODEL
        fix = f"delete it and {self.path / self.METRICS}, then run again: the run finishes from its checkpoint"
        try:
            state = read_torch_file(path)
        except Exception as error:  # truncated, foreign or corrupt file
            raise MMLessonError(f"{path} is unreadable ({type(error).__name__}); {fix}") from error
        if not isinstance(state, dict):
            raise MMLessonError(f"{path} holds no model weights; {fix}")
        return state

    def read_checkpoint(self) -> dict:
        """The checkpoint, or a one-line error that names the fix for an unreadable or foreign file."""
        path = self.path / self.CHECKPOINT
        try:
            checkpoint = read_torch_file(path, weights_only=False)
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


class NoRunDirectory:
    """Where a run trained without ``--out`` reports: nothing is read or kept."""

    path = None

    @contextlib.contextmanager
    def attempt(self, identity: dict):
        yield Attempt()

    def start(self, identity: dict, config: dict, attempt: Attempt) -> None:
        pass

    def checkpoint_due(self, stopping: bool) -> bool:
        return False

    def kept_checkpoint(self) -> str:
        return "no checkpoint is written without --out"

    def finish(self, weights: dict, metrics: dict) -> None:
        pass


def load_metrics(run_dir) -> dict:
    """Read a finished run's metrics.json (``RunDirectory(run_dir).read_metrics()``)."""
    return RunDirectory(run_dir).read_metrics()
