"""Figures the chapters share (matplotlib only)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .readouts import mean_std, per_epoch


def plot_over_epochs(ax, runs: list[dict], keys: tuple, label: str, **style):
    """Mean over seeds of a per-epoch history entry, with a ±1 std band."""
    curves = [per_epoch(run, *keys) for run in runs]
    epochs = [record["epoch"] + 1 for record in runs[0]["history"]]
    stats = [mean_std(column) for column in zip(*curves)]
    mean = [m for m, _ in stats]
    std = [s for _, s in stats]
    line, = ax.plot(epochs, mean, label=label, **style)
    ax.fill_between(epochs, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                    color=line.get_color(), alpha=0.2)
    ax.set_xlabel("epoch")
    return line


def show_synthav_classes(dataset, split: str = "train", title: str | None = None):
    """One clip per class: its spectrogram (top row) and its first frame (bottom row)."""
    data = dataset.split(split)
    classes = dataset.num_classes
    fig, axes = plt.subplots(2, classes, figsize=(1.6 * classes, 3.4))
    for c in range(classes):
        index = int(torch.nonzero(data.label == c)[0])
        axes[0, c].imshow(data.audio[index, 0], origin="lower", cmap="magma", aspect="auto")
        frame = data.visual[index, 0].permute(1, 2, 0)
        frame = (frame - frame.min()) / (frame.max() - frame.min() + 1e-8)
        axes[1, c].imshow(frame)
        axes[0, c].set_title(dataset.class_names[c], fontsize=9)
        for ax in axes[:, c]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("audio\n(freq x time)")
    axes[1, 0].set_ylabel("visual\n(frame 1)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_weight_heatmap(blocks: dict, ax, class_names=None, title: str | None = None):
    """|W| of a decision layer as a class x feature heatmap, modalities side by side, with the
    boundary between them marked (Chapter 5; decision-layer paper, Fig. 1-2)."""
    matrix = torch.cat([w.abs() for w in blocks.values()], dim=1).numpy()
    image = ax.imshow(matrix, aspect="auto", cmap="viridis", interpolation="nearest")
    start = 0
    for m, w in blocks.items():
        ax.text(start + w.shape[1] / 2, -0.7, m, ha="center", va="bottom", fontsize=9)
        start += w.shape[1]
        if start < matrix.shape[1]:
            ax.axvline(start - 0.5, color="white", linewidth=2)
    ax.set_xlabel("feature dimension")
    ax.set_yticks(range(matrix.shape[0]), class_names or [str(c) for c in range(matrix.shape[0])])
    if title:
        ax.set_title(title, fontsize=10, pad=22)
    return image


def plot_weight_distributions(blocks: dict, ax, bins: int = 50):
    """Histogram of each modality's decision-layer weights (decision-layer paper, Fig. 3)."""
    for m, w in blocks.items():
        ax.hist(w.flatten().numpy(), bins=bins, alpha=0.5, density=True, label=f"{m} (mean |w| {float(w.abs().mean()):.3f})")
    ax.set_xlabel("weight")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)


def plot_per_class_capability(summary: dict, ax, class_names=None, accuracy_label: str = "branch accuracy"):
    """Per-class accuracy (bars) and per-class weight L1 (lines, right axis) for each modality
    (decision-layer paper, Fig. 4). ``summary`` is ``analysis.decision.decision_summary``'s result,
    or any ``{m: {"per_class_acc": [...], "per_class_l1": [...]}}`` (e.g. unimodal models' accuracy)."""
    modalities = list(summary)
    classes = len(summary[modalities[0]]["per_class_acc"])
    width = 0.8 / len(modalities)
    right = ax.twinx()
    for i, m in enumerate(modalities):
        accuracy = [a if a is not None else 0.0 for a in summary[m]["per_class_acc"]]
        positions = [c + (i - (len(modalities) - 1) / 2) * width for c in range(classes)]
        bars = ax.bar(positions, accuracy, width=width, alpha=0.6, label=f"{m} {accuracy_label}")
        right.plot(range(classes), summary[m]["per_class_l1"], "o-", color=bars.patches[0].get_facecolor()[:3],
                   label=f"{m} weight L1")
    ax.set_xticks(range(classes), class_names or [str(c) for c in range(classes)])
    ax.set_ylabel(accuracy_label)
    right.set_ylabel("mean |w| of the class row")
    ax.legend(loc="upper left", fontsize=8)
    right.legend(loc="upper right", fontsize=8)
    return right
