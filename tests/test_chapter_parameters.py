"""A chapter's parameters (its papermill parameters cell) are checked by ``Chapter.setup`` before anything
is trained or printed: a bad one is one line (a ConfigError) naming the parameter and the fix."""
import sys
from pathlib import Path

import pytest

from mmlesson.chapter import Chapter, SMOKE_DATA
from mmlesson.errors import ConfigError

CHAPTER1 = Path(__file__).resolve().parents[1] / "book" / "ch01_additive_gradients.py"


def refused(capsys, paper="ogm_ge", **parameters) -> str:
    """The one-line message with which ``Chapter.setup`` refuses ``parameters``; nothing is printed first."""
    parameters.setdefault("device", "cpu")
    with pytest.raises(ConfigError) as caught:
        Chapter.setup(paper, **parameters)
    message = str(caught.value)
    assert "\n" not in message
    assert capsys.readouterr().out == "", "a refused chapter prints nothing (no versions, no device)"
    return message


# SMOKE


@pytest.mark.parametrize("word, flags", [("false", ('-p SMOKE False', '-y "SMOKE: false"')),
                                         ("False", ('-p SMOKE False', '-y "SMOKE: false"')),
                                         ("true", ('-p SMOKE True', '-y "SMOKE: true"'))])
def test_smoke_as_a_string_is_refused_with_the_papermill_flags(capsys, word, flags):
    """papermill's ``-p SMOKE false`` passes the string "false", which used to run the smoke version silently."""
    message = refused(capsys, smoke=word)
    assert message.startswith(f"SMOKE must be True or False, not the string {word!r}")
    assert all(flag in message for flag in flags)


@pytest.mark.parametrize("value", [1, 0, None, [True]])
def test_smoke_must_be_a_bool(capsys, value):
    assert refused(capsys, smoke=value) == f"SMOKE must be True or False (got {value!r})"


# SEEDS


def test_seeds_as_a_number_is_one_line_naming_seeds_and_an_example(capsys):
    """papermill's ``-p SEEDS 3`` used to be a bare TypeError (``list(3)``)."""
    assert refused(capsys, seeds=3) == "SEEDS must be a list of non-negative integers, e.g. SEEDS = [0, 1, 2] (got 3)"


def test_seeds_as_a_string_says_how_to_pass_a_list_with_papermill(capsys):
    message = refused(capsys, seeds="0,1")
    assert message.startswith("SEEDS must be a list of non-negative integers, e.g. SEEDS = [0, 1, 2] (got '0,1')")
    assert '-y "SEEDS: [0, 1, 2]"' in message


@pytest.mark.parametrize("seeds", [[0, -1], [0, 1.0], [True, False], [0, "1"], {0, 1}])
def test_seeds_must_be_non_negative_integers_in_a_list(capsys, seeds):
    message = refused(capsys, seeds=seeds)
    assert message == f"SEEDS must be a list of non-negative integers, e.g. SEEDS = [0, 1, 2] (got {seeds!r})"


def test_seeds_must_not_be_empty(capsys):
    assert refused(capsys, seeds=[]) == "SEEDS is empty; give at least one seed, e.g. SEEDS = [0, 1, 2]"


def test_a_duplicate_seed_is_an_error_naming_it_not_dropped(capsys):
    message = refused(capsys, seeds=[0, 1, 2, 1, 0])
    assert message == ("SEEDS has 0, 1 more than once; give each seed once, e.g. SEEDS = [0, 1, 2] "
                       "(got [0, 1, 2, 1, 0])")


def test_seeds_are_checked_in_a_smoke_run_too(capsys):
    assert refused(capsys, seeds=3, smoke=True).startswith("SEEDS must be a list")


# DEVICE


@pytest.mark.parametrize("device", ["gpu", "cudax", "cuda:", "CPU", 0])
def test_an_unknown_device_is_refused_by_the_clis_own_check(capsys, device):
    """``-p DEVICE gpu`` used to be torch's RuntimeError deep in training; the check is the CLI's (one list)."""
    from mmlesson.config import TrainConfig

    assert refused(capsys, device=device) == f"DEVICE must be auto, cpu, cuda or cuda:N, got {device!r}"
    with pytest.raises(ConfigError, match=r"^--device must be "):  # a non-string: check_fields says so first
        TrainConfig(device=device)


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_on_a_machine_without_it_is_one_line_naming_device(capsys, monkeypatch, device):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = refused(capsys, device=device)
    assert message.startswith(f"DEVICE = {device!r} asks for CUDA, but torch sees no CUDA GPU on this machine")
    assert 'DEVICE = "auto"' in message and "--device" not in message


# DATASET and DATA_DIR


def test_an_unknown_dataset_lists_the_registered_ones(capsys):
    from mmlesson.data import DATASETS

    message = refused(capsys, dataset="nope")
    assert message.startswith(f"DATASET must be one of the data sets mmlesson knows: {', '.join(sorted(DATASETS))} "
                              f"(got 'nope')")


def test_a_dataset_the_paper_has_no_protocol_for_lists_those_it_has(capsys, tmp_path):
    message = refused(capsys, paper="ccat", dataset="ave", data_dir=tmp_path)
    assert message == "no ccat protocol for DATASET='ave'; choose one of: synthav, cremad, kinetics_sounds"


def test_a_real_dataset_without_data_dir_names_data_dir_and_the_prepare_command(capsys):
    message = refused(capsys, dataset="cremad")
    assert "set DATA_DIR" in message and "mmlesson data prepare cremad --raw RAW --root DIR" in message
    assert "--data-root" not in message


def test_a_data_dir_that_does_not_exist_is_refused(capsys, tmp_path):
    missing = tmp_path / "cremad-cache"
    message = refused(capsys, dataset="kinetics_sounds", data_dir=str(missing))
    assert message.startswith(f"DATA_DIR {str(missing)!r} does not exist")
    assert f"mmlesson data prepare kinetics_sounds --raw RAW --root {missing}" in message
    (tmp_path / "a file").write_text("")
    assert f"DATA_DIR {str(tmp_path / 'a file')!r} is a file" in refused(capsys, dataset="ave",
                                                                          data_dir=tmp_path / "a file")


def test_data_dir_on_synthav_is_refused_instead_of_failing_at_training(capsys, tmp_path):
    """The runner used to refuse it at the first training, naming ``--root``."""
    message = refused(capsys, data_dir=tmp_path)
    assert message.startswith("DATA_DIR is the prepared cache of a real data set") and "DATA_DIR = None" in message


def test_an_unknown_paper_is_refused(capsys):
    assert refused(capsys, paper="ogm-ge") == ("unknown paper 'ogm-ge' in Chapter.setup; choose one of: arl, ccat, "
                                               "decision_layer, ogm_ge")


# RESULTS_DIR


def test_a_results_dir_that_cannot_be_created_names_results_dir(capsys, tmp_path):
    (tmp_path / "a file").write_text("")
    message = refused(capsys, results=tmp_path / "a file" / "store")
    assert message.startswith("RESULTS_DIR ") and "cannot be created" in message and "--results" not in message
    assert refused(capsys, results="").startswith("RESULTS_DIR is empty")


def test_a_results_dir_that_cannot_be_written_names_results_dir(capsys, tmp_path, monkeypatch):
    """A temporary file is written in RESULTS_DIR (and removed): what a permission check cannot foresee
    (a read-only mount, root's access()) is caught too."""
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    message = refused(capsys, results=tmp_path / "store")
    assert message == (f"RESULTS_DIR {str(tmp_path / 'store')!r} is not writable (Read-only file system); give a "
                       f"writable directory, or None for the default store")


def test_a_read_only_results_dir_is_refused(capsys, tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root can write in a read-only directory")
    store = tmp_path / "store"
    store.mkdir()
    store.chmod(0o555)
    try:
        assert refused(capsys, results=store).startswith(f"RESULTS_DIR {str(store)!r} is not writable")
    finally:
        store.chmod(0o755)


def test_a_good_results_dir_is_created_and_left_empty(capsys, tmp_path):
    store = tmp_path / "new" / "store"
    chapter = Chapter.setup("ogm_ge", results=str(store), device="cpu")
    assert store.is_dir() and list(store.iterdir()) == [] and chapter.store == store


# the parameters that work


def test_the_default_parameters_still_work(capsys):
    chapter = Chapter.setup("ogm_ge", "synthav", list(range(10)), "cpu", None, None, False)
    assert chapter.seeds == list(range(10)) and chapter.data_knobs == {} and chapter.train == {"device": "cpu"}
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith("device: cpu") and "smoke" not in line
    assert Chapter.setup("arl", seeds=(3, 5), device="auto").seeds == [3, 5]


def test_smoke_says_what_it_runs_on_the_setup_line(capsys):
    chapter = Chapter.setup("ogm_ge", "synthav", list(range(10)), "cpu", None, None, True)
    assert chapter.seeds == [0, 1] and chapter.data_knobs == SMOKE_DATA and chapter.train["epochs"] == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith("device: cpu; smoke run: seeds [0, 1], small data, 1 epoch")


def test_smoke_with_other_seeds_still_runs_two_and_says_seeds_is_ignored(capsys, tmp_path):
    chapter = Chapter.setup("ccat", "synthav", [5, 6, 7], "cpu", None, None, True, smoke_epochs=2)
    assert chapter.seeds == [0, 1] and chapter.train["epochs"] == 2
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith("smoke run: seeds [0, 1], small data, 2 epochs (SEEDS is ignored)")
    real = Chapter.setup("arl", "cremad", range(3), "cpu", None, tmp_path, True)  # real data: few clips, tiny encoders
    assert capsys.readouterr().out.rstrip().endswith(
        "smoke run: seeds [0, 1], a few clips, small frames, tiny encoders, 1 epoch (SEEDS is ignored)")
    assert real.data_knobs == {"max_clips": 60, "image_size": 32} and real.train["width"] == 8


# the explorer without ipywidgets


def test_the_explorer_without_ipywidgets_prints_one_line_and_returns(capsys, monkeypatch):
    """A plain ``pip install mmlesson`` has no ipywidgets: Chapter 1's explorer cell says so in one line and
    the rest of the chapter (the snapshot with ``train_briefly``) still runs."""
    from mmlesson.explorer import explorer

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # importing it now raises ImportError
    assert explorer() is None
    assert capsys.readouterr().out == "the interactive explorer needs ipywidgets: pip install ipywidgets\n"


def test_chapter_1_reaches_ipywidgets_only_through_the_explorer():
    import re

    from mmlesson import chapter, explorer

    source = CHAPTER1.read_text()
    assert re.search(r"from mmlesson\.chapter import [\w, ]*\bexplorer\b", source)
    assert chapter.explorer is explorer.explorer  # the chapter namespace's explorer is explorer.py's
    assert not re.search(r"^\s*(?:import ipywidgets|from ipywidgets import)", source, re.M)
