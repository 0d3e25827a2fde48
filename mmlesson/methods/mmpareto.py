"""MMPareto: each encoder's fused and unimodal gradients combined without conflict, at enhanced magnitude.

Wei and Hu, "MMPareto: Boosting Multimodal Learning with Innocent Unimodal Assistance", ICML 2024. The loss
is the uniform multitask loss ``L = L_mm + L_a + L_v`` (``multitask.py``): the fused cross-entropy and one per
modality, on a separate linear head per modality as released (``unimodal_heads="separate"``). What changes is
how each encoder's gradient is put together (the paper's algorithm), per step and per encoder ``m``:

1. **Per-loss gradients.** ``g1`` = gradient of ``L_mm`` and ``g2`` = gradient of ``L_m`` with respect to encoder
   ``m``'s parameters, each from its own backward pass. Summing the losses (or accumulating ``.grad``) first
   would give both the same tensor ``g1 + g2``: a cosine of 1 and weights (1/2, 1/2) on every step, which is
   what one benchmark's implementation computes (the book's appendix on released code).
2. **Conflict.** ``cos(g1, g2)`` over the encoder's whole flattened gradient; negative is a conflict (a zero
   gradient has cosine 0: no conflict; the release sends an exact 0 to the min-norm branch, a tie that
   changes nothing for a zero gradient, whose update is ``gamma`` times the other either way).
3. **Direction.** No conflict: ``k1 = k2 = 1/2``. Conflict: the two-task minimum-norm point of the segment
   between them (MGDA), ``k1 = (g2.g2 - g1.g2) / |g1 - g2|^2`` clipped to [0.001, 0.999], ``k2 = 1 - k1``
   (the release's clip). The direction is ``d = 2 (k1 g1 + k2 g2)``, so no conflict gives ``d = g1 + g2``.
4. **Magnitude.** ``grad = gamma * max(|g1 + g2| / |d|, 1) * d``: at least the norm of the plain sum, times
   ``gamma`` (1.5 as released). The release measures the norms per parameter tensor (``pareto_rescale="tensor"``);
   the paper writes them for the encoder's whole gradient (``"encoder"``), where the ratio is never below 1
   since the minimum-norm point is no longer than the midpoint.

The heads (fused and unimodal) get the plain gradient of ``L``. A step costs one forward and two backward
passes: the fused loss's gradient (through both encoders and the heads) and the unimodal losses' (each
reaches its own encoder only, so one pass gives every ``g2``); the release takes four. Without conflicts
the update is ``gamma`` times the multitask control's on the encoders, which SGD feels and Adam-type
optimisers, which divide out a constant scale, largely do not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..options import option
from .base import Method, at_least_float32, batch_accuracies, encoder_grad_norms
from .multitask import prepare_unimodal_heads, unimodal_heads_option, unimodal_logits

__all__ = ["MMPareto", "pareto_combine", "pareto_weights", "rescaled_combination"]

WEIGHT_CLIP = (0.001, 0.999)  # the release's bounds on the min-norm weight
RESCALES = ("tensor", "encoder")


def dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """The inner product of two gradients given as lists of tensors (in float64)."""
    return sum(float((x.double() * y.double()).sum()) for x, y in zip(a, b))


def pareto_weights(g1: list[torch.Tensor], g2: list[torch.Tensor]) -> dict[str, float]:
    """``{"cosine", "conflict", "k1", "k2"}`` for one encoder: the cosine of its fused (``g1``) and unimodal
    (``g2``) gradients over every tensor, and their weights, 1/2 each without conflict (cosine >= 0; a zero
    gradient has cosine 0), the clipped two-task min-norm solution with one."""
    g1g1, g2g2, g1g2 = dot(g1, g1), dot(g2, g2), dot(g1, g2)
    cosine = g1g2 / math.sqrt(g1g1 * g2g2) if g1g1 > 0 and g2g2 > 0 else 0.0
    if cosine >= 0:
        return {"cosine": cosine, "conflict": 0.0, "k1": 0.5, "k2": 0.5}
    # min over k in [0, 1] of |k g1 + (1 - k) g2|^2; |g1 - g2|^2 > 0 since the cosine is negative
    k1 = (g2g2 - g1g2) / (g1g1 + g2g2 - 2 * g1g2)
    k1 = min(max(k1, WEIGHT_CLIP[0]), WEIGHT_CLIP[1])
    return {"cosine": cosine, "conflict": 1.0, "k1": k1, "k2": 1.0 - k1}


def rescaled_combination(g1: list[torch.Tensor], g2: list[torch.Tensor], k1: float, k2: float, gamma: float,
                         rescale: str = "tensor") -> list[torch.Tensor]:
    """``gamma * max(|g1 + g2| / |d|, 1) * d`` with ``d = 2 (k1 g1 + k2 g2)``, the norms per tensor (``tensor``,
    as released) or over all of them (``encoder``). Where ``d`` is zero the result is zero."""
    directions = [2 * (k1 * a + k2 * b) for a, b in zip(g1, g2)]
    plain = [a + b for a, b in zip(g1, g2)]
    if rescale == "tensor":
        pairs = [(d, float(d.double().norm()), float(s.double().norm())) for d, s in zip(directions, plain)]
        return [d * (gamma * max(s_norm / d_norm, 1.0)) if d_norm > 0 else torch.zeros_like(d)
                for d, d_norm, s_norm in pairs]
    if rescale == "encoder":
        d_norm, s_norm = math.sqrt(dot(directions, directions)), math.sqrt(dot(plain, plain))
        if d_norm == 0:
            return [torch.zeros_like(d) for d in directions]
        return [d * (gamma * max(s_norm / d_norm, 1.0)) for d in directions]
    raise ValueError(f"unknown rescale {rescale!r}; choose one of: {', '.join(RESCALES)}")


def pareto_combine(g1: list[torch.Tensor], g2: list[torch.Tensor], gamma: float,
                   rescale: str = "tensor") -> list[torch.Tensor]:
    """MMPareto's gradient for one encoder from its fused-loss gradient ``g1`` and its unimodal-loss gradient
    ``g2`` (lists of tensors, one per parameter): the weights of ``pareto_weights``, then the magnitude rule."""
    weights = pareto_weights(g1, g2)
    return rescaled_combination(g1, g2, weights["k1"], weights["k2"], gamma, rescale)


@dataclass(frozen=True)
class MMParetoOptions:
    gamma: float = option(1.5, "factor gamma on each encoder's combined gradient, after restoring at least the "
                               "plain sum's norm (1.5 as released)", above=0.0)
    pareto_rescale: str = option("tensor", "where the plain sum's norm is restored: per parameter tensor (tensor, as "
                                           "released) or over the encoder's whole gradient (encoder, as the paper "
                                           "writes it)", choices=RESCALES)
    unimodal_heads: str = unimodal_heads_option("separate", "as released")


def gradients(loss: torch.Tensor, parameters: list, retain_graph: bool) -> list[torch.Tensor]:
    """``d loss / d p`` for each of ``parameters``, zeros where the loss does not depend on one."""
    grads = torch.autograd.grad(loss, parameters, retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(parameters, grads)]


class MMPareto(Method):
    name = "mmpareto"
    Options = MMParetoOptions

    def prepare_model(self, model):
        return prepare_unimodal_heads(model, self.options.unimodal_heads, "MMPareto")

    def training_step(self, model, batch, optimizer, state):
        cfg = self.options
        labels = batch["label"]
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            output = model(batch)
            fused_loss = F.cross_entropy(at_least_float32(output.logits), labels)
            unimodal = unimodal_logits(model, output, cfg.unimodal_heads)
            unimodal_losses = {m: F.cross_entropy(at_least_float32(logits), labels) for m, logits in unimodal.items()}
        parameters = [p for p in model.parameters() if p.requires_grad]
        # two backward passes: a modality's unimodal logits read its own features only (a separate head, or the
        # fused head's branch with the other features zeroed), so the sum's gradient on encoder m is dL_m/dtheta_m
        fused_grads = gradients(fused_loss, parameters, retain_graph=True)
        unimodal_grads = gradients(sum(unimodal_losses.values()), parameters, retain_graph=False)
        final = {p: a + b for p, a, b in zip(parameters, fused_grads, unimodal_grads)}  # the heads': the plain sum
        index = {p: i for i, p in enumerate(parameters)}
        stats = {}
        for m in model.modalities:
            own = [p for p in model.encoders[m].parameters() if p in index]
            g1 = [fused_grads[index[p]] for p in own]
            g2 = [unimodal_grads[index[p]] for p in own]
            weights = pareto_weights(g1, g2)
            for p, g in zip(own, rescaled_combination(g1, g2, weights["k1"], weights["k2"], cfg.gamma,
                                                      cfg.pareto_rescale)):
                final[p] = g
            stats.update({f"cosine/{m}": weights["cosine"], f"conflict/{m}": weights["conflict"],
                          f"weight_fused/{m}": weights["k1"], f"weight_unimodal/{m}": weights["k2"]})
        for p in parameters:
            p.grad = final[p]
        loss = fused_loss + sum(unimodal_losses.values())
        stats = {"loss": loss.item(), "loss_fused": fused_loss.item(), **encoder_grad_norms(model),
                 **batch_accuracies(output, labels), **stats}
        for m, value in unimodal_losses.items():
            stats[f"loss_unimodal/{m}"] = value.item()
        optimizer.step()
        return stats
