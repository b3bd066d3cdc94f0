"""Semantic segmentation: mIoU and pixel accuracy over a whole set, and everything the
segmentation chapters report about a trained model.

* :func:`evaluate_segmentation` scores a model with the confusion matrix of the whole set
  (``vizlib.metrics.SegmentationMetric``), and each image by its own mIoU (for choosing
  pictures, not for reporting);
* :func:`score_segmenter`: a trained model's mIoU, pixel accuracy, per-class IoU, trimap
  (boundary band) mIoU, parameters and inference time on a chapter's validation set, in
  one dict.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._checks import check_positive_int
from ..data.segmentation import SegmentationData
from ..metrics.boundary import TrimapMetric
from ..nn.blocks import count_parameters
from .common import Evaluation, as_tensor, model_device, sequential_loader
from .timing import inference_ms

__all__ = ["evaluate_segmentation", "score_segmenter"]


def evaluate_segmentation(
    model: torch.nn.Module,
    dataset,
    num_classes: int,
    *,
    ignore_index: int | None = 255,
    batch_size: int = 8,
    device=None,
    class_names: Sequence[str] | None = None,
) -> Evaluation:
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
                    raise ValueError(
                        f"the model must return logits [B, {num_classes}, H, W], "
                        f"got {tuple(logits.shape)}"
                    )
                if logits.shape[-2:] != masks.shape[-2:]:
                    logits = torch.nn.functional.interpolate(
                        logits.float(), size=masks.shape[-2:], mode="bilinear", align_corners=False
                    )
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
    details = {
        "per_class_iou": dict(zip(names, scores.per_class_iou.tolist(), strict=True)),
        "confusion_matrix": scores.confusion_matrix,
    }
    metrics = {"mIoU": scores.miou, "pixel_accuracy": scores.pixel_accuracy}
    return Evaluation("segmentation", metrics, per_image, "mIoU", preds, data, details, class_names)


def score_segmenter(
    model: torch.nn.Module,
    data: SegmentationData,
    *,
    widths: Sequence[int] = (1, 2, 4),
    batch_size: int = 50,
    timing_images: int = 16,
    device=None,
) -> dict:
    """Everything the chapters report about one trained model, on ``data.val``.

    Args:
        model (nn.Module): ``[N, 3, H, W] -> logits [N, num_classes, H, W]`` (or a dict
            with them under ``"out"``); left in the mode it was in.
        data (SegmentationData): scored on ``data.val``, ``data.ignore_index`` not counted.
        widths (sequence of int): half-widths (pixels) of the boundary bands of the
            trimap mIoU (Chen et al., 2017).
        batch_size (int): evaluation batch size.
        timing_images (int): images of the batch that :func:`inference_ms` times.
        device: where to evaluate; default: the model's device.

    Returns:
        dict with ``"mIoU"``, ``"pixel_accuracy"``, ``"trimap"`` (dict width -> mIoU in
        the band of that half-width around the true boundaries), ``"per_class_iou"``
        (dict name -> IoU), ``"parameters"`` (trainable), ``"ms_per_image"`` and
        ``"evaluation"`` (the :class:`vizlib.evaluate.Evaluation`, for galleries).
    """
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(data, SegmentationData):
        raise ValueError(
            f"data must be a SegmentationData (from segmentation_data), got {type(data).__name__}"
        )
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or not widths:
        raise ValueError(
            f"widths must be a non-empty sequence of band half-widths (ints >= 0), got {widths!r}"
        )
    widths = [check_positive_int("widths", w, allow_zero=True) for w in widths]
    batch_size = check_positive_int("batch_size", batch_size)
    timing_images = check_positive_int("timing_images", timing_images)
    evaluation = evaluate_segmentation(
        model,
        data.val,
        data.num_classes,
        ignore_index=data.ignore_index,
        batch_size=batch_size,
        device=device,
        class_names=data.class_names,
    )
    trimap = {}
    masks = [data.val[i][1] for i in range(len(data.val))]
    for width in widths:
        metric = TrimapMetric(data.num_classes, width, data.ignore_index)
        for pred, mask in zip(evaluation.predictions, masks, strict=True):
            metric.update(pred.long(), mask)
        trimap[width] = metric.compute().miou
    images = torch.stack([data.val[i][0] for i in range(min(timing_images, len(data.val)))])
    return {
        "mIoU": evaluation.metrics["mIoU"],
        "pixel_accuracy": evaluation.metrics["pixel_accuracy"],
        "trimap": trimap,
        "per_class_iou": evaluation.details["per_class_iou"],
        "parameters": count_parameters(model, trainable_only=True),
        "ms_per_image": inference_ms(model, images),
        "evaluation": evaluation,
    }


def _scene_class_names() -> tuple[str, ...]:
    from ..data.scenes import CLASS_NAMES

    return CLASS_NAMES
