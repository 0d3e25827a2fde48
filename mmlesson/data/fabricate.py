"""Small fabricated copies of the real data sets' raw layouts, for tests, benchmarks and for trying
the preparation pipeline without downloading anything.

Each clip is a tone whose pitch depends on the class, and a video whose green channel depends on the
class and whose red channel encodes the second the frame belongs to (``red = 40 * second + 20``), so a
test can tell which frames the 1-fps sampler kept. Videos are written with codecs FFmpeg can encode
(FLV1 in FLV, MPEG-4 Part 2 in MP4): CREMA-D's own VP6F can be decoded but not written.
"""
from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

from .media import require_av

FLV_CODECS = ("flv1", "adpcm_swf")  # (video, audio) written into .flv files
MP4_CODECS = ("mpeg4", "aac")


def class_tone(label: int, seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A class-specific tone (220 Hz x (label + 1)) with a little noise, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = 0.5 * np.sin(2 * np.pi * 220.0 * (label + 1) * t) + 0.05 * rng.standard_normal(t.size)
    return np.clip(tone, -1, 1).astype(np.float32)


def class_frames(label: int, seconds: float, fps: float, width: int, height: int) -> np.ndarray:
    """uint8 ``[N, height, width, 3]`` frames: green = 30 x label + 30, red = 40 x second + 20."""
    count = int(round(seconds * fps))
    frames = np.zeros((count, height, width, 3), np.uint8)
    for i in range(count):
        frames[i, :, :, 0] = min(255, 40 * int(i / fps) + 20)
        frames[i, :, :, 1] = min(255, 30 * label + 30)
        frames[i, :, :, 2] = 128
    return frames


def write_wav(path, waveform: np.ndarray, sample_rate: int) -> None:
    """Mono 16-bit PCM WAV (CREMA-D's AudioWAV format), written with the standard library."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(waveform, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())


def write_video(path, frames: np.ndarray, fps: float, waveform: np.ndarray | None = None,
                sample_rate: int = 44100) -> None:
    """Write ``frames`` (and optionally a mono ``waveform``) to ``path``; codecs by suffix (.flv or .mp4)."""
    av = require_av()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    video_codec, audio_codec = FLV_CODECS if path.suffix == ".flv" else MP4_CODECS
    with av.open(str(path), "w") as container:
        video = container.add_stream(video_codec, rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        audio = None
        if waveform is not None:
            audio = container.add_stream(audio_codec, rate=sample_rate, layout="mono")
        for image in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            samples = waveform.astype(np.float32)
            chunk = audio.codec_context.frame_size or 1024
            for start in range(0, samples.size, chunk):
                block = samples[None, start:start + chunk]
                if block.shape[1] < chunk and audio.codec_context.frame_size:
                    block = np.pad(block, ((0, 0), (0, chunk - block.shape[1])))
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="flt", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = start
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)


def fabricate_cremad(raw, clip_ids: list[str], class_names: list[str], seconds: float = 2.5,
                     width: int = 96, height: int = 72, fps: float = 29.97) -> Path:
    """``raw/AudioWAV/<id>.wav`` (16 kHz mono PCM16) and ``raw/VideoFlash/<id>.flv`` for ``clip_ids``
    (CREMA-D names: ``<actor>_<sentence>_<emotion>_<level>``; the class is the emotion code)."""
    raw = Path(raw)
    for number, clip_id in enumerate(clip_ids):
        label = class_names.index(clip_id.split("_")[2])
        write_wav(raw / "AudioWAV" / f"{clip_id}.wav", class_tone(label, seconds, 16000, seed=number), 16000)
        write_video(raw / "VideoFlash" / f"{clip_id}.flv", class_frames(label, seconds, fps, width, height), fps,
                    class_tone(label, seconds, 44100, seed=number), 44100)
    return raw


def fabricate_videos(raw, clips: list[tuple[str, int]], seconds: float = 4.0, width: int = 64, height: int = 48,
                     fps: float = 10.0, suffix: str = ".mp4") -> Path:
    """``raw/<name><suffix>`` with a class tone and class frames for each ``(name, label)``: the layout of
    a user's Kinetics-Sounds (name = clip id) or AVE (name = YouTube id) videos."""
    raw = Path(raw)
    for number, (name, label) in enumerate(clips):
        write_video(raw / f"{name}{suffix}", class_frames(label, seconds, fps, width, height), fps,
                    class_tone(label, seconds, 44100, seed=number), 44100)
    return raw
