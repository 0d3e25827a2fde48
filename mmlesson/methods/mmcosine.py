"""MMCosine: a normalised decision layer, each modality scored by cosine similarity.

Xu, Feng, Zhang and Hu, "MMCosine: Multi-Modal Cosine Loss Towards Balanced Audio-Visual Fine-Grained
Learning", ICASSP 2023. With concat fusion the fused logit of class c is ``W_a,c z_a + W_v,c z_v + b_c``,
so a modality can win the fused prediction through the *norms* of its features and of its weight rows
alone. MMCosine removes both norms, modality by modality, and drops the bias:

    logit_c = s * ( cos(z_a, W_a,c) + cos(z_v, W_v,c) ),    cos(x, w) = x.w / (|x| |w|)

where ``W_m,c`` is class c's row of modality m's block of the concat head and ``s`` a fixed scale (the
logits of a cosine lie in [-s, s] per modality, so ``s`` sets how sharp the softmax can get). The loss is
the cross-entropy of these logits, and nothing else.

This file makes it a change of *structure* (``prepare_model`` swaps the concat head for ``CosineFusion``),
so that whatever reads ``model(batch)`` (validation, model selection, test, the branch accuracies)
reads the cosine logits the run trained. The release trains on the cosine logits but its validation
scores the plain linear head ``W [z_a; z_v] + b``, whose bias never received a gradient: its reported
accuracy is not that of the trained classifier. Each modality's branch here is its own scaled cosine,
``s cos(z_m, W_m,c)``, so the fused logits are exactly the sum of the two branches. The head keeps the
concat head's initial weights (nothing is re-initialised) and loses its bias. Because the features are
normalised, the fixed feature scales of Chapter 5 (``feature_scale``) change neither the logits nor the
gradients. The release's optional contrastive term (weight 0 by default) is not implemented; only concat
fusion is supported. Cost: one forward and one backward pass, as joint training.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.fusion import ConcatFusion, require_concat
from ..options import option
from .base import Method, batch_accuracies, encoder_grad_norms
from .joint import modality_ratios


@dataclass(frozen=True)
class MMCosineOptions:
    scale: float = option(10.0, "scale s of the cosine logits s (cos(z_a, W_a,c) + cos(z_v, W_v,c)) (the release's "
                                "default; BalanceBenchmark uses 15)", above=0.0)


def cosine_logits(features: torch.Tensor, weight: torch.Tensor, scale: float) -> torch.Tensor:
    """``s cos(z_i, w_c)`` for every sample i and class row c: ``[B, C]``. A zero feature vector or
    weight row gives 0 (``F.normalize`` divides by ``max(|x|, 1e-12)``), not NaN."""
    return scale * F.normalize(features, dim=1) @ F.normalize(weight, dim=1).T


class CosineFusion(ConcatFusion):
    """The concat head turned into MMCosine's decision layer: the same weight matrix ``[W_a W_v]``,
    no bias, each modality's block applied as a cosine classifier, the scaled cosines summed."""

    def __init__(self, concat: ConcatFusion, scale: float):
        nn.Module.__init__(self)  # not ConcatFusion.__init__: keep the given head's weights, draw nothing
        self.modalities = concat.modalities
        self.feature_sizes = list(concat.feature_sizes)
        self.head = concat.head
        self.head.register_parameter("bias", None)  # no bias in the cosine logits
        self.scale = float(scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"

    def raw_weight_blocks(self) -> dict[str, torch.Tensor]:
        """The trained parameter's columns per modality, ``{m: W_m [C, D_m]}`` (norms not removed)."""
        return dict(zip(self.modalities, torch.split(self.head.weight, self.feature_sizes, dim=1)))

    def branch_logits(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each modality's own logits, ``s cos(z_m, W_m,c)``."""
        blocks = self.raw_weight_blocks()
        return {m: cosine_logits(features[m], blocks[m], self.scale) for m in self.modalities}

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The fused logits: the sum of the branches."""
        branches = self.branch_logits(features)
        fused = branches[self.modalities[0]]
        for m in self.modalities[1:]:
            fused = fused + branches[m]
        return fused

    def weight_blocks(self) -> dict[str, torch.Tensor]:
        """The weights the decision applies to each modality's *normalised* features: ``s W_m,c / |W_m,c|``
        per class row (every row has norm s). The decision-layer analysis reads these, so its mean |W_m|
        shows the norms MMCosine equalises; its mean |W_m z_m| multiplies them by the raw features, i.e.
        ``s |z_m| |cos|``, the logit the plain head would give at the features' own norm."""
        return {m: self.scale * F.normalize(w, dim=1) for m, w in self.raw_weight_blocks().items()}


class MMCosine(Method):
    """Joint training's step on the cosine decision layer (one forward and one backward pass)."""

    name = "mmcosine"
    Options = MMCosineOptions

    def prepare_model(self, model):
        require_concat(model, "MMCosine", "normalises the concat head's per-modality blocks")
        model.fusion = CosineFusion(model.fusion, self.options.scale)
        model.fusion_name = "cosine"
        return model

    def training_step(self, model, batch, optimizer, state):
        labels = batch["label"]
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            output = model(batch)
            loss = F.cross_entropy(output.logits.float(), labels)
        loss.backward()
        stats = {"loss": loss.item(), **encoder_grad_norms(model), **batch_accuracies(output, labels)}
        if len(output.logits_per_modality) == 2:
            stats.update(modality_ratios(output.logits_per_modality, labels))
        with torch.no_grad():  # the norms the cosine logits ignore
            for m, w in model.fusion.raw_weight_blocks().items():
                stats[f"feature_norm/{m}"] = float(output.features[m].float().norm(dim=1).mean())
                stats[f"weight_norm/{m}"] = float(w.float().norm(dim=1).mean())
        optimizer.step()
        return stats
