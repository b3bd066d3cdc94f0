"""Atrous spatial pyramid pooling (ASPP) in its DeepLab v3 form.

ASPP was introduced with DeepLab v2 (Chen, Papandreou, Kokkinos, Murphy & Yuille,
"DeepLab", TPAMI 2018): parallel 3x3 atrous branches at rates 6, 12, 18, 24, each with
its own classifier, their scores summed. DeepLab v3 (Chen, Papandreou, Schroff & Adam,
"Rethinking Atrous Convolution for Semantic Image Segmentation", 2017) gave it the form
built here: a 1x1 branch and an image-pooling branch beside the atrous ones, batch
normalisation, and the branches concatenated and projected instead of summed.

Objects appear at many sizes. ASPP looks at every position at several scales at once:
parallel branches over the same feature map, concatenated, then mixed by a 1x1
convolution:

* a 1x1 convolution (the position itself);
* 3x3 convolutions with dilation (atrous rate) ``r`` for each rate: the same 9 weights
  spread ``r`` pixels apart, a field of ``2r + 1`` feature pixels at the cost of a 3x3;
* image pooling: the whole map averaged to one vector, a 1x1 convolution, broadcast back
  to every position (global context; it replaces the rates that grow as large as the
  map, whose outer taps fall in the zero padding and which degenerate to a 1x1).

Choose the rates for the feature map's size: DeepLab v3 uses 6, 12, 18 on 33 x 33 maps
(output stride 16 on 513-pixel images); a 64-pixel scene at output stride 8 gives an
8 x 8 map, where rates 2, 4, 6 play that role.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_positive_int

__all__ = ["ASPP"]


def _conv_bn_relu(
    in_channels: int, out_channels: int, kernel: int, dilation: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel,
            padding=dilation * (kernel // 2),
            dilation=dilation,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class _ImagePooling(nn.Module):
    """Global average, 1x1 convolution, then the same vector at every position."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        # no batch norm: with a batch of one image a 1 x 1 map has no statistics to norm
        self.conv = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.conv(F.adaptive_avg_pool2d(x, 1))  # [N, out, 1, 1]
        return pooled.expand(-1, -1, *x.shape[-2:])  # [N, out, h, w]


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling.

    Args:
        in_channels (int): channels of the backbone's features.
        out_channels (int): channels of each branch and of the output.
        rates (sequence of int): atrous rates of the 3x3 branches.
        image_pooling (bool): add the global-context branch.
        dropout (float): dropout after the projection.

    Shape:
        ``[N, in_channels, h, w] -> [N, out_channels, h, w]``.

    Attributes:
        branches (nn.ModuleList): the parallel branches, in the order 1x1, rates, pooling.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 128,
        rates=(2, 4, 6),
        image_pooling: bool = True,
        dropout: float = 0.1,
    ):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        self.rates = tuple(check_positive_int("rates", r) for r in rates)
        branches: list[nn.Module] = [_conv_bn_relu(in_channels, out_channels, 1)]
        branches += [_conv_bn_relu(in_channels, out_channels, 3, r) for r in self.rates]
        if image_pooling:
            branches.append(_ImagePooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(
            _conv_bn_relu(len(branches) * out_channels, out_channels, 1), nn.Dropout2d(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(
                f"x must be a feature map [N, C, h, w], got {getattr(x, 'shape', type(x))}"
            )
        # every branch keeps the size; stack them along the channels
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))
