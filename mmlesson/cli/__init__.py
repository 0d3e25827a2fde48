"""Command line: ``mmlesson train ...`` (``--recipe NAME``: a named protocol, flags override it),
``mmlesson recalibrate --run DIR``, ``mmlesson replicate GRID``, ``mmlesson report RESULTS``,
``mmlesson diagnose``, ``mmlesson data list``, ``mmlesson data knobs [NAME]``,
``mmlesson data prepare NAME --raw RAW --root ROOT``, ``mmlesson recipes [NAME]``.

This module builds the parser and dispatches; each command lives in the module of its name
(``mmlesson/cli/train.py``, ...), imported only when that command is chosen (``command_module``), so
``mmlesson --version``, ``--help`` and a command's ``--help`` start at once, without torch.
The options of ``train`` are generated from ``TrainConfig``'s fields, so ``--help`` lists every
option with its default and the CLI accepts exactly what ``mmlesson.train(...)`` accepts.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from .. import __version__
from ..errors import closest, did_you_mean, exit_with_one_line
from .arguments import non_negative_int, parse_knob, parse_root, positive_int, positive_seconds

class OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage error as one line that names the fix (exit code 2), and the closest valid
    name for a mistyped option or choice (``unrecognized arguments: --lrr 0.1 (did you mean --lr?)``)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}{choice_suggestion(message)} (see `{self.prog} --help`)\n")

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:  # argparse's own message, with the options of the commands chosen to suggest from
            chain = self.chosen_parsers(namespace)
            known = [option for parser in chain for option in parser._option_string_actions]
            self.exit(2, f"{self.prog}: error: unrecognized arguments: {' '.join(extras)}"
                         f"{option_suggestion(extras, known)} (see `{chain[-1].prog} --help`)\n")
        return namespace

    def chosen_parsers(self, namespace) -> list[argparse.ArgumentParser]:
        """This parser and the (sub)command parsers ``namespace`` chose, outermost first."""
        chain = [self]
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(namespace, action.dest, None) or "")
                if isinstance(chosen, OneLineParser):
                    chain += chosen.chosen_parsers(namespace)
        return chain


def option_suggestion(extras: list[str], known) -> str:
    """`` (did you mean --lr?)`` for the mistyped options among ``extras`` (``--lrr``, ``--lrr=0.1``)."""
    typed = [word.split("=", 1)[0] for word in extras if word.startswith("--") and len(word) > 2]
    found = [(word, closest(word, known, strip="-")) for word in typed]
    found = [(word, match) for word, match in found if match]
    if len(found) == 1:
        return did_you_mean(found[0][0], known, strip="-")
    return (" (did you mean " + ", ".join(f"{match} for {word}" for word, match in found) + "?)") if found else ""


def choice_suggestion(message: str) -> str:
    """`` (did you mean train?)`` for argparse's ``invalid choice: 'trian' (choose from 'train', ...)``."""
    match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    return did_you_mean(match[1], re.findall(r"'([^']*)'", match[2])) if match else ""


COMMANDS = ("train", "recalibrate", "replicate", "report", "diagnose", "data", "recipes")


def build_parser(command: str | None = None, complete: bool = True) -> argparse.ArgumentParser:
    """The parser of every command. Without ``complete``, the options that need the method and data
    registries (which import torch) are added to ``command`` only, so ``mmlesson --version``, ``--help``
    and the commands that train nothing start at once."""
    debug = argparse.ArgumentParser(add_help=False)  # accepted before or after the command
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the Python traceback of an error (also: MMLESSON_DEBUG=1)")
    parser = OneLineParser(prog="mmlesson", description="Balanced multimodal learning: train and inspect "
                           "audio-visual models (the package behind the book).", parents=[debug])
    parser.add_argument("--version", action="version", version=f"mmlesson {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}",
                                     parser_class=OneLineParser)
    train = commands.add_parser("train", help="train one model and write metrics.json", parents=[debug],
                                description="Train one model; with --out, checkpoints every epoch and resumes.")
    if complete or command == "train":
        command_module("train").add_options(train)
    recalibrate = commands.add_parser(
        "recalibrate", parents=[debug], help="fit per-modality calibration and per-class modality weights on validation",
        description="Read a finished run, fit (a) a temperature per modality and (b) per-class modality weights "
                    "on its validation split, score both on test, and write recalibrated.json beside metrics.json.")
    recalibrate.add_argument("--run", required=True, metavar="DIR", help="a finished run directory (mmlesson train --out DIR)")
    recalibrate.add_argument("--root", default=None, metavar="ROOT",
                             help="where the run's data cache is now (real data sets; default: where it was trained)")
    recalibrate.add_argument("--progress", choices=("auto", "on", "off"), default="auto", help="progress bar")
    add_replicate_parsers(commands, debug)
    add_diagnose_parser(commands, debug)
    data = commands.add_parser("data", help="data sets: list them and their knobs, prepare a real one",
                               parents=[debug])
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="{list,knobs,prepare}",
                                        parser_class=OneLineParser)
    data_commands.add_parser("list", help="list the data sets mmlesson can load", parents=[debug])
    knobs = data_commands.add_parser("knobs", parents=[debug], help="list a data set's knobs: name, default, meaning",
                                     description="Every knob of a data set (default: SynthAV) with its default and "
                                                 "meaning; set one with `mmlesson train --data-knob NAME=VALUE`.")
    knobs.add_argument("name", nargs="?", default="synthav", help="the data set (default: %(default)s)")
    if complete or command == "data":
        command_module("data").add_options(data_commands, debug)
    recipes = commands.add_parser(
        "recipes", parents=[debug], help="list the named protocols (the book's SynthAV regimes, the papers' settings)",
        description="List every recipe (name, data set, title; for SynthAV, the knobs it changes from the "
                    "defaults), or print one in full: data knobs, training fields, method options, notes. Train "
                    "under one with `mmlesson train --recipe NAME`.")
    recipes.add_argument("name", nargs="?", default=None, help="print this recipe in full")
    return parser


def chosen_command(argv: list[str]) -> str | None:
    """The command word of ``argv`` (the first argument that is one), or None."""
    return next((word for word in argv if word in COMMANDS), None)


def add_replicate_parsers(commands, debug) -> None:
    replicate = commands.add_parser(
        "replicate", parents=[debug], help="train every missing run of a grid (a paper's table) in parallel, then print its table",
        description="Plan every run of GRID (a shipped grid name, see --list, or a .toml file) in the run store "
                    "--results, train the missing ones on Dask (a local cluster of single-threaded workers, one "
                    "per core or one per GPU, or --scheduler), retry failures, and write the table beside the "
                    "published numbers to RESULTS/tables/. Run it again after an interruption: complete runs are "
                    "read back, interrupted ones resume from their checkpoints.")
    replicate.add_argument("grid", nargs="?", help="shipped grid name or path of a grid .toml file")
    replicate.add_argument("--list", action="store_true", help="list the shipped grids and exit")
    replicate.add_argument("--results", default="results", help="the run store (default: %(default)s)")
    replicate.add_argument("--workers", type=positive_int, default=None,
                           help="parallel runs (default: $MMLESSON_WORKERS if set, else one per core, one per GPU "
                                "with CUDA; 1 = in this process)")
    replicate.add_argument("--per-gpu", type=positive_int, default=1, help="workers per GPU for small models (default: 1)")
    replicate.add_argument("--scheduler", default=None, metavar="ADDRESS",
                           help="use an existing Dask cluster (e.g. tcp://host:8786, started by dask-jobqueue on Slurm)")
    replicate.add_argument("--retries", type=non_negative_int, default=1,
                           help="further attempts of a failing run (default: 1)")
    replicate.add_argument("--timeout", type=positive_seconds, default=None, metavar="SECONDS",
                           help="limit per run (default: 12 hours); a timed-out run resumes when run again")
    replicate.add_argument("--root", action="append", type=parse_root, default=[], metavar="[NAME=]PATH",
                           help="prepared cache of the grid's real data set (repeatable as NAME=PATH)")
    replicate.add_argument("--seeds", type=non_negative_int, nargs="+", default=None, help="override the grid's seeds")
    replicate.add_argument("--epochs", type=positive_int, default=None,
                           help="override every run's epochs (for a quick try: other runs than the grid's own); options "
                                "counted in epochs (CCAT's classifier pre-training, OGM-GE's modulation window, "
                                "G-Blending's super-epoch ...) keep their share of the run")
    replicate.add_argument("--set", dest="train_overrides", action="append", type=parse_knob, default=[],
                           metavar="NAME=VALUE", help="override a training field of every run, e.g. --set lr=0.01, or a "
                                                      "method's option for the arms of that method, e.g. --set "
                                                      "classifier_epochs=1 (repeatable; the runs' identities change "
                                                      "with it)")
    replicate.add_argument("--dry-run", action="store_true",
                           help="list the runs that would be trained and their estimated time; write nothing")
    replicate.add_argument("--progress", choices=("auto", "on", "off"), default="auto", help="progress bar")
    report = commands.add_parser("report", parents=[debug], help="print the tables of the grids run into a results directory",
                                 description="Rebuild each grid's table from the runs in RESULTS (nothing is trained).")
    report.add_argument("results", help="the run store given to `mmlesson replicate --results`")
    report.add_argument("--grid", action="append", default=None, help="only this grid (repeatable)")
    report.add_argument("--format", choices=("markdown", "csv", "latex"), default="markdown", help="table format")


def add_diagnose_parser(commands, debug) -> None:
    diagnose = commands.add_parser(
        "diagnose", parents=[debug], help="measure a data set's modality-imbalance signature from its three baselines",
        description="Train (or read back from --results) audio-only, visual-only and joint concatenation runs for "
                    "every seed, and print the imbalance signature with 95% CIs over seeds beside CREMA-D's "
                    "published one: unimodal and fused accuracy, each modality's joint branch and probe, the weak "
                    "modality's starvation, the epochs each model needs to fit its training set, and SynthAV's "
                    "oracle accuracies.")
    diagnose.add_argument("--data", default="synthav", help="synthav, or a prepared real data set with --root "
                                                            "(default: %(default)s)")
    diagnose.add_argument("--root", default=None, metavar="ROOT", help="prepared cache of a real data set")
    diagnose.add_argument("--recipe", default=None, help="the protocol (default: synthav-severe-v2 for SynthAV, "
                                                         "ogm_ge-<data> for a real data set)")
    diagnose.add_argument("--data-knob", dest="data_knobs", action="append", type=parse_knob, default=[],
                          metavar="NAME=VALUE", help="a SynthAV knob on top of the recipe's (repeatable)")
    diagnose.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102],
                          help="training seeds; SynthAV draws its data anew with each (default: 100 101 102)")
    diagnose.add_argument("--epochs", type=positive_int, default=None, help="override the recipe's epochs")
    diagnose.add_argument("--results", default="results", help="the run store (default: %(default)s)")
    diagnose.add_argument("--workers", type=positive_int, default=None,
                          help="parallel runs (default: $MMLESSON_WORKERS if set, else one per core, one per GPU with "
                               "CUDA; 1 = in this process)")
    diagnose.add_argument("--progress", choices=("auto", "on", "off"), default="off",
                          help="progress of the runs it trains (default: %(default)s)")
    diagnose.add_argument("--rerun-threads", type=positive_int, default=None, metavar="N",
                          help="also retrain each seed's joint model with N CPU threads (another float order), one "
                               "at a time, to measure training chaos (precision targets need it)")
    diagnose.add_argument("--json", default=None, metavar="PATH", help="also write the signature as JSON to PATH")
    diagnose.add_argument("--targets", default=None, metavar="TOML",
                          help="check the signature against the [targets] table of this file; the name "
                               "preregistration.toml alone finds the book's own, from any directory")


def given_on_command_line(argv: list[str]) -> set[str]:
    """The destinations of the ``train`` options that ``argv`` sets itself (``--epochs 8`` counts even where 8 is
    the default): ``argv`` parsed again with every default of ``train`` suppressed."""
    parser = build_parser("train", complete=False)
    train = parser._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv))) - {"command", "debug"}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("MMLESSON_DEBUG", "") not in ("", "0")
    return exit_with_one_line(lambda: run_command(parse(argv)), debug=debug)


def parse(argv: list[str]) -> argparse.Namespace:
    """The parsed command line; for ``train --recipe``, ``given`` holds the options the command line sets itself."""
    args = build_parser(chosen_command(argv), complete=False).parse_args(argv)
    if args.command == "train" and args.recipe is not None:
        args.given = given_on_command_line(argv)
    return args


def command_module(command: str):
    """The module of ``command`` (``mmlesson/cli/<command>.py``), imported now: the one place the command
    line defers an import, so that what one command needs (torch, pandas, Dask) loads only for it."""
    return importlib.import_module(f".{command}", __name__)


def run_command(args) -> int:
    return command_module(args.command).run(args)
