"""Training throughput (samples/s) and peak memory of one joint training step.

    python benchmarks/train_throughput.py                 # SynthAV defaults on the CPU
    python benchmarks/train_throughput.py --workload cremad-shape   # needs CUDA (or --device cpu)

Workloads:
* ``synthav``: the SynthAV defaults (audio 1x32x32, 2 frames 3x32x32), width-8 ResNet-18 x2, batch 64,
  concat fusion, on the device given (CPU by default): what every chapter trains.
* ``cremad-shape``: CREMA-D-shaped random tensors (audio 1x257x188, ``--frames`` frames of 3x224x224),
  full-width ResNet-18 x2, batch 64, on CUDA by default, with and without bf16 autocast. Also counts
  the FLOPs of one step (torch's FlopCounterMode) and gives the achieved fraction of the device's dense
  bf16 peak (a small table of NVIDIA data-sheet figures, or ``--peak-tflops``; null when unknown).
  The sizes are options, so that ``benchmarks/gpu_check.sh`` can also run it at toy size on the CPU.

Also times the generation of the default SynthAV data set. Prints one JSON object per measurement
(and writes them as a list to ``--json PATH``). Never used as a test: timings depend on the machine.
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mmlesson.config import TrainConfig
from mmlesson.data import load
from mmlesson.methods import JointTraining, StepState
from mmlesson.models import MultimodalModel

# dense bf16 tensor-core peak in TFLOP/s by a part of the device name, first match first (NVIDIA data sheets)
BF16_PEAK_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0), ("L40S", 362.0),
                    ("L40", 181.0), ("L4", 121.0))


def significant(value: float) -> float:
    """``value`` to three significant digits (toy sizes give tiny figures that fixed decimals round to 0)."""
    return float(f"{value:.3g}")


def bf16_peak_tflops(device_name: str) -> float | None:
    return next((peak for part, peak in BF16_PEAK_TFLOPS if part in device_name), None)


def time_steps(model, batch, device, amp: bool, warmup: int, steps: int) -> float:
    """Seconds per training step (SGD, joint cross-entropy), after ``warmup`` untimed steps."""
    method = JointTraining(TrainConfig())
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    state = StepState(epoch=0, step=0, device=device, amp=amp)
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        method.training_step(model, batch, optimizer, state)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def step_flops(model, batch, device, amp: bool) -> int:
    """FLOPs of one training step (forward and backward), counted by torch over the operators it runs."""
    method = JointTraining(TrainConfig())
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    with FlopCounterMode(display=False) as counter:
        method.training_step(model, batch, optimizer, StepState(epoch=0, step=0, device=device, amp=amp))
    return counter.get_total_flops()


def peak_memory_gib(device) -> float:
    """CUDA: the most memory torch allocated on the device; CPU: the process's peak resident memory."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)


def synthav(args) -> list[dict]:
    device = torch.device(args.device or "cpu")
    started = time.perf_counter()
    dataset = load("synthav")
    generation = time.perf_counter() - started
    torch.manual_seed(0)
    model = MultimodalModel(dataset.num_classes, width=args.width or 8).to(device)
    batch = next(dataset.train.batches(args.batch_size, device=device))
    seconds = time_steps(model, batch, device, amp=False, warmup=3, steps=args.steps)
    epoch_steps = dataset.train.num_batches(args.batch_size)
    return [{"workload": "synthav", "device": str(device), "threads": torch.get_num_threads(),
             "generation_seconds": round(generation, 3), "samples_per_second": round(args.batch_size / seconds, 1),
             "epoch_seconds_train_only": round(epoch_steps * seconds, 2),
             "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}]


def cremad_shape(args) -> list[dict]:
    device = torch.device(args.device or "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        return [{"workload": "cremad-shape", "skipped": "CUDA is not available on this machine"}]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = args.peak_tflops or bf16_peak_tflops(name)
    size, (bins, steps), batch_size = args.image_size, args.spec_shape, args.batch_size
    generator = torch.Generator(device=device).manual_seed(0)
    batch = {"audio": torch.randn(batch_size, 1, bins, steps, device=device, generator=generator),
             "visual": torch.randn(batch_size, args.frames, 3, size, size, device=device, generator=generator),
             "label": torch.randint(0, 6, (batch_size,), device=device, generator=generator)}
    results = []
    for amp in (False, True):
        torch.manual_seed(0)
        model = MultimodalModel(6, width=args.width or 64).to(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        flops = step_flops(model, batch, device, amp)
        seconds = time_steps(model, batch, device, amp=amp, warmup=5, steps=args.steps)
        tflops = flops / seconds / 1e12
        results.append({"workload": "cremad-shape", "precision": "bf16" if amp else "fp32", "device": name,
                        "frames": args.frames, "image_size": size,
                        "spectrogram": [bins, steps], "width": args.width or 64, "batch_size": batch_size,
                        "bf16_autocast": amp and device.type == "cuda",  # autocast is CUDA-only in mmlesson
                        "samples_per_second": round(batch_size / seconds, 1),
                        "epoch_seconds_6698_clips": round(6698 / batch_size * seconds, 2),
                        "peak_memory_gib": peak_memory_gib(device),
                        "step_gflops": significant(flops / 1e9), "achieved_tflops": significant(tflops),
                        "bf16_peak_tflops": peak,
                        "fraction_of_bf16_peak": significant(tflops / peak) if peak else None})
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=["synthav", "cremad-shape"], default="synthav")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cpu for synthav, cuda for "
                                                       "cremad-shape)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default: 20)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64)")
    parser.add_argument("--width", type=int, default=None, help="encoder width (default: 8 for synthav, 64 for "
                                                                "cremad-shape)")
    parser.add_argument("--frames", type=int, default=3, help="frames per clip of the cremad-shape workload")
    parser.add_argument("--image-size", type=int, default=224, help="frame side of the cremad-shape workload")
    parser.add_argument("--spec-shape", type=int, nargs=2, default=[257, 188], metavar=("BINS", "STEPS"),
                        help="spectrogram shape of the cremad-shape workload (default: 257 188)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's dense bf16 peak in TFLOP/s, where the built-in table does not know it")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the measurements as a JSON list")
    args = parser.parse_args()
    results = (synthav if args.workload == "synthav" else cremad_shape)(args)
    for result in results:
        print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
