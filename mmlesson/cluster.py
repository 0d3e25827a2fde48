"""Where runs execute: a Dask cluster of single-threaded workers, each forking every run as its own
process from a fork server, with a time limit; and ``python -m mmlesson.cluster train RUN_DIR``.

* ``Executor``: where a batch of tasks (a grid's runs, a grid's chapters) runs: in this process, one
  after another, or on Dask: ``local_client(workers)``, a ``LocalCluster`` of worker processes started
  once per process and reused (closed at exit), or an existing cluster's scheduler.
* On a worker, ``train_in_subprocess`` forks the run from the worker's fork server (a process that has
  imported torch and mmlesson once, so a run starts in a fraction of a second), pinned to the worker's
  GPU with ``CUDA_VISIBLE_DEVICES`` on CUDA machines, and kills it after its time limit. A crash, an
  out-of-memory kill or a CUDA error takes out one run, not the worker pool; the run's process dies
  with its worker (Linux), and the run's lock keeps two processes from ever writing one run.

Grid planning and the store are ``runner.py``'s and ``store.py``'s; this module knows processes.
"""
from __future__ import annotations

import atexit
import ctypes
import json
import multiprocessing
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing import forkserver as server
from typing import Callable

from .errors import MMLessonError, exit_with_one_line
from .progress import make_progress, progress_enabled
from .rundir import RunDirectory

try:  # the `batch` extra; without it every task runs in this process, one after another
    import dask
    from distributed import Client, LocalCluster, as_completed, get_worker
except ImportError:
    dask = None

# Dask workers import this module to run ``train_in_subprocess``; what they need is imported above, and
# torch only in the fork server (``forkserver``), so a worker starts in a fraction of a second.

_CLIENTS: dict = {}


class RunFailed(MMLessonError):
    """A run's subprocess ended with an error, was killed or timed out."""


def cuda_devices() -> list[str]:
    """The GPUs this process may use (``CUDA_VISIBLE_DEVICES`` respected), as ids for that variable."""
    import torch  # here, not at the top: a Dask worker imports this module, and torch belongs in its fork server

    if not torch.cuda.is_available():
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.strip() for d in visible.split(",") if d.strip()] if visible else []
    return ids[:torch.cuda.device_count()] or [str(i) for i in range(torch.cuda.device_count())]


def local_client(workers: int, per_gpu: int):
    """A Dask client of a LocalCluster of ``workers`` single-threaded worker processes, started once
    per process and reused by later grids (closed at exit)."""
    key = ("local", workers)
    if key not in _CLIENTS:
        for client in list(_CLIENTS.values()):  # one local cluster at a time: never oversubscribe the cores
            close_client(client)
        _CLIENTS.clear()
        quiet_loops = {"distributed.admin.tick.interval": "1s", "distributed.worker.memory.monitor-interval": "1s",
                       "distributed.admin.system-monitor.interval": "5s"}  # idle workers must not take CPU from runs
        with dask.config.set({"distributed.worker.daemon": False, **quiet_loops}):  # workers fork each run
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   silence_logs=50)  # CRITICAL: a failed run is reported once, by the grid
        _CLIENTS[key] = Client(cluster)
        _CLIENTS[key].run(start_forkserver)
    return _CLIENTS[key]


def close_client(client) -> None:
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()


@atexit.register
def close_local_clusters() -> None:
    for client in list(_CLIENTS.values()):
        try:
            close_client(client)
        except Exception:  # shutting down: nothing left to report to
            pass
    _CLIENTS.clear()


@dataclass(frozen=True)
class Task:
    """One piece of work: ``function(*args)``, once the tasks named in ``after`` have succeeded. ``key``
    identifies it in the outcomes; ``name`` is its name on Dask's dashboard."""

    key: str
    function: Callable
    args: tuple
    after: tuple = ()
    name: str = ""


class Executor:
    """Where a batch of tasks runs, for grids and chapters alike: in this process, one after another (one
    worker, or Dask not installed), or on Dask, on a local cluster of ``workers`` single-threaded processes
    (``per_gpu`` per GPU) or on the cluster at ``scheduler``. A task whose dependency failed is not run."""

    def __init__(self, workers: int, scheduler: str | None = None, per_gpu: int = 1):
        self.scheduler, self.per_gpu = scheduler, per_gpu
        self.in_process = scheduler is None and (workers == 1 or dask is None)
        self.workers = 1 if self.in_process else workers  # tasks that run at once
        self.gpus = None if self.in_process or scheduler else cuda_devices() or None  # pinned per worker

    def run(self, tasks: list[Task], retries: int = 0, progress: str = "off") -> dict[str, tuple[str | None, int]]:
        """``{key: (error or None, attempts)}`` of every task (no cluster is started for none)."""
        if not tasks:
            return {}
        with make_progress(len(tasks), "runs", progress_enabled(progress)) as bar:
            if self.in_process:
                return self.run_here(tasks, bar)
            return self.run_on_dask(tasks, retries, bar)

    @staticmethod
    def run_here(tasks: list[Task], bar) -> dict[str, tuple[str | None, int]]:
        outcomes: dict[str, tuple[str | None, int]] = {}
        for task in tasks:
            failed_dependency = next((key for key in task.after if outcomes.get(key, (None,))[0]), None)
            if failed_dependency:
                outcomes[task.key] = (f"a run it depends on failed ({failed_dependency})", 0)
            else:
                try:
                    task.function(*task.args)
                    outcomes[task.key] = (None, 1)
                except (MMLessonError, RuntimeError, ValueError, OSError) as error:
                    outcomes[task.key] = (f"{type(error).__name__}: {error}".splitlines()[0], 1)
            bar.update(1)
        return outcomes

    def run_on_dask(self, tasks: list[Task], retries: int, bar) -> dict[str, tuple[str | None, int]]:
        """Submit every task (dependencies as futures, explicit keys, ``pure=False``) and wait for all."""
        client = Client(self.scheduler) if self.scheduler else local_client(self.workers, self.per_gpu)
        futures, by_key = {}, {}
        for task in tasks:
            dependencies = [futures[key] for key in task.after if key in futures]
            futures[task.key] = client.submit(task.function, *task.args, *dependencies, key=task.name or task.key,
                                              pure=False, retries=retries)
            by_key[futures[task.key].key] = task
        outcomes: dict[str, tuple[str | None, int]] = {}
        try:
            for future in as_completed(list(futures.values())):
                task = by_key[future.key]
                if future.status == "finished":
                    outcomes[task.key] = (None, 1)
                else:
                    failed_dependency = next((key for key in task.after if outcomes.get(key, (None,))[0]), None)
                    error = (f"a run it depends on failed ({failed_dependency})" if failed_dependency
                             else one_line(future.exception()))
                    outcomes[task.key] = (error, retries + 1)
                bar.update(1)
        finally:
            if self.scheduler:
                client.close()
        return outcomes


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[-1] if text else ''}".rstrip(": ")


def die_with_parent() -> None:
    """In the child: ask Linux to kill it when the process that started it dies (no orphan training on)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the run lock still keeps a second writer out
        pass


SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MMLESSON_BATCH": "1"}


def forkserver():
    """This worker's fork server: one process that has imported torch and mmlesson once, from which
    every run's process is forked in a fraction of a second (a fresh interpreter takes seconds)."""
    context = multiprocessing.get_context("forkserver")
    if not getattr(forkserver, "ready", False):
        os.environ.update(SINGLE_THREADED)  # inherited by the server, so set before torch is imported there
        # Dask starts its workers with MALLOC_TRIM_THRESHOLD_=65536, which makes glibc return freed memory
        # at once; training frees and reallocates the same tensors every step and ran 1.7x slower so
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        context.set_forkserver_preload(["mmlesson.cluster", "mmlesson.engine"])
        forkserver.ready = True
    return context


def start_forkserver() -> None:
    """Start this worker's fork server now (it imports torch in the background while the grid is planned)."""
    forkserver()
    server.ensure_running()


def child_main(run_dir: str, gpu: str | None, channel) -> None:
    """Body of a run's forked process: train, and send back one line on failure."""
    die_with_parent()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before CUDA is first touched in this process
    try:
        train_declared_run(run_dir)
    except BaseException as error:  # report every failure as one line, then exit non-zero
        channel.send(f"{type(error).__name__}: {error}".strip().splitlines()[0] if str(error) else type(error).__name__)
        channel.close()
        sys.exit(1)  # multiprocessing runs the exit handlers (tqdm's lock is released), then exits


def train_in_subprocess(run_dir: str, timeout: float | None, gpus: list[str] | None, per_gpu: int,
                        *dependencies) -> str:
    """Dask task: train the run declared in ``run_dir`` in its own single-threaded process (forked from
    the worker's fork server; a fresh interpreter where the worker is daemonic and may not fork)."""
    gpu = None
    if gpus:
        gpu = gpus[(int(get_worker().name) // per_gpu) % len(gpus)]
    if multiprocessing.current_process().daemon:
        return train_in_interpreter(run_dir, timeout, gpu)
    context = forkserver()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=child_main, args=(run_dir, gpu, sender))
    process.start()
    sender.close()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        RunDirectory(run_dir).remove_unfinished_writes()  # a checkpoint it was writing when killed
        raise RunFailed(f"timed out after {timeout:.0f} s; it resumes from its checkpoint when run again")
    if process.exitcode != 0:
        message = receiver.recv() if receiver.poll() else f"its process ended with exit code {process.exitcode}"
        raise RunFailed(message)
    return run_dir


def run_isolated(command: list[str], env: dict, timeout: float | None, what: str) -> None:
    """Run ``command`` in its own process that dies with this one; a failure raises ``RunFailed``
    with the last line it wrote to stderr (or the time limit it hit)."""
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                                preexec_fn=die_with_parent if sys.platform == "linux" else None)
    except subprocess.TimeoutExpired:
        raise RunFailed(f"{what}timed out after {timeout:.0f} s; it resumes from its checkpoint when run again") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise RunFailed(what + (lines[-1] if lines else f"exit code {result.returncode}"))


def execute_chapter(source: str, output: str, parameters: dict, timeout: float | None) -> str:
    """Task: execute one chapter with papermill in its own process (its runs go to the store in
    ``parameters["RESULTS_DIR"]``; inside it, runs train one at a time, single-threaded)."""
    env = {**os.environ, **SINGLE_THREADED, "MMLESSON_WORKERS": "1"}
    command = [sys.executable, "-m", "mmlesson.notebooks", "execute", source, "--output", output,
               "--parameters", json.dumps(parameters)]
    run_isolated(command, env, timeout, f"chapter {source}: ")
    return output


def train_in_interpreter(run_dir: str, timeout: float | None, gpu: str | None) -> str:
    """``python -m mmlesson.cluster train RUN_DIR`` in a fresh interpreter (slower to start)."""
    env = {**os.environ, **SINGLE_THREADED, **({"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else {})}
    env.pop("MALLOC_TRIM_THRESHOLD_", None)  # see forkserver()
    try:
        run_isolated([sys.executable, "-m", "mmlesson.cluster", "train", run_dir], env, timeout, "")
    finally:
        RunDirectory(run_dir).remove_unfinished_writes()  # the process has ended: nothing live owns them
    return run_dir


def train_declared_run(run_dir) -> int:
    """``python -m mmlesson.cluster train RUN_DIR``: train the run its run.json declares."""
    from .config import TrainConfig  # here, not at the top: both import torch (see cuda_devices)
    from .engine import fit

    record = RunDirectory(run_dir).read_request()
    config = TrainConfig.stored(record["config"], out=str(run_dir), progress="off")
    fit(config)
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "train":
        print("usage: python -m mmlesson.cluster train RUN_DIR", file=sys.stderr)
        return 2
    return exit_with_one_line(lambda: train_declared_run(argv[1]))


if __name__ == "__main__":
    sys.exit(main())
