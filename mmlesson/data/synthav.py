"""SynthAV: a synthetic audio-visual classification data set, generated in about a second.

Generative process (Chapter 1 explains it with pictures). For a clip of class ``c``:

* **audio**, a spectrogram-like map [1, F, T]: a Gaussian band of energy centred on the class's own
  frequency bin, ``f_c = (c + 1/2) F / C`` (jittered by up to half a bin), modulated over time by a
  smooth random positive envelope, scaled by the clip's audio amplitude, plus Gaussian noise of
  standard deviation ``audio_noise``. Class information sits in *where* the energy is: a linear
  read-out of the band energies finds it, so audio is the easy, fast-to-learn modality.
* **visual**, ``num_frames`` RGB frames [T, 3, H, W]: a sinusoidal grating whose *orientation*
  ``theta_c = pi c / C`` encodes the class (jittered per clip by ``orientation_jitter`` degrees),
  with a random phase that drifts from frame to frame and a random colour, scaled by the clip's
  visual amplitude, plus Gaussian noise of standard deviation ``visual_noise``. The random phase
  makes the class-conditional mean of every pixel zero, so no linear read-out of pixels works: the
  encoder must learn oriented filters and rectify them. Visual is informative but slower to learn.
* **confusion**: each modality shows the pattern of class ``c`` itself, except with probability
  ``<modality>_confusion[c]``, when it shows the pattern of another class drawn uniformly (a clip
  whose voice sounds sad while the face is neutral). This, not the pixel noise, is what limits the
  best possible accuracy: per-class graded capability of each modality.
* **amplitudes**: ``<modality>_strength x <modality>_class_strength[c] x q``, where ``q`` is the
  clip's *quality*, ``exp(quality_std z)`` with ``z ~ N(0, 1)`` shared by both modalities (a clip
  recorded badly is bad in both), and 0 where the modality is uninformative.
* **sample-level imbalance**: in a fraction ``uninformative_fraction`` of the clips, one modality
  (``uninformative_modality``: audio, visual or either at random) is pure noise.
* **speakers** (``speakers`` > 0; the book's severe regime): every split has its own ``speakers``
  speakers, and each clip is spoken by one of them. A speaker has a *voice*, a random profile of
  strength ``voice_strength`` in ``voice_bins`` extra frequency bins above the class bands, and a fixed
  way of sounding the classes: ``audio_confusion`` of the speakers (rounded to a whole number) shift
  every class's band by their own offset, ``c -> c + k (mod C)``, the others sound every class as
  itself. On the training clips the audio then explains every label (voice and band together decide
  it), and a network fits it early and completely; on the unseen speakers of validation and test, a
  shifted speaker's clips show a wrong band, so what was learnt about the training speakers' shifts
  does not transfer. This is the mechanism of modality imbalance that the greedy-learner analysis
  (Wu, Jastrzebski, Cho and Geras, "Characterizing and Overcoming the Greedy Nature of Learning in
  Multi-modal Deep Neural Networks", ICML 2022) and the modality-competition analysis (Huang, Lin, Du,
  Du and Huang, "Modality Competition: What Makes Joint Training of Multi-modal Network Fail in Deep
  Learning? (Provably)", ICML 2022) describe, and that Wang, Tran and Feiszli ("What Makes Training
  Multi-Modal Classification Networks Hard?", CVPR 2020) measured as overfitting: the modality that
  fits the training set first drives the shared residual of the fused loss to zero, and the other
  encoder, slower to learn, stops receiving gradient (Chapter 1, Eq. 1). On CREMA-D the audio network
  fits its training clips by detail of each recording; here the detail is the speaker's.
* **labels**: ``class_imbalance`` r makes training and validation class frequencies fall
  geometrically from class 0 to class C-1 by a factor r in all (the test split stays balanced);
  ``label_noise`` replaces that fraction of the *training* labels by another class at random.

``oracle_accuracy`` is the accuracy of the Bayes rule of an observer that perceives perfectly which
pattern each modality shows (or that it shows none): ``argmax_c P(c) prod_m P(pattern_m | c)``,
computed exactly over the generative process, from audio alone, from visual alone and from both.
With speakers, ``P(pattern | c)`` is that of a speaker never heard before (the test split's): the
share of shifted speakers, spread evenly over the other classes.
Pixel noise only makes the patterns harder to learn to perceive, so no model can beat this bound,
and a model that perceives well approaches it.

Everything is drawn from ``torch.Generator`` streams seeded by ``seed`` and the split's name, so the
data set is bit-identical across runs and machines, and the test split does not change when the
training split grows.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch

from ..errors import ConfigError, did_you_mean
from ..options import check_fields, option
from .loader import AVDataset, TensorSplit

SPLIT_STREAMS = {"train": 1, "val": 2, "test": 3}
SPEAKER_STREAM = 50  # the speakers' draws have their own stream: a regime without speakers is unchanged


# Regime A's confusion: audio confuses the last third of the classes (0.7) and hardly the others (0.05);
# the frames confuse every class a little (0.2).
DEFAULT_CONFUSION = {
    "audio_confusion": lambda classes: tuple(0.05 if c < classes - classes // 3 else 0.7 for c in range(classes)),
    "visual_confusion": lambda classes: (0.2,) * classes,
}


@dataclass(frozen=True)
class SynthAVConfig:
    """The knobs of SynthAV (module docstring). The defaults are regime A, the mild one: audio is easy
    (learnt in an epoch or two) but confuses classes 4 and 5, the visual grating is slower to learn
    and the better modality alone, together they leave headroom (``oracle_accuracy``: audio 0.73,
    visual 0.80, both 0.87), and joint training beats both unimodal models. The severe regime, where
    the audio fits its training clips and the visual encoder starves as on CREMA-D, adds speakers
    (recipes ``synthav-severe``, ``synthav-severe-v2``). Every split trains in seconds on one CPU thread."""

    num_classes: int = option(6, "number of classes", minimum=2)
    train_size: int = option(1600, "clips in the training split", minimum=1)
    val_size: int = option(800, "clips in the validation split", minimum=1)
    test_size: int = option(4000, "clips in the test split", minimum=1)
    spec_bins: int = option(16, "frequency bins F of the spectrogram", minimum=1)
    spec_steps: int = option(16, "time steps T of the spectrogram", minimum=1)
    num_frames: int = option(1, "video frames per clip", minimum=1)
    frame_size: int = option(16, "frame height and width H = W", minimum=1)
    audio_strength: float = option(1.5, "amplitude of the class band in the spectrogram", minimum=0.0)
    visual_strength: float = option(0.7, "amplitude of the class grating in the frames", minimum=0.0)
    # Per-class multipliers of the strength (None: 1 for every class), e.g. classes whose audio
    # multiplier is low are "better seen than heard" (Chapters 2 and 5).
    audio_class_strength: tuple[float, ...] | None = option(None, "per-class multipliers of audio_strength",
                                                            minimum=0.0)
    visual_class_strength: tuple[float, ...] | None = option(None, "per-class multipliers of visual_strength",
                                                             minimum=0.0)
    audio_confusion: tuple[float, ...] | None = option((0.05, 0.05, 0.05, 0.05, 0.7, 0.7), "per class: probability "
                                                       "that the audio shows another class's pattern (None: 0)",
                                                       minimum=0.0)
    visual_confusion: tuple[float, ...] | None = option((0.2,) * 6, "per class: probability that the frames show "
                                                        "another class's pattern (None: 0)", minimum=0.0)
    audio_noise: float = option(1.0, "standard deviation of the audio's Gaussian noise", minimum=0.0)
    visual_noise: float = option(1.0, "standard deviation of the frames' Gaussian noise", minimum=0.0)
    quality_std: float = option(0.0, "spread of the clip quality exp(quality_std z) shared by both modalities "
                                     "(0: every clip alike)", minimum=0.0)
    uninformative_fraction: float = option(0.0, "fraction of clips in which one modality is pure noise",
                                           minimum=0.0)
    uninformative_modality: str = option("either", "which modality is noise in those clips",
                                         choices=("audio", "visual", "either"))
    label_noise: float = option(0.0, "fraction of training labels replaced by another class at random",
                                minimum=0.0)
    class_imbalance: float = option(1.0, "ratio of the most to the least frequent class in train and "
                                         "validation (1: balanced; test is always balanced)", minimum=1.0)
    grating_cycles: float = option(3.0, "spatial frequency of the visual grating, cycles per frame", minimum=0.0)
    # Per-clip Gaussian jitter of the grating orientation (degrees). Neighbouring classes are
    # 180/C degrees apart, so the jitter makes some clips ambiguous and caps visual accuracy.
    orientation_jitter: float = option(8.0, "per-clip jitter of the grating orientation, degrees", minimum=0.0)
    # Speakers (module docstring): every split has its own, so val and test speakers are never heard in training.
    speakers: int = option(0, "speakers per split, each with a voice and a fixed way of sounding each class "
                              "(0: no speakers; audio confusion is then drawn clip by clip)", minimum=0)
    voice_strength: float = option(1.0, "amplitude of a speaker's voice in the extra voice bins", minimum=0.0)
    voice_bins: int = option(8, "extra frequency bins, above the class bands, that carry the speaker's voice",
                             minimum=1)
    eval_speakers: int = option(0, "speakers in each of the validation and test splits (0: as many as `speakers`); "
                                   "many unseen voices make a test split's audio errors many small independent "
                                   "blocks instead of a few large ones", minimum=0)
    seed: int = option(0, "seed of the generated data (not of training)", minimum=0)

    def __post_init__(self):
        check_fields(self, owner="SynthAV knob")
        for name in ("audio_confusion", "visual_confusion"):  # the defaults follow the number of classes
            if getattr(self, name) == DEFAULT_CONFUSION[name](6) and self.num_classes != 6:
                object.__setattr__(self, name, DEFAULT_CONFUSION[name](self.num_classes))
        if self.spec_bins < self.num_classes:
            raise ConfigError(f"SynthAV knob spec_bins ({self.spec_bins}) must be at least num_classes "
                              f"({self.num_classes})")
        for name in ("audio_class_strength", "visual_class_strength", "audio_confusion", "visual_confusion"):
            value = getattr(self, name)
            if value is not None and len(value) != self.num_classes:
                raise ConfigError(f"SynthAV knob {name} needs one value per class ({self.num_classes}), got {len(value)}")
            if value is not None and name.endswith("confusion") and max(value) > 1.0:
                raise ConfigError(f"SynthAV knob {name} holds probabilities in [0, 1], got {value!r}")
        if self.speakers and self.audio_confusion is not None and len(set(self.audio_confusion)) > 1:
            raise ConfigError(f"SynthAV knob audio_confusion must be the same for every class with speakers "
                              f"(a speaker sounds every class shifted, or none), got {self.audio_confusion!r}")
        for name in ("uninformative_fraction", "label_noise"):
            if getattr(self, name) > 1.0:
                raise ConfigError(f"SynthAV knob {name} must lie in [0, 1], got {getattr(self, name)!r}")

    def class_strength(self, modality: str) -> torch.Tensor:
        values = getattr(self, f"{modality}_class_strength")
        return torch.ones(self.num_classes) if values is None else torch.tensor(values, dtype=torch.float32)

    def confusion(self, modality: str) -> torch.Tensor:
        """``P(pattern k | class c)`` of ``modality`` as a [C, C] matrix (rows: classes)."""
        values = getattr(self, f"{modality}_confusion")
        if modality == "audio" and self.speakers and values is not None:  # the realised share among test speakers
            values = (shifted_speakers(self, "test") / split_speakers(self, "test"),) * self.num_classes
        wrong = torch.zeros(self.num_classes, dtype=torch.float64) if values is None else torch.tensor(values, dtype=torch.float64)
        matrix = (wrong / (self.num_classes - 1))[:, None].expand(-1, self.num_classes).clone()
        matrix.diagonal().copy_(1 - wrong)
        return matrix

    def class_frequencies(self, split: str) -> torch.Tensor:
        """Class probabilities of ``split``: geometric from 1 to 1/class_imbalance (test: uniform)."""
        if split == "test" or self.class_imbalance == 1.0:
            return torch.full((self.num_classes,), 1.0 / self.num_classes, dtype=torch.float64)
        ratio = self.class_imbalance ** (-torch.arange(self.num_classes, dtype=torch.float64) / (self.num_classes - 1))
        return ratio / ratio.sum()

    @classmethod
    def from_knobs(cls, **knobs) -> "SynthAVConfig":
        """Build from keyword knobs, rejecting unknown names with the list of valid ones."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(knobs) - valid)
        if unknown:
            raise ConfigError(f"unknown SynthAV knob {unknown[0]!r}{did_you_mean(unknown[0], sorted(valid))}; valid "
                              f"knobs: {', '.join(sorted(valid))} (mmlesson data knobs: each with its default and "
                              f"meaning)")
        return cls(**knobs)


def smooth_envelope(n: int, length: int, knots: int, generator: torch.Generator) -> torch.Tensor:
    """Random positive envelopes [n, length]: ``knots`` uniform values in [0.3, 1], linearly interpolated."""
    values = 0.3 + 0.7 * torch.rand(n, 1, knots, generator=generator)
    return torch.nn.functional.interpolate(values, size=length, mode="linear", align_corners=True)[:, 0]


def draw_nuisances(n: int, cfg: SynthAVConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Everything about ``n`` clips except their class: what the oracle is told."""
    frames = cfg.num_frames
    colour = 0.2 + torch.rand(n, 3, generator=generator)
    return {
        "band_jitter": torch.rand(n, generator=generator) - 0.5,  # up to half a bin either way
        "envelope": smooth_envelope(n, cfg.spec_steps, knots=5, generator=generator),  # [N,T]
        "orientation_jitter": math.radians(cfg.orientation_jitter) * torch.randn(n, generator=generator),
        "phase": torch.rand(n, generator=generator) * 2 * math.pi,
        "drift": torch.rand(n, generator=generator) * 2 * math.pi / max(frames, 1),
        "colour": colour / colour.norm(dim=1, keepdim=True) * math.sqrt(3.0),  # unit mean power per channel
        "quality": torch.exp(cfg.quality_std * torch.randn(n, generator=generator)),
    }


def draw_patterns(labels: torch.Tensor, cfg: SynthAVConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The class whose pattern each modality shows: the clip's own, or another with the modality's
    per-class confusion probability."""
    patterns = {}
    for m in ("audio", "visual"):
        wrong = torch.rand(len(labels), generator=generator, dtype=torch.float64) < (
            1 - cfg.confusion(m).diagonal())[labels]
        shift = torch.randint(1, cfg.num_classes, (len(labels),), generator=generator)
        patterns[m] = torch.where(wrong, (labels + shift) % cfg.num_classes, labels)
    return patterns


def split_speakers(cfg: SynthAVConfig, split: str) -> int:
    """How many speakers ``split`` has: ``speakers`` in training, ``eval_speakers`` (if set) in validation and test."""
    return cfg.eval_speakers if split != "train" and cfg.eval_speakers else cfg.speakers


def shifted_speakers(cfg: SynthAVConfig, split: str = "train") -> int:
    """How many of ``split``'s speakers sound every class as another: ``audio_confusion`` of them, rounded."""
    return round(cfg.audio_confusion[0] * split_speakers(cfg, split)) if cfg.audio_confusion is not None else 0


def draw_speakers(labels: torch.Tensor, cfg: SynthAVConfig, split: str,
                  generator: torch.Generator) -> dict[str, torch.Tensor]:
    """``split``'s speakers: who speaks each clip (as evenly as possible), each speaker's voice [S, V], and
    the class whose band each clip shows: its own, shifted by the speaker's offset for shifted speakers."""
    n, count = len(labels), split_speakers(cfg, split)
    speaker = (torch.arange(n) % count)[torch.randperm(n, generator=generator)]
    voice = torch.randn(count, cfg.voice_bins, generator=generator)
    offset = torch.zeros(count, dtype=torch.long)
    shifted = torch.randperm(count, generator=generator)[: shifted_speakers(cfg, split)]
    offset[shifted] = torch.randint(1, cfg.num_classes, (len(shifted),), generator=generator)
    return {"speaker": speaker, "voice": voice, "pattern": (labels + offset[speaker]) % cfg.num_classes}


def audio_signal(labels: torch.Tensor, amplitude: torch.Tensor, nuisances: dict, cfg: SynthAVConfig) -> torch.Tensor:
    """The clean spectrogram of each clip had it class ``labels``: band x envelope x amplitude, [N,F,T]."""
    bins = cfg.spec_bins
    band_width = bins / (3.0 * cfg.num_classes)
    centre = (labels.float() + 0.5) * bins / cfg.num_classes + nuisances["band_jitter"]  # [N]
    freq = torch.arange(bins, dtype=torch.float32)
    band = torch.exp(-0.5 * ((freq[None, :] - centre[:, None]) / band_width) ** 2)  # [N,F]
    return amplitude[:, None, None] * band[:, :, None] * nuisances["envelope"][:, None, :]


def visual_signal(labels: torch.Tensor, amplitude: torch.Tensor, nuisances: dict, cfg: SynthAVConfig) -> torch.Tensor:
    """The clean frames of each clip had it class ``labels``: an oriented drifting grating, [N,T,3,H,W]."""
    frames, size = cfg.num_frames, cfg.frame_size
    theta = math.pi * labels.float() / cfg.num_classes + nuisances["orientation_jitter"]  # [N]
    coords = torch.arange(size, dtype=torch.float32) / size
    y, x = torch.meshgrid(coords, coords, indexing="ij")  # [H,W]
    projection = x[None] * torch.cos(theta)[:, None, None] + y[None] * torch.sin(theta)[:, None, None]  # [N,H,W]
    time = torch.arange(frames, dtype=torch.float32)
    angle = (2 * math.pi * cfg.grating_cycles * projection[:, None] + nuisances["phase"][:, None, None, None]
             + nuisances["drift"][:, None, None, None] * time[None, :, None, None])  # [N,T,H,W]
    return amplitude[:, None, None, None, None] * nuisances["colour"][:, None, :, None, None] * torch.cos(angle)[:, :, None]


def amplitudes(labels: torch.Tensor, nuisances: dict, informative: dict, cfg: SynthAVConfig) -> dict:
    """Each modality's amplitude for clips of class ``labels``: strength x class strength x quality."""
    return {m: getattr(cfg, f"{m}_strength") * cfg.class_strength(m)[labels] * nuisances["quality"]
            * informative[m].float() for m in ("audio", "visual")}


def draw_labels(size: int, cfg: SynthAVConfig, split: str, generator: torch.Generator) -> torch.Tensor:
    """Class of every clip: exactly proportional to the split's class frequencies, in random order."""
    counts = (cfg.class_frequencies(split) * size).floor().long()
    counts[: size - int(counts.sum())] += 1  # the remainder, one clip each to the first classes
    labels = torch.repeat_interleave(torch.arange(cfg.num_classes), counts)
    return labels[torch.randperm(size, generator=generator)]


def generate_split(cfg: SynthAVConfig, split: str) -> TensorSplit:
    """Generate one split deterministically from ``cfg.seed`` and the split's name."""
    size = getattr(cfg, f"{split}_size")
    generator = torch.Generator().manual_seed(cfg.seed * 100 + SPLIT_STREAMS[split])
    labels = draw_labels(size, cfg, split, generator)

    # Sample-level imbalance: which clips have an uninformative (pure-noise) modality.
    uninformative = torch.rand(size, generator=generator) < cfg.uninformative_fraction
    pick_audio = torch.rand(size, generator=generator) < 0.5
    if cfg.uninformative_modality == "audio":
        pick_audio = torch.ones(size, dtype=torch.bool)
    elif cfg.uninformative_modality == "visual":
        pick_audio = torch.zeros(size, dtype=torch.bool)
    informative = {"audio": ~(uninformative & pick_audio), "visual": ~(uninformative & ~pick_audio)}

    nuisances = draw_nuisances(size, cfg, generator)
    patterns = draw_patterns(labels, cfg, generator)
    amplitude = amplitudes(labels, nuisances, informative, cfg)
    noise_audio = cfg.audio_noise * torch.randn(size, cfg.spec_bins, cfg.spec_steps, generator=generator)
    noise_visual = cfg.visual_noise * torch.randn(size, cfg.num_frames, 3, cfg.frame_size, cfg.frame_size,
                                                  generator=generator)
    extras = {}
    if cfg.speakers:  # the band follows the speaker's offset (its own stream: regimes without speakers unchanged)
        speakers = draw_speakers(labels, cfg, split, torch.Generator().manual_seed(cfg.seed * 100 + SPLIT_STREAMS[split]
                                                                            + SPEAKER_STREAM))
        patterns["audio"] = speakers["pattern"]
        extras["speaker"] = speakers["speaker"]
    audio = audio_signal(patterns["audio"], amplitude["audio"], nuisances, cfg) + noise_audio
    if cfg.speakers:  # the speaker's voice, constant over the clip, in extra bins above the class bands
        voice = cfg.voice_strength * speakers["voice"][speakers["speaker"]][:, :, None].expand(-1, -1, cfg.spec_steps)
        noise_voice = cfg.audio_noise * torch.randn(size, cfg.voice_bins, cfg.spec_steps, generator=generator)
        audio = torch.cat([audio, voice + noise_voice], dim=1)
    audio = audio.unsqueeze(1)
    visual = visual_signal(patterns["visual"], amplitude["visual"], nuisances, cfg) + noise_visual

    observed = labels.clone()
    if split == "train" and cfg.label_noise > 0:  # another class, uniformly, for a fraction of the clips
        flip = torch.rand(size, generator=generator) < cfg.label_noise
        shift = torch.randint(1, cfg.num_classes, (size,), generator=generator)
        observed = torch.where(flip, (labels + shift) % cfg.num_classes, labels)
    extras = {**extras, "audio_informative": informative["audio"], "visual_informative": informative["visual"],
              "audio_pattern": patterns["audio"], "visual_pattern": patterns["visual"], "true_label": labels,
              "quality": nuisances["quality"]}
    return TensorSplit(audio=audio, visual=visual, label=observed, extras=extras)


def blank_states(cfg: SynthAVConfig) -> list[tuple[float, bool, bool]]:
    """The uninformative-clip process: ``(probability, audio blank, visual blank)`` of each case."""
    u = cfg.uninformative_fraction
    audio_share = {"audio": 1.0, "visual": 0.0, "either": 0.5}[cfg.uninformative_modality]
    return [(1 - u, False, False), (u * audio_share, True, False), (u * (1 - audio_share), False, True)]


def observation_likelihood(cfg: SynthAVConfig, modality: str, blank: bool) -> torch.Tensor:
    """``P(observation | class)`` [C, C+1] of one modality: a pattern 0..C-1, or C for nothing shown
    (the clip's modality is uninformative, or the class's or modality's strength is 0)."""
    shown = (cfg.class_strength(modality) > 0).double() * float(getattr(cfg, f"{modality}_strength") > 0 and not blank)
    return torch.cat([cfg.confusion(modality) * shown[:, None], (1 - shown)[:, None]], dim=1)


def oracle_accuracy(cfg: SynthAVConfig, split: str = "test") -> dict[str, float]:
    """Exact accuracy, on ``split``'s class frequencies, of the Bayes rule given the pattern each
    modality shows (module docstring): from audio alone, visual alone and both. A blank modality
    (uninformative clip, zero strength) adds no evidence; ties are broken uniformly."""
    prior = cfg.class_frequencies(split)
    ignore = torch.ones(cfg.num_classes, 1, dtype=torch.float64)  # a modality the rule does not look at
    result = {}
    for name in ("audio", "visual", "fused"):
        accuracy = 0.0
        for probability, audio_blank, visual_blank in blank_states(cfg):
            if probability == 0:
                continue
            audio = observation_likelihood(cfg, "audio", audio_blank) if name != "visual" else ignore
            visual = observation_likelihood(cfg, "visual", visual_blank) if name != "audio" else ignore
            # P(c, o_a, o_v) in this case; the rule picks the most probable classes of each observation pair
            # (the blank case is visible to it) and is right with the mass of the true class among them
            joint = prior[:, None, None] * audio[:, :, None] * visual[:, None, :]  # [C, Oa, Ov]
            winners = (joint >= joint.max(dim=0).values - 1e-12).double()
            accuracy += probability * float((joint * winners / winners.sum(dim=0)).sum())
        result[name] = accuracy
    return result


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
