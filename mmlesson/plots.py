"""Figures the chapters share (matplotlib only)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .experiment import mean_std, per_epoch


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
