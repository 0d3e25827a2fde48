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
from pathlib import Path

from .cluster import RunFailed, SINGLE_THREADED, cuda_devices, local_client, one_line, run_isolated, run_on_dask
from .errors import ConfigError, MMLessonError
from .rundir import RunDirectory

DEFAULT_TIMEOUT = 12 * 3600  # seconds per run: a hung run is killed, and resumes from its checkpoint on retry


def default_workers(per_gpu: int = 1) -> int:
    """``MMLESSON_WORKERS`` if set, else one per usable core (``per_gpu`` per GPU on CUDA machines)."""
    from .paths import env_int

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
    from .config import TrainConfig
    from .engine import check_stages
    from .identity import planned_identities
    from .methods import METHODS
    from .store import plan

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
            # the dependent's identity names its encoder runs by their identity, planned but maybe not yet written
            with planned_identities({run.run_dir: run.identity for run in dependencies}):
                run = plan(config, results, tags={"grid": grid.name, "data": data_label, "arm": arm_label,
                                                   "seed": seed}, depends_on=[run.hash for run in dependencies])
        except ConfigError as error:
            raise ConfigError(f"grid {grid.name!r}, arm {arm_label!r}, data {data_label!r}: {error}") from error
        planned[(data_label, arm_label, seed)] = run
    return list(planned.values())


GRIDS_RECORD = "grids"


def record_grid(grid, results, roots) -> None:
    """Keep the grid's definition in ``RESULTS/grids/<name>.json`` so ``mmlesson report`` can rebuild its table."""
    from dataclasses import asdict

    from .files import atomic_write_json, plain

    roots = {k: str(v) for k, v in roots.items()} if isinstance(roots, dict) else (str(roots) if roots else None)
    atomic_write_json(Path(results) / GRIDS_RECORD / f"{grid.name}.json", plain({"grid": asdict(grid), "roots": roots}))


def recorded_grids(results) -> list[tuple]:
    """``(Grid, roots)`` of every grid run into ``results``."""
    from .grid import Grid
    from .files import read_json_file
    from .paths import exists
    from .progress import warn

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
    ``roots``: prepared caches of real data sets; ``dry_run``: plan and report, train nothing."""
    from .paths import check_directory_target, check_writable_directory, env_int, make_directory
    from .store import declare, describe_estimate, describe_plan, results_table, unreadable_runs_line, write_index

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
    if not dry_run:
        make_directory(results, "--results")
        record_grid(grid, results, roots)
    pending = [run for run in runs if run.status != "complete"]
    if not quiet:
        print(f"grid {grid.name}: {describe_plan(runs)}" + (" (dry run: nothing trained)" if dry_run else ""),
              file=sys.stderr)
    if dry_run:
        table = results_table(runs)
        if not quiet:
            if pending:
                print(f"grid {grid.name}: {describe_estimate(pending, results, parallel_runs(workers, scheduler, per_gpu))}",
                      file=sys.stderr)
            if unreadable := unreadable_runs_line(table):
                print(f"mmlesson: warning: {unreadable}", file=sys.stderr)
        return table
    if pending:
        check_writable_directory(results, "--results")
        for run in pending:
            declare(run)
        requested = workers or default_workers(per_gpu)
        workers = parallel_runs(requested, scheduler, per_gpu)
        if workers < requested:
            print("mmlesson: Dask is not installed (pip install 'mmlesson[batch]'); training one run at a time",
                  file=sys.stderr)
        if workers == 1 and scheduler is None:
            outcomes = run_in_process(pending, progress)
        else:
            outcomes = run_on_dask(pending, workers, scheduler, retries, timeout, per_gpu, progress)
        for run in pending:
            error, attempts = outcomes.get(run.hash, (None, 0))
            if error is None:
                RunDirectory(run.run_dir).clear_failure()
            else:
                RunDirectory(run.run_dir).record_failure(error, attempts)
    write_index(results)
    table = results_table(runs)
    failed = table[~table["status"].isin(["complete", "unreadable"])] if len(table) else table
    if not quiet:
        print(f"grid {grid.name}: {len(pending) - len(failed)} trained, {len(failed)} failed, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
        for _, row in failed.iterrows():
            print(f"  failed: {row['arm']} / {row['data']} / seed {row['seed']}: {row['error']} ({row['run_dir']})",
                  file=sys.stderr)
        if unreadable := unreadable_runs_line(table):
            print(f"mmlesson: warning: {unreadable}", file=sys.stderr)
    return table


def parallel_runs(workers: int | None, scheduler: str | None, per_gpu: int) -> int:
    """How many runs train at once: ``workers``, else ``default_workers``; one without Dask."""
    workers = workers or default_workers(per_gpu)
    return 1 if scheduler is None and workers > 1 and not dask_installed() else workers


def dask_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("distributed") is not None


def run_in_process(runs: list, progress: str) -> dict[str, tuple[str | None, int]]:
    """Train ``runs`` one after the other in this process; a failure is recorded, not raised."""
    from dataclasses import replace

    from .engine import fit
    from .progress import make_progress, progress_enabled

    outcomes: dict[str, tuple[str | None, int]] = {}
    with make_progress(len(runs), "runs", progress_enabled(progress)) as bar:
        for run in runs:
            failed_dependency = next((h for h in run.depends_on if outcomes.get(h, (None,))[0]), None)
            if failed_dependency:
                outcomes[run.hash] = (f"a run it depends on failed ({failed_dependency})", 0)
            else:
                try:
                    fit(replace(run.config, progress="off") if progress == "off" else run.config)
                    outcomes[run.hash] = (None, 1)
                except (MMLessonError, RuntimeError, ValueError, OSError) as error:
                    outcomes[run.hash] = (f"{type(error).__name__}: {error}".splitlines()[0], 1)
            bar.update(1)
    return outcomes


def chapter_output(results, source, parameters: dict) -> Path:
    """``RESULTS/notebooks/<chapter>-<hash of its parameters>.ipynb``."""
    from .identity import digest

    return Path(results) / "notebooks" / f"{Path(source).stem}-{digest(parameters)[:8]}.ipynb"


def execute_chapter(source: str, output: str, parameters: dict, timeout: float | None) -> str:
    """Dask task: execute one chapter with papermill in its own process (its runs go to the store in
    ``parameters["RESULTS_DIR"]``; inside it, runs train one at a time, single-threaded)."""
    import json

    env = {**os.environ, **SINGLE_THREADED, "MMLESSON_WORKERS": "1"}
    command = [sys.executable, "-m", "mmlesson.notebooks", "execute", source, "--output", output,
               "--parameters", json.dumps(parameters)]
    run_isolated(command, env, timeout, f"chapter {source}: ")
    return output


def run_chapters(grid, results, workers: int | None = None, scheduler: str | None = None,
                 timeout: float | None = DEFAULT_TIMEOUT, base: Path | None = None, quiet: bool = False):
    """Execute the grid's ``notebooks.chapters`` with ``notebooks.parameters`` (``RESULTS_DIR`` set to
    ``results``) into ``RESULTS/notebooks/``, each in its own process, failures recorded; a chapter
    already executed with the same parameters is not run again. Returns a DataFrame of outcomes."""
    import pandas as pd

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
    errors: dict[Path, str | None] = {}
    if pending:
        workers = workers or default_workers()
        if workers == 1 and scheduler is None or scheduler is None and not dask_installed():
            for source, output in pending:
                try:
                    execute_chapter(str(source), str(output), parameters, timeout)
                    errors[output] = None
                except RunFailed as error:
                    errors[output] = str(error)
        else:
            from distributed import Client, wait

            client = Client(scheduler) if scheduler else local_client(workers, 1)
            futures = {output: client.submit(execute_chapter, str(source), str(output), parameters, timeout,
                                             key=f"chapter-{output.stem}", pure=False) for source, output in pending}
            wait(list(futures.values()))
            for output, future in futures.items():
                errors[output] = None if future.status == "finished" else one_line(future.exception())
            if scheduler:
                client.close()
    for source, output in jobs:
        error = errors.get(output)
        rows.append({"chapter": source.stem, "output": str(output), "status": "failed" if error else "complete",
                     "error": error})
        if error and not quiet:
            print(f"  failed: {error}", file=sys.stderr)
    return pd.DataFrame(rows, columns=["chapter", "output", "status", "error"])


