"""Command line: ``mmlesson train ...``, ``mmlesson recalibrate --run DIR`` and ``mmlesson data list``.

The options of ``train`` are generated from ``TrainConfig``'s fields, so ``--help`` lists every
option with its default and the CLI accepts exactly what ``mmlesson.train(...)`` accepts.
"""
from __future__ import annotations

import argparse
import ast
import sys
import typing
from dataclasses import MISSING
from pathlib import Path

from .config import TrainConfig, config_fields
from .errors import ConfigError, MMLessonError


def parse_knob(text: str) -> tuple[str, object]:
    """``name=value`` -> (name, Python literal or string): ``1.5``, ``3``, ``1,0.5,2`` (a tuple), ``audio``."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name.strip(), value


def add_train_options(parser: argparse.ArgumentParser) -> None:
    from .data import DATASETS
    from .methods import METHODS
    from .models import FUSIONS

    registries = {"data": DATASETS, "method": METHODS, "fusion": FUSIONS}
    hints = typing.get_type_hints(TrainConfig)
    for f in config_fields():
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if f.name in registries:
            help_text += f": {', '.join(sorted(registries[f.name]))}"
        default = f.default if f.default is not MISSING else f.default_factory()
        if f.name == "data_knobs":
            parser.add_argument("--data-knob", dest="data_knobs", action="append", type=parse_knob, default=[],
                                metavar="NAME=VALUE", help=help_text)
        elif hints[f.name] is bool:
            parser.add_argument(flag, default=default, action=argparse.BooleanOptionalAction,
                                help=help_text + f" (default: {'on' if default else 'off'})")
        elif hints[f.name] is tuple:  # tuples: epochs (int) unless the field says otherwise
            shown = " ".join(str(v) for v in default) or "none"
            parser.add_argument(flag, default=list(default), type=f.metadata.get("type", int), nargs=f.metadata["nargs"],
                                metavar=f.metadata["metavar"], help=help_text + f" (default: {shown})")
        else:
            kind = {int: int, float: float}.get(hints[f.name], str)
            parser.add_argument(flag, default=default, type=kind, help=help_text + " (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmlesson", description="Balanced multimodal learning: train and inspect "
                                     "audio-visual models (the package behind the book).")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train one model and write metrics.json",
                                description="Train one model; with --out, checkpoints every epoch and resumes.")
    add_train_options(train)
    recalibrate = commands.add_parser(
        "recalibrate", help="fit per-modality calibration and per-class modality weights on validation",
        description="Read a finished run, fit (a) a temperature per modality and (b) per-class modality weights "
                    "on its validation split, score both on test, and write recalibrated.json beside metrics.json.")
    recalibrate.add_argument("--run", required=True, metavar="DIR", help="a finished run directory (mmlesson train --out DIR)")
    data = commands.add_parser("data", help="data sets")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    data_commands.add_parser("list", help="list the data sets mmlesson can load")
    return parser


def run_train(args) -> int:
    from .engine import fit

    options = {f.name: getattr(args, f.name) for f in config_fields()}
    options["data_knobs"] = dict(args.data_knobs)
    result = fit(TrainConfig(**options))
    final = result.metrics["final"]
    branch = ", ".join(f"{m} {v:.3f}" for m, v in final["branch_acc"].items())
    line = f"test acc {final['acc']:.3f}  macro-F1 {final['macro_f1']:.3f}  branch acc: {branch}"
    if final.get("probe_acc"):
        line += "  probe acc: " + ", ".join(f"{m} {v:.3f}" for m, v in final["probe_acc"].items())
    print(line)
    if result.out is not None:
        print(f"metrics written to {result.out / 'metrics.json'}")
    return 0


def run_recalibrate(args) -> int:
    from .analysis.recalibration import RECALIBRATED_FILE, recalibrate_run

    report = recalibrate_run(args.run)
    for variant, scores in report["test"].items():
        print(f"{variant:20s} test acc {scores['acc']:.3f}  macro-F1 {scores['macro_f1']:.3f}  NLL {scores['nll']:.3f}")
    temperatures = ", ".join(f"{m} {t:.3f}" for m, t in report["calibration"]["temperatures"].items())
    print(f"temperatures (fitted on val): {temperatures}")
    print(f"written to {Path(args.run) / RECALIBRATED_FILE}")
    return 0


def run_data_list() -> int:
    from .data import DATASETS

    for name, (_, description) in DATASETS.items():
        print(f"{name:12s} {description}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return run_train(args)
        if args.command == "recalibrate":
            return run_recalibrate(args)
        return run_data_list()
    except ConfigError as error:
        print(f"mmlesson: error: {error}", file=sys.stderr)
        return 2
    except MMLessonError as error:
        print(f"mmlesson: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mmlesson: interrupted; run the same command again to resume from the last checkpoint",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
