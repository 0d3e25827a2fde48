"""Readouts of runs' metrics.json for the chapters: one final metric over seeds, one history entry
over epochs, and mean ± std summaries (statistics and verdicts are ``stats.py``'s, on scipy)."""
from __future__ import annotations

import numpy as np


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
    """Mean and sample standard deviation of the values present (None and NaN left out; 0 for a single value)."""
    present = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=float)
    mean = float(present.mean()) if len(present) else float("nan")
    return mean, (float(present.std(ddof=1)) if len(present) > 1 else 0.0)


def fmt(values, digits: int = 3) -> str:
    """``0.912 ± 0.011``: mean ± sample standard deviation over seeds."""
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


__all__ = ["fmt", "mean_std", "metric", "per_epoch"]
