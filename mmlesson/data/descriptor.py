"""What the pipeline needs to know about one real data set (CREMA-D, Kinetics-Sounds, AVE).

A descriptor lists the clips from the reference files shipped in ``mmlesson/data/reference`` (splits,
labels, event times), finds each clip's media in a user's raw directory, and turns a cache into the
train / validation / test splits a run asks for. ``prepare.py`` builds caches from descriptors and
``loader.py`` reads them; the three small subclasses live in ``cremad.py``, ``kinetics_sounds.py``
and ``ave.py``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .cache import CacheParams

REFERENCE_DIR = Path(__file__).with_name("reference")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".flv", ".m4v")


@dataclass(frozen=True)
class ClipMedia:
    """Where one clip's media are. ``audio_from_video``: the sound is the video's own track (Kinetics-
    Sounds, AVE); else it is the separate file ``audio`` (CREMA-D's WAV), and a missing one rejects the clip."""

    video: Path | None
    audio: Path | None = None
    audio_from_video: bool = True


class RealDataset:
    """Base class; subclasses set the attributes and implement ``list_clips`` and ``find_media``."""

    name: str = ""
    title: str = ""
    description: str = ""
    split_names: tuple[str, ...] = ("official",)
    params: CacheParams = CacheParams("")
    downloadable: bool = False

    def class_names(self) -> list[str]:
        raise NotImplementedError

    def list_clips(self) -> list[dict]:
        """Every clip of the reference lists: rows with ``cache.CLIP_COLUMNS``."""
        raise NotImplementedError

    def expected_layout(self) -> str:
        """What ``--raw`` should hold, for error messages."""
        raise NotImplementedError

    def video_name(self, row: dict) -> str:
        """The file name (without suffix) of a clip's video in a user's directory."""
        return row["clip_id"]

    def find_media(self, raw: Path, clips: list[dict]) -> dict[str, ClipMedia]:
        """``clip_id -> ClipMedia`` for the clips of which ``raw`` holds at least one file. Default: one
        video per clip, named ``video_name(row)`` with any video suffix, anywhere under ``raw``."""
        videos = index_videos(raw)
        return {row["clip_id"]: ClipMedia(video=videos[self.video_name(row)])
                for row in clips if self.video_name(row) in videos}

    def split_indices(self, clips: list[dict], split: str, val_fraction: float) -> dict[str, list[int]]:
        """Positions in ``clips`` (the cached rows) of the train, val and test splits. Default: the
        reference lists' own splits (validation carved from train where they have none)."""
        self.check_split(split)
        return official_splits(clips, val_fraction)

    def check_split(self, split: str) -> None:
        if split not in self.split_names:
            raise ConfigError(f"unknown split {split!r} for {self.name}; choose one of: {', '.join(self.split_names)}")

    def prepare_hint(self) -> str:
        return f"mmlesson data prepare {self.name} --raw RAW --root ROOT"


def stable_key(text: str) -> str:
    """A fixed pseudo-random order of names that does not depend on Python's hash seed."""
    return hashlib.sha256(text.encode()).hexdigest()


def carve_validation(clips: list[dict], train: list[int], fraction: float) -> tuple[list[int], list[int]]:
    """Split ``train`` into (train, val), taking ``round(fraction * n_c)`` clips of each class c for
    validation (at least one where a class has two or more and ``fraction`` > 0), in a fixed order
    given by the sha256 of the clip ids (the same on every machine)."""
    if not 0 <= fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {fraction!r}")
    by_class: dict[str, list[int]] = {}
    for position in train:
        by_class.setdefault(clips[position]["label"], []).append(position)
    val = []
    for members in by_class.values():
        members = sorted(members, key=lambda p: stable_key(clips[p]["clip_id"]))
        take = int(round(fraction * len(members)))
        if fraction > 0 and len(members) >= 2:
            take = max(1, take)
        val += members[:take]
    chosen = set(val)
    return [p for p in train if p not in chosen], sorted(val)


def official_splits(clips: list[dict], val_fraction: float) -> dict[str, list[int]]:
    """The reference lists' own splits; a validation split is carved from train when they have none."""
    by_split = {"train": [], "val": [], "test": []}
    for position, row in enumerate(clips):
        by_split[row["official_split"]].append(position)
    if not by_split["val"]:
        by_split["train"], by_split["val"] = carve_validation(clips, by_split["train"], val_fraction)
    return by_split


def index_videos(raw: Path) -> dict[str, Path]:
    """``stem -> path`` of every video file under ``raw`` (any depth, any of ``VIDEO_SUFFIXES``)."""
    found = {}
    for path in sorted(raw.rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            found.setdefault(path.stem, path)
    return found


def read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
