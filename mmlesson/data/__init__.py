"""Data sets behind one entry point: ``mmlesson.data.load(name, root=None, **knobs)``."""
from __future__ import annotations

from ..errors import check_choice
from .loader import AVDataset, TensorSplit
from .synthav import SynthAVConfig, load_synthav

# name -> (loader, one-line description); real data sets register here once prepared caches exist.
DATASETS = {
    "synthav": (load_synthav, "built-in synthetic audio-visual data, generated in about a second (no download)"),
}


def load(name: str, root=None, **knobs) -> AVDataset:
    """Load data set ``name`` (see ``DATASETS``) with its knobs."""
    check_choice("data set", name, DATASETS)
    loader, _ = DATASETS[name]
    return loader(root=root, **knobs)


__all__ = ["AVDataset", "DATASETS", "SynthAVConfig", "TensorSplit", "load"]
