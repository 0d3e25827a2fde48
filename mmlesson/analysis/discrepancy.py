"""How much more confident one modality is than the other (Chapters 1-3): OGM-GE's scores
``s_m = sum_i softmax(logits_m(x_i))[y_i]`` and their discrepancy ratio ``rho = s_audio / s_visual``
(Peng et al., CVPR 2022, Eq. 8-9) on a batch; and ARL's two per-modality
measures (ICCV 2025, Eq. 4 and 17): the dependency ``d_m`` (batch mean of the true-class
probability) and the variance proxy ``q_m`` (inverse of the mean prediction entropy)."""
from __future__ import annotations

import math

import torch


def true_class_scores(logits_per_modality: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, float]:
    """``s_m``: the batch sum of each modality's softmax probability of the true class (Eq. 8)."""
    scores = {}
    for m, logits in logits_per_modality.items():
        probabilities = logits.detach().float().softmax(dim=1)
        scores[m] = float(probabilities.gather(1, labels[:, None]).sum())
    return scores


def log_true_class_scores(logits_per_modality: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, float]:
    """``log s_m`` from log-probabilities in float64: finite where float32 ``s_m`` underflows to 0."""
    scores = {}
    for m, logits in logits_per_modality.items():
        log_p = logits.detach().double().log_softmax(dim=1).gather(1, labels[:, None])
        scores[m] = float(torch.logsumexp(log_p.flatten(), dim=0))
    return scores


def discrepancy_ratio(score: float, other: float) -> float:
    """``score / other``, with 0/0 = 1 (no information either way) and x/0 = inf for x > 0."""
    if other == 0.0:
        return 1.0 if score == 0.0 else math.inf
    return score / other


# Floors that keep ARL's ratios finite for one-hot predictions (entropy 0) or hopeless ones (d = 0).
ENTROPY_FLOOR = 1e-6
DEPENDENCY_FLOOR = 1e-6


def mean_entropy(logits: torch.Tensor) -> float:
    """Batch mean of the prediction entropy ``-sum_j p_j log p_j`` with ``p = softmax(logits)``."""
    log_p = logits.detach().float().log_softmax(dim=1)
    return float(-(log_p.exp() * log_p).sum(dim=1).mean())


def variance_proxy(logits: torch.Tensor) -> float:
    """ARL's ``q_m = 1 / mean entropy`` (Eq. 17 with the entropy's sign; the printed equation omits
    the minus and would make q negative). A confident modality has a small entropy, a large q."""
    return 1.0 / max(mean_entropy(logits), ENTROPY_FLOOR)


def dependency(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """ARL's ``d_m`` (Eq. 4): the batch mean of the softmax probability of the true class."""
    probabilities = logits.detach().float().softmax(dim=1)
    return max(float(probabilities.gather(1, labels[:, None]).mean()), DEPENDENCY_FLOOR)
