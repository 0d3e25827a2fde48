"""Grids: methods x options x data x seeds, declared in Python or in a TOML file.

::

    grid = Grid(recipe="synthav", seeds=range(10),
                arms={"joint": {"method": "joint"}, "OGM-GE": {"method": "ogm_ge", "alpha": 0.8}})
    runs = mmlesson.run_grid(grid, results="results")   # a pandas DataFrame, one row per run

An *arm* is one method with its options (a label and flat ``TrainConfig.build`` keywords). The
*data* axis is a set of labelled data settings, each a recipe (``recipes.py``) and / or explicit
``data`` / ``data_knobs`` and training overrides; ``recipe=`` is the one-setting shorthand. For each
data setting, seed and arm, the keywords are merged in this order, later ones winning: the recipe's
protocol for the arm's method, the grid's ``train``, the data setting, the arm, the seed.
``data_knobs`` are merged key by key. A ``frozen_encoders`` arm may name two other arms as its
``encoders_from``: those runs (same data, same seed) are trained first.

Grid files (``mmlesson replicate GRID``) hold the same fields, plus a ``[table]`` with the paper's
published numbers; the shipped ones live in ``mmlesson/grids/``.
"""
from __future__ import annotations

import copy
import math
import numbers
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import recipes
from .config import TrainConfig
from .errors import ConfigError
from .identity import digest
from .methods import METHODS, option_names

GRIDS_DIR = Path(__file__).with_name("grids")
GRID_FIELDS = ("name", "title", "citation", "recipe", "data", "seeds", "train", "arms", "table", "notebooks")


@dataclass
class Grid:
    """Arms x data settings x seeds (see the module docstring)."""

    arms: dict[str, dict] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    recipe: str | None = None
    data: dict[str, dict] | None = None
    train: dict = field(default_factory=dict)
    name: str | None = None  # None: "grid-" and 8 hex digits of the grid's content, so two grids never share a record
    title: str = ""
    citation: str = ""
    table: dict = field(default_factory=dict)  # for reports: metrics shown, published numbers and their source
    notebooks: dict = field(default_factory=dict)  # chapters executed with papermill: {"chapters": [...], "parameters": {...}}

    def __post_init__(self):
        self.seeds = checked_seeds(self.seeds, self.name)
        if not isinstance(self.arms, dict) or not (self.arms or self.notebooks):
            raise ConfigError(f"grid {self.name or ''!r} has no arms: give at least one, e.g. "
                              f"arms={{'joint': {{'method': 'joint'}}}}")
        if self.data is None:
            self.data = {self.recipe: {"recipe": self.recipe}} if self.recipe else {"default": {}}
        if self.name is None:
            content = {"arms": self.arms, "seeds": self.seeds, "data": self.data, "train": self.train}
            self.name = f"grid-{digest(content)[:8]}"
        for label, spec in self.data.items():
            if spec.get("recipe") is not None:
                recipes.get(spec["recipe"])
        for label, arm in self.arms.items():
            if "method" not in arm:
                raise ConfigError(f"grid {self.name!r}, arm {label!r}: give its method, e.g. method = \"joint\"")

    def arm_order(self) -> list[str]:
        """Arm labels with every arm after the arms it depends on."""
        ordered: list[str] = []
        for label in self.arms:
            for dependency in self.dependencies(label):
                if dependency not in ordered:
                    ordered.append(dependency)
            if label not in ordered:
                ordered.append(label)
        return ordered

    def dependencies(self, label: str) -> list[str]:
        """The arms whose runs ``label``'s runs read (a frozen_encoders arm's ``encoders_from``)."""
        names = self.arms[label].get("encoders_from") or ()
        found = [name for name in names if name in self.arms]
        if found and len(found) != len(names):
            raise ConfigError(f"grid {self.name!r}, arm {label!r}: encoders_from names arms {list(names)}; every name "
                              f"must be an arm of this grid ({', '.join(self.arms)})")
        for name in found:
            if self.dependencies(name):
                raise ConfigError(f"grid {self.name!r}, arm {label!r}: arm {name!r} cannot itself depend on others")
        return found

    def keywords(self, data_label: str, arm_label: str, seed: int) -> dict:
        """The ``TrainConfig.build`` keywords of one run (module docstring: merge order)."""
        spec = copy.deepcopy(self.data[data_label])
        arm = copy.deepcopy(self.arms[arm_label])
        method = arm["method"]
        recipe = spec.pop("recipe", None)
        layers = [recipes.get(recipe).config(method) if recipe else {}, copy.deepcopy(self.train), spec, arm,
                  {"seed": seed}]
        merged: dict = {}
        for layer in layers:
            knobs = {**merged.get("data_knobs", {}), **layer.pop("data_knobs", {})}
            merged.update(layer)
            merged["data_knobs"] = knobs
        return recipes.with_data_seed(merged)

    def scaled_options(self, epochs: int, given=()) -> dict[str, dict]:
        """For runs cut to ``epochs`` (``replicate --epochs``, a smoke run): ``{arm: {option: value}}``, every option
        counted in epochs of each arm's method scaled from the run's own epochs by ``budget_share``: a stage's
        length (``Method.stage_lengths``, e.g. CCAT's ``classifier_epochs``), leaving the later stage at least one
        epoch, and a period, a warm-up or a window (``Method.epoch_options``, e.g. G-Blending's ``super_epoch``,
        OGM-GE's ``modulation_window``); options named in ``given`` are left out. A one-line error where
        ``epochs`` is too short for two stages, or the grid's data settings scale an arm's option differently."""
        scaled: dict[str, dict] = {}
        for arm_label, arm in self.arms.items():
            method = METHODS.get(arm["method"])
            names = [name for name in (*method.stage_lengths, *method.epoch_options) if name not in given]
            if not names:
                continue
            if method.stage_lengths and epochs < 2:
                raise ConfigError(f"{epochs} epoch: arm {arm_label!r} ({method.name}) trains in stages of at "
                                  f"least one epoch each; give 2 epochs or more")
            for data_label in self.data:  # an option's value does not depend on the seed: the first one's config
                config = TrainConfig.build(**self.keywords(data_label, arm_label, self.seeds[0]))
                for name in names:
                    value = budget_share(getattr(config.options, name), config.epochs, epochs)
                    if name in method.stage_lengths:
                        value = min(value, epochs - 1)
                    if scaled.setdefault(arm_label, {}).setdefault(name, value) != value:
                        raise ConfigError(f"{epochs} epochs: grid {self.name!r} scales {name} of arm {arm_label!r} "
                                          f"to different values in its data settings; give {name} yourself "
                                          f"(replicate: --set {name}=N)")
        return scaled

    def cut_to(self, epochs: int, given=()) -> dict[str, dict]:
        """Train every run for ``epochs`` epochs, each arm with its options counted in epochs scaled
        (``scaled_options``, which this returns)."""
        scaled = self.scaled_options(epochs, given)
        self.train = {**self.train, "epochs": epochs}
        for arm_label, options in scaled.items():
            self.arms[arm_label].update(options)
        return scaled

    def set_options(self, options: dict) -> None:
        """Give each of ``options`` (method options by name) to the arms whose method has it."""
        for arm in self.arms.values():
            arm.update({name: value for name, value in options.items() if name in option_names(arm["method"])})

    def cells(self):
        """``(data label, arm label, seed)`` of every run, dependencies first."""
        for data_label in self.data:
            for seed in self.seeds:
                for arm_label in self.arm_order():
                    yield data_label, arm_label, seed


def budget_share(value, from_epochs: int, epochs: int):
    """``value`` (epochs, or a window of epochs) scaled from a run of ``from_epochs`` to one of ``epochs``,
    rounded half up, at least 1 (a 0, such as a window's first epoch, stays 0)."""
    if isinstance(value, (tuple, list)):
        return tuple(budget_share(v, from_epochs, epochs) for v in value)
    return max(1, math.floor(value * epochs / from_epochs + 0.5)) if value else 0


def checked_seeds(seeds, name) -> list[int]:
    """``seeds`` as a list of distinct non-negative integers (a range, a list, a tuple), or a one-line error."""
    where = f"grid {name!r}: " if name else ""
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ConfigError(f"{where}seeds must be a list of integers, e.g. seeds=[0, 1, 2] or range(10); got {seeds!r}")
    seeds = list(seeds)
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ConfigError(f"{where}seeds must be non-negative integers, e.g. seeds=[0, 1, 2]; got {seed!r}")
    if not seeds:
        raise ConfigError(f"{where}give at least one seed, e.g. seeds=[0, 1, 2]")
    repeated = sorted({int(seed) for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        raise ConfigError(f"{where}seed {repeated[0]} is given twice; give each seed once (a repeated seed would "
                          f"count one run twice)")
    return [int(seed) for seed in seeds]


def load_grid(source) -> Grid:
    """A grid from a TOML file, or a shipped grid by name (``mmlesson replicate --list``)."""
    path = Path(source)
    if not path.suffix:
        shipped = GRIDS_DIR / f"{source}.toml"
        if shipped.exists():
            path = shipped
    if not path.exists():
        raise ConfigError(f"no grid file {source!r}; give a .toml path or one of the shipped grids: "
                          f"{', '.join(shipped_grids())}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"grid file {path} is not valid TOML ({error}); fix the line it names") from error
    unknown = sorted(set(raw) - set(GRID_FIELDS))
    if unknown:
        raise ConfigError(f"grid file {path}: unknown field {unknown[0]!r}; valid fields: {', '.join(GRID_FIELDS)}")
    if not raw.get("arms") and not raw.get("notebooks"):
        raise ConfigError(f"grid file {path}: no [arms.<label>] tables (and no [notebooks]); add at least one arm, "
                          f"e.g. [arms.joint] with method = \"joint\"")
    checks = {"seeds": list, "arms": dict, "data": dict, "train": dict, "table": dict, "notebooks": dict}
    for name, kind in checks.items():
        if name in raw and not isinstance(raw[name], kind):
            raise ConfigError(f"grid file {path}: field {name!r} must be a {'list' if kind is list else 'table'}")
    for label, arm in raw.get("arms", {}).items():
        if not isinstance(arm, dict):
            raise ConfigError(f"grid file {path}: arms.{label} must be a table with a method, e.g. "
                              f"[arms.{label}] method = \"joint\"")
    raw.setdefault("name", path.stem)
    try:
        return Grid(**raw)
    except ConfigError as error:
        raise ConfigError(f"grid file {path}: {error}") from error


def shipped_grids() -> list[str]:
    return sorted(path.stem for path in GRIDS_DIR.glob("*.toml"))
