"""ReconBoost: alternating boosting of the modalities' learners.

Hua, Xu, Bao, Yang and Huang, "ReconBoost: Boosting Can Achieve Modality Reconcilement", ICML 2024.
The model is an additive ensemble of one learner per modality, ``F(x) = beta (f_a(x) + f_v(x))`` with a
learnt boost rate ``beta``; training alternates between the learners, one modality at a time, so the
dominant modality never shares a gradient with the weak one.

**Learners and ensemble on the concat head.** The learner of modality ``m`` is its encoder with the
concat head's branch, ``f_m = W_m z_m + b`` (``models/fusion.py``, the branch every chapter reports); the
ensemble is what the model computes, ``beta (W [z_a; z_v] + b) = beta (W_a z_a + W_v z_v + b)``:
``prepare_model`` puts a learnable ``beta`` (``fusion.boost_rate``, starting at ``boost_rate``) into the
concat fusion, so evaluation reads exactly the ensemble that was trained. The bias ``b`` is shared by
the learners and counted once in the ensemble (the release's learners share one two-layer head and its
output bias is counted once per learner). Other fusions are refused.

**Schedule** (an internal schedule of one engine stage, by epoch): round ``k`` boosts the learner of
``first_modality`` when ``k`` is even and the other one when it is odd, for ``boost_epochs`` epochs, then
(``rectification``) trains the whole ensemble for ``rectify_epochs`` epochs; the release's "stage" is
such a round. Every epoch is a model-selection candidate (on validation).

**Boosting phase** (learner ``m`` trained, the other learner ``o`` frozen: its encoder gets no gradient and
its block ``W_o`` of the head is kept as it was). With ``p = softmax(f_m)``, the ensemble of the others
``q = softmax(beta f_o)`` (no gradient) and ``C`` classes, the per-sample boosting loss is

    l_i = (w1 - w2 q_i[y_i]) / C * (-log p_i[y_i])        (``boosting_loss``; w1 = ``label_weight``,
                                                            w2 = ``ensemble_weight``, 1/C as released)

A sample the other learner already gets right weighs less, so ``f_m`` fits what the ensemble still
misses. Up to a term constant in ``f_m`` this is ``w1 CE(p, y) - w2 KL(y * q || p)``: cross-entropy minus
the paper's KL-based reconcilement between the current learner and the rest of the ensemble, restricted
to the true class; its logit gradient is ``(w1 - w2 q_y) / C (p - e_y)``, a reweighted negative gradient
of the ensemble loss, which is the paper's link to gradient boosting. To it the phase adds
``reconcile_weight`` times a term that compares the two learners' predictions (the release's second
term): ``KL(softmax(f_o) || softmax(f_m))`` (``reconcilement="kl"``, the KL form the paper gives its
reconcilement; its gradient at ``f_m``'s logits is ``(p_m - p_o) / B``) or their mean squared softmax
difference (``"mse"``, the form the release computes). In the authors' release both inputs of that term
are detached, so it changes nothing (its gradient is zero); ``"detached"`` reproduces that. The term is
left out of the run's first boosting phase, as released (the other learner has not been trained yet).

**Global rectification** (``rectification``): the cross-entropy of the ensemble ``beta (W_a z_a + W_v z_v +
b)``, i.e. of ``model(batch).logits``, on every parameter, ``beta`` included (joint training's step).

What differs from the release, and why:

* Training starts from scratch and runs the book's budget; the release starts from pretrained unimodal
  encoders and its CREMA-D checkpoint is from round 99 (about 800 epochs).
* Each phase starts with fresh SGD momentum, as the release builds a fresh optimiser per phase; the run's
  learning rate, weight decay and schedule apply to both phases (the release: 0.01 for both, weight
  decay 5e-4, x0.1 every 30 rounds on CREMA-D).
* The frozen learner's prediction is computed in training mode (batch-norm batch statistics, whose
  running averages still move), as released.
* The reconcilement term has a gradient (above); the release's both-detached MSE is ``"detached"``.
* Model selection on validation, every epoch; the release keeps the best round on test.

Cost per step: a boosting step is one forward of each encoder (the frozen one without gradient) and one
backward through one encoder, about 0.7 of a joint step; a rectification step is a joint step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models.fusion import ConcatFusion, MODALITIES, require_concat
from ..options import option
from .base import Method, batch_accuracies, encoder_grad_norms
from .joint import joint_step

RECONCILEMENTS = ("kl", "mse", "detached")


@dataclass(frozen=True)
class ReconBoostOptions:
    label_weight: float = option(5.0, "w1 of the boosting loss (w1 - w2 q_y)/C CE(f_m, y): the weight of fitting "
                                      "the label (the release's CREMA-D value; 4 for AVE)", minimum=0.0)
    ensemble_weight: float = option(1.0, "w2 of the boosting loss: how much less a sample weighs when the other "
                                         "learner already gives its class probability q_y (at most w1)", minimum=0.0)
    reconcile_weight: float = option(0.5, "weight alpha of the term comparing the boosted learner's prediction "
                                          "with the frozen learner's", minimum=0.0)
    reconcilement: str = option("kl", "that term: kl (KL(p_other || p_boosted), the paper's form), mse (the "
                                      "release's squared softmax difference, with gradient) or detached (the "
                                      "release's as shipped: both inputs detached, zero gradient)",
                                choices=RECONCILEMENTS)
    rectification: bool = option(True, "after each boosting phase, train the whole ensemble beta (f_a + f_v) on its "
                                       "cross-entropy (global rectification)")
    boost_epochs: int = option(4, "epochs of each boosting phase (one modality's learner trained)", minimum=1)
    rectify_epochs: int = option(4, "epochs of each global rectification phase", minimum=1)
    boost_rate: float = option(1.0, "initial value of the learnt boost rate beta of the ensemble beta (f_a + f_v)",
                               above=0.0)
    first_modality: str = option("audio", "the modality boosted first; the rounds then alternate (the release "
                                          "starts with audio)", choices=MODALITIES)

    def __post_init__(self):
        w1, w2 = self.label_weight, self.ensemble_weight
        numbers = all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in (w1, w2))
        if numbers and w2 > w1:
            raise ConfigError(f"--ensemble-weight ({w2}) must not exceed --label-weight ({w1}): a sample the other "
                              f"learner already predicts would get a negative weight and the loss no lower bound")


@dataclass(frozen=True)
class Phase:
    """Where an epoch falls in the schedule: ``kind`` "boost" or "rectify", the ``modality`` whose learner
    the round boosts, the ``round`` (the release's stage) and whether the epoch ``starts`` its phase."""

    kind: str
    modality: str
    round: int
    starts: bool


def phase_of(epoch: int, boost_epochs: int, rectify_epochs: int, rectification: bool = True,
             first: str = "audio") -> Phase:
    """The phase of run epoch ``epoch`` (from 0): rounds of ``boost_epochs`` boosting epochs, then
    ``rectify_epochs`` rectification epochs if ``rectification``; the boosted modality alternates by round."""
    length = boost_epochs + (rectify_epochs if rectification else 0)
    round_index, offset = divmod(epoch, length)
    order = (first, other_modality(first))
    modality = order[round_index % 2]
    if offset < boost_epochs:
        return Phase("boost", modality, round_index, offset == 0)
    return Phase("rectify", modality, round_index, offset == boost_epochs)


def other_modality(modality: str) -> str:
    return MODALITIES[1 - MODALITIES.index(modality)]


def widened(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 if it is in a half precision (autocast), else as it is (float64 stays float64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def sample_weights(ensemble_logits: torch.Tensor, labels: torch.Tensor, label_weight: float,
                   ensemble_weight: float) -> torch.Tensor:
    """``(w1 - w2 q_i[y_i]) / C`` per sample, ``q = softmax(ensemble_logits)`` (treated as a constant)."""
    q = widened(ensemble_logits.detach()).softmax(dim=1)
    q_true = q.gather(1, labels[:, None]).squeeze(1)
    return (label_weight - ensemble_weight * q_true) / ensemble_logits.shape[1]


def boosting_loss(current_logits: torch.Tensor, ensemble_logits: torch.Tensor, labels: torch.Tensor,
                  label_weight: float, ensemble_weight: float) -> torch.Tensor:
    """The batch mean of ``(w1 - w2 q_y) / C * (-log softmax(current_logits)_y)`` (``q`` from the others)."""
    weights = sample_weights(ensemble_logits, labels, label_weight, ensemble_weight)
    log_p_true = widened(current_logits).log_softmax(dim=1).gather(1, labels[:, None]).squeeze(1)
    return (weights * -log_p_true).mean()


def reconcilement_loss(current_logits: torch.Tensor, other_logits: torch.Tensor, form: str = "kl") -> torch.Tensor:
    """The term comparing the boosted learner with the frozen one (its logits a constant): ``kl`` is the batch
    mean of ``KL(softmax(other) || softmax(current))``; ``mse`` the mean over samples and classes of the
    squared softmax difference; ``detached`` that MSE with both inputs detached (no gradient, as released)."""
    other = widened(other_logits.detach())
    current = widened(current_logits)
    if form == "kl":
        log_q, log_p = other.log_softmax(dim=1), current.log_softmax(dim=1)
        return (log_q.exp() * (log_q - log_p)).sum(dim=1).mean()
    if form == "mse":
        return F.mse_loss(current.softmax(dim=1), other.softmax(dim=1))
    if form == "detached":
        return F.mse_loss(current.detach().softmax(dim=1), other.softmax(dim=1))
    raise ValueError(f"unknown reconcilement {form!r}; choose one of: {', '.join(RECONCILEMENTS)}")


def reconboost_loss(current_logits, ensemble_logits, other_logits, labels, label_weight: float,
                    ensemble_weight: float, reconcile_weight: float, form: str = "kl") -> dict[str, torch.Tensor]:
    """A boosting phase's loss: ``{"boosting", "reconcilement", "loss"}`` with ``loss = boosting +
    reconcile_weight * reconcilement``; without ``other_logits`` (the first phase) there is no reconcilement."""
    boosting = boosting_loss(current_logits, ensemble_logits, labels, label_weight, ensemble_weight)
    if other_logits is None:
        return {"boosting": boosting, "loss": boosting}
    reconcilement = reconcilement_loss(current_logits, other_logits, form)
    return {"boosting": boosting, "reconcilement": reconcilement, "loss": boosting + reconcile_weight * reconcilement}


class BoostedConcatFusion(ConcatFusion):
    """The concat head times a learnt boost rate: ``beta (W [z_a; z_v] + b)``; the branches (the learners)
    stay ``W_m z_m + b``. Built around an existing head, so its initialisation is kept."""

    def __init__(self, concat: ConcatFusion, boost_rate: float):
        nn.Module.__init__(self)
        self.modalities, self.feature_sizes, self.head = concat.modalities, concat.feature_sizes, concat.head
        self.boost_rate = nn.Parameter(torch.tensor(float(boost_rate), dtype=concat.head.weight.dtype))

    def forward(self, features):
        return self.boost_rate * super().forward(features)


class ReconBoost(Method):
    name = "reconboost"
    Options = ReconBoostOptions
    epoch_options = ("boost_epochs", "rectify_epochs")
    tiny_options = {"boost_epochs": 1, "rectify_epochs": 1}  # 3 epochs: boost audio, rectify, boost visual

    def prepare_model(self, model):
        require_concat(model, "reconboost", "trains an additive ensemble of an audio and a visual learner on the "
                                            "concat head")
        model.fusion = BoostedConcatFusion(model.fusion, self.options.boost_rate)
        return model

    def phase(self, epoch: int) -> Phase:
        cfg = self.options
        return phase_of(epoch, cfg.boost_epochs, cfg.rectify_epochs, cfg.rectification, cfg.first_modality)

    def training_step(self, model, batch, optimizer, state):
        phase = self.phase(state.epoch)
        if phase.starts and state.step % state.steps_per_epoch == 0:
            optimizer.state.clear()  # a fresh momentum for each phase (the release's fresh optimiser)
        if phase.kind == "rectify":
            stats = joint_step(model, batch, optimizer, state)  # CE of model(batch).logits = beta (W z + b)
            stats["loss_rectification"] = stats["loss"]
        else:
            stats = self.boosting_step(model, batch, optimizer, state, phase)
        stats["boost_rate"] = model.fusion.boost_rate.detach().item()
        for m in MODALITIES:
            stats[f"boosting/{m}"] = float(phase.kind == "boost" and phase.modality == m)
        stats["rectification"] = float(phase.kind == "rectify")
        return stats

    def boosting_step(self, model, batch, optimizer, state, phase: Phase) -> dict[str, float]:
        """One step on learner ``phase.modality`` with the other learner frozen."""
        cfg, labels = self.options, batch["label"]
        m, o = phase.modality, other_modality(phase.modality)
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            features = model.encode_modality(batch, m)
            with torch.no_grad():
                frozen = model.encode_modality(batch, o)
                output = model.fuse({m: features.detach(), o: frozen})  # the ensemble and both learners, as they are
                other = widened(output.logits_per_modality[o])
                ensemble_of_others = model.fusion.boost_rate * other  # beta f_o
            current = model.fusion.branch_logits({m: features, o: torch.zeros_like(frozen)})[m]  # f_m = W_m z_m + b
            losses = reconboost_loss(current, ensemble_of_others, other if phase.round > 0 else None, labels,
                                     cfg.label_weight, cfg.ensemble_weight, cfg.reconcile_weight, cfg.reconcilement)
        losses["loss"].backward()
        kept = model.fusion.weight_blocks()[o].detach().clone()
        optimizer.step()
        with torch.no_grad():  # the frozen learner's block of the head stays as it was (weight decay, momentum)
            model.fusion.weight_blocks()[o].copy_(kept)
        stats = {"loss": losses["loss"].item(), f"loss_boosting/{m}": losses["boosting"].item(),
                 f"sample_weight/{m}": float(sample_weights(ensemble_of_others, labels, cfg.label_weight,
                                                            cfg.ensemble_weight).mean()),
                 **encoder_grad_norms(model), **batch_accuracies(output, labels)}
        if "reconcilement" in losses:
            stats[f"loss_reconcilement/{m}"] = losses["reconcilement"].item()
        return stats
