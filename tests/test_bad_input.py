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
    (["--alpha", "0.5"], 2, "--alpha is an option of method agm / ogm_ge / pmr, not of 'joint'"),
    (["--method", "arl", "--ogm-form", "continuous"], 2, "--ogm-form is an option of method ogm_ge, not of 'arl'"),
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
    check_cli(["train", *FAST, "--out", str(old)], 1, "was written by an older mmlesson (metrics format 1); delete",
              capsys, keep=old)


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
    check_cli([], 2, "the following arguments are required: {train,recalibrate,replicate,report,diagnose,data,recipes}", capsys)
    check_cli(["data"], 2, "the following arguments are required: {list,knobs,prepare}", capsys)
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
    (lambda: mmlesson.train(ogm_form="continuous"), "--ogm-form is an option of method ogm_ge, not of 'joint'"),
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


# ---- traps: following the tool's own advice works, one bad run never blocks a store ----------------

def test_a_corrected_retry_replaces_the_diverged_attempt(tmp_path, capsys):
    out = tmp_path / "x"
    check_cli(["train", *FAST, "--lr", "1e6", "--out", str(out)], 1, "lower --lr and run again (with the same --out, the corrected run replaces this attempt)",
              capsys)
    assert json.loads((out / "failed.json").read_text())["error"].startswith("TrainingDiverged: loss became")
    assert main(["train", *FAST, "--lr", "0.01", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "held an attempt of another run (it failed: TrainingDiverged" in err and "this run replaces it" in err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.json", "model.pt", "run.json"]
    assert mmlesson.load_metrics(out)["config"]["lr"] == 0.01


def test_an_interrupted_first_epoch_is_replaced_but_a_checkpoint_of_another_run_is_not(finished_run, tmp_path,
                                                                                      capsys):
    never_started = tmp_path / "first"
    never_started.mkdir()
    shutil.copy(finished_run / "run.json", never_started / "run.json")  # killed before its first checkpoint
    assert main(["train", *FAST, "--lr", "0.02", "--out", str(never_started)]) == 0
    assert "it never got past its first epoch" in capsys.readouterr().err
    interrupted = tmp_path / "interrupted"
    shutil.copytree(finished_run, interrupted)
    for name in ("metrics.json", "model.pt"):
        (interrupted / name).unlink()  # a checkpoint to resume: another run must not take its place
    check_cli(["train", *FAST, "--lr", "0.02", "--out", str(interrupted)], 2, "holds another run (train.lr differ)",
              capsys, keep=interrupted)


def test_a_refused_command_leaves_no_directory_behind(finished_run, tmp_path, capsys):
    declared = [tmp_path / "audio", tmp_path / "visual"]  # runs declared (run.json) but never finished
    for run_dir in declared:
        run_dir.mkdir()
        shutil.copy(finished_run / "run.json", run_dir / "run.json")
    target = tmp_path / "new" / "frozen"
    check_cli(["train", *FAST, "--method", "frozen_encoders", "--encoders-from", *map(str, declared), "--out",
               str(target)], 2, "holds no finished run; train it first", capsys)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--out", ""], "--out is empty (an unset shell variable?); give a run directory, or omit --out"),
    (["--out", "a" * 300], "has 300 characters, more than this file system's"),
    (["--root", "/tmp"], "--root is the prepared cache of a real data set; synthav is generated, not read: drop --root"),
], ids=["empty out", "long out", "root for synthav"])
def test_output_and_root_mistakes(args, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    check_cli(["train", *FAST, *args], 2, fragment, capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("variable, value, fragment", [
    ("MMLESSON_THREADS", "abc", "$MMLESSON_THREADS must be an integer >= 0, got 'abc'; unset it or give e.g."),
    ("MMLESSON_WORKERS", "two", "$MMLESSON_WORKERS must be a positive integer, got 'two'; unset it or give e.g."),
])
def test_environment_settings_that_are_not_integers(variable, value, fragment, tiny_grid_file, tmp_path, monkeypatch,
                                                     capsys):
    monkeypatch.setenv(variable, value)
    command = (["train", *FAST] if variable == "MMLESSON_THREADS"
               else ["replicate", str(tiny_grid_file), "--results", str(tmp_path / "r"), "--dry-run"])
    check_cli(command, 2, fragment, capsys)


TINY_GRID = """title = "tiny"
seeds = [0]
train = {{ width = 4, epochs = 1, batch_size = 16, probe = false }}
[data.tiny]
data = "synthav"
data_knobs = {{ {knobs} }}
[arms.audio]
method = "unimodal"
modality = "audio"
[arms.joint]
method = "joint"
"""


@pytest.fixture(scope="module")
def tiny_grid_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("grids") / "tiny.toml"
    path.write_text(TINY_GRID.format(knobs=", ".join(f"{k} = {v}" for k, v in TINY_KNOBS.items())))
    return path


@pytest.fixture(scope="module")
def tiny_store(tiny_grid_file, tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "results"
    assert main(["replicate", str(tiny_grid_file), "--results", str(store), "--workers", "1", "--progress", "off"]) == 0
    return store


def test_replicate_results_that_cannot_be_a_store(tiny_grid_file, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for results, fragment in ((afile, "--results {} is a file; give a directory"),
                              (afile / "store", "--results {} cannot be created"),
                              (Path("/proc/nope/store"), "--results {} cannot be created")):
        check_cli(["replicate", str(tiny_grid_file), "--results", str(results), "--workers", "1"], 2,
                  fragment.format(results), capsys, keep=afile)


@pytest.mark.parametrize("args, fragment", [
    (["--timeout", "-5"], "argument --timeout: must be a positive number of seconds, got -5"),
    (["--workers", "0"], "argument --workers: must be a positive integer, got 0"),
    (["--seeds", "a"], "argument --seeds: expected a non-negative integer, got 'a'"),
    (["--set", "alpha=2"], "--set alpha: not a training field nor an option of joint, unimodal"),
    (["--set", "seed=3"], "--set seed: give the seeds with --seeds 0 1 2"),
    (["--root", "/tmp"], "--root is the prepared cache of a real data set; grid 'tiny' trains on generated data only "
                         "(synthav): drop --root"),
], ids=["timeout", "workers", "seeds", "set", "set seed", "root"])
def test_replicate_options(args, fragment, tiny_grid_file, tmp_path, capsys):
    check_cli(["replicate", str(tiny_grid_file), "--results", str(tmp_path / "r"), *args], 2, fragment, capsys)
    assert not (tmp_path / "r").exists()  # refused before the store is made


def test_a_grid_file_with_seeds_that_are_not_integers(tiny_grid_file, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(tiny_grid_file.read_text().replace("seeds = [0]", 'seeds = ["a"]'))
    check_cli(["replicate", str(bad), "--results", str(tmp_path / "r"), "--dry-run"], 2,
              "grid 'bad': seeds must be non-negative integers, e.g. seeds=[0, 1, 2]; got 'a'", capsys)


@pytest.mark.parametrize("fields, fragment", [
    (dict(seeds="12"), "seeds must be a list of integers, e.g. seeds=[0, 1, 2] or range(10); got '12'"),
    (dict(seeds="abc"), "seeds must be a list of integers"),
    (dict(seeds=[0, 1.5]), "seeds must be non-negative integers, e.g. seeds=[0, 1, 2]; got 1.5"),
    (dict(seeds=[]), "give at least one seed"),
    (dict(arms={}), "has no arms: give at least one, e.g. arms={'joint': {'method': 'joint'}}"),
], ids=["string of digits", "letters", "a float", "none", "no arms"])
def test_python_grids_are_checked(fields, fragment):
    with pytest.raises(ConfigError) as error:
        mmlesson.Grid(**{"arms": {"joint": {"method": "joint"}}, **fields})
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_python_grids_are_named_by_their_content():
    first = mmlesson.Grid(arms={"joint": {"method": "joint"}}, seeds=[0, 1])
    assert first.name.startswith("grid-") and len(first.name) == len("grid-") + 8
    assert mmlesson.Grid(arms={"joint": {"method": "joint"}}, seeds=range(2)).name == first.name
    assert mmlesson.Grid(arms={"joint": {"method": "joint"}}, seeds=[0, 2]).name != first.name
    assert mmlesson.Grid(arms={"joint": {"method": "joint"}}, name="mine").name == "mine"


def test_two_python_grids_into_one_store_keep_both_records(tiny_store, tiny_grid_file, capsys):
    from mmlesson.grid import load_grid
    from mmlesson.runner import recorded_grids

    grid = load_grid(tiny_grid_file)
    for arms in ({"audio": grid.arms["audio"]}, {"joint": grid.arms["joint"]}):  # runs the store holds already
        mmlesson.run_grid(mmlesson.Grid(arms=arms, data=grid.data, train=grid.train, seeds=[0]), tiny_store,
                          workers=1, quiet=True)
    names = [g.name for g, _ in recorded_grids(tiny_store)]
    assert "tiny" in names and len([n for n in names if n.startswith("grid-")]) == 2


def test_progress_off_silences_every_run_of_a_grid(tiny_grid_file, tmp_path, capfd):
    from mmlesson.grid import load_grid

    grid = load_grid(tiny_grid_file)
    grid.train["progress"] = "on"  # even a run that asks for progress lines
    mmlesson.run_grid(grid, tmp_path / "r", workers=1, progress="off", quiet=True)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def damage(store: Path) -> Path:
    """Truncate the metrics.json of the store's joint run; return its run directory."""
    run_dir = next(p.parent for p in store.glob("*/joint-*/seed0/metrics.json"))
    (run_dir / "metrics.json").write_text('{"config": {')
    return run_dir


def test_a_damaged_run_is_listed_and_the_rest_go_on(tiny_store, tiny_grid_file, tmp_path, capsys):
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    broken = damage(store)
    assert main(["report", str(store), "--grid", "tiny", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "audio," in captured.out  # the readable run's row
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert f"grid tiny: 1 runs unreadable: {broken} (" in captured.err and "delete them to retrain" in captured.err
    before = snapshot(store)
    assert main(["replicate", str(tiny_grid_file), "--results", str(store), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "1 runs unreadable" in captured.err and "Traceback" not in captured.err
    assert main(["replicate", str(tiny_grid_file), "--results", str(store), "--workers", "1", "--progress", "off"]) == 1
    captured = capsys.readouterr()
    assert "1 runs unreadable" in captured.err and "Traceback" not in captured.err and "audio" in captured.out
    assert snapshot(broken) == {k[len(str(broken.relative_to(store))) + 1:]: v for k, v in before.items()
                                if k.startswith(str(broken.relative_to(store)) + "/")}


def test_report_names_the_grids_it_holds(tiny_store, capsys):
    check_cli(["report", str(tiny_store), "--grid", "nosuch"], 2, "holds no grid named nosuch; it holds: ", capsys)


def test_dry_run_writes_nothing_and_names_the_variant(tiny_store, tiny_grid_file, tmp_path, capsys):
    before = snapshot(tiny_store)
    assert main(["replicate", str(tiny_grid_file), "--results", str(tiny_store), "--dry-run", "--epochs", "3",
                 "--seeds", "0", "1", "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert snapshot(tiny_store) == before
    assert captured.out.count("would train:") == 4 and "grid tiny-seeds_0_1-epochs3:" in captured.err
    assert "on 2 workers" in captured.err and "estimated from the store's finished runs" in captured.err

    grid_with_dependency = tmp_path / "frozen.toml"
    grid_with_dependency.write_text(tiny_grid_file.read_text() + '[arms.visual]\nmethod = "unimodal"\n'
                                    'modality = "visual"\n[arms.frozen]\nmethod = "frozen_encoders"\n'
                                    'encoders_from = ["audio", "visual"]\n')
    assert main(["replicate", str(grid_with_dependency), "--results", str(tmp_path / "new"), "--dry-run"]) == 0
    assert "would train: frozen / tiny / seed 0" in capsys.readouterr().out
    assert not (tmp_path / "new").exists()


def test_the_time_estimate_against_hand_computation(tiny_store, tiny_grid_file, tmp_path):
    from mmlesson.grid import load_grid
    from mmlesson.runner import plan_grid
    from mmlesson.store import estimate_seconds, load_metrics

    def measured(arm):  # (seconds per epoch, seconds outside the epochs) of the store's run of ``arm``
        [run] = [r for r in plan_grid(load_grid(tiny_grid_file), tiny_store) if r.tags["arm"] == arm]
        metrics = load_metrics(run.run_dir)
        epochs = sum(entry["seconds"] for entry in metrics["history"])
        return epochs / len(metrics["history"]), metrics["env"]["wall_seconds"] - epochs

    grid = load_grid(tiny_grid_file)
    grid.seeds = [1]
    [audio_seed1, _] = plan_grid(grid, tiny_store)  # its seed-0 sibling is measured: that run's time
    per_epoch, rest = measured("audio")
    assert estimate_seconds([audio_seed1], tiny_store) == (pytest.approx(per_epoch * 1 + rest), 0)
    grid = load_grid(tiny_grid_file)
    grid.arms["audio"]["epochs"] = 5  # no sibling: the store's audio-only runs on SynthAV, per epoch
    [audio_longer, _] = plan_grid(grid, tiny_store)
    assert estimate_seconds([audio_longer], tiny_store) == (pytest.approx(per_epoch * 5 + rest), 0)
    grid.arms["ogm"] = {"method": "ogm_ge"}  # a method the store never ran: the median of every run
    ogm = [r for r in plan_grid(grid, tiny_store) if r.tags["arm"] == "ogm"]
    both = [measured("audio"), measured("joint")]
    expected = (both[0][0] + both[1][0]) / 2 * 1 + (both[0][1] + both[1][1]) / 2
    assert estimate_seconds(ogm, tiny_store) == (pytest.approx(expected), 0)
    assert estimate_seconds(ogm, tmp_path / "empty") == (0.0, 1)


def test_the_debug_flag_after_the_command(capsys):
    assert run_main(["train", "--data-knob", "train_size=0", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("SynthAV knob train_size must be a positive integer, got 0")


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["report", "--help"]])
def test_version_and_help_do_not_import_torch(args):
    code = ("import sys\nfrom mmlesson.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n" % (args,))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_a_killed_writers_temporary_files_are_removed(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    (run_dir / "metrics.json").unlink()
    stale = run_dir / ".checkpoint.pt.k3j2.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert main(["train", *FAST, "--out", str(run_dir)]) == 0
    assert not stale.exists() and (run_dir / "metrics.json").exists()


def test_a_timed_out_run_leaves_no_temporary_file(finished_run, tmp_path):
    from mmlesson.cluster import RunFailed, train_in_subprocess

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(finished_run / "run.json", run_dir / "run.json")
    (run_dir / ".checkpoint.pt.x1.tmp").write_bytes(b"being written when the time ran out")
    with pytest.raises(RunFailed, match="timed out after 0 s; it resumes from its checkpoint"):
        train_in_subprocess(str(run_dir), 0.01, None, 1)
    assert not list(run_dir.glob(".*.tmp"))


def test_a_diverged_attempt_with_a_checkpoint_is_replaced_but_a_timed_out_one_is_not(finished_run, tmp_path, capsys):
    def attempt(name, error):  # an attempt of the finished run, stopped after its checkpoint
        run_dir = tmp_path / name
        shutil.copytree(finished_run, run_dir)
        for kept in ("metrics.json", "model.pt"):
            (run_dir / kept).unlink()
        (run_dir / "failed.json").write_text(json.dumps({"error": error, "attempts": 1, "time": 0}))
        return run_dir

    diverged = attempt("diverged", "TrainingDiverged: loss became nan at epoch 3, step 9; the checkpoint of ...")
    assert main(["train", *FAST, "--lr", "0.02", "--out", str(diverged)]) == 0
    assert "this run replaces it" in capsys.readouterr().err
    assert mmlesson.load_metrics(diverged)["config"]["lr"] == 0.02 and not (diverged / "failed.json").exists()
    timed_out = attempt("timed-out", "RunFailed: timed out after 60 s; it resumes from its checkpoint when run again")
    check_cli(["train", *FAST, "--lr", "0.02", "--out", str(timed_out)], 2, "holds another run (train.lr differ)",
              capsys, keep=timed_out)


def test_an_attempt_is_kept_when_its_replacement_is_refused(finished_run, tmp_path, capsys):
    out = tmp_path / "x"
    check_cli(["train", *FAST, "--lr", "1e6", "--out", str(out)], 1, "loss became nan", capsys)
    declared = [tmp_path / "audio", tmp_path / "visual"]  # encoder runs that never finished
    for run_dir in declared:
        run_dir.mkdir()
        shutil.copy(finished_run / "run.json", run_dir / "run.json")
    check_cli(["train", *FAST, "--method", "frozen_encoders", "--encoders-from", *map(str, declared), "--out",
               str(out)], 2, "holds no finished run; train it first", capsys, keep=out)


def test_only_a_runs_own_temporary_files_are_removed(tmp_path):
    mine = tmp_path / ".notes.txt.draft.tmp"
    mine.write_text("the user's own file")
    assert main(["train", *FAST, "--out", str(tmp_path)]) == 0
    assert mine.read_text() == "the user's own file"


def test_a_read_only_directory_is_read_back_but_not_trained_into(finished_run, tmp_path, monkeypatch, capsys):
    import mmlesson.paths

    monkeypatch.setattr(mmlesson.paths.os, "access", lambda path, mode: False)  # as if every directory were read-only
    before = snapshot(finished_run)
    assert main(["train", *FAST, "--out", str(finished_run)]) == 0  # complete: read back, nothing written
    assert "read back from" in capsys.readouterr().out and snapshot(finished_run) == before
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    check_cli(["train", *FAST, "--out", str(unfinished)], 2, f"--out {unfinished} is not writable", capsys,
              keep=unfinished)


def test_unreadable_store_entries_of_every_kind(tiny_store, tmp_path, capsys):
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    run_dir = damage(store)
    (run_dir / "metrics.json").unlink()
    (run_dir / "metrics.json").mkdir()  # a directory where the file should be
    (store / "grids" / "broken.json").write_text("[1, 2]")  # a damaged grid record beside the good one
    assert main(["report", str(store), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert "audio," in captured.out and "Traceback" not in captured.err
    assert "broken.json is not a readable grid record" in captured.err and "1 runs unreadable" in captured.err
    check_cli(["report", "a" * 300], 2, "holds no grid results", capsys)
    check_cli(["report", ""], 2, "RESULTS is empty (an unset shell variable?)", capsys)
