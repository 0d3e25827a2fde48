import json
import subprocess
import sys

import pytest
import torch

from mmlesson.cli import build_parser, main
from mmlesson.methods import METHODS
import dataclasses

from mmlesson.config import config_fields, method_option_fields

from .conftest import TINY_KNOBS


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "mmlesson", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args, fragment", [
    (["--data", "imagenet"], "unknown data set 'imagenet'; choose one of: ave, cremad, kinetics_sounds, synthav"),
    (["--method", "magic"], "unknown method 'magic'; choose one of: " + ", ".join(sorted(METHODS))),
    (["--fusion", "attention"], "unknown fusion 'attention'; choose one of: concat, film, gated, shared, sum"),
    (["--method", "unimodal"], "needs --modality audio or --modality visual"),
    (["--data-knob", "loudness=3"], "unknown SynthAV knob 'loudness'"),
    (["--data-knob", "audio_strength=-2"], "SynthAV knob audio_strength must be a number >= 0.0, got -2.0"),
    (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
    (["--alpha", "0.5"], "--alpha is an option of method agm / ogm_ge / pmr, not of 'joint'"),
    (["--method", "unimodal", "--modality", "smell"], "--modality: unknown value 'smell'; choose one of: audio, visual"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, fragment, capsys):
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert fragment in err


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    afile = tmp_path / "notes.txt"
    afile.write_text("not a run directory")
    assert main(["train", "--out", str(afile)]) == 2
    assert "is a file; give a directory" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_names_the_fix(capsys):
    assert main(["train", "--device", "cuda"]) == 2
    assert "CUDA is not available; use --device cpu or --device auto" in capsys.readouterr().err


def test_bad_names_from_a_real_process_have_no_traceback():
    result = run_cli("train", "--data", "imagenet")
    assert result.returncode == 2
    assert result.stderr.strip() == "mmlesson: error: unknown data set 'imagenet'; choose one of: ave, cremad, kinetics_sounds, synthav"


def test_help_lists_every_option_with_its_default():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    flat = " ".join(text.split())
    shared = [f for f in config_fields() if f.name != "options"]
    options = method_option_fields()
    for name in [f.name for f in shared] + list(options):
        flag = "--data-knob" if name == "data_knobs" else "--" + name.replace("_", "-")
        assert flag in flat, flag
    declared = {}
    for method in METHODS:
        for f in dataclasses.fields(METHODS[method].Options):
            declared.setdefault(f.name, []).append(method)
    for method in METHODS:  # each method's own options in a group of their own; shared ones in the shared group
        own = [f for f in dataclasses.fields(METHODS[method].Options) if declared[f.name] == [method]]
        assert f"options of --method {method}" in flat or not own
    assert "options of several methods" in flat
    assert "(default: synthav)" in flat and "(default: joint)" in flat and "(default: concat)" in flat
    assert flat.count("(default:") >= len(shared) + len(options) - 1  # every option but the repeatable knob


def test_data_list(capsys):
    assert main(["data", "list"]) == 0
    assert capsys.readouterr().out.startswith("synthav")


def test_train_from_the_command_line_writes_metrics(tmp_path):
    knobs = [arg for k, v in TINY_KNOBS.items() for arg in ("--data-knob", f"{k}={v}")]
    result = run_cli("train", "--data", "synthav", "--method", "unimodal", "--modality", "audio", "--epochs", "1",
                     "--width", "4", "--seed", "3", "--out", str(tmp_path), *knobs)
    assert result.returncode == 0, result.stderr
    assert "test acc" in result.stdout and "metrics written to" in result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["seed"] == 3 and metrics["config"]["options"] == {"modality": "audio"}
    assert metrics["config"]["data_knobs"]["train_size"] == 96
    assert set(metrics["final"]["test"]["branch_acc"]) == {"audio"}


def test_ogm_ge_from_the_command_line_records_its_coefficients(tmp_path):
    knobs = [arg for k, v in TINY_KNOBS.items() for arg in ("--data-knob", f"{k}={v}")]
    result = run_cli("train", "--method", "ogm_ge", "--alpha", "0.5", "--modulation-window", "0", "0", "--no-ge",
                     "--ogm-form", "continuous", "--epochs", "2", "--width", "4", "--no-probe", "--out", str(tmp_path),
                     *knobs)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    config = metrics["config"]["options"]
    assert (config["alpha"], config["modulation_window"], config["ge"], config["ogm_form"]) == (0.5, [0, 0], False,
                                                                                                 "continuous")
    first, second = (record["train"] for record in metrics["history"])
    assert first["modulated"] == 1.0 and min(first["coefficient"].values()) < 1.0
    assert second["modulated"] == 0.0 and second["coefficient"] == {"audio": 1.0, "visual": 1.0}
    assert first["ratio"]["audio_over_visual"] > 0


def test_an_empty_modulation_window_is_refused(capsys):
    assert main(["train", "--method", "ogm_ge", "--modulation-window", "5", "2"]) == 2
    assert "START <= END" in capsys.readouterr().err


def test_progress_says_what_happens_in_piped_output(tmp_path):
    """Piped (not a terminal) with --progress on: one line per epoch, then resumed / read back notes."""
    knobs = [arg for k, v in TINY_KNOBS.items() for arg in ("--data-knob", f"{k}={v}")]
    args = ["train", "--epochs", "3", "--width", "4", "--batch-size", "16", "--no-probe", "--progress", "on",
            "--out", str(tmp_path / "run"), *knobs]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    lines = [line for line in first.stderr.splitlines() if "epoch" in line]
    assert [line.split("  ")[0] for line in lines] == [f"joint seed 0: epoch {k}/3" for k in (1, 2, 3)]
    assert all("val acc 0." in line for line in lines)
    assert "metrics written to" in first.stdout
    again = run_cli(*args)
    assert "is complete: read back (test acc" in again.stderr and "nothing trained" in again.stderr
    assert "read back from" in again.stdout and "metrics written" not in again.stdout
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    (tmp_path / "run" / "metrics.json").unlink()
    (tmp_path / "run" / "model.pt").unlink()
    checkpoint["history"], checkpoint["epoch"] = checkpoint["history"][:1], 0  # as if killed after epoch 1
    torch.save(checkpoint, tmp_path / "run" / "checkpoint.pt")
    resumed = run_cli(*args)
    assert f"resuming {tmp_path / 'run'} from epoch 2 of 3" in resumed.stderr
    assert "epoch 1/3" not in resumed.stderr and "epoch 3/3" in resumed.stderr


def test_run_files_respect_the_umask(tmp_path):
    import os
    import stat

    knobs = [arg for k, v in TINY_KNOBS.items() for arg in ("--data-knob", f"{k}={v}")]
    previous = os.umask(0o022)
    try:
        assert main(["train", "--epochs", "1", "--width", "4", "--no-probe", "--out", str(tmp_path), *knobs]) == 0
    finally:
        os.umask(previous)
    for name in ("metrics.json", "model.pt", "checkpoint.pt", "run.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
