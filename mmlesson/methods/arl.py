"""ARL: asymmetric representation learning (Chapter 3).

"Improving Multimodal Learning via Imbalanced Learning", ICCV 2025. The bias-variance argument
(Eq. 5-16) says a convex combination of two unimodal predictors has the least variance when each
modality's weight is proportional to the inverse of its prediction variance, and that no convex
weighting removes a bias the two share, so each modality's own bias must be trained down. ARL, per
training step, with the unimodal logits ``p_m`` the fusion's branches (for concat the shared head
on one modality, ``W_m z_m + b``; no extra parameters; a fusion without both branches is refused):

1. **Modality analysis.** Variance proxy ``q_m = 1 / mean entropy of softmax(p_m)`` (Eq. 17, with
   the entropy's minus sign) and dependency ``d_m`` = batch mean of the true-class probability (Eq. 4).
2. **Asymmetric learning.** ``[a_audio, a_visual] = softmax(T [q_a / q_v, d_a / d_v])`` (Eq. 18): when
   the audio dependency lags its inverse-variance target, audio gets the larger coefficient.
3. **Gradient residual.** The gradient reaching encoder ``m``'s output becomes ``g + a_m g`` (Eq. 19-20),
   through an identity autograd function on the encoder output.
4. **Unimodal bias regularisation.** ``L = CE(p_fused) + gamma (CE(p_a) + CE(p_v))`` (Eq. 21-22).

Switches for the ablation (paper Table 5): ``unimodal_loss`` (UR), ``asymmetric`` (AL), ``residual``
(GR); with UR and AL off, ARL is joint training. The released code differs (mean |logit| as the
dependency, clamped normalised entropies, a 5-epoch warm-up, gradient clipping, and coefficients
that are computed but never used, so both encoders get the same factor); this file follows the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..analysis.discrepancy import dependency, variance_proxy
from ..models.fusion import require_branches
from ..options import option
from .base import Method, batch_accuracies, encoder_grad_norms, scale_gradient

__all__ = ["ARL", "coefficients", "coefficients_from_ratios", "dependency", "gradient_factor", "ratios", "variance_proxy"]


def ratios(logits_per_modality: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, float]:
    """This batch's ``inverse_variance`` q_a / q_v (Eq. 17) and ``audio_over_visual`` d_a / d_v (Eq. 4)."""
    audio, visual = logits_per_modality["audio"], logits_per_modality["visual"]
    return {"inverse_variance": variance_proxy(audio) / variance_proxy(visual),
            "audio_over_visual": dependency(audio, labels) / dependency(visual, labels)}


def coefficients_from_ratios(batch_ratios: dict[str, float], temperature: float) -> dict[str, float]:
    """Eq. 18 on ratios already measured: ``softmax(T [q_a / q_v, d_a / d_v])``."""
    logits = torch.tensor([batch_ratios["inverse_variance"], batch_ratios["audio_over_visual"]], dtype=torch.float64)
    a = (temperature * logits).softmax(dim=0)
    return {"audio": float(a[0]), "visual": float(a[1])}


def coefficients(logits_per_modality: dict[str, torch.Tensor], labels: torch.Tensor,
                 temperature: float) -> dict[str, float]:
    """Eq. 18: ``softmax(T [q_a / q_v, d_a / d_v])`` as ``{"audio": a_audio, "visual": a_visual}``."""
    return coefficients_from_ratios(ratios(logits_per_modality, labels), temperature)


def gradient_factor(a: float, asymmetric: bool = True, residual: bool = True) -> float:
    """What multiplies the gradient at an encoder's output: ``1 + a`` (Eq. 19-20), ``a`` without the
    residual, 1 without asymmetric learning."""
    if not asymmetric:
        return 1.0
    return 1.0 + a if residual else a


@dataclass(frozen=True)
class ARLOptions:
    gamma: float = option(4.0, "weight of the unimodal losses, L = CE(fused) + gamma (CE(audio) + CE(visual)) (Eq. 22)",
                          minimum=0.0)
    temperature: float = option(4.0, "temperature T of the coefficients softmax(T [q_a/q_v, d_a/d_v]) (Eq. 18; the "
                                     "paper uses 8 for CREMA-D, 4 otherwise)", minimum=0.0)
    unimodal_loss: bool = option(True, "add the unimodal bias regularisation gamma (CE(audio) + CE(visual))")
    asymmetric: bool = option(True, "scale each encoder's gradient by its coefficient (asymmetric learning)")
    residual: bool = option(True, "keep the original gradient as a residual, g + a g (else a g) (Eq. 19-20)")


class ARL(Method):
    name = "arl"
    Options = ARLOptions

    def prepare_model(self, model):
        require_branches(model, "ARL")
        return model

    def training_step(self, model, batch, optimizer, state):
        cfg = self.options
        labels = batch["label"]
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            features = model.encode(batch)
            with torch.no_grad():  # the coefficients only need this step's forward values
                unimodal = model.fuse({m: f.detach() for m, f in features.items()}).logits_per_modality
            batch_ratios = ratios(unimodal, labels)
            a = coefficients_from_ratios(batch_ratios, cfg.temperature)
            factors = {m: gradient_factor(a[m], cfg.asymmetric, cfg.residual) for m in features}
            output = model.fuse({m: scale_gradient(f, factors[m]) for m, f in features.items()})
            fused_loss = F.cross_entropy(output.logits.float(), labels)
            unimodal_losses = {m: F.cross_entropy(p.float(), labels) for m, p in output.logits_per_modality.items()}
            loss = fused_loss + cfg.gamma * sum(unimodal_losses.values()) if cfg.unimodal_loss else fused_loss
        loss.backward()
        stats = {"loss": loss.item(), "loss_fused": fused_loss.item(), **encoder_grad_norms(model),
                 **batch_accuracies(output, labels), **{f"ratio/{k}": v for k, v in batch_ratios.items()}}
        for m in features:
            stats[f"coefficient/{m}"] = a[m]
            stats[f"factor/{m}"] = factors[m]
            stats[f"loss_unimodal/{m}"] = unimodal_losses[m].item()
        optimizer.step()
        return stats
