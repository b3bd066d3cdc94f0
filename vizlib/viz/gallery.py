"""Galleries of predictions: the best images of an evaluation, its typical failures and
its worst, drawn with the model's predictions over each image (matplotlib).

The evaluation (``vizlib.evaluate``) chooses the images and returns numbers
(:meth:`vizlib.evaluate.Evaluation.gallery`); :func:`plot_gallery` draws them:

* detection: predicted boxes (score >= ``score_threshold``) in colour with their class
  and score, the ground truth dashed white;
* keypoints: the same, plus predicted points as dots and true ones as white crosses;
* segmentation: image | truth | prediction, label maps coloured by
  :func:`vizlib.viz.segmentation.colour_labels`.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_fraction
from ..evaluate.common import Evaluation, as_tensor
from .boxes import as_uint8_image, draw_boxes_mpl
from .segmentation import colour_labels

__all__ = ["plot_gallery"]

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
