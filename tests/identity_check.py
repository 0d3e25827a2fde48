"""Does a change leave every method's training bit-identical? Run before and after, then compare.

    git stash; .venv/bin/python -m tests.identity_check /tmp/before.txt; git stash pop
    .venv/bin/python -m tests.identity_check /tmp/after.txt
    cmp /tmp/before.txt /tmp/after.txt && echo identical

Trains every registered method (and sum fusion) on a tiny SynthAV setting, 3 epochs, seed 7, on the
CPU with one thread, in a temporary directory, and writes one line per run: its history without the
timings, its final scores, a sha256 of its selected weights and its identity hash. About 10 s here.
A refactoring that changes any number, any weight or any run's identity shows up as a difference.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

from mmlesson import TrainConfig, fit
from mmlesson.methods import METHODS, option_names

KNOBS = dict(train_size=96, val_size=48, test_size=48, spec_bins=16, spec_steps=16, frame_size=16,
             audio_strength=1.0, visual_strength=0.6)
BASE = dict(width=4, batch_size=16, epochs=3, data_knobs=KNOBS, progress="off", device="cpu", seed=7)
STRIDE = {"ccat": dict(output_stride=8)}  # beside each method's tiny_options


def digest_of(weights: dict) -> str:
    return hashlib.sha256(b"".join(weights[k].numpy().tobytes() for k in sorted(weights))).hexdigest()


def main(out: Path) -> None:
    torch.set_num_threads(1)
    lines = []
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        for modality in ("audio", "visual"):  # the unimodal runs other methods read
            fit(TrainConfig.build(**BASE, method="unimodal", modality=modality, out=str(work / modality)))
        arms = {name: dict(method=name, **METHODS[name].tiny_options, **STRIDE.get(name, {})) for name in sorted(METHODS)}
        for name, arm in arms.items():  # the methods that read the unimodal runs (frozen_encoders, umt, ume)
            if "encoders_from" in option_names(name):
                arm["encoders_from"] = [str(work / "audio"), str(work / "visual")]
        arms["sum fusion"] = dict(method="joint", fusion="sum")
        for name, arm in arms.items():
            run = fit(TrainConfig.build(**BASE, **arm, out=str(work / name.replace(" ", "_"))))
            history = [{k: v for k, v in row.items() if k != "seconds"} for row in run.metrics["history"]]
            record = {"history": history, "final": run.metrics["final"], "identity": run.metrics["identity_hash"],
                      "weights": digest_of(torch.load(run.out / "model.pt"))}
            lines.append(f"{name}: {json.dumps(record, sort_keys=True)}")
    out.write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} runs written to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.identity_check OUT.txt")
    main(Path(sys.argv[1]))
