"""MLA: multimodal learning with alternating unimodal adaptation (Chapter 4).

Zhang, Yoon, Bansal and Yao, "Multimodal Representation Learning by Alternating Unimodal Adaptation",
CVPR 2024. The model has one linear head shared by the modalities (``fusion="shared"``). For each
batch, modality by modality in turn: that modality's encoder and the shared head, its own
cross-entropy, backward, the head-gradient projection below, one optimiser step (M steps per batch;
the second modality meets the head the first one has just moved). An encoder is only ever updated
by its own modality's loss, so joint training's competition between encoders is gone; the head is
still shared, which is what CCAT (``ccat.py``) goes after.

**Head-gradient projection** (the paper's gradient modification): a recursive-least-squares
projector ``P`` (``D x D``, starting at ``I``) remembers the directions of the features the head has
been trained on; each modality step multiplies the head's weight gradient by ``P`` (``g <- g P``), so
the head learns a new modality without undoing what it learnt on the previous one. After each step,
with ``r`` the batch-mean feature of the modality just trained and ``alpha_t = 0.1 ** (1 + b / B)`` (batch
``b`` of ``B`` in the epoch): ``k = P r``, ``P <- P - k k^T / (alpha_t + r^T k)``, then ``P <- P / ||P||_F``.
After one update from ``P = I``, ``P r = r alpha / (alpha + r^T r)`` before the normalisation: the head
barely moves along ``r`` any more. ``projection=False`` switches it off; in the authors' release it
never runs at all (a parameter-name check never matches).

**Inference** combines the branches ``head(z_m)`` at the decision level (``models.fusion``):
``entropy`` (the paper's, per sample, ``w_m = softmax_m(-H_m)``; the release computes the softmax over
the batch axis instead, one weight per test batch), ``fixed`` (the release's 0.55 audio + 0.45
visual) or ``mean``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.fusion import FUSION_RULES
from ..options import option
from .base import Method, accuracy


@dataclass(frozen=True)
class MLAOptions:
    projection: bool = option(True, "project the shared head's gradient away from the features it was trained on "
                                    "(the paper's; never runs in the release)")
    inference: str = option("entropy", "decision-level fusion at test time: entropy (per-sample gating, the "
                                       "paper's), fixed (--audio-weight, the release's) or mean",
                            choices=FUSION_RULES)
    audio_weight: float = option(0.55, "audio's weight with --inference fixed (visual gets 1 - it; the release's "
                                       "CREMA-D value)", minimum=0.0)


def update_projector(projector: torch.Tensor, feature: torch.Tensor, alpha: float) -> torch.Tensor:
    """One recursive-least-squares step on the batch-mean ``feature`` ``r``, then Frobenius normalisation:
    ``k = P r``, ``P - k k^T / (alpha + r^T k)``, divided by its norm (symmetric ``P`` stays symmetric)."""
    k = projector @ feature
    updated = projector - torch.outer(k, k) / (alpha + feature @ k)
    return updated / torch.linalg.matrix_norm(updated)


def projection_alpha(batch_index: int, batches: int) -> float:
    """``alpha_t = 0.1 ** (1 + b / B)``: from 0.1 at the first batch of an epoch towards 0.01."""
    return 0.1 ** (1 + batch_index / batches)


class MLA(Method):
    name = "mla"
    Options = MLAOptions

    def make_model(self, num_classes, modalities):
        """Encoders and one head shared by every modality (``fusion="shared"``), fused by ``inference``."""
        model = super().make_model(num_classes, modalities, fusion="shared")
        model.fusion.rule = self.options.inference
        model.fusion.weights = {"audio": self.options.audio_weight, "visual": 1.0 - self.options.audio_weight}
        return model

    def __init__(self, config, upstream: dict | None = None):
        super().__init__(config, upstream)
        self.projector = None  # P, created at the first step on the run's device

    def state_dict(self) -> dict:
        return {"projector": self.projector}

    def load_state_dict(self, state: dict, device) -> None:
        projector = state.get("projector")
        self.projector = projector.to(device) if projector is not None else None

    def training_step(self, model, batch, optimizer, state):
        labels, head = batch["label"], model.fusion.head
        dim = head.weight.shape[1]
        projector = self.projector
        if projector is None:
            projector = torch.eye(dim, device=state.device)
        alpha = projection_alpha(state.step % state.steps_per_epoch, state.steps_per_epoch)
        stats, total = {}, 0.0
        for m in model.modalities:
            optimizer.zero_grad(set_to_none=True)
            with state.autocast():
                features = model.encode_modality(batch, m)
                logits = head(features)
                loss = F.cross_entropy(logits.float(), labels)
            loss.backward()
            if self.options.projection:
                head.weight.grad = head.weight.grad @ projector.T
            optimizer.step()
            projector = update_projector(projector, features.detach().float().mean(0), alpha)
            total += loss.item()
            stats[f"loss_unimodal/{m}"] = loss.item()
            stats[f"branch_acc/{m}"] = accuracy(logits, labels)
        self.projector = projector
        stats["loss"] = total
        return stats
