"""SynthAV: a synthetic audio-visual classification data set, generated in about a second.

Generative process (Chapter 1 explains it with pictures). For a clip of class ``c``:

* **audio**, a spectrogram-like map [1, F, T]: a Gaussian band of energy centred on the class's own
  frequency bin, ``f_c = (c + 1/2) F / C`` (jittered by up to one bin), modulated over time by a
  smooth random positive envelope, scaled by ``audio_strength * audio_class_strength[c]``, plus
  Gaussian noise of standard deviation ``noise_std`` (1 by default). Class information sits in
  *where* the energy is: a linear read-out of the band energies finds it, so audio is the easy,
  fast-to-learn modality.
* **visual**, ``num_frames`` RGB frames [T, 3, H, W]: a sinusoidal grating whose *orientation*
  ``theta_c = pi c / C`` encodes the class (jittered per clip by ``orientation_jitter`` degrees,
  which makes neighbouring classes overlap and caps the visual accuracy), with a random phase that
  drifts from frame to frame and a random colour, scaled by
  ``visual_strength * visual_class_strength[c]``, plus the same Gaussian noise. The random phase
  makes the class-conditional mean of every pixel zero, so no linear read-out of pixels works: the
  encoder must learn oriented filters and rectify them. Visual is informative but slower to learn.
* **sample-level imbalance**: in a fraction ``uninformative_fraction`` of the clips, one modality
  (``uninformative_modality``: audio, visual or either at random) is pure noise.

Everything is drawn from ``torch.Generator`` streams seeded by ``seed`` and the split's name, so the
data set is bit-identical across runs and machines, and the test split does not change when the
training split grows.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch

from ..errors import ConfigError
from ..options import check_fields, option
from .loader import AVDataset, TensorSplit

SPLIT_STREAMS = {"train": 1, "val": 2, "test": 3}


@dataclass(frozen=True)
class SynthAVConfig:
    """The knobs of SynthAV. Defaults make audio dominant and visual learnable but slower."""

    num_classes: int = option(6, "number of classes", minimum=2)
    train_size: int = option(2400, "clips in the training split", minimum=1)
    val_size: int = option(600, "clips in the validation split", minimum=1)
    test_size: int = option(600, "clips in the test split", minimum=1)
    spec_bins: int = option(32, "frequency bins F of the spectrogram", minimum=1)
    spec_steps: int = option(32, "time steps T of the spectrogram", minimum=1)
    num_frames: int = option(2, "video frames per clip", minimum=1)
    frame_size: int = option(32, "frame height and width H = W", minimum=1)
    audio_strength: float = option(0.8, "amplitude of the class band in the spectrogram", minimum=0.0)
    visual_strength: float = option(0.35, "amplitude of the class grating in the frames", minimum=0.0)
    # Per-class multipliers of the strength (None: 1 for every class). Chapter 5 uses them for
    # per-category analysis: classes whose audio multiplier is low are "better seen than heard".
    audio_class_strength: tuple[float, ...] | None = option(None, "per-class multipliers of audio_strength",
                                                            minimum=0.0)
    visual_class_strength: tuple[float, ...] | None = option(None, "per-class multipliers of visual_strength",
                                                             minimum=0.0)
    uninformative_fraction: float = option(0.0, "fraction of clips in which one modality is pure noise",
                                           minimum=0.0)
    uninformative_modality: str = option("either", "which modality is noise in those clips",
                                         choices=("audio", "visual", "either"))
    noise_std: float = option(1.0, "standard deviation of the additive Gaussian noise (0: the clean signal)",
                              minimum=0.0)
    grating_cycles: float = option(4.0, "spatial frequency of the visual grating, cycles per frame", minimum=0.0)
    # Per-clip Gaussian jitter of the grating orientation (degrees). Neighbouring classes are
    # 180/C degrees apart, so the jitter makes some clips ambiguous and caps visual accuracy.
    orientation_jitter: float = option(8.0, "per-clip jitter of the grating orientation, degrees", minimum=0.0)
    seed: int = option(0, "seed of the generated data (not of training)", minimum=0)

    def __post_init__(self):
        check_fields(self, owner="SynthAV knob")
        if self.spec_bins < self.num_classes:
            raise ConfigError(f"SynthAV knob spec_bins ({self.spec_bins}) must be at least num_classes "
                              f"({self.num_classes})")
        for name in ("audio_class_strength", "visual_class_strength"):
            value = getattr(self, name)
            if value is not None and len(value) != self.num_classes:
                raise ConfigError(f"SynthAV knob {name} needs one value per class ({self.num_classes}), got {len(value)}")
        if self.uninformative_fraction > 1.0:
            raise ConfigError(f"SynthAV knob uninformative_fraction must lie in [0, 1], got {self.uninformative_fraction!r}")

    def class_strength(self, modality: str) -> torch.Tensor:
        values = getattr(self, f"{modality}_class_strength")
        return torch.ones(self.num_classes) if values is None else torch.tensor(values, dtype=torch.float32)

    @classmethod
    def from_knobs(cls, **knobs) -> "SynthAVConfig":
        """Build from keyword knobs, rejecting unknown names with the list of valid ones."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(knobs) - valid)
        if unknown:
            raise ConfigError(f"unknown SynthAV knob {unknown[0]!r}; valid knobs: {', '.join(sorted(valid))}")
        return cls(**knobs)


def smooth_envelope(n: int, length: int, knots: int, generator: torch.Generator) -> torch.Tensor:
    """Random positive envelopes [n, length]: ``knots`` uniform values in [0.3, 1], linearly interpolated."""
    values = 0.3 + 0.7 * torch.rand(n, 1, knots, generator=generator)
    return torch.nn.functional.interpolate(values, size=length, mode="linear", align_corners=True)[:, 0]


def make_audio(labels: torch.Tensor, amplitude: torch.Tensor, cfg: SynthAVConfig,
               generator: torch.Generator) -> torch.Tensor:
    """Class-specific frequency band x random envelope x amplitude + Gaussian noise: [N,1,F,T]."""
    n, bins, steps = len(labels), cfg.spec_bins, cfg.spec_steps
    band_width = bins / (3.0 * cfg.num_classes)
    jitter = torch.rand(n, generator=generator) * 2.0 - 1.0
    centre = (labels.float() + 0.5) * bins / cfg.num_classes + jitter  # [N]
    freq = torch.arange(bins, dtype=torch.float32)
    band = torch.exp(-0.5 * ((freq[None, :] - centre[:, None]) / band_width) ** 2)  # [N,F]
    envelope = smooth_envelope(n, steps, knots=5, generator=generator)  # [N,T]
    signal = amplitude[:, None, None] * band[:, :, None] * envelope[:, None, :]
    noise = cfg.noise_std * torch.randn(n, bins, steps, generator=generator)
    return (signal + noise).unsqueeze(1)


def make_visual(labels: torch.Tensor, amplitude: torch.Tensor, cfg: SynthAVConfig,
                generator: torch.Generator) -> torch.Tensor:
    """Class-oriented drifting grating in a random colour x amplitude + Gaussian noise: [N,T,3,H,W]."""
    n, frames, size = len(labels), cfg.num_frames, cfg.frame_size
    theta = math.pi * labels.float() / cfg.num_classes  # [N]
    theta = theta + math.radians(cfg.orientation_jitter) * torch.randn(n, generator=generator)
    phase = torch.rand(n, generator=generator) * 2 * math.pi
    drift = torch.rand(n, generator=generator) * 2 * math.pi / max(frames, 1)
    colour = 0.2 + torch.rand(n, 3, generator=generator)
    colour = colour / colour.norm(dim=1, keepdim=True) * math.sqrt(3.0)  # unit mean power per channel
    coords = torch.arange(size, dtype=torch.float32) / size
    y, x = torch.meshgrid(coords, coords, indexing="ij")  # [H,W]
    projection = x[None] * torch.cos(theta)[:, None, None] + y[None] * torch.sin(theta)[:, None, None]  # [N,H,W]
    time = torch.arange(frames, dtype=torch.float32)
    angle = (2 * math.pi * cfg.grating_cycles * projection[:, None]
             + phase[:, None, None, None] + drift[:, None, None, None] * time[None, :, None, None])  # [N,T,H,W]
    grating = torch.cos(angle)
    signal = amplitude[:, None, None, None, None] * colour[:, None, :, None, None] * grating[:, :, None]
    noise = cfg.noise_std * torch.randn(n, frames, 3, size, size, generator=generator)
    return signal + noise


def generate_split(cfg: SynthAVConfig, split: str) -> TensorSplit:
    """Generate one split deterministically from ``cfg.seed`` and the split's name."""
    size = getattr(cfg, f"{split}_size")
    generator = torch.Generator().manual_seed(cfg.seed * 100 + SPLIT_STREAMS[split])
    labels = torch.arange(size) % cfg.num_classes
    labels = labels[torch.randperm(size, generator=generator)]

    # Sample-level imbalance: which clips have an uninformative (pure-noise) modality.
    uninformative = torch.rand(size, generator=generator) < cfg.uninformative_fraction
    pick_audio = torch.rand(size, generator=generator) < 0.5
    if cfg.uninformative_modality == "audio":
        pick_audio = torch.ones(size, dtype=torch.bool)
    elif cfg.uninformative_modality == "visual":
        pick_audio = torch.zeros(size, dtype=torch.bool)
    audio_informative = ~(uninformative & pick_audio)
    visual_informative = ~(uninformative & ~pick_audio)

    audio_amp = cfg.audio_strength * cfg.class_strength("audio")[labels] * audio_informative.float()
    visual_amp = cfg.visual_strength * cfg.class_strength("visual")[labels] * visual_informative.float()
    audio = make_audio(labels, audio_amp, cfg, generator)
    visual = make_visual(labels, visual_amp, cfg, generator)
    extras = {"audio_informative": audio_informative, "visual_informative": visual_informative}
    return TensorSplit(audio=audio, visual=visual, label=labels, extras=extras)


def synthav_identity(root=None, **knobs) -> dict:
    """SynthAV's content is its generator's knobs, every default filled in."""
    return {"name": "synthav", "knobs": asdict(SynthAVConfig.from_knobs(**knobs))}


def load_synthav(root=None, **knobs) -> AVDataset:
    """Generate SynthAV with the given knobs (see ``SynthAVConfig``); ``root`` is unused."""
    cfg = SynthAVConfig.from_knobs(**knobs)
    splits = {name: generate_split(cfg, name) for name in SPLIT_STREAMS}
    class_names = [f"class{c}" for c in range(cfg.num_classes)]
    return AVDataset(name="synthav", class_names=class_names, meta={"knobs": asdict(cfg)},
                     identity=synthav_identity(**knobs), **splits)
