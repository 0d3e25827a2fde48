"""The audio front-end of the real data sets: a clip's waveform to the log-magnitude spectrogram the
encoders read (``prepare.py`` applies it to every clip of CREMA-D, Kinetics-Sounds and AVE).

OGM-GE's CREMA-D protocol (Peng et al., CVPR 2022, as released; the book's appendix "What the released code does"):
resample to 22,050 Hz mono, repeat the clip until it fills exactly 3 s (then cut), clip the samples to
[-1, 1], STFT with a 512-point centred Hann window and hop 353, and take ``log(|S| + 1e-7)``: a
257 x 188 array (1 + 512/2 frequency bins, 1 + 66150 // 353 frames), without normalisation.
"""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from .media import MediaError

SAMPLE_RATE = 22050
CLIP_SECONDS = 3.0
N_FFT = 512
HOP_LENGTH = 353
LOG_FLOOR = 1e-7


def load_waveform(path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A mono float32 waveform resampled to ``sample_rate`` (WAV, FLAC, OGG: what libsndfile reads).
    The same steps as ``librosa.load(path, sr=sample_rate)``, without its audioread fallback, so a
    corrupt file fails at once with libsndfile's reason."""
    import librosa  # the `audio` / `data` extras: only preparing real data needs them
    import soundfile

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"audio file {path} does not exist")
    waveform, native_rate = soundfile.read(path, dtype="float32", always_2d=True)
    declared = declared_wav_frames(path)
    if declared is not None and len(waveform) < declared:
        raise MediaError(f"{path.name} is truncated: {len(waveform)} of the {declared} samples its header declares")
    waveform = waveform.mean(axis=1)
    if native_rate != sample_rate:
        waveform = librosa.resample(waveform, orig_sr=native_rate, target_sr=sample_rate, res_type="soxr_hq")
    return waveform.astype(np.float32)


def declared_wav_frames(path: Path) -> int | None:
    """The sample count a PCM WAV header declares (None for other formats), to detect truncated files:
    libsndfile silently reads what is there."""
    if path.suffix.lower() != ".wav":
        return None
    try:
        with wave.open(str(path), "rb") as handle:
            return handle.getnframes()
    except (wave.Error, EOFError):
        return None  # not plain PCM (e.g. float WAV): nothing to compare with


def tile_to_length(waveform: np.ndarray, length: int) -> np.ndarray:
    """Repeat ``waveform`` end to end until it has ``length`` samples, then cut (a longer clip is cut)."""
    if waveform.size == 0:
        raise ValueError("the audio clip is empty (0 samples); it cannot be tiled to a fixed length")
    repeats = -(-length // waveform.size)  # ceiling division
    return np.tile(waveform, repeats)[:length]


def log_spectrogram(waveform: np.ndarray, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """``log(|STFT| + 1e-7)`` with a centred Hann window: ``[1 + n_fft // 2, frames]`` float32."""
    import librosa  # the `audio` / `data` extras (see load_waveform)

    magnitude = np.abs(librosa.stft(waveform, n_fft=n_fft, hop_length=hop_length, window="hann", center=True))
    return np.log(magnitude + LOG_FLOOR).astype(np.float32)


def fixed_length_spectrogram(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE, seconds: float = CLIP_SECONDS,
                             n_fft: int = N_FFT, hop_length: int = HOP_LENGTH) -> np.ndarray:
    """Tile ``waveform`` (already at ``sample_rate``) to ``seconds``, clip to [-1, 1], log spectrogram."""
    waveform = tile_to_length(waveform, int(round(seconds * sample_rate)))
    return log_spectrogram(np.clip(waveform, -1.0, 1.0), n_fft, hop_length)
