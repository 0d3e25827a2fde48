"""One chapter's setting in one object, and the one namespace a chapter imports from, so that every
chapter's setup cell is the same few lines (d2l's ``from d2l import torch as d2l`` is the model)::

    from mmlesson.chapter import Chapter
    chapter = Chapter.setup("ogm_ge", DATASET, SEEDS, DEVICE, RESULTS_DIR, DATA_DIR, SMOKE)

A ``Chapter`` owns the paper's protocol (its recipe on real data, the book's severe regime on SynthAV),
the evaluation seeds, the device, the protocol learning rates and the run store, and the verbs that use
them: ``chapter.run(arms)`` trains (or reads back) arms at their protocol rates, ``chapter.run_grid(grid)``
a paper's grid, ``chapter.models(runs)`` reads each run's model back with its data, ``chapter.data()`` and
``chapter.oracle()`` give the data and its Bayes accuracy; ``chapter.judge(claims)`` compares a short
table of claims over the seeds, Holm-corrects them as one family and prints each verdict once, in words;
``chapter.summary``, ``chapter.show_code`` and ``chapter.say`` put a table, a method's own code and a
finding on the page; ``chapter.checked`` and ``chapter.claims`` print the lines the book's tests compare;
``Chapter.stored(study)`` reads a stored study. Every other name a chapter uses (the arm catalogues,
``RECIPES``, ``metric``, the analyses, the stored studies' settings, ``compare``, ``check``) is
re-exported from ``toolkit`` (``__all__``): ``from mmlesson.chapter import CORE_ARMS, metric``.

``Chapter.setup`` checks every parameter of the chapter's parameters cell first (``check_parameters``):
a bad value stops the chapter in its setup cell with one line (a ``ConfigError``) that names the
parameter and the fix, before anything is trained or printed.
"""
from __future__ import annotations

import math
import numbers
import os
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__, page, toolkit
from .config import check_device
from .data import DATASETS
from .engine import resolve_device
from .errors import ConfigError, check_choice
from .field import combined_study
from .matched import stored_study as matched_study
from .paths import env_int, make_directory, write_refusal
from .plots import show_paired_differences, use_book_style
from .precision import run_rerun_sd, stored_study as precision_study
from .rates import learning_rate_table, protocol_learning_rates, with_learning_rates
from .recipes import RECIPES
from .runner import run_grid
from .runs import models_and_data, oracle, recipe_data, results_dir, run_arms
from .stats import compare
from .studies import GLANCE_FILE, SIDE_FILE, stored_runs
from .toolkit import *  # noqa: F401,F403 -- the chapter namespace: every name of toolkit.__all__

__all__ = ["Chapter", *toolkit.__all__]

SEVERE = "synthav-severe-v2"  # the book's calibrated SynthAV regime (Chapter 1, section 1.1), at one protocol rate
SMOKE_DATA = dict(train_size=240, val_size=60, test_size=60)  # a seconds-long run that exercises every cell
# ... and on a real data set: a few clips of each split, small frames and tiny encoders (the recipe's own width
# is 64), so that a smoke run costs on a prepared cache what it costs on SynthAV
SMOKE_REAL_DATA = dict(max_clips=60, image_size=32)
SMOKE_REAL_TRAIN = dict(width=8)
DEFAULT_SEEDS = list(range(10))  # the chapters' SEEDS
SMOKE_SEEDS = [0, 1]
SEEDS_EXAMPLE = "e.g. SEEDS = [0, 1, 2]"
# The book's stored studies (trained once by their commands, kept in mmlesson/grids), by the name
# ``Chapter.stored`` takes: a table of runs, or the precision study's JSON document.
STORED_STUDIES = {"side studies": lambda: pd.read_csv(SIDE_FILE), "at a glance": lambda: pd.read_csv(GLANCE_FILE),
                  "matched": matched_study, "field": combined_study, "precision": precision_study}


def setup_session(device: str = "auto", note: str | None = None):
    """The chapters' setup: the device (printed, with ``note`` on the same line, e.g. what a smoke run
    changes), one CPU thread, fixed seeds, the book's figure style. Returns the device. One CPU thread: the
    book's small models run fastest so, runs in parallel do not compete, and every number comes out the same
    however many cores the reader has."""
    resolved = resolve_device(device)
    threads = env_int("MMLESSON_THREADS", minimum=0)  # the same override the runs honour (a rounding-order check)
    if resolved.type == "cpu" and threads != 0:  # 0: torch's default
        torch.set_num_threads(threads or 1)
    torch.manual_seed(0)
    use_book_style()
    line = f"mmlesson {__version__}, torch {torch.__version__}, device: {resolved}"
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


def papers() -> list[str]:
    """The papers a chapter can follow: those with a recipe on a real data set (``<paper>-<dataset>``)."""
    return sorted({r.name[:-len(r.data) - 1] for r in RECIPES.values()
                   if r.data != "synthav" and r.name.endswith(f"-{r.data}")})


def check_smoke(smoke) -> bool:
    """SMOKE as a bool; papermill's ``-p SMOKE false`` passes the string "false", which would read as true."""
    if isinstance(smoke, str):
        word = {"true": "True", "false": "False"}.get(smoke.strip().lower())
        how = (f'-p SMOKE {word} or -y "SMOKE: {word.lower()}"' if word
               else '-p SMOKE True (or False) or -y "SMOKE: true"')
        raise ConfigError(f"SMOKE must be True or False, not the string {smoke!r}; with papermill pass {how}")
    if not isinstance(smoke, bool):
        raise ConfigError(f"SMOKE must be True or False (got {smoke!r})")
    return smoke


def check_seeds(seeds) -> list[int]:
    """SEEDS as a list of distinct non-negative integers (given as a list, a tuple or a range)."""
    shape = f"SEEDS must be a list of non-negative integers, {SEEDS_EXAMPLE} (got {seeds!r})"
    if isinstance(seeds, str):
        raise ConfigError(f'{shape}; with papermill pass -y "SEEDS: [0, 1, 2]"')
    if not isinstance(seeds, (list, tuple, range)):
        raise ConfigError(shape)
    if any(isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0 for seed in seeds):
        raise ConfigError(shape)
    seeds = [int(seed) for seed in seeds]
    if not seeds:
        raise ConfigError(f"SEEDS is empty; give at least one seed, {SEEDS_EXAMPLE}")
    twice = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if twice:
        raise ConfigError(f"SEEDS has {', '.join(map(str, twice))} more than once; give each seed once, e.g. "
                          f"SEEDS = {list(dict.fromkeys(seeds))} (got {seeds})")
    return seeds


def check_dataset(paper: str, dataset) -> str:
    """DATASET as the name of a registered data set (``data.DATASETS``) on which ``paper`` has a protocol."""
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise ConfigError(f"DATASET must be one of the data sets mmlesson knows: {', '.join(sorted(DATASETS))} "
                          f"(got {dataset!r}); e.g. DATASET = \"synthav\"")
    recipe_for(paper, dataset, synthav=SEVERE)  # a paper without a protocol on it: one line listing those it has
    return dataset


def check_data_dir(dataset: str, data_dir) -> None:
    """DATA_DIR: None on SynthAV (generated, not read); on a real data set, the directory of its prepared cache."""
    prepare = f"mmlesson data prepare {dataset} --raw RAW --root {data_dir or 'DIR'}"
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise ConfigError(f"DATA_DIR must be a directory (a path) or None (got {data_dir!r})")
    if dataset == "synthav":
        if data_dir:
            raise ConfigError(f"DATA_DIR is the prepared cache of a real data set, but DATASET = \"synthav\" is "
                              f"generated, not read: set DATA_DIR = None (got {str(data_dir)!r})")
        return
    if not data_dir:
        raise ConfigError(f"DATASET = {dataset!r} is read from a prepared cache: set DATA_DIR to its directory "
                          f"(build it once with `{prepare}`)")
    path = Path(data_dir)
    if not path.is_dir():
        state = "is a file" if path.exists() else "does not exist"
        raise ConfigError(f"DATA_DIR {str(path)!r} {state}; give the directory of the prepared {dataset} cache "
                          f"(build it with `{prepare}`)")


def check_cuda(device: str) -> None:
    """A DEVICE that asks for CUDA on a machine without it (``engine.resolve_device``), as one line naming DEVICE."""
    try:
        resolve_device(device)
    except ConfigError:
        raise ConfigError(f"DEVICE = {device!r} asks for CUDA, but torch sees no CUDA GPU on this machine; set "
                          f"DEVICE = \"auto\" (CUDA if available, else CPU) or \"cpu\"") from None


def check_results_dir(results) -> None:
    """RESULTS_DIR, when given: a directory that can be created and written in (a file is written and removed)."""
    if results is None:
        return
    if not isinstance(results, (str, os.PathLike)):
        raise ConfigError(f"RESULTS_DIR must be a directory (a path) or None for the default store (got {results!r})")
    if not os.fspath(results).strip():
        raise ConfigError("RESULTS_DIR is empty (an unset shell variable?); give a directory, or None for the "
                          "default store (results/ at the top of the repository)")
    make_directory(results, "RESULTS_DIR")  # its refusals name RESULTS_DIR
    if refusal := write_refusal(results):
        raise ConfigError(f"RESULTS_DIR {os.fspath(results)!r} is not writable ({refusal}); give a writable "
                          f"directory, or None for the default store")


def check_parameters(paper: str, dataset, seeds, device, results, data_dir, smoke) -> list[int]:
    """Check a chapter's parameters (its parameters cell: DATASET, SEEDS, DEVICE, RESULTS_DIR, DATA_DIR,
    SMOKE) and the paper it follows; a bad one is a one-line ``ConfigError`` naming it and the fix.
    Returns SEEDS as a list. Creates RESULTS_DIR if given (nothing else)."""
    if not isinstance(paper, str) or paper not in papers():
        raise ConfigError(f"unknown paper {paper!r} in Chapter.setup; choose one of: {', '.join(papers())}")
    check_smoke(smoke)
    seeds = check_seeds(seeds)
    check_device(device, "DEVICE")
    check_dataset(paper, dataset)
    check_data_dir(dataset, data_dir)
    check_cuda(device)
    check_results_dir(results)
    return seeds


def smoke_note(seeds: list[int], synthav: bool, epochs: int) -> str:
    """What a smoke run changes, for the line setup prints."""
    changes = [f"seeds {SMOKE_SEEDS}", "small data" if synthav else "a few clips, small frames, tiny encoders",
               f"{epochs} epoch{'s' * (epochs != 1)}"]
    return f"smoke run: {', '.join(changes)}" + (" (SEEDS is ignored)" if seeds != DEFAULT_SEEDS else "")


@dataclass
class Chapter:
    """A chapter's setting: ``recipe`` (data, optimiser, epochs), ``seeds``, ``data_knobs`` and ``train``
    overrides (the smoke run's), ``rates`` (each arm's protocol learning rate; none on real data, where
    the paper's rate stands), ``device``, the run store ``results`` and ``data_dir``."""

    dataset: str
    recipe: str
    seeds: list
    device: object
    rates: dict = dataclasses.field(default_factory=dict)
    data_knobs: dict = dataclasses.field(default_factory=dict)
    train: dict = dataclasses.field(default_factory=dict)
    results: object = None
    data_dir: object = None

    @classmethod
    def setup(cls, paper: str, dataset: str = "synthav", seeds=range(10), device: str = "auto", results=None,
              data_dir=None, smoke: bool = False, smoke_epochs: int = 1) -> "Chapter":
        """The setting of a chapter on ``paper``'s protocol (``recipes``: ``<paper>-<dataset>``), or on
        the severe SynthAV regime; ``smoke``: two seeds (whatever ``seeds`` says), small data, ``smoke_epochs``
        epochs. Every parameter is checked first (``check_parameters``: one line naming a bad one). Prints
        the versions and the device, and what a smoke run changes (``setup_session``: one CPU thread, fixed seeds)."""
        seeds = check_parameters(paper, dataset, seeds, device, results, data_dir, smoke)
        synthav = dataset == "synthav"
        note = smoke_note(seeds, synthav, smoke_epochs) if smoke else None
        chapter = cls(dataset=dataset, recipe=recipe_for(paper, dataset, synthav=SEVERE),
                      seeds=list(SMOKE_SEEDS) if smoke else seeds, device=setup_session(device, note),
                      rates=protocol_learning_rates(SEVERE) if synthav else {},
                      data_knobs=(dict(SMOKE_DATA if synthav else SMOKE_REAL_DATA) if smoke else {}),
                      train=(dict(epochs=smoke_epochs, **({} if synthav else SMOKE_REAL_TRAIN)) if smoke else {}),
                      results=results, data_dir=data_dir)
        chapter.train["device"] = device  # as asked ("auto"), as every chapter's runs have always been declared
        return chapter

    @property
    def store(self):
        """Where the chapter's runs are kept (``runs.results_dir``)."""
        return results_dir(self.results)

    def run(self, arms: dict[str, dict], name: str, seeds=None, recipe: str | None = None, **options) -> dict:
        """Train (or read back) ``arms`` at their protocol rates (an arm with its own ``lr`` keeps it) on the
        chapter's seeds (or ``seeds``) and recipe (or ``recipe``); ``{arm: [metrics per seed]}``. Where the
        chapter has protocol rates (SynthAV), an arm with neither is refused: it would train at the recipe's
        rate, unlike every arm beside it."""
        unrated = [arm for arm, spec in arms.items() if self.rates and "lr" not in spec and arm not in self.rates]
        if unrated:
            raise ConfigError(f"arm {unrated[0]!r} has no protocol learning rate in {self.recipe}: give it an lr, or "
                              f"add it to the learning-rate study (python -m mmlesson.book learning-rates --recipe "
                              f"{self.recipe} --arms ...)")
        chosen = {arm: spec if "lr" in spec else with_learning_rates({arm: spec}, self.rates)[arm]
                  for arm, spec in arms.items()}
        return run_arms(chosen, self.seeds if seeds is None else seeds, recipe or self.recipe, self.data_knobs,
                        self.train, self.results, self.data_dir, name=name, **options)

    def data(self, seed: int | None = None, recipe: str | None = None):
        """The data set a run with training seed ``seed`` (default: the first evaluation seed) trains on."""
        return recipe_data(recipe or self.recipe, self.seeds[0] if seed is None else seed, self.data_knobs,
                           self.data_dir)

    def oracle(self, recipe: str | None = None) -> dict[str, float]:
        """The oracle (Bayes) accuracy of the chapter's SynthAV data; empty on real data, where none is known."""
        return oracle(recipe or self.recipe, self.data_knobs) if self.dataset == "synthav" else {}

    def models(self, runs: list[dict]) -> list[tuple]:
        """Each run's trained model (a ``RunResult``) with the data set it was trained on, read from the
        chapter's ``data_dir`` on real data (``runs.models_and_data``)."""
        return models_and_data(runs, self.data_dir)

    def run_grid(self, grid, **options):
        """Train (or read back) a paper's ``grid`` in the chapter's run store, real data read from its
        ``data_dir`` (``runner.run_grid``, ``options`` passed on); one row per run."""
        return run_grid(grid, self.store, roots=self.data_dir, **options)

    def learning_rate_table(self, arms: dict[str, dict] | None = None):
        """The stored learning-rate study of the chapter's recipe, arm x rate, the chosen rate marked
        (``rates.learning_rate_table``; ``arms``: only those rows)."""
        return learning_rate_table(arms=arms, recipe=self.recipe)

    @property
    def as_measured(self) -> bool:
        """Whether the chapter trains a SynthAV recipe as the precision study measured it (not a smoke run)."""
        return self.dataset == "synthav" and not self.data_knobs and "epochs" not in self.train

    @property
    def run_rerun_sd(self) -> float | None:
        """How far a re-execution moves one of the chapter's runs (``precision.run_rerun_sd``), measured at the
        chapter's one protocol rate where every arm shares one; None in a smoke run or on real data."""
        if not self.as_measured:
            return None
        rates = set(self.rates.values())
        return run_rerun_sd(self.recipe, lr=rates.pop() if len(rates) == 1 else None)

    @property
    def tolerance(self) -> float:
        """How far a checked mean over the chapter's seeds may move under a re-execution and still be the same
        result: three standard deviations of its change, one run's measured change (``precision.run_rerun_sd``)
        over the square root of the number of seeds, rounded up to 0.005 (the preregistered rule); 0.03 where
        the chapter's regime was not measured."""
        spread = self.run_rerun_sd
        if spread is None:
            return 0.03
        return math.ceil(3 * spread / math.sqrt(len(self.seeds)) / 0.005 - 1e-9) * 0.005

    def judge(self, claims, retrained=(), plot: bool = True):
        """Judge a table of claims, each a row ``(sentence, treatment, control, smallest effect of interest)``
        with the treatment's and the control's values per seed (paired): one Holm family, each verdict
        printed once in words (``Comparison.verdict_text``). ``claims`` is a list of rows, or a dict of
        named rows; the corrected comparisons come back in the same form.

        ``retrained`` names (keys, or indices of a list) the claims that compare accuracies of separately
        trained runs. Where the chapter runs a SynthAV recipe as the precision study measured it (not a smoke
        run), each of them is labelled stable or fragile from one run's measured re-execution spread
        (``precision.run_rerun_sd``), times sqrt(2) where both sides are re-executed (once where one side is
        a constant, such as an oracle); ``plot`` shows their per-seed paired differences beside their
        intervals (``plots.show_paired_differences``). The other claims (ratios, weights, post hoc
        re-weightings of one model) keep the clear / near-its-boundary label."""
        names = list(claims) if isinstance(claims, dict) else list(range(len(claims)))
        rows = list(claims.values()) if isinstance(claims, dict) else list(claims)
        unknown = [name for name in retrained if name not in names]
        if unknown:
            raise ValueError(f"retrained names claims that are not in the table: {unknown}")
        per_run = self.run_rerun_sd
        spreads = []
        for name, (_, treatment, control, _) in zip(names, rows):
            if per_run is None or name not in retrained:
                spreads.append(None)
                continue
            constant = any(np.ptp(np.asarray(side, dtype=float)) == 0 for side in (treatment, control))
            spreads.append(per_run if constant else math.sqrt(2) * per_run)
        verdicts = page.judge([compare(treatment, control, sesoi, sentence)
                               for sentence, treatment, control, sesoi in rows], rerun_sd=spreads)
        if plot:
            shown = [i for i, name in enumerate(names) if name in retrained]
            show_paired_differences([verdicts[i] for i in shown], [rows[i][1:3] for i in shown])
        return dict(zip(names, verdicts)) if isinstance(claims, dict) else verdicts

    @staticmethod
    def claims(verdicts, tolerance: float = 0.03) -> None:
        """Print each verdict (``verdicts``: what ``judge`` returned, a list or a dict) for the book's tests,
        after the tolerance line (``page.claims``; tests/nbval_tolerance.py compares them)."""
        page.claims(list(verdicts.values()) if isinstance(verdicts, dict) else list(verdicts), tolerance)

    def checked(self, values: dict[str, float], tolerance: float | None = None, digits: int = 3) -> None:
        """Print numbers for the book's tests (``page.checked``), each to be found again within ``tolerance``
        (default: the chapter's, ``tolerance``, three standard errors of a re-execution)."""
        page.checked(values, self.tolerance if tolerance is None else tolerance, digits)

    @staticmethod
    def say(text: str) -> None:
        """Show a paragraph whose numbers the code formats in, so a finding never goes stale
        (``page.show_markdown``)."""
        page.show_markdown(text)

    @staticmethod
    def summary(runs: dict[str, list[dict]], columns: dict[str, tuple], oracle_row: dict | None = None):
        """The table of mean ± std over seeds, one row per arm and one column per ``{title: keys}``, with the
        oracle's row where given (``page.summary``)."""
        return page.summary(runs, columns, oracle_row)

    @staticmethod
    def show_code(*objects) -> None:
        """Show a method's own code on the page, as the package runs it (``page.show_code``)."""
        page.show_code(*objects)

    @staticmethod
    def stored(study: str, regime: str | None = None):
        """A stored study of the book (``STORED_STUDIES``): "side studies" (the chapters' smaller sweeps,
        ``studies.SIDE_FILE``), "at a glance" (``studies.GLANCE_FILE``), "matched" (Chapter 6's matched
        study, ``matched.stored_study``) or "field" (Chapter 7's, beside the matched study's rows,
        ``field.combined_study``) as a table of runs, or "precision" (the appendix's,
        ``precision.stored_study``) as its document; with ``regime``, that regime's runs of the side studies
        or of the results at a glance, as the metrics the chapters read (``studies.stored_runs``)."""
        table = STORED_STUDIES[check_choice("stored study", study, STORED_STUDIES)]()
        return table if regime is None else stored_runs(table, regime)
