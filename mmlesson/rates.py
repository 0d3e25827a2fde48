"""The book's one rule for step sizes: the learning-rate study that measures, the rule that chooses, and
the protocol rates every chapter trains at.

``learning_rate_study`` trains arms at every rate of a grid on the tuning seeds (``STUDY_SEEDS``, never
used to evaluate) and returns one row per run; ``choose_learning_rates`` applies the rule to those rows
(the best mean validation accuracy, ties to the smaller rate). The study of each SynthAV recipe was run
once and is stored in ``mmlesson/grids`` (``study_file``; ``python -m mmlesson.book learning-rates``
writes it), so that ``protocol_learning_rates`` gives every execution of the book the same rates; a
recipe of ``ONE_RATE_RECIPES`` trains every arm at the one rate its control chose (``protocol_rate``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .arms import STUDY_ARMS
from .errors import ConfigError, MMLessonError
from .readouts import fmt
from .runs import run_arms

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


def learning_rate_study(arms: dict[str, dict], recipe: str, data_knobs: dict | None = None, train: dict | None = None,
                        results=None, data_dir=None, name: str = "tuning", rates=LEARNING_RATES,
                        seeds=STUDY_SEEDS, extend_edges: bool = False):
    """Train every arm at every rate on the tuning ``seeds`` and return one row per run: ``arm``,
    ``lr``, ``seed``, ``val acc`` (at the run's selected epoch; empty for a run that failed, e.g. whose loss
    became NaN, with the reason in ``failed``). Arms that read other arms' encoders
    are trained on those at the rate the rule (``choose_learning_rates``) chose for them. With
    ``extend_edges``, an arm whose choice is an end of ``rates`` is also trained one factor-of-two step
    beyond it, and the rule chooses again among all its rates."""
    missing = sorted({s for spec in arms.values() for s in spec.get("encoders_from") or () if s not in arms})
    if missing:
        raise ConfigError(f"the study's arms read the encoders of {', '.join(missing)}, which it does not train: "
                          f"add them to its arms (with_sources)")
    independent = [a for a, spec in arms.items() if not spec.get("encoders_from")]
    dependent = [a for a in arms if a not in independent]
    rows = []

    def label(arm, rate):
        return f"{arm} @ lr {rate}"

    def study_rows(arm_rates, runs):  # one row per (arm, rate) x seed: its validation accuracy
        return [{"arm": arm, "lr": rate, "seed": seed, "val acc": run["final"]["val"]["acc"] if "final" in run else None,
                 "failed": failure_reason(run)} for arm, rate in arm_rates for seed, run in zip(seeds, runs[label(arm, rate)])]

    for stage in (independent, dependent):
        chosen = choose_learning_rates(pd.DataFrame(rows)) if rows else {}
        grid_arms = {}
        for arm in stage:
            spec = dict(arms[arm], probe=False)
            if spec.get("encoders_from"):
                sources = spec["encoders_from"]
                spec["encoders_from"] = [label(source, chosen[source]) for source in sources]
                grid_arms.update({label(s, chosen[s]): dict(arms[s], probe=False, lr=chosen[s]) for s in sources})
            grid_arms.update({label(arm, rate): dict(spec, lr=rate) for rate in rates})
        if not grid_arms:
            continue
        runs = run_arms(grid_arms, seeds, recipe, data_knobs, train, results, data_dir, name=f"{name}-{len(chosen)}",
                        keep_failed=True)
        rows += study_rows([(arm, rate) for arm in stage for rate in rates], runs)
        if extend_edges:  # a choice at an end of the grid: one factor-of-two step beyond it, then the rule again
            chosen = choose_learning_rates(pd.DataFrame(rows))
            beyond = {arm: (min(rates) / 2 if chosen[arm] == min(rates) else max(rates) * 2) for arm in stage
                      if chosen[arm] in (min(rates), max(rates))}
            if beyond:
                extra = {}
                for arm, rate in beyond.items():
                    spec = dict(grid_arms[label(arm, chosen[arm])], lr=rate)
                    extra[label(arm, rate)] = spec
                    extra.update({source: grid_arms[source] for source in spec.get("encoders_from") or ()})
                runs = run_arms(extra, seeds, recipe, data_knobs, train, results, data_dir,
                                name=f"{name}-{len(chosen)}-edges", keep_failed=True)
                rows += study_rows(beyond.items(), runs)
    return pd.DataFrame(rows)


def with_sources(arms: dict[str, dict], names) -> dict[str, dict]:
    """The arms of ``arms`` named in ``names``, with the arms they read encoders from (whose chosen rates
    theirs are trained on), in ``arms``' order."""
    wanted = set(names) | {source for name in names for source in arms[name].get("encoders_from") or ()}
    return {arm: spec for arm, spec in arms.items() if arm in wanted}


def failure_reason(run: dict) -> str:
    """Why a run failed, without where: the runner's message ends with the run's directory and the
    advice for a retry ("...; the checkpoint ... is kept in DIR; lower --lr ..."), which a stored study
    shipped to readers must not carry."""
    return run.get("failed", "").split("; ")[0]


def choose_learning_rates(study) -> dict[str, float]:
    """The book's one rule for step sizes: for each arm of ``study`` (``learning_rate_study``'s rows),
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
