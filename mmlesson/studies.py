"""The book's preregistration and its stored studies: runs trained once, kept as rows of a CSV file in
``mmlesson/grids``, so that the chapters' own time goes to the runs their verdicts and analyses need.

``preregistration()`` reads the book's preregistration (the severe regime, its targets, every claim).
``glance_rows`` turns runs into the rows a stored study keeps, ``stored_runs`` turns them back into the
metrics that ``signature`` reads. The results at a glance (``at_a_glance_study``: every method against
joint training, in the severe regime and the mild control) are judged by ``glance_comparisons`` and
tabled by ``glance_table``; the side studies (``side_study_grids``) are the chapters' smaller sweeps.
``python -m mmlesson.book at-a-glance|side-studies`` trains (or reads back) them and writes their files;
``replace_rows`` puts re-run arms into a stored file. ``learning_rate_study`` trains the learning-rate study
whose rows ``rates.choose_learning_rates`` chooses from (``python -m mmlesson.book learning-rates``).
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd

from .arms import CHAPTER4_ARMS, CORE_ARMS, GLANCE_ARMS, SYNTHAV_ARMS
from .errors import ConfigError
from .rates import (LEARNING_RATES, STUDY_FILE, STUDY_SEEDS, choose_learning_rates, protocol_learning_rates,
                    protocol_rate, with_learning_rates)
from .runs import Runs, run_arms
from .signature import BASELINE_ARMS
from .stats import compare, holm

PREREGISTRATION = Path(__file__).with_name("preregistration.toml")  # the severe regime, its targets, every claim


def preregistration() -> dict:
    """The book's preregistration (``PREREGISTRATION``), committed before any remedy ran on the severe regime."""
    return tomllib.loads(PREREGISTRATION.read_text())


def glance_rows(regime: str, runs: dict[str, list[dict]], seeds) -> list[dict]:
    """One row per run: what the at-a-glance table and the signature read (test and validation accuracy,
    branch and probe accuracy per modality, training accuracy per epoch)."""
    rows = []
    for arm, group in runs.items():
        for seed, run in zip(seeds, group):
            test = run["final"]["test"]
            row = {"regime": regime, "arm": arm, "seed": seed, "lr": run["config"]["lr"], "test acc": test["acc"],
                   "val acc": run["final"]["val"]["acc"], "classes": len(test["per_class_acc"]),
                   "train acc": " ".join(f"{e['train'].get('acc', float('nan')):.6g}" for e in run["history"])}
            for m in ("audio", "visual"):
                row[f"branch {m}"] = (test.get("branch_acc") or {}).get(m)
                row[f"probe {m}"] = (test.get("probe_acc") or {}).get(m)
            secondary = [e["train"]["secondary_fraction"]["visual"] for e in run["history"]
                         if "secondary_fraction" in e["train"]]
            if secondary:  # CCAT: the share of visual samples under beta, mean over stage 2's epochs
                row["secondary visual"] = sum(secondary) / len(secondary)
            rows.append(row)
    return rows


def stored_runs(study, regime: str) -> Runs:
    """The runs of one regime of a stored at-a-glance study, as the metrics that ``signature`` reads."""
    runs = {}
    for arm, group in study[study["regime"] == regime].sort_values("seed").groupby("arm", sort=False):
        runs[arm] = []
        for row in group.to_dict("records"):
            branches = {m: row[f"branch {m}"] for m in ("audio", "visual") if pd.notna(row[f"branch {m}"])}
            probes = {m: row[f"probe {m}"] for m in ("audio", "visual") if pd.notna(row[f"probe {m}"])}
            runs[arm].append({"config": {"seed": int(row["seed"]), "lr": row["lr"]},
                              "history": [{"train": {"acc": float(a)}} for a in str(row["train acc"]).split()],
                              "final": {"val": {"acc": row["val acc"]},
                                        "test": {"acc": row["test acc"], "branch_acc": branches, "probe_acc": probes,
                                                 "per_class_acc": [None] * int(row["classes"])}}})
    return Runs(runs)


# Results at a glance (Chapter 6): every method against joint training, on the evaluation seeds, in the
# severe regime and in the mild control, each at its regime's protocol rate. Stored, like the learning-rate
# studies, by ``python -m mmlesson.book at-a-glance`` in ``GLANCE_FILE``.
GLANCE_REGIMES = {"severe": "synthav-severe", "mild": "synthav-mild"}
GLANCE_RATES = {"severe": "synthav-severe", "mild": "synthav"}  # the study each regime's rates come from
DIAGNOSED = "severe, recipe rate"  # the baselines as `mmlesson diagnose` trains them (the targets' procedure)
RATE_MATCHED = "joint (concat), OGM-GE's rate"  # the control that separates OGM-GE from its step size
GLANCE_SEEDS = tuple(range(10))
GLANCE_FILE = STUDY_FILE.with_name("synthav-at-a-glance.csv")
# CREMA-D, concatenation fusion: each method's published gain over it, in points, and where it is printed.
PAPER_GAINS = {"OGM-GE": (64.34 - 58.83, "ARL Table 1"), "ARL": (76.61 - 58.83, "ARL Table 1"),
               "MLA": (80.78 - 61.56, "CCAT Table 1"), "CCAT": (85.89 - 61.56, "CCAT Table 1")}


def at_a_glance_study(results=None, seeds=GLANCE_SEEDS, regimes=GLANCE_REGIMES, arms=None):
    """Train (or read back) every arm of ``GLANCE_ARMS`` (or of ``arms``) on ``seeds`` in each regime at its
    protocol rates, with joint training at OGM-GE's rate beside them, and return ``glance_rows`` of all
    of them (a DataFrame)."""
    rows = []
    for regime, recipe in regimes.items():
        rates = protocol_learning_rates(GLANCE_RATES[regime])
        chosen = with_learning_rates(arms or GLANCE_ARMS, rates)
        if arms is None:  # is OGM-GE's gain its step size? joint training at OGM-GE's rate
            chosen[RATE_MATCHED] = dict(GLANCE_ARMS["joint (concat)"], lr=rates["OGM-GE"])
        rows += glance_rows(regime, run_arms(chosen, seeds, recipe, results=results, name=f"glance-{regime}"), seeds)
    if arms is None and "severe" in regimes:  # the preregistered targets' runs: `mmlesson diagnose`, one rate
        runs = run_arms(BASELINE_ARMS, seeds, regimes["severe"], results=results, name="glance-diagnose")
        rows += glance_rows(DIAGNOSED, runs, seeds)
    return pd.DataFrame(rows)


def glance_comparisons(study, regime: str, sesoi: float = 0.01) -> list:
    """Each method minus joint training (concat) in fused test accuracy, paired over seeds, Holm-corrected
    within the regime (the preregistered claims of Chapter 6), then OGM-GE against joint training at
    OGM-GE's own rate (Chapter 2's preregistered control, judged alone)."""
    runs = study[study["regime"] == regime]
    accuracy = runs.pivot(index="seed", columns="arm", values="test acc")
    methods = [arm for arm in GLANCE_ARMS if arm not in ("joint (concat)", "audio only", "visual only")]
    comparisons = holm([compare(accuracy[arm], accuracy["joint (concat)"], sesoi, f"{arm} minus joint (concat), {regime}")
                        for arm in methods])
    rates = runs.groupby("arm")["lr"].first()
    if RATE_MATCHED in accuracy and rates[RATE_MATCHED] != rates["joint (concat)"]:
        # Chapter 2's preregistered control, a claim of its own outside this family (at joint training's own
        # rate it is the same runs as joint training, and the comparison above)
        comparisons += holm([compare(accuracy["OGM-GE"], accuracy[RATE_MATCHED], sesoi,
                                     f"OGM-GE minus {RATE_MATCHED}, {regime}")])
    return comparisons


RATE_MATCHED_CLAIM = "OGM-GE vs the rate-matched joint"  # glance_verdicts' name for Chapter 2's control


def glance_verdicts(study, regime: str, sesoi: float = 0.01) -> dict:
    """``glance_comparisons`` by name: each method's comparison with joint training under the method's arm
    name, Chapter 2's rate-matched control (where the regime has one) under ``RATE_MATCHED_CLAIM``."""
    return {RATE_MATCHED_CLAIM if RATE_MATCHED in c.claim else c.claim.split(" minus ")[0]: c
            for c in glance_comparisons(study, regime, sesoi)}


def glance_table(study, sesoi: float = 0.01):
    """The results at a glance: per method, its gain over joint training with the 95% CI and the verdict
    in the severe and in the mild regime, beside the gain its paper reports on CREMA-D."""
    table = {}
    for regime in GLANCE_REGIMES:
        for arm, c in glance_verdicts(study, regime, sesoi).items():
            table.setdefault(arm, {})[f"{regime}: gain [95% CI]"] = f"{c.mean:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}]"
            table[arm][f"{regime}: verdict"] = c.verdict
    for arm in table:
        for regime in GLANCE_REGIMES:
            table[arm].setdefault(f"{regime}: gain [95% CI]", "-")
            table[arm].setdefault(f"{regime}: verdict", "same runs as above")
        gain = PAPER_GAINS.get(arm)
        table[arm]["CREMA-D, paper"] = f"{gain[0] / 100:+.3f} ({gain[1]})" if gain else "-"
    return pd.DataFrame.from_dict(table, orient="index")


# Side studies, stored like the results at a glance so that the chapters' own time goes to the runs their
# verdicts and analyses need, each under the matched protocol (one rate for every arm of its recipe, chosen on
# joint training's tuning seeds): on the mild regime's generator, Chapter 1's regime map (joint training beside
# each modality alone at two strengths of each); Chapter 2's regime B (the easy modality also the better one);
# in the severe regime, the descriptive few-seed sweeps of Chapters 2 and 4 (OGM-GE's alpha, CCAT's ablations
# and fusion baselines on two seeds, its rank and beta on one tuning seed).
# ``python -m mmlesson.book side-studies`` re-runs them.
SIDE_FILE = STUDY_FILE.with_name("synthav-side-studies.csv")
MAP_AUDIO, MAP_VISUAL, MAP_SEEDS = (0.5, 1.5), (0.7, 2.0), (0, 1, 2)
MAP_RECIPE, REGIME_B_RECIPE, SEVERE_RECIPE = "synthav-mild-v2", "synthav-regime-b-v2", "synthav-severe-v2"
REGIME_B_ARMS = ("audio only", "visual only", "joint (concat)", "OGM-GE")
REGIME_B_SEEDS = tuple(range(10))
FEW_SEEDS, OGM_ALPHAS = (0, 1), (0.1, 0.3, 0.8, 2.6)
SEC_BETA = 0.45  # CCAT's Sec, positive control: a threshold under which a share of the samples falls
CCAT_RANKS, CCAT_BETAS, CCAT_DEFAULT_BETA = (1, 2, 16), (0.15, 0.25, 0.35, 0.45), 0.15  # CCAT's defaults: rank 2, beta 0.15
CCAT_SWEEP_SEED = 100  # a tuning seed: the sweep informs the choice of rank and beta, it judges nothing


def side_study_grids() -> dict[str, tuple[str, dict[str, dict], tuple]]:
    """``{study: (recipe, arms, seeds)}`` of the side studies. In the map, a modality's clips do not depend
    on the other modality's strength (each is drawn from its own random numbers), so one audio-only run
    per audio strength and one visual-only run per visual strength serve every cell of their row."""
    def rated(arms: dict[str, dict], recipe: str) -> dict[str, dict]:  # every arm at the recipe's one rate
        rate = protocol_rate(recipe)
        return {arm: dict(spec, lr=rate) for arm, spec in arms.items()}

    joint, audio, visual = (dict(CORE_ARMS[arm], probe=False) for arm in ("joint (concat)", "audio only", "visual only"))
    cells = {f"joint, audio {a}, visual {v}": dict(joint, data_knobs=dict(audio_strength=a, visual_strength=v))
             for a in MAP_AUDIO for v in MAP_VISUAL}
    cells.update({f"audio only, audio {a}": dict(audio, data_knobs=dict(audio_strength=a)) for a in MAP_AUDIO})
    cells.update({f"visual only, visual {v}": dict(visual, data_knobs=dict(visual_strength=v)) for v in MAP_VISUAL})
    regime_b = {arm: CORE_ARMS[arm] for arm in REGIME_B_ARMS}
    alphas = {f"alpha {a}": dict(method="ogm_ge", alpha=a) for a in OGM_ALPHAS}

    def ccat(**options):
        return dict(CHAPTER4_ARMS["CCAT"], **options)

    two_seeds = {"joint (sum)": SYNTHAV_ARMS["joint (sum)"],
                 **{arm: CHAPTER4_ARMS[arm] for arm in ("joint (FiLM)", "joint (gated)")},
                 "CCAT without Alt": ccat(alternate=False), "CCAT without Sec": ccat(secondary=False),
                 "CCAT without LoRA": ccat(lora=False), "CCAT, lambda 0": ccat(reg_weight=0.0),
                 f"CCAT, beta {SEC_BETA}": ccat(beta=SEC_BETA)}
    sweep = {**{f"rank {r}": ccat(lora_rank=r) for r in CCAT_RANKS},  # rank 2 is the default, beta 0.15's run
             **{f"beta {b}": ccat(beta=b) for b in CCAT_BETAS if b != CCAT_DEFAULT_BETA}}
    return {"regime map": (MAP_RECIPE, rated(cells, MAP_RECIPE), MAP_SEEDS),
            "regime B": (REGIME_B_RECIPE, rated(regime_b, REGIME_B_RECIPE), REGIME_B_SEEDS),
            "OGM-GE alpha": (SEVERE_RECIPE, rated(alphas, SEVERE_RECIPE), FEW_SEEDS),
            "CCAT two seeds": (SEVERE_RECIPE, rated(two_seeds, SEVERE_RECIPE), FEW_SEEDS),
            "CCAT tuning sweep": (SEVERE_RECIPE, rated(sweep, SEVERE_RECIPE), (CCAT_SWEEP_SEED,))}


def side_studies(results=None, seeds=None):
    """Train (or read back) the side studies and return their ``glance_rows`` (``regime`` names the study);
    ``seeds`` overrides every study's seeds (a test's single cell)."""
    rows = []
    for study, (recipe, arms, study_seeds) in side_study_grids().items():
        chosen = study_seeds if seeds is None else seeds
        rows += glance_rows(study, run_arms(arms, chosen, recipe, results=results, name=f"side-{study}"), chosen)
    return pd.DataFrame(rows)


def learning_rate_study(arms: dict[str, dict], recipe: str, data_knobs: dict | None = None, train: dict | None = None,
                        results=None, data_dir=None, name: str = "tuning", rates=LEARNING_RATES,
                        seeds=STUDY_SEEDS, extend_edges: bool = False):
    """Train every arm at every rate on the tuning ``seeds`` and return one row per run: ``arm``,
    ``lr``, ``seed``, ``val acc`` (at the run's selected epoch; empty for a run that failed, e.g. whose loss
    became NaN, with the reason in ``failed``). Arms that read other arms' encoders
    are trained on those at the rate the rule (``choose_learning_rates``) chose for them. With
    ``extend_edges``, an arm whose choice is an end of ``rates`` is also trained one factor-of-two step
    beyond it, and the rule chooses again among all its rates."""
    missing = sorted({s for spec in arms.values() for s in spec.get("encoders_from") or () if s not in arms})
    if missing:
        raise ConfigError(f"the study's arms read the encoders of {', '.join(missing)}, which it does not train: "
                          f"add them to its arms (with_sources)")
    independent = [a for a, spec in arms.items() if not spec.get("encoders_from")]
    dependent = [a for a in arms if a not in independent]
    rows = []

    def label(arm, rate):
        return f"{arm} @ lr {rate}"

    def study_rows(arm_rates, runs):  # one row per (arm, rate) x seed: its validation accuracy
        return [{"arm": arm, "lr": rate, "seed": seed, "val acc": run["final"]["val"]["acc"] if "final" in run else None,
                 "failed": failure_reason(run)} for arm, rate in arm_rates for seed, run in zip(seeds, runs[label(arm, rate)])]

    for stage in (independent, dependent):
        chosen = choose_learning_rates(pd.DataFrame(rows)) if rows else {}
        grid_arms = {}
        for arm in stage:
            spec = dict(arms[arm], probe=False)
            if spec.get("encoders_from"):
                sources = spec["encoders_from"]
                spec["encoders_from"] = [label(source, chosen[source]) for source in sources]
                grid_arms.update({label(s, chosen[s]): dict(arms[s], probe=False, lr=chosen[s]) for s in sources})
            grid_arms.update({label(arm, rate): dict(spec, lr=rate) for rate in rates})
        if not grid_arms:
            continue
        runs = run_arms(grid_arms, seeds, recipe, data_knobs, train, results, data_dir, name=f"{name}-{len(chosen)}",
                        keep_failed=True)
        rows += study_rows([(arm, rate) for arm in stage for rate in rates], runs)
        if extend_edges:  # a choice at an end of the grid: one factor-of-two step beyond it, then the rule again
            chosen = choose_learning_rates(pd.DataFrame(rows))
            beyond = {arm: (min(rates) / 2 if chosen[arm] == min(rates) else max(rates) * 2) for arm in stage
                      if chosen[arm] in (min(rates), max(rates))}
            if beyond:
                extra = {}
                for arm, rate in beyond.items():
                    spec = dict(grid_arms[label(arm, chosen[arm])], lr=rate)
                    extra[label(arm, rate)] = spec
                    extra.update({source: grid_arms[source] for source in spec.get("encoders_from") or ()})
                runs = run_arms(extra, seeds, recipe, data_knobs, train, results, data_dir,
                                name=f"{name}-{len(chosen)}-edges", keep_failed=True)
                rows += study_rows(beyond.items(), runs)
    return pd.DataFrame(rows)


def with_sources(arms: dict[str, dict], names) -> dict[str, dict]:
    """The arms of ``arms`` named in ``names``, with the arms they read encoders from (whose chosen rates
    theirs are trained on), in ``arms``' order."""
    wanted = set(names) | {source for name in names for source in arms[name].get("encoders_from") or ()}
    return {arm: spec for arm, spec in arms.items() if arm in wanted}


def failure_reason(run: dict) -> str:
    """Why a run failed, without where: the runner's message ends with the run's directory and the
    advice for a retry ("...; the checkpoint ... is kept in DIR; lower --lr ..."), which a stored study
    shipped to readers must not carry."""
    return run.get("failed", "").split("; ")[0]


def replace_rows(stored, fresh, regimes=None):
    """``stored`` with the rows of ``fresh``'s arms (within ``regimes``, if given) replaced by ``fresh``."""
    stale = stored["arm"].isin(fresh["arm"].unique())
    if regimes is not None:
        stale &= stored["regime"].isin(list(regimes))
    return pd.concat([stored[~stale], fresh], ignore_index=True)
