"""Precision-recall curves with the average precision drawn as an area.

The curve and the AP come from :mod:`vizlib.metrics` (``precision_recall_curve``,
``precision_envelope``, ``average_precision``). This module turns them into the region
whose area *is* the AP, for each flavour:

* ``'voc07'`` - 11 bars of width 1/11, one centred on each recall level 0, 0.1, ..., 1,
  each as high as the envelope there: their total area is the mean of 11 heights;
* ``'voc'`` - the area under the envelope itself (all points, VOC 2010+);
* ``'coco'`` - 101 bars of width 1/101 at the recall levels 0, 0.01, ..., 1.

The sampled bars are centred on their recall level, so the first and the last stick out
of ``[0, 1]`` by half a bar, and a bar (1/11) is narrower than the gap between levels
(1/10): that is what "the mean of N samples" looks like as an area.
:func:`ap_region` returns the outline and its area; tests check that the area equals
``average_precision`` for every flavour.
"""

from __future__ import annotations

import numpy as np
import torch

from vizlib._checks import check_choice
from vizlib.metrics import (
    AP_METHODS,
    COCO_RECALL_THRESHOLDS,
    VOC07_RECALL_THRESHOLDS,
    precision_envelope,
)
from vizlib.viz.boxes import PALETTE, with_alpha

__all__ = [
    "AP_LABELS",
    "sampled_envelope",
    "ap_region",
    "pr_curve_traces",
    "pr_curve_figure",
    "plot_pr_curve_mpl",
]

#: How each AP flavour is written in legends.
AP_LABELS = {
    "voc07": "VOC 11-point",
    "voc": "all-point (VOC 2010+)",
    "coco": "COCO 101-point",
}


def _curve_np(precision, recall) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(
        precision.detach().cpu() if hasattr(precision, "detach") else precision, dtype=np.float64
    ).reshape(-1)
    r = np.asarray(
        recall.detach().cpu() if hasattr(recall, "detach") else recall, dtype=np.float64
    ).reshape(-1)
    if p.shape != r.shape:
        raise ValueError(
            f"precision and recall must have the same length, got {p.size} and {r.size}"
        )
    if not (np.isfinite(p).all() and np.isfinite(r).all()):
        raise ValueError("precision and recall must be finite")
    if r.size > 1 and (np.diff(r) < 0).any():
        raise ValueError("recall must be non-decreasing (points ordered by descending score)")
    return p, r


def sampled_envelope(precision, recall, levels) -> np.ndarray:
    """The envelope (``vizlib.metrics.precision_envelope``) read at recall ``levels``.

    At level ``r`` it is the envelope at the first point whose recall reaches ``r``
    (the best precision at recall >= ``r``), and 0 where the curve never reaches ``r``:
    the heights that the VOC 11-point and COCO 101-point APs average.

    Args:
        precision (Tensor[K]): precision of each point, by descending score.
        recall (Tensor[K]): recall of each point, non-decreasing.
        levels (array[L]): recall levels in [0, 1].

    Returns:
        np.ndarray[L]: float64 heights.
    """
    p, r = _curve_np(precision, recall)
    levels = np.asarray(levels, dtype=np.float64)
    out = np.zeros(levels.shape)
    if p.size == 0:
        return out
    envelope = precision_envelope(torch.from_numpy(p)).numpy()  # [K], float64
    idx = np.searchsorted(r, levels, side="left")  # [L]: first point with recall >= level
    reached = idx < p.size
    out[reached] = envelope[idx[reached]]
    return out


def ap_region(precision, recall, method: str) -> tuple[list[float], list[float], float]:
    """The outline of the region whose area is the AP, and that area.

    Args:
        precision (Tensor[K]), recall (Tensor[K]): a PR curve by descending score.
        method (str): ``'voc07'``, ``'voc'`` or ``'coco'``.

    Returns:
        tuple: ``xs``, ``ys`` (a closed outline, for a plotly ``fill='toself'`` trace) and
        ``area`` (float), which equals ``average_precision(precision, recall, method)``.
    """
    check_choice("method", method, AP_METHODS)
    p, r = _curve_np(precision, recall)
    if method in ("voc07", "coco"):
        levels = VOC07_RECALL_THRESHOLDS if method == "voc07" else COCO_RECALL_THRESHOLDS
        heights = sampled_envelope(p, r, levels)  # [L]
        width = 1.0 / len(levels)
        # one bar of width 1/L centred on each level (narrower than the spacing of the
        # levels, so small gaps): their total area is the mean of the L heights
        xs, ys = [], []
        for level, h in zip(levels, heights, strict=True):
            left, right = float(level - width / 2), float(level + width / 2)
            xs += [left, left, right, right]
            ys += [0.0, float(h), float(h), 0.0]
        return xs, ys, float(heights.sum() * width)
    # 'voc': close the curve with precision 0 at recalls 0 and 1, take the envelope, and
    # draw one rectangle per recall step, as high as the envelope at its right end.
    rec = np.concatenate([[0.0], r, [1.0]])
    env = precision_envelope(torch.from_numpy(np.concatenate([[0.0], p, [0.0]]))).numpy()
    steps = np.nonzero(rec[1:] != rec[:-1])[0]
    xs, ys = [0.0], [0.0]
    for i in steps:
        xs += [float(rec[i]), float(rec[i + 1])]
        ys += [float(env[i + 1]), float(env[i + 1])]
    xs.append(1.0)
    ys.append(0.0)
    area = float(np.sum((rec[steps + 1] - rec[steps]) * env[steps + 1]))
    return xs, ys, area


def _round(values, digits: int = 4) -> list:
    return [round(float(v), digits) for v in values]


def pr_curve_traces(
    precision,
    recall,
    method: str = "voc",
    color: str = PALETTE[0],
    name: str = "PR curve",
    marker_index: int | None = None,
) -> list:
    """Plotly traces (dicts) of a PR curve: the AP area, the envelope, the curve, a marker.

    Always four traces in this order (the marker trace is empty without ``marker_index``),
    so a widget can swap them between states.

    Args:
        precision (Tensor[K]), recall (Tensor[K]): the curve, by descending score.
        method (str): which AP flavour to shade.
        color (str): ``'#RRGGBB'`` colour of the curve.
        name (str): legend name of the raw curve.
        marker_index (int, optional): point ``k`` to mark (e.g. the current score
            threshold: the top ``k + 1`` detections are kept); ``-1`` for "before the first".

    Returns:
        list[dict]: four plotly scatter traces: area, envelope, curve, marker.
    """
    p, r = _curve_np(precision, recall)
    xs, ys, area = ap_region(p, r, method)
    env = precision_envelope(torch.from_numpy(p)).numpy() if p.size else p
    # The curve starts at recall 0 with the first detection's precision (or 1, by convention).
    curve_x = [0.0] + _round(r)
    curve_y = [round(float(p[0]), 4) if p.size else 1.0] + _round(p)
    env_y = [round(float(env[0]), 4) if p.size else 0.0] + _round(env)
    if marker_index is None:
        mx, my = [], []
    elif marker_index < 0 or p.size == 0:
        mx, my = [0.0], [1.0]
    else:
        mx, my = [round(float(r[marker_index]), 4)], [round(float(p[marker_index]), 4)]
    return [
        {
            "type": "scatter",
            "x": _round(xs),
            "y": _round(ys),
            "mode": "lines",
            "fill": "toself",
            "fillcolor": with_alpha(color, 0.22),
            "line": {"color": with_alpha(color, 0.5), "width": 1},
            "name": f"AP area, {AP_LABELS[method]} = {area:.3f}",
            "hoverinfo": "skip",
        },
        {
            "type": "scatter",
            "x": curve_x,
            "y": env_y,
            "mode": "lines",
            "line": {"color": color, "width": 2, "shape": "vh", "dash": "dash"},
            "name": "envelope (interpolated)",
        },
        {
            "type": "scatter",
            "x": curve_x,
            "y": curve_y,
            "mode": "lines+markers",
            "line": {"color": color, "width": 1},
            "marker": {"size": 4},
            "name": name,
        },
        {
            "type": "scatter",
            "x": mx,
            "y": my,
            "mode": "markers",
            "marker": {
                "size": 14,
                "color": PALETTE[3],
                "symbol": "circle-open",
                "line": {"width": 3},
            },
            "name": "score threshold",
        },
    ]


def pr_curve_figure(
    precision,
    recall,
    method: str = "voc",
    title: str | None = None,
    marker_index: int | None = None,
    height: int = 380,
):
    """A plotly figure of one PR curve with its AP area (see :func:`pr_curve_traces`)."""
    import plotly.graph_objects as go

    fig = go.Figure(pr_curve_traces(precision, recall, method, marker_index=marker_index))
    fig.update_layout(
        title=title,
        height=height,
        plot_bgcolor="white",
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
    )
    fig.update_xaxes(title_text="recall", range=[-0.06, 1.06], gridcolor="#eee")
    fig.update_yaxes(title_text="precision", range=[0, 1.05], gridcolor="#eee")
    return fig


def plot_pr_curve_mpl(
    precision,
    recall,
    method: str = "voc",
    ax=None,
    color: str = PALETTE[0],
    label: str = "PR curve",
):
    """Matplotlib version of :func:`pr_curve_figure` (for printed figures). Returns the axes."""
    import matplotlib.pyplot as plt

    p, r = _curve_np(precision, recall)
    xs, ys, area = ap_region(p, r, method)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.fill(xs, ys, color=color, alpha=0.22, lw=0, label=f"AP ({AP_LABELS[method]}) = {area:.3f}")
    if p.size:
        env = precision_envelope(torch.from_numpy(p)).numpy()
        ax.step(
            np.r_[0.0, r],
            np.r_[env[0], env],
            where="pre",
            color=color,
            ls="--",
            lw=1.5,
            label="envelope",
        )
        ax.plot(np.r_[0.0, r], np.r_[p[0], p], "-o", color=color, ms=3, lw=1, label=label)
    ax.set_xlim(-0.06, 1.06)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(loc="lower left", fontsize=8)
    return ax
