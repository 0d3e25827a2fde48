"""The book's one rule for step sizes: the rule that chooses, and the protocol rates every chapter trains at.

The learning-rate study (``studies.learning_rate_study``) trains arms at every rate of a grid on the tuning
seeds (``STUDY_SEEDS``, never used to evaluate) and returns one row per run; ``choose_learning_rates``
applies the rule to those rows (the best mean validation accuracy, ties to the smaller rate). The study
of each SynthAV recipe was run once and is stored in ``mmlesson/grids`` (``study_file``; ``python -m
mmlesson.book learning-rates`` writes it), so that ``protocol_learning_rates`` gives every execution of
the book the same rates; a recipe of ``ONE_RATE_RECIPES`` trains every arm at the one rate its control
chose (``protocol_rate``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .arms import STUDY_ARMS
from .errors import MMLessonError
from .readouts import fmt

LEARNING_RATES = (0.02, 0.05, 0.1)  # regime A's study; the severe regime's grid is wider (preregistration)
PROTOCOL_RATES = (0.01, 0.02, 0.05, 0.1, 0.2)  # the preregistered grid ([severe_v2.protocol])
STUDY_RATES = {"synthav": LEARNING_RATES, "synthav-severe": PROTOCOL_RATES, "synthav-severe-v2": PROTOCOL_RATES,
               "synthav-mild-v2": PROTOCOL_RATES, "synthav-regime-b-v2": PROTOCOL_RATES}
STUDY_SEEDS = (100, 101, 102, 103, 104)  # never used to evaluate: the evaluation seeds are 0, 1, 2, ...
# The second severe calibration's protocol (preregistration, [severe_v2.protocol]): one rate for every arm,
# chosen with joint concatenation alone on its ten tuning seeds.
ONE_RATE_RECIPES = {"synthav-severe-v2": ("joint (concat)", tuple(range(100, 110))),
                    "synthav-mild-v2": ("joint (concat)", tuple(range(100, 110))),
                    "synthav-regime-b-v2": ("joint (concat)", tuple(range(100, 110)))}
STUDY_FILE = Path(__file__).parent / "grids" / "synthav-learning-rates.csv"


def study_file(recipe: str = "synthav") -> Path:
    """The stored learning-rate study of a SynthAV recipe (shipped in ``mmlesson/grids``)."""
    return STUDY_FILE.with_name(f"{recipe}-learning-rates.csv")


def choose_learning_rates(study) -> dict[str, float]:
    """The book's one rule for step sizes: for each arm of ``study`` (``studies.learning_rate_study``'s rows),
    the rate with the highest mean validation accuracy over the tuning seeds (ties: the smaller rate).
    A rate at which any tuning run failed (its loss became NaN: no ``val acc``) is not eligible."""
    means = study.groupby(["arm", "lr"])["val acc"].agg(lambda v: v.mean(skipna=False))
    chosen = {}
    for arm in study["arm"].unique():
        rates = means[arm].dropna()
        if rates.empty:
            raise MMLessonError(f"every learning rate of {arm} failed on a tuning seed; try smaller rates")
        chosen[arm] = float(max(rates.index, key=lambda rate: (rates[rate], -rate)))
    return chosen


def protocol_learning_rates(recipe: str = "synthav") -> dict[str, float]:
    """The SynthAV protocol's learning rate of every arm of ``STUDY_ARMS`` under ``recipe``: the rule
    applied to the stored study (``study_file(recipe)``, written by ``python -m mmlesson.book
    learning-rates --recipe RECIPE``; for a recipe of ``ONE_RATE_RECIPES``, the rate its control chose, for
    every arm). The rates are
    fixed once, so that every execution of the book trains the same arms: on one seed, competing rates
    differ by less than a seed's spread, and a choice made per execution flips with float rounding."""
    chosen = choose_learning_rates(pd.read_csv(study_file(recipe)))
    if recipe in ONE_RATE_RECIPES:  # the control's rate, for every arm
        return {arm: chosen[ONE_RATE_RECIPES[recipe][0]] for arm in STUDY_ARMS}
    return chosen


def protocol_rate(recipe: str) -> float:
    """The one protocol learning rate of a one-rate recipe (``ONE_RATE_RECIPES``): the rate its control chose."""
    return protocol_learning_rates(recipe)[ONE_RATE_RECIPES[recipe][0]]


def with_learning_rates(arms: dict[str, dict], rates: dict[str, float]) -> dict[str, dict]:
    """``arms`` with the learning rate ``rates`` gives each (an arm it does not name keeps its recipe's)."""
    return {arm: dict(spec, **({"lr": rates[arm]} if arm in rates else {})) for arm, spec in arms.items()}


def learning_rate_table(study=None, arms=None, recipe: str = "synthav"):
    """Mean ± std validation accuracy over the tuning seeds, arm x rate, the chosen rate marked ``*``
    (``arms``: only those rows)."""
    study = pd.read_csv(study_file(recipe)) if study is None else study
    if arms is not None:
        study = study[study["arm"].isin(list(arms))]
    chosen = choose_learning_rates(study)
    table = {}
    for (arm, rate), group in study.groupby(["arm", "lr"]):
        failed = int(group["val acc"].isna().sum())
        cell = f"failed on {failed} of {len(group)} seeds" if failed else fmt(list(group["val acc"]))
        table.setdefault(arm, {})[rate] = cell + (" *" if chosen[arm] == rate else "  ")
    return pd.DataFrame.from_dict(table, orient="index")
