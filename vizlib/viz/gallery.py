"""Galleries of predictions: the best images of an evaluation, its typical failures and
its worst, drawn with the model's predictions over each image (matplotlib).

The evaluation (``vizlib.evaluate``) chooses the images and returns numbers
(:meth:`vizlib.evaluate.Evaluation.gallery`); :func:`plot_gallery` draws them:

* detection: predicted boxes (score >= ``score_threshold``) in colour with their class
  and score, the ground truth dashed white;
* keypoints: the same, plus predicted points as dots and true ones as white crosses;
* segmentation: image | truth | prediction, label maps coloured by
  :func:`vizlib.viz.segmentation.colour_labels`.

Two more views of a detection evaluation (``vizlib.evaluate.errors`` finds them):
:func:`plot_errors`, the most confident false positives beside the missed objects, and
:func:`plot_class_pr_curves`, one precision-recall curve per class.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_fraction
from ..evaluate.common import Evaluation, as_tensor
from ..evaluate.errors import class_pr_curves, detection_errors
from .boxes import as_uint8_image, draw_boxes_mpl
from .segmentation import colour_labels

__all__ = ["plot_class_pr_curves", "plot_errors", "plot_gallery"]

_TRUTH = "white"  # ground truth: white over any image, dashed boxes and crosses
_PREDICTED_POINT = "#00e5ff"


def plot_gallery(evaluation, k: int = 4, fail_below: float = 0.5, score_threshold: float = 0.5):
    """Draw an evaluation's gallery: one row per group (best, typical failures, worst).

    Args:
        evaluation (vizlib.evaluate.Evaluation): what ``evaluate_detection``,
            ``evaluate_keypoints`` or ``evaluate_segmentation`` returned.
        k (int): images per group.
        fail_below (float): per-image scores below this are failures.
        score_threshold (float): detections below it are not drawn, in [0, 1].

    Returns:
        matplotlib.figure.Figure: each panel titled with its group and its score.

    Raises:
        ValueError: not an Evaluation, a bad argument, or no image has a score.
    """
    from matplotlib.figure import Figure

    if not isinstance(evaluation, Evaluation):
        raise ValueError(
            f"evaluation must be a vizlib.evaluate.Evaluation, got {type(evaluation).__name__}"
        )
    score_threshold = check_fraction("score_threshold", score_threshold)
    gallery = evaluation.gallery(k, fail_below)
    groups = {name: idx for name, idx in gallery.groups().items() if idx}
    if not groups:
        raise ValueError("no image has a score to choose from")
    cols = max(len(v) for v in groups.values())
    wide = 3 if evaluation.task == "segmentation" else 1  # image | truth | prediction
    fig = Figure(figsize=(2.4 * wide * cols, 2.6 * len(groups)), layout="constrained")
    axes = fig.subplots(len(groups), cols, squeeze=False)
    for row, (name, indices) in enumerate(groups.items()):
        for col in range(cols):
            ax = axes[row, col]
            ax.set_axis_off()
            if col >= len(indices):
                continue
            i = indices[col]
            image, target = evaluation.dataset[i]
            if evaluation.task == "segmentation":
                _draw_segmentation(
                    ax, image, target, evaluation.predictions[i], evaluation.class_names
                )
            else:
                _draw_instances(
                    ax,
                    image,
                    target,
                    evaluation.predictions[i],
                    evaluation.class_names,
                    score_threshold,
                    keypoints=evaluation.task == "keypoints",
                )
            ax.set_title(f"{name}: {evaluation.score_name} {gallery.scores[i]:.2f}", fontsize=8)
    return fig


def _draw_segmentation(ax, image, mask, prediction, class_names) -> None:
    # the same number of labels for truth and prediction: the same colour for a class
    num_labels = len(class_names) if class_names is not None else None
    img = as_uint8_image(image)
    truth = colour_labels(as_tensor(mask).long(), num_labels)
    pred = colour_labels(as_tensor(prediction).long(), num_labels)
    gap = np.full((img.shape[0], 2, 3), 255, dtype=np.uint8)  # [H, 2, 3] white separator
    ax.imshow(np.concatenate([img, gap, truth, gap, pred], axis=1), interpolation="nearest")


def _draw_instances(
    ax, image, target, pred: dict, class_names, score_threshold: float, keypoints: bool
) -> None:
    from matplotlib.patches import Rectangle

    keep = pred["scores"] >= score_threshold
    draw_boxes_mpl(
        image,
        pred["boxes"][keep],
        labels=pred["labels"][keep],
        scores=pred["scores"][keep],
        class_names=class_names,
        ax=ax,
        linewidth=1.2,
        fontsize=6,
    )
    for x1, y1, x2, y2 in as_tensor(target["boxes"]).tolist():
        ax.add_patch(
            Rectangle(
                (x1, y1),
                x2 - x1,
                y2 - y1,
                fill=False,
                edgecolor=_TRUTH,
                linewidth=1.0,
                linestyle="--",
            )
        )
    if not keypoints:
        return
    if "keypoints" in pred and len(pred["keypoints"][keep]):
        kp = pred["keypoints"][keep].reshape(-1, pred["keypoints"].shape[-1])  # [N * K, 2 or 3]
        ax.plot(kp[:, 0], kp[:, 1], "o", ms=2.5, color=_PREDICTED_POINT)
    gt = as_tensor(target["keypoints"]).reshape(-1, 3)  # [M * K, 3]
    gt = gt[gt[:, 2] > 0]  # labelled points only
    ax.plot(gt[:, 0], gt[:, 1], "x", ms=3.5, color=_TRUTH)


def plot_errors(evaluation, k: int = 6, score_threshold: float = 0.3, iou_threshold: float = 0.5):
    """The most confident false positives (left) and the missed objects (right).

    A false positive is drawn in its class colour with its score, the image's objects
    dashed white; a miss in its class colour, with the detector's best-overlapping box
    (any class) dotted yellow and named in the title: a right box with the wrong class, a
    box that scored under the threshold, or nothing near it.

    Args:
        evaluation (Evaluation): from ``vizlib.evaluate.evaluate_detection``.
        k (int): panels per side (an even number, two rows).
        score_threshold, iou_threshold: as in :func:`vizlib.evaluate.detection_errors`.

    Returns:
        matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from ..boxes import box_iou

    if isinstance(k, bool) or not isinstance(k, int) or k < 2 or k % 2:
        raise ValueError(f"k must be an even int >= 2 (two rows of panels), got {k!r}")
    false_positives, misses = detection_errors(evaluation, score_threshold, iou_threshold)
    names = evaluation.class_names
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subfigures(1, 2)
    left.suptitle(f"most confident false positives ({len(false_positives)} in all)", fontsize=9)
    right.suptitle(f"misses ({len(misses)} objects in all)", fontsize=9)
    for ax, fp in zip(
        left.subplots(2, k // 2).flatten(), false_positives[:k] + [None] * k, strict=False
    ):
        ax.set_axis_off()
        if fp is None:
            continue
        image, target = evaluation.dataset[fp.image]
        draw_boxes_mpl(image, fp.box[None], labels=torch.tensor([fp.label]),
                       scores=torch.tensor([fp.score]), class_names=names, ax=ax,
                       linewidth=1.5, fontsize=6)  # fmt: skip
        for x1, y1, x2, y2 in as_tensor(target["boxes"]).tolist():
            ax.add_patch(
                Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", lw=1, ls="--")
            )
        ax.set_title(f"image {fp.image}", fontsize=7)
    for ax, miss in zip(right.subplots(2, k // 2).flatten(), misses[:k] + [None] * k, strict=False):
        ax.set_axis_off()
        if miss is None:
            continue
        image, _ = evaluation.dataset[miss.image]
        pred = evaluation.predictions[miss.image]
        draw_boxes_mpl(image, miss.box[None], labels=torch.tensor([miss.label]),
                       class_names=names, ax=ax, linewidth=1.5, fontsize=6)  # fmt: skip
        title = f"image {miss.image}: no detection"
        if len(pred["boxes"]):
            best = int(box_iou(miss.box[None], pred["boxes"].float())[0].argmax())
            x1, y1, x2, y2 = pred["boxes"][best].tolist()
            ax.add_patch(
                Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="yellow", lw=1, ls=":")
            )
            label = int(pred["labels"][best])
            name = names[label] if names is not None and label < len(names) else str(label)
            title = f"image {miss.image}: best box {name} {float(pred['scores'][best]):.2f}"
        ax.set_title(title, fontsize=6)
    return fig


def plot_class_pr_curves(evaluation, iou_threshold: float = 0.5, title: str = ""):
    """One precision-recall curve per class (COCO's 101-point interpolation shaded).

    Args:
        evaluation (Evaluation): from ``vizlib.evaluate.evaluate_detection``.
        iou_threshold (float): IoU of a match, in [0, 1].
        title (str): put before each class name.

    Returns:
        matplotlib.figure.Figure: one panel per class with objects in the set.
    """
    from matplotlib.figure import Figure

    from .curves import plot_pr_curve_mpl

    curves = class_pr_curves(evaluation, iou_threshold)
    fig = Figure(figsize=(10, 2.4), layout="constrained")
    if not curves:
        fig.suptitle("no object in the evaluated set: no curve to draw", fontsize=9)
        return fig
    axes = np.atleast_1d(fig.subplots(1, len(curves)))
    for ax, (name, curve) in zip(axes, curves.items(), strict=True):
        plot_pr_curve_mpl(curve.precision, curve.recall, method="coco", ax=ax, label=name)
        ax.set_title(f"{title}{': ' if title else ''}{name}", fontsize=9)
        ax.legend(fontsize=6, loc="lower left")
    return fig
