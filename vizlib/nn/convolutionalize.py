"""Convolutionalisation: a fully connected layer is a convolution (Long et al., 2015).

A classifier that ends in fully connected layers accepts one input size only: the first
of them multiplies a flattened ``C x k x k`` feature map by a weight matrix
``[classes, C * k * k]``. Reshape that matrix to ``[classes, C, k, k]`` and it is the
weight of a ``k x k`` convolution: on a ``C x k x k`` input it computes exactly the same
numbers, and on a larger input it slides, giving one prediction per position (a coarse
score map) in one pass that shares all the convolutions between overlapping windows.
The fully connected layers after the first act on a 1 x 1 "map": they become 1x1
convolutions. Yann LeCun's summary: in a convolutional network there are no fully
connected layers, only convolutions with 1x1 kernels and a full connection table.
"""

from __future__ import annotations

from torch import nn

from .._checks import check_positive_int

__all__ = ["linear_to_conv"]


def linear_to_conv(linear: nn.Linear, in_channels: int, kernel_size: int = 1) -> nn.Conv2d:
    """The ``Conv2d`` that computes what ``linear`` computes on a flattened feature map.

    Args:
        linear (nn.Linear): acts on ``x.flatten(1)`` for ``x`` of shape
            ``[N, in_channels, kernel_size, kernel_size]`` (so ``linear.in_features``
            must be ``in_channels * kernel_size**2``).
        in_channels (int): channels ``C`` of the feature map the linear layer saw.
        kernel_size (int): its height and width ``k`` (1 for a layer after another
            fully connected layer).

    Returns:
        nn.Conv2d: ``Conv2d(C, out_features, k)`` with the same weights and bias (a copy;
        ``linear`` is not modified). On a ``k x k`` input its output is ``[N, out, 1, 1]``
        and equals ``linear(x.flatten(1))``; on a larger input it is a score map.
    """
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    in_channels = check_positive_int("in_channels", in_channels)
    kernel_size = check_positive_int("kernel_size", kernel_size)
    if linear.in_features != in_channels * kernel_size**2:
        raise ValueError(
            f"linear has in_features={linear.in_features}, but a {in_channels} x {kernel_size} x "
            f"{kernel_size} feature map flattens to {in_channels * kernel_size**2}"
        )
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size, bias=linear.bias is not None)
    conv = conv.to(device=linear.weight.device, dtype=linear.weight.dtype)
    # flatten(1) orders a [C, k, k] map channel by channel, row by row: exactly the
    # order of reshape(out, C, k, k), so the reshape needs no transposition
    conv.weight.data.copy_(
        linear.weight.detach().reshape(linear.out_features, in_channels, kernel_size, kernel_size)
    )
    if linear.bias is not None:
        conv.bias.data.copy_(linear.bias.detach())
    return conv
