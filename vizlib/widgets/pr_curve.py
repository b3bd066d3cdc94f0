"""PR-curve widget: detections against ground truth, the PR curve, AP as an area, mAP.

A fixed synthetic set: ten objects of one class and seventeen scored detections, some
well placed, some loosely (IoU 0.55 to 0.7 with their object), two duplicates, five
false alarms, one object never found. The score-threshold slider moves a marker along
the precision-recall curve and counts TP / FP / FN; the IoU-threshold slider re-matches
the detections, which changes the curve; the method picks which AP is shaded (VOC
11-point, all-point, COCO 101-point). mAP@[.5:.95] is printed too.

The matching is :func:`vizlib.metrics.match_detections`, the curve
:func:`vizlib.metrics.precision_recall_curve`, the AP
:func:`vizlib.metrics.average_precision` and the shaded region
:func:`vizlib.viz.curves.ap_region`; this module only draws.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from vizlib._checks import check_choice
from vizlib.metrics import (
    AP_METHODS,
    COCO_IOU_THRESHOLDS,
    average_precision,
    match_detections,
    mean_average_precision,
    precision_recall_curve,
)
from vizlib.viz._figure import axis_key, fast_figure, set_image_axes, subplot_layout
from vizlib.viz.boxes import PALETTE, box_trace, label_trace
from vizlib.viz.curves import AP_LABELS, pr_curve_traces
from vizlib.widgets._base import Control, Widget

__all__ = ["PRCurveWidget", "pr_dataset", "pr_numbers", "pr_figure", "coco_map"]

_W, _H = 250, 160
# Ten objects (x1, y1, x2, y2) on a 250 x 160 canvas.
_GT = (
    (10, 10, 50, 60),
    (65, 12, 115, 52),
    (130, 8, 170, 68),
    (185, 15, 240, 55),
    (12, 90, 52, 150),
    (70, 85, 110, 125),
    (125, 95, 175, 145),
    (190, 80, 230, 140),
    (75, 135, 105, 158),
    (140, 60, 175, 88),
)
# Detections as (object or None, IoU with it, score). A detection of object k is its box
# shifted right so that the IoU is the one given; None is a false alarm, placed below.
_DETS = (
    (0, 0.92, 0.97),
    (1, 0.85, 0.94),
    (2, 0.62, 0.91),
    (None, 0.0, 0.88),
    (3, 0.78, 0.86),
    (4, 0.55, 0.82),
    (0, 0.70, 0.79),
    (5, 0.90, 0.75),
    (None, 0.0, 0.71),
    (6, 0.72, 0.66),
    (7, 0.95, 0.58),
    (None, 0.0, 0.52),
    (8, 0.66, 0.45),
    (5, 0.60, 0.40),
    (None, 0.0, 0.33),
    (None, 0.0, 0.25),
    (9, 0.45, 0.20),
)
_FALSE_ALARMS = (
    (55, 62, 80, 80),
    (200, 145, 230, 159),
    (115, 130, 130, 156),
    (225, 60, 248, 78),
    (2, 66, 20, 84),
)

_TP, _FP, _GTC, _BELOW = PALETTE[2], PALETTE[3], PALETTE[0], "#c8c8c8"


@lru_cache(maxsize=1)
def _dataset() -> tuple[dict, dict]:
    gt = torch.tensor(_GT, dtype=torch.float64)
    boxes, scores, alarms = [], [], iter(_FALSE_ALARMS)
    for k, iou, score in _DETS:
        if k is None:
            boxes.append(list(next(alarms)))
        else:
            x1, y1, x2, y2 = _GT[k]
            w = x2 - x1
            # shifting a w-wide box right by d gives IoU (w - d) / (w + d)
            d = w * (1 - iou) / (1 + iou)
            boxes.append([x1 + d, y1, x2 + d, y2])
        scores.append(score)
    prediction = {
        "boxes": torch.tensor(boxes, dtype=torch.float64),
        "scores": torch.tensor(scores, dtype=torch.float64),
        "labels": torch.ones(len(boxes), dtype=torch.int64),
    }
    target = {"boxes": gt, "labels": torch.ones(len(gt), dtype=torch.int64)}
    return prediction, target


def pr_dataset() -> tuple[dict, dict]:
    """The widget's synthetic set: one image, one class.

    Returns:
        tuple: ``prediction`` (``boxes`` ``Tensor[17, 4]`` float64 xyxy, ``scores``
        ``Tensor[17]``, ``labels`` ``Tensor[17]`` int64, all 1) and ``target``
        (``boxes`` ``Tensor[10, 4]``, ``labels`` ``Tensor[10]``), dicts as torchvision's.
        Copies: changing them does not change the widget.
    """
    p, t = _dataset()
    return {k: v.clone() for k, v in p.items()}, {k: v.clone() for k, v in t.items()}


@lru_cache(maxsize=1)
def coco_map() -> float:
    """mAP@[.5:.95] of the set: COCO's 101-point AP averaged over IoU 0.5, 0.55, ..., 0.95."""
    p, t = _dataset()
    aps = [
        mean_average_precision([p], [t], float(thr), method="coco").map
        for thr in COCO_IOU_THRESHOLDS
    ]
    return float(sum(aps) / len(aps))


def pr_numbers(score_threshold: float, iou_threshold: float, method: str) -> dict:
    """Matches, curve, counts and APs for one state of the widget.

    Returns:
        dict: ``matches`` (:class:`vizlib.metrics.DetectionMatches`, input order),
        ``curve`` (:class:`vizlib.metrics.PrecisionRecall`), ``kept`` (``Tensor[17]`` bool,
        score >= threshold), ``tp``, ``fp``, ``fn`` (counts among the kept), ``precision``
        and ``recall`` at the threshold, ``marker_index`` (the curve's point there, -1 if
        nothing is kept), ``ap`` (dict method -> AP at this IoU) and ``map`` (mAP@[.5:.95]).
    """
    check_choice("method", method, AP_METHODS)
    p, t = _dataset()
    # VOC matching for VOC APs, COCO matching for COCO's (they agree on this set).
    rule = "coco" if method == "coco" else "voc"
    m = match_detections(p["boxes"], p["scores"], t["boxes"], iou_threshold, rule=rule)
    curve = precision_recall_curve(p["scores"], m.tp, len(t["boxes"]))
    kept = p["scores"] >= score_threshold
    tp = int((m.tp & kept).sum())
    fp = int((m.fp & kept).sum())
    n_kept = int(kept.sum())
    return {
        "matches": m,
        "curve": curve,
        "kept": kept,
        "tp": tp,
        "fp": fp,
        "fn": len(t["boxes"]) - tp,
        "precision": tp / n_kept if n_kept else 1.0,
        "recall": tp / len(t["boxes"]),
        "marker_index": n_kept - 1,
        "ap": {a: average_precision(curve.precision, curve.recall, a) for a in AP_METHODS},
        "map": coco_map(),
    }


def pr_figure(score_threshold: float, iou_threshold: float, method: str, height: int = 460):
    """The widget's figure for one state (see :func:`pr_numbers`).

    Left: the objects (blue dashed; thick where no kept detection found them) and the
    detections scoring at least the threshold (green TP, red FP, with their scores);
    lower-scoring ones in light grey. Right: the PR curve, its envelope, the AP area of
    ``method`` and a marker at the threshold.
    """
    p, t = _dataset()
    n = pr_numbers(score_threshold, iou_threshold, method)
    m, kept = n["matches"], n["kept"]
    found = torch.zeros(len(t["boxes"]), dtype=torch.bool)
    found[m.matched_gt[m.tp & kept]] = True
    layout, refs = subplot_layout(
        [(1, 1), (1, 2)], rows=1, cols=2, column_widths=[0.52, 0.48], horizontal_spacing=0.08
    )
    left, right = refs[(1, 1)], refs[(1, 2)]
    data = [
        {
            **box_trace(
                t["boxes"][found], color=_GTC, dash="dash", width=1.5, name="objects found"
            ),
            **left,
        },
        {
            **box_trace(
                t["boxes"][~found], color=_GTC, dash="dash", width=3.5, name="objects missed (FN)"
            ),
            **left,
        },
        {**box_trace(p["boxes"][~kept], color=_BELOW, width=1, name="below the threshold"), **left},
        {**box_trace(p["boxes"][m.fp & kept], color=_FP, width=2, name="false positive"), **left},
        {**box_trace(p["boxes"][m.tp & kept], color=_TP, width=2, name="true positive"), **left},
        {
            **label_trace(
                p["boxes"][kept],
                [f"{s:.2f}" for s in p["scores"][kept].tolist()],
                color="#333333",
                size=9,
                position="above",
            ),
            **left,
        },
    ]
    data += [
        {**trace, **right}
        for trace in pr_curve_traces(
            n["curve"].precision, n["curve"].recall, method, marker_index=n["marker_index"]
        )
    ]
    set_image_axes(layout, left, _W, _H, margin=4, show_ticks=False)
    layout[axis_key(right, "x")].update(
        title={"text": "recall"}, range=[-0.06, 1.06], gridcolor="#eee"
    )
    layout[axis_key(right, "y")].update(
        title={"text": "precision"}, range=[0, 1.05], gridcolor="#eee"
    )
    ap = n["ap"]
    layout.update(
        title={
            "text": (
                f"score ≥ {score_threshold:g}: TP {n['tp']}, FP {n['fp']}, FN {n['fn']} → precision "
                f"{n['precision']:.2f}, recall {n['recall']:.2f}<br>at IoU {iou_threshold:g}: "
                f"AP {AP_LABELS['voc07']} {ap['voc07']:.3f}, all-point {ap['voc']:.3f}, "
                f"COCO 101-point {ap['coco']:.3f}  |  mAP@[.5:.95] = {n['map']:.3f}"
            ),
            "font": {"size": 13},
            "x": 0.01,
            "y": 0.98,
            "yanchor": "top",
        },
        height=height,
        margin={"l": 10, "r": 10, "t": 130, "b": 10},
        plot_bgcolor="white",
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "font": {"size": 11}},
    )
    return fast_figure(data, layout)


class PRCurveWidget(Widget):
    """Score and IoU thresholds against the PR curve; AP as an area in three flavours."""

    controls = [
        Control(
            "score_threshold",
            "score threshold",
            values=[0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
            default=0.5,
            static_values=[0.1, 0.3, 0.5, 0.7, 0.8, 0.9],
        ),
        Control(
            "iou_threshold",
            "IoU threshold",
            values=[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95],
            default=0.5,
            static_values=[0.5, 0.7, 0.9],
        ),
        Control(
            "method",
            "AP",
            values=list(AP_METHODS),
            default="voc",
            kind="toggle",
            labels=["VOC 11-pt", "all-point", "COCO 101-pt"],
        ),
    ]

    def figure(self, score_threshold, iou_threshold, method):
        return pr_figure(score_threshold, iou_threshold, method)
