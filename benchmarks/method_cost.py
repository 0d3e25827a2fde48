"""Each method's cost per epoch relative to joint training, on the severe regime (Chapter 7's cost axis).

    python benchmarks/method_cost.py [--recipe synthav-severe-v2] [--seeds 0 1] [--out mmlesson/grids/method-cost.csv]

Trains every arm of the field study and the book's own (``field.field_catalogue()`` and ``arms.GLANCE_ARMS``)
at the recipe's protocol rate, one run at a time on one CPU thread, into a fresh temporary store (nothing is read
back), and reports the mean seconds of an epoch (steps, the method's epoch hook and validation, as the run's
history records them) and its ratio to joint training's. The unimodal runs that UMT, UME and the frozen-encoder
ensemble read are trained first and not charged to them (the chapter states that they are). Run it on an
otherwise idle machine: a timing taken beside another job measures the other job.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import pandas as pd

from mmlesson.arms import GLANCE_ARMS
from mmlesson.field import field_catalogue
from mmlesson.recipes import RECIPES
from mmlesson.files import atomic_write
from mmlesson.rates import protocol_rate
from mmlesson.runs import run_arms

COST_FILE = Path(__file__).resolve().parents[1] / "mmlesson" / "grids" / "method-cost.csv"


def epoch_seconds(run: dict) -> float:
    return statistics.mean(row["seconds"] for row in run["history"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="synthav-severe-v2")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", default=str(COST_FILE))
    args = parser.parse_args(argv)
    arms = {**GLANCE_ARMS, **field_catalogue(RECIPES[args.recipe].train["epochs"])}
    rate = protocol_rate(args.recipe)
    rows = []
    with tempfile.TemporaryDirectory(prefix="method-cost-") as store:
        for arm, spec in arms.items():
            runs = run_arms({arm: dict(spec, lr=rate)} | {source: dict(arms[source], lr=rate)
                                                           for source in spec.get("encoders_from", ())},
                            args.seeds, args.recipe, results=store, name=f"cost-{arm}", workers=1)
            seconds = statistics.mean(epoch_seconds(run) for run in runs[arm])
            rows.append({"arm": arm, "method": spec["method"], "seconds per epoch": seconds})
            print(f"{arm:28s} {seconds:7.3f} s per epoch", flush=True)
    table = pd.DataFrame(rows)
    joint = table.loc[table["arm"] == "joint (concat)", "seconds per epoch"].item()
    table["relative to joint"] = table["seconds per epoch"] / joint
    text = table.to_csv(index=False, float_format="%.4g").encode()
    atomic_write(Path(args.out), lambda f: f.write(text))
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
