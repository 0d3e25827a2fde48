"""The run store: one results directory that every chapter and every grid shares.

A run lives where its identity puts it (``identity.run_directory``):
``RESULTS/<data>-<hash>/<method label>-<hash>/seed<N>/`` holding ``run.json`` (the request: identity
and config, written before training), ``checkpoint.pt`` while it trains, ``metrics.json`` and
``model.pt`` once complete, and ``failed.json`` if the runner gave up on it. Because the directory
is derived from what determines the result, a run asked for by two chapters is trained once, and a
grid run again trains only what is missing. ``RESULTS/index.csv`` lists every run with its status.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from . import data as data_module
from .config import TrainConfig
from .errors import ConfigError, MMLessonError
from .files import atomic_write
from .identity import identity_hash, run_directory, run_identity
from .methods import METHODS
from .rundir import RunDirectory, load_metrics

INDEX_FILE = "index.csv"


@dataclass
class PlannedRun:
    """A run the store knows where to keep: its config (``out`` set to ``run_dir``) and identity."""

    config: TrainConfig
    identity: dict
    hash: str
    run_dir: Path
    label: str
    tags: dict = field(default_factory=dict)  # what a grid calls it: grid, data, arm, seed
    depends_on: tuple[str, ...] = ()  # hashes of runs that must be complete first (frozen_encoders)

    @property
    def status(self) -> str:
        return run_status(self.run_dir)


def plan(config: TrainConfig, results, tags: dict | None = None, upstream=()) -> PlannedRun:
    """Where ``config`` lives in the store ``results`` (nothing is written or loaded). ``upstream``: the
    planned runs this one reads (a frozen_encoders run's encoder runs, named by its ``encoders_from``);
    they must be complete first, and their identities, part of this run's, are given to its method:
    they need not be written yet."""
    method = METHODS[config.method](config, upstream={run.run_dir: run.identity for run in upstream})
    data_identity = data_module.identity(config.data, config.data_root, **config.data_knobs)
    method.check_data(data_identity)
    identity = run_identity(config, method, data_identity)
    run_dir = run_directory(results, identity, method.label())
    return PlannedRun(config=replace(config, out=str(run_dir)), identity=identity, hash=identity_hash(identity),
                      run_dir=run_dir, label=method.label(), tags=dict(tags or {}),
                      depends_on=tuple(run.hash for run in upstream))


def declare(run: PlannedRun) -> None:
    """Write the run's ``run.json`` (the request) unless it is there already; a stale ``failed.json``
    is kept until the run succeeds."""
    directory = RunDirectory(run.run_dir)
    if not directory.has(RunDirectory.RUN):
        directory.write_request(run.identity, run.hash, run.config.to_dict())


def run_status(run_dir) -> str:
    """``complete``, ``failed``, ``partial``, ``planned`` or ``missing`` (``RunDirectory.status``)."""
    return RunDirectory(run_dir).status


def run_summary(run_dir) -> dict:
    """One row about a run: identity fields, status, final metrics (flattened later), time, error. A run
    whose files cannot be read is ``unreadable`` (its error says why), never an exception: one damaged
    run must not stop a report of five hundred."""
    run_dir = Path(run_dir)
    try:
        return read_run_summary(run_dir)
    except (MMLessonError, OSError, KeyError, TypeError, AttributeError, ValueError) as error:
        if not isinstance(error, MMLessonError):  # valid JSON shaped unlike a run's record, or a file system error
            error = f"its files are not an mmlesson run's ({type(error).__name__}: {error})"
        return {"status": "unreadable", "run_dir": str(run_dir), "hash": None, "dataset": None, "method": None,
                "fusion": None, "seed": None, "final": None, "wall_seconds": None, "error": str(error)}


def read_run_summary(run_dir: Path) -> dict:
    directory = RunDirectory(run_dir)
    status = directory.status
    record = directory.read_request() if directory.has(RunDirectory.RUN) else {}
    row = {"status": status, "run_dir": str(run_dir), "hash": record.get("hash")}
    config = record.get("config", {})
    row.update({"dataset": config.get("data"), "method": config.get("method"), "fusion": config.get("fusion"),
                "seed": config.get("seed")})
    if status == "complete":
        metrics = load_metrics(run_dir)
        if metrics.get("identity_hash") != row["hash"] and row["hash"] is not None:
            raise ConfigError(f"{run_dir} holds metrics of another run than its run.json; delete {run_dir} and train "
                              f"it again")
        row["final"] = {**metrics["final"]["test"], "val_acc": metrics["final"]["val"]["acc"],
                        "best_epoch": metrics["final"]["best_epoch"]}
        row["wall_seconds"] = metrics["env"].get("wall_seconds")
        row["error"] = None
    else:
        row["final"] = None
        row["wall_seconds"] = None
        row["error"] = directory.failure_message() if status == "failed" else None
    return row


def unreadable_runs_line(table) -> str | None:
    """``3 runs unreadable: DIR (why); ...; delete them to retrain`` for a results table, or None."""
    if not len(table) or "status" not in table:
        return None
    bad = table[table["status"] == "unreadable"]
    if not len(bad):
        return None
    shown = "; ".join(f"{row['run_dir']} ({row['error']})" for _, row in bad.head(3).iterrows())
    more = f"; and {len(bad) - 3} more (see index.csv)" if len(bad) > 3 else ""
    return f"{len(bad)} runs unreadable: {shown}{more}; delete them to retrain"


def results_table(runs: list[PlannedRun]):
    """The tidy table of a grid's runs, one row per planned run, read by ``run_grid``, ``mmlesson report``
    and ``runs.Runs``. Columns: ``status`` (complete, failed, running, planned, unreadable), ``run_dir``,
    ``hash``, ``label``, ``dataset``, ``method``, ``fusion``, ``seed``, ``wall_seconds``, ``error``; the
    grid's tags (``grid``, ``data``, ``arm``, ``seed``); and a complete run's final test scores, nested
    ones flattened (``acc``, ``macro_f1``, ``per_class_acc``, ``branch_acc.audio``, ``probe_acc.visual``,
    ``contribution.audio``, ``decision.mean_abs_weight.audio``, ...), with its ``val_acc`` and
    ``best_epoch``. Histories and models are
    reachable from ``run_dir`` (``mmlesson.load_metrics``, ``mmlesson.engine.load_run``)."""
    rows = []
    for run in runs:
        summary = run_summary(run.run_dir)
        final = summary.pop("final") or {}
        summary.update(dataset=run.config.data, method=run.config.method, fusion=run.config.fusion)
        rows.append({**summary, **run.tags, "hash": run.hash, "label": run.label,
                     **{f"final.{k}": v for k, v in final.items()}})
    table = pd.json_normalize(rows, sep=".") if rows else pd.DataFrame()
    return table.rename(columns=lambda c: c[len("final."):] if c.startswith("final.") else c)


def scan(results) -> list[Path]:
    """Every run directory under ``results`` (those holding a run.json)."""
    return sorted(path.parent for path in Path(results).glob(f"*/*/seed*/{RunDirectory.RUN}"))


def index(results):
    """A DataFrame of every run in the store: data, method, fusion, seed, status, directory, test
    accuracy, error."""
    rows = []
    for run_dir in scan(results):
        summary = run_summary(run_dir)
        final = summary.pop("final") or {}
        rows.append({**summary, "acc": final.get("acc"), "val_acc": final.get("val_acc")})
    columns = ["dataset", "method", "fusion", "seed", "status", "acc", "val_acc", "wall_seconds", "hash", "run_dir",
               "error"]
    return pd.DataFrame(rows, columns=columns)


def write_index(results) -> Path:
    """Write ``RESULTS/index.csv`` atomically (rebuilt from the run directories, so never stale)."""
    table = index(results)
    path = Path(results) / INDEX_FILE
    atomic_write(path, lambda handle: handle.write(table.to_csv(index=False).encode()))
    return path


def measured_times(results) -> dict[Path, tuple[float, float]]:
    """``(seconds per epoch, seconds outside the epochs)`` of every complete, readable run in the store
    (its epochs' own times, and the rest: data, final evaluation, probes), by run directory."""
    measured = {}
    for run_dir in scan(results):
        if run_status(run_dir) != "complete":
            continue
        try:
            metrics = load_metrics(run_dir)
            epochs = sum(float(entry["seconds"]) for entry in metrics["history"])
            measured[run_dir] = (epochs / len(metrics["history"]), float(metrics["env"]["wall_seconds"]) - epochs)
        except (MMLessonError, OSError, KeyError, TypeError, ValueError, ZeroDivisionError):
            continue  # unreadable runs are listed elsewhere; they only cannot inform an estimate
    return measured


def estimate_seconds(runs: list[PlannedRun], results) -> tuple[float, int]:
    """Seconds that ``runs`` would take one after another, and how many of them have no estimate, from
    the times measured in the store, per epoch and outside the epochs: the mean of the same run's other
    seeds if any is complete (its siblings in the store), else the median of the store's runs of the
    same method on the same data set (other seeds, options or data knobs), else of every run in the
    store. A partly trained run is counted whole, so the estimate is an upper bound for it."""
    measured = measured_times(results)

    def kind(run_dir: Path) -> tuple[str, str]:  # "synthav", "ogm_ge": the names before the hashes
        return run_dir.parents[1].name.rsplit("-", 1)[0], run_dir.parent.name.rsplit("-", 1)[0]

    total, unknown = 0.0, 0
    for run in runs:
        tiers = [(statistics.mean, [t for d, t in measured.items() if d.parent == run.run_dir.parent]),
                 (statistics.median, [t for d, t in measured.items() if kind(d) == kind(run.run_dir)]),
                 (statistics.median, list(measured.values()))]
        average, times = next(((f, t) for f, t in tiers if t), (None, []))
        if not times:
            unknown += 1
            continue
        total += average(t[0] for t in times) * run.config.epochs + average(t[1] for t in times)
    return total, unknown


def describe_estimate(runs: list[PlannedRun], results, workers: int) -> str:
    """``about 9 min on 2 workers (18 min of training, estimated from the store's finished runs)``."""
    seconds, unknown = estimate_seconds(runs, results)
    if unknown == len(runs):
        return "no time estimate: the store holds no finished run to measure from"
    parallel = min(workers, len(runs) - unknown) or 1
    text = (f"about {minutes(seconds / parallel)} on {parallel} worker{'s' * (parallel > 1)} ({minutes(seconds)} of "
            f"training, estimated from the store's finished runs")
    return text + (f"; {unknown} runs have no estimate)" if unknown else ")")


def minutes(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``12 min``, ``3.5 h``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def describe_plan(runs: list[PlannedRun]) -> str:
    """``12 runs: 4 complete, 8 to train`` for progress lines and dry runs."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    to_train = sum(n for status, n in counts.items() if status != "complete")
    parts = [f"{counts.get('complete', 0)} complete", f"{to_train} to train"]
    if counts.get("partial"):
        parts.append(f"{counts['partial']} of them resumed from a checkpoint")
    if counts.get("failed"):
        parts.append(f"{counts['failed']} failed before (retried)")
    return f"{len(runs)} runs: " + ", ".join(parts)
