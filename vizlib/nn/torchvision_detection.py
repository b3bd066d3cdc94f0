"""torchvision's detectors (FCOS, RetinaNet, Faster R-CNN, SSD), sized to train next to the book's
on small scenes.

torchvision's ``fcos_resnet50_fpn`` and ``retinanet_resnet50_fpn`` have 32 and 34 million
parameters and resize every image to 800 pixels: far too big to train from scratch on
64-pixel scenes in a chapter's time. The builders here use torchvision's own detector
classes (``FCOS``, ``RetinaNet``, ``FasterRCNN``: their heads, target assignment, losses,
decoding and NMS, untouched) on the book's small :class:`~vizlib.nn.backbone.VGGBackbone`, with
torchvision's :class:`~torchvision.ops.FeaturePyramidNetwork` on its last stages, untrained,
and with the resizing set to the scenes' own size. A chapter can then compare its own
detector with torchvision's on the same backbone, data and training budget.

:class:`PyramidBackbone` is the adapter: torchvision's detectors want a module with an
``out_channels`` attribute whose forward returns an ordered dict of feature maps, one per
pyramid level, all with ``out_channels`` channels. SSD has no pyramid: :class:`StageOutputs`
hands it some of the backbone's stages as they are. :class:`PyramidRoIAlign` is a drop-in for
torchvision's ``MultiScaleRoIAlign`` that pools through vizlib's RoIAlign, so that a
side-by-side on a CPU pays the same for RoIAlign in both models.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial

import torch
from torch import nn
from torchvision.ops import MultiScaleRoIAlign  # a module about torchvision's detectors

from .._checks import check_positive_int
from .backbone import VGGBackbone, check_stage_levels

__all__ = [
    "PyramidBackbone",
    "PyramidRoIAlign",
    "StageOutputs",
    "torchvision_ssd",
    "torchvision_faster_rcnn",
    "torchvision_fcos",
    "torchvision_retinanet",
    "load_torchvision_retinanet_weights",
]


class PyramidBackbone(nn.Module):
    """A VGG backbone with a feature pyramid (Lin et al., 2017) on some of its stages.

    Args:
        backbone (VGGBackbone, optional): default ``VGGBackbone((16, 32, 64, 128),
            convs_per_stage=1)`` (strides 2, 4, 8, 16).
        levels (sequence of int): indices of the backbone stages that get a pyramid level.
        out_channels (int): channels of every pyramid level.

    Shape:
        ``forward(x [N, 3, H, W])`` returns an ``OrderedDict`` ``{"p<stride>": [N,
        out_channels, H / stride, W / stride]}``, finest level first.

    Attributes:
        strides (list[int]): the stride of each level.
    """

    def __init__(self, backbone: VGGBackbone | None = None, levels=(2, 3), out_channels: int = 64):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork

        self.body = (
            VGGBackbone((16, 32, 64, 128), convs_per_stage=1) if backbone is None else backbone
        )
        levels = [int(i) for i in levels]
        if (
            not levels
            or sorted(set(levels)) != levels
            or levels[0] < 0
            or levels[-1] >= len(self.body.channels)
        ):
            raise ValueError(
                f"levels must be increasing stage indices in [0, {len(self.body.channels)}), "
                f"got {levels}"
            )
        self.levels = levels
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.strides = [self.body.strides[i] for i in levels]
        self.fpn = FeaturePyramidNetwork([self.body.channels[i] for i in levels], self.out_channels)

    def forward(self, x: torch.Tensor) -> OrderedDict:
        stages = self.body(x)
        picked = OrderedDict((f"p{self.body.strides[i]}", stages[i]) for i in self.levels)
        return self.fpn(picked)


class PyramidRoIAlign(MultiScaleRoIAlign):
    """torchvision's ``MultiScaleRoIAlign``, computed by :func:`~vizlib.nn.faster_rcnn.multiscale_roi_align`.

    The same call (``pooler(features, proposals, image_shapes)``), the same level for each
    region and the same numbers and gradients as ``MultiScaleRoIAlign(featmap_names,
    output_size, sampling_ratio, canonical_scale=..., canonical_level=...)``
    (tests/test_nn_faster_rcnn.py, tests/test_nn_mask_rcnn.py). The difference is the kernel
    on a CPU: vizlib's matrix form (:func:`vizlib.roi.roi_align_matrices`), whose backward is
    5-10 x faster than torchvision's single-threaded one (``benchmarks/results/roi_align.md``).
    On a GPU, and without gradients, both call torchvision's kernel. A subclass, because torchvision's detectors
    accept only a ``MultiScaleRoIAlign`` as ``box_roi_pool`` or ``mask_roi_pool``.

    Args:
        featmap_names (list[str]): the feature maps to pool from, finest first.
        output_size (int or tuple[int, int]): ``(h, w)`` of each region's grid.
        sampling_ratio (int): reads per bin side (0: adaptive, as torchvision).
        canonical_scale (int), canonical_level (int): the FPN paper's level rule, as
            torchvision's ``LevelMapper`` (defaults 224 and 4).
    """

    def __init__(
        self,
        featmap_names,
        output_size,
        sampling_ratio: int,
        canonical_scale: int = 224,
        canonical_level: int = 4,
    ):
        if not isinstance(featmap_names, (list, tuple)) or not all(
            isinstance(n, str) for n in featmap_names
        ):
            raise ValueError(f"featmap_names must be a list of str, got {featmap_names!r}")
        if not featmap_names:
            raise ValueError("featmap_names must name at least one feature map")
        super().__init__(
            list(featmap_names),
            output_size,
            sampling_ratio,
            canonical_scale=canonical_scale,
            canonical_level=canonical_level,
        )

    def forward(self, x: dict, boxes: list, image_shapes: list) -> torch.Tensor:
        """``x`` the backbone's maps by name, ``boxes`` one ``Tensor[P_i, 4]`` per image,
        ``image_shapes`` the ``(h, w)`` of each image: ``Tensor[sum P_i, C, h, w]``."""
        from .faster_rcnn import multiscale_roi_align

        missing = [n for n in self.featmap_names if n not in x]
        if missing:
            raise ValueError(f"the features lack {missing}; they hold {list(x)}")
        features = [x[n] for n in self.featmap_names]
        if not image_shapes:
            raise ValueError("image_shapes must hold the (h, w) of every image, got none")
        # torchvision's rule (poolers._setup_scales): stride = the tallest image's height
        # over the map's, rounded to a power of 2
        tallest = max(h for h, _ in image_shapes)
        strides = [2 ** round(math.log2(tallest / f.shape[-2])) for f in features]
        return multiscale_roi_align(
            features,
            strides,
            list(boxes),
            self.output_size,
            self.sampling_ratio,
            self.canonical_scale,
            self.canonical_level,
        )


def _anchor_generator(strides, ratios=(1.0,), scales=(1.0,)):
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    sizes = tuple(tuple(float(s * k) for k in scales) for s in strides)
    return AnchorGenerator(sizes=sizes, aspect_ratios=(tuple(ratios),) * len(strides))


def torchvision_fcos(
    num_classes: int,
    image_size: int,
    backbone: PyramidBackbone | None = None,
    head_convs: int = 4,
    **kwargs,
):
    """torchvision's FCOS (Tian et al., 2019) on a small pyramid backbone, untrained.

    One "anchor" per location and level, of the level's stride: FCOS uses it only for
    the location's centre and the level's size range (objects whose largest distance to
    the box sides is in ``[4, 8] x stride`` go to that level; the finest level takes
    everything smaller, the coarsest everything bigger).

    Args:
        num_classes (int): classes including background (label 0), as torchvision counts.
        image_size (int): side of the (square) training images; torchvision's transform
            resizes to it, so a scene is not blown up to 800 pixels.
        backbone (PyramidBackbone, optional): default ``PyramidBackbone()``; its
            ``out_channels`` must be a multiple of 32 (the head's ``GroupNorm(32, C)``).
        head_convs (int): 3x3 convolutions in each head branch (torchvision: 4).
        **kwargs: passed to ``torchvision.models.detection.FCOS`` (``score_thresh``,
            ``nms_thresh``, ``detections_per_img``, ``center_sampling_radius``...).

    Returns:
        torchvision.models.detection.FCOS
    """
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.fcos import FCOSHead

    num_classes = check_positive_int("num_classes", num_classes)
    image_size = check_positive_int("image_size", image_size)
    backbone = PyramidBackbone() if backbone is None else backbone
    if backbone.out_channels % 32:
        raise ValueError(
            f"backbone.out_channels must be a multiple of 32 (FCOS's head uses "
            f"GroupNorm with 32 groups), got {backbone.out_channels}"
        )
    head = FCOSHead(
        backbone.out_channels,
        1,
        num_classes,
        num_convs=check_positive_int("head_convs", head_convs),
    )
    return FCOS(
        backbone,
        num_classes,
        min_size=image_size,
        max_size=image_size,
        anchor_generator=_anchor_generator(backbone.strides),
        head=head,
        **kwargs,
    )


def torchvision_retinanet(
    num_classes: int,
    image_size: int,
    backbone: PyramidBackbone | None = None,
    ratios=(0.5, 1.0, 2.0),
    scales=(1.0, 2.0),
    head_norm_groups: int | None = None,
    anchor_offset: float = 0.0,
    **kwargs,
):
    """torchvision's RetinaNet (Lin et al., 2017) on a small pyramid backbone, untrained.

    Anchors at every level: sizes ``stride * scales`` in each of the ``ratios``, centred
    at ``(j + anchor_offset, i + anchor_offset) * stride`` for location ``(i, j)``:
    torchvision's ``AnchorGenerator`` centres them on the cells' corners (0); with
    ``anchor_offset = 0.5`` its base anchors are moved by half a stride, to the cells'
    centres (as :class:`vizlib.nn.retinanet.RetinaNet` with the same ``anchor_offset``).

    Args:
        num_classes (int): classes including background (label 0).
        image_size (int): side of the (square) training images.
        backbone (PyramidBackbone, optional): default ``PyramidBackbone()``.
        ratios, scales: the anchors of each location.
        anchor_offset (float): 0 (torchvision's) or 0.5 (the cells' centres), in [0, 1).
        head_norm_groups (int, optional): a ``GroupNorm`` of this many groups in the head's
            convolutions (``RetinaNetHead(norm_layer=...)``, as torchvision's
            ``retinanet_resnet50_fpn_v2``); None: none (the paper's head).
        **kwargs: passed to ``torchvision.models.detection.RetinaNet``.

    Returns:
        torchvision.models.detection.RetinaNet
    """
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.retinanet import RetinaNetHead

    num_classes = check_positive_int("num_classes", num_classes)
    image_size = check_positive_int("image_size", image_size)
    backbone = PyramidBackbone() if backbone is None else backbone
    anchors = _anchor_generator(backbone.strides, ratios, scales)
    if isinstance(anchor_offset, bool) or not isinstance(anchor_offset, (int, float)):
        raise ValueError(f"anchor_offset must be a number in [0, 1), got {anchor_offset!r}")
    if not 0.0 <= anchor_offset < 1.0:
        raise ValueError(f"anchor_offset must be in [0, 1), got {anchor_offset!r}")
    if anchor_offset:  # torchvision adds (j * stride, i * stride) to these base anchors
        anchors.cell_anchors = [
            a + anchor_offset * s
            for a, s in zip(anchors.cell_anchors, backbone.strides, strict=True)
        ]
    norm = None
    if head_norm_groups is not None:
        groups = check_positive_int("head_norm_groups", head_norm_groups)
        if backbone.out_channels % groups:
            raise ValueError(
                f"head_norm_groups ({groups}) must divide backbone.out_channels "
                f"({backbone.out_channels})"
            )
        norm = partial(nn.GroupNorm, groups)
    head = RetinaNetHead(
        backbone.out_channels, anchors.num_anchors_per_location()[0], num_classes, norm_layer=norm
    )
    return RetinaNet(
        backbone,
        num_classes,
        min_size=image_size,
        max_size=image_size,
        anchor_generator=anchors,
        head=head,
        **kwargs,
    )


def load_torchvision_retinanet_weights(model, tv_model) -> None:
    """Copy a torchvision RetinaNet's weights into a :class:`~vizlib.nn.retinanet.RetinaNet`.

    ``tv_model`` is :func:`torchvision_retinanet` with ``num_classes = C + 1`` on a
    :class:`PyramidBackbone` of the same stages and channels, and anchors of the same count
    per location. Its backbone, FPN (``inner_blocks`` -> ``lateral``, ``layer_blocks`` ->
    ``output``) and head are copied; of its class scores, those of labels ``1 .. C`` (the
    background label's score, which torchvision keeps and never trains as a positive, is
    dropped). Then both compute the same head outputs from the same (normalised) images.

    Args:
        model (vizlib.nn.retinanet.RetinaNet): modified in place.
        tv_model (torchvision.models.detection.RetinaNet): read only.
    """
    body = getattr(getattr(tv_model, "backbone", None), "body", None)
    if body is None or not hasattr(tv_model.backbone, "fpn"):
        raise ValueError("tv_model must be a torchvision RetinaNet on a PyramidBackbone")
    if len(tv_model.backbone.fpn.inner_blocks) != len(model.fpn.lateral):
        raise ValueError(
            f"tv_model has {len(tv_model.backbone.fpn.inner_blocks)} pyramid levels, "
            f"model {len(model.fpn.lateral)}"
        )
    cls = tv_model.head.classification_head
    if cls.num_anchors != model.num_anchors or cls.num_classes != model.num_classes + 1:
        raise ValueError(
            f"tv_model has {cls.num_anchors} anchors and {cls.num_classes} classes per location, "
            f"model needs {model.num_anchors} and {model.num_classes + 1} (background included)"
        )
    model.backbone.load_state_dict(body.state_dict())
    for level in range(len(model.fpn.lateral)):
        model.fpn.lateral[level].load_state_dict(
            tv_model.backbone.fpn.inner_blocks[level][0].state_dict()
        )
        model.fpn.output[level].load_state_dict(
            tv_model.backbone.fpn.layer_blocks[level][0].state_dict()
        )
    state = dict(tv_model.head.state_dict())
    a, k = cls.num_anchors, cls.num_classes
    w = state["classification_head.cls_logits.weight"]  # [A K, C_in, 3, 3], anchor-major
    state["classification_head.cls_logits.weight"] = (
        w.view(a, k, *w.shape[1:])[:, 1:].reshape(-1, *w.shape[1:]).clone()
    )
    b = state["classification_head.cls_logits.bias"]
    state["classification_head.cls_logits.bias"] = b.view(a, k)[:, 1:].reshape(-1).clone()
    model.head.load_state_dict(state)


def torchvision_faster_rcnn(
    num_classes: int,
    image_size: int,
    backbone: PyramidBackbone | None = None,
    anchor_scales=(2.0, 4.0),
    ratios=(0.5, 1.0, 2.0),
    box_head_width: int = 256,
    **kwargs,
):
    """torchvision's Faster R-CNN (Ren et al., 2015) with an FPN, on a small backbone, untrained.

    Sized like :class:`vizlib.nn.faster_rcnn.FasterRCNN`'s defaults, for a side-by-side at
    the same budget: levels at strides 4, 8, 16 (``PyramidBackbone(VGGBackbone((16, 32,
    64, 64), convs_per_stage=1), levels=(1, 2, 3), out_channels=64)``), anchors of
    ``stride * anchor_scales`` in each of ``ratios``, RPN top-n 300 before and 100 after
    NMS (training and testing), 128 anchors per image sampled at half positives, 64
    regions per image at a quarter, RoIAlign 7x7 (``MultiScaleRoIAlign``, sampling ratio
    2, the paper's level rule), a two-layer head of ``box_head_width``. The transform
    keeps the images at ``image_size`` (torchvision's default resizes them to 800 pixels)
    and normalises them with ImageNet's mean and standard deviation, as it always does.

    Args:
        num_classes (int): classes including background (label 0), as torchvision counts.
        image_size (int): side of the (square) images.
        backbone (PyramidBackbone, optional): replaces the default.
        anchor_scales (sequence of float): anchor sizes as multiples of each level's stride.
        ratios (sequence of float): anchor aspect ratios (height / width).
        box_head_width (int): units of ``TwoMLPHead``'s two layers.
        **kwargs: passed to ``torchvision.models.detection.FasterRCNN``; they override
            the settings above (e.g. ``rpn_post_nms_top_n_test=300``).

    Returns:
        torchvision.models.detection.FasterRCNN
    """
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    num_classes = check_positive_int("num_classes", num_classes)
    image_size = check_positive_int("image_size", image_size)
    box_head_width = check_positive_int("box_head_width", box_head_width)
    if backbone is None:
        backbone = PyramidBackbone(
            VGGBackbone((16, 32, 64, 64), convs_per_stage=1), levels=(1, 2, 3), out_channels=64
        )
    anchors = _anchor_generator(backbone.strides, ratios, anchor_scales)
    names = [f"p{s}" for s in backbone.strides]  # PyramidBackbone's keys
    settings = {
        "rpn_pre_nms_top_n_train": 300,
        "rpn_pre_nms_top_n_test": 300,
        "rpn_post_nms_top_n_train": 100,
        "rpn_post_nms_top_n_test": 100,
        "rpn_batch_size_per_image": 128,
        "rpn_positive_fraction": 0.5,
        "box_batch_size_per_image": 64,
        "box_positive_fraction": 0.25,
        "box_roi_pool": MultiScaleRoIAlign(names, output_size=7, sampling_ratio=2),
        "box_head": TwoMLPHead(backbone.out_channels * 7 * 7, box_head_width),
        "box_predictor": FastRCNNPredictor(box_head_width, num_classes),
        **kwargs,
    }
    return FasterRCNN(
        backbone,
        min_size=image_size,
        max_size=image_size,
        rpn_anchor_generator=anchors,
        **settings,
    )


class StageOutputs(nn.Module):
    """Some stages of a VGG backbone as an ordered dict of feature maps (SSD's input).

    Args:
        backbone (VGGBackbone): the backbone.
        levels (sequence of int): increasing stage indices.

    Shape:
        ``forward(x [N, 3, H, W])`` returns ``OrderedDict {"s<stride>": [N, channels[i],
        H / stride, W / stride]}``, finest first.

    Attributes:
        out_channels (list[int]): channels of each returned map (torchvision's SSD reads it).
    """

    def __init__(self, backbone: VGGBackbone, levels=(2, 3, 4)):
        super().__init__()
        levels = check_stage_levels(levels, backbone)
        self.body, self.levels = backbone, levels
        self.out_channels = [backbone.channels[i] for i in levels]

    def forward(self, x: torch.Tensor) -> OrderedDict:
        stages = self.body(x)
        return OrderedDict((f"s{self.body.strides[i]}", stages[i]) for i in self.levels)


def torchvision_ssd(
    num_classes: int,
    image_size: int,
    backbone: VGGBackbone | None = None,
    levels=(2, 3, 4),
    aspect_ratios=((2.0,), (2.0,), (2.0,)),
    s_min: float = 0.15,
    s_max: float = 0.55,
    **kwargs,
):
    """torchvision's SSD (Liu et al., 2016) on the same backbone as :class:`vizlib.nn.ssd.SSD`, untrained.

    torchvision's ``SSD`` class itself (its ``SSDHead``, ``DefaultBoxGenerator``,
    ``SSDMatcher``, hard negative mining, loss, decoding and NMS), with the defaults of
    :class:`vizlib.nn.ssd.SSD`: the backbone ``VGGBackbone((16, 32, 64, 128, 128),
    convs_per_stage=(1, 2, 3, 2, 2))``, maps at stages 2, 3, 4 (strides 8, 16, 32),
    default boxes of scales 0.15 to 0.55 and ratios 2 and 1/2. Its transform keeps the
    images at ``image_size`` and normalises them with ImageNet's mean and standard
    deviation, as it always does; it keeps up to 200 detections per image.

    Args:
        num_classes (int): classes including background (label 0), as torchvision counts.
        image_size (int): side of the (square) images.
        backbone (VGGBackbone, optional): replaces the default.
        levels, aspect_ratios, s_min, s_max: as in :class:`vizlib.nn.ssd.SSD`.
        **kwargs: passed to ``torchvision.models.detection.SSD`` (``score_thresh``,
            ``nms_thresh``, ``detections_per_img``, ...).

    Returns:
        torchvision.models.detection.SSD
    """
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD

    num_classes = check_positive_int("num_classes", num_classes)
    image_size = check_positive_int("image_size", image_size)
    if backbone is None:
        backbone = VGGBackbone((16, 32, 64, 128, 128), convs_per_stage=(1, 2, 3, 2, 2))
    features = StageOutputs(backbone, levels)
    if len(aspect_ratios) != len(features.levels):
        raise ValueError(f"aspect_ratios must hold one sequence per level ({len(features.levels)})")
    boxes = DefaultBoxGenerator([list(r) for r in aspect_ratios], min_ratio=s_min, max_ratio=s_max)
    return SSD(features, boxes, (image_size, image_size), num_classes, **kwargs)
