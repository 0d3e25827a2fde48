"""mmlesson: the package behind the executable book "Balanced Multimodal Learning".

Three lines to train a two-modality model on the built-in SynthAV data::

    import mmlesson
    metrics = mmlesson.train(data="synthav", method="joint", fusion="concat", epochs=8, seed=0)
    print(metrics["final"]["branch_acc"])
"""
from .config import TrainConfig
from .engine import evaluate, fit, train
from .errors import ConfigError, IncompleteRun, MMLessonError, TrainingDiverged
from .report import load_metrics

__version__ = "0.1.0"
__all__ = ["ConfigError", "IncompleteRun", "MMLessonError", "TrainConfig", "TrainingDiverged", "evaluate", "fit",
           "load_metrics", "train"]
