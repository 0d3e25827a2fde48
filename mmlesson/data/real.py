"""``mmlesson.data.load(name, root=ROOT, **knobs)`` for the real data sets: a prepared cache's splits.

Knobs (all optional; stored in metrics.json with the run):
``split`` the split scheme (CREMA-D: ``ogm_ge`` or ``speaker``; Kinetics-Sounds: ``ogm_ge``; AVE:
``official``), ``val_fraction`` (0.1: the share of train carved into validation where the lists give
none; for CREMA-D's speaker split, the share of actors held out for each of validation and test),
``num_frames`` per clip (1, OGM-GE's default), ``image_size`` of the frames the model sees (the
cache's frame size, 224 by default), ``augment`` (random resized crop + flip in training),
``spec_mask`` (0: off; else the largest masked fraction of each spectrogram axis), ``resident``
(``auto``, True or False: see ``CachedSplit``), ``verify`` (re-hash the array files).
"""
from __future__ import annotations

from ..errors import ConfigError
from .cache import CacheError, open_cache, read_meta
from .descriptor import RealDataset
from .loader import AVDataset, CachedSplit

EXECUTION_KNOBS = ("resident", "verify")  # where the arrays live and whether they are re-hashed: not content


def resolve_knobs(descriptor: RealDataset, split: str | None = None, val_fraction: float = 0.1, num_frames: int = 1,
                  image_size: int | None = None, augment: bool = True, spec_mask: float = 0.0, resident="auto",
                  verify: bool = False, **unknown) -> dict:
    """Every knob checked and with its default filled in."""
    if unknown:
        raise ConfigError(f"unknown {descriptor.name} knob(s) {', '.join(sorted(unknown))}; valid: split, val_fraction, "
                          f"num_frames, image_size, augment, spec_mask, resident, verify")
    split = split or descriptor.split_names[0]
    descriptor.check_split(split)
    if not isinstance(num_frames, int) or num_frames < 1:
        raise ConfigError(f"num_frames must be a positive integer, got {num_frames!r}")
    if image_size is not None and (not isinstance(image_size, int) or image_size < 8):
        raise ConfigError(f"image_size must be an integer >= 8, got {image_size!r}")
    if not 0 <= spec_mask < 1:
        raise ConfigError(f"spec_mask must be in [0, 1), got {spec_mask!r}")
    if resident not in ("auto", True, False):
        raise ConfigError(f"resident must be auto, True or False, got {resident!r}")
    return dict(split=split, val_fraction=val_fraction, num_frames=num_frames, image_size=image_size, augment=augment,
                spec_mask=spec_mask, resident=resident, verify=verify)


def missing_root(descriptor: RealDataset) -> CacheError:
    return CacheError(f"{descriptor.name} needs the root of a prepared cache (data_root / --data-root / root=); "
                      f"prepare one with: {descriptor.prepare_hint()}")


def identity_of(descriptor: RealDataset, knobs: dict, meta: dict) -> dict:
    content = {k: v for k, v in knobs.items() if k not in EXECUTION_KNOBS}
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
    options = {k: knobs[k] for k in ("num_frames", "image_size", "augment", "spec_mask", "resident")}
    splits = {name: CachedSplit(cache, cached[members], **options) for name, members in positions.items()}
    meta = {"knobs": knobs, "root": str(root), "class_names": list(cache.meta["class_names"]),
            "cache": {"params": cache.meta["params"], "counts": cache.meta["counts"]},
            "sizes": {name: len(s) for name, s in splits.items()}}
    return AVDataset(name=descriptor.name, train=splits["train"], val=splits["val"], test=splits["test"],
                     class_names=list(cache.meta["class_names"]), meta=meta,
                     identity=identity_of(descriptor, knobs, cache.meta))
