"""The real-data audio front-end: OGM-GE's CREMA-D spectrogram on known signals and a real-layout
16 kHz PCM WAV file."""
import numpy as np
import pytest

librosa = pytest.importorskip("librosa")
soundfile = pytest.importorskip("soundfile")

from mmlesson.data.audio import HOP_LENGTH, LOG_FLOOR, N_FFT, SAMPLE_RATE, load_waveform, log_spectrogram, tile_to_length

from .data_fixtures import clip_spectrogram


def tone(frequency: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_spectrogram_matches_a_direct_librosa_computation_and_the_physics():
    signal = tone(440.0, 3.0, SAMPLE_RATE)
    spectrogram = log_spectrogram(signal)
    assert spectrogram.shape == (257, 188) and spectrogram.dtype == np.float32
    direct = np.log(np.abs(librosa.stft(signal, n_fft=512, hop_length=353)) + 1e-7)
    np.testing.assert_allclose(spectrogram, direct, rtol=0, atol=1e-5)
    peak_bins = spectrogram[:, 5:-5].argmax(axis=0)  # away from the padded edges
    assert np.all(peak_bins == round(440.0 * N_FFT / SAMPLE_RATE))  # bin 10 = 430.7 Hz, the nearest to 440
    silence = log_spectrogram(np.zeros(3 * SAMPLE_RATE, dtype=np.float32))
    assert np.allclose(silence, np.log(LOG_FLOOR))  # the floor keeps silence finite


def test_tiling_repeats_short_clips_and_cuts_long_ones():
    short = np.arange(5, dtype=np.float32)
    assert tile_to_length(short, 12).tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    assert tile_to_length(np.arange(20, dtype=np.float32), 12).tolist() == list(range(12))
    with pytest.raises(ValueError, match="empty"):
        tile_to_length(np.zeros(0, dtype=np.float32), 12)


def test_a_16khz_pcm_wav_is_resampled_tiled_and_clipped(tmp_path):
    path = tmp_path / "1001_DFA_ANG_XX.wav"  # CREMA-D's layout: AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav
    soundfile.write(path, tone(1000.0, 1.3, 16000, amplitude=0.5), 16000, subtype="PCM_16")
    waveform = load_waveform(path)
    assert abs(len(waveform) - round(1.3 * SAMPLE_RATE)) <= 1
    spectrogram = clip_spectrogram(path)
    assert spectrogram.shape == (257, 188)
    centre = spectrogram[:, 20:40].argmax(axis=0)
    assert np.all(np.abs(centre - 1000.0 * N_FFT / SAMPLE_RATE) <= 1)  # the tone survives resampling
    loud = tmp_path / "loud.wav"
    soundfile.write(loud, tone(300.0, 3.0, SAMPLE_RATE, amplitude=1.0), SAMPLE_RATE, subtype="FLOAT")
    clipped = np.clip(tone(300.0, 3.0, SAMPLE_RATE, amplitude=1.0), -1, 1)
    np.testing.assert_allclose(clip_spectrogram(loud), log_spectrogram(clipped), rtol=0, atol=1e-4)
    assert HOP_LENGTH == 353 and N_FFT == 512


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.wav does not exist"):
        load_waveform(tmp_path / "nowhere.wav")
