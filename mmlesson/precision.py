"""How precise is a regime? The numbers behind the book's appendix "How precise is this book?".

A verdict over seeds is only as good as what one seed measures. Per regime, from the three baselines on
the evaluation seeds (``signature.diagnose``, with every joint run retrained under another float order):

* **training chaos**: how far a run's fused test accuracy moves when the same seed is retrained with two
  CPU threads instead of one (the same data, initialisation and batches; only the rounding differs);
* **spread over seeds** of the joint model's fused test accuracy (data and initialisation drawn anew);
* **selection**: the correlation over seeds of the joint model's validation and test accuracy (does the
  epoch chosen on validation say anything about test?);
* **paired spread**: the standard deviation over seeds of a paired difference (an arm minus joint
  training), and the half-width of the 95% interval it buys at a given number of seeds;
* **speaker blocks**: the joint model's test accuracy per test speaker. Clips of one speaker share its
  voice and its way of sounding the classes, so they are right or wrong together: the test split's
  *effective* number of independent clips is ``p (1 - p)`` over the variance of its accuracy as the
  mean of per-speaker accuracies (``speaker_blocks``).

``python -m mmlesson.precision`` trains (or reads back) the runs and stores every regime's signature,
per-seed values included, in ``PRECISION_FILE``; the appendix reads that file and the results at a glance.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .data import trained_on
from .engine import load_run
from .files import atomic_write
from .rates import protocol_rate
from .rundir import load_metrics
from .runs import results_dir
from .signature import as_json, diagnose
from .stats import half_width, seeds_for_half_width, with_stability
from .studies import RATE_MATCHED, glance_comparisons

PRECISION_FILE = Path(__file__).parent / "grids" / "synthav-precision.json"
REGIMES = {"severe": "synthav-severe", "mild": "synthav-mild", "severe v2": "synthav-severe-v2",
           "severe v2, protocol rate": "synthav-severe-v2"}
# The regimes measured at their recipe's one protocol rate (``rates.protocol_rate``), not at its own training
# fields: the second calibration at the rate its preregistered rule chose (the recipe's own is the calibration's 0.1).
AT_PROTOCOL_RATE = {"severe v2, protocol rate"}
EVALUATION_SEEDS = tuple(range(10))
RERUN_THREADS = 2  # the other float order: two threads sum in another order than one


def precision_study(regimes=None, seeds=EVALUATION_SEEDS, results=None, workers=None) -> dict:
    """Each regime's signature (``signature.as_json``: per-seed values and ``precision``) on ``seeds``, every
    joint run also retrained with ``RERUN_THREADS`` threads; ``{regime: signature}``."""
    study = {}
    for regime, recipe in (regimes or REGIMES).items():
        train = {"lr": protocol_rate(recipe)} if regime in AT_PROTOCOL_RATE else {}
        table = diagnose("synthav", seeds=seeds, recipe=recipe, results=results_dir(results), workers=workers,
                         train=train, rerun_threads=RERUN_THREADS)
        study[regime] = {"recipe": recipe, "train": train, **as_json(table),
                         "speaker_blocks": speaker_blocks(table.attrs["run_dirs"]["joint (concat)"])}
    return study


def speaker_blocks(run_dirs) -> list[dict]:
    """Per finished joint run of ``run_dirs``, its test accuracy per test speaker (a regime without speakers
    counts each clip as its own): ``block_summary`` of each run, with its seed."""
    blocks = []
    for run_dir in run_dirs:
        config = load_metrics(run_dir)["config"]
        data = trained_on(config)
        model = load_run(run_dir, dataset=data).model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            right = torch.cat([(model(batch).logits.argmax(1) == batch["label"]).double().cpu()
                               for batch in data.test.batches(512, device=device)])
        speaker = data.test.extras.get("speaker", torch.arange(len(right)))  # no speakers: every clip on its own
        blocks.append({"seed": int(config["seed"]), **block_summary(right.numpy(), speaker.numpy())})
    return blocks


def block_summary(right, groups) -> dict:
    """What a test split's clustered errors are worth: ``right`` (1 per correct clip) in ``groups`` (a speaker per
    clip). The accuracy's sampling variance over a redraw of the speakers is that of the mean of per-speaker
    accuracies (weighted by their clips: ``var = S / (S - 1) sum_s w_s^2 (a_s - a)^2``, the ratio estimator's), and
    ``effective_clips = a (1 - a) / var``: as many independent clips would measure it as precisely."""
    right, groups = np.asarray(right, dtype=float), np.asarray(groups)
    labels, counts = np.unique(groups, return_counts=True)
    accuracy = float(right.mean())
    per_group = np.array([right[groups == g].mean() for g in labels])
    weights = counts / counts.sum()
    variance = len(labels) / (len(labels) - 1) * float(np.sum(weights ** 2 * (per_group - accuracy) ** 2))
    effective = accuracy * (1 - accuracy) / variance if variance > 0 else float(len(right))
    return {"speakers": int(len(labels)), "clips": int(len(right)), "accuracy": accuracy,
            "per_speaker_sd": float(per_group.std(ddof=1)), "per_speaker": per_group.round(4).tolist()
            if len(labels) <= 12 else None, "effective_clips": float(min(effective, len(right)))}


def stored_study(path=PRECISION_FILE) -> dict:
    """The stored precision study (``python -m mmlesson.precision``)."""
    return json.loads(Path(path).read_text())


# A stored study's regime whose re-execution spread a regime without its own measurement borrows: regime B and
# the regime map are regime A's generator with other knobs (no speakers, 12 epochs), like the mild regime.
SPREAD_OF = {"severe": "severe", "severe v2": "severe v2", "severe v2, protocol rate": "severe v2, protocol rate",
             "mild": "mild", "regime B": "mild", "regime map": "mild"}
METRIC_SPREAD = {"test acc": "fused", "val acc": "fused", "branch audio": "branch_audio",
                 "branch visual": "branch_visual"}


def run_rerun_sd(recipe: str, study: dict | None = None, lr: float | None = None) -> float | None:
    """How far a re-execution moves one run's accuracy under ``recipe``: the largest of the measured sds of the
    change of a joint run's fused, audio-branch and visual-branch accuracy, in the regime measured at learning
    rate ``lr`` (None: the recipe's own training fields; a chapter's arms at other rates are assumed to move as
    much); None where no regime of the study ran ``recipe`` so."""
    study = stored_study() if study is None else study
    for measured in study.values():
        if measured["recipe"] == recipe and measured.get("train", {}).get("lr") == lr:
            return max(measured["precision"][f"rerun_sd_change_{metric}"]
                       for metric in ("fused", "branch_audio", "branch_visual"))
    return None


def rerun_tolerance(regime: str, metric: str, study: dict | None = None, floor: float = 0.03) -> float:
    """How far a retrained run's ``metric`` may land from its stored value and still be the same result: three
    standard deviations of the change a two-thread re-execution makes to it in ``regime`` (the preregistered
    rule, [severe_v2.protocol] nbval_tolerance), rounded up to 0.005, never below ``floor``. Another CPU's
    float order is such a re-execution."""
    study = stored_study() if study is None else study
    spread = study[SPREAD_OF[regime]]["precision"][f"rerun_sd_change_{METRIC_SPREAD[metric]}"]
    return max(floor, math.ceil(3 * spread / 0.005 - 1e-9) * 0.005)


def paired_spreads(per_seed: dict[str, list[float]], control: str) -> dict[str, float]:
    """The standard deviation over seeds of each arm's paired difference with ``control`` (``{arm: values per
    seed}``, the seeds in the same order)."""
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
    rows = []
    for regime, signature in study.items():
        precision = signature["precision"]
        values = glance_values(glance, regime) if glance is not None and regime in set(glance["regime"]) else None
        arms = "every arm" if values else "unimodal baselines"
        spreads = list(paired_spreads(values or baseline_values(signature), "joint (concat)").values())
        spreads = [s for s in spreads if s > 0]  # a control at the same rate as joint is joint itself
        rows.append({
            "regime": regime,
            "re-execution change (mean |change|)": precision.get("rerun_mean_abs_change_fused", math.nan),
            "sd over seeds, joint fused": precision["joint_fused_sd"],
            "validation-test r": precision["val_test_correlation"],
            "paired spread vs joint, median": float(np.median(spreads)),
            "paired spread, range": f"{min(spreads):.3f}-{max(spreads):.3f}",
            "paired spreads of": arms,
            f"half-width at {seeds} seeds, median": float(half_width(float(np.median(spreads)), seeds)),
            f"seeds for ±{target}, median": seeds_for_half_width(float(np.median(spreads)), target),
        })
    return pd.DataFrame(rows).set_index("regime")


def glance_stability(glance, regime: str, rerun_sd: float, sesoi: float = 0.01) -> list:
    """The results at a glance's comparisons with joint training in ``regime`` (``studies.glance_comparisons``), each
    with its probability of surviving a re-execution (``stats.with_stability``), every run's re-execution spread
    taken as ``rerun_sd`` (the sd of the change of a joint run's fused accuracy): a paired difference then moves
    by ``sqrt(2) rerun_sd``."""
    comparisons = glance_comparisons(glance, regime, sesoi)
    # the Holm family; the rate-matched control is judged apart
    family = [c for c in comparisons if RATE_MATCHED not in c.claim]
    return with_stability(family, [math.sqrt(2) * rerun_sd] * len(family))


CALIBRATION_FILE = PRECISION_FILE.with_name("synthav-severe-v2-calibration.csv")


def calibration_candidates(path=CALIBRATION_FILE, chance: float = 1 / 6):
    """What the second severe calibration tried (its stored candidates' baseline runs on the tuning seeds): per
    candidate, its knobs on top of the first calibration's, the visual modality's starvation (alone minus its joint
    branch) and its joint branch above chance, the joint model's fused spread over seeds, the unimodal ensemble
    minus the better unimodal model (on average), and where joint runs were re-executed with two threads, the mean
    absolute change of their fused accuracy. One row per candidate, in the order they were tried."""
    runs = pd.read_csv(path)
    rows = []
    for (candidate, name), group in runs.groupby(["candidate", "name"], sort=True):
        once = group[group["threads"] == 1]
        by_arm = {arm: part.set_index("seed") for arm, part in once.groupby("arm")}
        joint, audio, visual = by_arm["joint"], by_arm["audio"], by_arm["visual"]
        best = audio if audio["test_acc"].mean() >= visual["test_acc"].mean() else visual
        again = group[(group["threads"] == 2) & (group["arm"] == "joint")].set_index("seed")
        change = (again["test_acc"] - joint.loc[again.index, "test_acc"]).abs().mean() if len(again) else None
        rows.append({"candidate": name, "knobs": " ".join(f"{k}={v}" for k, v in {
                         **json.loads(group["knobs"].iloc[0]), **json.loads(group["train"].iloc[0])}.items()),
                     "tuning seeds": len(joint), "visual starvation": (visual["test_acc"] - joint["branch_visual"]).mean(),
                     "visual branch minus chance": joint["branch_visual"].mean() - chance,
                     "joint fused sd": joint["test_acc"].std(ddof=1),
                     "ensemble minus best unimodal": (joint["ensemble_acc"] - best["test_acc"]).mean(),
                     "two-thread change": change})
    return pd.DataFrame(rows).set_index("candidate")


def main(argv=None) -> int:
    """``python -m mmlesson.precision [--regimes NAME ...] [--results DIR]``: measure the precision of the book's
    SynthAV regimes (every baseline on the evaluation seeds, every joint run re-executed with two threads, one at
    a time) and write ``mmlesson/grids/synthav-precision.json``."""
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
