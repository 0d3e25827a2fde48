# ---
# jupyter:
#   jupytext:
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

# %% [markdown]
# # 3. Why balanced is not optimal: the bias-variance view and ARL
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mmlesson/mmlesson/blob/main/book/ch03_arl.ipynb)
# ![CPU: about 4 minutes](https://img.shields.io/badge/CPU%20(2%20cores)-~4%20min-blue)
# ![GPU: CREMA-D several hours](https://img.shields.io/badge/GPU%20(CREMA--D%2C%20100%20epochs%20x%203%20methods)-hours-green)
#
# Chapter 2 slowed the leading modality down until both were equally confident. "Improving
# Multimodal Learning via Imbalanced Learning" (ICCV 2025; ARL, for asymmetric representation
# learning) argues that equal is the wrong target. Treat the fused prediction as a weighted
# combination of two unimodal predictors: its variance is smallest when each modality's weight is
# inversely proportional to its own prediction variance, and that is balanced only when the two
# variances happen to be equal. Its bias, meanwhile, cannot be removed by any weighting when both
# predictors err in the same direction, so each modality's own bias has to be trained down. ARL turns
# both statements into a training rule. This chapter derives the two statements, checks them
# numerically (with simulated predictors and with real SynthAV logits), repeats the experiment that
# motivated the paper (amplifying the *dominant* modality's gradient), implements ARL as the paper
# writes it, and compares it with joint training and OGM-GE on SynthAV.

# %% tags=["parameters"]
DATASET = "synthav"
DATA_DIR = None
EPOCHS = 8
SEEDS = [0, 1, 2]
DEVICE = "auto"
RESULTS_DIR = None
SMOKE = False
WIDTH = 8

# %%
import math
import subprocess
import sys

if "google.colab" in sys.modules:  # install the package only inside Colab
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "mmlesson @ git+https://github.com/mmlesson/mmlesson@main"], check=True)

import matplotlib.pyplot as plt
import torch

from mmlesson.analysis.recalibration import collect_logits
from mmlesson.book import load_models, recipe_for, run_arms, setup
from mmlesson.data import load
from mmlesson.experiment import final, fmt, improvement_verdict, mean_std, per_epoch
from mmlesson.methods.arl import coefficients, dependency, variance_proxy
from mmlesson.plots import plot_over_epochs
from mmlesson.recipes import RECIPES

SMALL = dict(train_size=1200)  # half of SynthAV's default training split, to fit the chapter in 5 CPU minutes
MONTE_CARLO_REPLICATES = 400
if SMOKE:  # a seconds-long run that exercises every cell
    EPOCHS, SEEDS = 1, [0]
    SMALL = dict(train_size=240, val_size=60, test_size=60)
    MONTE_CARLO_REPLICATES = 20
device = setup(DEVICE)

# %% [markdown]
# ## 3.1 The fused prediction as a weighted pair of unimodal predictors
#
# With concatenation fusion the fused logits are a sum, $f(x) = s^{a}(x) + s^{v}(x)$ with
# $s^m = W^m z^m + b^m$ (Chapter 1; ARL Eq. 3). ARL asks which *weighting* of the two terms is best,
# and studies $f = w_0 s^{0} + w_1 s^{1}$ with $w_0, w_1 > 0$ and $w_0 + w_1 = 1$ (Eq. 5), scoring it by
# squared error, which splits into a squared bias, a variance and noise no model can remove (Eq. 7-9):
#
# $$\mathbb E\big[(f - y)^2\big] = \underbrace{\big(\mathbb E[f] - y\big)^2}_{\text{bias}^2} + \underbrace{\operatorname{Var}(f)}_{\text{variance}} .$$
#
# **Bias.** Expectation is linear, so the bias of the combination is the same combination of the
# unimodal biases, $B(f) = w_0 B_0 + w_1 B_1$ with $B_m = \mathbb E[s^m] - y$ (Eq. 10). It vanishes at
# $w_0 = B_1/(B_1 - B_0)$ (Eq. 11-12), and that point lies inside $(0, 1)$ only when $B_0$ and $B_1$
# have *opposite* signs. When both predictors err in the same direction (both too low, say), every
# convex combination has a bias between $B_0$ and $B_1$, never smaller in size than the smaller of
# the two. Weighting cannot help; only reducing each $B_m$ can. That is ARL's unimodal bias
# regularisation: a cross-entropy on each modality's own logits (Eq. 21-22).
#
# **Variance.** If the two predictors' errors are uncorrelated,
# $\operatorname{Var}(f) = w_0^2 V_0 + w_1^2 V_1$ (Eq. 13). Substituting $w_1 = 1 - w_0$ and setting the
# derivative $2 w_0 V_0 - 2(1 - w_0) V_1$ to zero gives
#
# $$ w_0^\star = \frac{V_1}{V_0 + V_1}, \qquad \frac{w_0^\star}{w_1^\star} = \frac{1/V_0}{1/V_1} \qquad \text{(Eq. 14-16)},$$
#
# inverse-variance weighting: the more reliable predictor gets the larger weight, and equal weights
# are optimal only when $V_0 = V_1$. The paper drops the covariance; with $C = \operatorname{Cov}(s^0, s^1)$
# the same calculation gives $w_0^\star = (V_1 - C)/(V_0 + V_1 - 2C)$, which we will need for real logits,
# whose errors are correlated.
#
# **A Monte Carlo check.** Two simulated predictors of a target $y = 1$ with the same-sign biases
# $B_0 = -0.1$, $B_1 = -0.3$, independent Gaussian errors of variance $V_0 = 0.04$ and $V_1 = 0.09$,
# 2,000 samples per replicate. For each replicate we sweep $w_0$ over a fine grid and record where the
# empirical variance is smallest; the mean over replicates should match $w_0^\star = 0.09/0.13$ within
# its sampling error, and no $w_0$ should reach zero bias.

# %%
def simulate(replicates, samples, biases, variances, generator):
    """``[replicates, samples]`` draws of two predictors of y = 1 with given biases and error variances."""
    return [1 + b + math.sqrt(v) * torch.randn(replicates, samples, generator=generator, dtype=torch.float64)
            for b, v in zip(biases, variances)]


generator = torch.Generator().manual_seed(0)
BIASES, VARIANCES = (-0.1, -0.3), (0.04, 0.09)
s0, s1 = simulate(MONTE_CARLO_REPLICATES, 2000, BIASES, VARIANCES, generator)
grid = torch.linspace(0, 1, 1001, dtype=torch.float64)[:, None]  # [grid, 1]


def combination_moments(s0, s1, w0):
    """Sample mean and variance of w0 s0 + (1 - w0) s1 along the last axis, from the two predictors'
    sample moments (exact: the variance of a weighted sum is a quadratic in w0)."""
    v0, v1 = s0.var(dim=-1), s1.var(dim=-1)
    c = ((s0 - s0.mean(dim=-1, keepdim=True)) * (s1 - s1.mean(dim=-1, keepdim=True))).sum(dim=-1) / (s0.shape[-1] - 1)
    mean = w0 * s0.mean(dim=-1) + (1 - w0) * s1.mean(dim=-1)
    return mean, w0 ** 2 * v0 + (1 - w0) ** 2 * v1 + 2 * w0 * (1 - w0) * c


fused_mean, empirical_variance = combination_moments(s0, s1, grid)  # [grid, replicate] each
best_w0 = grid[empirical_variance.argmin(dim=0), 0]
closed_form_w0 = VARIANCES[1] / sum(VARIANCES)
mc_mean, mc_std = mean_std(best_w0.tolist())
mc_error = mc_std / math.sqrt(len(best_w0))
print(f"variance-minimising w0: Monte Carlo {mc_mean:.4f} ± {mc_error:.4f} (1 SE over {len(best_w0)} replicates), "
      f"closed form (Eq. 14) {closed_form_w0:.4f}")
bias_of_fused = (fused_mean - 1).mean(dim=1)  # [grid]
print(f"smallest |bias| over all convex weights: {bias_of_fused.abs().min():.4f} "
      f"(at w0 = {float(grid[bias_of_fused.abs().argmin()]):.2f}); the unimodal biases are {BIASES}")
mc_claim_holds = abs(mc_mean - closed_form_w0) <= 2 * mc_error
mse = (empirical_variance + (fused_mean - 1) ** 2).mean(dim=1)  # variance + squared bias, mean over replicates
print(f"the mean squared error is smallest at w0 = {float(grid[mse.argmin()]):.2f}, between w0* = "
      f"{closed_form_w0:.2f} and the less biased predictor's w0 = 1")

fig, ax = plt.subplots(figsize=(6.5, 3.6))
ax.plot(grid[:, 0], empirical_variance.mean(dim=1), label="variance of f (empirical)")
ax.plot(grid[:, 0], bias_of_fused ** 2, label="bias$^2$ of f (empirical)")
ax.plot(grid[:, 0], mse, label="mean squared error", color="black")
ax.axvline(closed_form_w0, color="grey", linestyle=":", label="$w_0^*$ of Eq. 14")
ax.set_xlabel("weight $w_0$ of predictor 0 ($w_1 = 1 - w_0$)")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The variance curve bottoms out at the inverse-variance weight; the total error's minimum (printed
# above) sits further toward the less biased predictor, because with both biases negative the squared
# bias only falls as $w_0$ grows, and it never reaches zero. Both of ARL's ingredients are visible:
# the weights should follow the inverse variances, and the biases themselves must shrink.

# %% [markdown]
# ## 3.2 The same check on real logits
#
# Now the two predictors are the per-modality outputs of a jointly trained SynthAV model, measured on
# the validation split. (To fit the chapter's training runs into 5 CPU minutes, its SynthAV models
# train on 1,200 clips, half the default; validation and test keep 600 each, so the numbers below are
# close to, but not the same as, Chapters 1 and 2's.) As the regression "prediction" we take each modality's softmax probability
# of the true class, $s^m = \operatorname{softmax}(p^m)_y$, whose target is 1. A probability cannot
# exceed 1, so both biases are negative by construction: the same-sign case of Eq. 10-12.
#
# The paper does not measure $V_m$ directly during training; it uses the mean prediction entropy as a
# proxy, $q_m = 1 / \text{entropy}$ (Eq. 17). **A sign to watch:** Eq. 17 as printed is
# $q = 1/\sum_j \sigma(p)_j \log \sigma(p)_j$, which is *negative* (each $\log \sigma(p)_j \le 0$): the
# entropy is $-\sum_j \sigma(p)_j \log\sigma(p)_j$. With the sign as printed, the softmax of Eq. 18
# would reward the *less* confident modality. `mmlesson` uses the entropy, so a confident modality has
# a small entropy and a large $q$.

# %%
data_b = load("synthav", **SMALL) if DATASET == "synthav" else load(DATASET, root=DATA_DIR)
# The protocol is a recipe (mmlesson.recipes): SynthAV's defaults (regime B) here, ARL's setting on real data
# (Sec. 4.2: gamma 4, T 8 for CREMA-D and 4 otherwise).
TRAIN = dict(epochs=EPOCHS, width=WIDTH, device=DEVICE) if DATASET == "synthav" else dict(device=DEVICE)
if SMOKE:
    TRAIN["epochs"] = EPOCHS
SETTING_B = dict(recipe=recipe_for("arl", DATASET, synthav="synthav"), data_knobs=SMALL if DATASET == "synthav" else {},
                 train=TRAIN, results=RESULTS_DIR, data_dir=DATA_DIR)


def train(arms, setting, name, dataset):
    """Train (or read back) the arms over SEEDS and load their models: {arm: [RunResult per seed]}."""
    return {arm: load_models(runs, dataset) for arm, runs in run_arms(arms, SEEDS, name=name, **setting).items()}


joint_b = train({"joint": dict(method="joint")}, SETTING_B, "ch03-B", data_b)["joint"]
logits, _, labels = collect_logits(joint_b[0].model, data_b.val, device)
true_class = {m: l.softmax(dim=1).gather(1, labels[:, None]).squeeze(1) for m, l in logits.items()}
bias = {m: float(p.mean() - 1) for m, p in true_class.items()}
variance = {m: float(p.var()) for m, p in true_class.items()}
covariance = float(torch.stack([true_class["audio"], true_class["visual"]]).cov()[0, 1])
_, real_variance = combination_moments(true_class["audio"], true_class["visual"], grid[:, 0])
real_best_w0 = float(grid[real_variance.argmin(), 0])
independent_w0 = variance["visual"] / (variance["audio"] + variance["visual"])
correlated_w0 = (variance["visual"] - covariance) / (variance["audio"] + variance["visual"] - 2 * covariance)
print(f"joint model (seed {SEEDS[0]}), validation split, true-class probability per modality:")
for m in ("audio", "visual"):
    print(f"  {m:6s} bias {bias[m]:+.3f}   variance {variance[m]:.4f}")
print(f"  covariance {covariance:+.4f}")
print(f"variance-minimising audio weight: empirical {real_best_w0:.3f}; Eq. 14 (errors independent) "
      f"{independent_w0:.3f}; with the covariance {correlated_w0:.3f}")
q_ratio = variance_proxy(logits["audio"]) / variance_proxy(logits["visual"])
print(f"entropy proxy q_a/q_v = {q_ratio:.2f}   measured inverse-variance ratio V_v/V_a = "
      f"{variance['visual'] / variance['audio']:.2f}")
print(f"ARL's coefficients on the whole validation split (T = 4): {coefficients(logits, labels, 4.0)}")

# %% [markdown]
# ## 3.3 The motivating experiment: amplify the dominant modality (Fig. 1)
#
# If the fault were only imbalance, making the dominant modality learn even faster should hurt. The
# paper multiplies the gradient reaching the audio encoder by 5 on CREMA-D, where audio dominates,
# and reports that accuracy goes *up* (Fig. 1(b)), while the dependency ratio $d_a/d_v$ moves toward
# the inverse-variance ratio $q_a/q_v$ (Fig. 1(c)). We scale the gradient reaching SynthAV's audio
# encoder by 5 (`encoder_grad_scale`, an identity in the forward pass) at SynthAV's defaults, where
# audio dominates too; $d$ and $q$ are the batch means of Eq. 4 and 17, averaged over the last
# epoch's training batches.

# %%
SCALES = [1.0, 5.0]
scaled = {1.0: joint_b}
amplified = train({f"audio x{scale}": dict(method="joint", probe=False, encoder_grad_scale=(scale, 1.0))
                   for scale in SCALES if scale != 1.0}, SETTING_B, "ch03-scale", data_b)
scaled.update({scale: amplified[f"audio x{scale}"] for scale in SCALES if scale != 1.0})


def last(results, *keys):
    """A training statistic of the last epoch, per seed."""
    return [per_epoch(r.metrics, "train", *keys)[-1] for r in results]


def accuracy(results, *keys):
    return final([r.metrics for r in results], *(keys or ("acc",)))


def dependency_gap(results):
    """|log(d_a/d_v) - log(q_a/q_v)| at the last epoch: how far the dependency is from its target."""
    return [abs(math.log(d) - math.log(q)) for d, q in zip(last(results, "ratio", "audio_over_visual"),
                                                          last(results, "ratio", "inverse_variance"))]


print(f"{'audio gradient':>15s}{'fused acc':>16s}{'audio branch':>16s}{'visual branch':>16s}{'d_a/d_v':>14s}"
      f"{'q_a/q_v':>14s}{'|log gap|':>14s}")
for scale in SCALES:
    r = scaled[scale]
    print(f"{'x' + str(scale):>15s}{fmt(accuracy(r)):>16s}{fmt(accuracy(r, 'branch_acc', 'audio')):>16s}"
          f"{fmt(accuracy(r, 'branch_acc', 'visual')):>16s}{fmt(last(r, 'ratio', 'audio_over_visual'), 2):>14s}"
          f"{fmt(last(r, 'ratio', 'inverse_variance'), 2):>14s}{fmt(dependency_gap(r), 2):>14s}")
amplify_verdict = improvement_verdict(accuracy(scaled[5.0]), accuracy(scaled[1.0]), ("audio x5", "x1"))
gap_verdict = improvement_verdict([-g for g in dependency_gap(scaled[5.0])], [-g for g in dependency_gap(scaled[1.0])],
                                  ("-gap x5", "-gap x1"))
print("audio x5 raises fused accuracy:", *amplify_verdict)
print("audio x5 brings d_a/d_v closer to q_a/q_v:", *gap_verdict)

# %% [markdown]
# ## 3.4 ARL
#
# ARL measures, on every batch, both ratios from the unimodal logits $p^m$ (the shared head with the
# other modality zeroed, so no parameters are added), and turns their comparison into two
# coefficients with a softmax at temperature $T$ (Eq. 18):
#
# $$[a^{a}, a^{v}] = \operatorname{softmax}\Big(T\,\Big[\frac{q_a}{q_v},\ \frac{d_a}{d_v}\Big]\Big).$$
#
# When audio's dependency lags its inverse-variance target ($d_a/d_v < q_a/q_v$), $a^{a} > a^{v}$, and
# the gradient reaching each encoder's output becomes $g + a^m g$ (Eq. 19-20; the "residual" $g$ keeps
# a modality learning even when its coefficient is near 0). The loss adds each modality's own
# cross-entropy, $L = \mathrm{CE}(p^f) + \gamma\,(\mathrm{CE}(p^a) + \mathrm{CE}(p^v))$ (Eq. 22), with
# $\gamma = 4$. `mmlesson.methods.arl` implements exactly this; `--no-unimodal-loss`, `--no-asymmetric`
# and `--no-residual` switch off each part.
#
# **What the released code does instead** (the project's reference notes): it measures dependency as
# the mean absolute logit rather than the true-class probability, normalises and clamps the
# entropies, warms up for 5 epochs without the coefficients and clips gradient norms at 40, and,
# most importantly, never assigns the coefficients it computes, so after warm-up both encoders'
# gradients are multiplied by the same constant. Asymmetric learning, the paper's central mechanism,
# does not run in the release; the numbers in the paper's tables cannot tell us what it contributes.
#
# We compare ARL with joint training and OGM-GE ($\alpha = 0.8$) in both regimes of Chapter 2:
# **B**, SynthAV's defaults (audio easier *and* better), and **A**, audio silent for classes 4-5
# (audio easier, visual better alone). $T = 4$ (the paper's value for every data set but CREMA-D).

# %%
runs = {"B": {"joint": joint_b, **train({"OGM-GE": dict(method="ogm_ge"), "ARL": dict(method="arl")}, SETTING_B,
                                         "ch03-B-methods", data_b)}}
if DATASET == "synthav":  # regime A (the recipe synthav-regime-a): audio silent for classes 4-5
    SETTING_A = dict(SETTING_B, recipe="synthav-regime-a")
    data_a = load("synthav", **SMALL, audio_class_strength=(1, 1, 1, 1, 0, 0))
    runs["A"] = train({"joint": dict(method="joint"), "OGM-GE": dict(method="ogm_ge"), "ARL": dict(method="arl")},
                      SETTING_A, "ch03-A", data_a)

COLUMNS = [("fused", ("acc",)), ("macro-F1", ("macro_f1",)), ("audio branch", ("branch_acc", "audio")),
           ("visual branch", ("branch_acc", "visual")), ("visual probe", ("probe_acc", "visual"))]
for regime, group in runs.items():
    print(f"regime {regime}, test split, mean ± std over seeds {SEEDS}")
    print(f"{'':10s}" + "".join(f"{title:>16s}" for title, _ in COLUMNS))
    for name, results in group.items():
        print(f"{name:10s}" + "".join(f"{fmt(accuracy(results, *keys)):>16s}" for _, keys in COLUMNS))
    print()

# %% [markdown]
# ## 3.5 How ARL steers training (Fig. 3)
#
# Left: the dependency ratio $d_a/d_v$ and the inverse-variance ratio $q_a/q_v$ of ARL's training
# batches, epoch by epoch; ARL pushes the first toward the second. Right: the coefficients
# $a^{a}$ and $a^{v}$. Joint training's $d_a/d_v$ is drawn for reference.

# %%
fig, axes = plt.subplots(len(runs), 2, figsize=(12, 3.4 * len(runs)), squeeze=False)
for row, (regime, group) in enumerate(runs.items()):
    left, right = axes[row]
    metrics = [r.metrics for r in group["ARL"]]
    plot_over_epochs(left, metrics, ("train", "ratio", "audio_over_visual"), "ARL d_a/d_v", color="tab:red")
    plot_over_epochs(left, metrics, ("train", "ratio", "inverse_variance"), "ARL q_a/q_v", color="tab:red", linestyle="--")
    plot_over_epochs(left, [r.metrics for r in group["joint"]], ("train", "ratio", "audio_over_visual"), "joint d_a/d_v",
                     color="black")
    plot_over_epochs(left, [r.metrics for r in group["joint"]], ("train", "ratio", "inverse_variance"), "joint q_a/q_v",
                     color="black", linestyle="--")
    plot_over_epochs(right, metrics, ("train", "coefficient", "audio"), "a_audio", color="tab:blue")
    plot_over_epochs(right, metrics, ("train", "coefficient", "visual"), "a_visual", color="tab:orange")
    left.set_ylabel(f"regime {regime}: ratio")
    right.set_ylabel("coefficient (epoch mean)")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
fig.tight_layout()
for regime, group in runs.items():
    late = [sum(per_epoch(r.metrics, "train", "coefficient", "audio")[EPOCHS // 2:]) / (EPOCHS - EPOCHS // 2)
            for r in group["ARL"]]
    print(f"regime {regime}: last-epoch |log(d/q)|, joint {fmt(dependency_gap(group['joint']), 2)}, "
          f"ARL {fmt(dependency_gap(group['ARL']), 2)}; ARL's mean audio coefficient over the second half of "
          f"training {fmt(late, 2)}")

# %% [markdown]
# Read the coefficients with Eq. 18 in mind: the softmax compares $T\,q_a/q_v$ with $T\,d_a/d_v$, so
# once the entropy ratio is several units above the dependency ratio, the audio coefficient is
# essentially 1 and the visual one 0 on every batch, and ARL becomes a fixed rule: audio's gradient
# doubled ($1 + a$), visual's left as it is. The entropy proxy is what drives this: a modality that
# is nearly always right has an entropy near 0 and an inverse entropy that grows without bound, far
# faster than the measured inverse variance (section 3.2 prints both for one model).

# %% [markdown]
# ## 3.6 Ablation (Table 5)
#
# Which part does the work? Unimodal regularisation alone (UR), asymmetric learning with the residual
# alone (AL + GR), both without the residual (UR + AL), and everything (ARL), against joint training
# (nothing), in the regime where ARL and joint training differ most in 3.4.

# %%
ablation_regime = max(runs, key=lambda regime: abs(mean_std(accuracy(runs[regime]["ARL"]))[0]
                                                   - mean_std(accuracy(runs[regime]["joint"]))[0]))
ablation_data = data_a if ablation_regime == "A" else data_b
ablation_setting = SETTING_A if ablation_regime == "A" else SETTING_B
VARIANTS = {"UR": dict(asymmetric=False), "AL + GR": dict(unimodal_loss=False), "UR + AL": dict(residual=False)}
ablation = {"none (joint)": runs[ablation_regime]["joint"]}
ablation.update(train({name: dict(method="arl", probe=False, **switches) for name, switches in VARIANTS.items()},
                      ablation_setting, f"ch03-ablation-{ablation_regime}", ablation_data))
ablation["UR + AL + GR (ARL)"] = runs[ablation_regime]["ARL"]
print(f"ablation in regime {ablation_regime}, test split, mean ± std over seeds {SEEDS}")
for name, results in ablation.items():
    print(f"{name:22s} fused {fmt(accuracy(results))}   visual branch {fmt(accuracy(results, 'branch_acc', 'visual'))}")

# %% [markdown]
# ## 3.7 On real data
#
# With a GPU and a prepared cache, set `DATASET` to `"cremad"`, `"kinetics_sounds"` or `"ave"` and
# `DATA_DIR` in the parameters cell; sections 3.2-3.6 then train with the paper's settings below
# (regime A is a SynthAV construction and is skipped). These settings are the recipes `arl-cremad`,
# `arl-kinetics_sounds` and `arl-ave`, and `mmlesson replicate arl-cremad --root CACHE` trains Table 1's
# CREMA-D column on a GPU (Chapter 6). This chapter has not been run on real data here (no GPU and no
# data set); here are the paper's numbers, to put beside ours once it has. They select the checkpoint
# under the paper's own protocol.

# %%
for name in ("arl-cremad", "arl-kinetics_sounds", "arl-ave"):
    recipe = RECIPES[name]
    print(f"{name:20s}", ", ".join(f"{k}={v}" for k, v in {**recipe.train, **recipe.methods["arl"]}.items()))
print()
PAPER_TABLE_1 = [  # ARL (ICCV 2025), Table 1: test accuracy (%)
    ("Audio-only", "57.27", "48.67", "62.16"), ("Visual-only", "62.17", "52.36", "31.40"),
    ("Concatenation", "58.83", "64.97", "66.15"), ("OGM-GE", "64.34", "66.35", "65.62"),
    ("ARL", "76.61", "74.28", "72.89"),
]
print(f"{'paper, Table 1':16s}{'CREMA-D':>10s}{'KS':>10s}{'AVE':>10s}{'this book':>12s}")
for row in PAPER_TABLE_1:
    print(f"{row[0]:16s}" + "".join(f"{v:>10s}" for v in row[1:]) + f"{'not run':>12s}")
print("\npaper, Table 5 (CREMA-D accuracy, %): 58.83 / 67.20 / 70.23 / 74.45 / 76.61 from no component to all three;")
print("the printed check marks do not say which single components the middle rows use (two rows read UR + AL).")

# %% [markdown]
# The paper's Kinetics-Sounds has 34 classes (its text) while other papers use 31 to 33 of the same
# list; the class list a real run uses is recorded in its metrics.json once the loader exists.
#
# ## 3.8 What reproduced
#
# "holds" when the mean per-seed difference exceeds two standard errors, "does NOT hold" when it is
# below minus two, "inconclusive" in between (Chapter 2).

# %%
def claim(text, verdict_and_evidence):
    verdict, evidence = verdict_and_evidence
    return text, evidence, verdict


claims = [
    ("Eq. 14: the variance-minimising weight is the inverse-variance weight (Monte Carlo, within 2 SE)",
     f"{mc_mean:.4f} ± {2 * mc_error:.4f} vs {closed_form_w0:.4f}", "holds" if mc_claim_holds else "does NOT hold"),
    ("Eq. 10-12: with same-sign biases no convex weight removes the bias (Monte Carlo)",
     f"smallest |bias| {bias_of_fused.abs().min():.3f} > 0", "holds" if bias_of_fused.abs().min() > 0.05 else "does NOT hold"),
    ("Eq. 14 ignoring the covariance predicts the real variance-minimising weight within 0.05",
     f"empirical {real_best_w0:.3f}, Eq. 14 {independent_w0:.3f}, with covariance {correlated_w0:.3f}",
     "holds" if abs(real_best_w0 - independent_w0) <= 0.05 else "does NOT hold"),
    ("the entropy proxy ranks the modalities as the measured variance does (q_a/q_v vs V_v/V_a, same side of 1)",
     f"q_a/q_v {q_ratio:.2f}, V_v/V_a {variance['visual'] / variance['audio']:.2f}",
     "holds" if (q_ratio - 1) * (variance["visual"] / variance["audio"] - 1) > 0 else "does NOT hold"),
    ("the entropy proxy's ratio q_a/q_v matches the measured inverse-variance ratio V_v/V_a within a factor of 2",
     f"q_a/q_v {q_ratio:.2f}, V_v/V_a {variance['visual'] / variance['audio']:.2f}",
     "holds" if abs(math.log(q_ratio * variance["audio"] / variance["visual"])) <= math.log(2) else "does NOT hold"),
    claim("Fig. 1(b): amplifying the dominant (audio) gradient x5 raises fused accuracy", amplify_verdict),
    claim("Fig. 1(c): ... and brings d_a/d_v closer to q_a/q_v", gap_verdict),
]
for regime, group in runs.items():
    claims.append(claim(f"regime {regime}: ARL beats joint training (fused accuracy)",
                        improvement_verdict(accuracy(group["ARL"]), accuracy(group["joint"]), ("ARL", "joint"))))
    claims.append(claim(f"regime {regime}: ARL beats OGM-GE (fused accuracy)",
                        improvement_verdict(accuracy(group["ARL"]), accuracy(group["OGM-GE"]), ("ARL", "OGM-GE"))))
    claims.append(claim(f"regime {regime}: ARL brings d_a/d_v closer to q_a/q_v than joint training",
                        improvement_verdict([-g for g in dependency_gap(group["ARL"])],
                                            [-g for g in dependency_gap(group["joint"])], ("-gap ARL", "-gap joint"))))
for name in ("UR", "AL + GR"):
    claims.append(claim(f"ablation ({ablation_regime}): {name} alone beats joint training",
                        improvement_verdict(accuracy(ablation[name]), accuracy(ablation["none (joint)"]), (name, "joint"))))
claims.append(claim(f"ablation ({ablation_regime}): the gradient residual helps (ARL vs UR + AL)",
                    improvement_verdict(accuracy(ablation["UR + AL + GR (ARL)"]), accuracy(ablation["UR + AL"]),
                                        ("ARL", "UR + AL"))))
for text, evidence, _ in claims:
    print(f"- {text}\n    measured: {evidence}")

# %% tags=["nbval-check-output"]
for text, _, verdict in claims:
    print(f"{verdict:14s} {text}")

# %% [markdown]
# **How firm these verdicts are.** Each compares paired seeds at two standard errors, and some sit
# near that boundary. Executed unchanged on another CPU type (an AVX-512/AMX Xeon rather than the
# machine that produced the outputs above), every number moved in the second or third decimal and two
# verdicts changed: "regime B: ARL brings d_a/d_v closer to q_a/q_v than joint training" went from
# inconclusive to does NOT hold, and "regime A: ARL beats OGM-GE" from holds to inconclusive. Read
# them as not decided by three seeds; the test suite does not compare those two verdicts.

# %% [markdown]
# **What this chapter showed.** The bias-variance argument is sound algebra, and its variance half
# holds numerically whenever its assumption (uncorrelated errors) does; on real logits the covariance
# term matters, and the table says by how much. Whether the training rule built on it wins on
# SynthAV, and which of its parts carry the gain, is answered above for this execution. Chapter 5
# looks at the last place imbalance can hide, the decision layer itself.
