"""Loader throughput (samples/s): the tensor cache against a per-sample-file pipeline, on CREMA-D-shaped data.

    python benchmarks/loader_throughput.py                 # 1024 clips; CPU paths, and CUDA if present
    python benchmarks/loader_throughput.py --clips 7442    # the whole of CREMA-D's size (about 4 GB on disk)

Both pipelines deliver the same training batches: audio [64, 1, 257, 188] float32 and one frame per
clip [64, 1, 3, 224, 224], randomly resized-cropped, flipped and ImageNet-normalised.
* ``files``: what the reference code does: one ``.npy`` spectrogram and three JPEG frames per clip,
  read, decoded and augmented per item in a torch ``DataLoader`` with one worker per core.
* ``cache-memmap``: ``mmlesson.data.load("cremad", root=...)`` on the CPU, reading the memory-mapped cache.
* ``cache-memory``: the same with the split copied into memory (``resident=True``).
* ``cache-cuda``: the split resident on the GPU, batches sliced and augmented there (CUDA only).
The data are synthetic (smooth random images, random spectrograms): only their shapes matter here.
Each figure is the best of ``--epochs`` passes over the training split after one warm-up pass.
``--device D`` measures only ``files`` against the split resident on D (``cache-cuda``, or
``cache-memory`` on the CPU); ``--model-step`` measures each pipeline again with a joint training step
of ResNet-18 x2 (``--width``; bf16 autocast on CUDA) on every batch, the loader as training sees it.
``--workdir`` keeps the fabricated cache (``WORKDIR/cache``) for a later ``mmlesson train --data cremad``.
Prints one JSON object per measurement (``--json PATH``: also as a list); never used as a test.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.io import decode_jpeg, encode_jpeg, read_file
from torchvision.transforms import v2

from mmlesson.config import TrainConfig
from mmlesson.data import REAL_DATASETS, load
from mmlesson.data.augment import IMAGENET_MEAN, IMAGENET_STD
from mmlesson.data.cache import CacheParams, CacheWriter
from mmlesson.methods import JointTraining, StepState
from mmlesson.models import MultimodalModel

BATCH = 64


def smooth_frames(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """``count`` smooth colour images (upsampled noise): JPEG sizes like real video frames, not like noise."""
    small = torch.from_numpy(rng.integers(0, 256, (count, 3, 12, 12), dtype=np.uint8)).float()
    images = torch.nn.functional.interpolate(small, size=(size, size), mode="bicubic", align_corners=False)
    return images.clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def build(work: Path, clips: int, frames_per_clip: int, size: int) -> tuple[Path, Path]:
    """The same synthetic clips written twice: as a cache, and as per-sample files."""
    cremad = REAL_DATASETS["cremad"]
    listed = cremad.list_clips()
    rows = ([row for row in listed if row["official_split"] == "train"][:clips - clips // 10]
            + [row for row in listed if row["official_split"] == "test"][:clips // 10])
    params = CacheParams("cremad", frames_per_clip=frames_per_clip, frame_size=size)
    writer = CacheWriter(work / "cache", params, rows, rebuild=True)
    files = work / "files"
    (files / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index, row in enumerate(rows):
        spectrogram = rng.normal(-4, 2, params.audio_shape).astype(np.float32)
        frames = smooth_frames(rng, frames_per_clip, size)
        writer.write(index, spectrogram, frames)
        np.save(files / "audio" / f"{row['clip_id']}.npy", spectrogram)
        clip_dir = files / "frames" / row["clip_id"]
        clip_dir.mkdir(parents=True, exist_ok=True)
        for k, frame in enumerate(frames):
            (clip_dir / f"{k:02d}.jpg").write_bytes(encode_jpeg(torch.from_numpy(frame).permute(2, 0, 1),
                                                                quality=90).numpy().tobytes())
    writer.finish(extra={"class_names": cremad.class_names(), "title": "CREMA-D-shaped benchmark"})
    return work / "cache", files


class PerSampleFiles(torch.utils.data.Dataset):
    """One item = np.load of the spectrogram + JPEG decode of one random frame + CPU augmentation."""

    def __init__(self, root: Path, size: int):
        self.clips = sorted(p.stem for p in (root / "audio").glob("*.npy"))
        self.root = root
        self.transform = v2.Compose([v2.RandomResizedCrop(size), v2.RandomHorizontalFlip(),
                                     v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    def __len__(self):
        return len(self.clips)

    def __getitem__(self, i):
        clip = self.clips[i]
        audio = torch.from_numpy(np.load(self.root / "audio" / f"{clip}.npy"))[None]
        frames = sorted((self.root / "frames" / clip).glob("*.jpg"))
        frame = decode_jpeg(read_file(str(frames[torch.randint(len(frames), ()).item()])))
        return audio, self.transform(frame)[None], 0


def model_step(device: torch.device, width: int):
    """A joint training step of a fresh ResNet-18 x2 (bf16 autocast on CUDA), called on every batch."""
    torch.manual_seed(0)
    model = MultimodalModel(6, width=width).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    method, state = JointTraining(TrainConfig()), StepState(epoch=0, step=0, device=device, amp=True)
    return lambda batch: method.training_step(model, batch, optimizer, state)


def samples_per_second(batches, device: torch.device, step=None) -> float:
    started, count = time.perf_counter(), 0
    for batch in batches:
        audio, visual, label = ((batch["audio"], batch["visual"], batch["label"]) if isinstance(batch, dict)
                                else batch[:3])
        audio, visual = audio.to(device, non_blocking=True), visual.to(device, non_blocking=True)
        if step is not None:
            step({"audio": audio, "visual": visual, "label": torch.as_tensor(label).to(device)})
        count += len(audio)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - started)


def measure(name: str, make_batches, device: torch.device, epochs: int, step=None) -> dict:
    samples_per_second(make_batches(), device, step)  # warm-up: page cache, workers, device copy
    best = max(samples_per_second(make_batches(), device, step) for _ in range(epochs))
    return {"pipeline": name, "device": str(device), "model_step": step is not None, "samples_per_s": round(best, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--size", type=int, default=224, help="stored and trained frame side (default: 224)")
    parser.add_argument("--workdir", default=None, help="where to write (default: a temp dir, deleted afterwards)")
    parser.add_argument("--device", default=None, help="measure files against the resident split on this device "
                                                       "only (default: every CPU pipeline, and CUDA if present)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="DataLoader workers of the files pipeline (default: one per core)")
    parser.add_argument("--model-step", action="store_true", help="also measure each pipeline with a training step")
    parser.add_argument("--width", type=int, default=64, help="encoder width of --model-step (default: 64)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the measurements as a JSON list")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mmlesson-loader-bench-"))
    results = []

    def report(result: dict) -> None:
        results.append(result)
        print(json.dumps(result), flush=True)

    started = time.perf_counter()
    cache_root, files_root = build(work, args.clips, frames_per_clip=3, size=args.size)
    report({"clips": args.clips, "build_seconds": round(time.perf_counter() - started, 1),
            "cache_mb": round(sum(f.stat().st_size for f in cache_root.iterdir()) / 2**20),
            "files_mb": round(sum(f.stat().st_size for f in files_root.rglob("*") if f.is_file()) / 2**20)})
    dataset = PerSampleFiles(files_root, args.size)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=args.workers,
                                         persistent_workers=args.workers > 0)
    generator = torch.Generator().manual_seed(0)
    if args.device is None:  # every CPU pipeline, then the CUDA ones where there is a GPU
        plan = [("files", "cpu", None), ("cache-memmap", "cpu", False), ("cache-memory", "cpu", True)]
        if torch.cuda.is_available():
            plan += [("files", "cuda", None), ("cache-cuda", "cuda", "auto")]
    else:
        device = torch.device(args.device)
        plan = [("files", device, None), ("cache-cuda" if device.type == "cuda" else "cache-memory", device, True)]
    steps = [None, *(["model"] if args.model_step else [])]
    for with_step in steps:
        for name, device, resident in plan:
            device = torch.device(device)
            step = model_step(device, args.width) if with_step else None
            if name == "files":
                result = {**measure(name, lambda: iter(loader), device, args.epochs, step), "workers": args.workers}
            else:
                train = load("cremad", root=cache_root, resident=resident).train
                result = measure(name, lambda: train.batches(BATCH, shuffle=True, generator=generator, device=device),
                                 device, args.epochs, step)
            report(result)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    if args.workdir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
