"""AGM: adaptive gradient modulation, which can boost a modality as well as suppress it.

Li, Li, Hu, Lei, Li and Zhou, "Boosting Multi-modal Model Performance with Adaptive Gradient
Modulation", ICCV 2023. Per training step, with ``f(x_a, x_v)`` the model's fused logits:

1. **Mono-modal responses.** Each modality's response is its two-player Shapley value, the other
   modality's encoder *input* replaced by zeros: with ``T = f(x_a, x_v)``, ``P_a = f(x_a, 0)`` and
   ``P_v = f(0, x_v)``,
   ``m_a = (T - P_v + P_a) / 2`` and ``m_v = (T - P_a + P_v) / 2``, so that ``m_a + m_v = T``.
   As released, the empty-coalition term ``f(0, 0)`` is left out (the release computes it and never
   uses it; with it the responses would sum to ``T - f(0, 0)``), so this file does not compute it.
   ``T`` runs in training mode (it updates the batch-norm statistics, as joint training's pass
   does); the zeroed-input passes run in evaluation mode (batch norm on its running statistics),
   after ``T``, as the release does. They carry gradients (``padded_grad``, as released): that is
   what makes the modulation differ between the two encoders. Without it (``--no-padded-grad``)
   ``P_a`` and ``P_v`` are constants, every gradient is scaled by ``(c_a + c_v) / 2`` and AGM
   reduces to a global learning-rate factor. An encoder on a zero input in evaluation mode gives
   the same vector for every sample, so it is computed once and broadcast over the batch.
2. **Scores.** ``s_m`` = the batch mean cross-entropy of the response ``m_m`` (a true-class
   probability below 1e-8 counts as 1e-8, as released). ``s`` is a loss: lower is better.
3. **Coefficients.** ``r_a = exp(s_v - s_a)`` is audio's current advantage and
   ``rbar_a = exp(S_v - S_a)`` its advantage on average over every step so far (``S_m``: the running
   mean of ``s_m``); ``c_a = exp(alpha * min(rbar_a - r_a, cap))``, and the same for visual with
   the roles swapped. A modality ahead of its own history gets ``c < 1`` (suppressed), one behind it
   ``c > 1`` (boosted), so the lagging modality always gets the larger coefficient. One
   re-implementation generalises the ratio to n modalities as ``exp(s_m - mean s)``, the reciprocal
   for two modalities: it boosts the modality that pulls ahead; this file keeps the release's
   direction (``agm_coefficients``). ``S_m`` is updated after the coefficients, ``S <- S (t-1)/t + s/t``.
4. **Update.** ``loss = CE(m_a + m_v, y)``; an identity function on each response scales the
   gradient flowing into ``m_a`` by ``c_a`` and into ``m_v`` by ``c_v``. For a linear encoder without
   batch norm this is exactly ``c_m`` times each encoder's joint-training gradient (and the head's
   columns ``W_m``), the head bias getting ``(c_a + c_v) / 2``.
5. **Clipping**, as released: when some entry of the fusion's weight gradient exceeds ``agm_clip``
   in absolute value, the gradient of every parameter is clipped to total norm ``agm_clip``
   (0 turns it off).

Cost: one training-mode forward, two evaluation-mode forwards (each with one encoder on real
input and one on a zero input computed once), and one backward through all three graphs: about 2.5
times a joint-training step. The running means and the step count are the method's state
(``state_dict``). Works with every two-modality fusion (the responses need no branch of the fusion).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.fusion import MODALITIES, require_audio_and_visual
from ..options import option
from .base import Method, accuracy, batch_accuracies, encoder_grad_norms, scale_gradient
from .joint import modality_ratios

__all__ = ["AGM", "agm_coefficients", "mono_modal_responses", "response_scores", "update_running_scores"]

PROBABILITY_FLOOR = 1e-8  # the release counts a true-class probability below this as this


def agm_coefficients(scores: dict[str, float], running: dict[str, float], alpha: float,
                     cap: float = 10.0) -> dict[str, float]:
    """Each modality's coefficient ``c_m = exp(alpha * min(rbar_m - r_m, cap))`` with the current
    advantage ``r_a = exp(s_v - s_a)`` and the historical one ``rbar_a = exp(S_v - S_a)`` (``scores``:
    this step's ``s_m``, ``running``: the running means ``S_m``; both are losses, lower is better)."""
    coefficients = {}
    for m, other in (("audio", "visual"), ("visual", "audio")):
        current = math.exp(scores[other] - scores[m])
        historical = math.exp(running[other] - running[m])
        coefficients[m] = math.exp(alpha * min(historical - current, cap))
    return coefficients


def update_running_scores(running: dict[str, float], scores: dict[str, float], step: int) -> dict[str, float]:
    """``S <- S (t - 1) / t + s / t`` for step ``t`` counted from 1: the mean of every step's score."""
    return {m: running[m] * (step - 1) / step + scores[m] / step for m in running}


def response_scores(responses: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, float]:
    """``s_m``: the batch mean of ``-log p_m(y)`` with ``p_m = softmax(m_m)``, ``p`` floored at 1e-8."""
    scores = {}
    for m, logits in responses.items():
        log_p = logits.detach().double().log_softmax(dim=1).gather(1, labels[:, None])
        scores[m] = float(-log_p.clamp(min=math.log(PROBABILITY_FLOOR)).mean())
    return scores


def zero_input_features(model, batch: dict, modality: str) -> torch.Tensor:
    """``modality``'s encoder output for an all-zero input, [B, D]: computed on one zero sample and
    broadcast (in evaluation mode every sample gives the same vector)."""
    zero = torch.zeros_like(batch[modality][:1])
    return model.encode_modality({modality: zero}, modality).expand(len(batch["label"]), -1)


def mono_modal_responses(model, batch: dict, full: torch.Tensor) -> dict[str, torch.Tensor]:
    """AGM's Shapley responses from the fused logits ``full = f(x_a, x_v)``: the model on
    ``(x_a, 0)`` and ``(0, x_v)`` in evaluation mode (restored afterwards), then
    ``m_a = (T - f(0, x_v) + f(x_a, 0)) / 2`` and ``m_v = (T - f(x_a, 0) + f(0, x_v)) / 2``."""
    was_training = model.training
    model.eval()
    try:
        audio_only = model.fuse({"audio": model.encode_modality(batch, "audio"),
                                 "visual": zero_input_features(model, batch, "visual")}).logits
        visual_only = model.fuse({"audio": zero_input_features(model, batch, "audio"),
                                  "visual": model.encode_modality(batch, "visual")}).logits
    finally:
        model.train(was_training)
    return {"audio": (full - visual_only + audio_only) / 2, "visual": (full - audio_only + visual_only) / 2}


def full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 when autocast made it half precision, else unchanged (float64 stays float64)."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def fusion_weight_grad_max(model) -> float:
    """The largest absolute entry of the fusion's weight-matrix gradients (the release's clipping trigger)."""
    grads = [p.grad for p in model.fusion.parameters() if p.grad is not None and p.dim() >= 2]
    return max((float(g.abs().max()) for g in grads), default=0.0)


@dataclass(frozen=True)
class AGMOptions:
    alpha: float = option(1.5, "AGM's modulation strength alpha of c = exp(alpha min(rbar - r, cap)) (1.5 is the "
                               "authors' CREMA-D value, 2.5 their AV-MNIST example's)", minimum=0.0)
    agm_cap: float = option(10.0, "cap on rbar - r inside AGM's exp(alpha min(rbar - r, cap)) (as released)",
                            minimum=0.0)
    agm_clip: float = option(1.0, "when some entry of the fusion's weight gradient exceeds this in absolute value, "
                                  "clip every gradient to this total norm (as released, 0: never)", minimum=0.0)
    padded_grad: bool = option(True, "back-propagate through the zeroed-input passes (as released, without it every "
                                     "gradient is only scaled by (c_a + c_v) / 2)")


class AGM(Method):
    name = "agm"
    Options = AGMOptions

    def __init__(self, config, upstream: dict | None = None):
        super().__init__(config, upstream)
        self.running = {m: 0.0 for m in MODALITIES}  # S_m: the mean of s_m over every step so far
        self.steps = 0  # t: steps taken

    def prepare_model(self, model):
        require_audio_and_visual(model, "AGM")
        return model

    def state_dict(self) -> dict:
        return {"running": dict(self.running), "steps": self.steps}

    def load_state_dict(self, state: dict, device) -> None:
        self.running = {m: float(state["running"][m]) for m in MODALITIES}
        self.steps = int(state["steps"])

    def training_step(self, model, batch, optimizer, state):
        cfg, labels = self.options, batch["label"]
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            output = model(batch)  # T = f(x_a, x_v), training mode
            if cfg.padded_grad:
                responses = mono_modal_responses(model, batch, output.logits)
            else:  # the zeroed-input passes as constants: each response's value, with gradient only through T / 2
                full = output.logits
                with torch.no_grad():
                    constant = mono_modal_responses(model, batch, full.detach())
                responses = {m: constant[m] + (full - full.detach()) / 2 for m in MODALITIES}
            scores = response_scores(responses, labels)
            coefficients = agm_coefficients(scores, self.running, cfg.alpha, cfg.agm_cap)
            modulated = sum(scale_gradient(responses[m], coefficients[m]) for m in MODALITIES)
            loss = F.cross_entropy(full_precision(modulated), labels)
        self.steps += 1
        self.running = update_running_scores(self.running, scores, self.steps)
        loss.backward()
        clipped = cfg.agm_clip > 0 and fusion_weight_grad_max(model) > cfg.agm_clip
        if clipped:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], cfg.agm_clip)
        stats = {"loss": loss.item(), **encoder_grad_norms(model), **batch_accuracies(output, labels),
                 "clipped": float(clipped)}
        if len(output.logits_per_modality) == 2:
            stats.update(modality_ratios(output.logits_per_modality, labels))
        for m in MODALITIES:
            stats[f"coefficient/{m}"] = coefficients[m]
            stats[f"score/{m}"] = scores[m]
            stats[f"running_score/{m}"] = self.running[m]
            stats[f"response_acc/{m}"] = accuracy(responses[m], labels)
        optimizer.step()
        return stats
