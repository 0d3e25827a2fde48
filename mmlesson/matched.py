"""The matched protocol's study: every remedy against joint training at one rate, one resolution and one
epoch budget, on twenty paired seeds, each arm re-executed under another float order.

What it fixes (preregistration, ``[severe_v2.protocol]``): every arm of a regime trains at the one rate
its control chose on the tuning seeds (``rates.protocol_learning_rates``), for the recipe's epochs; CCAT,
whose encoders keep a finer last map (output stride 8), is also compared with joint training and the
frozen-encoder ensemble at stride 8. Each remedy is judged on three endpoints: the weak (visual)
modality's branch and linear probe, what the remedies claim to fix (primary, SESOI 0.02), and fused
accuracy (secondary, SESOI 0.01), read beside the untrained average of the two unimodal models.

Every arm of the first ten seeds is retrained with two CPU threads (another summation order; its own
store): the change it makes to each paired difference is the re-execution spread from which each
verdict's probability of surviving a re-execution is predicted (``stats.with_stability``).

``python -m mmlesson.matched`` trains (or reads back) the runs and writes ``MATCHED_FILE``; Chapter 6
reads it, and a test retrains one of its cells.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from .arms import GLANCE_ARMS
from .files import atomic_write
from .rates import protocol_rate
from .runs import results_dir, run_arms
from .signature import unimodal_ensemble
from .stats import compare, holm, with_stability
from .studies import glance_rows

MATCHED_FILE = Path(__file__).parent / "grids" / "synthav-matched.csv"
REGIMES = {"severe v2": "synthav-severe-v2", "mild v2": "synthav-mild-v2"}
EVALUATION_SEEDS = tuple(range(20))
RERUN_SEEDS = tuple(range(10))
RERUN_THREADS = 2
ONE_THREAD, RERUN = "1 thread", f"{RERUN_THREADS} threads"
CONTROL = "joint (concat)"
ENSEMBLE = "unimodal ensemble"  # the untrained average of the two unimodal models' probabilities
STRIDE = 8  # CCAT's output stride (recipes); its resolution-matched controls train at it too
REMEDIES = ("OGM-GE", "ARL", "frozen encoders", "MLA", "CCAT")
# (claim's treatment, control): each remedy against joint training, CCAT also against the stride-8 controls
CLAIMS = [(remedy, CONTROL) for remedy in REMEDIES] + [("CCAT", f"{CONTROL}, stride {STRIDE}"),
                                                        ("CCAT", f"frozen encoders, stride {STRIDE}")]
# endpoint: (column of the study, SESOI, primary?)
ENDPOINTS = {"visual branch": ("branch visual", 0.02, True), "visual probe": ("probe visual", 0.02, True),
             "fused": ("test acc", 0.01, False)}


def matched_arms() -> dict[str, dict]:
    """The arms: the book's methods at the standard stride, with stride-8 unimodal models, joint training
    and the frozen-encoder ensemble beside CCAT."""
    stride = {f"audio only, stride {STRIDE}": dict(GLANCE_ARMS["audio only"], output_stride=STRIDE),
              f"visual only, stride {STRIDE}": dict(GLANCE_ARMS["visual only"], output_stride=STRIDE),
              f"{CONTROL}, stride {STRIDE}": dict(GLANCE_ARMS[CONTROL], output_stride=STRIDE),
              f"frozen encoders, stride {STRIDE}": dict(method="frozen_encoders", output_stride=STRIDE,
                                                        encoders_from=[f"audio only, stride {STRIDE}",
                                                                       f"visual only, stride {STRIDE}"])}
    return {**GLANCE_ARMS, **stride}


def matched_study(regimes=None, seeds=EVALUATION_SEEDS, rerun_seeds=RERUN_SEEDS, results=None, arms=None,
                  catalogue=None, name: str = "matched"):
    """Train (or read back) every arm of ``catalogue`` (default ``matched_arms()``; or ``arms`` of them) of each
    regime on ``seeds`` at the regime's one protocol rate, then on ``rerun_seeds`` again with ``RERUN_THREADS``
    threads, one run at a time, in the store ``float-order-2-threads`` beside ``results``; ``studies.glance_rows``
    of every run with its ``execution``, and the unimodal ensemble of each seed (arm ``ENSEMBLE``, test accuracy
    only). ``name`` prefixes the grids' names in the store (the field study, ``field.py``, is run the same way)."""
    store = results_dir(results)
    catalogue = catalogue or matched_arms()
    chosen = {arm: spec for arm, spec in catalogue.items() if arms is None or arm in arms}
    for spec in list(chosen.values()):  # an arm needs the arms whose encoders it reads
        chosen.update({source: catalogue[source] for source in spec.get("encoders_from", ())})
    rows = []
    for regime, recipe in (regimes or REGIMES).items():
        rate = protocol_rate(recipe)
        rated = {arm: dict(spec, lr=rate) for arm, spec in chosen.items()}
        for execution, run_seeds, threads, where in ((ONE_THREAD, seeds, None, store),
                                                     (RERUN, rerun_seeds, RERUN_THREADS,
                                                      store / f"float-order-{RERUN_THREADS}-threads")):
            if not run_seeds:
                continue
            runs = run_arms(rated, run_seeds, recipe, results=where, name=f"{name}-{regime}-{execution}",
                            train={"threads": threads or 1}, workers=1 if threads else None)
            found = glance_rows(regime, runs, run_seeds)
            found += ensemble_rows(regime, runs, run_seeds)
            rows += [{**row, "execution": execution} for row in found]
    return pd.DataFrame(rows)


def ensemble_rows(regime: str, runs: dict[str, list[dict]], seeds) -> list[dict]:
    """Per seed, the untrained ensemble of the standard-stride unimodal models (where both were trained)."""
    if "audio only" not in runs or "visual only" not in runs:
        return []
    return [{"regime": regime, "arm": ENSEMBLE, "seed": seed,
             "test acc": unimodal_ensemble(audio["run_dir"], visual["run_dir"])}
            for seed, audio, visual in zip(seeds, runs["audio only"], runs["visual only"])]


def stored_study(path=MATCHED_FILE):
    """The stored study (``python -m mmlesson.matched``)."""
    return pd.read_csv(path)


def per_seed(study, regime: str, column: str, execution: str = ONE_THREAD):
    """``seed x arm`` table of ``column`` in one regime and execution."""
    rows = study[(study["regime"] == regime) & (study["execution"] == execution)]
    return rows.pivot(index="seed", columns="arm", values=column)


def rerun_changes(study, regime: str, column: str):
    """``seed x arm``: the stored (one-thread) ``column`` minus its re-executed value, on the re-executed seeds."""
    once, again = per_seed(study, regime, column), per_seed(study, regime, column, RERUN)
    return once.loc[again.index, again.columns] - again


def rerun_spread(study, regime: str, column: str, treatment: str, control: str) -> float | None:
    """Root mean square over the re-executed seeds of the change a re-execution made to the paired
    difference ``treatment - control`` in ``column`` (None where nothing was re-executed)."""
    changes = rerun_changes(study, regime, column)
    if treatment not in changes or control not in changes:
        return None
    change = (changes[treatment] - changes[control]).dropna()
    return float(math.sqrt((change ** 2).mean())) if len(change) else None


def label(treatment: str, control: str) -> str:
    """A claim's short name: ``CCAT vs joint (concat), stride 8``."""
    return f"{treatment} vs {control}"


def matched_comparisons(study, regime: str, endpoint: str) -> dict:
    """The preregistered claims (``CLAIMS``) on one endpoint in one regime, by ``label``: paired over the
    evaluation seeds, each with its probability of surviving a re-execution. Holm corrects over one family: the
    two primary endpoints' claims together (visual branch and probe), or the secondary endpoint's alone."""
    primary = ENDPOINTS[endpoint][2]
    family = [name for name, (_, _, is_primary) in ENDPOINTS.items() if is_primary == primary]
    comparisons, spreads, names = [], [], []
    for member in family:
        column, sesoi, _ = ENDPOINTS[member]
        values = per_seed(study, regime, column)
        for treatment, control in CLAIMS:
            comparisons.append(compare(values[treatment], values[control], sesoi,
                                       f"{treatment} minus {control}, {member}, {regime}"))
            spreads.append(rerun_spread(study, regime, column, treatment, control))
            names.append((member, label(treatment, control)))
    judged = with_stability(holm(comparisons), spreads)
    return {claim: c for (member, claim), c in zip(names, judged) if member == endpoint}


def paired_differences(study, regime: str, endpoint: str) -> dict:
    """Per claim (by ``label``), its paired differences over the evaluation seeds on ``endpoint``."""
    values = per_seed(study, regime, ENDPOINTS[endpoint][0])
    return {label(treatment, control): (values[treatment] - values[control]).dropna()
            for treatment, control in CLAIMS}


def verdict_table(study, regime: str):
    """One row per claim, one column per endpoint: the verdict in words with its interval and stability."""
    table = {}
    for endpoint, (_, sesoi, primary) in ENDPOINTS.items():
        title = f"{endpoint} ({'primary' if primary else 'secondary'}, SESOI {sesoi:g})"
        for claim, c in matched_comparisons(study, regime, endpoint).items():
            table.setdefault(claim, {})[title] = c.verdict_text()
    return pd.DataFrame.from_dict(table, orient="index")


def regime_verdicts(study, claims):
    """The verdicts of ``claims`` (by ``label``, e.g. ``OGM-GE vs joint (concat)``) in every regime of the study:
    one row per regime and claim, one column per endpoint (``verdict_table``'s), for a chapter's own remedies."""
    return pd.concat({regime: verdict_table(study, regime).loc[list(claims)] for regime in REGIMES},
                     names=["regime", "claim"])


def arm_rerun_changes(study, regime: str):
    """Per arm, the mean absolute change a re-execution made to its fused accuracy and to its visual branch
    over the re-executed seeds (``arm x endpoint``)."""
    table = {}
    for endpoint in ("fused", "visual branch"):
        column = ENDPOINTS[endpoint][0]
        table[f"{endpoint}: mean |change|"] = rerun_changes(study, regime, column).abs().mean().dropna()
    return pd.DataFrame(table)


def precision_rows(study, regime: str):
    """Per claim and endpoint: the paired differences' sd over the evaluation seeds, the half-width of the 95%
    interval they give, the re-execution spread of a paired difference and the verdict's survival."""
    rows = []
    for endpoint in ENDPOINTS:
        for claim, c in matched_comparisons(study, regime, endpoint).items():
            treatment, control = claim.split(" vs ", 1)
            rows.append({"claim": claim, "endpoint": endpoint, "seeds": c.n, "paired sd": c.sd,
                         "half-width": (c.ci_high - c.ci_low) / 2,
                         "re-execution spread": rerun_spread(study, regime, ENDPOINTS[endpoint][0], treatment, control),
                         "verdict": c.verdict, "survival": c.survival})
    return pd.DataFrame(rows)


def rerun_tolerance(study, regime: str, arm: str, column: str) -> float:
    """How far a retrained run of ``arm`` may land from its stored ``column`` and still be the same result: three
    times the root mean square change the two-thread re-execution made to it over the re-executed seeds (its
    standard deviation around no change, so a systematic shift counts too), rounded up to 0.005 (the
    preregistered rule, ``[severe_v2.protocol] nbval_tolerance``)."""
    changes = rerun_changes(study, regime, column)
    if arm not in changes:
        raise KeyError(f"{arm} was not re-executed in {regime}: no tolerance can be derived for it")
    change = changes[arm].dropna()
    spread = math.sqrt(float((change ** 2).mean()))
    return max(0.005, math.ceil(3 * spread / 0.005 - 1e-9) * 0.005)


def main(argv=None) -> int:
    """``python -m mmlesson.matched [--regimes R ...] [--results DIR] [--out FILE]``: train (or read back) the
    matched study and write it (default ``MATCHED_FILE``; a subset of regimes replaces only their rows)."""
    parser = argparse.ArgumentParser(prog="python -m mmlesson.matched", description=main.__doc__.split(":")[0])
    parser.add_argument("--regimes", nargs="+", choices=sorted(REGIMES), default=sorted(REGIMES))
    parser.add_argument("--results", help="run store (default: $MMLESSON_RESULTS or ./results)")
    parser.add_argument("--out", default=str(MATCHED_FILE), help="where the study goes (default: %(default)s)")
    args = parser.parse_args(argv)
    study = matched_study({regime: REGIMES[regime] for regime in args.regimes}, results=args.results)
    if Path(args.out).exists():
        stored = pd.read_csv(args.out)
        study = pd.concat([stored[~stored["regime"].isin(args.regimes)], study], ignore_index=True)
    text = study.to_csv(index=False, float_format="%.6g").encode()
    atomic_write(Path(args.out), lambda f: f.write(text))
    for regime in args.regimes:
        print(f"{regime}:\n{verdict_table(study, regime).to_string()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
