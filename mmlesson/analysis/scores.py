"""Classification scores from predictions: accuracy, macro-F1, per-class accuracy."""
from __future__ import annotations

import torch


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts [C_true, C_pred]."""
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat.cpu(), minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_scores(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """Accuracy, macro-F1 (mean over classes of 2PR/(P+R), 0 for a class never predicted nor present)
    and per-class accuracy (recall); a class absent from ``labels`` gets ``None`` (JSON null)."""
    counts = confusion_matrix(predictions, labels, num_classes).double()
    true_positive = counts.diag()
    support = counts.sum(dim=1)
    predicted = counts.sum(dim=0)
    denominator = support + predicted
    f1 = torch.where(denominator > 0, 2 * true_positive / denominator.clamp(min=1), torch.zeros_like(denominator))
    per_class = true_positive / support.clamp(min=1)
    return {
        "acc": float(true_positive.sum() / counts.sum()),
        "macro_f1": float(f1.mean()),
        "per_class_acc": [float(v) if n > 0 else None for v, n in zip(per_class, support)],
    }
