"""CCAT: classifier-constrained alternating training (Chapter 4; the CCAT paper, Sec. 3.2-3.3,
Alg. 1, App. A.1). Two stages (``mmlesson.methods.base``):

1. **Classifier pre-training** (``classifier_epochs``): encoders, bi-directional cross-attention and
   the shared classifier trained together on ``L_cls + lambda L_reg`` (Eq. 8), where ``L_reg`` is the
   mean gap between the two modalities' per-sample contributions (Eq. 5-7,
   ``analysis.contributions``: each modality's pooled features against the fused representation).
2. **Alternating training** (the remaining epochs, Alg. 1): the classifier frozen (Fix), one LoRA
   per modality on it (Eq. 9-10, zero-initialised: it starts as the frozen classifier). Per batch,
   modality by modality (Alt): that modality's encoder and LoRA, ``CE(Cls(z_m) + LoRA_m(z_m))`` (Eq. 11),
   one optimiser step on only those parameters. Then (Sec) per-sample contributions on the
   decision-level fusion of the updated unimodal predictions, and for each modality one more step
   on the samples whose contribution is below ``beta`` (Eq. 12). Inference: the decision-level fusion
   of the unimodal predictions.

What the paper leaves open, and what we chose (each an option where that is reasonable):

* The MI expectation (Eq. 5) is taken over the mini-batch, each sample keeping its own term
  (``analysis/contributions.py``). In stage 2, "contributions on the decision-level fusion" compares
  each modality's logits with the fused logits (the only representations that fusion has).
* ``Cls(z) + LoRA(z)`` adds class logits, so ``LoRA_m`` maps features to logits: ``s B A z`` with
  ``B`` ``C x r`` and ``A`` ``r x D``, ``s = alpha / r`` (``models/ccat.py``).
* Fusion at inference: ``inference="mean"`` (the mean of the unimodal logits, default) or ``entropy``
  (MLA's per-sample gating); the secondary updates read the same fusion.
* Stage lengths: ``classifier_epochs`` of the run's ``epochs`` (the paper gives only the total, 150); the
  run's decay milestones stay on the run's epoch axis; each stage starts a fresh SGD with the run's
  settings (the paper names one optimiser for everything).
* Encoders enter stage 2 as stage 1 left them; Alg. 1's "initialize Enc_m" is offered as
  ``reinit_encoders``.
* The contribution pass of the secondary updates runs without gradients in training mode (batch-norm
  uses the batch's statistics, as the updates do); a modality with fewer than two samples under
  ``beta`` has no secondary step (batch-norm needs two).

Switches for Table 2's ablation: ``fix`` (freeze the classifier in stage 2), ``alternate`` (else one
joint step per batch on the cross-entropy of the decision-level fused prediction, which couples the
modalities through the fused softmax: with the classifier frozen, one step on the *sum* of the
unimodal losses would equal the two alternating steps exactly, since no trainable parameter is
shared), ``secondary``, ``lora``.

* A secondary step is a full step at the run's learning rate on the mean loss of the samples under
  ``beta`` (Eq. 12 averages over the subset), however few they are: a step on 2-4 samples is a very
  noisy one (Chapter 4's beta sweep shows what it does).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..analysis.contributions import contribution_gap, contributions
from ..errors import ConfigError
from ..models import ENCODERS
from ..models.ccat import RESIDUALS, CCATModel
from ..models.fusion import decision_level_fusion
from ..options import option
from .base import Method, Stage, accuracy


@dataclass(frozen=True)
class CCATOptions:
    classifier_epochs: int = option(4, "epochs of stage 1, classifier pre-training with cross-attention; the rest of "
                                       "--epochs is stage 2, alternating training", minimum=1)
    reg_weight: float = option(1e-3, "lambda of L_cls + lambda L_reg, the contribution-gap regulariser (Eq. 8)",
                               minimum=0.0)
    lora_rank: int = option(2, "rank r of each modality's LoRA on the frozen classifier (Eq. 9)", minimum=1)
    lora_alpha: float = option(1.0, "LoRA scaling alpha (the update is alpha / r B A)", above=0.0)
    beta: float = option(0.15, "secondary updates train modality m again on the samples whose contribution c_m is "
                               "below beta (Eq. 12)", minimum=0.0)
    attention_heads: int = option(4, "heads of each cross-attention direction (must divide the feature size)",
                                  minimum=1)
    bicross_residual: str = option("symmetric", "residual of the audio-to-visual direction: symmetric (its own "
                                                "queries, default) or printed (App. A.1 Eq. 19: the audio tokens)",
                                   choices=RESIDUALS)
    inference: str = option("mean", "decision-level fusion of the unimodal predictions: mean of the logits or "
                                    "entropy (per-sample gating)", choices=("mean", "entropy"))
    fix: bool = option(True, "freeze the classifier in stage 2 (Table 2: Fix)")
    alternate: bool = option(True, "update one modality at a time in stage 2 (Table 2: Alt; else one step on the "
                                   "fused prediction's loss)")
    secondary: bool = option(True, "secondary updates on the samples below beta (Table 2: Sec)")
    lora: bool = option(True, "one LoRA per modality on the classifier (Table 2: LoRA)")
    reinit_encoders: bool = option(False, "re-initialise the encoders when stage 2 begins (Alg. 1, line 4)")


def secondary_subsets(shares: dict[str, torch.Tensor], beta: float) -> dict[str, torch.Tensor]:
    """Eq. 12's subsets: for each modality the mask of samples whose contribution is below ``beta``."""
    return {m: c < beta for m, c in shares.items()}


def cross_entropy_step(optimizer, loss) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


class CCAT(Method):
    name = "ccat"
    Options = CCATOptions
    stage_lengths = ("classifier_epochs",)
    tiny_options = {"classifier_epochs": 1}  # leaves stage 2 epochs of a 3-epoch run

    def make_model(self, num_classes, modalities):
        if tuple(modalities) != ("audio", "visual"):
            raise ConfigError(f"CCAT trains two modalities, audio and visual; the data has {', '.join(modalities)}")
        config, options = self.config, self.options
        return CCATModel(num_classes, width=config.width, feature_scale=dict(zip(("audio", "visual"),
                                                                                 config.feature_scale)),
                         heads=options.attention_heads, residual=options.bicross_residual, rule=options.inference,
                         output_stride=config.output_stride)

    def stages(self):
        return [Stage("classifier pre-training", self.options.classifier_epochs),
                Stage("alternating", self.config.epochs - self.options.classifier_epochs)]

    def enter_stage(self, model, index):
        options = self.options
        model.decision_level = True
        if options.lora:
            model.add_lora(options.lora_rank, options.lora_alpha)
        for parameter in model.cross.parameters():  # no part of stage 2's predictions
            parameter.requires_grad_(False)
        for parameter in model.classifier.parameters():
            parameter.requires_grad_(not options.fix)
        if options.reinit_encoders:  # a fresh draw of the encoders' initialisation
            for m, encoder in model.encoders.items():
                encoder.load_state_dict(ENCODERS[m](width=self.config.width,
                                                             output_stride=self.config.output_stride).state_dict())

    def trainable(self, model, index):
        if index == 0:
            return list(model.parameters())
        return [p for p in model.parameters() if p.requires_grad]

    def training_step(self, model, batch, optimizer, state):
        if state.stage == 0:
            return self.pretraining_step(model, batch, optimizer, state)
        return self.alternating_step(model, batch, optimizer, state)

    def pretraining_step(self, model, batch, optimizer, state):
        """Stage 1: ``L_cls + lambda L_reg`` (Eq. 8) on the cross-attention prediction."""
        labels = batch["label"]
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            features, fused, logits = model.fused_representation(batch)
            loss_cls = F.cross_entropy(logits.float(), labels)
            shares = contributions(features, fused)
            loss_reg = contribution_gap(shares)
            loss = loss_cls + self.options.reg_weight * loss_reg
        loss.backward()
        optimizer.step()
        stats = {"loss": loss.item(), "loss_cls": loss_cls.item(), "loss_reg": loss_reg.item(),
                 "acc": accuracy(logits, labels)}
        stats.update({f"contribution/{m}": float(c.detach().mean()) for m, c in shares.items()})
        return stats

    def unimodal_loss(self, model, batch, modality, state, mask=None):
        """Eq. 11 (Eq. 12 with ``mask``): the cross-entropy of modality ``modality``'s prediction."""
        inputs, labels = batch[modality], batch["label"]
        if mask is not None:
            inputs, labels = inputs[mask], labels[mask]
        with state.autocast():
            features = model.encode_modality({modality: inputs}, modality)
            logits = model.unimodal_logits(features, modality)
            return F.cross_entropy(logits.float(), labels), logits

    def alternating_step(self, model, batch, optimizer, state):
        """Stage 2 (Alg. 1, lines 6-15)."""
        options, labels, stats = self.options, batch["label"], {}
        if options.alternate:
            total = 0.0
            for m in model.modalities:
                loss, logits = self.unimodal_loss(model, batch, m, state)
                total += cross_entropy_step(optimizer, loss)
                stats[f"loss_unimodal/{m}"] = loss.item()
                stats[f"branch_acc/{m}"] = accuracy(logits, labels)
        else:  # no alternation: one step on the fused prediction (Table 2, without Alt)
            branches = {m: self.unimodal_loss(model, batch, m, state)[1] for m in model.modalities}
            fused = decision_level_fusion(branches, options.inference)
            total = cross_entropy_step(optimizer, F.cross_entropy(fused.float(), labels))
            for m, logits in branches.items():
                stats[f"branch_acc/{m}"] = accuracy(logits, labels)
        with torch.no_grad():
            branches = {m: self.unimodal_loss(model, batch, m, state)[1].float() for m in model.modalities}
            shares = contributions(branches, decision_level_fusion(branches, options.inference))
        stats.update({f"contribution/{m}": float(c.detach().mean()) for m, c in shares.items()})
        for m, mask in secondary_subsets(shares, options.beta).items():
            selected = int(mask.sum())
            stats[f"secondary_fraction/{m}"] = selected / len(labels)
            if options.secondary and selected >= 2:
                loss, _ = self.unimodal_loss(model, batch, m, state, mask)
                total += cross_entropy_step(optimizer, loss)
                stats[f"loss_secondary/{m}"] = loss.item()
        stats["loss"] = total
        return stats
