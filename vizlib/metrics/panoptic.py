"""Panoptic quality (PQ), the metric of panoptic segmentation.

Panoptic segmentation gives every pixel a class and, for countable "things", an instance
(Kirillov et al., "Panoptic Segmentation", CVPR 2019). Both the prediction and the truth
are a map of segment ids plus, per segment, its category. PQ per category c:

* a predicted and a true segment of class c *match* when their IoU > 0.5. Above 0.5 a
  segment can overlap at most one other that much, so matches are unique without any
  greedy search;
* TP = matched pairs, FP = unmatched predicted segments, FN = unmatched true segments;
* ``PQ = sum(IoU of TPs) / (TP + FP/2 + FN/2) = SQ x RQ`` with segmentation quality
  ``SQ = mean IoU of the TPs`` and recognition quality ``RQ = TP / (TP + FP/2 + FN/2)``
  (an F1 score).

Counts are summed over the data set per category first; then PQ, SQ and RQ are averaged
over the categories that occur (TP + FP + FN > 0), for all categories, things and stuff.

Void and crowd, as in the COCO panoptic API (``panopticapi/evaluation.py``):

* segment id 0 (:data:`VOID`) in the truth marks unlabelled pixels. Predicted pixels that
  fall on void are left out of the union when computing IoU;
* a true segment with ``iscrowd=1`` is never matched and never a FN;
* an unmatched predicted segment is not a FP when more than half of it lies on void or
  on a crowd region of its own category.

Two small departures from panopticapi, both only where its input would be inconsistent
or it would fail: every id in a map must be listed in its segments and vice versa
(panopticapi checks this for predictions only); a category with no TP, FP or FN has PQ
NaN (panopticapi: 0, left out of the means too), and a mean over no category is NaN
(panopticapi divides by zero). If an image has several crowd regions of one category, all
of them count (panopticapi keeps the last one; COCO never has more than one).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from vizlib._checks import check_per_image

__all__ = [
    "VOID",
    "PQScores",
    "ClassPQ",
    "PanopticResult",
    "PanopticQuality",
    "SegmentMatches",
    "match_segments",
    "panoptic_quality",
]

# Segment id of unlabelled pixels.
VOID = 0
# A prediction matches a true segment above this IoU (strictly).
MATCH_IOU = 0.5


class ClassPQ(NamedTuple):
    """PQ of one category, from counts summed over the data set."""

    pq: float
    sq: float
    rq: float
    tp: int
    fp: int
    fn: int


class PQScores(NamedTuple):
    """PQ, SQ, RQ averaged over ``n`` categories."""

    pq: float
    sq: float
    rq: float
    n: int


class PanopticResult(NamedTuple):
    """Result of :meth:`PanopticQuality.compute` / :func:`panoptic_quality`."""

    all: PQScores
    things: PQScores
    stuff: PQScores
    per_class: dict[int, ClassPQ]  # category id -> its PQ (NaN when TP + FP + FN == 0)


def _id_map(name: str, value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise ValueError(
            f"{name} must be an integer tensor [H, W] of segment ids, got {type(value).__name__}"
        )
    if value.ndim != 2 or not np.issubdtype(value.dtype, np.integer):
        raise ValueError(
            f"{name} must be an integer tensor [H, W] of segment ids, got {value.dtype} {value.shape}"
        )
    if value.size and value.min() < 0:
        raise ValueError(f"{name} must hold segment ids >= 0 (0 = void)")
    return value.astype(np.int64)


def _segments(name: str, segments, ids_present: np.ndarray, categories: dict) -> dict[int, dict]:
    if not isinstance(segments, (list, tuple)):
        raise ValueError(
            f"{name} must be a list of dicts with 'id' and 'category_id', got {type(segments).__name__}"
        )
    out = {}
    for i, s in enumerate(segments):
        if not isinstance(s, dict) or "id" not in s or "category_id" not in s:
            raise ValueError(f"{name}[{i}] must be a dict with 'id' and 'category_id', got {s!r}")
        sid = int(s["id"])
        if sid == VOID:
            raise ValueError(f"{name}[{i}] has id {VOID}, which is reserved for void pixels")
        if sid in out:
            raise ValueError(f"{name} lists segment id {sid} twice")
        if s["category_id"] not in categories:
            raise ValueError(f"{name}[{i}] has category_id {s['category_id']!r}, not in categories")
        out[sid] = {"category_id": s["category_id"], "iscrowd": int(s.get("iscrowd", 0))}
    present = set(ids_present.tolist()) - {VOID}
    if present - set(out):
        raise ValueError(
            f"{name} does not list the segment id(s) {sorted(present - set(out))} found in the map"
        )
    if set(out) - present:
        raise ValueError(
            f"{name} lists segment id(s) {sorted(set(out) - present)} absent from the map"
        )
    return out


class SegmentMatches(NamedTuple):
    """What :func:`match_segments` found in one image (segment ids, not indices)."""

    matches: list  # (predicted id, true id, IoU) per TP, IoU > 0.5
    false_positives: list  # predicted ids left unmatched that count as FP
    false_negatives: list  # true ids left unmatched (crowd regions never count)
    ignored: list  # predicted ids left unmatched but mostly on void or own-class crowd
    pred_category: dict  # predicted segment id -> its category id
    gt_category: dict  # true segment id -> its category id


def _match(pred_ids, pred_segments, gt_ids, gt_segments, categories: dict) -> SegmentMatches:
    pred = _id_map("pred_ids", pred_ids)
    gt = _id_map("gt_ids", gt_ids)
    if pred.shape != gt.shape:
        raise ValueError(
            f"pred_ids and gt_ids must have the same shape, got {pred.shape} and {gt.shape}"
        )
    gt_unique, gt_index = np.unique(gt, return_inverse=True)
    pred_unique, pred_index = np.unique(pred, return_inverse=True)
    gt_info = _segments("gt_segments", gt_segments, gt_unique, categories)
    pred_info = _segments("pred_segments", pred_segments, pred_unique, categories)

    # Intersection of every true segment (rows, void included) with every predicted one.
    n_gt, n_pred = len(gt_unique), len(pred_unique)
    inter = np.bincount(gt_index.ravel() * n_pred + pred_index.ravel(), minlength=n_gt * n_pred)
    inter = inter.reshape(n_gt, n_pred).astype(np.float64)  # [G, P]
    gt_area = inter.sum(axis=1)  # [G]
    pred_area = inter.sum(axis=0)  # [P]
    on_void = inter[gt_unique == VOID].sum(axis=0)  # [P]: predicted pixels on void
    gt_cat = np.array(
        [gt_info[g]["category_id"] if g != VOID else None for g in gt_unique], dtype=object
    )
    pred_cat = np.array(
        [pred_info[p]["category_id"] if p != VOID else None for p in pred_unique], dtype=object
    )
    gt_crowd = np.array([g != VOID and gt_info[g]["iscrowd"] == 1 for g in gt_unique])  # [G]
    gt_real = (gt_unique != VOID) & ~gt_crowd  # [G]: segments that can be matched
    pred_real = pred_unique != VOID  # [P]

    # IoU of same-category pairs; predicted pixels on void do not count in the union.
    union = pred_area[None, :] + gt_area[:, None] - inter - on_void[None, :]  # [G, P]
    same = gt_cat[:, None] == pred_cat[None, :]  # [G, P]
    same &= gt_real[:, None] & pred_real[None, :]  # [G, P]: never void, never a crowd
    iou = np.where(same & (inter > 0), inter / np.maximum(union, 1.0), 0.0)  # [G, P]
    match = iou > MATCH_IOU  # [G, P]: at most one True per row and column
    matches = [
        (int(pred_unique[p]), int(gt_unique[g]), float(iou[g, p]))
        for g, p in zip(*np.nonzero(match), strict=True)
    ]
    gt_matched, pred_matched = match.any(axis=1), match.any(axis=0)
    # crowd regions are never FNs
    false_negatives = [int(gt_unique[g]) for g in np.nonzero(gt_real & ~gt_matched)[0]]
    false_positives, ignored = [], []
    for p in np.nonzero(pred_real & ~pred_matched)[0]:
        # Not a FP if mostly on void or on a crowd region of its own category.
        own_crowd = gt_crowd & (gt_cat == pred_cat[p])  # [G]
        ignorable = on_void[p] + inter[own_crowd, p].sum()
        (ignored if ignorable / pred_area[p] > 0.5 else false_positives).append(int(pred_unique[p]))
    pred_category = {int(p): pred_info[p]["category_id"] for p in pred_unique if p != VOID}
    gt_category = {int(g): gt_info[g]["category_id"] for g in gt_unique if g != VOID}
    return SegmentMatches(
        matches, false_positives, false_negatives, ignored, pred_category, gt_category
    )


def match_segments(
    pred_ids, pred_segments, gt_ids, gt_segments, categories: dict
) -> SegmentMatches:
    """PQ's matching of one image, segment by segment: what :class:`PanopticQuality`
    counts (same rules: IoU > 0.5 within a category, void and crowd as in the module
    docstring).

    Args:
        pred_ids (Tensor[H, W] int), pred_segments (list[dict]), gt_ids (Tensor[H, W] int),
            gt_segments (list[dict]): as :meth:`PanopticQuality.update`.
        categories (dict): category id -> isthing (bool).

    Returns:
        SegmentMatches: ``matches`` (predicted id, true id, IoU) per true positive,
        ``false_positives`` (predicted ids), ``false_negatives`` (true ids), ``ignored``
        (unmatched predicted ids that are not FPs), ``pred_category`` and ``gt_category``
        (segment id -> category id; a predicted and a true segment may share an id).
    """
    if not isinstance(categories, dict) or not categories:
        raise ValueError("categories must be a non-empty dict {category_id: isthing (bool)}")
    return _match(pred_ids, pred_segments, gt_ids, gt_segments, categories)


class PanopticQuality:
    """Accumulates PQ counts over images; :meth:`compute` gives PQ, SQ, RQ.

    Args:
        categories (dict): category id -> True for a thing, False for stuff (COCO's
            ``isthing``). Every category in the data must be here.
    """

    def __init__(self, categories: dict):
        if not isinstance(categories, dict) or not categories:
            raise ValueError("categories must be a non-empty dict {category_id: isthing (bool)}")
        for c, isthing in categories.items():
            if not isinstance(isthing, (bool, np.bool_)) and isthing not in (0, 1):
                raise ValueError(
                    f"categories[{c!r}] must be True (thing) or False (stuff), got {isthing!r}"
                )
        self.categories = {c: bool(v) for c, v in categories.items()}
        self.reset()

    def reset(self) -> None:
        """Forget the images counted so far."""
        self.tp = dict.fromkeys(self.categories, 0)
        self.fp = dict.fromkeys(self.categories, 0)
        self.fn = dict.fromkeys(self.categories, 0)
        self.iou_sum = dict.fromkeys(self.categories, 0.0)

    def update(self, pred_ids, pred_segments, gt_ids, gt_segments) -> None:
        """Count one image.

        Args:
            pred_ids (Tensor[H, W] int): predicted segment id per pixel, 0 = void.
            pred_segments (list[dict]): ``{'id', 'category_id'}`` per predicted segment.
            gt_ids (Tensor[H, W] int): true segment id per pixel, 0 = void (unlabelled).
            gt_segments (list[dict]): ``{'id', 'category_id', 'iscrowd' (default 0)}``.
        """
        m = _match(pred_ids, pred_segments, gt_ids, gt_segments, self.categories)
        for _, g, iou in m.matches:
            c = m.gt_category[g]
            self.tp[c] += 1
            self.iou_sum[c] += iou
        for g in m.false_negatives:
            self.fn[m.gt_category[g]] += 1
        for p in m.false_positives:
            self.fp[m.pred_category[p]] += 1

    def compute(self) -> PanopticResult:
        """PQ, SQ and RQ per category and averaged over all / thing / stuff categories."""
        per_class = {}
        for c in self.categories:
            tp, fp, fn, iou = self.tp[c], self.fp[c], self.fn[c], self.iou_sum[c]
            if tp + fp + fn == 0:
                per_class[c] = ClassPQ(math.nan, math.nan, math.nan, 0, 0, 0)
                continue
            rq = tp / (tp + 0.5 * fp + 0.5 * fn)
            sq = iou / tp if tp else 0.0
            per_class[c] = ClassPQ(iou / (tp + 0.5 * fp + 0.5 * fn), sq, rq, tp, fp, fn)

        def average(keep) -> PQScores:
            rows = [r for c, r in per_class.items() if keep(c) and r.tp + r.fp + r.fn > 0]
            if not rows:
                return PQScores(math.nan, math.nan, math.nan, 0)
            n = len(rows)
            return PQScores(
                sum(r.pq for r in rows) / n,
                sum(r.sq for r in rows) / n,
                sum(r.rq for r in rows) / n,
                n,
            )

        return PanopticResult(
            average(lambda c: True),
            average(lambda c: self.categories[c]),
            average(lambda c: not self.categories[c]),
            per_class,
        )


def panoptic_quality(preds, gts, categories: dict) -> PanopticResult:
    """PQ of a data set (see the module docstring for the definition and void/crowd rules).

    Args:
        preds (list): per image, a pair ``(ids, segments)``: ``ids`` Tensor[H, W] int of
            predicted segment ids (0 = void), ``segments`` a list of
            ``{'id', 'category_id'}``.
        gts (list): per image, same order, ``(ids, segments)`` with segments
            ``{'id', 'category_id', 'iscrowd'}``.
        categories (dict): category id -> isthing (bool).

    Returns:
        PanopticResult: ``all``, ``things``, ``stuff`` (each ``PQScores(pq, sq, rq, n)``)
        and ``per_class`` (category id -> ``ClassPQ(pq, sq, rq, tp, fp, fn)``).
    """
    check_per_image("(ids, segments) pairs", preds=preds, gts=gts)
    metric = PanopticQuality(categories)
    for i, (pred, gt) in enumerate(zip(preds, gts, strict=True)):
        for name, pair in (("preds", pred), ("gts", gt)):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"{name}[{i}] must be a pair (ids, segments)")
        try:
            metric.update(pred[0], pred[1], gt[0], gt[1])
        except ValueError as exc:
            raise ValueError(f"image {i}: {exc}") from None
    return metric.compute()
