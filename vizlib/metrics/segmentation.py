"""Semantic segmentation metrics: confusion matrix, pixel accuracy, IoU per class, mIoU.

Every pixel is one classification, so the whole story is in a ``C x C`` confusion matrix
``cm[true, predicted]`` counted over the data set. From it:

* pixel accuracy = trace / total: the fraction of pixels labelled right. Dominated by big
  classes (road, sky), so a model that ignores small ones still looks good.
* IoU of class c = ``cm[c, c] / (row c + column c - cm[c, c])`` = TP / (TP + FP + FN).
* mIoU = the mean of the per-class IoUs (Long et al., "Fully Convolutional Networks for
  Semantic Segmentation", CVPR 2015; the PASCAL VOC and Cityscapes metric).

mIoU is computed from the matrix of the *whole* data set, never as a mean of per-image or
per-batch mIoUs (that would weigh a class in a small image as much as in a big one, and
depend on how the data set was batched). :class:`SegmentationMetric` accumulates the
matrix batch by batch for that reason. A class absent from both the predictions and the
truth has no IoU (0/0): it is NaN and left out of the mean. A class present in the truth
and never predicted, or predicted and never present, has IoU 0 and counts.

Pixels whose target is ``ignore_index`` (255 in VOC: object borders and "difficult"
regions) are not counted at all.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from vizlib._checks import as_label_map, check_positive_int

__all__ = [
    "SegmentationScores",
    "SegmentationMetric",
    "confusion_matrix",
    "pixel_accuracy",
    "per_class_iou",
    "mean_iou",
]


class SegmentationScores(NamedTuple):
    """The scores of :meth:`SegmentationMetric.compute`."""

    pixel_accuracy: float  # NaN if no pixel was counted
    per_class_iou: torch.Tensor  # [C] float64, NaN for a class absent from truth and prediction
    miou: float  # mean of the non-NaN entries (NaN if none)
    confusion_matrix: torch.Tensor  # [C, C] int64, rows = true class, columns = predicted


def confusion_matrix(
    pred, target, num_classes: int, ignore_index: int | None = 255
) -> torch.Tensor:
    """Count pixels by (true class, predicted class).

    Args:
        pred (Tensor[...] int): predicted class of each pixel, in ``[0, num_classes)``, e.g.
            ``[B, H, W]`` from ``logits.argmax(dim=1)``.
        target (Tensor[...] int): true class of each pixel, same shape, in
            ``[0, num_classes)`` or ``ignore_index``.
        num_classes (int): number of classes ``C``.
        ignore_index (int, optional): target value of pixels not to count (None: none).

    Returns:
        Tensor[C, C] int64: ``cm[i, j]`` pixels of true class ``i`` predicted as ``j``.
    """
    num_classes = check_positive_int("num_classes", num_classes)
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))
    ):
        raise ValueError(f"ignore_index must be an int or None, got {ignore_index!r}")
    p = as_label_map("pred", pred)
    t = as_label_map("target", target)
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(p.shape)} and {tuple(t.shape)}"
        )
    counted = torch.ones_like(t, dtype=torch.bool) if ignore_index is None else t != ignore_index
    p, t = p[counted], t[counted]  # [P] each: only the counted pixels
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        bad = int(t[(t < 0) | (t >= num_classes)][0])
        raise ValueError(
            f"target holds {bad}, outside [0, {num_classes}) and not ignore_index={ignore_index}"
        )
    if p.numel() and (int(p.min()) < 0 or int(p.max()) >= num_classes):
        bad = int(p[(p < 0) | (p >= num_classes)][0])
        raise ValueError(f"pred holds {bad} at a counted pixel, outside [0, {num_classes})")
    # One bincount: pair (i, j) -> bin i * C + j.
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _check_confmat(confmat) -> torch.Tensor:
    """A confusion matrix ``[C, C]`` of finite, non-negative counts, as float64 (this
    module's concept)."""
    if isinstance(confmat, np.ndarray):
        confmat = torch.from_numpy(confmat)
    if isinstance(confmat, torch.Tensor):
        confmat = confmat.detach().cpu()
    if (
        not isinstance(confmat, torch.Tensor)
        or confmat.dim() != 2
        or confmat.shape[0] != confmat.shape[1]
    ):
        shape = (
            tuple(confmat.shape) if isinstance(confmat, torch.Tensor) else type(confmat).__name__
        )
        raise ValueError(f"confmat must be a square tensor [C, C], got {shape}")
    if confmat.is_complex() or confmat.dtype == torch.bool:
        raise ValueError(f"confmat must hold counts, got dtype {confmat.dtype}")
    if confmat.numel() and (
        bool((confmat < 0).any()) or not bool(torch.isfinite(confmat.double()).all())
    ):
        raise ValueError("confmat must hold finite, non-negative counts")
    return confmat.double()


def pixel_accuracy(confmat) -> float:
    """Fraction of counted pixels whose class is right: ``trace / sum`` (NaN if no pixels).

    Args:
        confmat (Tensor[C, C]): confusion matrix, rows = true class.

    Returns:
        float: pixel accuracy in [0, 1].
    """
    cm = _check_confmat(confmat)
    total = float(cm.sum())
    return float(cm.diagonal().sum()) / total if total > 0 else float("nan")


def per_class_iou(confmat) -> torch.Tensor:
    """IoU of each class, TP / (TP + FP + FN), from a confusion matrix.

    Args:
        confmat (Tensor[C, C]): confusion matrix, rows = true class, columns = predicted.

    Returns:
        Tensor[C] float64: IoU per class; NaN where the class is neither in the truth nor
        in the predictions.
    """
    cm = _check_confmat(confmat)
    tp = cm.diagonal()  # [C]
    union = cm.sum(dim=0) + cm.sum(dim=1) - tp  # [C]: predicted + true - both
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def mean_iou(confmat) -> float:
    """mIoU: the mean of :func:`per_class_iou` over the classes that are defined (not NaN).

    Args:
        confmat (Tensor[C, C]): confusion matrix of the whole data set.

    Returns:
        float: mIoU in [0, 1], NaN if no class is defined.
    """
    iou = per_class_iou(confmat)
    defined = iou[~iou.isnan()]
    return float(defined.mean()) if defined.numel() else float("nan")


class SegmentationMetric:
    """Accumulates a confusion matrix over batches; scores come from the total.

    Example::

        metric = SegmentationMetric(num_classes=21)
        for images, masks in loader:
            metric.update(model(images)["out"].argmax(1), masks)
        scores = metric.compute()  # scores.miou, scores.per_class_iou, ...

    Args:
        num_classes (int): number of classes ``C``.
        ignore_index (int, optional): target value of pixels not to count.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        self.num_classes = check_positive_int("num_classes", num_classes)
        confusion_matrix(
            torch.zeros(0, dtype=torch.long),
            torch.zeros(0, dtype=torch.long),
            num_classes,
            ignore_index,
        )
        self.ignore_index = ignore_index
        self.confmat = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def reset(self) -> None:
        """Forget every pixel counted so far."""
        self.confmat.zero_()

    def update(self, pred, target) -> None:
        """Count one batch (see :func:`confusion_matrix` for ``pred`` and ``target``)."""
        self.confmat += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def compute(self) -> SegmentationScores:
        """Pixel accuracy, per-class IoU and mIoU of everything counted since the last reset."""
        cm = self.confmat.clone()
        return SegmentationScores(pixel_accuracy(cm), per_class_iou(cm), mean_iou(cm), cm)
