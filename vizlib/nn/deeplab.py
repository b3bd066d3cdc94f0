"""DeepLab: an atrous backbone, ASPP, and bilinear upsampling (Chen et al., "DeepLab:
Semantic Image Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully
Connected CRFs", TPAMI 2018, DeepLab v2; "Rethinking Atrous Convolution", 2017, DeepLab v3).

FCN recovers resolution by upsampling coarse scores and adding skips. DeepLab loses less
in the first place: the backbone's last pools are removed and its later convolutions
dilated (:class:`~vizlib.nn.backbone.VGGBackbone` with ``output_stride=8``), so the
features stay at 1/8 of the image while each unit still sees as far as before. ASPP
(:mod:`.aspp`) looks at several scales, a 1x1 convolution scores the classes, and plain
bilinear interpolation (no learned upsampling) brings the scores to the image size.

``decoder=True`` adds DeepLab v3+'s decoder (Chen et al., ECCV 2018): the ASPP output is
upsampled to stride 4, concatenated with the backbone's stride-4 features (reduced to a
few channels by a 1x1 convolution) and refined by two 3x3 convolutions: a skip connection,
as in FCN and U-Net, for sharper boundaries.

The original DeepLab (v1, v2) also refined the upsampled scores with a fully connected
CRF (Krähenbühl & Koltun, NeurIPS 2011) as post-processing; the chapter explains it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_image_batch, check_positive_int
from .aspp import ASPP
from .backbone import DEFAULT_CHANNELS, VGGBackbone
from .blocks import ConvBlock, crop_to, pad_to_multiple

__all__ = ["DeepLab"]


class DeepLab(nn.Module):
    """DeepLab v3 (or v3+ with ``decoder=True``) on a small atrous VGG-style backbone.

    Args:
        num_classes (int): classes scored per pixel.
        channels (sequence of int): channels of the backbone's stages.
        output_stride (int): 8 or 16 (or 32: no atrous convolution at all, for comparison).
        rates (sequence of int): ASPP's atrous rates.
        aspp_channels (int): channels of each ASPP branch.
        image_pooling (bool): ASPP's global-context branch.
        decoder (bool): add the v3+ decoder (skip from the stride-4 features).
        in_channels (int): image channels.

    Shape:
        ``forward(images)``: ``[N, in_channels, H, W]`` (any H, W) to logits
        ``[N, num_classes, H, W]``.
    """

    def __init__(
        self,
        num_classes: int,
        channels=DEFAULT_CHANNELS,
        output_stride: int = 8,
        rates=(2, 4, 6),
        aspp_channels: int = 128,
        image_pooling: bool = True,
        decoder: bool = False,
        in_channels: int = 3,
    ):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.in_channels = in_channels
        self.backbone = VGGBackbone(channels, in_channels=in_channels, output_stride=output_stride)
        self.aspp = ASPP(self.backbone.out_channels, aspp_channels, rates, image_pooling)
        self.decoder = decoder
        if decoder:
            if len(channels) < 2 or self.backbone.strides[1] != 4:
                raise ValueError("decoder=True needs a backbone stage at stride 4")
            low = 32
            self.reduce_low = nn.Sequential(
                nn.Conv2d(channels[1], low, 1, bias=False),
                nn.BatchNorm2d(low),
                nn.ReLU(inplace=True),
            )
            self.refine = ConvBlock(aspp_channels + low, aspp_channels, 2)
        self.classifier = nn.Conv2d(aspp_channels, num_classes, 1)

    @property
    def output_stride(self) -> int:
        return self.backbone.output_stride

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_image_batch(images, self.in_channels)
        size = images.shape[-2:]
        x = pad_to_multiple(images, 2 ** len(self.backbone.stages))
        features = self.backbone(x)
        y = self.aspp(features[-1])  # [N, aspp, H/os, W/os]
        if self.decoder:
            low = self.reduce_low(features[1])  # [N, 32, H/4, W/4]
            y = F.interpolate(y, size=low.shape[-2:], mode="bilinear", align_corners=False)
            y = self.refine(torch.cat([y, low], dim=1))  # [N, aspp, H/4, W/4]
        scores = self.classifier(y)
        scores = F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return crop_to(scores, size)  # [N, num_classes, H, W]
