"""Diagnosing & Re-learning (D&R): soft re-initialisation of each encoder by how well it has learnt.

Wei, Li, Feng and Hu, "Diagnosing and Re-learning for Balanced Multimodal Learning", ECCV 2024.
Training is joint training (the fused cross-entropy, ``joint.py``); every ``relearn_every`` epochs, at most
``relearn_times`` times, before the epoch's first step:

1. **Diagnosing.** Each encoder's features of every training clip and of every validation clip (evaluation
   mode, no augmentation), min-max scaled per feature to [-1, 1], are clustered by K-means into as many
   clusters as classes. The clustering's *purity* ``P = (1/N) sum_clusters max_k |cluster ∩ class k|`` says
   how separable the modality's representation is; ``P_train`` and ``P_val`` are measured apart.
2. **Strength.** The purity gap ``g_m = |P_train,m - P_val,m|`` gives ``alpha_m = tanh(lambda g_m)``: a
   modality whose training representation is far more separable than its held-out one has been learnt well
   (or over-fitted), and is re-initialised more; a worse-learnt one keeps more of what it has.
3. **Re-learning.** Every parameter of encoder m becomes the convex mix
   ``theta_m <- alpha_m theta_m,init + (1 - alpha_m) theta_m`` with its parameters at initialisation;
   batch-norm statistics, the fusion head and the optimiser's momentum are left as they are (as released).

The initial encoder parameters are copied when a fresh run is initialised and kept in the method's state,
so a resumed run re-learns towards the same point. K-means uses the run's seed as its random state, so a
diagnosis is deterministic. Defaults are the release's (``lambda`` 3, every 20 epochs, 3 times, for 90
epochs): in a run of 20 epochs or fewer nothing is ever re-learnt and D&R is joint training (a 16-epoch run
says so when it starts). Differences from the release, which the book's appendix on released code lists:
its diagnosis comes after the epoch of index 20, 40 and 60 (after 21, 41, 61 epochs; here after 20, 40,
60); its training features pass through the training loader's augmentation (here they do not, so the
diagnosis draws nothing from any random stream); it keeps the best epoch on the test split, and a benchmark
reimplementation measures the "validation" purity on test data, where this package only ever reads the
validation split.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..analysis.probe import extract_features
from ..errors import ConfigError
from ..options import option
from ..progress import warn
from .base import Method
from .joint import joint_step

__all__ = ["DiagnosingRelearning", "diagnose", "kmeans_clusters", "purity", "relearn_strength",
           "relearning_epochs", "soft_reinitialise"]


def purity(clusters, labels) -> float:
    """The purity of a clustering against the labels: each cluster counts the clips of its most frequent
    class, ``(1/N) sum_c max_k |{i : cluster_i = c, label_i = k}|``."""
    # here, not at the top: scikit-learn (with scipy) takes ~0.9 s to import, which every `mmlesson train`
    # would pay through the method registry; only a re-learning epoch needs it
    from sklearn.metrics.cluster import contingency_matrix

    clusters, labels = np.asarray(clusters).ravel(), np.asarray(labels).ravel()
    if len(clusters) != len(labels) or len(labels) == 0:
        raise ValueError(f"purity needs one cluster per label, got {len(clusters)} clusters and {len(labels)} labels")
    return int(contingency_matrix(labels, clusters).max(axis=0).sum()) / len(labels)  # classes x clusters


def relearn_strength(train_purity: float, val_purity: float, lam: float) -> float:
    """``alpha = tanh(lambda |P_train - P_val|)``: how far an encoder moves back towards its initialisation."""
    return math.tanh(lam * abs(train_purity - val_purity))


def kmeans_clusters(features: torch.Tensor, num_clusters: int, random_state: int) -> np.ndarray:
    """K-means cluster of each row of ``features`` [N, D], after scaling each feature to [-1, 1] (a constant
    feature becomes -1), with ``random_state`` fixing the initialisation (10 starts, the best kept)."""
    from sklearn.cluster import KMeans  # here, not at the top: as in ``purity``
    from sklearn.preprocessing import MinMaxScaler

    scaled = MinMaxScaler(feature_range=(-1, 1)).fit_transform(features.double().cpu().numpy())
    return KMeans(n_clusters=num_clusters, n_init=10, random_state=random_state).fit_predict(scaled)


def diagnose(model, train_split, validation_split, device, num_classes: int, lam: float,
             random_state: int) -> dict[str, dict[str, float]]:
    """Each modality's training and validation purity and its re-learning strength:
    ``{m: {"train": P_train, "val": P_val, "alpha": alpha}}``."""
    if len(validation_split) < num_classes:
        raise ConfigError(f"D&R clusters the validation split into {num_classes} clusters, one per class, and it has "
                          f"only {len(validation_split)} clips; use a larger validation split")
    features = {"train": extract_features(model, train_split, device),
                "val": extract_features(model, validation_split, device)}
    labels = {"train": train_split.label.cpu().numpy(), "val": validation_split.label.cpu().numpy()}
    result = {}
    for m in model.modalities:
        purities = {split: purity(kmeans_clusters(features[split][m], num_classes, random_state), labels[split])
                    for split in ("train", "val")}
        result[m] = {**purities, "alpha": relearn_strength(purities["train"], purities["val"], lam)}
    return result


@torch.no_grad()
def soft_reinitialise(encoder, initial: dict[str, torch.Tensor], alpha: float) -> None:
    """In place: every parameter of ``encoder`` becomes ``alpha theta_init + (1 - alpha) theta``."""
    for name, parameter in encoder.named_parameters():
        start = initial[name].to(parameter.device, parameter.dtype)
        parameter.copy_(alpha * start + (1.0 - alpha) * parameter)


def relearning_epochs(every: int, times: int, epochs: int) -> list[int]:
    """The epochs (from 0) before which D&R diagnoses and re-learns: ``every * j`` for j = 1..times, in the run."""
    return [every * j for j in range(1, times + 1) if every * j < epochs]


@dataclass(frozen=True)
class DiagnosingRelearningOptions:
    relearn_lambda: float = option(3.0, "lambda of the re-learning strength alpha_m = tanh(lambda |P_train,m - "
                                        "P_val,m|) (as released)", minimum=0.0)
    relearn_every: int = option(20, "diagnose and re-learn every this many epochs (as released; a run of this many "
                                    "epochs or fewer never re-learns)", minimum=1)
    relearn_times: int = option(3, "re-learn at most this many times (as released)", minimum=0)


class DiagnosingRelearning(Method):
    name = "diagnosing_relearning"
    Options = DiagnosingRelearningOptions
    epoch_options = ("relearn_every",)
    tiny_options = {"relearn_every": 2}  # a 3-epoch run re-learns once, before its last epoch

    def __init__(self, config, upstream: dict | None = None):
        super().__init__(config, upstream)
        self.initial: dict[str, dict[str, torch.Tensor]] | None = None  # {modality: {name: theta_init}}
        self.epoch_stats: dict[str, float] = {}

    def initialise(self, model) -> None:
        """A fresh run: keep a copy of each encoder's parameters at initialisation."""
        self.initial = {m: {name: p.detach().clone() for name, p in model.encoders[m].named_parameters()}
                        for m in model.modalities}

    def state_dict(self) -> dict:
        return {"initial": self.initial}

    def load_state_dict(self, state: dict, device) -> None:
        initial = state.get("initial")
        self.initial = None if initial is None else {
            m: {name: t.to(device) for name, t in tensors.items()} for m, tensors in initial.items()}

    def on_epoch_start(self, model, train_split, state, validation_split=None) -> None:
        cfg = self.options
        self.epoch_stats = {}
        planned = relearning_epochs(cfg.relearn_every, cfg.relearn_times, self.config.epochs)
        if state.epoch == 0 and not planned:
            warn(f"diagnosing_relearning re-learns every {cfg.relearn_every} epochs ({cfg.relearn_times} times) and "
                 f"this run has {self.config.epochs}: it never re-learns, and trains as joint training does; "
                 f"lower --relearn-every")
        if state.epoch not in planned:
            return
        if validation_split is None:
            raise ConfigError("diagnosing_relearning measures each encoder's purity on a validation split, and none "
                              "was given")
        if self.initial is None:
            raise RuntimeError("diagnosing_relearning has no initial parameters: initialise() was not called")
        was_training = model.training
        diagnosis = diagnose(model, train_split, validation_split, state.device, model.fusion_output_dim,
                             cfg.relearn_lambda, self.config.seed)
        for m, found in diagnosis.items():
            soft_reinitialise(model.encoders[m], self.initial[m], found["alpha"])
            self.epoch_stats.update({f"purity_train/{m}": found["train"], f"purity_val/{m}": found["val"],
                                     f"relearn_strength/{m}": found["alpha"]})
        model.train(was_training)

    def training_step(self, model, batch, optimizer, state):
        return {**joint_step(model, batch, optimizer, state), **self.epoch_stats}
