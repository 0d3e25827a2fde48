"""The book's stored studies, run from the command line: ``python -m mmlesson.book
learning-rates|at-a-glance|side-studies`` trains (or reads back) a study through the runner and writes it
to its file in ``mmlesson/grids``, the file the chapters read.

The studies themselves live by concept: the arms in ``arms.py``, the learning-rate rule and the protocol
rates in ``rates.py``, the learning-rate study, the results at a glance and the side studies in
``studies.py``; training arms and reading runs back in ``runs.py``, and what a chapter shows on its page in
``page.py``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .arms import GLANCE_ARMS, STUDY_ARMS
from .files import atomic_write
from .rates import ONE_RATE_RECIPES, STUDY_RATES, STUDY_SEEDS, choose_learning_rates, learning_rate_table, study_file
from .studies import (GLANCE_FILE, GLANCE_REGIMES, SIDE_FILE, at_a_glance_study, glance_table, learning_rate_study,
                      replace_rows, side_studies, with_sources)


def main(argv=None) -> int:
    """``python -m mmlesson.book learning-rates|at-a-glance|side-studies [--recipe R] [--arms A ...] [--results
    DIR]``: run a stored study of the book (the learning-rate study of a SynthAV recipe: every arm of
    ``STUDY_ARMS`` x its rates x ``STUDY_SEEDS``; the results at a glance; the side studies) through the
    runner and write it to its file in ``mmlesson/grids``. ``--arms`` re-runs only those arms (and the arms
    whose encoders they read) and replaces their rows in the stored file (after a change to one method)."""
    parser = argparse.ArgumentParser(prog="python -m mmlesson.book", description=main.__doc__.split(":")[0])
    parser.add_argument("study", choices=["learning-rates", "at-a-glance", "side-studies"])
    parser.add_argument("--results", help="run store (default: $MMLESSON_RESULTS or ./results)")
    parser.add_argument("--recipe", default="synthav", choices=sorted(STUDY_RATES),
                        help="the SynthAV regime (default: %(default)s)")
    parser.add_argument("--out", default=None, help="where the study's rows go (default: the shipped study file "
                                                    "of the recipe, mmlesson/grids/RECIPE-learning-rates.csv)")
    parser.add_argument("--arms", nargs="+", metavar="ARM", choices=sorted(STUDY_ARMS),
                        help="re-run only these arms (with the arms whose encoders they read) and replace "
                             "their rows in the stored study")
    args = parser.parse_args(argv)
    if args.study == "side-studies":
        text = side_studies(results=args.results).to_csv(index=False, float_format="%.6g").encode()
        atomic_write(Path(args.out or SIDE_FILE), lambda f: f.write(text))
        print(f"wrote {args.out or SIDE_FILE}")
        return 0
    if args.study == "at-a-glance":
        arms = {arm: GLANCE_ARMS[arm] for arm in args.arms} if args.arms else None
        study = at_a_glance_study(results=args.results, arms=arms)
        if arms:
            study = replace_rows(pd.read_csv(args.out or GLANCE_FILE), study, GLANCE_REGIMES)
        text = study.to_csv(index=False, float_format="%.6g").encode()
        atomic_write(Path(args.out or GLANCE_FILE), lambda f: f.write(text))
        print(glance_table(study).to_string())
        return 0
    wide = args.recipe != "synthav"  # regime A's study keeps the three rates it was run with
    arms = with_sources(STUDY_ARMS, args.arms) if args.arms else STUDY_ARMS  # an arm's encoders' arms come along
    seeds = STUDY_SEEDS
    if args.recipe in ONE_RATE_RECIPES:  # one rate for every arm, chosen on the control alone
        control, seeds = ONE_RATE_RECIPES[args.recipe]
        if args.arms:
            parser.error(f"{args.recipe} has one rate for every arm, chosen on {control} alone: drop --arms")
        arms = {control: STUDY_ARMS[control]}
    study = learning_rate_study(arms, args.recipe, results=args.results, rates=STUDY_RATES[args.recipe],
                                extend_edges=wide, name=f"tuning-{args.recipe}", seeds=seeds)
    args.out = args.out or str(study_file(args.recipe))
    if args.arms and Path(args.out).exists():
        study = replace_rows(pd.read_csv(args.out), study)
    text = study.to_csv(index=False, float_format="%.6g").encode()
    atomic_write(Path(args.out), lambda f: f.write(text))
    print(learning_rate_table(study).to_string())
    print("chosen:", choose_learning_rates(study))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
