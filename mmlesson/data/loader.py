"""Batches from tensors held in memory (SynthAV now; the real-data cache plugs in here).

A batch is a dict: ``audio`` [B,1,F,T], ``visual`` [B,T,3,H,W], ``label`` [B], ``index`` [B]
(DESIGN.md). Shuffling uses an explicit ``torch.Generator`` so that a resumed run draws the same
batches as an uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch


@dataclass
class TensorSplit:
    """One split (train, val or test) of an audio-visual data set, as tensors."""

    audio: torch.Tensor  # [N,1,F,T] float
    visual: torch.Tensor  # [N,T,3,H,W] float
    label: torch.Tensor  # [N] int64
    extras: dict = field(default_factory=dict)  # per-sample tensors for analysis (e.g. SynthAV's masks)

    def __post_init__(self):
        n = len(self.label)
        if len(self.audio) != n or len(self.visual) != n:
            raise ValueError(f"split sizes disagree: audio {len(self.audio)}, visual {len(self.visual)}, labels {n}")

    def __len__(self) -> int:
        return len(self.label)

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> Iterator[dict]:
        """Yield batch dicts; with ``shuffle`` the order is drawn from ``generator``."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            yield {
                "audio": self.audio[index].to(device, non_blocking=True),
                "visual": self.visual[index].to(device, non_blocking=True),
                "label": self.label[index].to(device, non_blocking=True),
                "index": index.to(device, non_blocking=True),
            }

    def num_batches(self, batch_size: int) -> int:
        return (len(self) + batch_size - 1) // batch_size


@dataclass
class AVDataset:
    """What ``mmlesson.data.load`` returns: three splits plus what a model needs to know."""

    name: str
    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    class_names: list[str]
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("audio", "visual")

    def split(self, name: str) -> TensorSplit:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}; choose one of: train, val, test")
        return getattr(self, name)
