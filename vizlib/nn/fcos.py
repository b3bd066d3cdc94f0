"""FCOS, the fully convolutional one-stage detector (Tian et al., 2019), small enough for the scenes.

FCOS has no anchor boxes. Every *location* of every level of a feature pyramid is a
point ``(x, y)`` in the image (:func:`fcos_points`), and a location that falls inside an
object regresses the four distances from itself to the object's sides,
``(l, t, r, b) = (x - x1, y - y1, x2 - x, y2 - y)`` (:func:`vizlib.boxes.encode_ltrb`).
Which locations train on which object (:func:`assign_fcos_targets`):

* **inside**: the location lies strictly inside the box (``min(l, t, r, b) > 0``);
* **centre sampling**: and within ``radius x stride`` of the box's centre (L-infinity
  distance; torchvision's ``center_sampling_radius = 1.5``), so that the border of a big
  box, which often sees background, does not train as the object;
* **size range**: and the largest of its four distances ``m = max(l, t, r, b)`` lies in
  its level's range ``(low, high)`` (strict at both ends, as torchvision): each level
  answers for the objects of its size, fine levels for small ones
  (:func:`fcos_size_ranges`: the paper's ``(4 stride, 8 stride)``, the finest level from
  0, the coarsest to infinity);
* a location that several objects claim takes the one of **smallest area**.

Each location predicts ``C`` class scores (a sigmoid each, focal loss: no background
class), 4 distances (``relu``, in units of its level's stride, as torchvision's
``BoxLinearCoder(normalize_by_size=True)``) and one **centre-ness** logit, trained
towards ``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))``
(:func:`vizlib.losses.fcos_centerness_target`): 1 at the box's centre, 0 at its border.
At test time the score of a location is ``sqrt(sigmoid(class) * sigmoid(centre-ness))``,
so that boxes predicted from far off an object's centre (often poor) rank low in NMS.

The loss (:func:`fcos_loss`): focal loss over every location and class, GIoU loss
(:func:`giou_loss`) of the decoded boxes of the positives, and binary cross-entropy of the
centre-ness of the positives, each divided by the number of positives.

The head is **shared across levels** (:class:`FCOSHead`): the same convolutions run on
every pyramid level, since the size ranges make the regression targets, divided by the
stride, about the same on every level.

Everything equals torchvision's ``FCOS`` (``torchvision.models.detection.fcos``) when its
points (``offset = 0``, the corners of the cells, where torchvision puts them) and size
ranges (:func:`fcos_size_ranges`) are used: the assignment its ``FCOS.compute_loss``,
the loss its ``FCOSHead.compute_loss``, the decoding its ``postprocess_detections``
(tested). Boxes are ``(x1, y1, x2, y2)`` pixels throughout; class labels are the book's
(0 background, objects ``1 .. C``); class score ``c - 1`` is the score of label ``c``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import (
    as_float_tensor,
    as_image_batch,
    check_boxes,
    check_choice,
    check_detection_targets,
    check_fraction,
    check_int_pair,
    check_number,
    check_positive_int,
)
from ..anchors import BACKGROUND
from ..boxes import clip_boxes_to_image, decode_ltrb, encode_ltrb, paired_box_iou
from ..losses import REDUCTIONS, fcos_centerness_target, sigmoid_focal_loss
from ..nms import batched_nms
from .backbone import VGGBackbone
from .fpn import FPNBackbone

__all__ = [
    "FCOS",
    "FCOSHead",
    "FCOSTargets",
    "LOSS_TERMS",
    "SCENE_SIZE_RANGES",
    "fcos_points",
    "fcos_size_ranges",
    "assign_fcos_targets",
    "encode_fcos_targets",
    "giou_loss",
    "fcos_loss",
    "fcos_postprocess",
]

#: The terms :func:`fcos_loss` returns (torchvision's names): focal loss of the classes,
#: GIoU loss of the positives' boxes, centre-ness cross-entropy of the positives.
LOSS_TERMS = ("classification", "bbox_regression", "bbox_ctrness")

#: The size range of each level of the scenes' FCOS (strides 8 and 16): locations whose
#: ``m = max(l, t, r, b)`` is under 32 pixels train the stride-8 level, the others the
#: stride-16 level. The paper's rule ``(4 stride, 8 stride)`` would put every object of a
#: 64-pixel scene (``m`` below 64) on the finest level and leave the other empty; a split
#: at 16 pixels sends the off-centre locations of medium objects to the coarse level and
#: leaves some objects without any positive (the FCOS chapter measures both).
SCENE_SIZE_RANGES = ((0.0, 32.0), (32.0, math.inf))


def fcos_points(feature_sizes, strides, offset: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """The locations of every level, level by level, rows first: ``((j + offset) s, (i + offset) s)``.

    The paper maps cell ``(i, j)`` of a level of stride ``s`` to ``(floor(s / 2) + j s,
    floor(s / 2) + i s)``, the middle of the cell (``offset = 0.5`` for even strides);
    torchvision's ``FCOS`` uses the centres of its ``AnchorGenerator``'s boxes,
    ``(j s, i s)``, the cell's corner (``offset = 0``).

    Args:
        feature_sizes (list[tuple[int, int]]): ``(H_k, W_k)`` of each level.
        strides (list[int]): the stride of each level, in pixels.
        offset (float): in [0, 1], where in its cell a location sits.

    Returns:
        tuple: ``points`` (Tensor[L, 2], ``(x, y)`` pixels, ``L = sum_k H_k W_k``) and
        ``point_strides`` (Tensor[L], the stride of each location's level).
    """
    if not isinstance(feature_sizes, (list, tuple)) or not feature_sizes:
        raise ValueError(f"feature_sizes must be a non-empty list of (H, W), got {feature_sizes!r}")
    if not isinstance(strides, (list, tuple)) or len(strides) != len(feature_sizes):
        raise ValueError(
            f"strides must hold one stride per level ({len(feature_sizes)}), got {strides!r}"
        )
    offset = check_fraction("offset", offset)
    points, point_strides = [], []
    for size, s in zip(feature_sizes, strides, strict=True):
        h, w = check_int_pair("feature_sizes", size)
        s = check_positive_int("strides", s)
        ys, xs = torch.meshgrid(
            (torch.arange(h, dtype=torch.float32) + offset) * s,
            (torch.arange(w, dtype=torch.float32) + offset) * s,
            indexing="ij",
        )
        points.append(torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1))
        point_strides.append(torch.full((h * w,), float(s)))
    return torch.cat(points), torch.cat(point_strides)


def fcos_size_ranges(strides, low: float = 4.0, high: float = 8.0) -> list[tuple[float, float]]:
    """torchvision's size ranges: ``(low s, high s)`` per level, the finest from 0, the last to inf.

    With the paper's levels P3-P7 (strides 8 to 128) and ``low, high = 4, 8`` this is its
    ``m_2 .. m_7 = 0, 64, 128, 256, 512, inf``.

    Args:
        strides (list[int]): the levels' strides, finest first.
        low, high (float): multiples of the stride, ``0 <= low < high``.

    Returns:
        list[tuple[float, float]]: ``(low, high)`` in pixels per level.
    """
    if not isinstance(strides, (list, tuple)) or not strides:
        raise ValueError(f"strides must be a non-empty list of strides, got {strides!r}")
    strides = [check_positive_int("strides", s) for s in strides]
    low = check_number("low", low, low=0)
    high = check_number("high", high, low=0, strict=True)
    if high <= low:
        raise ValueError(f"high ({high}) must be > low ({low})")
    ranges = [(low * s, high * s) for s in strides]
    ranges[0] = (0.0, ranges[0][1])
    ranges[-1] = (ranges[-1][0], math.inf)
    return ranges


def _check_ranges(size_ranges, count: int) -> list[tuple[float, float]]:
    """One ``(low, high)`` pair per level (specific to FCOS: ``0 <= low < high``, high may be inf)."""
    if not isinstance(size_ranges, (list, tuple)) or len(size_ranges) != count:
        raise ValueError(
            f"size_ranges must hold one (low, high) per level ({count}), got {size_ranges!r}"
        )
    out = []
    for k, r in enumerate(size_ranges):
        if not isinstance(r, (list, tuple)) or len(r) != 2:
            raise ValueError(f"size_ranges[{k}] must be a pair (low, high), got {r!r}")
        low, high = float(r[0]), float(r[1])
        if math.isnan(low) or math.isnan(high) or low < 0 or high <= low:
            raise ValueError(f"size_ranges[{k}] must satisfy 0 <= low < high, got {r!r}")
        out.append((low, high))
    return out


class FCOSTargets(NamedTuple):
    """What FCOS trains each location towards (one image: ``[L]``; a batch: ``[N, L]``).

    Attributes:
        matched (Tensor[..., L] int64): the index of the location's object in its image,
            or :data:`vizlib.anchors.BACKGROUND`.
        labels (Tensor[..., L] int64): the object's class, 0 for background.
        boxes (Tensor[..., L, 4]): the object's box (xyxy pixels); zeros for background.
        ltrb (Tensor[..., L, 4]): distances from the location to the box's sides, pixels;
            zeros for background.
        centerness (Tensor[..., L]): the centre-ness target; 0 for background.
    """

    matched: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    ltrb: torch.Tensor
    centerness: torch.Tensor


def _point_levels(points, point_strides, point_ranges):
    p = as_float_tensor("points", points)
    if p.dim() != 2 or p.shape[1] != 2:
        raise ValueError(f"points must have shape [L, 2] (x, y), got {tuple(p.shape)}")
    s = as_float_tensor("point_strides", point_strides)
    if s.shape != (len(p),) or bool((s <= 0).any()):
        raise ValueError(
            f"point_strides must be [L] = [{len(p)}] positive strides, got {tuple(s.shape)}"
        )
    r = torch.as_tensor(point_ranges, dtype=torch.float32)  # high may be inf: not as_float_tensor
    if r.shape != (len(p), 2):
        raise ValueError(
            f"point_ranges must be [L, 2] = [{len(p)}, 2] (low, high), got {tuple(r.shape)}"
        )
    if bool(torch.isnan(r).any()) or bool((r[:, 1] <= r[:, 0]).any()):
        raise ValueError("point_ranges must have low < high at every location, without NaN")
    return p, s, r.to(p)


def assign_fcos_targets(
    boxes, labels, points, point_strides, point_ranges, center_radius: float | None = 1.5
) -> FCOSTargets:
    """FCOS's assignment of one image's objects to the locations (see the module docstring).

    A location is a positive of object ``j`` when it lies strictly inside box ``j``, within
    ``center_radius x stride`` of its centre (L-infinity; ``None``: no centre sampling), and
    ``low < max(l, t, r, b) < high`` for its level's range; of several such objects it
    takes the smallest (by area). Equals the matching of torchvision's
    ``FCOS.compute_loss``.

    Args:
        boxes (Tensor[M, 4]): the objects, xyxy pixels (``M`` may be 0).
        labels (Tensor[M] int64): their classes, >= 1.
        points (Tensor[L, 2]): the locations (:func:`fcos_points`), ``(x, y)`` pixels.
        point_strides (Tensor[L]): each location's stride.
        point_ranges (Tensor[L, 2]): each location's size range ``(low, high)`` in pixels
            (``inf`` allowed for ``high``).
        center_radius (float or None): centre sampling radius in strides, > 0.

    Returns:
        FCOSTargets: fields of shape ``[L]`` (``[L, 4]`` for boxes and ltrb).
    """
    p, s, r = _point_levels(points, point_strides, point_ranges)
    g = check_boxes("boxes", boxes).to(p)
    lab = torch.as_tensor(labels)
    if lab.shape != (len(g),):
        raise ValueError(f"labels must have shape [M] = [{len(g)}], got {tuple(lab.shape)}")
    if len(lab) and int(lab.min()) < 1:
        raise ValueError("labels must be >= 1 (0 is the background)")
    if center_radius is not None:
        center_radius = check_number("center_radius", center_radius, low=0, strict=True)
    n = len(p)
    matched = torch.full((n,), BACKGROUND, dtype=torch.int64, device=p.device)
    if len(g):
        centres = (g[:, :2] + g[:, 2:]) / 2  # [M, 2]
        x, y = p[:, 0:1], p[:, 1:2]  # [L, 1]
        ltrb = torch.stack([x - g[:, 0], y - g[:, 1], g[:, 2] - x, g[:, 3] - y], dim=2)  # [L, M, 4]
        ok = ltrb.min(dim=2).values > 0  # inside
        if center_radius is not None:
            far = (p[:, None, :] - centres[None, :, :]).abs().max(dim=2).values  # [L, M]
            ok &= far < center_radius * s[:, None]
        m = ltrb.max(dim=2).values  # [L, M]
        ok &= (m > r[:, 0:1]) & (m < r[:, 1:2])
        area = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])  # [M]
        # the smallest object: the largest (1e8 - area) among the allowed ones, as torchvision
        score = ok.to(torch.float32) * (1e8 - area.to(torch.float32))[None, :]
        best, idx = score.max(dim=1)
        matched = torch.where(best < 1e-5, torch.full_like(idx, BACKGROUND), idx)
    pos = matched != BACKGROUND
    out_labels = torch.zeros(n, dtype=torch.int64, device=p.device)
    out_boxes = torch.zeros(n, 4, dtype=p.dtype, device=p.device)
    out_ltrb = torch.zeros(n, 4, dtype=p.dtype, device=p.device)
    out_ctr = torch.zeros(n, dtype=p.dtype, device=p.device)
    if bool(pos.any()):
        out_labels[pos] = lab.to(p.device)[matched[pos]].long()
        out_boxes[pos] = g[matched[pos]]
        out_ltrb[pos] = encode_ltrb(p[pos], g[matched[pos]]).to(p.dtype)
        out_ctr[pos] = fcos_centerness_target(out_ltrb[pos]).to(p.dtype)
    return FCOSTargets(matched, out_labels, out_boxes, out_ltrb, out_ctr)


def encode_fcos_targets(
    targets, points, point_strides, point_ranges, num_classes: int, center_radius=1.5
) -> FCOSTargets:
    """:func:`assign_fcos_targets` for every image of a batch, stacked.

    Args:
        targets (list[dict]): per image ``boxes`` (Tensor[M, 4] xyxy pixels, ``M`` may be
            0) and ``labels`` (Tensor[M] int64 in ``[1, num_classes]``).
        points, point_strides, point_ranges: as :func:`assign_fcos_targets`.
        num_classes (int): ``C``.
        center_radius (float or None): see :func:`assign_fcos_targets`.

    Returns:
        FCOSTargets: fields ``[N, L]`` (``[N, L, 4]``).
    """
    c = check_positive_int("num_classes", num_classes)
    if not isinstance(targets, (list, tuple)):
        raise ValueError(
            f"targets must be a list of dicts (one per image), got {type(targets).__name__}"
        )
    gt_boxes, gt_labels = check_detection_targets(targets, len(targets), c)
    p, s, r = _point_levels(points, point_strides, point_ranges)
    per_image = [
        assign_fcos_targets(b, lab, p, s, r, center_radius)
        for b, lab in zip(gt_boxes, gt_labels, strict=True)
    ]
    if not per_image:
        n = len(p)
        return FCOSTargets(
            torch.zeros(0, n, dtype=torch.int64),
            torch.zeros(0, n, dtype=torch.int64),
            torch.zeros(0, n, 4),
            torch.zeros(0, n, 4),
            torch.zeros(0, n),
        )
    return FCOSTargets(*(torch.stack(field) for field in zip(*per_image, strict=True)))


def giou_loss(boxes1, boxes2, reduction: str = "none") -> torch.Tensor:
    """``1 - GIoU`` of boxes in pairs (Rezatofighi et al., 2019): FCOS's box loss.

    GIoU is the IoU minus the share of the smallest enclosing box that neither box
    covers; unlike ``1 - IoU`` it still has a gradient when the boxes do not overlap.
    Equals ``torchvision.ops.generalized_box_iou_loss`` (its ``eps`` aside).

    Args:
        boxes1, boxes2 (Tensor[N, 4]): ``(x1, y1, x2, y2)``, ``boxes1[i]`` with ``boxes2[i]``.
        reduction (str): ``'none'`` | ``'mean'`` | ``'sum'``.

    Returns:
        Tensor[N] (``'none'``) or a scalar: the loss, in [0, 2].
    """
    a = check_boxes("boxes1", boxes1)
    b = check_boxes("boxes2", boxes2)
    if a.shape != b.shape:
        raise ValueError(
            f"boxes1 and boxes2 must be pairs [N, 4], got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    reduction = check_choice("reduction", reduction, REDUCTIONS)
    a, b = a.to(torch.promote_types(a.dtype, b.dtype)), b.to(torch.promote_types(a.dtype, b.dtype))
    iou = paired_box_iou(a, b)  # [N]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    inter_wh = (torch.min(a[:, 2:], b[:, 2:]) - torch.max(a[:, :2], b[:, :2])).clamp(min=0)
    union = area_a + area_b - inter_wh[:, 0] * inter_wh[:, 1]
    enclose_wh = torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])
    enclose = enclose_wh[:, 0] * enclose_wh[:, 1]
    penalty = torch.where(
        enclose > 0, (enclose - union) / enclose.clamp(min=1e-12), torch.zeros_like(enclose)
    )
    loss = 1 - (iou - penalty)
    if reduction == "mean":
        return loss.mean() if loss.numel() else loss.sum()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_outputs(cls_logits, box_regression, centerness):
    logits = as_float_tensor("cls_logits", cls_logits)
    if logits.dim() != 3:
        raise ValueError(f"cls_logits must have shape [N, L, C], got {tuple(logits.shape)}")
    reg = as_float_tensor("box_regression", box_regression)
    if reg.shape != (*logits.shape[:2], 4):
        raise ValueError(
            f"box_regression must have shape [N, L, 4] = {(*logits.shape[:2], 4)}, got {tuple(reg.shape)}"
        )
    ctr = as_float_tensor("centerness", centerness)
    if ctr.shape != logits.shape[:2]:
        raise ValueError(
            f"centerness must have shape [N, L] = {tuple(logits.shape[:2])}, got {tuple(ctr.shape)}"
        )
    return logits, reg, ctr


def fcos_loss(
    cls_logits,
    box_regression,
    centerness,
    targets: FCOSTargets,
    points,
    point_strides,
    use_centerness: bool = True,
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
) -> dict[str, torch.Tensor]:
    """FCOS's loss in its terms (:data:`LOSS_TERMS`), each divided by the positives ``P`` (>= 1).

    ::

        classification = sum over locations and classes of focal(logit, one-hot) / P
        bbox_regression = sum over positives of (1 - GIoU(decoded box, object)) / P
        bbox_ctrness   = sum over positives of BCE(centre-ness logit, target) / P

    The boxes are decoded from ``box_regression`` times the location's stride
    (:func:`vizlib.boxes.decode_ltrb`). Equals torchvision's ``FCOSHead.compute_loss``.

    Args:
        cls_logits (Tensor[N, L, C]): class logits (no background column).
        box_regression (Tensor[N, L, 4]): predicted ``(l, t, r, b) / stride``, >= 0.
        centerness (Tensor[N, L]): centre-ness logits.
        targets (FCOSTargets): from :func:`encode_fcos_targets`, ``[N, L]``.
        points (Tensor[L, 2]), point_strides (Tensor[L]): the locations.
        use_centerness (bool): with False, ``bbox_ctrness`` is left out of the dict.
        focal_alpha, focal_gamma (float): the focal loss's (RetinaNet's 0.25 and 2).

    Returns:
        dict[str, Tensor]: the scalar terms.
    """
    logits, reg, ctr = _check_outputs(cls_logits, box_regression, centerness)
    if not isinstance(targets, FCOSTargets):
        raise ValueError(
            f"targets must be FCOSTargets (from encode_fcos_targets), got {type(targets).__name__}"
        )
    if targets.labels.shape != logits.shape[:2]:
        raise ValueError(
            f"targets are for {tuple(targets.labels.shape)} locations, the head gave {tuple(logits.shape[:2])}"
        )
    p = as_float_tensor("points", points).to(reg)
    s = as_float_tensor("point_strides", point_strides).to(reg)
    if p.shape != (logits.shape[1], 2) or s.shape != (logits.shape[1],):
        raise ValueError(f"points must be [L, 2] and point_strides [L], L = {logits.shape[1]}")
    if targets.labels.numel() and int(targets.labels.max()) > logits.shape[-1]:
        raise ValueError(f"a target label exceeds the {logits.shape[-1]} classes of cls_logits")
    labels = targets.labels.to(logits.device)
    positive = labels > 0  # [N, L]
    num_pos = max(1, int(positive.sum()))
    one_hot = torch.zeros_like(logits)
    one_hot[positive, labels[positive] - 1] = 1.0
    cls = sigmoid_focal_loss(logits, one_hot, focal_alpha, focal_gamma, reduction="sum")
    terms = {"classification": cls / num_pos}
    if bool(positive.any()):
        where = positive.nonzero()[:, 1]  # [P]: the location of each positive
        pred = decode_ltrb(p[where], reg[positive] * s[where, None])
        box = giou_loss(pred, targets.boxes.to(reg)[positive], reduction="sum")
        ctr_loss = F.binary_cross_entropy_with_logits(
            ctr[positive], targets.centerness.to(ctr)[positive], reduction="sum"
        )
    else:
        box = reg.sum() * 0.0
        ctr_loss = ctr.sum() * 0.0
    terms["bbox_regression"] = box / num_pos
    if use_centerness:
        terms["bbox_ctrness"] = ctr_loss / num_pos
    return terms


def fcos_postprocess(
    cls_logits,
    box_regression,
    centerness,
    points,
    point_strides,
    level_sizes,
    image_size,
    score_threshold: float = 0.05,
    nms_threshold: float = 0.6,
    max_detections: int = 100,
    topk_candidates: int = 1000,
    use_centerness: bool = True,
) -> list[dict]:
    """Detections from FCOS's output, as torchvision's ``FCOS.postprocess_detections``.

    Per level: the score of each (location, class) is ``sqrt(sigmoid(logit) *
    sigmoid(centre-ness))`` (``use_centerness=False``: ``sigmoid(logit)``); those above
    ``score_threshold`` (strictly), at most ``topk_candidates`` (the best), decoded
    (``box_regression x stride`` from the location) and clipped. Then NMS per class
    over all levels and the best ``max_detections``.

    Args:
        cls_logits (Tensor[N, L, C]), box_regression (Tensor[N, L, 4]),
            centerness (Tensor[N, L]): the head's output.
        points (Tensor[L, 2]), point_strides (Tensor[L]): the locations.
        level_sizes (list[int]): locations per level (they sum to ``L``).
        image_size (tuple[int, int]): ``(height, width)``, to clip to.
        score_threshold, nms_threshold (float): in [0, 1].
        max_detections, topk_candidates (int): >= 1.
        use_centerness (bool): multiply in the centre-ness (the paper) or not.

    Returns:
        list[dict]: per image ``boxes`` (Tensor[K, 4] xyxy), ``scores`` (Tensor[K]),
        ``labels`` (Tensor[K] int64 in ``1 .. C``), best first.
    """
    logits, reg, ctr = _check_outputs(cls_logits, box_regression, centerness)
    p = as_float_tensor("points", points).to(reg)
    s = as_float_tensor("point_strides", point_strides).to(reg)
    if p.shape != (logits.shape[1], 2) or s.shape != (logits.shape[1],):
        raise ValueError(f"points must be [L, 2] and point_strides [L], L = {logits.shape[1]}")
    if not isinstance(level_sizes, (list, tuple)) or sum(level_sizes) != logits.shape[1]:
        raise ValueError(f"level_sizes must be a list of counts summing to L = {logits.shape[1]}")
    size = check_int_pair("image_size", image_size)
    score_threshold = check_fraction("score_threshold", score_threshold)
    nms_threshold = check_fraction("nms_threshold", nms_threshold)
    max_detections = check_positive_int("max_detections", max_detections)
    topk_candidates = check_positive_int("topk_candidates", topk_candidates)
    num_classes = logits.shape[-1]
    scores_all = torch.sigmoid(logits.detach().float())
    if use_centerness:
        scores_all = torch.sqrt(scores_all * torch.sigmoid(ctr.detach().float())[..., None])
    results = []
    for i in range(len(logits)):
        all_boxes, all_scores, all_labels = [], [], []
        start = 0
        for count in level_sizes:
            sl = slice(start, start + int(count))
            start += int(count)
            flat = scores_all[i, sl].flatten()  # [L_k * C]
            keep = torch.where(flat > score_threshold)[0]
            sc, order = flat[keep].topk(min(topk_candidates, len(keep)))
            idx = keep[order]
            loc = idx // num_classes
            where = loc + sl.start
            ltrb = reg[i, where].detach().float() * s[where, None].float()
            boxes = clip_boxes_to_image(decode_ltrb(p[where].float(), ltrb), size)
            all_boxes.append(boxes)
            all_scores.append(sc)
            all_labels.append(idx % num_classes + 1)
        b, sc, lab = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_labels)
        kept = batched_nms(b, sc, lab, nms_threshold)[:max_detections]
        results.append({"boxes": b[kept], "scores": sc[kept], "labels": lab[kept]})
    return results


def _tower(channels: int, convs: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(convs):
        layers += [
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(32, channels),
            nn.ReLU(),
        ]
    return nn.Sequential(*layers)


class _Branch(nn.Module):
    """A container whose attribute names mirror torchvision's FCOS head branches."""


class FCOSHead(nn.Module):
    """FCOS's head, shared by every level: two towers of 3x3 convolutions, then three outputs.

    As torchvision's ``FCOSHead`` (same submodule names, so its weights load): a
    classification tower (``head_convs`` x [conv 3x3, GroupNorm(32), ReLU]) and its
    ``cls_logits`` (``C`` channels, bias ``-log((1 - prior) / prior)`` so that every
    score starts at ``prior``: the focal loss's initialisation), and a regression tower
    with ``bbox_reg`` (4 channels, then ReLU) and ``bbox_ctrness`` (1 channel) on it.
    Weights start at N(0, 0.01), biases at 0.

    Args:
        channels (int): channels of every level (a multiple of 32).
        num_classes (int): ``C``, without background.
        head_convs (int): convolutions per tower.
        prior (float): the initial class probability, in (0, 1).

    Shape:
        ``forward(levels)`` takes a list of ``[N, channels, H_k, W_k]`` and returns
        ``cls_logits [N, L, C]``, ``box_regression [N, L, 4]`` (>= 0, in strides) and
        ``centerness [N, L]``, locations level by level, rows first.
    """

    def __init__(self, channels: int, num_classes: int, head_convs: int = 2, prior: float = 0.01):
        super().__init__()
        channels = check_positive_int("channels", channels)
        if channels % 32:
            raise ValueError(f"channels must be a multiple of 32 (GroupNorm(32)), got {channels}")
        self.num_classes = check_positive_int("num_classes", num_classes)
        head_convs = check_positive_int("head_convs", head_convs, allow_zero=True)
        prior = check_number("prior", prior, low=0, strict=True)
        if prior >= 1:
            raise ValueError(f"prior must be in (0, 1), got {prior}")
        self.classification_head = _Branch()
        self.classification_head.conv = _tower(channels, head_convs)
        self.classification_head.cls_logits = nn.Conv2d(channels, self.num_classes, 3, padding=1)
        self.regression_head = _Branch()
        self.regression_head.conv = _tower(channels, head_convs)
        self.regression_head.bbox_reg = nn.Conv2d(channels, 4, 3, padding=1)
        self.regression_head.bbox_ctrness = nn.Conv2d(channels, 1, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.classification_head.cls_logits.bias, -math.log((1 - prior) / prior))

    def forward(self, levels) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not isinstance(levels, (list, tuple)) or not levels:
            raise ValueError("levels must be a non-empty list of feature maps [N, C, H, W]")
        cls, reg, ctr = [], [], []
        for f in levels:
            n = f.shape[0]
            c = self.classification_head.cls_logits(self.classification_head.conv(f))
            t = self.regression_head.conv(f)
            r = F.relu(self.regression_head.bbox_reg(t))
            q = self.regression_head.bbox_ctrness(t)
            # [N, K, H, W] -> [N, H, W, K] -> [N, H * W, K]: rows first, as the points
            cls.append(c.permute(0, 2, 3, 1).reshape(n, -1, self.num_classes))
            reg.append(r.permute(0, 2, 3, 1).reshape(n, -1, 4))
            ctr.append(q.permute(0, 2, 3, 1).reshape(n, -1))
        return torch.cat(cls, dim=1), torch.cat(reg, dim=1), torch.cat(ctr, dim=1)


class FCOS(nn.Module):
    """A small FCOS: a VGG backbone with an FPN (strides 8 and 16), one shared head.

    The paper's FCOS reads five levels P3-P7 (strides 8 to 128) of a ResNet-50 FPN with
    size ranges 0-64-128-256-512-inf pixels. The scenes are 64 pixels wide with objects
    of about 7 to 42 pixels, so two levels suffice, strides 8 (8 x 8 locations) and 16
    (4 x 4), with the ranges :data:`SCENE_SIZE_RANGES`. The default backbone is the YOLO
    chapter's FCOS's: ``VGGBackbone((16, 32, 64, 64), convs_per_stage=1)`` with a 64-channel
    :class:`~vizlib.nn.fpn.FPN` on stages 2 and 3.

    Called like torchvision's detectors: in train mode ``model(images, targets)`` returns
    the dict of loss terms (:func:`fcos_loss`), in eval mode ``model(images)`` one dict of
    ``boxes``, ``scores``, ``labels`` per image (:func:`fcos_postprocess`). :meth:`raw`
    gives the head's output, :meth:`points` the locations it refers to.

    Args:
        num_classes (int): ``C``, object classes (without background).
        backbone (FPNBackbone, optional): its levels' strides set the locations.
        size_ranges (list of (low, high)): per level, in pixels; default
            :data:`SCENE_SIZE_RANGES` for two levels, else :func:`fcos_size_ranges`.
        center_radius (float or None): centre sampling radius in strides.
        offset (float): where a location sits in its cell (:func:`fcos_points`).
        head_convs (int): convolutions per head tower (torchvision: 4).
        train_centerness (bool): train the centre-ness branch (its loss term).
        score_with_centerness (bool): multiply the scores by the centre-ness at test time.
        score_threshold, nms_threshold, max_detections, topk_candidates: see
            :func:`fcos_postprocess`.
        centerness_target (callable, optional): ``f(ltrb [P, 4]) -> [P]`` replaces
            :func:`vizlib.losses.fcos_centerness_target` in training (an exercise's).
    """

    def __init__(
        self,
        num_classes: int,
        backbone: FPNBackbone | None = None,
        size_ranges=None,
        center_radius: float | None = 1.5,
        offset: float = 0.5,
        head_convs: int = 2,
        train_centerness: bool = True,
        score_with_centerness: bool = True,
        score_threshold: float = 0.05,
        nms_threshold: float = 0.6,
        max_detections: int = 100,
        topk_candidates: int = 1000,
        centerness_target=None,
    ):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        if backbone is None:
            backbone = FPNBackbone(
                VGGBackbone((16, 32, 64, 64), convs_per_stage=1), levels=(2, 3), out_channels=64
            )
        if not isinstance(backbone, FPNBackbone):
            raise ValueError(f"backbone must be an FPNBackbone, got {type(backbone).__name__}")
        self.backbone = backbone
        self.strides = list(backbone.strides)
        if size_ranges is None:
            size_ranges = (
                SCENE_SIZE_RANGES if len(self.strides) == 2 else fcos_size_ranges(self.strides)
            )
        self.size_ranges = _check_ranges(size_ranges, len(self.strides))
        if center_radius is not None:
            center_radius = check_number("center_radius", center_radius, low=0, strict=True)
        self.center_radius = center_radius
        self.offset = check_fraction("offset", offset)
        self.head = FCOSHead(backbone.out_channels, self.num_classes, head_convs)
        for name, flag in (
            ("train_centerness", train_centerness),
            ("score_with_centerness", score_with_centerness),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be a bool, got {flag!r}")
        self.train_centerness = train_centerness
        self.score_with_centerness = score_with_centerness
        self.score_threshold = check_fraction("score_threshold", score_threshold)
        self.nms_threshold = check_fraction("nms_threshold", nms_threshold)
        self.max_detections = check_positive_int("max_detections", max_detections)
        self.topk_candidates = check_positive_int("topk_candidates", topk_candidates)
        if centerness_target is not None and not callable(centerness_target):
            raise ValueError(
                f"centerness_target must be a function ltrb -> [P], got {centerness_target!r}"
            )
        self.centerness_target = centerness_target

    def feature_sizes(self, image_size) -> list[tuple[int, int]]:
        """``(H_k, W_k)`` of each level for an image of ``(height, width)``."""
        h, w = check_int_pair("image_size", image_size)
        return [(h // s, w // s) for s in self.strides]

    def points(self, image_size, device=None):
        """``(points [L, 2], point_strides [L], point_ranges [L, 2], level_sizes)`` for ``(height, width)``."""
        sizes = self.feature_sizes(image_size)
        pts, strides = fcos_points(sizes, self.strides, self.offset)
        ranges = torch.cat(
            [
                torch.tensor([r] * (h * w), dtype=torch.float32).reshape(-1, 2)
                for r, (h, w) in zip(self.size_ranges, sizes, strict=True)
            ]
        )
        return pts.to(device), strides.to(device), ranges.to(device), [h * w for h, w in sizes]

    def raw(self, images) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The head's output ``cls_logits [N, L, C]``, ``box_regression [N, L, 4]``,
        ``centerness [N, L]``, in the order of :meth:`points`."""
        return self.head(self.backbone(as_image_batch(images)))

    def encode(self, targets, image_size, device=None) -> FCOSTargets:
        """The batch's targets (:func:`encode_fcos_targets`), with :attr:`centerness_target`."""
        pts, strides, ranges, _ = self.points(image_size, device)
        enc = encode_fcos_targets(
            targets, pts, strides, ranges, self.num_classes, self.center_radius
        )
        if self.centerness_target is not None and bool((enc.labels > 0).any()):
            ctr = enc.centerness.clone()
            pos = enc.labels > 0
            ctr[pos] = torch.as_tensor(self.centerness_target(enc.ltrb[pos])).to(ctr)
            enc = enc._replace(centerness=ctr)
        return enc

    def forward(self, images, targets=None):
        x = as_image_batch(images)
        size = tuple(x.shape[-2:])
        logits, reg, ctr = self.raw(x)
        pts, strides, _, level_sizes = self.points(size, x.device)
        if self.training:
            if targets is None:
                raise ValueError(
                    "in train mode FCOS needs targets (a list of dicts with boxes, labels)"
                )
            enc = self.encode(targets, size, x.device)
            return fcos_loss(logits, reg, ctr, enc, pts, strides, self.train_centerness)
        return fcos_postprocess(
            logits,
            reg,
            ctr,
            pts,
            strides,
            level_sizes,
            size,
            self.score_threshold,
            self.nms_threshold,
            self.max_detections,
            self.topk_candidates,
            self.score_with_centerness,
        )
