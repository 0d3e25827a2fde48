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

from .files import atomic_write
from .stats import summarise

DEFAULT_METRICS = ("acc", "macro_f1")
FORMATS = {"markdown": ".md", "csv": ".csv", "latex": ".tex"}


def paper_table(runs, grid):
    """One row per data setting x arm: for each metric, ours (mean ± std over the complete seeds),
    the t-based 95% CI, n, and the paper's number where the grid file gives one."""
    import pandas as pd

    spec = grid.table or {}
    metrics = list(spec.get("metrics", DEFAULT_METRICS))
    scales = spec.get("scale", 100.0)  # one number, or one per metric
    published = spec.get("published", {})
    rows = []
    complete = runs[runs["status"] == "complete"] if len(runs) else runs
    for data_label in grid.data:
        for arm in grid.arms:
            group = complete[(complete["data"] == data_label) & (complete["arm"] == arm)] if len(complete) else complete
            row = {"data": data_label, "arm": arm}
            for metric in metrics:
                scale = float(scales.get(metric, 1.0) if isinstance(scales, dict) else scales)
                values = [v * scale for v in group[metric]] if metric in group else []
                summary = summarise(values)
                paper = published.get(arm, {}).get(metric)
                row[f"{metric} (ours)"] = format_mean(summary)
                row[f"{metric} 95% CI"] = (f"[{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"
                                           if summary["n"] > 1 else "-")
                row[f"{metric} paper"] = "-" if paper is None else f"{paper:.2f}"
            row["n"] = len(group)
            rows.append(row)
    table = pd.DataFrame(rows)
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


def write_tables(table, grid, directory) -> list[Path]:
    """``DIR/<grid>.md``, ``.csv`` and ``.tex``, written atomically."""
    paths = []
    for fmt, suffix in FORMATS.items():
        text = render(table, fmt)
        if fmt == "markdown":
            text = caption(grid) + "\n\n" + text + "\n"
        path = Path(directory) / f"{grid.name}{suffix}"
        atomic_write(path, lambda handle, text=text: handle.write(text.encode()))
        paths.append(path)
    return paths
