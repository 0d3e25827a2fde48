"""Training arms over seeds into the chapters' run store, and reading back what a run was trained on.

``results_dir`` says where the store is. ``run_arms`` declares a grid (``grid.py``) from a recipe and
trains it through the runner into the store, so that a run another chapter already trained is read back,
and returns each arm's metrics per seed. ``recipe_data`` and ``run_data`` give the data set a run trains
on, ``models_and_data`` each run's trained model beside it, ``oracle`` the Bayes accuracy of a SynthAV
recipe's data.
"""
from __future__ import annotations

import os
from pathlib import Path

from .data import load as load_data, trained_on
from .data.synthav import SynthAVConfig, oracle_accuracy
from .engine import load_run
from .errors import MMLessonError
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


def run_arms(arms: dict[str, dict], seeds, recipe: str, data_knobs: dict | None = None, train: dict | None = None,
             results=None, data_dir=None, name: str | None = None, keep_failed: bool = False,
             workers: int | None = None) -> dict[str, list[dict]]:
    """Train (or read back) every arm for every seed under ``recipe`` and return ``{arm: [metrics of
    each seed, in seed order]}``; each metrics dict also carries its ``run_dir``. A failed run stops
    with one line, unless ``keep_failed``: then it stands as ``{"failed": error, "run_dir": ...}``.
    ``workers``: runs trained at once (default: the runner's)."""
    grid = Grid(arms=arms, seeds=list(seeds), data={recipe: {"recipe": recipe, "data_knobs": dict(data_knobs or {})}},
                train=dict(train or {}), name=name)
    table = run_grid(grid, results_dir(results), roots=data_dir, quiet=True, workers=workers)
    failed = table[table["status"] != "complete"]
    if keep_failed:
        return {arm: [{**load_metrics(row["run_dir"]), "run_dir": row["run_dir"]} if row["status"] == "complete"
                      else {"failed": row["error"], "run_dir": row["run_dir"]}
                      for row in table[table["arm"] == arm].sort_values("seed").to_dict("records")] for arm in arms}
    if len(failed):
        first = failed.iloc[0]
        raise MMLessonError(f"{len(failed)} runs of {name} failed, e.g. {first['arm']} seed {first['seed']}: "
                            f"{first['error']} ({first['run_dir']})")
    runs = {}
    for arm in arms:
        rows = table[table["arm"] == arm].sort_values("seed")
        runs[arm] = [{**load_metrics(run_dir), "run_dir": run_dir} for run_dir in rows["run_dir"]]
    return runs


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
