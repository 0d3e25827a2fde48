"""What a training method is: it owns one optimisation step; the engine owns the loop.

``Method.training_step(model, batch, optimizer, state) -> dict[str, float]`` may run several
backward passes, modulate gradients or alternate modalities. It returns scalar statistics that
the engine averages into the run's history over the steps that reported them (``loss`` is
required on every step: the engine stops on a NaN loss). ``model_modalities`` says which encoders
the model must have.

A method trains in one or more **stages** (``stages()``; one by default): each has its epochs
(summing to the run's), its trainable parameters (``trainable``) and its own optimiser and schedule
(the run's SGD settings, with the stage's overrides; the run's decay milestones counted on the run's
epoch axis). Two hooks change the model, kept apart on purpose:

* ``prepare_model`` (before stage 0) and ``enter_stage`` (at the start of each later stage) change its
  *structure*: add modules, freeze parameters. The engine replays them when it resumes a run and when
  it reads a finished one back, before loading weights, so they must not read other runs' weights.
* ``initialise`` loads weights from other runs (e.g. frozen encoders); it runs for fresh runs only.

Model selection on validation only considers the epochs of the final stage; the checkpoint records
the stage, and each history row names it. State a method keeps across steps (MLA's projector) lives on
the method and goes into each checkpoint through ``state_dict`` / ``load_state_dict(state, device)``;
``on_epoch_start`` sees the training and validation splits before each epoch.

Each method declares its own options as a dataclass (``Options``, fields made with
``options.option``) and is registered by one line in ``REGISTERED`` (``methods/__init__.py``). A run's identity holds the shared
training fields and only its own method's options (``identity_options``), so adding a method or an
option never changes the identity, and so the directory, of another method's runs.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..files import plain
from ..models import MultimodalModel

@dataclass(frozen=True)
class NoOptions:
    """A method without options of its own."""


@dataclass
class StepState:
    """What a method may know about where training is."""

    epoch: int
    step: int  # global step, counted from 0
    device: torch.device
    amp: bool = False  # bf16 autocast (CUDA only)
    stage: int = 0  # index into the method's stages()
    steps_per_epoch: int = 1

    def autocast(self):
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


@dataclass(frozen=True)
class Stage:
    """One stage of a method's training: ``epochs`` epochs with a fresh SGD optimiser over the
    parameters ``Method.trainable`` gives; ``lr``, ``momentum``, ``weight_decay`` override the run's."""

    name: str
    epochs: int
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None


class Method:
    """Base class. Subclasses set ``name`` (and ``Options``) and implement ``training_step``."""

    name = "method"
    Options = NoOptions
    stage_lengths: tuple[str, ...] = ()  # options that set a stage's length in epochs (``replicate --epochs`` scales them)
    epoch_options: tuple[str, ...] = ()  # other options counted in epochs: a period, a warm-up, a window (scaled too)
    tiny_options: dict = {}  # options a tiny run (3 epochs, the contract suite's) needs beside the defaults

    def __init__(self, config, upstream: dict | None = None):
        """``upstream``: the identities of the runs this one reads (``{run directory: identity}``), given by
        whoever plans it before they are written (a grid; ``store.plan`` always passes it); a method that
        reads no other run ignores it, and one that overrides ``__init__`` passes it on."""
        self.config = config
        self.options = config.options
        self.upstream = {Path(run_dir): identity for run_dir, identity in (upstream or {}).items()}

    def identity_options(self) -> dict:
        """This method's part of the run identity: its options, as JSON values."""
        return plain(asdict(self.options))

    def label(self) -> str:
        """The readable part of a run directory's name (``ogm_ge``, ``unimodal-audio``)."""
        return self.name

    def check_data(self, data_identity: dict) -> None:
        """Refuse data this method cannot train on (e.g. encoders trained on other data)."""

    def model_modalities(self, modalities: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(modalities)

    def make_model(self, num_classes: int, modalities: tuple[str, ...], fusion: str | None = None):
        """A freshly initialised model: encoders for ``modalities``, ``fusion`` (default: the run's), the
        run's width, output stride and feature scale."""
        config = self.config
        return MultimodalModel(num_classes, modalities=modalities, fusion=fusion or config.fusion, width=config.width,
                               output_stride=config.output_stride,
                               feature_scale=dict(zip(("audio", "visual"), config.feature_scale)))

    def stages(self) -> list[Stage]:
        """The stages of training, in order; their epochs sum to the run's ``epochs``."""
        return [Stage("train", self.config.epochs)]

    def prepare_model(self, model):
        """Adjust the structure of a freshly built model (freeze, add modules); replayed on resume and read-back."""
        return model

    def enter_stage(self, model, index: int) -> None:
        """Change the model's structure at the start of stage ``index`` >= 1; replayed on resume and read-back."""

    def initialise(self, model) -> None:
        """Load weights from other runs into a fresh run's model (never on resume or read-back)."""

    def trainable(self, model, index: int) -> list:
        """The parameters stage ``index``'s optimiser updates (default: all of them)."""
        return list(model.parameters())

    def on_epoch_start(self, model, train_split, state: StepState, validation_split=None) -> None:
        """Called before each epoch's steps with the training split (``TensorSplit`` or ``CachedSplit``),
        for methods that need a pass over it (class prototypes, sample valuation), and the validation split,
        for methods that estimate something on held-out data (G-Blending's weights, a purity); never the
        test split. Nothing by default."""

    def state_dict(self) -> dict:
        """The method's own state that lives across steps (tensors, numbers), saved in each checkpoint."""
        return {}

    def load_state_dict(self, state: dict, device) -> None:
        """Restore ``state_dict()``'s content from a checkpoint (read on the CPU), moved to ``device``."""

    def training_step(self, model, batch: dict, optimizer, state: StepState) -> dict[str, float]:
        raise NotImplementedError


def encoder_grad_norms(model) -> dict[str, float]:
    """L2 norm of each encoder's full parameter gradient, ``{"grad_norm/<m>": float}``."""
    norms = {}
    for m in model.modalities:
        grads = [p.grad for p in model.encoders[m].parameters() if p.grad is not None]
        norms[f"grad_norm/{m}"] = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
    return norms


def at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    """Logits for a loss: bf16 (autocast) raised to float32, float64 kept (the tests' exact arithmetic)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of a batch whose highest logit is its label."""
    return float((logits.argmax(1) == labels).float().mean())


def batch_accuracies(output, labels) -> dict[str, float]:
    """Training-batch accuracy of the fused and per-modality predictions."""
    stats = {"acc": accuracy(output.logits, labels)}
    for m, logits in output.logits_per_modality.items():
        stats[f"branch_acc/{m}"] = accuracy(logits, labels)
    return stats


class ScaleGradient(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by a constant ``factor`` in the backward
    pass. Placed on an encoder's output, it scales every gradient that reaches that encoder."""

    @staticmethod
    def forward(ctx, features, factor: float):
        ctx.factor = factor
        return features.view_as(features)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


def scale_gradient(features: torch.Tensor, factor: float) -> torch.Tensor:
    """``features`` unchanged, with its gradient multiplied by ``factor`` (no-op for 1)."""
    return features if factor == 1.0 else ScaleGradient.apply(features, factor)
