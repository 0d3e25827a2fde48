"""mmlesson.precision: what a test split's clustered errors are worth, paired spreads and the precision table,
against hand computations on fabricated values."""
import numpy as np
import pandas as pd
import pytest

from mmlesson.precision import block_summary, calibration_candidates, paired_spreads, precision_table
from mmlesson.stats import half_width, seeds_for_half_width


def test_one_speaker_right_one_wrong_is_worth_one_clip():
    summary = block_summary([1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1])
    # a = 0.5; per speaker 1 and 0, weights 1/2: var = 2/1 x (1/4 x 1/4 + 1/4 x 1/4) = 1/4; a(1-a)/var = 1
    assert summary["accuracy"] == 0.5 and summary["effective_clips"] == pytest.approx(1.0)
    assert summary["speakers"] == 2 and summary["per_speaker"] == [1.0, 0.0]


def test_a_speaker_per_clip_is_worth_about_every_clip():
    rng = np.random.default_rng(0)
    right = (rng.random(400) < 0.6).astype(float)
    summary = block_summary(right, np.arange(400))
    # var = 1/(n-1) x mean (r - a)^2 = a(1-a)/(n-1): n - 1 effective clips
    assert summary["effective_clips"] == pytest.approx(399)
    mixed = block_summary(right, np.arange(400) % 8)  # errors spread evenly over speakers: still about every clip
    assert mixed["effective_clips"] > 100


def test_paired_spreads_by_hand():
    values = {"joint (concat)": [0.5, 0.6, 0.7], "A": [0.55, 0.62, 0.78], "B": [0.5, 0.6, 0.7]}
    spreads = paired_spreads(values, "joint (concat)")
    assert spreads["A"] == pytest.approx(np.std([0.05, 0.02, 0.08], ddof=1)) and spreads["B"] == 0.0


def test_precision_table_from_a_fabricated_study():
    rows = [{"audio alone": 0.5 + d, "visual alone": 0.6 - d, "joint fused": 0.55 + 2 * d} for d in (0.0, 0.01, 0.03)]
    study = {"severe": {"precision": {"joint_fused_sd": 0.03, "val_test_correlation": 0.9,
                                      "rerun_mean_abs_change_fused": 0.01}, "per_seed": rows}}
    table = precision_table(study, seeds=3, target=0.03)
    row = table.loc["severe"]
    audio = np.std([-0.05 - d for d in (0.0, 0.01, 0.03)], ddof=1)  # audio - joint = -0.05 - d
    visual = np.std([0.05 - 3 * d for d in (0.0, 0.01, 0.03)], ddof=1)
    median = np.median([audio, visual])
    assert row["paired spread vs joint, median"] == pytest.approx(median) and row["paired spreads of"] == "unimodal baselines"
    assert row["half-width at 3 seeds, median"] == pytest.approx(half_width(median, 3))
    assert row["seeds for ±0.03, median"] == seeds_for_half_width(median, 0.03)
    glance = pd.DataFrame([{"regime": "severe", "arm": arm, "seed": s, "test acc": v}
                           for arm, values in {"joint (concat)": [0.5, 0.6, 0.7], "X": [0.6, 0.6, 0.9]}.items()
                           for s, v in enumerate(values)])
    with_glance = precision_table(study, glance, seeds=3).loc["severe"]
    assert with_glance["paired spread vs joint, median"] == pytest.approx(np.std([0.1, 0.0, 0.2], ddof=1))
    assert with_glance["paired spreads of"] == "every arm"


def test_rerun_tolerance_is_three_spreads_rounded_up_never_below_the_floor():
    from mmlesson.precision import rerun_tolerance

    study = {"severe": {"precision": {"rerun_sd_change_fused": 0.0533, "rerun_sd_change_branch_audio": 0.0437}},
             "mild": {"precision": {"rerun_sd_change_fused": 0.0088, "rerun_sd_change_branch_visual": 0.0142}}}
    assert rerun_tolerance("severe", "test acc", study) == pytest.approx(0.16)  # 3 x 0.0533 = 0.1599 -> 0.160
    assert rerun_tolerance("severe", "val acc", study) == pytest.approx(0.16)  # validation: the fused spread
    assert rerun_tolerance("severe", "branch audio", study) == pytest.approx(0.135)  # 0.1311 -> 0.135
    assert rerun_tolerance("mild", "test acc", study) == pytest.approx(0.03)  # 0.0264: the floor
    assert rerun_tolerance("regime B", "branch visual", study) == pytest.approx(0.045)  # the mild regime's 0.0426


def test_each_calibration_candidate_is_summarised_by_hand(tmp_path):
    """Two tuning seeds of one candidate, the joint run of seed 0 re-executed: each column by hand."""
    import json

    rows = []
    for seed, (audio, visual, joint, branch, ensemble) in enumerate([(0.50, 0.60, 0.55, 0.20, 0.62),
                                                                     (0.40, 0.58, 0.45, 0.24, 0.60)]):
        for arm, acc in (("audio", audio), ("visual", visual)):
            rows.append({"candidate": 1, "name": "c", "knobs": json.dumps({"eval_speakers": 800}), "train": "{}",
                         "seed": 100 + seed, "threads": 1, "arm": arm, "test_acc": acc})
        rows.append({"candidate": 1, "name": "c", "knobs": json.dumps({"eval_speakers": 800}),
                     "train": "{}", "seed": 100 + seed, "threads": 1, "arm": "joint",
                     "test_acc": joint, "branch_visual": branch, "ensemble_acc": ensemble})
    rows.append({**rows[2], "threads": 2, "test_acc": 0.58})  # seed 0's joint run, two threads
    path = tmp_path / "calibration.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    row = calibration_candidates(path).loc["c"]
    assert row["knobs"] == "eval_speakers=800" and row["tuning seeds"] == 2
    assert row["visual starvation"] == pytest.approx(((0.60 - 0.20) + (0.58 - 0.24)) / 2)
    assert row["visual branch minus chance"] == pytest.approx(0.22 - 1 / 6)
    assert row["joint fused sd"] == pytest.approx(np.std([0.55, 0.45], ddof=1))
    assert row["ensemble minus best unimodal"] == pytest.approx(((0.62 - 0.60) + (0.60 - 0.58)) / 2)  # visual is best
    assert row["two-thread change"] == pytest.approx(0.03)
