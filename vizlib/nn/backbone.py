"""A small VGG-style backbone for 64-128 pixel scenes, with optional atrous stages.

VGG-16 (Simonyan & Zisserman, 2015), the backbone of FCN and of the first DeepLab, is
five stages of 3x3 convolutions, each stage followed by a 2x2 max-pool that halves the
resolution: after stage ``i`` (counting from 1) a unit is ``2**i`` input pixels from its
neighbour (the *output stride*). :class:`VGGBackbone` is the same design, narrower
(16 to 128 channels instead of 64 to 512) so that it trains in minutes on small scenes.
With its default two convolutions in every stage it has the layout of VGG-13; VGG-16 has
three in each of the last three stages (``convs_per_stage=(2, 2, 3, 3, 3)``).

``output_stride=16`` or ``8`` turns it into DeepLab's atrous backbone (Chen et al., 2017):
the pools that would take the stride past it are removed, and every later convolution is
dilated by 2 for each removed pool, so it still sees as far, in input pixels, as before.
The last stages keep their weights, and the feature maps stay 2 or 4 times larger. (In
VGG a stage's pool comes after its convolutions, so removing ``pool5`` dilates only what
follows the backbone, and removing ``pool4`` too dilates ``conv5`` by 2 and the head by 4.)
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_image_batch, check_positive_int
from .blocks import ConvBlock

__all__ = ["VGGBackbone", "DEFAULT_CHANNELS", "check_stage_levels"]

DEFAULT_CHANNELS = (16, 32, 64, 128, 128)


class VGGBackbone(nn.Module):
    """Stages of :class:`~vizlib.nn.blocks.ConvBlock`, each followed by a 2x2 max-pool.

    Args:
        channels (sequence of int): output channels of each stage (5 stages: output stride 32).
        convs_per_stage (int or sequence of int): convolutions in each stage.
        in_channels (int): image channels.
        output_stride (int, optional): 2**k, at most ``2**len(channels)``. Pools beyond
            it are removed and later convolutions dilated (atrous). Default: every pool kept.

    Shape:
        ``forward(x)`` takes ``[N, in_channels, H, W]`` (H, W divisible by the output
        stride) and returns a list with the output of every stage, after its pool:
        ``features[i]`` is ``[N, channels[i], H / s_i, W / s_i]`` with
        ``s_i = min(2**(i + 1), output_stride)``.

    Attributes:
        strides (list[int]): ``s_i`` of each stage.
        dilations (list[int]): dilation of each stage's convolutions.
        head_dilation (int): the dilation a 3x3 layer after the backbone needs to see as
            far as it would at output stride 32 (``32 / output_stride`` for 5 stages).
    """

    def __init__(
        self,
        channels=DEFAULT_CHANNELS,
        convs_per_stage=2,
        in_channels: int = 3,
        output_stride: int | None = None,
    ):
        super().__init__()
        channels = [check_positive_int("channels", c) for c in channels]
        if not channels:
            raise ValueError("channels must name at least one stage")
        if isinstance(convs_per_stage, int):
            convs_per_stage = [convs_per_stage] * len(channels)
        convs_per_stage = list(convs_per_stage)
        if len(convs_per_stage) != len(channels):
            raise ValueError(
                f"convs_per_stage has {len(convs_per_stage)} entries for {len(channels)} stages"
            )
        max_stride = 2 ** len(channels)
        if output_stride is None:
            output_stride = max_stride
        check_positive_int("output_stride", output_stride)
        if output_stride & (output_stride - 1) or not 2 <= output_stride <= max_stride:
            raise ValueError(
                f"output_stride must be a power of 2 in [2, {max_stride}], got {output_stride}"
            )
        self.channels = channels
        self.output_stride = output_stride
        self.stages = nn.ModuleList()
        self.pools = nn.ModuleList()
        self.strides: list[int] = []
        self.dilations: list[int] = []
        stride, dilation, c_in = 1, 1, in_channels
        for c_out, n in zip(channels, convs_per_stage, strict=True):
            self.stages.append(ConvBlock(c_in, c_out, n, dilation=dilation))
            self.dilations.append(dilation)
            if stride * 2 <= output_stride:
                self.pools.append(nn.MaxPool2d(2))
                stride *= 2
            else:
                # atrous: keep the resolution, and dilate what follows by 2 instead
                self.pools.append(nn.Identity())
                dilation *= 2
            self.strides.append(stride)
            c_in = c_out
        self.head_dilation = dilation

    @property
    def out_channels(self) -> int:
        """Channels of the last stage's output."""
        return self.channels[-1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        check_image_batch(x)
        features = []
        for stage, pool in zip(self.stages, self.pools, strict=True):
            x = pool(stage(x))
            features.append(x)
        return features


def check_stage_levels(levels, backbone: VGGBackbone) -> list[int]:
    """The backbone stages a detector reads (``levels``) as a list of ints, increasing and
    within the backbone's stages; ValueError otherwise."""
    levels = [int(i) for i in levels]
    n = len(backbone.channels)
    if not levels or sorted(set(levels)) != levels or levels[0] < 0 or levels[-1] >= n:
        raise ValueError(f"levels must be increasing stage indices in [0, {n}), got {levels}")
    return levels
