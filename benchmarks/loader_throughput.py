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
Prints one JSON object per measurement; never used as a test.
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

from mmlesson.data import REAL_DATASETS, load
from mmlesson.data.augment import IMAGENET_MEAN, IMAGENET_STD
from mmlesson.data.cache import CacheParams, CacheWriter

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


def samples_per_second(batches, device: torch.device) -> float:
    started, count = time.perf_counter(), 0
    for batch in batches:
        audio, visual = (batch["audio"], batch["visual"]) if isinstance(batch, dict) else batch[:2]
        audio, visual = audio.to(device, non_blocking=True), visual.to(device, non_blocking=True)
        count += len(audio)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - started)


def measure(name: str, make_batches, device: torch.device, epochs: int) -> dict:
    samples_per_second(make_batches(), device)  # warm-up: page cache, workers, device copy
    best = max(samples_per_second(make_batches(), device) for _ in range(epochs))
    return {"pipeline": name, "device": str(device), "samples_per_s": round(best, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workdir", default=None, help="where to write (default: a temp dir, deleted afterwards)")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mmlesson-loader-bench-"))
    started = time.perf_counter()
    cache_root, files_root = build(work, args.clips, frames_per_clip=3, size=224)
    print(json.dumps({"clips": args.clips, "build_seconds": round(time.perf_counter() - started, 1),
                      "cache_mb": round(sum(f.stat().st_size for f in cache_root.iterdir()) / 2**20),
                      "files_mb": round(sum(f.stat().st_size for f in files_root.rglob("*") if f.is_file()) / 2**20)}))
    cores = os.cpu_count() or 1
    cpu = torch.device("cpu")
    dataset = PerSampleFiles(files_root, 224)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=cores,
                                         persistent_workers=True)
    print(json.dumps({**measure("files", lambda: iter(loader), cpu, args.epochs), "workers": cores}))
    generator = torch.Generator().manual_seed(0)
    for resident, name in ((False, "cache-memmap"), (True, "cache-memory")):
        train = load("cremad", root=cache_root, resident=resident).train
        print(json.dumps(measure(name, lambda: train.batches(BATCH, shuffle=True, generator=generator), cpu,
                                 args.epochs)))
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        print(json.dumps({**measure("files", lambda: iter(loader), gpu, args.epochs), "workers": cores}))
        train = load("cremad", root=cache_root).train
        print(json.dumps(measure("cache-cuda", lambda: train.batches(BATCH, shuffle=True, generator=generator,
                                                                      device=gpu), gpu, args.epochs)))
    if args.workdir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
