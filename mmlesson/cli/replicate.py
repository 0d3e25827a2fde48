"""``mmlesson replicate GRID``: every missing run of a grid, trained in parallel, then its table."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from ..config import EXECUTION_FIELDS, config_fields
from ..errors import ConfigError, did_you_mean
from ..grid import checked_seeds, load_grid, shipped_grids
from ..identity import digest
from ..methods import option_names
from ..runner import DEFAULT_TIMEOUT, run_chapters, run_grid
from ..tables import numeric_table, paper_table, render, write_tables

def run(args) -> int:
    if args.list:
        for name in shipped_grids():
            print(f"{name:34s} {load_grid(name).title}")
        return 0
    if not args.grid:
        raise ConfigError("give a grid: a shipped name (mmlesson replicate --list) or a .toml file")
    grid = load_grid(args.grid)
    overrides, options = training_overrides(args, grid)
    if args.epochs:
        scaled = grid.cut_to(args.epochs, given=options)
        if scaled:
            print(f"scaled to {args.epochs} epochs: " + "; ".join(
                f"{arm} " + ", ".join(f"{name}={value}" for name, value in values.items())
                for arm, values in scaled.items()), file=sys.stderr)
    grid.set_options(options)
    for arm in grid.arms.values():
        arm.update(overrides)
    if args.seeds:
        grid.seeds = checked_seeds(args.seeds, grid.name)
    changes = {**({"seeds": grid.seeds} if args.seeds else {}), **overrides, **options}
    if changes:  # another grid: its record and tables get a name of their own
        grid.name = variant_name(grid.name, changes)
        print(f"grid {grid.name}: the grid with {', '.join(f'{k}={v}' for k, v in changes.items())}", file=sys.stderr)
    named = {name: path for name, path in args.root if name}
    unnamed = [path for name, path in args.root if not name]
    roots = named or (unnamed[0] if unnamed else None)
    timeout = args.timeout or DEFAULT_TIMEOUT
    failed = unreadable = 0
    if grid.arms:
        runs = run_grid(grid, args.results, workers=args.workers, scheduler=args.scheduler, retries=args.retries,
                        timeout=timeout, roots=roots, per_gpu=args.per_gpu, progress=args.progress,
                        dry_run=args.dry_run)
        if args.dry_run:
            to_train = runs[~runs["status"].isin(["complete", "unreadable"])]  # unreadable: listed with their fix
            for _, row in to_train.iterrows():
                print(f"would train: {row['arm']} / {row['data']} / seed {row['seed']} -> {row['run_dir']}")
            return 0
        failed += int((~runs["status"].isin(["complete", "unreadable"])).sum())
        unreadable = int((runs["status"] == "unreadable").sum())  # listed by run_grid, with the fix
        table = paper_table(runs, grid)
        print(render(table))
        paths = write_tables(table, grid, Path(args.results) / "tables", numeric_table(runs, grid))
        print(f"tables written to {paths[0].parent}/{grid.name}.{{md,csv,tex}}")
    if grid.notebooks and not args.dry_run:
        base = Path(args.grid).parent if Path(args.grid).suffix else Path.cwd()
        chapters = run_chapters(grid, args.results, workers=args.workers, scheduler=args.scheduler, timeout=timeout,
                                base=base)
        failed += int((chapters["status"] != "complete").sum())
        for _, row in chapters.iterrows():
            print(f"chapter {row['chapter']}: {row['status']} -> {row['output']}")
    if failed:
        print(f"mmlesson: error: {failed} runs or chapters failed (listed above and in {args.results}/index.csv); "
              f"run the same command again to retry them", file=sys.stderr)
    return 1 if failed or unreadable else 0


def training_overrides(args, grid) -> tuple[dict, dict]:
    """``--epochs N`` and ``--set NAME=VALUE`` of replicate: the training fields for every arm, and the options
    of the grid's methods (each for the arms whose method has it), checked by name."""
    fields = [f.name for f in config_fields() if f.name not in ("data", "data_root", "data_knobs", "method", "options",
                                                                "out", "seed", *EXECUTION_FIELDS)]
    methods = sorted({arm["method"] for arm in grid.arms.values()})
    known_options = sorted({name for method in methods for name in option_names(method)})
    overrides, options = {}, {}
    for name, value in args.train_overrides:
        if name == "seed":
            raise ConfigError("--set seed: give the seeds with --seeds 0 1 2")
        if name in fields:
            overrides[name] = value
        elif name in known_options:
            options[name] = value
        else:
            raise ConfigError(f"--set {name}: not a training field nor an option of {', '.join(methods)}"
                              f"{did_you_mean(name, fields + known_options)}; training fields: {', '.join(fields)}; "
                              f"options: {', '.join(known_options)} (data knobs: write a grid file)")
    if args.epochs:
        overrides["epochs"] = args.epochs
    return overrides, options


def variant_name(name: str, changes: dict) -> str:
    """``synthav-combined-epochs2``: a grid's name with what a command changed, safe as a file name
    (a digest of the changes where spelling them out would be long)."""
    suffix = "-".join(re.sub(r"[^\w.]+", "_", f"{key}{value}").strip("_") for key, value in changes.items())
    return f"{name}-{suffix if len(suffix) <= 48 else digest(changes)[:8]}"
