"""COCO box evaluation (the 12 numbers every detection paper reports), written to be read.

:func:`coco_evaluate` gives the same 12 summary numbers as pycocotools'
``COCOeval(gt, dt, iouType='bbox')`` followed by ``evaluate()``, ``accumulate()`` and
``summarize()`` (the tests check all 12 to 1e-6), several times faster
(``benchmarks/bench_coco_eval.py``), because each step works on arrays instead of Python
loops over thresholds and objects, and each IoU matrix is computed once and shared by the
four area ranges.

The protocol (Lin et al., ECCV 2014; pycocotools ``cocoeval.py``):

1. **Per image and category**, keep the 100 highest-scored detections and compute their
   IoU with every ground-truth box once (:mod:`vizlib.metrics.coco_iou`: a *crowd* box
   counts inter / area(detection)).
2. **Match** greedily by descending score, at each of the 10 IoU thresholds 0.50:0.05:0.95
   and in each of the 4 area ranges (:func:`vizlib.metrics.detection.greedy_match_coco`).
   In an area range, a ground-truth object whose ``area`` *field* (not its box area; for
   COCO's own data it is the mask area) lies outside the range is *ignored*, and so is
   every crowd object: a detection that matches an ignored object counts neither as TP
   nor FP. An unmatched detection whose box area lies outside the range is ignored too.
   Ranges include both ends: an area of exactly 32**2 is both "small" and "medium".
3. **Accumulate** per category, area range and max-detections (1, 10, 100 per image): pool
   every image's detections, sort by descending score with a stable sort (tied scores keep
   image order, then per-image score order, as pycocotools' mergesort), and build the
   precision-recall curve at each IoU threshold. Precision is sampled at the 101 recalls
   0:0.01:1 from its envelope (:mod:`vizlib.metrics.average_precision`, ``method='coco'``),
   recall is the final recall. A category with no non-ignored ground truth in an area
   range gets -1 (:data:`NO_GROUND_TRUTH`) and is left out of the means.
4. **Summarise**: AP averages precision over thresholds, recall points and categories;
   AR averages final recall over thresholds and categories.

Inputs (``gt``, ``dt``), either of two forms:

* **COCO format** (what pycocotools reads). ``gt``: a dataset dict with ``images``,
  ``annotations`` (``image_id``, ``category_id``, ``bbox`` as ``[x, y, w, h]``, ``area``,
  ``iscrowd``; ``area`` defaults to ``w * h`` and ``iscrowd`` to 0) and ``categories``; or
  a ``pycocotools.coco.COCO``; or the path of a JSON file. ``dt``: a list of result dicts
  (``image_id``, ``category_id``, ``bbox``, ``score``; the box area is ``w * h``, as
  ``COCO.loadRes`` sets it), or the ``COCO`` object ``loadRes`` returned, or a path.
  Images are all those in ``gt['images']``; categories all those in ``gt['categories']``.
  Detections of a category not in ``gt['categories']`` are dropped (pycocotools does too).
* **Tensor form** (what torchvision detection models use). ``gt``: a list, one dict per
  image, with ``boxes`` (Tensor[M, 4], ``(x1, y1, x2, y2)``), ``labels`` (Tensor[M]) and
  optionally ``iscrowd`` (Tensor[M]), ``area`` (Tensor[M], default box area) and
  ``image_id``; ``dt``: a list in the same order with ``boxes``, ``scores`` and ``labels``.
  The categories are the labels present in ``gt``.

One deliberate difference: pycocotools records matches by annotation *id* and so treats a
ground-truth annotation with ``id == 0`` as unmatched. Here ids play no part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from os import PathLike
from typing import NamedTuple

import numpy as np
import torch

from vizlib.boxes import box_convert
from vizlib.metrics.average_precision import COCO_RECALL_THRESHOLDS, coco_sampled_precision
from vizlib.metrics.coco_iou import coco_iou_xywh
from vizlib.metrics.detection import NO_MATCH, greedy_match_coco

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "COCO_MAX_DETS",
    "COCO_AREA_RANGES",
    "COCO_SUMMARY_NAMES",
    "NO_GROUND_TRUTH",
    "CocoEvaluation",
    "coco_evaluate",
]

# The same constructions as pycocotools' Params.setDetParams, so the floats are identical.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
COCO_MAX_DETS = (1, 10, 100)
COCO_AREA_RANGES = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
COCO_SUMMARY_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "APs",
    "APm",
    "APl",
    "AR1",
    "AR10",
    "AR100",
    "ARs",
    "ARm",
    "ARl",
)
# Precision/recall of a category with no (non-ignored) ground truth in an area range.
NO_GROUND_TRUTH = -1.0


@dataclass
class CocoEvaluation:
    """Result of :func:`coco_evaluate`; the arrays are laid out as pycocotools' ``eval``."""

    stats: np.ndarray  # [12] the summary numbers, in COCO_SUMMARY_NAMES order
    precision: np.ndarray  # [T=10, R=101, K, A=4, M=3] sampled precision, -1 if no gt
    recall: np.ndarray  # [T, K, A, M] final recall, -1 if no gt
    category_ids: list  # the K category ids, sorted

    def summary(self) -> dict[str, float]:
        """The 12 numbers by name: ``{'AP': ..., 'AP50': ..., ..., 'ARl': ...}``."""
        return dict(zip(COCO_SUMMARY_NAMES, (float(v) for v in self.stats), strict=True))

    def per_category_ap(self) -> dict:
        """AP@[.5:.95] (all areas, 100 detections) per category id; -1 where no gt."""
        p = self.precision[:, :, :, 0, -1]  # [T, R, K]
        return {
            c: (
                float(p[:, :, k].mean())
                if (p[:, :, k] > NO_GROUND_TRUTH).all()
                else NO_GROUND_TRUTH
            )
            for k, c in enumerate(self.category_ids)
        }

    def __str__(self) -> str:
        rows = [
            ("Average Precision", "(AP)", "0.50:0.95", "all", 100),
            ("Average Precision", "(AP)", "0.50", "all", 100),
            ("Average Precision", "(AP)", "0.75", "all", 100),
            ("Average Precision", "(AP)", "0.50:0.95", "small", 100),
            ("Average Precision", "(AP)", "0.50:0.95", "medium", 100),
            ("Average Precision", "(AP)", "0.50:0.95", "large", 100),
            ("Average Recall", "(AR)", "0.50:0.95", "all", 1),
            ("Average Recall", "(AR)", "0.50:0.95", "all", 10),
            ("Average Recall", "(AR)", "0.50:0.95", "all", 100),
            ("Average Recall", "(AR)", "0.50:0.95", "small", 100),
            ("Average Recall", "(AR)", "0.50:0.95", "medium", 100),
            ("Average Recall", "(AR)", "0.50:0.95", "large", 100),
        ]
        return "\n".join(
            f" {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6s} | maxDets={m:>3d} ] = {v:0.3f}"
            for (title, kind, iou, area, m), v in zip(rows, self.stats, strict=True)
        )


# --------------------------------------------------------------------------- inputs


class _Annotations(NamedTuple):
    """Boxes of a data set as flat arrays, one row per annotation, in input order."""

    image: np.ndarray  # [n] int64, index into the sorted image ids
    category: np.ndarray  # [n] int64, index into the sorted category ids
    bbox: np.ndarray  # [n, 4] float64 (x, y, w, h)
    area: np.ndarray  # [n] float64
    score: np.ndarray  # [n] float64 (detections; ones for ground truth)
    iscrowd: np.ndarray  # [n] bool (ground truth; False for detections)


def _read_json(name: str, path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{name}: could not read COCO JSON from {path!r}: {exc}") from None


def _bbox_array(name: str, rows: list) -> np.ndarray:
    """``[n, 4]`` float64 from a list of ``[x, y, w, h]``, checked: finite, w and h >= 0."""
    if not rows:
        return np.zeros((0, 4))
    try:
        bbox = np.array(rows, dtype=np.float64).reshape(len(rows), -1)
    except (TypeError, ValueError):
        bbox = None
    if bbox is None or bbox.shape[1] != 4:
        for i, b in enumerate(rows):
            if not isinstance(b, (list, tuple, np.ndarray)) or len(b) != 4:
                raise ValueError(f"{name}[{i}]['bbox'] must be [x, y, w, h], got {b!r}") from None
        raise ValueError(f"{name}: every 'bbox' must be four numbers [x, y, w, h]")
    if not np.isfinite(bbox).all():
        i = int(np.nonzero(~np.isfinite(bbox).all(axis=1))[0][0])
        raise ValueError(f"{name}[{i}]['bbox'] = {bbox[i].tolist()} must be finite")
    negative = (bbox[:, 2] < 0) | (bbox[:, 3] < 0)
    if negative.any():
        i = int(np.nonzero(negative)[0][0])
        raise ValueError(
            f"{name}[{i}]['bbox'] = {bbox[i].tolist()} has a negative width or height "
            "(COCO boxes are [x, y, w, h])"
        )
    return bbox


def _column(name: str, anns: list, key: str, default=None) -> list:
    """``[a[key] for a in anns]``, raising ValueError naming the first annotation without it."""
    try:
        if default is None:
            return [a[key] for a in anns]
        return [a.get(key, default) for a in anns]
    except (KeyError, TypeError, AttributeError):
        for i, a in enumerate(anns):
            if not isinstance(a, dict):
                raise ValueError(f"{name}[{i}] must be a dict, got {type(a).__name__}") from None
            if key not in a:
                raise ValueError(f"{name}[{i}] has no {key!r} (keys: {sorted(a)})") from None
        raise


def _index(
    name: str, values: list, lookup: dict, what: str, unknown_ok: bool = False
) -> np.ndarray:
    """Positions of ``values`` in ``lookup``; -1 for unknown values if ``unknown_ok``."""
    if unknown_ok:
        return np.array([lookup.get(v, -1) for v in values], dtype=np.int64)
    try:
        return np.array([lookup[v] for v in values], dtype=np.int64)
    except (KeyError, TypeError):
        for i, v in enumerate(values):
            if v not in lookup:
                raise ValueError(
                    f"{name}[{i}] refers to {what} {v!r}, which is not in gt"
                ) from None
        raise


def _from_coco_anns(
    name: str, anns: list, images: dict, categories: dict, is_gt: bool, area_field: bool
) -> _Annotations:
    if not isinstance(anns, list):
        raise ValueError(f"{name} must be a list of annotation dicts, got {type(anns).__name__}")
    image = _index(name, _column(name, anns, "image_id"), images, "image_id")
    # pycocotools silently drops detections of categories the ground truth lacks.
    category = _index(
        name, _column(name, anns, "category_id"), categories, "category_id", unknown_ok=not is_gt
    )
    bbox = _bbox_array(name, _column(name, anns, "bbox"))
    box_area = bbox[:, 2] * bbox[:, 3]
    if area_field:
        area = np.array(_column(name, anns, "area", default=np.nan), dtype=np.float64)
        area = np.where(np.isnan(area), box_area, area)
    else:
        area = box_area  # COCO.loadRes sets a detection's area to w * h
    if is_gt:
        score = np.ones(len(anns))
        iscrowd = np.array(_column(name, anns, "iscrowd", default=0), dtype=bool)
    else:
        score = np.array(_column(name, anns, "score"), dtype=np.float64)
        if not np.isfinite(score).all():
            i = int(np.nonzero(~np.isfinite(score))[0][0])
            raise ValueError(f"{name}[{i}]['score'] must be finite, got {score[i]}")
        iscrowd = np.zeros(len(anns), dtype=bool)
    keep = category >= 0
    return _Annotations(
        image[keep], category[keep], bbox[keep], area[keep], score[keep], iscrowd[keep]
    )


def _load_coco_format(gt, dt):
    if isinstance(gt, (str, PathLike)):
        gt = _read_json("gt", gt)
    if hasattr(gt, "dataset") and hasattr(gt, "getAnnIds"):  # a pycocotools COCO
        gt = gt.dataset
    if not isinstance(gt, dict) or not {"images", "annotations", "categories"} <= set(gt):
        raise ValueError(
            "gt must be a COCO dataset dict with 'images', 'annotations' and 'categories' "
            "(or a pycocotools COCO, a JSON path, or a list of per-image target dicts)"
        )
    image_ids = sorted(set(_column("gt['images']", gt["images"], "id")))
    category_ids = sorted(set(_column("gt['categories']", gt["categories"], "id")))
    images = {v: i for i, v in enumerate(image_ids)}
    categories = {v: k for k, v in enumerate(category_ids)}
    gts = _from_coco_anns("gt['annotations']", gt["annotations"], images, categories, True, True)

    if isinstance(dt, (str, PathLike)):
        dt = _read_json("dt", dt)
    if hasattr(dt, "dataset") and hasattr(dt, "getAnnIds"):  # the COCO that loadRes returned
        dts = _from_coco_anns(
            "dt.dataset['annotations']", dt.dataset["annotations"], images, categories, False, True
        )
    elif isinstance(dt, list):
        dts = _from_coco_anns("dt", dt, images, categories, False, False)
    else:
        raise ValueError(
            f"dt must be a list of COCO result dicts, a pycocotools COCO or a JSON path, got {type(dt).__name__}"
        )
    return len(image_ids), category_ids, gts, dts


def _per_box(name: str, d: dict, key: str, n: int, default=None) -> np.ndarray | None:
    """``d[key]`` as a numpy array of shape ``[n]``; ``default`` when the key is absent."""
    if key not in d:
        if default is None:
            raise ValueError(f"{name} has no {key!r} (keys: {sorted(d)})")
        return default
    v = d[key]
    a = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
    if a.shape != (n,):
        raise ValueError(f"{name}[{key!r}] must have shape [{n}] (one per box), got {a.shape}")
    return a


def _boxes_xywh(name: str, d) -> np.ndarray:
    """``d['boxes']`` (xyxy) as a float64 ``[n, 4]`` array in COCO's (x, y, w, h)."""
    if not isinstance(d, dict) or "boxes" not in d:
        raise ValueError(f"{name} must be a dict with 'boxes' (Tensor[N, 4], x1 y1 x2 y2)")
    b = d["boxes"]
    b = (
        b.detach().cpu()
        if isinstance(b, torch.Tensor)
        else torch.as_tensor(np.asarray(b, dtype=np.float64))
    )
    try:
        return box_convert(
            b.double().reshape(-1, 4) if b.numel() == 0 else b.double(), "xyxy", "xywh"
        ).numpy()
    except ValueError as exc:
        raise ValueError(f"{name}['boxes']: {exc}") from None


def _tensor_form_to_coco(targets: list, predictions) -> tuple[dict, list]:
    """torchvision-style per-image dicts -> a COCO dataset dict and a results list.

    The same translation as torchvision's detection reference (``convert_to_coco_api``):
    boxes to (x, y, w, h), ``area`` defaulting to the box area, ``iscrowd`` to 0, and the
    categories being the labels present in the ground truth.
    """
    if not isinstance(predictions, (list, tuple)) or len(predictions) != len(targets):
        got = type(predictions).__name__
        if isinstance(predictions, (list, tuple)):
            got += f" of length {len(predictions)}"
        raise ValueError(
            "dt must be a list of per-image prediction dicts (boxes, scores, labels), one per "
            f"entry of gt ({len(targets)}), got {got}"
        )
    images, annotations, results = [], [], []
    for i, (target, pred) in enumerate(zip(targets, predictions, strict=True)):
        image_id = target.get("image_id", i) if isinstance(target, dict) else i
        image_id = int(image_id.item()) if isinstance(image_id, torch.Tensor) else image_id
        images.append({"id": image_id})

        gt_boxes = _boxes_xywh(f"gt[{i}]", target)
        n = len(gt_boxes)
        labels = _per_box(f"gt[{i}]", target, "labels", n)
        area = _per_box(f"gt[{i}]", target, "area", n, default=gt_boxes[:, 2] * gt_boxes[:, 3])
        crowd = _per_box(f"gt[{i}]", target, "iscrowd", n, default=np.zeros(n))
        for box, label, a, c in zip(
            gt_boxes.tolist(), labels.tolist(), area.tolist(), crowd.tolist(), strict=True
        ):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": label,
                    "bbox": box,
                    "area": a,
                    "iscrowd": int(c),
                }
            )

        dt_boxes = _boxes_xywh(f"dt[{i}]", pred)
        labels = _per_box(f"dt[{i}]", pred, "labels", len(dt_boxes))
        scores = _per_box(f"dt[{i}]", pred, "scores", len(dt_boxes)).astype(np.float64)
        if not np.isfinite(scores).all():
            raise ValueError(f"dt[{i}]['scores'] must be finite")
        for box, label, score in zip(
            dt_boxes.tolist(), labels.tolist(), scores.tolist(), strict=True
        ):
            results.append(
                {"image_id": image_id, "category_id": label, "bbox": box, "score": score}
            )
    if len({img["id"] for img in images}) != len(images):
        raise ValueError("gt: every image needs a distinct 'image_id'")
    categories = [{"id": c} for c in sorted({a["category_id"] for a in annotations})]
    return {"images": images, "annotations": annotations, "categories": categories}, results


# --------------------------------------------------------------------------- evaluation


def _area_outside(area: np.ndarray) -> np.ndarray:
    """``[A, n]`` bool: True where ``area`` falls outside each area range (ends included)."""
    lo = np.array([r[0] for r in COCO_AREA_RANGES.values()])[:, None]  # [A, 1]
    hi = np.array([r[1] for r in COCO_AREA_RANGES.values()])[:, None]  # [A, 1]
    return (area[None, :] < lo) | (area[None, :] > hi)  # [A, n]


def _match_all(num_images: int, num_categories: int, gts: _Annotations, dts: _Annotations):
    """Step 1-2: match every image-category pair, for all thresholds and area ranges at once.

    Returns the kept detections (sorted by category, then image, then descending score)
    with their matched / ignored flags, and the number of non-ignored objects.
    """
    num_areas, num_thr = len(COCO_AREA_RANGES), len(COCO_IOU_THRESHOLDS)
    # Objects ignored in each area range: crowds, and objects whose area is out of range.
    gt_ignore = gts.iscrowd[None, :] | _area_outside(gts.area)  # [A, G]
    # [K, A]: the objects that count, per category and area range (recall's denominator)
    counted = [gts.category[~gt_ignore[a]] for a in range(num_areas)]
    num_positives = np.stack([np.bincount(c, minlength=num_categories) for c in counted], axis=1)

    # Group both by (category, image). Within a pair, detections by descending score; the
    # stable sorts keep the input order among ties, as pycocotools' mergesort does.
    gt_pair = gts.category * num_images + gts.image  # [G]
    gt_order = np.argsort(gt_pair, kind="stable")
    dt_pair = dts.category * num_images + dts.image  # [D]
    dt_order = np.lexsort((-dts.score, dt_pair))
    # Rank of each detection within its pair; only the top COCO_MAX_DETS[-1] take part.
    sorted_pair = dt_pair[dt_order]
    first = np.searchsorted(sorted_pair, sorted_pair, side="left")
    rank = np.arange(len(dt_order)) - first
    keep = rank < COCO_MAX_DETS[-1]
    dt_order, rank, sorted_pair = dt_order[keep], rank[keep], sorted_pair[keep]
    num_dt = len(dt_order)

    # Defaults, right for every detection that matches nothing: not matched, and ignored
    # exactly where its own area is outside the range.
    dt_outside = _area_outside(dts.area[dt_order])  # [A, D]
    matched = np.zeros((num_areas, num_thr, num_dt), dtype=bool)  # [A, T, D]
    ignored = np.repeat(dt_outside[:, None, :], num_thr, axis=1)  # [A, T, D]

    # Only pairs holding both objects and detections need matching.
    gt_sorted_pair = gt_pair[gt_order]
    both = np.intersect1d(gt_sorted_pair, sorted_pair)
    g_lo = np.searchsorted(gt_sorted_pair, both, "left")
    g_hi = np.searchsorted(gt_sorted_pair, both, "right")
    d_lo = np.searchsorted(sorted_pair, both, "left")
    d_hi = np.searchsorted(sorted_pair, both, "right")
    area_index = np.arange(num_areas)[:, None, None]  # [A, 1, 1]
    for g0, g1, d0, d1 in zip(g_lo, g_hi, d_lo, d_hi, strict=True):
        g = gt_order[g0:g1]
        d = dt_order[d0:d1]
        ious = coco_iou_xywh(dts.bbox[d], gts.bbox[g], gts.iscrowd[g])  # [d, g], computed once
        pair_ignore = gt_ignore[:, g]  # [A, g]
        # [A, T, d]: the object each detection claims, per area range and threshold
        match = greedy_match_coco(ious, COCO_IOU_THRESHOLDS, pair_ignore, gts.iscrowd[g])
        hit = match != NO_MATCH  # [A, T, d]
        matched[:, :, d0:d1] = hit
        # A detection matched to an ignored object is ignored; an unmatched one keeps its default.
        matched_ignore = pair_ignore[area_index, np.where(hit, match, 0)]  # [A, T, d]
        ignored[:, :, d0:d1] = np.where(hit, matched_ignore, ignored[:, :, d0:d1])
    category = dts.category[dt_order]
    return category, dts.score[dt_order], rank, matched, ignored, num_positives


def _accumulate(num_categories, category, score, rank, matched, ignored, num_positives):
    """Step 3: precision [T, R, K, A, M] and recall [T, K, A, M], as COCOeval.accumulate."""
    num_areas, num_thr = matched.shape[:2]
    num_rec, num_max = len(COCO_RECALL_THRESHOLDS), len(COCO_MAX_DETS)
    precision = np.full((num_thr, num_rec, num_categories, num_areas, num_max), NO_GROUND_TRUTH)
    recall = np.full((num_thr, num_categories, num_areas, num_max), NO_GROUND_TRUTH)
    # Detections are grouped by category: category k's are bounds[k]:bounds[k + 1].
    bounds = np.searchsorted(category, np.arange(num_categories + 1))
    for k in range(num_categories):
        lo, hi = bounds[k], bounds[k + 1]
        # Pool the category's detections of all images; stable, so ties keep image order.
        by_score = lo + np.argsort(-score[lo:hi], kind="mergesort")
        for m, max_dets in enumerate(COCO_MAX_DETS):
            sel = by_score[rank[by_score] < max_dets]  # each image's top max_dets
            for a in range(num_areas):
                n_pos = num_positives[k, a]
                if n_pos == 0:
                    continue  # no ground truth: stays NO_GROUND_TRUTH
                counted = ~ignored[a][:, sel]  # [T, n]
                tp = np.cumsum(matched[a][:, sel] & counted, axis=1, dtype=np.float64)  # [T, n]
                fp = np.cumsum(~matched[a][:, sel] & counted, axis=1, dtype=np.float64)  # [T, n]
                # Ignored detections repeat the previous point (or give 0/0 -> 0 before the
                # first counted one); neither changes the envelope or the sampled points.
                rc = tp / n_pos  # [T, n]
                pr = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)  # [T, n]
                precision[:, :, k, a, m] = coco_sampled_precision(pr, rc)  # [T, R]
                recall[:, k, a, m] = rc[:, -1] if len(sel) else 0.0
    return precision, recall


def _summarize(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """Step 4: the 12 numbers, each a mean over the entries that are not NO_GROUND_TRUTH."""

    def mean_defined(values: np.ndarray) -> float:
        defined = values[values > NO_GROUND_TRUTH]
        return float(np.mean(defined)) if defined.size else NO_GROUND_TRUTH

    area = {name: a for a, name in enumerate(COCO_AREA_RANGES)}
    t50 = np.nonzero(COCO_IOU_THRESHOLDS == 0.5)[0]
    t75 = np.nonzero(COCO_IOU_THRESHOLDS == 0.75)[0]
    m1, m10, m100 = (COCO_MAX_DETS.index(m) for m in (1, 10, 100))
    ap = [
        precision[:, :, :, area["all"], m100],
        precision[t50][:, :, :, area["all"], m100],
        precision[t75][:, :, :, area["all"], m100],
        precision[:, :, :, area["small"], m100],
        precision[:, :, :, area["medium"], m100],
        precision[:, :, :, area["large"], m100],
    ]
    ar = [
        recall[:, :, area["all"], m1],
        recall[:, :, area["all"], m10],
        recall[:, :, area["all"], m100],
        recall[:, :, area["small"], m100],
        recall[:, :, area["medium"], m100],
        recall[:, :, area["large"], m100],
    ]
    return np.array([mean_defined(v) for v in ap + ar])


def coco_evaluate(gt, dt) -> CocoEvaluation:
    """COCO box AP and AR, the 12 numbers of pycocotools' ``COCOeval.summarize()``.

    Args:
        gt: ground truth: a COCO dataset dict, a ``pycocotools.coco.COCO``, a JSON path, or
            a list of per-image target dicts (``boxes`` Tensor[M, 4] ``(x1, y1, x2, y2)``,
            ``labels`` Tensor[M], optional ``iscrowd``, ``area``, ``image_id``). See the
            module docstring for every field.
        dt: detections: a list of COCO result dicts (``bbox`` ``[x, y, w, h]``), the COCO
            object ``loadRes`` returned, a JSON path, or (with a list ``gt``) a list of
            per-image prediction dicts (``boxes``, ``scores``, ``labels``).

    Returns:
        CocoEvaluation: ``stats`` (12 floats: AP, AP50, AP75, APs, APm, APl, AR1, AR10,
        AR100, ARs, ARm, ARl; -1 where undefined), ``precision`` [10, 101, K, 4, 3] and
        ``recall`` [10, K, 4, 3] as pycocotools' ``eval``, and ``category_ids``.
    """
    if isinstance(gt, (list, tuple)):
        gt, dt = _tensor_form_to_coco(list(gt), dt)
    num_images, category_ids, gts, dts = _load_coco_format(gt, dt)
    num_categories = len(category_ids)
    category, score, rank, matched, ignored, num_positives = _match_all(
        num_images, num_categories, gts, dts
    )
    precision, recall = _accumulate(
        num_categories, category, score, rank, matched, ignored, num_positives
    )
    return CocoEvaluation(_summarize(precision, recall), precision, recall, list(category_ids))
