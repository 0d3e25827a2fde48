"""Executing grids: every missing run trained once, in parallel, on Dask distributed.

``run_grid(grid, results, workers=None, scheduler=None)`` plans every run of a grid in the store
(``store.py``), trains what is not complete, and returns the DataFrame of final metrics.

Where the runs execute:

* ``workers=1`` with no scheduler (or ``MMLESSON_WORKERS=1``): one after the other in this process.
* otherwise a Dask ``LocalCluster`` of worker processes: on the CPU one single-threaded worker per core
  (``workers``, default every core); with CUDA one worker per GPU (``per_gpu`` workers per GPU for
  small models), each run pinned to its worker's GPU with ``CUDA_VISIBLE_DEVICES``;
* or the workers of an existing cluster (``scheduler="tcp://host:8786"``, e.g. started by
  dask-jobqueue on Slurm), unchanged.

On Dask every run is its own process with a timeout (``cluster.py``: the cluster, the fork servers
and the run processes), so a crash, an out-of-memory kill or a CUDA error takes out one run, not the
worker pool. A failed run is retried (``retries``), then recorded in its directory
(``failed.json``) and in the DataFrame; the others go on. A killed worker's run is resumed from
its checkpoint by another worker; a killed grid, started again, reads complete runs back and
resumes the interrupted ones.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from .cluster import Executor, Task, cuda_devices, execute_chapter, train_in_subprocess
from .config import TrainConfig
from .engine import check_stages, fit
from .errors import ConfigError, MMLessonError
from .files import atomic_write_json, plain, read_json_file
from .grid import Grid
from .identity import digest
from .methods import METHODS
from .paths import check_directory_target, check_writable_directory, env_int, exists, make_directory
from .progress import warn
from .rundir import RunDirectory
from .store import declare, describe_estimate, describe_plan, plan, results_table, unreadable_runs_line, write_index

DEFAULT_TIMEOUT = 12 * 3600  # seconds per run: a hung run is killed, and resumes from its checkpoint on retry


def default_workers(per_gpu: int = 1) -> int:
    """``MMLESSON_WORKERS`` if set, else one per usable core (``per_gpu`` per GPU on CUDA machines)."""
    workers = env_int("MMLESSON_WORKERS", minimum=1)
    if workers:
        return workers
    gpus = cuda_devices()
    if gpus:
        return len(gpus) * per_gpu
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def plan_grid(grid, results, roots=None) -> list:
    """Every run of ``grid`` placed in the store ``results`` (dependencies first); ``roots`` maps a
    data set name to its prepared cache (or is one path for every real data set). Nothing is written."""
    planned: dict = {}
    for data_label, arm_label, seed in grid.cells():
        keywords = grid.keywords(data_label, arm_label, seed)
        keywords.setdefault("data_root", data_root(keywords.get("data", "synthav"), roots))
        dependencies = [planned[(data_label, name, seed)] for name in grid.dependencies(arm_label)]
        if dependencies:
            keywords["encoders_from"] = [str(run.run_dir) for run in dependencies]
        try:
            config = TrainConfig.build(**keywords)
            check_stages(METHODS[config.method](config), config)  # refused here, before the dry run lists it
            # the dependent's identity names its encoder runs by their identity: planned, maybe not yet written
            run = plan(config, results, tags={"grid": grid.name, "data": data_label, "arm": arm_label, "seed": seed},
                       upstream=dependencies)
        except ConfigError as error:
            raise ConfigError(f"grid {grid.name!r}, arm {arm_label!r}, data {data_label!r}: {error}") from error
        planned[(data_label, arm_label, seed)] = run
    return list(planned.values())


GRIDS_RECORD = "grids"


def record_grid(grid, results, roots) -> None:
    """Keep the grid's definition in ``RESULTS/grids/<name>.json`` so ``mmlesson report`` can rebuild its table."""
    roots = {k: str(v) for k, v in roots.items()} if isinstance(roots, dict) else (str(roots) if roots else None)
    atomic_write_json(Path(results) / GRIDS_RECORD / f"{grid.name}.json", plain({"grid": asdict(grid), "roots": roots}))


def recorded_grids(results) -> list[tuple]:
    """``(Grid, roots)`` of every grid run into ``results``."""
    records = []
    if not exists(Path(results) / GRIDS_RECORD):  # also a name too long to exist
        return records
    for path in sorted((Path(results) / GRIDS_RECORD).glob("*.json")):
        try:
            record = read_json_file(path)
            records.append((Grid(**record["grid"]), record.get("roots")))
        except (MMLessonError, KeyError, TypeError) as error:  # one damaged record must not hide the others
            warn(f"{path} is not a readable grid record ({error}); delete it and run its grid again to rebuild it")
    return records


def data_root(dataset: str, roots) -> str | None:
    if dataset == "synthav" or roots is None:
        return None
    if isinstance(roots, (str, Path)):
        return str(roots)
    if dataset not in roots:
        raise ConfigError(f"no cache given for {dataset}: add --root {dataset}=PATH (mmlesson data prepare {dataset} "
                          f"--raw RAW --root PATH builds one)")
    return str(roots[dataset])


def run_grid(grid, results, workers: int | None = None, scheduler: str | None = None, retries: int = 1,
             timeout: float | None = DEFAULT_TIMEOUT, roots=None, per_gpu: int = 1, progress: str = "auto",
             dry_run: bool = False, quiet: bool = False):
    """Train every missing run of ``grid`` into the store ``results`` and return the pandas DataFrame
    of all its runs (one row per data setting x arm x seed; ``status`` says complete or failed).
    ``workers``: parallel runs (default ``default_workers()``); ``scheduler``: address of an existing
    Dask cluster; ``retries``: further attempts of a failing run; ``timeout``: seconds per run;
    ``roots``: prepared caches of real data sets; ``dry_run``: plan and report, train nothing.
    Four steps: plan (nothing written), declare (the grid's record and each pending run's request),
    execute (``cluster.Executor``), report."""
    started = time.perf_counter()
    env_int("MMLESSON_WORKERS", minimum=1)  # bad settings are refused before anything is planned
    env_int("MMLESSON_THREADS", minimum=0)
    check_directory_target(results, "--results")
    if scheduler is not None:  # workers of a cluster start in other directories: a relative store would be theirs
        results = Path(results).absolute()
    runs = plan_grid(grid, results, roots)
    if roots and not any(run.config.data_root for run in runs):
        raise ConfigError(f"--root is the prepared cache of a real data set; grid {grid.name!r} trains on generated "
                          f"data only ({', '.join(sorted({run.config.data for run in runs}))}): drop --root")
    pending = [run for run in runs if run.status != "complete"]
    if not dry_run:
        declare_grid(grid, results, roots, pending)
    if not quiet:
        print(f"grid {grid.name}: {describe_plan(runs)}" + (" (dry run: nothing trained)" if dry_run else ""),
              file=sys.stderr)
    executor = choose_executor(workers, scheduler, per_gpu, quiet=dry_run or not pending)
    if dry_run:
        if pending and not quiet:
            print(f"grid {grid.name}: {describe_estimate(pending, results, executor.workers)}", file=sys.stderr)
    else:
        record_outcomes(pending, executor.run(training_tasks(pending, executor, timeout, progress), retries, progress))
        write_index(results)
    table = results_table(runs)
    if not quiet:
        report_grid(grid, table, len(pending), None if dry_run else time.perf_counter() - started)
    return table


def choose_executor(workers: int | None, scheduler: str | None, per_gpu: int, quiet: bool = False) -> Executor:
    """``workers`` (default ``default_workers``) on Dask, or in this process where that is one or Dask is
    missing (said once, unless ``quiet``)."""
    requested = workers or default_workers(per_gpu)
    executor = Executor(requested, scheduler, per_gpu)
    if executor.workers < requested and not quiet:
        print("mmlesson: Dask is not installed (pip install 'mmlesson[batch]'); training one run at a time",
              file=sys.stderr)
    return executor


def declare_grid(grid, results, roots, pending: list) -> None:
    """Make the store, keep the grid's record and declare every pending run (its ``run.json``)."""
    make_directory(results, "--results")
    record_grid(grid, results, roots)
    if pending:
        check_writable_directory(results, "--results")
    for run in pending:
        declare(run)


def training_tasks(runs: list, executor: Executor, timeout: float | None, progress: str) -> list[Task]:
    """One task per run: ``fit`` in this process, or a run's own process on a Dask worker."""
    if executor.in_process:
        return [Task(run.hash, fit, (replace(run.config, progress="off") if progress == "off" else run.config,),
                     tuple(run.depends_on)) for run in runs]
    return [Task(run.hash, train_in_subprocess, (str(run.run_dir), timeout, executor.gpus, executor.per_gpu),
                 tuple(run.depends_on), name=f"train-{run.label}-seed{run.config.seed}-{run.hash}") for run in runs]


def record_outcomes(runs: list, outcomes: dict) -> None:
    """Each run's failure (or its absence) in its directory, where the table and a restart read it."""
    for run in runs:
        error, attempts = outcomes.get(run.hash, (None, 0))
        if error is None:
            RunDirectory(run.run_dir).clear_failure()
        else:
            RunDirectory(run.run_dir).record_failure(error, attempts)


def report_grid(grid, table, pending: int, seconds: float | None) -> None:
    """What was trained and what failed, on stderr (``seconds`` None: a dry run, nothing trained)."""
    failed = table[~table["status"].isin(["complete", "unreadable"])] if len(table) else table
    if seconds is not None:
        print(f"grid {grid.name}: {pending - len(failed)} trained, {len(failed)} failed, {seconds:.0f} s",
              file=sys.stderr)
        for _, row in failed.iterrows():
            print(f"  failed: {row['arm']} / {row['data']} / seed {row['seed']}: {row['error']} ({row['run_dir']})",
                  file=sys.stderr)
    if unreadable := unreadable_runs_line(table):
        print(f"mmlesson: warning: {unreadable}", file=sys.stderr)


def chapter_output(results, source, parameters: dict) -> Path:
    """``RESULTS/notebooks/<chapter>-<hash of its parameters>.ipynb``."""
    return Path(results) / "notebooks" / f"{Path(source).stem}-{digest(parameters)[:8]}.ipynb"


def run_chapters(grid, results, workers: int | None = None, scheduler: str | None = None,
                 timeout: float | None = DEFAULT_TIMEOUT, base: Path | None = None, quiet: bool = False):
    """Execute the grid's ``notebooks.chapters`` with ``notebooks.parameters`` (``RESULTS_DIR`` set to
    ``results``) into ``RESULTS/notebooks/``, each in its own process, failures recorded; a chapter
    already executed with the same parameters is not run again. Returns a DataFrame of outcomes."""
    spec = grid.notebooks or {}
    parameters = {**spec.get("parameters", {}), "RESULTS_DIR": str(Path(results).resolve())}
    jobs = []
    for chapter in spec.get("chapters", []):
        source = Path(chapter) if base is None or Path(chapter).is_absolute() else Path(base) / chapter
        if not source.exists():
            raise ConfigError(f"grid {grid.name!r}: chapter {chapter} not found (paths are relative to the grid "
                              f"file's directory)")
        jobs.append((source, chapter_output(results, source, parameters)))
    rows, pending = [], [(s, o) for s, o in jobs if not o.exists()]
    errors: dict[str, str | None] = {}
    if pending:
        executor = choose_executor(workers, scheduler, 1, quiet=True)
        tasks = [Task(str(output), execute_chapter, (str(source), str(output), parameters, timeout),
                      name=f"chapter-{output.stem}") for source, output in pending]
        errors = {key: error for key, (error, _) in executor.run(tasks).items()}
    for source, output in jobs:
        error = errors.get(str(output))
        rows.append({"chapter": source.stem, "output": str(output), "status": "failed" if error else "complete",
                     "error": error})
        if error and not quiet:
            print(f"  failed: {error}", file=sys.stderr)
    return pd.DataFrame(rows, columns=["chapter", "output", "status", "error"])
