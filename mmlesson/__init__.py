"""mmlesson: the package behind the executable book "Balanced Multimodal Learning".

Three lines to train a two-modality model on the built-in SynthAV data::

    import mmlesson
    metrics = mmlesson.train(data="synthav", method="joint", fusion="concat", epochs=8, seed=0)
    print(metrics["final"]["branch_acc"])
"""
from .config import TrainConfig
from .engine import evaluate, fit, load_run, train
from .errors import ConfigError, IncompleteRun, MMLessonError, TrainingDiverged
from .grid import Grid, load_grid
from .recipes import RECIPES
from .report import load_metrics
from .runner import run_grid

__version__ = "0.1.0"
__all__ = ["ConfigError", "Grid", "IncompleteRun", "MMLessonError", "RECIPES", "TrainConfig", "TrainingDiverged",
           "evaluate", "fit", "load_grid", "load_metrics", "load_run", "run_grid", "train"]
