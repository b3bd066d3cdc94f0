"""Detection and keypoints: COCO AP of a model, through the one COCO entry point.

* :func:`evaluate_detection`: COCO box (and mask) AP, the numbers every paper reports
  (:func:`vizlib.evaluate.coco.evaluate_coco`: equal to pycocotools), on the ground truth
  that ``vizlib.data.to_coco`` exports for the generated scenes (or built from the
  dataset's own targets for any other dataset, ``vizlib.data.targets_to_coco``).
* :func:`evaluate_keypoints`: COCO keypoint AP, where a match is measured by object
  keypoint similarity (OKS) instead of box IoU.

The per-image scores are for choosing pictures, not for reporting: detection uses the F1
of the detections scored above ``score_threshold`` at IoU 0.5; keypoints the mean OKS of
each object's best prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .._checks import check_fraction, check_positive_int
from ..data.coco_export import targets_to_coco, to_coco, to_coco_results
from .coco import evaluate_coco
from .common import Evaluation, as_tensor, model_device, sequential_loader

__all__ = ["COCO_KEYPOINT_SUMMARY_NAMES", "evaluate_detection", "evaluate_keypoints"]

COCO_KEYPOINT_SUMMARY_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "APm",
    "APl",
    "AR",
    "AR50",
    "AR75",
    "ARm",
    "ARl",
)


# -- running the model ------------------------------------------------------------------


def _detect(model, data, batch_size: int, device) -> tuple[list[dict], list[dict], Any]:
    """Run a torchvision-style detector over ``data``; predictions and targets on the CPU.

    Each target gets ``"_size"``: the (height, width) of its image, for the ground truth.
    """
    from ..data.collate import collate_detection

    loader, dataset = sequential_loader(data, batch_size, collate_detection)
    dev = model_device(model, device)
    was_training = model.training
    model.eval()
    preds, targets = [], []
    try:
        with torch.no_grad():
            for images, tgts in loader:
                out = model([im.to(dev) for im in images])
                if len(out) != len(images):
                    raise ValueError(
                        f"the model returned {len(out)} predictions for {len(images)} images"
                    )
                for o, im, t in zip(out, images, tgts, strict=True):
                    if not isinstance(o, dict) or not {"boxes", "scores", "labels"} <= set(o):
                        raise ValueError(
                            "a detector must return one dict per image with boxes, "
                            "scores and labels (torchvision style), in eval mode"
                        )
                    preds.append({k: as_tensor(v).detach().cpu() for k, v in o.items()})
                    target = {
                        k: as_tensor(v).cpu() if isinstance(v, torch.Tensor) else v
                        for k, v in t.items()
                    }
                    target["_size"] = tuple(im.shape[-2:])
                    targets.append(target)
    finally:
        model.train(was_training)
    return preds, targets, dataset


def _image_id(target: dict, index: int) -> int:
    value = target.get("image_id", index)
    value = int(value.item()) if isinstance(value, torch.Tensor) else int(value)
    return index if value < 0 else value


# -- ground truth -----------------------------------------------------------------------


def _ground_truth(dataset, targets: list[dict], task: str, class_names) -> tuple[dict, list[int]]:
    """The exported COCO ground truth of generated scenes, or one built from the targets.

    ``vizlib.data.to_coco`` exports the raw scenes, which are exactly what the model saw
    only when the dataset applies no transform; otherwise (or for any other dataset) the
    ground truth is built from the targets the model was evaluated against.
    """
    ids = [_image_id(t, i) for i, t in enumerate(targets)]
    if (
        hasattr(dataset, "scenes")
        and callable(dataset.scenes)
        and getattr(dataset, "transforms", None) is None
    ):
        gt = to_coco(dataset, task)
        exported = [img["id"] for img in gt["images"]]
        if exported == ids:
            return gt, ids
    sizes = [t["_size"] for t in targets]
    return targets_to_coco(targets, ids, sizes, class_names, keypoints=task == "keypoints"), ids


# -- per-image scores -------------------------------------------------------------------


def _image_f1(pred: dict, target: dict, score_threshold: float, iou_threshold: float) -> float:
    """F1 of one image's detections above ``score_threshold`` (class-aware, IoU match)."""
    from ..metrics import match_detections

    keep = pred["scores"] >= score_threshold
    boxes, scores, labels = (
        pred["boxes"][keep].float(),
        pred["scores"][keep].float(),
        pred["labels"][keep],
    )
    gt_boxes, gt_labels = (
        as_tensor(target["boxes"]).float().reshape(-1, 4),
        as_tensor(target["labels"]).reshape(-1),
    )
    if len(gt_boxes) == 0 and len(boxes) == 0:
        return 1.0  # nothing there and nothing found: right
    tp = 0
    for c in set(labels.tolist()) & set(gt_labels.tolist()):
        m = match_detections(
            boxes[labels == c],
            scores[labels == c],
            gt_boxes[gt_labels == c],
            iou_threshold=iou_threshold,
        )
        tp += int(m.tp.sum())
    fp, fn = len(boxes) - tp, len(gt_boxes) - tp
    return 2 * tp / (2 * tp + fp + fn)


def _image_oks(pred: dict, target: dict, score_threshold: float) -> float:
    """Mean over the true objects of the OKS of their best same-class prediction."""
    from ..data.scenes import KEYPOINT_OKS_SIGMAS
    from ..metrics import oks

    gt_kp = as_tensor(target["keypoints"]).double()
    gt_labels = as_tensor(target["labels"]).reshape(-1)
    keep = pred["scores"] >= score_threshold
    if "keypoints" not in pred:
        raise ValueError("a keypoint model must return 'keypoints' (N, K, 2 or 3) per image")
    kp, labels = pred["keypoints"][keep].double(), pred["labels"][keep]
    if len(gt_kp) == 0:
        return 1.0 if len(kp) == 0 else 0.0
    if len(kp) == 0:
        return 0.0
    if "masks" in target:
        areas = as_tensor(target["masks"]).flatten(1).sum(1).double()
    else:
        b = as_tensor(target["boxes"]).double()
        areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    sigmas = torch.as_tensor(KEYPOINT_OKS_SIGMAS, dtype=torch.float64)
    if len(sigmas) != gt_kp.shape[1]:
        sigmas = torch.full((gt_kp.shape[1],), 0.05, dtype=torch.float64)
    sim = oks(kp, gt_kp, areas, sigmas, gt_boxes=as_tensor(target["boxes"]).double())  # [N, M]
    same = labels[:, None] == gt_labels[None, :]  # [N, M]
    best = torch.where(same, sim, torch.zeros_like(sim)).max(dim=0).values  # [M]
    return float(best.mean())


# -- the three evaluations ----------------------------------------------------------------


def _coco_metrics(
    gt: dict, preds: list[dict], ids: list[int], iou_type: str, details: dict
) -> dict[str, float]:
    from ..metrics import COCO_SUMMARY_NAMES

    results = to_coco_results(preds, ids, iou_type=iou_type)
    stats = evaluate_coco(gt, results, iou_type=iou_type)
    details.setdefault("coco_stats", {})[iou_type] = stats
    names = COCO_KEYPOINT_SUMMARY_NAMES if iou_type == "keypoints" else COCO_SUMMARY_NAMES
    # -1 marks an area range with no object (as pycocotools writes it): not a score, leave it out
    return {f"{iou_type}/{n}": float(v) for n, v in zip(names, stats, strict=True) if v >= 0}


def evaluate_detection(
    model: torch.nn.Module,
    dataset,
    *,
    iou_types: Sequence[str] = ("bbox",),
    batch_size: int = 8,
    device=None,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
    class_names: Sequence[str] | None = None,
) -> Evaluation:
    """COCO AP of a detector (:func:`vizlib.evaluate.coco.evaluate_coco`, equal to pycocotools).

    Args:
        model (nn.Module): a torchvision-style detector: in eval mode,
            ``model(list of [3, H, W] images)`` returns one dict per image with
            ``boxes`` ``(N, 4)`` xyxy, ``scores`` ``(N,)``, ``labels`` ``(N,)`` int64
            (and ``masks`` ``(N, 1, H, W)`` for ``"segm"``). Its train/eval mode is
            restored afterwards.
        dataset (Dataset or DataLoader): ``(image, target)`` pairs with target dicts
            (``boxes``, ``labels``, ``masks``, ``image_id``), e.g.
            ``vizlib.data.DetectionScenes``. Evaluated in index order.
        iou_types (sequence of str): ``"bbox"`` and/or ``"segm"``.
        batch_size (int): images per forward pass (a DataLoader keeps its own).
        device: where to run; default the model's device.
        score_threshold (float): detections below it are left out of the per-image
            scores and the gallery (never out of AP, which uses them all).
        iou_threshold (float): IoU of a match in the per-image F1, in [0, 1].
        class_names (sequence of str, optional): name of each label, for drawing;
            default ``vizlib.data.DETECTION_CLASSES`` for generated scenes.

    Returns:
        Evaluation: ``metrics`` ``"bbox/AP"`` (AP averaged over IoU 0.50:0.95, COCO's
        main number), ``"bbox/AP50"``, ``"bbox/AP75"``, by object size, and recalls
        (``"segm/..."`` likewise); per-image F1; the predictions.
    """
    iou_types = _check_iou_types(iou_types, ("bbox", "segm"))
    return _evaluate_instances(
        model,
        dataset,
        "detection",
        iou_types,
        batch_size,
        device,
        score_threshold,
        iou_threshold,
        class_names,
    )


def evaluate_keypoints(
    model: torch.nn.Module,
    dataset,
    *,
    batch_size: int = 8,
    device=None,
    score_threshold: float = 0.5,
    with_boxes: bool = True,
    class_names: Sequence[str] | None = None,
) -> Evaluation:
    """COCO keypoint AP (matches by OKS; :func:`vizlib.evaluate.coco.evaluate_coco`).

    Args:
        model (nn.Module): a torchvision-style keypoint detector: in eval mode each
            image's dict also holds ``keypoints`` ``(N, K, 3)`` (x, y, visibility).
        dataset (Dataset or DataLoader): targets with ``keypoints`` ``(N, K, 3)``, e.g.
            ``vizlib.data.KeypointScenes``.
        with_boxes (bool): also report box AP (``"bbox/..."``).
        Other arguments as :func:`evaluate_detection`.

    Returns:
        Evaluation: ``metrics`` ``"keypoints/AP"`` (over OKS 0.50:0.95), ``"keypoints/AP50"``,
        ...; per-image mean OKS; the predictions. OKS uses
        ``vizlib.data.KEYPOINT_OKS_SIGMAS`` (pycocotools' default has COCO's 17 person
        keypoints).
    """
    iou_types = ("keypoints", "bbox") if with_boxes else ("keypoints",)
    return _evaluate_instances(
        model,
        dataset,
        "keypoints",
        iou_types,
        batch_size,
        device,
        score_threshold,
        0.5,
        class_names,
    )


def _check_iou_types(iou_types, allowed) -> tuple[str, ...]:
    """A non-empty subset of the IoU types the task allows, as a tuple (one string is one type)."""
    if isinstance(iou_types, str):
        iou_types = (iou_types,)
    iou_types = tuple(iou_types)
    if not iou_types or any(t not in allowed for t in iou_types):
        raise ValueError(f"iou_types must be a non-empty subset of {allowed}, got {iou_types!r}")
    return iou_types


def _evaluate_instances(
    model, dataset, task, iou_types, batch_size, device, score_threshold, iou_threshold, class_names
) -> Evaluation:
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    batch_size = check_positive_int("batch_size", batch_size)
    score_threshold = check_fraction("score_threshold", score_threshold)
    iou_threshold = check_fraction("iou_threshold", iou_threshold)
    preds, targets, data = _detect(model, dataset, batch_size, device)
    if not preds:
        raise ValueError("the dataset is empty: nothing to evaluate")
    if class_names is None and hasattr(data, "scenes"):
        from ..data.scenes import DETECTION_CLASSES

        class_names = DETECTION_CLASSES
    gt, ids = _ground_truth(
        data, targets, "keypoints" if task == "keypoints" else "instances", class_names
    )
    details: dict = {"ground_truth": gt}
    metrics: dict[str, float] = {}
    for iou_type in iou_types:
        if iou_type == "segm" and not all("masks" in p for p in preds):
            raise ValueError("iou_types has 'segm' but the model returns no 'masks'")
        metrics.update(_coco_metrics(gt, preds, ids, iou_type, details))
    if task == "keypoints":
        per_image = [_image_oks(p, t, score_threshold) for p, t in zip(preds, targets, strict=True)]
        score_name = "OKS"
    else:
        per_image = [
            _image_f1(p, t, score_threshold, iou_threshold)
            for p, t in zip(preds, targets, strict=True)
        ]
        score_name = "F1"
    return Evaluation(task, metrics, per_image, score_name, preds, data, details, class_names)
