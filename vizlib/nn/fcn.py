"""Fully convolutional networks: FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer & Darrell,
"Fully Convolutional Networks for Semantic Segmentation", CVPR 2015).

A classification network made fully convolutional (see :mod:`.convolutionalize`) turns
an image into a score map 32 times coarser than the image. FCN upsamples it back with
transposed convolutions initialised to bilinear interpolation
(:func:`vizlib.upsampling.bilinear_conv_transpose`):

* **FCN-32s** upsamples the stride-32 scores by 32 in one step: blobby predictions.
* **FCN-16s** upsamples them by 2, adds scores predicted from the stride-16 features
  (``pool4``, a *skip connection*: finer detail, less context), then upsamples by 16.
* **FCN-8s** adds scores from the stride-8 features (``pool3``) too, then upsamples by 8.

As in the paper, the skip scorers start at zero (so each net starts as the coarser one),
the 2x upsamplings inside the net are learned from their bilinear start, and the final
upsampling is kept fixed at bilinear. Differences from the paper, for small scenes: a
narrow VGG-style backbone with batch norm (:class:`~vizlib.nn.backbone.VGGBackbone`),
"fc6" a 3x3 convolution instead of 7x7, no 100-pixel input padding and cropping: the
image is zero-padded to a multiple of 32 and the prediction cropped back.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_fraction, check_image_batch, check_positive_int
from ..upsampling import bilinear_conv_transpose, bilinear_kernel
from .backbone import DEFAULT_CHANNELS, VGGBackbone
from .blocks import crop_to, pad_to_multiple

__all__ = ["FCN", "FCN_VARIANTS", "FCNHead", "FixedBilinearUpsampling"]

FCN_VARIANTS = ("32s", "16s", "8s")


class FCNHead(nn.Sequential):
    """The convolutionalised classifier on the stride-32 features: "fc6", "fc7", scores.

    ``fc6`` (a 3x3 convolution), ``fc7`` (1x1), both with ReLU and dropout, then a 1x1
    convolution to one score per class.

    Shape:
        ``[N, in_channels, h, w] -> [N, num_classes, h, w]``.
    """

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 256, dropout: float = 0.1):
        check_positive_int("in_channels", in_channels)
        check_positive_int("num_classes", num_classes)
        check_positive_int("hidden", hidden)
        dropout = check_fraction("dropout", dropout)
        super().__init__(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout),
            nn.Conv2d(hidden, num_classes, 1),
        )


class FixedBilinearUpsampling(nn.Module):
    """Bilinear upsampling by an integer ``factor``, as a transposed convolution that is not
    trained: FCN's last layer.

    The same kernel and padding as :func:`vizlib.upsampling.bilinear_conv_transpose`, but
    stored once (a buffer, no parameters) and applied to each channel on its own
    (``groups = channels``), as FCN's reference implementation does.

    Shape:
        ``[N, C, h, w] -> [N, C, factor * h, factor * w]``.
    """

    def __init__(self, factor: int):
        super().__init__()
        self.factor = check_positive_int("factor", factor)
        self.padding = math.ceil((factor - 1) / 2)
        self.register_buffer("kernel", bilinear_kernel(factor)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        weight = self.kernel.to(x.dtype).expand(
            channels, 1, *self.kernel.shape[-2:]
        )  # [C, 1, K, K]
        return F.conv_transpose2d(
            x, weight, stride=self.factor, padding=self.padding, groups=channels
        )


def _zero_scorer(in_channels: int, num_classes: int) -> nn.Conv2d:
    """A 1x1 scoring layer for a skip, initialised to zero (the paper's choice)."""
    layer = nn.Conv2d(in_channels, num_classes, 1)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class FCN(nn.Module):
    """FCN-32s, FCN-16s or FCN-8s on a small VGG-style backbone.

    Args:
        num_classes (int): classes to score per pixel.
        variant (str): ``"32s"``, ``"16s"`` or ``"8s"``.
        channels (sequence of 5 ints): channels of the backbone's five stages.
        hidden (int): channels of "fc6" and "fc7".
        in_channels (int): image channels.
        learn_final_upsampling (bool): train the last upsampling too (the paper keeps it
            fixed at bilinear).

    Shape:
        ``forward(images)``: ``[N, in_channels, H, W]`` (any H, W) to logits
        ``[N, num_classes, H, W]``.
    """

    def __init__(
        self,
        num_classes: int,
        variant: str = "8s",
        channels=DEFAULT_CHANNELS,
        hidden: int = 256,
        in_channels: int = 3,
        learn_final_upsampling: bool = False,
    ):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        if variant not in FCN_VARIANTS:
            raise ValueError(f"variant must be one of {FCN_VARIANTS}, got {variant!r}")
        if len(channels) != 5:
            raise ValueError(f"channels must give the 5 stages of the backbone, got {channels!r}")
        check_positive_int("hidden", hidden)
        check_positive_int("in_channels", in_channels)
        if not isinstance(learn_final_upsampling, bool):
            raise ValueError(
                f"learn_final_upsampling must be True or False, got {learn_final_upsampling!r}"
            )
        self.variant = variant
        self.in_channels = in_channels
        self.backbone = VGGBackbone(channels, in_channels=in_channels)
        self.head = FCNHead(channels[4], num_classes, hidden)
        final_factor = {"32s": 32, "16s": 16, "8s": 8}[variant]
        if variant in ("16s", "8s"):
            self.score_pool4 = _zero_scorer(channels[3], num_classes)
            self.upscore2 = bilinear_conv_transpose(num_classes, 2)  # stride 32 -> 16, learned
        if variant == "8s":
            self.score_pool3 = _zero_scorer(channels[2], num_classes)
            self.upscore_pool4 = bilinear_conv_transpose(num_classes, 2)  # stride 16 -> 8, learned
        if learn_final_upsampling:
            self.upscore_final = bilinear_conv_transpose(num_classes, final_factor)
        else:
            self.upscore_final = FixedBilinearUpsampling(final_factor)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_image_batch(images, self.in_channels)
        size = images.shape[-2:]
        x = pad_to_multiple(images, 32)
        _, _, pool3, pool4, pool5 = self.backbone(x)  # strides 2, 4, 8, 16, 32
        scores = self.head(pool5)  # [N, K, H/32, W/32]
        if self.variant in ("16s", "8s"):
            scores = self.upscore2(scores) + self.score_pool4(pool4)  # [N, K, H/16, W/16]
        if self.variant == "8s":
            scores = self.upscore_pool4(scores) + self.score_pool3(pool3)  # [N, K, H/8, W/8]
        return crop_to(self.upscore_final(scores), size)  # [N, K, H, W]
