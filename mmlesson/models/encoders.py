"""ResNet-18 encoders built from torchvision's residual blocks (Chapter 1).

``width`` is the number of channels of the first stage: 64 gives the standard ResNet-18 (512-d
features, as in OGM-GE); 8 gives a tiny variant that trains on a laptop CPU in seconds.
The audio encoder takes a 1-channel spectrogram [B,1,F,T]. The visual encoder folds the T frames
into the batch, runs the 2-D ResNet on each frame, and averages the feature maps jointly over time
and space, as the OGM-GE release does. ``tokens(x)`` gives the features before that pooling, one
token per position of the last feature map ([B, h*w, D] for audio, [B, T*h*w, D] for vision, time
major), for fusions that attend over them (CCAT's cross-attention, Chapter 4); their mean is the
pooled feature vector. ``output_stride`` (32, the standard ResNet-18) is the total downsampling of the
last map: 8 keeps the resolution of stage 2 through stages 3 and 4 (their first blocks use stride 1),
so a small input still gives several tokens (a 24 x 16 spectrogram: 3 x 2 instead of 1 x 1).
"""
from __future__ import annotations

import torch
from torch import nn


OUTPUT_STRIDES = (4, 8, 16, 32)


class ResNet18Trunk(nn.Module):
    """ResNet-18 without pooling and classifier: [B,C_in,H,W] -> feature maps [B,8*width,h,w], h = H /
    ``output_stride`` (rounded up)."""

    def __init__(self, in_channels: int, width: int = 64, output_stride: int = 32):
        # here, not at the top: importing torchvision loads torch._dynamo (about 1 s), which only building
        # an encoder needs (not --help, planning a grid or reading a run's metrics)
        from torchvision.models.resnet import BasicBlock, conv1x1

        super().__init__()
        if width < 1:
            raise ValueError(f"encoder width must be a positive integer, got {width!r}")
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}, got {output_stride!r}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        stages, channels, total_stride = [], width, 4  # the stem's convolution and max-pool halve twice
        for stage, out_channels in enumerate([width, 2 * width, 4 * width, 8 * width]):
            stride = 1 if stage == 0 or total_stride >= output_stride else 2
            total_stride *= stride
            downsample = None
            if stride != 1 or channels != out_channels:
                downsample = nn.Sequential(conv1x1(channels, out_channels, stride), nn.BatchNorm2d(out_channels))
            stages.append(nn.Sequential(BasicBlock(channels, out_channels, stride, downsample),
                                        BasicBlock(out_channels, out_channels)))
            channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels
        for module in self.modules():  # the initialisation torchvision and OGM-GE use
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class AudioEncoder(nn.Module):
    """Spectrogram [B,1,F,T] -> feature vector [B,8*width] (global average pooling)."""

    def __init__(self, width: int = 64, output_stride: int = 32):
        super().__init__()
        self.trunk = ResNet18Trunk(in_channels=1, width=width, output_stride=output_stride)
        self.out_dim = self.trunk.out_channels

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.trunk(audio).mean(dim=(2, 3))

    def tokens(self, audio: torch.Tensor) -> torch.Tensor:
        """[B,1,F,T] -> [B, h*w, D]: one token per frequency x time position of the last feature map."""
        return self.trunk(audio).flatten(2).transpose(1, 2)


class VisualEncoder(nn.Module):
    """Frames [B,T,3,H,W] -> feature vector [B,8*width]: frames folded into the batch, then
    feature maps averaged jointly over time and space (OGM-GE's visual pooling)."""

    def __init__(self, width: int = 64, output_stride: int = 32):
        super().__init__()
        self.trunk = ResNet18Trunk(in_channels=3, width=width, output_stride=output_stride)
        self.out_dim = self.trunk.out_channels

    def forward(self, visual: torch.Tensor) -> torch.Tensor:
        batch, frames = visual.shape[:2]
        maps = self.trunk(visual.flatten(0, 1))  # [B*T,C,h,w]
        maps = maps.unflatten(0, (batch, frames))  # [B,T,C,h,w]
        return maps.mean(dim=(1, 3, 4))

    def tokens(self, visual: torch.Tensor) -> torch.Tensor:
        """[B,T,3,H,W] -> [B, T*h*w, D]: one token per frame x position of the last feature map."""
        batch, frames = visual.shape[:2]
        maps = self.trunk(visual.flatten(0, 1)).unflatten(0, (batch, frames))  # [B,T,C,h,w]
        return maps.permute(0, 1, 3, 4, 2).flatten(1, 3)


ENCODERS = {"audio": AudioEncoder, "visual": VisualEncoder}
