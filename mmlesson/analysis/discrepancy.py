"""How much more confident one modality is than the other (Chapters 1-3): OGM-GE's scores
``s_m = sum_i softmax(logits_m(x_i))[y_i]`` and their discrepancy ratio ``rho = s_audio / s_visual``
(Peng et al., CVPR 2022, Eq. 8-9), on a batch or on a whole split."""
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


def discrepancy_ratio(score: float, other: float) -> float:
    """``score / other``, with 0/0 = 1 (no information either way) and x/0 = inf for x > 0."""
    if other == 0.0:
        return 1.0 if score == 0.0 else math.inf
    return score / other


@torch.no_grad()
def split_discrepancy(model, split, device, batch_size: int = 256) -> dict:
    """``{"scores": {m: s_m}, "ratio": s_audio / s_visual}`` over every sample of ``split``."""
    model.eval()
    totals: dict[str, float] = {}
    for batch in split.batches(batch_size, device=device):
        for m, s in true_class_scores(model(batch).logits_per_modality, batch["label"]).items():
            totals[m] = totals.get(m, 0.0) + s
    return {"scores": totals, "ratio": discrepancy_ratio(totals["audio"], totals["visual"])}
