"""On-device augmentation: crop boxes drawn like torchvision's RandomResizedCrop, crops equal to
torchvision's resized_crop, flips, spectrogram masks, normalisation; all reproducible from a generator."""

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from mmlesson.data.augment import (augment_frames, crop_and_resize, mask_spectrograms, normalise_frames,
                                   random_resized_crop_boxes, resize_frames)


def test_crop_boxes_lie_inside_follow_the_scale_and_ratio_ranges_and_are_reproducible():
    boxes = random_resized_crop_boxes(4000, 224, 224, torch.Generator().manual_seed(0))
    x0, y0, x1, y1 = boxes.unbind(1)
    w, h = x1 - x0, y1 - y0
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= 224).all() and (y1 <= 224).all()
    assert (w >= 1).all() and (h >= 1).all()
    area = w * h / 224 ** 2
    assert area.min() > 0.07 and area.max() <= 1.0
    assert (w / h).min() > 0.7 and (w / h).max() < 1.4  # 3/4 .. 4/3 up to rounding
    # the same distribution as torchvision's own sampler (its get_params, 4000 draws)
    from torchvision.transforms import RandomResizedCrop
    torch.manual_seed(0)
    image = torch.zeros(3, 224, 224)
    theirs = torch.tensor([RandomResizedCrop.get_params(image, [0.08, 1.0], [3 / 4, 4 / 3])[2:] for _ in range(4000)],
                          dtype=torch.float32)
    their_area = theirs[:, 0] * theirs[:, 1] / 224 ** 2
    assert abs(float(area.mean() - their_area.mean())) < 0.02  # 2.5 standard errors of the difference
    assert abs(float(area.std() - their_area.std())) < 0.02
    again = random_resized_crop_boxes(4000, 224, 224, torch.Generator().manual_seed(0))
    assert torch.equal(boxes, again)


def test_crop_and_resize_equals_torchvision_resized_crop_without_antialiasing():
    """Equal wherever the sampling point lies inside the box; at the box's outer half-pixel torchvision
    (which cuts first) repeats the edge pixel, while roi_align reads the true neighbour outside it."""
    images = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    boxes = torch.tensor([[0.0, 0.0, 40.0, 40.0], [5.0, 7.0, 25.0, 37.0], [12.0, 3.0, 40.0, 19.0]])
    ours = crop_and_resize(images, boxes, 32)
    for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
        theirs = TF.resized_crop(images[i], y0, x0, y1 - y0, x1 - x0, [32, 32], antialias=False)
        centres = (torch.arange(32) + 0.5) / 32
        inside_x = (x0 + centres * (x1 - x0) - 0.5 >= x0) & (x0 + centres * (x1 - x0) - 0.5 <= x1 - 1)
        inside_y = (y0 + centres * (y1 - y0) - 0.5 >= y0) & (y0 + centres * (y1 - y0) - 0.5 <= y1 - 1)
        inside = inside_y[:, None] & inside_x[None, :]
        assert inside.float().mean() > 0.85
        torch.testing.assert_close(ours[i][:, inside], theirs[:, inside], atol=1e-5, rtol=0)
    identity = crop_and_resize(images, torch.tensor([[0.0, 0.0, 40.0, 40.0]] * 3), 40)
    torch.testing.assert_close(identity, images, atol=1e-6, rtol=0)
    assert torch.equal(resize_frames(images[:, None], 40), images[:, None])


def test_flip_and_crop_are_shared_by_the_frames_of_a_clip():
    frame = torch.linspace(0, 1, 16).repeat(3, 16, 1)  # brightness grows left to right
    visual = frame.expand(64, 2, 3, 16, 16).clone()
    out = augment_frames(visual, 16, torch.Generator().manual_seed(3))
    assert out.shape == (64, 2, 3, 16, 16)
    assert torch.equal(out[:, 0], out[:, 1])
    slope = out[:, 0, 0, 8, -1] - out[:, 0, 0, 8, 0]
    flipped = (slope < 0).float().mean()
    assert 0.3 < flipped < 0.7  # a fair coin per clip
    assert torch.equal(out, augment_frames(visual, 16, torch.Generator().manual_seed(3)))


def test_spectrogram_masks_and_normalisation():
    audio = torch.arange(2 * 20 * 30, dtype=torch.float32).reshape(2, 1, 20, 30)
    assert torch.equal(mask_spectrograms(audio, 0.0, torch.Generator().manual_seed(0)), audio)
    masked = mask_spectrograms(audio, 0.5, torch.Generator().manual_seed(0))
    changed = masked != audio
    for clip in range(2):
        rows = changed[clip, 0].all(dim=1).sum()
        cols = changed[clip, 0].all(dim=0).sum()
        assert rows < 10 and cols < 15  # at most half of each axis
        fill = audio[clip].mean()
        assert torch.allclose(masked[clip][changed[clip]], fill.expand(int(changed[clip].sum())))
    grey = torch.tensor([0.485, 0.456, 0.406])[:, None, None].expand(1, 1, 3, 4, 4)
    assert torch.allclose(normalise_frames(grey), torch.zeros(1, 1, 3, 4, 4), atol=1e-6)
    white = normalise_frames(torch.ones(1, 1, 3, 1, 1)).flatten()
    assert torch.allclose(white, torch.tensor([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_augmentation_on_cuda_equals_cpu():
    visual = torch.rand(8, 1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    cpu = augment_frames(visual, 24, torch.Generator().manual_seed(5))
    gpu = augment_frames(visual.cuda(), 24, torch.Generator().manual_seed(5))
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=0)
