"""The imbalance signature of a data set: does joint training leave one modality behind, and how much?

``diagnose(data, seeds)`` trains (or reads back from the run store) the three baselines of the book,
audio alone, visual alone and joint concatenation, under one recipe, and ``signature`` summarises them
over seeds with 95% confidence intervals (Chapter 1 reads it):

* unimodal and fused test accuracy, and joint minus the best unimodal model;
* per modality, the joint model's branch accuracy (``W_m z_m + b``) and linear-probe accuracy on its
  frozen encoder, beside the probe of the encoder trained alone;
* the *weak* modality (the one that loses most by being trained jointly: alone minus its joint branch)
  and that loss, its *starvation*; the other is the *dominant* one;
* per model, the first epoch at which training accuracy reaches 0.95 (and 0.80; the mean over the seeds
  that reach it, ``n`` of them), and the share of seeds on which the dominant model alone passes 0.95
  before the weak one alone reaches 0.80: the race to fit the training set that decides which encoder
  keeps learning (greedy learning);
* on SynthAV, the exact Bayes (oracle) accuracies, and the oracle's margin over joint training.

Beside each row stands CREMA-D's published signature with concatenation fusion, where the papers give
it (``CREMAD_SIGNATURE``). ``python -m mmlesson diagnose`` / ``mmlesson diagnose`` print the same.
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path

import pandas as pd

from .analysis.ensemble import probability_average_accuracy
from .data import trained_on
from .data.synthav import SynthAVConfig, oracle_accuracy
from .engine import load_run
from .errors import ConfigError
from .grid import Grid, checked_seeds
from .recipes import RECIPES, get as get_recipe
from .rundir import load_metrics
from .runs import train_arms
from .stats import correlation, summarise

BASELINE_ARMS = {
    "audio only": dict(method="unimodal", modality="audio"),
    "visual only": dict(method="unimodal", modality="visual"),
    "joint (concat)": dict(method="joint", fusion="concat"),
}
MODALITIES = ("audio", "visual")
FIT_LEVELS = (0.95, 0.80)

# CREMA-D with concatenation fusion, as published (test accuracy, 6 classes): the unimodal and the joint
# model from one table, Wei, Luo and Luo, "Improving Multimodal Learning via Imbalanced Learning", ICCV
# 2025, Table 1 (audio-only 57.27, visual-only 62.17, concatenation 58.83); the joint model's branches from
# "Classifier-Constrained Alternating Training: Mitigating Modality Imbalance in Multimodal Learning"
# (anonymous, under double-blind review), Table 1 (its concatenation model: 61.56,
# audio branch 55.65, visual branch 18.68), the only source that reports them.
CREMAD_SIGNATURE = {
    "chance": 1 / 6, "audio alone": 0.5727, "visual alone": 0.6217, "joint fused": 0.5883,
    "joint branch audio": 0.5565, "joint branch visual": 0.1868,
    "weak alone minus joint branch": 0.6217 - 0.1868, "joint minus best unimodal": 0.5883 - 0.6217,
}
CREMAD_SOURCE = ("CREMA-D, concatenation fusion: unimodal and joint models from ARL (Wei, Luo and Luo, ICCV 2025), "
                 "Table 1; the joint model's branches from CCAT (Classifier-Constrained Alternating Training), Table 1")


def default_recipe(data: str) -> str:
    """The recipe ``diagnose`` uses for ``data``: the book's calibrated SynthAV regime, or OGM-GE's
    protocol on a real data set (the one the published signatures were measured under)."""
    return "synthav-severe-v2" if data == "synthav" else f"ogm_ge-{data}"


def first_epoch_at(accuracies, level: float) -> float:
    """The 1-based epoch at which ``accuracies`` first reach ``level`` (NaN: never)."""
    for epoch, value in enumerate(accuracies, start=1):
        if value >= level:
            return float(epoch)
    return math.nan


def seed_rows(runs: dict[str, list[dict]]) -> list[dict]:
    """One row per seed: every quantity of the signature measured on that seed's three runs."""
    rows = []
    for audio, visual, joint in zip(*(runs[arm] for arm in BASELINE_ARMS)):
        alone = {"audio": audio, "visual": visual}
        test = joint["final"]["test"]
        row = {"seed": joint["config"]["seed"], "joint fused": test["acc"],
               "chance": 1 / len(test["per_class_acc"])}
        for m in MODALITIES:
            row[f"{m} alone"] = alone[m]["final"]["test"]["acc"]
            row[f"joint branch {m}"] = test["branch_acc"][m]
            row[f"joint probe {m}"] = (test.get("probe_acc") or {}).get(m, math.nan)
            row[f"{m} alone probe"] = (alone[m]["final"]["test"].get("probe_acc") or {}).get(m, math.nan)
            row[f"{m} alone minus joint branch"] = row[f"{m} alone"] - row[f"joint branch {m}"]
        row["joint fused (validation)"] = joint["final"]["val"]["acc"]
        for label, metrics in (("audio alone", audio), ("visual alone", visual), ("joint fused", joint)):
            accuracies = [epoch["train"]["acc"] for epoch in metrics["history"]]
            for level in FIT_LEVELS:
                row[f"{label}: epochs to train acc {level:.2f}"] = first_epoch_at(accuracies, level)
        rows.append(row)
    return rows


def signature(runs: dict[str, list[dict]], oracle: dict | None = None, ensemble=None, rerun=None):
    """The signature table of the baselines ``runs`` (``{arm: [metrics per seed]}``, arms as in
    ``BASELINE_ARMS``, seeds in the same order): one row per quantity, with ``mean``, ``ci_low``,
    ``ci_high``, ``n`` and ``CREMA-D``; ``oracle`` (SynthAV's exact accuracies) adds its rows;
    ``ensemble`` (per seed: the test accuracy of the average of the two unimodal models' probabilities)
    and ``rerun`` (per seed: the joint model's metrics when retrained under another float order) add
    theirs. ``frame.attrs`` holds ``weak``, ``dominant``, ``best_unimodal`` (the better model on average
    over seeds, never a per-seed maximum), ``per_seed`` and ``precision`` (``precision``)."""

    missing = [arm for arm in BASELINE_ARMS if not runs.get(arm)]
    if missing:
        raise ConfigError(f"the signature needs runs of {', '.join(BASELINE_ARMS)}; none of {missing[0]!r}")
    per_seed = pd.DataFrame(seed_rows(runs))
    best = max(MODALITIES, key=lambda m: per_seed[f"{m} alone"].mean())  # on average: a per-seed max selects on test
    per_seed["joint minus best unimodal"] = per_seed["joint fused"] - per_seed[f"{best} alone"]
    if ensemble is not None:
        per_seed["unimodal ensemble"] = [float(value) for value in ensemble]
        per_seed["unimodal ensemble minus best unimodal"] = per_seed["unimodal ensemble"] - per_seed[f"{best} alone"]
    if rerun is not None:
        per_seed["joint fused, re-executed"] = [run["final"]["test"]["acc"] for run in rerun]
        per_seed["re-execution: change of joint fused"] = per_seed["joint fused, re-executed"] - per_seed["joint fused"]
        for m in MODALITIES:
            per_seed[f"re-execution: change of joint branch {m}"] = (
                [run["final"]["test"]["branch_acc"][m] for run in rerun] - per_seed[f"joint branch {m}"])
    starvation = {m: per_seed[f"{m} alone minus joint branch"].mean() for m in MODALITIES}
    weak = max(MODALITIES, key=starvation.get)
    dominant = next(m for m in MODALITIES if m != weak)
    per_seed["weak alone minus joint branch"] = per_seed[f"{weak} alone minus joint branch"]
    per_seed["weak probe: alone minus joint"] = per_seed[f"{weak} alone probe"] - per_seed[f"joint probe {weak}"]
    # the race (never = after the run's last epoch): does the dominant model fit before the weak one learns?
    fitted = per_seed[f"{dominant} alone: epochs to train acc 0.95"].fillna(math.inf)
    learnt = per_seed[f"{weak} alone: epochs to train acc 0.80"].fillna(math.inf)
    per_seed["dominant fits before weak learns (share of seeds)"] = (fitted < learnt).astype(float)
    if oracle:
        for name, value in oracle.items():
            per_seed[f"oracle {name}"] = value
        per_seed["oracle fused minus joint"] = oracle["fused"] - per_seed["joint fused"]
    order = (["chance", "audio alone", "visual alone", "joint fused", "joint minus best unimodal"]
             + [c for c in ("unimodal ensemble", "unimodal ensemble minus best unimodal") if c in per_seed]
             + [f"joint branch {m}" for m in MODALITIES] + [f"joint probe {m}" for m in MODALITIES]
             + [f"{m} alone probe" for m in MODALITIES]
             + ["weak alone minus joint branch", "weak probe: alone minus joint"]
             + [c for c in per_seed.columns if "epochs to" in c] + ["dominant fits before weak learns (share of seeds)"]
             + [c for c in per_seed.columns if c.startswith("oracle")])
    table = pd.DataFrame([{"quantity": name, **summarise(per_seed[name].astype(float)),
                           "CREMA-D": CREMAD_SIGNATURE.get(name, math.nan)} for name in order]).set_index("quantity")
    table = table[["mean", "ci_low", "ci_high", "n", "CREMA-D"]]
    table.attrs.update(weak=weak, dominant=dominant, best_unimodal=best, per_seed=per_seed,
                       precision=precision(per_seed), starves=starves(table))
    return table


def starves(table) -> bool | None:
    """Whether the weak modality starves: its loss from joint training (alone minus its joint branch) is above
    zero, interval included (a lone seed: its value); None where neither model alone learns beyond chance
    (lower interval bound at or below chance), so that there is no imbalance to diagnose."""
    chance = table.loc["chance", "mean"]
    if all(table.loc[f"{m} alone", "ci_low"] <= chance for m in MODALITIES):
        return None
    return bool(table.loc["weak alone minus joint branch", "ci_low"] > 0)


def precision(per_seed) -> dict:
    """How precisely the baselines measure (``signature``'s per-seed rows): the spread over seeds of the
    joint model's fused test accuracy; the correlation over seeds of its validation and test accuracy
    (does selection on validation inform?); and, where the seeds were re-executed under another float
    order, the mean absolute change that made to each run's fused test accuracy (training chaos) and the
    standard deviation of that change (what ``stats.with_stability`` needs)."""
    result = {"joint_fused_sd": float(per_seed["joint fused"].std(ddof=1)) if len(per_seed) > 1 else math.nan,
              "val_test_correlation": math.nan, "val_test_correlation_ci": [math.nan, math.nan],
              "seeds": len(per_seed)}
    if len(per_seed) > 2 and per_seed["joint fused (validation)"].std() > 0 and per_seed["joint fused"].std() > 0:
        r = correlation(per_seed["joint fused (validation)"], per_seed["joint fused"])
        result.update(val_test_correlation=r.r, val_test_correlation_ci=[r.ci_low, r.ci_high])
    if "re-execution: change of joint fused" in per_seed:
        for name in ("joint fused", *(f"joint branch {m}" for m in MODALITIES)):
            change = per_seed[f"re-execution: change of {name}"]
            key = name.replace("joint ", "").replace(" ", "_")
            result[f"rerun_mean_abs_change_{key}"] = float(change.abs().mean())
            result[f"rerun_sd_change_{key}"] = float(change.std(ddof=1)) if len(change) > 1 else math.nan
    return result


def as_json(table) -> dict:
    """The machine-readable signature: means over seeds (``chance``, ``fused``, ``weak``, ``dominant``,
    ``oracle`` where known, and per modality ``alone``, ``branch``, ``probe``, ``probe_alone``), the
    epochs to fit, and every row with its interval under ``rows``."""
    mean = table["mean"]
    result = {"chance": mean["chance"], "fused": mean["joint fused"], "weak": table.attrs["weak"],
              "dominant": table.attrs["dominant"], "seeds": [int(s) for s in table.attrs["per_seed"]["seed"]]}
    for m in MODALITIES:
        result[m] = {"alone": mean[f"{m} alone"], "branch": mean[f"joint branch {m}"],
                     "probe": mean[f"joint probe {m}"], "probe_alone": mean[f"{m} alone probe"],
                     "epochs_to_95": mean[f"{m} alone: epochs to train acc 0.95"],
                     "epochs_to_80": mean[f"{m} alone: epochs to train acc 0.80"]}
    if "oracle fused" in mean:
        result["oracle"] = {m: mean[f"oracle {m}"] for m in ("audio", "visual", "fused")}
    result["best_unimodal"] = table.attrs["best_unimodal"]
    result["starves"] = table.attrs["starves"]
    result["weak_means"] = WEAK_MEANS
    if "provenance" in table.attrs:
        result["provenance"] = table.attrs["provenance"]
    result["precision"] = table.attrs["precision"]
    result["rows"] = table.to_dict("index")
    result["per_seed"] = table.attrs["per_seed"].to_dict("records")
    return strict_json(result)


def strict_json(value):
    """``value`` with numpy numbers as Python ones and NaN as None, so that it is strict JSON."""
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    if isinstance(value, str) or value is None:
        return value
    number = float(value)
    if math.isnan(number):
        return None
    return int(value) if isinstance(value, numbers.Integral) else number


def render(table) -> str:
    """The signature as text: each row's mean with its 95% CI, CREMA-D's published value beside it."""
    lines = [f"{'':50s} {'mean':>7s}  {'95% CI':>17s}  {'CREMA-D':>7s}"]
    for name, row in table.iterrows():
        if math.isnan(row["mean"]):
            value, interval = "never", ""
        elif row["n"] > 1 and row["ci_low"] != row["ci_high"]:
            value, interval = f"{row['mean']:7.3f}", f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"
        else:
            value, interval = f"{row['mean']:7.3f}", ""
        published = "" if math.isnan(row["CREMA-D"]) else f"{row['CREMA-D']:.3f}"
        lines.append(f"{name:50s} {value:>7s}  {interval:>17s}  {published:>7s}")
    if "provenance" in table.attrs:
        lines.insert(0, render_provenance(table.attrs["provenance"]))
    if any("epochs to" in c and math.isnan(table.loc[c, "mean"]) for c in table.index):
        lines.append("'never' = not within the run's epochs")
    lines.append(imbalance_line(table))
    lines.append(f"best unimodal model: {table.attrs['best_unimodal']} alone (the better on average over seeds)")
    lines.extend(render_precision(table.attrs["precision"]))
    lines.append(f"CREMA-D column: {CREMAD_SOURCE}")
    lines.append(against_cremad(table))
    return "\n".join(lines)


WEAK_MEANS = ("the weak modality is the one that loses most by being trained jointly: its accuracy alone minus its "
              "branch's in the joint model (its starvation); the other is the dominant one")


def imbalance_line(table) -> str:
    """Which modality starves, with the definition of 'weak' and its interval; or that none does, or that
    neither model alone learns (``starves``)."""
    mean, weak, dominant = table["mean"], table.attrs["weak"], table.attrs["dominant"]
    loss = table.loc["weak alone minus joint branch"]
    interval = f"{loss['mean']:+.3f} [{loss['ci_low']:+.3f}, {loss['ci_high']:+.3f}]"
    verdict = table.attrs["starves"]
    if verdict is None:
        return (f"neither modality alone learns beyond chance (audio {mean['audio alone']:.3f}, visual "
                f"{mean['visual alone']:.3f}, chance {mean['chance']:.3f}): there is no imbalance to diagnose; "
                f"train longer (--epochs) or check the data")
    if not verdict:
        return (f"no modality starves: the larger loss from joint training (accuracy alone minus the joint model's "
                f"branch) is {weak}'s, {interval}, not above zero")
    return (f"weak modality: {weak}, the one that loses most by being trained jointly: alone {mean[f'{weak} alone']:.3f}, "
            f"its branch in the joint model {mean[f'joint branch {weak}']:.3f}, a starvation of {interval}; "
            f"dominant: {dominant}")


def against_cremad(table) -> str:
    """One closing sentence: this signature beside CREMA-D's published one."""
    mean, weak, best = table["mean"], table.attrs["weak"], table.attrs["best_unimodal"]
    published = CREMAD_SIGNATURE
    here = {True: f"here {weak} starves by {mean['weak alone minus joint branch']:.3f}",
            False: "here no modality starves", None: "here neither modality learns"}[table.attrs["starves"]]
    return (f"Against CREMA-D: there the visual modality starves by {published['weak alone minus joint branch']:.3f} "
            f"(alone {published['visual alone']:.3f}, its joint branch {published['joint branch visual']:.3f}) and joint "
            f"training is {published['joint minus best unimodal']:+.3f} from the better unimodal model; {here}, and "
            f"joint training is {mean['joint minus best unimodal']:+.3f} from the better unimodal model ({best} alone).")


def render_provenance(provenance: dict) -> str:
    """One line: what was diagnosed (``diagnose``'s provenance)."""
    knobs = ", ".join(f"{k}={v}" for k, v in provenance["data_knobs"].items()) or "none"
    return (f"diagnosed: {provenance['data']} under recipe {provenance['recipe']} (epochs {provenance['epochs']}, "
            f"learning rate {provenance['lr']}), seeds {' '.join(map(str, provenance['seeds']))}; data knobs given: "
            f"{knobs}" + (f"; cache {provenance['root']}" if provenance.get("root") else ""))


def render_precision(result: dict) -> list[str]:
    """The precision of the measurements (``precision``), one line each."""
    lines = [f"precision: joint fused test accuracy varies by {result['joint_fused_sd']:.3f} (sd) over "
             f"{result['seeds']} seeds"]
    if not math.isnan(result["val_test_correlation"]):
        low, high = result["val_test_correlation_ci"]
        lines.append(f"precision: validation and test accuracy of joint training correlate over seeds, "
                     f"r = {result['val_test_correlation']:+.2f} [{low:+.2f}, {high:+.2f}]")
    if "rerun_mean_abs_change_fused" in result:
        lines.append(f"precision: retrained under another float order, a joint run's fused test accuracy moves by "
                     f"{result['rerun_mean_abs_change_fused']:.3f} on average (sd of the change "
                     f"{result['rerun_sd_change_fused']:.3f}; visual branch {result['rerun_mean_abs_change_branch_visual']:.3f}, "
                     f"audio branch {result['rerun_mean_abs_change_branch_audio']:.3f})")
    return lines


def diagnose(data: str = "synthav", seeds=(100, 101, 102), recipe: str | None = None, data_knobs: dict | None = None,
             root=None, results="results", workers: int | None = None, train: dict | None = None,
             progress: str = "off", rerun_threads: int | None = None):
    """Train (or read back from ``results``) the three baselines of ``data`` under ``recipe`` (default:
    ``default_recipe(data)``) for every seed, and return their ``signature`` (a DataFrame), with the
    untrained ensemble of the two unimodal models. On SynthAV the data set is drawn anew with each seed
    (the recipe's ``seed = "run"``) and ``data_knobs`` change the regime; ``root`` is a real data set's
    prepared cache; ``train`` overrides training fields. ``rerun_threads``: also retrain the joint model
    of every seed with that many CPU threads, one run at a time (another float reduction order), in its
    own store beside ``results``, to measure training chaos."""

    recipe = recipe or default_recipe(data)
    if recipe not in RECIPES:
        raise ConfigError(f"no recipe {recipe!r} for diagnose; choose one of: {', '.join(sorted(RECIPES))}")
    if get_recipe(recipe).data != data:
        raise ConfigError(f"recipe {recipe!r} is for data set {get_recipe(recipe).data!r}, not {data!r}; "
                          f"give --recipe of {data} (or omit it)")
    if data != "synthav" and data_knobs:
        raise ConfigError("--data-knob changes SynthAV only; a real data set's knobs are its cache parameters")
    seeds = checked_seeds(seeds, None)
    grid = Grid(arms=BASELINE_ARMS, seeds=seeds, name=f"diagnose-{recipe}", train=dict(train or {}),
                data={recipe: {"recipe": recipe, "data_knobs": dict(data_knobs or {})}})
    runs = train_arms(grid, results, root, workers, progress)
    run_dirs = {arm: [run["run_dir"] for run in runs[arm]] for arm in BASELINE_ARMS}
    rerun = None
    if rerun_threads:
        joint = {"joint (concat)": BASELINE_ARMS["joint (concat)"]}
        again = Grid(arms=joint, seeds=seeds, name=f"diagnose-{recipe}-threads-{rerun_threads}",
                     train={**dict(train or {}), "threads": rerun_threads}, data=grid.data)
        store = Path(results) / f"float-order-{rerun_threads}-threads"  # the identity ignores threads: its own store
        rerun = train_arms(again, store, root, 1, progress)["joint (concat)"]
    oracle = None
    if data == "synthav":
        knobs = grid.keywords(recipe, "joint (concat)", seeds[0])["data_knobs"]
        oracle = oracle_accuracy(SynthAVConfig.from_knobs(**knobs))  # the same for every seed
    ensemble = [unimodal_ensemble(audio, visual, root)
                for audio, visual in zip(run_dirs["audio only"], run_dirs["visual only"])]
    result = signature(runs, oracle, ensemble=ensemble, rerun=rerun)
    keywords = grid.keywords(recipe, "joint (concat)", seeds[0])
    result.attrs["provenance"] = strict_json({"data": data, "recipe": recipe, "seeds": seeds,
                                              "epochs": keywords["epochs"], "lr": keywords["lr"],
                                              "train_overrides": dict(train or {}), "data_knobs": dict(data_knobs or {}),
                                              "root": str(root) if root else None})
    result.attrs["run_dirs"] = run_dirs  # what was read, for measurements that need the models
    return result


def unimodal_ensemble(audio_dir, visual_dir, root=None) -> float:
    """Test accuracy of the average of the probabilities of two finished unimodal runs (same seed and data)."""
    data = trained_on(load_metrics(audio_dir)["config"], root)
    audio, visual = load_run(audio_dir, dataset=data), load_run(visual_dir, dataset=data)
    device = next(audio.model.parameters()).device
    return probability_average_accuracy([audio.model, visual.model], data.test, device)
