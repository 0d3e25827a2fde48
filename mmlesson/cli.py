"""Command line: ``mmlesson train ...`` (``--recipe NAME``: a named protocol, flags override it),
``mmlesson recalibrate --run DIR``, ``mmlesson data list``, ``mmlesson data knobs [NAME]``,
``mmlesson data prepare NAME --raw RAW --root ROOT``, ``mmlesson recipes [NAME]``, ``mmlesson diagnose``.

The options of ``train`` are generated from ``TrainConfig``'s fields, so ``--help`` lists every
option with its default and the CLI accepts exactly what ``mmlesson.train(...)`` accepts.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
import typing
from dataclasses import MISSING
from pathlib import Path

from .config import EXECUTION_FIELDS, TrainConfig, config_fields, method_option_fields
from .errors import ConfigError, check_choice, closest, did_you_mean, exit_with_one_line


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


def element_type(hint):
    """The argparse ``type`` of a field annotated ``hint`` (for tuples: of their elements)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    inner = args[0]
    if typing.get_origin(inner) is tuple:
        inner = typing.get_args(inner)[0]
    return {int: int, float: float}.get(inner, str)


def add_field_flag(parser, f, hint, default, choices=None, described: str | None = None) -> None:
    """One flag for the declared field ``f`` (``--name``; booleans get ``--no-name`` too); its help is
    the field's, with its choices and default, or ``described`` as given."""
    flag = "--" + f.name.replace("_", "-")
    help_text = f.metadata.get("help", "")
    shown = f.default
    choices = choices or f.metadata.get("choices")
    if choices:
        help_text += f" (choices: {', '.join(map(str, choices))})"
    if hint is bool:
        parser.add_argument(flag, default=default, action=argparse.BooleanOptionalAction,
                            help=described or help_text + f" (default: {'on' if shown else 'off'})")
    elif "nargs" in f.metadata:
        text = " ".join(str(v) for v in shown) if shown else "none"
        parser.add_argument(flag, default=default, type=element_type(hint), nargs=f.metadata["nargs"],
                            metavar=f.metadata["metavar"], help=described or help_text + f" (default: {text})")
    else:
        aliases = ["--root"] if f.name == "data_root" else []  # `mmlesson train --data cremad --root ROOT`
        parser.add_argument(flag, *aliases, default=default, type=element_type(hint),
                            help=described or help_text + f" (default: {shown})")


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """The shared training options, then one group per method with that method's own options (given
    only when set, so that an option of another method can be refused)."""
    from .data import DATASETS
    from .methods import METHODS
    from .models import FUSIONS

    registries = {"data": DATASETS, "method": METHODS, "fusion": FUSIONS}
    parser.add_argument("--recipe", default=None, metavar="NAME",
                        help="train under a named protocol (`mmlesson recipes`): its data set, data knobs, training "
                             "fields and the method's options; every flag given on the command line overrides it "
                             "(--data-knob per knob)")
    hints = typing.get_type_hints(TrainConfig)
    for f in config_fields():
        if f.name == "options":
            continue
        if f.name == "data_knobs":
            parser.add_argument("--data-knob", dest="data_knobs", action="append", type=parse_knob, default=[],
                                metavar="NAME=VALUE", help=f.metadata["help"])
            continue
        default = f.default if f.default is not MISSING else f.default_factory()
        add_field_flag(parser, f, hints[f.name], list(default) if isinstance(default, tuple) else default,
                       choices=sorted(registries[f.name]) if f.name in registries else None)
    declared: dict[str, list] = {}  # option name -> [(method, field, type hint)] of every method declaring it
    for method, cls in sorted(METHODS.items()):
        hints = typing.get_type_hints(cls.Options)
        for f in dataclasses.fields(cls.Options):
            declared.setdefault(f.name, []).append((method, f, hints[f.name]))
    for method, cls in sorted(METHODS.items()):
        own = [(f, hint) for m, f, hint in (d[0] for d in declared.values() if len(d) == 1) if m == method]
        if own:
            group = parser.add_argument_group(f"options of --method {method}")
            for f, hint in own:
                add_field_flag(group, f, hint, argparse.SUPPRESS)
    shared = {name: d for name, d in declared.items() if len(d) > 1}
    if shared:  # one flag, each method's meaning, choices and default in its help
        group = parser.add_argument_group("options of several methods (each method checks its own values)")
        for name, declarations in shared.items():
            parts = []
            for method, f, _ in declarations:
                choices = f.metadata.get("choices")
                parts.append(f"{method}: {f.metadata.get('help', '')}" + (f" (choices: {', '.join(map(str, choices))})"
                                                                         if choices else "") + f" (default: {f.default})")
            _, first, hint = declarations[0]
            add_field_flag(group, first, hint, argparse.SUPPRESS, described="; ".join(parts))


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
    import re

    match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    return did_you_mean(match[1], re.findall(r"'([^']*)'", match[2])) if match else ""


COMMANDS = ("train", "recalibrate", "replicate", "report", "diagnose", "data", "recipes")


def build_parser(command: str | None = None, complete: bool = True) -> argparse.ArgumentParser:
    """The parser of every command. Without ``complete``, the options that need the method and data
    registries (which import torch) are added to ``command`` only, so ``mmlesson --version``, ``--help``
    and the commands that train nothing start at once."""
    from . import __version__

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
        add_train_options(train)
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
        add_prepare_parser(data_commands, debug)
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


def integer_at_least(minimum: int):
    """An argparse ``type``: an integer >= ``minimum`` (1: positive, 0: non-negative), named in its errors."""
    kind = "a positive integer" if minimum == 1 else "a non-negative integer"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {kind}, got {value}")
        return value

    return parse


positive_int, non_negative_int = integer_at_least(1), integer_at_least(0)


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def parse_root(text: str) -> tuple[str | None, str]:
    """``PATH`` (every real data set of the grid) or ``NAME=PATH``."""
    name, separator, path = text.partition("=")
    return (name, path) if separator else (None, text)


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
                           help="override every run's epochs (for a quick try: other runs than the grid's own); stages "
                                "such as CCAT's classifier pre-training are scaled with them")
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


def add_prepare_parser(data_commands, debug) -> None:
    from .data import REAL_DATASETS
    from .data.cache import CacheParams

    defaults = CacheParams("")
    prepare = data_commands.add_parser(
        "prepare", parents=[debug], help="build the tensor cache of a real data set from its raw media",
        description="Decode every clip of a real data set (audio: OGM-GE's log spectrogram; frames: 1 fps, up to K, "
                    "resized) into a memory-mapped cache in --root, in parallel; resumable, and a second run on a "
                    "complete cache does nothing. Clips with unusable media are listed in ROOT/rejected.csv, clips "
                    "absent from --raw in ROOT/missing.csv.")
    prepare.add_argument("name", choices=sorted(REAL_DATASETS), help="the data set")
    prepare.add_argument("--raw", required=True, metavar="RAW",
                         help="the raw media (CREMA-D: the directory holding AudioWAV/ and VideoFlash/; Kinetics-Sounds "
                              "and AVE: a directory of your videos, named by clip / YouTube id)")
    prepare.add_argument("--root", required=True, metavar="ROOT", help="where the cache is written")
    prepare.add_argument("--download", action="store_true",
                         help="CREMA-D only: first fetch the official media into RAW (parallel, resumable, sha256-checked)")
    prepare.add_argument("--base-url", default=None, help="where --download fetches from (default: the official CREMA-D "
                                                          "Git LFS media URL)")
    prepare.add_argument("--connections", type=positive_int, default=8, help="parallel downloads (default: %(default)s)")
    prepare.add_argument("--workers", type=positive_int, default=None, help="decoding processes (default: every core)")
    prepare.add_argument("--rebuild", action="store_true", help="delete an existing cache in ROOT and build it again")
    prepare.add_argument("--frame-size", type=int, default=None,
                         help=f"stored frame side in pixels (default: {defaults.frame_size})")
    prepare.add_argument("--frames-per-clip", type=int, default=None,
                         help=f"frames kept per clip, evenly spaced among the 1-fps frames (default: {defaults.frames_per_clip})")
    prepare.add_argument("--clip-seconds", type=float, default=None,
                         help="audio length the clips are tiled / cut to (default: 3 for CREMA-D, 10 for Kinetics-Sounds "
                              "and AVE)")
    prepare.add_argument("--progress", choices=("auto", "on", "off"), default="auto", help="progress bar")


def run_train(args) -> int:
    from .data import DATASETS
    from .engine import fit
    from .methods import METHODS
    from .models import FUSIONS

    given = {name: getattr(args, name) for name in method_option_fields() if hasattr(args, name)}
    for kind, name, registry in (("data set", args.data, DATASETS), ("method", args.method, METHODS),
                                 ("fusion", args.fusion, FUSIONS)):
        check_choice(kind, name, registry)
    if args.recipe is not None:
        config = TrainConfig.build(**recipe_keywords(args, given))
    else:
        shared = {f.name: getattr(args, f.name) for f in config_fields() if f.name != "options"}
        shared["data_knobs"] = dict(args.data_knobs)
        config = TrainConfig(**shared, options=given)
    result = fit(config)
    final = result.metrics["final"]["test"]
    branch = ", ".join(f"{m} {v:.3f}" for m, v in final["branch_acc"].items())
    line = f"test acc {final['acc']:.3f}  macro-F1 {final['macro_f1']:.3f}  branch acc: {branch}"
    if final.get("probe_acc"):
        line += "  probe acc: " + ", ".join(f"{m} {v:.3f}" for m, v in final["probe_acc"].items())
    print(line)
    if result.out is not None and result.status == "read back":
        print(f"read back from {result.out / 'metrics.json'} (the run was complete; nothing trained or written)")
    elif result.out is not None:
        print(f"metrics written to {result.out / 'metrics.json'}")
    return 0


def given_on_command_line(argv: list[str]) -> set[str]:
    """The destinations of the ``train`` options that ``argv`` sets itself (``--epochs 8`` counts even where 8 is
    the default): ``argv`` parsed again with every default of ``train`` suppressed."""
    parser = build_parser("train", complete=False)
    train = parser._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv))) - {"command", "debug"}


def recipe_keywords(args, options: dict) -> dict:
    """``TrainConfig.build``'s keywords of ``mmlesson train --recipe NAME``: the recipe's data set, knobs,
    training fields and options of ``--method``, then every flag given on the command line (``args.given``;
    ``options``: the method options given), ``--data-knob`` knob by knob. The training seed is always the
    run's (a recipe whose data seed is ``run`` draws its data with it)."""
    from .book import ONE_RATE_RECIPES, protocol_rate
    from .recipes import get as get_recipe

    recipe = get_recipe(args.recipe)
    given = getattr(args, "given", set())
    if "data" in given and args.data != recipe.data:
        raise ConfigError(f"--data {args.data} disagrees with --recipe {recipe.name}, which trains on {recipe.data}; "
                          f"drop --data, or choose a recipe of {args.data} (mmlesson recipes)")
    shared = {f.name: getattr(args, f.name) for f in config_fields()
              if f.name in given and f.name not in ("data", "data_knobs", "method", "options")}
    changed = [*(name for name in shared if name not in (*EXECUTION_FIELDS, "seed")), *options,
               *(f"knob {name}" for name in dict(args.data_knobs))]
    protocol = {}
    if recipe.name in ONE_RATE_RECIPES and "lr" not in shared:  # the book trains every arm of it at one rate
        protocol = {"lr": protocol_rate(recipe.name)}
    keywords = recipe.config(args.method, **{**protocol, **shared, **options, "seed": args.seed,
                                             "data_knobs": dict(args.data_knobs)})
    print(f"recipe {recipe.name}: {recipe.data}, method {args.method}, seed {args.seed}"
          + (f", the book's protocol learning rate {protocol['lr']}" if protocol else "")
          + (f"; from the command line: {', '.join(changed)}" if changed else ""))
    return keywords


def recalibrate_run(run_dir, root=None, progress: str = "off") -> dict:
    """``mmlesson recalibrate --run DIR [--root CACHE]``: recalibrate a finished run and write
    ``DIR/recalibrated.json`` (atomically) beside its metrics.json. ``root``: where the run's data
    cache is now (the run is found by the data's content, not by the path it was trained from)."""
    from .analysis.recalibration import recalibrate
    from .data import load
    from .engine import load_run
    from .files import atomic_write_json
    from .rundir import RunDirectory

    config = RunDirectory(run_dir).read_metrics()["config"]
    if config["method"] == "unimodal":
        raise ConfigError(f"{run_dir} is a unimodal run; recalibration needs a model with both modalities")
    dataset = load(config["data"], root=root or config["data_root"], **config["data_knobs"])
    result = load_run(run_dir, dataset)
    report = recalibrate(result.model, dataset, next(result.model.parameters()).device, progress)
    report["run"] = {"method": config["method"], "fusion": config["fusion"], "seed": config["seed"]}
    atomic_write_json(Path(run_dir) / RunDirectory.RECALIBRATED, report)
    return report


def run_recalibrate(args) -> int:
    from .rundir import RunDirectory

    report = recalibrate_run(args.run, root=args.root, progress=args.progress)
    for variant, scores in report["test"].items():
        print(f"{variant:20s} test acc {scores['acc']:.3f}  macro-F1 {scores['macro_f1']:.3f}  NLL {scores['nll']:.3f}")
    temperatures = ", ".join(f"{m} {t:.3f}" for m, t in report["calibration"]["temperatures"].items())
    print(f"temperatures (fitted on val): {temperatures}")
    print(f"written to {Path(args.run) / RunDirectory.RECALIBRATED}")
    return 0


def run_replicate(args) -> int:
    from .grid import checked_seeds, load_grid, shipped_grids
    from .runner import DEFAULT_TIMEOUT, run_chapters, run_grid
    from .tables import numeric_table, paper_table, render, write_tables

    if args.list:
        for name in shipped_grids():
            print(f"{name:34s} {load_grid(name).title}")
        return 0
    if not args.grid:
        raise ConfigError("give a grid: a shipped name (mmlesson replicate --list) or a .toml file")
    grid = load_grid(args.grid)
    overrides, options = training_overrides(args, grid)
    if args.epochs:
        options = {**grid.cut_to(args.epochs, given=options), **options}
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
    from .methods import option_names

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
    import re

    from .identity import digest

    suffix = "-".join(re.sub(r"[^\w.]+", "_", f"{key}{value}").strip("_") for key, value in changes.items())
    return f"{name}-{suffix if len(suffix) <= 48 else digest(changes)[:8]}"


def run_report(args) -> int:
    from .runner import plan_grid, recorded_grids
    from .store import results_table, unreadable_runs_line
    from .tables import caption, numeric_table, paper_table, render

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
        import pandas as pd

        table = pd.concat(numbers, ignore_index=True)
        print(render(table[["grid", *table.columns.drop("grid")]], "csv"), end="")
    return 0


def run_diagnose(args) -> int:
    import json

    import tomllib

    from .signature import as_json, check_targets, default_recipe, diagnose, render, render_targets, targets_for

    if args.data not in ("synthav",) and not args.root:
        raise ConfigError(f"--data {args.data} needs --root ROOT, its prepared cache (mmlesson data prepare "
                          f"{args.data} --raw RAW --root ROOT)")
    if args.json is not None:
        check_output_file(args.json, "--json")  # before anything trains: the signature must not be lost
    if any(seed < 0 for seed in args.seeds):
        raise ConfigError(f"--seeds must be non-negative integers, got {args.seeds}")
    targets = None
    if args.targets is not None:
        try:
            targets = targets_for(tomllib.loads(targets_file(args.targets).read_text()),
                                  args.recipe or default_recipe(args.data))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"--targets {args.targets}: cannot read it as TOML ({error}); give a readable .toml file")
        if not targets:
            raise ConfigError(f"--targets {args.targets} has no [targets] table; add one, e.g. "
                              f"[targets] weak_branch_minus_chance_at_most = 0.08")
    train = {"epochs": args.epochs} if args.epochs else {}
    table = diagnose(args.data, seeds=args.seeds, recipe=args.recipe, data_knobs=dict(args.data_knobs), root=args.root,
                     results=args.results, workers=args.workers, train=train, progress=args.progress,
                     rerun_threads=args.rerun_threads)
    print(render(table))
    result = as_json(table)
    if targets is not None:
        result["targets"] = check_targets(result, targets)
        print(render_targets(result["targets"]))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(result, indent=2) + "\n")
        temporary.replace(path)
        print(f"signature written to {path}")
    return 0


def check_output_file(text: str, option: str) -> None:
    """Refuse ``option``'s file path in one line unless a file can be written there: its directory is
    creatable, or exists and takes a file (tried with an empty temporary one, removed at once)."""
    from .paths import check_directory_target, write_refusal

    path = Path(text)
    if not text.strip() or path.is_dir():
        raise ConfigError(f"{option} needs a file path, got {text!r}")
    check_directory_target(path.parent, option)
    if path.parent.is_dir() and (refusal := write_refusal(path.parent)):
        raise ConfigError(f"{option} {text}: cannot write in {path.parent} ({refusal}); give a writable path")


def targets_file(text: str) -> Path:
    """``--targets``: the file at ``text``, else the shipped one of that name (``preregistration.toml`` or
    ``preregistration`` find the book's preregistration from any directory)."""
    from .book import PREREGISTRATION

    path = Path(text)
    if not path.exists() and Path(text).with_suffix(".toml").name == PREREGISTRATION.name:
        return PREREGISTRATION
    return path


def run_data_list() -> int:
    from .data import DATASETS

    for name, source in DATASETS.items():
        print(f"{name:16s} {source.description}")
    return 0


def shown(value, separator: str = ",") -> str:
    """A value as the command line takes it: a tuple joined by ``separator`` (``,`` in ``--data-knob
    NAME=1,2``, a space after a flag with several values), anything else as ``str``."""
    if isinstance(value, (tuple, list)):
        return separator.join(map(str, value)) if value else "none"
    return str(value)


def columns(rows: list[tuple], indent: str = "") -> list[str]:
    """``rows`` of strings as lines, every column but the last padded to its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)] if rows else []
    return [(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]).rstrip()
            for row in rows]


def knob_fields(data: str) -> dict:
    """``{knob: field}`` of data set ``data``: SynthAV's config, or the knobs of a prepared real data set."""
    from .data import DATASETS, SynthAVConfig
    from .data.real import RealKnobs

    check_choice("data set", data, DATASETS)
    return {f.name: f for f in dataclasses.fields(SynthAVConfig if data == "synthav" else RealKnobs)}


def field_default(f):
    return f.default if f.default is not MISSING else f.default_factory()


def run_data_knobs(args) -> int:
    fields = knob_fields(args.name)
    print(f"{'SynthAV' if args.name == 'synthav' else args.name} knobs (name, default, meaning); set one with "
          f"mmlesson train --data-knob NAME=VALUE" + ("; the book's regimes: mmlesson recipes" if args.name ==
                                                     "synthav" else ""))
    rows = []
    for name, f in fields.items():
        choices = f.metadata.get("choices")
        rows.append((name, shown(field_default(f)),
                     f.metadata.get("help", "") + (f" (choices: {', '.join(map(str, choices))})" if choices else "")))
    print("\n".join(columns(rows)))
    return 0


def changed_knobs(recipe) -> dict:
    """The data knobs ``recipe`` sets to other values than the data set's defaults."""
    fields = knob_fields(recipe.data)
    return {name: value for name, value in recipe.data_knobs.items()
            if name not in fields or value != field_default(fields[name])}


def run_recipes(args) -> int:
    from .recipes import RECIPES, get as get_recipe

    if args.name is not None:
        return print_recipe(get_recipe(args.name))
    rows = [("NAME", "DATA", "TITLE (SynthAV: the knobs it changes from the defaults)")]
    for recipe in RECIPES.values():
        knobs = changed_knobs(recipe) if recipe.data == "synthav" else {}
        rows.append((recipe.name, recipe.data, recipe.title + (
            "; knobs: " + " ".join(f"{k}={shown(v)}" for k, v in knobs.items()) if knobs else "")))
    print("\n".join(columns(rows)))
    print("one in full: mmlesson recipes NAME; train under one: mmlesson train --recipe NAME --method METHOD")
    return 0


def print_recipe(recipe) -> int:
    """``mmlesson recipes NAME``: everything a recipe sets, each beside its default, one item per line."""
    from .methods import METHODS
    from .recipes import RUN_SEED

    print(f"{recipe.name}: {recipe.title}")
    print(f"data set: {recipe.data}; source: {recipe.citation}")
    print(f"train it: mmlesson train --recipe {recipe.name} --method METHOD --seed SEED (any flag given overrides "
          f"the recipe)")
    knob_of = knob_fields(recipe.data)
    print("data knobs (NAME, VALUE, DEFAULT; --data-knob NAME=VALUE):")
    rows = [(name, shown(value) + (" (the training seed: the data are drawn anew with each)" if value == RUN_SEED
                                   else ""), "default " + shown(field_default(knob_of[name])))
            for name, value in recipe.data_knobs.items()]
    print("\n".join(columns(rows, "  ")) if rows else "  none (the defaults)")
    train_field = {f.name: f for f in config_fields()}
    print("training fields (NAME, VALUE, DEFAULT):")
    print("\n".join(columns([(name, shown(value, " "), "default " + shown(field_default(train_field[name]), " "))
                              for name, value in recipe.train.items()], "  ")))
    print("method options (METHOD, NAME, VALUE, DEFAULT; a method not listed trains with its defaults):")
    rows = []
    for method, options in recipe.methods.items():
        declared = {f.name: f for f in dataclasses.fields(METHODS[method].Options)} | train_field
        rows += [(method, name, shown(value, " "), "default " + shown(field_default(declared[name]), " "))
                 for name, value in options.items()]
    print("\n".join(columns(rows, "  ")) if rows else "  none")
    print(f"notes: {recipe.notes}" if recipe.notes else "notes: none")
    return 0


def run_data_prepare(args) -> int:
    from .data import REAL_DATASETS
    from .data.download import Downloader, RemoteFile
    from .data.prepare import prepare

    descriptor = REAL_DATASETS[args.name]
    failed = {}
    if args.download:
        if not descriptor.downloadable:
            raise ConfigError(f"{descriptor.title} videos are not redistributable: download them yourself and give "
                              f"their directory as --raw (without --download)")
        files = [RemoteFile(**row) for row in descriptor.manifest()]
        downloader = Downloader(args.base_url or descriptor.media_url, args.raw, connections=args.connections,
                                progress=args.progress)
        failed = downloader.fetch_all(files)
        print(f"download: {len(files) - len(failed)} of {len(files)} files in place and verified in {args.raw}")
    overrides = {name: value for name, value in (("frame_size", args.frame_size), ("clip_seconds", args.clip_seconds),
                                                 ("frames_per_clip", args.frames_per_clip)) if value is not None}
    summary = prepare(descriptor, args.raw, args.root, workers=args.workers, rebuild=args.rebuild,
                      progress=args.progress, **overrides)
    root = Path(args.root)
    print(f"{descriptor.name}: {summary['cached']} clips cached in {root} ({summary['processed']} processed now), "
          f"{summary['rejected']} rejected, {summary['missing']} of {summary['listed']} listed clips not in {args.raw}")
    if summary["rejected"]:
        import csv
        from collections import Counter

        with open(root / "rejected.csv") as handle:
            reasons = Counter(row["reason"].split(":")[0] for row in csv.DictReader(handle))
        print(f"  rejected clips and reasons: {root / 'rejected.csv'} ("
              + ", ".join(f"{count} x {reason}" for reason, count in reasons.most_common(5)) + ")")
    if summary["missing"]:
        print(f"  missing clips: {root / 'missing.csv'}")
    if failed:
        print(f"mmlesson: error: {len(failed)} downloads failed (listed in {Path(args.raw) / 'download_failed.csv'}); "
              f"run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    import os

    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("MMLESSON_DEBUG", "") not in ("", "0")
    return exit_with_one_line(lambda: run_command(parse(argv)), debug=debug)


def parse(argv: list[str]) -> argparse.Namespace:
    """The parsed command line; for ``train --recipe``, ``given`` holds the options the command line sets itself."""
    args = build_parser(chosen_command(argv), complete=False).parse_args(argv)
    if args.command == "train" and args.recipe is not None:
        args.given = given_on_command_line(argv)
    return args


def run_command(args) -> int:
    if args.command == "train":
        return run_train(args)
    if args.command == "recalibrate":
        return run_recalibrate(args)
    if args.command == "replicate":
        return run_replicate(args)
    if args.command == "report":
        return run_report(args)
    if args.command == "diagnose":
        return run_diagnose(args)
    if args.command == "recipes":
        return run_recipes(args)
    if args.data_command == "prepare":
        return run_data_prepare(args)
    if args.data_command == "knobs":
        return run_data_knobs(args)
    return run_data_list()


if __name__ == "__main__":
    sys.exit(main())
