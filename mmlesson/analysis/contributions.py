"""Per-sample modality contributions from a mutual-information estimate (CCAT, Sec. 3.2, Eq. 5-7;
the estimate is Zhou et al.'s, ICASSP 2025).

For a batch of N samples, modality m's representation z_i^m and the fused representation f_i are
L2-normalised, and the InfoNCE-style estimate of their mutual information at sample i is

    MI_i^m = log N + log( exp<f_i, z_i^m> / sum_j exp<f_i, z_j^m> )          (Eq. 5)

The paper writes an expectation over the data set; we take it over the batch (the estimate's
negatives are the batch's other samples) and keep each sample's own term: MI_i^m is high when the
fused representation of sample i picks out its own modality-m representation among the batch's.
It lies in [log N - log sum_j exp(<f_i, z_j> - <f_i, z_i>), log N] <= log N. The contributions are
a softmax over modalities, ``c_i = softmax(MI_i^1, MI_i^2)`` (Eq. 6), so they sum to 1 per sample, and
``L_reg = mean_i |c_i^1 - c_i^2|`` (Eq. 7) penalises one modality explaining the fusion alone.

Stage 1 of CCAT reads encoder features against the cross-attention output; stage 2 and the
contribution curves of Chapter 4 read each modality's logits against the decision-level fused
logits (Sec. 3.3: "the same decision-level fusion used in the inference stage").
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def mutual_information(unimodal: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
    """Eq. 5 per sample: ``[N]`` from ``unimodal`` and ``fused`` representations ``[N, D]``."""
    similarity = F.normalize(fused.float(), dim=1) @ F.normalize(unimodal.float(), dim=1).T  # [i, j] = <f_i, z_j>
    return math.log(len(fused)) + torch.diagonal(F.log_softmax(similarity, dim=1))


def contributions(unimodal: dict[str, torch.Tensor], fused: torch.Tensor) -> dict[str, torch.Tensor]:
    """Eq. 6: each modality's per-sample contribution ``[N]``, a softmax over the modalities of Eq. 5."""
    scores = torch.stack([mutual_information(z, fused) for z in unimodal.values()], dim=1)
    shares = torch.softmax(scores, dim=1)
    return {m: shares[:, k] for k, m in enumerate(unimodal)}


def contribution_gap(shares: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 7: ``mean_i |c_i^1 - c_i^2|`` for two modalities."""
    first, second = shares.values()
    return (first - second).abs().mean()
