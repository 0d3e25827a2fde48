"""Paper tables: our mean ± std, 95% CI and n beside each paper's published number.

A grid's ``table`` section says which metrics to show (``metrics``, default test accuracy and
macro-F1), in which unit (``scale``: 100 for percentages, as papers print them), where the published
numbers come from (``source``) and the numbers themselves (``published.<arm>.<metric>``).
``paper_table(runs, grid)`` aggregates the DataFrame ``run_grid`` returns; ``render`` writes it as
markdown, CSV or LaTeX.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .files import atomic_write
from .stats import summarise

DEFAULT_METRICS = ("acc", "macro_f1")
FORMATS = {"markdown": ".md", "csv": ".csv", "latex": ".tex"}


def summary_rows(runs, grid) -> list[dict]:
    """One row per data setting x arm, in numbers: per metric its mean, std, t-based 95% CI over the complete
    seeds (in the table's unit) and the paper's number (NaN where none); ``n`` complete runs; and, where some
    runs of the row are not complete, ``not_complete`` saying how many and why (the first one's reason)."""
    spec = grid.table or {}
    metrics = list(spec.get("metrics", DEFAULT_METRICS))
    scales = spec.get("scale", 100.0)  # one number, or one per metric
    published = spec.get("published", {})
    rows = []
    for data_label in grid.data:
        for arm in grid.arms:
            group = runs[(runs["data"] == data_label) & (runs["arm"] == arm)] if len(runs) else runs
            complete = group[group["status"] == "complete"] if len(group) else group
            row = {"data": data_label, "arm": arm}
            for metric in metrics:
                scale = float(scales.get(metric, 1.0) if isinstance(scales, dict) else scales)
                summary = summarise([v * scale for v in complete[metric]] if metric in complete else [])
                row.update({f"{metric}_{key}": summary[key] for key in ("mean", "std", "ci_low", "ci_high")})
                row[f"{metric}_paper"] = float(published.get(arm, {}).get(metric, math.nan))
            row["n"] = len(complete)
            row["not_complete"] = not_complete(group)
            rows.append(row)
    return rows


def not_complete(group) -> str:
    """``2 of 10 runs failed: <the first one's error>`` for one row's runs, or an empty string."""
    incomplete = group[group["status"] != "complete"] if len(group) else group
    if not len(incomplete):
        return ""
    first = incomplete.iloc[0]
    reason = first["error"] if isinstance(first.get("error"), str) and first["error"] else first["status"]
    return f"{len(incomplete)} of {len(group)} runs not complete: {reason}"


def numeric_table(runs, grid):
    """``summary_rows`` as a DataFrame: one number per cell (the CSV a program reads)."""
    table = pd.DataFrame(summary_rows(runs, grid))
    return table.drop(columns="data") if len(grid.data) == 1 else table


def paper_table(runs, grid):
    """One row per data setting x arm: for each metric, ours (mean ± std over the complete seeds),
    the t-based 95% CI, n, and the paper's number where the grid file gives one; a ``note`` column says
    why a row lacks runs, where one does."""
    metrics = list((grid.table or {}).get("metrics", DEFAULT_METRICS))
    rows = []
    for numbers in summary_rows(runs, grid):
        row = {"data": numbers["data"], "arm": numbers["arm"]}
        for metric in metrics:
            summary = {key: numbers[f"{metric}_{key}"] for key in ("mean", "std", "ci_low", "ci_high")}
            summary["n"] = numbers["n"]
            paper = numbers[f"{metric}_paper"]
            row[f"{metric} (ours)"] = format_mean(summary)
            row[f"{metric} 95% CI"] = f"[{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]" if summary["n"] > 1 else "-"
            row[f"{metric} paper"] = "-" if math.isnan(paper) else f"{paper:.2f}"
        row["n"] = numbers["n"]
        row["note"] = numbers["not_complete"]
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table["note"].astype(bool).any():
        table = table.drop(columns="note")
    if len(grid.data) == 1:
        table = table.drop(columns="data")
    return table


def format_mean(summary: dict) -> str:
    if summary["n"] == 0 or math.isnan(summary["mean"]):
        return "-"
    if summary["n"] == 1:
        return f"{summary['mean']:.2f}"
    return f"{summary['mean']:.2f} ± {summary['std']:.2f}"


def render(table, fmt: str = "markdown") -> str:
    if fmt == "markdown":
        return table.to_markdown(index=False)
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "latex":
        return table.to_latex(index=False, escape=True)
    raise ValueError(f"unknown table format {fmt!r}; choose one of: {', '.join(FORMATS)}")


def caption(grid) -> str:
    spec = grid.table or {}
    source = spec.get("source") or grid.citation
    unit = spec.get("unit", "test metrics in %")
    return (f"{grid.title or grid.name}: {unit}, mean ± std over seeds, t-based 95% CI, n complete runs; paper: "
            f"{source or 'no published numbers'}.")


def write_tables(table, grid, directory, numbers) -> list[Path]:
    """``DIR/<grid>.md`` and ``.tex`` of ``paper_table``'s ``table``, and ``.csv`` of ``numeric_table``'s
    ``numbers``, written atomically."""
    paths = []
    for fmt, suffix in FORMATS.items():
        text = render(table if fmt != "csv" else numbers, fmt)
        if fmt == "markdown":
            text = caption(grid) + "\n\n" + text + "\n"
        path = Path(directory) / f"{grid.name}{suffix}"
        atomic_write(path, lambda handle, text=text: handle.write(text.encode()))
        paths.append(path)
    return paths
