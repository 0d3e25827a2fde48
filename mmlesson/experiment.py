"""Small helpers the chapters share: train one configuration over several seeds, summarise.

``run_seeds`` returns the metrics dicts (the same content as each run's metrics.json). With a
``results_dir`` every run gets its own directory there, so an interrupted chapter resumes and a
finished run is read back instead of retrained.
"""
from __future__ import annotations

import math
from pathlib import Path

from .config import TrainConfig
from .engine import fit


def run_seeds(name: str, seeds, dataset=None, results_dir=None, **config) -> list[dict]:
    """Train ``TrainConfig(seed=s, **config)`` for each seed; ``name`` labels the run directories."""
    runs = []
    for seed in seeds:
        out = str(Path(results_dir) / f"{name}-seed{seed}") if results_dir else None
        runs.append(fit(TrainConfig(seed=seed, out=out, **config), dataset=dataset).metrics)
    return runs


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def final(runs: list[dict], *keys) -> list[float]:
    """``final(runs, "branch_acc", "visual")``: that final metric of every run."""
    values = []
    for run in runs:
        value = run["final"]
        for key in keys:
            value = value[key]
        values.append(value)
    return values


def per_epoch(run: dict, *keys) -> list[float]:
    """``per_epoch(run, "train", "grad_norm", "visual")``: that history entry for every epoch."""
    values = []
    for record in run["history"]:
        value = record
        for key in keys:
            value = value[key]
        values.append(value)
    return values


def fmt(values, digits: int = 3) -> str:
    """``0.912 ± 0.011``: mean ± standard deviation over seeds."""
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def paired_difference(treatment, control) -> tuple[float, float]:
    """Mean and standard error of the per-seed differences ``treatment - control`` (same seeds)."""
    differences = [float(t) - float(c) for t, c in zip(treatment, control, strict=True)]
    mean, std = mean_std(differences)
    return mean, std / math.sqrt(len(differences))


def improvement_verdict(treatment, control, names: tuple[str, str] = ("treatment", "control")) -> tuple[str, str]:
    """Does ``treatment`` beat ``control`` across seeds? ``holds`` when the mean paired difference
    exceeds two standard errors, ``does NOT hold`` when it is below minus two, else ``inconclusive``
    (always with a single seed). Returns (verdict, evidence text)."""
    mean, error = paired_difference(treatment, control)
    evidence = f"{names[0]} - {names[1]}: {mean:+.3f} ± {2 * error:.3f} (2 SE, {len(list(treatment))} seeds)"
    if len(list(treatment)) < 2:
        return "inconclusive", evidence
    if mean > 2 * error:
        return "holds", evidence
    if mean < -2 * error:
        return "does NOT hold", evidence
    return "inconclusive", evidence
