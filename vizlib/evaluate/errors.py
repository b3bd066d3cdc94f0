"""A detector's mistakes, listed: the curves and the errors behind its AP.

COCO's AP says *how much* a detector misses; these functions say *which* boxes. Both
read an :class:`~vizlib.evaluate.common.Evaluation` of :func:`evaluate_detection` (its
predictions and its dataset) and match with :func:`vizlib.metrics.match_detections`
(greedy by score, one detection per object, per class):

* :func:`class_pr_curves`: each class's precision-recall curve over the whole set, every
  detection included (its area is the class's AP at that IoU);
* :func:`detection_errors`: the false positives (most confident first) and the missed
  objects, the two lists a "the loss falls but mAP is low" investigation starts from.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._checks import check_fraction
from ..metrics import match_detections, precision_recall_curve
from .common import Evaluation, as_tensor

__all__ = ["FalsePositive", "Miss", "class_pr_curves", "detection_errors"]


class FalsePositive(NamedTuple):
    """A detection that matches no object of its class (IoU below the threshold, or a
    second detection of an object already found)."""

    score: float
    image: int  # index in the evaluated dataset
    box: torch.Tensor  # [4] (x1, y1, x2, y2)
    label: int


class Miss(NamedTuple):
    """An object no detection of its class (above the score threshold) found."""

    image: int
    box: torch.Tensor  # [4] (x1, y1, x2, y2)
    label: int


def _check_detection_evaluation(evaluation) -> Evaluation:
    if not isinstance(evaluation, Evaluation) or evaluation.task != "detection":
        raise ValueError(
            "evaluation must be what vizlib.evaluate.evaluate_detection returns, got "
            f"{type(evaluation).__name__}"
            + (f" of task {evaluation.task!r}" if isinstance(evaluation, Evaluation) else "")
        )
    return evaluation


def _targets(evaluation: Evaluation):
    """(boxes [M, 4], labels [M]) of each evaluated image, in the evaluation's order."""
    for i in range(len(evaluation.predictions)):
        target = evaluation.dataset[i][1]
        yield as_tensor(target["boxes"]).float().reshape(-1, 4), as_tensor(target["labels"]).long()


def class_pr_curves(evaluation, iou_threshold: float = 0.5) -> dict:
    """Each class's precision-recall curve at one IoU, over the whole evaluated set.

    Args:
        evaluation (Evaluation): from :func:`~vizlib.evaluate.evaluate_detection`.
        iou_threshold (float): IoU at which a detection matches an object, in [0, 1].

    Returns:
        dict[str, PrecisionRecall]: class name (``evaluation.class_names``, else ``"class
        <label>"``) -> :func:`vizlib.metrics.precision_recall_curve` of every detection of
        that class; only classes with at least one object in the set.
    """
    evaluation = _check_detection_evaluation(evaluation)
    iou_threshold = check_fraction("iou_threshold", iou_threshold)
    scores, hits, num_gt = {}, {}, {}
    for pred, (gt_boxes, gt_labels) in zip(
        evaluation.predictions, _targets(evaluation), strict=True
    ):
        labels = pred["labels"]
        for c in set(labels.tolist()) | set(gt_labels.tolist()):
            mine = labels == c
            m = match_detections(
                pred["boxes"][mine], pred["scores"][mine], gt_boxes[gt_labels == c], iou_threshold
            )
            scores.setdefault(c, []).append(pred["scores"][mine].float())
            hits.setdefault(c, []).append(m.tp)
            num_gt[c] = num_gt.get(c, 0) + int((gt_labels == c).sum())
    names = evaluation.class_names
    curves = {}
    for c in sorted(num_gt):
        if num_gt[c]:
            name = names[c] if names is not None and 0 <= c < len(names) else f"class {c}"
            curves[name] = precision_recall_curve(
                torch.cat(scores[c]), torch.cat(hits[c]), num_gt[c]
            )
    return curves


def detection_errors(
    evaluation, score_threshold: float = 0.3, iou_threshold: float = 0.5
) -> tuple[list[FalsePositive], list[Miss]]:
    """The false positives and the misses of the detections scored at or above a threshold.

    Per image and class, detections are matched to objects greedily by score
    (:func:`vizlib.metrics.match_detections`); a wrong class is both a false positive
    and a miss.

    Args:
        evaluation (Evaluation): from :func:`~vizlib.evaluate.evaluate_detection`.
        score_threshold (float): detections below it are left out, in [0, 1].
        iou_threshold (float): IoU of a match, in [0, 1].

    Returns:
        tuple[list[FalsePositive], list[Miss]]: the false positives, most confident first,
        and the misses, in image order.
    """
    evaluation = _check_detection_evaluation(evaluation)
    score_threshold = check_fraction("score_threshold", score_threshold)
    iou_threshold = check_fraction("iou_threshold", iou_threshold)
    false_positives, misses = [], []
    for i, (pred, (gt_boxes, gt_labels)) in enumerate(
        zip(evaluation.predictions, _targets(evaluation), strict=True)
    ):
        keep = pred["scores"] >= score_threshold
        boxes, scores, labels = pred["boxes"][keep], pred["scores"][keep], pred["labels"][keep]
        found = torch.zeros(len(gt_boxes), dtype=torch.bool)  # [M]
        for c in sorted(set(labels.tolist()) | set(gt_labels.tolist())):
            mine, theirs = labels == c, torch.nonzero(gt_labels == c).flatten()
            m = match_detections(boxes[mine], scores[mine], gt_boxes[theirs], iou_threshold)
            found[theirs[m.matched_gt[m.tp]]] = True
            for k in torch.nonzero(m.fp).flatten().tolist():
                false_positives.append(
                    FalsePositive(float(scores[mine][k]), i, boxes[mine][k], int(c))
                )
        misses += [
            Miss(i, gt_boxes[k], int(gt_labels[k]))
            for k in torch.nonzero(~found).flatten().tolist()
        ]
    false_positives.sort(key=lambda fp: -fp.score)
    return false_positives, misses
