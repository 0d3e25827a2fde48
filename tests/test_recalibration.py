"""Capability-aware decision weights (Chapter 5): calibration and per-class modality weights,
fitted on validation only, and the `mmlesson recalibrate` command."""
import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from mmlesson import TrainConfig, fit
from mmlesson.analysis.recalibration import (Recalibration, centre, collect_logits,
                                             fit_recalibration, fit_temperature, recalibrate, shared_bias,
                                             uniform_weights)
from mmlesson.cli import main
from mmlesson.rundir import RunDirectory

from .conftest import TINY_KNOBS


def sample_labels(logits: torch.Tensor, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.multinomial(logits.softmax(dim=1), 1, generator=generator).squeeze(1)


def test_the_fitted_temperature_recovers_the_true_one_and_zeroes_the_derivative():
    generator = torch.Generator().manual_seed(0)
    true_logits = 2.0 * torch.randn(20000, 5, generator=generator, dtype=torch.float64)
    labels = sample_labels(true_logits, seed=1)
    overconfident = 3.0 * true_logits  # the labels follow softmax(true), so T should come out near 3
    temperature = fit_temperature(overconfident, labels)
    assert abs(temperature - 3.0) < 0.1
    t = torch.tensor(temperature, dtype=torch.float64, requires_grad=True)
    F.cross_entropy(overconfident / t, labels).backward()
    assert abs(float(t.grad)) < 1e-6  # a stationary point of the validation log-loss


def test_uniform_weights_are_exactly_the_sum_of_calibrated_logits():
    generator = torch.Generator().manual_seed(0)
    logits = {"audio": torch.randn(50, 4, generator=generator, dtype=torch.float64) * 3,
              "visual": torch.randn(50, 4, generator=generator, dtype=torch.float64)}
    recalibration = Recalibration(("audio", "visual"), {"audio": 2.5, "visual": 0.7}, uniform_weights(4, 2))
    summed = logits["audio"] / 2.5 + logits["visual"] / 0.7
    recalibrated = recalibration.apply(logits)
    torch.testing.assert_close(recalibrated, centre(summed), rtol=0, atol=1e-12)
    torch.testing.assert_close(recalibrated.softmax(1), summed.softmax(1), rtol=0, atol=1e-12)
    alone = fit_recalibration(logits, sample_labels(summed, seed=2), per_class=False)
    assert torch.equal(alone.class_weights, uniform_weights(4, 2)) and alone.sharpness == 1.0


def test_a_per_sample_offset_does_not_change_the_recalibrated_output():
    generator = torch.Generator().manual_seed(0)
    logits = {m: torch.randn(30, 3, generator=generator, dtype=torch.float64) for m in ("audio", "visual")}
    weights = torch.tensor([[1.6, 0.4], [0.2, 1.8], [1.0, 1.0]], dtype=torch.float64)
    recalibration = Recalibration(("audio", "visual"), {"audio": 1.3, "visual": 0.8}, weights, sharpness=1.7)
    shifted = {m: l + 5.0 * torch.randn(30, 1, generator=generator, dtype=torch.float64) for m, l in logits.items()}
    torch.testing.assert_close(recalibration.apply(shifted), recalibration.apply(logits), rtol=0, atol=1e-10)
    by_hand = 1.7 * (weights[:, 0] * centre(logits["audio"] / 1.3) + weights[:, 1] * centre(logits["visual"] / 0.8))
    torch.testing.assert_close(recalibration.apply(logits), by_hand, rtol=0, atol=1e-12)


def test_per_class_weights_lean_on_the_modality_that_knows_the_class():
    """Audio separates classes 0-1 from the rest and knows nothing about 2-3; visual the reverse."""
    generator = torch.Generator().manual_seed(0)
    n, classes = 4000, 4
    labels = torch.arange(n) % classes
    one_hot = F.one_hot(labels, classes).double()
    noise = {m: torch.randn(n, classes, generator=generator, dtype=torch.float64) for m in ("audio", "visual")}
    audio_knows = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    logits = {"audio": 3.0 * one_hot * audio_knows + noise["audio"],
              "visual": 3.0 * one_hot * (1 - audio_knows) + noise["visual"]}
    fitted = fit_recalibration(logits, labels)
    weights = fitted.class_weights
    assert torch.all(weights >= 0) and torch.allclose(weights.sum(dim=1), torch.full((classes,), 2.0, dtype=torch.float64))
    visual_share = weights[:, 1] / weights.sum(dim=1)
    assert visual_share[:2].max() < 0.4 and visual_share[2:].min() > 0.6, visual_share
    uniform = Recalibration(fitted.modalities, fitted.temperatures, uniform_weights(classes, 2))
    assert F.cross_entropy(fitted.apply(logits), labels) < F.cross_entropy(uniform.apply(logits), labels)


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory, tiny_dataset):
    out = tmp_path_factory.mktemp("joint") / "run"
    config = TrainConfig.build(data_knobs=TINY_KNOBS, width=4, epochs=2, batch_size=16, probe=False, progress="off",
                         out=str(out))
    return fit(config, dataset=tiny_dataset), out


def test_everything_is_fitted_on_validation_only(joint_run, tiny_dataset):
    result, _ = joint_run
    report = recalibrate(result.model, tiny_dataset, torch.device("cpu"))
    shuffled_labels = tiny_dataset.test.label.roll(1)
    other_test = dataclasses.replace(tiny_dataset.test, label=shuffled_labels)
    other = recalibrate(result.model, dataclasses.replace(tiny_dataset, test=other_test), torch.device("cpu"))
    assert other["calibration"] == report["calibration"]
    assert other["capability_weights"] == report["capability_weights"]
    assert other["test"]["plain"]["nll"] != report["test"]["plain"]["nll"]  # the test labels did change
    other_val = dataclasses.replace(tiny_dataset.val, label=tiny_dataset.val.label.roll(1))
    refitted = recalibrate(result.model, dataclasses.replace(tiny_dataset, val=other_val), torch.device("cpu"))
    assert refitted["calibration"]["temperatures"] != report["calibration"]["temperatures"]


def test_recalibrate_command_writes_its_report_beside_the_metrics(joint_run, tiny_dataset, capsys):
    _, out = joint_run
    assert main(["recalibrate", "--run", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / RunDirectory.RECALIBRATED).read_text())
    assert set(report["test"]) == {"plain", "calibrated", "capability_weighted"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert report["test"]["plain"]["acc"] == pytest.approx(metrics["final"]["test"]["acc"])  # the same model, read back
    assert "capability_weighted" in printed and "recalibrated.json" in printed
    assert len(report["capability_weights"]["class_weights"]) == tiny_dataset.num_classes


def test_recalibrate_refuses_what_it_cannot_use(tmp_path, tiny_dataset, capsys):
    assert main(["recalibrate", "--run", str(tmp_path / "nowhere")]) == 1
    assert "holds no complete run" in capsys.readouterr().err
    out = tmp_path / "audio"
    fit(TrainConfig.build(method="unimodal", modality="audio", data_knobs=TINY_KNOBS, width=4, epochs=1, batch_size=16,
                    probe=False, progress="off", out=str(out)), dataset=tiny_dataset)
    assert main(["recalibrate", "--run", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "unimodal run" in error


def test_the_bias_is_counted_once_so_unit_settings_reproduce_the_model(tiny_dataset):
    """Concat branches each carry the decision layer's bias: summing them counts it twice. With the bias
    split off and added once, unit temperatures and uniform weights give exactly the model's output."""
    torch.manual_seed(0)
    from mmlesson.models import MultimodalModel

    model = MultimodalModel(6, width=4).eval()
    with torch.no_grad():
        model.fusion.head.bias.copy_(torch.linspace(-2, 2, 6))
    logits, fused, _ = collect_logits(model, tiny_dataset.val, "cpu")
    shared = shared_bias(logits, fused)
    torch.testing.assert_close(shared, model.fusion.head.bias.double().expand_as(fused), rtol=0, atol=1e-5)
    unit = Recalibration(("audio", "visual"), {"audio": 1.0, "visual": 1.0}, uniform_weights(6, 2))
    torch.testing.assert_close(unit.apply(logits, shared).softmax(1), fused.softmax(1), rtol=0, atol=1e-6)
    twice = logits["audio"] + logits["visual"]  # what summing the branches gives: fused + b
    assert not torch.allclose(twice.softmax(1), fused.softmax(1), atol=1e-3)
