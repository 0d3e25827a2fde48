"""What every chapter shares: the setup cell, the run store, and training a set of arms over seeds.

``setup(DEVICE)`` picks the device, makes CPU arithmetic single-threaded (the book's small models run
fastest so, runs in parallel do not compete, and every number comes out the same however many cores
the reader has) and prints the versions. ``run_arms`` declares a grid (``grid.py``) from a recipe
and trains it through the runner into the shared store, so a run that another chapter already
trained is read back, and returns each arm's metrics per seed. ``results_dir`` says where that store is.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError, MMLessonError
from .grid import Grid
from .recipes import RECIPES
from .report import load_metrics

RESULTS_ENV = "MMLESSON_RESULTS"


def results_dir(value=None) -> Path:
    """The run store of the chapters: ``value`` if given, else ``$MMLESSON_RESULTS``, else ``results/``
    at the top of the repository when a chapter runs from ``book/``, else ``./results``."""
    if value:
        return Path(value)
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    here = Path.cwd()
    if (here.parent / "_toc.yml").exists():
        return here.parent / "results"
    return here / "results"


def setup(device: str = "auto"):
    """The chapters' setup: the device (printed), one CPU thread, fixed seeds. Returns the device."""
    import torch

    import mmlesson

    from .engine import resolve_device

    resolved = resolve_device(device)
    if resolved.type == "cpu":
        torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"mmlesson {mmlesson.__version__}, torch {torch.__version__}, device: {resolved}")
    return resolved


def recipe_for(paper: str, dataset: str, synthav: str) -> str:
    """The recipe of ``paper``'s protocol on ``dataset`` (``synthav``: the chapter's own regime)."""
    if dataset == "synthav":
        return synthav
    name = f"{paper}-{dataset}"
    if name not in RECIPES:
        available = sorted(r.data for r in RECIPES.values() if r.name.startswith(f"{paper}-"))
        raise ConfigError(f"no {paper} protocol for DATASET={dataset!r}; choose one of: synthav, "
                          f"{', '.join(available)}")
    return name


def run_arms(arms: dict[str, dict], seeds, recipe: str, data_knobs: dict | None = None, train: dict | None = None,
             results=None, data_dir=None, name: str = "chapter") -> dict[str, list[dict]]:
    """Train (or read back) every arm for every seed under ``recipe`` and return ``{arm: [metrics of
    each seed, in seed order]}``; each metrics dict also carries its ``run_dir``."""
    from .runner import run_grid

    grid = Grid(arms=arms, seeds=list(seeds), data={recipe: {"recipe": recipe, "data_knobs": dict(data_knobs or {})}},
                train=dict(train or {}), name=name)
    table = run_grid(grid, results_dir(results), roots=data_dir, quiet=True)
    failed = table[table["status"] != "complete"]
    if len(failed):
        first = failed.iloc[0]
        raise MMLessonError(f"{len(failed)} runs of {name} failed, e.g. {first['arm']} seed {first['seed']}: "
                            f"{first['error']} ({first['run_dir']})")
    runs = {}
    for arm in arms:
        rows = table[table["arm"] == arm].sort_values("seed")
        runs[arm] = [{**load_metrics(run_dir), "run_dir": run_dir} for run_dir in rows["run_dir"]]
    return runs


def load_models(runs: list[dict], dataset=None) -> list:
    """The trained models of ``runs`` (metrics dicts from ``run_arms``), read back from their directories
    as ``RunResult`` (model, metrics, directory)."""
    from .engine import load_run

    return [load_run(run["run_dir"], dataset=dataset) for run in runs]
