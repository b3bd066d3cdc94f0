"""What every evaluation returns, and the helpers that run a model over a dataset.

* :class:`Evaluation`: the summary ``metrics``, one score per image, the predictions.
* :func:`prediction_gallery` (and :meth:`Evaluation.gallery`): which images to look at,
  chosen by their per-image score: the best, the worst, and typical failures.
* :func:`sequential_loader`, :func:`model_device`, :func:`as_tensor`: running a model
  over a dataset in index order, on the model's device, with plain tensors out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader

from .._checks import check_positive_int

__all__ = [
    "Evaluation",
    "Gallery",
    "as_tensor",
    "model_device",
    "prediction_gallery",
    "sequential_loader",
]


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


def prediction_gallery(
    scores: Sequence[float], k: int = 4, fail_below: float = 0.5, score_name: str = "score"
) -> Gallery:
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
    typical = pool[start : start + k]
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


def as_tensor(x) -> torch.Tensor:
    """``x`` as a plain ``torch.Tensor`` (tv_tensors lose their subclass, lists become tensors)."""
    return x.as_subclass(torch.Tensor) if isinstance(x, torch.Tensor) else torch.as_tensor(x)


# -- running the model ------------------------------------------------------------------


def sequential_loader(data, batch_size: int, collate_fn) -> tuple[DataLoader, Any]:
    """A loader over ``data`` in index order (image i of the results = dataset[i]), and the dataset.

    A DataLoader keeps its batch size, collate function and workers, but not its shuffling.
    """
    if isinstance(data, DataLoader):
        return DataLoader(
            data.dataset,
            batch_size=data.batch_size or batch_size,
            shuffle=False,
            collate_fn=data.collate_fn,
            num_workers=data.num_workers,
        ), data.dataset
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise ValueError(f"expected a Dataset or a DataLoader, got {type(data).__name__}")
    return DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate_fn), data


def model_device(model: torch.nn.Module, device=None) -> torch.device:
    """``device`` if given, else where the model lives: the device of its first parameter,
    or of its first buffer (a model may have only buffers), or the CPU (neither)."""
    if device is not None:
        return torch.device(device)
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")
