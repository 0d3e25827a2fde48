"""``mmlesson train``: one model, its options generated from ``TrainConfig`` and each method's ``Options``."""
from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import MISSING

from ..rates import ONE_RATE_RECIPES, protocol_rate
from ..config import EXECUTION_FIELDS, TrainConfig, config_fields, method_option_fields
from ..data import DATASETS
from ..engine import fit
from ..errors import ConfigError, check_choice
from ..methods import METHODS
from ..models import FUSIONS
from ..recipes import get as get_recipe
from .arguments import parse_knob

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


def add_options(parser: argparse.ArgumentParser) -> None:
    """The shared training options, then one group per method with that method's own options (given
    only when set, so that an option of another method can be refused)."""
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


def run(args) -> int:
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


def recipe_keywords(args, options: dict) -> dict:
    """``TrainConfig.build``'s keywords of ``mmlesson train --recipe NAME``: the recipe's data set, knobs,
    training fields and options of ``--method``, then every flag given on the command line (``args.given``;
    ``options``: the method options given), ``--data-knob`` knob by knob. The training seed is always the
    run's (a recipe whose data seed is ``run`` draws its data with it)."""
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
