"""Linear probes on frozen features: how much class information an encoder holds, whatever the
decision layer does with it (Chapter 1, "is the encoder weak, or the decision layer?")."""
from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def extract_features(model, split, device, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Encoder outputs of every sample of ``split`` in order: ``{modality: [N,D]}`` on the CPU."""
    model.eval()
    chunks = {m: [] for m in model.modalities}
    for batch in split.batches(batch_size, device=device):
        for m, f in model.encode(batch).items():
            chunks[m].append(f.float().cpu())
    return {m: torch.cat(c) for m, c in chunks.items()}


def fit_linear_probe(features: torch.Tensor, labels: torch.Tensor, num_classes: int,
                     weight_decay: float = 1e-3, max_iter: int = 200):
    """Multinomial logistic regression on standardised features by full-batch L-BFGS in float64.
    The problem is strictly convex, so the fit is deterministic and independent of initialisation.
    Returns a function mapping features to class scores."""
    x = features.double()
    mean, std = x.mean(dim=0), x.std(dim=0).clamp(min=1e-6)
    x = (x - mean) / std
    weight = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, labels) + 0.5 * weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    weight, bias = weight.detach(), bias.detach()
    return lambda new: ((new.double() - mean) / std) @ weight + bias


def probe_accuracy(train_features: dict, train_labels: torch.Tensor, test_features: dict,
                   test_labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """For each modality: fit a probe on the training features, return its test accuracy."""
    accuracy = {}
    for m in train_features:
        probe = fit_linear_probe(train_features[m], train_labels.cpu(), num_classes)
        predictions = probe(test_features[m]).argmax(dim=1)
        accuracy[m] = float((predictions == test_labels.cpu()).double().mean())
    return accuracy
