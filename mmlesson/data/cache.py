"""The on-disk tensor cache of a real data set: one directory, memory-mappable arrays, ``meta.json``.

Layout of ``ROOT`` (format version ``FORMAT_VERSION``)::

    meta.json       written last, atomically: format version, every preprocessing parameter, class
                    names, counts, sha256 of each array file. Its presence means "complete".
    build.json      while building only: the same parameters, so an interrupted build resumes.
    clips.csv       one row per listed clip: index, clip_id, label, group, official_split, start, end
    audio.npy       float16 [N, F, T]      log-magnitude spectrograms (audio.py's front-end)
    frames.npy      uint8 [N, K, S, S, 3]  up to K frames per clip at 1 fps, RGB, resized to S x S
    frame_count.npy uint8 [N]              how many of the K frame slots hold a real frame
    status.npy      uint8 [N]              0 pending, 1 cached, 2 rejected
    rejected.csv    clip_id, reason        clips not cached (a modality missing, corrupt media, ...)

Writing is resumable clip by clip: clips are marked cached in small groups, each only after its
arrays have been flushed to disk, so a build killed at any point (even by a power cut) resumes with
the clips not yet marked, and a reader never takes a partly written cache for a complete one (without
meta.json it refuses to load).
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, MMLessonError
from ..files import atomic_write, file_sha256

FORMAT_VERSION = 1
META_FILE, BUILD_FILE, CLIPS_FILE, REJECTED_FILE, MISSING_FILE = (
    "meta.json", "build.json", "clips.csv", "rejected.csv", "missing.csv")
ARRAY_FILES = {"audio": "audio.npy", "frames": "frames.npy", "frame_count": "frame_count.npy", "status": "status.npy"}
PENDING, CACHED, REJECTED = 0, 1, 2
CLIP_COLUMNS = ("clip_id", "label", "group", "official_split", "start", "end")


class CacheError(MMLessonError):
    """A cache is missing, incomplete, of another format version, or built with other parameters."""


class NoCache(CacheError, ConfigError):
    """The root given for a cache holds none (a usage error: exit code 2, like any path that is wrong)."""


def looks_like_raw_media(root: Path) -> bool:
    """Whether ``root`` holds raw media (CREMA-D's folders or video files) rather than a cache."""
    if (root / "AudioWAV").is_dir() or (root / "VideoFlash").is_dir():
        return True
    suffixes = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".flv", ".m4v", ".wav"}
    return any(path.suffix.lower() in suffixes for path in root.iterdir() if path.is_file())


@dataclass(frozen=True)
class CacheParams:
    """Every parameter that determines a cache's contents (stored in meta.json and compared on reuse)."""

    dataset: str
    sample_rate: int = 22050
    clip_seconds: float = 3.0
    n_fft: int = 512
    hop_length: int = 353
    frame_fps: float = 1.0
    frames_per_clip: int = 3
    frame_size: int = 224
    clips_sha256: str = ""  # digest of clips.csv: the listed clips, their labels and splits

    @property
    def audio_shape(self) -> tuple[int, int]:
        """(F, T) of one spectrogram: 1 + n_fft / 2 bins, 1 + samples // hop frames (centred STFT)."""
        return 1 + self.n_fft // 2, 1 + int(round(self.clip_seconds * self.sample_rate)) // self.hop_length

    @property
    def frames_shape(self) -> tuple[int, int, int, int]:
        return self.frames_per_clip, self.frame_size, self.frame_size, 3


def rebuild_command(dataset: str, root) -> str:
    return f"mmlesson data prepare {dataset} --raw RAW --root {root} --rebuild"


def clip_line(row: dict) -> str:
    """One clip's row of clips.csv (CLIP_COLUMNS, comma-separated)."""
    return ",".join(str(row[c]) for c in CLIP_COLUMNS)


def clips_digest(rows: list[dict]) -> str:
    return hashlib.sha256("\n".join(clip_line(row) for row in rows).encode()).hexdigest()


def write_json(path: Path, payload: dict) -> None:
    atomic_write(path, lambda handle: handle.write(json.dumps(payload, indent=1, sort_keys=True).encode()))


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise CacheError(f"{path} is unreadable ({type(error).__name__}); rebuild the cache with --rebuild") from error


def differing_parameters(stored: dict, params: CacheParams) -> list[str]:
    wanted = asdict(params)
    return sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))


def check_format(root: Path, record: dict, dataset: str) -> None:
    """Refuse a meta.json / build.json of another format version, naming the rebuild command."""
    if record.get("format_version") != FORMAT_VERSION:
        raise CacheError(f"{root} holds a cache of format version {record.get('format_version')}, this mmlesson reads "
                         f"version {FORMAT_VERSION}; rebuild it: {rebuild_command(dataset, root)}")


def check_compatible(root: Path, record: dict, params: CacheParams) -> None:
    """Refuse a cache of another format version or other parameters, naming the rebuild command."""
    check_format(root, record, params.dataset)
    differing = differing_parameters(record.get("params", {}), params)
    if differing == ["clips_sha256"]:
        raise CacheError(f"{root} holds a cache of another set of clips (RAW now holds other media than when it was "
                         f"built); rebuild it: {rebuild_command(params.dataset, root)}, or use another --root")
    if differing:
        raise CacheError(f"{root} holds a cache built with other parameters ({', '.join(differing)} differ); "
                         f"rebuild it: {rebuild_command(params.dataset, root)}, or use another --root")


class CacheWriter:
    """Creates or resumes the cache in ``root`` for ``params`` and ``clips`` (rows with CLIP_COLUMNS)."""

    def __init__(self, root, params: CacheParams, clips: list[dict], rebuild: bool = False, commit_every: int = 32):
        self.root, self.clips = Path(root), clips
        self.commit_every, self.unmarked = commit_every, []
        self.params = CacheParams(**{**asdict(params), "clips_sha256": clips_digest(clips)})
        if rebuild and self.root.exists():
            for name in (META_FILE, BUILD_FILE, CLIPS_FILE, REJECTED_FILE, *ARRAY_FILES.values()):
                (self.root / name).unlink(missing_ok=True)
        self.complete = (self.root / META_FILE).exists()
        if self.complete:
            check_compatible(self.root, read_json(self.root / META_FILE), self.params)
            return
        if (self.root / BUILD_FILE).exists():
            check_compatible(self.root, read_json(self.root / BUILD_FILE), self.params)
            self.arrays = {name: np.load(self.root / file, mmap_mode="r+") for name, file in ARRAY_FILES.items()}
        else:
            self.create()

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        count = len(self.clips)
        shapes = {"audio": ((count, *self.params.audio_shape), np.float16),
                  "frames": ((count, *self.params.frames_shape), np.uint8),
                  "frame_count": ((count,), np.uint8), "status": ((count,), np.uint8)}
        self.arrays = {}
        for name, (shape, dtype) in shapes.items():
            self.arrays[name] = np.lib.format.open_memmap(self.root / ARRAY_FILES[name], mode="w+", dtype=dtype,
                                                          shape=shape)
            self.arrays[name].flush()

        def write_clips(handle):
            handle.write((",".join(CLIP_COLUMNS) + "\n").encode())
            for row in self.clips:
                handle.write((clip_line(row) + "\n").encode())
        atomic_write(self.root / CLIPS_FILE, write_clips)
        (self.root / REJECTED_FILE).write_text("clip_id,reason\n")
        # build.json last: a directory without it holds nothing that can be resumed
        write_json(self.root / BUILD_FILE, {"format_version": FORMAT_VERSION, "params": asdict(self.params)})

    def pending(self) -> list[int]:
        return [] if self.complete else np.flatnonzero(self.arrays["status"] == PENDING).tolist()

    def write(self, index: int, spectrogram: np.ndarray, frames: np.ndarray) -> None:
        """Store one clip's arrays; it is marked cached at the next ``commit``."""
        count = len(frames)
        self.arrays["audio"][index] = spectrogram.astype(np.float16)
        self.arrays["frames"][index, :count] = frames
        self.arrays["frames"][index, count:] = frames[-1]  # empty slots repeat the last real frame
        self.arrays["frame_count"][index] = count
        self.unmarked.append(index)  # only once every array of the clip is written
        if len(self.unmarked) >= self.commit_every:
            self.commit()

    def commit(self) -> None:
        """Flush the written arrays to disk, then mark their clips cached (and flush that)."""
        if self.complete:
            return
        for name in ("audio", "frames", "frame_count"):
            self.arrays[name].flush()
        self.arrays["status"][self.unmarked] = CACHED
        self.arrays["status"].flush()
        self.unmarked = []

    def reject(self, index: int, reason: str) -> None:
        with open(self.root / REJECTED_FILE, "a") as handle:
            handle.write(f"{self.clips[index]['clip_id']},{reason.replace(',', ';').splitlines()[0]}\n")
        self.arrays["status"][index] = REJECTED

    def finish(self, extra: dict | None = None) -> dict:
        """Write meta.json (the completion mark) once every clip is cached or rejected."""
        if self.complete:
            return read_json(self.root / META_FILE)
        self.commit()
        status = np.asarray(self.arrays["status"])
        if (status == PENDING).any():
            raise CacheError(f"{int((status == PENDING).sum())} clips of {self.root} are not processed yet")
        self.tidy_rejected(status)
        for array in self.arrays.values():
            array.flush()
        labels = [int(row["label"]) for row, s in zip(self.clips, status) if s == CACHED]
        meta = {"format_version": FORMAT_VERSION, "params": asdict(self.params),
                "counts": {"listed": len(self.clips), "cached": int((status == CACHED).sum()),
                           "rejected": int((status == REJECTED).sum()),
                           "per_class": {str(c): labels.count(c) for c in sorted(set(labels))}},
                "sha256": {name: file_sha256(self.root / file) for name, file in ARRAY_FILES.items()},
                **(extra or {})}
        write_json(self.root / META_FILE, meta)
        (self.root / BUILD_FILE).unlink()
        self.complete = True
        return meta

    def tidy_rejected(self, status: np.ndarray) -> None:
        """Keep one line (the last reason) per rejected clip: a resumed build may have written two."""
        with open(self.root / REJECTED_FILE) as handle:
            reasons = {row["clip_id"]: row["reason"] for row in csv.DictReader(handle)}
        rejected = [self.clips[i]["clip_id"] for i in np.flatnonzero(status == REJECTED)]
        lines = "clip_id,reason\n" + "".join(f"{c},{reasons.get(c, 'unknown')}\n" for c in rejected)
        atomic_write(self.root / REJECTED_FILE, lambda handle: handle.write(lines.encode()))


@dataclass
class Cache:
    """A complete cache opened for reading; the arrays are memory-mapped (nothing is read yet)."""

    root: Path
    meta: dict
    clips: list[dict]
    audio: np.ndarray
    frames: np.ndarray
    frame_count: np.ndarray
    status: np.ndarray

    @property
    def params(self) -> CacheParams:
        return CacheParams(**self.meta["params"])

    def cached_indices(self) -> np.ndarray:
        return np.flatnonzero(self.status == CACHED)


def read_meta(root, dataset: str) -> dict:
    """meta.json of the complete ``dataset`` cache in ``root`` (format and data set checked)."""
    root = Path(root)
    prepare = f"mmlesson data prepare {dataset} --raw RAW --root {root}"
    if not root.is_dir():
        raise NoCache(f"no prepared {dataset} cache at {root}; prepare one with: {prepare}")
    if not (root / META_FILE).exists():
        if looks_like_raw_media(root):
            raise NoCache(f"{root} holds raw {dataset} media, not a prepared cache; build one elsewhere with: "
                          f"mmlesson data prepare {dataset} --raw {root} --root CACHE_DIR, then give --root CACHE_DIR")
        state = "an interrupted build" if (root / BUILD_FILE).exists() else "no cache"
        raise NoCache(f"{root} holds {state} of {dataset} (no meta.json); run it (again) to finish: {prepare}")
    meta = read_json(root / META_FILE)
    check_format(root, meta, dataset)  # before reading any field a later format may have changed
    if meta["params"]["dataset"] != dataset:
        raise CacheError(f"{root} holds a {meta['params']['dataset']} cache, not {dataset}; give the {dataset} root "
                         f"or prepare one with: {prepare}")
    return meta


def open_cache(root, dataset: str, verify: bool = False) -> Cache:
    """Open the complete cache of ``dataset`` in ``root``; ``verify`` re-hashes the array files."""
    root = Path(root)
    meta = read_meta(root, dataset)
    if verify:
        bad = [n for n, f in ARRAY_FILES.items() if file_sha256(root / f) != meta["sha256"][n]]
        if bad:
            raise CacheError(f"{root}: {', '.join(bad)} no longer match the checksums in meta.json; rebuild it: "
                             f"{rebuild_command(dataset, root)}")
    with open(root / CLIPS_FILE) as handle:
        clips = list(csv.DictReader(handle))
    arrays = {name: np.load(root / file, mmap_mode="r") for name, file in ARRAY_FILES.items()}
    return Cache(root=root, meta=meta, clips=clips, **arrays)
