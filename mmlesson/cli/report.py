"""``mmlesson report RESULTS``: the tables of the grids run into a run store, rebuilt (nothing trains)."""
from __future__ import annotations

import sys

import pandas as pd

from ..errors import ConfigError
from ..runner import plan_grid, recorded_grids
from ..store import results_table, unreadable_runs_line
from ..tables import caption, numeric_table, paper_table, render

def run(args) -> int:
    if not args.results.strip():
        raise ConfigError("RESULTS is empty (an unset shell variable?); give the run store's directory")
    records = recorded_grids(args.results)
    if not records:
        raise ConfigError(f"{args.results} holds no grid results (run `mmlesson replicate GRID --results "
                          f"{args.results}` first)")
    if args.grid:
        unknown = sorted(set(args.grid) - {grid.name for grid, _ in records})
        if unknown:
            raise ConfigError(f"{args.results} holds no grid named {', '.join(unknown)}; it holds: "
                              f"{', '.join(grid.name for grid, _ in records)}")
        records = [(g, r) for g, r in records if g.name in args.grid]
    numbers = []
    for grid, roots in records:
        runs = results_table(plan_grid(grid, args.results, roots))
        if args.format == "csv":  # for a program: numbers only, every grid in one table, named in a column
            numbers.append(numeric_table(runs, grid).assign(grid=grid.name))
            if unreadable := unreadable_runs_line(runs):
                print(f"mmlesson: warning: grid {grid.name}: {unreadable}", file=sys.stderr)
            continue
        print(caption(grid) + "\n")
        print(render(paper_table(runs, grid), args.format))
        print()
        if unreadable := unreadable_runs_line(runs):
            print(f"mmlesson: warning: grid {grid.name}: {unreadable}", file=sys.stderr)
    if numbers:
        table = pd.concat(numbers, ignore_index=True)
        print(render(table[["grid", *table.columns.drop("grid")]], "csv"), end="")
    return 0
