"""Building blocks shared by the book's segmentation models.

* :class:`ConvBlock`: ``n`` times (3x3 convolution, batch norm, ReLU), the unit of VGG
  (Simonyan & Zisserman, 2015) and of U-Net's double convolution;
* :func:`pad_to_multiple` / :func:`crop_to`: let a network whose resolution is halved
  ``k`` times take any image size. The image is padded with zeros on the bottom and right
  to a multiple of ``2**k`` and the prediction cropped back, so every skip connection
  meets a tensor of the same size (FCN and U-Net crop instead, inside the network);
* :func:`count_parameters`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_positive_int

__all__ = ["ConvBlock", "pad_to_multiple", "crop_to", "count_parameters"]


class ConvBlock(nn.Sequential):
    """``num_convs`` times (3x3 convolution, batch norm, ReLU); the size is kept.

    Padding equals the dilation, so a dilated 3x3 convolution keeps the size too.

    Args:
        in_channels (int): channels of the input.
        out_channels (int): channels of every convolution's output.
        num_convs (int): number of convolutions (2 in VGG's early stages and in U-Net).
        dilation (int): dilation of every convolution (1: an ordinary convolution).

    Shape:
        ``[N, in_channels, H, W] -> [N, out_channels, H, W]``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_convs: int = 2, dilation: int = 1):
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("num_convs", num_convs)
        check_positive_int("dilation", dilation)
        layers: list[nn.Module] = []
        for i in range(num_convs):
            # no bias: the batch norm right after has its own shift
            layers += [
                nn.Conv2d(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    3,
                    padding=dilation,
                    dilation=dilation,
                    bias=False,
                ),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad ``x`` with zeros at the bottom and right so that H and W are multiples of ``multiple``.

    Args:
        x (Tensor[N, C, H, W]): images or feature maps.
        multiple (int): e.g. ``32`` for a network that halves the resolution five times.

    Returns:
        Tensor[N, C, H', W']: ``H' = ceil(H / multiple) * multiple`` (same for W); ``x``
        itself when nothing needs padding.
    """
    multiple = check_positive_int("multiple", multiple)
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(
            f"x must be a tensor [..., H, W], got {type(x).__name__} "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else ''}".rstrip()
        )
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h))  # (left, right, top, bottom)


def crop_to(x: torch.Tensor, size) -> torch.Tensor:
    """The top-left ``size = (H, W)`` of ``x`` (undoes :func:`pad_to_multiple`)."""
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise ValueError(f"size must be (H, W), got {size!r}")
    h, w = check_positive_int("size", size[0]), check_positive_int("size", size[1])
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a tensor [..., H, W], got {type(x).__name__}")
    if x.shape[-2] < h or x.shape[-1] < w:
        raise ValueError(f"cannot crop {tuple(x.shape[-2:])} to a larger size {(h, w)}")
    return x[..., :h, :w]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
