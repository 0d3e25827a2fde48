"""What every chapter shares: the setup cell, the run store, training arms over seeds with a learning
rate chosen by one rule, and the tables and claims the chapters print.

``setup(DEVICE)`` picks the device, makes CPU arithmetic single-threaded (the book's small models run
fastest so, runs in parallel do not compete, and every number comes out the same however many cores
the reader has) and prints the versions. ``protocol_learning_rates`` gives each SynthAV arm the step
size the book's one rule chose on validation (``learning_rate_study``); ``run_arms`` declares a grid
(``grid.py``) from a recipe and trains it through the runner into the shared store, so a run that
another chapter already trained is read back, and returns each arm's metrics per seed. ``summary``
and ``checked`` print what the chapters' tables and tests read; ``results_dir`` says where the store is.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError, MMLessonError
from .readouts import metric
from .grid import Grid
from .paths import env_int
from .recipes import RECIPES
from .rundir import load_metrics

RESULTS_ENV = "MMLESSON_RESULTS"


def results_dir(value=None) -> Path:
    """The run store of the chapters: ``value`` if given, else ``$MMLESSON_RESULTS``, else ``results/``
    at the top of the repository when a chapter runs from ``book/``, else ``./results``."""
    if value:
        return Path(value)
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    here = Path.cwd()
    if (here.parent / "_toc.yml").exists():
        return here.parent / "results"
    return here / "results"


def setup(device: str = "auto", note: str | None = None):
    """The chapters' setup: the device (printed, with ``note`` on the same line, e.g. what a smoke run
    changes), one CPU thread, fixed seeds. Returns the device."""
    import torch

    import mmlesson

    from .engine import resolve_device

    resolved = resolve_device(device)
    threads = env_int("MMLESSON_THREADS", minimum=0)  # the same override the runs honour (a rounding-order check)
    if resolved.type == "cpu" and threads != 0:  # 0: torch's default
        torch.set_num_threads(threads or 1)
    torch.manual_seed(0)
    from .plots import use_book_style

    use_book_style()
    line = f"mmlesson {mmlesson.__version__}, torch {torch.__version__}, device: {resolved}"
    print(f"{line}; {note}" if note else line)
    return resolved


def recipe_for(paper: str, dataset: str, synthav: str) -> str:
    """The recipe of ``paper``'s protocol on ``dataset`` (``synthav``: the chapter's own regime)."""
    if dataset == "synthav":
        return synthav
    name = f"{paper}-{dataset}"
    if name not in RECIPES:
        available = sorted(r.data for r in RECIPES.values() if r.name.startswith(f"{paper}-"))
        raise ConfigError(f"no {paper} protocol for DATASET={dataset!r}; choose one of: synthav, "
                          f"{', '.join(available)}")
    return name


def run_arms(arms: dict[str, dict], seeds, recipe: str, data_knobs: dict | None = None, train: dict | None = None,
             results=None, data_dir=None, name: str | None = None, keep_failed: bool = False,
             workers: int | None = None) -> dict[str, list[dict]]:
    """Train (or read back) every arm for every seed under ``recipe`` and return ``{arm: [metrics of
    each seed, in seed order]}``; each metrics dict also carries its ``run_dir``. A failed run stops
    with one line, unless ``keep_failed``: then it stands as ``{"failed": error, "run_dir": ...}``.
    ``workers``: runs trained at once (default: the runner's)."""
    from .runner import run_grid

    grid = Grid(arms=arms, seeds=list(seeds), data={recipe: {"recipe": recipe, "data_knobs": dict(data_knobs or {})}},
                train=dict(train or {}), name=name)
    table = run_grid(grid, results_dir(results), roots=data_dir, quiet=True, workers=workers)
    failed = table[table["status"] != "complete"]
    if keep_failed:
        return {arm: [{**load_metrics(row["run_dir"]), "run_dir": row["run_dir"]} if row["status"] == "complete"
                      else {"failed": row["error"], "run_dir": row["run_dir"]}
                      for row in table[table["arm"] == arm].sort_values("seed").to_dict("records")] for arm in arms}
    if len(failed):
        first = failed.iloc[0]
        raise MMLessonError(f"{len(failed)} runs of {name} failed, e.g. {first['arm']} seed {first['seed']}: "
                            f"{first['error']} ({first['run_dir']})")
    runs = {}
    for arm in arms:
        rows = table[table["arm"] == arm].sort_values("seed")
        runs[arm] = [{**load_metrics(run_dir), "run_dir": run_dir} for run_dir in rows["run_dir"]]
    return runs


# The methods every SynthAV chapter compares (their runs are trained once for the whole book).
CORE_ARMS = {
    "audio only": dict(method="unimodal", modality="audio"),
    "visual only": dict(method="unimodal", modality="visual"),
    "joint (concat)": dict(method="joint", fusion="concat"),
    "OGM-GE": dict(method="ogm_ge"),
    "ARL": dict(method="arl"),
    "frozen encoders": dict(method="frozen_encoders", encoders_from=["audio only", "visual only"]),
}
SYNTHAV_ARMS = {**CORE_ARMS, "joint (sum)": dict(method="joint", fusion="sum")}  # Chapters 1-3, 5 and 6
CHAPTER4_ARMS = {"joint (FiLM)": dict(method="joint", fusion="film"), "joint (gated)": dict(method="joint", fusion="gated"),
                 "MLA": dict(method="mla"), "CCAT": dict(method="ccat")}
# Chapter 5's knob: scaling the visual features by 4 also scales the visual pathway's gradients, so the
# arm gets its own rate (at joint training's 0.1 some seeds' visual encoders die).
CHAPTER5_ARMS = {"joint (concat), visual features x4": dict(method="joint", fusion="concat", feature_scale=(1.0, 4.0))}
STUDY_ARMS = {**SYNTHAV_ARMS, **CHAPTER4_ARMS, **CHAPTER5_ARMS}  # every arm with a protocol rate
LEARNING_RATES = (0.02, 0.05, 0.1)  # regime A's study; the severe regime's grid is wider (preregistration)
PROTOCOL_RATES = (0.01, 0.02, 0.05, 0.1, 0.2)  # the preregistered grid ([severe_v2.protocol])
STUDY_RATES = {"synthav": LEARNING_RATES, "synthav-severe": PROTOCOL_RATES, "synthav-severe-v2": PROTOCOL_RATES,
               "synthav-mild-v2": PROTOCOL_RATES, "synthav-regime-b-v2": PROTOCOL_RATES}
STUDY_SEEDS = (100, 101, 102, 103, 104)  # never used to evaluate: the evaluation seeds are 0, 1, 2, ...
# The second severe calibration's protocol (preregistration, [severe_v2.protocol]): one rate for every arm,
# chosen with joint concatenation alone on its ten tuning seeds.
ONE_RATE_RECIPES = {"synthav-severe-v2": ("joint (concat)", tuple(range(100, 110))),
                    "synthav-mild-v2": ("joint (concat)", tuple(range(100, 110))),
                    "synthav-regime-b-v2": ("joint (concat)", tuple(range(100, 110)))}
STUDY_FILE = Path(__file__).parent / "grids" / "synthav-learning-rates.csv"


PREREGISTRATION = Path(__file__).with_name("preregistration.toml")  # the severe regime, its targets, every claim


def method_source(*objects) -> str:
    """The source of package functions or methods, one after the other, dedented."""
    import inspect
    import textwrap

    return "\n\n".join(textwrap.dedent(inspect.getsource(obj)).rstrip() for obj in objects)


def show_markdown(text: str) -> None:
    """Show Markdown on the page: rendered in a notebook, plain text elsewhere."""
    try:
        from IPython.display import Markdown, display
    except ImportError:  # outside Jupyter without IPython installed
        print(text)
        return
    display(Markdown(text))


def show_code(*objects) -> None:
    """Show a method's own code on the page, as the package runs it (not a copy that could drift):
    a highlighted Python block in a notebook."""
    show_markdown(f"```python\n{method_source(*objects)}\n```")


def preregistration() -> dict:
    """The book's preregistration (``PREREGISTRATION``), committed before any remedy ran on the severe regime."""
    import tomllib

    return tomllib.loads(PREREGISTRATION.read_text())


def study_file(recipe: str = "synthav") -> Path:
    """The stored learning-rate study of a SynthAV recipe (shipped in ``mmlesson/grids``)."""
    return STUDY_FILE.with_name(f"{recipe}-learning-rates.csv")


def learning_rate_study(arms: dict[str, dict], recipe: str, data_knobs: dict | None = None, train: dict | None = None,
                        results=None, data_dir=None, name: str = "tuning", rates=LEARNING_RATES,
                        seeds=STUDY_SEEDS, extend_edges: bool = False):
    """Train every arm at every rate on the tuning ``seeds`` and return one row per run: ``arm``,
    ``lr``, ``seed``, ``val acc`` (at the run's selected epoch; empty for a run that failed, e.g. whose loss
    became NaN, with the reason in ``failed``). Arms that read other arms' encoders
    are trained on those at the rate the rule (``choose_learning_rates``) chose for them. With
    ``extend_edges``, an arm whose choice is an end of ``rates`` is also trained one factor-of-two step
    beyond it, and the rule chooses again among all its rates."""
    import pandas as pd

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


def failure_reason(run: dict) -> str:
    """Why a run failed, without where: the runner's message ends with the run's directory and the
    advice for a retry ("...; the checkpoint ... is kept in DIR; lower --lr ..."), which a stored study
    shipped to readers must not carry."""
    return run.get("failed", "").split("; ")[0]


def choose_learning_rates(study) -> dict[str, float]:
    """The book's one rule for step sizes: for each arm of ``study`` (``learning_rate_study``'s rows),
    the rate with the highest mean validation accuracy over the tuning seeds (ties: the smaller rate).
    A rate at which any tuning run failed (its loss became NaN: no ``val acc``) is not eligible."""
    means = study.groupby(["arm", "lr"])["val acc"].agg(lambda v: v.mean(skipna=False))
    chosen = {}
    for arm in study["arm"].unique():
        rates = means[arm].dropna()
        if rates.empty:
            raise MMLessonError(f"every learning rate of {arm} failed on a tuning seed; try smaller rates")
        chosen[arm] = float(max(rates.index, key=lambda rate: (rates[rate], -rate)))
    return chosen


def protocol_learning_rates(recipe: str = "synthav") -> dict[str, float]:
    """The SynthAV protocol's learning rate of every arm of ``STUDY_ARMS`` under ``recipe``: the rule
    applied to the stored study (``study_file(recipe)``, written by ``python -m mmlesson.book
    learning-rates --recipe RECIPE``; for a recipe of ``ONE_RATE_RECIPES``, the rate its control chose, for
    every arm). The rates are
    fixed once, so that every execution of the book trains the same arms: on one seed, competing rates
    differ by less than a seed's spread, and a choice made per execution flips with float rounding."""
    import pandas as pd

    chosen = choose_learning_rates(pd.read_csv(study_file(recipe)))
    if recipe in ONE_RATE_RECIPES:  # the control's rate, for every arm
        return {arm: chosen[ONE_RATE_RECIPES[recipe][0]] for arm in STUDY_ARMS}
    return chosen


def learning_rate_table(study=None, arms=None, recipe: str = "synthav"):
    """Mean ± std validation accuracy over the tuning seeds, arm x rate, the chosen rate marked ``*``
    (``arms``: only those rows)."""
    import pandas as pd

    from .readouts import fmt

    study = pd.read_csv(study_file(recipe)) if study is None else study
    if arms is not None:
        study = study[study["arm"].isin(list(arms))]
    chosen = choose_learning_rates(study)
    table = {}
    for (arm, rate), group in study.groupby(["arm", "lr"]):
        failed = int(group["val acc"].isna().sum())
        cell = f"failed on {failed} of {len(group)} seeds" if failed else fmt(list(group["val acc"]))
        table.setdefault(arm, {})[rate] = cell + (" *" if chosen[arm] == rate else "  ")
    return pd.DataFrame.from_dict(table, orient="index")


def protocol_rate(recipe: str) -> float:
    """The one protocol learning rate of a one-rate recipe (``ONE_RATE_RECIPES``): the rate its control chose."""
    return protocol_learning_rates(recipe)[ONE_RATE_RECIPES[recipe][0]]


def with_learning_rates(arms: dict[str, dict], rates: dict[str, float]) -> dict[str, dict]:
    """``arms`` with the learning rate ``rates`` gives each (an arm it does not name keeps its recipe's)."""
    return {arm: dict(spec, **({"lr": rates[arm]} if arm in rates else {})) for arm, spec in arms.items()}


def summary(runs: dict[str, list[dict]], columns: dict[str, tuple], oracle_row: dict | None = None):
    """A table of mean ± std over seeds: one row per arm, one column per ``{title: keys into final}``
    (``-`` where an arm has no such number, e.g. a unimodal model's other branch); ``oracle_row``
    (``{title: value}``) adds the oracle's accuracies as a last row."""
    import pandas as pd

    from .readouts import fmt

    rows = {}
    for arm, group in runs.items():
        cells = {}
        for title, keys in columns.items():
            try:
                cells[title] = fmt(metric(group, *keys))
            except (KeyError, TypeError):
                cells[title] = "-"
        rows[arm] = cells
    if oracle_row:
        rows["oracle (Bayes)"] = {title: f"{oracle_row[title]:.3f}" if title in oracle_row else "-" for title in columns}
    return pd.DataFrame.from_dict(rows, orient="index")


def checked(values: dict[str, float], tolerance: float, digits: int = 3) -> None:
    """Print numbers for the book's tests: each within ``tolerance`` of the stored value is a pass
    (tests/nbval_tolerance.py); the tolerance is stated on the first line."""
    print(f"numbers checked to within ±{tolerance}")
    for name, value in values.items():
        print(f"{name}: {value:.{digits}f}")


def judge(comparisons: list, rerun_sd=None) -> list:
    """Holm-correct one family of paired comparisons (``stats.compare``) and print each claim once, with
    its verdict in words (``Comparison.verdict_text``: the difference and its 95% interval); returns them.
    ``rerun_sd``: per claim, the spread a re-execution gives its paired difference (None: not measured); each
    claim with a spread is labelled stable or fragile (``stats.with_stability``)."""
    from .stats import holm, with_stability

    corrected = holm(comparisons)
    labelled = rerun_sd is not None and any(spread is not None for spread in rerun_sd)
    if labelled:
        corrected = with_stability(corrected, list(rerun_sd))
    if corrected:
        seeds = " or ".join(str(n) for n in sorted({c.n for c in corrected}))
        family = f"these {len(corrected)} claims" if len(corrected) > 1 else "this one claim (no correction)"
        print(f"{seeds} paired seeds per claim, 95% intervals, Holm-corrected over {family}"
              + ("; a verdict between retrained runs is labelled by whether a re-execution is predicted to keep it:"
                 if labelled else ":"))
    for c in corrected:
        print(f"- {c.claim}: {c.verdict_text()} (smallest effect of interest {c.sesoi:.3g})")
    return corrected


def claims(comparisons: list, tolerance: float = 0.03) -> None:
    """Print each claim's verdict for the book's tests (``stats.verdict_lines``), after the tolerance."""
    from .stats import verdict_lines

    print(f"numbers checked to within ±{tolerance}")
    print(verdict_lines(comparisons))


def oracle(recipe: str, data_knobs: dict | None = None) -> dict[str, float]:
    """The oracle (Bayes) accuracy of a SynthAV recipe's data (``data.synthav.oracle_accuracy``)."""
    from .data.synthav import SynthAVConfig, oracle_accuracy

    knobs = {**RECIPES[recipe].data_knobs, **(data_knobs or {})}
    knobs.pop("seed", None)  # the oracle is the same for every draw of the data (a recipe's seed may be "run")
    return oracle_accuracy(SynthAVConfig.from_knobs(**knobs))


def load_models(runs: list[dict], dataset=None) -> list:
    """The trained models of ``runs`` (metrics dicts from ``run_arms``), read back from their directories
    as ``RunResult`` (model, metrics, directory); each on its own data set unless ``dataset`` is given."""
    from .engine import load_run

    return [load_run(run["run_dir"], dataset=dataset) for run in runs]


def run_data(run: dict, data_dir=None):
    """The data set ``run`` (a metrics dict) was trained on (``data.trained_on``)."""
    from .data import trained_on

    return trained_on(run["config"], data_dir)


def recipe_data(recipe: str, seed: int, data_knobs: dict | None = None, data_dir=None):
    """The data set a run of ``recipe`` with training seed ``seed`` trains on (its own draw where the
    recipe's data seed is ``"run"``)."""
    from .data import load
    from .recipes import with_data_seed

    knobs = with_data_seed({"seed": seed, "data_knobs": {**RECIPES[recipe].data_knobs, **(data_knobs or {})}})
    return load(RECIPES[recipe].data, root=data_dir, **knobs["data_knobs"])


def models_and_data(runs: list[dict], data_dir=None) -> list[tuple]:
    """``(RunResult, data set)`` of each of ``runs``: its trained model with the data it was trained on."""
    from .engine import load_run

    pairs = []
    for run in runs:
        data = run_data(run, data_dir)
        pairs.append((load_run(run["run_dir"], dataset=data), data))
    return pairs


# Results at a glance (Chapter 6): every method against joint training, on the evaluation seeds, in the
# severe regime and in the mild control, each at its regime's protocol rate. Stored, like the learning-rate
# studies, by ``python -m mmlesson.book at-a-glance`` in ``GLANCE_FILE``.
GLANCE_ARMS = {**SYNTHAV_ARMS, "MLA": CHAPTER4_ARMS["MLA"], "CCAT": CHAPTER4_ARMS["CCAT"]}
GLANCE_REGIMES = {"severe": "synthav-severe", "mild": "synthav-mild"}
GLANCE_RATES = {"severe": "synthav-severe", "mild": "synthav"}  # the study each regime's rates come from
DIAGNOSED = "severe, recipe rate"  # the baselines as `mmlesson diagnose` trains them (the targets' procedure)
RATE_MATCHED = "joint (concat), OGM-GE's rate"  # the control that separates OGM-GE from its step size
GLANCE_SEEDS = tuple(range(10))
GLANCE_FILE = STUDY_FILE.with_name("synthav-at-a-glance.csv")
# CREMA-D, concatenation fusion: each method's published gain over it, in points, and where it is printed.
PAPER_GAINS = {"OGM-GE": (64.34 - 58.83, "ARL Table 1"), "ARL": (76.61 - 58.83, "ARL Table 1"),
               "MLA": (80.78 - 61.56, "CCAT Table 1"), "CCAT": (85.89 - 61.56, "CCAT Table 1")}


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


def at_a_glance_study(results=None, seeds=GLANCE_SEEDS, regimes=GLANCE_REGIMES, arms=None):
    """Train (or read back) every arm of ``GLANCE_ARMS`` (or of ``arms``) on ``seeds`` in each regime at its
    protocol rates, with joint training at OGM-GE's rate beside them, and return ``glance_rows`` of all
    of them (a DataFrame)."""
    import pandas as pd

    rows = []
    for regime, recipe in regimes.items():
        rates = protocol_learning_rates(GLANCE_RATES[regime])
        chosen = with_learning_rates(arms or GLANCE_ARMS, rates)
        if arms is None:  # is OGM-GE's gain its step size? joint training at OGM-GE's rate
            chosen[RATE_MATCHED] = dict(GLANCE_ARMS["joint (concat)"], lr=rates["OGM-GE"])
        rows += glance_rows(regime, run_arms(chosen, seeds, recipe, results=results, name=f"glance-{regime}"), seeds)
    if arms is None and "severe" in regimes:  # the preregistered targets' runs: `mmlesson diagnose`, one rate
        from .signature import BASELINE_ARMS

        runs = run_arms(BASELINE_ARMS, seeds, regimes["severe"], results=results, name="glance-diagnose")
        rows += glance_rows(DIAGNOSED, runs, seeds)
    return pd.DataFrame(rows)


def stored_runs(study, regime: str) -> dict[str, list[dict]]:
    """The runs of one regime of a stored at-a-glance study, as the metrics that ``signature`` reads."""
    import pandas as pd

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
    return runs


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
    import pandas as pd

    rows = []
    for study, (recipe, arms, study_seeds) in side_study_grids().items():
        chosen = study_seeds if seeds is None else seeds
        rows += glance_rows(study, run_arms(arms, chosen, recipe, results=results, name=f"side-{study}"), chosen)
    return pd.DataFrame(rows)


def glance_comparisons(study, regime: str, sesoi: float = 0.01) -> list:
    """Each method minus joint training (concat) in fused test accuracy, paired over seeds, Holm-corrected
    within the regime (the preregistered claims of Chapter 6), then OGM-GE against joint training at
    OGM-GE's own rate (Chapter 2's preregistered control, judged alone)."""
    from .stats import compare, holm

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
    import pandas as pd

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


def replace_rows(stored, fresh, regimes=None):
    """``stored`` with the rows of ``fresh``'s arms (within ``regimes``, if given) replaced by ``fresh``."""
    import pandas as pd

    stale = stored["arm"].isin(fresh["arm"].unique())
    if regimes is not None:
        stale &= stored["regime"].isin(list(regimes))
    return pd.concat([stored[~stale], fresh], ignore_index=True)


def main(argv=None) -> int:
    """``python -m mmlesson.book learning-rates|at-a-glance|side-studies [--recipe R] [--arms A ...] [--results
    DIR]``: run a stored study of the book (the learning-rate study of a SynthAV recipe: every arm of
    ``STUDY_ARMS`` x its rates x ``STUDY_SEEDS``; the results at a glance; the side studies) through the
    runner and write it to its file in ``mmlesson/grids``. ``--arms`` re-runs only those arms and replaces their rows in the stored file
    (after a change to one method)."""
    import argparse

    import pandas as pd

    from .files import atomic_write

    parser = argparse.ArgumentParser(prog="python -m mmlesson.book", description=main.__doc__.split(":")[0])
    parser.add_argument("study", choices=["learning-rates", "at-a-glance", "side-studies"])
    parser.add_argument("--results", help="run store (default: $MMLESSON_RESULTS or ./results)")
    parser.add_argument("--recipe", default="synthav", choices=sorted(STUDY_RATES),
                        help="the SynthAV regime (default: %(default)s)")
    parser.add_argument("--out", default=None, help="where the study's rows go (default: the shipped study file "
                                                    "of the recipe, mmlesson/grids/RECIPE-learning-rates.csv)")
    parser.add_argument("--arms", nargs="+", metavar="ARM", choices=sorted(STUDY_ARMS),
                        help="re-run only these arms and replace their rows in the stored study")
    args = parser.parse_args(argv)
    if args.study == "side-studies":
        text = side_studies(results=args.results).to_csv(index=False, float_format="%.6g").encode()
        atomic_write(Path(args.out or SIDE_FILE), lambda f: f.write(text))
        print(f"wrote {args.out or SIDE_FILE}")
        return 0
    if args.study == "at-a-glance":
        arms = {arm: GLANCE_ARMS[arm] for arm in args.arms} if args.arms else None
        study = at_a_glance_study(results=args.results, arms=arms)
        if arms:
            study = replace_rows(pd.read_csv(args.out or GLANCE_FILE), study, GLANCE_REGIMES)
        text = study.to_csv(index=False, float_format="%.6g").encode()
        atomic_write(Path(args.out or GLANCE_FILE), lambda f: f.write(text))
        print(glance_table(study).to_string())
        return 0
    wide = args.recipe != "synthav"  # regime A's study keeps the three rates it was run with
    arms = {arm: STUDY_ARMS[arm] for arm in args.arms} if args.arms else STUDY_ARMS
    seeds = STUDY_SEEDS
    if args.recipe in ONE_RATE_RECIPES:  # one rate for every arm, chosen on the control alone
        control, seeds = ONE_RATE_RECIPES[args.recipe]
        if args.arms:
            parser.error(f"{args.recipe} has one rate for every arm, chosen on {control} alone: drop --arms")
        arms = {control: STUDY_ARMS[control]}
    study = learning_rate_study(arms, args.recipe, results=args.results, rates=STUDY_RATES[args.recipe],
                                extend_edges=wide, name=f"tuning-{args.recipe}", seeds=seeds)
    args.out = args.out or str(study_file(args.recipe))
    if args.arms and Path(args.out).exists():
        study = replace_rows(pd.read_csv(args.out), study)
    text = study.to_csv(index=False, float_format="%.6g").encode()
    atomic_write(Path(args.out), lambda f: f.write(text))
    print(learning_rate_table(study).to_string())
    print("chosen:", choose_learning_rates(study))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
