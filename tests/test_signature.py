"""The imbalance signature (mmlesson.signature, `mmlesson diagnose`): every row against a hand computation
on fabricated runs, then one tiny end-to-end run through the command line."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mmlesson.cli import main
from mmlesson.signature import as_json, first_epoch_at, signature

PREREGISTRATION = Path(__file__).parents[1] / "mmlesson" / "preregistration.toml"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def run(seed, acc, branch, probe, train_acc):
    return {"config": {"seed": seed}, "history": [{"train": {"acc": a}} for a in train_acc],
            "final": {"test": {"acc": acc, "branch_acc": branch, "probe_acc": probe, "per_class_acc": [0.5] * 6},
                      "val": {"acc": acc}}}


def fabricated():
    runs = {"audio only": [], "visual only": [], "joint (concat)": []}
    for seed, shift in ((0, 0.0), (1, 0.02), (2, -0.02)):
        runs["audio only"].append(run(seed, 0.60 + shift, {"audio": 0.60 + shift}, {"audio": 0.58}, [0.5, 0.96, 0.99]))
        runs["visual only"].append(run(seed, 0.62, {"visual": 0.62}, {"visual": 0.60 + shift}, [0.3, 0.6, 0.85]))
        runs["joint (concat)"].append(run(seed, 0.61 + shift, {"audio": 0.59, "visual": 0.20 + shift},
                                          {"audio": 0.57, "visual": 0.30}, [0.6, 0.97, 1.0]))
    return runs


def test_each_row_is_the_mean_over_seeds_with_a_t_interval():
    table = signature(fabricated(), oracle={"audio": 0.7, "visual": 0.8, "fused": 0.9})
    mean = table["mean"]
    assert table.attrs["weak"] == "visual" and table.attrs["dominant"] == "audio"
    assert mean["chance"] == pytest.approx(1 / 6)
    assert mean["weak alone minus joint branch"] == pytest.approx(0.62 - 0.20)
    assert mean["joint minus best unimodal"] == pytest.approx(0.61 - 0.62)  # visual alone is the best here
    assert mean["weak probe: alone minus joint"] == pytest.approx(0.60 - 0.30)
    assert mean["audio alone: epochs to train acc 0.95"] == 2 and mean["visual alone: epochs to train acc 0.80"] == 3
    assert math.isnan(mean["visual alone: epochs to train acc 0.95"])  # never reached
    assert mean["dominant fits before weak learns (share of seeds)"] == 1.0  # epoch 2 < epoch 3 on every seed
    assert mean["oracle fused minus joint"] == pytest.approx(0.9 - 0.61)
    # the visual branch over seeds is 0.20, 0.22, 0.18: t interval with 2 degrees of freedom
    half = 4.302652729911275 * 0.02 / math.sqrt(3)
    row = table.loc["joint branch visual"]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((0.20 - half, 0.20 + half))
    assert table.loc["joint branch visual", "CREMA-D"] == pytest.approx(0.1868)


def test_json_carries_the_named_means():
    result = as_json(signature(fabricated(), oracle={"audio": 0.7, "visual": 0.8, "fused": 0.9}))
    assert result["weak"] == "visual" and result["seeds"] == [0, 1, 2]
    assert result["visual"]["branch"] == pytest.approx(0.20) and result["visual"]["alone"] == pytest.approx(0.62)
    assert result["audio"]["probe"] == pytest.approx(0.57) and result["oracle"]["fused"] == 0.9
    assert result["visual"]["epochs_to_95"] is None and result["audio"]["epochs_to_95"] == 2
    json.dumps(result)  # plain JSON: no NaN


def test_targets_are_checked_against_their_bounds():
    from mmlesson.targets import check_targets

    result = as_json(signature(fabricated(), oracle={"audio": 0.7, "visual": 0.8, "fused": 0.9}))
    rows = {r["target"]: r for r in check_targets(result, {
        "weak_branch_minus_chance_at_most": 0.08, "weak_alone_minus_joint_branch_at_least": 0.20,
        "joint_minus_best_unimodal_at_most": 0.02, "oracle_fused_minus_joint_at_least": 0.10,
        "dominant_fits_before_weak_learns_share_at_least": 0.9})}
    assert rows["weak_branch_minus_chance_at_most"]["value"] == pytest.approx(0.20 - 1 / 6)
    assert rows["weak_branch_minus_chance_at_most"]["met"]  # 0.033 <= 0.08
    assert rows["weak_alone_minus_joint_branch_at_least"]["met"]  # 0.42 >= 0.20
    assert rows["oracle_fused_minus_joint_at_least"]["value"] == pytest.approx(0.29)
    assert rows["dominant_fits_before_weak_learns_share_at_least"]["met"]
    assert not check_targets(result, {"weak_branch_minus_chance_at_most": 0.02})[0]["met"]  # 0.033 > 0.02
    del result["oracle"]
    assert check_targets(result, {"oracle_fused_minus_joint_at_least": 0.1})[0]["met"] is None  # real data: unknown


def with_validation(runs, values):
    for run, value in zip(runs, values):
        run["final"]["val"] = {"acc": value}
    return runs


def test_best_unimodal_is_the_better_model_on_average_never_a_per_seed_maximum():
    runs = fabricated()
    for run, acc in zip(runs["audio only"], (0.70, 0.50, 0.50)):  # audio wins seed 0 only; visual (0.62) on average
        run["final"]["test"]["acc"] = acc
    table = signature(runs)
    assert table.attrs["best_unimodal"] == "visual"
    # per seed: joint - visual alone (0.61, 0.63, 0.59 - 0.62), never joint - max(audio, visual) (0.61 - 0.70 on seed 0)
    assert table["mean"]["joint minus best unimodal"] == pytest.approx(0.61 - 0.62)


def test_precision_ensemble_and_rerun_rows_by_hand():
    runs = fabricated()
    with_validation(runs["joint (concat)"], (0.60, 0.63, 0.57))  # tracks test (0.61, 0.63, 0.59): r > 0
    rerun = [run(s, acc, {"audio": 0.59, "visual": 0.20 + d}, None, [1.0])
             for s, acc, d in ((0, 0.62, 0.0), (1, 0.60, 0.01), (2, 0.60, -0.01))]
    table = signature(runs, oracle={"audio": 0.7, "visual": 0.8, "fused": 0.9}, ensemble=[0.70, 0.66, 0.68],
                      rerun=rerun)
    precision = table.attrs["precision"]
    assert precision["joint_fused_sd"] == pytest.approx(0.02)  # 0.61, 0.63, 0.59
    assert precision["val_test_correlation"] == pytest.approx(np.corrcoef([0.60, 0.63, 0.57], [0.61, 0.63, 0.59])[0, 1])
    changes = np.array([0.62 - 0.61, 0.60 - 0.63, 0.60 - 0.59])
    assert precision["rerun_mean_abs_change_fused"] == pytest.approx(np.abs(changes).mean())
    assert precision["rerun_sd_change_fused"] == pytest.approx(changes.std(ddof=1))
    assert precision["rerun_mean_abs_change_branch_visual"] == pytest.approx((0.0 + 0.01 + 0.01) / 3)  # 0.20, 0.22, 0.18 -> 0.20, 0.21, 0.19
    assert table["mean"]["unimodal ensemble minus best unimodal"] == pytest.approx(0.68 - 0.62)
    result = as_json(table)
    assert [row["seed"] for row in result["per_seed"]] == [0, 1, 2]
    assert result["per_seed"][0]["unimodal ensemble"] == 0.70 and result["precision"]["seeds"] == 3
    from mmlesson.signature import render
    from mmlesson.targets import check_targets

    rows = {r["target"]: r for r in check_targets(result, {
        "joint_fused_sd_at_most": 0.03, "rerun_mean_abs_change_at_most": 0.01, "val_test_correlation_at_least": 0.5,
        "ensemble_minus_best_unimodal_at_least": 0.05, "weak_alone_minus_dominant_alone_at_least": 0.0})}
    assert rows["joint_fused_sd_at_most"]["met"] and not rows["rerun_mean_abs_change_at_most"]["met"]
    assert rows["ensemble_minus_best_unimodal_at_least"]["value"] == pytest.approx(0.06)
    assert rows["weak_alone_minus_dominant_alone_at_least"]["value"] == pytest.approx(0.62 - 0.60)
    printed = render(table)
    assert "varies by 0.020 (sd) over 3 seeds" in printed and "another float order" in printed
    without = as_json(signature(fabricated()))
    assert check_targets(without, {"rerun_mean_abs_change_at_most": 0.02})[0]["met"] is None  # not re-executed


def test_probability_average_by_hand():
    import torch

    from mmlesson.analysis.ensemble import probability_average_accuracy

    class Fixed(torch.nn.Module):  # returns stored logits for the batch's indices
        def __init__(self, logits):
            super().__init__()
            self.stored = torch.tensor(logits)

        def forward(self, batch):
            return type("Output", (), {"logits": self.stored[batch["index"]]})()

    class Split:
        def batches(self, batch_size, device=None):
            yield {"index": torch.arange(3), "label": torch.tensor([0, 1, 1])}

    # audio: confident 0, unsure, confident 0; visual: unsure, confident 1, slightly 1
    audio = Fixed([[4.0, 0.0], [0.1, 0.0], [3.0, 0.0]])
    visual = Fixed([[0.0, 0.2], [0.0, 4.0], [0.0, 1.0]])
    # averaged probabilities: clip 0 -> 0 (right), clip 1 -> 1 (right), clip 2 -> 0 (audio's confidence wins: wrong)
    assert probability_average_accuracy([audio, visual], Split()) == pytest.approx(2 / 3)


def test_first_epoch_at():
    assert first_epoch_at([0.1, 0.95, 0.9], 0.95) == 2
    assert math.isnan(first_epoch_at([0.1, 0.5], 0.95))


def test_diagnose_from_the_command_line_trains_then_reads_back(tmp_path, capsys):
    args = ["diagnose", "--seeds", "0", "1", "--epochs", "1", "--results", str(tmp_path / "store"), "--workers", "1",
            "--data-knob", "train_size=96", "--data-knob", "val_size=48", "--data-knob", "test_size=48",
            "--json", str(tmp_path / "signature.json"), "--targets", str(PREREGISTRATION)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "joint branch visual" in printed and "CREMA-D" in printed and "targets met" in printed
    result = json.loads((tmp_path / "signature.json").read_text())
    assert result["seeds"] == [0, 1] and set(result["audio"]) >= {"alone", "branch", "probe"}
    assert 0 <= result["fused"] <= 1 and result["oracle"]["fused"] >= result["oracle"]["audio"]
    # the default SynthAV regime's targets (the second calibration's eleven); without --rerun-threads the
    # re-execution target is not measured, and two seeds give no correlation
    assert len(result["targets"]) == 11
    assert ({row["target"] for row in result["targets"] if row["value"] is None}
            == {"rerun_mean_abs_change_at_most", "val_test_correlation_at_least"})
    assert len(result["per_seed"]) == 2 and 0 <= result["per_seed"][0]["unimodal ensemble"] <= 1
    stored = list((tmp_path / "store").glob("synthav-*/*/seed*/metrics.json"))
    assert len(stored) == 6  # three baselines x two seeds, each seed with its own data set
    assert main(args) == 0  # read back: same signature
    assert json.loads((tmp_path / "signature.json").read_text()) == result


@pytest.mark.parametrize("extra, fragment", [
    (["--data", "cremad"], "needs --root"),
    (["--recipe", "arl-cremad"], "is for data set 'cremad'"),
    (["--recipe", "nosuch"], "no recipe 'nosuch'"),
    (["--seeds", "-1"], "non-negative"),
    (["--data-knob", "nosuch=1"], "unknown SynthAV knob"),
    (["--targets", str(PREREGISTRATION.parents[1] / "pyproject.toml")], "has no [targets] table"),
    (["--targets", "/nonexistent.toml"], "cannot read it"),
])
def test_bad_input_gets_one_line(tmp_path, capsys, extra, fragment):
    assert main(["diagnose", "--results", str(tmp_path), "--workers", "1", "--epochs", "1", *extra]) != 0
    error = capsys.readouterr().err.strip()
    assert fragment in error and len(error.splitlines()) == 1


def test_the_second_calibration_is_the_recipe_its_preregistration_froze():
    import tomllib

    from mmlesson.recipes import RECIPES
    from mmlesson.targets import targets_for

    document = tomllib.loads(PREREGISTRATION.read_text())
    section, recipe = document["severe_v2"], RECIPES["synthav-severe-v2"]
    for knob, value in section["knobs"].items():
        recipe_value = recipe.data_knobs[knob]
        assert (recipe_value[0] if isinstance(recipe_value, tuple) else recipe_value) == value, knob
    for field, value in section["train"].items():
        assert recipe.train[field] == (tuple(value) if isinstance(value, list) else value), field
    assert targets_for(document, "synthav-severe-v2") == section["targets"]
    assert targets_for(document, "synthav-severe") == document["targets"]  # the first calibration's, unchanged
    assert set(section["targets"]) <= set(__import__("mmlesson.targets").targets.TARGETS)
