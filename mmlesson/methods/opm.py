"""OPM: on-the-fly prediction modulation, dropping the dominant modality's features.

Wei, Hu, Du and Wen, "On-the-fly Modulation for Balanced Multimodal Learning", IEEE TPAMI 2024 (the
journal extension of OGM-GE, CVPR 2022). OGM-GE slows the dominant modality in the backward pass; OPM acts
in the forward pass: on some steps it zeroes the dominant modality's features for a random subset of the
batch, so that on those samples the concat head must predict from the other modality. Per training step:

1. **Discrepancy.** Each modality's score is the batch sum of the probability its own logits give the
   true class, ``s_m = sum_i softmax(W_m z_m,i + b/2)[y_i]`` (as in OGM-GE; computed on the step's own
   features before any dropping, with no gradient). The release gives each modality half the bias (as its
   OGM-GE code does); ``score_bias="full"`` uses the package's branch ``W_m z_m + b`` instead.
2. **Drop probability** (``opm_drop_probs``). With ``rho_m = s_m / s_other`` and
   ``r_m = tanh(max(rho_m - 1, 0))``, the dominant modality (``rho_m > 1``) gets
   ``q_m = clip(q_base (1 + lambda r_m), 0, 1)`` and the other ``q = 0``: it is never dropped. Note the
   jump: ``q`` leaps from 0 to ``q_base`` as soon as one modality leads at all.
3. **Dropping.** With probability ``p_exe`` (one draw per step), each sample keeps modality m's features
   with probability ``1 - q_m`` (``mask_i,m ~ Bernoulli(1 - q_m)``), and every feature vector is rescaled by
   ``1 / (1 - theta)``, ``theta = sum_m D_m q_m / sum_m D_m`` the expected dropped fraction of the
   concatenated feature, as inverted dropout does: ``z~_m,i = mask_i,m z_m,i / (1 - theta)``. The
   gradient flows through the same factor. Only one modality can have ``q > 0``, so no sample loses both.
4. **Loss.** The cross-entropy of the concat head on the dropped features, ``CE(W [z~_a; z~_v] + b, y)``.

No dropping before epoch ``warmup_epochs`` (the release warms up for 6 epochs, 0 to 5) and none at
evaluation: the model is the plain concat model, so ``model(batch)`` is what validation and test read. The
randomness comes from torch's global generator, which every checkpoint holds. The logged branch accuracies
and ratios read the undropped features (the package's branches, ``W_m z_m + b``); ``acc`` is the fused
accuracy the step trained on. One forward and one backward pass, as joint training. The release's defaults
(its training script) are ``q_base`` 0.5, ``lambda`` 0.5, ``p_exe`` 0.7; its config file says ``q_base`` 0.4.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..analysis.discrepancy import discrepancy_ratio, true_class_scores
from ..errors import ConfigError
from ..models.fusion import require_concat
from ..options import check_fields, option
from .base import Method, accuracy, encoder_grad_norms
from .joint import modality_ratios

SCORE_BIASES = ("half", "full")


@dataclass(frozen=True)
class OPMOptions:
    q_base: float = option(0.5, "base drop probability q_base of the dominant modality, q = q_base (1 + lambda r) "
                                "(the release's script; its config file says 0.4)", minimum=0.0)
    q_lambda: float = option(0.5, "lambda of q = q_base (1 + lambda tanh(relu(rho - 1)))", minimum=0.0)
    p_exe: float = option(0.7, "probability that a training step drops features at all (one draw per step)",
                          minimum=0.0)
    warmup_epochs: int = option(6, "epochs of plain joint training before any dropping (the release: epochs 0-5)",
                                minimum=0)
    score_bias: str = option("half", "bias in the scores s_m: half (W_m z_m + b/2, as released) or full (the "
                                     "package's branch W_m z_m + b)", choices=SCORE_BIASES)

    def __post_init__(self):
        check_fields(self)  # coerce first, so the bounds below compare numbers
        for name in ("q_base", "p_exe"):
            if getattr(self, name) > 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} is a probability and must be <= 1, "
                                  f"got {getattr(self, name)!r}")


def opm_drop_probs(scores: dict[str, float], q_base: float, q_lambda: float) -> dict[str, float]:
    """Each modality's drop probability from its score ``s_m`` (two modalities): ``clip(q_base (1 + lambda
    tanh(rho - 1)), 0, 1)`` for the one whose ratio ``rho = s_m / s_other`` exceeds 1, 0 for the other (and
    for both at a tie). ``s_other = 0 < s_m`` gives ``rho = inf``, ``tanh = 1``; ``0 / 0`` counts as a tie."""
    if len(scores) != 2:
        raise ValueError(f"OPM needs exactly two modalities, got {list(scores)}")
    (first, s_first), (second, s_second) = scores.items()
    probabilities = {}
    for m, score, other in ((first, s_first, s_second), (second, s_second, s_first)):
        r = math.tanh(max(discrepancy_ratio(score, other) - 1.0, 0.0))
        probabilities[m] = min(max(q_base * (1.0 + q_lambda * r), 0.0), 1.0) if r > 0.0 else 0.0
    return probabilities


def dropped_fraction(drop_probs: dict[str, float], feature_sizes: dict[str, int]) -> float:
    """``theta = sum_m D_m q_m / sum_m D_m``: the expected fraction of the concatenated feature dropped."""
    return sum(feature_sizes[m] * q for m, q in drop_probs.items()) / sum(feature_sizes[m] for m in drop_probs)


def draw_keep_masks(drop_probs: dict[str, float], batch_size: int) -> dict[str, torch.Tensor]:
    """``{m: [B, 1]}`` of 0/1, each sample kept with probability ``1 - q_m``, drawn from torch's global
    (CPU) generator, whatever device trains, so a checkpoint's generator state replays them."""
    return {m: torch.bernoulli(torch.full((batch_size, 1), 1.0 - q)) for m, q in drop_probs.items()}


def score_logits(model, branches: dict[str, torch.Tensor], score_bias: str = "half") -> dict[str, torch.Tensor]:
    """Each modality's logits for its score from the package's concat branches ``W_m z_m + b``: those
    themselves (``"full"``), or less ``b/2`` (``"half"``, the release's ``W_m z_m + b/2``)."""
    if score_bias == "full":
        return branches
    half = model.fusion.head.bias.detach() / 2
    return {m: logits - half for m, logits in branches.items()}


class OPM(Method):
    name = "opm"
    Options = OPMOptions
    epoch_options = ("warmup_epochs",)
    tiny_options = {"warmup_epochs": 1}  # a 3-epoch run drops features in epochs 1 and 2

    def prepare_model(self, model):
        require_concat(model, "OPM", "drops the dominant modality's features before the concat head and scores each "
                                     "modality by its block of that head")
        return model

    def training_step(self, model, batch, optimizer, state):
        cfg = self.options
        labels = batch["label"]
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            features = model.encode(batch)
            with torch.no_grad():  # the undropped branches: the scores and the logged statistics
                branches = model.fusion.branch_logits({m: f.detach() for m, f in features.items()})
            scores = true_class_scores(score_logits(model, branches, cfg.score_bias), labels)
            drop_probs = opm_drop_probs(scores, cfg.q_base, cfg.q_lambda)
            active = state.epoch >= cfg.warmup_epochs
            executed = active and torch.rand(()).item() < cfg.p_exe  # global generator: checkpointed
            kept = {m: 1.0 for m in features}
            if executed:
                theta = dropped_fraction(drop_probs, {m: f.shape[1] for m, f in features.items()})
                masks = draw_keep_masks(drop_probs, labels.shape[0])
                for m, f in features.items():
                    mask = masks[m].to(device=f.device, dtype=f.dtype)
                    features[m] = f * mask / (1.0 - theta)
                    kept[m] = float(masks[m].mean())
            output = model.fuse(features)
            loss = F.cross_entropy(output.logits.float(), labels)
        loss.backward()
        stats = {"loss": loss.item(), **encoder_grad_norms(model), "acc": accuracy(output.logits, labels),
                 **{f"branch_acc/{m}": accuracy(logits, labels) for m, logits in branches.items()},
                 **modality_ratios(branches, labels), "dropping": float(executed)}
        for m in features:
            stats[f"drop_prob/{m}"] = drop_probs[m] if active else 0.0
            stats[f"dropped/{m}"] = 1.0 - kept[m]
        optimizer.step()
        return stats
