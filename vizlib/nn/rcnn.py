"""R-CNN (Girshick et al., 2014) and Fast R-CNN (Girshick, 2015) on external proposals.

Both detectors score *proposals* made outside the network (selective search, Uijlings et
al., 2013: :func:`vizlib.proposals.selective_search`) and differ in where the
convolutions run:

* :class:`RCNN` warps every proposal of the image to a fixed size (with a margin of
  context, as the paper's 16 pixels around a 227-pixel warp) and runs a small CNN on each
  crop: one forward pass *per proposal*;
* :class:`FastRCNN` runs the backbone *once per image* and pools each proposal's part of
  the shared feature map into a fixed grid (RoI pooling, 7 x 7 as the paper's VGG16).

The rest is shared, and is the second stage of Faster R-CNN (:mod:`vizlib.nn.faster_rcnn`,
reused here): two fully connected layers (:class:`~vizlib.nn.faster_rcnn.BoxHead`), class
scores over ``C + 1`` classes and class-specific box deltas
(:class:`~vizlib.nn.faster_rcnn.BoxPredictor`, :func:`vizlib.boxes.encode_deltas` with
weights 10, 10, 5, 5); training regions sampled at most 1 positive in 4
(:func:`~vizlib.nn.faster_rcnn.roi_head_targets`); the multitask loss
(:func:`~vizlib.nn.faster_rcnn.fast_rcnn_loss`, equal to torchvision's ``fastrcnn_loss``);
per-class NMS (:func:`~vizlib.nn.faster_rcnn.postprocess_detections`).

Where the proposals come from. ``model(images, targets)`` and ``model(images)`` behave as
torchvision's detectors, so ``vizlib.train.fit`` and ``vizlib.evaluate.evaluate_detection``
take these models unchanged. For each image the proposals are, in this order:
``proposals[i]`` passed to ``forward``; ``targets[i]["proposals"]`` (a dataset may attach
them); ``model.proposer(image)``, any callable ``image [3, H, W] -> Tensor[P, 4]``, usually
a :class:`vizlib.proposals.CachedProposals` so that selective search runs once per image
(the papers, too, computed the proposals once and stored them). The models call
``torchvision.ops.roi_align`` / ``roi_pool`` for speed; :mod:`vizlib.roi` holds the
readable versions, tested equal to them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._checks import (
    as_image_batch,
    check_boxes,
    check_detection_targets,
    check_fraction,
    check_number,
    check_positive_int,
)
from .backbone import VGGBackbone
from .faster_rcnn import (
    BoxHead,
    BoxPredictor,
    fast_rcnn_loss,
    postprocess_detections,
    roi_head_targets,
)

__all__ = ["RCNN", "FastRCNN", "RegionSample", "expand_boxes"]

POOLERS = ("roi_pool", "roi_align")


def expand_boxes(boxes, warp_size: int, context: int) -> torch.Tensor:
    """Grow boxes so that, once warped to ``warp_size`` pixels, the original box has
    ``context`` pixels of image around it (R-CNN: 16 pixels around a 227-pixel warp).

    Args:
        boxes (Tensor[K, 4]): ``(x1, y1, x2, y2)``.
        warp_size (int): side of the warped crop, > 2 * context.
        context (int): pixels of margin in the warped crop, >= 0.

    Returns:
        Tensor[K, 4]: the grown boxes ``(x1, y1, x2, y2)``, same centres; each side
        scaled by ``warp_size / (warp_size - 2 * context)``.
    """
    b = check_boxes("boxes", boxes)
    warp_size = check_positive_int("warp_size", warp_size)
    context = check_positive_int("context", context, allow_zero=True)
    if 2 * context >= warp_size:
        raise ValueError(f"context ({context}) must be less than half of warp_size ({warp_size})")
    scale = warp_size / (warp_size - 2 * context)
    centre = (b[:, :2] + b[:, 2:]) / 2  # [K, 2]
    half = (b[:, 2:] - b[:, :2]) * scale / 2  # [K, 2]
    return torch.cat([centre - half, centre + half], dim=1)


class RegionSample(tuple):
    """What one training step samples: per image the regions ``Tensor[R_i, 4]``, their
    labels ``Tensor[R_i]`` (0 background) and regression targets ``Tensor[R_i, 4]``."""

    __slots__ = ()

    def __new__(cls, regions, labels, targets):
        return super().__new__(cls, (regions, labels, targets))

    regions = property(lambda self: self[0])
    labels = property(lambda self: self[1])
    targets = property(lambda self: self[2])

    def counts(self) -> list[tuple[int, int]]:
        """``(positives, negatives)`` of each image."""
        return [(int((lab > 0).sum()), int((lab == 0).sum())) for lab in self.labels]


class _ProposalDetector(nn.Module):
    """What R-CNN and Fast R-CNN share: proposals in, detections or losses out.

    Subclasses define :meth:`region_features`: ``images [N, 3, H, W]`` and the regions of
    each image to one feature vector per region, ``[R, width]``.
    """

    def __init__(
        self,
        num_classes: int,
        width: int,
        proposer: Callable | None,
        batch_size_per_image: int,
        positive_fraction: float,
        fg_iou: float,
        bg_iou: float,
        score_thresh: float,
        nms_thresh: float,
        detections_per_img: int,
    ):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        if proposer is not None and not callable(proposer):
            raise ValueError(f"proposer must be callable or None, got {type(proposer).__name__}")
        self.proposer = proposer
        self.batch_size_per_image = check_positive_int("batch_size_per_image", batch_size_per_image)
        self.positive_fraction = check_fraction("positive_fraction", positive_fraction)
        self.fg_iou = check_fraction("fg_iou", fg_iou)
        self.bg_iou = check_fraction("bg_iou", bg_iou)
        if self.bg_iou > self.fg_iou:
            raise ValueError(f"bg_iou ({bg_iou}) must be <= fg_iou ({fg_iou})")
        self.score_thresh = check_fraction("score_thresh", score_thresh)
        self.nms_thresh = check_fraction("nms_thresh", nms_thresh)
        self.detections_per_img = check_positive_int("detections_per_img", detections_per_img)
        self.box_predictor = BoxPredictor(width, self.num_classes)
        # Fast R-CNN's initialisation of the two sibling layers: small Gaussians, zero bias
        nn.init.normal_(self.box_predictor.cls_score.weight, std=0.01)
        nn.init.normal_(self.box_predictor.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.box_predictor.cls_score.bias)
        nn.init.zeros_(self.box_predictor.bbox_pred.bias)

    # -- proposals and targets -----------------------------------------------------------

    def proposals_for(self, images, targets=None, proposals=None) -> list[torch.Tensor]:
        """The proposals of each image: ``proposals[i]``, else ``targets[i]["proposals"]``,
        else ``self.proposer(images[i])``; a list of ``Tensor[P_i, 4]`` ``(x1, y1, x2, y2)``."""
        x = as_image_batch(images)
        if proposals is not None:
            if not isinstance(proposals, (list, tuple)) or len(proposals) != len(x):
                raise ValueError(f"proposals must be a list of {len(x)} tensors [P_i, 4]")
            found = list(proposals)
        elif targets is not None and all(isinstance(t, dict) and "proposals" in t for t in targets):
            found = [t["proposals"] for t in targets]
        elif self.proposer is not None:
            found = [self.proposer(image) for image in x]
        else:
            raise ValueError(
                "no proposals: pass proposals=, give each target a 'proposals' entry, or "
                "build the model with a proposer (e.g. vizlib.proposals.CachedProposals())"
            )
        out = []
        for i, p in enumerate(found):
            p = check_boxes(
                f"proposals[{i}]", p.as_subclass(torch.Tensor) if isinstance(p, torch.Tensor) else p
            )
            out.append(p.to(device=x.device, dtype=x.dtype))
        return out

    def _gt(self, targets, n: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Boxes and labels of each image, checked, as plain tensors."""
        return check_detection_targets(targets, n, self.num_classes)

    def sample_regions(self, proposals, targets) -> RegionSample:
        """The regions one training step uses (the objects' own boxes are added to the
        proposals; at most ``positive_fraction`` of ``batch_size_per_image`` positive,
        IoU >= ``fg_iou``; background below ``bg_iou``), with labels and box targets."""
        gt_boxes, gt_labels = self._gt(targets, len(proposals))
        gt_boxes = [b.to(p) for b, p in zip(gt_boxes, proposals, strict=True)]
        gt_labels = [lab.to(p.device) for lab, p in zip(gt_labels, proposals, strict=True)]
        return RegionSample(
            *roi_head_targets(
                proposals,
                gt_boxes,
                gt_labels,
                self.fg_iou,
                self.bg_iou,
                self.batch_size_per_image,
                self.positive_fraction,
            )
        )

    # -- the network ------------------------------------------------------------------------

    def region_features(self, images: torch.Tensor, regions: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def score_regions(self, images, regions) -> tuple[torch.Tensor, torch.Tensor]:
        """``(class_logits [R, C + 1], box_regression [R, 4 (C + 1)])`` of all the regions
        (``regions``: one ``Tensor[R_i, 4]`` per image, concatenated in image order)."""
        x = as_image_batch(images)
        return self.box_predictor(self.region_features(x, list(regions)))

    def forward(self, images, targets=None, proposals=None):
        x = as_image_batch(images)
        if self.training and targets is None:
            raise ValueError(
                f"in train mode {type(self).__name__} needs targets (dicts with boxes, labels)"
            )
        found = self.proposals_for(x, targets, proposals)
        if not self.training:
            class_logits, box_regression = self.score_regions(x, found)
            return postprocess_detections(
                class_logits,
                box_regression,
                found,
                tuple(x.shape[-2:]),
                self.score_thresh,
                self.nms_thresh,
                self.detections_per_img,
            )
        sample = self.sample_regions(found, targets)
        class_logits, box_regression = self.score_regions(x, sample.regions)
        loss_classifier, loss_box_reg = fast_rcnn_loss(
            class_logits, box_regression, sample.labels, sample.targets
        )
        return {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}


class RCNN(_ProposalDetector):
    """R-CNN: every proposal warped to ``warp_size x warp_size`` and classified by a CNN.

    The crop is the proposal grown by ``context`` pixels of the warped size on each side
    (:func:`expand_boxes`), resampled with bilinear interpolation (RoIAlign on the image
    itself, ``aligned=True``, 2 x 2 samples per output pixel, so a big box is averaged,
    not aliased). The CNN: ``VGGBackbone(channels, convs_per_stage=1)`` (stride
    ``2**len(channels)``), two fully connected layers of ``width``, then the class scores
    and class-specific deltas. Unlike the paper (an ImageNet-pretrained AlexNet fine-tuned
    on the crops, then one linear SVM per class on its fc7 features and separate box
    regressors on pool5, three stages of training) one network is trained end to end with
    Fast R-CNN's multitask loss.

    Args:
        num_classes (int): ``C``, object classes (background is added).
        proposer (callable, optional): ``image [3, H, W] -> Tensor[P, 4]``, used when no
            proposals are given (see the module's docstring).
        warp_size (int): side of the warped crop (paper: 227), a multiple of the stride.
        context (int): pixels of context around the box in the crop (paper: 16).
        channels (tuple of int): channels of the CNN's stages.
        width (int): units of the two fully connected layers (paper: 4096).
        batch_size_per_image (int): regions sampled per image in training.
        positive_fraction (float): at most this share positive (paper: 32 of 128, 1:3).
        fg_iou, bg_iou (float): IoU for a positive, and below which a region is background.
        score_thresh, nms_thresh (float), detections_per_img (int): at test time.

    Shape:
        train: ``model(images, targets)`` -> ``{"loss_classifier", "loss_box_reg"}``;
        eval: ``model(images)`` -> per image ``{"boxes" [D, 4], "labels" [D], "scores" [D]}``.
    """

    def __init__(
        self,
        num_classes: int,
        proposer: Callable | None = None,
        *,
        warp_size: int = 32,
        context: int = 2,
        channels=(16, 32, 64),
        width: int = 256,
        batch_size_per_image: int = 64,
        positive_fraction: float = 0.25,
        fg_iou: float = 0.5,
        bg_iou: float = 0.5,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
    ):
        super().__init__(
            num_classes,
            width,
            proposer,
            batch_size_per_image,
            positive_fraction,
            fg_iou,
            bg_iou,
            score_thresh,
            nms_thresh,
            detections_per_img,
        )
        self.warp_size = check_positive_int("warp_size", warp_size)
        self.context = check_positive_int("context", context, allow_zero=True)
        if 2 * self.context >= self.warp_size:
            raise ValueError(
                f"context ({context}) must be less than half of warp_size ({warp_size})"
            )
        self.cnn = VGGBackbone(channels, convs_per_stage=1)
        stride = self.cnn.strides[-1]
        if warp_size % stride:
            raise ValueError(
                f"warp_size ({warp_size}) must be a multiple of the CNN's stride ({stride})"
            )
        side = warp_size // stride
        self.box_head = BoxHead(self.cnn.out_channels * side * side, width)

    def warp(self, images, regions) -> torch.Tensor:
        """The crops the CNN sees: ``Tensor[R, 3, warp_size, warp_size]``."""
        from torchvision.ops import roi_align

        x = as_image_batch(images)
        grown = [expand_boxes(r, self.warp_size, self.context).to(x) for r in regions]
        return roi_align(
            x,
            grown,
            (self.warp_size, self.warp_size),
            spatial_scale=1.0,
            sampling_ratio=2,
            aligned=True,
        )

    def region_features(self, images: torch.Tensor, regions: list[torch.Tensor]) -> torch.Tensor:
        crops = self.warp(images, regions)  # [R, 3, warp, warp]: one forward pass each
        return self.box_head(self.cnn(crops)[-1])  # [R, width]


class FastRCNN(_ProposalDetector):
    """Fast R-CNN: the backbone once per image, each proposal pooled from its feature map.

    The default backbone, ``VGGBackbone((32, 64), convs_per_stage=2)``, gives a 16 x 16 map
    for a 64-pixel scene (stride 4): the shapes (8 to 40 pixels) cover 2 to 10 cells, so a
    7 x 7 grid, the paper's (VGG16's conv5 at stride 16 under objects of 100 pixels and
    more), still has about one cell per bin. At stride 16 our shapes would be one or two
    cells wide, and 7 x 7 bins would copy the same few numbers. (A deeper backbone kept at
    stride 4 by atrous stages, dilated 2 and 4 times, learnt the shapes more slowly: a 3 x 3
    kernel dilated 4 times reads cells 4 apart, past a shape 2 or 3 cells wide.)

    Args:
        num_classes (int): ``C``, object classes (background is added).
        proposer (callable, optional): as :class:`RCNN`.
        backbone (VGGBackbone, optional): anything with ``out_channels``, ``strides`` and
            ``forward(x) -> list of maps`` (the last is pooled).
        output_size (int): side of the pooled grid (paper: 7).
        pooler (str): ``"roi_pool"`` (the paper's max over quantised bins) or
            ``"roi_align"`` (Mask R-CNN's bilinear samples, ``aligned=True``).
        width (int): units of the two fully connected layers (paper: 4096).
        Other arguments as :class:`RCNN`.
    """

    def __init__(
        self,
        num_classes: int,
        proposer: Callable | None = None,
        *,
        backbone: nn.Module | None = None,
        output_size: int = 7,
        pooler: str = "roi_pool",
        width: int = 256,
        batch_size_per_image: int = 64,
        positive_fraction: float = 0.25,
        fg_iou: float = 0.5,
        bg_iou: float = 0.5,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_img: int = 100,
    ):
        super().__init__(
            num_classes,
            width,
            proposer,
            batch_size_per_image,
            positive_fraction,
            fg_iou,
            bg_iou,
            score_thresh,
            nms_thresh,
            detections_per_img,
        )
        if pooler not in POOLERS:
            raise ValueError(f"pooler must be one of {POOLERS}, got {pooler!r}")
        self.pooler = pooler
        self.output_size = check_positive_int("output_size", output_size)
        self.backbone = backbone or VGGBackbone(
            (16, 32, 64, 64), convs_per_stage=1, output_stride=4
        )
        self.spatial_scale = 1.0 / check_number(
            "stride", self.backbone.strides[-1], low=0, strict=True
        )
        channels = self.backbone.out_channels
        self.box_head = BoxHead(channels * self.output_size**2, width)

    def pool(self, feature: torch.Tensor, regions) -> torch.Tensor:
        """Each region's ``output_size x output_size`` grid of the feature map ``[N, C, h, w]``:
        ``Tensor[R, C, output_size, output_size]``."""
        from torchvision.ops import roi_align, roi_pool

        size = (self.output_size, self.output_size)
        regions = [r.to(feature) for r in regions]
        if self.pooler == "roi_pool":
            return roi_pool(feature, regions, size, self.spatial_scale)
        return roi_align(feature, regions, size, self.spatial_scale, sampling_ratio=2, aligned=True)

    def region_features(self, images: torch.Tensor, regions: list[torch.Tensor]) -> torch.Tensor:
        feature = self.backbone(images)[-1]  # [N, C, H / s, W / s]: once per image
        return self.box_head(self.pool(feature, regions))  # [R, width]
