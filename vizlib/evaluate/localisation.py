"""The localisation chapter's scores: class, box and keypoints of one object per image.

* :func:`localisation_scores`: class accuracy, mean IoU of the box with the true one
  (:func:`vizlib.boxes.paired_box_iou`), and "correct" in the ILSVRC sense (right class
  and IoU >= 0.5);
* :func:`keypoint_scores`: PCK (:func:`vizlib.metrics.pck`), overall, per keypoint and
  per image.

Both run a model's ``predict`` over a :class:`~vizlib.data.localisation.TensorSamples`
set in batches, in eval mode, and give the model back in the mode it was in.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_fraction, check_positive_int
from ..boxes import paired_box_iou
from ..data.localisation import TensorSamples
from ..metrics import pck
from .common import model_device

__all__ = ["keypoint_scores", "localisation_scores"]


@torch.no_grad()
def _predict_all(model: nn.Module, images: torch.Tensor, batch_size: int):
    dev = model_device(model)
    was_training = model.training
    model.eval()
    try:
        return [
            model.predict(images[i : i + batch_size].to(dev))
            for i in range(0, len(images), batch_size)
        ]
    finally:
        model.train(was_training)


def localisation_scores(
    model: nn.Module, data: TensorSamples, batch_size: int = 256, iou_threshold: float = 0.5
) -> dict:
    """Score a localisation net on a set: class accuracy, mean IoU, "correct" localisations.

    ILSVRC's localisation task counted an image as solved when the class was right *and*
    the box overlapped the true one with IoU >= 0.5; the same rule gives ``"correct"``.

    Args:
        model (nn.Module): a :class:`~vizlib.nn.localisation.LocalisationNet` (or any model
            whose ``predict(images)`` returns ``labels``, ``scores`` and xyxy ``boxes``);
            left in the mode it was in.
        data (TensorSamples): with fields ``label`` and ``box`` (:func:`vizlib.data.localisation.localisation_data`).
        batch_size (int): images per forward pass.
        iou_threshold (float): the IoU a box needs to count as found.

    Returns:
        dict: ``"accuracy"``, ``"mean_iou"``, ``"correct"`` (floats), and per image
        (on the CPU): ``"iou"`` ``[N]``, ``"right_class"`` ``[N]`` bool, ``"labels"``,
        ``"scores"`` ``[N]`` and ``"boxes"`` ``[N, 4]`` (the predictions).
    """
    if not isinstance(data, TensorSamples) or not {"label", "box"} <= set(data.fields):
        raise ValueError(
            "data must be TensorSamples with 'label' and 'box' (localisation_data's sets)"
        )
    batch_size = check_positive_int("batch_size", batch_size)
    threshold = check_fraction("iou_threshold", iou_threshold)
    chunks = _predict_all(model, data.images, batch_size)
    pred = {k: torch.cat([c[k].cpu() for c in chunks]) for k in ("labels", "scores", "boxes")}
    iou = paired_box_iou(pred["boxes"], data.fields["box"])  # [N]
    right = pred["labels"] == data.fields["label"]  # [N]
    return {
        "accuracy": float(right.float().mean()),
        "mean_iou": float(iou.mean()),
        "correct": float((right & (iou >= threshold)).float().mean()),
        "iou": iou,
        "right_class": right,
        **pred,
    }


def keypoint_scores(
    model: nn.Module, data: TensorSamples, threshold: float = 0.2, batch_size: int = 256
) -> dict:
    """Score a keypoint net with PCK: a keypoint is correct within ``threshold`` times the
    size of its thing (the longer side of its box).

    Args:
        model (nn.Module): a :class:`~vizlib.nn.localisation.KeypointNet` (or any model
            whose ``predict(images)`` returns pixel keypoints ``[N, K, 2]``); left in the
            mode it was in.
        data (TensorSamples): with fields ``keypoints`` and ``box`` (:func:`vizlib.data.localisation.keypoint_data`).
        threshold (float): PCK's threshold, a fraction of the normaliser (0.2: PCK@0.2).
        batch_size (int): images per forward pass.

    Returns:
        dict: ``"pck"`` (float, over all labelled keypoints), ``"per_keypoint"`` ``[K]``,
        and per image (on the CPU): ``"image_pck"`` ``[N]`` (NaN with no labelled point),
        ``"distance"`` ``[N, K]`` in units of the normaliser, ``"predicted"`` ``[N, K, 2]``
        pixels, ``"normaliser"`` ``[N]`` pixels.
    """
    if not isinstance(data, TensorSamples) or not {"keypoints", "box"} <= set(data.fields):
        raise ValueError(
            "data must be TensorSamples with 'keypoints' and 'box' (keypoint_data's sets)"
        )
    batch_size = check_positive_int("batch_size", batch_size)
    threshold = check_fraction("threshold", threshold)
    predicted = torch.cat(
        [c.cpu() for c in _predict_all(model, data.images, batch_size)]
    )  # [N, K, 2]
    truth = data.fields["keypoints"]  # [N, K, 3]
    sizes = data.fields["box"][:, 2:] - data.fields["box"][:, :2]  # [N, 2]
    normaliser = sizes.max(dim=1).values.clamp(min=1.0)  # [N]
    result = pck(predicted, truth, threshold, normaliser)
    distance = (
        torch.linalg.vector_norm(predicted - truth[..., :2], dim=-1) / normaliser[:, None]
    )  # [N, K]
    labelled = truth[..., 2] > 0  # [N, K]
    correct = ((distance <= threshold) & labelled).sum(dim=1)  # [N]
    count = labelled.sum(dim=1)  # [N]
    image_pck = torch.where(
        count > 0, correct / count.clamp(min=1), torch.full_like(distance[:, 0], float("nan"))
    )
    return {
        "pck": result.mean,
        "per_keypoint": result.per_keypoint,
        "image_pck": image_pck,
        "distance": distance,
        "predicted": predicted,
        "normaliser": normaliser,
    }
