"""benchmarks/gpu_check.sh: without CUDA it measures nothing; at toy size on the CPU every step runs and
its JSON and summary hold every workload; bad input is refused in one line."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
REPORT = ROOT / "benchmarks" / "gpu_check_report.py"
TOY = {"GPU_CHECK_TOY": "1", "GPU_CHECK_DEVICE": "cpu", "GPU_CHECK_PEAK_TFLOPS": "1", "CUDA_VISIBLE_DEVICES": ""}

# every figure of each measured workload at toy size (the runner at k = 1 worker there)
FIGURES = {
    "train_throughput": {f"{p}_{k}" for p in ("fp32", "bf16")
                         for k in ("samples_per_s", "peak_memory_gib", "achieved_tflops", "fraction_of_bf16_peak")},
    "loader_throughput": {"files_samples_per_s", "resident_samples_per_s", "resident_over_files",
                          "files_with_step_samples_per_s", "resident_with_step_samples_per_s",
                          "resident_over_files_with_step"},
    "train_cremad": {"epochs", "train_clips", "seconds", "first_epoch_seconds", "epoch_seconds",
                     "extrapolated_100_epochs_seconds"},
    "runner": {"k1_runs_per_minute"},
}


def run_script(*args, **env):
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable, **env})


def test_without_cuda_it_prints_one_line_and_measures_nothing(tmp_path):
    result = run_script(tmp_path / "out", CUDA_VISIBLE_DEVICES="")
    assert (result.returncode, result.stdout, result.stderr) == (0, "no CUDA device: nothing measured\n", "")
    assert not (tmp_path / "out").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    assert run_script(existing, CUDA_VISIBLE_DEVICES="").returncode == 0
    assert list(existing.iterdir()) == []


@pytest.mark.slow
def test_toy_size_on_the_cpu_runs_every_workload(tmp_path):
    result = run_script(tmp_path, **TOY)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["toy"] is True and report["device"] == "cpu"
    assert {name: step["status"] for name, step in report["steps"].items()} == dict.fromkeys(
        ["pytest_gpu", "train_throughput", "loader_throughput", "train_cremad", "runner_k1"], "ok")
    figures = report["figures"]
    assert figures["pytest_gpu"]["result"]  # pytest's last line (the GPU tests are skipped here)
    for workload, keys in FIGURES.items():
        assert set(figures[workload]) == keys, workload
        for key, value in figures[workload].items():
            assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (workload, key, value)
    summary = (tmp_path / "summary.txt").read_text()
    assert "TOY SIZE" in summary and "all 5 steps finished" in summary
    for workload in ["pytest_gpu", *FIGURES]:
        assert workload in summary
    assert summary in result.stdout


def test_a_failed_or_timed_out_step_is_recorded_without_figures(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "steps.tsv").write_text("step\tstatus\tstarted\tended\tlimit\n"
                                   "pytest_gpu\tfailed (exit 1)\t0\t3.5\t100\n"
                                   "train_throughput\ttimed out after 60 s\t3.5\t63.5\t60\n"
                                   "runner_k1\tok\t63.5\t70\t40\n")
    (raw / "train_throughput.json").write_text("[]")  # left over: a step that did not finish gives no figures
    (raw / "runner_k1.json").write_text(json.dumps({"per_gpu": 1, "runs": 8, "runs_per_minute": 30.0}))
    result = subprocess.run([sys.executable, str(REPORT), str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["figures"] == {"pytest_gpu": None, "train_throughput": None, "loader_throughput": None,
                                 "train_cremad": None, "runner": {"k1_runs_per_minute": 30.0}}
    summary = (tmp_path / "summary.txt").read_text()
    assert "failed (exit 1)" in summary and "timed out after 60 s" in summary
    assert "2 of 3 steps did not finish: pytest_gpu, train_throughput" in summary


@pytest.mark.parametrize("args, env, message", [
    ([], {}, "usage: benchmarks/gpu_check.sh OUTDIR"),
    (["a", "b"], {}, "usage: benchmarks/gpu_check.sh OUTDIR"),
    (["out"], {"GPU_CHECK_DEVICE": "cpu"}, "GPU_CHECK_DEVICE=cpu needs GPU_CHECK_TOY=1"),
    (["out"], {"GPU_CHECK_DEVICE": "tpu"}, "GPU_CHECK_DEVICE must be cuda or cpu, got 'tpu'"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, args, env, message):
    result = run_script(*[tmp_path / a for a in args], **env)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr
    assert not (tmp_path / "out").exists()
