"""The network CCAT trains (Chapter 4; the CCAT paper, Sec. 3.2-3.3 and App. A.1).

* Encoders as everywhere (``encoders.py``), read as tokens: their last feature map before pooling.
* ``BiCrossAttention`` (App. A.1, Eq. 14-22): in each direction one modality's tokens query the
  other's with multi-head attention, a residual and LayerNorm, a feed-forward block with another
  residual and LayerNorm, then an average over the tokens; the two directions are added. The
  appendix's Eq. 19 adds the audio tokens to the audio-to-visual attention output (``z^1 + a^2``);
  the symmetric form, each direction's residual its own query tokens (``z^2 + a^2``), is the default:
  it mirrors Eq. 15, and the printed form only type-checks when both modalities have as many tokens
  (``residual="printed"`` offers it, with a one-line error otherwise).
* ``Cls``, one linear classifier ``D -> C`` shared by the fused representation (stage 1) and every
  modality's pooled features (stage 2): the fusion ``shared`` of ``fusion.py``.
* One ``LoRA`` per modality on that classifier (Eq. 9-10): ``Cls(z) + LoRA_m(z) = (W + s B A) z + b``
  with ``A`` (``r x D``) and ``B`` (``C x r``) and ``s = alpha / r`` (Hu et al.'s scaling; alpha = 1 as in
  the paper). The paper's "Cls(z) + LoRA(z)" must add class logits, so the adapter maps features to
  logits: a low-rank correction of the classifier's weight matrix for that modality. ``B`` starts at
  zero, so the adapted classifier starts as the frozen one.

``decision_level`` (set when stage 2 begins) switches ``forward`` from the cross-attention prediction
to the decision-level fusion of the per-modality predictions (the paper's inference).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError
from .fusion import decision_level_fusion
from .model import ModelOutput, MultimodalModel

RESIDUALS = ("symmetric", "printed")


class CrossAttentionBlock(nn.Module):
    """One direction of App. A.1: ``h = LN(residual + MHA(query, context, context))`` (Eq. 14-15 / 18-19),
    ``f = LN(h + FFN(h))`` (Eq. 16 / 20), averaged over the query tokens (Eq. 17 / 21)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_attention, self.norm_ffn = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))

    def forward(self, query: torch.Tensor, context: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(query, context, context, need_weights=False)
        h = self.norm_attention(residual + attended)
        return self.norm_ffn(h + self.ffn(h)).mean(dim=1)


class BiCrossAttention(nn.Module):
    """Eq. 14-22: ``f = AvgPool(audio queries visual) + AvgPool(visual queries audio)``."""

    def __init__(self, dim: int, heads: int = 4, residual: str = "symmetric"):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"--attention-heads {heads} must divide the feature size {dim}; choose a divisor")
        if residual not in RESIDUALS:
            raise ConfigError(f"unknown cross-attention residual {residual!r}; choose one of: {', '.join(RESIDUALS)}")
        self.residual = residual
        self.visual_to_audio = CrossAttentionBlock(dim, heads)  # audio tokens are the queries (Eq. 14-17)
        self.audio_to_visual = CrossAttentionBlock(dim, heads)  # visual tokens are the queries (Eq. 18-21)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        into_audio = self.visual_to_audio(audio, visual, residual=audio)
        if self.residual == "printed" and audio.shape[1] != visual.shape[1]:
            raise ConfigError(f"the printed Eq. 19 adds the {audio.shape[1]} audio tokens to the {visual.shape[1]} "
                              f"visual queries' attention output; use --bicross-residual symmetric")
        into_visual = self.audio_to_visual(visual, audio, residual=visual if self.residual == "symmetric" else audio)
        return into_visual + into_audio  # Eq. 22


class LoRA(nn.Module):
    """Eq. 9: ``z -> s B A z`` with ``A`` [r, D] (Kaiming-uniform, as Hu et al.), ``B`` [C, r] zero, ``s = alpha / r``."""

    def __init__(self, dim: int, num_classes: int, rank: int, alpha: float = 1.0):
        super().__init__()
        self.down = nn.Parameter(torch.empty(rank, dim))
        self.up = nn.Parameter(torch.zeros(num_classes, rank))
        nn.init.kaiming_uniform_(self.down, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * (features @ self.down.T) @ self.up.T


class CCATModel(MultimodalModel):
    """Encoders (as tokens), bi-directional cross-attention, a shared classifier and per-modality LoRA."""

    def __init__(self, num_classes: int, width: int = 64, feature_scale: dict[str, float] | None = None,
                 heads: int = 4, residual: str = "symmetric", rule: str = "mean", output_stride: int = 32):
        super().__init__(num_classes, modalities=("audio", "visual"), fusion="shared", width=width,
                         feature_scale=feature_scale, output_stride=output_stride)
        dim = self.encoders["audio"].out_dim
        self.cross = BiCrossAttention(dim, heads, residual)
        self.lora = nn.ModuleDict()  # one per modality once stage 2 adds them
        self.fusion.rule = rule
        self.decision_level = False

    @property
    def classifier(self) -> nn.Linear:
        return self.fusion.head

    def add_lora(self, rank: int, alpha: float) -> None:
        dim, classes = self.classifier.in_features, self.classifier.out_features
        self.lora = nn.ModuleDict({m: LoRA(dim, classes, rank, alpha) for m in self.modalities})

    def tokens(self, batch: dict, modality: str) -> torch.Tensor:
        index = self.modalities.index(modality)
        return self.encoders[modality].tokens(batch[modality]) * self.feature_scale[index]

    def encode_modality(self, batch: dict, modality: str) -> torch.Tensor:
        """Pooled features: the mean of the modality's tokens."""
        return self.tokens(batch, modality).mean(dim=1)

    def unimodal_logits(self, features: torch.Tensor, modality: str) -> torch.Tensor:
        """Eq. 10 before the softmax: ``Cls(z_m) + LoRA_m(z_m)`` (``Cls(z_m)`` without adapters)."""
        logits = self.classifier(features)
        return logits + self.lora[modality](features) if modality in self.lora else logits

    def forward(self, batch: dict) -> ModelOutput:
        tokens = {m: self.tokens(batch, m) for m in self.modalities}
        features = {m: t.mean(dim=1) for m, t in tokens.items()}
        branches = {m: self.unimodal_logits(features[m], m) for m in self.modalities}
        if self.decision_level:  # stage 2 and inference: the unimodal predictions fused
            logits = decision_level_fusion(branches, self.fusion.rule)
        else:  # stage 1: the classifier on the cross-attention fusion (Eq. 23)
            logits = self.classifier(self.cross(tokens["audio"], tokens["visual"]))
        return ModelOutput(logits=logits, logits_per_modality=branches, features=features)

    def fused_representation(self, batch: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Stage 1's pieces: pooled features, the cross-attention fusion ``f`` and ``Cls(f)``."""
        tokens = {m: self.tokens(batch, m) for m in self.modalities}
        fused = self.cross(tokens["audio"], tokens["visual"])
        return {m: t.mean(dim=1) for m, t in tokens.items()}, fused, self.classifier(fused)
