"""Matching detections to ground truth: which detections are true positives?

Both PASCAL VOC and COCO walk through an image's detections of one class from the highest
score down, greedily, and let each detection claim at most one ground-truth object
(Everingham et al., IJCV 2010, section 4.2; Lin et al., ECCV 2014). A detection that
claims an object is a true positive (TP); one that claims nothing is a false positive (FP);
a second detection of an already claimed object is a duplicate, hence a FP too. This is
why a detector must suppress duplicates (NMS) to score well.

The two benchmarks differ in details that move AP by a point or two:

===============================  ================================  ================================
                                 ``rule='voc'`` (VOC devkit)        ``rule='coco'`` (pycocotools)
===============================  ================================  ================================
which object a detection tries   the highest-IoU object, claimed    the highest-IoU object not yet
                                 or not: if it is claimed, the      claimed (ties: the later one),
                                 detection is a duplicate (FP)      so it may fall back to a second
ignored objects                  ``difficult``: a detection on one  crowd regions and objects
                                 is ignored (neither TP nor FP)     outside the area range; tried
                                                                    only if no regular object
                                                                    qualifies
crowd objects                    treated as ignored                 may absorb any number of
                                                                    detections; IoU = inter /
                                                                    area(detection)
threshold                        IoU >= t                           IoU >= min(t, 1 - 1e-10)
===============================  ================================  ================================

VOC's devkit also adds 1 pixel to widths and heights (``x2 - x1 + 1``); vizlib does not:
its boxes are continuous coordinates, as torchvision's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from vizlib._checks import as_flags, as_float_tensor, check_boxes, check_choice, check_fraction
from vizlib.boxes import box_iou
from vizlib.metrics.coco_iou import coco_box_iou

__all__ = ["NO_MATCH", "MATCH_RULES", "DetectionMatches", "match_detections", "greedy_match_coco"]

# A detection that matched no ground-truth object.
NO_MATCH = -1
MATCH_RULES = ("coco", "voc")

# pycocotools caps the threshold just below 1, so that t = 1.0 still accepts a perfect box.
_COCO_MAX_THRESHOLD = 1 - 1e-10


class DetectionMatches(NamedTuple):
    """Per-detection outcome of :func:`match_detections`, in the detections' input order.

    Exactly one of ``tp``, ``fp`` and ``ignored`` is True for each detection.
    """

    tp: torch.Tensor  # [N] bool: matched a regular ground-truth object
    fp: torch.Tensor  # [N] bool: matched nothing (or a duplicate, under rule='voc')
    ignored: torch.Tensor  # [N] bool: matched an ignored/crowd/difficult object
    matched_gt: torch.Tensor  # [N] int64: index of the matched object, NO_MATCH if none


def greedy_match_coco(
    ious: np.ndarray, thresholds: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray
) -> np.ndarray:
    """COCO's greedy matching of one image's detections of one class, for several
    thresholds and ignore patterns at once.

    The engine behind :func:`match_detections` (``rule='coco'``, one threshold) and
    :func:`vizlib.metrics.coco_evaluate` (10 thresholds x 4 area ranges per image and
    category). pycocotools (``COCOeval.evaluateImg``) runs one Python loop per threshold,
    detection and object. Here the detections are still visited one at a time (a greedy
    match is sequential: what a detection claims depends on what the higher-scored ones
    claimed), but every threshold ``T`` and every ignore pattern ``S`` (COCO's area ranges)
    is handled at once with arrays. NumPy in and out: it runs inside the COCO loop.

    Args:
        ious (ndarray[D, G]): IoU of each detection with each object, detections sorted by
            descending score (e.g. :func:`vizlib.metrics.coco_iou.coco_iou_xywh`).
        thresholds (ndarray[T]): IoU thresholds.
        gt_ignore (ndarray[S, G] bool): the objects ignored under each of ``S`` settings.
            Crowd objects must be ignored in every setting.
        gt_crowd (ndarray[G] bool): crowd objects, which may be claimed any number of times.

    Returns:
        ndarray[S, T, D] int64: the object each detection claimed, or :data:`NO_MATCH`.
    """
    ious, thresholds = np.asarray(ious), np.asarray(thresholds)
    gt_ignore, gt_crowd = np.asarray(gt_ignore), np.asarray(gt_crowd)
    if ious.ndim != 2 or thresholds.ndim != 1 or gt_ignore.ndim != 2 or gt_crowd.ndim != 1:
        raise ValueError(
            "expected ious [D, G], thresholds [T], gt_ignore [S, G] and gt_crowd [G], got shapes "
            f"{ious.shape}, {thresholds.shape}, {gt_ignore.shape} and {gt_crowd.shape}"
        )
    if gt_ignore.shape[1] != ious.shape[1] or gt_crowd.shape[0] != ious.shape[1]:
        raise ValueError(
            f"gt_ignore [S, G] and gt_crowd [G] must have G = {ious.shape[1]} (the columns of "
            f"ious), got {gt_ignore.shape} and {gt_crowd.shape}"
        )
    if gt_ignore.dtype != bool or gt_crowd.dtype != bool:
        raise ValueError(
            f"gt_ignore and gt_crowd must be bool, got {gt_ignore.dtype} and {gt_crowd.dtype}"
        )
    if bool((gt_crowd & ~gt_ignore).any()):
        raise ValueError(
            "every crowd object must be ignored in every setting (gt_ignore[:, gt_crowd])"
        )
    num_settings, num_gt = gt_ignore.shape
    num_dt = ious.shape[0]
    thr = np.minimum(thresholds, _COCO_MAX_THRESHOLD)[:, None]  # [T, 1]
    regular = ~gt_ignore[:, None, :]  # [S, 1, G]
    claimed = np.zeros((num_settings, len(thresholds), num_gt), dtype=bool)  # [S, T, G]
    matched = np.full((num_settings, len(thresholds), num_dt), NO_MATCH, dtype=np.int64)
    if num_gt == 0:
        return matched
    gt_index = np.arange(num_gt)
    # A detection whose best IoU is below every threshold stays unmatched: skip it.
    can_match = ious.max(axis=1, initial=0.0) >= thr.min()  # [D]
    for d in np.nonzero(can_match)[0]:
        above = ious[d] >= thr  # [T, G]
        candidates = above & (~claimed | gt_crowd)  # [S, T, G]; crowds can be re-claimed
        # A regular object beats any ignored one; try ignored objects only if none qualifies.
        preferred = candidates & regular  # [S, T, G]
        pool = np.where(preferred.any(axis=-1, keepdims=True), preferred, candidates)
        # The highest IoU in the pool; on ties the last object wins, because pycocotools
        # replaces its best match whenever it sees an IoU >= the best so far.
        pool_iou = np.where(pool, ious[d], -np.inf)  # [S, T, G]
        best = num_gt - 1 - np.argmax(pool_iou[..., ::-1], axis=-1)  # [S, T]
        found = pool.any(axis=-1)  # [S, T]
        matched[..., d] = np.where(found, best, NO_MATCH)
        claimed |= found[..., None] & (gt_index == best[..., None])  # [S, T, G]
    return matched


def _greedy_match_voc(ious: np.ndarray, threshold: float, gt_ignore: np.ndarray) -> np.ndarray:
    """The VOC devkit's matching (``VOCevaldet.m``), detections sorted by descending score.

    Returns ``[D]`` int64: the object each detection hit (its best-IoU object, if the IoU
    reaches the threshold), or ``NO_MATCH``. The caller decides TP/duplicate/ignored.
    """
    num_dt, num_gt = ious.shape
    matched = np.full(num_dt, NO_MATCH, dtype=np.int64)
    if num_gt == 0:
        return matched
    best = np.argmax(ious, axis=1)  # [D]; the first object on ties, as MATLAB's max
    hit = ious[np.arange(num_dt), best] >= threshold  # [D]
    matched[hit] = best[hit]
    return matched


def _object_flags(name: str, value, n: int) -> np.ndarray:
    """Optional flags of the ``n`` ground-truth objects (all False when None)."""
    return (
        np.zeros(n, dtype=bool)
        if value is None
        else as_flags(name, value, n, "one flag per object").numpy()
    )


def match_detections(
    pred_boxes,
    pred_scores,
    gt_boxes,
    iou_threshold: float = 0.5,
    gt_ignore=None,
    gt_crowd=None,
    rule: str = "coco",
) -> DetectionMatches:
    """Mark each detection of one class in one image as TP, FP or ignored.

    Detections are visited by descending score (a stable sort: ties keep their input
    order) and each claims at most one object, as described in the module docstring.

    Args:
        pred_boxes (Tensor[N, 4]): detections in ``(x1, y1, x2, y2)`` format.
        pred_scores (Tensor[N]): their confidences.
        gt_boxes (Tensor[M, 4]): ground-truth boxes in ``(x1, y1, x2, y2)`` format.
        iou_threshold (float): minimum IoU for a match, in [0, 1].
        gt_ignore (Tensor[M], bool, optional): objects whose detections are neither TP
            nor FP (VOC ``difficult``; COCO objects outside the area range).
        gt_crowd (Tensor[M], bool, optional): COCO crowd regions (``iscrowd``). They are
            ignored, measured with IoU = inter / area(detection), and under
            ``rule='coco'`` may absorb any number of detections.
        rule (str): ``'coco'`` or ``'voc'``, see the module docstring.

    Returns:
        DetectionMatches: ``tp``, ``fp``, ``ignored`` (each ``Tensor[N]`` bool) and
        ``matched_gt`` (``Tensor[N]`` int64, ``NO_MATCH`` where none), in input order.
    """
    check_choice("rule", rule, MATCH_RULES)
    # Metrics are computed on the CPU, outside autograd: model outputs may be on a GPU.
    dt = check_boxes("pred_boxes", pred_boxes).detach().cpu()
    gt = check_boxes("gt_boxes", gt_boxes).detach().cpu()
    scores = as_float_tensor("pred_scores", pred_scores).detach().cpu()
    if scores.dim() != 1 or scores.numel() != len(dt):
        raise ValueError(
            f"pred_scores must have shape [N] = [{len(dt)}] (one per box), got {tuple(scores.shape)}"
        )
    threshold = check_fraction("iou_threshold", iou_threshold)
    crowd = _object_flags("gt_crowd", gt_crowd, len(gt))
    ignore = _object_flags("gt_ignore", gt_ignore, len(gt)) | crowd  # a crowd is always ignored

    order = np.argsort(-scores.double().numpy(), kind="stable")  # highest score first
    if crowd.any():
        ious = coco_box_iou(dt[order], gt, crowd).numpy()  # [N, M]
    else:
        ious = box_iou(dt[order].double(), gt.double()).numpy()  # [N, M]

    if rule == "coco":
        thresholds = np.array([threshold])  # [T = 1]
        matched_sorted = greedy_match_coco(ious, thresholds, ignore[None, :], crowd)[0, 0]  # [N]
        is_ignored = np.zeros(len(dt), dtype=bool)
        hit = matched_sorted != NO_MATCH
        is_ignored[hit] = ignore[matched_sorted[hit]]
        is_tp = hit & ~is_ignored
    else:
        matched_sorted = _greedy_match_voc(ious, threshold, ignore)
        hit = matched_sorted != NO_MATCH
        is_ignored = np.zeros(len(dt), dtype=bool)
        is_tp = np.zeros(len(dt), dtype=bool)
        claimed = np.zeros(len(gt), dtype=bool)
        for d in np.nonzero(hit)[0]:
            g = matched_sorted[d]
            if ignore[g]:
                is_ignored[d] = True
            elif not claimed[g]:
                is_tp[d] = claimed[g] = True
            # else: a duplicate of a claimed object -> FP (it keeps matched_gt = g)
    is_fp = ~is_tp & ~is_ignored

    # Back to the caller's order.
    def unsort(values: np.ndarray) -> torch.Tensor:
        out = np.empty_like(values)
        out[order] = values
        return torch.from_numpy(out)

    return DetectionMatches(
        unsort(is_tp), unsort(is_fp), unsort(is_ignored), unsort(matched_sorted)
    )
