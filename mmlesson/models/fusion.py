"""Fusion heads: features of each modality -> fused class logits (Chapter 1).

Every head maps a dict ``{modality: features [B,D]}`` to logits [B,C]. The per-modality logits the
book uses everywhere are the *same head* applied with the other modality's features set to zero
(``MultimodalModel.forward``), so they exist for every fusion, not only for concatenation, and no
head needs to know how its weight matrix splits by modality (the OGM-GE release's FiLM and gated
heads crash because they assume it does).

* ``concat``: ``W [z_a; z_v] + b = W_a z_a + W_v z_v + b``, the additive form of Chapter 1.
* ``sum``: one linear layer per modality, outputs added: ``(W_a z_a + b_a) + (W_v z_v + b_v)``.
* ``film``: the conditioning modality predicts a per-feature scale and shift for the other one,
  ``h = gamma(z_c) * z_x + beta(z_c)``, then a linear classifier on ``h`` (Perez et al., 2018).
* ``gated``: the gating modality predicts a sigmoid gate on the other one, ``h = sigmoid(G z_g) * z_x``
  (Kiela et al., 2018; OGM-GE's gated variant), then a linear classifier.
"""
from __future__ import annotations

import torch
from torch import nn

MODALITIES = ("audio", "visual")


def xavier_linear(in_dim: int, out_dim: int) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    nn.init.xavier_uniform_(layer.weight)  # OGM-GE initialises linear layers this way
    nn.init.zeros_(layer.bias)
    return layer


class ConcatFusion(nn.Module):
    """Concatenate the modalities' features, then one linear decision layer."""

    def __init__(self, feature_dims: dict[str, int], num_classes: int):
        super().__init__()
        self.modalities = tuple(feature_dims)
        self.feature_sizes = [feature_dims[m] for m in self.modalities]
        self.head = xavier_linear(sum(self.feature_sizes), num_classes)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(torch.cat([features[m] for m in self.modalities], dim=1))

    def weight_blocks(self) -> dict[str, torch.Tensor]:
        """The columns of W that multiply each modality's features: ``{m: W_m [C,D_m]}``."""
        return dict(zip(self.modalities, torch.split(self.head.weight, self.feature_sizes, dim=1)))


class SumFusion(nn.Module):
    """One linear layer per modality; their logits are added."""

    def __init__(self, feature_dims: dict[str, int], num_classes: int):
        super().__init__()
        self.heads = nn.ModuleDict({m: xavier_linear(d, num_classes) for m, d in feature_dims.items()})

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.heads[m](features[m]) for m in self.heads)


class ConditionedFusion(nn.Module):
    """Base of FiLM and gated fusion: one modality (``condition``) modulates the other (``target``),
    then a linear classifier reads the modulated target features."""

    def __init__(self, feature_dims: dict[str, int], num_classes: int, condition: str):
        super().__init__()
        if len(feature_dims) != 2 or condition not in feature_dims:
            raise ValueError(f"{type(self).__name__} needs two modalities including {condition!r}, "
                             f"got {list(feature_dims)}")
        self.condition = condition
        self.target = next(m for m in feature_dims if m != condition)
        self.head = xavier_linear(feature_dims[self.target], num_classes)

    def modulate(self, condition: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.modulate(features[self.condition], features[self.target]))


class FiLMFusion(ConditionedFusion):
    """``h = gamma(z_c) * z_x + beta(z_c)``, then a linear classifier (Perez et al., 2018)."""

    def __init__(self, feature_dims: dict[str, int], num_classes: int, condition: str = "visual"):
        super().__init__(feature_dims, num_classes, condition)
        self.film = xavier_linear(feature_dims[condition], 2 * feature_dims[self.target])

    def modulate(self, condition, target):
        gamma, beta = self.film(condition).chunk(2, dim=1)
        return gamma * target + beta


class GatedFusion(ConditionedFusion):
    """``h = sigmoid(G z_c + c) * z_x``, then a linear classifier (Kiela et al., 2018)."""

    def __init__(self, feature_dims: dict[str, int], num_classes: int, condition: str = "visual"):
        super().__init__(feature_dims, num_classes, condition)
        self.gate = xavier_linear(feature_dims[condition], feature_dims[self.target])

    def modulate(self, condition, target):
        return torch.sigmoid(self.gate(condition)) * target


FUSIONS = {"concat": ConcatFusion, "sum": SumFusion, "film": FiLMFusion, "gated": GatedFusion}
