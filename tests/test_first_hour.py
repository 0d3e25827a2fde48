"""What a new user meets in the first hour: `replicate`'s quick try with staged methods and `--set`, `report`'s
CSV, a failed run's reason in its table row, and a `diagnose` that checks its output before training, explains
its verdict and says what it diagnosed."""
import json
import math
import os

import pandas as pd
import pytest

import mmlesson
import mmlesson.cluster
from mmlesson.studies import PREREGISTRATION
from mmlesson.cli import build_parser, main
from mmlesson.errors import ConfigError
from mmlesson.grid import Grid, load_grid
from mmlesson.signature import render, signature
from mmlesson.tables import numeric_table, paper_table

from .conftest import tiny_grid_text

STAGED_GRID = tiny_grid_text("staged", """
[arms.joint]
method = "joint"
[arms.CCAT]
method = "ccat"
classifier_epochs = 4
""", epochs=8)


@pytest.fixture
def staged_grid(tmp_path):
    path = tmp_path / "staged.toml"
    path.write_text(STAGED_GRID)
    return path


def one_error_line(capsys) -> str:
    """The one error line of a refused command (an informational line about the grid may precede it)."""
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_epochs_scale_a_methods_stages_and_the_quick_try_trains(staged_grid, tmp_path, capsys):
    """`--epochs 2` cuts CCAT's classifier pre-training (4 of 8 epochs) to 1 of 2, so every run trains."""
    assert load_grid(staged_grid).scaled_options(2) == {"CCAT": {"classifier_epochs": 1}}
    assert load_grid(staged_grid).scaled_options(6) == {"CCAT": {"classifier_epochs": 3}}  # 4 x 6/8
    assert load_grid(staged_grid).scaled_options(5) == {"CCAT": {"classifier_epochs": 3}}  # 2.5 rounds half up
    assert main(["replicate", str(staged_grid), "--results", str(tmp_path / "r"), "--epochs", "2", "--workers", "1",
                 "--progress", "off"]) == 0
    out = capsys.readouterr()
    assert "classifier_epochs=1" in out.err
    assert "| CCAT" in out.out and "note" not in out.out  # both rows complete


def test_epochs_keep_each_arms_share_of_its_schedule():
    """`--epochs 10` on the field's 100-epoch CREMA-D grid: every option counted in epochs keeps its share, arm by
    arm (OGM-GE's and PMR's windows differ), rounded half up, at least one epoch, a window's first epoch 0."""
    grid = load_grid("field-cremad")
    scaled = grid.cut_to(10)
    assert scaled == {
        "OGM-GE": {"modulation_window": (0, 5)},            # 50 x 10/100
        "CCAT": {"classifier_epochs": 1},                   # 4 x 10/100 = 0.4: at least one
        "G-Blending": {"super_epoch": 1},                   # 10 x 10/100
        "PMR": {"modulation_window": (0, 7), "per_epochs": 1},  # 70 and 10 x 10/100
        "Diagnosing & Re-learning": {"relearn_every": 2},   # 20 x 10/100
        "InfoReg": {"trace_average": 1},                    # 10 x 10/100
        "ReconBoost": {"boost_epochs": 1, "rectify_epochs": 1},  # 4 x 10/100 = 0.4
        "OPM": {"warmup_epochs": 1},                        # 6 x 10/100 = 0.6
    }
    assert grid.train["epochs"] == 10
    assert grid.arms["PMR"]["modulation_window"] == (0, 7) and grid.arms["OGM-GE"]["modulation_window"] == (0, 5)
    assert "super_epoch" not in grid.cut_to(10, given=["super_epoch"]).get("G-Blending", {})


def test_set_takes_a_methods_option_and_a_stage_that_does_not_fit_is_refused_before_training(staged_grid, tmp_path,
                                                                                            capsys):
    results = tmp_path / "r"
    assert main(["replicate", str(staged_grid), "--results", str(results), "--epochs", "2", "--set",
                 "classifier_epochs=2", "--dry-run"]) == 2
    assert "'CCAT'" in one_error_line(capsys) and not results.exists()
    assert main(["replicate", str(staged_grid), "--results", str(results), "--set", "classifier_epochs=2",
                 "--dry-run"]) == 0
    assert capsys.readouterr().out.count("would train") == 2
    assert main(["replicate", str(staged_grid), "--results", str(results), "--set", "clasifier_epochs=2",
                 "--dry-run"]) == 2
    assert "did you mean classifier_epochs?" in one_error_line(capsys)
    assert main(["replicate", str(staged_grid), "--results", str(results), "--epochs", "1", "--dry-run"]) == 2
    assert "2 epochs or more" in one_error_line(capsys)


def test_a_repeated_seed_is_refused_not_dropped(staged_grid, tmp_path, capsys):
    assert main(["replicate", str(staged_grid), "--results", str(tmp_path / "r"), "--seeds", "0", "0",
                 "--dry-run"]) == 2
    assert "seed 0 is given twice" in one_error_line(capsys)


def test_a_failed_runs_reason_stands_in_its_row_and_the_csv_holds_numbers():
    grid = Grid(name="g", arms={"a": {"method": "joint"}, "b": {"method": "joint"}}, seeds=[0, 1],
                data={"d": {"data": "synthav"}})
    runs = pd.DataFrame([
        {"data": "d", "arm": "a", "seed": 0, "status": "complete", "acc": 0.5, "macro_f1": 0.4, "error": None},
        {"data": "d", "arm": "a", "seed": 1, "status": "complete", "acc": 0.7, "macro_f1": 0.6, "error": None},
        {"data": "d", "arm": "b", "seed": 0, "status": "failed", "acc": math.nan, "macro_f1": math.nan,
         "error": "ConfigError: stages do not fit"},
        {"data": "d", "arm": "b", "seed": 1, "status": "complete", "acc": 0.6, "macro_f1": 0.5, "error": None}])
    table = paper_table(runs, grid).set_index("arm")
    assert table.loc["a", "note"] == "" and table.loc["b", "note"] == "1 of 2 runs not complete: ConfigError: stages do not fit"
    numbers = numeric_table(runs, grid).set_index("arm")
    assert numbers.loc["a", "acc_mean"] == pytest.approx(60.0) and numbers.loc["a", "acc_std"] == pytest.approx(
        math.sqrt(200))
    assert numbers.loc["b", "n"] == 1 and math.isnan(numbers.loc["a", "acc_paper"])
    complete = runs[runs["status"] == "complete"]
    assert "note" not in paper_table(complete, grid).columns  # no column of blanks where every run finished


def test_a_cluster_gets_the_store_as_an_absolute_path(staged_grid, tmp_path, monkeypatch):
    seen = {}

    def record(executor, tasks, *args, **kwargs):
        seen["dirs"] = [task.args[0] for task in tasks]  # train_in_subprocess(run_dir, ...)
        return {}

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mmlesson.cluster.Executor, "run_on_dask", record)
    mmlesson.runner.run_grid(load_grid(staged_grid), "relative-store", scheduler="tcp://127.0.0.1:9", quiet=True)
    assert seen["dirs"] and all(os.path.isabs(d) for d in seen["dirs"])


# diagnose

def fabricated_runs(audio_alone, visual_alone, audio_branch, visual_branch, seeds=(0, 1, 2), classes=6):
    """Baseline metrics as ``seed_rows`` reads them, with the given test accuracies (the same on every seed but
    for a small per-seed wobble)."""
    def metrics(seed, acc, branches):
        wobble = 0.01 * seed
        test = {"acc": acc + wobble, "per_class_acc": [0.0] * classes,
                "branch_acc": {m: v + wobble for m, v in branches.items()}, "probe_acc": {}}
        return {"config": {"seed": seed}, "final": {"test": test, "val": {"acc": acc}},
                "history": [{"train": {"acc": 0.5}}, {"train": {"acc": 0.99}}]}

    return {"audio only": [metrics(s, audio_alone, {"audio": audio_alone}) for s in seeds],
            "visual only": [metrics(s, visual_alone, {"visual": visual_alone}) for s in seeds],
            "joint (concat)": [metrics(s, max(audio_branch, visual_branch), {"audio": audio_branch,
                                                                             "visual": visual_branch}) for s in seeds]}


def test_diagnose_names_the_weak_modality_with_its_definition_and_compares_with_cremad():
    text = render(signature(fabricated_runs(0.6, 0.55, 0.58, 0.2)))
    assert "weak modality: visual, the one that loses most by being trained jointly" in text
    assert "a starvation of +0.350" in text and "Against CREMA-D: there the visual modality starves by 0.435" in text
    assert "here visual starves by 0.350" in text


def test_diagnose_says_no_modality_starves_when_none_does():
    table = signature(fabricated_runs(0.6, 0.55, 0.6, 0.55))
    assert table.attrs["starves"] is False
    assert "no modality starves" in render(table) and "here no modality starves" in render(table)


def test_diagnose_names_no_weak_modality_when_both_models_are_at_chance():
    table = signature(fabricated_runs(1 / 6 - 0.02, 1 / 6 - 0.01, 0.15, 0.14))
    assert table.attrs["starves"] is None
    assert "neither modality alone learns beyond chance" in render(table) and "weak modality:" not in render(table)


def test_diagnose_refuses_bad_seeds_from_python_in_one_line():
    with pytest.raises(ConfigError, match="seeds must be a list of integers"):
        mmlesson.diagnose(seeds=0)


def test_diagnose_checks_its_json_path_before_it_trains(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    store = tmp_path / "store"
    assert main(["diagnose", "--results", str(store), "--json", str(blocker / "signature.json"), "--epochs", "1"]) == 2
    assert "--json" in one_error_line(capsys) and not store.exists()


def test_diagnose_finds_the_shipped_preregistration_by_name_from_anywhere(tmp_path, monkeypatch, capsys):
    from mmlesson.cli.diagnose import targets_file

    monkeypatch.chdir(tmp_path)
    assert targets_file("preregistration.toml") == PREREGISTRATION
    assert targets_file("mmlesson/preregistration.toml") == PREREGISTRATION
    assert targets_file("preregistration") == PREREGISTRATION
    mine = tmp_path / "preregistration.toml"
    mine.write_text("[targets]\n")
    assert targets_file("preregistration.toml") == mine.relative_to(tmp_path)  # a file of one's own comes first


def test_diagnose_help_prints_percent_signs_once(capsys):
    with pytest.raises(SystemExit):
        build_parser("diagnose").parse_args(["diagnose", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # as wrapped to the terminal's width
    assert "with 95% CIs over seeds" in text and "%%" not in text


def test_diagnose_records_what_it_diagnosed(tmp_path, capsys):
    args = ["diagnose", "--seeds", "0", "--epochs", "1", "--results", str(tmp_path / "store"), "--workers", "1",
            "--data-knob", "train_size=96", "--data-knob", "val_size=48", "--data-knob", "test_size=48",
            "--json", str(tmp_path / "signature.json")]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("diagnosed: synthav under recipe synthav-severe-v2 (epochs 1, learning rate ")
    assert "Against CREMA-D:" in printed
    provenance = json.loads((tmp_path / "signature.json").read_text())["provenance"]
    assert provenance["recipe"] == "synthav-severe-v2" and provenance["epochs"] == 1 and provenance["seeds"] == [0]
    assert provenance["data_knobs"] == {"train_size": 96, "val_size": 48, "test_size": 48}
