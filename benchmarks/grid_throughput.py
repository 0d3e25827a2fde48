"""Runs per minute: a grid of SynthAV runs trained one after the other in one process (torch's default
threads) against the runner (Dask, single-threaded worker processes), alone and beside a competing
CPU-bound process; and one run with 1 against 2 threads, alone and beside a second training run.

    python benchmarks/grid_throughput.py              # 8 runs of the book's default SynthAV setting
    python benchmarks/grid_throughput.py --runs 4 --epochs 2
    python benchmarks/grid_throughput.py --runner-only --workers 2 --per-gpu 2 --json out.json   # on a GPU

Every configuration trains into a fresh store; the figures are wall-clock seconds measured here.
``--runner-only`` times the runner alone (``--workers`` workers, ``--per-gpu`` of them per GPU on CUDA
machines), as ``benchmarks/gpu_check.sh`` does for k = 1, 2, 4 SynthAV workers per GPU.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from mmlesson import Grid, TrainConfig, fit, run_grid
from mmlesson.cli.arguments import parse_knob
from mmlesson.rundir import load_metrics
from mmlesson.cluster import cuda_devices


def grid_of(runs: int, epochs: int, knobs: dict | None = None) -> Grid:
    return Grid(recipe="synthav", arms={"joint": dict(method="joint", probe=False)}, seeds=list(range(runs)),
                train=dict(epochs=epochs, data_knobs=knobs or {}), name="bench")


def runner_only(args) -> dict:
    """Runs per minute of ``run_grid``: ``args.workers`` workers (``args.per_gpu`` per GPU), cluster start included."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        table = run_grid(grid_of(args.runs, args.epochs, dict(args.data_knobs)), tmp, workers=args.workers,
                         per_gpu=args.per_gpu, progress="off", quiet=True)
        seconds = time.perf_counter() - started
    gpus = cuda_devices()
    return {"workload": "runner", "device": f"{len(gpus)} GPU(s)" if gpus else "cpu", "workers": args.workers,
            "per_gpu": args.per_gpu, "runs": args.runs, "epochs": args.epochs, "seconds": round(seconds, 2),
            "runs_per_minute": round(args.runs / seconds * 60, 2),
            "failed": int((table["status"] != "complete").sum())}


def sequential(runs: int, epochs: int, threads: int, store: Path) -> float:
    """The loop the chapters used to run: one process, one run after the other."""
    started = time.perf_counter()
    for seed in range(runs):
        fit(TrainConfig.build(data="synthav", method="joint", width=8, epochs=epochs, probe=False, seed=seed,
                              threads=threads, out=str(store / f"seed{seed}"), progress="off"))
    return time.perf_counter() - started


def burn(seconds: float) -> None:
    """A competing CPU-bound process: a 2-thread torch matrix loop."""
    torch.set_num_threads(2)
    a = torch.randn(512, 512)
    end = time.time() + seconds
    while time.time() < end:
        a = (a @ a).tanh()


def train_command(out: Path, threads: int, epochs: int) -> list[str]:
    return [sys.executable, "-m", "mmlesson", "train", "--epochs", str(epochs), "--no-probe", "--threads", str(threads),
            "--progress", "off", "--out", str(out)]


def one_run(threads: int, epochs: int, store: Path, beside: str | None) -> float:
    """The ``wall_seconds`` of one `mmlesson train` run, alone or beside another CPU-bound process."""
    other = None
    if beside == "train":
        other = subprocess.Popen(train_command(store / "other", threads, epochs * 3), stdout=subprocess.DEVNULL)
    elif beside == "burn":
        other = multiprocessing.Process(target=burn, args=(600,))
        other.start()
    time.sleep(3 if other is not None else 0)  # let the competitor get going
    subprocess.run(train_command(store / "run", threads, epochs), check=True, stdout=subprocess.DEVNULL)
    if other is not None:
        other.kill()
        other.join() if hasattr(other, "join") else other.wait()
    return load_metrics(store / "run")["env"]["wall_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runner-only", action="store_true", help="time the runner alone, nothing else")
    only = parser.add_argument_group("options of --runner-only")
    only.add_argument("--per-gpu", type=int, default=1, help="runner workers per GPU on CUDA machines (default: 1)")
    only.add_argument("--data-knob", dest="data_knobs", action="append", type=parse_knob, default=[],
                      metavar="NAME=VALUE", help="a SynthAV knob of every run (repeatable), e.g. train_size=64")
    only.add_argument("--json", default=None, metavar="PATH", help="also write the result here")
    args = parser.parse_args()
    if args.runner_only:
        result = runner_only(args)
        print(json.dumps(result))
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(result, handle, indent=1)
        raise SystemExit(1 if result["failed"] else 0)
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__} (default threads {torch.get_num_threads()}); "
          f"{args.runs} SynthAV runs of {args.epochs} epochs (width 8, batch 64)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, competitor in (("alone", None), ("beside a 2-thread CPU loop", "burn")):
            other = None
            if competitor:
                other = multiprocessing.Process(target=burn, args=(3600,))
                other.start()
            seconds = sequential(args.runs, args.epochs, 0, tmp / f"sequential-{label}")
            rows.append((f"sequential, one process, torch default threads, {label}", seconds))
            seconds_grid = time.perf_counter()
            run_grid(grid_of(args.runs, args.epochs), tmp / f"grid-{label}", workers=args.workers, quiet=True)
            rows.append((f"runner, {args.workers} single-threaded workers, {label}", time.perf_counter() - seconds_grid))
            if other is not None:
                other.kill()
                other.join()
        for name, seconds in rows:
            print(f"{name:70s} {seconds:7.1f} s  {args.runs / seconds * 60:6.1f} runs/min")
        print()
        for threads in (1, 2):
            for beside in (None, "train", "burn"):
                store = tmp / f"one-{threads}-{beside}"
                seconds = one_run(threads, max(2, args.epochs // 4), store, beside)
                what = {None: "alone", "train": "beside a second `mmlesson train` (same threads)",
                        "burn": "beside a 2-thread CPU loop"}[beside]
                print(f"one run, {threads} thread(s), {what:50s} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
