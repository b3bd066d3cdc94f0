"""Non-maximum suppression: keep the best box of each cluster of overlapping detections.

A detector fires many boxes on one object. Greedy NMS (used since the Viola-Jones and
HOG detectors; Dalal & Triggs 2005, Felzenszwalb et al. 2010) walks the boxes from the
highest score down, keeps a box, and deletes every remaining box that overlaps it by
more than a threshold. Soft-NMS (Bodla et al., ICCV 2017) lowers their scores instead of
deleting them, so that a second object hidden behind the first keeps a chance.

:func:`nms` and :func:`batched_nms` return exactly what ``torchvision.ops.nms`` and
``torchvision.ops.batched_nms`` return on a CPU, ties included; they are written as a
loop a student can follow, and are slower (see ``benchmarks/bench_nms.py``).
:func:`nms_trace` records each step for the NMS widget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vizlib._checks import (
    as_float_tensor,
    check_boxes,
    check_choice,
    check_fraction,
    check_labels,
    check_number,
    check_same_length,
)
from vizlib.boxes import box_iou

__all__ = ["NMSStep", "nms", "batched_nms", "soft_nms", "nms_trace", "SOFT_NMS_METHODS"]

SOFT_NMS_METHODS = ("linear", "gaussian")


def _check_inputs(boxes, scores, iou_threshold) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The three inputs every NMS variant shares (boxes, a score per box, a threshold)."""
    b = check_boxes("boxes", boxes)
    s = as_float_tensor("scores", scores)
    if s.dim() != 1:
        raise ValueError(f"scores must have shape [N], got {tuple(s.shape)}")
    check_same_length(boxes=b, scores=s)
    threshold = check_fraction("iou_threshold", iou_threshold)
    return b, s, threshold


def _score_order(scores: torch.Tensor) -> torch.Tensor:
    # Highest score first; equal scores keep their input order (a stable sort), which is
    # what torchvision's CPU kernel does, so ties resolve the same way.
    return torch.sort(scores, descending=True, stable=True).indices


def _overlaps(iou: torch.Tensor, threshold: float) -> torch.Tensor:
    """``iou > threshold``, compared in float64 as torchvision's C++ kernel does.

    A float32 IoU of exactly 0.3 rounds to 0.30000001; compared in float32 with the
    threshold 0.3 (which also rounds to 0.30000001) it would survive, compared in float64
    it is suppressed. Boxes with integer corners hit such ties often.
    """
    if iou.device.type == "mps":  # Apple GPUs have no float64
        return (iou.cpu().double() > threshold).to(iou.device)
    return iou.double() > threshold


def nms(boxes, scores, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression.

    Repeatedly keep the highest-scoring box left and discard every remaining box whose
    IoU with it is greater than ``iou_threshold`` (strictly: IoU equal to the threshold
    survives). Same result as ``torchvision.ops.nms``.

    Args:
        boxes (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` format.
        scores (Tensor[N]): a score per box.
        iou_threshold (float): discard boxes with IoU > ``iou_threshold``, in [0, 1].

    Returns:
        Tensor[K]: int64 indices of the kept boxes, in decreasing order of score (equal
        scores in input order).
    """
    b, s, threshold = _check_inputs(boxes, scores, iou_threshold)
    order = _score_order(s)
    sorted_boxes = b[order]  # [N, 4], best first
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=b.device)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        # IoU of the kept box with every box after it, in one vectorised step.
        iou = box_iou(sorted_boxes[i : i + 1], sorted_boxes[i + 1 :])[0]  # [N - i - 1]
        suppressed[i + 1 :] |= _overlaps(iou, threshold)
    return order[torch.tensor(keep, dtype=torch.int64, device=b.device)]


def batched_nms(boxes, scores, labels, iou_threshold: float) -> torch.Tensor:
    """Class-aware NMS: boxes only suppress boxes of their own class.

    Runs :func:`nms` once per class and merges the survivors. (torchvision gets the same
    result faster with a trick: it shifts each class's boxes far away from the others',
    so one NMS call cannot make boxes of different classes overlap.) Same result as
    ``torchvision.ops.batched_nms``.

    Args:
        boxes (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` format.
        scores (Tensor[N]): a score per box.
        labels (Tensor[N]): int64 (any integer dtype) class of each box.
        iou_threshold (float): discard boxes with IoU > ``iou_threshold``, in [0, 1].

    Returns:
        Tensor[K]: int64 indices of the kept boxes, in decreasing order of score (equal
        scores in input order).
    """
    b, s, threshold = _check_inputs(boxes, scores, iou_threshold)
    lab = check_labels("labels", labels, len(b))
    kept = [torch.empty(0, dtype=torch.int64, device=b.device)]
    for cls in torch.unique(lab):
        members = torch.where(lab == cls)[0]  # indices of this class's boxes
        kept.append(members[nms(b[members], s[members], threshold)])
    keep = torch.cat(kept).sort().values  # back to input order, so that the stable
    return keep[_score_order(s[keep])]  # sort puts equal scores in input order


def soft_nms(
    boxes,
    scores,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    method: str = "linear",
    score_threshold: float = 0.001,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-NMS (Bodla et al., 2017): decay overlapping boxes' scores instead of deleting them.

    Repeatedly take the box with the highest current score, keep it, and multiply the
    score of every remaining box ``b`` by a weight that falls with its IoU ``o`` with the
    kept box:

    * ``'linear'``: ``1 - o`` where ``o > iou_threshold``, else 1;
    * ``'gaussian'``: ``exp(-o**2 / sigma)`` for every box (``iou_threshold`` unused).

    Boxes whose score drops below ``score_threshold`` are discarded. Scores only ever
    go down, so the kept boxes come out in decreasing order of their new score.

    Args:
        boxes (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` format.
        scores (Tensor[N]): a score per box, >= 0.
        iou_threshold (float): overlap above which ``'linear'`` decays a score, in [0, 1].
        sigma (float): width of the ``'gaussian'`` decay, > 0.
        method (str): ``'linear'`` or ``'gaussian'``.
        score_threshold (float): boxes whose score falls below it are dropped, >= 0.

    Returns:
        tuple[Tensor[K], Tensor[K]]: int64 indices of the kept boxes in the order they
        were kept, and their new (decayed) scores.
    """
    b, s, threshold = _check_inputs(boxes, scores, iou_threshold)
    if bool((s < 0).any()):
        raise ValueError("scores must be >= 0 for soft_nms (they are multiplied by decay weights)")
    check_choice("method", method, SOFT_NMS_METHODS)
    sigma = check_number("sigma", sigma, low=0, strict=True)
    score_threshold = check_number("score_threshold", score_threshold, low=0)

    current = s.clone()  # never modify the caller's scores
    alive = current >= score_threshold  # [N]
    keep, kept_scores = [], []
    while bool(alive.any()):
        # The best box still alive (the first one on ties, as in nms).
        masked = torch.where(alive, current, torch.full_like(current, -math.inf))
        i = int(torch.argmax(masked))
        keep.append(i)
        kept_scores.append(current[i])
        alive[i] = False
        others = torch.where(alive)[0]
        iou = box_iou(b[i : i + 1], b[others])[0]  # [R]
        if method == "linear":
            weight = torch.where(_overlaps(iou, threshold), 1 - iou, torch.ones_like(iou))
        else:
            weight = torch.exp(-(iou**2) / sigma)
        current[others] = current[others] * weight
        alive[others] = current[others] >= score_threshold
    new_scores = torch.stack(kept_scores) if kept_scores else s.new_empty(0)
    return torch.tensor(keep, dtype=torch.int64, device=b.device), new_scores


@dataclass(frozen=True)
class NMSStep:
    """One step of greedy NMS, as recorded by :func:`nms_trace`.

    Attributes:
        kept (int): index (into the input boxes) of the box kept at this step.
        score (float): its score.
        suppressed (tuple[int, ...]): indices of the boxes this step removes (boxes that
            an earlier step removed are not repeated), in score order.
        ious (tuple[float, ...]): the IoU of each suppressed box with the kept box.
    """

    kept: int
    score: float
    suppressed: tuple[int, ...]
    ious: tuple[float, ...]


def nms_trace(boxes, scores, iou_threshold: float) -> list[NMSStep]:
    """Greedy NMS, step by step, for teaching widgets.

    Runs the same algorithm as :func:`nms` and records each step: the kept box and the
    boxes it suppresses with their IoU. ``[step.kept for step in nms_trace(...)]`` equals
    ``nms(...).tolist()``.

    Args:
        boxes (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` format.
        scores (Tensor[N]): a score per box.
        iou_threshold (float): discard boxes with IoU > ``iou_threshold``, in [0, 1].

    Returns:
        list[NMSStep]: one step per kept box, in the order they were kept.
    """
    b, s, threshold = _check_inputs(boxes, scores, iou_threshold)
    order = _score_order(s)
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=b.device)
    steps = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        rest = torch.arange(i + 1, len(order), device=b.device)  # positions after i in score order
        rest = rest[~suppressed[rest]]  # only boxes still in play
        iou = box_iou(b[order[i : i + 1]], b[order[rest]])[0]  # [R]
        hit = _overlaps(iou, threshold)
        suppressed[rest[hit]] = True
        steps.append(
            NMSStep(
                kept=int(order[i]),
                score=float(s[order[i]]),
                suppressed=tuple(int(j) for j in order[rest[hit]]),
                ious=tuple(float(v) for v in iou[hit]),
            )
        )
    return steps
