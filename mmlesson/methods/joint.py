"""Joint training: one cross-entropy on the fused logits, both encoders updated together.

This is the baseline whose imbalance Chapter 1 analyses: with concat fusion the gradient reaching
each encoder is ``W_m^T (softmax(f(x)) - e_y)``, a shared factor set by the *fused* prediction.
``encoder_grad_scale`` multiplies the gradient reaching each encoder by a fixed factor (ARL's
Fig. 1(b) experiment, Chapter 3); at its default (1, 1) nothing is scaled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn.functional as F

from ..analysis.discrepancy import discrepancy_ratio, log_true_class_scores, true_class_scores, variance_proxy
from ..options import option
from .base import Method, batch_accuracies, encoder_grad_norms, scale_gradient


MAX_LOG_RATIO = 700.0  # |log(s_a / s_v)| beyond this would overflow a float: the logged ratio stays finite


@dataclass(frozen=True)
class JointOptions:
    encoder_grad_scale: tuple[float, float] = option(
        (1.0, 1.0), "fixed factors on the gradient reaching the audio and the visual encoder (ARL's Fig. 1(b) "
                    "experiment)", above=0.0, nargs=2, metavar=("AUDIO", "VISUAL"))


def joint_step(model, batch, optimizer, state, encoder_grad_scale=(1.0, 1.0)) -> dict[str, float]:
    """One SGD step on the fused cross-entropy (every method built on joint training shares it)."""
    optimizer.zero_grad(set_to_none=True)
    scale = dict(zip(("audio", "visual"), encoder_grad_scale))
    with state.autocast():
        features = {m: scale_gradient(f, scale[m]) for m, f in model.encode(batch).items()}
        output = model.fuse(features)
        loss = F.cross_entropy(output.logits.float(), batch["label"])
    loss.backward()
    stats = {"loss": loss.item(), **encoder_grad_norms(model), **batch_accuracies(output, batch["label"])}
    if len(output.logits_per_modality) == 2:  # OGM-GE's and ARL's ratios, logged for comparison (Chapters 2-3)
        stats.update(modality_ratios(output.logits_per_modality, batch["label"]))
    optimizer.step()
    return stats


class JointTraining(Method):
    name = "joint"
    Options = JointOptions

    def training_step(self, model, batch, optimizer, state):
        return joint_step(model, batch, optimizer, state, self.options.encoder_grad_scale)


def modality_ratios(logits_per_modality, labels) -> dict[str, float]:
    """``ratio/audio_over_visual``: OGM-GE's s_a / s_v, which is also ARL's dependency ratio d_a / d_v
    (Eq. 4 with batch means); ``ratio/inverse_variance``: ARL's q_a / q_v (Eq. 17)."""
    scores = true_class_scores(logits_per_modality, labels)
    ratio = discrepancy_ratio(scores["audio"], scores["visual"])
    if min(scores.values()) == 0.0:  # a float32 score underflowed (a hopeless branch): the ratio from log-scores
        logs = log_true_class_scores(logits_per_modality, labels)
        ratio = math.exp(max(-MAX_LOG_RATIO, min(logs["audio"] - logs["visual"], MAX_LOG_RATIO)))
    return {"ratio/audio_over_visual": ratio,
            "ratio/inverse_variance": variance_proxy(logits_per_modality["audio"])
            / variance_proxy(logits_per_modality["visual"])}
