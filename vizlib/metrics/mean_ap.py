"""Mean average precision over the classes of a data set, at one IoU threshold.

For each class: match every image's detections of that class to its objects
(:func:`~vizlib.metrics.match_detections`), pool the matched detections of all images into
one precision-recall curve (:func:`~vizlib.metrics.precision_recall_curve`), and take its
AP (:func:`~vizlib.metrics.average_precision`). mAP is the mean over classes.

Pooling before the curve matters: the AP of a data set is not the mean of per-image APs.
A class without any (non-ignored) ground truth has no recall, so no AP: it gets NaN and
is left out of the mean, as COCO does with its -1.

For the full COCO protocol (10 IoU thresholds, area ranges, max detections) use
:func:`~vizlib.metrics.coco_evaluate`. With ``method='coco'``, ``rule='coco'``, at most 100
detections per image and no ``area`` filtering, this function's mAP at 0.5 equals COCO's
AP50.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from vizlib._checks import (
    as_flags,
    as_float_tensor,
    check_choice,
    check_fraction,
    check_labels,
    check_per_image,
)
from vizlib.metrics.average_precision import (
    AP_METHODS,
    PrecisionRecall,
    average_precision,
    precision_recall_curve,
)
from vizlib.metrics.detection import MATCH_RULES, match_detections

__all__ = ["MeanAP", "mean_average_precision"]


class MeanAP(NamedTuple):
    """Result of :func:`mean_average_precision`."""

    map: float  # mean of the per-class APs that are not NaN (NaN if none is defined)
    per_class: dict[int, float]  # class label -> AP (NaN: no ground truth)
    curves: dict[int, PrecisionRecall]  # class label -> its PR curve (classes with ground truth)
    num_gt: dict[int, int]  # class label -> number of non-ignored ground-truth objects


def _check_image_dict(name: str, i: int, d, keys: tuple[str, ...]) -> None:
    """One image's entry of a detection set: a dict with ``keys`` (torchvision's layout)."""
    if not isinstance(d, dict):
        raise ValueError(f"{name}[{i}] must be a dict with keys {keys}, got {type(d).__name__}")
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(f"{name}[{i}] lacks the key(s) {missing}; expected {keys}")


def _cpu(value) -> torch.Tensor:
    """A tensor on the CPU, outside autograd (model outputs may live on a GPU)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return torch.as_tensor(np.asarray(value))


def _flags(i: int, target: dict, key: str, n: int) -> torch.Tensor:
    """``targets[i][key]`` as a bool tensor ``[n]``, all False when absent."""
    if target.get(key) is None:
        return torch.zeros(n, dtype=torch.bool)
    return as_flags(f"targets[{i}][{key!r}]", target[key], n)


def mean_average_precision(
    predictions,
    targets,
    iou_threshold: float = 0.5,
    method: str = "voc",
    rule: str | None = None,
) -> MeanAP:
    """mAP of a detector over a data set, one IoU threshold, VOC or COCO conventions.

    Args:
        predictions (list[dict]): one dict per image, as torchvision detection models
            return: ``boxes`` (Tensor[N, 4], ``(x1, y1, x2, y2)``), ``scores`` (Tensor[N]),
            ``labels`` (Tensor[N] int64).
        targets (list[dict]): one dict per image, same order: ``boxes`` (Tensor[M, 4],
            ``(x1, y1, x2, y2)``), ``labels`` (Tensor[M] int64), optional ``difficult``
            (Tensor[M] bool, ignored objects) and ``iscrowd`` (Tensor[M] bool, crowds).
        iou_threshold (float): IoU needed for a match, in [0, 1].
        method (str): how AP samples the curve: ``'voc07'``, ``'voc'`` or ``'coco'``.
        rule (str, optional): matching rule, ``'voc'`` or ``'coco'``; by default ``'coco'``
            for ``method='coco'`` and ``'voc'`` otherwise.

    Returns:
        MeanAP: ``map`` (float), ``per_class`` (dict label -> AP, NaN for a class with no
        ground truth), ``curves`` and ``num_gt`` per class.
    """
    check_choice("method", method, AP_METHODS)
    if rule is None:
        rule = "coco" if method == "coco" else "voc"
    check_choice("rule", rule, MATCH_RULES)
    threshold = check_fraction("iou_threshold", iou_threshold)
    check_per_image("per-image dicts", predictions=predictions, targets=targets)

    # Per class: the pooled scores, TP and ignored flags of every image, and the object count.
    scores: dict[int, list[torch.Tensor]] = {}
    is_tp: dict[int, list[torch.Tensor]] = {}
    ignored: dict[int, list[torch.Tensor]] = {}
    num_gt: dict[int, int] = {}
    for i, (pred, target) in enumerate(zip(predictions, targets, strict=True)):
        _check_image_dict("predictions", i, pred, ("boxes", "scores", "labels"))
        _check_image_dict("targets", i, target, ("boxes", "labels"))
        pred_boxes, gt_boxes = _cpu(pred["boxes"]), _cpu(target["boxes"])
        pred_labels = check_labels(
            f"predictions[{i}]['labels']", _cpu(pred["labels"]), len(pred_boxes)
        )
        gt_labels = check_labels(f"targets[{i}]['labels']", _cpu(target["labels"]), len(gt_boxes))
        difficult = _flags(i, target, "difficult", len(gt_boxes))
        crowd = _flags(i, target, "iscrowd", len(gt_boxes))
        pred_scores = as_float_tensor(f"predictions[{i}]['scores']", pred["scores"]).detach().cpu()
        if pred_scores.shape != pred_labels.shape:
            raise ValueError(
                f"predictions[{i}]['scores'] must have shape [{len(pred_labels)}] (one per box), "
                f"got {tuple(pred_scores.shape)}"
            )
        for c in torch.cat([pred_labels, gt_labels]).unique().tolist():
            p, g = pred_labels == c, gt_labels == c
            try:
                m = match_detections(
                    pred_boxes[p],
                    pred_scores[p],
                    gt_boxes[g],
                    threshold,
                    gt_ignore=difficult[g],
                    gt_crowd=crowd[g],
                    rule=rule,
                )
            except ValueError as exc:
                raise ValueError(f"predictions[{i}] / targets[{i}], class {c}: {exc}") from None
            scores.setdefault(c, []).append(pred_scores[p].double())
            is_tp.setdefault(c, []).append(m.tp)
            ignored.setdefault(c, []).append(m.ignored)
            num_gt[c] = num_gt.get(c, 0) + int((~(difficult[g] | crowd[g])).sum())

    per_class: dict[int, float] = {}
    curves: dict[int, PrecisionRecall] = {}
    for c in sorted(num_gt):
        if num_gt[c] == 0:
            per_class[c] = math.nan
            continue
        curve = precision_recall_curve(
            torch.cat(scores[c]), torch.cat(is_tp[c]), num_gt[c], ignored=torch.cat(ignored[c])
        )
        curves[c] = curve
        per_class[c] = average_precision(curve.precision, curve.recall, method)
    defined = [ap for ap in per_class.values() if not math.isnan(ap)]
    mean = sum(defined) / len(defined) if defined else math.nan
    return MeanAP(mean, per_class, curves, dict(sorted(num_gt.items())))
