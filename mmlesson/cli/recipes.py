"""``mmlesson recipes [NAME]``: the named protocols, listed or one in full."""
from __future__ import annotations

import dataclasses

from ..config import config_fields
from ..methods import METHODS
from ..recipes import RECIPES, RUN_SEED, get as get_recipe
from .data import columns, field_default, knob_fields, shown

def run(args) -> int:
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


def changed_knobs(recipe) -> dict:
    """The data knobs ``recipe`` sets to other values than the data set's defaults."""
    fields = knob_fields(recipe.data)
    return {name: value for name, value in recipe.data_knobs.items()
            if name not in fields or value != field_default(fields[name])}


def print_recipe(recipe) -> int:
    """``mmlesson recipes NAME``: everything a recipe sets, each beside its default, one item per line."""
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
