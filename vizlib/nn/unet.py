"""U-Net: an encoder-decoder with skip connections at every scale (Ronneberger, Fischer
& Brox, "U-Net: Convolutional Networks for Biomedical Image Segmentation", MICCAI 2015).

The encoder (contracting path) is stages of two 3x3 convolutions, each followed by a 2x2
max-pool; the decoder (expanding path) mirrors it: a 2x2 transposed convolution of stride 2
doubles the resolution and halves the channels, the encoder's features of the same
resolution are *concatenated* (not added, as in FCN), and two 3x3 convolutions merge them.
The skips carry the fine detail the pools threw away; the bottom carries the context.

Differences from the paper: padded ("same") convolutions, so no cropping of the skips
and the output has the input's size (the image is zero-padded to a multiple of
``2**depth`` and the prediction cropped back); batch norm after each convolution;
narrow channels (16 ... 256 instead of 64 ... 1024) for small scenes.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_image_batch, check_positive_int
from .blocks import ConvBlock, crop_to, pad_to_multiple

__all__ = ["UNet", "UNetUp"]


class UNetUp(nn.Module):
    """One decoder step: upsample by 2, concatenate the skip, two 3x3 convolutions.

    Args:
        in_channels (int): channels coming up from below.
        skip_channels (int): channels of the encoder's features at the new resolution.
        out_channels (int): channels after the two convolutions.
        upsampling (str): ``"transposed"`` (a learned 2x2 transposed convolution of
            stride 2, as in the paper, to ``in_channels // 2`` channels) or
            ``"bilinear"`` (fixed interpolation, then a 1x1 convolution to
            ``in_channels // 2``: no checkerboard artifacts, Odena et al. 2016).

    Shape:
        ``forward(x, skip)``: ``x [N, in_channels, h, w]``, ``skip [N, skip_channels,
        2h, 2w]`` to ``[N, out_channels, 2h, 2w]``.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        upsampling: str = "transposed",
    ):
        super().__init__()
        half = max(in_channels // 2, 1)
        if upsampling == "transposed":
            self.up = nn.ConvTranspose2d(in_channels, half, kernel_size=2, stride=2)
        elif upsampling == "bilinear":
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, half, 1),
            )
        else:
            raise ValueError(f"upsampling must be 'transposed' or 'bilinear', got {upsampling!r}")
        self.conv = ConvBlock(half + skip_channels, out_channels, 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)  # [N, in/2, 2h, 2w]
        if x.shape[-2:] != skip.shape[-2:]:
            raise ValueError(
                f"the upsampled map {tuple(x.shape[-2:])} and the skip "
                f"{tuple(skip.shape[-2:])} must have the same size"
            )
        return self.conv(torch.cat([skip, x], dim=1))  # [N, out, 2h, 2w]


class UNet(nn.Module):
    """U-Net for ``num_classes``-way pixel classification.

    Args:
        num_classes (int): classes scored per pixel.
        channels (sequence of int): channels at each depth, from the top (full
            resolution) to the bottom; ``len(channels) - 1`` pools (the *depth*).
        in_channels (int): image channels.
        upsampling (str): ``"transposed"`` or ``"bilinear"`` (see :class:`UNetUp`).

    Shape:
        ``forward(images)``: ``[N, in_channels, H, W]`` (any H, W) to logits
        ``[N, num_classes, H, W]``.
    """

    def __init__(
        self,
        num_classes: int,
        channels=(16, 32, 64, 128, 256),
        in_channels: int = 3,
        upsampling: str = "transposed",
    ):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        channels = [check_positive_int("channels", c) for c in channels]
        if len(channels) < 2:
            raise ValueError("channels must give at least two depths (one pool)")
        self.in_channels = in_channels
        self.depth = len(channels) - 1
        self.encoder = nn.ModuleList()
        c_in = in_channels
        for c in channels:
            self.encoder.append(ConvBlock(c_in, c, 2))
            c_in = c
        self.pool = nn.MaxPool2d(2)
        self.decoder = nn.ModuleList(
            UNetUp(channels[i + 1], channels[i], channels[i], upsampling)
            for i in reversed(range(self.depth))
        )
        self.classifier = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_image_batch(images, self.in_channels)
        size = images.shape[-2:]
        x = pad_to_multiple(images, 2**self.depth)
        skips = []
        for i, block in enumerate(self.encoder):
            if i > 0:
                x = self.pool(x)  # halve the resolution
            x = block(x)
            skips.append(x)  # [N, channels[i], H / 2**i, W / 2**i]
        x = skips.pop()  # the bottom: most context, least detail
        for up in self.decoder:
            x = up(x, skips.pop())  # back up one level, merging the skip of that level
        return crop_to(self.classifier(x), size)  # [N, num_classes, H, W]
