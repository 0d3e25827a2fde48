"""Reading raw media: frames at 1 frame per second and audio tracks, from any container and codec.

Decoding goes through PyAV (FFmpeg's libraries, bundled in its wheels). The decoder is chosen by
FFmpeg from the stream itself, so the same code reads CREMA-D's FLV files (VP6F video, which FFmpeg
can decode but not encode), the FLV1 / MPEG-4 files the tests fabricate, and the MP4 or WebM files of
a Kinetics-Sounds or AVE download. Nothing here names a codec.

Frame protocol (OGM-GE, Peng et al. CVPR 2022, as released): one frame per second, the first frame
whose timestamp reaches each whole second of the clip. Of those, up to ``max_frames`` evenly spaced ones are kept, each resized to ``size x size`` (the squash
resize of OGM-GE's evaluation transform; training crops are taken later, on the device).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import MMLessonError


class MediaError(MMLessonError):
    """A media file could not be read (missing, corrupt, truncated, or without the needed stream)."""


class DecoderMissing(MMLessonError):
    """PyAV (and with it FFmpeg's decoders) is not installed."""


def require_av():
    """The ``av`` module, or a one-line error that says what to install."""
    try:
        import av  # the `data` extra: a one-line error names it where it is missing
    except ImportError as error:
        raise DecoderMissing("reading videos needs PyAV (FFmpeg's decoders): pip install av "
                             "(or pip install 'mmlesson[data]')") from error
    return av


def open_media(path):
    av = require_av()
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path} does not exist")
    try:
        return av.open(str(path))
    except Exception as error:  # FFmpeg reports corrupt headers with many error types
        raise MediaError(f"cannot open {path.name}: {error}") from error


def evenly_spaced(count: int, keep: int) -> list[int]:
    """``keep`` indices spread evenly over ``range(count)`` (all of them when ``count <= keep``)."""
    if count <= keep:
        return list(range(count))
    return [int((j + 0.5) * count / keep) for j in range(keep)]


def read_frames(path, size: int, max_frames: int, start: float = 0.0, end: float | None = None,
                fps: float = 1.0) -> np.ndarray:
    """Frames of ``path`` at ``fps`` between ``start`` and ``end`` seconds: uint8 ``[K, size, size, 3]``
    (RGB), ``1 <= K <= max_frames``. Frame k is the first decoded frame at or after ``start + k / fps``."""
    with open_media(path) as container:
        if not container.streams.video:
            raise MediaError(f"{Path(path).name} has no video stream")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        declared = container.duration / 1e6 if container.duration else None  # from the header (FLV: onMetaData)
        picked, decoded, next_time, time = [], 0, start, 0.0
        try:
            for frame in container.decode(stream):
                time = frame.time if frame.time is not None else decoded / rate
                decoded += 1
                if end is not None and time >= end:
                    break
                if time + 0.5 / rate >= next_time:  # half a frame's tolerance for rounded timestamps
                    picked.append(frame.to_ndarray(format="rgb24", width=size, height=size, interpolation="AREA"))
                    next_time = start + len(picked) / fps
        except Exception as error:  # a truncated or corrupt stream
            if not picked:
                raise MediaError(f"cannot decode {Path(path).name}: {error}") from error
            # keep the frames decoded before the damage, as ffmpeg does
    if not picked:
        raise MediaError(f"{Path(path).name} has no video frame between {start:g} s and "
                         f"{'the end' if end is None else f'{end:g} s'}")
    if end is None and declared and time + 1 / rate < declared - max(1.0, 0.25 * declared):
        raise MediaError(f"{Path(path).name} is truncated: its video ends at {time + 1 / rate:.2f} s of the "
                         f"{declared:.2f} s its header declares")
    return np.stack([picked[i] for i in evenly_spaced(len(picked), max_frames)])


def read_audio_track(path, sample_rate: int, start: float = 0.0, end: float | None = None) -> np.ndarray:
    """The audio track of a video (or any media file), mono float32 at ``sample_rate``, cut to
    ``[start, end)`` seconds."""
    av = require_av()
    with open_media(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{Path(path).name} has no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        try:
            for frame in container.decode(container.streams.audio[0]):
                for resampled in resampler.resample(frame):
                    chunks.append(resampled.to_ndarray().reshape(-1))
            for resampled in resampler.resample(None):  # flush the resampler
                chunks.append(resampled.to_ndarray().reshape(-1))
        except Exception as error:
            if not chunks:
                raise MediaError(f"cannot decode the audio of {Path(path).name}: {error}") from error
    waveform = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    first = int(math.floor(start * sample_rate))
    last = None if end is None else int(math.floor(end * sample_rate))
    waveform = waveform[first:last]
    if waveform.size == 0:
        raise MediaError(f"{Path(path).name} has no audio between {start:g} s and "
                         f"{'the end' if end is None else f'{end:g} s'}")
    return waveform
