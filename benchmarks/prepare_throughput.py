"""Preprocessing throughput of ``mmlesson data prepare`` (clips/s), on fabricated CREMA-D-shaped media.

    python benchmarks/prepare_throughput.py                  # 64 clips, every core, then one core
    python benchmarks/prepare_throughput.py --clips 256 --frame-size 224

Each clip is what CREMA-D holds: a 2.5-s 16 kHz mono PCM WAV and a 480x360 29.97-fps FLV. The FLVs are
written with FLV1 (FFmpeg cannot encode CREMA-D's VP6F), so video decoding may be somewhat faster or
slower on the real files. Prints one JSON object per measurement; never used as a test.
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

from mmlesson.data import REAL_DATASETS
from mmlesson.data.audio import fixed_length_spectrogram
from mmlesson.data.fabricate import fabricate_cremad
from mmlesson.data.prepare import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--frame-size", type=int, default=224)
    parser.add_argument("--workdir", default=None, help="where to write the media and caches (default: a temp dir)")
    args = parser.parse_args()
    cremad = REAL_DATASETS["cremad"]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="mmlesson-prepare-bench-"))
    clip_ids = [row["clip_id"] for row in cremad.list_clips()[:args.clips]]
    started = time.perf_counter()
    fabricate_cremad(work / "raw", clip_ids, cremad.class_names(), seconds=2.5, width=480, height=360)
    print(json.dumps({"fabricated_clips": len(clip_ids), "seconds": round(time.perf_counter() - started, 2)}))
    started = time.perf_counter()
    fixed_length_spectrogram(np.zeros(16, np.float32), seconds=0.05)  # import librosa once, outside the timings
    print(json.dumps({"librosa_import_seconds": round(time.perf_counter() - started, 2)}))
    cores = os.cpu_count() or 1
    for workers in sorted({cores, 1}, reverse=True):
        root = work / f"cache-{workers}"
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        summary = prepare(cremad, work / "raw", root, workers=workers, frame_size=args.frame_size, progress="off")
        seconds = time.perf_counter() - started
        print(json.dumps({"workers": workers, "clips": summary["cached"], "seconds": round(seconds, 2),
                          "clips_per_s": round(summary["cached"] / seconds, 1), "frame_size": args.frame_size}))
    if args.workdir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
