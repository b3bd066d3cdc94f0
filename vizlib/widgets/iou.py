"""IoU widget: two boxes, their intersection, union and enclosing box; IoU and GIoU.

Box A stays put; sliders move box B (its centre) and resize it (a square of side
``size``). The numbers come from :mod:`vizlib.boxes` (``box_iou``,
``generalized_box_iou``, ``box_area``, ``box_convert``); this module only draws.
"""

from __future__ import annotations

import torch

from vizlib.boxes import box_area, box_convert, box_iou, generalized_box_iou
from vizlib.viz._figure import axis_key, fast_figure, set_image_axes, subplot_layout
from vizlib.viz.boxes import PALETTE, box_trace
from vizlib.widgets._base import Control, Widget

__all__ = ["IoUWidget", "iou_numbers", "iou_figure", "BOX_A", "CANVAS"]

#: Side of the square canvas, in pixels.
CANVAS = 100
#: The fixed box A, ``(x1, y1, x2, y2)``: 40 x 40 px centred at (45, 50).
BOX_A = (25.0, 30.0, 65.0, 70.0)

_COLOR_A, _COLOR_B, _COLOR_I = PALETTE[0], PALETTE[1], PALETTE[2]
_COLOR_C = "#777777"


def _box_b(cx: float, cy: float, size: float) -> torch.Tensor:
    """Box B as ``Tensor[1, 4]`` xyxy, from its centre and side (cxcywh in vizlib.boxes)."""
    return box_convert(torch.tensor([[cx, cy, size, size]], dtype=torch.float64), "cxcywh", "xyxy")


def iou_numbers(cx: float, cy: float, size: float) -> dict:
    """Every number the widget shows, for box B centred at ``(cx, cy)`` with side ``size``.

    Returns:
        dict with the boxes ``a``, ``b`` (``Tensor[1, 4]`` xyxy, float64), the
        ``intersection`` and ``enclosing`` boxes (``Tensor[0 or 1, 4]``) and the floats
        ``area_a``, ``area_b``, ``inter``, ``union``, ``area_c``, ``iou``, ``giou``.
    """
    a = torch.tensor([BOX_A], dtype=torch.float64)
    b = _box_b(cx, cy, size)
    # The intersection and the enclosing box C, as boxes to draw (their areas come
    # from box_area; IoU and GIoU themselves from vizlib.boxes).
    top_left = torch.maximum(a[:, :2], b[:, :2])  # [1, 2]
    bottom_right = torch.minimum(a[:, 2:], b[:, 2:])  # [1, 2]
    overlaps = bool((bottom_right > top_left).all())
    inter_box = torch.cat([top_left, bottom_right], dim=1) if overlaps else a[:0]
    enclosing = torch.cat([torch.minimum(a[:, :2], b[:, :2]), torch.maximum(a[:, 2:], b[:, 2:])], 1)
    area_a, area_b = float(box_area(a)[0]), float(box_area(b)[0])
    inter = float(box_area(inter_box).sum())
    return {
        "a": a,
        "b": b,
        "intersection": inter_box,
        "enclosing": enclosing,
        "area_a": area_a,
        "area_b": area_b,
        "inter": inter,
        "union": area_a + area_b - inter,
        "area_c": float(box_area(enclosing)[0]),
        "iou": float(box_iou(a, b)[0, 0]),
        "giou": float(generalized_box_iou(a, b)[0, 0]),
    }


def iou_figure(cx: float, cy: float, size: float, height: int = 400):
    """The widget's figure for one state (see :func:`iou_numbers`).

    Left: the canvas with A (blue), B (orange), their intersection (green, filled) and
    the smallest enclosing box C (grey, dashed; the part of C outside A and B is what
    GIoU penalises). Right: IoU and GIoU as bars on [-1, 1], and the areas.
    """
    n = iou_numbers(cx, cy, size)
    layout, refs = subplot_layout(
        [(1, 1), (1, 2), (2, 2)],
        rows=2,
        cols=2,
        column_widths=[0.58, 0.42],
        row_heights=[0.45, 0.55],
        specs=[[{"rowspan": 2}, {}], [None, {}]],
        horizontal_spacing=0.08,
        vertical_spacing=0.1,
    )
    scene, bars, text = refs[(1, 1)], refs[(1, 2)], refs[(2, 2)]
    lines = [
        f"area(A) = {n['area_a']:.0f}",
        f"area(B) = {n['area_b']:.0f}",
        f"|A ∩ B| = {n['inter']:.0f}",
        f"|A ∪ B| = {n['union']:.0f}",
        f"area(C) = {n['area_c']:.0f}",
        f"IoU = {n['inter']:.0f} / {n['union']:.0f} = {n['iou']:.3f}",
        f"GIoU = IoU − {n['area_c'] - n['union']:.0f} / {n['area_c']:.0f} = {n['giou']:.3f}",
    ]
    data = [
        {
            **box_trace(
                n["enclosing"],
                color=_COLOR_C,
                name="enclosing box C",
                dash="dash",
                width=1.5,
                fill_opacity=0.12,
            ),
            **scene,
        },
        {**box_trace(n["a"], color=_COLOR_A, name="A", fill_opacity=0.15), **scene},
        {**box_trace(n["b"], color=_COLOR_B, name="B", fill_opacity=0.15), **scene},
        {
            **box_trace(n["intersection"], color=_COLOR_I, name="A ∩ B", width=1, fill_opacity=0.6),
            **scene,
        },
        {
            "type": "bar",
            "orientation": "h",
            "y": ["GIoU", "IoU"],
            "x": [round(n["giou"], 4), round(n["iou"], 4)],
            "marker": {"color": [_COLOR_C, _COLOR_I]},
            "text": [f"{n['giou']:.3f}", f"{n['iou']:.3f}"],
            "textposition": "outside",
            "cliponaxis": False,
            "showlegend": False,
            "name": "score",
            **bars,
        },
        {
            "type": "scatter",
            "x": [0] * len(lines),
            "y": list(range(len(lines)))[::-1],
            "text": lines,
            "mode": "text",
            "textposition": "middle right",
            "showlegend": False,
            "hoverinfo": "skip",
            "name": "areas",
            **text,
        },
    ]
    set_image_axes(layout, scene, CANVAS, CANVAS)
    layout[axis_key(bars, "x")].update(
        range=[-1, 1.15], zeroline=True, zerolinecolor="#444", title={"text": "−1 … 1"}
    )
    layout[axis_key(text, "x")].update(visible=False, range=[0, 1])
    layout[axis_key(text, "y")].update(visible=False, range=[-0.5, len(lines) - 0.5])
    layout.update(
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )
    return fast_figure(data, layout)


class IoUWidget(Widget):
    """Two boxes: move and resize B against the fixed A; see IoU and GIoU change.

    Controls: ``cx``, ``cy`` (centre of B, px) and ``size`` (side of B, px). The state
    with ``cx=45, cy=50, size=40`` puts B exactly on A (IoU = GIoU = 1); ``cx=90``
    moves it clear of A (IoU = 0, GIoU < 0 and still falling as B moves away).
    """

    controls = [
        Control("cx", "B centre x", values=[15, 30, 45, 60, 75, 90], default=60),
        Control("cy", "B centre y", values=[30, 50, 70], default=50),
        Control("size", "B size", values=[20, 40, 60], default=40),
    ]

    def figure(self, cx, cy, size):
        return iou_figure(cx, cy, size)
