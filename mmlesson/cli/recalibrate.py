"""``mmlesson recalibrate --run DIR``: per-modality temperatures and per-class modality weights, fitted on
validation and scored on test, written beside a finished run."""
from __future__ import annotations

from pathlib import Path

from ..analysis.recalibration import recalibrate
from ..data import load
from ..engine import load_run
from ..errors import ConfigError
from ..files import atomic_write_json
from ..rundir import RunDirectory

def recalibrate_run(run_dir, root=None, progress: str = "off") -> dict:
    """``mmlesson recalibrate --run DIR [--root CACHE]``: recalibrate a finished run and write
    ``DIR/recalibrated.json`` (atomically) beside its metrics.json. ``root``: where the run's data
    cache is now (the run is found by the data's content, not by the path it was trained from)."""
    config = RunDirectory(run_dir).read_metrics()["config"]
    if config["method"] == "unimodal":
        raise ConfigError(f"{run_dir} is a unimodal run; recalibration needs a model with both modalities")
    dataset = load(config["data"], root=root or config["data_root"], **config["data_knobs"])
    result = load_run(run_dir, dataset)
    report = recalibrate(result.model, dataset, next(result.model.parameters()).device, progress)
    report["run"] = {"method": config["method"], "fusion": config["fusion"], "seed": config["seed"]}
    atomic_write_json(Path(run_dir) / RunDirectory.RECALIBRATED, report)
    return report


def run(args) -> int:
    report = recalibrate_run(args.run, root=args.root, progress=args.progress)
    for variant, scores in report["test"].items():
        print(f"{variant:20s} test acc {scores['acc']:.3f}  macro-F1 {scores['macro_f1']:.3f}  NLL {scores['nll']:.3f}")
    temperatures = ", ".join(f"{m} {t:.3f}" for m, t in report["calibration"]["temperatures"].items())
    print(f"temperatures (fitted on val): {temperatures}")
    print(f"written to {Path(args.run) / RunDirectory.RECALIBRATED}")
    return 0
