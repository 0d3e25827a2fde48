"""The last step of ``benchmarks/gpu_check.sh``: read what each step left in OUTDIR/raw/ and write
OUTDIR/gpu_check.json (every figure, each step's outcome) and OUTDIR/summary.txt (printed too).

    python benchmarks/gpu_check_report.py OUTDIR --device-info "NAME|TORCH" --toy 0 --command CMD --seconds S

Figures come only from steps that finished; a failed or timed-out step has ``null`` figures and its
status in the summary. Standard library only, so that it runs even where the steps could not.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import time
from pathlib import Path

# the workloads and the steps that measure them (the runner: one step per number of workers per GPU)
WORKLOADS = ("pytest_gpu", "train_throughput", "loader_throughput", "train_cremad", "runner")


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_steps(raw: Path) -> dict[str, dict]:
    with open(raw / "steps.tsv") as handle:
        return {row["step"]: {"status": row["status"], "seconds": round(float(row["ended"]) - float(row["started"]), 1),
                              "limit_seconds": int(row["limit"])}
                for row in csv.DictReader(handle, delimiter="\t")}


def pytest_result(log: Path) -> str | None:
    """pytest's last line, e.g. ``12 passed, 3 deselected in 40.1s``."""
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return None
    return next((line.strip("= ") for line in reversed(lines)
                 if re.search(r"\d+ (passed|failed|skipped|error|deselected)", line)), None)


def ratio(a, b):
    return round(a / b, 2) if a and b else None


def train_throughput(rows: list[dict]) -> dict:
    figures = {}
    for row in rows:
        p = row["precision"]
        figures.update({f"{p}_samples_per_s": row["samples_per_second"], f"{p}_peak_memory_gib": row["peak_memory_gib"],
                        f"{p}_achieved_tflops": row["achieved_tflops"],
                        f"{p}_fraction_of_bf16_peak": row["fraction_of_bf16_peak"]})
    return figures


def loader_throughput(rows: list[dict]) -> dict:
    def rate(resident: bool, with_step: bool):
        return next((row["samples_per_s"] for row in rows if "pipeline" in row and row["model_step"] == with_step
                     and (row["pipeline"] != "files") == resident), None)

    figures = {}
    for suffix, with_step in (("", False), ("_with_step", True)):
        files, resident = rate(False, with_step), rate(True, with_step)
        figures.update({f"files{suffix}_samples_per_s": files, f"resident{suffix}_samples_per_s": resident,
                        f"resident_over_files{suffix}": ratio(resident, files)})
    return figures


def train_cremad(metrics: dict, seconds: float) -> dict:
    """The run's epochs and seconds, and 100 epochs extrapolated: the whole command (start, data, final
    evaluation) plus each missing epoch at the mean of the epochs after the first (which warms up)."""
    epochs = [h["seconds"] for h in metrics["history"]]
    steady = epochs[1:] or epochs
    epoch = sum(steady) / len(steady)
    return {"epochs": len(epochs), "train_clips": metrics["data"]["sizes"]["train"], "seconds": seconds,
            "first_epoch_seconds": round(epochs[0], 2), "epoch_seconds": round(epoch, 2),
            "extrapolated_100_epochs_seconds": round(seconds + (100 - len(epochs)) * epoch, 1)}


def figures_of(out: Path, steps: dict[str, dict]) -> dict[str, dict | None]:
    raw = out / "raw"

    def finished(name: str):
        return read_json(raw / f"{name}.json") if steps.get(name, {}).get("status") == "ok" else None

    figures: dict[str, dict | None] = dict.fromkeys(WORKLOADS)
    if steps.get("pytest_gpu", {}).get("status") == "ok":
        figures["pytest_gpu"] = {"result": pytest_result(out / "logs" / "pytest_gpu.log")}
    if finished("train_throughput"):
        figures["train_throughput"] = train_throughput(finished("train_throughput"))
    if finished("loader_throughput"):
        figures["loader_throughput"] = loader_throughput(finished("loader_throughput"))
    if finished("train_cremad"):
        figures["train_cremad"] = train_cremad(finished("train_cremad"), steps["train_cremad"]["seconds"])
    runners = [finished(name) for name in steps if name.startswith("runner_k")]
    if any(runners):
        figures["runner"] = {f"k{r['per_gpu']}_runs_per_minute": r["runs_per_minute"] for r in runners if r}
    return figures


def number(value, digits: int = 0) -> str:
    return "?" if value is None else f"{value:,.{digits}f}"


def describe(name: str, figures: dict, out: Path) -> str:
    """One line of the summary: what the step measured."""
    if name == "pytest_gpu":
        return figures["pytest_gpu"]["result"] or "see logs/pytest_gpu.log"
    if name == "train_throughput":
        f = figures[name]
        line = (f"CREMA-D-shaped training step: fp32 {number(f.get('fp32_samples_per_s'))} samples/s "
                f"({number(f.get('fp32_peak_memory_gib'), 1)} GiB), bf16 {number(f.get('bf16_samples_per_s'))} "
                f"samples/s ({number(f.get('bf16_peak_memory_gib'), 1)} GiB)")
        fraction = f.get("bf16_fraction_of_bf16_peak")
        return line + (f", bf16 at {fraction:.1%} of the device's bf16 peak" if fraction is not None
                       else ", bf16 peak of this device unknown (set GPU_CHECK_PEAK_TFLOPS)")
    if name == "loader_throughput":
        f = figures[name]
        return (f"resident split {number(f['resident_samples_per_s'])} samples/s against per-sample files "
                f"{number(f['files_samples_per_s'])} ({number(f['resident_over_files'], 1)}x); with a training step "
                f"{number(f['resident_with_step_samples_per_s'])} against {number(f['files_with_step_samples_per_s'])}"
                f" ({number(f['resident_over_files_with_step'], 1)}x)")
    if name == "train_cremad":
        f = figures[name]
        return (f"mmlesson train, joint, {f['epochs']} epochs of {number(f['train_clips'])} clips in "
                f"{f['seconds']:.0f} s ({f['epoch_seconds']:.1f} s per epoch after the first): 100 epochs in about "
                f"{f['extrapolated_100_epochs_seconds'] / 60:.1f} min (extrapolated)")
    k = name.removeprefix("runner_k")
    result = read_json(out / "raw" / f"{name}.json")
    if not result:
        return f"no figures: see logs/{name}.log"
    return (f"runner, {result['runs']} SynthAV runs, k = {k} worker(s) per GPU: "
            f"{number(result['runs_per_minute'], 1)} runs/min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--device-info", default="?|?", help="NAME|TORCH_VERSION")
    parser.add_argument("--toy", default="0")
    parser.add_argument("--command", default="benchmarks/gpu_check.sh")
    parser.add_argument("--seconds", type=float, default=None, help="the script's time so far")
    args = parser.parse_args()
    device, torch_version = (args.device_info.split("|") + ["?"])[:2]
    toy = args.toy == "1"
    steps = read_steps(args.out / "raw")
    figures = figures_of(args.out, steps)
    report = {"device": device, "torch": torch_version, "toy": toy, "command": args.command,
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "seconds": args.seconds, "steps": steps,
              "figures": figures}
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")

    size = "TOY SIZE (GPU_CHECK_TOY=1): these figures only show that every step runs" if toy else "full size"
    lines = [f"mmlesson GPU check on {device} (torch {torch_version}), {size}",
             f"{args.command}, {report['date']}, {number(args.seconds)} s in all"]
    for name, step in steps.items():
        workload = "runner" if name.startswith("runner_k") else name
        detail = describe(name, figures, args.out) if step["status"] == "ok" and figures[workload] else (
            f"no figures: see logs/{name}.log")
        lines.append(f"{name:18s} {step['status']:10s} {step['seconds']:6.0f} s  {detail}")
    failed = [name for name, step in steps.items() if step["status"] != "ok"]
    lines.append(f"{len(failed)} of {len(steps)} steps did not finish: {', '.join(failed)}" if failed
                 else f"all {len(steps)} steps finished")
    text = "\n".join(lines) + "\n"
    (args.out / "summary.txt").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
