import pytest
import torch

from mmlesson.data import SynthAVConfig, load
from mmlesson.data.synthav import oracle_accuracy
from mmlesson.errors import ConfigError

SMALL = dict(train_size=120, val_size=60, test_size=60)
CLEAR = dict(audio_confusion=None, visual_confusion=None)  # every clip shows its own class's pattern


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
    informative = load("synthav", audio_strength=1.0, **knobs, **CLEAR).train
    silent = load("synthav", audio_strength=0.0, visual_strength=0.0, **knobs).train
    assert band_energy_template_accuracy(informative, 6) > 0.9
    assert band_energy_template_accuracy(silent, 6) < 0.35  # chance is 1/6
    # with zero strength both modalities are exactly standard Gaussian noise
    assert abs(float(silent.visual.std()) - 1.0) < 0.01 and abs(float(silent.visual.mean())) < 0.01


def test_visual_grating_orientation_encodes_the_class():
    """A quadrature (phase-invariant) filter tuned to each class's orientation recovers the class."""
    data = load("synthav", train_size=600, val_size=6, test_size=6, visual_strength=1.0, orientation_jitter=0.0, **CLEAR)
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
                uninformative_modality="audio", **knobs, **CLEAR).train
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


def test_zero_noise_gives_the_clean_signal():
    clean = load("synthav", audio_noise=0.0, visual_noise=0.0, orientation_jitter=0.0, **SMALL).train
    cfg = SynthAVConfig()
    # visual: amplitude x colour (norm sqrt 3 over channels) x cos(...), so every value is bounded
    assert float(clean.visual.abs().max()) <= cfg.visual_strength * 3 ** 0.5 + 1e-5
    # audio: a non-negative band x envelope, peaking at most at the strength
    assert float(clean.audio.min()) >= 0 and float(clean.audio.max()) <= cfg.audio_strength + 1e-5


def test_confusion_shows_another_class_at_the_stated_rate():
    data = load("synthav", train_size=6000, val_size=6, test_size=6, audio_confusion=(0.0, 0.0, 0.0, 0.0, 0.6, 0.3),
                visual_confusion=None).train
    shown, label = data.extras["audio_pattern"], data.label
    for c, rate in enumerate((0.0, 0.0, 0.0, 0.0, 0.6, 0.3)):
        wrong = (shown[label == c] != c).double().mean()
        assert abs(float(wrong) - rate) < 0.04, c
    wrong_targets = shown[(label == 4) & (shown != 4)]
    assert torch.bincount(wrong_targets, minlength=6)[4] == 0 and (torch.bincount(wrong_targets, minlength=6)[[0, 1, 2, 3, 5]] > 80).all()
    assert bool((data.extras["visual_pattern"] == label).all())
    # the audio band sits where the shown class's band is, not the label's
    profile = data.audio[:, 0].mean(dim=2)  # [N, F]
    centres = ((torch.arange(6) + 0.5) * 16 / 6).round().long()
    decoded = profile[:, centres].argmax(1)  # the class whose band centre holds the most energy
    assert float((decoded == shown).double().mean()) > 0.9 and float((decoded == label).double().mean()) < 0.85


def test_oracle_accuracy_against_a_hand_computation():
    # C = 3, audio shows a uniformly random other class with probability 0.5 for class 2 only, visual is blank
    # (strength 0). Audio alone, by hand: pattern 0 -> classes {0: 1/3, 2: 1/3 x 0.25} -> 0; pattern 2 -> {2: 1/3 x 0.5}
    # -> 2; accuracy = 1/3 + 1/3 + 1/3 x 0.5 = 5/6
    cfg = SynthAVConfig(num_classes=3, spec_bins=6, audio_confusion=(0.0, 0.0, 0.5), visual_confusion=None,
                        visual_strength=0.0)
    assert oracle_accuracy(cfg) == pytest.approx({"audio": 5 / 6, "visual": 1 / 3, "fused": 5 / 6})
    # two modalities each right with probability 1 - e, wrong to each other class with e / 2 (C = 3). By hand:
    # both right -> right; one right, one wrong -> the two shown classes have equal posterior (1-e)(e/2): a tie,
    # right half the time; both wrong (same or different classes) -> a shown class wins, never the true one.
    e = 0.3
    both = SynthAVConfig(num_classes=3, spec_bins=6, audio_confusion=(e,) * 3, visual_confusion=(e,) * 3)
    agree_right, one_right, both_wrong = (1 - e) ** 2, 2 * (1 - e) * e, e ** 2
    assert agree_right + one_right + both_wrong == pytest.approx(1.0)
    assert oracle_accuracy(both)["fused"] == pytest.approx(agree_right + one_right / 2)


def test_uninformative_clips_are_modelled_jointly_in_the_oracle():
    cfg = SynthAVConfig(audio_confusion=None, visual_confusion=None, uninformative_fraction=0.5)
    # one modality of half the clips is blank, never both: fused is perfect, each alone misses 1/4 x 5/6
    assert oracle_accuracy(cfg) == pytest.approx({"audio": 1 - 0.25 * 5 / 6, "visual": 1 - 0.25 * 5 / 6, "fused": 1.0})


def test_label_noise_imbalance_and_quality():
    data = load("synthav", train_size=6000, val_size=1200, test_size=600, label_noise=0.2, class_imbalance=4.0,
                quality_std=0.5)
    flipped = (data.train.label != data.train.extras["true_label"]).double().mean()
    assert abs(float(flipped) - 0.2) < 0.02
    assert bool((data.val.label == data.val.extras["true_label"]).all())  # only training labels are noisy
    counts = torch.bincount(data.train.extras["true_label"], minlength=6).double()
    assert float(counts[0] / counts[5]) == pytest.approx(4.0, rel=0.02)
    assert torch.bincount(data.test.label).tolist() == [100] * 6  # test stays balanced
    quality = data.train.extras["quality"]
    assert abs(float(quality.log().std()) - 0.5) < 0.03


SPEAKERS = dict(speakers=8, audio_confusion=(0.25,) * 6, train_size=400, val_size=96, test_size=800)


def test_speakers_shift_every_class_by_their_own_offset():
    data = load("synthav", **SPEAKERS)
    for split in (data.train, data.test):
        speaker, label, pattern = split.extras["speaker"], split.label, split.extras["audio_pattern"]
        counts = torch.bincount(speaker, minlength=8)
        assert counts.max() - counts.min() <= 1  # every speaker speaks as many clips as the others, +-1
        for s in range(8):
            offset = (pattern[speaker == s] - label[speaker == s]) % 6
            assert len(set(offset.tolist())) == 1  # one fixed way of sounding every class
        assert sum(int((pattern[speaker == s] != label[speaker == s]).any()) for s in range(8)) == 2  # 0.25 x 8


def test_speakers_voice_identifies_the_speaker_and_each_split_has_its_own():
    knobs = dict(SPEAKERS, audio_noise=0.0, audio_strength=0.0, voice_strength=2.0)
    data = load("synthav", **knobs)
    assert data.train.audio.shape[2] == 16 + 8  # the class bands, then the voice bins
    voices = {}
    for name in ("train", "test"):
        split = data.split(name)
        rows = split.audio[:, 0, 16:, 0]  # [N, V]: the voice, constant over the clip
        assert torch.equal(split.audio[:, 0, 16:, :], rows[:, :, None].expand_as(split.audio[:, 0, 16:, :]))
        voices[name] = {int(s): rows[split.extras["speaker"] == s] for s in range(8)}
        for s, clips in voices[name].items():
            assert torch.equal(clips, clips[:1].expand_as(clips))  # one voice per speaker
    assert not any(torch.equal(voices["train"][s][0], voices["test"][t][0]) for s in range(8) for t in range(8))


def test_speakers_keep_the_oracle_exact_and_other_regimes_unchanged():
    cfg = SynthAVConfig(**SPEAKERS, visual_confusion=None)
    # an observer of the audio pattern alone, on unseen speakers, is right on the unshifted speakers' clips
    assert oracle_accuracy(cfg)["audio"] == pytest.approx(1 - 2 / 8)
    data = load("synthav", **SPEAKERS)
    realised = float((data.test.extras["audio_pattern"] == data.test.label).float().mean())
    assert realised == pytest.approx(1 - 2 / 8, abs=1e-9)
    uniform = dict(SMALL, audio_confusion=(0.25,) * 6)
    plain, with_speakers = load("synthav", **uniform), load("synthav", **uniform, speakers=4)
    assert torch.equal(plain.train.visual, with_speakers.train.visual)  # the speakers' draws have their own stream
    assert torch.equal(plain.train.label, with_speakers.train.label)
    with pytest.raises(ConfigError, match="same for every class"):
        SynthAVConfig(speakers=4)  # regime A's per-class audio confusion cannot be spoken by speakers


def test_eval_speakers_give_validation_and_test_many_unseen_voices_and_leave_training_alone():
    knobs = dict(SPEAKERS, eval_speakers=100)
    data, plain = load("synthav", **knobs), load("synthav", **SPEAKERS)
    assert torch.equal(data.train.audio, plain.train.audio) and torch.equal(data.train.label, plain.train.label)
    test = data.test
    assert int(test.extras["speaker"].max()) + 1 == 100
    shifted = {int(s) for s in test.extras["speaker"][test.extras["audio_pattern"] != test.label]}
    assert len(shifted) == 25  # round(0.25 x 100) speakers sound every class shifted
    assert 8 < int(data.val.extras["speaker"].max()) + 1 <= 100  # 96 clips: as many voices as clips, at most 100
    assert int(data.train.extras["speaker"].max()) + 1 == 8
    # the oracle is that of the test split's speakers: round(0.34 x 6) / 6 = 1/3 shifted, but 34 / 100 with 100
    uneven = dict(SPEAKERS, speakers=6, audio_confusion=(0.34,) * 6, visual_confusion=None)
    assert oracle_accuracy(SynthAVConfig(**uneven))["audio"] == pytest.approx(1 - 2 / 6)
    assert oracle_accuracy(SynthAVConfig(**uneven, eval_speakers=100))["audio"] == pytest.approx(1 - 34 / 100)
    test = load("synthav", **uneven, eval_speakers=100).test
    assert float((test.extras["audio_pattern"] == test.label).double().mean()) == pytest.approx(1 - 34 / 100, abs=0.01)
