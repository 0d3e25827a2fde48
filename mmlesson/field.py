"""The field under one protocol (Chapter 7): the remedies other papers propose, trained like the book's own
and judged beside them against three controls.

What the preregistration fixes (``[field]``, committed before any of these runs): both regimes of the matched
study at their one protocol rate and epochs, twenty paired seeds, the first ten re-executed with two threads;
every method at its released defaults, an option counted in epochs keeping its share of the release's budget
(the values are in ``FIELD_ARMS``, written before the runs); held-out estimates on the validation split only.
Each treatment is judged against joint training, the uniform multitask control and the frozen-encoder ensemble
on the weak (visual) modality's branch and probe (primary, SESOI 0.02) and on fused accuracy (secondary, SESOI
0.01), Holm within each regime x control x endpoint class, each verdict labelled stable or fragile from its
re-execution spread. The book's own arms are not retrained: their rows come from the matched study
(``matched.py``); this study's file holds the new arms (and the unimodal runs UMT and UME read).

``python -m mmlesson.field`` trains (or reads back) the runs and writes ``FIELD_FILE``; Chapter 7 reads it, and a
test retrains one of its cells.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .arms import GLANCE_ARMS
from .files import atomic_write
from .grid import budget_share
from .matched import ENDPOINTS, ENSEMBLE, MATCHED_FILE, REGIMES, matched_study, per_seed, rerun_spread
from .recipes import RECIPES
from .stats import compare, holm, probability_of_improvement, probability_of_improvement_over_tasks, with_stability
from .studies import preregistration

__all__ = ["FIELD_ARMS", "FIELD_FILE", "RELEASED_EPOCHS", "CONTROLS", "TREATMENTS", "JOINT", "MULTITASK", "FROZEN",
           "ENSEMBLE", "REGIMES", "budget_share", "field_arms", "field_catalogue", "field_study", "combined_study",
           "treatments_against", "field_comparisons", "field_verdicts", "verdict_table", "improvement_table",
           "improvement_over_regimes", "per_seed"]  # ENSEMBLE, REGIMES and per_seed: the matched study's, for Chapter 7

FIELD_FILE = Path(__file__).parent / "grids" / "synthav-field.csv"
PLAN = preregistration()["field"]
TREATMENTS, CONTROLS = tuple(PLAN["treatments"]), tuple(PLAN["controls"])
JOINT, MULTITASK, FROZEN = CONTROLS
TEACHERS = ["audio only", "visual only"]  # the unimodal runs UMT distils from and UME ensembles

# An option counted in epochs keeps its share of its release's budget ([field] options): (release's value, the
# release's epochs). The releases train 30-800 epochs, the regimes 16 (severe) and 12 (mild).
RELEASED_EPOCHS = {
    "G-Blending": {"super_epoch": (10, 30)},                      # one benchmark's online estimate, 30 epochs
    "Diagnosing & Re-learning": {"relearn_every": (20, 90)},      # re-learn every 20 of 90 epochs (3 times)
    "InfoReg": {"trace_average": (10, 50)},                       # a 10-epoch moving average, 50 epochs
    "OPM": {"warmup_epochs": (6, 100)},                           # no dropping in epochs 0-5 of 100
    "PMR": {"modulation_window": ((0, 70), 100)},                 # prototypes in epochs 0-70 of the scripts' 100
    "ReconBoost": {"boost_epochs": (4, 800), "rectify_epochs": (4, 800)},  # 4 + 4 per round, ~800 epochs
}


def field_arms(epochs: int) -> dict[str, dict]:
    """The new arms at the released defaults, their epoch-counted options scaled to a budget of ``epochs``."""
    arms = {
        MULTITASK: dict(method="multitask"),
        "G-Blending": dict(method="g_blending"),
        "MMPareto": dict(method="mmpareto"),
        "AGM": dict(method="agm"),
        "PMR": dict(method="pmr"),
        "MMCosine": dict(method="mmcosine"),
        "UMT": dict(method="umt", encoders_from=TEACHERS),
        "UME": dict(method="ume", encoders_from=TEACHERS),
        "Diagnosing & Re-learning": dict(method="diagnosing_relearning"),
        "InfoReg": dict(method="inforeg"),
        "ReconBoost": dict(method="reconboost"),
        "OPM": dict(method="opm"),
    }
    for arm, options in RELEASED_EPOCHS.items():
        arms[arm].update({name: budget_share(value, release, epochs) for name, (value, release) in options.items()})
    return arms


FIELD_ARMS = field_arms(RECIPES[REGIMES["severe v2"]].train["epochs"])  # the names; each regime scales its own


def field_catalogue(epochs: int) -> dict[str, dict]:
    """Every arm this study can train at a budget of ``epochs``: the new ones and the unimodal runs they read."""
    return {**{arm: GLANCE_ARMS[arm] for arm in TEACHERS}, **field_arms(epochs)}


def field_study(regimes=None, seeds=None, rerun_seeds=None, results=None, arms=None):
    """Train (or read back) the new arms (or ``arms`` of them) as the matched study trains its own
    (``matched.matched_study``: one rate per regime, a two-thread re-execution of the first seeds), each regime
    with its epoch-counted options scaled to its budget."""
    keywords = {key: value for key, value in (("seeds", seeds), ("rerun_seeds", rerun_seeds)) if value is not None}
    tables = []
    for regime, recipe in (regimes or REGIMES).items():
        catalogue = field_catalogue(RECIPES[recipe].train["epochs"])
        tables.append(matched_study({regime: recipe}, results=results, arms=arms or list(FIELD_ARMS),
                                    catalogue=catalogue, name="field", **keywords))
    return pd.concat(tables, ignore_index=True)


def combined_study(field=None, matched=None):
    """The field study's rows beside the matched study's (the book's arms, their controls and the unimodal
    ensemble), one row per regime, arm, seed and execution."""
    field = pd.read_csv(FIELD_FILE) if field is None else field
    matched = pd.read_csv(MATCHED_FILE) if matched is None else matched
    return pd.concat([matched, field[~field["arm"].isin(matched["arm"].unique())]], ignore_index=True)


def treatments_against(control: str) -> list[str]:
    """The treatments judged against ``control``: every method, and the uniform multitask control itself
    against joint training ([field] control_claim)."""
    return [*TREATMENTS, MULTITASK] if control == JOINT else list(TREATMENTS)


def field_comparisons(study, regime: str, control: str, primary: bool) -> dict:
    """One Holm family ([field] families): every treatment against ``control`` in ``regime`` on the primary
    endpoints (visual branch and probe together) or on the secondary one (fused accuracy), each with its
    probability of surviving a re-execution; ``{(treatment, endpoint): Comparison}``."""
    comparisons, spreads, keys = [], [], []
    for endpoint, (column, sesoi, is_primary) in ENDPOINTS.items():
        if is_primary != primary:
            continue
        values = per_seed(study, regime, column)
        for treatment in treatments_against(control):
            if treatment not in values or control not in values:
                continue
            comparisons.append(compare(values[treatment], values[control], sesoi,
                                       f"{treatment} minus {control}, {endpoint}, {regime}"))
            spreads.append(rerun_spread(study, regime, column, treatment, control))
            keys.append((treatment, endpoint))
    return dict(zip(keys, with_stability(holm(comparisons), spreads)))


def field_verdicts(study, regime: str) -> dict:
    """Every verdict of the regime: ``{(treatment, control, endpoint): Comparison}``."""
    verdicts = {}
    for control in CONTROLS:
        for primary in (True, False):
            for (treatment, endpoint), c in field_comparisons(study, regime, control, primary).items():
                verdicts[treatment, control, endpoint] = c
    return verdicts


def verdict_table(study, regime: str, control: str):
    """One row per treatment, one column per endpoint: the verdict against ``control`` in words, with its
    interval and stability."""
    table = {}
    for primary in (True, False):
        for (treatment, endpoint), c in field_comparisons(study, regime, control, primary).items():
            table.setdefault(treatment, {})[endpoint] = c.verdict_text()
    return pd.DataFrame.from_dict(table, orient="index")[list(ENDPOINTS)]


def improvement_table(study, regime: str):
    """Descriptive ([field] summaries): per arm, its mean fused accuracy, visual branch and probe over the
    evaluation seeds, and its probability of improvement over joint training in fused accuracy with a 95%
    bootstrap interval."""
    fused = per_seed(study, regime, "test acc")
    rows = {}
    for arm in fused.columns:
        row = {"fused": fused[arm].mean()}
        for endpoint in ("visual branch", "visual probe"):
            values = per_seed(study, regime, ENDPOINTS[endpoint][0])
            row[endpoint] = values[arm].mean() if arm in values else float("nan")
        if arm != JOINT:
            p, low, high = probability_of_improvement(fused[arm].dropna(), fused[JOINT].dropna())
            row.update({"P(better than joint)": p, "95% CI low": low, "95% CI high": high})
        rows[arm] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def improvement_over_regimes(study, arms):
    """Descriptive: each of ``arms``' probability of improvement over joint training in fused accuracy averaged
    over the regimes, with rliable's stratified bootstrap interval (each regime's runs resampled within it)."""
    fused = {regime: per_seed(study, regime, "test acc") for regime in REGIMES}
    rows = {}
    for arm in arms:
        tasks = [(fused[regime][arm].dropna(), fused[regime][JOINT].dropna()) for regime in REGIMES]
        p, low, high = probability_of_improvement_over_tasks(tasks)
        rows[arm] = {"P(better than joint), both regimes": p, "95% CI low": low, "95% CI high": high}
    return pd.DataFrame.from_dict(rows, orient="index")


def main(argv=None) -> int:
    """``python -m mmlesson.field [--regimes R ...] [--arms A ...] [--results DIR] [--out FILE]``: train (or read
    back) the field study and write it (default ``FIELD_FILE``; a subset of regimes or arms replaces only their
    rows)."""
    parser = argparse.ArgumentParser(prog="python -m mmlesson.field", description=main.__doc__.split(":")[0])
    parser.add_argument("--regimes", nargs="+", choices=sorted(REGIMES), default=sorted(REGIMES))
    parser.add_argument("--arms", nargs="+", choices=sorted(FIELD_ARMS), metavar="ARM", help="only these arms")
    parser.add_argument("--results", help="run store (default: $MMLESSON_RESULTS or ./results)")
    parser.add_argument("--out", default=str(FIELD_FILE), help="where the study goes (default: %(default)s)")
    args = parser.parse_args(argv)
    study = field_study({regime: REGIMES[regime] for regime in args.regimes}, results=args.results, arms=args.arms)
    if Path(args.out).exists():
        stored = pd.read_csv(args.out)
        stale = stored["regime"].isin(args.regimes) & stored["arm"].isin(study["arm"].unique())
        study = pd.concat([stored[~stale], study], ignore_index=True)
    text = study.to_csv(index=False, float_format="%.6g").encode()
    atomic_write(Path(args.out), lambda f: f.write(text))
    combined = combined_study(study)
    for regime in args.regimes:
        for control in CONTROLS:
            print(f"{regime}, against {control}:\n{verdict_table(combined, regime, control).to_string()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
