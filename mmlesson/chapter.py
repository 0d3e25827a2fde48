"""One chapter's setting in one object, so that every chapter's setup cell is the same few lines
(d2l's ``from d2l import torch as d2l`` is the model)::

    from mmlesson.chapter import Chapter
    chapter = Chapter.setup("ogm_ge", DATASET, SEEDS, DEVICE, RESULTS_DIR, DATA_DIR, SMOKE)

A ``Chapter`` owns the paper's protocol (its recipe on real data, the book's severe regime on SynthAV),
the evaluation seeds, the device, the protocol learning rates and the run store. ``chapter.run(arms)``
trains (or reads back) arms at their protocol rates; ``chapter.judge(claims)`` compares a short table
of claims over the seeds, Holm-corrects them as one family and prints each verdict once, in words.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .book import (judge, oracle, protocol_learning_rates, recipe_data, recipe_for, results_dir, run_arms, setup,
                   show_markdown, with_learning_rates)

SEVERE = "synthav-severe-v2"  # the book's calibrated SynthAV regime (Chapter 1, section 1.1), at one protocol rate
SMOKE_DATA = dict(train_size=240, val_size=60, test_size=60)  # a seconds-long run that exercises every cell


@dataclass
class Chapter:
    """A chapter's setting: ``recipe`` (data, optimiser, epochs), ``seeds``, ``data_knobs`` and ``train``
    overrides (the smoke run's), ``rates`` (each arm's protocol learning rate; none on real data, where
    the paper's rate stands), ``device``, the run store ``results`` and ``data_dir``."""

    dataset: str
    recipe: str
    seeds: list
    device: object
    rates: dict = field(default_factory=dict)
    data_knobs: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    results: object = None
    data_dir: object = None

    @classmethod
    def setup(cls, paper: str, dataset: str = "synthav", seeds=range(10), device: str = "auto", results=None,
              data_dir=None, smoke: bool = False, smoke_epochs: int = 1) -> "Chapter":
        """The setting of a chapter on ``paper``'s protocol (``recipes``: ``<paper>-<dataset>``), or on
        the severe SynthAV regime; ``smoke``: two seeds, small data, ``smoke_epochs`` epochs. Prints the
        versions and the device (``book.setup``: one CPU thread, fixed seeds)."""
        synthav = dataset == "synthav"
        chapter = cls(dataset=dataset, recipe=recipe_for(paper, dataset, synthav=SEVERE),
                      seeds=[0, 1] if smoke else list(seeds), device=setup(device),
                      rates=protocol_learning_rates(SEVERE) if synthav else {},
                      data_knobs=dict(SMOKE_DATA) if smoke and synthav else {},
                      train=dict(epochs=smoke_epochs) if smoke else {}, results=results, data_dir=data_dir)
        chapter.train["device"] = device  # as asked ("auto"), as every chapter's runs have always been declared
        return chapter

    @property
    def store(self):
        """Where the chapter's runs are kept (``book.results_dir``)."""
        return results_dir(self.results)

    def run(self, arms: dict[str, dict], name: str, seeds=None, recipe: str | None = None, **options) -> dict:
        """Train (or read back) ``arms`` at their protocol rates (an arm with its own ``lr`` keeps it) on the
        chapter's seeds (or ``seeds``) and recipe (or ``recipe``); ``{arm: [metrics per seed]}``."""
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

    @property
    def as_measured(self) -> bool:
        """Whether the chapter trains a SynthAV recipe as the precision study measured it (not a smoke run)."""
        return self.dataset == "synthav" and not self.data_knobs and "epochs" not in self.train

    @property
    def run_rerun_sd(self) -> float | None:
        """How far a re-execution moves one of the chapter's runs (``precision.run_rerun_sd``), measured at the
        chapter's one protocol rate where every arm shares one; None in a smoke run or on real data."""
        from .precision import run_rerun_sd

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
        import math

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
        import math

        import numpy as np

        from .stats import compare

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
        verdicts = judge([compare(treatment, control, sesoi, sentence) for sentence, treatment, control, sesoi in rows],
                         rerun_sd=spreads)
        if plot:
            from .plots import show_paired_differences

            shown = [i for i, name in enumerate(names) if name in retrained]
            show_paired_differences([verdicts[i] for i in shown], [rows[i][1:3] for i in shown])
        return dict(zip(names, verdicts)) if isinstance(claims, dict) else verdicts

    @staticmethod
    def say(text: str) -> None:
        """Show a paragraph whose numbers the code formats in, so a finding never goes stale
        (``book.show_markdown``)."""
        show_markdown(text)
