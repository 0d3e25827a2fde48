"""Batch augmentation on the device: random resized crop and horizontal flip of frames, optional
spectrogram masking, ImageNet normalisation.

OGM-GE's training transform is torchvision's ``RandomResizedCrop(224)`` + ``RandomHorizontalFlip`` +
ImageNet normalisation, applied image by image on CPU workers. Here every random number is drawn on
the CPU from the run's own ``torch.Generator`` (so a resumed run draws the same crops, on any device)
and the crops of a whole batch are cut and resized in one ``roi_align`` call on the device. One crop
and one flip per clip, shared by its frames (the reference transforms each frame independently; with
its default of one frame per clip the two agree). Frames are cut from the stored S x S frame, which is
the original frame squashed to a square (OGM-GE's evaluation resize), not from the original frame.
"""
from __future__ import annotations

import math

import torch
from torchvision.ops import roi_align

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def random_resized_crop_boxes(count: int, height: int, width: int, generator: torch.Generator | None,
                              scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), attempts: int = 10) -> torch.Tensor:
    """``[count, 4]`` boxes ``(x0, y0, x1, y1)`` in pixels, drawn as torchvision's RandomResizedCrop
    draws them: area fraction ~ U(scale), log aspect ratio ~ U(log ratio), ``attempts`` tries per
    clip, the first that fits wins; when none fits, the central crop with the aspect ratio clamped."""
    area = height * width
    fraction = torch.empty(count, attempts).uniform_(*scale, generator=generator)
    log_ratio = torch.empty(count, attempts).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    aspect = log_ratio.exp()
    crop_w = torch.round(torch.sqrt(area * fraction * aspect))
    crop_h = torch.round(torch.sqrt(area * fraction / aspect))
    fits = (crop_w > 0) & (crop_w <= width) & (crop_h > 0) & (crop_h <= height)
    first = fits.int().argmax(dim=1)  # index of the first attempt that fits (0 if none does)
    rows = torch.arange(count)
    w, h, any_fits = crop_w[rows, first], crop_h[rows, first], fits.any(dim=1)
    # fallback: whole-image width or height at the clamped aspect ratio, centred
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fallback_w, fallback_h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        fallback_w, fallback_h = round(height * ratio[1]), height
    else:
        fallback_w, fallback_h = width, height
    w = torch.where(any_fits, w, torch.tensor(float(fallback_w)))
    h = torch.where(any_fits, h, torch.tensor(float(fallback_h)))
    offsets = torch.rand(count, 2, generator=generator)
    top = torch.where(any_fits, torch.floor(offsets[:, 0] * (height - h + 1)), torch.round((height - h) / 2))
    left = torch.where(any_fits, torch.floor(offsets[:, 1] * (width - w + 1)), torch.round((width - w) / 2))
    return torch.stack([left, top, left + w, top + h], dim=1)


def crop_and_resize(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Cut ``boxes[i]`` out of ``images[i]`` (``[N, C, H, W]`` float) and resize it to ``size x size``
    bilinearly: the same values as torchvision's ``resized_crop`` without antialiasing (one sample at
    each output pixel's centre, half-pixel aligned)."""
    rois = torch.cat([torch.arange(len(images), dtype=images.dtype, device=images.device)[:, None],
                      boxes.to(images.device, images.dtype)], dim=1)
    return roi_align(images, rois, output_size=(size, size), spatial_scale=1.0, sampling_ratio=1, aligned=True)


def augment_frames(visual: torch.Tensor, size: int, generator: torch.Generator | None) -> torch.Tensor:
    """Random resized crop to ``size`` and a coin-flip horizontal flip, one of each per clip.
    ``visual``: ``[B, T, 3, H, W]`` float on any device."""
    batch, steps, channels, height, width = visual.shape
    boxes = random_resized_crop_boxes(batch, height, width, generator)
    flip = torch.rand(batch, generator=generator) < 0.5
    frames = crop_and_resize(visual.reshape(batch * steps, channels, height, width),
                             boxes.repeat_interleave(steps, dim=0), size)
    frames = frames.reshape(batch, steps, channels, size, size)
    flipped = flip.nonzero().squeeze(1).to(visual.device)
    frames[flipped] = frames[flipped].flip(-1)
    return frames


def resize_frames(visual: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[B, T, 3, H, W]`` frames to ``size x size`` (the whole frame: the evaluation path)."""
    batch, steps, channels, height, width = visual.shape
    if (height, width) == (size, size):
        return visual
    whole = torch.tensor([[0.0, 0.0, width, height]]).repeat(batch * steps, 1)
    frames = crop_and_resize(visual.reshape(batch * steps, channels, height, width), whole, size)
    return frames.reshape(batch, steps, channels, size, size)


def normalise_frames(visual: torch.Tensor, max_value: float = 1.0, in_place: bool = False) -> torch.Tensor:
    """ImageNet mean / std per channel (OGM-GE's normalisation) of ``[B, T, 3, H, W]`` frames with values in
    ``[0, max_value]`` (255 for frames straight from uint8: the division by 255 is folded in)."""
    mean = torch.tensor(IMAGENET_MEAN, device=visual.device, dtype=visual.dtype)[:, None, None] * max_value
    std = torch.tensor(IMAGENET_STD, device=visual.device, dtype=visual.dtype)[:, None, None] * max_value
    return visual.sub_(mean).div_(std) if in_place else (visual - mean) / std


def mask_spectrograms(audio: torch.Tensor, max_fraction: float, generator: torch.Generator | None) -> torch.Tensor:
    """One frequency band and one time band per clip, each of width ~ U[0, max_fraction) of its axis,
    set to the clip's mean (SpecAugment-style masking; off unless ``spec_mask`` > 0). ``[B, 1, F, T]``."""
    batch, _, bins, steps = audio.shape
    draws = torch.rand(batch, 4, generator=generator)
    f_width, t_width = (draws[:, 0] * max_fraction * bins).long(), (draws[:, 1] * max_fraction * steps).long()
    f_start = (draws[:, 2] * (bins - f_width + 1)).long().clamp(max=bins - 1)
    t_start = (draws[:, 3] * (steps - t_width + 1)).long().clamp(max=steps - 1)
    f = torch.arange(bins)[None, :]
    t = torch.arange(steps)[None, :]
    f_mask = (f >= f_start[:, None]) & (f < (f_start + f_width)[:, None])  # [B, F]
    t_mask = (t >= t_start[:, None]) & (t < (t_start + t_width)[:, None])  # [B, T]
    mask = (f_mask[:, :, None] | t_mask[:, None, :])[:, None].to(audio.device)
    return torch.where(mask, audio.mean(dim=(1, 2, 3), keepdim=True), audio)
