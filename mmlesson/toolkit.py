"""The names a chapter uses beside its ``Chapter`` object, gathered in one namespace (d2l's model):
``mmlesson.chapter`` re-exports every name of ``__all__``, so a chapter imports ``Chapter``, what it needs
from here and the figures it draws, and nothing else::

    from mmlesson.chapter import Chapter            # the setting and its verbs
    from mmlesson.chapter import CORE_ARMS, metric  # a catalogue and a readout, from this module
    from mmlesson.plots import plot_over_epochs     # a figure

Nothing here takes a chapter's setting; what does (train arms, read models back, show code, print the
lines the book's tests compare, read a stored study) is a verb of ``Chapter``. Each name keeps its home
module, given beside it below; this module only gathers them.
"""
from __future__ import annotations

from . import field, matched
from .analysis.decision import decision_summary, weight_blocks, weight_statistics
from .analysis.gradients import additive_gradient_check, counterfactual_gradient_norms
from .analysis.recalibration import collect_logits, recalibrate
from .arms import CHAPTER4_ARMS, CHAPTER5_ARMS, CORE_ARMS, SYNTHAV_ARMS
from .data import REAL_DATASETS, load
from .exercises import check
from .explorer import explorer, plot_explorer, train_briefly
from .grid import GRIDS_DIR, load_grid, shipped_grids
from .models import MultimodalModel
from .page import show_markdown
from .rates import with_learning_rates
from .readouts import metric, per_epoch
from .recipes import RECIPES
from .runs import oracle
from .signature import BASELINE_ARMS, as_json, first_epoch_at, signature
from .targets import check_targets, render_targets, targets_for
from .stats import compare
from .studies import (CCAT_BETAS, CCAT_DEFAULT_BETA, CCAT_RANKS, FEW_SEEDS, MAP_AUDIO, MAP_SEEDS, MAP_VISUAL,
                      OGM_ALPHAS, REGIME_B_RECIPE, SEC_BETA, preregistration, stored_runs)
from .tables import caption, paper_table

__all__ = [
    # the arms the book compares (arms.py) and the papers' protocols (recipes.py)
    "CORE_ARMS", "SYNTHAV_ARMS", "CHAPTER4_ARMS", "CHAPTER5_ARMS", "RECIPES", "with_learning_rates",
    # a final metric over seeds, a history entry over epochs (readouts.py)
    "metric", "per_epoch",
    # data sets and models by name (data, models); a SynthAV recipe's Bayes accuracy at its own knobs (runs.oracle;
    # ``Chapter.oracle``: at the chapter's)
    "REAL_DATASETS", "load", "MultimodalModel", "oracle",
    # the analyses the chapters call (analysis/)
    "additive_gradient_check", "counterfactual_gradient_norms", "collect_logits", "recalibrate",
    "decision_summary", "weight_blocks", "weight_statistics",
    # the imbalance signature and the preregistered targets (signature.py, targets.py, studies.py)
    "BASELINE_ARMS", "signature", "as_json", "first_epoch_at", "check_targets", "render_targets", "targets_for",
    "preregistration",
    # the stored side studies' settings and rows (studies.py; ``Chapter.stored`` reads a study)
    "stored_runs", "MAP_AUDIO", "MAP_VISUAL", "MAP_SEEDS", "FEW_SEEDS", "OGM_ALPHAS", "REGIME_B_RECIPE", "SEC_BETA",
    "CCAT_RANKS", "CCAT_BETAS", "CCAT_DEFAULT_BETA",
    # Chapter 6's matched study and Chapter 7's field study, read by their own names (matched.verdict_table,
    # matched.per_seed, field.verdict_table, ...)
    "matched", "field",
    # grids and the tables of a paper (grid.py, tables.py)
    "GRIDS_DIR", "load_grid", "shipped_grids", "caption", "paper_table",
    # a paired comparison (stats.py), Markdown on the page (page.py), the exercises' checker (exercises.py)
    "compare", "show_markdown", "check",
    # Chapter 1's explorer of the SynthAV knobs (explorer.py)
    "explorer", "plot_explorer", "train_briefly",
]
