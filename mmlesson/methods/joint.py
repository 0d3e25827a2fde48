"""Joint training: one cross-entropy on the fused logits, both encoders updated together.

This is the baseline whose imbalance Chapter 1 analyses: with concat fusion the gradient reaching
each encoder is ``W_m^T (softmax(f(x)) - e_y)``, a shared factor set by the *fused* prediction.
"""
from __future__ import annotations

import torch.nn.functional as F

from ..analysis.discrepancy import discrepancy_ratio, true_class_scores
from .base import Method, batch_accuracies, encoder_grad_norms


class JointTraining(Method):
    name = "joint"

    def training_step(self, model, batch, optimizer, state):
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            output = model(batch)
            loss = F.cross_entropy(output.logits.float(), batch["label"])
        loss.backward()
        stats = {"loss": loss.item(), **encoder_grad_norms(model), **batch_accuracies(output, batch["label"])}
        if len(model.modalities) == 2:  # OGM-GE's discrepancy ratio, logged for comparison (Chapter 2)
            scores = true_class_scores(output.logits_per_modality, batch["label"])
            stats["ratio/audio_over_visual"] = discrepancy_ratio(scores["audio"], scores["visual"])
        optimizer.step()
        return stats
