"""SSD, the single-shot multibox detector (Liu et al., 2016), small enough for the scenes.

SSD predicts from *several* feature maps of one backbone: fine maps (many cells, small
receptive fields) for small objects, coarse maps for big ones. At every cell of map
``k`` sit ``A_k`` *default boxes* of fixed scales and shapes (:func:`vizlib.anchors.
default_boxes`: the scale rule ``s_k = s_min + (s_max - s_min)(k - 1)/(m - 1)`` and a few
aspect ratios), and for each default box a 3x3 convolution predicts ``C + 1`` class
scores (background included: a softmax over them) and 4 offsets. One image therefore
gives ``D = sum_k H_k W_k A_k`` boxes of ``C + 1 + 4`` numbers (:func:`ssd_output_size`;
8,732 x 25 for SSD300 on PASCAL VOC), whatever it contains.

Training (:func:`encode_ssd_targets`, :func:`ssd_loss`):

* matching (:func:`vizlib.anchors.match_default_boxes`): each object takes its best
  default box, then every default box with IoU >= 0.5 takes its best object;
* the offsets of a positive are its object's box encoded relative to the default box
  (:func:`vizlib.boxes.encode_deltas`) with the *variances* 0.1 (centre) and 0.2 (size)
  of the paper's code, i.e. the weights ``(10, 10, 5, 5)`` = 1 / variance;
* hard negative mining (:func:`vizlib.anchors.hard_negative_mining`): of the negatives,
  only the 3 per positive with the highest classification loss are trained;
* the loss: softmax cross-entropy over the positives and the chosen negatives, plus
  smooth L1 over the positives' offsets, both divided by the number of positives.

At test time (:func:`ssd_postprocess`) the offsets are decoded, and for each class the
boxes scoring above a threshold go through NMS (per-class NMS, as the paper).

Everything equals torchvision's ``SSD`` (``torchvision.models.detection.ssd``): the
default boxes its ``DefaultBoxGenerator``, the matching its ``SSDMatcher``, the loss its
``compute_loss``, the decoding its ``postprocess_detections`` (tested). Boxes are
``(x1, y1, x2, y2)`` pixels throughout; class labels are the book's (0 background,
objects ``1 .. C``), which are also the indices of the ``C + 1`` scores.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import (
    as_float_tensor,
    as_image_batch,
    check_detection_targets,
    check_fraction,
    check_int_pair,
    check_number,
    check_positive_int,
    check_positive_numbers,
)
from ..anchors import BACKGROUND, default_boxes, hard_negative_mining, match_default_boxes
from ..boxes import clip_boxes_to_image, decode_deltas, encode_deltas
from ..losses import smooth_l1_loss
from ..nms import batched_nms
from .backbone import VGGBackbone, check_stage_levels

__all__ = [
    "SSD",
    "SSDTargets",
    "SSD_BOX_WEIGHTS",
    "LOSS_TERMS",
    "SCENE_ASPECT_RATIOS",
    "boxes_per_location",
    "ssd_output_size",
    "encode_ssd_targets",
    "ssd_loss",
    "ssd_postprocess",
]

#: The box coding's weights: 1 / the paper's variances (0.1 for the centre, 0.2 for the size).
SSD_BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)

#: The terms :func:`ssd_loss` returns: cross-entropy of the positives, of the mined
#: negatives, and smooth L1 of the positives' offsets (their sum is SSD's loss).
LOSS_TERMS = ("cls_positive", "cls_negative", "box")

#: Aspect ratios (``w / h``, each with its transpose) of the scenes' SSD at each of its three
#: maps: the scenes' shapes lie between about 1:2 and 2:1 (no 1:3 object), so the paper's
#: ratio 3 would only add default boxes that match nothing.
SCENE_ASPECT_RATIOS = ((2.0,), (2.0,), (2.0,))


def boxes_per_location(aspect_ratios) -> list[int]:
    """``A_k = 2 + 2 len(aspect_ratios[k])``: two squares and a pair per ratio, per map.

    Args:
        aspect_ratios (list[sequence of float]): the ratios of each map.

    Returns:
        list[int]: ``A_k`` per map.
    """
    if not isinstance(aspect_ratios, (list, tuple)) or not aspect_ratios:
        raise ValueError(
            f"aspect_ratios must be a non-empty list of sequences, got {aspect_ratios!r}"
        )
    out = []
    for k, r in enumerate(aspect_ratios):
        if not isinstance(r, (list, tuple)):
            raise ValueError(f"aspect_ratios[{k}] must be a sequence of ratios, got {r!r}")
        out.append(2 + 2 * len(r))
    return out


def ssd_output_size(feature_sizes, boxes_per_loc, num_classes: int) -> tuple[int, int]:
    """The size of SSD's output for one image: ``(D, C + 1 + 4)``.

    ``D = sum_k H_k W_k A_k`` default boxes, each with ``C + 1`` class scores (background
    included) and 4 offsets. SSD300 on PASCAL VOC: maps 38, 19, 10, 5, 3, 1 with 4, 6, 6,
    6, 4, 4 boxes give ``(8732, 25)``.

    Args:
        feature_sizes (list[tuple[int, int]]): ``(H_k, W_k)`` per map.
        boxes_per_loc (int or list[int]): ``A_k`` per map (one int: the same on every map).
        num_classes (int): ``C``, object classes (without background).

    Returns:
        tuple[int, int]: ``(D, C + 5)``.
    """
    if not isinstance(feature_sizes, (list, tuple)) or not feature_sizes:
        raise ValueError(f"feature_sizes must be a non-empty list of (H, W), got {feature_sizes!r}")
    sizes = [check_int_pair("feature_sizes", f) for f in feature_sizes]
    if isinstance(boxes_per_loc, int) and not isinstance(boxes_per_loc, bool):
        boxes_per_loc = [boxes_per_loc] * len(sizes)
    if not isinstance(boxes_per_loc, (list, tuple)) or len(boxes_per_loc) != len(sizes):
        raise ValueError(
            f"boxes_per_loc must be an int or one int per map ({len(sizes)}), got {boxes_per_loc!r}"
        )
    counts = [check_positive_int("boxes_per_loc", a) for a in boxes_per_loc]
    c = check_positive_int("num_classes", num_classes)
    return sum(h * w * a for (h, w), a in zip(sizes, counts, strict=True)), c + 1 + 4


class SSDTargets(NamedTuple):
    """What SSD trains each default box of a batch towards.

    Attributes:
        labels (Tensor[N, D] int64): the matched object's class, 0 for background.
        deltas (Tensor[N, D, 4]): the matched object's box encoded relative to the default
            box (``SSD_BOX_WEIGHTS``); zeros for background boxes.
        matched (Tensor[N, D] int64): the matched object's index in its image, or
            :data:`vizlib.anchors.BACKGROUND`.
    """

    labels: torch.Tensor
    deltas: torch.Tensor
    matched: torch.Tensor


def encode_ssd_targets(
    targets, boxes, num_classes: int, iou_threshold: float = 0.5, weights=SSD_BOX_WEIGHTS
) -> SSDTargets:
    """Match every image's objects to the default boxes and encode the positives.

    Args:
        targets (list[dict]): per image, ``boxes`` (Tensor[M, 4] xyxy pixels, ``M`` may
            be 0) and ``labels`` (Tensor[M] int64 in ``[1, num_classes]``).
        boxes (Tensor[D, 4]): the default boxes (:func:`vizlib.anchors.default_boxes`),
            xyxy pixels, positive sizes.
        num_classes (int): ``C``.
        iou_threshold (float): see :func:`vizlib.anchors.match_default_boxes`.
        weights (tuple of 4 floats): the coding's weights (1 / variances).

    Returns:
        SSDTargets: ``labels [N, D]``, ``deltas [N, D, 4]``, ``matched [N, D]``.
    """
    d = as_float_tensor("boxes", boxes)
    if d.dim() != 2 or d.shape[1] != 4:
        raise ValueError(f"boxes (the default boxes) must have shape [D, 4], got {tuple(d.shape)}")
    c = check_positive_int("num_classes", num_classes)
    check_positive_numbers("weights", weights, length=4)
    if not isinstance(targets, (list, tuple)):
        raise ValueError(
            f"targets must be a list of dicts (one per image), got {type(targets).__name__}"
        )
    gt_boxes, gt_labels = check_detection_targets(targets, len(targets), c)
    labels, deltas, matched = [], [], []
    for g, lab in zip(gt_boxes, gt_labels, strict=True):
        g, lab = g.to(d.device, d.dtype), lab.to(d.device)
        m = match_default_boxes(g, d, iou_threshold)  # [D]
        pos = m != BACKGROUND
        lab_i = torch.zeros(len(d), dtype=torch.int64, device=d.device)
        lab_i[pos] = lab[m[pos]].long()
        delta = torch.zeros(len(d), 4, dtype=d.dtype, device=d.device)
        if bool(pos.any()):
            delta[pos] = encode_deltas(g[m[pos]], d[pos], weights).to(d.dtype)
        labels.append(lab_i)
        deltas.append(delta)
        matched.append(m)
    if not targets:
        return SSDTargets(
            torch.zeros(0, len(d), dtype=torch.int64),
            torch.zeros(0, len(d), 4),
            torch.zeros(0, len(d), dtype=torch.int64),
        )
    return SSDTargets(torch.stack(labels), torch.stack(deltas), torch.stack(matched))


def _check_head(cls_logits, box_deltas) -> tuple[torch.Tensor, torch.Tensor]:
    logits = as_float_tensor("cls_logits", cls_logits)
    if logits.dim() != 3 or logits.shape[-1] < 2:
        raise ValueError(
            f"cls_logits must have shape [N, D, C + 1] (background first), got {tuple(logits.shape)}"
        )
    deltas = as_float_tensor("box_deltas", box_deltas)
    if deltas.shape != (*logits.shape[:2], 4):
        raise ValueError(
            f"box_deltas must have shape [N, D, 4] = {(*logits.shape[:2], 4)}, got {tuple(deltas.shape)}"
        )
    return logits, deltas


def ssd_loss(
    cls_logits, box_deltas, targets: SSDTargets, neg_pos_ratio: float = 3.0, mining=None
) -> dict[str, torch.Tensor]:
    """SSD's loss, in its three terms (:data:`LOSS_TERMS`).

    With ``P`` the positives of the batch (at least 1 in the divisor)::

        cls_positive = sum over positives of CE(logits, label) / P
        cls_negative = sum over the mined negatives of CE(logits, 0) / P
        box          = sum over positives of smooth_l1(deltas - target deltas) / P  (beta 1)

    ``cls_positive + cls_negative`` equals torchvision's ``classification`` and ``box``
    its ``bbox_regression`` (``SSD.compute_loss``). The paper's weight ``alpha`` between
    the two parts is 1.

    Args:
        cls_logits (Tensor[N, D, C + 1]): class scores before the softmax.
        box_deltas (Tensor[N, D, 4]): predicted offsets.
        targets (SSDTargets): from :func:`encode_ssd_targets`, same ``N`` and ``D``.
        neg_pos_ratio (float): negatives per positive, >= 0.
        mining (callable, optional): ``mining(loss [N, D], positive [N, D], neg_pos_ratio)
            -> negatives [N, D] bool``; default :func:`vizlib.anchors.hard_negative_mining`.

    Returns:
        dict[str, Tensor]: the three scalar terms.
    """
    logits, deltas = _check_head(cls_logits, box_deltas)
    if not isinstance(targets, SSDTargets):
        raise ValueError(
            f"targets must be SSDTargets (from encode_ssd_targets), got {type(targets).__name__}"
        )
    if targets.labels.shape != logits.shape[:2]:
        raise ValueError(
            f"targets are for {tuple(targets.labels.shape)} boxes, the head gave {tuple(logits.shape[:2])}"
        )
    ratio = check_number("neg_pos_ratio", neg_pos_ratio, low=0)
    if mining is None:
        mining = hard_negative_mining
    elif not callable(mining):
        raise ValueError(
            f"mining must be a function (loss, positive, ratio) -> negatives, got {mining!r}"
        )
    labels = targets.labels.to(logits.device)
    positive = labels > 0  # [N, D]
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    ce = ce.reshape(labels.shape)  # [N, D]
    negative = mining(ce.detach(), positive, ratio)
    if not isinstance(negative, torch.Tensor) or negative.shape != positive.shape:
        raise ValueError("mining must return a bool tensor [N, D], the shape of the loss")
    negative = negative.to(torch.bool) & ~positive
    num_pos = max(1, int(positive.sum()))
    box = smooth_l1_loss(
        deltas[positive], targets.deltas.to(deltas)[positive], beta=1.0, reduction="sum"
    )
    return {
        "cls_positive": ce[positive].sum() / num_pos,
        "cls_negative": ce[negative].sum() / num_pos,
        "box": box / num_pos,
    }


def ssd_postprocess(
    cls_logits,
    box_deltas,
    boxes,
    image_size,
    score_threshold: float = 0.01,
    nms_threshold: float = 0.45,
    max_detections: int = 100,
    topk_candidates: int = 400,
    weights=SSD_BOX_WEIGHTS,
) -> list[dict]:
    """Detections from SSD's output: softmax, decode, per-class threshold and top-k, NMS.

    For each class ``c >= 1``: the default boxes whose softmax score for ``c`` is above
    ``score_threshold`` (strictly), at most ``topk_candidates`` of them (the best), each
    decoded from its offsets and clipped to the image. Then NMS per class
    (:func:`vizlib.nms.batched_nms`) and the best ``max_detections``. A default box may
    give a detection for several classes. Equals torchvision's
    ``SSD.postprocess_detections`` (with ``detections_per_img = max_detections``).

    Args:
        cls_logits (Tensor[N, D, C + 1]): class scores before the softmax.
        box_deltas (Tensor[N, D, 4]): predicted offsets.
        boxes (Tensor[D, 4]): the default boxes, xyxy pixels.
        image_size (tuple[int, int]): ``(height, width)``, to clip to.
        score_threshold, nms_threshold (float): in [0, 1].
        max_detections, topk_candidates (int): >= 1.
        weights (tuple of 4 floats): the coding's weights.

    Returns:
        list[dict]: per image ``boxes`` (Tensor[K, 4] xyxy), ``scores`` (Tensor[K]),
        ``labels`` (Tensor[K] int64), best first.
    """
    logits, deltas = _check_head(cls_logits, box_deltas)
    d = as_float_tensor("boxes", boxes)
    if d.dim() != 2 or d.shape != (logits.shape[1], 4):
        raise ValueError(
            f"boxes must have shape [D, 4] = {(logits.shape[1], 4)}, got {tuple(d.shape)}"
        )
    size = check_int_pair("image_size", image_size)
    score_threshold = check_fraction("score_threshold", score_threshold)
    nms_threshold = check_fraction("nms_threshold", nms_threshold)
    max_detections = check_positive_int("max_detections", max_detections)
    topk_candidates = check_positive_int("topk_candidates", topk_candidates)
    scores = logits.detach().float().softmax(dim=-1)  # [N, D, C + 1]
    results = []
    for i in range(len(scores)):
        decoded = decode_deltas(deltas[i].detach().float(), d.float().to(deltas.device), weights)
        decoded = clip_boxes_to_image(decoded, size)  # [D, 4]
        all_boxes, all_scores, all_labels = [], [], []
        for c in range(1, scores.shape[-1]):
            s = scores[i, :, c]
            keep = torch.where(s > score_threshold)[0]
            s, order = s[keep].topk(min(topk_candidates, len(keep)))
            all_boxes.append(decoded[keep[order]])
            all_scores.append(s)
            all_labels.append(torch.full_like(order, c))
        b, s, lab = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_labels)
        kept = batched_nms(b, s, lab, nms_threshold)[:max_detections]
        results.append({"boxes": b[kept], "scores": s[kept], "labels": lab[kept]})
    return results


class SSD(nn.Module):
    """A small SSD: a VGG-style backbone, default boxes on three of its maps, 3x3 heads.

    The paper's SSD300 predicts from VGG-16's ``conv4_3`` (38 x 38) and five extra maps
    down to 1 x 1. The scenes are 64 pixels wide with objects of about 7 to 42 pixels
    (10% to 65% of the side), so three maps suffice: strides 8, 16 and 32 (8 x 8, 4 x 4
    and 2 x 2 for a 64-pixel image), the later stages of the backbone playing the
    paper's extra layers. The default scales run from ``s_min = 0.15`` (10 pixels: the
    smallest objects) to ``s_max = 0.55`` (35 pixels), not the paper's 0.2 to 0.9, which
    were chosen for PASCAL's objects that often fill the picture; with the extra square
    ``sqrt(s_k s_{k+1})`` of each map they cover 10 to 47 pixels. The aspect ratios are
    :data:`SCENE_ASPECT_RATIOS` (2 and 1/2, plus the two squares: 4 boxes per location).

    Like torchvision's ``SSDHead``, each map has one 3x3 convolution for the ``A_k (C + 1)``
    class scores and one for the ``A_k 4`` offsets, Xavier-initialised.

    Called like torchvision's detectors: in train mode ``model(images, targets)`` returns
    the dict of loss terms (:func:`ssd_loss`), in eval mode ``model(images)`` one dict of
    ``boxes``, ``scores``, ``labels`` per image (:func:`ssd_postprocess`). :meth:`raw`
    gives the head's output, :meth:`default_boxes` the boxes it refers to.

    Args:
        num_classes (int): ``C``, object classes (without background).
        backbone (VGGBackbone, optional): default ``VGGBackbone((16, 32, 64, 128, 128),
            convs_per_stage=(1, 2, 3, 2, 2))`` (strides 2 to 32).
        levels (sequence of int): the backbone stages predicted from (default 2, 3, 4:
            strides 8, 16, 32).
        aspect_ratios (list[sequence of float]): ratios per map.
        s_min, s_max (float): the scale rule's ends (:func:`vizlib.anchors.ssd_scales`).
        iou_threshold (float): matching threshold.
        neg_pos_ratio (float): hard negatives per positive.
        mining (callable, optional): replaces :func:`vizlib.anchors.hard_negative_mining`
            (see :func:`ssd_loss`).
        score_threshold, nms_threshold, max_detections, topk_candidates: see
            :func:`ssd_postprocess`.
    """

    def __init__(
        self,
        num_classes: int,
        backbone: VGGBackbone | None = None,
        levels=(2, 3, 4),
        aspect_ratios=SCENE_ASPECT_RATIOS,
        s_min: float = 0.15,
        s_max: float = 0.55,
        iou_threshold: float = 0.5,
        neg_pos_ratio: float = 3.0,
        mining=None,
        score_threshold: float = 0.01,
        nms_threshold: float = 0.45,
        max_detections: int = 100,
        topk_candidates: int = 400,
    ):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        if backbone is None:
            backbone = VGGBackbone((16, 32, 64, 128, 128), convs_per_stage=(1, 2, 3, 2, 2))
        if not hasattr(backbone, "channels") or not hasattr(backbone, "strides"):
            raise ValueError("backbone must be a VGGBackbone (with channels and strides)")
        levels = check_stage_levels(levels, backbone)
        self.aspect_ratios = [list(r) for r in aspect_ratios]
        if len(self.aspect_ratios) != len(levels):
            raise ValueError(
                f"aspect_ratios must hold one sequence per level ({len(levels)}), got {aspect_ratios!r}"
            )
        self.anchors_per_location = boxes_per_location(self.aspect_ratios)
        self.backbone, self.levels = backbone, levels
        self.s_min, self.s_max = check_fraction("s_min", s_min), check_fraction("s_max", s_max)
        channels = [backbone.channels[i] for i in levels]
        k = self.num_classes + 1
        self.cls_heads = nn.ModuleList(
            nn.Conv2d(c, a * k, 3, padding=1)
            for c, a in zip(channels, self.anchors_per_location, strict=True)
        )
        self.box_heads = nn.ModuleList(
            nn.Conv2d(c, a * 4, 3, padding=1)
            for c, a in zip(channels, self.anchors_per_location, strict=True)
        )
        for conv in [*self.cls_heads, *self.box_heads]:
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)
        self.iou_threshold = check_fraction("iou_threshold", iou_threshold)
        self.neg_pos_ratio = check_number("neg_pos_ratio", neg_pos_ratio, low=0)
        self.mining = mining
        self.score_threshold = check_fraction("score_threshold", score_threshold)
        self.nms_threshold = check_fraction("nms_threshold", nms_threshold)
        self.max_detections = check_positive_int("max_detections", max_detections)
        self.topk_candidates = check_positive_int("topk_candidates", topk_candidates)
        self._boxes: dict = {}

    def feature_sizes(self, image_size) -> list[tuple[int, int]]:
        """``(H_k, W_k)`` of each map for an image of ``image_size = (height, width)``."""
        h, w = check_int_pair("image_size", image_size)
        return [(h // self.backbone.strides[i], w // self.backbone.strides[i]) for i in self.levels]

    def default_boxes(self, image_size, device=None) -> torch.Tensor:
        """The default boxes ``[D, 4]`` (xyxy pixels) for images of ``(height, width)``."""
        key = (check_int_pair("image_size", image_size), str(device))
        if key not in self._boxes:
            self._boxes[key] = default_boxes(
                key[0], self.feature_sizes(key[0]), self.aspect_ratios, self.s_min, self.s_max
            ).to(device)
        return self._boxes[key]

    def raw(self, images) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's output: ``cls_logits [N, D, C + 1]`` and ``box_deltas [N, D, 4]``,
        in the order of :meth:`default_boxes`."""
        x = as_image_batch(images)
        stages = self.backbone(x)
        n, logits, deltas = len(x), [], []
        for i, cls_head, box_head in zip(self.levels, self.cls_heads, self.box_heads, strict=True):
            f = stages[i]
            # [N, A * K, H, W] -> [N, H, W, A * K] -> [N, H * W * A, K]: location-major
            logits.append(cls_head(f).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes + 1))
            deltas.append(box_head(f).permute(0, 2, 3, 1).reshape(n, -1, 4))
        return torch.cat(logits, dim=1), torch.cat(deltas, dim=1)

    def forward(self, images, targets=None):
        x = as_image_batch(images)
        size = tuple(x.shape[-2:])
        logits, deltas = self.raw(x)
        boxes = self.default_boxes(size, x.device)
        if self.training:
            if targets is None:
                raise ValueError(
                    "in train mode SSD needs targets (a list of dicts with boxes, labels)"
                )
            encoded = encode_ssd_targets(targets, boxes, self.num_classes, self.iou_threshold)
            return ssd_loss(logits, deltas, encoded, self.neg_pos_ratio, self.mining)
        return ssd_postprocess(
            logits,
            deltas,
            boxes,
            size,
            self.score_threshold,
            self.nms_threshold,
            self.max_detections,
            self.topk_candidates,
        )
