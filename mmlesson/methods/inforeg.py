"""InfoReg: slow the information-sufficient modality down during its prime learning window.

Huang, Wei, Yang and Hu, "Adaptive Unimodal Regulation for Balanced Multimodal Information Acquisition",
CVPR 2025. The early epochs, in which a network acquires information fastest (the *prime learning window*),
tend to be taken over by the modality that learns most easily, which then crowds the other one out. InfoReg:

1. **Base loss**: the uniform multitask loss ``CE(f(x), y) + CE(u_a, y) + CE(u_v, y)`` (``multitask.py``), the
   unimodal logits ``u_m`` being the fused head's branch by default (as released; the release's branch is
   ``W_m z_m + b/2``, this package's ``W_m z_m + b``) or separate linear heads.
2. **Information trace.** The amount of information an encoder acquires in an epoch is measured by the trace
   of its Fisher information, estimated as in the release from the squared gradients of the base loss: per
   epoch, ``T_m = sum_steps sum_layers mean(g^2)`` over encoder m's convolution and linear weights.
3. **Window detector.** With the traces of the epochs so far (ten zeros before the first, as released),
   ``k_m = (mean of the last n traces - mean of the n before the last) / mean of the last n``, the relative
   growth of their n-epoch moving average (n = 10), and ``k = 1`` in the first epoch. Modality m is in its
   prime learning window while ``k_m`` exceeds the threshold (0.05).
4. **Regulation.** Each step, the modality whose unimodal prediction gives the larger batch score
   ``s_m = sum_i softmax(u_m(x_i))[y_i]`` is the information-sufficient one; if it is in its window, its
   encoder gets the proximal term ``(beta_m / 2) ||theta_m - theta_m,prev||^2`` towards its parameters at the
   start of the epoch, with ``beta_m = c_m exp(tanh(s_m - s_other))`` (no gradient through the scores). The
   other encoder, and both when the scores tie, are not regulated.

The release differs (the book's appendix on released code): its window detector reads the audio encoder's
trace only, whichever modality leads (``window_trace="audio"`` reproduces it; by default each modality's own
trace decides its own window, the symmetric form the paper describes); its strengths are hard-coded and
asymmetric, 0.95 when audio leads and 0.1 when visual leads (the default ``regulation_strength``; give two
equal values for one strength for both); its trace also squares the proximal term's gradient (here the base
loss's only); and it runs six backward passes per step, three of them only to log gradient statistics (here
one: the cost is about joint training's, plus a few parameter-sized operations per step and a copy of the
encoders per epoch). The traces, the current epoch's partial sums and the epoch-start parameters live in the
method's state, so a resumed run regulates identically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..models.fusion import MODALITIES
from ..options import option
from .base import Method, batch_accuracies, encoder_grad_norms
from .multitask import prepare_unimodal_heads, unimodal_heads_option, unimodal_logits

__all__ = ["InfoReg", "add_proximal_gradient", "information_trace", "regulation_strengths", "true_class_score",
           "window_growth"]



def window_growth(traces: list[float], average: int = 10) -> float:
    """``k``: the relative growth of the ``average``-epoch moving average of ``traces`` (one per finished
    epoch, oldest first, with ``average`` zeros before the first), ``(new - old) / new``; 1 before any epoch
    has finished, 0 when the newer average is 0 (no information acquired)."""
    if not traces:
        return 1.0
    padded = [0.0] * average + [float(t) for t in traces]
    newer = sum(padded[-average:]) / average
    older = sum(padded[-average - 1:-1]) / average
    return 0.0 if newer == 0.0 else (newer - older) / newer


def information_trace(encoder) -> float:
    """This step's contribution to the encoder's Fisher trace: ``sum over its convolution and linear weights
    of mean(g^2)`` of their current gradients (batch-norm parameters left out, as released)."""
    terms = [p.grad.float().pow(2).mean() for p in encoder.parameters() if p.dim() >= 2 and p.grad is not None]
    return float(torch.stack(terms).sum()) if terms else 0.0  # one device-to-host transfer


def true_class_score(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """``s = sum_i softmax(logits_i)[y_i]``: the batch sum of the probabilities of the true classes."""
    return float(F.softmax(logits.detach().float(), dim=1).gather(1, labels[:, None]).sum())


def regulation_strengths(scores: dict[str, float], in_window: dict[str, bool],
                         strength: dict[str, float]) -> dict[str, float]:
    """Each modality's proximal coefficient ``beta_m``: ``c_m exp(tanh(s_m - s_other))`` for the modality with
    the larger score, if it is in its prime learning window; 0 for the other one, and for both on a tie."""
    (first, s_first), (second, s_second) = scores.items()
    betas = {first: 0.0, second: 0.0}
    if s_first == s_second:
        return betas
    leader, gap = (first, s_first - s_second) if s_first > s_second else (second, s_second - s_first)
    if in_window[leader]:
        betas[leader] = strength[leader] * math.exp(math.tanh(gap))
    return betas


@torch.no_grad()
def add_proximal_gradient(encoder, previous: dict[str, torch.Tensor], beta: float) -> None:
    """In place: ``grad(theta) += beta (theta - theta_prev)``, the gradient of
    ``(beta / 2) ||theta - theta_prev||^2`` (frozen parameters left alone)."""
    if beta == 0.0:
        return
    for name, parameter in encoder.named_parameters():
        if not parameter.requires_grad:
            continue
        pull = beta * (parameter - previous[name])
        if parameter.grad is None:
            parameter.grad = pull
        else:
            parameter.grad.add_(pull)


@dataclass(frozen=True)
class InfoRegOptions:
    unimodal_heads: str = unimodal_heads_option("split", "as released (whose branch uses b/2), in the base loss")
    regulation_strength: tuple[float, float] = option(
        (0.95, 0.1), "c_audio and c_visual in beta_m = c_m exp(tanh(s_m - s_other)), used when that modality leads "
                     "(the release's asymmetric constants; the paper's form has one strength for both: give two "
                     "equal values)", minimum=0.0, nargs=2, metavar=("AUDIO", "VISUAL"))
    window_threshold: float = option(0.05, "a modality is in its prime learning window while the growth k of its "
                                           "information trace exceeds this (as released)")
    trace_average: int = option(10, "epochs in the moving average of the information trace whose growth k "
                                    "detects the window (as released)", minimum=1)
    window_trace: str = option("own", "whose information trace opens a modality's window: its own (own, the paper's "
                                      "symmetric form) or the audio encoder's for both (audio, as released)",
                               choices=("own", "audio"))


class InfoReg(Method):
    name = "inforeg"
    Options = InfoRegOptions
    epoch_options = ("trace_average",)

    def __init__(self, config, upstream: dict | None = None):
        super().__init__(config, upstream)
        self.traces: dict[str, list[float]] = {m: [] for m in MODALITIES}  # one per finished epoch
        self.trace_sums: dict[str, float] = {m: 0.0 for m in MODALITIES}  # the current epoch's, so far
        self.previous: dict[str, dict[str, torch.Tensor]] | None = None  # encoder parameters at the epoch's start
        self.in_window: dict[str, bool] = {m: True for m in MODALITIES}
        self.growth: dict[str, float] = {m: 1.0 for m in MODALITIES}

    def prepare_model(self, model):
        return prepare_unimodal_heads(model, self.options.unimodal_heads, "InfoReg")

    def on_epoch_start(self, model, train_split, state, validation_split=None) -> None:
        """Close the finished epochs' traces, decide each modality's window, and keep the encoders' parameters."""
        for m in MODALITIES:
            while len(self.traces[m]) < state.epoch:
                self.traces[m].append(self.trace_sums[m])
                self.trace_sums[m] = 0.0
        self.decide_windows()
        self.previous = {m: {name: p.detach().clone() for name, p in model.encoders[m].named_parameters()}
                         for m in MODALITIES}

    def decide_windows(self) -> None:
        """Each modality's window for the current epoch, from the traces of the finished ones."""
        cfg = self.options
        for m in MODALITIES:
            reader = m if cfg.window_trace == "own" else "audio"
            self.growth[m] = window_growth(self.traces[reader], cfg.trace_average)
            self.in_window[m] = self.growth[m] > cfg.window_threshold

    def state_dict(self) -> dict:
        return {"traces": {m: list(t) for m, t in self.traces.items()}, "trace_sums": dict(self.trace_sums),
                "previous": self.previous}

    def load_state_dict(self, state: dict, device) -> None:
        self.traces = {m: list(t) for m, t in state["traces"].items()}
        self.trace_sums = dict(state["trace_sums"])
        self.decide_windows()  # the current epoch's, as on_epoch_start decided them
        previous = state.get("previous")
        self.previous = None if previous is None else {
            m: {name: t.to(device) for name, t in tensors.items()} for m, tensors in previous.items()}

    def training_step(self, model, batch, optimizer, state):
        cfg = self.options
        if self.previous is None:
            raise RuntimeError("InfoReg keeps the encoders' parameters at each epoch's start: call on_epoch_start "
                               "before the epoch's first training_step")
        labels = batch["label"]
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            output = model(batch)
            fused_loss = F.cross_entropy(output.logits.float(), labels)
            unimodal = unimodal_logits(model, output, cfg.unimodal_heads)
            unimodal_losses = {m: F.cross_entropy(unimodal[m].float(), labels) for m in MODALITIES}
            loss = fused_loss + sum(unimodal_losses.values())
        loss.backward()
        step_traces = {m: information_trace(model.encoders[m]) for m in MODALITIES}  # the base loss's gradient only
        for m in MODALITIES:
            self.trace_sums[m] += step_traces[m]
        scores = {m: true_class_score(unimodal[m], labels) for m in MODALITIES}
        betas = regulation_strengths(scores, self.in_window, dict(zip(MODALITIES, cfg.regulation_strength)))
        for m in MODALITIES:
            add_proximal_gradient(model.encoders[m], self.previous[m], betas[m])
        proximal = sum((0.5 * betas[m] * self.distance(model, m) for m in MODALITIES if betas[m] > 0.0), 0.0)
        stats = {"loss": loss.item() + proximal, "loss_proximal": proximal, "loss_fused": fused_loss.item(),
                 **encoder_grad_norms(model), **batch_accuracies(output, labels)}
        for m in MODALITIES:
            stats[f"loss_unimodal/{m}"] = unimodal_losses[m].item()
            stats[f"score/{m}"] = scores[m] / len(labels)  # logged as the batch mean; beta reads the sum
            stats[f"beta/{m}"] = betas[m]
            stats[f"window/{m}"] = float(self.in_window[m])
            stats[f"window_growth/{m}"] = self.growth[m]
            stats[f"information_trace/{m}"] = step_traces[m]
        optimizer.step()
        return stats

    @torch.no_grad()
    def distance(self, model, modality: str) -> float:
        """``||theta_m - theta_m,prev||^2`` of encoder ``modality``."""
        return float(torch.stack([(p - self.previous[modality][name]).float().pow(2).sum()
                                  for name, p in model.encoders[modality].named_parameters()]).sum())
