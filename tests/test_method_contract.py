"""The contract every registered method keeps, as named checks generated over the registry: a method
registered with one line (``methods/__init__.py``'s ``REGISTERED``, or ``register(cls)``) is checked
here without a test of its own (the way scikit-learn's ``parametrize_with_checks`` runs one suite over
every estimator); a failure names the check and the method, ``check_resumes_bit_identically[ogm_ge]``.
Options a tiny run needs beyond the defaults come from the method's ``tiny_options``; a method with an
``encoders_from`` option gets two finished unimodal runs.

The checks: a tiny run has a finite loss on every epoch; a run interrupted after every epoch (so inside
every stage) and resumed ends bit-identical to an uninterrupted one (history, final scores, weights) and
is then read back, not retrained; the hooks are called in the documented order (fresh, resumed and
read back); its identity holds its own options only; ``mmlesson train --help`` lists each of its
options with its own choices; a bad value of each option gets one line naming the flag; an option counted
in epochs is declared, so that a run cut to fewer epochs keeps its share."""
import dataclasses
import typing

import pytest
import torch

from mmlesson import TrainConfig, fit
from mmlesson.cli import build_parser
from mmlesson.errors import ConfigError
from mmlesson.identity import run_identity
from mmlesson.arms import GLANCE_ARMS, STUDY_ARMS
from mmlesson.methods import METHODS, REGISTERED, option_names
from mmlesson.rates import STUDY_RATES, protocol_learning_rates

from .conftest import TINY_KNOBS

TRAIN = dict(data_knobs=TINY_KNOBS, width=4, epochs=3, batch_size=16, probe=False, progress="off", device="cpu")


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
        needs = dict(METHODS[method].tiny_options)
        if "encoders_from" in option_names(method):
            needs["encoders_from"] = encoder_runs
        return TrainConfig.build(**{**TRAIN, "method": method, **needs, **overrides})
    return make


def without_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def check_a_tiny_run_has_a_finite_loss_on_every_epoch(method, config_of, tiny_dataset, tmp_path):
    run = fit(config_of(method), dataset=tiny_dataset)
    losses = [row["train"]["loss"] for row in run.metrics["history"]]
    assert len(losses) == TRAIN["epochs"] and all(torch.isfinite(torch.tensor(losses)))
    assert 0.0 <= run.metrics["final"]["test"]["acc"] <= 1.0


def check_interrupted_after_every_epoch_it_resumes_bit_identically_and_then_reads_back(method, config_of,
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


HOOKS = ("prepare_model", "initialise", "enter_stage", "on_epoch_start", "training_step", "load_state_dict")


def recording(cls, log: list):
    """``cls`` with every hook appending ``(hook, argument)`` to ``log`` before doing what ``cls`` does."""
    def wrap(hook):
        def recorded(self, *args, **kwargs):
            log.append((hook, args[1] if hook == "enter_stage" else None))
            return getattr(cls, hook)(self, *args, **kwargs)
        return recorded
    return type(f"Recording{cls.__name__}", (cls,), {hook: wrap(hook) for hook in HOOKS})


def compressed(log: list) -> list:
    """``log`` with each run of training steps as one entry."""
    return [call for i, call in enumerate(log) if call[0] != "training_step" or i == 0 or log[i - 1] != call]


def check_the_hooks_are_called_in_the_documented_order(method, config_of, tiny_dataset, tmp_path, monkeypatch):
    """Fresh: ``prepare_model``, ``initialise``, then per epoch ``on_epoch_start`` and the steps. Resumed: the
    structure replayed (``prepare_model``, ``enter_stage`` up to the checkpoint's stage), the method's state
    loaded, never ``initialise``; ``enter_stage(i)`` before the first epoch of stage i. Read back: the final
    structure only; nothing trains."""
    log: list = []
    monkeypatch.setitem(METHODS, method, recording(METHODS[method], log))
    config = config_of(method, out=str(tmp_path / "run"))
    starts, start = [], 0
    for stage in METHODS[method](config).stages():
        starts.append(start)
        start += stage.epochs
    epoch = [("on_epoch_start", None), ("training_step", None)]
    fit(config, dataset=tiny_dataset, stop_after=1)
    assert compressed(log) == [("prepare_model", None), ("initialise", None), *epoch]
    log.clear()
    fit(config, dataset=tiny_dataset)
    expected = [("prepare_model", None), ("load_state_dict", None)]  # epoch 1 was stage 0: nothing to replay
    for later in range(1, TRAIN["epochs"]):
        expected += [("enter_stage", index) for index, first in enumerate(starts) if first == later and index > 0]
        expected += epoch
    assert compressed(log) == expected, f"stages start at epochs {starts} (from 0)"
    log.clear()
    assert fit(config, dataset=tiny_dataset).status == "read back"
    assert log == [("prepare_model", None), *[("enter_stage", index) for index in range(1, len(starts))]]


def check_its_identity_holds_its_own_options_only(method, config_of, tiny_dataset, tmp_path):
    config = config_of(method)
    identity = run_identity(config, METHODS[method](config, upstream={}), tiny_dataset.identity)  # as a grid plans it
    own = {f.name for f in dataclasses.fields(METHODS[method].Options)}
    assert set(identity["options"]) == own
    assert identity["method"] == method


def help_groups() -> dict[str, str]:
    """The option groups of ``mmlesson train --help``: {group title: one line per flag, its help}."""
    parser = build_parser()._subparsers._group_actions[0].choices["train"]
    return {group.title: "\n".join(f"{action.option_strings} {action.help}" for action in group._group_actions)
            for group in parser._action_groups}


def check_help_lists_it_and_each_option_under_it_with_its_own_choices(method, config_of, tiny_dataset, tmp_path):
    groups = help_groups()
    assert method in next(line for line in groups["options"].splitlines() if "'--method'" in line)
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


def check_a_bad_value_of_each_option_gets_one_line_naming_it(method, config_of, tiny_dataset, tmp_path):
    hints = typing.get_type_hints(METHODS[method].Options)
    for f in dataclasses.fields(METHODS[method].Options):
        value = bad_value(f, hints[f.name])
        if value is None:
            continue
        with pytest.raises(ConfigError) as error:
            config_of(method, **{f.name: value})
        message = str(error.value)
        assert "\n" not in message and "--" + f.name.replace("_", "-") in message, message


def check_every_option_counted_in_epochs_is_declared_so_a_cut_run_scales_it(method, config_of, tiny_dataset,
                                                                            tmp_path):
    """An option whose help counts epochs is a stage length or an epoch option (``replicate --epochs`` scales
    those, ``Grid.scaled_options``), and what is declared is an integer option or a window of them."""
    cls = METHODS[method]
    hints = typing.get_type_hints(cls.Options)
    declared = (*cls.stage_lengths, *cls.epoch_options)
    for f in dataclasses.fields(cls.Options):
        if "epoch" in f.metadata["help"].lower() and hints[f.name] in (int, tuple[int, int]):
            assert f.name in declared, f"{method}'s {f.name} counts epochs: add it to epoch_options"
    for name in declared:
        assert hints[name] in (int, tuple[int, int]), f"{method}.{name}: declared as counted in epochs"


CHECKS = (check_a_tiny_run_has_a_finite_loss_on_every_epoch,
          check_interrupted_after_every_epoch_it_resumes_bit_identically_and_then_reads_back,
          check_the_hooks_are_called_in_the_documented_order, check_its_identity_holds_its_own_options_only,
          check_help_lists_it_and_each_option_under_it_with_its_own_choices,
          check_a_bad_value_of_each_option_gets_one_line_naming_it,
          check_every_option_counted_in_epochs_is_declared_so_a_cut_run_scales_it)


def contract_checks(methods):
    """One named test per (check, method): ``check_name[method]``."""
    for method in sorted(methods):
        for check in CHECKS:
            yield pytest.param(method, check, id=f"{check.__name__}[{method}]")


@pytest.mark.parametrize("method, check", list(contract_checks(METHODS)))
def test_contract(method, check, config_of, tiny_dataset, tmp_path, monkeypatch):
    extra = {"monkeypatch": monkeypatch} if "monkeypatch" in check.__code__.co_varnames else {}
    check(method, config_of, tiny_dataset, tmp_path, **extra)


def test_every_registered_name_is_its_class_name():
    for name, location in REGISTERED.items():
        assert METHODS[name].name == name, f"REGISTERED[{name!r}] = {location!r} is named {METHODS[name].name!r}"


def test_a_resumed_mla_run_keeps_its_projector_on_the_runs_device(config_of):
    method = METHODS["mla"](config_of("mla"))
    method.load_state_dict({"projector": torch.eye(3)}, torch.device("meta"))  # as a checkpoint read on the CPU
    assert method.state_dict()["projector"].device.type == "meta"
    method.load_state_dict({"projector": None}, torch.device("cpu"))  # saved before its first step
    assert method.state_dict()["projector"] is None


@pytest.mark.parametrize("recipe", sorted(STUDY_RATES))
def test_every_arm_the_book_uses_has_a_protocol_rate(recipe):
    """An arm without a stored protocol rate would train at its recipe's rate, unlike every arm beside it."""
    missing = sorted(set(STUDY_ARMS) - set(protocol_learning_rates(recipe)))
    assert not missing, f"{recipe}: no protocol rate for {missing} (python -m mmlesson.book learning-rates)"
    assert set(GLANCE_ARMS) <= set(STUDY_ARMS)
