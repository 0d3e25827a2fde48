"""Training throughput (samples/s) and peak memory of one joint training step.

    python benchmarks/train_throughput.py                 # SynthAV defaults on the CPU
    python benchmarks/train_throughput.py --workload cremad-shape   # needs CUDA

Workloads:
* ``synthav``: the SynthAV defaults (audio 1x32x32, 2 frames 3x32x32), width-8 ResNet-18 x2, batch 64,
  concat fusion, on the device given (CPU by default): what every chapter trains.
* ``cremad-shape``: CREMA-D-shaped random tensors (audio 1x257x188, ``--frames`` frames of 3x224x224),
  full-width ResNet-18 x2, batch 64, on CUDA, with and without bf16 autocast.

Also times the generation of the default SynthAV data set. Prints one JSON object per measurement.
Never used as a test: timings depend on the machine.
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from mmlesson.config import TrainConfig
from mmlesson.data import load
from mmlesson.methods import JointTraining, StepState
from mmlesson.models import MultimodalModel


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


def synthav(args) -> list[dict]:
    device = torch.device(args.device)
    started = time.perf_counter()
    dataset = load("synthav")
    generation = time.perf_counter() - started
    torch.manual_seed(0)
    model = MultimodalModel(dataset.num_classes, width=8).to(device)
    batch = next(dataset.train.batches(64, device=device))
    seconds = time_steps(model, batch, device, amp=False, warmup=3, steps=args.steps)
    epoch_steps = dataset.train.num_batches(64)
    return [{"workload": "synthav", "device": str(device), "threads": torch.get_num_threads(),
             "generation_seconds": round(generation, 3), "samples_per_second": round(64 / seconds, 1),
             "epoch_seconds_train_only": round(epoch_steps * seconds, 2),
             "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}]


def cremad_shape(args) -> list[dict]:
    if not torch.cuda.is_available():
        return [{"workload": "cremad-shape", "skipped": "CUDA is not available on this machine"}]
    device = torch.device("cuda")
    generator = torch.Generator(device=device).manual_seed(0)
    batch = {"audio": torch.randn(64, 1, 257, 188, device=device, generator=generator),
             "visual": torch.randn(64, args.frames, 3, 224, 224, device=device, generator=generator),
             "label": torch.randint(0, 6, (64,), device=device, generator=generator)}
    results = []
    for amp in (False, True):
        torch.manual_seed(0)
        model = MultimodalModel(6, width=64).to(device)
        torch.cuda.reset_peak_memory_stats(device)
        seconds = time_steps(model, batch, device, amp=amp, warmup=5, steps=args.steps)
        results.append({"workload": "cremad-shape", "device": torch.cuda.get_device_name(device),
                        "frames": args.frames, "bf16_autocast": amp, "samples_per_second": round(64 / seconds, 1),
                        "epoch_seconds_6698_clips": round(6698 / 64 * seconds, 2),
                        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)})
        del model
        torch.cuda.empty_cache()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=["synthav", "cremad-shape"], default="synthav")
    parser.add_argument("--device", default="cpu", help="device of the synthav workload (default: cpu)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default: 20)")
    parser.add_argument("--frames", type=int, default=3, help="frames per clip of the cremad-shape workload")
    args = parser.parse_args()
    for result in (synthav if args.workload == "synthav" else cremad_shape)(args):
        print(json.dumps(result))


if __name__ == "__main__":
    main()
