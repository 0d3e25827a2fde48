"""What a chapter puts on its page: Markdown, a method's own code, a table of runs, and the lines the
book's tests compare.

``show_markdown`` renders text in a notebook (plain text elsewhere); ``show_code`` shows the package's
own source of a method, so the page never drifts from what runs. ``summary`` is the chapters' table of
mean ± std over seeds. ``judge`` Holm-corrects one family of claims and prints each verdict once, in
words; ``checked`` and ``claims`` print the numbers and verdicts that tests/nbval_tolerance.py compares.
"""
from __future__ import annotations

import inspect
import textwrap

import pandas as pd

from .readouts import fmt, metric
from .stats import holm, verdict_lines, with_stability

try:
    from IPython import display as ipython_display
except ImportError:  # outside Jupyter without IPython installed: Markdown is printed as plain text
    ipython_display = None


def method_source(*objects) -> str:
    """The source of package functions or methods, one after the other, dedented."""
    return "\n\n".join(textwrap.dedent(inspect.getsource(obj)).rstrip() for obj in objects)


def show_markdown(text: str) -> None:
    """Show Markdown on the page: rendered in a notebook, plain text elsewhere."""
    if ipython_display is None:
        print(text)
        return
    ipython_display.display(ipython_display.Markdown(text))


def show_code(*objects) -> None:
    """Show a method's own code on the page, as the package runs it (not a copy that could drift):
    a highlighted Python block in a notebook."""
    show_markdown(f"```python\n{method_source(*objects)}\n```")


def summary(runs: dict[str, list[dict]], columns: dict[str, tuple], oracle_row: dict | None = None):
    """A table of mean ± std over seeds: one row per arm, one column per ``{title: keys into final}``
    (``-`` where an arm has no such number, e.g. a unimodal model's other branch); ``oracle_row``
    (``{title: value}``) adds the oracle's accuracies as a last row."""
    rows = {}
    for arm, group in runs.items():
        cells = {}
        for title, keys in columns.items():
            try:
                cells[title] = fmt(metric(group, *keys))
            except (KeyError, TypeError):
                cells[title] = "-"
        rows[arm] = cells
    if oracle_row:
        rows["oracle (Bayes)"] = {title: f"{oracle_row[title]:.3f}" if title in oracle_row else "-" for title in columns}
    return pd.DataFrame.from_dict(rows, orient="index")


def checked(values: dict[str, float], tolerance: float, digits: int = 3) -> None:
    """Print numbers for the book's tests: each within ``tolerance`` of the stored value is a pass
    (tests/nbval_tolerance.py); the tolerance is stated on the first line."""
    print(f"numbers checked to within ±{tolerance}")
    for name, value in values.items():
        print(f"{name}: {value:.{digits}f}")


def judge(comparisons: list, rerun_sd=None) -> list:
    """Holm-correct one family of paired comparisons (``stats.compare``) and print each claim once, with
    its verdict in words (``Comparison.verdict_text``: the difference and its 95% interval); returns them.
    ``rerun_sd``: per claim, the spread a re-execution gives its paired difference (None: not measured); each
    claim with a spread is labelled stable or fragile (``stats.with_stability``)."""
    corrected = holm(comparisons)
    labelled = rerun_sd is not None and any(spread is not None for spread in rerun_sd)
    if labelled:
        corrected = with_stability(corrected, list(rerun_sd))
    if corrected:
        seeds = " or ".join(str(n) for n in sorted({c.n for c in corrected}))
        family = f"these {len(corrected)} claims" if len(corrected) > 1 else "this one claim (no correction)"
        print(f"{seeds} paired seeds per claim, 95% intervals, Holm-corrected over {family}"
              + ("; a verdict between retrained runs is labelled by whether a re-execution is predicted to keep it:"
                 if labelled else ":"))
    for c in corrected:
        print(f"- {c.claim}: {c.verdict_text()} (smallest effect of interest {c.sesoi:.3g})")
    return corrected


def claims(comparisons: list, tolerance: float = 0.03) -> None:
    """Print each claim's verdict for the book's tests (``stats.verdict_lines``), after the tolerance."""
    print(f"numbers checked to within ±{tolerance}")
    print(verdict_lines(comparisons))
