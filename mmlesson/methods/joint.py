"""Joint training: one cross-entropy on the fused logits, both encoders updated together.

This is the baseline whose imbalance Chapter 1 analyses: with concat fusion the gradient reaching
each encoder is ``W_m^T (softmax(f(x)) - e_y)``, a shared factor set by the *fused* prediction.
"""
from __future__ import annotations

import torch.nn.functional as F

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
        optimizer.step()
        return stats
