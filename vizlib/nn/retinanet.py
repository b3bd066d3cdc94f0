"""RetinaNet (Lin et al., 2017, "Focal loss for dense object detection"), small enough for the scenes.

RetinaNet is a one-stage detector: a backbone, a feature pyramid (:class:`~vizlib.nn.fpn.FPN`)
and, shared by every pyramid level, two small fully convolutional subnets: one predicts, for
each of the ``A`` anchors of every location, ``C`` class probabilities (one *sigmoid* per
class, no background class), the other 4 box offsets. Its two ideas are about training:

* the **focal loss** (:func:`vizlib.losses.sigmoid_focal_loss`): every anchor is trained
  (no sampling, no hard negative mining), each with the cross-entropy scaled by
  ``(1 - p_t) ** gamma``, so that the tens of thousands of easy negatives of an image,
  each with a tiny loss, no longer outweigh the few positives together;
* the **prior-probability initialisation** (:func:`prior_bias`): the last classification
  convolution starts with the bias ``-log((1 - pi) / pi)``, ``pi = 0.01``, so that every
  anchor starts by predicting "object" with probability 0.01. Starting at 0.5 (bias 0),
  the background anchors' loss is huge at the first step and destabilises training.

Training (:func:`encode_retinanet_targets`, :func:`retinanet_loss`): anchors are matched to
objects by IoU (:func:`vizlib.anchors.match_anchors`): ``>= 0.5`` positive, ``< 0.4``
negative, in between ignored, and every object also claims its best anchor(s). The
classification target of a positive is the one-hot vector of its class, of a negative all
zeros; the focal loss is summed over all non-ignored anchors and classes and divided by
the number of positives of the image. The box term is the L1 loss of the positives'
offsets (:func:`vizlib.boxes.encode_deltas`, weights 1), divided likewise; both are then
averaged over the images.

At test time (:func:`retinanet_postprocess`), on each level the (anchor, class) pairs with a
probability above ``score_threshold`` (at most ``topk_candidates`` per level) are decoded,
then NMS per class keeps the best ``max_detections``.

Everything equals torchvision's ``RetinaNet`` (``torchvision.models.detection.retinanet``):
the anchors its ``AnchorGenerator``, the head its ``RetinaNetHead``, the loss its
``compute_loss`` and the decoding its ``postprocess_detections`` (tested). Boxes are
``(x1, y1, x2, y2)`` pixels throughout; class labels are the book's (0 background, objects
``1 .. C``), while the head's ``C`` scores are those of classes ``1 .. C`` (score ``k`` is
class ``k + 1``): torchvision's RetinaNet, given ``num_classes = C + 1``, keeps a score for
the background label too, which is never a positive.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
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
from ..anchors import BACKGROUND, anchors_for_image, match_anchors
from ..boxes import box_iou, clip_boxes_to_image, decode_deltas, encode_deltas
from ..losses import sigmoid_focal_loss
from ..nms import batched_nms
from .backbone import VGGBackbone, check_stage_levels
from .fpn import FPN

__all__ = [
    "RetinaNet",
    "RetinaNetHead",
    "RetinaNetTargets",
    "LOSS_TERMS",
    "SCENE_ANCHOR_SCALES",
    "SCENE_ANCHOR_RATIOS",
    "prior_bias",
    "retinanet_anchor_sizes",
    "encode_retinanet_targets",
    "retinanet_loss",
    "retinanet_postprocess",
]

#: The terms :func:`retinanet_loss` returns: the focal loss of the anchors matched to an
#: object, of the background anchors, and the L1 loss of the positives' offsets.
#: ``cls_positive + cls_negative`` is torchvision's ``classification``, ``box`` its
#: ``bbox_regression``.
LOSS_TERMS = ("cls_positive", "cls_negative", "box")

#: Anchor sizes of a level, in strides: the paper's three octave scales 2^0, 2^(1/3), 2^(2/3)
#: (the paper multiplies them by 4 strides: 32 pixels at P3 for COCO at 800 pixels; the
#: scenes' objects, 7 to 42 pixels, need anchors of 1 stride: 8 to 51 pixels over P3-P5).
SCENE_ANCHOR_SCALES = (1.0, 2.0 ** (1 / 3), 2.0 ** (2 / 3))

#: Aspect ratios (``height / width``) of the anchors at every location: the paper's.
SCENE_ANCHOR_RATIOS = (0.5, 1.0, 2.0)


def prior_bias(prior_probability: float = 0.01) -> float:
    """The classification bias ``b = -log((1 - pi) / pi)`` that makes ``sigmoid(b) = pi``.

    Args:
        prior_probability (float): ``pi``, in (0, 1).

    Returns:
        float: ``b`` (``-4.595`` for ``pi = 0.01``; 0 for ``pi = 0.5``).
    """
    pi = check_number("prior_probability", prior_probability, low=0)
    if not 0.0 < pi < 1.0:
        raise ValueError(f"prior_probability must be in (0, 1), got {prior_probability!r}")
    return -math.log((1 - pi) / pi)


def retinanet_anchor_sizes(strides, scales=SCENE_ANCHOR_SCALES) -> list[tuple[float, ...]]:
    """Anchor sizes (square root of the area, pixels) of each level: ``stride * scale``.

    Args:
        strides (sequence of int): each level's stride in pixels.
        scales (sequence of float): sizes in strides, > 0.

    Returns:
        list[tuple[float, ...]]: per level, one size per scale.
    """
    if not isinstance(strides, (list, tuple)) or not strides:
        raise ValueError(f"strides must be a non-empty list of numbers, got {strides!r}")
    s = check_positive_numbers("strides", strides)
    k = check_positive_numbers("scales", scales)
    return [tuple(float(st * x) for x in k) for st in s]


class RetinaNetHead(nn.Module):
    """RetinaNet's two subnets, shared by every level: ``num_convs`` 3x3 convolutions + ReLU,
    then a 3x3 convolution to ``A C`` class scores (classification) or ``A 4`` offsets
    (regression). Initialised as the paper: weights normal with std 0.01, biases 0, except
    the last classification bias, :func:`prior_bias` of ``prior_probability`` (0 when None).

    Its parameters are named as torchvision's ``RetinaNetHead`` (``classification_head.conv``,
    ``.cls_logits``, ``regression_head.conv``, ``.bbox_reg``), whose convolutions it equals.

    Args:
        in_channels (int): channels of every pyramid level.
        num_anchors (int): ``A``, anchors per location.
        num_classes (int): ``C``, object classes (no background score).
        num_convs (int): convolutions before each subnet's last (paper and torchvision: 4).
        prior_probability (float or None): ``pi`` for the bias; None: bias 0 (p = 0.5).
        norm_groups (int, optional): a ``GroupNorm`` with this many groups after each tower
            convolution (then without bias), as torchvision's RetinaNet v2 head
            (``norm_layer=partial(nn.GroupNorm, 32)``); None: no normalisation (the paper's).

    Shape:
        ``forward(features)``: a list of ``[N, in_channels, H_l, W_l]``; returns
        ``cls_logits [N, sum_l H_l W_l A, C]`` and ``box_deltas [N, sum_l H_l W_l A, 4]``,
        level by level, location by location (rows first), anchor by anchor.
    """

    def __init__(
        self,
        in_channels: int,
        num_anchors: int,
        num_classes: int,
        num_convs: int = 4,
        prior_probability: float | None = 0.01,
        norm_groups: int | None = None,
    ):
        super().__init__()
        c = check_positive_int("in_channels", in_channels)
        self.num_anchors = check_positive_int("num_anchors", num_anchors)
        self.num_classes = check_positive_int("num_classes", num_classes)
        n = check_positive_int("num_convs", num_convs, allow_zero=True)
        bias = 0.0 if prior_probability is None else prior_bias(prior_probability)
        self.prior_probability = prior_probability

        if norm_groups is not None:
            g = check_positive_int("norm_groups", norm_groups)
            if c % g:
                raise ValueError(f"norm_groups ({g}) must divide in_channels ({c})")

        def block() -> nn.Sequential:
            if norm_groups is None:
                return nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True))
            return nn.Sequential(
                nn.Conv2d(c, c, 3, padding=1, bias=False),
                nn.GroupNorm(norm_groups, c),
                nn.ReLU(inplace=True),
            )

        def tower() -> nn.Sequential:
            return nn.Sequential(*[block() for _ in range(n)])

        self.classification_head = nn.Module()
        self.classification_head.conv = tower()
        self.classification_head.cls_logits = nn.Conv2d(
            c, self.num_anchors * self.num_classes, 3, padding=1
        )
        self.regression_head = nn.Module()
        self.regression_head.conv = tower()
        self.regression_head.bbox_reg = nn.Conv2d(c, self.num_anchors * 4, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.constant_(self.classification_head.cls_logits.bias, bias)

    def forward(self, features) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(features, (list, tuple)) or not features:
            raise ValueError("features must be a non-empty list of [N, C, H, W] maps")
        logits, deltas = [], []
        for f in features:
            if not isinstance(f, torch.Tensor) or f.dim() != 4:
                raise ValueError(
                    f"every feature map must be [N, C, H, W], got {getattr(f, 'shape', f)}"
                )
            n, _, h, w = f.shape
            cls = self.classification_head.cls_logits(self.classification_head.conv(f))
            box = self.regression_head.bbox_reg(self.regression_head.conv(f))
            # [N, A K, H, W] -> [N, A, K, H, W] -> [N, H, W, A, K] -> [N, H W A, K]
            logits.append(
                cls.view(n, self.num_anchors, -1, h, w)
                .permute(0, 3, 4, 1, 2)
                .reshape(n, -1, self.num_classes)
            )
            deltas.append(
                box.view(n, self.num_anchors, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4)
            )
        return torch.cat(logits, dim=1), torch.cat(deltas, dim=1)


class RetinaNetTargets(NamedTuple):
    """What RetinaNet trains each anchor of a batch towards.

    Attributes:
        labels (Tensor[N, A] int64): the matched object's class (1 .. C), 0 for background
            and for ignored anchors.
        matched (Tensor[N, A] int64): the matched object's index in its image, or
            :data:`vizlib.anchors.BACKGROUND` / :data:`vizlib.anchors.IGNORE`.
        deltas (Tensor[N, A, 4]): the matched object's box encoded relative to the anchor
            (weights 1); zeros elsewhere.
    """

    labels: torch.Tensor
    matched: torch.Tensor
    deltas: torch.Tensor

    @property
    def positive(self) -> torch.Tensor:
        """``[N, A]`` bool: anchors matched to an object."""
        return self.matched >= 0

    @property
    def negative(self) -> torch.Tensor:
        """``[N, A]`` bool: background anchors (the ignored ones are neither)."""
        return self.matched == BACKGROUND

    def one_hot(self, num_classes: int) -> torch.Tensor:
        """``[N, A, C]`` float: the classification targets (a row of zeros for background)."""
        c = check_positive_int("num_classes", num_classes)
        t = torch.zeros(*self.labels.shape, c + 1, device=self.labels.device)
        t.scatter_(-1, self.labels[..., None], 1.0)
        return t[..., 1:]


def encode_retinanet_targets(
    targets,
    anchors,
    num_classes: int,
    fg_iou_thresh: float = 0.5,
    bg_iou_thresh: float = 0.4,
    allow_low_quality_matches: bool = True,
) -> RetinaNetTargets:
    """Match every image's objects to the anchors and encode the positives.

    Args:
        targets (list[dict]): per image, ``boxes`` (Tensor[M, 4] xyxy pixels, ``M`` may be
            0) and ``labels`` (Tensor[M] int64 in ``[1, num_classes]``).
        anchors (Tensor[A, 4]): the anchors of one image, xyxy pixels.
        num_classes (int): ``C``.
        fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches: see
            :func:`vizlib.anchors.match_anchors` (RetinaNet: 0.5, 0.4, True).

    Returns:
        RetinaNetTargets: ``labels [N, A]``, ``matched [N, A]``, ``deltas [N, A, 4]``.
    """
    a = as_float_tensor("anchors", anchors)
    if a.dim() != 2 or a.shape[1] != 4:
        raise ValueError(f"anchors must have shape [A, 4], got {tuple(a.shape)}")
    c = check_positive_int("num_classes", num_classes)
    if not isinstance(targets, (list, tuple)):
        raise ValueError(
            f"targets must be a list of dicts (one per image), got {type(targets).__name__}"
        )
    gt_boxes, gt_labels = check_detection_targets(targets, len(targets), c)
    labels, matched, deltas = [], [], []
    for g, lab in zip(gt_boxes, gt_labels, strict=True):
        g, lab = g.to(a.device, a.dtype), lab.to(a.device)
        m = match_anchors(box_iou(g, a), fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches)
        pos = m >= 0
        lab_i = torch.zeros(len(a), dtype=torch.int64, device=a.device)
        lab_i[pos] = lab[m[pos]].long()
        delta = torch.zeros(len(a), 4, dtype=a.dtype, device=a.device)
        if bool(pos.any()):
            delta[pos] = encode_deltas(g[m[pos]], a[pos]).to(a.dtype)
        labels.append(lab_i)
        matched.append(m)
        deltas.append(delta)
    if not targets:
        z = torch.zeros(0, len(a), dtype=torch.int64, device=a.device)
        return RetinaNetTargets(z, z.clone(), torch.zeros(0, len(a), 4, device=a.device))
    return RetinaNetTargets(torch.stack(labels), torch.stack(matched), torch.stack(deltas))


def _check_head(cls_logits, box_deltas) -> tuple[torch.Tensor, torch.Tensor]:
    logits = as_float_tensor("cls_logits", cls_logits)
    if logits.dim() != 3 or logits.shape[-1] < 1:
        raise ValueError(f"cls_logits must have shape [N, A, C], got {tuple(logits.shape)}")
    deltas = as_float_tensor("box_deltas", box_deltas)
    if deltas.shape != (*logits.shape[:2], 4):
        raise ValueError(
            f"box_deltas must have shape [N, A, 4] = {(*logits.shape[:2], 4)}, got {tuple(deltas.shape)}"
        )
    return logits, deltas


def retinanet_loss(
    cls_logits,
    box_deltas,
    targets: RetinaNetTargets,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    focal=None,
) -> dict[str, torch.Tensor]:
    """RetinaNet's loss, in its three terms (:data:`LOSS_TERMS`).

    Per image, ``P_i`` its positives (at least 1 in the divisor), then the mean over the
    images::

        cls_positive = sum over positive anchors, all C classes, of FL / P_i
        cls_negative = sum over background anchors, all C classes, of FL / P_i
        box          = sum over positive anchors of |deltas - target deltas| / P_i

    Ignored anchors count in neither. An image without objects has ``P_i = 0``: its
    background anchors' focal loss divided by 1 (it still teaches "nothing here").

    Args:
        cls_logits (Tensor[N, A, C]): class scores before the sigmoid.
        box_deltas (Tensor[N, A, 4]): predicted offsets.
        targets (RetinaNetTargets): from :func:`encode_retinanet_targets`, same ``N``, ``A``.
        alpha (float or None), gamma (float): the focal loss's (see
            :func:`vizlib.losses.sigmoid_focal_loss`); ``gamma = 0, alpha = None`` is BCE.
        focal (callable, optional): ``focal(logits, targets) -> loss`` elementwise (same
            shape), replacing :func:`vizlib.losses.sigmoid_focal_loss` with ``alpha``, ``gamma``.

    Returns:
        dict[str, Tensor]: the three scalar terms.
    """
    logits, deltas = _check_head(cls_logits, box_deltas)
    if not isinstance(targets, RetinaNetTargets):
        raise ValueError(
            f"targets must be RetinaNetTargets (from encode_retinanet_targets), got {type(targets).__name__}"
        )
    if targets.labels.shape != logits.shape[:2]:
        raise ValueError(
            f"targets are for {tuple(targets.labels.shape)} anchors, the head gave {tuple(logits.shape[:2])}"
        )
    if focal is None:

        def focal(x, t):
            return sigmoid_focal_loss(x, t, alpha=alpha, gamma=gamma)
    elif not callable(focal):
        raise ValueError(f"focal must be a function (logits, targets) -> loss, got {focal!r}")
    n = len(logits)
    if n == 0:
        zero = logits.sum() * 0
        return dict.fromkeys(LOSS_TERMS, zero)
    one_hot = targets.one_hot(logits.shape[-1]).to(logits)
    fl = focal(logits, one_hot)
    if not isinstance(fl, torch.Tensor) or fl.shape != logits.shape:
        raise ValueError(
            f"focal must return the loss of every element, shape {tuple(logits.shape)}"
        )
    fl = fl.sum(dim=-1)  # [N, A]
    positive, negative = targets.positive.to(logits.device), targets.negative.to(logits.device)
    num_pos = positive.sum(dim=1).clamp(min=1).to(logits.dtype)  # [N]
    l1 = (deltas - targets.deltas.to(deltas)).abs().sum(dim=-1)  # [N, A]
    zero = logits.new_zeros(())
    return {
        "cls_positive": (torch.where(positive, fl, zero).sum(dim=1) / num_pos).mean(),
        "cls_negative": (torch.where(negative, fl, zero).sum(dim=1) / num_pos).mean(),
        "box": (torch.where(positive, l1, zero).sum(dim=1) / num_pos).mean(),
    }


def retinanet_postprocess(
    cls_logits,
    box_deltas,
    anchors,
    anchors_per_level,
    image_size,
    score_threshold: float = 0.05,
    nms_threshold: float = 0.5,
    max_detections: int = 100,
    topk_candidates: int = 1000,
) -> list[dict]:
    """Detections from RetinaNet's output, as torchvision's ``postprocess_detections``.

    On each level: the (anchor, class) pairs whose sigmoid score is above
    ``score_threshold`` (strictly), at most ``topk_candidates`` (the best), each decoded
    from its anchor's offsets and clipped to the image. Then NMS per class over all levels
    (:func:`vizlib.nms.batched_nms`) and the best ``max_detections``.

    Args:
        cls_logits (Tensor[N, A, C]): class scores before the sigmoid.
        box_deltas (Tensor[N, A, 4]): predicted offsets.
        anchors (Tensor[A, 4]): xyxy pixels.
        anchors_per_level (sequence of int): how many of the ``A`` anchors each level has.
        image_size (tuple[int, int]): ``(height, width)``, to clip to.
        score_threshold, nms_threshold (float): in [0, 1].
        max_detections, topk_candidates (int): >= 1.

    Returns:
        list[dict]: per image ``boxes`` (Tensor[K, 4] xyxy), ``scores`` (Tensor[K]),
        ``labels`` (Tensor[K] int64 in 1 .. C), best first.
    """
    logits, deltas = _check_head(cls_logits, box_deltas)
    a = as_float_tensor("anchors", anchors)
    if a.shape != (logits.shape[1], 4):
        raise ValueError(
            f"anchors must have shape [A, 4] = {(logits.shape[1], 4)}, got {tuple(a.shape)}"
        )
    counts = [
        check_positive_int("anchors_per_level", k, allow_zero=True) for k in anchors_per_level
    ]
    if sum(counts) != len(a):
        raise ValueError(f"anchors_per_level must add up to the {len(a)} anchors, got {counts}")
    size = check_int_pair("image_size", image_size)
    score_threshold = check_fraction("score_threshold", score_threshold)
    nms_threshold = check_fraction("nms_threshold", nms_threshold)
    max_detections = check_positive_int("max_detections", max_detections)
    topk_candidates = check_positive_int("topk_candidates", topk_candidates)
    num_classes = logits.shape[-1]
    results = []
    for i in range(len(logits)):
        all_boxes, all_scores, all_labels = [], [], []
        for lg, dl, an in zip(
            logits[i].detach().split(counts),
            deltas[i].detach().split(counts),
            a.split(counts),
            strict=True,
        ):
            scores = torch.sigmoid(lg.float()).flatten()  # [A_l C], anchor-major
            keep = torch.where(scores > score_threshold)[0]
            s, order = scores[keep].topk(min(topk_candidates, len(keep)))
            idx = keep[order]
            anchor_idx = torch.div(idx, num_classes, rounding_mode="floor")
            boxes = decode_deltas(dl[anchor_idx].float(), an[anchor_idx].float().to(dl.device))
            all_boxes.append(clip_boxes_to_image(boxes, size))
            all_scores.append(s)
            all_labels.append(idx % num_classes + 1)
        b, s, lab = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_labels)
        kept = batched_nms(b, s, lab, nms_threshold)[:max_detections]
        results.append({"boxes": b[kept], "scores": s[kept], "labels": lab[kept]})
    return results


class RetinaNet(nn.Module):
    """A small RetinaNet: a VGG-style backbone, an FPN on three of its stages, shared heads.

    The paper's RetinaNet reads P3-P7 (strides 8 to 128) of a ResNet with an FPN, with
    anchors of 32 to 512 pixels for COCO images resized to 800 pixels. The scenes are 64
    pixels wide with objects of about 7 to 42 pixels: P3, P4, P5 (strides 8, 16, 32;
    8 x 8, 4 x 4 and 2 x 2 maps) suffice; a P6 would be a single cell for anchors bigger
    than the image. At each location ``A = 9`` anchors: the paper's three octave scales
    (:data:`SCENE_ANCHOR_SCALES`, here 1 stride: 8 to 51 pixels over the three levels,
    instead of the paper's 4 strides) and three ratios (:data:`SCENE_ANCHOR_RATIOS`).
    Anchors are rounded to whole pixels, as torchvision's ``AnchorGenerator``, and centred
    in their cells (``anchor_offset``).

    Called like torchvision's detectors: in train mode ``model(images, targets)`` returns
    the dict of loss terms (:func:`retinanet_loss`), in eval mode ``model(images)`` one dict
    of ``boxes``, ``scores``, ``labels`` per image (:func:`retinanet_postprocess`).
    :meth:`raw` gives the head's output, :meth:`anchors` the anchors it refers to.

    Args:
        num_classes (int): ``C``, object classes (without background).
        backbone (VGGBackbone, optional): default ``VGGBackbone((16, 32, 64, 128, 128),
            convs_per_stage=(1, 2, 3, 2, 2))`` (strides 2 to 32; SSD's).
        levels (sequence of int): the backbone stages that get a pyramid level (default
            2, 3, 4: strides 8, 16, 32).
        fpn_channels (int): channels of every pyramid level.
        head_convs (int): convolutions in each subnet before its last (4, as the paper).
        head_norm_groups (int, optional): GroupNorm groups in the subnets (see
            :class:`RetinaNetHead`); None: none.
        scales, ratios: anchor sizes in strides, and aspect ratios (height / width).
        anchor_offset (float): where in its cell a location's anchors are centred, in
            [0, 1): 0 (default) the cell's top-left corner, as torchvision's
            ``AnchorGenerator``; 0.5 the cell's centre (see
            :func:`vizlib.nn.torchvision_detection.torchvision_retinanet`'s ``anchor_offset``).
        prior_probability (float or None): see :class:`RetinaNetHead`.
        fg_iou_thresh, bg_iou_thresh: matching thresholds.
        alpha, gamma: the focal loss's.
        focal (callable, optional): replaces the focal loss (see :func:`retinanet_loss`).
        score_threshold, nms_threshold, max_detections, topk_candidates: see
            :func:`retinanet_postprocess`.
    """

    def __init__(
        self,
        num_classes: int,
        backbone: VGGBackbone | None = None,
        levels=(2, 3, 4),
        fpn_channels: int = 64,
        head_convs: int = 4,
        head_norm_groups: int | None = None,
        scales=SCENE_ANCHOR_SCALES,
        ratios=SCENE_ANCHOR_RATIOS,
        anchor_offset: float = 0.0,
        prior_probability: float | None = 0.01,
        fg_iou_thresh: float = 0.5,
        bg_iou_thresh: float = 0.4,
        alpha: float | None = 0.25,
        gamma: float = 2.0,
        focal=None,
        score_threshold: float = 0.05,
        nms_threshold: float = 0.5,
        max_detections: int = 100,
        topk_candidates: int = 1000,
    ):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        if backbone is None:
            backbone = VGGBackbone((16, 32, 64, 128, 128), convs_per_stage=(1, 2, 3, 2, 2))
        if not hasattr(backbone, "channels") or not hasattr(backbone, "strides"):
            raise ValueError("backbone must be a VGGBackbone (with channels and strides)")
        self.levels = check_stage_levels(levels, backbone)
        self.backbone = backbone
        self.strides = [backbone.strides[i] for i in self.levels]
        self.fpn = FPN(
            [backbone.channels[i] for i in self.levels],
            check_positive_int("fpn_channels", fpn_channels),
        )
        self.scales = check_positive_numbers("scales", scales)
        self.ratios = check_positive_numbers("ratios", ratios)
        self.anchor_sizes = retinanet_anchor_sizes(self.strides, self.scales)
        self.anchor_offset = check_number("anchor_offset", anchor_offset, low=0)
        if self.anchor_offset >= 1:
            raise ValueError(f"anchor_offset must be in [0, 1), got {anchor_offset!r}")
        self.num_anchors = len(self.scales) * len(self.ratios)
        self.head = RetinaNetHead(
            fpn_channels,
            self.num_anchors,
            self.num_classes,
            head_convs,
            prior_probability,
            head_norm_groups,
        )
        self.fg_iou_thresh = check_fraction("fg_iou_thresh", fg_iou_thresh)
        self.bg_iou_thresh = check_fraction("bg_iou_thresh", bg_iou_thresh)
        if self.bg_iou_thresh > self.fg_iou_thresh:
            raise ValueError(
                f"bg_iou_thresh ({bg_iou_thresh}) must be <= fg_iou_thresh ({fg_iou_thresh})"
            )
        self.alpha, self.gamma = alpha, check_number("gamma", gamma, low=0)
        if focal is not None and not callable(focal):
            raise ValueError(f"focal must be a function (logits, targets) -> loss, got {focal!r}")
        self.focal = focal
        self.score_threshold = check_fraction("score_threshold", score_threshold)
        self.nms_threshold = check_fraction("nms_threshold", nms_threshold)
        self.max_detections = check_positive_int("max_detections", max_detections)
        self.topk_candidates = check_positive_int("topk_candidates", topk_candidates)
        self._anchors: dict = {}

    def feature_sizes(self, image_size) -> list[tuple[int, int]]:
        """``(H_l, W_l)`` of each level for an image of ``image_size = (height, width)``."""
        h, w = check_int_pair("image_size", image_size)
        return [(h // s, w // s) for s in self.strides]

    def anchors_per_level(self, image_size) -> list[int]:
        """How many anchors each level has: ``H_l W_l A``."""
        return [h * w * self.num_anchors for h, w in self.feature_sizes(image_size)]

    def anchors(self, image_size, device=None) -> torch.Tensor:
        """The anchors ``[sum_l H_l W_l A, 4]`` (xyxy pixels) for images of ``(height, width)``,
        in torchvision's ``AnchorGenerator``'s order: level by level, location by location,
        then ratio-major, scale-minor."""
        key = (check_int_pair("image_size", image_size), str(device))
        if key not in self._anchors:
            self._anchors[key] = anchors_for_image(
                key[0],
                self.feature_sizes(key[0]),
                self.anchor_sizes,
                self.ratios,
                offset=self.anchor_offset,
                round_to_int=True,
            ).to(device)
        return self._anchors[key]

    def raw(self, images) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's output: ``cls_logits [N, A, C]`` and ``box_deltas [N, A, 4]``, in the
        order of :meth:`anchors`."""
        x = as_image_batch(images)
        stages = self.backbone(x)
        return self.head(self.fpn([stages[i] for i in self.levels]))

    def forward(self, images, targets=None):
        x = as_image_batch(images)
        size = tuple(x.shape[-2:])
        logits, deltas = self.raw(x)
        anchors = self.anchors(size, x.device)
        if self.training:
            if targets is None:
                raise ValueError(
                    "in train mode RetinaNet needs targets (a list of dicts with boxes, labels)"
                )
            encoded = encode_retinanet_targets(
                targets, anchors, self.num_classes, self.fg_iou_thresh, self.bg_iou_thresh
            )
            return retinanet_loss(logits, deltas, encoded, self.alpha, self.gamma, self.focal)
        return retinanet_postprocess(
            logits,
            deltas,
            anchors,
            self.anchors_per_level(size),
            size,
            self.score_threshold,
            self.nms_threshold,
            self.max_detections,
            self.topk_candidates,
        )
