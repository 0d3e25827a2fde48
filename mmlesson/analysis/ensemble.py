"""The untrained late-fusion ensemble of two unimodal models: the average of their class probabilities.

It is the room a rescue of the weak modality has in fused accuracy: if averaging what the two models
trained alone already believe is not better than the better of them, no remedy that frees the weak
encoder can show in fused accuracy (``mmlesson diagnose``, target ``ensemble_minus_best_unimodal``).
"""
from __future__ import annotations

import torch


@torch.no_grad()
def probability_average_accuracy(models, split, device="cpu", batch_size: int = 256) -> float:
    """Accuracy on ``split`` of the mean of ``models``' softmax probabilities (each model reads the
    modalities it was trained on from the same batch)."""
    correct, total = 0, 0
    for model in models:
        model.eval()
    for batch in split.batches(batch_size, device=device):
        probabilities = sum(model(batch).logits.softmax(dim=1) for model in models) / len(models)
        correct += int((probabilities.argmax(dim=1) == batch["label"]).sum())
        total += len(batch["label"])
    return correct / total
