# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] tags=[]
# # 2. OGM-GE: slowing the dominant modality down
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mmlesson/mmlesson/blob/main/book/ch02_ogm_ge.ipynb)
# ![CPU: about 6 minutes](https://img.shields.io/badge/CPU%20(2%20cores)-~6%20min-blue)
#
# Chapter 1 measured how the easy modality takes the shared error signal away from the other. On-the-fly
# gradient modulation with generalisation enhancement (OGM-GE; Peng et al., CVPR 2022) measures, at
# every step, how much more confident one modality is than the other, shrinks the gradient of the
# one that is ahead, and adds noise to keep SGD's helpful randomness. This chapter derives the
# coefficient from the additive analysis, implements it exactly as the paper's equations and the
# released code define it (and says where the two differ), and tests it on SynthAV in three regimes:
# the severe one, where the easy modality is the *less* informative one and fits its training clips
# first (the case OGM-GE was built for); the mild control, where it is less informative but cannot
# fit them; and regime B, where the easy modality is also the better one and balancing has nothing
# to gain.


# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE; a list as -y "SEEDS: [0, 1, 2]"); setup checks each one.
# "synthav" (generated, no download) or a real data set the paper used: "cremad", "kinetics_sounds", "ave"
DATASET = "synthav"
# a real data set's cache, made by `mmlesson data prepare DATASET --raw RAW --root DIR`; None on synthav
DATA_DIR = None
# the evaluation seeds: distinct non-negative integers, e.g. [0, 1, 2] (a smoke run uses [0, 1])
SEEDS = list(range(10))
# "auto" (CUDA if available, else the CPU), "cpu", "cuda" or "cuda:N"
DEVICE = "auto"
# the run store, a directory (runs already in it are read back); None: $MMLESSON_RESULTS or results/
RESULTS_DIR = None
# True: a seconds-long run on two seeds and small data that exercises every cell; its numbers mean nothing
SMOKE = False

# %% tags=["remove-cell"]
import subprocess
import sys

if "google.colab" in sys.modules:  # in Colab, install the package first
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "mmlesson @ git+https://github.com/mmlesson/mmlesson@main"], check=True)

# %% tags=[]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from mmlesson.chapter import Chapter

chapter = Chapter.setup("ogm_ge", DATASET, SEEDS, DEVICE, RESULTS_DIR, DATA_DIR, SMOKE)
SEEDS, RATES, device = chapter.seeds, chapter.rates, chapter.device

# %% [markdown] tags=[]
# ## 2.1 From the shared residual to a discrepancy ratio
#
# In Chapter 1 the gradient reaching encoder $m$ was $\frac1B\sum_i (\partial z^m_i/\partial\theta^m)^\top
# (W^m)^\top (p_i - e_{y_i})$, and the residual $p_i - e_{y_i}$ shrinks as soon as *either* modality
# makes the fused prediction confident. OGM-GE does not change the loss; it changes how far each
# encoder moves. It first asks how confident each modality is on its own. With the decision layer
# applied to one modality at a time, the score of modality $m$ on a batch is
#
# $$ s^m = \sum_{i=1}^{B} \operatorname{softmax}\big(f^m(x_i)\big)_{y_i}, $$
#
# the summed probability it gives the true class (Peng et al., 2022, Eq. 8), and the discrepancy ratio
# of audio to visual is $\rho^a = s^a / s^v$, with $\rho^v = 1/\rho^a$ (Eq. 9). The modality whose ratio
# exceeds 1 is ahead; its encoder gradients are multiplied by
#
# $$ k = 1 - \tanh(\alpha\,\rho), \qquad \rho > 1, $$
#
# and the other modality keeps $k = 1$ (Eq. 10 as the released code and the BalanceBenchmark toolkit
# implement it). Because $\rho > 1$ whenever the rule applies, $k$ is never larger than
# $1 - \tanh(\alpha)$: the moment a modality gets ahead by any margin its gradient drops from
# $1$ to at most $1-\tanh(\alpha)$, a **jump** at $\rho = 1$. An earlier variant in the released history,
# $k = 1 - \tanh(\alpha(\rho - 1))$, starts at 1 and decreases smoothly. `mmlesson` offers both
# (`ogm_form="jump"`, the default, or `"continuous"`).
#
# Two further details matter. **Which gradients**: the release scales only 4-D gradients, that is
# the convolution weights of the two encoders; batch-norm parameters and the fusion head are left
# alone (`modulated_params="conv"`, the default; `"all"` scales every encoder parameter).
# **Generalisation enhancement (GE)**: scaling the gradient down also scales down the noise of SGD,
# which the authors argue helps generalisation, so GE adds Gaussian noise to every modulated gradient
# tensor, with standard deviation equal to that tensor's own gradient standard deviation:
# $g \leftarrow k\,g + \mathcal N(0, \operatorname{std}(g)^2)$. Modulation runs inside a window of epochs
# (0 to 50 in the release).
#
# Where we differ from the release, on purpose: our per-modality logits are the shared layer with the
# other modality's features zeroed, so each keeps the full bias $b$; the release gives each modality
# $b/2$ for concatenation. And at exactly $\rho = 1$ neither modality is modulated, where the release's
# if/else would modulate audio.

# %% tags=["hide-input"]
import math

from mmlesson.methods.ogm_ge import coefficient, coefficients

rho = torch.linspace(0.5, 3.0, 501)
fig, ax = plt.subplots(figsize=(6.5, 3.6))
for alpha, colour in [(0.1, "tab:green"), (0.8, "tab:blue"), (2.6, "tab:red")]:
    ax.plot(rho, [coefficient(float(r), alpha, "jump") for r in rho], color=colour, label=f"jump, alpha {alpha}")
    ax.plot(rho, [coefficient(float(r), alpha, "continuous") for r in rho], color=colour, linestyle="--",
            label=f"continuous, alpha {alpha}")
ax.set_xlabel("discrepancy ratio rho of the modality that is ahead")
ax.set_ylabel("gradient coefficient k")
ax.legend(fontsize=9, ncol=2)
fig.tight_layout()

# a hand check of the package's coefficients on a two-sample batch
labels = torch.tensor([0, 1])
demo = {"audio": torch.tensor([[math.log(3), 0.0], [0.0, math.log(3)]]), "visual": torch.zeros(2, 2)}
print("audio gives the true class 3/4, visual 1/2: s_a = 1.5, s_v = 1.0, rho_a = 1.5")
print("package:", coefficients(demo, labels, alpha=0.8), " by hand: audio", round(1 - math.tanh(0.8 * 1.5), 6))
print(f"alpha 0.8, jump form: k = {coefficient(1 + 1e-6, 0.8):.3f} just above rho = 1, "
      f"{coefficient(1.3, 0.8):.3f} at rho = 1.3, {coefficient(2.0, 0.8):.3f} at rho = 2")

# %% [markdown] tags=[]
# **OGM-GE's own code.** This is the step `mmlesson` runs for every OGM-GE batch (from
# `mmlesson/methods/ogm_ge.py`, shown as it is, not a copy): the fused cross-entropy is back-propagated
# as in joint training, the coefficients are computed from the two branches' true-class scores, and
# inside the modulation window each encoder's convolution gradients are multiplied by its coefficient
# and given GE's noise before the optimiser steps.

# %% tags=[]
from mmlesson.methods.ogm_ge import OGMGE, modulate_gradients

chapter.show_code(OGMGE.training_step, coefficients, modulate_gradients)

# %% [markdown] tags=[]
# ## 2.2 The severe regime: the easy modality fits its training clips first
#
# The book's severe regime (Chapter 1) is the situation OGM-GE was designed for: the audio network
# fits its training clips within a few epochs, the shared residual vanishes, and the slower visual
# encoder is left near chance in the joint model although alone it would learn (Chapter 1 measures
# both). We
# compare, on the same 10 seeds (each drawing its own data set) and all at the one protocol learning
# rate (Chapter 1), so that OGM-GE's comparison with joint training is rate-matched: the two unimodal
# models, joint training, OGM-GE ($\alpha = 0.8$, modulating in the first half of training, epochs
# 1-8 of 16, as the release does with its epochs 0-50 of 100) and the strongest simple baseline, an
# ensemble of the two separately trained unimodal encoders with a decision layer trained on top of
# them (`frozen_encoders`). Runs that Chapter 1 already trained are read back from the run store.

# %% tags=[]
from mmlesson.chapter import CORE_ARMS, REAL_DATASETS, RECIPES, metric

ARMS = {name: CORE_ARMS[name] for name in ("audio only", "visual only", "joint (concat)", "OGM-GE", "frozen encoders")}
runs = chapter.run(ARMS, name="core")
ORACLE = chapter.oracle()
COLUMNS = {"test acc": ("test", "acc"), "audio branch": ("test", "branch_acc", "audio"),
           "visual branch": ("test", "branch_acc", "visual"), "visual probe": ("test", "probe_acc", "visual")}
ORACLE_ROW = {"test acc": ORACLE.get("fused"), "audio branch": ORACLE.get("audio"),
              "visual branch": ORACLE.get("visual")} if ORACLE else None
rates = {arm: RATES[arm] for arm in ARMS if arm in RATES}  # none on real data: the paper's rate stands
print(f"{'severe regime' if DATASET == 'synthav' else REAL_DATASETS[DATASET].title}, test split, mean ± std over "
      f"{len(SEEDS)} seeds; "
      + (f"learning rates {rates}" if rates else f"the paper's learning rate {RECIPES[chapter.recipe].train['lr']}"))
print(chapter.summary(runs, COLUMNS, ORACLE_ROW).to_string())

# %% tags=["remove-input"]
mean = {(arm, *keys): np.mean(metric(runs[arm], "test", *keys)) for arm in ("joint (concat)", "OGM-GE")
        for keys in [("acc",), ("branch_acc", "audio"), ("branch_acc", "visual"), ("probe_acc", "visual")]}
mean["visual only", "probe_acc", "visual"] = np.mean(metric(runs["visual only"], "test", "probe_acc", "visual"))
mean["frozen encoders", "acc"] = np.mean(metric(runs["frozen encoders"], "test", "acc"))
chapter.say(
    f"OGM-GE moves fused accuracy from {mean['joint (concat)', 'acc']:.3f} to {mean['OGM-GE', 'acc']:.3f}; the audio "
    f"branch moves from {mean['joint (concat)', 'branch_acc', 'audio']:.3f} to {mean['OGM-GE', 'branch_acc', 'audio']:.3f} "
    f"and the visual one, which it is meant to help, from {mean['joint (concat)', 'branch_acc', 'visual']:.3f} to "
    f"{mean['OGM-GE', 'branch_acc', 'visual']:.3f} (the visual probe {mean['joint (concat)', 'probe_acc', 'visual']:.3f} "
    f"to {mean['OGM-GE', 'probe_acc', 'visual']:.3f}, against the visual-only encoder's "
    f"{mean['visual only', 'probe_acc', 'visual']:.3f}). The frozen-encoder ensemble, with no balancing at all, reaches "
    f"{mean['frozen encoders', 'acc']:.3f}.")

# %% [markdown] tags=[]
# The curves show the mechanism at work: the ratio $s^a/s^v$ that OGM-GE steers, the audio
# coefficient it applies, and the visual branch it is meant to help.

# %% tags=["hide-input"]
from mmlesson.chapter import per_epoch
from mmlesson.plots import plot_over_epochs

fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.2))
styles = {"joint (concat)": dict(color="black"), "OGM-GE": dict(color="tab:red")}
for name, style in styles.items():
    plot_over_epochs(axes[0], runs[name], ("train", "ratio", "audio_over_visual"), name, **style)
    if name == "OGM-GE":
        plot_over_epochs(axes[1], runs[name], ("train", "coefficient", "audio"), name, **style)
    plot_over_epochs(axes[2], runs[name], ("val", "branch_acc", "visual"), name, **style)
plot_over_epochs(axes[2], runs["visual only"], ("val", "acc"), "visual only", color="tab:gray", linestyle="--")
axes[0].axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
axes[0].set_ylabel("ratio s_audio / s_visual")
axes[1].set_ylabel("audio coefficient k")
axes[2].set_ylabel("visual branch accuracy (val)")
for ax in axes:
    ax.set_xlabel("epoch")
    ax.legend(fontsize=9)
fig.tight_layout()


def last_log_ratio(run):
    return math.log(per_epoch(run, "train", "ratio", "audio_over_visual")[-1])


log_ratio = {name: [last_log_ratio(r) for r in runs[name]] for name in styles}
print("last-epoch log(s_a / s_v), mean over seeds: " + ", ".join(f"{name} {np.mean(v):+.2f}" for name, v in log_ratio.items()))

# %% tags=["remove-input"]
steered = {name: np.mean(values) for name, values in log_ratio.items()}
down = steered["OGM-GE"] < steered["joint (concat)"]
curve = {name: np.mean([per_epoch(r, "val", *keys) for r in runs[name]], axis=0)
         for name, keys in (("OGM-GE", ("branch_acc", "visual")), ("visual only", ("acc",)))}
later = slice(1, None) if len(curve["OGM-GE"]) > 1 else slice(None)  # after the first epoch, where both start
below = bool(np.all(curve["OGM-GE"][later] < curve["visual only"][later]))
chapter.say(
    f"OGM-GE {'does' if down else 'does not'} steer the ratio down: at the "
    f"last epoch $\\log(s^a/s^v)$ is {steered['OGM-GE']:.2f} against joint training's {steered['joint (concat)']:.2f} "
    f"(a ratio of about {math.exp(steered['OGM-GE']):.1f} instead of {math.exp(steered['joint (concat)']):.1f})"
    + (f"{', but' if down else ';'} audio stays {'well ' if steered['OGM-GE'] > 0.5 else ''}ahead"
       if steered["OGM-GE"] > 0 else f"{', and' if down else ';'} visual ends ahead")
    + f", and the visual branch on validation {'stays' if below else 'does not stay'} below the visual-only model's "
      f"curve.")

# %% [markdown] tags=[]
# ## 2.3 What GE's noise does to the signal
#
# GE adds, to each modulated gradient tensor $g$, noise whose standard deviation is that tensor's own
# gradient standard deviation, *before* scaling. Since a tensor's squared norm is about its number of
# entries times its variance (its mean is close to 0), the added noise has about the norm of the
# *unscaled* gradient, while the signal left is $k\,g$. The signal-to-noise ratio of the update,
# $\lVert k g\rVert / \lVert \text{noise}\rVert$, is therefore about $k$: about 1 for the modality that is
# behind, and at most $1 - \tanh(\alpha) \approx 0.34$ at $\alpha = 0.8$ for the one that is ahead,
# whose update is mostly noise. We measure it on the trained OGM-GE models, on one training batch,
# with the package's own `modulate_gradients` at the coefficients of that batch.

# %% tags=["hide-input"]
import torch.nn.functional as F

from mmlesson.chapter import RECIPES

alpha = RECIPES[chapter.recipe].methods.get("ogm_ge", {}).get("alpha", 0.8)
snr = {"audio": [], "visual": []}
for result, data in chapter.models(runs["OGM-GE"]):  # each seed's model on its own data's first batch
    snr_batch = next(data.train.batches(64, device=device))
    model = result.model.eval()
    gradients = {}
    for noise in (False, True):
        model.zero_grad(set_to_none=True)
        output = model(snr_batch)
        F.cross_entropy(output.logits, snr_batch["label"]).backward()
        factors = coefficients({m: l.detach() for m, l in output.logits_per_modality.items()}, snr_batch["label"], alpha)
        torch.manual_seed(0)
        modulate_gradients(model, factors, noise=noise)
        gradients[noise] = {m: [p.grad.clone() for p in model.encoders[m].parameters() if p.grad is not None and p.grad.dim() == 4]
                            for m in snr}
    for m in snr:
        signal = torch.cat([g.flatten() for g in gradients[False][m]])
        added = torch.cat([(n - g).flatten() for g, n in zip(gradients[False][m], gradients[True][m])])
        snr[m].append(float(signal.norm() / added.norm()))
    model.zero_grad(set_to_none=True)
for m, values in snr.items():
    print(f"{m:6s} encoder: ||k g|| / ||GE noise|| = {np.mean(values):.3f} (per seed {min(values):.3f} to {max(values):.3f})")

# %% tags=["remove-input"]
audio_snr, visual_snr = np.mean(snr["audio"]), np.mean(snr["visual"])
if audio_snr < min(1.0, visual_snr):
    chapter.say(
        f"At the checkpoint the audio modality is far enough ahead that the signal left in its update is {audio_snr:.3f} "
        f"of GE's noise (per seed {min(snr['audio']):.3f} to {max(snr['audio']):.3f}), so audio's update is "
        f"{'nearly all' if audio_snr < 0.2 else 'largely'} noise, while the visual encoder, never modulated, gets a "
        f"signal {visual_snr:.2f} times the noise.")
else:  # the modality that is ahead on the batch is the modulated one, the one with the smaller signal
    ahead, behind = sorted(snr, key=lambda m: np.mean(snr[m]))
    chapter.say(
        f"At the checkpoint the signal left in the {ahead} encoder's update is {np.mean(snr[ahead]):.3f} of GE's noise "
        f"(per seed {min(snr[ahead]):.3f} to {max(snr[ahead]):.3f}), and in the {behind} encoder's "
        f"{np.mean(snr[behind]):.2f}: "
        + (f"{ahead} is the modality ahead on these batches, and its update is "
           f"{'nearly all' if np.mean(snr[ahead]) < 0.2 else 'largely'} noise."
           if np.mean(snr[ahead]) < 1.0 else "neither update is mostly noise."))

# %% [markdown] tags=[]
# ## 2.4 The jump at rho = 1, the continuous form, and GE itself
#
# The released jump form cuts the leading modality's gradient to at most $1-\tanh(\alpha)$ as soon as
# it is ahead; the continuous form starts at 1. Both variants, and OGM without GE, are trained at
# the same protocol rate on the same seeds: the comparison isolates the form and the noise.

# %% tags=[]
ogm_rate = RATES.get("OGM-GE", RECIPES[chapter.recipe].train.get("lr"))
variants = chapter.run({"OGM-GE, continuous": dict(method="ogm_ge", ogm_form="continuous", lr=ogm_rate),
                        "OGM (no GE)": dict(method="ogm_ge", ge=False, lr=ogm_rate)}, name="ch02-variants")
runs.update(variants)
print(chapter.summary({name: runs[name] for name in ("OGM-GE", "OGM-GE, continuous", "OGM (no GE)")}, COLUMNS).to_string())
mean_coefficient = {name: [np.mean(per_epoch(r, "train", "coefficient", "audio")) for r in runs[name]]
                    for name in ("OGM-GE", "OGM-GE, continuous")}
print("mean audio coefficient over training: " + ", ".join(f"{n} {np.mean(v):.2f}" for n, v in mean_coefficient.items()))

# %% tags=["remove-input"]
variant = {name: {keys[-1]: np.mean(metric(runs[name], "test", *keys)) for keys in [("acc",), ("branch_acc", "visual")]}
           for name in ("OGM-GE", "OGM-GE, continuous", "OGM (no GE)")}
chapter.say(
    f"Fused accuracy: OGM-GE {variant['OGM-GE']['acc']:.3f}, OGM without GE {variant['OGM (no GE)']['acc']:.3f}, the "
    f"continuous form {variant['OGM-GE, continuous']['acc']:.3f}; the visual branch: jump form "
    f"{variant['OGM-GE']['visual']:.3f}, continuous form {variant['OGM-GE, continuous']['visual']:.3f}. Section 2.8 "
    f"judges whether GE's noise and the form make a difference.")

# %% [markdown] tags=[]
# ## 2.5 How strong should the modulation be? An alpha sweep
#
# *On SynthAV only: with a real data set (DATASET) this section's cells print nothing.*
#
# A descriptive sweep (two seeds per value, no verdict drawn), at the protocol rate:
# the fused accuracy, the visual branch and the visual probe as alpha grows. The dotted line is joint
# training on the same seeds. The runs are one of the book's stored side studies
# (`python -m mmlesson.book side-studies`).

# %% tags=[]
if DATASET == "synthav":
    from mmlesson.chapter import FEW_SEEDS, OGM_ALPHAS

    sweep = chapter.stored("side studies", "OGM-GE alpha")  # a stored side study (two seeds per value)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for title, keys, marker in [("fused test acc", ("test", "acc"), "o-"), ("visual branch", ("test", "branch_acc", "visual"), "s-"),
                                ("visual probe", ("test", "probe_acc", "visual"), "^-")]:
        ax.plot(OGM_ALPHAS, [np.mean(metric(sweep[f"alpha {a}"], *keys)) for a in OGM_ALPHAS], marker, label=title)
    ax.axhline(np.mean(metric(runs["joint (concat)"][:len(FEW_SEEDS)], "test", "acc")), color="black", linestyle=":",
               label="joint, fused (same seeds)")
    ax.set_xscale("log")
    ax.set_xlabel("alpha")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=9)
    fig.tight_layout()
    print(chapter.summary({f"alpha {a}": sweep[f"alpha {a}"] for a in OGM_ALPHAS}, COLUMNS).to_string())

# %% tags=["remove-input"]
if DATASET == "synthav":
    by_alpha = {a: {key: np.mean(metric(sweep[f"alpha {a}"], "test", *path)) for key, path in
                    (("fused", ("acc",)), ("audio", ("branch_acc", "audio")), ("visual", ("branch_acc", "visual")))}
                for a in OGM_ALPHAS}
    best_alpha = max(OGM_ALPHAS, key=lambda a: by_alpha[a]["fused"])
    largest = max(OGM_ALPHAS)
    chapter.say(f"On two seeds per value (an observation, not a verdict), the best fused accuracy is at alpha "
                f"{best_alpha} ({by_alpha[best_alpha]['fused']:.3f}). At alpha {largest} the audio branch is at "
                f"{by_alpha[largest]['audio']:.3f}, the visual branch at {by_alpha[largest]['visual']:.3f} and the fused "
                f"accuracy at {by_alpha[largest]['fused']:.3f}.")

# %% [markdown] tags=[]
# ## 2.6 Regime B: the easy modality is also the better one
#
# *On SynthAV only: with a real data set (DATASET) this section's cells print nothing.*
#
# Now audio confuses every class a little (10%) and visual more (30%), without speakers: audio is
# both easy and the more informative modality, and the fused oracle is designed to be no higher than
# audio's own (printed below): a perfect observer gains nothing from the frames. Balancing has nothing
# to give back here; ARL (Chapter 3) argues that forcing balance can then hurt. Regime B is regime A with
# other confusions. Its four models (audio only, visual only, joint training, OGM-GE) train on 10
# seeds, each drawing its own data, at regime B's own protocol rate, chosen by the same rule on joint
# training's validation accuracy over ten tuning seeds (recipe `synthav-regime-b-v2`). They are one
# of the book's stored side studies (`python -m mmlesson.book side-studies`), so this chapter's own
# time goes to the severe regime.

# %% tags=[]
runs_b = None  # regime B is generated data
if DATASET == "synthav":
    from mmlesson.chapter import REGIME_B_RECIPE

    runs_b = chapter.stored("side studies", "regime B")  # `python -m mmlesson.book side-studies` re-runs it
    ORACLE_B = chapter.oracle(REGIME_B_RECIPE)
    print(f"regime B, test split, mean ± std over {len(runs_b['joint (concat)'])} seeds (stored)")
    print(chapter.summary(runs_b, COLUMNS, {"test acc": ORACLE_B["fused"], "audio branch": ORACLE_B["audio"],
                                            "visual branch": ORACLE_B["visual"]}).to_string())

# %% tags=["remove-input"]
if runs_b is not None:
    mean_b = {arm: np.mean(metric(group, "test", "acc")) for arm, group in runs_b.items()}
    chapter.say(f"In regime B, joint training scores {mean_b['joint (concat)']:.3f}, audio alone "
                f"{mean_b['audio only']:.3f} and OGM-GE {mean_b['OGM-GE']:.3f}; the fused oracle is "
                f"{ORACLE_B['fused']:.3f}, audio's own {ORACLE_B['audio']:.3f}. Section 2.8 judges OGM-GE against joint "
                f"training here.")

# %% [markdown] tags=[]
# ## 2.7 Replicating the paper on real data
#
# With a GPU and a prepared CREMA-D or Kinetics-Sounds cache, set `DATASET = "cremad"` (or
# `"kinetics_sounds"`) and `DATA_DIR` in the parameters cell: section 2.2 then trains with the
# paper's settings below (full-width ResNet-18 encoders trained from scratch, SGD with learning
# rate 1e-3 divided by 10 at epoch 70, 100 epochs, batch 64, alpha 0.8, modulation in epochs 0-50) at
# the paper's learning rate (no search), under this book's protocol (epoch selected on a validation
# split, never on test; several seeds). These settings are the recipes `ogm_ge-cremad` and
# `ogm_ge-kinetics_sounds` (printed below), and `mmlesson replicate ogm_ge-cremad --root CACHE`
# trains the whole table on a GPU (Chapter 6). The real-data loaders are part of the package
# (`data_scripts/` prepares the caches); the book's own build runs every chapter on SynthAV only (no GPU and
# no data set), so the table shows the published numbers only; run on a real data set, its last column
# is that run's test accuracy (%).

# %% tags=["hide-input"]
for name in ("ogm_ge-cremad", "ogm_ge-kinetics_sounds"):
    recipe = RECIPES[name]
    print(f"{name:24s}", ", ".join(f"{k}={v}" for k, v in {**recipe.train, **recipe.methods["ogm_ge"]}.items()))
print()
published = [  # CREMA-D test accuracy (%), as reported; each under its own protocol
    ("concat (joint)", "51.7", "59.81", "65.50"),
    ("OGM-GE", "61.25", "64.41", "67.76 (OGM)"),
]
# this book's column: not run on SynthAV; on a real data set, this run's test accuracy (%) where it is that data set
run_label = "smoke run" if SMOKE else "this run"
ours = {method: f"{100 * np.mean(metric(runs[arm], 'test', 'acc')):.2f}"
        for method, arm in (("concat (joint)", "joint (concat)"), ("OGM-GE", "OGM-GE"))}
column = {"synthav": ("this book", {method: "not run" for method in ours}), "cremad": (run_label, ours)}.get(DATASET)
print(f"{'CREMA-D':16s}{'paper table':>14s}{'released ckpt':>16s}{'BalanceBenchmark':>18s}"
      + (f"{column[0]:>12s}" if column else ""))
for method, paper, released, benchmark in published:
    print(f"{method:16s}{paper:>14s}{released:>16s}{benchmark:>18s}" + (f"{column[1][method]:>12s}" if column else ""))
this_run = f"{run_label}: joint {ours['concat (joint)']}, OGM-GE {ours['OGM-GE']}"
print("\nKinetics-Sounds, BalanceBenchmark: baseline 65.63, OGM 67.04"
      + {"synthav": "; this book: not run", "kinetics_sounds": f"; {this_run}"}.get(DATASET, ""))
if DATASET not in ("synthav", "cremad", "kinetics_sounds"):
    print(f"{REAL_DATASETS[DATASET].title}, {this_run}")
if SMOKE and DATASET != "synthav":
    print("(a smoke run exercises every cell; its numbers mean nothing)")

# %% [markdown] tags=[]
# ## 2.8 What reproduced
#
# The paper's claims against what this notebook measured: paired comparisons over the evaluation
# seeds, 95% confidence intervals, a smallest effect of interest fixed in advance (0.01 for fused
# accuracy, 0.02 for a branch or a probe, a factor 1.1 for the discrepancy ratio), Holm-corrected over
# the chapter's claims as one family. The verdicts read as the [glossary](glossary.md) defines them.

# %% tags=["hide-input"]
import math

acc = {name: metric(group, "test", "acc") for name, group in runs.items()}
branch = {name: metric(runs[name], "test", "branch_acc", "visual") for name in ("joint (concat)", "OGM-GE", "OGM-GE, continuous")}
probe = {name: metric(runs[name], "test", "probe_acc", "visual") for name in ("joint (concat)", "OGM-GE")}
CLAIMS = {  # name: (claim, treatment per seed, control per seed, smallest effect of interest)
    "fused": ("OGM-GE vs joint training, fused accuracy (paper, CREMA-D: 51.7 -> 61.25)",
              acc["OGM-GE"], acc["joint (concat)"], 0.01),
    "probe": ("OGM-GE vs joint training, visual encoder (linear probe)", probe["OGM-GE"], probe["joint (concat)"], 0.02),
    "branch": ("OGM-GE vs joint training, visual branch", branch["OGM-GE"], branch["joint (concat)"], 0.02),
    "ratio": ("OGM-GE lowers the audio-over-visual discrepancy ratio (log s_a/s_v, last epoch)",
              log_ratio["joint (concat)"], log_ratio["OGM-GE"], math.log(1.1)),
    "vs frozen": ("OGM-GE vs the frozen-encoder ensemble, fused accuracy", acc["OGM-GE"], acc["frozen encoders"], 0.01),
    "frozen": ("joint training vs the frozen-encoder ensemble, fused accuracy",
               acc["joint (concat)"], acc["frozen encoders"], 0.01),
    "GE": ("GE: OGM-GE vs OGM without GE, fused accuracy", acc["OGM-GE"], acc["OGM (no GE)"], 0.01),
    "form, branch": ("continuous vs jump form, visual branch", branch["OGM-GE, continuous"], branch["OGM-GE"], 0.02),
    "form": ("continuous vs jump form, fused accuracy", acc["OGM-GE, continuous"], acc["OGM-GE"], 0.01),
}
if runs_b is not None:
    acc_b = {name: metric(group, "test", "acc") for name, group in runs_b.items()}
    CLAIMS["regime B"] = ("regime B (audio easy and better): OGM-GE vs joint training, fused accuracy",
                          acc_b["OGM-GE"], acc_b["joint (concat)"], 0.01)
# accuracies of separately trained runs: labelled stable or fragile
RETRAINED = [name for name in CLAIMS if name not in ("ratio", "regime B")]
verdicts = chapter.judge(CLAIMS, retrained=RETRAINED)

# %% tags=["remove-cell", "nbval-check-output", "nbval-check-numbers"]
chapter.claims(verdicts)  # the book's tests compare these verdicts (tests/nbval_tolerance.py)

# %% tags=["remove-cell", "nbval-check-output", "nbval-check-numbers"]
# to within chapter.tolerance: three standard errors of a re-execution
chapter.checked({"OGM-GE fused accuracy": np.mean(acc["OGM-GE"]), "joint fused accuracy": np.mean(acc["joint (concat)"])})

# %% tags=["remove-cell", "nbval-check-output", "nbval-check-numbers"]
# One batch per model, so a ratio of two norms on that batch: under the first calibration its mean over 10
# seeds moved by 0.07 under a two-thread re-execution (0.588 -> 0.518); the tolerance is set wide enough for
# about three such moves, and was fixed then, not after this execution.
chapter.checked({"GE signal-to-noise, audio": np.mean(snr["audio"]), "GE signal-to-noise, visual": np.mean(snr["visual"])},
                tolerance=0.25)

# %% [markdown] tags=[]
# ## 2.9 The severe regime against the mild one
#
# *On SynthAV only: with a real data set (DATASET) this section's cells print nothing.*
#
# A remedy earns its keep where the disease is; it should cost nothing where it is not. The book's
# matched study (Chapter 6, section 6.6; `python -m mmlesson.matched`) trains OGM-GE and joint
# training on 20 evaluation seeds in this chapter's severe regime and in the mild one (regime A, each
# seed drawing its own data), each regime at its one protocol rate, and re-executes every arm of the
# first ten seeds with two threads to label each verdict stable or fragile. Its verdicts, on the
# visual branch and probe (what OGM-GE claims to fix) and on fused accuracy:

# %% tags=[]
from mmlesson.chapter import matched

if DATASET == "synthav":
    matched_study = chapter.stored("matched")
    matched_verdicts = matched.regime_verdicts(matched_study, ["OGM-GE vs joint (concat)"])
    display(matched_verdicts)

# %% [markdown] tags=[]
# ## What we found

# %% tags=["remove-input"]
v = {name: c.verdict_text() for name, c in verdicts.items()}
if DATASET == "synthav":
    covers = "Each seed draws its own data set, so the interval covers\n   the data as well as the training"
else:
    covers = ("Every seed trains on the same data set, so the interval covers\n   the training (initialisation and "
              "batch order), not the data")
tested = {"kinetics_sounds": "BalanceBenchmark's +1.4 points for OGM on Kinetics-Sounds is the published number beside "
                             "it",
          "ave": "OGM-GE reports no AVE result to test"}.get(DATASET, "the paper's +9.6 points on CREMA-D is the claim "
                                                                  "this tests")
steers = ("**OGM-GE steers what it measures.** It lowers" if verdicts["ratio"].verdict == "better"
          else "**Does OGM-GE steer what it measures?** It is judged on")
found = f"""
1. {steers} the audio-over-visual ratio at the last epoch (log
   {steered['OGM-GE']:.2f} against {steered['joint (concat)']:.2f}; judged with a smallest effect of a factor 1.1:
   {v['ratio']}).
2. **Fused accuracy against joint training**: {v['fused']}. {covers}; {tested}.
3. **Does it free the visual encoder?** OGM-GE against joint training in the visual branch: {v['branch']}. In
   the visual probe: {v['probe']}. Section 2.2 shows each branch's accuracy.
4. **The frozen-encoder ensemble** (two separately trained unimodal encoders and a decision layer). Joint
   training against it: {v['frozen']}. OGM-GE against it: {v['vs frozen']}.
5. **GE's noise**, about as large as the unscaled gradient (section 2.3), OGM-GE against OGM without GE: {v['GE']}.
   The continuous form against the jump form, fused: {v['form']}. In the visual branch: {v['form, branch']}."""
if "regime B" in verdicts:
    found += f"""
6. **Where the easy modality is also the better one** (regime B), OGM-GE against joint training: {v['regime B']}."""
if DATASET == "synthav":
    in_severe, in_mild = (matched_verdicts.loc[(regime, "OGM-GE vs joint (concat)")] for regime in ("severe v2", "mild v2"))
    found += f"""
7. **On twenty seeds, in both regimes** (section 2.9, the matched study), OGM-GE against joint training. Severe
   regime, visual branch: {in_severe.iloc[0]}; fused: {in_severe.iloc[-1]}. Mild regime, visual branch:
   {in_mild.iloc[0]}; fused: {in_mild.iloc[-1]}."""
chapter.say(found + """

The verdicts hold within this chapter's family of claims; Chapter 6 judges OGM-GE against joint training again in a
family of its own (the [glossary](glossary.md) says why two families can disagree near a boundary). Chapter 3 asks
what balance should mean in the first place.""")

# %% [markdown] tags=[]
# ## Exercises
#
# 1. **The coefficient by hand.** For $\rho = 2$ and $\alpha = 0.8$ compute the dominant modality's
#    coefficient under the released rule, $1 - \tanh(\alpha\rho)$, and the continuous one,
#    $1 - \tanh(\alpha(\rho - 1))$; check both with `mmlesson.methods.ogm_ge.coefficient(2.0, 0.8, "jump")`
#    and `"continuous"`. How large is the jump of the released rule as $\rho$ crosses 1?
# 2. **Jump or continuous.** Train OGM-GE on the severe regime for seeds 0-2 with each form
#    (`mmlesson.train(**mmlesson.RECIPES["synthav-severe-v2"].config("ogm_ge", seed=0, lr=0.02, ogm_form="continuous"))`)
#    and plot the audio-over-visual ratio per epoch (`mmlesson.readouts.per_epoch(metrics, "train",
#    "ratio", "audio_over_visual")`). Predict first which form slows audio more when the ratio is near 1.
# 3. **Where the remedy costs.** In regime B the visual modality adds nothing a perfect observer could
#    use. Explain, from the coefficient's definition, how OGM-GE could cost accuracy there, compare
#    with what section 2.8 measured, and say what a modulation rule would need to know to avoid it.

# %% [markdown] tags=[]
# 4. **Code it: the released coefficient.** Write `jump_coefficient(rho, alpha)`: the coefficient of
#    the modality whose discrepancy ratio is `rho`, $1 - \tanh(\alpha\rho)$ when it is ahead ($\rho > 1$)
#    and 1 otherwise (section 2.1). The hidden cell under it checks it against the package's rule on
#    six cases, the boundary $\rho = 1$ among them.

# %% tags=[]
def jump_coefficient(rho, alpha):
    """The gradient coefficient of a modality with discrepancy ratio ``rho`` (OGM-GE, the released form)."""
    return None  # your code here


# %% tags=["hide-input", "remove-output"]
from mmlesson.chapter import check
from mmlesson.methods.ogm_ge import coefficient

check(jump_coefficient, lambda rho, alpha: coefficient(rho, alpha, "jump"),
      [(0.5, 0.8), (1.0, 0.8), (1.0001, 0.8), (1.3, 0.8), (2.0, 0.1), (3.0, 2.6)])
