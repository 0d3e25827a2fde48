"""The experiments layer: run identity, the run store, grids on Dask, recipes, replicate / report."""
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

import mmlesson
import mmlesson.cluster
from mmlesson import Grid, TrainConfig, fit, run_grid
from mmlesson.cli import main
from mmlesson.errors import ConfigError
from mmlesson.grid import load_grid, shipped_grids
from mmlesson.methods import METHODS, JointTraining, register
from mmlesson.recipes import RECIPES
from mmlesson.cluster import local_client
from mmlesson.store import plan, run_status

from .conftest import TINY_KNOBS, tiny_grid_text

TRAIN = dict(width=4, batch_size=16, probe=False, progress="off")


def tiny_grid(**fields):
    arms = {"audio": dict(method="unimodal", modality="audio"), "visual": dict(method="unimodal", modality="visual"),
            "joint": dict(method="joint"), "frozen": dict(method="frozen_encoders", encoders_from=["audio", "visual"])}
    return Grid(**{"arms": arms, "data": {"tiny": dict(data="synthav", data_knobs=TINY_KNOBS)}, "seeds": [0, 1],
                   "train": dict(TRAIN, epochs=2), "name": "tiny", **fields})


def strip_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


# ---- identity --------------------------------------------------------------------------------------

def test_identity_ignores_device_paths_and_spelled_out_defaults(tmp_path):
    base = TrainConfig.build(data_knobs=TINY_KNOBS, **TRAIN)
    same = [TrainConfig.build(data_knobs=TINY_KNOBS, device="cpu", threads=2, amp=False, out="x", **TRAIN),
            TrainConfig.build(data_knobs={**TINY_KNOBS, "audio_noise": 1.0}, **TRAIN),  # a default spelled out
            TrainConfig.build(data_knobs=TINY_KNOBS, **{**TRAIN, "progress": "on"}),
            TrainConfig.build(data_knobs=TINY_KNOBS, **{**TRAIN, "batch_size": 16.0})]  # an int given as a float
    reference = plan(base, tmp_path)
    for config in same:
        assert plan(config, tmp_path).hash == reference.hash
        assert plan(config, tmp_path / "elsewhere").run_dir.relative_to(tmp_path / "elsewhere") == \
            reference.run_dir.relative_to(tmp_path)


def test_identity_changes_with_a_method_option_the_data_and_the_seed(tmp_path):
    ogm = plan(TrainConfig.build(method="ogm_ge", data_knobs=TINY_KNOBS, **TRAIN), tmp_path)
    other_alpha = plan(TrainConfig.build(method="ogm_ge", alpha=0.5, data_knobs=TINY_KNOBS, **TRAIN), tmp_path)
    other_data = plan(TrainConfig.build(method="ogm_ge", data_knobs={**TINY_KNOBS, "seed": 1}, **TRAIN), tmp_path)
    other_seed = plan(TrainConfig.build(method="ogm_ge", seed=4, data_knobs=TINY_KNOBS, **TRAIN), tmp_path)
    assert len({ogm.hash, other_alpha.hash, other_data.hash, other_seed.hash}) == 4
    assert other_alpha.run_dir.parent != ogm.run_dir.parent and other_alpha.run_dir.parents[1] == ogm.run_dir.parents[1]
    assert other_data.run_dir.parents[1] != ogm.run_dir.parents[1]  # another data directory
    assert other_seed.run_dir.parent == ogm.run_dir.parent and other_seed.run_dir.name == "seed4"
    assert ogm.run_dir.parent.name.startswith("ogm_ge-") and ogm.run_dir.parents[1].name.startswith("synthav-")
    assert set(ogm.identity["options"]) == {"alpha", "modulation_window", "ge", "ogm_form", "modulated_params"}


def test_adding_a_method_with_options_leaves_other_runs_where_they_are(tmp_path, monkeypatch):
    from dataclasses import dataclass

    from mmlesson.options import option

    before = plan(TrainConfig.build(data_knobs=TINY_KNOBS, **TRAIN), tmp_path)

    @dataclass(frozen=True)
    class NewOptions:
        strength: float = option(1.0, "a new method's option")

    class NewMethod(JointTraining):
        name = "new_method"
        Options = NewOptions

    monkeypatch.setitem(METHODS, "new_method", NewMethod)
    after = plan(TrainConfig.build(data_knobs=TINY_KNOBS, **TRAIN), tmp_path)
    assert after.hash == before.hash and after.run_dir == before.run_dir
    with pytest.raises(ConfigError, match="--strength is an option of method new_method, not of 'joint'"):
        TrainConfig.build(strength=2.0)


def test_resume_and_read_back_ignore_device_and_output_spelling(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    whole = fit(TrainConfig.build(data_knobs=TINY_KNOBS, epochs=3, out=str(tmp_path / "whole"), **TRAIN))
    fit(TrainConfig.build(data_knobs=TINY_KNOBS, epochs=3, out="part", device="auto", **TRAIN), stop_after=1)
    resumed = fit(TrainConfig.build(data_knobs={**TINY_KNOBS}, epochs=3, out=str(tmp_path / "part") + "/",
                                    device="cpu", threads=1, **TRAIN))
    assert strip_seconds(resumed.metrics["history"]) == strip_seconds(whole.metrics["history"])
    assert resumed.metrics["final"] == whole.metrics["final"]
    assert resumed.metrics["identity_hash"] == whole.metrics["identity_hash"]
    with pytest.raises(ConfigError, match=r"holds another run \(train.lr differ\)"):
        fit(TrainConfig.build(data_knobs=TINY_KNOBS, epochs=3, out="part", lr=0.01, **{**TRAIN}))


def test_a_run_directory_of_an_older_layout_is_refused_with_what_to_do(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "metrics.json").write_text(json.dumps({"config": {"method": "joint"}, "history": [], "final": {}, "env": {}}))
    (old / "model.pt").write_bytes(b"")
    with pytest.raises(mmlesson.MMLessonError, match="written by an older mmlesson .metrics format 1.; delete"):
        fit(TrainConfig.build(data_knobs=TINY_KNOBS, out=str(old), **TRAIN))
    (old / "metrics.json").write_text(json.dumps({"config": {"method": "joint"}, "history": [], "final": {}, "env": {},
                                                  "format": 2}))  # this layout, without a run identity
    with pytest.raises(ConfigError, match="written by an older mmlesson .no run identity.; delete .* or give another"):
        fit(TrainConfig.build(data_knobs=TINY_KNOBS, out=str(old), **TRAIN))


def test_frozen_encoders_identity_names_encoder_runs_by_content(tmp_path, tiny_dataset):
    audio = fit(TrainConfig.build(method="unimodal", modality="audio", data_knobs=TINY_KNOBS, epochs=1,
                                  out=str(tmp_path / "a"), **TRAIN), dataset=tiny_dataset)
    visual = fit(TrainConfig.build(method="unimodal", modality="visual", data_knobs=TINY_KNOBS, epochs=1,
                                   out=str(tmp_path / "v"), **TRAIN), dataset=tiny_dataset)
    config = TrainConfig.build(method="frozen_encoders", encoders_from=(str(audio.out), str(visual.out)),
                               data_knobs=TINY_KNOBS, **TRAIN)
    first = plan(config, tmp_path / "store")
    assert first.identity["options"] == {"encoders_from": [audio.metrics["identity_hash"],
                                                           visual.metrics["identity_hash"]]}
    os.rename(tmp_path / "a", tmp_path / "moved-a")
    moved = TrainConfig.build(method="frozen_encoders", encoders_from=(str(tmp_path / "moved-a"), str(visual.out)),
                              data_knobs=TINY_KNOBS, **TRAIN)
    assert plan(moved, tmp_path / "store").hash == first.hash


def test_a_frozen_encoders_run_is_planned_from_the_identities_of_its_upstream_runs(tmp_path):
    """A grid plans the encoder runs and the run that reads them before any is written: their identities
    are given to the planner (``upstream``), not read from disk."""
    audio, visual = (plan(TrainConfig.build(method="unimodal", modality=modality, data_knobs=TINY_KNOBS, **TRAIN),
                          tmp_path) for modality in ("audio", "visual"))
    config = TrainConfig.build(method="frozen_encoders", encoders_from=(str(audio.run_dir), str(visual.run_dir)),
                               data_knobs=TINY_KNOBS, **TRAIN)
    frozen = plan(config, tmp_path, upstream=[audio, visual])
    assert frozen.identity["options"] == {"encoders_from": [audio.hash, visual.hash]}
    assert frozen.depends_on == (audio.hash, visual.hash) and list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="holds no finished run; train it first"):
        plan(config, tmp_path)  # without them, the encoder runs are read from their directories


# ---- grids and the store ---------------------------------------------------------------------------

def test_a_grid_on_two_workers_trains_each_run_once_and_returns_a_dataframe(tmp_path):
    grid = tiny_grid()
    runs = run_grid(grid, tmp_path, workers=2, quiet=True)
    assert len(runs) == 8 and set(runs["status"]) == {"complete"}
    assert {"grid", "data", "arm", "seed", "dataset", "method", "fusion", "status"} <= set(runs.columns)
    assert {"acc", "macro_f1", "val_acc", "branch_acc.audio", "run_dir"} <= set(runs.columns)
    for _, row in runs.iterrows():  # the DataFrame holds what each run's metrics.json holds
        metrics = mmlesson.load_metrics(row["run_dir"])
        assert row["acc"] == metrics["final"]["test"]["acc"] and row["hash"] == metrics["identity_hash"]
    frozen = runs[runs["arm"] == "frozen"].iloc[0]
    audio = runs[(runs["arm"] == "audio") & (runs["seed"] == frozen["seed"])].iloc[0]
    assert json.loads((Path(frozen["run_dir"]) / "run.json").read_text())["config"]["options"]["encoders_from"][0] \
        == audio["run_dir"]
    stamps = {d: (Path(d) / "metrics.json").stat().st_mtime_ns for d in runs["run_dir"]}
    again = run_grid(grid, tmp_path, workers=2, quiet=True)  # nothing left to train
    assert {d: (Path(d) / "metrics.json").stat().st_mtime_ns for d in again["run_dir"]} == stamps
    assert again.drop(columns=["wall_seconds"]).equals(runs.drop(columns=["wall_seconds"]))
    index = (tmp_path / "index.csv").read_text().splitlines()
    assert len(index) == 9 and index[0].startswith("dataset,method,fusion,seed,status")


def test_a_grid_with_nothing_to_train_starts_no_cluster(tmp_path, monkeypatch):
    """Reading a complete grid back (every chapter does, for runs another chapter trained) must not start Dask."""
    grid = tiny_grid(arms={"joint": dict(method="joint")}, seeds=[0])
    run_grid(grid, tmp_path, workers=1, quiet=True)
    started = []
    monkeypatch.setattr(mmlesson.cluster, "local_client", lambda *args: started.append(args))
    again = run_grid(grid, tmp_path, workers=2, quiet=True)
    assert set(again["status"]) == {"complete"} and started == []


def test_grid_runs_equal_runs_trained_in_process(tmp_path):
    grid = tiny_grid(arms={"joint": dict(method="joint")}, seeds=[3])
    [row] = run_grid(grid, tmp_path / "dask", workers=2, quiet=True).to_dict("records")
    [alone] = run_grid(grid, tmp_path / "alone", workers=1, quiet=True).to_dict("records")
    assert row["hash"] == alone["hash"]
    dask, local = mmlesson.load_metrics(row["run_dir"]), mmlesson.load_metrics(alone["run_dir"])
    assert strip_seconds(dask["history"]) == strip_seconds(local["history"]) and dask["final"] == local["final"]


def test_a_failing_run_is_recorded_and_the_others_finish(tmp_path, capfd):
    grid = tiny_grid(arms={"good": dict(method="joint"), "diverges": dict(method="joint", lr=1e9)}, seeds=[0])
    runs = run_grid(grid, tmp_path, workers=2, retries=1, quiet=True).set_index("arm")
    assert "Compute Failed" not in capfd.readouterr().err  # reported once, in the table, not by Dask's log
    assert runs.loc["good", "status"] == "complete"
    assert runs.loc["diverges", "status"] == "failed"
    assert "loss became nan" in runs.loc["diverges", "error"] and "lower --lr" in runs.loc["diverges", "error"]
    failure = json.loads((Path(runs.loc["diverges", "run_dir"]) / "failed.json").read_text())
    assert failure["attempts"] == 2  # one retry
    in_process = run_grid(grid, tmp_path / "sequential", workers=1, quiet=True).set_index("arm")
    assert list(in_process["status"]) == ["complete", "failed"]


def test_a_killed_worker_loses_nothing(tmp_path):
    """SIGKILL the Dask workers while a run trains: the run is rescheduled, resumes from its checkpoint
    and ends with the metrics of an uninterrupted run."""
    grid = tiny_grid(arms={"joint": dict(method="joint", epochs=25)}, seeds=[0])
    client = local_client(2, 1)
    [run] = mmlesson.runner.plan_grid(grid, tmp_path / "killed")
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(runs=run_grid(grid, tmp_path / "killed", workers=2,
                                                                           quiet=True)))
    thread.start()
    deadline = time.time() + 120
    while not (run.run_dir / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.02)
    assert run.status == "partial", "the run finished before its worker could be killed"
    for pid in client.run(os.getpid).values():
        os.kill(pid, signal.SIGKILL)
    thread.join(timeout=300)
    assert outcome["runs"]["status"].tolist() == ["complete"]
    whole = run_grid(grid, tmp_path / "whole", workers=1, quiet=True)
    killed, uninterrupted = mmlesson.load_metrics(run.run_dir), mmlesson.load_metrics(whole["run_dir"][0])
    assert strip_seconds(killed["history"]) == strip_seconds(uninterrupted["history"])
    assert killed["final"] == uninterrupted["final"]


GRID_FILE = tiny_grid_text("killable", """
[arms.joint]
method = "joint"
""", seeds=range(6), epochs=6, title="a grid for the restart test")


def test_a_killed_replicate_restarted_trains_only_what_is_missing(tmp_path):
    grid_file = tmp_path / "killable.toml"
    grid_file.write_text(GRID_FILE)
    results = tmp_path / "results"
    command = [sys.executable, "-m", "mmlesson", "replicate", str(grid_file), "--results", str(results), "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    runs = mmlesson.runner.plan_grid(load_grid(grid_file), results)
    deadline = time.time() + 180
    while sum(run.status == "complete" for run in runs) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the runner and everything it started
    process.wait()
    done = {run.hash: (run.run_dir / "metrics.json").stat().st_mtime_ns for run in runs if run.status == "complete"}
    assert 2 <= len(done) < len(runs), "the grid finished before it could be killed"
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{len(done)} complete, {len(runs) - len(done)} to train" in result.stderr
    assert all(run.status == "complete" for run in runs)
    assert {h: (r.run_dir / "metrics.json").stat().st_mtime_ns for r in runs for h in [r.hash] if h in done} == done
    assert "| joint |" in result.stdout and (results / "tables" / "killable.md").exists()


# ---- recipes, grid files, CLI ------------------------------------------------------------------------

def test_every_recipe_and_shipped_grid_builds_valid_configs():
    assert len(RECIPES) >= 11 and all(r.citation for r in RECIPES.values())
    for recipe in RECIPES.values():
        for method in set(recipe.methods) & set(METHODS):
            config = TrainConfig.build(**recipe.config(method, modality="audio") if method == "unimodal"
                                       else recipe.config(method))
            assert config.data == recipe.data
    names = shipped_grids()
    for expected in ("ogm_ge-cremad", "ogm_ge-kinetics_sounds", "arl-cremad", "arl-kinetics_sounds", "arl-ave",
                     "ccat-cremad", "ccat-kinetics_sounds", "decision_layer-cremad", "synthav-combined"):
        assert expected in names
    for name in names:
        grid = load_grid(name)
        for data_label, arm, seed in grid.cells():
            keywords = grid.keywords(data_label, arm, seed)
            if keywords.get("method") == "frozen_encoders":
                keywords["encoders_from"] = ["a", "v"]
            TrainConfig.build(**keywords)
        for arm, numbers in grid.table.get("published", {}).items():
            assert arm in grid.arms, (name, arm)
            assert set(numbers) <= set(grid.table["metrics"]), (name, arm)


def test_the_recipe_is_the_protocol_and_arms_override_it():
    config = TrainConfig.build(**RECIPES["arl-cremad"].config("arl", seed=2))
    assert (config.lr, config.batch_size, config.epochs, config.width) == (1e-3, 64, 100, 64)
    assert (config.options.gamma, config.options.temperature) == (4.0, 8.0)
    grid = Grid(recipe="synthav-regime-b", arms={"ogm": dict(method="ogm_ge", alpha=0.3, data_knobs={"train_size": 60})})
    keywords = grid.keywords("synthav-regime-b", "ogm", 0)
    assert keywords["alpha"] == 0.3 and keywords["data_knobs"] == {**RECIPES["synthav-regime-b"].data_knobs,
                                                                     "train_size": 60}


@pytest.mark.parametrize("text, fragment", [
    ("seeds = [0]\n", "no [arms.<label>] tables"),
    ("colour = 1\n[arms.a]\nmethod = 'joint'\n", "unknown field 'colour'; valid fields:"),
    ("[arms.a]\nfusion = 'sum'\n", "arm 'a': give its method"),
    ("seeds = 3\n[arms.a]\nmethod = 'joint'\n", "field 'seeds' must be a list"),
    ("[arms.a]\nmethod = 'joint'\nalpha = 2\n", "arm 'a', data 'default': --alpha is an option of method agm / ogm_ge / pmr"),
    ("recipe = 'nope'\n[arms.a]\nmethod = 'joint'\n", "unknown recipe 'nope'; choose one of"),
    ("[arms.a\n", "is not valid TOML"),
])
def test_bad_grid_files_give_one_line_naming_the_field(tmp_path, capsys, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["replicate", str(path), "--results", str(tmp_path / "r"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and fragment in err, err


def test_replicate_list_dry_run_and_report(tmp_path, capsys):
    assert main(["replicate", "--list"]) == 0
    assert "arl-cremad" in capsys.readouterr().out
    grid_file = tmp_path / "killable.toml"
    grid_file.write_text(GRID_FILE.replace("[0, 1, 2, 3, 4, 5]", "[0, 1]").replace("epochs = 6",
                                                                                                     "epochs = 1"))
    assert main(["replicate", str(grid_file), "--results", str(tmp_path / "r"), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("would train: joint / tiny") == 2
    assert not (tmp_path / "r").exists()
    assert main(["replicate", str(grid_file), "--results", str(tmp_path / "r"), "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "r"), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(io.StringIO(out))  # one number per cell: a program reads it as it is
    assert list(table.columns[:7]) == ["grid", "arm", "acc_mean", "acc_std", "acc_ci_low", "acc_ci_high", "acc_paper"]
    assert set(table["arm"]) >= {"joint"} and table["acc_mean"].dtype == float and (table["n"] == 2).all()
    assert main(["report", str(tmp_path / "nothing")]) == 2


def test_planning_a_real_data_grid_without_its_cache_names_the_fix(tmp_path, capsys):
    assert main(["replicate", "arl-cremad", "--results", str(tmp_path), "--dry-run"]) == 2
    assert "cremad needs the root of a prepared cache" in capsys.readouterr().err
    assert run_status(tmp_path / "nothing") == "missing"


def test_register_makes_a_method_available(tiny_dataset):
    class Another(JointTraining):
        """A new method: joint training under another name."""
        name = "another"

    register(Another)
    try:
        run = fit(TrainConfig.build(method="another", data_knobs=TINY_KNOBS, epochs=1, **TRAIN), dataset=tiny_dataset)
        assert run.metrics["config"]["method"] == "another" and len(run.metrics["history"]) == 1
        parser = mmlesson.cli.build_parser()._subparsers._group_actions[0].choices["train"]
        assert "another" in next(a for a in parser._actions if a.dest == "method").help  # its choices
        assert mmlesson.methods.METHODS["another"] is Another
    finally:
        METHODS.pop("another")


def test_a_unimodal_run_ignores_the_other_modalitys_feature_scale(tmp_path):
    audio = dict(method="unimodal", modality="audio", data_knobs=TINY_KNOBS, **TRAIN)
    assert plan(TrainConfig.build(**audio, feature_scale=(1.0, 4.0)), tmp_path).hash == \
        plan(TrainConfig.build(**audio), tmp_path).hash
    assert plan(TrainConfig.build(**audio, feature_scale=(4.0, 1.0)), tmp_path).hash != \
        plan(TrainConfig.build(**audio), tmp_path).hash
