"""Feature pyramid network (Lin et al., 2017) and its rule for which level a box reads.

A convolutional backbone gives fine maps that know little (early stages: edges, small
receptive fields) and coarse maps that know a lot (late stages) but have lost small
objects to pooling. The FPN gives every scale both:

1. a *lateral* 1x1 convolution brings each chosen stage to ``out_channels`` channels;
2. a *top-down* path starts at the coarsest map and walks to the finest, each time
   upsampling (nearest neighbour, to the finer map's exact size) and adding the lateral
   map: the coarse semantics reach the fine resolution;
3. a 3x3 convolution on each sum smooths the aliasing of the upsampling.

Every level then has the same channels, so one head (Faster R-CNN's RPN, RetinaNet's,
FCOS's) can be shared by all. :class:`FPN` agrees with
``torchvision.ops.FeaturePyramidNetwork`` (same weights, same outputs).

Faster R-CNN with an FPN crops each region of interest from *one* level, chosen by its
size (:func:`fpn_levels`, the paper's equation 1): a 224-pixel box (ImageNet's size) reads
level 4 (stride 16), a box half as wide one level finer.

:class:`FPNBackbone` puts an FPN on some stages of a :class:`~vizlib.nn.backbone.VGGBackbone`
and returns the list of levels (or, without the FPN, the last chosen stage alone: the
single-scale Faster R-CNN of Ren et al., 2015).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_boxes, check_number, check_positive_int
from .backbone import VGGBackbone

__all__ = ["FPN", "FPNBackbone", "fpn_levels"]


def _check_feature_list(features, count: int) -> list[torch.Tensor]:
    """A list of ``count`` feature maps ``[N, C_l, H_l, W_l]``, finest first (specific to
    pyramids: every level has the same batch size)."""
    if not isinstance(features, (list, tuple)) or len(features) != count:
        got = len(features) if isinstance(features, (list, tuple)) else type(features).__name__
        raise ValueError(f"features must be a list of {count} maps [N, C, H, W], got {got}")
    for i, f in enumerate(features):
        if not isinstance(f, torch.Tensor) or f.dim() != 4:
            raise ValueError(f"features[{i}] must be a tensor [N, C, H, W], got {f!r:.60}")
        if f.shape[0] != features[0].shape[0]:
            raise ValueError("every level of features must have the same batch size")
    return list(features)


class FPN(nn.Module):
    """Lateral 1x1 convolutions, a top-down path and 3x3 output convolutions.

    Args:
        in_channels_list (sequence of int): channels of each input map, finest first.
        out_channels (int): channels of every output level.

    Shape:
        ``forward(features)`` takes a list of maps ``[N, in_channels_list[l], H_l, W_l]``,
        finest first (each coarser one about half the size), and returns a list of
        ``[N, out_channels, H_l, W_l]`` in the same order.

    Same outputs as ``torchvision.ops.FeaturePyramidNetwork(in_channels_list,
    out_channels)`` given the same weights (its ``inner_blocks[l][0]`` is ``lateral[l]``,
    its ``layer_blocks[l][0]`` is ``output[l]``).
    """

    def __init__(self, in_channels_list, out_channels: int):
        super().__init__()
        if not isinstance(in_channels_list, (list, tuple)) or not in_channels_list:
            raise ValueError(
                f"in_channels_list must be a non-empty list of channels, got {in_channels_list!r}"
            )
        channels = [check_positive_int("in_channels_list", c) for c in in_channels_list]
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.lateral = nn.ModuleList(nn.Conv2d(c, self.out_channels, 1) for c in channels)
        self.output = nn.ModuleList(
            nn.Conv2d(self.out_channels, self.out_channels, 3, padding=1) for _ in channels
        )
        for conv in [*self.lateral, *self.output]:  # torchvision's initialisation
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def forward(self, features) -> list[torch.Tensor]:
        features = _check_feature_list(features, len(self.lateral))
        top_down = self.lateral[-1](features[-1])  # [N, out, H_L, W_L], the coarsest
        outputs = [self.output[-1](top_down)]
        for level in range(len(features) - 2, -1, -1):  # coarse to fine
            lateral = self.lateral[level](features[level])  # [N, out, H_l, W_l]
            # To the finer map's exact size, not x2: an odd size rounds down when pooled.
            upsampled = F.interpolate(top_down, size=lateral.shape[-2:], mode="nearest")
            top_down = lateral + upsampled
            outputs.insert(0, self.output[level](top_down))
        return outputs


def fpn_levels(
    boxes,
    k_min: int,
    k_max: int,
    canonical_size: float = 224,
    canonical_level: int = 4,
    eps: float = 1e-6,
) -> torch.Tensor:
    """The pyramid level each box's features are pooled from (Lin et al., 2017, eq. 1).

    ``k = floor(k0 + log2(sqrt(w * h) / 224))``, clamped to ``[k_min, k_max]``: level
    ``k`` has stride ``2**k``, and a box of ImageNet's 224 pixels reads the level the
    classifier was pre-trained at (``k0 = 4``, stride 16, ResNet's C4). Halving a box's
    side moves it one level finer, so every box spans about the same number of cells.
    ``eps`` keeps a box of exactly ``224 * 2**j`` pixels on level ``k0 + j`` despite the
    rounding of ``log2``.

    Same as ``torchvision.ops.poolers.LevelMapper(k_min, k_max, canonical_size,
    canonical_level, eps)([boxes]) + k_min`` (torchvision returns ``k - k_min``, the index
    of the level in its list).

    Args:
        boxes (Tensor[K, 4]): boxes ``(x1, y1, x2, y2)`` in image pixels.
        k_min (int): the finest level (``log2`` of the finest stride), >= 0.
        k_max (int): the coarsest level, >= ``k_min``.
        canonical_size (float): the box size that reads ``canonical_level``, > 0.
        canonical_level (int): ``k0``.
        eps (float): added before the floor, >= 0.

    Returns:
        Tensor[K]: int64 level ``k`` of each box, in ``[k_min, k_max]``.
    """
    b = check_boxes("boxes", boxes)
    k_min = check_positive_int("k_min", k_min, allow_zero=True)
    k_max = check_positive_int("k_max", k_max, allow_zero=True)
    if k_max < k_min:
        raise ValueError(f"k_max ({k_max}) must be >= k_min ({k_min})")
    s0 = check_number("canonical_size", canonical_size, low=0, strict=True)
    k0 = check_positive_int("canonical_level", canonical_level, allow_zero=True)
    eps = check_number("eps", eps, low=0)
    size = torch.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))  # [K]
    # A zero-area box gives log2(0) = -inf: the finest level after the clamp, as torchvision.
    k = torch.floor(k0 + torch.log2(size / s0) + torch.tensor(eps, dtype=size.dtype))  # [K]
    return k.clamp(min=k_min, max=k_max).to(torch.int64)


class FPNBackbone(nn.Module):
    """A :class:`~vizlib.nn.backbone.VGGBackbone` with an :class:`FPN` on some stages.

    Args:
        backbone (VGGBackbone, optional): default ``VGGBackbone((16, 32, 64, 64),
            convs_per_stage=1)`` (strides 2, 4, 8, 16).
        levels (sequence of int): increasing indices of the stages that become levels
            (default ``(1, 2, 3)``: strides 4, 8, 16).
        out_channels (int): channels of every level.
        use_fpn (bool): with ``False`` there is one level only: the last chosen stage
            through a 1x1 convolution to ``out_channels`` (a single-scale detector, as
            Faster R-CNN before the FPN).

    Shape:
        ``forward(x [N, 3, H, W])`` returns a list of ``[N, out_channels, H / s, W / s]``,
        one per stride ``s`` of :attr:`strides`, finest first.

    Attributes:
        levels (list[int]): the stages returned (the last requested one alone without
            the FPN); ``requested_levels``: the stages asked for.
        strides (list[int]): the stride of each returned level (powers of 2).
        out_channels (int): channels of every level.
    """

    def __init__(
        self,
        backbone: VGGBackbone | None = None,
        levels=(1, 2, 3),
        out_channels: int = 64,
        use_fpn: bool = True,
    ):
        super().__init__()
        self.body = (
            VGGBackbone((16, 32, 64, 64), convs_per_stage=1) if backbone is None else backbone
        )
        if not isinstance(self.body, VGGBackbone):
            raise ValueError(f"backbone must be a VGGBackbone, got {type(self.body).__name__}")
        levels = [check_positive_int("levels", i, allow_zero=True) for i in levels]
        n = len(self.body.channels)
        if not levels or sorted(set(levels)) != levels or levels[-1] >= n:
            raise ValueError(f"levels must be increasing stage indices in [0, {n}), got {levels}")
        if not isinstance(use_fpn, bool):
            raise ValueError(f"use_fpn must be a bool, got {use_fpn!r}")
        strides = [self.body.strides[i] for i in levels]
        if len(set(strides)) != len(strides):  # an atrous backbone repeats its last stride
            raise ValueError(f"the chosen stages must have different strides, got {strides}")
        self.use_fpn = use_fpn
        self.requested_levels = levels
        self.levels = levels if use_fpn else levels[-1:]
        self.strides = [self.body.strides[i] for i in self.levels]
        self.out_channels = check_positive_int("out_channels", out_channels)
        in_channels = [self.body.channels[i] for i in self.levels]
        if use_fpn:
            self.neck = FPN(in_channels, self.out_channels)
        else:
            self.neck = nn.Conv2d(in_channels[0], self.out_channels, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        stages = self.body(x)
        picked = [stages[i] for i in self.levels]
        if self.use_fpn:
            return self.neck(picked)
        return [self.neck(picked[0])]

    @property
    def level_numbers(self) -> list[int]:
        """``k = log2(stride)`` of each level: the numbers :func:`fpn_levels` returns."""
        return [int(round(math.log2(s))) for s in self.strides]
