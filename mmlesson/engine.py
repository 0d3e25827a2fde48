"""The training loop: ``fit()`` and ``evaluate()`` (Chapter 1 walks through it).

``fit`` trains with a registered method, evaluates on the validation split after every epoch,
keeps the weights of the best validation epoch (never selected on test), hands a checkpoint to its
run directory when it is due (``rundir.py`` decides that, and what the directory already holds), so
that an interrupted run resumes bit-identically on the CPU from its last checkpoint, and ends by
evaluating the selected model on test, with linear probes, into metrics.json. ``load_run`` reads a
finished run's model back without training anything.
"""
from __future__ import annotations

import contextlib
import math
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch

from . import data as data_module
from .analysis.contributions import contributions
from .analysis.decision import decision_scores
from .analysis.probe import extract_features, probe_accuracy
from .analysis.scores import classification_scores
from .config import TrainConfig, options_help
from .errors import ConfigError, IncompleteRun, TrainingDiverged
from .files import plain
from .identity import check_same_run, identity_hash, run_identity
from .methods import METHODS, StepState
from .models import MultimodalModel
from .paths import env_int
from .progress import RunProgress, warn
from .rundir import METRICS_FORMAT, Attempt, RunDirectory, run_directory_for

PACKAGES = ("mmlesson", "torch", "torchvision", "torchaudio", "numpy")  # versions recorded in metrics.json


@dataclass
class RunResult:
    """A run: its selected model, its metrics (metrics.json's content), its directory and whether
    this call ``trained`` it, ``resumed`` it from a checkpoint or ``read back`` a finished one."""

    model: MultimodalModel
    metrics: dict
    out: Path | None
    status: str = "trained"

    def __repr__(self) -> str:
        config, final = self.metrics.get("config", {}), self.metrics.get("final")
        score = f"test acc {final['test']['acc']:.3f}" if final else "not finished"
        where = f" in {self.out}" if self.out else ""
        return f"RunResult({config.get('method')} seed {config.get('seed')}{where}: {score}, {self.status})"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for but CUDA is not available; use --device cpu or --device auto")
    return torch.device(name)


@contextlib.contextmanager
def torch_threads(threads: int | None, device: torch.device):
    """Run the body with ``threads`` intra-op CPU threads (None: 1 on the CPU, unchanged on CUDA; 0:
    torch's default), restoring the caller's setting afterwards. One thread is the fastest setting for
    the book's small CPU models, and it keeps parallel runs from competing for the cores."""
    before = torch.get_num_threads()
    if threads is None:
        threads = env_int("MMLESSON_THREADS", minimum=0)
    wanted = (1 if device.type == "cpu" else None) if threads is None else (threads or None)
    if wanted is not None:
        torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_model(method, dataset, stage: int = 0) -> MultimodalModel:
    """The model ``method`` trains on ``dataset``: the encoders it needs, the config's fusion and width,
    with the structure of stage ``stage`` (``prepare_model``, then ``enter_stage`` for each later stage)."""
    model = method.make_model(dataset.num_classes, method.model_modalities(dataset.modalities))
    model = method.prepare_model(model)
    for index in range(1, stage + 1):
        method.enter_stage(model, index)
    return model


@torch.no_grad()
def evaluate(model: MultimodalModel, split, device, num_classes: int, batch_size: int = 256,
             probe_split=None) -> dict:
    """Fused accuracy, macro-F1 and per-class accuracy; per-modality branch accuracy (each modality's
    branch as its fusion defines it, ``models/fusion.py``); for two branches, each modality's mean
    contribution (``analysis.contributions``: its branch logits against the fused logits, per batch);
    with ``probe_split``, per-modality linear-probe accuracy of probes fitted on ``probe_split``'s
    frozen features and scored on ``split``."""
    model.eval()
    fused, branches, labels = [], {m: [] for m in model.branch_modalities}, []
    shares = {m: 0.0 for m in branches} if len(branches) == 2 else None
    for batch in split.batches(batch_size, device=device):
        output = model(batch)
        fused.append(output.logits.argmax(1).cpu())
        for m, logits in output.logits_per_modality.items():
            branches[m].append(logits.argmax(1).cpu())
        if shares is not None:
            for m, c in contributions(output.logits_per_modality, output.logits).items():
                shares[m] += float(c.double().sum())
        labels.append(batch["label"].cpu())
    labels = torch.cat(labels)
    result = classification_scores(torch.cat(fused), labels, num_classes)
    result["branch_acc"] = {m: float((torch.cat(p) == labels).double().mean()) for m, p in branches.items()}
    if shares is not None:
        result["contribution"] = {m: total / len(labels) for m, total in shares.items()}
    if probe_split is not None:
        result["probe_acc"] = probe_accuracy(extract_features(model, probe_split, device), probe_split.label,
                                             extract_features(model, split, device), labels, num_classes)
    return result


def stage_starts(stages) -> list[int]:
    """The run epoch at which each stage begins."""
    starts, epoch = [], 0
    for stage in stages:
        starts.append(epoch)
        epoch += stage.epochs
    return starts


def stage_of(epoch: int, stages) -> int:
    """The index of the stage that trains run epoch ``epoch``."""
    return max(i for i, start in enumerate(stage_starts(stages)) if start <= epoch)


def check_stages(method, config: TrainConfig) -> list:
    stages = method.stages()
    if any(stage.epochs < 1 for stage in stages) or sum(stage.epochs for stage in stages) != config.epochs:
        raise ConfigError(f"{method.name}'s stages ({', '.join(f'{s.name} {s.epochs}' for s in stages)} epochs) must "
                          f"each train at least one epoch and add up to --epochs {config.epochs}; change --epochs or "
                          f"the stage's length option")
    return stages


def make_optimizer(config: TrainConfig, method, model, index: int = 0):
    """SGD over stage ``index``'s trainable parameters, with the run's settings and the stage's
    overrides; the run's decay milestones that fall inside the stage, counted from its start."""
    stages = method.stages()
    stage, start = stages[index], stage_starts(stages)[index]
    optimizer = torch.optim.SGD(method.trainable(model, index), lr=config.lr if stage.lr is None else stage.lr,
                                momentum=config.momentum if stage.momentum is None else stage.momentum,
                                weight_decay=config.weight_decay if stage.weight_decay is None else stage.weight_decay)
    milestones = [m - start for m in config.lr_milestones if m > start]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=config.lr_decay)
    return optimizer, scheduler


def mean_stats(step_stats: list[dict]) -> dict:
    """Average each statistic over the epoch's steps that reported it; ``a/b`` keys become nested dicts."""
    means = {}
    keys = list(dict.fromkeys(key for s in step_stats for key in s))
    for key in keys:
        reported = [s[key] for s in step_stats if key in s]
        value = sum(reported) / len(reported)
        if "/" in key:
            group, name = key.split("/", 1)
            means.setdefault(group, {})[name] = value
        else:
            means[key] = value
    return means


def environment(device) -> dict:
    """Package versions, interpreter, machine and device, for metrics.json's ``env`` block."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {"packages": versions, "python": platform.python_version(), "platform": platform.platform(),
            "device": str(device), "device_name": device_name, "torch_threads": torch.get_num_threads()}


def check_split_sizes(dataset) -> None:
    """Warn when a split is too small to learn or to measure anything (e.g. a 6-clip speaker split)."""
    for name in ("train", "val", "test"):
        size = len(dataset.split(name))
        if size < 2 * dataset.num_classes:
            warn(f"the {name} split of {dataset.name} has only {size} clips for {dataset.num_classes} classes; "
                 f"its accuracy says little (prepare more of the data set or choose a larger split)")


def check_dataset_matches(dataset, config: TrainConfig) -> None:
    """A dataset passed in must be the one the config describes, or metrics.json would misreport it."""
    if dataset.name != config.data:
        raise ConfigError(f"the dataset passed in is {dataset.name!r} but the config says data={config.data!r}")
    knobs = plain(dataset.meta.get("knobs", {}))
    differing = sorted(k for k, v in plain(config.data_knobs).items() if k not in knobs or knobs[k] != v)
    if differing:
        raise ConfigError(f"the dataset passed in was not generated with the config's data_knobs "
                          f"({', '.join(differing)} differ); pass the same knobs to both")


def train_one_epoch(method, model, optimizer, batches, state: StepState, bar, run) -> list[dict]:
    """One pass over the training batches; stops with ``TrainingDiverged`` on a NaN or infinite loss."""
    model.train()
    step_stats = []
    for batch in batches:
        stats = method.training_step(model, batch, optimizer, state)
        if not math.isfinite(stats["loss"]):
            # epochs counted from 1, as the progress lines count them (the history's "epoch" is 0-based)
            raise TrainingDiverged(f"loss became {stats['loss']} in epoch {state.epoch + 1}, step {state.step}; "
                                   f"{run.kept_checkpoint()}; lower --lr and run again (with the same --out, the "
                                   f"corrected run replaces this attempt)")
        step_stats.append(stats)
        state.step += 1
        bar.step()
    return step_stats


def fit(config: TrainConfig | None = None, dataset=None, stop_after: int | None = None, **overrides) -> RunResult:
    """Train ``config`` (or ``TrainConfig.build(**overrides)``) and return the selected model and its metrics.

    ``dataset``: an already loaded ``AVDataset`` (else ``config.data`` is loaded with its knobs).
    ``stop_after``: train at most this many epochs in this call, then return without final metrics;
    calling again with the same ``out`` continues (for time-limited sessions such as Colab's).
    With ``out`` set, a complete run is not repeated: its metrics.json and model.pt are read back,
    and an interrupted one resumes from checkpoint.pt (bit-identically on the CPU: model, optimiser,
    schedule, batch order and the global RNG are all restored). What ``out`` holds must be the same
    run (``identity.py``): the same data content, method options and training fields, whatever the
    device or the spelling of the data's path (``RunDirectory.attempt`` decides, and refuses another run).
    """
    if config is not None and overrides:
        raise ConfigError(f"give either a TrainConfig or keyword options, not both (got {', '.join(sorted(overrides))} "
                          f"beside a TrainConfig; use dataclasses.replace(config, ...) to change it)")
    config = config if config is not None else TrainConfig.build(**overrides)
    run = run_directory_for(config.out)
    device = resolve_device(config.device)
    with torch_threads(config.threads, device):
        if dataset is None:
            dataset = data_module.load(config.data, root=config.data_root, **config.data_knobs)
        check_dataset_matches(dataset, config)
        method = METHODS[config.method](config)
        method.check_data(dataset.identity)
        identity = run_identity(config, method, dataset.identity)
        check_stages(method, config)
        with run.attempt(identity) as attempt:
            if attempt.finished:
                model = finished_model(method, dataset, attempt.weights)
                RunProgress(run_label(method, config), config.epochs, config.epochs, 0, config.progress).note(
                    f"{run.path} is complete: read back (test acc {attempt.metrics['final']['test']['acc']:.3f}), "
                    f"nothing trained")
                return RunResult(model.to(device), attempt.metrics, run.path, status="read back")
            check_split_sizes(dataset)
            return train_run(config, method, dataset, identity, device, run, attempt, stop_after)


def run_label(method, config) -> str:
    return f"{method.label()} seed {config.seed}"


@dataclass
class Training:
    """What an interrupted run resumes from (the checkpoint holds it, with the run's identity): the model,
    the current stage's optimiser and schedule, the batch-order generator, the history, the best epoch
    so far and the seconds trained in earlier calls. The method's own state is the method's."""

    model: MultimodalModel
    optimizer: torch.optim.Optimizer
    scheduler: object
    shuffle: torch.Generator
    stage: int = 0
    history: list = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"val_acc": -1.0, "epoch": -1, "state": None})
    elapsed: float = 0.0

    def checkpoint(self, identity: dict, method, seconds: float) -> dict:
        return {"identity": identity, "epoch": self.history[-1]["epoch"], "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "shuffle_rng": self.shuffle.get_state(), "torch_rng": torch.get_rng_state(), "history": self.history,
                "best": self.best, "method_state": method.state_dict(), "stage": self.stage,
                "elapsed": self.elapsed + seconds}

    def restore(self, checkpoint: dict, method, device) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.shuffle.set_state(checkpoint["shuffle_rng"])
        torch.set_rng_state(checkpoint["torch_rng"])
        self.history, self.best, self.elapsed = checkpoint["history"], checkpoint["best"], checkpoint["elapsed"]
        method.load_state_dict(checkpoint["method_state"], device)


def start_training(config: TrainConfig, method, dataset, device, checkpoint: dict | None) -> Training:
    """A fresh run's model (initialised by the method) and optimiser, or an interrupted one's, restored."""
    torch.manual_seed(config.seed)
    stage = checkpoint["stage"] if checkpoint is not None else 0
    model = build_model(method, dataset, stage)  # the structure of the stage the run is in
    if checkpoint is None:
        method.initialise(model)
    model = model.to(device)
    optimizer, scheduler = make_optimizer(config, method, model, stage)
    training = Training(model, optimizer, scheduler, torch.Generator().manual_seed(config.seed), stage)
    if checkpoint is not None:
        training.restore(checkpoint, method, device)
    return training


def enter_stage(training: Training, config: TrainConfig, method, device, index: int) -> None:
    """Stage ``index`` begins: its structure, its optimiser and, for the last stage, its own model selection."""
    training.stage = index
    method.enter_stage(training.model, index)
    training.model.to(device)
    training.optimizer, training.scheduler = make_optimizer(config, method, training.model, index)
    if index == len(method.stages()) - 1:
        training.best = {"val_acc": -1.0, "epoch": -1, "state": None}


def train_run(config: TrainConfig, method, dataset, identity: dict, device, run, attempt: Attempt,
              stop_after: int | None) -> RunResult:
    """The training loop of ``fit`` (fresh, or resumed from ``attempt.checkpoint``), reporting to ``run``
    (a ``RunDirectory`` or ``NoRunDirectory``), then the final evaluation."""
    started = time.perf_counter()
    stages, checkpoint = method.stages(), attempt.checkpoint
    training = start_training(config, method, dataset, device, checkpoint)
    run.start(identity, config.to_dict(), attempt)  # validated, built and initialised: the run has started for real
    status, start_epoch = ("resumed" if checkpoint else "trained"), len(training.history)
    steps_per_epoch = dataset.train.num_batches(config.batch_size)
    state = StepState(epoch=start_epoch, step=start_epoch * steps_per_epoch, stage=training.stage, device=device,
                      amp=config.amp, steps_per_epoch=steps_per_epoch)
    with RunProgress(run_label(method, config), config.epochs, start_epoch, steps_per_epoch, config.progress) as bar:
        if checkpoint:
            bar.note(f"resuming {run.path} from epoch {start_epoch + 1} of {config.epochs}")
        for epoch in range(start_epoch, config.epochs):
            if stop_after is not None and epoch - start_epoch >= stop_after:
                return RunResult(training.model, {"config": config.to_dict(), "history": training.history,
                                                  "final": None}, run.path, status)
            epoch_start, state.epoch = time.perf_counter(), epoch
            if stage_of(epoch, stages) != training.stage:
                enter_stage(training, config, method, device, stage_of(epoch, stages))
                state.stage = training.stage
            train_epoch(config, method, dataset, training, state, bar, run, device)
            training.history[-1]["seconds"] = time.perf_counter() - epoch_start
            bar.end_epoch(epoch, training.history[-1]["val"]["acc"], training.history[-1]["seconds"])
            if run.checkpoint_due(stopping=stop_after is not None and epoch + 1 - start_epoch >= stop_after):
                run.save_checkpoint(training.checkpoint(identity, method, time.perf_counter() - started))
        metrics = final_metrics(config, dataset, training, identity, device, bar)
    metrics["env"]["wall_seconds"] = training.elapsed + time.perf_counter() - started
    run.finish(training.best["state"], metrics)
    return RunResult(training.model, metrics, run.path, status)


def train_epoch(config: TrainConfig, method, dataset, training: Training, state: StepState, bar, run,
                device) -> None:
    """One epoch: the method's epoch hook, its steps over the shuffled training split, the schedule,
    validation, the history row and model selection on validation (never on test)."""
    method.on_epoch_start(training.model, dataset.train, state, validation_split=dataset.val)
    batches = dataset.train.batches(config.batch_size, shuffle=True, generator=training.shuffle, device=device)
    step_stats = train_one_epoch(method, training.model, training.optimizer, batches, state, bar, run)
    training.scheduler.step()
    val_scores = evaluate(training.model, dataset.val, device, dataset.num_classes)
    training.history.append({"epoch": state.epoch, "stage": method.stages()[training.stage].name,
                             "lr": training.optimizer.param_groups[0]["lr"], "train": mean_stats(step_stats),
                             "val": {k: val_scores[k] for k in ("acc", "macro_f1", "branch_acc", "contribution")
                                     if k in val_scores}})
    if val_scores["acc"] > training.best["val_acc"]:
        training.best = {"val_acc": val_scores["acc"], "epoch": state.epoch,
                         "state": {k: v.detach().cpu().clone() for k, v in training.model.state_dict().items()}}


def final_metrics(config: TrainConfig, dataset, training: Training, identity: dict, device, bar) -> dict:
    """metrics.json of the epoch selected on validation: test scores (with probes), the decision layer,
    the executed config, the data, the history and the environment (its ``wall_seconds`` set by the caller)."""
    model = training.model
    model.load_state_dict(training.best["state"])
    if config.probe:
        bar.note("fitting linear probes on the frozen features")
    test = evaluate(model, dataset.test, device, dataset.num_classes,
                    probe_split=dataset.train if config.probe else None)
    test.setdefault("probe_acc", None)
    test["decision"] = decision_scores(model, dataset.test, device)  # decision-layer paper, Table 1
    best_epoch = training.best["epoch"]
    final = {"test": test, "val": training.history[best_epoch]["val"], "best_epoch": best_epoch}
    executed = {**config.to_dict(), "device": str(device), "amp": bool(config.amp and device.type == "cuda"),
                "threads": torch.get_num_threads(), "data_knobs": dataset.meta.get("knobs", config.data_knobs),
                "data_root": str(Path(config.data_root).resolve()) if config.data_root else None}  # what was used
    return plain({"format": METRICS_FORMAT, "config": executed, "identity": identity,
                  "identity_hash": identity_hash(identity), "data": dataset.meta, "history": training.history,
                  "final": final, "env": environment(device)})


def finished_model(method, dataset, weights: dict) -> MultimodalModel:
    """A finished run's selected model: the structure of its last stage, with its weights."""
    model = build_model(method, dataset, stage=len(method.stages()) - 1)
    model.load_state_dict(weights)
    return model


def load_run(run_dir, dataset=None, root=None) -> RunResult:
    """A finished run's selected model and metrics, read back from ``run_dir`` (nothing is trained).
    ``dataset``: the run's data set if already loaded (else it is loaded from the run's config, from
    the cache at ``root`` if given: the data's content, not its path, identifies the run)."""
    run = RunDirectory(run_dir)
    metrics = run.read_metrics()
    real = metrics["config"]["data"] in data_module.REAL_DATASETS  # SynthAV is generated: it has no cache
    root = (root or metrics["config"].get("data_root")) if real else None
    overrides = {"out": str(run_dir), "device": "auto", "progress": "off", "data_root": str(root) if root else None}
    config = TrainConfig.stored(metrics["config"], **overrides)
    if not run.has(run.MODEL):
        raise IncompleteRun(f"{run_dir} has {run.METRICS} but no {run.MODEL}; run `mmlesson train ... --out "
                            f"{run_dir}` again to finish it")
    device = resolve_device(config.device)
    with torch_threads(config.threads, device):
        if dataset is None:
            dataset = data_module.load(config.data, root=config.data_root, **config.data_knobs)
        check_dataset_matches(dataset, config)
        saved = metrics.get("identity")  # the data read now must be the content the run was trained on
        check_same_run(saved and {"data": saved["data"]}, {"data": dataset.identity}, run.path, "finished run")
        model = finished_model(METHODS[config.method](config), dataset, run.read_weights())
    return RunResult(model.to(device), metrics, run.path, status="read back")


def train(**options) -> dict:
    """``mmlesson.train(data="synthav", method="joint", fusion="concat", epochs=8, seed=0, out=DIR)``:
    the Python twin of ``mmlesson train``; returns the run's metrics dict. The options are listed
    below; a method's own options are given flat (``method="ogm_ge", alpha=0.5``)."""
    return fit(TrainConfig.build(**options)).metrics


def document_options() -> None:
    """Append the list of every option (``config.options_help``, which the command line's --help shows
    too) to the docstrings of ``train``, ``fit`` and ``TrainConfig``."""
    text = "\n\n" + options_help()
    for target in (train, fit, TrainConfig):
        if target.__doc__ and "Shared options" not in target.__doc__:
            target.__doc__ = target.__doc__.rstrip() + text


document_options()
