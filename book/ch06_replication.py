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
# # 6. Replicating the papers under one protocol
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/mmlesson/mmlesson/blob/main/book/ch06_replication.ipynb)
# ![CPU: about 5 minutes](https://img.shields.io/badge/CPU%20(2%20cores)-~5%20min-blue)
#
# The papers of Chapters 2-5 each report a table of methods on CREMA-D, Kinetics-Sounds or AVE, and
# the "same" concatenation baseline on CREMA-D ranges from about 52% to 62% across them. Each paper
# re-trains every method under its own protocol (optimiser, schedule, epochs, frames per clip,
# split) and most keep the checkpoint that scores best *on the test split*. This chapter shows how the
# book replaces that with one protocol: every setting is data in the package (a *recipe*), every
# table is a *grid* file shipped with it, and one command trains a table, in parallel, resumably,
# with each method trained once however many chapters and tables ask for it. The SynthAV edition of
# the combined table is executed at the end through the same runner, with a paired confidence
# interval for every verdict.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE; a list as -y "SEEDS: [0, 1, 2]"); setup checks each one.
# "synthav" (generated, no download) or a real data set the paper used: "cremad", "kinetics_sounds", "ave"
DATASET = "synthav"
# a real data set's cache, made by `mmlesson data prepare DATASET --raw RAW --root DIR`; None on synthav
DATA_DIR = None
# the evaluation seeds: distinct non-negative integers, e.g. [0, 1, 2] (a smoke run uses [0, 1])
SEEDS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
# "auto" (CUDA if available, else the CPU), "cpu", "cuda" or "cuda:N"
DEVICE = "auto"
# the run store, a directory (runs already in it are read back); None: $MMLESSON_RESULTS or results/
RESULTS_DIR = None
# True: a seconds-long run on two seeds and small data that exercises every cell; its numbers mean nothing
SMOKE = False
# the grid that section 6.4 trains on synthav (`mmlesson replicate --list` shows the shipped grids)
GRID = "synthav-combined"

# %% tags=["remove-cell"]
import subprocess
import sys

if "google.colab" in sys.modules:  # in Colab, install the package first
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "mmlesson[batch] @ git+https://github.com/mmlesson/mmlesson@main"], check=True)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from mmlesson.chapter import Chapter

chapter = Chapter.setup("arl", DATASET, SEEDS, DEVICE, RESULTS_DIR, DATA_DIR, SMOKE, smoke_epochs=2)
SEEDS, RATES, device = chapter.seeds, chapter.rates, chapter.device

# %% [markdown] tags=[]
# ## 6.1 The protocol: what each paper did, and what we pin
#
# A recipe (`mmlesson.recipes`) is one paper's setting on one data set: the data and its knobs, the
# shared training fields and each method's own options, with the citation they come from. Every
# chapter and every grid names a recipe instead of copying numbers, so a setting lives in one place.
# The table below is generated from the package:

# %% tags=[]
from mmlesson.chapter import RECIPES

pd.set_option("display.width", 160, "display.max_colwidth", 60)


def protocol_row(recipe):
    train = recipe.train
    schedule = (f"x{train.get('lr_decay', 0.1)} at {', '.join(map(str, train['lr_milestones']))}"
                if train.get("lr_milestones") else "constant")
    options = "; ".join(f"{m}: " + ", ".join(f"{k}={v}" for k, v in o.items()) for m, o in recipe.methods.items())
    return {"recipe": recipe.name, "data": recipe.data, "knobs": ", ".join(f"{k}={v}" for k, v in recipe.data_knobs.items()),
            "epochs": train.get("epochs"), "batch": train.get("batch_size"), "lr": train.get("lr"),
            "weight decay": train.get("weight_decay"), "schedule": schedule, "width": train.get("width"),
            "method options": options}


protocols = pd.DataFrame([protocol_row(r) for r in RECIPES.values() if DATASET == "synthav" or r.data != "synthav"])
protocols if DATASET == "synthav" else protocols.rename(columns={"knobs": "data options"})  # real data: its recipes

# %% [markdown] tags=[]
# What every recipe shares, because the book fixes it (its one protocol):
#
# | | the papers | this book |
# | --- | --- | --- |
# | model selection | the checkpoint best on **test** (OGM-GE, ARL releases; BalanceBenchmark for data sets without a validation split) | the epoch best on a **validation** split carved from train; test is read once |
# | seeds | one (OGM-GE, ARL) or the mean of three (CCAT) | mean ± std, a t-based 95% interval and n over seeds, paired by seed between methods |
# | split | each release its own (MLA: a random 90/10 CREMA-D split) | OGM-GE's lists for CREMA-D and Kinetics-Sounds, the official AVE split; CREMA-D also speaker-independent |
# | audio front-end | 257 x 188 (OGM-GE), 257 x 299 (ARL) | OGM-GE's 3-s 257 x 188 log spectrogram for every method |
# | per-modality logits | released code splits the bias (OGM-GE: b/2 each) or uses separate heads | the fusion's own branch: the same head with the other modality's features zeroed |
#
# Where a recipe departs from its paper, its `notes` say so:

# %% tags=[]
for recipe in (r for r in RECIPES.values() if DATASET == "synthav" or r.data != "synthav"):
    print(f"{recipe.name:32s} {recipe.citation}\n{'':32s} {recipe.notes}")

# %% [markdown] tags=[]
# ## 6.2 Each paper's table is a grid
#
# A grid crosses *arms* (a method with its options) with data settings and seeds. The shipped grid
# files (`mmlesson replicate --list`) reproduce one table each, and carry the paper's published
# numbers so that the report can put them beside ours:

# %% tags=[]
from mmlesson.chapter import load_grid, shipped_grids

rows = []
for name in shipped_grids():
    grid = load_grid(name)
    recipes = [grid.recipe, *(spec.get("recipe") for spec in grid.data.values())]
    if DATASET != "synthav" and "synthav" in {RECIPES[r].data for r in recipes if r}:
        continue  # on a real data set, the real data sets' grids
    published = grid.table.get("published", {})
    rows.append({"grid": name, "recipe": grid.recipe, "arms": ", ".join(grid.arms), "seeds": len(grid.seeds),
                 "published numbers": sum(len(v) for v in published.values()),
                 "source": grid.table.get("source", "")})
pd.DataFrame(rows)

# %% [markdown] tags=[]
# A grid file is plain TOML. The ARL grid for CREMA-D, for example, names the recipe, the seeds, one
# table per arm, and the paper's Table 1 numbers:

# %% tags=[]
from mmlesson.chapter import GRIDS_DIR

print((GRIDS_DIR / "arl-cremad.toml").read_text())

# %% [markdown] tags=[]
# ## 6.3 Running a table: one GPU, several GPUs, a cluster
#
# With a prepared cache (`mmlesson data prepare cremad --raw RAW --root /data/cremad`, see the
# appendix) one command trains a table and prints it beside the paper's numbers:
#
# ```bash
# mmlesson replicate arl-cremad --root /data/cremad --results results
# mmlesson replicate arl-cremad --root /data/cremad --results results --dry-run   # what would be trained
# mmlesson report results                                                           # the tables again
# ```
#
# What happens:
#
# * **Where runs live.** Every run is named by its identity (the data's content, the method and its
#   own options, the shared training fields, the seed; never the device or the path of the data), in
#   `results/<data>-<hash>/<method>-<hash>/seed<N>/`. A run asked for by two grids, or by a grid and a
#   chapter, is trained once. `results/index.csv` lists every run with its status.
# * **In parallel.** Runs execute on [Dask](https://distributed.dask.org): by default a local cluster
#   with one single-threaded worker per CPU core, or one worker per GPU, each pinned to its GPU with
#   `CUDA_VISIBLE_DEVICES` (`--per-gpu 2` puts two small runs on each GPU). Each run is its own
#   process with a time limit, so a crash or an out-of-memory kill takes out one run, not the others.
# * **Failures and restarts.** A failing run is retried (`--retries`), then recorded in its directory
#   and in the report; the rest of the grid goes on. Kill the command at any moment and run it again:
#   complete runs are read back, interrupted ones resume from their last epoch's checkpoint.
#
# On a cluster, start Dask workers however the cluster likes and pass the scheduler's address; with
# Slurm, [dask-jobqueue](https://jobqueue.dask.org) does it from Python (`pip install dask-jobqueue`):
#
# ```python
# from dask_jobqueue import SLURMCluster
# import mmlesson
#
# cluster = SLURMCluster(cores=4, processes=1, memory="32GB", walltime="12:00:00",
#                        job_extra_directives=["--gres=gpu:1"])
# cluster.scale(jobs=8)                       # eight GPU jobs, one Dask worker each
# runs = mmlesson.run_grid(mmlesson.load_grid("arl-cremad"), "results", scheduler=cluster.scheduler_address,
#                          roots="/scratch/data/cremad")
# ```
#
# or from the shell, `mmlesson replicate arl-cremad --scheduler tcp://HOST:8786 --root ...`. The
# results directory must be on a file system every node sees.
#
# **Chapters in batch.** A grid file may also list chapters to execute with papermill
# (`[notebooks] chapters = ["../book/ch02_ogm_ge.ipynb"]` with `parameters = {DATASET = "cremad",
# DATA_DIR = "/data/cremad"}`); each executes in its own process into `results/notebooks/` with its
# runs in the same store. A single chapter also runs under plain papermill:
# `papermill book/ch03_arl.ipynb out.ipynb -p DATASET cremad -p DATA_DIR /data/cremad`.

# %% [markdown] tags=[]
# ## 6.4 The SynthAV edition of the combined table
#
# Without a GPU or a data set, the same runner trains the combined table on SynthAV (`GRID =
# "synthav-combined"`: the severe regime of Chapters 1-5, where the audio network fits its training
# clips within a few epochs and the visual encoder starves). Every method of the book, under one
# recipe, over the seeds of the parameters cell, all at the one protocol learning rate chosen on joint
# training's validation accuracy (Chapter 1), two runs at a time on the two cores of the machine that
# built this book.
# Runs that Chapters 1-5 trained with the same identity are read back, not retrained. With
# `DATASET = "cremad"` (or another real data set) and `DATA_DIR`, this section trains ARL's Table 1
# grid for that data set instead, at the paper's rate.

# %% tags=["hide-input"]
from mmlesson.chapter import caption, paper_table, with_learning_rates

grid = load_grid(GRID)
grid.seeds = list(SEEDS)
if DATASET == "synthav":
    if SMOKE:  # CCAT's classifier pre-training, cut with the rest of the run
        grid.cut_to(chapter.train["epochs"])
    grid.train = {**grid.train, **chapter.train}
    grid.data = {label: {**spec, "data_knobs": {**spec.get("data_knobs", {}), **chapter.data_knobs}}
                 for label, spec in grid.data.items()}
    book_name = {"concat": "joint (concat)", "sum": "joint (sum)"}  # the grid's names for the book's arms
    rates = {arm: RATES[book_name.get(arm, arm)] for arm in grid.arms}
    grid.arms = with_learning_rates(grid.arms, rates)
    print("learning rates (the protocol's, Chapter 1):", rates)
else:  # the same arms under the real data set's recipe (CCAT's fusion baselines use its protocol too)
    grid = load_grid(f"arl-{DATASET}")
    grid.seeds = list(SEEDS)
    grid.train = {**grid.train, **chapter.train}  # a smoke run's epochs and encoders, as setup printed
    grid.data = {label: {**spec, "data_knobs": {**spec.get("data_knobs", {}), **chapter.data_knobs}}
                 for label, spec in grid.data.items()}
runs = chapter.run_grid(grid, quiet=True)  # into the chapter's store, real data from DATA_DIR
print(f"{len(runs)} runs, {int((runs['status'] == 'complete').sum())} complete")
print(caption(grid))
paper_table(runs, grid)

# %% [markdown] tags=[]
# `run_grid` returns one row per run, with its final metrics; everything else (histories, the
# selected model) is reachable from its `run_dir`. A paired comparison needs the runs side by side,
# one column per arm and one row per seed:

# %% tags=[]
accuracy = runs.pivot(index="seed", columns="arm", values="acc")
accuracy.round(3)

# %% [markdown] tags=[]
# ## 6.5 What the table says, with its uncertainty
#
# Each claim compares two arms over the same seeds. We fix, before looking at the numbers, the
# smallest difference in test accuracy that we would call a real effect: **one point** (0.01). A
# claim is *better by* or *worse by* when the paired t-test rejects no difference; *no difference that
# matters* (or *a real but negligible difference*, when it is also significant) when two one-sided
# tests put the difference inside ±0.01; and *undetermined* otherwise, with the number of seeds whose
# interval would be narrow enough to decide it (planned from the one point, not from the observed
# difference). The p-values of the chapter's claims are corrected together (Holm), and
# each verdict carries the mean paired difference with its 95% confidence interval (`mmlesson.stats`).
# This family of claims is not Chapters 1-5's: a comparison that appears in a chapter too (OGM-GE
# against concatenation, say) is corrected here among these claims and there among that chapter's,
# so near a decision boundary the two verdicts can differ (the [glossary](glossary.md) explains why).

# %% tags=[]
SESOI = 0.01
# the better unimodal model on average over seeds: a per-seed maximum of two test accuracies selects on test
better = max(("audio only", "visual only"), key=lambda arm: accuracy[arm].mean())
accuracy["best unimodal"] = accuracy[better]
PAIRS = {  # name: (claim, treatment arm, control arm)
    "OGM-GE": ("OGM-GE vs concat (fused accuracy)", "OGM-GE", "concat"),
    "ARL": ("ARL vs concat (fused accuracy)", "ARL", "concat"),
    "ARL vs OGM-GE": ("ARL vs OGM-GE (fused accuracy)", "ARL", "OGM-GE"),
    "sum": ("concat vs sum fusion (fused accuracy)", "concat", "sum"),
    "frozen": ("frozen encoders vs concat (fused accuracy)", "frozen encoders", "concat"),
    "best unimodal": ("concat vs the better of the two unimodal models (on average)", "concat", "best unimodal"),
}
# name: (claim, treatment per seed, control per seed, smallest effect of interest), for the arms the grid has
# (a real data set's ARL grid has no sum fusion and no frozen encoders)
CLAIMS = {name: (claim, accuracy[treatment], accuracy[control], SESOI) for name, (claim, treatment, control) in PAIRS.items()
          if treatment in accuracy and control in accuracy}
RETRAINED = list(CLAIMS)  # accuracies of separately trained runs: labelled stable or fragile
verdicts = chapter.judge(CLAIMS, retrained=RETRAINED)

# %% tags=["remove-cell", "nbval-check-output", "nbval-check-numbers"]
chapter.claims(verdicts)  # the book's tests compare these verdicts (tests/nbval_tolerance.py)

# %% tags=["remove-input"]
v = {name: c.verdict_text() for name, c in verdicts.items()}
against = [f"ARL is {v['ARL']}", *([f"the frozen-encoder ensemble {v['frozen']}"] if "frozen" in v else []),
           f"OGM-GE {v['OGM-GE']}"]
chapter.say(
    f"Joint concatenation against the better of its two unimodal models on average ({better.split()[0]} alone): "
    f"{v['best unimodal']} (one row "
    f"of Chapter 1's signature). Against concatenation, {', '.join(against)}"
    + (f"; concatenation against sum fusion, {v['sum']}" if "sum" in v else "")
    + f". ARL against OGM-GE: {v['ARL vs OGM-GE']}.")

# %% [markdown] tags=[]
# ## 6.6 Results at a glance, under a matched protocol
#
# *On SynthAV only: with a real data set (DATASET) this section's cells print nothing.*
#
# The book's first calibration of the severe regime had test splits of six voices each. How much one
# of its runs moved with the seed, and with the float rounding order alone:

# %% tags=["remove-input"]
if DATASET == "synthav":
    first = chapter.stored("precision")["severe"]["precision"]
    chapter.say(f"Over seeds, a joint run's fused accuracy in the first severe calibration varies by "
                f"{first['joint_fused_sd']:.3f}; retrained with two threads instead of one, it moves by "
                f"{first['rerun_mean_abs_change_fused']:.3f} on average (appendix *How precise is this book?*). Its "
                f"fused-accuracy verdicts measured that noise as much as the methods.")

# %% [markdown] tags=[]
# The book's answer is the second calibration, which Chapters 1-5 and section 6.4 now run, and a study
# of every remedy in it whose design was written down before any remedy ran in it:
#
# * **a severe regime measured precisely**: the second calibration of Chapter 1's regime, with 800
#   unseen voices in validation and in test (calibrated on baselines only so that the visual encoder
#   starves in joint training; the appendix gives its signature), and, beside it, the mild regime;
# * **matched controls**: every arm at one learning rate, the one joint concatenation chose on its
#   own ten tuning seeds; every arm for the regime's epochs; CCAT, whose encoders keep a finer last
#   map, also against joint training and the frozen-encoder ensemble trained at its resolution
#   (stride 8);
# * **endpoints that name the claim**: the remedies say they free the weak modality, so the primary
#   endpoints are the visual branch's accuracy and a linear probe on the visual features (smallest
#   effect of interest 0.02); fused accuracy is secondary (0.01), read beside the untrained average of
#   the two unimodal models;
# * **twenty paired seeds**, Holm over the two primary endpoints' claims together and over the
#   secondary's, and each arm of the first ten seeds
#   retrained with two threads: from how far that moves each paired difference, every verdict is
#   labelled *stable* (a re-execution keeps it with probability at least 0.9) or *fragile*.
#
# The runs are stored (`python -m mmlesson.matched --results STORE` trains them, about 80 minutes on
# two cores, and rewrites `mmlesson/grids/synthav-matched.csv`); the book's tests retrain one cell.

# %% tags=["nbval-check-output"]
from mmlesson.chapter import matched

if DATASET == "synthav":
    study = chapter.stored("matched")
    for regime in matched.REGIMES:
        print(f"{regime}: learning rate of every arm {study[study['regime'] == regime]['lr'].dropna().unique().tolist()}")
    display(matched.verdict_table(study, "severe v2"))

# %% tags=["nbval-check-output"]
if DATASET == "synthav":
    display(matched.verdict_table(study, "mild v2"))

# %% tags=["remove-input"]
from mmlesson.plots import plot_paired_differences

if DATASET == "synthav":
    fig, axes = plt.subplots(2, 3, figsize=(9.5, 6.5), sharey=True)
    for row, regime in enumerate(matched.REGIMES):
        for col, endpoint in enumerate(matched.ENDPOINTS):
            plot_paired_differences(axes[row, col], matched.paired_differences(study, regime, endpoint),
                                    matched.matched_comparisons(study, regime, endpoint), title=f"{regime}: {endpoint}",
                                    wrap=30)
            axes[row, col].set_xlabel("paired difference" if row else "")
    axes[0, 0].legend(loc="lower left", fontsize=9)
    fig.tight_layout()
    plt.show()

# %% tags=["remove-input"]
if DATASET == "synthav":  # the matched study's verdicts (they replace 6.5's, which `v` keeps)
    verdicts = {(regime, endpoint): matched.matched_comparisons(study, regime, endpoint)
                for regime in matched.REGIMES for endpoint in matched.ENDPOINTS}
    CONTROL = matched.CONTROL

    def stability(c) -> str:
        return "not re-executed" if c.stable is None else "stable" if c.stable else "fragile"

    def listed(regime: str, endpoint: str, verdict: str) -> str:
        """The remedies with ``verdict`` against joint training, each with its difference and stability."""
        found = verdicts[(regime, endpoint)]
        named = [f"{treatment} ({c.mean:+.3f}, {stability(c)})" for treatment in matched.REMEDIES
                 for c in [found[matched.label(treatment, CONTROL)]] if c.verdict == verdict]
        return ", ".join(named) or "none"

    def fused(regime: str, arm: str) -> float:
        return matched.per_seed(study, regime, "test acc")[arm].mean()


    ccat_controls = {control: verdicts[("severe v2", "fused")][matched.label("CCAT", control)]
                     for control in (f"{CONTROL}, stride 8", "frozen encoders, stride 8")}
    chapter.say(
        f"Where the disease is severe (second calibration, twenty seeds), better than joint training on the visual "
        f"branch: "
        f"{listed('severe v2', 'visual branch', 'better')}; undetermined: {listed('severe v2', 'visual branch', 'undetermined')}. "
        f"On the visual probe: better, {listed('severe v2', 'visual probe', 'better')}; no difference that matters, "
        f"{listed('severe v2', 'visual probe', 'equivalent')}; worse, {listed('severe v2', 'visual probe', 'worse')}. "
        f"In fused accuracy, better: {listed('severe v2', 'fused', 'better')}; undetermined: "
        f"{listed('severe v2', 'fused', 'undetermined')}; worse: {listed('severe v2', 'fused', 'worse')}. Joint training "
        f"scores {fused('severe v2', CONTROL):.3f} there and the untrained average of the two unimodal models "
        f"{fused('severe v2', matched.ENSEMBLE):.3f}. CCAT against joint training at its own resolution: "
        f"{ccat_controls[f'{CONTROL}, stride 8'].verdict_text()}; against the frozen-encoder ensemble at its resolution: "
        f"{ccat_controls['frozen encoders, stride 8'].verdict_text()}. In the mild regime, fused accuracy: better, "
        f"{listed('mild v2', 'fused', 'better')}; no difference that matters, {listed('mild v2', 'fused', 'equivalent')}; "
        f"worse, {listed('mild v2', 'fused', 'worse')}; undetermined, {listed('mild v2', 'fused', 'undetermined')}.")

# %% [markdown] tags=[]
# Each point is one seed's paired difference; the bar is the mean with its 95% interval, the grey
# band the smallest effect of interest. The first calibration's ten-seed table, with each verdict's
# stability label, is in the appendix *How precise is this book?*.

# %% [markdown]
# ## What we found

# %% tags=["remove-input"]
if DATASET == "synthav":
    found = f"""
1. **A paper's setting is a recipe and a paper's table is a grid**, so replicating a table is one command
   (`mmlesson replicate`), on a laptop for SynthAV or on GPUs and clusters for the real data sets, and a run is
   trained once for the whole book.
2. **In the combined table** ({len(SEEDS)} seeds), joint concatenation against the better unimodal model:
   {v['best unimodal']}. ARL against concatenation: {v['ARL']}. The frozen-encoder ensemble: {v['frozen']}.
   OGM-GE: {v['OGM-GE']}."""
else:
    found = f"""
1. **A paper's setting is a recipe and a paper's table is a grid**, so replicating a table is one command
   (`mmlesson replicate`), on GPUs and clusters for the real data sets, and a run is trained once for the whole book.
2. **In ARL's Table 1 on {DATASET}** ({len(SEEDS)} seeds), joint concatenation against the better unimodal model:
   {v['best unimodal']}. ARL against concatenation: {v['ARL']}. OGM-GE: {v['OGM-GE']}. ARL against OGM-GE:
   {v['ARL vs OGM-GE']}."""
if DATASET == "synthav":
    severe_branch, severe_fused = verdicts[("severe v2", "visual branch")], verdicts[("severe v2", "fused")]
    mild_fused = verdicts[("mild v2", "fused")]
    freed = [t for t in matched.REMEDIES if severe_branch[matched.label(t, CONTROL)].verdict == "better"]
    steady = [t for t in matched.REMEDIES if severe_fused[matched.label(t, CONTROL)].verdict == "better"
              and severe_fused[matched.label(t, CONTROL)].stable]
    costs = [t for t in matched.REMEDIES if mild_fused[matched.label(t, CONTROL)].verdict == "worse"]
    largest = max(matched.REMEDIES, key=lambda t: severe_fused[matched.label(t, CONTROL)].mean)
    cost_note = " A remedy for imbalance can cost accuracy where there is little to remedy." if costs else ""
    found += f"""
3. **Under the matched protocol** (6.6: one learning rate, matched resolution, twenty seeds, a regime whose test
   split holds 800 voices), the remedies better than joint training on the visual branch: {', '.join(freed) or 'none'}.
   Better than joint training in fused accuracy and stable under a re-execution: {', '.join(steady) or 'none'}.
   The largest fused gain, {largest}: {severe_fused[matched.label(largest, CONTROL)].verdict_text()}. CCAT against
   the frozen-encoder ensemble at its own resolution: {ccat_controls['frozen encoders, stride 8'].verdict_text()}.
4. **Where the disease is mild**, the remedies that cost fused accuracy: {', '.join(costs) or 'none'}.{cost_note}
5. **The papers report +5.5 to +24.3 points in fused accuracy on CREMA-D.** The simplest remedy,
   training each encoder alone and then only the decision layer, against joint training where the disease is
   severe: {severe_fused[matched.label('frozen encoders', CONTROL)].verdict_text()}."""
if DATASET == "synthav":
    tables = """The real-data tables have not been run here (no GPU and no data set in this build);
`mmlesson replicate` produces them where both exist."""
else:
    tables = (f"This execution trained ARL's Table 1 grid on {DATASET} (section 6.4"
              + (", a smoke run: a few clips and epochs, so its numbers mean nothing" if SMOKE else "")
              + "); `mmlesson replicate` trains the other papers' tables the same way.")
chapter.say(found + """

Where the seeds cannot separate two methods, the verdict says so and how many seeds it would take, instead of
picking a winner; where a re-execution could change a verdict, it is labelled fragile. """ + tables)

# %% [markdown]
# ## Exercises
#
# 1. **One more claim, one more correction.** Add "OGM-GE vs the frozen-encoder ensemble" to the claims
#    of 6.5 and run the cell again. Predict first: can adding a claim change the verdict of a claim that
#    was already there? Which of the six verdicts are nearest to changing, and why does Holm's
#    correction make a family's verdicts depend on its size?
# 2. **A smaller smallest effect.** Set `SESOI = 0.005` and judge the claims again. Which verdicts move,
#    and in which direction? Why must the smallest effect of interest be written down before the runs,
#    and what would it mean to lower it after seeing an "undetermined"?
# 3. **Size a real replication.** `mmlesson replicate arl-cremad --root CACHE --dry-run` prints the grid
#    and, where your store already holds finished runs, an estimate of the time it would take. How many
#    seeds would the largest undetermined claim of 6.5 need, and how long would that grid take on the
#    GPUs you have?
# 4. **Code it: a paired interval.** Write `paired_interval(treatment, control)`: the 95% confidence
#    interval `[low, high]` of the mean paired difference, from the t distribution with $n - 1$ degrees
#    of freedom (`scipy.stats.t.ppf`). The hidden cell under it checks it against `mmlesson.stats` on
#    three pairs of runs.

# %%
def paired_interval(treatment, control):
    """Two equally long sequences of accuracies, paired by seed -> [low, high] of the 95% interval."""
    return None  # your code here


# %% tags=["hide-input", "remove-output"]
import numpy as np

from mmlesson.chapter import check, compare


def package_interval(treatment, control):
    comparison = compare(treatment, control, sesoi=0.01)
    return [comparison.ci_low, comparison.ci_high]


exercise_random = np.random.default_rng(6)
check(paired_interval, package_interval,
      [(exercise_random.normal(0.6, 0.05, n), exercise_random.normal(0.55, 0.05, n)) for n in (3, 10, 30)])
