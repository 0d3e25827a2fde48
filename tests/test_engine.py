import json

import pytest
import torch

import mmlesson
from mmlesson import TrainConfig, fit
from mmlesson.analysis.probe import fit_linear_probe
from mmlesson.analysis.scores import classification_scores
from mmlesson.engine import evaluate
from mmlesson.rundir import RunDirectory
from mmlesson.errors import ConfigError, IncompleteRun, TrainingDiverged
from mmlesson.methods import METHODS, JointTraining

from .conftest import TINY_KNOBS


def tiny_config(**overrides):
    options = dict(data_knobs=TINY_KNOBS, width=4, epochs=3, batch_size=16, lr=0.05, probe=False, progress="off")
    options.update(overrides)
    return TrainConfig.build(**options)


def states_equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def strip_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_same_seed_same_run_on_cpu(tiny_dataset):
    first = fit(tiny_config(), dataset=tiny_dataset)
    second = fit(tiny_config(), dataset=tiny_dataset)
    assert strip_seconds(first.metrics["history"]) == strip_seconds(second.metrics["history"])
    assert first.metrics["final"] == second.metrics["final"]
    assert states_equal(first.model.state_dict(), second.model.state_dict())
    other = fit(tiny_config(seed=1), dataset=tiny_dataset)
    assert not states_equal(first.model.state_dict(), other.model.state_dict())


def test_interrupted_and_resumed_run_equals_uninterrupted(tiny_dataset, tmp_path):
    whole = fit(tiny_config(epochs=4, out=str(tmp_path / "whole")), dataset=tiny_dataset)
    config = tiny_config(epochs=4, out=str(tmp_path / "parts"))
    partial = fit(config, dataset=tiny_dataset, stop_after=2)
    assert partial.metrics["final"] is None and len(partial.metrics["history"]) == 2
    assert not (tmp_path / "parts" / "metrics.json").exists()  # nothing half-done looks complete
    with pytest.raises(IncompleteRun, match="resume"):
        mmlesson.load_metrics(tmp_path / "parts")
    resumed = fit(config, dataset=tiny_dataset)
    assert strip_seconds(resumed.metrics["history"]) == strip_seconds(whole.metrics["history"])
    assert resumed.metrics["final"] == whole.metrics["final"]
    assert states_equal(resumed.model.state_dict(), whole.model.state_dict())


def test_a_complete_run_is_read_back_not_repeated(tiny_dataset, tmp_path):
    config = tiny_config(out=str(tmp_path))
    first = fit(config, dataset=tiny_dataset)
    stamp = (tmp_path / "metrics.json").stat().st_mtime_ns
    again = fit(config, dataset=tiny_dataset)
    assert (tmp_path / "metrics.json").stat().st_mtime_ns == stamp
    assert again.metrics == json.loads((tmp_path / "metrics.json").read_text())
    assert states_equal(again.model.state_dict(), first.model.state_dict())


def test_resuming_with_another_config_is_refused(tiny_dataset, tmp_path):
    fit(tiny_config(out=str(tmp_path)), dataset=tiny_dataset, stop_after=1)
    with pytest.raises(ConfigError, match="lr differ"):
        fit(tiny_config(out=str(tmp_path), lr=0.01), dataset=tiny_dataset)


def test_model_selection_uses_validation_never_test(tiny_dataset):
    config = tiny_config(epochs=4)
    run = fit(config, dataset=tiny_dataset)
    val_accs = [h["val"]["acc"] for h in run.metrics["history"]]
    assert run.metrics["final"]["best_epoch"] == val_accs.index(max(val_accs))
    assert run.metrics["final"]["val"]["acc"] == max(val_accs)
    # scrambling the test labels changes the test scores but not which epoch was selected
    scrambled = type(tiny_dataset)(name="synthav", train=tiny_dataset.train, val=tiny_dataset.val,
                                   test=type(tiny_dataset.test)(tiny_dataset.test.audio, tiny_dataset.test.visual,
                                                                tiny_dataset.test.label.roll(1)),
                                   class_names=tiny_dataset.class_names, meta=tiny_dataset.meta)
    other = fit(config, dataset=scrambled)
    assert other.metrics["final"]["best_epoch"] == run.metrics["final"]["best_epoch"]
    assert strip_seconds(other.metrics["history"]) == strip_seconds(run.metrics["history"])
    assert states_equal(other.model.state_dict(), run.model.state_dict())


class DivergesAtStepFive(JointTraining):
    name = "diverges"

    def training_step(self, model, batch, optimizer, state):
        stats = super().training_step(model, batch, optimizer, state)
        return dict(stats, loss=float("nan")) if state.step == 5 else stats


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(METHODS, "diverges", DivergesAtStepFive)
    config = tiny_config(method="diverges", out=str(tmp_path))  # 96 / 16 = 6 steps per epoch
    with pytest.raises(TrainingDiverged, match="in epoch 1, step 5.*no checkpoint"):  # epochs counted from 1
        fit(config, dataset=tiny_dataset)
    assert not (tmp_path / RunDirectory.CHECKPOINT).exists()
    monkeypatch.setattr(DivergesAtStepFive, "training_step",
                        lambda self, m, b, o, s: dict(JointTraining.training_step(self, m, b, o, s),
                                                      loss=float("nan") if s.step == 8 else 1.0))
    with pytest.raises(TrainingDiverged, match=r"in epoch 2, step 8; the checkpoint after epoch 1 is kept"):
        fit(config, dataset=tiny_dataset)
    checkpoint = torch.load(tmp_path / RunDirectory.CHECKPOINT, weights_only=False)
    assert checkpoint["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_metrics_json_layout(tiny_dataset, tmp_path):
    fit(tiny_config(out=str(tmp_path), probe=True, epochs=1), dataset=tiny_dataset)
    metrics = mmlesson.load_metrics(tmp_path)
    assert set(metrics) == {"format", "config", "identity", "identity_hash", "data", "history", "final", "env"}
    assert set(metrics["final"]) == {"test", "val", "best_epoch"}
    assert metrics["final"]["val"] == metrics["history"][metrics["final"]["best_epoch"]]["val"]
    assert (metrics["config"]["device"], metrics["config"]["amp"], metrics["config"]["threads"]) == ("cpu", False, 1)
    final = metrics["final"]["test"]
    for key in ("acc", "macro_f1", "branch_acc", "probe_acc", "per_class_acc"):
        assert key in final
    assert set(final["branch_acc"]) == set(final["probe_acc"]) == {"audio", "visual"}
    assert len(final["per_class_acc"]) == 6
    assert torch.__version__.startswith(metrics["env"]["packages"]["torch"])
    assert metrics["env"]["device"] == "cpu" and metrics["env"]["wall_seconds"] > 0
    history = metrics["history"][0]
    assert {"epoch", "lr", "train", "val", "seconds"} <= set(history)
    assert set(history["train"]["grad_norm"]) == {"audio", "visual"}
    assert metrics["config"]["method"] == "joint" and metrics["config"]["options"] == {"encoder_grad_scale": [1.0, 1.0]}


def test_a_metrics_json_of_the_first_layout_is_refused_with_the_fix(tmp_path):
    old = {"config": {"method": "unimodal", "modality": "audio", "seed": 2, "width": 4}, "history": [], "env": {},
           "final": {"acc": 0.5, "macro_f1": 0.4, "branch_acc": {"audio": 0.5}, "best_epoch": 3, "val_acc": 0.6}}
    (tmp_path / "metrics.json").write_text(json.dumps(old))
    with pytest.raises(mmlesson.MMLessonError, match="written by an older mmlesson .metrics format 1.; delete"):
        mmlesson.load_metrics(tmp_path)


def test_branch_accuracy_is_the_zeroed_decision_layer(tiny_dataset):
    torch.manual_seed(0)
    run = fit(tiny_config(epochs=1), dataset=tiny_dataset)
    model, test = run.model.eval(), tiny_dataset.test
    scores = evaluate(model, test, "cpu", 6)
    with torch.no_grad():
        features = model.encode({"audio": test.audio, "visual": test.visual})
        blocks, bias = model.fusion.weight_blocks(), model.fusion.head.bias
        audio_logits = features["audio"] @ blocks["audio"].T + bias
    assert scores["branch_acc"]["audio"] == pytest.approx(float((audio_logits.argmax(1) == test.label).double().mean()))


def test_unimodal_method_trains_one_encoder(tiny_dataset):
    run = fit(tiny_config(method="unimodal", modality="visual", epochs=1), dataset=tiny_dataset)
    assert list(run.model.encoders) == ["visual"]
    assert set(run.metrics["final"]["test"]["branch_acc"]) == {"visual"}


def test_scores_by_hand():
    predictions = torch.tensor([0, 0, 1, 1, 2, 0])
    labels = torch.tensor([0, 1, 1, 1, 2, 2])
    scores = classification_scores(predictions, labels, 3)
    assert scores["acc"] == pytest.approx(4 / 6)
    # class 0: P=1/3 R=1 F1=1/2; class 1: P=1 R=2/3 F1=4/5; class 2: P=1 R=1/2 F1=2/3
    assert scores["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert scores["per_class_acc"] == pytest.approx([1.0, 2 / 3, 1 / 2])


def test_linear_probe_separates_separable_features_and_not_noise():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 3
    centres = torch.randn(3, 8, generator=generator) * 3
    separable = centres[labels] + 0.1 * torch.randn(300, 8, generator=generator)
    probe = fit_linear_probe(separable[:200], labels[:200], 3)
    assert float((probe(separable[200:]).argmax(1) == labels[200:]).float().mean()) == 1.0
    noise = torch.randn(300, 8, generator=generator)
    probe = fit_linear_probe(noise[:200], labels[:200], 3)
    assert float((probe(noise[200:]).argmax(1) == labels[200:]).float().mean()) < 0.5


@pytest.mark.parametrize("overrides, fragment", [
    (dict(method="magic"), "unknown method 'magic'; choose one of: " + ", ".join(sorted(METHODS))),
    (dict(fusion="attention"), "unknown fusion 'attention'"),
    (dict(epochs=0), "--epochs must be a positive integer"),
    (dict(lr=float("nan")), "--lr must be a finite number"),
    (dict(lr=0), "--lr must be > 0.0"),
    (dict(epochs=2.5), "--epochs must be an integer"),
    (dict(device="tpu"), "device must be auto, cpu"),
])
def test_invalid_configs(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        TrainConfig.build(**overrides)


def test_unimodal_without_modality_is_refused(tiny_dataset):
    with pytest.raises(ConfigError, match="needs --modality"):
        fit(tiny_config(method="unimodal"), dataset=tiny_dataset)


def test_a_dataset_that_does_not_match_the_config_is_refused(tiny_dataset):
    with pytest.raises(ConfigError, match="train_size differ"):
        fit(tiny_config(data_knobs={**TINY_KNOBS, "train_size": 50}), dataset=tiny_dataset)


def test_tuple_knobs_survive_the_json_round_trip_of_a_finished_run(tmp_path):
    knobs = {**TINY_KNOBS, "audio_class_strength": (1, 1, 1, 1, 1, 0.5)}
    config = tiny_config(data_knobs=knobs, epochs=1, out=str(tmp_path))
    first = fit(config)
    again = fit(config)  # read back from metrics.json (lists), compared with the config (tuples)
    assert again.metrics == first.metrics | {"env": again.metrics["env"]}
    assert mmlesson.load_metrics(tmp_path)["data"]["knobs"]["audio_class_strength"] == [1, 1, 1, 1, 1, 0.5]


def test_a_killed_training_process_resumes_to_the_same_result(tmp_path):
    """SIGKILL a real `mmlesson train` after its first checkpoint, run it again, compare with a run
    that was never interrupted: same history, same final metrics."""
    import signal
    import subprocess
    import sys
    import time

    knobs = [arg for k, v in TINY_KNOBS.items() for arg in ("--data-knob", f"{k}={v}")]
    args = ["--epochs", "6", "--width", "4", "--batch-size", "16", "--no-probe", *knobs]

    def command(out):
        return [sys.executable, "-m", "mmlesson", "train", *args, "--out", str(out)]

    subprocess.run(command(tmp_path / "whole"), check=True, capture_output=True, timeout=300)
    process = subprocess.Popen(command(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "killed" / RunDirectory.CHECKPOINT
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "metrics.json").exists(), "the run finished before it could be killed"
    subprocess.run(command(tmp_path / "killed"), check=True, capture_output=True, timeout=300)
    whole, resumed = mmlesson.load_metrics(tmp_path / "whole"), mmlesson.load_metrics(tmp_path / "killed")
    assert strip_seconds(resumed["history"]) == strip_seconds(whole["history"])
    assert resumed["final"] == whole["final"]


def test_a_corrupt_checkpoint_or_metrics_file_gives_a_one_line_error(tiny_dataset, tmp_path):
    from mmlesson.errors import MMLessonError

    config = tiny_config(out=str(tmp_path))
    fit(config, dataset=tiny_dataset, stop_after=1)
    (tmp_path / RunDirectory.CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(MMLessonError, match="is unreadable.*delete it to restart"):
        fit(config, dataset=tiny_dataset)
    (tmp_path / "metrics.json").write_text("{truncated")
    with pytest.raises(MMLessonError, match="is not valid JSON.*delete it"):
        mmlesson.load_metrics(tmp_path)


def test_a_path_is_accepted_wherever_a_path_is_given(tmp_path):
    """`mmlesson.train(out=Path(...))` as `out="..."` (pathlib paths are the Python way to name a folder)."""
    metrics = mmlesson.train(data_knobs=TINY_KNOBS, epochs=1, width=4, probe=False, progress="off", out=tmp_path / "run")
    assert (tmp_path / "run" / "metrics.json").exists() and metrics["config"]["out"] == str(tmp_path / "run")


def test_the_subpackages_are_reachable_from_the_package():
    """`import mmlesson; mmlesson.data.load(...)`, as the README shows, without importing each subpackage first."""
    import subprocess
    import sys

    code = ("import mmlesson; d = mmlesson.data.load('synthav', train_size=12, val_size=6, test_size=6); "
            "print(len(d.train), mmlesson.stats.__name__, 'data' in dir(mmlesson))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["12", "mmlesson.stats", "True"]
