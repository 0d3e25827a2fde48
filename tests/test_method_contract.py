"""The contract every registered method keeps, run over the registry: a method added with ``@register``
is checked by these tests without writing any (the way scikit-learn's ``parametrize_with_checks``
runs one suite over every estimator). A method that cannot train without options of its own declares
them in ``NEEDS`` below.

Each method: a tiny run has a finite loss on every epoch; a run interrupted after every epoch (so
inside every stage) and resumed ends bit-identical to an uninterrupted one (history, final scores,
weights); a finished run is read back, not retrained; its identity holds its own options only;
``mmlesson train --help`` lists each of its options with its own choices; a bad value of each option
gets one line naming the flag."""
import dataclasses
import typing

import pytest
import torch

from mmlesson import TrainConfig, fit
from mmlesson.cli import build_parser
from mmlesson.errors import ConfigError
from mmlesson.identity import run_identity
from mmlesson.methods import METHODS

from .conftest import TINY_KNOBS

TRAIN = dict(data_knobs=TINY_KNOBS, width=4, epochs=3, batch_size=16, probe=False, progress="off", device="cpu")
NEEDS = {"unimodal": dict(modality="audio"), "ccat": dict(classifier_epochs=1, beta=0.5),
         "frozen_encoders": "encoder runs"}  # given by the ``encoder_runs`` fixture


@pytest.fixture(scope="module")
def encoder_runs(tmp_path_factory, tiny_dataset):
    """Two finished unimodal runs (audio, visual) for the methods that load encoders."""
    root = tmp_path_factory.mktemp("encoders")
    for modality in ("audio", "visual"):
        fit(TrainConfig.build(**TRAIN, method="unimodal", modality=modality, out=str(root / modality)),
            dataset=tiny_dataset)
    return [str(root / "audio"), str(root / "visual")]


@pytest.fixture
def config_of(encoder_runs):
    def make(method: str, **overrides) -> TrainConfig:
        needs = NEEDS.get(method, {})
        needs = dict(encoders_from=encoder_runs) if needs == "encoder runs" else needs
        return TrainConfig.build(**{**TRAIN, "method": method, **needs, **overrides})
    return make


def without_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_tiny_run_has_a_finite_loss_on_every_epoch(method, config_of, tiny_dataset):
    run = fit(config_of(method), dataset=tiny_dataset)
    losses = [row["train"]["loss"] for row in run.metrics["history"]]
    assert len(losses) == TRAIN["epochs"] and all(torch.isfinite(torch.tensor(losses)))
    assert 0.0 <= run.metrics["final"]["test"]["acc"] <= 1.0


@pytest.mark.parametrize("method", sorted(METHODS))
def test_interrupted_after_every_epoch_it_resumes_bit_identically_and_then_reads_back(method, config_of,
                                                                                     tiny_dataset, tmp_path):
    whole = fit(config_of(method, out=str(tmp_path / "whole")), dataset=tiny_dataset)
    config = config_of(method, out=str(tmp_path / "pieces"))
    for _ in range(TRAIN["epochs"] - 1):  # one epoch per call: every stage is interrupted, and every boundary
        partial = fit(config, dataset=tiny_dataset, stop_after=1)
        assert partial.metrics["final"] is None
    resumed = fit(config, dataset=tiny_dataset)  # the last epoch, then the final evaluation
    assert resumed.status == "resumed"
    assert without_seconds(resumed.metrics["history"]) == without_seconds(whole.metrics["history"])
    assert resumed.metrics["final"] == whole.metrics["final"]
    weights, reference = resumed.model.state_dict(), whole.model.state_dict()
    assert weights.keys() == reference.keys() and all(torch.equal(weights[k], reference[k]) for k in weights)
    again = fit(config, dataset=tiny_dataset)
    assert again.status == "read back" and again.metrics == resumed.metrics


@pytest.mark.parametrize("method", sorted(METHODS))
def test_its_identity_holds_its_own_options_only(method, config_of, tiny_dataset):
    config = config_of(method)
    identity = run_identity(config, METHODS[method](config), tiny_dataset.identity)
    own = {f.name for f in dataclasses.fields(METHODS[method].Options)}
    assert set(identity["options"]) == own
    assert identity["method"] == method


def help_groups() -> dict[str, str]:
    """The option groups of ``mmlesson train --help``: {group title: one line per flag, its help}."""
    parser = build_parser()._subparsers._group_actions[0].choices["train"]
    return {group.title: "\n".join(f"{action.option_strings} {action.help}" for action in group._group_actions)
            for group in parser._action_groups}


@pytest.mark.parametrize("method", sorted(m for m in METHODS if dataclasses.fields(METHODS[m].Options)))
def test_help_lists_each_option_under_its_method_with_its_own_choices(method):
    groups = help_groups()
    declared_by = {}
    for name, cls in METHODS.items():
        for f in dataclasses.fields(cls.Options):
            declared_by.setdefault(f.name, []).append(name)
    for f in dataclasses.fields(METHODS[method].Options):
        flag = "--" + f.name.replace("_", "-")
        if len(declared_by[f.name]) == 1:
            text = groups[f"options of --method {method}"]
            line = next(line for line in text.splitlines() if f"'{flag}'" in line)
        else:
            text = groups["options of several methods (each method checks its own values)"]
            line = next(line for line in text.splitlines() if f"'{flag}'" in line)
            line = line[line.index(f"{method}: "):].split("; ")[0]
        assert f.metadata["help"] in line
        if f.metadata.get("choices"):
            assert f"(choices: {', '.join(map(str, f.metadata['choices']))})" in line


def bad_value(field, hint):
    """A value of the wrong kind for an option (what a mistyped command line gives)."""
    inner = next((a for a in typing.get_args(hint) if a is not type(None)), hint) \
        if type(None) in typing.get_args(hint) else hint
    if field.metadata.get("choices"):
        return "no-such-choice"
    if inner is bool:
        return "maybe"
    if inner in (int, float) or typing.get_origin(inner) is tuple:
        return "not-a-number"
    return None  # a free string (a path): any text is a value


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_bad_value_of_each_option_gets_one_line_naming_it(method, config_of, capsys):
    hints = typing.get_type_hints(METHODS[method].Options)
    for f in dataclasses.fields(METHODS[method].Options):
        value = bad_value(f, hints[f.name])
        if value is None:
            continue
        with pytest.raises(ConfigError) as error:
            config_of(method, **{f.name: value})
        message = str(error.value)
        assert "\n" not in message and "--" + f.name.replace("_", "-") in message, message


def test_a_resumed_mla_run_keeps_its_projector_on_the_runs_device(config_of):
    method = METHODS["mla"](config_of("mla"))
    method.load_state_dict({"projector": torch.eye(3)}, torch.device("meta"))  # as a checkpoint read on the CPU
    assert method.state_dict()["projector"].device.type == "meta"
    method.load_state_dict({"projector": None}, torch.device("cpu"))  # saved before its first step
    assert method.state_dict()["projector"] is None
