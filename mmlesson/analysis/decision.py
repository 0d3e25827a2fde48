"""Imbalance at the decision layer (Chapter 5; "Revisit Modality Imbalance at the Decision Layer",
Fig. 1-4 and Table 1).

For a model whose decision layer is linear in each modality's features (concat, sum, or a unimodal
model), ``W_m`` is the block of weights that multiplies modality ``m``'s features. The paper looks
at its per-class L1 norm (heatmaps, Fig. 1-2, 4), its mean absolute weight (Table 1, Fig. 3) and
the mean absolute logit it produces (Table 1), and compares them with per-class unimodal accuracy
(Fig. 4). Logits here are ``W_m z_m`` without the bias, so that the number measures the modality's
own contribution; the branch accuracies use the full ``logits_per_modality`` (bias included).
"""
from __future__ import annotations

import torch

from ..models.fusion import ConcatFusion, SumFusion
from .scores import classification_scores


def weight_blocks(model) -> dict[str, torch.Tensor]:
    """``{m: W_m [C, D_m]}`` of a concat, sum or unimodal model (detached copies)."""
    fusion = model.fusion
    if isinstance(fusion, ConcatFusion):
        blocks = fusion.weight_blocks()
    elif isinstance(fusion, SumFusion):
        blocks = {m: head.weight for m, head in fusion.heads.items()}
    else:
        raise ValueError(f"{type(fusion).__name__} has no linear decision block per modality; "
                         f"decision-layer analysis needs fusion 'concat' or 'sum'")
    return {m: w.detach().cpu().clone() for m, w in blocks.items()}


def weight_statistics(blocks: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Per modality: ``per_class_l1`` (L1 norm of each class's row of ``W_m``, averaged over the
    modality's feature dimensions so that modalities of different width compare) and ``mean_abs``."""
    return {m: {"per_class_l1": w.abs().mean(dim=1).tolist(), "mean_abs": float(w.abs().mean())}
            for m, w in blocks.items()}


@torch.no_grad()
def unimodal_contributions(model, split, device, batch_size: int = 256) -> dict:
    """Over a split: mean |W_m z_m| (bias excluded) per modality, and each modality's per-class
    branch accuracy (its branch, as the fusion defines it)."""
    model.eval()
    blocks = {m: w.to(device) for m, w in weight_blocks(model).items()}
    total_abs = {m: 0.0 for m in blocks}
    predictions = {m: [] for m in blocks}
    labels, count = [], 0
    for batch in split.batches(batch_size, device=device):
        output = model(batch)
        for m, w in blocks.items():
            total_abs[m] += float((output.features[m] @ w.T).abs().mean(dim=1).sum())
            predictions[m].append(output.logits_per_modality[m].argmax(1).cpu())
        labels.append(batch["label"].cpu())
        count += len(batch["label"])
    labels = torch.cat(labels)
    num_classes = next(iter(blocks.values())).shape[0]
    return {
        "mean_abs_logit": {m: total / count for m, total in total_abs.items()},
        "per_class_acc": {m: classification_scores(torch.cat(p), labels, num_classes)["per_class_acc"]
                          for m, p in predictions.items()},
    }


def decision_summary(model, split, device) -> dict:
    """Everything Table 1 and Fig. 1-4 need for one model, per modality."""
    statistics = weight_statistics(weight_blocks(model))
    contributions = unimodal_contributions(model, split, device)
    return {m: {**statistics[m], "mean_abs_logit": contributions["mean_abs_logit"][m],
                "per_class_acc": contributions["per_class_acc"][m]} for m in statistics}


def decision_scores(model, split, device) -> dict | None:
    """What metrics.json keeps for Table 1: per modality the mean |W_m| (``mean_abs_weight``) and the
    mean |W_m z_m| on ``split`` (``mean_abs_logit``); None for a fusion without a linear block per
    modality (FiLM, gated)."""
    if not isinstance(model.fusion, (ConcatFusion, SumFusion)):
        return None
    statistics = weight_statistics(weight_blocks(model))
    logits = unimodal_contributions(model, split, device)["mean_abs_logit"]
    return {"mean_abs_weight": {m: s["mean_abs"] for m, s in statistics.items()}, "mean_abs_logit": logits}
