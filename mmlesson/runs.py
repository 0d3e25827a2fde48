"""Training arms over seeds into the chapters' run store, and reading back what a run was trained on.

``results_dir`` says where the store is. ``train_arms`` trains a grid through the runner into a store
and reads its runs back as ``Runs`` (each arm's metrics per seed), for the chapters and ``diagnose``;
``run_arms`` declares the grid (``grid.py``) from a recipe, so that a run another chapter already
trained is read back. ``recipe_data`` and ``run_data`` give the data set a run trains
on, ``models_and_data`` each run's trained model beside it, ``oracle`` the Bayes accuracy of a SynthAV
recipe's data.
"""
from __future__ import annotations

import os
from pathlib import Path

from .data import load as load_data, trained_on
from .data.synthav import SynthAVConfig, oracle_accuracy
from .engine import load_run
from .errors import ConfigError
from .grid import Grid
from .recipes import RECIPES, with_data_seed
from .rundir import load_metrics
from .runner import run_grid

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


class Runs(dict):
    """Runs of several arms over seeds, in the one shape the chapters, ``diagnose`` and the stored studies
    share: ``{arm: [metrics of each seed, in seed order]}``, each a run's metrics.json with its ``run_dir``
    (a failed run kept by ``keep_failed``: ``{"failed": error, "run_dir": ...}``; a run read back from a
    stored study's CSV: the fields that file keeps, ``studies.stored_runs``). ``table`` is the tidy table
    they were read from (``store.results_table``: one row per run; None for a stored study)."""

    def __init__(self, runs: dict[str, list[dict]], table=None):
        super().__init__(runs)
        self.table = table

    @classmethod
    def read(cls, table, arms, keep_failed: bool = False, name: str | None = None) -> "Runs":
        """Each run of ``arms`` in ``table`` read back; a failed run stops with one line naming it and its
        error, unless ``keep_failed``."""
        failed = table[table["status"] != "complete"]
        if len(failed) and not keep_failed:
            first = failed.iloc[0]
            raise ConfigError(f"{len(failed)} runs of {name} failed, e.g. {first['arm']} seed {first['seed']}: "
                              f"{first['error']} ({first['run_dir']}); fix it and run the same command again")
        runs = {}
        for arm in arms:
            rows = table[table["arm"] == arm].sort_values("seed").to_dict("records")
            runs[arm] = [{**load_metrics(row["run_dir"]), "run_dir": row["run_dir"]} if row["status"] == "complete"
                         else {"failed": row["error"], "run_dir": row["run_dir"]} for row in rows]
        return cls(runs, table)


def train_arms(grid: Grid, results, roots=None, workers: int | None = None, progress: str = "auto",
               keep_failed: bool = False) -> Runs:
    """Train (or read back) every run of ``grid`` into the store ``results`` and read them back: the one way
    arms are trained over seeds, for the chapters (``run_arms``) and for ``diagnose``."""
    table = run_grid(grid, results, roots=roots, workers=workers, progress=progress, quiet=True)
    return Runs.read(table, grid.arms, keep_failed, name=grid.name)


def run_arms(arms: dict[str, dict], seeds, recipe: str, data_knobs: dict | None = None, train: dict | None = None,
             results=None, data_dir=None, name: str | None = None, keep_failed: bool = False,
             workers: int | None = None) -> Runs:
    """Train (or read back) every arm for every seed under ``recipe`` into the chapters' store (``Runs``).
    ``workers``: runs trained at once (default: the runner's)."""
    grid = Grid(arms=arms, seeds=list(seeds), data={recipe: {"recipe": recipe, "data_knobs": dict(data_knobs or {})}},
                train=dict(train or {}), name=name)
    return train_arms(grid, results_dir(results), data_dir, workers, keep_failed=keep_failed)


def run_data(run: dict, data_dir=None):
    """The data set ``run`` (a metrics dict) was trained on (``data.trained_on``)."""
    return trained_on(run["config"], data_dir)


def recipe_data(recipe: str, seed: int, data_knobs: dict | None = None, data_dir=None):
    """The data set a run of ``recipe`` with training seed ``seed`` trains on (its own draw where the
    recipe's data seed is ``"run"``)."""
    knobs = with_data_seed({"seed": seed, "data_knobs": {**RECIPES[recipe].data_knobs, **(data_knobs or {})}})
    return load_data(RECIPES[recipe].data, root=data_dir, **knobs["data_knobs"])


def models_and_data(runs: list[dict], data_dir=None) -> list[tuple]:
    """``(RunResult, data set)`` of each of ``runs``: its trained model with the data it was trained on."""
    pairs = []
    for run in runs:
        data = run_data(run, data_dir)
        pairs.append((load_run(run["run_dir"], dataset=data), data))
    return pairs


def oracle(recipe: str, data_knobs: dict | None = None) -> dict[str, float]:
    """The oracle (Bayes) accuracy of a SynthAV recipe's data (``data.synthav.oracle_accuracy``)."""
    knobs = {**RECIPES[recipe].data_knobs, **(data_knobs or {})}
    knobs.pop("seed", None)  # the oracle is the same for every draw of the data (a recipe's seed may be "run")
    return oracle_accuracy(SynthAVConfig.from_knobs(**knobs))
