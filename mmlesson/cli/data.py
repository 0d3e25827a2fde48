"""``mmlesson data list | knobs [NAME] | prepare NAME --raw RAW --root ROOT``."""
from __future__ import annotations

import csv
import dataclasses
import sys
from collections import Counter
from dataclasses import MISSING
from pathlib import Path

from ..data import DATASETS, REAL_DATASETS, SynthAVConfig
from ..data.cache import CacheParams
from ..data.download import Downloader, RemoteFile
from ..data.prepare import prepare
from ..data.real import RealKnobs
from ..errors import ConfigError, check_choice
from .arguments import positive_int

def add_options(data_commands, debug) -> None:
    defaults = CacheParams("")
    prepare = data_commands.add_parser(
        "prepare", parents=[debug], help="build the tensor cache of a real data set from its raw media",
        description="Decode every clip of a real data set (audio: OGM-GE's log spectrogram; frames: 1 fps, up to K, "
                    "resized) into a memory-mapped cache in --root, in parallel; resumable, and a second run on a "
                    "complete cache does nothing. Clips with unusable media are listed in ROOT/rejected.csv, clips "
                    "absent from --raw in ROOT/missing.csv.")
    prepare.add_argument("name", choices=sorted(REAL_DATASETS), help="the data set")
    prepare.add_argument("--raw", required=True, metavar="RAW",
                         help="the raw media (CREMA-D: the directory holding AudioWAV/ and VideoFlash/; Kinetics-Sounds "
                              "and AVE: a directory of your videos, named by clip / YouTube id)")
    prepare.add_argument("--root", required=True, metavar="ROOT", help="where the cache is written")
    prepare.add_argument("--download", action="store_true",
                         help="CREMA-D only: first fetch the official media into RAW (parallel, resumable, sha256-checked)")
    prepare.add_argument("--base-url", default=None, help="where --download fetches from (default: the official CREMA-D "
                                                          "Git LFS media URL)")
    prepare.add_argument("--connections", type=positive_int, default=8, help="parallel downloads (default: %(default)s)")
    prepare.add_argument("--workers", type=positive_int, default=None, help="decoding processes (default: every core)")
    prepare.add_argument("--rebuild", action="store_true", help="delete an existing cache in ROOT and build it again")
    prepare.add_argument("--frame-size", type=int, default=None,
                         help=f"stored frame side in pixels (default: {defaults.frame_size})")
    prepare.add_argument("--frames-per-clip", type=int, default=None,
                         help=f"frames kept per clip, evenly spaced among the 1-fps frames (default: {defaults.frames_per_clip})")
    prepare.add_argument("--clip-seconds", type=float, default=None,
                         help="audio length the clips are tiled / cut to (default: 3 for CREMA-D, 10 for Kinetics-Sounds "
                              "and AVE)")
    prepare.add_argument("--progress", choices=("auto", "on", "off"), default="auto", help="progress bar")


def run_data_list() -> int:
    for name, source in DATASETS.items():
        print(f"{name:16s} {source.description}")
    return 0


def run_data_knobs(args) -> int:
    fields = knob_fields(args.name)
    print(f"{'SynthAV' if args.name == 'synthav' else args.name} knobs (name, default, meaning); set one with "
          f"mmlesson train --data-knob NAME=VALUE" + ("; the book's regimes: mmlesson recipes" if args.name ==
                                                     "synthav" else ""))
    rows = []
    for name, f in fields.items():
        choices = f.metadata.get("choices")
        rows.append((name, shown(field_default(f)),
                     f.metadata.get("help", "") + (f" (choices: {', '.join(map(str, choices))})" if choices else "")))
    print("\n".join(columns(rows)))
    return 0


def run_data_prepare(args) -> int:
    descriptor = REAL_DATASETS[args.name]
    failed = {}
    if args.download:
        if not descriptor.downloadable:
            raise ConfigError(f"{descriptor.title} videos are not redistributable: download them yourself and give "
                              f"their directory as --raw (without --download)")
        files = [RemoteFile(**row) for row in descriptor.manifest()]
        downloader = Downloader(args.base_url or descriptor.media_url, args.raw, connections=args.connections,
                                progress=args.progress)
        failed = downloader.fetch_all(files)
        print(f"download: {len(files) - len(failed)} of {len(files)} files in place and verified in {args.raw}")
    overrides = {name: value for name, value in (("frame_size", args.frame_size), ("clip_seconds", args.clip_seconds),
                                                 ("frames_per_clip", args.frames_per_clip)) if value is not None}
    summary = prepare(descriptor, args.raw, args.root, workers=args.workers, rebuild=args.rebuild,
                      progress=args.progress, **overrides)
    root = Path(args.root)
    print(f"{descriptor.name}: {summary['cached']} clips cached in {root} ({summary['processed']} processed now), "
          f"{summary['rejected']} rejected, {summary['missing']} of {summary['listed']} listed clips not in {args.raw}")
    if summary["rejected"]:
        with open(root / "rejected.csv") as handle:
            reasons = Counter(row["reason"].split(":")[0] for row in csv.DictReader(handle))
        print(f"  rejected clips and reasons: {root / 'rejected.csv'} ("
              + ", ".join(f"{count} x {reason}" for reason, count in reasons.most_common(5)) + ")")
    if summary["missing"]:
        print(f"  missing clips: {root / 'missing.csv'}")
    if failed:
        print(f"mmlesson: error: {len(failed)} downloads failed (listed in {Path(args.raw) / 'download_failed.csv'}); "
              f"run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


def knob_fields(data: str) -> dict:
    """``{knob: field}`` of data set ``data``: SynthAV's config, or the knobs of a prepared real data set."""
    check_choice("data set", data, DATASETS)
    return {f.name: f for f in dataclasses.fields(SynthAVConfig if data == "synthav" else RealKnobs)}


def field_default(f):
    return f.default if f.default is not MISSING else f.default_factory()


def shown(value, separator: str = ",") -> str:
    """A value as the command line takes it: a tuple joined by ``separator`` (``,`` in ``--data-knob
    NAME=1,2``, a space after a flag with several values), anything else as ``str``."""
    if isinstance(value, (tuple, list)):
        return separator.join(map(str, value)) if value else "none"
    return str(value)


def columns(rows: list[tuple], indent: str = "") -> list[str]:
    """``rows`` of strings as lines, every column but the last padded to its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)] if rows else []
    return [(indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]).rstrip()
            for row in rows]


def run(args) -> int:
    if args.data_command == "prepare":
        return run_data_prepare(args)
    if args.data_command == "knobs":
        return run_data_knobs(args)
    return run_data_list()
