"""Reusable model parts, built in front of the reader by the chapter that teaches them.

Segmentation (the FCN, U-Net and DeepLab chapters):

* :mod:`.blocks` - :class:`ConvBlock` (3x3 conv, BN, ReLU), :func:`pad_to_multiple`,
  :func:`crop_to`, :func:`count_parameters`;
* :mod:`.backbone` - :class:`VGGBackbone`, a small VGG-style backbone, atrous on request;
* :mod:`.convolutionalize` - :func:`linear_to_conv`: a fully connected layer as a convolution;
* :mod:`.fcn` - :class:`FCN` (FCN-32s, FCN-16s, FCN-8s);
* :mod:`.unet` - :class:`UNet`; :mod:`.segnet` - :class:`SegNet` (max-unpooling);
* :mod:`.aspp` - :class:`ASPP`; :mod:`.deeplab` - :class:`DeepLab` (v3, v3+);
* :mod:`.torchvision_models` - torchvision's FCN and DeepLab v3, sized to compare;
* :mod:`.segmentation` - what the chapters share around the models: their data
  (:func:`segmentation_data`), scores (:func:`score_segmenter`), timings, tables.

Every model maps images ``[N, C, H, W]`` of any size to logits ``[N, num_classes, H, W]``.
"""

from .aspp import ASPP
from .backbone import DEFAULT_CHANNELS, VGGBackbone
from .blocks import ConvBlock, count_parameters, crop_to, pad_to_multiple
from .convolutionalize import linear_to_conv
from .deeplab import DeepLab
from .fcn import FCN, FCN_VARIANTS, FCNHead, FixedBilinearUpsampling
from .segmentation import (
    DATA_SOURCES,
    ResultsTable,
    SegmentationData,
    inference_ms,
    score_segmenter,
    segmentation_data,
)
from .segnet import SegNet
from .torchvision_models import (
    LogitsOnly,
    dilate_resnet_layer,
    torchvision_deeplabv3,
    torchvision_fcn,
)
from .unet import UNet, UNetUp

__all__ = [
    "ASPP",
    "ConvBlock",
    "DATA_SOURCES",
    "DEFAULT_CHANNELS",
    "DeepLab",
    "FCN",
    "FCNHead",
    "FCN_VARIANTS",
    "FixedBilinearUpsampling",
    "LogitsOnly",
    "ResultsTable",
    "SegNet",
    "SegmentationData",
    "UNet",
    "UNetUp",
    "VGGBackbone",
    "count_parameters",
    "crop_to",
    "dilate_resnet_layer",
    "inference_ms",
    "linear_to_conv",
    "pad_to_multiple",
    "score_segmenter",
    "segmentation_data",
    "torchvision_deeplabv3",
    "torchvision_fcn",
]
