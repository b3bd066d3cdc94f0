"""SegNet: an encoder-decoder that upsamples by max-unpooling (Badrinarayanan, Kendall &
Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder Architecture for Image
Segmentation", TPAMI 2017).

Each encoder max-pool remembers *where* its maxima were (the "switches"); the matching
decoder stage puts each value back at that position and zeros elsewhere
(``nn.MaxUnpool2d``, see :func:`vizlib.upsampling.max_unpool`), then convolutions fill
in the zeros. Only the positions cross from encoder to decoder, not the features (U-Net
copies the features: more memory, more detail). The decoder has no learned upsampling.

Differences from the paper: a narrow 4-stage encoder with batch norm; the image is
zero-padded to a multiple of ``2**depth`` and the prediction cropped back.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_image_batch, check_positive_int
from .blocks import ConvBlock, crop_to, pad_to_multiple

__all__ = ["SegNet"]


class SegNet(nn.Module):
    """SegNet for ``num_classes``-way pixel classification.

    Args:
        num_classes (int): classes scored per pixel.
        channels (sequence of int): channels of each encoder stage (one pool each); the
            decoder mirrors them.
        in_channels (int): image channels.

    Shape:
        ``forward(images)``: ``[N, in_channels, H, W]`` (any H, W) to logits
        ``[N, num_classes, H, W]``.
    """

    def __init__(self, num_classes: int, channels=(16, 32, 64, 128), in_channels: int = 3):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        channels = [check_positive_int("channels", c) for c in channels]
        if not channels:
            raise ValueError("channels must name at least one stage")
        self.in_channels = in_channels
        self.depth = len(channels)
        self.encoder = nn.ModuleList()
        c_in = in_channels
        for c in channels:
            self.encoder.append(ConvBlock(c_in, c, 2))
            c_in = c
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        # decoder stage i undoes encoder stage i: from channels[i] back to channels[i - 1]
        outs = [channels[0]] + channels[:-1]
        self.decoder = nn.ModuleList(
            ConvBlock(channels[i], outs[i], 2) for i in reversed(range(self.depth))
        )
        self.classifier = nn.Conv2d(channels[0], num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_image_batch(images, self.in_channels)
        size = images.shape[-2:]
        x = pad_to_multiple(images, 2**self.depth)
        switches = []
        for block in self.encoder:
            before = block(x)
            x, where = self.pool(before)  # where: flat index of each max in `before`
            switches.append((where, before.shape[-2:]))
        for block in self.decoder:
            where, shape = switches.pop()
            x = self.unpool(x, where, output_size=shape)  # maxima back in place, zeros elsewhere
            x = block(x)
        return crop_to(self.classifier(x), size)  # [N, num_classes, H, W]
