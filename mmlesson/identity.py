"""What a run *is*: its identity, its hash, and the directory the run store derives from it.

A run's identity is everything that determines its result and nothing else:

* ``data``: the resolved content of the data (``mmlesson.data.identity``): every SynthAV knob with
  its default filled in, or a real data set's knobs plus its cache's parameters and checksums, never
  the path that points at the cache;
* ``method`` and ``options``: the method's name and *its own* options only (``Method.identity_options``),
  so adding a method or an option leaves every other method's runs where they are;
* ``train``: the shared training fields (``TRAINING_FIELDS``), the seed among them.

Everything comes in as an argument: a run that reads other runs (frozen encoders) names them by their
identities, which whoever plans it passes to its method (``store.plan(..., upstream=...)``) or the
method reads from those runs' directories.

Device, precision switch, threads, progress bars and output paths are not part of it. The store
names a run ``RESULTS/<data>-<hash of data>/<method label>-<hash without seed>/seed<N>``, so runs
that differ only in their seed sit side by side, and every chapter and grid that asks for the same
run finds the same directory.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import ConfigError
from .files import plain

IDENTITY_FORMAT = 1
TRAINING_FIELDS = ("fusion", "width", "output_stride", "feature_scale", "epochs", "batch_size", "lr", "momentum",
                   "weight_decay", "lr_milestones", "lr_decay", "probe", "seed")
# Training fields added after the format was fixed, with the value every earlier run had: a run at that value
# keeps the identity (and the directory) it always had, so a store trained before the field existed stays valid.
LATER_FIELDS = {"output_stride": 32}


def digest(value) -> str:
    """sha256 of ``value`` as canonical JSON (sorted keys, no spaces): the same on every machine."""
    text = json.dumps(plain(value), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def run_identity(config, method, data_identity: dict) -> dict:
    """The identity of ``config`` trained by ``method`` (a ``Method`` instance) on ``data_identity``."""
    shared = config.to_dict()
    train = {name: shared[name] for name in TRAINING_FIELDS
             if not (name in LATER_FIELDS and shared[name] == LATER_FIELDS[name])}
    present = method.model_modalities(("audio", "visual"))  # a unimodal run has no other modality to scale
    train["feature_scale"] = [scale if m in present else 1.0 for m, scale in zip(("audio", "visual"),
                                                                                  train["feature_scale"])]
    return {"format": IDENTITY_FORMAT, "data": plain(data_identity), "method": config.method,
            "options": method.identity_options(), "train": train}


def identity_hash(identity: dict) -> str:
    """The run's key: the first 16 hex digits of the identity's digest."""
    return digest(identity)[:16]


def run_directory(results, identity: dict, label: str) -> Path:
    """Where the store keeps the run: ``RESULTS/<data>-<h>/<label>-<h>/seed<N>``."""
    data = identity["data"]
    without_seed = {**identity, "train": {k: v for k, v in identity["train"].items() if k != "seed"}}
    return (Path(results) / f"{data['name']}-{digest(data)[:8]}" / f"{label}-{digest(without_seed)[:8]}"
            / f"seed{identity['train']['seed']}")


def flat_differences(saved, wanted, prefix: str = "") -> list[str]:
    """Dotted names of the entries where two identities differ (``options.alpha``, ``data.knobs.seed``)."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        names = []
        for key in sorted(set(saved) | set(wanted)):
            names += flat_differences(saved.get(key), wanted.get(key), f"{prefix}{key}.")
        return names
    return [] if saved == wanted else [prefix.rstrip(".")]


def check_same_run(saved: dict | None, identity: dict, where: Path, what: str) -> None:
    """Refuse to resume or read back ``where`` when the run stored there is another run."""
    if saved is None:
        raise ConfigError(f"{where} holds a {what} written by an older mmlesson (no run identity); delete {where} "
                          f"or give another --out")
    differing = flat_differences(plain(saved), plain(identity))
    if differing:
        shown = ", ".join(differing[:6]) + (" ..." if len(differing) > 6 else "")
        raise ConfigError(f"{where} holds another run ({shown} differ); give another --out or delete {where}")
