"""The additive-gradient identity of concatenation fusion (Chapter 1; Peng et al., CVPR 2022, Sec. 3).

With ``f(x) = W_a z_a + W_v z_v + b`` and the batch-mean cross-entropy ``L``, the gradient of ``L``
with respect to the fused logits of sample ``i`` is ``(softmax(f(x_i)) - e_{y_i}) / B``. Every
gradient that reaches modality ``m`` is that *shared* factor pushed through ``W_m``:

    dL/dz_m,i    = W_m^T (p_i - e_{y_i}) / B
    dL/dW_m      = sum_i (p_i - e_{y_i}) z_m,i^T / B
    dL/dtheta_m  = sum_i J_{theta_m}(z_m,i)^T W_m^T (p_i - e_{y_i}) / B

so once one modality drives ``p_i`` close to ``e_{y_i}``, the other modality's gradients vanish too.
``additive_gradient_check`` computes both sides on a real model and batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def fused_logit_gradient(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(softmax(f) - onehot(y)) / B``: the gradient of the batch-mean cross-entropy w.r.t. the logits."""
    probabilities = logits.softmax(dim=1)
    return (probabilities - F.one_hot(labels, logits.shape[1]).to(probabilities.dtype)) / logits.shape[0]


def additive_gradient_check(model, batch: dict) -> dict[str, dict[str, float]]:
    """Max |autograd - formula| per modality for the feature, decision-layer and encoder gradients.

    The model must use concat fusion. Both sides come from one forward pass in the model's current
    mode (train-mode batch norm included: the identity holds whatever the encoder computes)."""
    if not hasattr(model.fusion, "weight_blocks"):
        raise ValueError("the additive identity is stated for concat fusion; build the model with fusion='concat'")
    output = model(batch)
    labels = batch["label"]
    loss = F.cross_entropy(output.logits, labels)
    modalities = list(model.modalities)
    encoder_params = {m: [p for p in model.encoders[m].parameters() if p.requires_grad] for m in modalities}
    head_weight = model.fusion.head.weight
    inputs = [output.features[m] for m in modalities] + [head_weight]
    for m in modalities:
        inputs += encoder_params[m]
    autograd = torch.autograd.grad(loss, inputs, retain_graph=True)
    feature_autograd = dict(zip(modalities, autograd[:len(modalities)]))
    weight_autograd = dict(zip(modalities, torch.split(autograd[len(modalities)], model.fusion.feature_sizes, dim=1)))

    shared = fused_logit_gradient(output.logits.detach(), labels)  # the factor both modalities share
    blocks = {m: w.detach() for m, w in model.fusion.weight_blocks().items()}
    report = {"features": {}, "decision_layer": {}, "encoder": {}}
    offset = len(modalities) + 1
    for m in modalities:
        feature_formula = shared @ blocks[m]  # W_m^T (p - e_y) / B, one row per sample
        weight_formula = shared.T @ output.features[m].detach()
        encoder_formula = torch.autograd.grad(output.features[m], encoder_params[m], grad_outputs=feature_formula,
                                              retain_graph=True)
        encoder_autograd = autograd[offset:offset + len(encoder_params[m])]
        offset += len(encoder_params[m])
        report["features"][m] = float((feature_autograd[m] - feature_formula).abs().max())
        report["decision_layer"][m] = float((weight_autograd[m] - weight_formula).abs().max())
        report["encoder"][m] = max(float((a - f).abs().max()) for a, f in zip(encoder_autograd, encoder_formula))
    return report


def counterfactual_gradient_norms(model, batch: dict, modality: str) -> tuple[float, float]:
    """The gradient norm that reaches ``modality``'s encoder on ``batch`` under the fused residual
    (the loss joint training minimises) and under the residual of that modality's own branch
    ``W_m z_m + b`` (the loss it would minimise if it had to predict alone). Same model, same
    batch, same decision layer: only the shared residual differs (Chapter 1)."""
    output = model(batch)
    parameters = [p for p in model.encoders[modality].parameters() if p.requires_grad]
    norms = []
    for logits in (output.logits, output.logits_per_modality[modality]):
        grads = torch.autograd.grad(F.cross_entropy(logits, batch["label"]), parameters, retain_graph=True,
                                    allow_unused=True)
        norms.append(float(torch.nn.utils.get_total_norm([g for g in grads if g is not None])))
    return norms[0], norms[1]
