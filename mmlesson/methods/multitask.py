"""The uniform multitask control: the fused cross-entropy plus each modality's own, at equal weights.

``L = CE(f(x), y) + CE(h_a(z_a), y) + CE(h_v(z_v), y)``. No remedy paper proposes it as a method, but it is
the base loss of InfoReg, the control MMPareto's release ships beside its method, and, through a bug in how
one benchmark collects gradients, the real content of that benchmark's "MMPareto" row (the book's appendix on
released code). Without it, a method that adds unimodal losses cannot be told apart from the losses themselves.

The unimodal heads ``h_m`` are, with ``unimodal_heads="separate"`` (as MMPareto's release does), a linear layer
per modality on its pooled features, trained beside the fused head; with ``"split"``, the fused head's own branch
``W_m z_m + b`` (``models/fusion.py``), so no parameter is added (ARL's unimodal losses, Chapter 3, are of this
kind). Methods that need separate unimodal heads (MMPareto, G-Blending, InfoReg) build them here too.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.fusion import require_branches, xavier_linear
from ..options import option
from .base import Method, batch_accuracies, encoder_grad_norms

UNIMODAL_HEADS = ("separate", "split")


def add_unimodal_heads(model) -> None:
    """Give ``model`` a linear classifier per modality on that modality's features, ``model.unimodal_heads``
    (initialised like the fused head; a structure change, so call it from ``prepare_model``)."""
    num_classes = model.fusion_output_dim
    model.unimodal_heads = nn.ModuleDict({m: xavier_linear(model.encoders[m].out_dim, num_classes)
                                          for m in model.modalities})


def unimodal_logits(model, output, heads: str) -> dict[str, torch.Tensor]:
    """Each modality's own logits: its separate head on its features, or the fused head's branch."""
    if heads == "separate":
        return {m: model.unimodal_heads[m](output.features[m]) for m in model.modalities}
    return dict(output.logits_per_modality)


def prepare_unimodal_heads(model, heads: str, method: str):
    """``prepare_model`` of a method with unimodal losses: separate heads added, or both branches required."""
    if heads == "separate":
        add_unimodal_heads(model)
    else:
        require_branches(model, method)
    return model


def unimodal_heads_option(default: str, source: str):
    """The ``unimodal_heads`` option of a method with unimodal losses, its default taken from ``source``."""
    return option(default, f"each modality's own classifier: a separate linear head on its features (separate) or the "
                           f"fused head's branch W_m z_m + b (split), the default {source}", choices=UNIMODAL_HEADS)


@dataclass(frozen=True)
class MultitaskOptions:
    unimodal_heads: str = unimodal_heads_option("separate", "as MMPareto's release")


class UniformMultitask(Method):
    name = "multitask"
    Options = MultitaskOptions

    def prepare_model(self, model):
        return prepare_unimodal_heads(model, self.options.unimodal_heads, "the uniform multitask control")

    def training_step(self, model, batch, optimizer, state):
        labels = batch["label"]
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            output = model(batch)
            fused_loss = F.cross_entropy(output.logits.float(), labels)
            unimodal = unimodal_logits(model, output, self.options.unimodal_heads)
            unimodal_losses = {m: F.cross_entropy(logits.float(), labels) for m, logits in unimodal.items()}
            loss = fused_loss + sum(unimodal_losses.values())
        loss.backward()
        stats = {"loss": loss.item(), "loss_fused": fused_loss.item(), **encoder_grad_norms(model),
                 **batch_accuracies(output, labels)}
        for m, value in unimodal_losses.items():
            stats[f"loss_unimodal/{m}"] = value.item()
        optimizer.step()
        return stats
