"""torchvision's segmentation models, sized to train next to the book's in minutes.

torchvision builds FCN and DeepLab v3 the same way: a ResNet trunk whose last stages are
dilated (output stride 8), then a head (``FCNHead``: a 3x3 convolution and a 1x1
classifier; ``DeepLabHead``: ASPP and a classifier), then bilinear interpolation to the
image size (torchvision's FCN is thus an "FCN-8s by dilation", with no skips).
``fcn_resnet50`` and ``deeplabv3_resnet50`` have 33 and 42 million parameters: far too many
to train from scratch on small scenes in a chapter's time on a CPU. The builders here use
the same torchvision classes (``FCN``, ``FCNHead``, ``DeepLabV3``, ``DeepLabHead``,
``ResNet``) on torchvision's ResNet-18 trunk, untrained, and say so:

* ``backbone="resnet18"``: ``torchvision.models.resnet18(weights=None)``'s layers 1-4.
  torchvision's ``BasicBlock`` refuses dilation in its constructor, so
  :func:`dilate_resnet_layer` converts the last stages after construction exactly as
  ``replace_stride_with_dilation`` does for ResNet-50's bottleneck blocks (the first block's
  stride becomes 1, its 3x3 convolutions and all later ones get dilation 2 (4 for a
  second converted stage) and the matching padding).
* ``backbone="resnet50"``: torchvision's own ``fcn_resnet50`` / ``deeplabv3_resnet50``
  builders, untrained (for a GPU and a bigger budget).

Every model here returns the logits tensor (torchvision's return a dict; the wrapper
:class:`LogitsOnly` takes its ``"out"``), like the book's models.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_positive_int

__all__ = [
    "LogitsOnly",
    "dilate_resnet_layer",
    "torchvision_fcn",
    "torchvision_deeplabv3",
    "TORCHVISION_BACKBONES",
]

TORCHVISION_BACKBONES = ("resnet18", "resnet50")


class LogitsOnly(nn.Module):
    """Wraps a torchvision segmentation model: ``forward(x)`` returns ``model(x)["out"]``.

    The wrapped model stays reachable as ``.model`` (``.model.backbone``,
    ``.model.classifier``).
    """

    def __init__(self, model: nn.Module):
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)["out"]  # [N, num_classes, H, W]


def dilate_resnet_layer(layer: nn.Sequential, dilation: int) -> nn.Sequential:
    """Make a torchvision ResNet stage atrous, in place: stride 1, dilated 3x3 convolutions.

    What ``ResNet(replace_stride_with_dilation=...)`` builds: the first block keeps the
    previous dilation (``dilation // 2``) on its first convolution and loses its stride
    (in its 3x3 convolution and in its shortcut's 1x1), every other 3x3 convolution of
    the stage gets ``dilation`` and padding ``dilation``.

    Args:
        layer (nn.Sequential): ``resnet.layer3`` or ``resnet.layer4`` (BasicBlock or
            Bottleneck blocks).
        dilation (int): 2 for the first converted stage, 4 for the second.

    Returns:
        nn.Sequential: ``layer`` itself.
    """
    if not isinstance(layer, nn.Sequential):
        raise ValueError(
            f"layer must be a ResNet stage (nn.Sequential of blocks), got {type(layer).__name__}"
        )
    dilation = check_positive_int("dilation", dilation)
    previous = max(dilation // 2, 1)
    for b, block in enumerate(layer):
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        for c, conv in enumerate(convs):
            d = previous if (b == 0 and c == 0) else dilation
            conv.stride, conv.dilation, conv.padding = (1, 1), (d, d), (d, d)
        if b == 0 and block.downsample is not None:
            block.downsample[0].stride = (1, 1)
        if hasattr(block, "stride"):
            block.stride = 1
    return layer


def _resnet18_trunk(output_stride: int) -> tuple[nn.Module, int]:
    from torchvision.models import resnet18
    from torchvision.models._utils import IntermediateLayerGetter

    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
    net = resnet18(weights=None)
    if output_stride <= 16:
        dilate_resnet_layer(net.layer4, 2 if output_stride == 16 else 4)
    if output_stride == 8:
        dilate_resnet_layer(net.layer3, 2)
    return IntermediateLayerGetter(net, {"layer4": "out"}), 512


def torchvision_fcn(
    num_classes: int, backbone: str = "resnet18", output_stride: int = 8
) -> LogitsOnly:
    """torchvision's FCN (``FCN`` + ``FCNHead``), untrained, returning logits.

    Args:
        num_classes (int): classes scored per pixel.
        backbone (str): ``"resnet18"`` (ResNet-18 trunk, dilated to ``output_stride``) or
            ``"resnet50"`` (``torchvision.models.segmentation.fcn_resnet50``, stride 8).
        output_stride (int): 8 (torchvision's choice), 16 or 32; resnet18 only.

    Returns:
        LogitsOnly: ``[N, 3, H, W] -> [N, num_classes, H, W]``.
    """
    from torchvision.models.segmentation import FCN, fcn_resnet50
    from torchvision.models.segmentation.fcn import FCNHead

    num_classes = check_positive_int("num_classes", num_classes)
    if backbone == "resnet18":
        trunk, channels = _resnet18_trunk(output_stride)
        return LogitsOnly(FCN(trunk, FCNHead(channels, num_classes)))
    if backbone == "resnet50":
        return LogitsOnly(
            fcn_resnet50(
                weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False
            )
        )
    raise ValueError(f"backbone must be one of {TORCHVISION_BACKBONES}, got {backbone!r}")


def torchvision_deeplabv3(
    num_classes: int, backbone: str = "resnet18", output_stride: int = 8, rates=(2, 4, 6)
) -> LogitsOnly:
    """torchvision's DeepLab v3 (``DeepLabV3`` + ``DeepLabHead`` with ASPP), untrained.

    Args:
        num_classes (int): classes scored per pixel.
        backbone (str): ``"resnet18"`` (ResNet-18 trunk dilated to ``output_stride``) or
            ``"resnet50"`` (``torchvision.models.segmentation.deeplabv3_resnet50``).
        output_stride (int): 8, 16 or 32; resnet18 only.
        rates (sequence of int): ASPP's atrous rates (torchvision's default, 12, 24, 36,
            is for 65 x 65 feature maps); resnet18 only.

    Returns:
        LogitsOnly: ``[N, 3, H, W] -> [N, num_classes, H, W]``.
    """
    from torchvision.models.segmentation import DeepLabV3, deeplabv3_resnet50
    from torchvision.models.segmentation.deeplabv3 import DeepLabHead

    num_classes = check_positive_int("num_classes", num_classes)
    if isinstance(rates, (str, bytes)) or not hasattr(rates, "__iter__"):
        raise ValueError(f"rates must be a sequence of positive ints, got {rates!r}")
    rates = tuple(check_positive_int("rates", r) for r in rates)
    if not rates:
        raise ValueError("rates must name at least one atrous rate")
    if backbone == "resnet18":
        trunk, channels = _resnet18_trunk(output_stride)
        return LogitsOnly(DeepLabV3(trunk, DeepLabHead(channels, num_classes, rates)))
    if backbone == "resnet50":
        return LogitsOnly(
            deeplabv3_resnet50(
                weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False
            )
        )
    raise ValueError(f"backbone must be one of {TORCHVISION_BACKBONES}, got {backbone!r}")
