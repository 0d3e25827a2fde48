"""Raw media -> tensor cache: ``mmlesson data prepare NAME --raw RAW --root ROOT``.

Clips are processed in parallel (one process per core by default), each into its spectrogram
(``audio.py``: OGM-GE's front-end) and its frames (``media.py``: 1 fps, up to K, resized), and
written into the cache (``cache.py``) by the main process as they arrive, so an interrupted run loses
at most the clips in flight. A clip with unreadable or missing media is not cached: it is listed in
``rejected.csv`` with the reason. Clips of the reference list that RAW does not hold at all are
listed in ``missing.csv`` and left out (a user's Kinetics-Sounds or AVE copy is rarely complete).
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..progress import make_progress, progress_enabled
from ..files import atomic_write
from .audio import fixed_length_spectrogram, load_waveform
from .cache import MISSING_FILE, CacheParams, CacheWriter
from .descriptor import ClipMedia, RealDataset
from .media import MediaError, read_audio_track, read_frames, require_av


def process_clip(media: ClipMedia, start: float, end: float | None, params: CacheParams) -> tuple[np.ndarray, np.ndarray]:
    """One clip's (spectrogram [F, T] float32, frames [K, S, S, 3] uint8); MediaError if unusable."""
    if media.video is None:
        raise MediaError("no video file")
    if media.audio_from_video:
        waveform = read_audio_track(media.video, params.sample_rate, start, end)
    elif media.audio is None:
        raise MediaError("no audio file")
    else:
        waveform = load_waveform(media.audio, params.sample_rate)
        if waveform.size == 0:
            raise MediaError(f"{media.audio.name} holds no audio samples")
    spectrogram = fixed_length_spectrogram(waveform, params.sample_rate, params.clip_seconds, params.n_fft,
                                           params.hop_length)
    frames = read_frames(media.video, params.frame_size, params.frames_per_clip, start, end, params.frame_fps)
    return spectrogram, frames


def process_task(task: tuple) -> tuple[int, object, object]:
    """Worker entry point: ``(index, media, start, end, params)`` -> ``(index, spectrogram, frames)``,
    or ``(index, None, reason)`` when the clip cannot be used."""
    index, media, start, end, params = task
    try:
        spectrogram, frames = process_clip(media, start, end, params)
    except MediaError as error:
        return index, None, str(error)
    except Exception as error:  # corrupt audio: soundfile, audioread and librosa raise their own types
        return index, None, f"{type(error).__name__}: {error}".splitlines()[0]
    return index, spectrogram, frames


def clip_window(row: dict) -> tuple[float, float | None]:
    """The ``[start, end)`` seconds a clip uses (AVE: its event; otherwise the whole file)."""
    return float(row["start"] or 0), (float(row["end"]) if str(row["end"]) != "" else None)


def write_missing(root: Path, missing: list[dict]) -> None:
    lines = "clip_id,official_split\n" + "".join(f"{row['clip_id']},{row['official_split']}\n" for row in missing)
    atomic_write(root / MISSING_FILE, lambda handle: handle.write(lines.encode()))


def process_chunk(tasks: list[tuple]) -> list[tuple]:
    return [process_task(task) for task in tasks]


def run_tasks(tasks: list[tuple], workers: int, on_result, bar, chunk: int = 8) -> None:
    """Run ``process_task`` over ``tasks`` on ``workers`` processes, ``chunk`` clips per hand-over,
    calling ``on_result`` in this process as each chunk finishes (at most ``2 x workers`` chunks in
    flight, so memory stays flat)."""
    if workers <= 1:
        for task in tasks:
            on_result(*process_task(task))
            bar.update(1)
        return
    # fork where the platform has it: the workers run only NumPy, librosa and PyAV code, and unlike spawn
    # fork does not re-run the caller's script (which breaks scripts without a __main__ guard)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    chunks = iter([tasks[i:i + chunk] for i in range(0, len(tasks), chunk)])
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        in_flight = set()
        try:
            while True:
                while len(in_flight) < 2 * workers:
                    part = next(chunks, None)
                    if part is None:
                        break
                    in_flight.add(pool.submit(process_chunk, part))
                if not in_flight:
                    return
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    for result in future.result():
                        on_result(*result)
                        bar.update(1)
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise


def prepare(descriptor: RealDataset, raw, root, workers: int | None = None, rebuild: bool = False,
            progress: str = "auto", **overrides) -> dict:
    """Build (or finish, or confirm) the cache of ``descriptor`` in ``root`` from the media in ``raw``.
    ``overrides``: CacheParams fields (``frame_size``, ``frames_per_clip``, ``clip_seconds``, ...).
    Returns a summary dict; a complete cache with the same parameters is left untouched."""
    raw, root = Path(raw), Path(root)
    unknown = sorted(set(overrides) - set(asdict(descriptor.params)) - {"dataset"})
    if unknown:
        raise ConfigError(f"unknown preprocessing parameter(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(k for k in asdict(descriptor.params) if k not in ('dataset', 'clips_sha256'))}")
    params = replace(descriptor.params, **overrides)
    if params.frames_per_clip < 1 or params.frame_size < 8 or params.clip_seconds <= 0:
        raise ConfigError("frames_per_clip must be >= 1, frame_size >= 8 and clip_seconds > 0")
    if not raw.is_dir():
        raise ConfigError(f"--raw {raw} is not a directory; give {descriptor.expected_layout()}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {workers}")
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--root {root} is a file; give a directory for the cache")
    if root.resolve() == raw.resolve():
        raise ConfigError(f"--root and --raw are the same directory ({root}); give the cache its own directory")
    require_av()  # fail before any work if no decoder is installed
    listed = descriptor.list_clips()
    media = descriptor.find_media(raw, listed)
    if not media:
        raise ConfigError(f"no {descriptor.title} media found under {raw}; give {descriptor.expected_layout()}")
    present = [row for row in listed if row["clip_id"] in media]
    missing = [row for row in listed if row["clip_id"] not in media]
    writer = CacheWriter(root, params, present, rebuild=rebuild)
    write_missing(root, missing)
    pending = writer.pending()
    tasks = [(i, media[present[i]["clip_id"]], *clip_window(present[i]), writer.params) for i in pending]

    def on_result(index, spectrogram, frames_or_reason):
        if spectrogram is None:
            writer.reject(index, frames_or_reason)
        else:
            writer.write(index, spectrogram, frames_or_reason)

    workers = workers or os.cpu_count() or 1
    if tasks:  # warm the audio stack once here: forked workers inherit it instead of each loading librosa's kernels
        fixed_length_spectrogram(np.zeros(16, np.float32), params.sample_rate, 0.05, params.n_fft, params.hop_length)
    bar = make_progress(len(tasks), f"preparing {descriptor.name}", progress_enabled(progress))
    with bar:
        try:
            run_tasks(tasks, min(workers, max(1, len(tasks))), on_result, bar)
        finally:  # interrupted or not, keep every clip written so far
            writer.commit()
    meta = writer.finish(extra={"class_names": descriptor.class_names(), "title": descriptor.title})
    return {"root": str(root), "processed": len(tasks), "listed": len(listed), "missing": len(missing),
            "cached": meta["counts"]["cached"], "rejected": meta["counts"]["rejected"], "meta": meta}
