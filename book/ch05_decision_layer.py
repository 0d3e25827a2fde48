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
# # 5. Imbalance at the decision layer, and capability-aware decision weights
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mmlesson/mmlesson/blob/main/book/ch05_decision_layer.ipynb)
# ![CPU: about 3 minutes](https://img.shields.io/badge/CPU%20(2%20cores)-~3%20min-blue)
# ![GPU: CREMA-D several hours](https://img.shields.io/badge/GPU%20(CREMA--D%2C%20100%20epochs%20x%204%20models)-hours-green)
#
# Chapters 1 and 2 looked for the imbalance in the encoders: the weak modality's encoder learns less
# under joint training, and OGM-GE tries to fix that. Ma and Chen ("Revisit Modality Imbalance at the
# Decision Layer", 2025) look one layer higher. In the final linear layer of a concatenation model,
# the weights that multiply audio features are larger than those that multiply visual features on
# CREMA-D and Kinetics-Sounds, and they argue that this bias is not only a side effect of joint
# optimisation: it survives when both encoders are trained alone and frozen (their Insight 1), it is
# already present in unimodal models (Insight 2), and it does not follow which modality is good at
# which class (Insight 3), so the balance should be set per class, by capability (Insight 4). The
# paper proposes that direction without an implementation. This chapter measures the four insights
# on SynthAV over several seeds, then builds and tests one concrete remedy: calibrate each
# modality's logits and fit per-class modality weights on the validation split.

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

from mmlesson.analysis.decision import decision_summary, weight_blocks
from mmlesson.analysis.recalibration import recalibrate
from mmlesson.book import load_models, recipe_for, run_arms, setup
from mmlesson.data import load
from mmlesson.experiment import fmt, improvement_verdict, mean_std, pearson
from mmlesson.recipes import RECIPES
from mmlesson.plots import plot_per_class_capability, plot_weight_distributions, plot_weight_heatmap

SMALL = {}
if SMOKE:  # a seconds-long run that exercises every cell
    EPOCHS, SEEDS = 1, [0]
    SMALL = dict(train_size=240, val_size=60, test_size=60)
device = setup(DEVICE)

# %% [markdown]
# ## 5.1 What "the weight of a modality" means
#
# With concatenation fusion the fused logits are $f(x) = W\,[z^a; z^v] + b = W^a z^a + W^v z^v + b$
# (Chapter 1), so the decision layer has one block of weights per modality, $W^a$ and $W^v$, each of
# shape classes $\times$ features. The paper reads three numbers off them:
#
# - the **mean absolute weight** of a block, $\overline{|W^m|}$ (its Table 1, "Weight", and the
#   histograms of Fig. 3);
# - the **mean absolute logit** a modality produces on data, $\overline{|W^m z^m|}$ (Table 1,
#   "Logits"; we leave the shared bias out so that the number is the modality's own contribution);
# - the **per-class L1 norm** of each class's row of $W^m$ (the heatmaps of Fig. 1-2, and the lines of
#   Fig. 4), which we average over feature dimensions so that it reads as a mean $|w|$.
#
# Our two encoders have the same width, so the two blocks have the same shape and these numbers
# compare directly. Weight size is not the whole story: a block's contribution is weights times
# features, which is why the paper also reports logits.
#
# We use the SynthAV regime of Chapter 2 in which capability differs *by class*: audio is easy but
# silent for classes 4 and 5 (`audio_class_strength = (1, 1, 1, 1, 0, 0)`), while the visual
# grating is informative for every class but harder to learn. A decision layer that followed
# capability would lean on audio for classes 0-3 and on vision for 4-5.

# %%
# The protocol is a recipe (mmlesson.recipes): regime A on SynthAV; on real data, OGM-GE's setting,
# which the decision-layer paper builds on.
RECIPE = recipe_for("decision_layer", DATASET, synthav="synthav-regime-a")
TRAIN = dict(epochs=EPOCHS, width=WIDTH, device=DEVICE, probe=False) if DATASET == "synthav" else dict(
    device=DEVICE, probe=False)
if SMOKE:
    TRAIN["epochs"] = EPOCHS
if DATASET == "synthav":
    data = load("synthav", **SMALL, **RECIPES[RECIPE].data_knobs)
else:
    data = load(DATASET, root=DATA_DIR, **RECIPES[RECIPE].data_knobs)
ARMS = {
    "audio only": dict(method="unimodal", modality="audio"),
    "visual only": dict(method="unimodal", modality="visual"),
    "joint concat": dict(method="joint", fusion="concat"),
    "joint sum": dict(method="joint", fusion="sum"),
    "OGM-GE concat": dict(method="ogm_ge", fusion="concat"),
    "ARL concat": dict(method="arl", fusion="concat"),
    # Fig. 2's "pre-trained" model: each encoder trained alone (the two arms above), then frozen
    "frozen encoders": dict(method="frozen_encoders", encoders_from=["audio only", "visual only"]),
}
runs = run_arms(ARMS, SEEDS, RECIPE, data_knobs=SMALL if DATASET == "synthav" else {}, train=TRAIN,
                results=RESULTS_DIR, data_dir=DATA_DIR, name="ch05")
models = {name: load_models(group, data) for name, group in runs.items()}

print(f"test accuracy, mean ± std over seeds {SEEDS}")
print(f"{'':18s}{'fused':>16s}{'audio branch':>16s}{'visual branch':>16s}")
for name, results in models.items():
    cells = [fmt([r.metrics["final"]["test"]["acc"] for r in results])]
    for m in ("audio", "visual"):
        branch = [r.metrics["final"]["test"]["branch_acc"].get(m) for r in results]
        cells.append(fmt(branch) if None not in branch else "-")
    print(f"{name:18s}" + "".join(f"{c:>16s}" for c in cells))

# %% [markdown]
# The per-class accuracies of the two unimodal models are what we will call each modality's
# **capability**: what that modality, trained on its own, can do for each class.

# %%
capability = {m: [[r.metrics["final"]["test"]["per_class_acc"][c] for r in models[f"{m} only"]] for c in range(data.num_classes)]
              for m in ("audio", "visual")}
print(f"{'class':>6s}{'audio only':>16s}{'visual only':>16s}")
for c in range(data.num_classes):
    print(f"{c:>6d}{fmt(capability['audio'][c], 2):>16s}{fmt(capability['visual'][c], 2):>16s}")

# %% [markdown]
# ## 5.2 Weights and logits per modality (Table 1, Fig. 1-2)
#
# The heatmaps show $|W|$ of seed 0's decision layer for the jointly trained model (the paper's
# Fig. 1) and for the model whose encoders were trained alone and frozen (Fig. 2), classes in rows,
# audio features left of the white line and visual features right of it.

# %%
summaries = {name: [decision_summary(r.model, data.test, device) for r in results] for name, results in models.items()
             if name != "joint sum"}
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
for ax, name in zip(axes, ("joint concat", "frozen encoders")):
    image = plot_weight_heatmap(weight_blocks(models[name][0].model), ax, title=f"{name}, |W| (seed {SEEDS[0]})")
    fig.colorbar(image, ax=ax, fraction=0.04)
fig.tight_layout()


def statistic(name, modality, key):
    """A decision-layer statistic of one modality of one model, over seeds."""
    return [summary[modality][key] for summary in summaries[name]]


ROWS = [("audio only", "audio", "Audio"), ("visual only", "visual", "Video"),
        ("joint concat", "audio", "Multi - Audio"), ("joint concat", "visual", "Multi - Video"),
        ("frozen encoders", "audio", "Frozen - Audio"), ("frozen encoders", "visual", "Frozen - Video"),
        ("OGM-GE concat", "audio", "OGM-GE - Audio"), ("OGM-GE concat", "visual", "OGM-GE - Video"),
        ("ARL concat", "audio", "ARL - Audio"), ("ARL concat", "visual", "ARL - Video")]
PAPER_TABLE_1 = {  # Ma and Chen (2025), Table 1: mean weight (x 1e-2) and mean logit, CREMA-D and Kinetics-Sounds
    "Audio": ("3.56", "2.14", "3.63", "2.47"), "Video": ("1.81", "1.48", "2.73", "2.02"),
    "Multi - Audio": ("2.13", "1.89", "3.01", "2.83"), "Multi - Video": ("1.55", "0.58", "1.87", "1.43"),
}
print(f"{'':16s}{'SynthAV weight x1e-2':>22s}{'SynthAV logit':>16s}   paper: CREMA-D w / logit, KS w / logit")
for name, m, row in ROWS:
    weight = [100 * w for w in statistic(name, m, "mean_abs")]
    logit = statistic(name, m, "mean_abs_logit")
    paper = " / ".join(PAPER_TABLE_1[row][:2]) + ",  " + " / ".join(PAPER_TABLE_1[row][2:]) if row in PAPER_TABLE_1 else "-"
    print(f"{row:16s}{fmt(weight, 2):>22s}{fmt(logit, 2):>16s}   {paper}")

# %% [markdown]
# The paper's numbers come from full-width ResNet-18 encoders (512 features each) on real data, ours
# from width-8 encoders (64 features) on SynthAV, so only the *ratios* between rows compare, not the
# values. In the paper every audio row is above its video row, in weights and even more in logits.

# %% [markdown]
# ## 5.3 Insight 1: is the bias only a product of joint optimisation?
#
# If the imbalance at the decision layer came only from the audio encoder racing ahead during joint
# training, a model whose encoders were each trained to convergence *alone* and then frozen should
# have a balanced decision layer. We compare, seed by seed, the audio block with the visual block
# of that model, in weights and in logits; and the same ratio for joint training, for OGM-GE, which
# balances the *encoders* (does balancing them balance the decision layer?), and for ARL (Chapter 3),
# which deliberately does not balance them.

# %%
def ratio(name, key):
    """audio / visual of a decision-layer statistic, per seed."""
    return [a / v for a, v in zip(statistic(name, "audio", key), statistic(name, "visual", key))]


def log_ratio(name, key):
    return [math.log(r) for r in ratio(name, key)]


for name in ("joint concat", "frozen encoders", "OGM-GE concat", "ARL concat"):
    print(f"{name:16s} audio/visual mean |W|: {fmt(ratio(name, 'mean_abs'), 2)}   "
          f"mean |logit|: {fmt(ratio(name, 'mean_abs_logit'), 2)}")
zero = [0.0] * len(SEEDS)
frozen_weight_verdict = improvement_verdict(log_ratio("frozen encoders", "mean_abs"), zero, ("log ratio", "0"))
frozen_logit_verdict = improvement_verdict(log_ratio("frozen encoders", "mean_abs_logit"), zero, ("log ratio", "0"))
ogm_balances_verdict = improvement_verdict([-abs(x) for x in log_ratio("OGM-GE concat", "mean_abs_logit")],
                                           [-abs(x) for x in log_ratio("joint concat", "mean_abs_logit")],
                                           ("-|log ratio| OGM-GE", "joint"))
print("frozen encoders, audio weights above visual:", *frozen_weight_verdict)
print("frozen encoders, audio logits above visual: ", *frozen_logit_verdict)
print("OGM-GE brings the logit ratio closer to 1 than joint training:", *ogm_balances_verdict)

# %% [markdown]
# ## 5.4 Insight 2: do unimodal models already differ in weight scale? (Fig. 3)
#
# The paper's explanation is that each modality's features have their own scale and distribution,
# so a unimodal model of each already learns decision weights of a different size. The histograms
# show the decision-layer weights of seed 0's two unimodal models; the verdict compares their mean
# absolute weights and logits seed by seed.

# %%
unimodal_blocks = {m: weight_blocks(models[f"{m} only"][0].model)[m] for m in ("audio", "visual")}
fig, ax = plt.subplots(figsize=(6.5, 3.4))
plot_weight_distributions(unimodal_blocks, ax)
ax.set_title(f"decision-layer weights of the unimodal models (seed {SEEDS[0]})", fontsize=10)
fig.tight_layout()
unimodal_weight = {m: statistic(f"{m} only", m, "mean_abs") for m in ("audio", "visual")}
unimodal_logit = {m: statistic(f"{m} only", m, "mean_abs_logit") for m in ("audio", "visual")}
unimodal_weight_verdict = improvement_verdict(unimodal_weight["audio"], unimodal_weight["visual"], ("audio", "visual"))
unimodal_logit_verdict = improvement_verdict(unimodal_logit["audio"], unimodal_logit["visual"], ("audio", "visual"))
print("unimodal audio weights above unimodal visual weights:", *unimodal_weight_verdict)
print("unimodal audio logits above unimodal visual logits:  ", *unimodal_logit_verdict)

# %% [markdown]
# ## 5.5 Insight 3: do per-class weights follow per-class capability? (Fig. 4)
#
# Bars: each modality's capability per class (the unimodal models' test accuracy, seed 0). Lines:
# the per-class mean $|w|$ of each block of the jointly trained model. Then, over every class of
# every seed, we correlate the **visual share of a class's weights**, $\ell^v_c / (\ell^a_c + \ell^v_c)$
# with $\ell^m_c$ the per-class L1 of block $m$, with the **capability gap** of that class,
# visual-only accuracy minus audio-only accuracy. A decision layer that follows capability gives a
# clearly positive correlation; the paper's Insight 3 says it does not. The 95% interval is Fisher's;
# it treats the classes as independent points, which they are only approximately.

# %%
seed0 = {m: {"per_class_acc": models[f"{m} only"][0].metrics["final"]["test"]["per_class_acc"],
             "per_class_l1": summaries["joint concat"][0][m]["per_class_l1"]} for m in ("audio", "visual")}
fig, ax = plt.subplots(figsize=(7.5, 3.6))
plot_per_class_capability(seed0, ax, accuracy_label="unimodal accuracy")
ax.set_xlabel("class")
ax.set_title(f"capability (bars) and joint model's weights (lines), seed {SEEDS[0]}", fontsize=10)
fig.tight_layout()

capability_gap = [capability["visual"][c][s] - capability["audio"][c][s]
                  for s in range(len(SEEDS)) for c in range(data.num_classes)]


def visual_weight_share(name):
    shares = []
    for summary in summaries[name]:
        audio, visual = summary["audio"]["per_class_l1"], summary["visual"]["per_class_l1"]
        shares.extend(v / (a + v) for a, v in zip(audio, visual))
    return shares


def correlation_text(r_low_high):
    r, low, high = r_low_high
    return f"r = {r:+.2f} [{low:+.2f}, {high:+.2f}]"


weight_tracking = {name: pearson(visual_weight_share(name), capability_gap)
                   for name in ("joint concat", "frozen encoders", "OGM-GE concat")}
for name, result in weight_tracking.items():
    print(f"{name:16s} visual weight share vs capability gap: {correlation_text(result)} "
          f"({len(capability_gap)} classes x seeds)")

# %% [markdown]
# ## 5.6 Insight 4, made concrete: capability-aware decision weights
#
# The paper stops at a direction: the balance between modalities should be set per class, according
# to what each modality can do. Here is one way to do it after training, for any model, with
# nothing fitted on test (`mmlesson.analysis.recalibration`, `mmlesson recalibrate --run DIR`):
#
# 1. **Calibration.** The logits of each modality $\ell^m$ (the shared layer with the other
#    modality zeroed) get one temperature $T_m$, fitted on the validation split to minimise the
#    log-loss of $\operatorname{softmax}(\ell^m / T_m)$. After that, a logit difference means the same
#    confidence whichever modality produced it. Summing calibrated logits is a product of calibrated
#    experts, the natural fusion when the modalities are conditionally independent given the class.
# 2. **Per-class modality weights.** The recalibrated logit of class $c$ is
#    $\; s \sum_m w_{c,m}\, \tilde\ell^m_c\;$ with $\tilde\ell^m$ the calibrated logits minus their mean
#    over classes (so that a weight cannot act as a class bias), $w_{c,\cdot} = M\,\operatorname{softmax}(\theta_c)$
#    non-negative and summing to the number of modalities $M = 2$ (uniform weights are exactly
#    step 1), and a global sharpness $s$. $\theta$ and $s$ minimise the validation log-loss plus a
#    small ridge toward uniform weights.
#
# We apply both to the jointly trained concat model, the frozen-encoder model and the OGM-GE model,
# and compare on test with each model's own output and with a model trained with sum fusion.

# %%
recalibrated = {name: [recalibrate(r.model, data, device) for r in models[name]]
                for name in ("joint concat", "frozen encoders", "OGM-GE concat")}
VARIANTS = [("plain", "model's own output"), ("calibrated", "(a) calibrated sum"),
            ("capability_weighted", "(a)+(b) per-class weights")]
print(f"test split, mean ± std over seeds {SEEDS}")
print(f"{'model':18s}{'variant':28s}{'accuracy':>16s}{'log-loss':>16s}")
for name, reports in recalibrated.items():
    for key, label in VARIANTS:
        print(f"{name:18s}{label:28s}{fmt([r['test'][key]['acc'] for r in reports]):>16s}"
              f"{fmt([r['test'][key]['nll'] for r in reports]):>16s}")
print(f"{'joint sum':18s}{'sum fusion, trained':28s}{fmt([r.metrics['final']['test']['acc'] for r in models['joint sum']]):>16s}")
for name, reports in recalibrated.items():
    temperatures = {m: [r["calibration"]["temperatures"][m] for r in reports] for m in ("audio", "visual")}
    print(f"{name:18s} fitted temperatures: audio {fmt(temperatures['audio'], 2)}, visual {fmt(temperatures['visual'], 2)}")


def accuracies(name, key):
    return [r["test"][key]["acc"] for r in recalibrated[name]]


def log_losses(name, key):
    return [-r["test"][key]["nll"] for r in recalibrated[name]]  # negated: higher is better


remedy_verdicts = {
    "plain": improvement_verdict(accuracies("joint concat", "capability_weighted"), accuracies("joint concat", "plain"),
                                 ("(a)+(b)", "concat")),
    "sum": improvement_verdict(accuracies("joint concat", "capability_weighted"),
                               [r.metrics["final"]["test"]["acc"] for r in models["joint sum"]], ("(a)+(b)", "sum model")),
    "calibrated": improvement_verdict(accuracies("joint concat", "capability_weighted"),
                                      accuracies("joint concat", "calibrated"), ("(a)+(b)", "(a)")),
    "frozen": improvement_verdict(accuracies("frozen encoders", "capability_weighted"),
                                  accuracies("frozen encoders", "plain"), ("(a)+(b)", "frozen concat")),
    "nll": improvement_verdict(log_losses("joint concat", "capability_weighted"), log_losses("joint concat", "plain"),
                               ("-NLL (a)+(b)", "-NLL concat")),
}
for key, (verdict, evidence) in remedy_verdicts.items():
    print(f"{key:11s} {verdict:14s} {evidence}")

# %% [markdown]
# Do the fitted per-class weights follow capability? The same correlation as in 5.5, now with the
# visual share of the *fitted* weights, $w_{c,v} / M$:

# %%
def fitted_visual_share(name):
    return [w[1] / sum(w) for report in recalibrated[name] for w in report["capability_weights"]["class_weights"]]


fitted_tracking = {name: pearson(fitted_visual_share(name), capability_gap) for name in recalibrated}
for name, result in fitted_tracking.items():
    print(f"{name:16s} fitted visual share vs capability gap: {correlation_text(result)}")
fig, ax = plt.subplots(figsize=(6, 3.6))
for name, marker in [("joint concat", "o"), ("frozen encoders", "s"), ("OGM-GE concat", "^")]:
    ax.scatter(capability_gap, fitted_visual_share(name), marker=marker, alpha=0.7, label=name)
ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
ax.set_xlabel("capability gap: visual-only minus audio-only accuracy (per class)")
ax.set_ylabel("fitted visual weight share")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## 5.7 On real data
#
# With a GPU and a prepared CREMA-D or Kinetics-Sounds cache, set `DATASET` and `DATA_DIR` in the
# parameters cell; every section then runs on real data with the OGM-GE protocol the paper builds on
# (full-width ResNet-18 encoders from scratch, SGD, learning rate 1e-3 divided by 10 at epoch 70,
# 100 epochs, batch 64; the decision-layer paper states no settings of its own), with the epoch
# selected on a validation split. These settings are the recipes `decision_layer-cremad` and
# `decision_layer-kinetics_sounds`; `mmlesson replicate decision_layer-cremad --root CACHE` trains the
# paper's Table 1 models on a GPU (Chapter 6). This chapter has not been run on real data here (no GPU
# and no data set); the paper's Table 1 is printed beside ours in 5.2.

# %%
for name in ("decision_layer-cremad", "decision_layer-kinetics_sounds"):
    recipe = RECIPES[name]
    print(f"{name:32s}", ", ".join(f"{k}={v}" for k, v in {**recipe.data_knobs, **recipe.train}.items()))

# %% [markdown]
# ## 5.8 What reproduced
#
# As in Chapter 2: "holds" when the mean per-seed difference exceeds two standard errors, "does NOT
# hold" when it is below minus two, "inconclusive" in between. For the correlations, "holds" or
# "does NOT hold" follows from whether the 95% interval excludes zero.

# %%
def all_seeds(holds):
    return "holds" if all(holds) else "does NOT hold"


def tracks_capability(result):
    """Insight 3 says the weights do NOT follow capability: it holds unless r is clearly positive."""
    _, low, _ = result
    return "does NOT hold" if low > 0 else "holds"


def clearly_positive(result):
    _, low, high = result
    return "holds" if low > 0 else ("does NOT hold" if high < 0 else "inconclusive")


claims = [
    ("Insight 1: with encoders trained alone and frozen, the audio weights stay above the visual ones",
     frozen_weight_verdict[1], frozen_weight_verdict[0]),
    ("Insight 1: ... and the audio logits stay above the visual ones", frozen_logit_verdict[1], frozen_logit_verdict[0]),
    ("Insight 2: unimodal audio model's weights above unimodal visual model's", unimodal_weight_verdict[1],
     unimodal_weight_verdict[0]),
    ("Insight 2: ... and its logits", unimodal_logit_verdict[1], unimodal_logit_verdict[0]),
    ("Insight 3: joint model's per-class weights do not follow per-class capability",
     correlation_text(weight_tracking["joint concat"]), tracks_capability(weight_tracking["joint concat"])),
    ("balancing the encoders (OGM-GE) brings the decision layer's logit ratio closer to 1",
     ogm_balances_verdict[1], ogm_balances_verdict[0]),
    ("remedy: fitted per-class weights follow capability (joint concat model)",
     correlation_text(fitted_tracking["joint concat"]), clearly_positive(fitted_tracking["joint concat"])),
    ("remedy (a)+(b) beats the joint concat model's own output (accuracy)", remedy_verdicts["plain"][1],
     remedy_verdicts["plain"][0]),
    ("remedy (a)+(b) lowers the joint concat model's test log-loss", remedy_verdicts["nll"][1], remedy_verdicts["nll"][0]),
    ("remedy (a)+(b) beats a model trained with sum fusion", remedy_verdicts["sum"][1], remedy_verdicts["sum"][0]),
    ("per-class weights (b) add to calibration (a) alone", remedy_verdicts["calibrated"][1],
     remedy_verdicts["calibrated"][0]),
    ("remedy (a)+(b) beats the frozen-encoder model's own output", remedy_verdicts["frozen"][1],
     remedy_verdicts["frozen"][0]),
]
for text, evidence, _ in claims:
    print(f"- {text}\n    measured: {evidence}")

# %% tags=["nbval-check-output"]
for text, _, verdict in claims:
    print(f"{verdict:14s} {text}")

# %% [markdown]
# **How firm these verdicts are.** Each compares paired seeds at two standard errors (or a
# correlation's 95% interval), and many sit near that boundary. Executed unchanged on another CPU type
# (an AVX-512/AMX Xeon rather than the machine that produced the outputs above), every number moved
# in the second or third decimal and eight of the twelve verdicts changed: both Insight 2 verdicts
# (inconclusive to does NOT hold), OGM-GE's logit ratio (does NOT hold to inconclusive), the fitted
# weights following capability (holds to inconclusive), remedy (a)+(b) against the model's own output
# (inconclusive to holds), against sum fusion (holds to inconclusive), (b) on top of (a) (inconclusive
# to holds) and on the frozen-encoder model (holds to inconclusive). Only Insight 1, Insight 3 and the
# remedy's lower log-loss came out the same. Read the eight as not decided by three seeds on SynthAV;
# the test suite does not compare them.

# %% [markdown]
# **What this chapter showed.** The table above is this execution's answer to the paper's four
# insights on SynthAV, and to whether the remedy we built for Insight 4 helps. The decision-layer
# paper's observations were made on CREMA-D and Kinetics-Sounds with full-width encoders; where
# SynthAV disagrees, the disagreement is a property of the data (how the features of each modality
# are distributed), which is exactly the variable the paper says drives the bias, and it is the first
# thing to check on real data (set `DATASET = "cremad"` after preparing it: appendix, Real data).
