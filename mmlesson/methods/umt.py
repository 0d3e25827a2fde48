"""UMT and UME: the uni-modal teacher and the uni-modal ensemble.

Du, Teng, Li, Liu, Yuan, Wang, Yuan and Zhao, "On Uni-Modal Feature Learning in Supervised Multi-Modal
Learning", ICML 2023. The paper splits what a multimodal model can learn into *uni-modal features* (learnable
from one modality alone) and *paired features* (learnable only from the two together), and shows that joint
late-fusion training under-learns the uni-modal ones ("modality laziness"). Its two remedies both start from
the unimodal models mmlesson already trains (``--method unimodal``), named here, as for ``frozen_encoders``,
by ``--encoders-from AUDIO_RUN VISUAL_RUN``; the run's identity names them by identity hash.

* **UMT** (``umt``): joint training of the multimodal model, encoders from scratch, with each encoder's
  output pulled towards the output of its modality's frozen unimodal encoder (the teacher):

      L = CE(f(x), y) + lambda * sum_m MSE(z_m, t_m),    MSE = mean over the batch and the feature dimensions,

  ``z_m`` the student's features (what the head reads), ``t_m`` the teacher's on the same input. The teachers
  are frozen copies of the unimodal runs' encoders, added to the model in ``prepare_model`` (``model.teachers``,
  saved and restored with the weights) and loaded in ``initialise``; they get no gradient and stay in
  evaluation mode (batch-norm running statistics) whatever mode the engine sets. lambda defaults to 10, the
  value BalanceBenchmark's re-implementation releases (Xu et al., 2025; the authors' code was not available
  to us, and the paper's own weight is not checked here). That re-implementation calls its teachers in training
  mode, so their batch-norm layers use batch statistics and their running statistics drift during training;
  here a teacher is a fixed function. With a feature scale other than 1 (``--feature-scale``, Chapter 5) the
  teacher's features are scaled like the student's before they are compared.

* **UME** (``ume``): no end-to-end training at all. Each unimodal model (encoder and linear layer) is trained
  alone, and their outputs are averaged at the decision level: here their logits, ``f(x) = (g_a(x_a) +
  g_v(x_v)) / 2`` with ``g_m(x) = W_m z_m + b_m`` the unimodal run's logits (whether the paper averages logits
  or probabilities is not checked here). The average of logits is exactly a concat head,
  ``W = [W_a, W_v] / 2`` and ``b = (b_a + b_v) / 2``, so ``initialise`` loads the two encoders and this head
  and ``prepare_model`` freezes everything: each of the run's ``epochs`` only measures the loss (one forward
  pass per step in evaluation mode, no gradient, no parameter or statistic changes), and model selection
  keeps the first epoch, the ensemble itself. Averaging probabilities instead of logits is not a linear head
  and is not offered. A branch is the concat head with the other modality's features zeroed (the package's
  convention, ``models/fusion.py``): ``W_m z_m / 2 + (b_a + b_v) / 2``, whose prediction is the unimodal
  model's with the other model's bias added, not always the unimodal run's own.

Cost per step against joint training: UMT one forward and one backward pass of the student plus two no-grad
encoder forwards (the teachers); UME one forward pass and no backward pass. The unimodal runs are trained
first (the book's unimodal baselines).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models.fusion import MODALITIES, require_audio_and_visual, require_concat
from ..options import option
from ..rundir import RunDirectory
from .base import batch_accuracies, encoder_grad_norms
from .frozen_encoders import FrozenEncoders, load_unimodal_encoder, needs_encoder_runs
from .joint import modality_ratios

__all__ = ["UMT", "UME", "distillation_losses", "ensemble_head", "unimodal_head"]

TEACHER_RUNS = ("the audio-only and the visual-only run directories whose encoders become the frozen teachers "
                "(a unimodal run of each modality, trained first)")
ENSEMBLE_RUNS = "the audio-only and the visual-only run directories whose models (encoder and linear layer) are averaged"


# ----------------------------------------------------------------------------------------------------------- UMT

@dataclass(frozen=True)
class UMTOptions:
    encoders_from: tuple[str, str] | None = option(None, TEACHER_RUNS, nargs=2, metavar=("AUDIO_RUN", "VISUAL_RUN"))
    distill_weight: float = option(
        10.0, "weight lambda of the feature distillation, L = CE(fused) + lambda sum_m MSE(z_m, teacher_m) (10 as "
              "BalanceBenchmark releases it, whose earlier version used 1)", minimum=0.0)

    def __post_init__(self):
        if self.encoders_from is None:
            raise needs_encoder_runs("umt")


def distillation_losses(features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``{m: MSE(z_m, t_m)}``, the squared difference averaged over the batch and the feature dimensions."""
    return {m: F.mse_loss(features[m].float(), targets[m].float()) for m in features}


class UMT(FrozenEncoders):
    """Joint training plus feature distillation from frozen unimodal teachers (``model.teachers``)."""

    name = "umt"
    Options = UMTOptions

    def prepare_model(self, model):
        """Add the teachers: frozen copies of the encoders' structure (their weights come in ``initialise``)."""
        require_audio_and_visual(model, "UMT")
        model.teachers = nn.ModuleDict({m: copy.deepcopy(model.encoders[m]) for m in MODALITIES})
        for parameter in model.teachers.parameters():
            parameter.requires_grad_(False)
        return model

    def initialise(self, model) -> None:
        """The teachers are the unimodal runs' encoders; the student's encoders keep their fresh initialisation."""
        for modality, run_dir in zip(MODALITIES, self.options.encoders_from):
            load_unimodal_encoder(model.teachers, modality, run_dir, self.config.width, self.config.output_stride)

    def trainable(self, model, index: int) -> list:
        """Everything but the teachers."""
        return [p for name, p in model.named_parameters() if not name.startswith("teachers.")]

    def training_step(self, model, batch, optimizer, state):
        labels = batch["label"]
        optimizer.zero_grad(set_to_none=True)
        model.teachers.eval()  # fixed functions: running batch-norm statistics, never updated
        with state.autocast():
            features = model.encode(batch)
            output = model.fuse(features)
            fused_loss = F.cross_entropy(output.logits.float(), labels)
            with torch.no_grad():  # the teachers' features, as the head would read them (same feature scale)
                targets = {m: model.teachers[m](batch[m]) * model.feature_scale[i] for i, m in enumerate(MODALITIES)}
            distill = distillation_losses(features, targets)
            loss = fused_loss + self.options.distill_weight * sum(distill.values())
        loss.backward()
        stats = {"loss": loss.item(), "loss_fused": fused_loss.item(), **encoder_grad_norms(model),
                 **batch_accuracies(output, labels)}
        for m in MODALITIES:
            stats[f"loss_distill/{m}"] = distill[m].item()
        if len(output.logits_per_modality) == 2:  # the ratios joint training logs, for comparison
            stats.update(modality_ratios(output.logits_per_modality, labels))
        optimizer.step()
        return stats


# ----------------------------------------------------------------------------------------------------------- UME

@dataclass(frozen=True)
class UMEOptions:
    encoders_from: tuple[str, str] | None = option(None, ENSEMBLE_RUNS, nargs=2, metavar=("AUDIO_RUN", "VISUAL_RUN"))

    def __post_init__(self):
        if self.encoders_from is None:
            raise needs_encoder_runs("ume")


def unimodal_head(run_dir, modality: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    """A finished unimodal run's linear layer ``(W_m [C, D], b_m [C])`` and its feature scale (its model's
    logits are ``W_m (scale * encoder(x)) + b_m``)."""
    state = RunDirectory(run_dir).read_weights()
    prefix = "fusion.head." if "fusion.head.weight" in state else f"fusion.heads.{modality}."  # concat or sum
    return state[prefix + "weight"], state[prefix + "bias"], float(state["feature_scale"][0])


def ensemble_head(weights: dict[str, torch.Tensor], biases: dict[str, torch.Tensor]):
    """The concat head whose logits are the mean of the unimodal logits: ``[W_a, W_v] / 2`` and
    ``(b_a + b_v) / 2`` (halving is exact in floating point)."""
    weight = torch.cat([weights[m] for m in MODALITIES], dim=1) / len(MODALITIES)
    bias = sum(biases[m] for m in MODALITIES) / len(MODALITIES)
    return weight, bias


class UME(FrozenEncoders):
    """The two unimodal models averaged at the logits; nothing is trained."""

    name = "ume"
    Options = UMEOptions

    def prepare_model(self, model):
        require_concat(model, "UME", "loads the two unimodal linear layers into the concat head")
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        return model

    def initialise(self, model) -> None:
        weights, biases = {}, {}
        for index, (modality, run_dir) in enumerate(zip(MODALITIES, self.options.encoders_from)):
            load_unimodal_encoder(model.encoders, modality, run_dir, self.config.width, self.config.output_stride)
            weights[modality], biases[modality], scale = unimodal_head(run_dir, modality)
            if scale != float(model.feature_scale[index]):
                raise ConfigError(f"{run_dir} scales its {modality} features by {scale}, this run by "
                                  f"{float(model.feature_scale[index])}; give UME the unimodal runs' --feature-scale")
        weight, bias = ensemble_head(weights, biases)
        with torch.no_grad():
            model.fusion.head.weight.copy_(weight)
            model.fusion.head.bias.copy_(bias)

    def training_step(self, model, batch, optimizer, state):
        """Measures the ensemble on the batch; changes nothing (the optimiser holds only frozen parameters)."""
        labels = batch["label"]
        model.eval()  # the unimodal runs' batch-norm statistics, never updated
        with torch.no_grad(), state.autocast():
            output = model(batch)
            loss = F.cross_entropy(output.logits.float(), labels)
        stats = {"loss": loss.item(), **encoder_grad_norms(model), **batch_accuracies(output, labels),
                 **modality_ratios(output.logits_per_modality, labels)}
        optimizer.step()  # no parameter has a gradient, so nothing moves; keeps the schedule's step order
        return stats
