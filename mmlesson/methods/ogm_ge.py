"""OGM-GE: on-the-fly gradient modulation with generalisation enhancement (Chapter 2).

Peng, Wei, Deng, Wang and Hu, "Balanced Multimodal Learning via On-the-fly Gradient Modulation",
CVPR 2022. After the usual backward pass on the fused cross-entropy:

1. **Discrepancy.** Each modality's score is the batch sum of the softmax probability its own
   logits give the true class, ``s_m = sum_i softmax(logits_m(x_i))[y_i]`` (paper Eq. 8). The
   per-modality logits are the fusion's branches (``models/fusion.py``: for concat the shared decision
   layer on one modality, ``W_m z_m + b``; a fusion without both branches is refused); the release
   instead gives each modality half the bias, ``W_m z_m + b/2``.
2. **Coefficient.** With ``rho = s_dominant / s_other > 1`` the dominant modality's encoder
   gradients are scaled by ``k = 1 - tanh(alpha * rho)`` (Eq. 10 as the release and BalanceBenchmark
   implement it, ``ogm_form="jump"``: k falls from 1 to ``1 - tanh(alpha)`` as rho crosses 1); the
   other modality keeps ``k = 1``. ``ogm_form="continuous"`` uses ``1 - tanh(alpha * (rho - 1))``, the
   variant in the release's early history, which equals 1 at rho = 1. At exactly rho = 1 no modality
   dominates and both keep 1 (the release's if/else would modulate audio there).
3. **GE.** Inside the modulation window every modulated gradient tensor also receives Gaussian noise
   whose standard deviation is that tensor's own (unscaled) gradient standard deviation (+1e-8),
   ``g <- k g + N(0, std(g)^2)``, for both encoders, as released.

Only 4-D gradients (convolution weights, 1x1 downsampling convs included) are modulated by default,
as released (``modulated_params="conv"``); ``"all"`` also scales batch-norm parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..analysis.discrepancy import discrepancy_ratio, true_class_scores
from ..errors import ConfigError
from ..models.fusion import require_branches
from ..options import option
from .base import Method, batch_accuracies, encoder_grad_norms
from .joint import modality_ratios


@dataclass(frozen=True)
class OGMGEOptions:
    alpha: float = option(0.8, "modulation strength alpha of k = 1 - tanh(alpha * rho)", minimum=0.0)
    modulation_window: tuple[int, int] = option((0, 50), "first and last epoch (inclusive) of modulation",
                                                minimum=0, nargs=2, metavar=("START", "END"))
    ge: bool = option(True, "add Gaussian noise with each gradient's own std (generalisation enhancement)")
    ogm_form: str = option("jump", "coefficient: jump (1 - tanh(alpha rho), Eq. 10 as released) or continuous "
                                   "(1 - tanh(alpha (rho - 1)))", choices=("jump", "continuous"))
    modulated_params: str = option("conv", "modulate conv weights only (conv, as released) or every encoder "
                                           "parameter (all)", choices=("conv", "all"))

    def __post_init__(self):
        window = tuple(self.modulation_window)
        if len(window) == 2 and window[0] > window[1]:
            raise ConfigError(f"--modulation-window must be START END with START <= END, got {window!r}")


def coefficient(rho: float, alpha: float, form: str = "jump") -> float:
    """The dominant modality's factor for discrepancy ratio ``rho`` (1 where ``rho <= 1``)."""
    if rho <= 1.0:
        return 1.0
    if form == "jump":
        return 1.0 - math.tanh(alpha * rho)
    if form == "continuous":
        return 1.0 - math.tanh(alpha * (rho - 1.0))
    raise ValueError(f"unknown OGM-GE coefficient form {form!r}; choose one of: continuous, jump")


def coefficients(logits_per_modality: dict[str, torch.Tensor], labels: torch.Tensor, alpha: float,
                 form: str = "jump") -> dict[str, float]:
    """Each modality's OGM coefficient on this batch: ``1 - tanh(alpha rho)`` for the dominant
    modality, 1 for the other (two modalities)."""
    scores = true_class_scores(logits_per_modality, labels)
    if len(scores) != 2:
        raise ValueError(f"OGM-GE needs exactly two modalities, got {list(scores)}")
    (first, s_first), (second, s_second) = scores.items()
    return {first: coefficient(discrepancy_ratio(s_first, s_second), alpha, form),
            second: coefficient(discrepancy_ratio(s_second, s_first), alpha, form)}


def modulated_parameters(encoder, which: str = "conv"):
    """The parameters OGM-GE rescales: 4-D (convolution) weights, or every parameter."""
    return [p for p in encoder.parameters() if which == "all" or p.dim() == 4]


def modulate_gradients(model, factors: dict[str, float], which: str = "conv", noise: bool = True) -> None:
    """In place: ``g <- k_m g`` (+ ``N(0, std(g)^2)`` with ``noise``) for each encoder's chosen parameters."""
    for m, k in factors.items():
        for parameter in modulated_parameters(model.encoders[m], which):
            if parameter.grad is None:
                continue
            grad = parameter.grad
            if noise:
                std = float(grad.std()) + 1e-8 if grad.numel() > 1 else 1e-8
                grad.mul_(k).add_(torch.randn_like(grad) * std)
            else:
                grad.mul_(k)


def in_window(epoch: int, window: tuple[int, int]) -> bool:
    return window[0] <= epoch <= window[1]


class OGMGE(Method):
    name = "ogm_ge"
    Options = OGMGEOptions
    epoch_options = ("modulation_window",)

    def prepare_model(self, model):
        require_branches(model, "OGM-GE")
        return model

    def training_step(self, model, batch, optimizer, state):
        cfg = self.options
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            output = model(batch)
            loss = F.cross_entropy(output.logits.float(), batch["label"])
        loss.backward()
        factors = coefficients(output.logits_per_modality, batch["label"], cfg.alpha, cfg.ogm_form)
        active = in_window(state.epoch, cfg.modulation_window)
        if active:
            modulate_gradients(model, factors, cfg.modulated_params, noise=cfg.ge)
        stats = {"loss": loss.item(), **encoder_grad_norms(model), **batch_accuracies(output, batch["label"]),
                 **modality_ratios(output.logits_per_modality, batch["label"]), "modulated": float(active)}
        for m, k in factors.items():
            stats[f"coefficient/{m}"] = k if active else 1.0
        optimizer.step()
        return stats
