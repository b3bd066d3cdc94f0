"""Faster R-CNN (Ren et al., 2015) with a feature pyramid (Lin et al., 2017), piece by piece.

A two-stage detector. Read top to bottom, this module is the model in the order it runs:

1. **Backbone + FPN** (:class:`~vizlib.nn.fpn.FPNBackbone`): feature maps at strides
   4, 8, 16 (one map at stride 16 without the FPN).
2. **Region proposal network**: a small head (:class:`RPNHead`) shared by every level
   scores each anchor "object or not" and regresses a correction of it.
   :func:`rpn_targets` labels the anchors (IoU >= 0.7 object, < 0.3 background, plus
   each object's best anchor), :func:`rpn_loss` trains on a balanced sample of them, and
   :func:`propose` keeps the best corrected anchors after NMS: the *proposals*.
3. **RoI heads** (Girshick, Fast R-CNN, 2015): :func:`multiscale_roi_align` crops a
   fixed ``7 x 7`` feature grid for every proposal from the pyramid level that suits its
   size (:func:`~vizlib.nn.fpn.fpn_levels`), :class:`BoxHead` (two fully connected layers)
   and :class:`BoxPredictor` classify it and refine its box once more, per class.
   :func:`roi_head_targets` labels a sample of the proposals (IoU >= 0.5 with an object),
   :func:`fast_rcnn_loss` trains them, :func:`postprocess_detections` turns the scores
   into detections (per-class NMS).
4. :class:`FasterRCNN` ties them, and is called like torchvision's detectors: in train
   mode ``model(images, targets)`` returns the four losses under torchvision's names, in
   eval mode ``model(images)`` one dict of ``boxes``, ``labels``, ``scores`` per image.
   :meth:`FasterRCNN.inspect` returns every intermediate a figure may want.

Each piece agrees with its counterpart in ``torchvision.models.detection`` (tests).
The model calls ``torchvision.ops.batched_nms`` and ``torchvision.ops.roi_align`` for speed,
except when it trains on a CPU: there it calls :func:`vizlib.roi.roi_align_matrices`, the same
numbers with a 5-10 x faster backward (see :func:`multiscale_roi_align`). :mod:`vizlib.roi`
and :mod:`vizlib.nms` are the readable versions of these operations, tested equal to them.

Shapes: ``N`` images, ``K`` anchors per image (all levels, location-major and
anchor-minor within a level, levels finest first, as torchvision), ``P`` proposals,
``R`` sampled regions, ``C`` object classes (label 0 is background, so ``C + 1``
scores).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import (
    as_image_batch,
    check_boxes,
    check_detection_targets,
    check_fraction,
    check_image_size,
    check_int_pair,
    check_labels,
    check_number,
    check_per_image,
    check_positive_int,
    check_positive_numbers,
)
from ..anchors import IGNORE, generate_anchors, grid_anchors, match_anchors, sample_balanced
from ..boxes import box_iou, clip_boxes_to_image, decode_deltas, encode_deltas
from ..losses import smooth_l1_loss
from ..roi import roi_align_matrices
from .backbone import VGGBackbone
from .fpn import FPNBackbone, fpn_levels

__all__ = [
    "RPNHead",
    "flatten_rpn_outputs",
    "rpn_anchors",
    "rpn_targets",
    "rpn_loss",
    "propose",
    "RPNOutput",
    "RegionProposalNetwork",
    "roi_head_targets",
    "multiscale_roi_align",
    "BoxHead",
    "BoxPredictor",
    "fast_rcnn_loss",
    "postprocess_detections",
    "FasterRCNN",
    "LOSS_NAMES",
]

#: The four losses of :class:`FasterRCNN` in train mode, with torchvision's names.
LOSS_NAMES = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg")

# Box-coding weights of the RoI heads (torchvision, Detectron): they scale the second
# stage's small corrections to about unit variance. The RPN uses (1, 1, 1, 1).
ROI_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)

# Smooth L1's switch from quadratic to linear (Detectron, torchvision): small, so the box
# loss is almost L1 but differentiable at 0.
BOX_LOSS_BETA = 1.0 / 9.0


# =========================================================================== the RPN


class RPNHead(nn.Module):
    """The RPN's head: a 3x3 convolution + ReLU, then two sibling 1x1 convolutions.

    The same weights slide over every pyramid level (Lin et al., 2017): a level differs
    only by its anchors' size, so "is this an object of my anchors' size" is one question.

    Args:
        in_channels (int): channels of every level.
        num_anchors (int): ``A``, anchors per location.

    Shape:
        ``forward(features)`` takes a list of maps ``[N, in_channels, H_l, W_l]`` and
        returns two lists: objectness logits ``[N, A, H_l, W_l]`` and deltas
        ``[N, 4 A, H_l, W_l]`` (``(dx, dy, dw, dh)`` of anchor ``a`` in channels
        ``4a .. 4a + 3``).

    Same layers and initialisation (normal, std 0.01) as torchvision's ``RPNHead``.
    """

    def __init__(self, in_channels: int, num_anchors: int):
        super().__init__()
        in_channels = check_positive_int("in_channels", in_channels)
        self.num_anchors = check_positive_int("num_anchors", num_anchors)
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.objectness = nn.Conv2d(in_channels, self.num_anchors, 1)
        self.deltas = nn.Conv2d(in_channels, 4 * self.num_anchors, 1)
        for conv in (self.conv, self.objectness, self.deltas):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, features) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if not isinstance(features, (list, tuple)) or not features:
            raise ValueError("features must be a non-empty list of maps [N, C, H, W]")
        objectness, deltas = [], []
        for f in features:
            t = F.relu(self.conv(f))
            objectness.append(self.objectness(t))  # [N, A, H, W]
            deltas.append(self.deltas(t))  # [N, 4A, H, W]
        return objectness, deltas


def flatten_rpn_outputs(objectness, deltas) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's maps as one row per anchor, in the anchors' order.

    Args:
        objectness (list[Tensor[N, A, H_l, W_l]]): logits per level.
        deltas (list[Tensor[N, 4 A, H_l, W_l]]): deltas per level.

    Returns:
        tuple[Tensor[N, K], Tensor[N, K, 4]]: ``K = sum_l H_l W_l A``, level-major, then
        row, column, anchor (the order of :func:`rpn_anchors`). Same numbers as
        torchvision's ``concat_box_prediction_layers`` (which flattens ``N`` too).
    """
    if not isinstance(objectness, (list, tuple)) or not isinstance(deltas, (list, tuple)):
        raise ValueError("objectness and deltas must be lists of maps, one per level")
    if len(objectness) != len(deltas) or not objectness:
        raise ValueError(
            f"objectness and deltas must have one map per level, got {len(objectness)} "
            f"and {len(deltas)}"
        )
    flat_scores, flat_deltas = [], []
    for o, d in zip(objectness, deltas, strict=True):
        n, a, h, w = o.shape
        if d.shape != (n, 4 * a, h, w):
            raise ValueError(
                f"deltas map {tuple(d.shape)} does not match objectness {tuple(o.shape)}: "
                "expected [N, 4A, H, W]"
            )
        flat_scores.append(o.permute(0, 2, 3, 1).reshape(n, -1))  # [N, H W A]
        d = d.view(n, a, 4, h, w).permute(0, 3, 4, 1, 2)  # [N, H, W, A, 4]
        flat_deltas.append(d.reshape(n, -1, 4))  # [N, H W A, 4]
    return torch.cat(flat_scores, dim=1), torch.cat(flat_deltas, dim=1)


def rpn_anchors(
    feature_sizes, strides, sizes, aspect_ratios, offset: float = 0.0, device=None
) -> tuple[torch.Tensor, list[int]]:
    """Every anchor of an image: ``sizes[l]`` x ``aspect_ratios`` at every location of level l.

    Args:
        feature_sizes (list[tuple[int, int]]): ``(H_l, W_l)`` per level.
        strides (list[int]): the stride of each level.
        sizes (list[sequence of float]): anchor sizes (square root of the area) per level.
        aspect_ratios (sequence of float): ``height / width``, the same at every level.
        offset (float): where the anchors sit in a cell (0: its top-left corner, as
            torchvision's ``AnchorGenerator``).
        device: where to build them.

    Returns:
        tuple[Tensor[K, 4], list[int]]: anchors ``(x1, y1, x2, y2)`` in image pixels, in
        :func:`flatten_rpn_outputs`'s order, and ``H_l W_l A`` per level.
    """
    if not isinstance(feature_sizes, (list, tuple)) or not feature_sizes:
        raise ValueError("feature_sizes must be a non-empty list of (H, W)")
    levels = len(feature_sizes)
    if not isinstance(strides, (list, tuple)) or len(strides) != levels:
        raise ValueError(f"strides must have one stride per level ({levels}), got {strides!r}")
    if not isinstance(sizes, (list, tuple)) or len(sizes) != levels:
        raise ValueError(f"sizes must have one sequence per level ({levels}), got {sizes!r}")
    per_level = []
    for f, s, z in zip(feature_sizes, strides, sizes, strict=True):
        base = generate_anchors(z, aspect_ratios)  # [A, 4], centred at 0
        if device is not None:
            base = base.to(device)
        per_level.append(grid_anchors(check_int_pair("feature_sizes", f), s, base, offset))
    return torch.cat(per_level), [len(a) for a in per_level]


def rpn_targets(
    anchors, gt_boxes, fg_iou: float = 0.7, bg_iou: float = 0.3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label every anchor of one image for the RPN (Ren et al., 2015).

    IoU >= ``fg_iou`` with an object: positive (1); below ``bg_iou`` with every object:
    negative (0); in between: ignored (-1). Each object also claims its best anchor(s)
    even below ``fg_iou`` (:func:`~vizlib.anchors.match_anchors` with low-quality
    matches), so that no object is left without a positive.

    Args:
        anchors (Tensor[K, 4]): anchors ``(x1, y1, x2, y2)``.
        gt_boxes (Tensor[M, 4]): the image's objects ``(x1, y1, x2, y2)``; may be empty.
        fg_iou (float): in [0, 1].
        bg_iou (float): in ``[0, fg_iou]``.

    Returns:
        tuple[Tensor[K], Tensor[K, 4]]: float labels (1, 0 or -1), and each anchor's
        matched object box (zeros where it has none). Same as torchvision's
        ``RegionProposalNetwork.assign_targets_to_anchors``.
    """
    a = check_boxes("anchors", anchors)
    gt = check_boxes("gt_boxes", gt_boxes).to(a.dtype)
    if len(gt) == 0:  # no object: every anchor is background
        return a.new_zeros(len(a)), torch.zeros_like(a)
    matches = match_anchors(box_iou(gt, a), fg_iou, bg_iou, allow_low_quality_matches=True)
    matched_boxes = gt[matches.clamp(min=0)]  # [K, 4]; background rows are dropped below
    labels = (matches >= 0).to(a.dtype)  # [K]: 1 for a matched object, else 0
    labels[matches == IGNORE] = -1.0
    matched_boxes[matches < 0] = 0.0
    return labels, matched_boxes


def _check_rpn_rows(objectness, deltas, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``objectness [N, K]`` and ``deltas [N, K, 4]`` that go together (RPN-specific)."""
    if not isinstance(objectness, torch.Tensor) or objectness.dim() != 2:
        raise ValueError(f"objectness must be a tensor [N, K], got {objectness!r:.60}")
    n, kk = objectness.shape
    if not isinstance(deltas, torch.Tensor) or deltas.shape != (n, kk, 4):
        got = tuple(deltas.shape) if isinstance(deltas, torch.Tensor) else type(deltas).__name__
        raise ValueError(f"deltas must have shape [{n}, {kk}, 4] like objectness, got {got}")
    if k is not None and kk != k:
        raise ValueError(f"objectness has {kk} anchors per image but there are {k} anchors")
    return objectness, deltas


def rpn_loss(
    objectness,
    deltas,
    anchors,
    labels,
    matched_boxes,
    batch_size_per_image: int = 256,
    positive_fraction: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The RPN's two losses on a balanced sample of anchors.

    For each image :func:`~vizlib.anchors.sample_balanced` picks up to
    ``batch_size_per_image`` labelled anchors, at most ``positive_fraction`` of them
    positive. Objectness: binary cross-entropy with logits, averaged over the sample.
    Boxes: smooth L1 (beta 1/9) between the predicted deltas of the positives and the
    deltas that turn their anchor into its object (:func:`~vizlib.boxes.encode_deltas`),
    *summed* and divided by the number sampled (positives and negatives), as
    torchvision: an image with few positives then weighs its box loss less.

    Args:
        objectness (Tensor[N, K]): logits.
        deltas (Tensor[N, K, 4]): predicted ``(dx, dy, dw, dh)``.
        anchors (Tensor[K, 4]): the anchors ``(x1, y1, x2, y2)``, the same for every image.
        labels (Tensor[N, K]): 1 / 0 / -1 per anchor (:func:`rpn_targets`).
        matched_boxes (Tensor[N, K, 4]): each anchor's object box (:func:`rpn_targets`).
        batch_size_per_image (int): anchors sampled per image (paper: 256).
        positive_fraction (float): in [0, 1] (paper: 0.5).

    Returns:
        tuple[Tensor, Tensor]: ``(loss_objectness, loss_rpn_box_reg)``, scalars. Same as
        torchvision's ``RegionProposalNetwork.compute_loss`` (same seed, same sample).
    """
    a = check_boxes("anchors", anchors)
    objectness, deltas = _check_rpn_rows(objectness, deltas, len(a))
    if not isinstance(labels, torch.Tensor) or labels.shape != objectness.shape:
        raise ValueError(f"labels must have shape {tuple(objectness.shape)} like objectness")
    if not isinstance(matched_boxes, torch.Tensor) or matched_boxes.shape != deltas.shape:
        raise ValueError(f"matched_boxes must have shape {tuple(deltas.shape)} like deltas")
    samples = [sample_balanced(lab, batch_size_per_image, positive_fraction) for lab in labels]
    positive = torch.stack([p for p, _ in samples])  # [N, K] bool
    sampled = positive | torch.stack([n for _, n in samples])  # [N, K] bool
    loss_objectness = F.binary_cross_entropy_with_logits(
        objectness[sampled].float(), labels[sampled].float()
    )
    anchor_rows = a.expand(len(objectness), -1, -1)  # [N, K, 4], no copy
    if bool(positive.any()):
        targets = encode_deltas(matched_boxes[positive].float(), anchor_rows[positive].float())
        box_sum = smooth_l1_loss(deltas[positive].float(), targets, BOX_LOSS_BETA, "sum")
    else:  # no object in the batch: zero, but still connected to the graph
        box_sum = deltas.float().sum() * 0.0
    return loss_objectness, box_sum / max(int(sampled.sum()), 1)


def propose(
    objectness,
    deltas,
    anchors,
    num_anchors_per_level,
    image_size,
    pre_nms_top_n: int,
    post_nms_top_n: int,
    nms_thresh: float = 0.7,
    min_size: float = 1e-3,
    score_thresh: float = 0.0,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Proposals: the best corrected anchors of each image, after NMS.

    Per image: the ``pre_nms_top_n`` highest-scoring anchors of *each level* (so that a
    fine level, with many more anchors, cannot crowd out the others), decoded with their
    deltas (:func:`~vizlib.boxes.decode_deltas`, weights 1), clipped to the image; boxes
    narrower or lower than ``min_size`` and scores below ``score_thresh`` dropped; NMS at
    ``nms_thresh`` within each level; the best ``post_nms_top_n`` kept. Nothing here is
    differentiated: the second stage treats proposals as given boxes.

    Args:
        objectness (Tensor[N, K]): logits.
        deltas (Tensor[N, K, 4]): predicted deltas.
        anchors (Tensor[K, 4]): anchors ``(x1, y1, x2, y2)``.
        num_anchors_per_level (list[int]): how many of the ``K`` are on each level.
        image_size (tuple[int, int]): ``(height, width)``, to clip to.
        pre_nms_top_n (int): kept per level before NMS.
        post_nms_top_n (int): kept per image after NMS.
        nms_thresh (float): IoU in [0, 1].
        min_size (float): smallest side kept, >= 0.
        score_thresh (float): lowest objectness probability kept, in [0, 1].

    Returns:
        list[tuple[Tensor[P, 4], Tensor[P]]]: per image, proposals ``(x1, y1, x2, y2)``
        and their objectness probabilities, best first. Same as torchvision's
        ``RegionProposalNetwork.filter_proposals``.
    """
    from torchvision.ops import batched_nms  # C++: the readable one is vizlib.nms

    a = check_boxes("anchors", anchors)
    objectness, deltas = _check_rpn_rows(objectness, deltas, len(a))
    counts = [check_positive_int("num_anchors_per_level", c) for c in num_anchors_per_level]
    if sum(counts) != len(a):
        raise ValueError(f"num_anchors_per_level sums to {sum(counts)}, not {len(a)} anchors")
    size = check_image_size("image_size", image_size)
    pre = check_positive_int("pre_nms_top_n", pre_nms_top_n)
    post = check_positive_int("post_nms_top_n", post_nms_top_n)
    nms_thresh = check_fraction("nms_thresh", nms_thresh)
    min_size = check_number("min_size", min_size, low=0)
    score_thresh = check_fraction("score_thresh", score_thresh)
    # Box arithmetic in float32 even under mixed precision: bfloat16 would round a
    # 64-pixel image's coordinates to a quarter pixel.
    objectness, deltas, a = objectness.detach().float(), deltas.detach().float(), a.float()
    level = torch.repeat_interleave(
        torch.arange(len(counts), device=a.device), torch.tensor(counts, device=a.device)
    )  # [K]: the level of each anchor

    # The best pre_nms_top_n anchors of each level, for every image at once.
    top = torch.cat(
        [
            part.topk(min(pre, part.shape[1]), dim=1).indices + first
            for first, part in zip(_starts(counts), objectness.split(counts, dim=1), strict=True)
        ],
        dim=1,
    )  # [N, T]: indices into the K anchors
    n, t = top.shape
    rows = torch.arange(n, device=top.device)[:, None]  # [N, 1], broadcast against top
    boxes = decode_deltas(deltas[rows, top].reshape(-1, 4), a[top].reshape(-1, 4))  # [N T, 4]
    boxes = clip_boxes_to_image(boxes, size).reshape(n, t, 4)
    probs, lvl = objectness[rows, top].sigmoid(), level[top]  # [N, T] each

    results = []
    for b, p, lv in zip(boxes, probs, lvl, strict=True):  # the images keep different numbers
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        keep = torch.where((w >= min_size) & (h >= min_size) & (p >= score_thresh))[0]
        b, p, lv = b[keep], p[keep], lv[keep]
        keep = batched_nms(b, p, lv, nms_thresh)[:post]  # NMS within each level
        results.append((b[keep], p[keep]))
    return results


def _starts(counts: list[int]) -> list[int]:
    """Index of each level's first anchor."""
    return [sum(counts[:i]) for i in range(len(counts))]


class RPNOutput(NamedTuple):
    """What :meth:`RegionProposalNetwork.predict` computes for a batch.

    Attributes:
        objectness (Tensor[N, K]): logits per anchor.
        deltas (Tensor[N, K, 4]): predicted deltas per anchor.
        anchors (Tensor[K, 4]): the anchors, the same for every image.
        num_anchors_per_level (list[int]): how many of the ``K`` on each level.
        proposals (list[Tensor[P_i, 4]]): per image, best first.
        scores (list[Tensor[P_i]]): objectness probability of each proposal.
    """

    objectness: torch.Tensor
    deltas: torch.Tensor
    anchors: torch.Tensor
    num_anchors_per_level: list
    proposals: list
    scores: list


class RegionProposalNetwork(nn.Module):
    """The first stage: head, anchors, proposals and (with targets) the two RPN losses.

    Args:
        in_channels (int): channels of every level.
        strides (list[int]): stride of each level.
        anchor_sizes (list[sequence of float]): anchor sizes per level.
        aspect_ratios (sequence of float): ``height / width`` of the anchors.
        fg_iou, bg_iou: see :func:`rpn_targets`.
        batch_size_per_image, positive_fraction: see :func:`rpn_loss`.
        pre_nms_top_n, post_nms_top_n (tuple[int, int]): ``(training, testing)``; see
            :func:`propose`.
        nms_thresh, min_size, score_thresh: see :func:`propose`.
        anchor_offset (float): see :func:`rpn_anchors`.
    """

    def __init__(
        self,
        in_channels: int,
        strides,
        anchor_sizes,
        aspect_ratios=(0.5, 1.0, 2.0),
        fg_iou: float = 0.7,
        bg_iou: float = 0.3,
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        pre_nms_top_n=(2000, 1000),
        post_nms_top_n=(2000, 1000),
        nms_thresh: float = 0.7,
        min_size: float = 1e-3,
        score_thresh: float = 0.0,
        anchor_offset: float = 0.0,
    ):
        super().__init__()
        self.strides = [check_positive_int("strides", s) for s in strides]
        if not isinstance(anchor_sizes, (list, tuple)) or len(anchor_sizes) != len(self.strides):
            raise ValueError(
                f"anchor_sizes must have one sequence per level ({len(self.strides)}), "
                f"got {anchor_sizes!r}"
            )
        self.anchor_sizes = [tuple(check_positive_numbers("anchor_sizes", s)) for s in anchor_sizes]
        self.aspect_ratios = tuple(check_positive_numbers("aspect_ratios", aspect_ratios))
        per_location = {len(s) * len(self.aspect_ratios) for s in self.anchor_sizes}
        if len(per_location) != 1:
            raise ValueError(
                "every level must have the same number of anchor sizes (the head is shared)"
            )
        self.head = RPNHead(in_channels, per_location.pop())
        self.fg_iou, self.bg_iou = (
            check_fraction("fg_iou", fg_iou),
            check_fraction("bg_iou", bg_iou),
        )
        if self.bg_iou > self.fg_iou:
            raise ValueError(f"bg_iou ({bg_iou}) must be <= fg_iou ({fg_iou})")
        self.batch_size_per_image = check_positive_int("batch_size_per_image", batch_size_per_image)
        self.positive_fraction = check_fraction("positive_fraction", positive_fraction)
        self.pre_nms_top_n = check_int_pair("pre_nms_top_n", pre_nms_top_n)
        self.post_nms_top_n = check_int_pair("post_nms_top_n", post_nms_top_n)
        self.nms_thresh = check_fraction("nms_thresh", nms_thresh)
        self.min_size = check_number("min_size", min_size, low=0)
        self.score_thresh = check_fraction("score_thresh", score_thresh)
        self.anchor_offset = anchor_offset

    def anchors(self, image_size, feature_sizes, device=None) -> tuple[torch.Tensor, list[int]]:
        """:func:`rpn_anchors` of this network for feature maps of ``feature_sizes``."""
        check_image_size("image_size", image_size)
        return rpn_anchors(
            feature_sizes,
            self.strides,
            self.anchor_sizes,
            self.aspect_ratios,
            self.anchor_offset,
            device,
        )

    def predict(self, features, image_size) -> RPNOutput:
        """Head, anchors and proposals (training or testing top-n by the module's mode)."""
        objectness, deltas = flatten_rpn_outputs(*self.head(features))  # [N, K], [N, K, 4]
        anchors, counts = self.anchors(
            image_size, [tuple(f.shape[-2:]) for f in features], features[0].device
        )
        mode = 0 if self.training else 1
        found = propose(
            objectness,
            deltas,
            anchors,
            counts,
            image_size,
            self.pre_nms_top_n[mode],
            self.post_nms_top_n[mode],
            self.nms_thresh,
            self.min_size,
            self.score_thresh,
        )
        return RPNOutput(
            objectness,
            deltas,
            anchors,
            counts,
            [b for b, _ in found],
            [s for _, s in found],
        )

    def losses(self, out: RPNOutput, gt_boxes) -> dict[str, torch.Tensor]:
        """``loss_objectness`` and ``loss_rpn_box_reg`` of ``out`` for the objects
        ``gt_boxes`` (list of Tensor[M_i, 4], one per image)."""
        check_per_image("box tensors", gt_boxes=list(gt_boxes), objectness=list(out.objectness))
        labels, matched = zip(
            *(rpn_targets(out.anchors, g, self.fg_iou, self.bg_iou) for g in gt_boxes),
            strict=True,
        )
        loss_objectness, loss_box = rpn_loss(
            out.objectness,
            out.deltas,
            out.anchors,
            torch.stack(labels),
            torch.stack(matched),
            self.batch_size_per_image,
            self.positive_fraction,
        )
        return {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_box}

    def forward(self, features, image_size, gt_boxes=None):
        """Proposals and scores (lists, one per image) and the losses (``{}`` without
        ``gt_boxes``)."""
        out = self.predict(features, image_size)
        losses = {} if gt_boxes is None else self.losses(out, gt_boxes)
        return out.proposals, out.scores, losses


# =========================================================================== RoI heads


def roi_head_targets(
    proposals,
    gt_boxes,
    gt_labels,
    fg_iou: float = 0.5,
    bg_iou: float = 0.5,
    batch_size_per_image: int = 512,
    positive_fraction: float = 0.25,
    weights=ROI_BOX_WEIGHTS,
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Sample the regions the second stage trains on, and their targets.

    Per image: the objects' own boxes are added to the proposals (early in training the
    RPN proposes nothing good, and the heads still need positives); each region gets the
    class of the object it overlaps most if IoU >= ``fg_iou``, background (0) if below
    ``bg_iou`` (Fast R-CNN: 0.5 and [0.1, 0.5); torchvision: 0.5 and 0.5); then
    :func:`~vizlib.anchors.sample_balanced` keeps ``batch_size_per_image`` of them, at
    most ``positive_fraction`` positive.

    Args:
        proposals (list[Tensor[P_i, 4]]): per image, ``(x1, y1, x2, y2)``.
        gt_boxes (list[Tensor[M_i, 4]]): per image, the objects; may be empty.
        gt_labels (list[Tensor[M_i]]): per image, their classes in ``[1, C]``.
        fg_iou, bg_iou (float): thresholds in [0, 1], ``bg_iou <= fg_iou``.
        batch_size_per_image (int): regions per image (paper: 128 of a 2-image batch).
        positive_fraction (float): in [0, 1] (paper: 0.25).
        weights (tuple of 4 floats): box-coding weights (:func:`~vizlib.boxes.encode_deltas`).

    Returns:
        tuple of three lists, per image: the sampled regions ``Tensor[R_i, 4]``, their
        labels ``Tensor[R_i]`` int64 (0 background, -1 ignored), and their regression
        targets ``Tensor[R_i, 4]`` (zeros except for positives). In index order, as
        torchvision's ``RoIHeads.select_training_samples`` (same seed, same sample).
    """
    n = check_per_image("tensors", proposals=proposals, gt_boxes=gt_boxes, gt_labels=gt_labels)
    fg, bg = check_fraction("fg_iou", fg_iou), check_fraction("bg_iou", bg_iou)
    check_positive_numbers("weights", weights, length=4)
    rois, labels, targets = [], [], []
    for i in range(n):
        props = check_boxes(f"proposals[{i}]", proposals[i])
        gt = check_boxes(f"gt_boxes[{i}]", gt_boxes[i]).to(props.dtype)
        cls = check_labels(f"gt_labels[{i}]", gt_labels[i], len(gt))
        regions = torch.cat([props, gt])  # [P + M, 4]: the objects themselves are regions too
        if len(gt):
            matches = match_anchors(box_iou(gt, regions), fg, bg)  # [P + M]
        else:
            matches = torch.full((len(regions),), -1, dtype=torch.int64, device=regions.device)
        label = cls[matches.clamp(min=0)] if len(gt) else torch.zeros_like(matches)
        label = torch.where(matches >= 0, label, torch.zeros_like(label))  # background
        label[matches == IGNORE] = -1
        positive, negative = sample_balanced(label, batch_size_per_image, positive_fraction)
        keep = torch.where(positive | negative)[0]  # [R]
        region, label, match = regions[keep], label[keep], matches[keep]
        target = torch.zeros_like(region)  # [R, 4]
        fg_rows = label > 0
        if bool(fg_rows.any()):
            target[fg_rows] = encode_deltas(gt[match[fg_rows]], region[fg_rows], weights)
        rois.append(region)
        labels.append(label)
        targets.append(target)
    return rois, labels, targets


def check_pyramid_regions(features, strides, proposals, output_size):
    """Validate a pyramid's levels, their strides and the regions per image; returns the
    strides (ints), their log2 (one per level) and ``output_size`` as ``(h, w)``."""
    if not isinstance(features, (list, tuple)) or not features:
        raise ValueError("features must be a non-empty list of maps [N, C, H, W]")
    strides = [check_positive_int("strides", s) for s in strides]
    if len(strides) != len(features):
        raise ValueError(f"strides must have one stride per level ({len(features)})")
    ks = [math.log2(s) for s in strides]
    if any(k != int(k) for k in ks) or any(b - a != 1 for a, b in zip(ks, ks[1:], strict=False)):
        raise ValueError(f"strides must be consecutive powers of 2, finest first, got {strides}")
    if not isinstance(proposals, (list, tuple)) or len(proposals) != features[0].shape[0]:
        raise ValueError(
            f"proposals must be a list with one Tensor[P, 4] per image ({features[0].shape[0]})"
        )
    output_size = check_int_pair("output_size", output_size)
    return strides, ks, output_size


def multiscale_roi_align(
    features,
    strides,
    proposals,
    output_size=7,
    sampling_ratio: int = 2,
    canonical_size: float = 224,
    canonical_level: int = 4,
) -> torch.Tensor:
    """A ``output_size`` feature grid for every region, from the level that suits its size.

    Each region reads the level :func:`~vizlib.nn.fpn.fpn_levels` gives it (level ``k``
    has stride ``2**k``), with RoIAlign (He et al., 2017: bilinear samples, no rounding
    of the box). With one level, every region reads it.

    The RoIAlign is torchvision's kernel on a GPU, and on a CPU without gradients; on a CPU
    in training it is :func:`vizlib.roi.roi_align_matrices`: the same numbers (to float
    rounding), but torchvision's CPU backward runs one read and one channel at a time on one
    thread, which was 39 % of a Mask R-CNN training step; the matrix form's forward +
    backward is 5-10 x faster (``benchmarks/results/roi_align.md``). Its forward alone is
    not faster (the Mask R-CNN chapter's model took 17.9 ms per image at batch 1 with it,
    11.7 without), so inference keeps torchvision's.

    Args:
        features (list[Tensor[N, C, H_l, W_l]]): the levels, finest first.
        strides (list[int]): the stride of each level, powers of 2 (consecutive).
        proposals (list[Tensor[P_i, 4]]): regions ``(x1, y1, x2, y2)`` per image, in
            image pixels.
        output_size (int or tuple[int, int]): ``(h, w)`` of each grid.
        sampling_ratio (int): bilinear samples per bin side (0: adaptive).
        canonical_size, canonical_level: see :func:`~vizlib.nn.fpn.fpn_levels`.

    Returns:
        Tensor[sum_i P_i, C, h, w]: the regions' features, image by image. Same as
        ``torchvision.ops.MultiScaleRoIAlign(names, output_size, sampling_ratio,
        canonical_scale=canonical_size, canonical_level=canonical_level)``.
    """
    from torchvision.ops import roi_align  # C++: the readable one is vizlib.roi

    strides, ks, output_size = check_pyramid_regions(features, strides, proposals, output_size)
    sampling_ratio = check_positive_int("sampling_ratio", sampling_ratio, allow_zero=True)
    if not proposals:
        raise ValueError("features hold no image")
    boxes = [check_boxes(f"proposals[{i}]", p) for i, p in enumerate(proposals)]
    # torchvision's RoI format: [R, 5] rows (image index, x1, y1, x2, y2)
    rois = torch.cat(
        [torch.cat([b.new_full((len(b), 1), i), b], dim=1) for i, b in enumerate(boxes)]
    )
    if not torch.is_autocast_enabled(features[0].device.type):
        rois = rois.to(features[0].dtype)  # else autocast runs roi_align in float32
    # the matrix form where a CPU will run a backward (see the docstring); without one
    # torchvision's forward is as fast or faster
    backward = torch.is_grad_enabled() and any(f.requires_grad for f in features)
    if features[0].device.type == "cpu" and backward:

        def align(f, r, size, scale, ratio, aligned):  # adaptive: torchvision's 0, vizlib's -1
            return roi_align_matrices(f, r, size, scale, ratio or -1, aligned)

    else:
        align = roi_align
    if len(features) == 1:
        return align(
            features[0], rois, output_size, 1.0 / strides[0], sampling_ratio, aligned=False
        )
    k_min = int(ks[0])
    level = fpn_levels(rois[:, 1:], k_min, int(ks[-1]), canonical_size, canonical_level) - k_min
    c = features[0].shape[1]
    out = features[0].new_zeros((len(rois), c, *output_size))  # [R, C, h, w]
    for i, (f, s) in enumerate(zip(features, strides, strict=True)):
        rows = torch.where(level == i)[0]
        crops = align(f, rois[rows], output_size, 1.0 / s, sampling_ratio, aligned=False)
        out[rows] = crops.to(out.dtype)
    return out


class BoxHead(nn.Module):
    """Two fully connected layers on a region's flattened features (torchvision's
    ``TwoMLPHead``; the FPN paper's "2fc" head, lighter than ResNet's conv5).

    Args:
        in_features (int): ``C * h * w`` of the pooled grid.
        width (int): units of both layers (paper: 1024).

    Shape:
        ``[R, C, h, w] -> [R, width]``.
    """

    def __init__(self, in_features: int, width: int = 1024):
        super().__init__()
        self.fc6 = nn.Linear(check_positive_int("in_features", in_features), width)
        self.fc7 = nn.Linear(check_positive_int("width", width), width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc6(x.flatten(1)))
        return F.relu(self.fc7(x))


class BoxPredictor(nn.Module):
    """Class scores and class-specific box corrections (Fast R-CNN's two sibling layers).

    Args:
        width (int): features per region.
        num_classes (int): ``C``, object classes (background is added).

    Shape:
        ``[R, width] -> (class_logits [R, C + 1], box_regression [R, 4 (C + 1)])``; the
        deltas of class ``c`` are columns ``4c .. 4c + 3``.
    """

    def __init__(self, width: int, num_classes: int):
        super().__init__()
        width = check_positive_int("width", width)
        classes = check_positive_int("num_classes", num_classes) + 1
        self.cls_score = nn.Linear(width, classes)
        self.bbox_pred = nn.Linear(width, 4 * classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls_score(x), self.bbox_pred(x)


def fast_rcnn_loss(
    class_logits, box_regression, labels, regression_targets
) -> tuple[torch.Tensor, torch.Tensor]:
    """The second stage's two losses (Girshick, Fast R-CNN, 2015).

    Cross-entropy over the ``C + 1`` classes, averaged over the regions; smooth L1
    (beta 1/9) between the deltas predicted *for the true class* and the targets, for
    the positive regions only, summed and divided by the number of regions.

    Args:
        class_logits (Tensor[R, C + 1]): scores.
        box_regression (Tensor[R, 4 (C + 1)]): per-class deltas.
        labels (Tensor[R] or list of Tensor[R_i]): int64 class per region, 0 background.
        regression_targets (Tensor[R, 4] or list of Tensor[R_i, 4]): encoded targets.

    Returns:
        tuple[Tensor, Tensor]: ``(loss_classifier, loss_box_reg)``. Same as
        ``torchvision.models.detection.roi_heads.fastrcnn_loss``; zero (not NaN) when
        there is no region.
    """
    if isinstance(labels, (list, tuple)):
        labels = torch.cat(list(labels))
    if isinstance(regression_targets, (list, tuple)):
        regression_targets = torch.cat(list(regression_targets))
    if not isinstance(class_logits, torch.Tensor) or class_logits.dim() != 2:
        raise ValueError(f"class_logits must be a tensor [R, C + 1], got {class_logits!r:.60}")
    r, classes = class_logits.shape
    if not isinstance(box_regression, torch.Tensor) or box_regression.shape != (r, 4 * classes):
        raise ValueError(f"box_regression must have shape [{r}, {4 * classes}] (4 per class)")
    labels = check_labels("labels", labels, r)
    if not isinstance(regression_targets, torch.Tensor) or regression_targets.shape != (r, 4):
        raise ValueError(f"regression_targets must have shape [{r}, 4]")
    if r == 0:  # nothing sampled: no loss, but keep the graph
        zero = class_logits.sum() * 0.0 + box_regression.sum() * 0.0
        return zero, zero.clone()
    loss_classifier = F.cross_entropy(class_logits.float(), labels)
    positive = torch.where(labels > 0)[0]
    predicted = box_regression.reshape(r, classes, 4)[positive, labels[positive]]  # [n_pos, 4]
    box_sum = smooth_l1_loss(
        predicted.float(), regression_targets[positive].float(), BOX_LOSS_BETA, "sum"
    )
    return loss_classifier, box_sum / r


def postprocess_detections(
    class_logits,
    box_regression,
    proposals,
    image_size,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.5,
    detections_per_img: int = 100,
    min_size: float = 1e-2,
    weights=ROI_BOX_WEIGHTS,
) -> list[dict[str, torch.Tensor]]:
    """Detections from the second stage's scores: one box per (region, class) pair.

    Softmax over the classes; every region decoded once per object class with that
    class's deltas; clipped to the image; pairs scoring ``<= score_thresh`` or with a
    side below ``min_size`` dropped; NMS within each class; the best
    ``detections_per_img`` kept.

    Args:
        class_logits (Tensor[R, C + 1]): scores of all images' regions.
        box_regression (Tensor[R, 4 (C + 1)]): per-class deltas.
        proposals (list[Tensor[P_i, 4]]): the regions per image (``sum P_i = R``).
        image_size (tuple[int, int]): ``(height, width)``.
        score_thresh, nms_thresh (float): in [0, 1].
        detections_per_img (int): at most this many per image.
        min_size (float): smallest side kept.
        weights (tuple of 4 floats): box-coding weights.

    Returns:
        list[dict]: per image ``boxes`` ``Tensor[D, 4]`` ``(x1, y1, x2, y2)``, ``labels``
        ``Tensor[D]`` int64 in ``[1, C]``, ``scores`` ``Tensor[D]``, best first. Same as
        torchvision's ``RoIHeads.postprocess_detections``.
    """
    from torchvision.ops import batched_nms

    props = [check_boxes(f"proposals[{i}]", p) for i, p in enumerate(proposals)]
    counts = [len(p) for p in props]
    if not isinstance(class_logits, torch.Tensor) or class_logits.dim() != 2:
        raise ValueError(f"class_logits must be a tensor [R, C + 1], got {class_logits!r:.60}")
    r, classes = class_logits.shape
    if r != sum(counts):
        raise ValueError(f"class_logits has {r} rows for {sum(counts)} proposals")
    if not isinstance(box_regression, torch.Tensor) or box_regression.shape != (r, 4 * classes):
        raise ValueError(f"box_regression must have shape [{r}, {4 * classes}] (4 per class)")
    size = check_image_size("image_size", image_size)
    score_thresh = check_fraction("score_thresh", score_thresh)
    nms_thresh = check_fraction("nms_thresh", nms_thresh)
    detections_per_img = check_positive_int("detections_per_img", detections_per_img)
    min_size = check_number("min_size", min_size, low=0)
    scores = F.softmax(class_logits.float(), dim=-1)  # [R, C + 1]
    anchors = torch.cat(props).float().repeat_interleave(classes, dim=0)  # [R (C + 1), 4]
    boxes = decode_deltas(box_regression.float().reshape(-1, 4), anchors, weights)
    boxes = clip_boxes_to_image(boxes, size).reshape(r, classes, 4)
    labels = torch.arange(classes, device=scores.device).expand(r, classes)  # [R, C + 1]

    results = []
    for b, s, lab in zip(
        boxes.split(counts), scores.split(counts), labels.split(counts), strict=True
    ):
        # every (region, object class) pair is a candidate; background is not a detection
        b, s, lab = b[:, 1:].reshape(-1, 4), s[:, 1:].reshape(-1), lab[:, 1:].reshape(-1)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        keep = torch.where((s > score_thresh) & (w >= min_size) & (h >= min_size))[0]
        b, s, lab = b[keep], s[keep], lab[keep]
        keep = batched_nms(b, s, lab, nms_thresh)[:detections_per_img]
        results.append({"boxes": b[keep], "labels": lab[keep], "scores": s[keep]})
    return results


# =========================================================================== the model


class FasterRCNN(nn.Module):
    """Faster R-CNN with an FPN, sized for the book's 64-pixel scenes.

    Backbone ``VGGBackbone((16, 32, 64, 64), convs_per_stage=1)``; with ``use_fpn`` an
    :class:`~vizlib.nn.fpn.FPN` on its stages 1, 2, 3 (strides 4, 8, 16), anchors of 2
    and 4 times each level's stride; without it, stride 16 alone with all those anchor
    sizes on it (the single-scale baseline of Lin et al., 2017, Table 1).

    Called like torchvision's detectors: ``model(images, targets)`` in train mode returns
    ``{"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}``;
    ``model(images)`` in eval mode returns one dict ``{"boxes", "labels", "scores"}`` per
    image. Images are a tensor ``[N, 3, H, W]`` or a list of same-size ``[3, H, W]``;
    targets a list of dicts with ``boxes`` ``Tensor[M, 4]`` ``(x1, y1, x2, y2)`` (``M``
    may be 0) and ``labels`` ``Tensor[M]`` in ``[1, num_classes]``.

    Args:
        num_classes (int): ``C``, object classes (no background).
        image_size (int or tuple[int, int]): ``(height, width)`` of the images it takes
            (no resizing: the scenes are small already).
        use_fpn (bool): the pyramid (default) or the single stride-16 map.
        backbone (FPNBackbone, optional): replaces the default; its ``use_fpn`` wins.
        out_channels (int): channels of the pyramid levels.
        anchor_scales (sequence of float): anchor sizes as multiples of the stride.
        aspect_ratios (sequence of float): ``height / width`` of the anchors.
        rpn_pre_nms_top_n, rpn_post_nms_top_n (tuple[int, int]): ``(training, testing)``.
        rpn_nms_thresh, rpn_fg_iou, rpn_bg_iou, rpn_batch_size_per_image,
            rpn_positive_fraction: the RPN's settings (:class:`RegionProposalNetwork`).
        box_fg_iou, box_bg_iou, box_batch_size_per_image, box_positive_fraction: the
            region sampling (:func:`roi_head_targets`).
        roi_output_size (int), sampling_ratio (int), canonical_size (float),
            canonical_level (int): :func:`multiscale_roi_align`.
        box_head_width (int): units of the two fully connected layers.
        score_thresh, nms_thresh, detections_per_img: :func:`postprocess_detections`.
    """

    def __init__(
        self,
        num_classes: int,
        image_size,
        use_fpn: bool = True,
        backbone: FPNBackbone | None = None,
        out_channels: int = 64,
        anchor_scales=(2.0, 4.0),
        aspect_ratios=(0.5, 1.0, 2.0),
        rpn_pre_nms_top_n=(300, 300),
        rpn_post_nms_top_n=(100, 100),
        rpn_nms_thresh: float = 0.7,
        rpn_fg_iou: float = 0.7,
        rpn_bg_iou: float = 0.3,
        rpn_batch_size_per_image: int = 128,
        rpn_positive_fraction: float = 0.5,
        box_fg_iou: float = 0.5,
        box_bg_iou: float = 0.5,
        box_batch_size_per_image: int = 64,
        box_positive_fraction: float = 0.25,
        roi_output_size: int = 7,
        sampling_ratio: int = 2,
        canonical_size: float = 224,
        canonical_level: int = 4,
        box_head_width: int = 256,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
    ):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.image_size = check_int_pair("image_size", image_size)
        if backbone is None:
            backbone = FPNBackbone(
                VGGBackbone((16, 32, 64, 64), convs_per_stage=1),
                levels=(1, 2, 3),
                out_channels=out_channels,
                use_fpn=use_fpn,
            )
        if not isinstance(backbone, FPNBackbone):
            raise ValueError(f"backbone must be an FPNBackbone, got {type(backbone).__name__}")
        self.backbone = backbone
        self.use_fpn = backbone.use_fpn
        scales = check_positive_numbers("anchor_scales", anchor_scales)
        # Without the FPN the one map gets every size the pyramid's levels would have had.
        all_strides = [backbone.body.strides[i] for i in _chosen_levels(backbone)]
        sizes = [tuple(s * k for k in scales) for s in all_strides]
        if not self.use_fpn:
            sizes = [tuple(sorted({z for level in sizes for z in level}))]
        self.rpn = RegionProposalNetwork(
            backbone.out_channels,
            backbone.strides,
            sizes,
            aspect_ratios,
            rpn_fg_iou,
            rpn_bg_iou,
            rpn_batch_size_per_image,
            rpn_positive_fraction,
            rpn_pre_nms_top_n,
            rpn_post_nms_top_n,
            rpn_nms_thresh,
        )
        self.roi_output_size = check_int_pair("roi_output_size", roi_output_size)
        self.sampling_ratio = check_positive_int("sampling_ratio", sampling_ratio, allow_zero=True)
        self.canonical_size = check_number("canonical_size", canonical_size, low=0, strict=True)
        self.canonical_level = check_positive_int("canonical_level", canonical_level, True)
        self.box_fg_iou = check_fraction("box_fg_iou", box_fg_iou)
        self.box_bg_iou = check_fraction("box_bg_iou", box_bg_iou)
        self.box_batch_size_per_image = check_positive_int(
            "box_batch_size_per_image", box_batch_size_per_image
        )
        self.box_positive_fraction = check_fraction("box_positive_fraction", box_positive_fraction)
        h, w = self.roi_output_size
        self.box_head = BoxHead(backbone.out_channels * h * w, box_head_width)
        self.box_predictor = BoxPredictor(box_head_width, self.num_classes)
        self.score_thresh = check_fraction("score_thresh", score_thresh)
        self.nms_thresh = check_fraction("nms_thresh", nms_thresh)
        self.detections_per_img = check_positive_int("detections_per_img", detections_per_img)

    @property
    def strides(self) -> list[int]:
        """The stride of each feature level the RPN and the RoI heads use."""
        return self.backbone.strides

    # -- the steps -------------------------------------------------------------------

    def _images(self, images) -> torch.Tensor:
        x = as_image_batch(images)  # [N, 3, H, W]
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(
                f"this FasterRCNN takes {self.image_size[0]}x{self.image_size[1]} images "
                f"(image_size), got {tuple(x.shape[-2:])}: resize them first"
            )
        return x

    def _targets(self, targets, n: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Boxes and labels of each image, checked, as plain tensors."""
        return check_detection_targets(targets, n, self.num_classes)

    def roi_features(self, features, proposals) -> torch.Tensor:
        """:func:`multiscale_roi_align` with this model's settings: ``[R, C, 7, 7]``."""
        return multiscale_roi_align(
            features,
            self.strides,
            proposals,
            self.roi_output_size,
            self.sampling_ratio,
            self.canonical_size,
            self.canonical_level,
        )

    def roi_levels(self, proposals) -> list[torch.Tensor]:
        """The pyramid level ``k`` (stride ``2**k``) each proposal is pooled from."""
        ks = self.backbone.level_numbers
        return [
            fpn_levels(p, ks[0], ks[-1], self.canonical_size, self.canonical_level)
            for p in proposals
        ]

    def detect(self, features, proposals) -> list[dict[str, torch.Tensor]]:
        """The second stage in eval: scores, per-class boxes, NMS."""
        class_logits, box_regression = self.box_predictor(
            self.box_head(self.roi_features(features, proposals))
        )
        return postprocess_detections(
            class_logits,
            box_regression,
            proposals,
            self.image_size,
            self.score_thresh,
            self.nms_thresh,
            self.detections_per_img,
        )

    def forward(self, images, targets=None):
        x = self._images(images)
        if self.training and targets is None:
            raise ValueError("in train mode FasterRCNN needs targets (dicts with boxes, labels)")
        features = self.backbone(x)  # list of [N, C, H / s, W / s]
        if not self.training:
            proposals, _, _ = self.rpn(features, self.image_size)
            return self.detect(features, proposals)

        gt_boxes, gt_labels = self._targets(targets, len(x))
        proposals, _, losses = self.rpn(features, self.image_size, gt_boxes)
        rois, labels, regression_targets = roi_head_targets(
            proposals,
            gt_boxes,
            gt_labels,
            self.box_fg_iou,
            self.box_bg_iou,
            self.box_batch_size_per_image,
            self.box_positive_fraction,
        )
        class_logits, box_regression = self.box_predictor(
            self.box_head(self.roi_features(features, rois))
        )  # [R, C + 1], [R, 4 (C + 1)]
        loss_classifier, loss_box_reg = fast_rcnn_loss(
            class_logits, box_regression, labels, regression_targets
        )
        return {**losses, "loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}

    @torch.no_grad()
    def inspect(self, images, targets=None) -> dict:
        """Every intermediate of one pass, for figures (eval-mode proposals).

        Returns a dict:

        * ``strides`` (list[int]), ``anchors`` (Tensor[K, 4]), ``anchor_levels``
          (Tensor[K] int64: level ``k``, stride ``2**k``, of each anchor),
          ``num_anchors_per_level`` (list[int]);
        * ``objectness`` (Tensor[N, K]): the RPN's probability per anchor;
        * ``proposals``, ``proposal_scores`` (lists of Tensor[P_i, 4], Tensor[P_i]);
        * ``proposal_levels`` (list of Tensor[P_i] int64): the level each proposal's
          features are pooled from (:func:`~vizlib.nn.fpn.fpn_levels`);
        * ``detections`` (list of dicts ``boxes``, ``labels``, ``scores``): the output;

        and with ``targets``:

        * ``anchor_labels`` (Tensor[N, K]): 1 / 0 / -1 (:func:`rpn_targets`);
        * ``anchor_matched_boxes`` (Tensor[N, K, 4]);
        * ``rois``, ``roi_labels``, ``roi_levels`` (lists per image): a training sample
          of regions (:func:`roi_head_targets`, drawn from torch's global generator),
          their labels and levels.

        Everything is on the CPU. The model's mode is restored.
        """
        was_training = self.training
        self.eval()
        try:
            x = self._images(images)
            features = self.backbone(x)
            out = self.rpn.predict(features, self.image_size)
            ks = self.backbone.level_numbers
            info = {
                "strides": list(self.strides),
                "anchors": out.anchors,
                "anchor_levels": torch.repeat_interleave(
                    torch.tensor(ks), torch.tensor(out.num_anchors_per_level)
                ),
                "num_anchors_per_level": list(out.num_anchors_per_level),
                "objectness": out.objectness.sigmoid(),
                "proposals": out.proposals,
                "proposal_scores": out.scores,
                "proposal_levels": self.roi_levels(out.proposals),
                "detections": self.detect(features, out.proposals),
            }
            if targets is not None:
                gt_boxes, gt_labels = self._targets(targets, len(x))
                labels, matched = zip(
                    *(
                        rpn_targets(out.anchors, g.to(x.device), self.rpn.fg_iou, self.rpn.bg_iou)
                        for g in gt_boxes
                    ),
                    strict=True,
                )
                rois, roi_labels, _ = roi_head_targets(
                    out.proposals,
                    [g.to(x.device) for g in gt_boxes],
                    [lab.to(x.device) for lab in gt_labels],
                    self.box_fg_iou,
                    self.box_bg_iou,
                    self.box_batch_size_per_image,
                    self.box_positive_fraction,
                )
                info.update(
                    anchor_labels=torch.stack(labels),
                    anchor_matched_boxes=torch.stack(matched),
                    rois=rois,
                    roi_labels=roi_labels,
                    roi_levels=self.roi_levels(rois),
                )
        finally:
            self.train(was_training)
        return detached_to_cpu(info)


def _chosen_levels(backbone: FPNBackbone) -> list[int]:
    """The stages the backbone was asked for (with ``use_fpn=False`` it keeps only the last,
    but the anchors still cover every chosen stage's sizes)."""
    return list(backbone.requested_levels)


def detached_to_cpu(obj):
    """``obj`` (a tensor, or dicts, lists and tuples of them) detached and on the CPU: what
    the chapters' figures take from a model's ``inspect``."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: detached_to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(detached_to_cpu(v) for v in obj)
    return obj
