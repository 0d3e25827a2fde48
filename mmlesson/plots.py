"""Figures the chapters share (matplotlib only)."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Arc, FancyBboxPatch, Patch
import numpy as np
import torch

from .readouts import mean_std, per_epoch
from .stats import paired_values

# The book's figures are read on a page about 960 px wide (the rendered book at 1280 px): at FIGURE_DPI a
# figure up to about 9.5 in wide is shown at its own size, so that text of MIN_FONT_PT points is at least the
# body text's small print (tests/test_rendered_book.py measures it). No figure in the book sets a smaller font
# size (tests/test_plots.py checks the sources).
FIGURE_DPI = 100
MIN_FONT_PT = 9
BOOK_STYLE = {"figure.dpi": FIGURE_DPI, "savefig.dpi": "figure", "font.size": 10, "axes.titlesize": 10,
              "axes.labelsize": 10, "xtick.labelsize": MIN_FONT_PT, "ytick.labelsize": MIN_FONT_PT,
              "legend.fontsize": MIN_FONT_PT, "legend.title_fontsize": MIN_FONT_PT, "figure.titlesize": 11}


def use_book_style() -> None:
    """Set matplotlib's sizes for the book's pages (``BOOK_STYLE``)."""
    plt.rcParams.update(BOOK_STYLE)


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
    ax.set_ylabel("class")
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
    ax.legend(fontsize=9)


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
    ax.legend(loc="upper left", fontsize=9)
    right.legend(loc="upper right", fontsize=9)
    return right


FORWARD_COLOR, GRADIENT_COLOR = "black", "tab:red"
ENCODER_FACE, TRAINED_FACE, FROZEN_FACE = "#dbe9f6", "#fde9d2", "#dde3ee"
AUDIO_COLOR, VISUAL_COLOR, SECONDARY_COLOR = "tab:blue", "tab:green", "tab:purple"


def _box(ax, x, y, text, width=1.6, height=0.8, face="white", edge="black", linewidth=1.2, fontsize=9):
    """A rounded box centred on ``(x, y)`` (data units) with ``text`` in it."""
    box = FancyBboxPatch((x - width / 2, y - height / 2), width, height, facecolor=face, edgecolor=edge,
                         boxstyle="round,pad=0,rounding_size=0.15", linewidth=linewidth)
    ax.add_patch(box)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return box


def _arrow(ax, *points, color=FORWARD_COLOR, dashed=False, label=None, label_at=None, fontsize=9):
    """A polyline through ``points`` with a head at the last one, solid or dashed, optionally labelled."""
    xs, ys = zip(*points)
    ax.plot(xs, ys, color=color, linewidth=1.3, linestyle="--" if dashed else "-",
            solid_capstyle="butt", dash_capstyle="butt")
    ax.annotate("", xy=points[-1], xytext=points[-2], arrowprops=dict(arrowstyle="-|>", color=color, linewidth=0,
                                                                       mutation_scale=14, shrinkA=0, shrinkB=0))
    if label:
        ax.text(*label_at, label, color=color, ha="center", va="center", fontsize=fontsize)


def _diagram_axes(ax, width, height, figsize=None):
    """``ax`` (or a new figure's only axes) set up as a ``width`` x ``height`` canvas without ticks."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    return ax


def draw_concat_fusion(ax=None):
    """Concatenation fusion and its gradient (Chapter 1): the forward pass in black, and the one residual
    ``p - e_y`` flowing back to both encoders, through ``W_a^T`` and ``W_v^T``, in red dashes."""
    ax = _diagram_axes(ax, 16, 8.9, figsize=(9, 5))
    mid = 4.2  # height of the fused logits; audio above, visual below
    for m, name, y in (("a", "audio", 6.3), ("v", "visual", 2.1)):
        s = 1 if y > mid else -1  # the side of the row its gradient runs on: audio above, visual below
        _box(ax, 1.0, y, f"{name}\n$x_{m}$", width=1.4, height=1.0)
        _box(ax, 3.6, y, f"{name} encoder\nResNet-18, $\\theta_{m}$", width=2.4, height=1.0, face=ENCODER_FACE)
        _box(ax, 6.0, y, f"$z_{m}$", width=0.9)
        _box(ax, 8.0, y, f"$W_{m} z_{m}$", width=1.4, face=TRAINED_FACE)
        _arrow(ax, (1.7, y), (2.4, y))
        _arrow(ax, (4.8, y), (5.55, y))
        _arrow(ax, (6.45, y), (7.3, y))
        _arrow(ax, (8.7, y), (9.6, mid + 0.3 * s))
        lane = y + 1.25 * s
        back = dict(color=GRADIENT_COLOR, dashed=True)
        _arrow(ax, (10.3, mid + 0.6 * s), (10.3, lane), (6.15, lane), (6.15, y + 0.4 * s), **back,
               label=f"$W_{m}^\\top (p - e_y)$", label_at=(8.3, lane + 0.3 * s))
        _arrow(ax, (5.85, y + 0.4 * s), (5.85, lane), (3.6, lane), (3.6, y + 0.5 * s), **back,
               label=f"$(\\partial z_{m} / \\partial \\theta_{m})^\\top W_{m}^\\top (p - e_y)$",
               label_at=(4.3, lane + 0.3 * s))
    ax.add_patch(plt.Rectangle((6.95, 1.45), 2.1, 5.5, fill=False, linestyle=":", edgecolor="grey"))
    ax.text(8.0, mid, "linear layer\n$W = [W_a,\\ W_v]$,\nbias $b$", ha="center", va="center", fontsize=9,
            color="dimgrey")
    _box(ax, 10.7, mid, "$f = W_a z_a$\n$+\\ W_v z_v + b$", width=2.1, height=1.2, face=TRAINED_FACE)
    _box(ax, 12.9, mid, "softmax\n$p$", width=1.3, height=1.0)
    _box(ax, 14.95, mid, "loss\n$-\\log p_y$", width=1.5, height=1.0)
    _box(ax, 14.95, 6.3, "label $y$", width=1.3, height=0.7)
    _arrow(ax, (11.75, mid), (12.25, mid))
    _arrow(ax, (13.55, mid), (14.2, mid))
    _arrow(ax, (14.95, 5.95), (14.95, mid + 0.5))
    _arrow(ax, (14.95, mid - 0.5), (14.95, mid - 1.0), (11.3, mid - 1.0), (11.3, mid - 0.6), color=GRADIENT_COLOR,
           dashed=True, label="$\\partial L / \\partial f = p - e_y$", label_at=(13.1, mid - 1.3))
    ax.text(8, 8.55, "one residual $p - e_y$ reaches both encoders, each through its own block $W_m^\\top$",
            ha="center", va="center", fontsize=10)
    ax.legend(handles=[Line2D([], [], color=FORWARD_COLOR, label="forward pass"),
                       Line2D([], [], color=GRADIENT_COLOR, linestyle="--", label="gradient (backward pass)")],
              loc="lower right", fontsize=9, frameon=False)
    return ax.figure


def _lock(ax, x, y, size=0.45):
    """A padlock drawn at ``(x, y)``, the centre of its body."""
    ax.add_patch(plt.Rectangle((x - size / 2, y - size / 2), size, size * 0.8, facecolor="dimgrey"))
    ax.add_patch(Arc((x, y + size * 0.3), size * 0.65, size * 1.0, theta1=0, theta2=180, color="dimgrey",
                     linewidth=2))


def _draw_ccat_stage1(ax):
    """Encoders -> cross-attention -> classifier, all trained on ``L_cls + lambda L_reg``."""
    ax.set_title("Stage 1: classifier pre-training\n(everything trained jointly)", fontsize=10)
    for m, name, y in (("a", "audio", 7.4), ("v", "visual", 3.2)):
        s = 1 if y > 5.3 else -1
        _box(ax, 0.8, y, f"{name}\n$x_{m}$", width=1.3, height=1.0)
        _box(ax, 3.0, y, f"{name}\nencoder $\\theta_{m}$", width=2.0, height=1.0, face=TRAINED_FACE)
        _arrow(ax, (1.45, y), (2.0, y))
        _arrow(ax, (4.0, y), (4.5, 5.3 + 0.6 * s))
        ax.text(4.15, 6.3 if s > 0 else 4.3, "tokens", ha="right", va="center", fontsize=9)
    _box(ax, 5.6, 5.3, "bi-directional\ncross-\nattention", width=2.3, height=2.4, face=TRAINED_FACE)
    _box(ax, 8.7, 5.3, "classifier\nCls", width=1.5, height=1.2, face=TRAINED_FACE)
    _arrow(ax, (6.75, 5.3), (7.95, 5.3), label="$f$", label_at=(7.35, 5.65))
    _box(ax, 5.0, 0.9, "$\\mathcal{L}_{cls} + \\lambda\\, \\mathcal{L}_{reg}$\n"
                       "$\\mathcal{L}_{reg} = |c_a - c_v|$: equal contributions", width=9.4, height=1.4)
    _arrow(ax, (8.7, 4.7), (8.7, 1.6), label="$\\mathcal{L}_{cls}$", label_at=(9.35, 3.2))
    _arrow(ax, (5.6, 4.1), (5.6, 1.6), dashed=True, color="dimgrey",
           label="$c_m$: share of\n$z_m$ in $f$", label_at=(6.85, 2.9), fontsize=9)


def _draw_ccat_stage2(ax):
    """Per batch: the audio step, the visual step (each through its LoRA onto the frozen classifier), Sec."""
    ax.set_title("Stage 2: alternating training\n(classifier frozen, one modality per step)", fontsize=10)
    rows = (("a", "audio", 7.6, AUDIO_COLOR, 1), ("v", "visual", 3.0, VISUAL_COLOR, 2))
    mid = 5.3  # height of the shared classifier
    for m, name, y, color, step in rows:
        s = 1 if y > mid else -1
        _box(ax, 0.75, y, f"{name}\n$x_{m}$", width=1.3, height=1.0)
        _box(ax, 2.75, y, f"{name}\nencoder $\\theta_{m}$", width=2.0, height=1.0, face=TRAINED_FACE)
        _box(ax, 4.45, y, f"$z_{m}$", width=0.8)
        _box(ax, 6.3, y, f"LoRA$_{m}$\nrank $r$", width=1.6, height=1.0, face=TRAINED_FACE)
        ax.add_patch(plt.Circle((8.0, y), 0.3, facecolor="white", edgecolor="black"))
        ax.text(8.0, y, "+", ha="center", va="center", fontsize=11)
        _box(ax, 10.35, y, f"step {step}: {name}\nCE, update\n$\\theta_{m}$ and LoRA$_{m}$", width=2.9, height=1.4,
             edge=color, linewidth=2)
        _arrow(ax, (1.4, y), (1.75, y), color=color)
        _arrow(ax, (3.75, y), (4.05, y), color=color)
        _arrow(ax, (4.85, y), (5.5, y), color=color)
        _arrow(ax, (7.1, y), (7.7, y), color=color)
        _arrow(ax, (4.45, y - 0.4 * s), (5.3, mid + 0.5 * s), color=color)
        _arrow(ax, (7.3, mid + 0.5 * s), (8.0, y - 0.3 * s), color=color,
               label=f"Cls$(z_{m})$", label_at=(8.25, mid + 1.1 * s), fontsize=9)
        _arrow(ax, (8.3, y), (8.9, y), color=color)
        _arrow(ax, (10.35, y - 0.7 * s), (10.35, mid + 0.75 * s), color="dimgrey")
    _box(ax, 6.3, mid, "", width=2.6, height=1.0, face=FROZEN_FACE)
    _lock(ax, 5.4, mid - 0.05, size=0.4)
    ax.text(6.65, mid, "classifier\nCls, frozen", ha="center", va="center", fontsize=9)
    _box(ax, 10.35, mid, "mean of the logits\n$\\to$ contributions\n$c_a$, $c_v$", width=2.9, height=1.5)
    _box(ax, 6.0, 0.9, "step 3, Sec: samples with $c_m < \\beta$ get one more\nstep on modality $m$ "
                       "($\\theta_m$ and LoRA$_m$)", width=8.6, height=1.2, edge=SECONDARY_COLOR, linewidth=2)
    _arrow(ax, (11.8, mid), (12.1, mid), (12.1, 0.9), (10.3, 0.9), color=SECONDARY_COLOR)


def draw_ccat_pipeline():
    """CCAT's two stages side by side (Chapter 4): stage 1 trains encoders, cross-attention and classifier
    on ``L_cls + lambda L_reg``; stage 2 freezes the classifier and trains one modality at a time through
    its own LoRA, with secondary steps on the samples whose contribution is below ``beta``."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 4.4), gridspec_kw=dict(width_ratios=[10, 12.5]))
    _draw_ccat_stage1(_diagram_axes(left, 10, 8.3))
    _draw_ccat_stage2(_diagram_axes(right, 12.5, 8.3))
    fig.legend(handles=[Patch(facecolor=TRAINED_FACE, edgecolor="black", label="trained"),
                        Patch(facecolor=FROZEN_FACE, edgecolor="black", label="frozen"),
                        Line2D([], [], color=AUDIO_COLOR, label="audio step"),
                        Line2D([], [], color=VISUAL_COLOR, label="visual step"),
                        Line2D([], [], color=SECONDARY_COLOR, label="secondary update (Sec)")],
               loc="lower center", ncol=5, fontsize=9, frameon=False)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.09, top=0.88, wspace=0.06)
    return fig


def plot_paired_differences(ax, differences: dict, comparisons: dict, title: str = "", wrap: int = 44):
    """A strip plot of paired differences, one row per claim: its seeds' differences (``differences[claim]``) as
    points, the mean with the 95% interval of ``comparisons[claim]`` (a ``stats.Comparison``) as a bar, and its
    smallest effect of interest shaded around zero. Long claims are wrapped at ``wrap`` characters."""

    jitter = np.random.default_rng(0)
    ax.axvline(0.0, color="0.4", linewidth=0.8, zorder=1)
    for y, (claim, values) in enumerate(differences.items()):
        c = comparisons[claim]
        ax.fill_betweenx([y - 0.4, y + 0.4], -c.sesoi, c.sesoi, color="0.85", zorder=0,
                         label="smallest effect of interest" if y == 0 else None)
        values = np.asarray(values, dtype=float)
        ax.scatter(values, y + jitter.uniform(-0.15, 0.15, len(values)), s=12, alpha=0.6, color="C0", zorder=2,
                   label="one seed" if y == 0 else None)
        ax.errorbar(c.mean, y - 0.3, xerr=[[c.mean - c.ci_low], [c.ci_high - c.mean]], fmt="o", color="black",
                    capsize=3, zorder=3, label="mean, 95% interval" if y == 0 else None)
    ax.set_yticks(range(len(differences)), ["\n".join(textwrap.wrap(str(claim), wrap)) for claim in differences])
    ax.set_ylim(len(differences) - 0.5, -0.5)  # the first claim on top (idempotent on shared axes)
    ax.set_xlabel("paired difference (treatment minus control, per seed)")
    if title:
        ax.set_title(title)


def show_paired_differences(comparisons: list, values: list[tuple], title: str = ""):
    """One strip plot of a judged family: ``comparisons`` (``stats.Comparison``) beside the ``(treatment,
    control)`` per-seed values each was computed from; nothing where a claim has fewer than two seeds."""
    if not comparisons or min(c.n for c in comparisons) < 2:
        return
    differences = {}
    for c, (treatment, control) in zip(comparisons, values):
        treatment, control = paired_values(treatment, control)
        differences[c.claim] = treatment - control
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(differences) + 1.2))
    plot_paired_differences(ax, differences, {c.claim: c for c in comparisons}, title)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    plt.show()


def plot_intervals_map(ax, points: dict, xlabel: str, ylabel: str, title: str = "", highlight=(), x_reference=0.0):
    """Methods as points with their intervals in two directions: ``points[label] = (x, (x_low, x_high) or None,
    y, (y_low, y_high))`` (e.g. a remedy's weak-branch rescue against its fused gain, each paired against one
    control with its 95% interval); a line at y = 0 and at ``x_reference``. Each label keeps one colour and
    marker by its place in ``points`` (so that figures drawn from the same labels match) and is named in a
    legend beside the axes; ``highlight`` is drawn in black."""
    ax.axhline(0.0, color="0.4", linewidth=0.8, zorder=1)
    ax.axvline(x_reference, color="0.4", linewidth=0.8, zorder=1)
    colours, markers = plt.get_cmap("tab10").colors, ("o", "s", "^", "D")
    for index, (label, (x, x_interval, y, y_interval)) in enumerate(points.items()):
        colour = "black" if label in highlight else colours[index % 10]
        xerr = None if x_interval is None else [[x - x_interval[0]], [x_interval[1] - x]]
        ax.errorbar(x, y, xerr=xerr, yerr=[[y - y_interval[0]], [y_interval[1] - y]], fmt=markers[index // 10 % 4],
                    color=colour, capsize=2, markersize=5, linewidth=0.8, zorder=2, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    if title:
        ax.set_title(title)
