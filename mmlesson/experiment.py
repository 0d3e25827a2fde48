"""Reading runs in the chapters: one final metric over seeds, one history entry over epochs, and
short summaries (the statistics themselves are ``stats.py``'s, on scipy).

``improvement_verdict`` is the earlier paired-seed rule (mean difference against two standard
errors), kept for its callers; the chapters draw verdicts with ``stats.compare`` (confidence
intervals, a smallest effect of interest, Holm's correction).
"""
from __future__ import annotations

from scipy import stats as scipy_stats

from .stats import correlation, summarise


def metric(runs: list[dict], *keys) -> list[float]:
    """A final metric of each run: ``metric(runs, "test", "branch_acc", "visual")`` (``"val"`` for the
    selected epoch's validation metrics)."""
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


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    summary = summarise(values)
    return summary["mean"], (summary["std"] if summary["n"] > 1 else 0.0)


def fmt(values, digits: int = 3) -> str:
    """``0.912 ± 0.011``: mean ± sample standard deviation over seeds."""
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def paired_difference(treatment, control) -> tuple[float, float]:
    """Mean and standard error of the per-seed differences ``treatment - control`` (same seeds)."""
    differences = [float(t) - float(c) for t, c in zip(treatment, control, strict=True)]
    mean = summarise(differences)["mean"]
    return mean, (float(scipy_stats.sem(differences)) if len(differences) > 1 else 0.0)


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
    """Pearson's r with scipy's 95% confidence interval (Fisher's z): ``(r, low, high)``. Needs at
    least 4 pairs; the interval assumes independent pairs."""
    if len(x) != len(y) or len(x) < 4:
        raise ValueError(f"a correlation with a confidence interval needs at least 4 pairs, got {len(x)} and {len(y)}")
    if len(set(x)) < 2 or len(set(y)) < 2:
        raise ValueError("a correlation is undefined when one of the variables is constant")
    result = correlation(x, y)
    return result.r, result.ci_low, result.ci_high


__all__ = ["fmt", "improvement_verdict", "mean_std", "metric", "paired_difference", "pearson", "per_epoch"]
