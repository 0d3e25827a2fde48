"""How precise is a regime? The numbers behind the book's appendix "How precise is this book?".

A verdict over seeds is only as good as what one seed measures. Per regime, from the three baselines on
the evaluation seeds (``signature.diagnose``, with every joint run retrained under another float order):

* **training chaos**: how far a run's fused test accuracy moves when the same seed is retrained with two
  CPU threads instead of one (the same data, initialisation and batches; only the rounding differs);
* **spread over seeds** of the joint model's fused test accuracy (data and initialisation drawn anew);
* **selection**: the correlation over seeds of the joint model's validation and test accuracy (does the
  epoch chosen on validation say anything about test?);
* **paired spread**: the standard deviation over seeds of a paired difference (an arm minus joint
  training), and the half-width of the 95% interval it buys at a given number of seeds.

``python -m mmlesson.precision`` trains (or reads back) the runs and stores every regime's signature,
per-seed values included, in ``PRECISION_FILE``; the appendix reads that file and the results at a glance.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

PRECISION_FILE = Path(__file__).parent / "grids" / "synthav-precision.json"
REGIMES = {"severe": "synthav-severe", "mild": "synthav-mild", "severe v2": "synthav-severe-v2"}
EVALUATION_SEEDS = tuple(range(10))
RERUN_THREADS = 2  # the other float order: two threads sum in another order than one


def precision_study(regimes=None, seeds=EVALUATION_SEEDS, results=None, workers=None) -> dict:
    """Each regime's signature (``signature.as_json``: per-seed values and ``precision``) on ``seeds``, every
    joint run also retrained with ``RERUN_THREADS`` threads; ``{regime: signature}``."""
    from .book import results_dir
    from .signature import as_json, diagnose

    study = {}
    for regime, recipe in (regimes or REGIMES).items():
        table = diagnose("synthav", seeds=seeds, recipe=recipe, results=results_dir(results), workers=workers,
                         rerun_threads=RERUN_THREADS)
        study[regime] = {"recipe": recipe, **as_json(table)}
    return study


def stored_study(path=PRECISION_FILE) -> dict:
    """The stored precision study (``python -m mmlesson.precision``)."""
    return json.loads(Path(path).read_text())


def paired_spreads(per_seed: dict[str, list[float]], control: str) -> dict[str, float]:
    """The standard deviation over seeds of each arm's paired difference with ``control`` (``{arm: values per
    seed}``, the seeds in the same order)."""
    import numpy as np

    base = np.asarray(per_seed[control], dtype=float)
    return {arm: float(np.std(np.asarray(values, dtype=float) - base, ddof=1))
            for arm, values in per_seed.items() if arm != control}


def baseline_values(signature: dict) -> dict[str, list[float]]:
    """Fused test accuracy per seed of the three baselines of a stored signature."""
    rows = signature["per_seed"]
    return {"audio only": [row["audio alone"] for row in rows], "visual only": [row["visual alone"] for row in rows],
            "joint (concat)": [row["joint fused"] for row in rows]}


def glance_values(glance, regime: str) -> dict[str, list[float]]:
    """Fused test accuracy per seed of every arm of the results at a glance in ``regime`` (seeds in order)."""
    part = glance[glance["regime"] == regime].sort_values("seed")
    return {arm: list(group["test acc"]) for arm, group in part.groupby("arm", sort=False)}


def precision_table(study: dict, glance=None, seeds: int = 10, target: float = 0.03):
    """One row per regime of ``study`` (``stored_study``): the re-execution change of a joint run's fused test
    accuracy, its spread over seeds, the validation-test correlation, and the paired spreads against joint
    training (of every arm of the results at a glance where ``glance`` has the regime, else of the two
    unimodal baselines) with the half-width they buy at ``seeds`` seeds and the seeds that buy ``target``."""
    import numpy as np
    import pandas as pd

    from .stats import half_width, seeds_for_half_width

    rows = []
    for regime, signature in study.items():
        precision = signature["precision"]
        values = glance_values(glance, regime) if glance is not None and regime in set(glance["regime"]) else None
        arms = "every arm" if values else "the unimodal baselines"
        spreads = list(paired_spreads(values or baseline_values(signature), "joint (concat)").values())
        spreads = [s for s in spreads if s > 0]  # a control at the same rate as joint is joint itself
        rows.append({
            "regime": regime,
            "re-execution change (mean |change|)": precision.get("rerun_mean_abs_change_fused", math.nan),
            "sd over seeds, joint fused": precision["joint_fused_sd"],
            "validation-test r": precision["val_test_correlation"],
            f"paired spread vs joint ({arms}), median": float(np.median(spreads)),
            "paired spread, range": f"{min(spreads):.3f}-{max(spreads):.3f}",
            f"half-width at {seeds} seeds, median": float(half_width(float(np.median(spreads)), seeds)),
            f"seeds for ±{target}, median": seeds_for_half_width(float(np.median(spreads)), target),
        })
    return pd.DataFrame(rows).set_index("regime")


def main(argv=None) -> int:
    """``python -m mmlesson.precision [--regimes NAME ...] [--results DIR]``: measure the precision of the book's
    SynthAV regimes (every baseline on the evaluation seeds, every joint run re-executed with two threads, one at
    a time) and write ``mmlesson/grids/synthav-precision.json``."""
    import argparse

    from .files import atomic_write

    parser = argparse.ArgumentParser(prog="python -m mmlesson.precision", description=main.__doc__.split(":")[0])
    parser.add_argument("--regimes", nargs="+", choices=sorted(REGIMES), default=sorted(REGIMES))
    parser.add_argument("--results", help="run store (default: $MMLESSON_RESULTS or ./results)")
    parser.add_argument("--out", default=str(PRECISION_FILE))
    args = parser.parse_args(argv)
    stored = stored_study(args.out) if Path(args.out).exists() else {}
    fresh = precision_study({name: REGIMES[name] for name in args.regimes}, results=args.results)
    study = {**stored, **fresh}
    text = (json.dumps(study, indent=1) + "\n").encode()
    atomic_write(Path(args.out), lambda f: f.write(text))
    print(precision_table(study).round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
