"""Semantic segmentation: mIoU and pixel accuracy over a whole set.

:func:`evaluate_segmentation` scores a model with the confusion matrix of the whole set
(``vizlib.metrics.SegmentationMetric``), and each image by its own mIoU (for choosing
pictures, not for reporting).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._checks import check_positive_int
from .common import Evaluation, as_tensor, model_device, sequential_loader

__all__ = ["evaluate_segmentation"]


def evaluate_segmentation(model: torch.nn.Module, dataset, num_classes: int, *,
                          ignore_index: int | None = 255, batch_size: int = 8, device=None,
                          class_names: Sequence[str] | None = None) -> Evaluation:
    """mIoU and pixel accuracy of a semantic segmentation model over a whole set.

    Args:
        model (nn.Module): ``model(images [B, 3, H, W])`` returns logits
            ``[B, C, h, w]``, or a dict with them under ``"out"`` (torchvision's
            segmentation models). Logits smaller than the target are upsampled
            bilinearly first (as FCN does).
        dataset (Dataset or DataLoader): ``(image [3, H, W], mask [H, W] int64)``, e.g.
            ``vizlib.data.SegmentationScenes``. Evaluated in index order.
        num_classes (int): ``C``.
        ignore_index (int, optional): target value of pixels not counted.
        class_names (sequence of str, optional): per-class names for
            ``details["per_class_iou"]``.

    Returns:
        Evaluation: ``metrics`` ``"mIoU"`` (from the confusion matrix of the whole set)
        and ``"pixel_accuracy"``; ``details`` ``"per_class_iou"`` (dict, NaN for a class
        neither present nor predicted) and ``"confusion_matrix"``; per-image mIoU; the
        predicted label maps (uint8 when they fit).
    """
    from ..metrics import SegmentationMetric, confusion_matrix, mean_iou

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    num_classes = check_positive_int("num_classes", num_classes)
    batch_size = check_positive_int("batch_size", batch_size)
    loader, data = sequential_loader(dataset, batch_size, None)
    dev = model_device(model, device)
    metric = SegmentationMetric(num_classes, ignore_index)
    preds, per_image = [], []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for images, masks in loader:
                logits = model(as_tensor(images).to(dev))
                if isinstance(logits, dict):
                    logits = logits["out"]
                masks = as_tensor(masks).long().cpu()  # [B, H, W]
                if logits.dim() != 4 or logits.shape[1] != num_classes:
                    raise ValueError(f"the model must return logits [B, {num_classes}, H, W], "
                                     f"got {tuple(logits.shape)}")
                if logits.shape[-2:] != masks.shape[-2:]:
                    logits = torch.nn.functional.interpolate(
                        logits.float(), size=masks.shape[-2:], mode="bilinear", align_corners=False)
                pred = logits.argmax(dim=1).cpu()  # [B, H, W]
                metric.update(pred, masks)
                for p, m in zip(pred, masks, strict=True):
                    per_image.append(mean_iou(confusion_matrix(p, m, num_classes, ignore_index)))
                    preds.append(p.to(torch.uint8) if num_classes <= 256 else p)
    finally:
        model.train(was_training)
    if not preds:
        raise ValueError("the dataset is empty: nothing to evaluate")
    scores = metric.compute()
    if class_names is None and num_classes == len(_scene_class_names()):
        class_names = _scene_class_names()
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    details = {"per_class_iou": dict(zip(names, scores.per_class_iou.tolist(), strict=True)),
               "confusion_matrix": scores.confusion_matrix}
    metrics = {"mIoU": scores.miou, "pixel_accuracy": scores.pixel_accuracy}
    return Evaluation("segmentation", metrics, per_image, "mIoU", preds, data, details, class_names)


def _scene_class_names() -> tuple[str, ...]:
    from ..data.scenes import CLASS_NAMES

    return CLASS_NAMES
