"""Mask R-CNN (He et al., 2017): Faster R-CNN with a mask head and, optionally, a keypoint head.

Mask R-CNN adds a third output to each region of :class:`~vizlib.nn.faster_rcnn.FasterRCNN`:
beside the class and the box, a small ``28 x 28`` mask per class, predicted by a small
fully convolutional head on ``14 x 14`` RoIAlign features. The same recipe with a
``56 x 56`` one-hot heatmap per keypoint gives the keypoint head. Read top to bottom,
this module is:

1. **Mask targets** (:func:`mask_targets`): the ground-truth mask of each positive
   region's object, cropped to the region and resized to ``M x M`` with RoIAlign.
2. **The mask head** (:class:`MaskHead`, :class:`MaskPredictor`) and **its loss**
   (:func:`mask_loss`, :func:`mask_rcnn_loss`): a sigmoid per pixel and per class, binary
   cross-entropy on the mask of the region's true class only.
3. **Back to the image**: :func:`mask_probabilities` keeps each detection's class channel,
   :func:`paste_masks_in_image` resizes it into the detection's box.
4. **Keypoints**: :func:`keypoint_targets` (one position out of ``56 x 56`` per keypoint),
   :class:`KeypointHead`, :class:`KeypointPredictor`, :func:`keypoint_loss` (cross-entropy
   over positions), :func:`heatmaps_to_keypoints` (back to image coordinates), and
   :func:`hflip_keypoints` with a flip permutation (:func:`ring_flip_index`,
   :data:`COCO_PERSON_FLIP_INDEX`) for the flip augmentation.
5. :class:`MaskRCNN`: the model, called like torchvision's ``MaskRCNN`` /
   ``KeypointRCNN``: in train mode ``model(images, targets)`` returns the losses under
   torchvision's names (:data:`MASK_RCNN_LOSS_NAMES`, plus ``loss_keypoint``), in eval mode
   ``model(images)`` one dict per image with ``boxes``, ``labels``, ``scores``, ``masks``
   (and ``keypoints``, ``keypoints_scores``); :meth:`MaskRCNN.inspect` returns every
   intermediate a figure may want, the heads' targets included.

Boxes are ``(x1, y1, x2, y2)`` in image pixels, pixel ``j`` spanning ``[j, j + 1)`` (the
scenes' convention, see :mod:`vizlib.data.scenes`). Each function is checked against its
counterpart in ``torchvision.models.detection.roi_heads`` (tests). Two of torchvision's
choices move a mask by up to a pixel in that convention: its mask targets use
``roi_align(..., aligned=False)`` (a pixel's value sits at its top-left corner, half a
pixel off), and its pasting rounds the box down to whole pixels and resizes the mask to
``side + 1`` pixels (a legacy of boxes with inclusive corners). A scene's mask cropped to
its own box and pasted back is the same mask with the defaults here, but loses about 40 %
IoU on a small thing with torchvision's pair (tests): at 64 pixels a thing is 10 to 30
pixels wide. So the functions here default to the continuous convention (Detectron2's)
and reproduce torchvision's on request (``aligned=False``, ``mode="torchvision"``),
which is what the tests compare.

Shapes: ``R`` regions (all images of a batch, image by image), ``C`` object classes
(label 0 is background, so the mask predictor has ``C + 1`` channels, as torchvision's,
and channel 0 is never trained), ``M`` mask side (28), ``K`` keypoints per object, ``S``
heatmap side (56), ``D`` detections.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import (
    as_float_tensor,
    as_keypoints,
    check_boxes,
    check_choice,
    check_fraction,
    check_int_pair,
    check_int_tensor,
    check_number,
    check_per_image,
    check_positive_int,
    check_same_length,
)
from ..boxes import box_iou
from .faster_rcnn import (
    LOSS_NAMES,
    FasterRCNN,
    check_pyramid_regions,
    detached_to_cpu,
    fast_rcnn_loss,
    multiscale_roi_align,
    roi_head_targets,
)
from .fpn import fpn_levels

__all__ = [
    "MASK_RCNN_LOSS_NAMES",
    "KEYPOINT_LOSS_NAME",
    "COCO_PERSON_FLIP_INDEX",
    "positive_rois",
    "mask_targets",
    "MaskHead",
    "MaskPredictor",
    "mask_loss",
    "mask_rcnn_loss",
    "mask_probabilities",
    "paste_masks_in_image",
    "keypoint_targets",
    "one_hot_heatmaps",
    "KeypointHead",
    "KeypointPredictor",
    "keypoint_loss",
    "keypoint_rcnn_loss",
    "heatmaps_to_keypoints",
    "hflip_keypoints",
    "ring_flip_index",
    "multiscale_roi_pool",
    "MaskRCNN",
]

#: The five losses of :class:`MaskRCNN` in train mode, torchvision's names.
MASK_RCNN_LOSS_NAMES = LOSS_NAMES + ("loss_mask",)
#: The sixth, with a keypoint head (torchvision's ``KeypointRCNN`` name).
KEYPOINT_LOSS_NAME = "loss_keypoint"

#: COCO's 17 person keypoints after a horizontal flip: slot ``i`` of the flipped person
#: takes slot ``COCO_PERSON_FLIP_INDEX[i]`` of the original (nose stays, left eye <-> right
#: eye, ...), as torchvision's references/detection/transforms.py.
COCO_PERSON_FLIP_INDEX = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _check_logits(name: str, value, ndim: int, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.dim() != ndim or not value.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor {what}, got {_describe(value)}")
    return value


def _rows_with_image_index(boxes: list[torch.Tensor]) -> torch.Tensor:
    """torchvision's RoI format: ``[R, 5]`` rows ``(image index, x1, y1, x2, y2)``."""
    if not boxes:
        return torch.zeros(0, 5)
    return torch.cat(
        [torch.cat([b.new_full((len(b), 1), i), b], dim=1) for i, b in enumerate(boxes)]
    )


# ====================================================================== which regions


def positive_rois(
    rois, labels, gt_boxes
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """The positive regions of a training sample and the object each one belongs to.

    The mask and keypoint heads train on the positive regions only (He et al., 2017:
    "the mask loss L_mask is defined only on positive RoIs"). A positive region's object
    is the one it overlaps most, the rule :func:`~vizlib.nn.faster_rcnn.roi_head_targets`
    labelled it with.

    Args:
        rois (list[Tensor[R_i, 4]]): sampled regions per image, ``(x1, y1, x2, y2)``.
        labels (list[Tensor[R_i]]): int64 class of each region (0 background, -1 ignored).
        gt_boxes (list[Tensor[M_i, 4]]): the objects of each image.

    Returns:
        tuple of three lists, per image: positive regions ``Tensor[P_i, 4]``, their labels
        ``Tensor[P_i]`` in ``[1, C]``, and ``matched_idxs`` ``Tensor[P_i]`` int64 (index
        into that image's objects), the ``mask_matched_idxs`` of torchvision's RoIHeads.
    """
    n = check_per_image("tensors", rois=rois, labels=labels, gt_boxes=gt_boxes)
    out_rois, out_labels, out_idxs = [], [], []
    for i in range(n):
        r = check_boxes(f"rois[{i}]", rois[i])
        lab = check_int_tensor(f"labels[{i}]", labels[i], "[R] (a class per region)")
        if lab.shape != (len(r),):
            raise ValueError(f"labels[{i}] must have shape [{len(r)}] like rois[{i}]")
        gt = check_boxes(f"gt_boxes[{i}]", gt_boxes[i]).to(r.dtype)
        keep = torch.where(lab > 0)[0]
        if len(keep) and not len(gt):
            raise ValueError(f"rois[{i}] has positive regions but image {i} has no object")
        r, lab = r[keep], lab[keep].long()
        if len(r):
            matched = box_iou(gt, r).max(dim=0).indices  # [P]: as match_anchors picks
        else:
            matched = torch.zeros(0, dtype=torch.int64, device=r.device)
        out_rois.append(r)
        out_labels.append(lab)
        out_idxs.append(matched)
    return out_rois, out_labels, out_idxs


# ====================================================================== mask targets


def _check_masks(name: str, masks) -> torch.Tensor:
    if not isinstance(masks, torch.Tensor) or masks.dim() != 3 or masks.is_complex():
        raise ValueError(f"{name} must be a tensor [M, H, W] of masks, got {_describe(masks)}")
    masks = masks.as_subclass(torch.Tensor)
    if masks.is_floating_point():
        if masks.numel() and (
            not bool(torch.isfinite(masks).all()) or masks.min() < 0 or masks.max() > 1
        ):
            raise ValueError(f"{name} must hold values in [0, 1] (bool or 0/1 masks)")
    return masks


def mask_targets(
    gt_masks,
    rois,
    matched_idxs,
    size: int = 28,
    aligned: bool = True,
    sampling_ratio: int = 0,
    binary: bool = False,
) -> torch.Tensor:
    """The mask each region should predict: its object's mask, cropped to the region and
    resized to ``size x size`` (He et al., 2017, Sec. 3: "the mask target is the
    intersection between an RoI and its associated ground-truth mask").

    The crop-and-resize is RoIAlign of the mask seen as a one-channel image, so each target
    pixel is the fraction of the region's bin the object covers (bilinear samples, no
    rounding of the region to whole pixels).

    Args:
        gt_masks (Tensor[M, H, W]): the image's object masks, bool or values in [0, 1].
        rois (Tensor[R, 4]): regions ``(x1, y1, x2, y2)`` in image pixels.
        matched_idxs (Tensor[R]): int64 index of each region's object in ``gt_masks``.
        size (int): ``M``, the side of a mask target (paper: 28 with the FPN).
        aligned (bool): ``True`` (default): pixel ``j`` of the mask covers ``[j, j + 1)``,
            the boxes' convention (Detectron2). ``False``: torchvision's targets (its
            ``project_masks_on_boxes``), whose samples sit half a pixel up and left.
        sampling_ratio (int): bilinear samples per bin side; 0 adapts to the region
            (``ceil(region side / size)``, torchvision's default).
        binary (bool): threshold the fractions at 0.5 (Detectron2); torchvision keeps them.

    Returns:
        Tensor[R, size, size]: float targets in [0, 1].
    """
    from torchvision.ops import roi_align  # C++: the readable one is vizlib.roi.roi_align

    masks = _check_masks("gt_masks", gt_masks)
    boxes = check_boxes("rois", rois)
    idx = check_int_tensor("matched_idxs", matched_idxs, "[R] (an object index per region)")
    if idx.shape != (len(boxes),):
        raise ValueError(
            f"matched_idxs must have shape [{len(boxes)}] (one per region), got {tuple(idx.shape)}"
        )
    if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= len(masks)):
        raise ValueError(
            f"matched_idxs must index the {len(masks)} masks (0 .. {len(masks) - 1}), "
            f"got values {int(idx.min())} .. {int(idx.max())}"
        )
    size = check_positive_int("size", size)
    sampling_ratio = check_positive_int("sampling_ratio", sampling_ratio, allow_zero=True)
    if len(boxes) == 0:
        return boxes.new_zeros((0, size, size))
    rois5 = torch.cat([idx.to(boxes)[:, None], boxes], dim=1)  # [R, 5]: (mask index, box)
    out = roi_align(masks[:, None].to(boxes), rois5, (size, size), 1.0, sampling_ratio, aligned)
    # bilinear weights sum to 1 up to rounding: 1.0000001 would fail BCE's [0, 1] check
    out = out[:, 0].clamp(0.0, 1.0)  # [R, size, size]
    return (out >= 0.5).to(out.dtype) if binary else out


# ====================================================================== mask head


def _kaiming(module: nn.Module) -> None:
    """He-normal weights (fan out, ReLU) and zero biases, torchvision's mask/keypoint heads."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)


class MaskHead(nn.Module):
    """The mask branch's trunk: ``len(layers)`` 3x3 convolutions + ReLU at the RoI's size.

    He et al., 2017, the head-architecture figure (FPN, right; Fig. 4 on arXiv): four 3x3 convolutions of 256 channels on
    ``14 x 14`` RoIAlign features, keeping the ``14 x 14`` layout: unlike the box head's
    fully connected layers, convolutions keep the mask's spatial structure ("a pixel-to-pixel
    correspondence"). Same layers and initialisation as torchvision's ``MaskRCNNHeads``
    (without normalisation).

    Args:
        in_channels (int): channels of the RoI features.
        layers (sequence of int): output channels of each convolution (paper: 4 x 256).
        dilation (int): of every convolution (1 in the paper).

    Shape:
        ``[R, in_channels, h, w] -> [R, layers[-1], h, w]``.
    """

    def __init__(self, in_channels: int, layers=(256, 256, 256, 256), dilation: int = 1):
        super().__init__()
        channels = check_positive_int("in_channels", in_channels)
        if not isinstance(layers, (list, tuple)) or not layers:
            raise ValueError(
                f"layers must be a non-empty sequence of channel counts, got {layers!r}"
            )
        dilation = check_positive_int("dilation", dilation)
        convs = []
        for i, width in enumerate(layers):
            width = check_positive_int(f"layers[{i}]", width)
            convs += [nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation), nn.ReLU()]
            channels = width
        self.convs = nn.Sequential(*convs)
        self.out_channels = channels
        _kaiming(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_logits("x", x, 4, "[R, C, h, w] (RoI features)")
        return self.convs(x)


class MaskPredictor(nn.Module):
    """A 2x2 transposed convolution (stride 2) + ReLU, then a 1x1 convolution to one mask
    logit per class and pixel: ``14 x 14 -> 28 x 28`` (He et al., 2017, Fig. 4).

    One mask per class, not one mask for all: the class head decides what the object is,
    the mask head only where it is, for each class apart ("decoupling mask and class
    prediction", Sec. 3). Same layers and initialisation as torchvision's
    ``MaskRCNNPredictor``.

    Args:
        in_channels (int): channels of :class:`MaskHead`'s output.
        dim_reduced (int): channels of the transposed convolution (paper: 256).
        num_classes (int): ``C``, object classes; background is added (``C + 1``
            channels, channel ``c`` for label ``c``, as torchvision).

    Shape:
        ``[R, in_channels, h, w] -> [R, C + 1, 2h, 2w]`` logits.
    """

    def __init__(self, in_channels: int, dim_reduced: int, num_classes: int):
        super().__init__()
        in_channels = check_positive_int("in_channels", in_channels)
        dim_reduced = check_positive_int("dim_reduced", dim_reduced)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.conv5_mask = nn.ConvTranspose2d(in_channels, dim_reduced, 2, stride=2)
        self.mask_fcn_logits = nn.Conv2d(dim_reduced, self.num_classes + 1, 1)
        _kaiming(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_logits("x", x, 4, "[R, C, h, w] (mask head features)")
        return self.mask_fcn_logits(F.relu(self.conv5_mask(x)))


def mask_loss(mask_logits, labels, targets) -> torch.Tensor:
    """Binary cross-entropy of each region's mask *for its true class*, averaged over pixels
    and regions (He et al., 2017, Sec. 3).

    Each pixel of each class's mask has its own sigmoid; only the channel of the region's
    ground-truth class is trained, so the classes do not compete for a pixel. The paper's
    ablation (Table 2b, ResNet-50-C4 on COCO) replaces this with a softmax over classes per
    pixel, where the classes' masks compete: mask AP falls from 30.3 to 24.8 (AP50 from 51.2
    to 44.1).

    Args:
        mask_logits (Tensor[R, C + 1, M, M]): the predictor's logits for the positive regions.
        labels (Tensor[R]): int64 class of each region, in ``[1, C]``.
        targets (Tensor[R, M, M]): :func:`mask_targets`, values in [0, 1].

    Returns:
        Tensor: scalar. With no region (``R = 0``) it is ``mask_logits.sum() * 0``: zero,
        and still a graph to every parameter of the mask head (as torchvision), so that a
        batch without objects can be back-propagated like any other.
    """
    logits = _check_logits("mask_logits", mask_logits, 4, "[R, C + 1, M, M]")
    r, classes, m, m2 = logits.shape
    if m != m2:
        raise ValueError(
            f"mask_logits must be square masks [R, C + 1, M, M], got {tuple(logits.shape)}"
        )
    lab = check_int_tensor("labels", labels, "[R] (the class of each region)")
    if lab.shape != (r,):
        raise ValueError(f"labels must have shape [{r}] (one per region), got {tuple(lab.shape)}")
    t = as_float_tensor("targets", targets)
    if t.shape != (r, m, m):
        raise ValueError(
            f"targets must have shape [{r}, {m}, {m}] like the logits, got {tuple(t.shape)}"
        )
    if r and (int(lab.min()) < 1 or int(lab.max()) >= classes):
        raise ValueError(
            f"labels must be object classes in [1, {classes - 1}] (positive regions only), "
            f"got {lab.min().item()} .. {lab.max().item()}"
        )
    if t.numel() and (t.min() < -1e-4 or t.max() > 1 + 1e-4):  # allow rounding
        raise ValueError(
            f"targets must hold values in [0, 1], got {t.min().item()} .. {t.max().item()}"
        )
    if r == 0:
        return logits.sum() * 0
    rows = torch.arange(r, device=logits.device)
    chosen = logits[rows, lab.long()]  # [R, M, M]: the true class's mask of each region
    return F.binary_cross_entropy_with_logits(chosen.float(), t.float().to(chosen.device))


def mask_rcnn_loss(
    mask_logits,
    proposals,
    gt_masks,
    gt_labels,
    matched_idxs,
    aligned: bool = True,
    sampling_ratio: int = 0,
    binary: bool = False,
) -> torch.Tensor:
    """:func:`mask_targets` for every image, then :func:`mask_loss`: torchvision's
    ``maskrcnn_loss(mask_logits, proposals, gt_masks, gt_labels, mask_matched_idxs)``
    (equal to it with ``aligned=False``).

    Args:
        mask_logits (Tensor[R, C + 1, M, M]): logits of all images' positive regions.
        proposals (list[Tensor[P_i, 4]]): the positive regions per image (``sum P_i = R``).
        gt_masks (list[Tensor[M_i, H, W]]): the objects' masks per image.
        gt_labels (list[Tensor[M_i]]): the objects' classes per image, in ``[1, C]``.
        matched_idxs (list[Tensor[P_i]]): each region's object (:func:`positive_rois`).
        aligned, sampling_ratio, binary: see :func:`mask_targets`.

    Returns:
        Tensor: the scalar loss.
    """
    logits = _check_logits("mask_logits", mask_logits, 4, "[R, C + 1, M, M]")
    n = check_per_image(
        "tensors",
        proposals=proposals,
        gt_masks=gt_masks,
        gt_labels=gt_labels,
        matched_idxs=matched_idxs,
    )
    if sum(len(p) for p in proposals) != len(logits):
        raise ValueError(
            f"mask_logits has {len(logits)} rows for {sum(len(p) for p in proposals)} proposals"
        )
    size = logits.shape[-1]
    labels, targets = [], []
    for i in range(n):
        idx = check_int_tensor(f"matched_idxs[{i}]", matched_idxs[i], "[P] (object per region)")
        lab = check_int_tensor(f"gt_labels[{i}]", gt_labels[i], "[M] (class per object)")
        targets.append(
            mask_targets(gt_masks[i], proposals[i], idx, size, aligned, sampling_ratio, binary)
        )
        labels.append(lab[idx] if len(idx) else lab.new_zeros(0))
    if not n:
        return logits.sum() * 0
    return mask_loss(logits, torch.cat(labels).long(), torch.cat(targets).to(logits.device))


def mask_probabilities(mask_logits, labels) -> torch.Tensor:
    """Each detection's mask: the sigmoid of its predicted class's channel (torchvision's
    ``maskrcnn_inference``, without the split per image).

    Args:
        mask_logits (Tensor[D, C + 1, M, M]): the predictor's logits.
        labels (Tensor[D]): int64 predicted class of each detection, in ``[1, C]``.

    Returns:
        Tensor[D, M, M]: probabilities.
    """
    logits = _check_logits("mask_logits", mask_logits, 4, "[D, C + 1, M, M]")
    lab = check_int_tensor("labels", labels, "[D] (a class per detection)")
    if lab.shape != (len(logits),):
        raise ValueError(f"labels must have shape [{len(logits)}], got {tuple(lab.shape)}")
    if len(lab) and (int(lab.min()) < 0 or int(lab.max()) >= logits.shape[1]):
        raise ValueError(f"labels must be in [0, {logits.shape[1] - 1}], got {lab.tolist()}")
    rows = torch.arange(len(logits), device=logits.device)
    return logits[rows, lab.long()].sigmoid()


# ====================================================================== pasting


def paste_masks_in_image(
    masks,
    boxes,
    image_size,
    threshold: float | None = None,
    mode: str = "continuous",
    padding: int = 1,
) -> torch.Tensor:
    """Put each ``M x M`` mask back into the image, stretched over its box.

    ``mode="continuous"`` (default; Detectron2's ``paste_masks_in_image``): every image
    pixel whose centre ``(j + 0.5, i + 0.5)`` falls in the box reads the mask at that point
    with bilinear interpolation, the mask's ``M`` cells dividing the box evenly and the
    mask being 0 outside it. A mask of ones then fills exactly the pixels of an
    integer box. ``mode="torchvision"``: torchvision's ``paste_masks_in_image`` exactly:
    the mask padded by ``padding`` cells of zeros, its box grown to match and rounded
    down to whole pixels, resized with ``F.interpolate`` to ``(box side + 1)`` pixels
    (boxes with inclusive corners: a box from pixel 10 to 20 covers 11), pasted.

    Args:
        masks (Tensor[D, M, M] or Tensor[D, 1, M, M]): probabilities (or logits, any
            real map), one per box.
        boxes (Tensor[D, 4]): ``(x1, y1, x2, y2)`` in image pixels.
        image_size (tuple[int, int]): ``(height, width)`` of the image.
        threshold (float, optional): in [0, 1]; if given, return ``probability >
            threshold`` as bool masks (0.5 in the paper).
        mode (str): ``"continuous"`` or ``"torchvision"``.
        padding (int): torchvision mode only: cells of zeros around the mask.

    Returns:
        Tensor[D, H, W]: the masks in image pixels (float, or bool with ``threshold``).
    """
    if not isinstance(masks, torch.Tensor):
        raise ValueError(f"masks must be a tensor [D, M, M], got {_describe(masks)}")
    m = masks[:, 0] if masks.dim() == 4 and masks.shape[1] == 1 else masks
    if m.dim() != 3 or m.shape[1] != m.shape[2] or not m.is_floating_point():
        raise ValueError(
            f"masks must be a floating tensor [D, M, M] or [D, 1, M, M], got {_describe(masks)}"
        )
    b = check_boxes("boxes", boxes)
    if len(b) != len(m):
        raise ValueError(f"boxes must have one row per mask ({len(m)}), got {len(b)}")
    h, w = check_int_pair("image_size", image_size)
    check_choice("mode", mode, ("continuous", "torchvision"))
    padding = check_positive_int("padding", padding, allow_zero=True)
    if threshold is not None:
        threshold = check_fraction("threshold", threshold)
    if len(m) == 0:
        out = m.new_zeros((0, h, w))
    elif mode == "continuous":
        out = _paste_continuous(m, b.to(m.device), h, w)
    else:
        out = _paste_torchvision(m, b.to(m.device), h, w, padding)
    return out > threshold if threshold is not None else out


def _paste_continuous(masks: torch.Tensor, boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """All masks at once with ``grid_sample``: ``[D, M, M] -> [D, H, W]``."""
    boxes = boxes.to(masks.dtype)
    x1, y1, x2, y2 = boxes[:, 0:1], boxes[:, 1:2], boxes[:, 2:3], boxes[:, 3:4]  # [D, 1] each
    xs = torch.arange(w, device=masks.device, dtype=masks.dtype) + 0.5  # [W] pixel centres
    ys = torch.arange(h, device=masks.device, dtype=masks.dtype) + 0.5  # [H]
    # grid_sample's coordinates: -1 and 1 are the outer edges of the mask's first and last
    # cells (align_corners=False), i.e. the box's edges
    gx = (xs[None] - x1) / (x2 - x1).clamp(min=1e-6) * 2 - 1  # [D, W]
    gy = (ys[None] - y1) / (y2 - y1).clamp(min=1e-6) * 2 - 1  # [D, H]
    grid = torch.stack(
        [gx[:, None, :].expand(-1, h, -1), gy[:, :, None].expand(-1, -1, w)], dim=-1
    )  # [D, H, W, 2] as (x, y)
    out = F.grid_sample(masks[:, None], grid, mode="bilinear", align_corners=False)
    return out[:, 0]  # zeros padding: 0 outside the box


def _paste_torchvision(
    masks: torch.Tensor, boxes: torch.Tensor, h: int, w: int, padding: int
) -> torch.Tensor:
    """torchvision's ``paste_masks_in_image``, one box at a time."""
    side = masks.shape[-1]
    scale = (side + 2 * padding) / side
    masks = F.pad(masks, (padding,) * 4)  # [D, M + 2p, M + 2p]
    centre = (boxes[:, :2] + boxes[:, 2:]) * 0.5  # [D, 2]
    half = (boxes[:, 2:] - boxes[:, :2]) * 0.5 * scale  # [D, 2]
    grown = torch.cat([centre - half, centre + half], dim=1).long()  # [D, 4] rounded to 0
    out = masks.new_zeros((len(masks), h, w))
    for i, (mask, (bx1, by1, bx2, by2)) in enumerate(zip(masks, grown.tolist(), strict=True)):
        bw, bh = max(bx2 - bx1 + 1, 1), max(by2 - by1 + 1, 1)
        resized = F.interpolate(
            mask[None, None], size=(bh, bw), mode="bilinear", align_corners=False
        )
        resized = resized[0, 0]
        x0, x1 = max(bx1, 0), min(bx2 + 1, w)
        y0, y1 = max(by1, 0), min(by2 + 1, h)
        if x1 > x0 and y1 > y0:
            out[i, y0:y1, x0:x1] = resized[y0 - by1 : y1 - by1, x0 - bx1 : x1 - bx1]
    return out


# ====================================================================== keypoints


def keypoint_targets(
    keypoints, rois, heatmap_size: int = 56, min_visibility: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The one position each keypoint should take in its region's ``S x S`` heatmap.

    He et al., 2017, Sec. 5: "the training target is a one-hot m x m binary mask where
    only a single pixel is labeled as foreground". The region is cut into ``S x S`` cells;
    keypoint ``(x, y)`` is in cell ``(floor((x - x1) S / w), floor((y - y1) S / h))``
    (a point on the region's right or bottom edge in the last cell). A keypoint counts
    (``valid``) if it is inside the region and its visibility is at least
    ``min_visibility``: by default 1, every labelled point (COCO's 2 visible and 1
    occluded), as torchvision's ``keypoints_to_heatmap`` (equal to it) and Detectron; 2
    keeps the visible ones only, the paper's wording ("for each visible ground-truth
    keypoint").

    Args:
        keypoints (Tensor[R, K, 3]): ``(x, y, visibility)`` of each region's object, in
            image pixels.
        rois (Tensor[R, 4]): regions ``(x1, y1, x2, y2)``.
        heatmap_size (int): ``S`` (paper: 56).
        min_visibility (float): lowest visibility that counts, > 0 (1 or 2).

    Returns:
        tuple[Tensor[R, K], Tensor[R, K]]: the flat cell index ``y S + x`` (int64, 0 where
        not valid) and ``valid`` (bool).
    """
    kp = as_keypoints("keypoints", keypoints, coords=(3,))
    boxes = check_boxes("rois", rois).to(kp.dtype)
    if len(kp) != len(boxes):
        raise ValueError(f"keypoints must have one row per region ({len(boxes)}), got {len(kp)}")
    s = check_positive_int("heatmap_size", heatmap_size)
    min_visibility = check_number("min_visibility", min_visibility, low=0, strict=True)
    x1, y1 = boxes[:, 0:1], boxes[:, 1:2]  # [R, 1], broadcast against [R, K]
    scale_x = s / (boxes[:, 2:3] - x1).clamp(min=1e-6)  # [R, 1]
    scale_y = s / (boxes[:, 3:4] - y1).clamp(min=1e-6)  # [R, 1]
    x, y = kp[..., 0], kp[..., 1]  # [R, K]
    on_right, on_bottom = x == boxes[:, 2:3], y == boxes[:, 3:4]  # [R, K]
    cx = ((x - x1) * scale_x).floor().long()  # [R, K]
    cy = ((y - y1) * scale_y).floor().long()  # [R, K]
    cx[on_right] = s - 1  # the edge itself belongs to the last cell
    cy[on_bottom] = s - 1
    inside = (cx >= 0) & (cy >= 0) & (cx < s) & (cy < s)
    valid = inside & (kp[..., 2] >= min_visibility)
    return torch.where(valid, cy * s + cx, torch.zeros_like(cx)), valid


def one_hot_heatmaps(targets, valid, heatmap_size: int = 56) -> torch.Tensor:
    """:func:`keypoint_targets` drawn as one-hot maps (for figures; the loss takes indices).

    Args:
        targets (Tensor[R, K]): flat cell indices.
        valid (Tensor[R, K]): bool.
        heatmap_size (int): ``S``.

    Returns:
        Tensor[R, K, S, S]: float, 1 at each valid keypoint's cell, 0 elsewhere (a keypoint
        that is not valid has an all-zero map).
    """
    t = check_int_tensor("targets", targets, "[R, K] (flat cell indices)")
    if t.dim() != 2:
        raise ValueError(f"targets must have shape [R, K], got {tuple(t.shape)}")
    if not isinstance(valid, torch.Tensor) or valid.shape != t.shape:
        raise ValueError(f"valid must be a bool tensor of shape {tuple(t.shape)} like targets")
    s = check_positive_int("heatmap_size", heatmap_size)
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= s * s):
        raise ValueError(f"targets must be flat indices in [0, {s * s - 1}]")
    maps = F.one_hot(t.long(), s * s).float() * valid.bool()[..., None]  # [R, K, S S]
    return maps.reshape(*t.shape, s, s)


class KeypointHead(nn.Module):
    """The keypoint branch's trunk: 3x3 convolutions + ReLU on ``14 x 14`` RoI features.

    He et al., 2017, Sec. 5: "a stack of eight 3x3 512-d conv layers" (torchvision's
    ``KeypointRCNNHeads``, same initialisation).

    Args:
        in_channels (int): channels of the RoI features.
        layers (sequence of int): output channels of each convolution (paper: 8 x 512).

    Shape:
        ``[R, in_channels, h, w] -> [R, layers[-1], h, w]``.
    """

    def __init__(self, in_channels: int, layers=(512,) * 8):
        super().__init__()
        channels = check_positive_int("in_channels", in_channels)
        if not isinstance(layers, (list, tuple)) or not layers:
            raise ValueError(
                f"layers must be a non-empty sequence of channel counts, got {layers!r}"
            )
        convs = []
        for i, width in enumerate(layers):
            width = check_positive_int(f"layers[{i}]", width)
            convs += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
        self.convs = nn.Sequential(*convs)
        self.out_channels = channels
        _kaiming(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_logits("x", x, 4, "[R, C, h, w] (RoI features)")
        return self.convs(x)


class KeypointPredictor(nn.Module):
    """One heatmap logit map per keypoint: a 4x4 transposed convolution (stride 2), then 2x
    bilinear upsampling, ``14 x 14 -> 56 x 56``.

    He et al., 2017, Sec. 5: "followed by a deconv layer and 2x bilinear upscaling,
    producing an output resolution of 56x56. We found that a relatively high resolution
    output (compared to masks) is required for keypoint-level localization accuracy."
    Same layers and initialisation as torchvision's ``KeypointRCNNPredictor``.

    Args:
        in_channels (int): channels of :class:`KeypointHead`'s output.
        num_keypoints (int): ``K``.

    Shape:
        ``[R, in_channels, h, w] -> [R, K, 4h, 4w]`` logits.
    """

    def __init__(self, in_channels: int, num_keypoints: int):
        super().__init__()
        in_channels = check_positive_int("in_channels", in_channels)
        self.num_keypoints = check_positive_int("num_keypoints", num_keypoints)
        self.kps_score_lowres = nn.ConvTranspose2d(in_channels, self.num_keypoints, 4, 2, 1)
        self.up_scale = 2
        _kaiming(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_logits("x", x, 4, "[R, C, h, w] (keypoint head features)")
        x = self.kps_score_lowres(x)  # [R, K, 2h, 2w]
        return F.interpolate(
            x, scale_factor=float(self.up_scale), mode="bilinear", align_corners=False
        )


def keypoint_loss(keypoint_logits, targets, valid) -> torch.Tensor:
    """Cross-entropy over the ``S x S`` positions of each valid keypoint, averaged over the
    valid keypoints of the batch (He et al., 2017, Sec. 5: "for each visible ground-truth
    keypoint, we minimize the cross-entropy loss over an m^2-way softmax output, which
    encourages a single point to be detected").

    Args:
        keypoint_logits (Tensor[R, K, S, S]): the predictor's logits.
        targets (Tensor[R, K]): flat cell indices (:func:`keypoint_targets`).
        valid (Tensor[R, K]): bool, which keypoints count.

    Returns:
        Tensor: scalar. With no valid keypoint (no region, or no labelled keypoint inside
        the sampled regions) it is ``keypoint_logits.sum() * 0``: zero, not the NaN of a
        mean over nothing, and still a graph to every parameter of the head.
    """
    logits = _check_logits("keypoint_logits", keypoint_logits, 4, "[R, K, S, S]")
    r, k, s, s2 = logits.shape
    if s != s2:
        raise ValueError(
            f"keypoint_logits must be square heatmaps [R, K, S, S], got {tuple(logits.shape)}"
        )
    t = check_int_tensor("targets", targets, "[R, K] (flat cell indices)")
    if t.shape != (r, k):
        raise ValueError(
            f"targets must have shape [{r}, {k}] like the logits, got {tuple(t.shape)}"
        )
    if not isinstance(valid, torch.Tensor) or valid.shape != (r, k):
        raise ValueError(f"valid must be a bool tensor of shape [{r}, {k}], got {_describe(valid)}")
    valid = valid.bool()
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= s * s):
        raise ValueError(f"targets must be flat indices in [0, {s * s - 1}]")
    if not bool(valid.any()):
        return logits.sum() * 0
    flat = logits.reshape(r * k, s * s)  # [R K, S S]: one softmax over positions per keypoint
    rows = valid.reshape(-1).to(flat.device)
    return F.cross_entropy(flat[rows].float(), t.reshape(-1).to(flat.device)[rows].long())


def keypoint_rcnn_loss(keypoint_logits, proposals, gt_keypoints, matched_idxs) -> torch.Tensor:
    """:func:`keypoint_targets` for every image, then :func:`keypoint_loss`: torchvision's
    ``keypointrcnn_loss(keypoint_logits, proposals, gt_keypoints, keypoint_matched_idxs)``.

    Args:
        keypoint_logits (Tensor[R, K, S, S]): logits of all images' positive regions.
        proposals (list[Tensor[P_i, 4]]): the positive regions per image (``sum P_i = R``).
        gt_keypoints (list[Tensor[M_i, K, 3]]): the objects' keypoints per image.
        matched_idxs (list[Tensor[P_i]]): each region's object (:func:`positive_rois`).

    Returns:
        Tensor: the scalar loss (0 with a graph when no keypoint is valid).
    """
    logits = _check_logits("keypoint_logits", keypoint_logits, 4, "[R, K, S, S]")
    n = check_per_image(
        "tensors", proposals=proposals, gt_keypoints=gt_keypoints, matched_idxs=matched_idxs
    )
    if sum(len(p) for p in proposals) != len(logits):
        raise ValueError(
            f"keypoint_logits has {len(logits)} rows for {sum(len(p) for p in proposals)} proposals"
        )
    r, k, s, _ = logits.shape
    targets, valid = [], []
    for i in range(n):
        kp = as_keypoints(f"gt_keypoints[{i}]", gt_keypoints[i], coords=(3,))
        if kp.shape[1] != k:
            raise ValueError(f"gt_keypoints[{i}] has {kp.shape[1]} keypoints, the logits {k}")
        idx = check_int_tensor(f"matched_idxs[{i}]", matched_idxs[i], "[P] (object per region)")
        check_same_length(**{f"proposals[{i}]": proposals[i], f"matched_idxs[{i}]": idx})
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= len(kp)):
            raise ValueError(f"matched_idxs[{i}] must index the {len(kp)} objects of image {i}")
        t, v = keypoint_targets(kp[idx], proposals[i], s)
        targets.append(t)
        valid.append(v)
    if not n:
        return logits.sum() * 0
    return keypoint_loss(logits, torch.cat(targets), torch.cat(valid))


def heatmaps_to_keypoints(maps, rois) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints in image pixels from heatmap logits: each map resized (bicubic) to its
    region's size in whole pixels, its maximum taken, the cell's centre mapped back.

    Cell ``d`` of the resized map is the pixel span ``[d, d + 1)`` of the region, so its
    centre is ``d + 0.5`` (Heckbert, 1990), the inverse of :func:`keypoint_targets`.
    Same as torchvision's ``heatmaps_to_keypoints``.

    Args:
        maps (Tensor[D, K, S, S]): heatmap logits.
        rois (Tensor[D, 4]): the detections' boxes ``(x1, y1, x2, y2)``.

    Returns:
        tuple[Tensor[D, K, 3], Tensor[D, K]]: ``(x, y, 1)`` per keypoint (float32), and the
        resized logit at the maximum (its score).
    """
    logits = _check_logits("maps", maps, 4, "[D, K, S, S]")
    boxes = check_boxes("rois", rois).to(logits.device)
    if len(boxes) != len(logits):
        raise ValueError(
            f"rois must have one row per heatmap set ({len(logits)}), got {len(boxes)}"
        )
    d, k = logits.shape[:2]
    widths = (boxes[:, 2] - boxes[:, 0]).clamp(min=1)  # [D]
    heights = (boxes[:, 3] - boxes[:, 1]).clamp(min=1)  # [D]
    points = torch.zeros((d, k, 3), dtype=torch.float32, device=logits.device)
    scores = torch.zeros((d, k), dtype=torch.float32, device=logits.device)
    for i in range(d):
        pw, ph = math.ceil(float(widths[i])), math.ceil(float(heights[i]))  # whole pixels
        roi_map = F.interpolate(
            logits[i][:, None], size=(ph, pw), mode="bicubic", align_corners=False
        )[:, 0]
        best = roi_map.reshape(k, -1).argmax(dim=1)  # [K]
        bx, by = best % pw, torch.div(best, pw, rounding_mode="floor")  # [K] each
        points[i, :, 0] = (bx.float() + 0.5) * (widths[i] / pw) + boxes[i, 0]
        points[i, :, 1] = (by.float() + 0.5) * (heights[i] / ph) + boxes[i, 1]
        points[i, :, 2] = 1
        scores[i] = roi_map[torch.arange(k, device=roi_map.device), by, bx]
    return points, scores


def ring_flip_index(ring_size: int, num_keypoints: int | None = None) -> list[int]:
    """The flip permutation of keypoints laid out as a centre, then a ring that starts at
    its topmost point and goes clockwise on screen (the scenes' layout,
    :func:`vizlib.data.scenes.canonical_keypoint_order`).

    A horizontal mirror keeps the centre and the topmost point and turns clockwise into
    anticlockwise, so ring point ``j`` becomes ring point ``ring_size - j``:
    ``[0, 1, ring_size, ring_size - 1, ..., 2]``, then the padding slots unchanged. (When
    two points tie for topmost, the leftmost starts the ring, and a mirror makes the other
    one leftmost: :func:`~vizlib.data.scenes.canonical_keypoint_order` then rotates the
    ring by one. The generator's shapes are rotated by random angles, so ties are rare.)

    Args:
        ring_size (int): points on the ring (>= 0).
        num_keypoints (int, optional): total slots (>= ``1 + ring_size``); default
            ``1 + ring_size``.

    Returns:
        list[int]: slot ``i`` of the flipped object takes slot ``index[i]`` of the original.
    """
    ring = check_positive_int("ring_size", ring_size, allow_zero=True)
    total = (
        1 + ring if num_keypoints is None else check_positive_int("num_keypoints", num_keypoints)
    )
    if total < 1 + ring:
        raise ValueError(f"num_keypoints ({total}) must be >= 1 + ring_size ({1 + ring})")
    index = [0] + ([1] + list(range(ring, 1, -1)) if ring else [])
    return index + list(range(1 + ring, total))


def hflip_keypoints(keypoints, image_width, flip_index) -> torch.Tensor:
    """Keypoints of a horizontally flipped image: ``x -> W - x``, then the slots permuted
    so that each keeps its meaning (a person's left eye is seen as the right eye once the
    picture is mirrored: the slot "left eye" must take the old right eye).

    ``x -> W - x`` is the mirror of continuous coordinates (pixel ``j``, spanning
    ``[j, j + 1)``, goes to ``W - 1 - j``), as the book's boxes and torchvision's
    reference flip. Keypoints with visibility 0 become ``(0, 0, 0)`` (COCO's unlabelled
    point), as that reference does.

    Args:
        keypoints (Tensor[N, K, 3]): ``(x, y, visibility)`` in image pixels.
        image_width (float): ``W``, > 0.
        flip_index (sequence of int or Tensor[K] or Tensor[N, K]): a permutation of the
            ``K`` slots (one for all objects, e.g. :data:`COCO_PERSON_FLIP_INDEX`, or one per
            object when classes lay their keypoints out differently, e.g. rows of
            :func:`ring_flip_index`): slot ``i`` of the result is slot ``flip_index[i]``.

    Returns:
        Tensor[N, K, 3]: a new tensor (the input is not modified).
    """
    kp = as_keypoints("keypoints", keypoints, coords=(3,))
    n, k, _ = kp.shape
    if isinstance(image_width, torch.Tensor) and image_width.numel() == 1:
        image_width = image_width.item()
    if (
        isinstance(image_width, bool)
        or not isinstance(image_width, (int, float))
        or not image_width > 0
    ):
        raise ValueError(f"image_width must be a number > 0, got {image_width!r}")
    index = torch.as_tensor(flip_index) if not isinstance(flip_index, torch.Tensor) else flip_index
    check_int_tensor("flip_index", index, "of slot indices")
    if index.dim() == 1:
        index = index[None].expand(n, -1)  # [N, K]: the same permutation for every object
    if index.shape != (n, k):
        raise ValueError(
            f"flip_index must have shape [{k}] or [{n}, {k}], got {tuple(index.shape)}"
        )
    expected = torch.arange(k)
    if not bool((index.sort(dim=1).values.cpu() == expected).all()):
        raise ValueError(f"flip_index must be a permutation of 0 .. {k - 1} (each row)")
    out = kp.clone()
    out[..., 0] = image_width - kp[..., 0]
    out[kp[..., 2] == 0] = 0  # unlabelled points carry no position
    gather = index.long().to(kp.device)[..., None].expand(-1, -1, 3)  # [N, K, 3]
    return torch.gather(out, 1, gather)


# ====================================================================== the model


def multiscale_roi_pool(
    features,
    strides,
    proposals,
    output_size=7,
    canonical_size: float = 224,
    canonical_level: int = 4,
) -> torch.Tensor:
    """:func:`~vizlib.nn.faster_rcnn.multiscale_roi_align` with RoI pooling instead
    (Fast R-CNN's operation: the box and its bins rounded to whole feature cells, a max
    per bin; :func:`vizlib.roi.roi_pool` is its readable version). For the comparison of
    He et al., 2017, Table 2c (ResNet-50-C4 on COCO): mask AP 26.9 with RoIPool, 30.3 with
    RoIAlign; "these quantizations introduce misalignments between the RoI and the
    extracted features", harmless for classification, harmful for pixel-accurate masks.

    Args:
        features (list[Tensor[N, C, H_l, W_l]]): the levels, finest first.
        strides (list[int]): the stride of each level.
        proposals (list[Tensor[P_i, 4]]): regions ``(x1, y1, x2, y2)`` per image.
        output_size (int or tuple[int, int]): ``(h, w)`` of each grid.
        canonical_size, canonical_level: see :func:`~vizlib.nn.fpn.fpn_levels`.

    Returns:
        Tensor[sum_i P_i, C, h, w].
    """
    from torchvision.ops import roi_pool

    strides, ks, output_size = check_pyramid_regions(features, strides, proposals, output_size)
    boxes = [check_boxes(f"proposals[{i}]", p) for i, p in enumerate(proposals)]
    rois = _rows_with_image_index(boxes).to(features[0].device, features[0].dtype)
    level = fpn_levels(rois[:, 1:], int(ks[0]), int(ks[-1]), canonical_size, canonical_level)
    level = level - int(ks[0])
    out = features[0].new_zeros((len(rois), features[0].shape[1], *output_size))
    for i, (f, s) in enumerate(zip(features, strides, strict=True)):
        rows = torch.where(level == i)[0]
        out[rows] = roi_pool(f, rois[rows], output_size, 1.0 / s).to(out.dtype)
    return out


class MaskRCNN(FasterRCNN):
    """Mask R-CNN: :class:`~vizlib.nn.faster_rcnn.FasterRCNN` plus a mask branch and,
    with ``num_keypoints``, a keypoint branch, all on the same pyramid and proposals.

    Training (He et al., 2017, Sec. 3.1): the box branch trains on the sampled regions as
    in Faster R-CNN; the mask and keypoint branches on the positive ones only, each reading
    its own RoIAlign grid (``14 x 14``) of the region. The loss is the plain sum
    ``L = L_cls + L_box + L_mask`` (+ ``L_keypoint``). Inference: the box branch detects
    (scores, per-class boxes, NMS), then the mask branch runs on the *detections* (not the
    proposals: "this speeds up inference and improves accuracy (due to the use of fewer,
    more accurate RoIs)"), its mask for the predicted class pasted into the box.

    Called like torchvision's ``MaskRCNN`` / ``KeypointRCNN``: train mode
    ``model(images, targets)`` returns :data:`MASK_RCNN_LOSS_NAMES` (and ``loss_keypoint``
    with keypoints); eval mode ``model(images)`` returns per image ``boxes``
    ``Tensor[D, 4]`` ``(x1, y1, x2, y2)``, ``labels`` ``Tensor[D]``, ``scores``
    ``Tensor[D]``, ``masks`` ``Tensor[D, 1, H, W]`` probabilities (torchvision's layout:
    ``> 0.5`` is the paper's binary mask), and with keypoints ``keypoints``
    ``Tensor[D, K, 3]`` and ``keypoints_scores`` ``Tensor[D, K]``. Targets are dicts with
    ``boxes``, ``labels``, ``masks`` ``Tensor[M, H, W]`` (bool) and, with keypoints,
    ``keypoints`` ``Tensor[M, K, 3]``; ``M`` may be 0.

    Args:
        num_classes (int): ``C``, object classes (no background).
        image_size: ``(height, width)`` of the images.
        mask_head_layers (sequence of int): :class:`MaskHead` channels (paper: 4 x 256;
            the default is sized like the scenes' 64-channel pyramid).
        mask_dim_reduced (int): :class:`MaskPredictor`'s transposed convolution channels.
        mask_roi_size (int): RoIAlign grid of the mask branch (paper: 14; masks are twice it).
        mask_aligned_targets (bool): :func:`mask_targets`'s ``aligned``.
        paste_mode (str): :func:`paste_masks_in_image`'s ``mode``.
        num_keypoints (int, optional): ``K``; adds the keypoint branch.
        keypoint_head_layers (sequence of int): :class:`KeypointHead` channels (paper:
            8 x 512).
        keypoint_roi_size (int): RoIAlign grid of the keypoint branch (paper: 14;
            heatmaps are four times it).
        keypoint_min_visibility (float): :func:`keypoint_targets`'s ``min_visibility``
            (1: every labelled keypoint, occluded ones included; 2: visible ones only).
        pooler (str): ``"align"`` (RoIAlign, default) or ``"pool"`` (RoIPool,
            :func:`multiscale_roi_pool`) for every branch, the paper's Table 2c.
        **kwargs: :class:`~vizlib.nn.faster_rcnn.FasterRCNN`'s settings.
    """

    def __init__(
        self,
        num_classes: int,
        image_size,
        mask_head_layers=(64, 64, 64, 64),
        mask_dim_reduced: int = 64,
        mask_roi_size: int = 14,
        mask_aligned_targets: bool = True,
        paste_mode: str = "continuous",
        num_keypoints: int | None = None,
        keypoint_head_layers=(64, 64, 64, 64),
        keypoint_roi_size: int = 14,
        keypoint_min_visibility: float = 1.0,
        pooler: str = "align",
        **kwargs,
    ):
        super().__init__(num_classes, image_size, **kwargs)
        channels = self.backbone.out_channels
        self.pooler = check_choice("pooler", pooler, ("align", "pool"))
        self.mask_roi_size = check_positive_int("mask_roi_size", mask_roi_size)
        self.mask_head = MaskHead(channels, mask_head_layers)
        self.mask_predictor = MaskPredictor(
            self.mask_head.out_channels, mask_dim_reduced, num_classes
        )
        self.mask_aligned_targets = bool(mask_aligned_targets)
        self.paste_mode = check_choice("paste_mode", paste_mode, ("continuous", "torchvision"))
        self.num_keypoints = None
        if num_keypoints is not None:
            self.num_keypoints = check_positive_int("num_keypoints", num_keypoints)
            self.keypoint_roi_size = check_positive_int("keypoint_roi_size", keypoint_roi_size)
            self.keypoint_min_visibility = check_number(
                "keypoint_min_visibility", keypoint_min_visibility, low=0, strict=True
            )
            self.keypoint_head = KeypointHead(channels, keypoint_head_layers)
            self.keypoint_predictor = KeypointPredictor(
                self.keypoint_head.out_channels, self.num_keypoints
            )

    @property
    def loss_names(self) -> tuple[str, ...]:
        """The losses train mode returns, in order."""
        extra = (KEYPOINT_LOSS_NAME,) if self.num_keypoints else ()
        return MASK_RCNN_LOSS_NAMES + extra

    # -- the steps -------------------------------------------------------------------

    def pool(self, features, boxes, output_size) -> torch.Tensor:
        """The regions' grids of ``output_size`` from the pyramid, with this model's pooler."""
        if self.pooler == "pool":
            return multiscale_roi_pool(
                features,
                self.strides,
                boxes,
                output_size,
                self.canonical_size,
                self.canonical_level,
            )
        return multiscale_roi_align(
            features,
            self.strides,
            boxes,
            output_size,
            self.sampling_ratio,
            self.canonical_size,
            self.canonical_level,
        )

    def roi_features(self, features, proposals) -> torch.Tensor:
        """The box branch's ``7 x 7`` grids (with this model's pooler)."""
        return self.pool(features, proposals, self.roi_output_size)

    def mask_logits(self, features, boxes) -> torch.Tensor:
        """``[R, C + 1, 2 m, 2 m]`` mask logits of ``boxes`` (list per image)."""
        grid = self.pool(features, boxes, self.mask_roi_size)  # [R, C, m, m]
        return self.mask_predictor(self.mask_head(grid))

    def keypoint_logits(self, features, boxes) -> torch.Tensor:
        """``[R, K, 4 m, 4 m]`` heatmap logits of ``boxes`` (list per image)."""
        grid = self.pool(features, boxes, self.keypoint_roi_size)  # [R, C, m, m]
        return self.keypoint_predictor(self.keypoint_head(grid))

    def _instance_targets(self, targets, n: int):
        """Boxes, labels, masks (and keypoints) of each image, checked."""
        gt_boxes, gt_labels = self._targets(targets, n)
        masks, keypoints = [], []
        for i, (t, b) in enumerate(zip(targets, gt_boxes, strict=True)):
            if "masks" not in t:
                raise ValueError(f"targets[{i}] must have masks [M, H, W] for Mask R-CNN")
            m = _check_masks(f"targets[{i}]['masks']", t["masks"])
            if m.shape != (len(b), *self.image_size):
                raise ValueError(
                    f"targets[{i}]['masks'] must have shape [{len(b)}, {self.image_size[0]}, "
                    f"{self.image_size[1]}] (one mask per box, image-sized), got {tuple(m.shape)}"
                )
            masks.append(m)
            if self.num_keypoints:
                if "keypoints" not in t:
                    raise ValueError(f"targets[{i}] must have keypoints [M, K, 3] (num_keypoints)")
                kp = as_keypoints(f"targets[{i}]['keypoints']", t["keypoints"], coords=(3,))
                if kp.shape != (len(b), self.num_keypoints, 3):
                    raise ValueError(
                        f"targets[{i}]['keypoints'] must have shape [{len(b)}, "
                        f"{self.num_keypoints}, 3], got {tuple(kp.shape)}"
                    )
                keypoints.append(kp)
        return gt_boxes, gt_labels, masks, keypoints

    def training_targets(self, features, proposals, targets) -> dict:
        """The sample of regions and every branch's targets for one batch (train mode).

        Returns a dict of lists per image: ``rois``, ``labels``, ``regression_targets``
        (:func:`~vizlib.nn.faster_rcnn.roi_head_targets`), ``positive_rois``,
        ``positive_labels``, ``matched_idxs`` (:func:`positive_rois`), ``mask_targets``
        (``Tensor[P_i, M, M]``), and with keypoints ``keypoint_targets``, ``keypoint_valid``
        (``Tensor[P_i, K]``).
        """
        device = features[0].device
        gt_boxes, gt_labels, gt_masks, gt_kps = self._instance_targets(targets, len(features[0]))
        gt_boxes = [b.to(device) for b in gt_boxes]
        gt_labels = [lab.to(device) for lab in gt_labels]
        rois, labels, regression = roi_head_targets(
            proposals,
            gt_boxes,
            gt_labels,
            self.box_fg_iou,
            self.box_bg_iou,
            self.box_batch_size_per_image,
            self.box_positive_fraction,
        )
        pos, pos_labels, matched = positive_rois(rois, labels, gt_boxes)
        side = 2 * self.mask_roi_size
        out = {
            "rois": rois,
            "labels": labels,
            "regression_targets": regression,
            "positive_rois": pos,
            "positive_labels": pos_labels,
            "matched_idxs": matched,
            "mask_targets": [
                mask_targets(m.to(device), p, i, side, self.mask_aligned_targets)
                for m, p, i in zip(gt_masks, pos, matched, strict=True)
            ],
        }
        if self.num_keypoints:
            heat = [
                keypoint_targets(
                    kp.to(device)[i], p, 4 * self.keypoint_roi_size, self.keypoint_min_visibility
                )
                for kp, p, i in zip(gt_kps, pos, matched, strict=True)
            ]
            out["keypoint_targets"] = [t for t, _ in heat]
            out["keypoint_valid"] = [v for _, v in heat]
        return out

    def forward(self, images, targets=None):
        x = self._images(images)
        if self.training and targets is None:
            raise ValueError(
                "in train mode MaskRCNN needs targets (dicts with boxes, labels, masks)"
            )
        features = self.backbone(x)  # list of [N, C, H / s, W / s]
        if not self.training:
            proposals, _, _ = self.rpn(features, self.image_size)
            return self.segment(features, self.detect(features, proposals))

        return self.train_losses(x, features, targets)

    def train_losses(self, x, features, targets) -> dict:
        """Train mode's losses from already computed ``features`` of the batch ``x``
        (``Tensor[N, 3, H, W]``): the RPN's, the box branch's, the mask's and, with
        keypoints, the keypoint loss. :class:`~vizlib.nn.panoptic.PanopticFPN` calls it
        with the features its semantic head shares."""
        gt_boxes, _, _, _ = self._instance_targets(targets, len(x))
        proposals, _, losses = self.rpn(
            features, self.image_size, [b.to(x.device) for b in gt_boxes]
        )
        t = self.training_targets(features, proposals, targets)
        class_logits, box_regression = self.box_predictor(
            self.box_head(self.roi_features(features, t["rois"]))
        )  # [R, C + 1], [R, 4 (C + 1)]
        loss_classifier, loss_box_reg = fast_rcnn_loss(
            class_logits, box_regression, t["labels"], t["regression_targets"]
        )
        losses = {**losses, "loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        mask_logits = self.mask_logits(features, t["positive_rois"])  # [P, C + 1, M, M]
        losses["loss_mask"] = mask_loss(
            mask_logits, torch.cat(t["positive_labels"]), torch.cat(t["mask_targets"])
        )
        if self.num_keypoints:
            kp_logits = self.keypoint_logits(features, t["positive_rois"])  # [P, K, S, S]
            losses[KEYPOINT_LOSS_NAME] = keypoint_loss(
                kp_logits, torch.cat(t["keypoint_targets"]), torch.cat(t["keypoint_valid"])
            )
        return losses

    @torch.no_grad()
    def inspect(self, images, targets=None) -> dict:
        """:meth:`FasterRCNN.inspect <vizlib.nn.faster_rcnn.FasterRCNN.inspect>` with the
        masks (and keypoints) in ``detections`` and, with ``targets`` (dicts with ``masks``
        and, for a keypoint model, ``keypoints``), the heads' targets of its training
        sample of regions:

        * ``positive_rois``, ``positive_labels``, ``matched_idxs`` (lists per image,
          :func:`positive_rois` of ``rois``);
        * ``mask_targets`` (list of ``Tensor[P_i, M, M]``, :func:`mask_targets`);
        * ``keypoint_targets``, ``keypoint_valid`` (lists of ``Tensor[P_i, K]``,
          :func:`keypoint_targets`; draw them with :func:`one_hot_heatmaps`).

        Everything is on the CPU. The model's mode is restored.
        """
        info = super().inspect(images, targets)
        was_training = self.training
        self.eval()
        try:
            x = self._images(images)
            features = self.backbone(x)
            detections = [{k: v.to(x.device) for k, v in d.items()} for d in info["detections"]]
            info["detections"] = self.segment(features, detections)
            if targets is not None:
                gt_boxes, _, gt_masks, gt_kps = detached_to_cpu(
                    self._instance_targets(targets, len(x))
                )
                pos, pos_labels, matched = positive_rois(info["rois"], info["roi_labels"], gt_boxes)
                info.update(positive_rois=pos, positive_labels=pos_labels, matched_idxs=matched)
                side = 2 * self.mask_roi_size
                info["mask_targets"] = [
                    mask_targets(m, p, i, side, self.mask_aligned_targets)
                    for m, p, i in zip(gt_masks, pos, matched, strict=True)
                ]
                if self.num_keypoints:
                    heat = [
                        keypoint_targets(
                            kp[i], p, 4 * self.keypoint_roi_size, self.keypoint_min_visibility
                        )
                        for kp, p, i in zip(gt_kps, pos, matched, strict=True)
                    ]
                    info["keypoint_targets"] = [t for t, _ in heat]
                    info["keypoint_valid"] = [v for _, v in heat]
        finally:
            self.train(was_training)
        return detached_to_cpu(info)

    def segment(self, features, detections) -> list[dict[str, torch.Tensor]]:
        """Add ``masks`` (and ``keypoints``, ``keypoints_scores``) to each image's
        detections (dicts of ``boxes``, ``labels``, ``scores``)."""
        boxes = [d["boxes"] for d in detections]
        h, w = self.image_size
        probs = mask_probabilities(
            self.mask_logits(features, boxes), torch.cat([d["labels"] for d in detections])
        )  # [D, M, M]
        counts = [len(b) for b in boxes]
        kps = None
        if self.num_keypoints:
            kp_logits = self.keypoint_logits(features, boxes).split(counts)
            kps = [heatmaps_to_keypoints(k, b) for k, b in zip(kp_logits, boxes, strict=True)]
        out = []
        for i, (d, p) in enumerate(zip(detections, probs.split(counts), strict=True)):
            pasted = paste_masks_in_image(p.float(), d["boxes"], (h, w), mode=self.paste_mode)
            d = {**d, "masks": pasted[:, None]}  # [D, 1, H, W], torchvision's layout
            if kps is not None:
                d["keypoints"], d["keypoints_scores"] = kps[i]
            out.append(d)
        return out
