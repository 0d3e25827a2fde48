"""Fusion heads: features of each modality -> fused class logits (Chapter 1).

Every head maps a dict ``{modality: features [B,D]}`` to logits [B,C], and says what each
modality's *branch* is (``branch_logits``): the logits the head gives from that modality alone,
which OGM-GE's scores, ARL's unimodal losses and every branch accuracy in the book read. A head
that cannot give a modality a meaningful branch leaves it out, and methods that need both branches
refuse that fusion (``require_branches``).

* ``concat``: ``W [z_a; z_v] + b = W_a z_a + W_v z_v + b``, the additive form of Chapter 1; branch
  ``W_m z_m + b`` (the bias counted once, in each branch).
* ``sum``: one linear layer per modality, outputs added: ``(W_a z_a + b_a) + (W_v z_v + b_v)``; branch
  ``W_m z_m + b_m``, the modality's own layer.
* ``film``: the conditioning modality predicts a per-feature scale and shift for the other one,
  ``h = gamma(z_c) * z_x + beta(z_c)``, then a linear classifier on ``h`` (Perez et al., 2018). Its
  branches are the head with the other modality's features zeroed: the condition's branch reads
  ``beta(z_c)``, the target's its features under the learnt default scale and shift.
* ``shared``: one linear head read by every modality (MLA, Chapter 4); branch ``head(z_m)``, and the
  fused logits a decision-level combination of the branches (``decision_level_fusion``: their mean,
  fixed weights, or per-sample entropy gating). Needs features of one size.
* ``gated``: the gating modality predicts a sigmoid gate on the other one, ``h = sigmoid(G z_g) * z_x``
  (Kiela et al., 2018; OGM-GE's gated variant), then a linear classifier. The gated modality's branch
  is its features under the gate of a zero input; the gating modality has none: without the gated
  features ``h = 0`` whatever it sees, a constant prediction.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

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

    def branch_logits(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``W_m z_m + b``, computed as the whole layer on ``z_m`` with zeros in the other blocks: the same
        number, and the same float arithmetic (and so the same training runs) as a layer on ``z_m`` alone
        would not guarantee."""
        branches = {}
        for m in self.modalities:
            padded = [features[m] if other == m else torch.zeros_like(features[other]) for other in self.modalities]
            branches[m] = self.head(torch.cat(padded, dim=1))
        return branches

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

    def branch_logits(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: self.heads[m](features[m]) for m in self.heads}


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

    def branch_logits(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The head with the other modality's features zeroed, for each modality ``has_branch`` allows."""
        branches = {}
        for m in (self.condition, self.target):
            if self.has_branch(m):
                zeroed = {other: (f if other == m else torch.zeros_like(f)) for other, f in features.items()}
                branches[m] = self(zeroed)
        return branches

    def has_branch(self, modality: str) -> bool:
        return True


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

    def has_branch(self, modality: str) -> bool:
        return modality != self.condition  # gating a zero target gives h = 0: a constant prediction


FUSION_RULES = ("mean", "fixed", "entropy")


def decision_level_fusion(logits_per_modality: dict[str, torch.Tensor], rule: str = "mean",
                          weights: dict[str, float] | None = None) -> torch.Tensor:
    """Fused logits from each modality's logits: their ``mean``; a ``fixed`` weighted sum (``weights``,
    e.g. the MLA release's 0.55 audio + 0.45 visual on CREMA-D); or ``entropy`` gating, per sample
    ``w_m = softmax_m(-H_m)`` with ``H_m`` the entropy of modality m's prediction (MLA's test-time
    rule; the weights are treated as constants, no gradient flows through them)."""
    logits = list(logits_per_modality.values())
    if rule == "mean":
        return sum(logits) / len(logits)
    if rule == "fixed":
        return sum(weights[m] * x for m, x in logits_per_modality.items())
    if rule == "entropy":
        with torch.no_grad():
            entropy = torch.stack([-(F.softmax(x.float(), 1) * F.log_softmax(x.float(), 1)).sum(1) for x in logits], 1)
            gate = torch.softmax(-entropy, dim=1).to(logits[0].dtype)  # [B, M]
        return sum(gate[:, k:k + 1] * x for k, x in enumerate(logits))
    raise ConfigError(f"unknown decision-level fusion rule {rule!r}; choose one of: {', '.join(FUSION_RULES)}")


class SharedHeadFusion(nn.Module):
    """One linear head for every modality (MLA): branch ``head(z_m)``; fused logits by ``rule``."""

    def __init__(self, feature_dims: dict[str, int], num_classes: int, rule: str = "mean",
                 weights: dict[str, float] | None = None):
        super().__init__()
        sizes = set(feature_dims.values())
        if len(sizes) != 1:
            raise ConfigError(f"a shared head needs features of one size, got {feature_dims}")
        self.modalities = tuple(feature_dims)
        self.head = xavier_linear(sizes.pop(), num_classes)
        self.rule, self.weights = rule, weights

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return decision_level_fusion(self.branch_logits(features), self.rule, self.weights)

    def branch_logits(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {m: self.head(features[m]) for m in self.modalities}


def require_branches(model, method: str) -> None:
    """Refuse a model whose fusion gives some modality no branch, for a method that needs every one."""
    missing = [m for m in model.modalities if m not in model.branch_modalities]
    if missing:
        raise ConfigError(f"{method} needs a branch per modality, and {model.fusion_name} fusion has none for "
                          f"{', '.join(missing)}; use --fusion concat, sum or film")



def require_audio_and_visual(model, method: str) -> None:
    """Refuse a model without both an audio and a visual encoder, for a method that compares the two."""
    if tuple(sorted(model.modalities)) != MODALITIES:
        raise ConfigError(f"{method} needs an audio and a visual encoder, got {', '.join(model.modalities)}; "
                          f"train it on a data set with both modalities")


def require_concat(model, method: str, why: str) -> None:
    """Refuse a model that is not concat fusion of audio and visual, for a method built on the concat head's
    per-modality blocks (``why``: what it does with them)."""
    if type(model.fusion) is not ConcatFusion or tuple(model.modalities) != MODALITIES:
        raise ConfigError(f"{method} {why}, and this model has {model.fusion_name} fusion of "
                          f"{', '.join(model.modalities)}; use --fusion concat with both modalities")

FUSIONS = {"concat": ConcatFusion, "sum": SumFusion, "film": FiLMFusion, "gated": GatedFusion, "shared": SharedHeadFusion}
