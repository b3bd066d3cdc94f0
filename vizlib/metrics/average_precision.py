"""Precision-recall curves and average precision, in the PASCAL VOC and COCO flavours.

A detector's output for one class, over a whole data set, is a list of scored detections,
each already marked true positive (TP) or false positive (FP) by a matching rule
(:mod:`vizlib.metrics.detection`). Walk down that list from the highest score:

* precision after ``k`` detections = TP so far / k,
* recall after ``k`` detections    = TP so far / number of ground-truth objects.

Average precision (AP) summarises the curve by one number, the area under it, after
replacing precision by its *envelope*: the best precision reachable at this recall or any
higher one, which makes the curve monotone decreasing (Everingham et al., "The PASCAL
Visual Object Classes Challenge", IJCV 2010, section 4.2). The flavours differ in where they
sample the envelope:

========  =================================================================================
method    AP is
========  =================================================================================
voc07     the mean of the envelope at the 11 recalls 0, 0.1, ..., 1 (VOC 2007 devkit)
voc       the exact area under the envelope, all points (VOC 2010 and later)
coco      the mean of the envelope at the 101 recalls 0, 0.01, ..., 1, each read at the
          first point whose recall reaches it (``np.searchsorted(side='left')``), 0 past the
          last point (pycocotools ``COCOeval.accumulate``)
========  =================================================================================

Recall levels the detector never reaches contribute precision 0 in every flavour.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from vizlib._checks import as_flags, as_float_tensor, check_choice, check_positive_int

__all__ = [
    "AP_METHODS",
    "COCO_RECALL_THRESHOLDS",
    "VOC07_RECALL_THRESHOLDS",
    "PrecisionRecall",
    "precision_recall_curve",
    "precision_envelope",
    "average_precision",
    "coco_sampled_precision",
]

AP_METHODS = ("voc07", "voc", "coco")

# The sampled recall levels. Built with linspace, not arange: arange(0, 1.1, 0.1) gives
# 0.30000000000000004, which a recall of exactly 3/10 would miss. pycocotools builds its
# 101 points the same way (Params.setDetParams).
VOC07_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 11)
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)


class PrecisionRecall(NamedTuple):
    """A precision-recall curve, one point per (non-ignored) detection, highest score first."""

    precision: torch.Tensor  # [K] float64
    recall: torch.Tensor  # [K] float64
    scores: torch.Tensor  # [K] input dtype, descending: the score threshold of each point


def precision_recall_curve(scores, is_tp, num_gt: int, ignored=None) -> PrecisionRecall:
    """The precision-recall curve of one class over a data set.

    Detections are sorted by descending score with a *stable* sort, so that tied scores
    keep the order they were given in (pycocotools does the same, with mergesort).
    Ignored detections (matched to a crowd or "difficult" object, see
    :func:`~vizlib.metrics.match_detections`) are dropped: they count neither as TP nor FP.

    Args:
        scores (Tensor[N]): confidence of every detection of the class, any order.
        is_tp (Tensor[N], bool): True where the detection matched a ground-truth object.
        num_gt (int): number of (non-ignored) ground-truth objects of the class, >= 1.
            Recall is undefined without any; COCO reports -1 for such a class and leaves
            it out of the mean (:func:`~vizlib.metrics.mean_average_precision` does too).
        ignored (Tensor[N], bool, optional): detections to leave out.

    Returns:
        PrecisionRecall: ``precision`` and ``recall`` (``Tensor[K]`` float64) and ``scores``
        (``Tensor[K]``, the input's dtype), ``K`` the number of kept detections, highest
        score first.
    """
    s = as_float_tensor("scores", scores).detach().cpu()  # metrics are computed on the CPU
    if s.dim() != 1:
        raise ValueError(f"scores must have shape [N], got {tuple(s.shape)}")
    tp = as_flags("is_tp", is_tp, s.numel(), "one per detection")
    num_gt = check_positive_int("num_gt", num_gt)
    if ignored is not None:
        keep = ~as_flags("ignored", ignored, s.numel(), "one per detection")
        s, tp = s[keep], tp[keep]
    order = np.argsort(-s.double().numpy(), kind="stable")
    tp_sorted = tp.numpy()[order]
    if int(tp_sorted.sum()) > num_gt:
        raise ValueError(
            f"is_tp has {int(tp_sorted.sum())} true positives but num_gt is {num_gt}; "
            "each ground-truth object can be matched once"
        )
    tp_cum = np.cumsum(tp_sorted, dtype=np.float64)  # [K]
    fp_cum = np.cumsum(~tp_sorted, dtype=np.float64)  # [K]
    precision = tp_cum / (tp_cum + fp_cum)  # [K]; the denominator is k >= 1
    recall = tp_cum / num_gt  # [K]
    return PrecisionRecall(
        torch.from_numpy(precision), torch.from_numpy(recall), s[torch.from_numpy(order)]
    )


def _envelope(precision: np.ndarray) -> np.ndarray:
    """Running maximum from the right along the last axis: max(precision[i:])."""
    return np.maximum.accumulate(precision[..., ::-1], axis=-1)[..., ::-1]


def precision_envelope(precision) -> torch.Tensor:
    """The interpolated precision: at each point, the best precision at this recall or after.

    Args:
        precision (Tensor[..., K]): precision along a curve ordered by increasing recall.

    Returns:
        Tensor[..., K]: ``max(precision[..., i:])`` at ``i``, monotone non-increasing.
    """
    p = as_float_tensor("precision", precision).detach().cpu()
    if p.dim() == 0:
        raise ValueError("precision must have at least one dimension [..., K], got a scalar")
    return torch.from_numpy(_envelope(p.double().numpy()).copy())


def coco_sampled_precision(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """COCO's 101-point interpolated precision of one or more curves at once.

    The engine behind ``average_precision(..., method='coco')`` (the mean of the 101
    numbers) and :func:`vizlib.metrics.coco_evaluate` (which keeps them, per IoU
    threshold, category, area range and detection budget, as pycocotools'
    ``eval['precision']``). NumPy in and out: it runs once per curve inside the COCO loop.

    Args:
        precision (ndarray[..., K]): float precision of each curve's points.
        recall (ndarray[..., K]): float recall of the same points, non-decreasing along the
            last axis (points ordered by descending score).

    Returns:
        ndarray[..., 101] float64: the envelope read at the first point whose recall
        reaches each of :data:`COCO_RECALL_THRESHOLDS`, 0 where the curve never reaches it.
    """
    if not isinstance(precision, np.ndarray) or not isinstance(recall, np.ndarray):
        raise ValueError(
            "precision and recall must be NumPy arrays [..., K], got "
            f"{type(precision).__name__} and {type(recall).__name__}"
        )
    if precision.ndim == 0 or precision.shape != recall.shape:
        raise ValueError(
            "precision and recall must have the same shape [..., K], got "
            f"{precision.shape} and {recall.shape}"
        )
    if recall.shape[-1] > 1 and bool((np.diff(recall, axis=-1) < 0).any()):
        raise ValueError(
            "recall must be non-decreasing along the last axis (points by descending score)"
        )
    k = precision.shape[-1]
    curves = int(np.prod(precision.shape[:-1]))
    flat_env = _envelope(precision).reshape(curves, k)  # [C, K]
    flat_rec = recall.reshape(curves, k)  # [C, K]
    sampled = np.zeros((flat_env.shape[0], len(COCO_RECALL_THRESHOLDS)))  # [C, 101]
    for row, (env, rec) in enumerate(zip(flat_env, flat_rec, strict=True)):
        # first point with recall >= r; == k means the curve stops short of r
        idx = np.searchsorted(rec, COCO_RECALL_THRESHOLDS, side="left")  # [101]
        reached = idx < k
        sampled[row, reached] = env[idx[reached]]
    return sampled.reshape(*precision.shape[:-1], len(COCO_RECALL_THRESHOLDS))


def _average_precision_np(precision: np.ndarray, recall: np.ndarray, method: str) -> float:
    if method == "coco":
        return float(coco_sampled_precision(precision, recall).mean())
    if method == "voc07":
        # best precision at recall >= r, for r = 0, 0.1, ..., 1 (0 if never reached)
        reached = recall[None, :] >= VOC07_RECALL_THRESHOLDS[:, None]  # [11, K]
        best = np.where(reached, precision[None, :], 0.0).max(axis=1, initial=0.0)  # [11]
        return float(best.mean())
    # 'voc': close the curve at recall 0 and 1 with precision 0, take the envelope, and
    # add up rectangles wherever recall steps (VOC 2010+ devkit, VOCap.m).
    rec = np.concatenate([[0.0], recall, [1.0]])
    env = _envelope(np.concatenate([[0.0], precision, [0.0]]))
    steps = np.nonzero(rec[1:] != rec[:-1])[0]
    return float(np.sum((rec[steps + 1] - rec[steps]) * env[steps + 1]))


def average_precision(precision, recall, method: str = "coco") -> float:
    """Average precision: the area under the precision envelope, sampled per ``method``.

    Args:
        precision (Tensor[K]): precision of each point of a PR curve, in [0, 1].
        recall (Tensor[K]): recall of each point, in [0, 1], non-decreasing (as returned
            by :func:`precision_recall_curve`). ``K = 0`` (no detections) gives AP 0.
        method (str): ``'voc07'`` (11-point), ``'voc'`` (all points, VOC 2010+) or
            ``'coco'`` (101-point). See the module docstring.

    Returns:
        float: AP in [0, 1].
    """
    check_choice("method", method, AP_METHODS)
    p = as_float_tensor("precision", precision).detach().cpu()
    r = as_float_tensor("recall", recall).detach().cpu()
    if p.dim() != 1:
        raise ValueError(f"precision must have shape [K], got {tuple(p.shape)}")
    if r.dim() != 1:
        raise ValueError(f"recall must have shape [K], got {tuple(r.shape)}")
    if p.numel() != r.numel():
        raise ValueError(
            f"precision and recall must have the same length, got {p.numel()} and {r.numel()}"
        )
    for name, t in (("precision", p), ("recall", r)):
        if t.numel() and (bool((t < 0).any()) or bool((t > 1).any())):
            raise ValueError(f"{name} must lie in [0, 1]")
    rec = r.double().numpy()
    if rec.size > 1 and bool((np.diff(rec) < 0).any()):
        raise ValueError("recall must be non-decreasing (points ordered by descending score)")
    if rec.size == 0:
        return 0.0
    return _average_precision_np(p.double().numpy(), rec, method)
