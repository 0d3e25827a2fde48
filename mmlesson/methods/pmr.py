"""PMR: prototypical modal rebalance, an extra prototype loss on the slow modality.

Fan, Xu, Wang, Wang and Guo, "PMR: Prototypical Modal Rebalance for Multimodal Learning", CVPR 2023.
Each modality gets a classifier with no parameters: the distances of its features to its class
prototypes. The modality that classifies worse that way is the slow one, and a prototypical
cross-entropy pulls its features toward its own class prototypes.

1. **Prototypes** (``on_epoch_start``, ``pmr_prototypes``). ``c^m_k`` = the mean encoder feature
   ``z^m`` of the class-k samples of a subset of the training split, with the model in evaluation
   mode and no gradient, then ``c <- (1 - mu) c_new + mu c_old`` (``prototype_momentum``; the
   first epoch has no ``c_old``). The subset, as released, is about ``prototype_fraction`` (10%) of
   the training split, taken in the order the training batches would come; here that order comes
   from a generator seeded by the run's seed and the epoch (the same subset when a run resumes, and
   the global random state untouched), and the subset is its first ``n`` samples, ``n`` the smallest
   number from ``ceil(fraction N)`` on that takes in every class of the split (the release divides
   by a zero count, a NaN prototype, when a class is missing from its subset). The prototypes are computed before each epoch, from
   the model as it enters the epoch (the release does it after each epoch and once before
   training: the same schedule). They are constants in the loss (no gradient through ``c``), and
   the method's state (``state_dict``).
2. **Prototype predictions.** ``d^m_ik = ||z^m_i - c^m_k||_2``, ``q^m_i = softmax_k(-d^m_ik)``.
3. **Imbalance ratio.** ``S^m = sum_i q^m_i[y_i]`` over the batch, ``rho = S^a / S^v``: audio is
   ahead when ``rho > 1`` and visual is the slow modality (and the reverse when ``rho < 1``; at
   ``rho = 1`` neither is).
4. **Loss**, inside the modulation window (epochs ``start..end`` inclusive):
   ``L = CE(fused, y) + beta CE(-d^slow, y)`` with ``beta = alpha`` (``pce_weighting="constant"``,
   as released) or ``beta = alpha min(rho' - 1, 1)`` with ``rho' = max(rho, 1 / rho)``
   (``"ratio"``: the coefficient grows with the imbalance, as the paper scales it). Outside the
   window, or at ``rho = 1``, it is joint training's loss.
5. **PER** (``per_weight``; the paper's prototype entropy regularisation, absent from the release,
   so off by default): in the first ``per_epochs`` epochs of the window the dominant modality's
   prototype-prediction entropy ``H(q^dominant)`` (batch mean) is maximised,
   ``L -= mu' g H``, with ``mu'`` = ``per_weight`` and ``g`` the same imbalance factor as ``beta / alpha``
   (1, or ``min(rho' - 1, 1)``): it slows the dominant modality's convergence early on.

The ratio is measured with prototypes, not with the fusion's branches, so the head's bias convention
(``W_m z_m + b`` or ``+ b / 2``) does not change PMR's decisions, and every fusion works. Cost: a
joint-training step plus a B x C distance matrix per modality, and one no-gradient pass over about
10% of the training split per epoch (about 1.1 times joint training).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..analysis.discrepancy import discrepancy_ratio
from ..errors import ConfigError
from ..models.fusion import MODALITIES, require_audio_and_visual
from ..options import option
from .base import Method, accuracy, batch_accuracies, encoder_grad_norms
from .joint import modality_ratios

__all__ = ["PMR", "pmr_coefficients", "pmr_prototypes", "prototype_distances", "prototype_ratio"]



def pmr_prototypes(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                   previous: torch.Tensor | None = None, momentum: float = 0.0) -> torch.Tensor:
    """Class prototypes [C, D]: the mean of ``features`` [N, D] over the samples of each class, then
    ``(1 - momentum) new + momentum previous`` when ``previous`` is given. A class without a sample
    keeps its ``previous`` prototype (zeros without one)."""
    prototypes = torch.zeros(num_classes, features.shape[1], dtype=features.dtype, device=features.device)
    for k in range(num_classes):
        members = features[labels == k]
        if len(members) > 0:
            prototypes[k] = members.mean(dim=0)
        elif previous is not None:
            prototypes[k] = previous[k]
    if previous is not None:
        prototypes = (1 - momentum) * prototypes + momentum * previous
    return prototypes


def prototype_distances(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """``d_ik = ||z_i - c_k||_2`` [B, C], computed from the differences (exact, and a zero distance has
    a zero gradient)."""
    return torch.cdist(features, prototypes, compute_mode="donot_use_mm_for_euclid_dist")


def prototype_ratio(distances: dict[str, torch.Tensor], labels: torch.Tensor) -> tuple[dict[str, float], float]:
    """``S^m = sum_i softmax(-d^m_i)[y_i]`` for each modality, and ``rho = S^a / S^v`` (0/0 = 1, x/0 = inf)."""
    scores = {m: float((-d.detach().double()).softmax(dim=1).gather(1, labels[:, None]).sum())
              for m, d in distances.items()}
    return scores, discrepancy_ratio(scores["audio"], scores["visual"])


def pmr_coefficients(rho: float, alpha: float, weighting: str = "constant") -> dict[str, float]:
    """The weight of each modality's prototypical cross-entropy: ``alpha g`` on the slow modality (visual
    when ``rho > 1``, audio when ``rho < 1``), 0 on the other, both 0 at ``rho = 1``; ``g`` = 1
    (``"constant"``) or ``min(max(rho, 1 / rho) - 1, 1)`` (``"ratio"``)."""
    return {m: alpha * g for m, g in imbalance_factors(rho, weighting).items()}


def imbalance_factors(rho: float, weighting: str) -> dict[str, float]:
    """``g`` on the slow modality, 0 on the other (``pmr_coefficients`` without alpha)."""
    if rho == 1.0:
        return {"audio": 0.0, "visual": 0.0}
    slow, imbalance = ("visual", rho) if rho > 1.0 else ("audio", 1.0 / rho if rho > 0 else math.inf)
    if weighting == "constant":
        factor = 1.0
    elif weighting == "ratio":
        factor = min(imbalance - 1.0, 1.0)
    else:
        raise ValueError(f"unknown PMR weighting {weighting!r}; choose one of: constant, ratio")
    return {m: factor if m == slow else 0.0 for m in MODALITIES}


def prediction_entropy(distances: torch.Tensor) -> torch.Tensor:
    """Batch mean of the entropy of ``softmax(-d)``: PER's quantity."""
    log_q = (-distances).log_softmax(dim=1)
    return -(log_q.exp() * log_q).sum(dim=1).mean()


def full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 when autocast made it half precision, else unchanged (float64 stays float64)."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def prefix_length(labels: torch.Tensor, wanted: int, classes: set) -> int | None:
    """The smallest ``n >= wanted`` such that ``labels[:n]`` holds every class of ``classes`` (None: not yet)."""
    if len(labels) < wanted:
        return None
    seen, n = set(labels[:wanted].tolist()), wanted
    while not classes <= seen:
        if n == len(labels):
            return None
        seen.add(int(labels[n]))
        n += 1
    return n


def subset_features(model, train_split, fraction: float, batch_size: int, generator: torch.Generator,
                    device) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every modality's features [n, D] and the labels [n] of the prototype subset: the first ``n`` samples
    of the shuffled order ``generator`` draws, ``n`` the smallest number from ``ceil(fraction N)`` on that
    takes in every class of the split (model in evaluation mode, no gradient: each sample's features are
    its own, whichever batch it is in)."""
    wanted = max(1, math.ceil(fraction * len(train_split) - 1e-9))
    classes = set(train_split.label.tolist())
    features, labels = {m: [] for m in MODALITIES}, []
    for batch in train_split.batches(batch_size, shuffle=True, generator=generator, device=device):
        for m, z in model.encode(batch).items():
            features[m].append(full_precision(z))
        labels.append(batch["label"])
        n = prefix_length(torch.cat(labels), wanted, classes)
        if n is not None:
            break
    labels = torch.cat(labels)
    n = len(labels) if n is None else n
    return {m: torch.cat(z)[:n] for m, z in features.items()}, labels[:n]


@dataclass(frozen=True)
class PMROptions:
    alpha: float = option(2.0, "PMR's weight alpha of the slow modality's prototypical cross-entropy (2.0 in the "
                               "authors' scripts for CREMA-D with concat fusion, 1.0 the script's own default)",
                          minimum=0.0)
    pce_weighting: str = option("constant", "PMR's weight of that loss: constant alpha (as released) or ratio, "
                                            "alpha min(rho - 1, 1) with rho >= 1 the imbalance ratio (as the paper "
                                            "scales it)",
                                choices=("constant", "ratio"))
    modulation_window: tuple[int, int] = option((0, 70), "first and last epoch (inclusive) of modulation",
                                                minimum=0, nargs=2, metavar=("START", "END"))
    prototype_momentum: float = option(0.0, "momentum mu of the prototypes, c <- (1 - mu) c_new + mu c_old (0 in the "
                                            "authors' scripts, 0.2 the script's own default)", minimum=0.0)
    prototype_fraction: float = option(0.1, "fraction of the training split averaged into the prototypes before "
                                            "each epoch (as released)", above=0.0)
    per_weight: float = option(0.0, "weight of the paper's prototype entropy regularisation of the dominant modality "
                                    "(0: off, as released, which has no such term)", minimum=0.0)
    per_epochs: int = option(10, "PER acts in the first this many epochs of the modulation window", minimum=0)

    def __post_init__(self):
        window = tuple(self.modulation_window)
        if len(window) == 2 and window[0] > window[1]:
            raise ConfigError(f"--modulation-window must be START END with START <= END, got {window!r}")
        if isinstance(self.prototype_momentum, (int, float)) and self.prototype_momentum > 1:
            raise ConfigError(f"--prototype-momentum must be between 0 and 1, got {self.prototype_momentum!r}")
        if isinstance(self.prototype_fraction, (int, float)) and self.prototype_fraction > 1:
            raise ConfigError(f"--prototype-fraction must be at most 1, got {self.prototype_fraction!r}")


class PMR(Method):
    name = "pmr"
    Options = PMROptions
    epoch_options = ("modulation_window", "per_epochs")

    def __init__(self, config, upstream: dict | None = None):
        super().__init__(config, upstream)
        self.prototypes: dict[str, torch.Tensor] | None = None  # {m: [C, D]}, set before each epoch
        self.prototype_samples = 0

    def prepare_model(self, model):
        require_audio_and_visual(model, "PMR")
        return model

    def state_dict(self) -> dict:
        return {"prototypes": self.prototypes, "prototype_samples": self.prototype_samples}

    def load_state_dict(self, state: dict, device) -> None:
        prototypes = state.get("prototypes")
        self.prototypes = None if prototypes is None else {m: c.to(device) for m, c in prototypes.items()}
        self.prototype_samples = int(state.get("prototype_samples", 0))

    def subset_generator(self, epoch: int) -> torch.Generator:
        """The prototype subset's order for ``epoch``: from the run's seed and the epoch, so a resumed run
        draws the same subset and the global random state is untouched."""
        return torch.Generator().manual_seed((self.config.seed + 1) * 1_000_003 + epoch)

    @torch.no_grad()
    def on_epoch_start(self, model, train_split, state, validation_split=None) -> None:
        cfg = self.options
        was_training = model.training
        model.eval()
        try:
            with state.autocast():
                features, labels = subset_features(model, train_split, cfg.prototype_fraction, self.config.batch_size,
                                                   self.subset_generator(state.epoch), state.device)
        finally:
            model.train(was_training)
        previous = self.prototypes or {}
        self.prototypes = {m: pmr_prototypes(features[m], labels, model.fusion_output_dim, previous.get(m),
                                             cfg.prototype_momentum) for m in MODALITIES}
        self.prototype_samples = len(labels)

    def training_step(self, model, batch, optimizer, state):
        if self.prototypes is None:
            raise RuntimeError("PMR computes its prototypes in on_epoch_start; call it before the first step")
        cfg, labels = self.options, batch["label"]
        start, end = cfg.modulation_window
        active = start <= state.epoch <= end
        optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            features = model.encode(batch)
            output = model.fuse(features)
            fused_loss = F.cross_entropy(full_precision(output.logits), labels)
        distances = {m: prototype_distances(full_precision(features[m]), self.prototypes[m]) for m in MODALITIES}
        prototype_losses = {m: F.cross_entropy(-d, labels) for m, d in distances.items()}
        scores, rho = prototype_ratio(distances, labels)
        factors = imbalance_factors(rho, cfg.pce_weighting) if active else {m: 0.0 for m in MODALITIES}
        loss = fused_loss
        for m in MODALITIES:
            if factors[m] > 0:  # m is the slow modality
                loss = loss + cfg.alpha * factors[m] * prototype_losses[m]
        per_weights = {m: 0.0 for m in MODALITIES}  # PER acts on the dominant modality, the one not slow
        if cfg.per_weight > 0 and active and state.epoch < start + cfg.per_epochs:
            for slow, dominant in (("audio", "visual"), ("visual", "audio")):
                if factors[slow] > 0:
                    per_weights[dominant] = cfg.per_weight * factors[slow]
                    loss = loss - per_weights[dominant] * prediction_entropy(distances[dominant])
        loss.backward()
        stats = {"loss": loss.item(), "loss_fused": fused_loss.item(), **encoder_grad_norms(model),
                 **batch_accuracies(output, labels), "ratio/prototype": rho, "modulated": float(active),
                 "prototype_samples": float(self.prototype_samples)}
        if len(output.logits_per_modality) == 2:
            stats.update(modality_ratios(output.logits_per_modality, labels))
        for m in MODALITIES:
            stats[f"coefficient/{m}"] = cfg.alpha * factors[m]
            stats[f"per_coefficient/{m}"] = per_weights[m]
            stats[f"loss_prototype/{m}"] = prototype_losses[m].item()
            stats[f"prototype_acc/{m}"] = accuracy(-distances[m], labels)
            stats[f"prototype_score/{m}"] = scores[m]
        optimizer.step()
        return stats
