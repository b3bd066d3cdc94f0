"""Reusable model parts, built in front of the reader by the chapter that teaches them.

Segmentation (the FCN, U-Net and DeepLab chapters):

* :mod:`.blocks` - :class:`ConvBlock` (3x3 conv, BN, ReLU), :func:`pad_to_multiple`,
  :func:`crop_to`, :func:`count_parameters`;
* :mod:`.backbone` - :class:`VGGBackbone`, a small VGG-style backbone, atrous on request;
* :mod:`.convolutionalize` - :func:`linear_to_conv`: a fully connected layer as a convolution;
* :mod:`.fcn` - :class:`FCN` (FCN-32s, FCN-16s, FCN-8s);
* :mod:`.unet` - :class:`UNet`; :mod:`.segnet` - :class:`SegNet` (max-unpooling);
* :mod:`.aspp` - :class:`ASPP`; :mod:`.deeplab` - :class:`DeepLab` (v3, v3+);
* :mod:`.torchvision_models` - torchvision's FCN and DeepLab v3, sized to compare.

Detection (the Faster R-CNN chapter):

* :mod:`.fpn` - :class:`FPN` (Lin et al., 2017), :func:`fpn_levels` (which level a box
  reads), :class:`FPNBackbone` (a VGG backbone with an FPN, or a single level);
* :mod:`.faster_rcnn` - :class:`FasterRCNN` and its pieces (RPN, RoI heads, losses);
* :mod:`.yolo` - :class:`~.yolo.YOLOv1`, a grid detector (the YOLO chapter);
* :mod:`.ssd` - :class:`~.ssd.SSD`, default boxes on several maps, hard negative mining
  (the SSD chapter);
* :mod:`.fcos` - :class:`~.fcos.FCOS`, anchor-free: per-location distances, size ranges,
  centre sampling, centre-ness, a head shared by the levels (the FCOS chapter);
* :mod:`.torchvision_detection` - torchvision's detectors on the same small backbone.

The chapters' data lives in ``vizlib.data`` (``segmentation_data``), their scores,
timings and tables in ``vizlib.evaluate`` (``score_segmenter``, ``inference_ms``,
``ResultsTable``), their figures in ``vizlib.viz``.

Every segmentation model maps images ``[N, C, H, W]`` of any size to logits
``[N, num_classes, H, W]``; the detectors follow torchvision's detection interface.
"""

from .aspp import ASPP
from .backbone import DEFAULT_CHANNELS, VGGBackbone
from .blocks import ConvBlock, count_parameters, crop_to, pad_to_multiple
from .convolutionalize import linear_to_conv
from .deeplab import DeepLab
from .faster_rcnn import FasterRCNN
from .fcn import FCN, FCN_VARIANTS, FCNHead, FixedBilinearUpsampling
from .fpn import FPN, FPNBackbone, fpn_levels
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
    "DEFAULT_CHANNELS",
    "DeepLab",
    "FCN",
    "FCNHead",
    "FCN_VARIANTS",
    "FPN",
    "FPNBackbone",
    "FasterRCNN",
    "FixedBilinearUpsampling",
    "LogitsOnly",
    "SegNet",
    "UNet",
    "UNetUp",
    "VGGBackbone",
    "count_parameters",
    "crop_to",
    "dilate_resnet_layer",
    "fpn_levels",
    "linear_to_conv",
    "pad_to_multiple",
    "torchvision_deeplabv3",
    "torchvision_fcn",
]
