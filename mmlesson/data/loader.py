"""Batches: ``TensorSplit`` from tensors held in memory (SynthAV), ``CachedSplit`` from a prepared
real-data cache (on the device when it fits, else memory-mapped; augmented on the device).

A batch is a dict: ``audio`` [B,1,F,T], ``visual`` [B,T,3,H,W], ``label`` [B], ``index`` [B].
Shuffling uses an explicit ``torch.Generator`` so that a resumed run draws the same
batches as an uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch


def batch_indices(n: int, batch_size: int, shuffle: bool, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    """Positions of each batch: in order, or in an order drawn from ``generator`` (shared by both splits)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def count_batches(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size


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

    def __repr__(self) -> str:
        return (f"TensorSplit({len(self)} clips, audio {list(self.audio.shape[1:])}, "
                f"visual {list(self.visual.shape[1:])})")

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> Iterator[dict]:
        """Yield batch dicts; with ``shuffle`` the order is drawn from ``generator``."""
        for index in batch_indices(len(self), batch_size, shuffle, generator):
            yield {
                "audio": self.audio[index].to(device, non_blocking=True),
                "visual": self.visual[index].to(device, non_blocking=True),
                "label": self.label[index].to(device, non_blocking=True),
                "index": index.to(device, non_blocking=True),
            }

    def num_batches(self, batch_size: int) -> int:
        return count_batches(len(self), batch_size)


@dataclass
class AVDataset:
    """What ``mmlesson.data.load`` returns: three splits plus what a model needs to know."""

    name: str
    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    class_names: list[str]
    meta: dict = field(default_factory=dict)
    identity: dict | None = None  # the content (mmlesson.data.identity): part of a run's identity

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (f"AVDataset({self.name}: {self.num_classes} classes; train {len(self.train)}, val {len(self.val)}, "
                f"test {len(self.test)} clips)")

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("audio", "visual")

    def split(self, name: str) -> TensorSplit:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}; choose one of: train, val, test")
        return getattr(self, name)


class CachedSplit:
    """One split of a prepared real data set (``cache.py``), with the same ``batches`` as ``TensorSplit``.

    Where the arrays live: ``resident="auto"`` copies the split's uint8 frames and float16 spectrograms
    onto a CUDA device the first time batches are asked for there, when they fit in half its free memory
    (CREMA-D: about 4 GB), and slices batches on the device; on the CPU batches are read from the
    memory-mapped files (``True``: copy into memory on any device; ``False``: always read the files).
    Each batch is then converted, augmented and normalised on the device (``augment.py``).

    Frames: in training each clip contributes ``num_frames`` frames drawn at random among its stored
    ones (a new draw every epoch, from the run's generator); in evaluation the same evenly spaced ones
    every time (the middle frame when ``num_frames`` is 1).
    """

    def __init__(self, cache, rows, num_frames: int = 1, image_size: int | None = None, augment: bool = True,
                 spec_mask: float = 0.0, resident="auto"):
        self.cache, self.rows = cache, np.asarray(rows, dtype=np.int64)
        self.label = torch.tensor([int(cache.clips[r]["label"]) for r in self.rows], dtype=torch.long)
        self.frame_count = torch.from_numpy(np.asarray(cache.frame_count[self.rows], dtype=np.int64))
        self.num_frames, self.augment, self.spec_mask, self.resident = num_frames, augment, spec_mask, resident
        self.image_size = image_size or cache.params.frame_size
        self.stored: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return (f"CachedSplit({len(self)} clips of {self.cache.meta['params']['dataset']}, {self.num_frames} frame(s) "
                f"at {self.image_size}, augment={self.augment})")

    def num_batches(self, batch_size: int) -> int:
        return count_batches(len(self), batch_size)

    def nbytes(self) -> int:
        return len(self) * (self.cache.audio[0].nbytes + self.cache.frames[0].nbytes)

    def storage(self, device: torch.device):
        """The split's (spectrograms, frames) as tensors on ``device``, or None to read the memmaps."""
        key = str(device)
        if key not in self.stored:
            if self.resident == "auto":
                keep = device.type == "cuda" and self.nbytes() < 0.5 * torch.cuda.mem_get_info(device)[0]
            else:
                keep = bool(self.resident)
            if not keep:
                return None
            self.stored[key] = (torch.from_numpy(np.ascontiguousarray(self.cache.audio[self.rows])).to(device),
                                torch.from_numpy(np.ascontiguousarray(self.cache.frames[self.rows])).to(device))
        return self.stored[key]

    def frame_slots(self, index: torch.Tensor, augment: bool, generator) -> torch.Tensor:
        """``[B, num_frames]`` stored-frame slots: random in training, evenly spaced in evaluation."""
        count = self.frame_count[index][:, None].double()
        if augment:
            draw = torch.rand(len(index), self.num_frames, generator=generator, dtype=torch.float64)
            return (draw * count).long().sort(dim=1).values
        position = (torch.arange(self.num_frames, dtype=torch.float64)[None, :] + 0.5) / self.num_frames
        return (position * count).long()

    def gather(self, index: torch.Tensor, slots: torch.Tensor, device: torch.device):
        """Spectrograms ``[B, F, T]`` float16 and frames ``[B, num_frames, S, S, 3]`` uint8 on ``device``."""
        stored = self.storage(device)
        if stored is not None:
            audio, frames = stored
            on_device = index.to(device)
            return audio[on_device], frames[on_device[:, None], slots.to(device)]
        rows = self.rows[index.numpy()]
        order = np.argsort(rows, kind="stable")  # read the files in ascending order, then restore the batch order
        back = np.argsort(order, kind="stable")
        audio = self.cache.audio[rows[order]][back]
        frames = self.cache.frames[rows[order][:, None], slots.numpy()[order]][back]
        return (torch.from_numpy(audio).to(device, non_blocking=True),
                torch.from_numpy(frames).to(device, non_blocking=True))

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu", augment: bool | None = None) -> Iterator[dict]:
        """Batch dicts as ``TensorSplit.batches``; ``augment`` defaults to ``shuffle`` (training)."""
        # here, not at the top: augment imports torchvision (a second to import), which only cached real-data
        # splits need, and every process that imports mmlesson.data would pay for it
        from .augment import augment_frames, mask_spectrograms, normalise_frames, resize_frames

        device = torch.device(device)
        augment = self.augment and (shuffle if augment is None else augment)
        for index in batch_indices(len(self), batch_size, shuffle, generator):
            slots = self.frame_slots(index, augment, generator)
            audio, frames = self.gather(index, slots, device)
            audio = audio.float().unsqueeze(1)  # [B, 1, F, T]
            visual = frames.permute(0, 1, 4, 2, 3).float()  # [B, T, 3, S, S], values 0..255
            if augment:  # crops and flips are linear: they commute with the normalisation below
                visual = augment_frames(visual, self.image_size, generator)
                if self.spec_mask > 0:
                    audio = mask_spectrograms(audio, self.spec_mask, generator)
            else:
                visual = resize_frames(visual, self.image_size)
            yield {"audio": audio, "visual": normalise_frames(visual, max_value=255.0, in_place=True),
                   "label": self.label[index].to(device, non_blocking=True), "index": index.to(device)}
