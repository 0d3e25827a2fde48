"""What a new user finds from the command line alone (issue "The first hour"): the book's regimes by name
(``mmlesson recipes``, ``mmlesson train --recipe NAME``), SynthAV's knobs (``mmlesson data knobs``), and the
closest valid name for a mistyped option, knob, method, data set, command or recipe, in one line."""
import dataclasses

import pytest

from mmlesson import load_metrics
from mmlesson.rates import protocol_rate
from mmlesson.cli import main
from mmlesson.config import TrainConfig
from mmlesson.data import SynthAVConfig
from mmlesson.data.real import RealKnobs
from mmlesson.recipes import RECIPES

TINY = ["--data-knob", "train_size=96", "--data-knob", "val_size=48", "--data-knob", "test_size=48"]
FAST = ["--epochs", "1", "--no-probe", "--progress", "off", *TINY]


def run_main(args) -> int:
    try:
        return main(args)
    except SystemExit as stop:  # argparse's usage errors
        return stop.code


def one_line_error(args, capsys) -> str:
    """The error of a refused command line: exit code 2, one line, no traceback."""
    assert run_main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize("args, expected", [
    (["train", "--lrr", "0.1"], "mmlesson: error: unrecognized arguments: --lrr 0.1 (did you mean --lr?)"),
    (["train", "--lrr=0.1"], "mmlesson: error: unrecognized arguments: --lrr=0.1 (did you mean --lr?)"),
    (["train", "--epohcs", "3"], "mmlesson: error: unrecognized arguments: --epohcs 3 (did you mean --epochs?)"),
    (["train", "--data-knobs", "seed=1"], "unrecognized arguments: --data-knobs seed=1 (did you mean --data-knob?)"),
    (["train", "--recipie", "synthav"], "unrecognized arguments: --recipie synthav (did you mean --recipe?)"),
    (["train", "--epohcs", "3", "--lrr", "0.1"], "(did you mean --epochs for --epohcs, --lr for --lrr?)"),
    (["report", "results", "--formt", "csv"], "unrecognized arguments: --formt csv (did you mean --format?)"),
])
def test_a_mistyped_option_names_the_closest_one(args, expected, capsys):
    err = one_line_error(args, capsys)
    assert expected in err
    assert err.endswith(f"(see `mmlesson {args[0]} --help`)")  # the help of the command, which lists it


def test_a_name_like_none_suggests_nothing(capsys):
    err = one_line_error(["train", "--xyz"], capsys)
    assert err == "mmlesson: error: unrecognized arguments: --xyz (see `mmlesson train --help`)"
    assert one_line_error(["train", "--method", "magic"], capsys).startswith(
        "mmlesson: error: unknown method 'magic'; choose one of:")


@pytest.mark.parametrize("args, expected", [
    (["trian"], "invalid choice: 'trian'"),
    (["data", "knbos"], "invalid choice: 'knbos'"),
    (["data", "prepare", "cremd", "--raw", "raw", "--root", "root"], "invalid choice: 'cremd'"),
])
def test_a_mistyped_command_or_choice_names_the_closest_one(args, expected, capsys):
    err = one_line_error(args, capsys)
    suggestion = {"trian": "train", "knbos": "knobs", "cremd": "cremad"}[expected.split("'")[1]]
    assert expected in err and f"(did you mean {suggestion}?)" in err


@pytest.mark.parametrize("args, expected", [
    (["--method", "ogmge"], "unknown method 'ogmge' (did you mean ogm_ge?); choose one of: agm, arl, ccat,"),
    (["--data", "synthv"], "unknown data set 'synthv' (did you mean synthav?); choose one of: ave, cremad,"),
    (["--fusion", "conact"], "unknown fusion 'conact' (did you mean concat?); choose one of: concat,"),
    (["--data-knob", "audio_strenght=2"], "unknown SynthAV knob 'audio_strenght' (did you mean audio_strength?); "
                                          "valid knobs: "),
    (["--recipe", "synthav-sever-v2"], "unknown recipe 'synthav-sever-v2' (did you mean synthav-severe-v2?); "
                                       "choose one of: "),
])
def test_a_mistyped_name_names_the_closest_one(args, expected, capsys):
    assert expected in one_line_error(["train", *args], capsys)


def shown(value) -> str:
    """A default as ``data knobs`` prints it: a tuple as ``--data-knob`` takes it (``0.2,0.2``)."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def test_data_knobs_lists_every_synthav_knob_with_its_default_and_meaning(capsys):
    assert main(["data", "knobs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "--data-knob NAME=VALUE" in lines[0]
    rows = {line.split()[0]: line for line in lines[1:]}
    knobs = dataclasses.fields(SynthAVConfig)
    assert list(rows) == [f.name for f in knobs]
    for f in knobs:
        assert rows[f.name].split()[1] == shown(f.default), f.name
        assert rows[f.name].split(None, 2)[2].startswith(f.metadata["help"]), f.name
    assert len({line.index(line.split()[1]) for line in lines[1:]}) == 1  # the defaults in one column


def test_data_knobs_of_a_real_data_set(capsys):
    assert main(["data", "knobs", "cremad"]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows == {f.name: str(f.default) for f in dataclasses.fields(RealKnobs)}


def test_recipes_lists_every_recipe(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert list(rows) == list(RECIPES)
    for name, recipe in RECIPES.items():
        assert rows[name].split()[1] == recipe.data and recipe.title in rows[name]
    severe = rows["synthav-severe-v2"]  # the knobs it changes from the defaults, as --data-knob takes them
    for knob in ("seed=run", "train_size=1200", "speakers=6", "eval_speakers=800", "voice_bins=24",
                 "audio_confusion=0.34,0.34,0.34,0.34,0.34,0.34"):
        assert f" {knob}" in severe, knob
    assert "visual_confusion" not in severe  # the default's value: not a change
    assert "knobs:" not in rows["synthav"] and "knobs:" not in rows["ogm_ge-cremad"]


def test_one_recipe_in_full(capsys):
    assert main(["recipes", "synthav-severe-v2"]) == 0
    text = capsys.readouterr().out
    recipe = RECIPES["synthav-severe-v2"]
    lines = {tuple(line.split()[:2]) for line in text.splitlines()}
    for knob in recipe.data_knobs:
        assert any(row[0] == knob for row in lines), knob
    assert ("train_size", "1200") in lines and ("eval_speakers", "800") in lines
    for name, value in recipe.train.items():
        assert (name, shown(value).replace(",", " ").split()[0]) in lines, name
    for method, options in recipe.methods.items():
        for option in options:
            assert (method, option) in lines, (method, option)
    assert recipe.notes in text and "mmlesson train --recipe synthav-severe-v2" in text


def test_an_unknown_recipe_is_one_line_with_a_suggestion(capsys):
    err = one_line_error(["recipes", "severe-v2"], capsys)
    assert "unknown recipe 'severe-v2' (did you mean synthav-severe-v2?); choose one of: " in err
    assert all(name in err for name in RECIPES)


def test_train_under_a_recipe_trains_its_knobs_fields_and_options(tmp_path, capsys):
    out = tmp_path / "joint"
    assert main(["train", "--recipe", "synthav-severe-v2", "--seed", "3", *FAST, "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("recipe synthav-severe-v2: synthav, method joint, seed 3")
    config = load_metrics(out)["config"]
    recipe = RECIPES["synthav-severe-v2"]
    knobs = config["data_knobs"]
    for name, value in recipe.data_knobs.items():
        if name == "seed":
            assert knobs["seed"] == 3  # the recipe draws its data with the training seed
        elif name != "train_size":
            assert knobs[name] == (list(value) if isinstance(value, tuple) else value), name
    assert (knobs["train_size"], knobs["val_size"], knobs["test_size"]) == (96, 48, 48)  # given: they win
    assert config["epochs"] == 1 and config["seed"] == 3 and config["method"] == "joint"
    for name in ("width", "batch_size", "lr_decay", "weight_decay"):
        assert config[name] == recipe.train[name], name
    assert config["lr_milestones"] == list(recipe.train["lr_milestones"])
    # the book trains every arm of this regime at its one protocol rate, not the recipe's calibration rate
    assert config["lr"] == protocol_rate("synthav-severe-v2") != recipe.train["lr"]


def test_a_flag_given_on_the_command_line_overrides_the_recipe(tmp_path, capsys):
    out = tmp_path / "ogm_ge"
    default_lr = TrainConfig.__dataclass_fields__["lr"].default
    assert RECIPES["synthav-severe-v2"].train["lr"] != default_lr  # so that --lr at its default must still count
    args = ["train", "--recipe", "synthav-severe-v2", "--data", "synthav", "--method", "ogm_ge", "--alpha", "0.5",
            "--lr", str(default_lr), "--data-knob", "audio_strength=2.0", *FAST, "--out", str(out)]
    assert main(args) == 0
    assert "from the command line: epochs, lr, probe, alpha, knob audio_strength" in capsys.readouterr().out
    config = load_metrics(out)["config"]
    assert config["lr"] == default_lr and config["epochs"] == 1 and config["probe"] is False
    assert config["options"]["alpha"] == 0.5  # given
    assert config["options"]["modulation_window"] == [0, 7]  # the recipe's, for ogm_ge
    assert config["data_knobs"]["audio_strength"] == 2.0 and config["data_knobs"]["speakers"] == 6
    assert config["data_knobs"]["seed"] == 0  # the default training seed draws the data


def test_a_data_set_other_than_the_recipes_is_refused(tmp_path, capsys):
    err = one_line_error(["train", "--recipe", "synthav-severe-v2", "--data", "cremad", "--out", str(tmp_path / "r")],
                         capsys)
    assert "--data cremad disagrees with --recipe synthav-severe-v2, which trains on synthav" in err
    assert not (tmp_path / "r").exists()
