"""Evaluate a trained model with its task's standard metric, and show where it fails.

* :func:`evaluate_detection`: COCO box (and mask) AP through ``pycocotools``, the
  reference implementation every paper reports, on the ground truth that
  ``vizlib.data.to_coco`` exports for the generated scenes (or built from the dataset's
  own targets for any other dataset).
* :func:`evaluate_keypoints`: COCO keypoint AP, where a match is measured by object
  keypoint similarity (OKS) instead of box IoU.
* :func:`evaluate_segmentation`: mIoU and pixel accuracy from the confusion matrix of the
  whole set (``vizlib.metrics.SegmentationMetric``).

Each returns an :class:`Evaluation`: the summary ``metrics``, one score per image, and
the predictions. A single number hides *how* a model fails, so
:meth:`Evaluation.gallery` picks the best images, the worst, and typical failures (images
that fail, near the middle of the failing ones: what goes wrong most of the time, not
the freak cases), and :meth:`Evaluation.plot_gallery` draws them.

The per-image scores are for choosing pictures, not for reporting: detection uses the F1
of the detections scored above ``score_threshold`` at IoU 0.5; keypoints the mean OKS of
each object's best prediction; segmentation the image's own mIoU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ._checks import check_fraction, check_positive_int

__all__ = [
    "COCO_KEYPOINT_SUMMARY_NAMES",
    "Evaluation",
    "Gallery",
    "evaluate_detection",
    "evaluate_keypoints",
    "evaluate_segmentation",
    "prediction_gallery",
    "targets_to_coco",
]

COCO_KEYPOINT_SUMMARY_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
_IOU_TYPES = ("bbox", "segm", "keypoints")


# -- choosing what to show ------------------------------------------------------------

@dataclass
class Gallery:
    """Indices of images to look at, chosen by their per-image score.

    Attributes:
        best (list[int]): the highest scores, best first.
        typical_failures (list[int]): images scoring below ``fail_below``, taken around
            the median failing score (none if nothing fails).
        worst (list[int]): the lowest scores, worst first.
        scores (list[float]): every image's score (NaN: no score).
        score_name (str): what the score is.
        fail_below (float): the score under which an image counts as a failure.
    """

    best: list[int]
    typical_failures: list[int]
    worst: list[int]
    scores: list[float] = field(repr=False)
    score_name: str = "score"
    fail_below: float = 0.5

    def groups(self) -> dict[str, list[int]]:
        """The three groups by title, in the order they are drawn."""
        return {"best": self.best, "typical failures": self.typical_failures, "worst": self.worst}


def prediction_gallery(scores: Sequence[float], k: int = 4, fail_below: float = 0.5,
                       score_name: str = "score") -> Gallery:
    """Pick the ``k`` best, ``k`` worst and ``k`` typical failures from per-image scores.

    Args:
        scores (sequence of float): one score per image, higher is better; NaN marks an
            image with no score (left out).
        k (int): images per group.
        fail_below (float): scores below this are failures.
        score_name (str): the score's name, for titles.

    Returns:
        Gallery: the indices of each group. Groups may overlap when there are fewer than
        ``3 k`` images; typical failures avoid the worst ones when they can.
    """
    k = check_positive_int("k", k)
    values = [float(s) for s in scores]
    if not isinstance(fail_below, (int, float)) or isinstance(fail_below, bool):
        raise ValueError(f"fail_below must be a number, got {fail_below!r}")
    valid = [i for i, s in enumerate(values) if not math.isnan(s)]
    # Sort by score, ties by index, so the choice is reproducible.
    ranked = sorted(valid, key=lambda i: (values[i], i))  # worst first
    worst = ranked[:k]
    best = sorted(valid, key=lambda i: (-values[i], i))[:k]
    failing = [i for i in ranked if values[i] < fail_below]
    pool = [i for i in failing if i not in worst] or failing  # the worst are shown anyway
    middle = len(pool) // 2
    start = max(0, min(middle - k // 2, len(pool) - k))
    typical = pool[start:start + k]
    return Gallery(best, typical, worst, values, score_name, float(fail_below))


# -- results ----------------------------------------------------------------------------

@dataclass
class Evaluation:
    """What an ``evaluate_*`` function returns.

    Attributes:
        task (str): ``"detection"``, ``"keypoints"`` or ``"segmentation"``.
        metrics (dict[str, float]): the summary numbers. Detection: ``"bbox/AP"``,
            ``"bbox/AP50"``, ... (and ``"segm/..."`` for masks); keypoints:
            ``"keypoints/AP"``, ...; segmentation: ``"mIoU"``, ``"pixel_accuracy"``.
        per_image (list[float]): each image's score (see the module docstring).
        score_name (str): what ``per_image`` holds.
        predictions (list): per image, on the CPU: a dict of tensors (detection,
            keypoints) or a ``[H, W]`` label map (segmentation).
        dataset: the evaluated dataset (image ``i`` is ``dataset[i]``), for drawing.
        details (dict): the rest: pycocotools' full stats per IoU type, the confusion
            matrix and per-class IoU, the ground truth used.
        class_names (sequence of str, optional): names of the labels, for drawing.
    """

    task: str
    metrics: dict[str, float]
    per_image: list[float] = field(repr=False)
    score_name: str
    predictions: list = field(repr=False)
    dataset: Any = field(repr=False)
    details: dict = field(default_factory=dict, repr=False)
    class_names: Sequence[str] | None = field(default=None, repr=False)

    def __getitem__(self, key: str) -> float:
        return self.metrics[key]

    def __str__(self) -> str:
        return f"{self.task}: " + ", ".join(f"{k} {v:.3f}" for k, v in self.metrics.items())

    def gallery(self, k: int = 4, fail_below: float = 0.5) -> Gallery:
        """The best, typical-failure and worst images; see :func:`prediction_gallery`."""
        return prediction_gallery(self.per_image, k, fail_below, self.score_name)

    def plot_gallery(self, k: int = 4, fail_below: float = 0.5, score_threshold: float = 0.5):
        """Draw :meth:`gallery`: one row per group, predictions over each image.

        Detection: predicted boxes (score >= ``score_threshold``) in colour with their
        class and score, ground truth dashed white. Keypoints: predicted points as dots,
        true ones as white crosses. Segmentation: image | truth | prediction.

        Returns:
            matplotlib.figure.Figure
        """
        from matplotlib.figure import Figure

        gallery = self.gallery(k, fail_below)
        groups = {name: idx for name, idx in gallery.groups().items() if idx}
        if not groups:
            raise ValueError("no image has a score to choose from")
        cols = max(len(v) for v in groups.values())
        wide = 3 if self.task == "segmentation" else 1
        fig = Figure(figsize=(2.4 * wide * cols, 2.6 * len(groups)), layout="constrained")
        axes = fig.subplots(len(groups), cols, squeeze=False)
        for row, (name, indices) in enumerate(groups.items()):
            for col in range(cols):
                ax = axes[row, col]
                ax.set_axis_off()
                if col >= len(indices):
                    continue
                i = indices[col]
                image, target = self.dataset[i]
                self._draw(ax, i, image, target, score_threshold)
                ax.set_title(f"{name}: {self.score_name} {gallery.scores[i]:.2f}", fontsize=8)
        return fig

    def _draw(self, ax, i: int, image, target, score_threshold: float) -> None:
        from matplotlib.patches import Rectangle

        from .viz.boxes import as_uint8_image, draw_boxes_mpl

        if self.task == "segmentation":
            img = as_uint8_image(image)
            truth = _colour_labels(_as_tensor(target).long().numpy())
            pred = _colour_labels(self.predictions[i].long().numpy())
            gap = np.full((img.shape[0], 2, 3), 255, dtype=np.uint8)
            ax.imshow(np.concatenate([img, gap, truth, gap, pred], axis=1), interpolation="nearest")
            return
        pred = self.predictions[i]
        keep = pred["scores"] >= score_threshold
        boxes = pred["boxes"][keep]
        draw_boxes_mpl(image, boxes, labels=pred["labels"][keep], scores=pred["scores"][keep],
                       class_names=self.class_names, ax=ax, linewidth=1.2, fontsize=6)
        for x1, y1, x2, y2 in _as_tensor(target["boxes"]).tolist():
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="white",
                                   linewidth=1.0, linestyle="--"))
        if self.task == "keypoints":
            if "keypoints" in pred and len(pred["keypoints"][keep]):
                kp = pred["keypoints"][keep].reshape(-1, pred["keypoints"].shape[-1])
                ax.plot(kp[:, 0], kp[:, 1], "o", ms=2.5, color="#00e5ff")
            gt = _as_tensor(target["keypoints"]).reshape(-1, 3)
            gt = gt[gt[:, 2] > 0]
            ax.plot(gt[:, 0], gt[:, 1], "x", ms=3.5, color="white")


def _as_tensor(x) -> torch.Tensor:
    return x.as_subclass(torch.Tensor) if isinstance(x, torch.Tensor) else torch.as_tensor(x)


def _colour_labels(labels: np.ndarray) -> np.ndarray:
    """A label map ``[H, W]`` as colours: the scenes' palette, grey for ignored pixels."""
    from .data.scenes import PALETTE

    out = np.full((*labels.shape, 3), 128, dtype=np.uint8)
    known = (labels >= 0) & (labels < len(PALETTE))
    out[known] = PALETTE[labels[known]]
    rest = (labels >= len(PALETTE)) & (labels != 255)
    if rest.any():  # more classes than the palette: a fixed pseudo-random colour each
        rng = np.random.default_rng(0)
        extra = rng.integers(0, 256, size=(int(labels[rest].max()) + 1, 3), dtype=np.uint8)
        out[rest] = extra[labels[rest]]
    return out


# -- running the model ------------------------------------------------------------------

def _sequential(data, batch_size: int, collate_fn):
    """A loader over ``data`` in index order (image i of the results = dataset[i])."""
    if isinstance(data, DataLoader):
        return DataLoader(data.dataset, batch_size=data.batch_size or batch_size, shuffle=False,
                          collate_fn=data.collate_fn, num_workers=data.num_workers), data.dataset
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise ValueError(f"expected a Dataset or a DataLoader, got {type(data).__name__}")
    return DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate_fn), data


def _device(model: torch.nn.Module, device):
    if device is not None:
        return torch.device(device)
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _detect(model, data, batch_size: int, device) -> tuple[list[dict], list[dict], Any]:
    """Run a torchvision-style detector over ``data``; predictions and targets on the CPU.

    Each target gets ``"_size"``: the (height, width) of its image, for the ground truth.
    """
    from .data.collate import collate_detection

    loader, dataset = _sequential(data, batch_size, collate_detection)
    dev = _device(model, device)
    was_training = model.training
    model.eval()
    preds, targets = [], []
    try:
        with torch.no_grad():
            for images, tgts in loader:
                out = model([im.to(dev) for im in images])
                if len(out) != len(images):
                    raise ValueError(f"the model returned {len(out)} predictions for {len(images)} images")
                for o, im, t in zip(out, images, tgts, strict=True):
                    if not isinstance(o, dict) or not {"boxes", "scores", "labels"} <= set(o):
                        raise ValueError("a detector must return one dict per image with boxes, "
                                         "scores and labels (torchvision style), in eval mode")
                    preds.append({k: _as_tensor(v).detach().cpu() for k, v in o.items()})
                    target = {k: _as_tensor(v).cpu() if isinstance(v, torch.Tensor) else v
                              for k, v in t.items()}
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

def targets_to_coco(targets: Sequence[dict], image_ids: Sequence[int], sizes: Sequence[tuple[int, int]],
                    class_names: Sequence[str] | None = None, keypoints: bool = False) -> dict:
    """COCO ground truth from torchvision-style target dicts (for any dataset).

    Args:
        targets (list of dict): ``boxes`` ``(N, 4)`` xyxy, ``labels`` ``(N,)``; optional
            ``masks`` ``(N, H, W)`` bool (areas and ``segm`` AP) and ``keypoints``
            ``(N, K, 3)``.
        image_ids (list of int): the COCO id of each image (unique).
        sizes (list of (int, int)): each image's (height, width).
        class_names (sequence of str, optional): name of label ``i`` at index ``i``.
        keypoints (bool): write ``keypoints`` and ``num_keypoints``.

    Returns:
        dict: ``images``, ``annotations``, ``categories``.
    """
    from .data.coco_export import coco_bboxes, encode_mask

    if not len(targets) == len(image_ids) == len(sizes):
        raise ValueError(f"{len(targets)} targets, {len(image_ids)} image ids and {len(sizes)} sizes")
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("image ids must be unique")
    coco = {"images": [], "annotations": [], "categories": []}
    seen: set[int] = set()
    for t, image_id, (h, w) in zip(targets, image_ids, sizes, strict=True):
        coco["images"].append({"id": int(image_id), "width": int(w), "height": int(h)})
        boxes = _as_tensor(t["boxes"]).reshape(-1, 4)
        labels = _as_tensor(t["labels"]).reshape(-1)
        masks = _as_tensor(t["masks"]).bool() if "masks" in t else None
        for i, bbox in enumerate(coco_bboxes(boxes)):
            ann = {"id": len(coco["annotations"]) + 1, "image_id": int(image_id),
                   "category_id": int(labels[i]), "bbox": bbox, "iscrowd": 0,
                   "area": float(masks[i].sum()) if masks is not None else bbox[2] * bbox[3]}
            if masks is not None:
                ann["segmentation"] = encode_mask(masks[i])
            if keypoints:
                kp = _as_tensor(t["keypoints"])[i].double().clone()
                kp[kp[:, 2] == 0] = 0  # COCO writes an unlabelled point as (0, 0, 0)
                ann["keypoints"] = [round(float(v), 3) for v in kp.reshape(-1)]
                ann["num_keypoints"] = int((kp[:, 2] > 0).sum())
            coco["annotations"].append(ann)
            seen.add(int(labels[i]))
    for cid in sorted(seen):
        name = class_names[cid] if class_names is not None and cid < len(class_names) else str(cid)
        coco["categories"].append({"id": cid, "name": name})
    return coco


def _ground_truth(dataset, targets: list[dict], task: str, class_names) -> tuple[dict, list[int]]:
    """The exported COCO ground truth of generated scenes, or one built from the targets.

    ``vizlib.data.to_coco`` exports the raw scenes, which are exactly what the model saw
    only when the dataset applies no transform; otherwise (or for any other dataset) the
    ground truth is built from the targets the model was evaluated against.
    """
    ids = [_image_id(t, i) for i, t in enumerate(targets)]
    if hasattr(dataset, "scenes") and callable(dataset.scenes) and getattr(dataset, "transforms", None) is None:
        from .data.coco_export import to_coco

        gt = to_coco(dataset, task)
        exported = [img["id"] for img in gt["images"]]
        if exported == ids:
            return gt, ids
    sizes = [t["_size"] for t in targets]
    return targets_to_coco(targets, ids, sizes, class_names, keypoints=task == "keypoints"), ids


# -- per-image scores -------------------------------------------------------------------

def _image_f1(pred: dict, target: dict, score_threshold: float, iou_threshold: float) -> float:
    """F1 of one image's detections above ``score_threshold`` (class-aware, IoU match)."""
    from .metrics import match_detections

    keep = pred["scores"] >= score_threshold
    boxes, scores, labels = pred["boxes"][keep].float(), pred["scores"][keep].float(), pred["labels"][keep]
    gt_boxes, gt_labels = _as_tensor(target["boxes"]).float().reshape(-1, 4), _as_tensor(target["labels"]).reshape(-1)
    if len(gt_boxes) == 0 and len(boxes) == 0:
        return 1.0  # nothing there and nothing found: right
    tp = 0
    for c in set(labels.tolist()) & set(gt_labels.tolist()):
        m = match_detections(boxes[labels == c], scores[labels == c], gt_boxes[gt_labels == c],
                             iou_threshold=iou_threshold)
        tp += int(m.tp.sum())
    fp, fn = len(boxes) - tp, len(gt_boxes) - tp
    return 2 * tp / (2 * tp + fp + fn)


def _image_oks(pred: dict, target: dict, score_threshold: float) -> float:
    """Mean over the true objects of the OKS of their best same-class prediction."""
    from .data.scenes import KEYPOINT_OKS_SIGMAS
    from .metrics import oks

    gt_kp = _as_tensor(target["keypoints"]).double()
    gt_labels = _as_tensor(target["labels"]).reshape(-1)
    keep = pred["scores"] >= score_threshold
    if "keypoints" not in pred:
        raise ValueError("a keypoint model must return 'keypoints' (N, K, 2 or 3) per image")
    kp, labels = pred["keypoints"][keep].double(), pred["labels"][keep]
    if len(gt_kp) == 0:
        return 1.0 if len(kp) == 0 else 0.0
    if len(kp) == 0:
        return 0.0
    if "masks" in target:
        areas = _as_tensor(target["masks"]).flatten(1).sum(1).double()
    else:
        b = _as_tensor(target["boxes"]).double()
        areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    sigmas = torch.as_tensor(KEYPOINT_OKS_SIGMAS, dtype=torch.float64)
    if len(sigmas) != gt_kp.shape[1]:
        sigmas = torch.full((gt_kp.shape[1],), 0.05, dtype=torch.float64)
    sim = oks(kp, gt_kp, areas, sigmas, gt_boxes=_as_tensor(target["boxes"]).double())  # [N, M]
    same = labels[:, None] == gt_labels[None, :]  # [N, M]
    best = torch.where(same, sim, torch.zeros_like(sim)).max(dim=0).values  # [M]
    return float(best.mean())


# -- the three evaluations ----------------------------------------------------------------

def _coco_metrics(gt: dict, preds: list[dict], ids: list[int], iou_type: str,
                  details: dict) -> dict[str, float]:
    from .data.coco_export import evaluate_coco, to_coco_results
    from .metrics import COCO_SUMMARY_NAMES

    results = to_coco_results(preds, ids, iou_type=iou_type)
    stats = evaluate_coco(gt, results, iou_type=iou_type)
    details.setdefault("coco_stats", {})[iou_type] = stats
    names = COCO_KEYPOINT_SUMMARY_NAMES if iou_type == "keypoints" else COCO_SUMMARY_NAMES
    # pycocotools writes -1 where an area range has no object: not a score, leave it out
    return {f"{iou_type}/{n}": float(v) for n, v in zip(names, stats, strict=True) if v >= 0}


def evaluate_detection(model: torch.nn.Module, dataset, *, iou_types: Sequence[str] = ("bbox",),
                       batch_size: int = 8, device=None, score_threshold: float = 0.5,
                       iou_threshold: float = 0.5, class_names: Sequence[str] | None = None) -> Evaluation:
    """COCO AP of a detector, through pycocotools.

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
    return _evaluate_instances(model, dataset, "detection", iou_types, batch_size, device,
                               score_threshold, iou_threshold, class_names)


def evaluate_keypoints(model: torch.nn.Module, dataset, *, batch_size: int = 8, device=None,
                       score_threshold: float = 0.5, with_boxes: bool = True,
                       class_names: Sequence[str] | None = None) -> Evaluation:
    """COCO keypoint AP (matches by OKS), through pycocotools.

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
    return _evaluate_instances(model, dataset, "keypoints", iou_types, batch_size, device,
                               score_threshold, 0.5, class_names)


def _check_iou_types(iou_types, allowed) -> tuple[str, ...]:
    if isinstance(iou_types, str):
        iou_types = (iou_types,)
    iou_types = tuple(iou_types)
    if not iou_types or any(t not in allowed for t in iou_types):
        raise ValueError(f"iou_types must be a non-empty subset of {allowed}, got {iou_types!r}")
    return iou_types


def _evaluate_instances(model, dataset, task, iou_types, batch_size, device, score_threshold,
                        iou_threshold, class_names) -> Evaluation:
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    batch_size = check_positive_int("batch_size", batch_size)
    score_threshold = check_fraction("score_threshold", score_threshold)
    iou_threshold = check_fraction("iou_threshold", iou_threshold)
    preds, targets, data = _detect(model, dataset, batch_size, device)
    if not preds:
        raise ValueError("the dataset is empty: nothing to evaluate")
    if class_names is None and hasattr(data, "scenes"):
        from .data.scenes import DETECTION_CLASSES

        class_names = DETECTION_CLASSES
    gt, ids = _ground_truth(data, targets, "keypoints" if task == "keypoints" else "instances", class_names)
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
        per_image = [_image_f1(p, t, score_threshold, iou_threshold) for p, t in zip(preds, targets, strict=True)]
        score_name = "F1"
    return Evaluation(task, metrics, per_image, score_name, preds, data, details, class_names)


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
    from .metrics import SegmentationMetric, confusion_matrix, mean_iou

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    num_classes = check_positive_int("num_classes", num_classes)
    batch_size = check_positive_int("batch_size", batch_size)
    loader, data = _sequential(dataset, batch_size, None)
    dev = _device(model, device)
    metric = SegmentationMetric(num_classes, ignore_index)
    preds, per_image = [], []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for images, masks in loader:
                logits = model(_as_tensor(images).to(dev))
                if isinstance(logits, dict):
                    logits = logits["out"]
                masks = _as_tensor(masks).long().cpu()  # [B, H, W]
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
    from .data.scenes import CLASS_NAMES

    return CLASS_NAMES
