"""Training methods, by name: one file per method (``base.py`` defines the interface) and one line
each in ``REGISTERED`` below.

The registry knows every method's name without importing its module, so whatever needs only the names
(``mmlesson --help``, a run's planning, checking a grid) does not import torch; a method's module is
imported the first time its class is asked for (``METHODS["ogm_ge"]``). A method defined elsewhere
joins with ``register(cls)`` (``@register`` on the class).
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import MutableMapping

# name -> "module:Class", the module in this package; keep sorted by name.
REGISTERED = {
    "agm": "agm:AGM",
    "arl": "arl:ARL",
    "ccat": "ccat:CCAT",
    "diagnosing_relearning": "diagnosing_relearning:DiagnosingRelearning",
    "frozen_encoders": "frozen_encoders:FrozenEncoders",
    "g_blending": "g_blending:GBlending",
    "inforeg": "inforeg:InfoReg",
    "joint": "joint:JointTraining",
    "mla": "mla:MLA",
    "mmcosine": "mmcosine:MMCosine",
    "mmpareto": "mmpareto:MMPareto",
    "multitask": "multitask:UniformMultitask",
    "ogm_ge": "ogm_ge:OGMGE",
    "opm": "opm:OPM",
    "pmr": "pmr:PMR",
    "reconboost": "reconboost:ReconBoost",
    "ume": "umt:UME",
    "umt": "umt:UMT",
    "unimodal": "unimodal:UnimodalTraining",
}


class MethodRegistry(MutableMapping):
    """``{name: Method subclass}``, each class imported on first access."""

    def __init__(self, locations: dict[str, str]):
        self.locations = {name: f"{__name__}.{location}" for name, location in locations.items()}
        self.classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        if name not in self.classes:
            module, _, cls = self.locations[name].partition(":")  # KeyError for a name never registered
            self.classes[name] = getattr(importlib.import_module(module), cls)
        return self.classes[name]

    def __setitem__(self, name: str, cls: type) -> None:
        self.locations[name] = f"{cls.__module__}:{cls.__qualname__}"
        self.classes[name] = cls

    def __delitem__(self, name: str) -> None:
        del self.locations[name]
        self.classes.pop(name, None)

    def __iter__(self):
        return iter(self.locations)

    def __len__(self) -> int:
        return len(self.locations)

    def __repr__(self) -> str:
        return f"MethodRegistry({sorted(self.locations)})"


METHODS = MethodRegistry(REGISTERED)


def register(cls):
    """Class decorator: make a method available by its ``name`` (CLI ``--method``, ``TrainConfig.method``)."""
    METHODS[cls.name] = cls
    return cls


def option_names(method: str) -> list[str]:
    """The names of the options of the registered method ``method`` (none for an unknown name)."""
    return [f.name for f in dataclasses.fields(METHODS[method].Options)] if method in METHODS else []


# The classes and the interface by name (``from mmlesson.methods import OGMGE, Method``), imported on first use.
_EXPORTS = {location.split(":")[1]: location.split(":")[0] for location in REGISTERED.values()} | {
    name: "base" for name in ("Method", "Stage", "StepState", "encoder_grad_norms")}
__all__ = sorted(["METHODS", "REGISTERED", "register", "option_names", *_EXPORTS])


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
