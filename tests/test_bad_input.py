"""Bad input, as a user types it: every case gives one line that names the problem and the fix, the
right exit code (2: usage, 1: runtime), no traceback, and leaves what was already written untouched."""
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mmlesson
from mmlesson import TrainConfig
from mmlesson.cli import main
from mmlesson.errors import ConfigError, MMLessonError
from mmlesson.methods.ogm_ge import OGMGEOptions

from .conftest import TINY_KNOBS

TINY = [arg for k, v in TINY_KNOBS.items() for arg in ("--data-knob", f"{k}={v}")]
FAST = ["--width", "4", "--epochs", "1", "--batch-size", "16", "--no-probe", "--progress", "off", *TINY]


def snapshot(path: Path) -> dict:
    """Every file under ``path`` with the digest of its bytes."""
    if path.is_file():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "joint"
    assert main(["train", *FAST, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def unimodal_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "audio"
    assert main(["train", "--method", "unimodal", "--modality", "audio", *FAST, "--out", str(out)]) == 0
    return out


@pytest.fixture
def raw_media(tmp_path):
    raw = tmp_path / "raw"
    (raw / "AudioWAV").mkdir(parents=True)
    (raw / "VideoFlash").mkdir()
    return raw


def run_main(args) -> int:
    try:
        return main(args)
    except SystemExit as stop:  # argparse's usage errors
        return stop.code


def check_cli(args, code, fragment, capsys, keep: Path | None = None):
    before = snapshot(keep) if keep is not None else None
    assert run_main(args) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err and fragment in err, err
    if keep is not None:
        assert snapshot(keep) == before, "a failing command changed what was already written"


TRAIN_CASES = [
    (["--data", "imagenet"], 2, "unknown data set 'imagenet'; choose one of: ave, cremad, kinetics_sounds, synthav"),
    (["--method", "magic"], 2, "unknown method 'magic'; choose one of:"),
    (["--fusion", "attention"], 2, "unknown fusion 'attention'; choose one of: concat, film, gated, shared, sum"),
    (["--method", "unimodal"], 2, "method 'unimodal' needs --modality audio or --modality visual"),
    (["--modality", "audio"], 2, "--modality is an option of method unimodal, not of 'joint'"),
    (["--alpha", "0.5"], 2, "--alpha is an option of method ogm_ge, not of 'joint'"),
    (["--method", "arl", "--alpha", "0.5"], 2, "--alpha is an option of method ogm_ge, not of 'arl'"),
    (["--data-knob", "loudness=3"], 2, "unknown SynthAV knob 'loudness'; valid knobs:"),
    (["--data-knob", "visual_strength=abc"], 2, "SynthAV knob visual_strength must be a finite number, got 'abc'"),
    (["--data-knob", "audio_strength=nan"], 2, "SynthAV knob audio_strength must be a finite number, got 'nan'"),
    (["--data-knob", "train_size=1.5"], 2, "SynthAV knob train_size must be an integer, got 1.5"),
    (["--data-knob", "train_size=0"], 2, "SynthAV knob train_size must be a positive integer, got 0"),
    (["--data-knob", "uninformative_modality=smell"], 2, "unknown value 'smell'; choose one of: audio, visual, either"),
    (["--data-knob", "audio_class_strength=1,2"], 2, "audio_class_strength needs one value per class (6), got 2"),
    (["--data-knob", "noequals"], 2, "expected NAME=VALUE, got 'noequals'"),
    (["--epochs", "0"], 2, "--epochs must be a positive integer, got 0"),
    (["--epochs", "x"], 2, "argument --epochs: invalid int value: 'x'"),
    (["--lr", "0"], 2, "--lr must be > 0.0, got 0.0"),
    (["--lr", "nan"], 2, "--lr must be a finite number, got nan"),
    (["--lr-milestones", "-3"], 2, "--lr-milestones must be a positive integer, got (-3,)"),
    (["--batch-size", "0"], 2, "--batch-size must be a positive integer, got 0"),
    (["--momentum", "-1"], 2, "--momentum must be a number >= 0.0, got -1.0"),
    (["--device", "tpu"], 2, "--device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    (["--progress", "loud"], 2, "--progress: unknown value 'loud'; choose one of: auto, on, off"),
    (["--method", "ogm_ge", "--modulation-window", "5", "2"], 2, "--modulation-window must be START END with START <= END"),
    (["--method", "ogm_ge", "--ogm-form", "smooth"], 2, "--ogm-form: unknown value 'smooth'; choose one of: jump, continuous"),
    (["--encoder-grad-scale", "0", "1"], 2, "--encoder-grad-scale must be > 0.0"),
    (["--method", "frozen_encoders"], 2, "needs --encoders-from AUDIO_RUN VISUAL_RUN"),
    (["--data", "cremad"], 2, "cremad needs the root of a prepared cache (data_root / --data-root / root=); prepare one "
                              "with: mmlesson data prepare cremad --raw RAW --root ROOT"),
    (["--data", "cremad", "--root", "/nonexistent/cache"], 2, "no prepared cremad cache at /nonexistent/cache; prepare one"),
    (["--data", "cremad", "--data-knob", "augment=maybe"], 2, "knob augment must be true or false, got 'maybe'"),
    (["--data", "cremad", "--data-knob", "split=random"], 2, "unknown split 'random' for cremad; choose one of: ogm_ge, speaker"),
    (["--data", "cremad", "--data-knob", "train_size=10"], 2, "unknown cremad knob 'train_size'; valid knobs: split"),
]


@pytest.mark.parametrize("args, code, fragment", TRAIN_CASES, ids=[" ".join(c[0]) for c in TRAIN_CASES])
def test_train_refuses_bad_options(args, code, fragment, capsys):
    check_cli(["train", *args], code, fragment, capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(capsys):
    check_cli(["train", "--device", "cuda"], 2, "CUDA is not available; use --device cpu or --device auto", capsys)


def test_the_raw_folder_given_as_the_cache(raw_media, capsys):
    check_cli(["train", "--data", "cremad", "--root", str(raw_media)], 2,
              f"holds raw cremad media, not a prepared cache; build one elsewhere with: mmlesson data prepare cremad "
              f"--raw {raw_media} --root CACHE_DIR", capsys)


def test_output_paths_are_checked_before_training(tmp_path, capsys):
    afile = tmp_path / "notes.txt"
    afile.write_text("my notes")
    check_cli(["train", *FAST, "--out", str(afile)], 2, "is a file; give a directory", capsys, keep=afile)
    check_cli(["train", *FAST, "--out", str(afile / "run")], 2, "cannot be created", capsys, keep=afile)
    check_cli(["train", *FAST, "--out", "/proc/nope/run"], 2, "--out /proc/nope/run cannot be created", capsys)


def test_damaged_run_files_name_the_fix_and_stay_as_they_were(finished_run, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(finished_run, broken)
    (broken / "metrics.json").write_text("{}")
    check_cli(["train", *FAST, "--out", str(broken)], 1, "is not an mmlesson metrics.json (no config, history, final)",
              capsys, keep=broken)
    check_cli(["recalibrate", "--run", str(broken)], 1, "is not an mmlesson metrics.json", capsys, keep=broken)
    (broken / "metrics.json").write_text("{truncated")
    check_cli(["train", *FAST, "--out", str(broken)], 1, "is not valid JSON", capsys, keep=broken)

    corrupt_model = tmp_path / "model"
    shutil.copytree(finished_run, corrupt_model)
    (corrupt_model / "model.pt").write_bytes(b"not a model")
    check_cli(["train", *FAST, "--out", str(corrupt_model)], 1, "model.pt is unreadable (", capsys, keep=corrupt_model)

    foreign = tmp_path / "checkpoint"
    foreign.mkdir()
    torch.save({"something": "else"}, foreign / "checkpoint.pt")
    (foreign / "run.json").write_text((finished_run / "run.json").read_text())
    check_cli(["train", *FAST, "--out", str(foreign)], 1, "is not an mmlesson checkpoint; delete it to restart", capsys,
              keep=foreign)


def test_a_run_directory_holding_another_run(finished_run, capsys):
    check_cli(["train", *FAST, "--lr", "0.01", "--out", str(finished_run)], 2,
              "holds another run (train.lr differ); give another --out", capsys, keep=finished_run)


def test_a_run_directory_of_an_older_layout(tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "metrics.json").write_text(json.dumps({"config": {"method": "joint"}, "history": [], "final": {}}))
    (old / "model.pt").write_bytes(b"")
    check_cli(["train", *FAST, "--out", str(old)], 2, "written by an older mmlesson (no run identity)", capsys, keep=old)


def test_recalibrate(unimodal_run, tmp_path, capsys):
    check_cli(["recalibrate", "--run", str(tmp_path / "missing")], 1, "holds no complete run (no metrics.json)", capsys)
    check_cli(["recalibrate", "--run", str(unimodal_run)], 2, "is a unimodal run; recalibration needs a model with both",
              capsys, keep=unimodal_run)
    check_cli(["recalibrate"], 2, "the following arguments are required: --run", capsys)


def test_data_prepare(raw_media, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    check_cli(["data", "prepare", "imagenet", "--raw", str(raw_media), "--root", "r"], 2, "invalid choice: 'imagenet'",
              capsys)
    check_cli(["data", "prepare", "cremad", "--raw", str(tmp_path / "nope"), "--root", "r"], 2,
              "is not a directory; give a directory holding AudioWAV/", capsys)
    check_cli(["data", "prepare", "cremad", "--raw", str(raw_media), "--root", str(afile)], 2,
              "is a file; give a directory for the cache", capsys, keep=afile)
    check_cli(["data", "prepare", "cremad", "--raw", str(raw_media), "--root", "r", "--workers", "0"], 2,
              "argument --workers: must be a positive integer, got 0", capsys)
    check_cli(["data", "prepare", "cremad", "--raw", str(raw_media), "--root", str(raw_media)], 2,
              "--root and --raw are the same directory", capsys)
    check_cli(["data", "prepare", "kinetics_sounds", "--download", "--raw", str(raw_media), "--root", "r"], 2,
              "videos are not redistributable", capsys)


def test_commands_without_what_they_need(tmp_path, capsys):
    check_cli([], 2, "the following arguments are required: {train,recalibrate,replicate,report,diagnose,data}", capsys)
    check_cli(["data"], 2, "the following arguments are required: {list,prepare}", capsys)
    check_cli(["data", "list", "extra"], 2, "unrecognized arguments: extra", capsys)
    check_cli(["replicate", "no-such-grid"], 2, "no grid file 'no-such-grid'; give a .toml path or one of the shipped",
              capsys)
    check_cli(["report", str(tmp_path)], 2, "holds no grid results", capsys)


def test_interruption_and_debug(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("mmlesson.cli.run_command", interrupted)
    check_cli(["data", "list"], 130, "interrupted; run the same command again to resume", capsys)
    monkeypatch.undo()
    assert run_main(["--debug", "train", "--data-knob", "train_size=0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("SynthAV knob train_size must be a positive integer, got 0")


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"mmlesson {mmlesson.__version__}"


def test_from_a_real_process_there_is_no_traceback():
    result = subprocess.run([sys.executable, "-m", "mmlesson", "train", "--data-knob", "visual_strength=abc"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == "mmlesson: error: SynthAV knob visual_strength must be a finite number, got 'abc'\n"


PYTHON_CASES = [
    (lambda: mmlesson.train(audio_strength=0.3), "'audio_strength' is a data knob: pass data_knobs={'audio_strength': ...}"),
    (lambda: mmlesson.train(alpha=0.5), "--alpha is an option of method ogm_ge, not of 'joint'"),
    (lambda: mmlesson.train(learning_rate=0.1), "unknown option 'learning_rate' for method 'joint'; valid:"),
    (lambda: mmlesson.fit(TrainConfig(), epochs=3), "give either a TrainConfig or keyword options, not both"),
    (lambda: mmlesson.data.load("synthav", epochs=3), "unknown SynthAV knob 'epochs'"),
    (lambda: mmlesson.data.load("cremad"), "cremad needs the root of a prepared cache"),
    (lambda: TrainConfig.build(method="ogm_ge", modulation_window=(1,)), "--modulation-window takes 2 values, got 1"),
    (lambda: TrainConfig(method="joint", options=OGMGEOptions()), "method 'joint' takes JointOptions, got OGMGEOptions"),
    (lambda: TrainConfig.build(epochs=True), "--epochs must be an integer, got True"),
]


@pytest.mark.parametrize("call, fragment", PYTHON_CASES, ids=range(len(PYTHON_CASES)))
def test_python_api_errors_name_the_fix(call, fragment):
    import mmlesson.data  # noqa: F401 (the submodule used by some cases)

    with pytest.raises(MMLessonError) as error:
        call()
    assert fragment in str(error.value) and "\n" not in str(error.value)
    assert isinstance(error.value, ConfigError)


def test_loading_an_unfinished_run_from_python(tmp_path):
    with pytest.raises(MMLessonError, match="holds no complete run"):
        mmlesson.load_run(tmp_path)


def test_a_split_too_small_to_measure_anything_is_named(capsys):
    assert main(["train", *FAST, "--data-knob", "test_size=6"]) == 0
    err = capsys.readouterr().err
    assert "warning: the test split of synthav has only 6 clips for 6 classes; its accuracy says little" in err
