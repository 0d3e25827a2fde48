"""Data sets behind one entry point: ``mmlesson.data.load(name, root=None, **knobs)``.

``synthav`` is generated in memory; ``cremad``, ``kinetics_sounds`` and ``ave`` are read from a cache
that ``mmlesson data prepare NAME --raw RAW --root ROOT`` builds once from the raw media.
``mmlesson.data.identity(name, root, **knobs)`` is the content a run is trained on (every knob
resolved, a cache's parameters and checksums, never its path): part of a run's identity.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Callable

from ..errors import check_choice
from .ave import AVE
from .cremad import CremaD
from .kinetics_sounds import KineticsSounds
from .loader import AVDataset, CachedSplit, TensorSplit
from .real import load_real, real_identity
from .synthav import SynthAVConfig, load_synthav, synthav_identity


@dataclass(frozen=True)
class DataSource:
    """How to load a data set, how to name its content, and one line about it."""

    load: Callable
    identity: Callable
    description: str


# the real data sets, by name: what `mmlesson data prepare NAME` builds
REAL_DATASETS = {descriptor.name: descriptor for descriptor in (CremaD(), KineticsSounds(), AVE())}

DATASETS = {
    "synthav": DataSource(load_synthav, synthav_identity,
                          "built-in synthetic audio-visual data, generated in about a second (no download)"),
    **{name: DataSource(partial(load_real, descriptor), partial(real_identity, descriptor), descriptor.description)
       for name, descriptor in REAL_DATASETS.items()},
}


def load(name: str, root=None, **knobs) -> AVDataset:
    """Load data set ``name`` (see ``DATASETS``) with its knobs."""
    check_choice("data set", name, DATASETS)
    return DATASETS[name].load(root=root, **knobs)


def trained_on(config: dict, root=None) -> AVDataset:
    """The data set a finished run trained on, from its metrics' ``config`` (a real data set from the cache at
    ``root`` if given, else the run's own). The last few are kept in memory, so the runs of one seed share one
    copy (in a regime whose data are drawn anew with every seed, each seed has its own)."""
    return _load_cached(json.dumps([config["data"], str(root or config.get("data_root") or ""), config["data_knobs"]],
                                   sort_keys=True))


@lru_cache(maxsize=12)
def _load_cached(key: str) -> AVDataset:
    name, root, knobs = json.loads(key)
    return load(name, root=root or None, **knobs)


def identity(name: str, root=None, **knobs) -> dict:
    """The content of data set ``name`` with these knobs, without loading it (see module docstring)."""
    check_choice("data set", name, DATASETS)
    return DATASETS[name].identity(root=root, **knobs)


__all__ = ["AVDataset", "CachedSplit", "DATASETS", "DataSource", "REAL_DATASETS", "SynthAVConfig", "TensorSplit",
           "identity", "load", "trained_on"]
