"""Capability-aware decision weights, fitted after training (Chapter 5, beyond the paper).

The decision-layer paper (Ma and Chen, "Revisit Modality Imbalance at the Decision Layer", Insights
2 and 4) argues that the modalities' logits live on different scales, so that adding them lets the
one with the larger scale dominate, and that the balance should be set per class according to what
each modality can do. It proposes the direction only; this module is our implementation of it, in two
steps applied to a trained model's per-modality logits ``l_m`` (each modality's branch as its fusion
defines it: for concat ``W_m z_m + b``):

(a) calibration: one temperature ``T_m`` per modality, fitted on the validation split by minimising the
    log-loss of ``softmax(l_m / T_m)`` (temperature scaling), so that each modality's logits mean
    what its confidence is worth;
(b) per-class modality weights: the recalibrated logit of class ``c`` is
    ``s * sum_m w[c, m] * centre(d_m / T_m)[c] + centre(b)[c]`` with ``w[c, :] = M * softmax(theta[c, :])``
    (non-negative, summing to the number of modalities M), and a global sharpness ``s``; ``theta``
    and ``s`` minimise the validation log-loss plus a small ridge that pulls ``theta`` toward uniform.

Each branch logit ``l_m`` carries the decision layer's shared bias ``b`` (concat: ``W_m z_m + b``), so
summing branches would count it M times. The combination uses each modality's own contribution
``d_m = l_m - b`` and adds ``b`` once (``shared_bias``): with unit temperatures, uniform weights and
sharpness 1 it is exactly the model's own fused output. (Sum fusion has a bias per branch and no
shared one: ``b = 0`` there.)

``centre`` subtracts each sample's mean logit: softmax ignores that constant, and without removing it
a per-class weight would also act as a per-class bias. Everything is fitted on validation only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..progress import make_progress, progress_enabled

from .scores import classification_scores


@torch.no_grad()
def collect_logits(model, split, device, batch_size: int = 256):
    """Over ``split`` in order: ``({modality: [N, C]}, fused [N, C], labels [N])``, float64 on the CPU."""
    model.eval()
    per_modality, fused, labels = {m: [] for m in model.modalities}, [], []
    for batch in split.batches(batch_size, device=device):
        output = model(batch)
        for m, logits in output.logits_per_modality.items():
            per_modality[m].append(logits.double().cpu())
        fused.append(output.logits.double().cpu())
        labels.append(batch["label"].cpu())
    return {m: torch.cat(c) for m, c in per_modality.items()}, torch.cat(fused), torch.cat(labels)


def shared_bias(logits_per_modality: dict[str, torch.Tensor], fused: torch.Tensor) -> torch.Tensor:
    """The part ``b`` that every branch logit shares with the fused one: ``(sum_m l_m - fused) / (M - 1)``
    (concat: the decision layer's bias, on every row; sum fusion: 0)."""
    branches = list(logits_per_modality.values())
    if len(branches) < 2:
        return torch.zeros_like(fused)
    return (sum(branches) - fused) / (len(branches) - 1)


def centre(logits: torch.Tensor) -> torch.Tensor:
    """Subtract each row's mean: the same softmax, without a per-sample offset."""
    return logits - logits.mean(dim=1, keepdim=True)


def minimise(parameters: list[torch.Tensor], loss_fn, max_iter: int = 200) -> None:
    """Full-batch L-BFGS in float64 (deterministic for a fixed starting point)."""
    optimizer = torch.optim.LBFGS(parameters, lr=1.0, max_iter=max_iter, history_size=20, tolerance_grad=1e-10,
                                  tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimizer.step(closure)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The ``T > 0`` minimising the log-loss of ``softmax(logits / T)`` (Guo et al., 2017)."""
    logits = logits.double()
    log_temperature = torch.zeros((), dtype=torch.float64, requires_grad=True)
    minimise([log_temperature], lambda: F.cross_entropy(logits / log_temperature.exp(), labels))
    return float(log_temperature.detach().exp())


@dataclass
class Recalibration:
    """Fitted on validation; ``apply`` maps per-modality logits to recalibrated fused logits."""

    modalities: tuple[str, ...]
    temperatures: dict[str, float]
    class_weights: torch.Tensor  # [C, M], each row non-negative and summing to M
    sharpness: float = 1.0

    def calibrated(self, logits_per_modality: dict[str, torch.Tensor], shared=None) -> dict[str, torch.Tensor]:
        """Each modality's own contribution ``(l_m - b) / T_m``."""
        offset = 0.0 if shared is None else shared.double()
        return {m: (logits_per_modality[m].double() - offset) / self.temperatures[m] for m in self.modalities}

    def apply(self, logits_per_modality: dict[str, torch.Tensor], shared=None) -> torch.Tensor:
        """Recalibrated fused logits; ``shared``: the bias the branches share (``shared_bias``), added once."""
        calibrated = self.calibrated(logits_per_modality, shared)
        fused = self.sharpness * weighted_sum(calibrated, self.class_weights, self.modalities)
        return fused if shared is None else fused + centre(shared.double())

    def to_dict(self) -> dict:
        return {"modalities": list(self.modalities), "temperatures": dict(self.temperatures),
                "class_weights": self.class_weights.tolist(), "sharpness": self.sharpness}


def weighted_sum(calibrated: dict[str, torch.Tensor], class_weights: torch.Tensor, modalities) -> torch.Tensor:
    """``sum_m w[c, m] * centre(l_m)[:, c]`` for every class ``c``."""
    return sum(class_weights[:, i] * centre(calibrated[m]) for i, m in enumerate(modalities))


def uniform_weights(num_classes: int, num_modalities: int) -> torch.Tensor:
    return torch.ones(num_classes, num_modalities, dtype=torch.float64)


def fit_recalibration(logits_per_modality: dict[str, torch.Tensor], labels: torch.Tensor,
                      per_class: bool = True, ridge: float = 1e-2, shared=None) -> Recalibration:
    """Fit (a) the temperatures (on each branch's own logits) and, with ``per_class``, (b) the class
    weights and sharpness, on the given (validation) logits; ``shared``: the branches' shared bias,
    counted once in the combination. ``per_class=False`` is calibration alone: uniform weights, sharpness 1."""
    modalities = tuple(logits_per_modality)
    temperatures = {m: fit_temperature(logits_per_modality[m], labels) for m in modalities}
    num_classes = next(iter(logits_per_modality.values())).shape[1]
    recalibration = Recalibration(modalities, temperatures, uniform_weights(num_classes, len(modalities)))
    if not per_class:
        return recalibration
    calibrated = recalibration.calibrated(logits_per_modality, shared)
    offset = 0.0 if shared is None else centre(shared.double())
    theta = torch.zeros(num_classes, len(modalities), dtype=torch.float64, requires_grad=True)
    log_sharpness = torch.zeros((), dtype=torch.float64, requires_grad=True)

    def loss():
        weights = len(modalities) * theta.softmax(dim=1)
        fused = log_sharpness.exp() * weighted_sum(calibrated, weights, modalities) + offset
        return F.cross_entropy(fused, labels) + ridge * theta.pow(2).sum() / num_classes

    minimise([theta, log_sharpness], loss)
    recalibration.class_weights = (len(modalities) * theta.softmax(dim=1)).detach()
    recalibration.sharpness = float(log_sharpness.detach().exp())
    return recalibration


def logit_scores(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Accuracy, macro-F1 and per-class accuracy of ``argmax``, plus the log-loss (NLL)."""
    scores = classification_scores(logits.argmax(dim=1), labels, logits.shape[1])
    scores["nll"] = float(F.cross_entropy(logits.double(), labels))
    return scores


def recalibrate(model, dataset, device, progress: str = "off") -> dict:
    """Fit on ``dataset.val``, score on ``dataset.test``: the model's own fused output (``plain``),
    (a) alone (``calibrated``: sum of calibrated logits) and (a)+(b) (``capability_weighted``).
    Also the test per-class accuracy of each calibrated branch, to compare with the fitted weights.
    ``progress``: a bar over the four stages (``auto``, ``on``, ``off``)."""
    with make_progress(4, "recalibrating", progress_enabled(progress), leave=True) as bar:
        bar.set_postfix_str("logits of validation and test")
        val_logits, val_fused, val_labels = collect_logits(model, dataset.val, device)
        test_logits, test_fused, test_labels = collect_logits(model, dataset.test, device)
        val_shared, test_shared = shared_bias(val_logits, val_fused), shared_bias(test_logits, test_fused)
        bar.update(1)
        bar.set_postfix_str("one temperature per modality")
        calibration = fit_recalibration(val_logits, val_labels, per_class=False, shared=val_shared)
        bar.update(1)
        bar.set_postfix_str("per-class modality weights")
        weighted = fit_recalibration(val_logits, val_labels, per_class=True, shared=val_shared)
        bar.update(1)
        bar.set_postfix_str("test scores")
        num_classes = test_fused.shape[1]
        report = {
            "fitted_on": "val",
            "calibration": calibration.to_dict(),
            "capability_weights": weighted.to_dict(),
            "test": {"plain": logit_scores(test_fused, test_labels),
                     "calibrated": logit_scores(calibration.apply(test_logits, test_shared), test_labels),
                     "capability_weighted": logit_scores(weighted.apply(test_logits, test_shared), test_labels)},
            "test_branch_per_class_acc": {
                m: classification_scores(test_logits[m].argmax(dim=1), test_labels, num_classes)["per_class_acc"]
                for m in test_logits},
        }
        bar.update(1)
    return report
