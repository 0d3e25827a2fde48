"""Data sets behind one entry point: ``mmlesson.data.load(name, root=None, **knobs)``.

``synthav`` is generated in memory; ``cremad``, ``kinetics_sounds`` and ``ave`` are read from a cache
that ``mmlesson data prepare NAME --raw RAW --root ROOT`` builds once from the raw media.
"""
from __future__ import annotations

from functools import partial

from ..errors import check_choice
from .ave import AVE
from .cremad import CremaD
from .kinetics_sounds import KineticsSounds
from .loader import AVDataset, CachedSplit, TensorSplit
from .real import load_real
from .synthav import SynthAVConfig, load_synthav

# the real data sets, by name: what `mmlesson data prepare NAME` builds
REAL_DATASETS = {descriptor.name: descriptor for descriptor in (CremaD(), KineticsSounds(), AVE())}

# name -> (loader, one-line description)
DATASETS = {
    "synthav": (load_synthav, "built-in synthetic audio-visual data, generated in about a second (no download)"),
    **{name: (partial(load_real, descriptor), descriptor.description) for name, descriptor in REAL_DATASETS.items()},
}


def load(name: str, root=None, **knobs) -> AVDataset:
    """Load data set ``name`` (see ``DATASETS``) with its knobs."""
    check_choice("data set", name, DATASETS)
    loader, _ = DATASETS[name]
    return loader(root=root, **knobs)


__all__ = ["AVDataset", "CachedSplit", "DATASETS", "REAL_DATASETS", "SynthAVConfig", "TensorSplit", "load"]
