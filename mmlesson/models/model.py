"""The two-modality classifier every chapter trains: encoders, then a fusion head."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConfigError, check_choice
from .encoders import ENCODERS
from .fusion import FUSIONS


@dataclass
class ModelOutput:
    """``logits`` [B,C] fused; ``logits_per_modality`` {m: [B,C]} each modality's branch, as its fusion
    defines it (``fusion.py``; a modality without one is absent); ``features`` {m: [B,D]} encoder
    outputs before fusion."""

    logits: torch.Tensor
    logits_per_modality: dict[str, torch.Tensor]
    features: dict[str, torch.Tensor]


class MultimodalModel(nn.Module):
    """Encoders for ``modalities`` and a fusion head. With one modality it is a unimodal model
    (encoder + linear layer) and ``logits_per_modality`` holds that modality alone."""

    def __init__(self, num_classes: int, modalities=("audio", "visual"), fusion: str = "concat", width: int = 64,
                 feature_scale: dict[str, float] | None = None, output_stride: int = 32):
        super().__init__()
        modalities = tuple(modalities)
        for m in modalities:
            check_choice("modality", m, ENCODERS)
        check_choice("fusion", fusion, FUSIONS)
        if len(modalities) == 1 and fusion not in ("concat", "sum"):
            raise ConfigError(f"fusion {fusion!r} needs two modalities; a unimodal model uses concat or sum")
        self.modalities = modalities
        self.fusion_name = fusion
        self.encoders = nn.ModuleDict({m: ENCODERS[m](width=width, output_stride=output_stride)
                                       for m in modalities})
        feature_dims = {m: self.encoders[m].out_dim for m in modalities}
        self.fusion = FUSIONS[fusion](feature_dims, num_classes)
        # fixed factors on each encoder's features (Chapter 5); not learnt, kept with the weights
        scale = feature_scale or {}
        self.register_buffer("feature_scale", torch.tensor([float(scale.get(m, 1.0)) for m in modalities]))

    def __repr__(self) -> str:
        """One line (``print(model.encoders)`` shows the layers)."""
        parameters = sum(p.numel() for p in self.parameters())
        width = self.encoders[self.modalities[0]].trunk.out_channels // 8
        return (f"MultimodalModel({' + '.join(self.modalities)}, {self.fusion_name} fusion, ResNet-18 width {width}, "
                f"{self.fusion_output_dim} classes, {parameters:,} parameters)")

    @property
    def fusion_output_dim(self) -> int:
        return next(m for m in reversed(list(self.fusion.modules())) if isinstance(m, nn.Linear)).out_features

    def encode_modality(self, batch: dict, modality: str) -> torch.Tensor:
        """One modality's pooled features times its fixed scale (methods that train the modalities one at
        a time call this, e.g. MLA)."""
        # multiplying by 1 is exact, so the default changes nothing, and no branch reads the buffer on the host
        return self.encoders[modality](batch[modality]) * self.feature_scale[self.modalities.index(modality)]

    def encode(self, batch: dict) -> dict[str, torch.Tensor]:
        return {m: self.encode_modality(batch, m) for m in self.modalities}

    def forward(self, batch: dict) -> ModelOutput:
        return self.fuse(self.encode(batch))

    def fuse(self, features: dict[str, torch.Tensor]) -> ModelOutput:
        """The head on given encoder outputs (methods that act between encoders and head call
        ``encode`` and ``fuse`` themselves, e.g. ARL's gradient scaling)."""
        logits = self.fusion(features)
        if len(self.modalities) == 1:
            logits_per_modality = {self.modalities[0]: logits}
        else:
            logits_per_modality = self.fusion.branch_logits(features)
        return ModelOutput(logits=logits, logits_per_modality=logits_per_modality, features=features)

    @property
    def branch_modalities(self) -> tuple[str, ...]:
        """The modalities whose branch the fusion defines (``fusion.py``)."""
        if len(self.modalities) == 1:
            return self.modalities
        has_branch = getattr(self.fusion, "has_branch", lambda m: True)
        return tuple(m for m in self.modalities if has_branch(m))
