import pytest
import torch

from mmlesson.data import SynthAVConfig, load
from mmlesson.errors import ConfigError

SMALL = dict(train_size=120, val_size=60, test_size=60)


def band_energy_template_accuracy(split, num_classes):
    """Nearest-class-mean accuracy on the time-averaged spectrum (a linear read-out of band energy)."""
    profile = split.audio[:, 0].mean(dim=2)  # [N,F]
    means = torch.stack([profile[split.label == c].mean(0) for c in range(num_classes)])
    predictions = torch.cdist(profile, means).argmin(1)
    return float((predictions == split.label).float().mean())


def test_generation_is_deterministic_and_seeded():
    a, b = load("synthav", **SMALL), load("synthav", **SMALL)
    for split in ("train", "val", "test"):
        assert torch.equal(a.split(split).audio, b.split(split).audio)
        assert torch.equal(a.split(split).visual, b.split(split).visual)
        assert torch.equal(a.split(split).label, b.split(split).label)
    other = load("synthav", seed=1, **SMALL)
    assert not torch.equal(a.train.audio, other.train.audio)


def test_shapes_splits_and_class_balance():
    data = load("synthav", **SMALL)
    cfg = SynthAVConfig()
    assert data.train.audio.shape == (120, 1, cfg.spec_bins, cfg.spec_steps)
    assert data.train.visual.shape == (120, cfg.num_frames, 3, cfg.frame_size, cfg.frame_size)
    assert len(data.val) == 60 and len(data.test) == 60
    assert torch.bincount(data.train.label).tolist() == [20] * 6
    assert data.num_classes == 6 and data.class_names[0] == "class0"


def test_test_split_does_not_depend_on_training_size():
    small, large = load("synthav", **SMALL), load("synthav", **{**SMALL, "train_size": 240})
    assert torch.equal(small.test.audio, large.test.audio)
    assert torch.equal(small.test.visual, large.test.visual)


def test_strength_zero_removes_class_information():
    knobs = dict(train_size=600, val_size=6, test_size=6)
    informative = load("synthav", audio_strength=1.0, **knobs).train
    silent = load("synthav", audio_strength=0.0, visual_strength=0.0, **knobs).train
    assert band_energy_template_accuracy(informative, 6) > 0.9
    assert band_energy_template_accuracy(silent, 6) < 0.35  # chance is 1/6
    # with zero strength both modalities are exactly standard Gaussian noise
    assert abs(float(silent.visual.std()) - 1.0) < 0.01 and abs(float(silent.visual.mean())) < 0.01


def test_visual_grating_orientation_encodes_the_class():
    """A quadrature (phase-invariant) filter tuned to each class's orientation recovers the class."""
    data = load("synthav", train_size=600, val_size=6, test_size=6, visual_strength=1.0, orientation_jitter=0.0)
    cfg = SynthAVConfig()
    frames = data.train.visual[:, 0].mean(dim=1)  # first frame, channel mean [N,H,W]
    coords = torch.arange(cfg.frame_size) / cfg.frame_size
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    energies = []
    for c in range(6):
        theta = torch.tensor(torch.pi * c / 6)
        carrier = 2 * torch.pi * cfg.grating_cycles * (x * torch.cos(theta) + y * torch.sin(theta))
        energies.append((frames * torch.cos(carrier)).sum((1, 2)) ** 2 + (frames * torch.sin(carrier)).sum((1, 2)) ** 2)
    predictions = torch.stack(energies, 1).argmax(1)
    assert float((predictions == data.train.label).float().mean()) > 0.95
    # while the class-conditional mean image is (close to) zero: no linear read-out of pixels works
    class_mean = frames[data.train.label == 0].mean(0)
    assert float(class_mean.abs().mean()) < 0.15


def test_per_class_strength_and_uninformative_fraction():
    knobs = dict(train_size=1200, val_size=6, test_size=6)
    data = load("synthav", audio_class_strength=(1, 1, 1, 1, 1, 0), uninformative_fraction=0.25,
                uninformative_modality="audio", **knobs).train
    informative = data.extras["audio_informative"]
    assert abs(float((~informative).float().mean()) - 0.25) < 0.05
    assert bool(data.extras["visual_informative"].all())
    profile = data.audio[:, 0].mean(dim=2)
    bins, own_band = profile.shape[1], (data.label.float() + 0.5) * profile.shape[1] / 6
    own_energy = profile[torch.arange(len(profile)), own_band.long().clamp(max=bins - 1)]
    assert float(own_energy[informative & (data.label < 5)].mean()) > 0.4
    assert abs(float(own_energy[~informative].mean())) < 0.1  # pure noise
    assert abs(float(own_energy[data.label == 5].mean())) < 0.1  # class 5 has strength 0


@pytest.mark.parametrize("knobs, fragment", [
    (dict(audio_strength=-1), "audio_strength"),
    (dict(uninformative_fraction=1.5), "uninformative_fraction"),
    (dict(audio_class_strength=(1, 2)), "one value per class"),
    (dict(uninformative_modality="smell"), "unknown value 'smell'; choose one of: audio, visual, either"),
    (dict(loudness=3), "valid knobs"),
    (dict(train_size=0), "train_size"),
])
def test_invalid_knobs_give_clear_errors(knobs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load("synthav", **knobs)


def test_unknown_data_set_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="choose one of: ave, cremad, kinetics_sounds, synthav"):
        load("imagenet")


def test_noise_std_zero_gives_the_clean_signal():
    clean = load("synthav", noise_std=0.0, orientation_jitter=0.0, **SMALL).train
    cfg = SynthAVConfig()
    # visual: amplitude x colour (norm sqrt 3 over channels) x cos(...), so every value is bounded
    assert float(clean.visual.abs().max()) <= cfg.visual_strength * 3 ** 0.5 + 1e-5
    # audio: a non-negative band x envelope, peaking at most at the strength
    assert float(clean.audio.min()) >= 0 and float(clean.audio.max()) <= cfg.audio_strength + 1e-5
