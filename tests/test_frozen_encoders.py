import pytest
import torch

from mmlesson import TrainConfig, fit
from mmlesson.errors import ConfigError

from .conftest import TINY_KNOBS


def small(**overrides):
    options = dict(data_knobs=TINY_KNOBS, width=4, epochs=2, batch_size=16, probe=False, progress="off")
    return TrainConfig.build(**{**options, **overrides})


@pytest.fixture(scope="module")
def unimodal_runs(tmp_path_factory, tiny_dataset):
    root = tmp_path_factory.mktemp("unimodal")
    runs = {}
    for modality in ("audio", "visual"):
        out = root / modality
        runs[modality] = fit(small(method="unimodal", modality=modality, out=str(out)), dataset=tiny_dataset)
    return runs, root


def test_frozen_encoders_are_loaded_and_never_change(unimodal_runs, tiny_dataset, tmp_path):
    runs, root = unimodal_runs
    config = small(method="frozen_encoders", encoders_from=(str(root / "audio"), str(root / "visual")),
                   out=str(tmp_path / "frozen"))
    result = fit(config, dataset=tiny_dataset)
    for modality in ("audio", "visual"):
        trained_alone = runs[modality].model.encoders[modality].state_dict()
        after = result.model.encoders[modality].state_dict()
        for key, value in trained_alone.items():  # weights and batch-norm statistics alike
            assert torch.equal(after[key], value), (modality, key)
    untrained = fit(TrainConfig.build(**{**config.to_dict(), "out": None}), dataset=tiny_dataset, stop_after=0).model
    assert not torch.equal(result.model.fusion.head.weight, untrained.fusion.head.weight)  # only the head trained


def test_wrong_or_missing_runs_are_refused(unimodal_runs, tiny_dataset, tmp_path):
    _, root = unimodal_runs
    swapped = small(method="frozen_encoders", encoders_from=(str(root / "visual"), str(root / "audio")))
    with pytest.raises(ConfigError, match="needs a unimodal audio run of width 4"):
        fit(swapped, dataset=tiny_dataset)
    missing = small(method="frozen_encoders", encoders_from=(str(tmp_path / "nowhere"), str(root / "visual")))
    with pytest.raises(ConfigError, match="holds no finished run; train it first"):
        fit(missing, dataset=tiny_dataset)
    with pytest.raises(ConfigError, match="needs --encoders-from AUDIO_RUN VISUAL_RUN"):
        fit(small(method="frozen_encoders"), dataset=tiny_dataset)


def test_encoders_trained_on_other_data_are_refused(unimodal_runs):
    _, root = unimodal_runs
    other = small(method="frozen_encoders", encoders_from=(str(root / "audio"), str(root / "visual")),
                  data_knobs={**TINY_KNOBS, "audio_strength": 0.5})
    with pytest.raises(ConfigError, match=r"audio was trained on other data \(knobs.audio_strength differ\)"):
        fit(other)


def test_encoders_of_another_resolution_are_refused(unimodal_runs, tiny_dataset):
    """A stride-8 decision layer cannot read stride-32 encoders (CCAT's resolution-matched control trains its own)."""
    _, root = unimodal_runs
    finer = small(method="frozen_encoders", encoders_from=(str(root / "audio"), str(root / "visual")), output_stride=8)
    with pytest.raises(ConfigError, match="output stride 32.*needs a unimodal audio run of width 4, output stride 8"):
        fit(finer, dataset=tiny_dataset)


def test_every_method_builds_its_encoders_at_the_runs_output_stride():
    """``output_stride`` is a shared field: joint training's encoders keep a 4x finer last map at stride 8 than at 32
    on a 32 x 32 frame (4 x 4 positions against 1 x 1), and it is part of the run's identity."""
    from mmlesson.identity import run_identity
    from mmlesson.methods import METHODS

    frames = torch.zeros(2, 3, 32, 32)
    maps = {}
    for stride in (8, 32):
        config = small(method="joint", output_stride=stride)
        model = METHODS["joint"](config).make_model(6, ("audio", "visual"))
        maps[stride] = model.encoders["visual"].trunk(frames).shape[-2:]
    assert tuple(maps[8]) == (4, 4) and tuple(maps[32]) == (1, 1)
    train = {stride: run_identity(small(method="joint", output_stride=stride), METHODS["joint"](small(
        method="joint", output_stride=stride)), {"name": "synthav"})["train"] for stride in (8, 32)}
    assert train[8]["output_stride"] == 8
    assert "output_stride" not in train[32]  # the standard stride: the identity every run had before the field


def test_a_run_stored_before_the_shared_field_is_read_back(unimodal_runs):
    """A CCAT config stored when the stride was CCAT's own option comes back with it as the shared field."""
    from mmlesson.config import TrainConfig

    stored = small(method="ccat", output_stride=8, classifier_epochs=1).to_dict()
    stored["options"]["output_stride"] = stored.pop("output_stride")  # how an earlier version wrote it
    config = TrainConfig.stored(stored, progress="off")
    assert config.output_stride == 8 and config.method == "ccat"
