"""Panoptic FPN (Kirillov et al., 2019): Mask R-CNN plus a semantic head for the stuff.

Panoptic segmentation gives every pixel a class and, for the countable "things", an
instance. Panoptic FPN reads both from one feature pyramid: the instance branch is
Mask R-CNN's (:class:`~vizlib.nn.mask_rcnn.MaskRCNN`), and a light **semantic head**
predicts, at every pixel, one of the stuff classes or a single "thing" class (the
instances say which thing). Read top to bottom, this module is:

1. :func:`semantic_targets`: the semantic head's target, the scene's class map with every
   thing class folded into class 0 (:data:`THING_CLASS`), each stuff category ``k``-th in
   ``stuff_categories`` as class ``k``, and void as :data:`IGNORE`.
2. :class:`SemanticHead` (the paper's Fig. 3, detectron2's ``SemSegFPNHead``): each pyramid
   level is brought to stride 4 by stages of ``3 x 3`` convolution, GroupNorm, ReLU and
   ``2x`` bilinear upsampling (one stage for stride 4, two for 16, no upsampling at 4);
   the levels are summed, a ``1 x 1`` convolution gives the class logits, a bilinear
   upsampling by 4 brings them to the image.
3. :func:`semantic_loss`: per-pixel cross-entropy at the image's resolution, void ignored.
4. :func:`panoptic_merge`: the paper's heuristic (detectron2's
   ``combine_semantic_and_instance_outputs``) that turns the two outputs into one map of
   non-overlapping segments: instances by descending score, above ``score_threshold``;
   an instance whose pixels are more than ``overlap_threshold`` already taken is dropped,
   otherwise it keeps its free pixels; then each stuff class of the semantic map takes
   the pixels still free, if they are at least ``stuff_min_area``.
5. :class:`PanopticFPN`: the model. Train mode returns Mask R-CNN's losses times
   ``instance_loss_weight`` (lambda_i) and ``loss_sem_seg`` times ``semantic_loss_weight``
   (lambda_s; the paper and detectron2's COCO configuration: 0.5); eval mode returns the
   instances, the semantic logits and the merged panoptic map.
6. :func:`panoptic_segments`: a scene's true (semantic, instance) maps as a segment map
   and its segments, the format :mod:`vizlib.metrics.panoptic` scores.

Shapes: ``N`` images, ``H x W`` image, ``S`` stuff classes (the head has ``S + 1``
outputs), ``D`` detections.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import (
    check_fraction,
    check_int_tensor,
    check_number,
    check_positive_int,
)
from .mask_rcnn import MASK_RCNN_LOSS_NAMES, MaskRCNN

__all__ = [
    "THING_CLASS",
    "IGNORE",
    "SEMANTIC_LOSS_NAME",
    "PANOPTIC_FPN_LOSS_NAMES",
    "DETECTRON2_STUFF_AREA",
    "semantic_targets",
    "SemanticHead",
    "semantic_loss",
    "panoptic_merge",
    "panoptic_segments",
    "PanopticFPN",
]

#: The semantic head's class for every thing pixel (detectron2's class 0).
THING_CLASS = 0
#: Target value of a pixel the semantic loss ignores (void), detectron2's ``ignore_value``.
IGNORE = 255
#: The semantic head's loss, detectron2's name.
SEMANTIC_LOSS_NAME = "loss_sem_seg"
#: Every loss of :class:`PanopticFPN` in train mode, in order.
PANOPTIC_FPN_LOSS_NAMES = MASK_RCNN_LOSS_NAMES + (SEMANTIC_LOSS_NAME,)
#: detectron2's default minimum stuff area (``MODEL.PANOPTIC_FPN.COMBINE.STUFF_AREA_LIMIT``),
#: in pixels: sized for COCO's 800-pixel images. A whole 64 x 64 scene is 4,096 pixels.
DETECTRON2_STUFF_AREA = 4096


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _stuff_ids(stuff_categories) -> list[int]:
    try:
        ids = [int(c) for c in stuff_categories]
    except (TypeError, ValueError):
        raise ValueError(
            f"stuff_categories must be a sequence of category ids (ints), got {stuff_categories!r}"
        ) from None
    if not ids or len(set(ids)) != len(ids) or min(ids) < 1:
        raise ValueError(
            f"stuff_categories must be distinct category ids >= 1 (0 is void), got {ids}"
        )
    return ids


# ====================================================================== the targets


def semantic_targets(semantic, stuff_categories) -> torch.Tensor:
    """The semantic head's target: stuff classes, one "thing" class, void ignored.

    Args:
        semantic (Tensor[..., H, W] int): category id per pixel (0 void, things and stuff
            ids as in :mod:`vizlib.data.scenes`: things 1..5, stuff 6..8).
        stuff_categories (sequence of int): the stuff category ids, in the head's order:
            ``stuff_categories[k - 1]`` becomes class ``k``.

    Returns:
        Tensor[..., H, W] int64: :data:`THING_CLASS` (0) on every pixel of a category not
        in ``stuff_categories`` and not void, ``k`` on stuff category ``k``,
        :data:`IGNORE` (255) on void (0).
    """
    semantic = check_int_tensor("semantic", semantic, "[..., H, W] of category ids")
    if semantic.dim() < 2:
        raise ValueError(f"semantic must be [..., H, W], got shape {tuple(semantic.shape)}")
    if semantic.numel() and int(semantic.min()) < 0:
        raise ValueError("semantic must hold category ids >= 0 (0 = void)")
    ids = _stuff_ids(stuff_categories)
    semantic = semantic.as_subclass(torch.Tensor).long()
    out = torch.full_like(semantic, THING_CLASS)
    for k, c in enumerate(ids, start=1):
        out[semantic == c] = k
    out[semantic == 0] = IGNORE
    return out


# ====================================================================== the head


class SemanticHead(nn.Module):
    """Panoptic FPN's semantic head: every level to stride 4, summed, classified.

    Args:
        in_channels (int): channels of every pyramid level.
        strides (sequence of int): the levels' strides, powers of 2, each >= ``common_stride``.
        num_classes (int): outputs, ``S + 1`` (the stuff classes and one "thing" class).
        dims (int): channels of every stage (paper: 128).
        common_stride (int): where the levels meet (paper: 4).
        groups (int): GroupNorm groups (paper: 32 of 128 channels).

    ``forward(features)`` takes the levels ``[N, in_channels, H / s, W / s]`` (finest
    first, as :class:`~vizlib.nn.fpn.FPNBackbone` returns them) and returns logits
    ``[N, num_classes, H / common_stride, W / common_stride]``; :meth:`logits_at` upsamples
    them to the image.
    """

    def __init__(
        self,
        in_channels: int,
        strides,
        num_classes: int,
        dims: int = 64,
        common_stride: int = 4,
        groups: int = 16,
    ):
        super().__init__()
        in_channels = check_positive_int("in_channels", in_channels)
        self.num_classes = check_positive_int("num_classes", num_classes)
        dims = check_positive_int("dims", dims)
        self.common_stride = check_positive_int("common_stride", common_stride)
        groups = check_positive_int("groups", groups)
        if dims % groups:
            raise ValueError(f"dims ({dims}) must be a multiple of groups ({groups})")
        self.strides = [check_positive_int("strides", s) for s in strides]
        if not self.strides:
            raise ValueError("strides must list at least one level")
        self.scale_heads = nn.ModuleList()
        for s in self.strides:
            if s < self.common_stride or s & (s - 1):
                raise ValueError(
                    f"strides must be powers of 2 >= common_stride {self.common_stride}, got {s}"
                )
            n_stages = max(1, (s // self.common_stride).bit_length() - 1)  # log2(s / 4), >= 1
            layers: list[nn.Module] = []
            for k in range(n_stages):
                layers += [
                    nn.Conv2d(in_channels if k == 0 else dims, dims, 3, padding=1, bias=False),
                    nn.GroupNorm(groups, dims),
                    nn.ReLU(inplace=True),
                ]
                if s != self.common_stride:
                    layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.scale_heads.append(nn.Sequential(*layers))
        self.predictor = nn.Conv2d(dims, self.num_classes, 1)

    def forward(self, features) -> torch.Tensor:
        if not isinstance(features, (list, tuple)) or len(features) != len(self.strides):
            raise ValueError(
                f"features must be a list of {len(self.strides)} levels (strides {self.strides}), "
                f"got {_describe(features) if not isinstance(features, (list, tuple)) else len(features)}"
            )
        x = None
        for f, head in zip(features, self.scale_heads, strict=True):
            y = head(f)  # [N, dims, H / 4, W / 4]
            x = y if x is None else x + y
        return self.predictor(x)  # [N, S + 1, H / 4, W / 4]

    def logits_at(self, features, image_size) -> torch.Tensor:
        """``[N, S + 1, H, W]``: the logits upsampled (bilinear) to the image."""
        return F.interpolate(
            self(features), size=tuple(image_size), mode="bilinear", align_corners=False
        )


def semantic_loss(logits, targets) -> torch.Tensor:
    """Mean per-pixel cross-entropy of the semantic head, :data:`IGNORE` pixels left out.

    Args:
        logits (Tensor[N, S + 1, H, W]): at the image's resolution.
        targets (Tensor[N, H, W] int64): :func:`semantic_targets`.

    Returns:
        Tensor[]: the loss; 0 (with a graph) when every pixel is ignored.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 4 or not logits.is_floating_point():
        raise ValueError(
            f"logits must be a floating tensor [N, S + 1, H, W], got {_describe(logits)}"
        )
    targets = check_int_tensor("targets", targets, "[N, H, W] of head classes")
    if targets.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"targets must have shape {(logits.shape[0], *logits.shape[2:])} to match the "
            f"logits {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    targets = targets.long()
    bad = (targets != IGNORE) & ((targets < 0) | (targets >= logits.shape[1]))
    if bool(bad.any()):
        raise ValueError(f"targets must be in [0, {logits.shape[1] - 1}] or {IGNORE} (ignored)")
    if not bool((targets != IGNORE).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, targets, ignore_index=IGNORE)


# ====================================================================== the merge


def panoptic_merge(
    scores,
    labels,
    masks,
    semantic,
    stuff_categories,
    overlap_threshold: float = 0.5,
    score_threshold: float = 0.5,
    stuff_min_area: int = DETECTRON2_STUFF_AREA,
    mask_threshold: float = 0.5,
) -> tuple[torch.Tensor, list[dict]]:
    """One map of non-overlapping segments from the instances and the semantic map.

    The heuristic of Panoptic FPN (Kirillov et al., 2019), as detectron2's
    ``combine_semantic_and_instance_outputs``:

    1. instances by descending score, stopping below ``score_threshold``; each one's
       binary mask (``masks > mask_threshold``); an empty mask is skipped; if more than
       ``overlap_threshold`` of its pixels are already taken by a higher-scoring
       instance, it is dropped; otherwise it takes its free pixels as a new segment;
    2. each stuff class ``k >= 1`` of the semantic map (:data:`THING_CLASS` is skipped:
       the instances cover the things) takes the pixels of class ``k`` still free, as one
       segment of category ``stuff_categories[k - 1]``, if they number at least
       ``stuff_min_area``. Pixels left free are void (id 0).

    Args:
        scores (Tensor[D]): the instances' scores.
        labels (Tensor[D] int): their category ids.
        masks (Tensor[D, H, W] or Tensor[D, 1, H, W]): probabilities (or bool masks).
        semantic (Tensor[H, W] int): the head's class per pixel (the argmax of its logits).
        stuff_categories (sequence of int): category id of head class ``k`` at ``k - 1``.
        overlap_threshold (float): in [0, 1], detectron2's ``OVERLAP_THRESH`` (0.5).
        score_threshold (float): in [0, 1], ``INSTANCES_CONFIDENCE_THRESH`` (0.5).
        stuff_min_area (int): pixels, ``STUFF_AREA_LIMIT`` (4,096, :data:`DETECTRON2_STUFF_AREA`).
        mask_threshold (float): in [0, 1], where a mask probability counts as inside.

    Returns:
        tuple: ``ids`` ``Tensor[H, W]`` int64 (segments ``1 .. n`` in the order they were
        made, 0 void) and ``segments``, a list of ``n`` dicts ``{"id", "category_id",
        "isthing", "area"}`` (things add ``"score"`` and ``"instance"``, the index of the
        detection), the format :func:`vizlib.metrics.panoptic_quality` takes.
    """
    if not isinstance(scores, torch.Tensor) or scores.dim() != 1 or not scores.is_floating_point():
        raise ValueError(f"scores must be a floating tensor [D], got {_describe(scores)}")
    labels = check_int_tensor("labels", labels, "[D] (a category per instance)")
    semantic = check_int_tensor("semantic", semantic, "[H, W] (the head's class per pixel)")
    if semantic.dim() != 2:
        raise ValueError(f"semantic must be [H, W], got shape {tuple(semantic.shape)}")
    if not isinstance(masks, torch.Tensor) or masks.is_complex():
        raise ValueError(f"masks must be a tensor [D, H, W], got {_describe(masks)}")
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]  # torchvision's [D, 1, H, W]
    d = len(scores)
    if masks.shape != (d, *semantic.shape) or labels.shape != (d,):
        raise ValueError(
            f"masks must be [D, H, W] = {[d, *semantic.shape]} and labels [D] = [{d}] "
            f"(one per score, the semantic map's size), got {tuple(masks.shape)} and "
            f"{tuple(labels.shape)}"
        )
    ids_of_stuff = _stuff_ids(stuff_categories)
    overlap_threshold = check_fraction("overlap_threshold", overlap_threshold)
    score_threshold = check_fraction("score_threshold", score_threshold)
    stuff_min_area = check_positive_int("stuff_min_area", stuff_min_area, allow_zero=True)
    mask_threshold = check_fraction("mask_threshold", mask_threshold)
    semantic = semantic.as_subclass(torch.Tensor).long().cpu()
    if semantic.numel() and (int(semantic.min()) < 0 or int(semantic.max()) > len(ids_of_stuff)):
        raise ValueError(
            f"semantic must hold head classes 0 (thing) .. {len(ids_of_stuff)} (one per stuff "
            f"category), got values in [{int(semantic.min())}, {int(semantic.max())}]"
        )
    binary = masks.detach().cpu()
    binary = binary if binary.dtype == torch.bool else binary > mask_threshold  # [D, H, W]

    ids = torch.zeros(semantic.shape, dtype=torch.int64)
    segments: list[dict] = []
    order = torch.argsort(scores.detach().cpu(), descending=True, stable=True)
    for i in order.tolist():
        score = float(scores[i])
        if score < score_threshold:
            break
        mask = binary[i]
        area = int(mask.sum())
        if area == 0:
            continue
        taken = int((mask & (ids > 0)).sum())
        if taken / area > overlap_threshold:
            continue
        mask = mask & (ids == 0)  # [H, W]: its free pixels
        ids[mask] = len(segments) + 1
        segments.append(
            {
                "id": len(segments) + 1,
                "category_id": int(labels[i]),
                "isthing": True,
                "area": int(mask.sum()),
                "score": score,
                "instance": i,
            }
        )
    for k in sorted(set(semantic.unique().tolist()) - {THING_CLASS}):
        region = (semantic == k) & (ids == 0)  # [H, W]
        area = int(region.sum())
        if area < stuff_min_area or area == 0:
            continue
        ids[region] = len(segments) + 1
        segments.append(
            {
                "id": len(segments) + 1,
                "category_id": ids_of_stuff[k - 1],
                "isthing": False,
                "area": area,
            }
        )
    return ids, segments


def panoptic_segments(semantic, instances, stuff_categories) -> tuple[torch.Tensor, list[dict]]:
    """A scene's truth as a segment map: each thing one segment, each stuff class one.

    Args:
        semantic (Tensor[H, W] int): category id per pixel (0 void).
        instances (Tensor[H, W] int): instance number per pixel (0: no thing), things
            numbered from 1 (``PanopticScenes``' ``instances``).
        stuff_categories (sequence of int): the stuff category ids.

    Returns:
        tuple: ``ids`` ``Tensor[H, W]`` int64 (thing ``i`` keeps id ``i``, stuff category
        ``c`` gets ``1000 c`` as in the COCO export, 0 void) and ``segments``, dicts
        ``{"id", "category_id", "isthing", "area", "iscrowd": 0}``.
    """
    semantic = check_int_tensor("semantic", semantic, "[H, W] of category ids")
    instances = check_int_tensor("instances", instances, "[H, W] of instance numbers")
    if semantic.dim() != 2 or semantic.shape != instances.shape:
        raise ValueError(
            f"semantic and instances must be two maps [H, W] of the same size, got "
            f"{tuple(semantic.shape)} and {tuple(instances.shape)}"
        )
    stuff = _stuff_ids(stuff_categories)
    semantic = semantic.as_subclass(torch.Tensor).long().cpu()
    instances = instances.as_subclass(torch.Tensor).long().cpu()
    if semantic.numel() and (int(semantic.min()) < 0 or int(instances.min()) < 0):
        raise ValueError("semantic and instances must hold values >= 0")
    if instances.numel() and int(instances.max()) >= 1000:
        raise ValueError("instances must number fewer than 1000 things (stuff ids are 1000 c)")
    ids = torch.zeros_like(semantic)
    segments = []
    for i in sorted(set(instances.unique().tolist()) - {0}):
        region = instances == i
        cats = semantic[region].unique().tolist()
        if len(cats) != 1 or cats[0] in stuff or cats[0] == 0:
            raise ValueError(
                f"thing {i} must cover pixels of one thing category, got categories {cats}"
            )
        ids[region] = i
        segments.append(
            {
                "id": i,
                "category_id": int(cats[0]),
                "isthing": True,
                "area": int(region.sum()),
                "iscrowd": 0,
            }
        )
    for c in stuff:
        region = (semantic == c) & (instances == 0)
        if bool(region.any()):
            ids[region] = 1000 * c
            segments.append(
                {
                    "id": 1000 * c,
                    "category_id": c,
                    "isthing": False,
                    "area": int(region.sum()),
                    "iscrowd": 0,
                }
            )
    return ids, segments


# ====================================================================== the model


class PanopticFPN(MaskRCNN):
    """Panoptic FPN: :class:`~vizlib.nn.mask_rcnn.MaskRCNN` (no keypoints) plus a
    :class:`SemanticHead` on the same pyramid, trained jointly.

    Train mode: ``model(images, targets)`` with targets holding Mask R-CNN's ``boxes``,
    ``labels``, ``masks`` and ``sem_seg`` ``Tensor[H, W]`` int64 (:func:`semantic_targets`)
    returns Mask R-CNN's five losses times ``instance_loss_weight`` and
    ``loss_sem_seg`` times ``semantic_loss_weight``: ``L = lambda_i (L_rpn + L_cls +
    L_box + L_mask) + lambda_s L_sem`` (Kirillov et al., 2019, Sec. 3.3; each term is
    returned already weighted, as detectron2 does, so their sum is the loss).

    Eval mode: ``model(images)`` returns per image Mask R-CNN's ``boxes``, ``labels``,
    ``scores``, ``masks`` ``[D, 1, H, W]``, plus ``sem_seg`` ``[S + 1, H, W]`` (logits),
    ``panoptic`` ``[H, W]`` int64 (:func:`panoptic_merge` with this model's settings) and
    ``segments`` (its list of dicts).

    Args:
        num_classes (int): thing classes (no background).
        image_size: ``(height, width)``.
        stuff_categories (sequence of int): the stuff category ids; the head has
            ``len(stuff_categories) + 1`` outputs.
        semantic_dims (int): :class:`SemanticHead`'s channels.
        semantic_loss_weight (float): lambda_s (paper, COCO: 0.5).
        instance_loss_weight (float): lambda_i (paper: 1).
        overlap_threshold, merge_score_threshold, stuff_min_area: :func:`panoptic_merge`'s.
        **kwargs: :class:`~vizlib.nn.mask_rcnn.MaskRCNN`'s settings (keypoints refused).
    """

    def __init__(
        self,
        num_classes: int,
        image_size,
        stuff_categories=(6, 7, 8),
        semantic_dims: int = 64,
        semantic_loss_weight: float = 0.5,
        instance_loss_weight: float = 1.0,
        overlap_threshold: float = 0.5,
        merge_score_threshold: float = 0.5,
        stuff_min_area: int = DETECTRON2_STUFF_AREA,
        **kwargs,
    ):
        if kwargs.get("num_keypoints") is not None:
            raise ValueError("PanopticFPN has no keypoint head: leave num_keypoints out")
        super().__init__(num_classes, image_size, **kwargs)
        self.stuff_categories = _stuff_ids(stuff_categories)
        self.semantic_head = SemanticHead(
            self.backbone.out_channels,
            self.strides,
            len(self.stuff_categories) + 1,
            semantic_dims,
        )
        self.semantic_loss_weight = check_number(
            "semantic_loss_weight", semantic_loss_weight, low=0
        )
        self.instance_loss_weight = check_number(
            "instance_loss_weight", instance_loss_weight, low=0
        )
        self.overlap_threshold = check_fraction("overlap_threshold", overlap_threshold)
        self.merge_score_threshold = check_fraction("merge_score_threshold", merge_score_threshold)
        self.stuff_min_area = check_positive_int("stuff_min_area", stuff_min_area, allow_zero=True)

    @property
    def loss_names(self) -> tuple[str, ...]:
        return PANOPTIC_FPN_LOSS_NAMES

    def _semantic_targets(self, targets, n: int, device) -> torch.Tensor:
        out = []
        for i, t in enumerate(targets):
            if "sem_seg" not in t:
                raise ValueError(
                    f"targets[{i}] must have sem_seg [H, W] (semantic_targets of the scene's "
                    "semantic map) for PanopticFPN"
                )
            s = check_int_tensor(f"targets[{i}]['sem_seg']", t["sem_seg"], "[H, W]")
            if tuple(s.shape) != self.image_size:
                raise ValueError(
                    f"targets[{i}]['sem_seg'] must have shape {self.image_size}, got {tuple(s.shape)}"
                )
            out.append(s.as_subclass(torch.Tensor).long())
        return (
            torch.stack(out).to(device)
            if out
            else torch.zeros(0, *self.image_size, dtype=torch.long)
        )

    def merge(self, detections, sem_logits, **overrides) -> list[tuple[torch.Tensor, list[dict]]]:
        """:func:`panoptic_merge` of each image with this model's settings (``overrides``:
        ``overlap_threshold``, ``score_threshold``, ``stuff_min_area``)."""
        options = {
            "overlap_threshold": self.overlap_threshold,
            "score_threshold": self.merge_score_threshold,
            "stuff_min_area": self.stuff_min_area,
        } | overrides
        return [
            panoptic_merge(
                d["scores"], d["labels"], d["masks"], s.argmax(0), self.stuff_categories, **options
            )
            for d, s in zip(detections, sem_logits, strict=True)
        ]

    def forward(self, images, targets=None):
        x = self._images(images)
        if self.training and targets is None:
            raise ValueError(
                "in train mode PanopticFPN needs targets (dicts with boxes, labels, masks, sem_seg)"
            )
        features = self.backbone(x)  # list of [N, C, H / s, W / s]
        sem_logits = self.semantic_head.logits_at(features, self.image_size)  # [N, S + 1, H, W]
        if not self.training:
            proposals, _, _ = self.rpn(features, self.image_size)
            detections = self.segment(features, self.detect(features, proposals))
            out = []
            for d, s, (ids, segs) in zip(
                detections, sem_logits, self.merge(detections, sem_logits), strict=True
            ):
                out.append({**d, "sem_seg": s, "panoptic": ids.to(s.device), "segments": segs})
            return out

        sem_t = self._semantic_targets(targets, len(x), x.device)
        losses = self.train_losses(x, features, targets)
        losses = {k: v * self.instance_loss_weight for k, v in losses.items()}
        losses[SEMANTIC_LOSS_NAME] = self.semantic_loss_weight * semantic_loss(sem_logits, sem_t)
        return losses

    @torch.no_grad()
    def semantic_logits(self, images) -> torch.Tensor:
        """``[N, S + 1, H, W]`` logits of the semantic head alone (mode restored)."""
        was = self.training
        self.eval()
        try:
            x = self._images(images)
            return self.semantic_head.logits_at(self.backbone(x), self.image_size)
        finally:
            self.train(was)
