"""mmlesson: the package behind the executable book "Balanced Multimodal Learning".

Three lines to train a two-modality model on the built-in SynthAV data::

    import mmlesson
    metrics = mmlesson.train(data="synthav", method="joint", fusion="concat", epochs=8, seed=0)
    print(metrics["final"]["test"]["branch_acc"])
"""
import importlib

__version__ = "0.1.0"

# Names are imported on first use (PEP 562), so that `import mmlesson` and the runner's Dask workers do
# not pay for importing torch until they need it.
_EXPORTS = {
    "TrainConfig": "config", "evaluate": "engine", "fit": "engine", "load_run": "engine", "train": "engine",
    "ConfigError": "errors", "IncompleteRun": "errors", "MMLessonError": "errors", "TrainingDiverged": "errors",
    "Grid": "grid", "load_grid": "grid", "RECIPES": "recipes", "load_metrics": "rundir", "run_grid": "runner",
    "diagnose": "signature",
}
# Subpackages and modules a user reaches as attributes (``mmlesson.data.load(...)``), imported on first use too.
_SUBMODULES = ("analysis", "book", "data", "methods", "models", "plots", "recipes", "signature", "stats", "tables")
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'mmlesson' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBMODULES))
