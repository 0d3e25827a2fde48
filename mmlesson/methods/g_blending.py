"""G-Blending: the fused and unimodal losses weighted by how well each head generalises for how much it overfits.

Wang, Tran and Feiszli, "What Makes Training Multi-Modal Classification Networks Hard?", CVPR 2020. A late-fusion
model is trained as a multi-task model, the fused head plus one head per modality (a separate linear head on
its features, as in the paper: ``unimodal_heads="separate"``), on

    ``L = w_fused CE(fused) + w_audio CE(h_audio(z_a)) + w_visual CE(h_visual(z_v))``,    ``sum_k w_k = 1``.

**The weights.** For a head ``k`` followed from checkpoint ``N`` to ``N + n``, with ``L^T`` its training loss and
``L^V`` its loss on held-out data (the paper's estimate of the true loss ``L*``): the overfitting gap
``O = L^V - L^T``, the generalisation ``DeltaG_k = L^V_N - L^V_{N+n}``, the overfitting ``DeltaO_k = O_{N+n} - O_N``
and the overfitting-to-generalisation ratio ``OGR = |DeltaO / DeltaG|``. Minimising the blend's OGR, with the
heads' overfitting uncorrelated, gives ``w_k`` proportional to ``<grad L*, v_k> / sigma_k^2`` (Proposition 1),
which the paper estimates by ``DeltaG_k / DeltaO_k^2``, normalised to sum 1 (``gblend_weights``).

**When, and on what** (online G-Blending). The weights are re-estimated every ``super_epoch`` epochs and stay
fixed in between; the first super-epoch, with no earlier checkpoint to compare with, trains with uniform
weights (1/3 each). Where the paper trains each head alone for ``n`` epochs from the current checkpoint to
measure its trajectory, this file reads the trajectory of the run itself: at the start of each super-epoch
(``on_epoch_start``) every head's mean cross-entropy is measured on the training split (``L^T``) and on the
**validation** split (``L^V``), both in evaluation mode without augmentation, so that the two losses of a gap
come from the same model measured the same way; the weights compare that measurement with the one a
super-epoch earlier. No temporary model is trained, so an estimate costs one forward pass over the training
and validation splits, against the paper's three ``n``-epoch trainings. The validation split is the one model
selection reads; the test split is read by neither. A run of at most ``super_epoch`` epochs never estimates:
it trains the uniform multitask loss divided by 3.

A head whose held-out loss did not fall (``DeltaG <= 0``) gets weight 0 (the formula would make it negative:
training it to *raise* its loss); when no head generalised, the weights in force are kept. A head with
``DeltaG > 0`` and ``DeltaO = 0`` is the limit of an infinite ratio: such heads share all the weight.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..options import option
from .base import Method, at_least_float32, batch_accuracies, encoder_grad_norms
from .multitask import prepare_unimodal_heads, unimodal_heads_option, unimodal_logits

__all__ = ["GBlending", "gblend_weights", "head_losses", "uniform_weights"]

FUSED = "fused"  # the fused head's name among the heads; the unimodal heads are named by their modality


def uniform_weights(heads) -> dict[str, float]:
    return {k: 1.0 / len(heads) for k in heads}


def gblend_weights(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, float] | None:
    """The blending weights from two measurements ``{head: {"train": L^T, "val": L^V}}`` at checkpoints ``N``
    (``before``) and ``N + n`` (``after``): ``w_k = (DeltaG_k / DeltaO_k^2) / Z`` over the heads with ``DeltaG_k >
    0`` (0 for the others), ``Z`` making them sum to 1; those with ``DeltaO_k = 0`` share the weight if any;
    None when no head's held-out loss fell."""
    scores, unbounded = {}, []
    for k in before:
        generalisation = before[k]["val"] - after[k]["val"]  # DeltaG_k
        overfitting = (after[k]["val"] - after[k]["train"]) - (before[k]["val"] - before[k]["train"])  # DeltaO_k
        if generalisation <= 0:
            scores[k] = 0.0
        elif overfitting ** 2 == 0 or not math.isfinite(generalisation / overfitting ** 2):
            unbounded.append(k)
        else:
            scores[k] = generalisation / overfitting ** 2
    if unbounded:
        return {k: (1.0 / len(unbounded) if k in unbounded else 0.0) for k in before}
    total = sum(scores.values())
    if total == 0:
        return None
    return {k: score / total for k, score in scores.items()}


@torch.no_grad()
def head_losses(model, split, device, heads: str, batch_size: int = 256) -> dict[str, float]:
    """Each head's mean cross-entropy over ``split`` (``{"fused": .., "audio": .., "visual": ..}``), the model
    in evaluation mode, the split in order and without augmentation; the model's mode is restored."""
    was_training = model.training
    model.eval()
    totals, count = {}, 0
    for batch in split.batches(batch_size, device=device):
        output = model(batch)
        logits = {FUSED: output.logits, **unimodal_logits(model, output, heads)}
        for k, value in logits.items():
            loss = F.cross_entropy(value.double(), batch["label"], reduction="sum")
            totals[k] = totals.get(k, 0.0) + float(loss)
        count += len(batch["label"])
    model.train(was_training)
    if count == 0:
        raise ValueError("G-Blending measures its heads' losses on a split with no sample; give it a non-empty split")
    return {k: total / count for k, total in totals.items()}


@dataclass(frozen=True)
class GBlendingOptions:
    super_epoch: int = option(10, "epochs between two estimates of the blending weights, each from the heads' "
                                  "train and validation losses now and one super-epoch earlier (10 as in "
                                  "BalanceBenchmark's online G-Blending)", minimum=1)
    unimodal_heads: str = unimodal_heads_option("separate", "as in the paper")


class GBlending(Method):
    name = "g_blending"
    Options = GBlendingOptions
    epoch_options = ("super_epoch",)
    tiny_options = {"super_epoch": 1}  # a 3-epoch run estimates the weights twice

    def __init__(self, config, upstream: dict | None = None):
        super().__init__(config, upstream)
        self.weights: dict[str, float] | None = None  # in force; uniform until the first estimate
        self.measured: dict[str, dict[str, float]] | None = None  # the losses at the last super-epoch start

    def prepare_model(self, model):
        return prepare_unimodal_heads(model, self.options.unimodal_heads, "G-Blending")

    def heads(self, model) -> tuple[str, ...]:
        return (FUSED, *model.modalities)

    def on_epoch_start(self, model, train_split, state, validation_split=None) -> None:
        if self.weights is None:
            self.weights = uniform_weights(self.heads(model))
        if state.epoch % self.options.super_epoch != 0:
            return
        if validation_split is None:
            raise ValueError("G-Blending estimates its weights on a validation split; on_epoch_start was given none")
        train = head_losses(model, train_split, state.device, self.options.unimodal_heads)
        val = head_losses(model, validation_split, state.device, self.options.unimodal_heads)
        now = {k: {"train": train[k], "val": val[k]} for k in self.heads(model)}
        if self.measured is not None:
            estimate = gblend_weights(self.measured, now)
            if estimate is not None:
                self.weights = estimate
        self.measured = now

    def state_dict(self) -> dict:
        return {"weights": self.weights, "measured": self.measured}

    def load_state_dict(self, state: dict, device) -> None:
        self.weights, self.measured = state["weights"], state["measured"]

    def training_step(self, model, batch, optimizer, state):
        labels = batch["label"]
        weights = self.weights or uniform_weights(self.heads(model))
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            output = model(batch)
            fused_loss = F.cross_entropy(at_least_float32(output.logits), labels)
            unimodal = unimodal_logits(model, output, self.options.unimodal_heads)
            unimodal_losses = {m: F.cross_entropy(at_least_float32(logits), labels) for m, logits in unimodal.items()}
            loss = weights[FUSED] * fused_loss + sum(weights[m] * value for m, value in unimodal_losses.items())
        loss.backward()
        stats = {"loss": loss.item(), "loss_fused": fused_loss.item(), **encoder_grad_norms(model),
                 **batch_accuracies(output, labels)}
        for m, value in unimodal_losses.items():
            stats[f"loss_unimodal/{m}"] = value.item()
        for k, w in weights.items():
            stats[f"weight/{k}"] = w
        optimizer.step()
        return stats
