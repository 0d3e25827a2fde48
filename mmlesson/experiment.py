"""Small helpers the chapters share: train one configuration over several seeds, summarise.

``run_seeds`` returns the metrics dicts (the same content as each run's metrics.json). With a
``results_dir`` every run gets its own directory there, so an interrupted chapter resumes and a
finished run is read back instead of retrained.
"""
from __future__ import annotations

import math
from pathlib import Path

from .config import TrainConfig
from .engine import RunResult, fit


def fit_seeds(name: str, seeds, dataset=None, results_dir=None, **config) -> list[RunResult]:
    """Train ``TrainConfig(seed=s, **config)`` for each seed; ``name`` labels the run directories.
    Returns each run's ``RunResult`` (the selected model, its metrics and its directory)."""
    results = []
    for seed in seeds:
        out = str(Path(results_dir) / f"{name}-seed{seed}") if results_dir else None
        results.append(fit(TrainConfig(seed=seed, out=out, **config), dataset=dataset))
    return results


def run_seeds(name: str, seeds, dataset=None, results_dir=None, **config) -> list[dict]:
    """``fit_seeds``, keeping only each run's metrics dict."""
    return [result.metrics for result in fit_seeds(name, seeds, dataset, results_dir, **config)]


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


def pearson(x, y) -> tuple[float, float, float]:
    """Pearson's r with a 95% confidence interval from Fisher's z transform: ``(r, low, high)``.
    Needs at least 4 pairs; the interval assumes independent pairs."""
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    if len(x) != len(y) or len(x) < 4:
        raise ValueError(f"a correlation with a confidence interval needs at least 4 pairs, got {len(x)} and {len(y)}")
    mean_x, mean_y = sum(x) / len(x), sum(y) / len(y)
    covariance = sum((a - mean_x) * (b - mean_y) for a, b in zip(x, y))
    spread = math.sqrt(sum((a - mean_x) ** 2 for a in x) * sum((b - mean_y) ** 2 for b in y))
    if spread == 0.0:
        raise ValueError("a correlation is undefined when one of the variables is constant")
    r = covariance / spread
    z, half_width = math.atanh(max(min(r, 1 - 1e-12), -1 + 1e-12)), 1.96 / math.sqrt(len(x) - 3)
    return r, math.tanh(z - half_width), math.tanh(z + half_width)
