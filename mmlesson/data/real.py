"""``mmlesson.data.load(name, root=ROOT, **knobs)`` for the real data sets: a prepared cache's splits.

Knobs (all optional; stored in metrics.json with the run):
``split`` the split scheme (CREMA-D: ``ogm_ge`` or ``speaker``; Kinetics-Sounds: ``ogm_ge``; AVE:
``official``), ``val_fraction`` (0.1: the share of train carved into validation where the lists give
none; for CREMA-D's speaker split, the share of actors held out for each of validation and test),
``num_frames`` per clip (1, OGM-GE's default), ``image_size`` of the frames the model sees (the
cache's frame size, 224 by default), ``augment`` (random resized crop + flip in training),
``spec_mask`` (0: off; else the largest masked fraction of each spectrogram axis), ``max_clips`` (None;
else at most this many clips per split, evenly spaced: a smoke run), ``resident``
(``auto``, True or False: see ``CachedSplit``), ``verify`` (re-hash the array files).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from ..errors import ConfigError
from ..options import check_fields, option
from .cache import CacheError, NoCache, open_cache, read_meta
from .descriptor import RealDataset
from .loader import AVDataset, CachedSplit

EXECUTION_KNOBS = ("resident", "verify")  # where the arrays live and whether they are re-hashed: not content


@dataclass(frozen=True)
class RealKnobs:
    """The knobs of a prepared real data set (module docstring), typed and checked."""

    split: str | None = option(None, "the split scheme (default: the data set's first)")
    val_fraction: float = option(0.1, "share of train carved into validation (or of actors, speaker split)",
                                 minimum=0.0)
    num_frames: int = option(1, "frames per clip the model sees", minimum=1)
    image_size: int | None = option(None, "side of the frames the model sees (default: the cache's)", minimum=8)
    augment: bool = option(True, "random resized crop + flip in training")
    spec_mask: float = option(0.0, "largest masked fraction of each spectrogram axis (0: off)", minimum=0.0)
    resident: str = option("auto", "keep the split on the device: auto, true or false",
                           choices=("auto", "true", "false"))
    verify: bool = option(False, "re-hash the cache's array files before use")
    max_clips: int | None = option(None, "at most this many clips per split, evenly spaced through it (a smoke "
                                         "run; None: all)", minimum=1)

    def __post_init__(self):
        if isinstance(self.resident, bool):  # Python users pass True / False
            object.__setattr__(self, "resident", str(self.resident).lower())
        check_fields(self, owner="knob")
        if not self.val_fraction < 1:
            raise ConfigError(f"knob val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if not self.spec_mask < 1:
            raise ConfigError(f"knob spec_mask must be in [0, 1), got {self.spec_mask!r}")


def resolve_knobs(descriptor: RealDataset, **knobs) -> dict:
    """Every knob typed, checked and with its default filled in (``resident`` as auto / True / False)."""
    valid = [f.name for f in fields(RealKnobs)]
    unknown = sorted(set(knobs) - set(valid))
    if unknown:
        raise ConfigError(f"unknown {descriptor.name} knob {unknown[0]!r}; valid knobs: {', '.join(valid)}")
    resolved = asdict(RealKnobs(**knobs))
    resolved["split"] = resolved["split"] or descriptor.split_names[0]
    descriptor.check_split(resolved["split"])
    resolved["resident"] = {"auto": "auto", "true": True, "false": False}[resolved["resident"]]
    return resolved


def missing_root(descriptor: RealDataset) -> CacheError:
    return NoCache(f"{descriptor.name} needs the root of a prepared cache (data_root / --data-root / root=); "
                      f"prepare one with: {descriptor.prepare_hint()}")


def identity_of(descriptor: RealDataset, knobs: dict, meta: dict) -> dict:
    content = {k: v for k, v in knobs.items() if k not in EXECUTION_KNOBS}
    if content.get("max_clips") is None:  # every clip: the identity runs on the whole split had before the knob
        content.pop("max_clips", None)
    content["image_size"] = content["image_size"] or meta["params"]["frame_size"]  # None means the stored size
    return {"name": descriptor.name, "knobs": content, "cache": {"params": meta["params"], "sha256": meta["sha256"]}}


def real_identity(descriptor: RealDataset, root=None, **knobs) -> dict:
    """The content of a prepared data set: its knobs (not ``resident`` / ``verify``) and its cache's
    parameters and array checksums from meta.json; the path of the cache is not part of it."""
    knobs = resolve_knobs(descriptor, **knobs)
    if root is None:
        raise missing_root(descriptor)
    return identity_of(descriptor, knobs, read_meta(root, descriptor.name))


def load_real(descriptor: RealDataset, root=None, **knobs) -> AVDataset:
    knobs = resolve_knobs(descriptor, **knobs)
    if root is None:
        raise missing_root(descriptor)
    cache = open_cache(root, descriptor.name, verify=knobs["verify"])
    cached = cache.cached_indices()
    rows = [cache.clips[i] for i in cached]
    positions = descriptor.split_indices(rows, knobs["split"], knobs["val_fraction"])
    empty = [name for name, members in positions.items() if not members]
    if empty:
        raise CacheError(f"the {knobs['split']} split of the cache in {root} has no clips in {', '.join(empty)} "
                         f"({len(rows)} clips cached); prepare more of the data set")
    if knobs["max_clips"] is not None:
        positions = {name: evenly_spaced(members, knobs["max_clips"]) for name, members in positions.items()}
    options = {k: knobs[k] for k in ("num_frames", "image_size", "augment", "spec_mask", "resident")}
    splits = {name: CachedSplit(cache, cached[members], **options) for name, members in positions.items()}
    meta = {"knobs": knobs, "root": str(root), "class_names": list(cache.meta["class_names"]),
            "cache": {"params": cache.meta["params"], "counts": cache.meta["counts"]},
            "sizes": {name: len(s) for name, s in splits.items()}}
    return AVDataset(name=descriptor.name, train=splits["train"], val=splits["val"], test=splits["test"],
                     class_names=list(cache.meta["class_names"]), meta=meta,
                     identity=identity_of(descriptor, knobs, cache.meta))


def evenly_spaced(members, count: int):
    """At most ``count`` of a split's ``members``, evenly spaced through it (so that, in a split ordered by class or
    speaker, every part keeps some), in their order."""
    members = np.asarray(members)
    if len(members) <= count:
        return members
    return members[np.unique(np.linspace(0, len(members) - 1, count).round().astype(int))]
