"""Anchors widget: the anchors at one location and every anchor's training label.

A small drawn scene (160 x 160 px) holds three objects. The controls set the feature
map's stride (so its size), the anchor sizes and aspect ratios, the location looked
at, and the IoU thresholds that label each anchor positive / negative / ignored. The
anchors come from :func:`vizlib.anchors.generate_anchors` and
:func:`vizlib.anchors.grid_anchors`, the labels from
:func:`vizlib.anchors.match_anchors_to_boxes`; this module only draws them.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import torch

from vizlib.anchors import (
    BACKGROUND,
    IGNORE,
    generate_anchors,
    grid_anchors,
    match_anchors_to_boxes,
)
from vizlib.viz._figure import axis_key, fast_figure, set_image_axes, subplot_layout
from vizlib.viz.boxes import box_trace, image_trace, label_trace
from vizlib.widgets._base import Control, Widget

__all__ = [
    "AnchorsWidget",
    "anchor_scene",
    "anchor_numbers",
    "anchors_figure",
    "prediction_tensor_size",
    "IMAGE_SIZE",
    "CLASS_NAMES",
    "LOCATIONS",
]

#: Height and width of the scene in pixels: stride 32 gives the lecture's 5 x 5 grid.
IMAGE_SIZE = 160
#: The scene's classes (index 0 is background, as in torchvision's targets).
CLASS_NAMES = ("background", "person", "car", "ball")
#: Points of the image whose feature-map cell the widget looks at (x, y in pixels).
LOCATIONS = {
    "person": (40.0, 88.0),
    "car": (112.0, 120.0),
    "ball": (120.0, 40.0),
    "sky": (40.0, 24.0),
}
_GT_BOXES = ((26.0, 44.0, 54.0, 136.0), (72.0, 100.0, 152.0, 140.0), (104.0, 24.0, 136.0, 56.0))
_GT_LABELS = (1, 2, 3)

# Label colours: positive, ignored, negative (and the ground truth).
_POS, _IGN, _NEG, _GT = "#009E73", "#E69F00", "#999999", "#0072B2"
# Codes in the label map: 0 negative, 1 ignored, 2 positive.
_CODE_NEG, _CODE_IGN, _CODE_POS = 0, 1, 2


def anchor_scene() -> tuple[np.ndarray, dict]:
    """The widget's image and its targets (fresh copies: changing them changes nothing).

    Returns:
        tuple: ``image`` (``uint8 [160, 160, 3]``) and ``target`` (a dict like
        torchvision's: ``boxes`` ``Tensor[3, 4]`` float32 xyxy, ``labels`` ``Tensor[3]``
        int64 indexing :data:`CLASS_NAMES`).
    """
    image, target = _scene()
    return image.copy(), {k: v.clone() for k, v in target.items()}


@lru_cache(maxsize=1)
def _scene() -> tuple[np.ndarray, dict]:
    s = IMAGE_SIZE
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)  # [H, W] each
    img = np.zeros((s, s, 3), np.float32)
    sky = yy < 0.6 * s
    img[sky] = np.array([170, 205, 235], np.float32) + 30 * (yy[sky, None] / s)  # [K, 3]
    img[~sky] = np.array([110, 150, 90], np.float32) + 25 * np.sin(xx[~sky, None] / 5)
    # person: body and head inside box 0
    x1, y1, x2, y2 = _GT_BOXES[0]
    img[(xx >= x1 + 3) & (xx < x2 - 3) & (yy >= y1 + 24) & (yy < y2)] = (200, 60, 60)
    img[(xx - (x1 + x2) / 2) ** 2 + (yy - (y1 + 12)) ** 2 < 11**2] = (235, 190, 160)
    # car: body and wheels inside box 1
    x1, y1, x2, y2 = _GT_BOXES[1]
    img[(xx >= x1) & (xx < x2) & (yy >= y1 + 8) & (yy < y2 - 8)] = (40, 70, 160)
    img[(xx >= x1 + 16) & (xx < x2 - 20) & (yy >= y1) & (yy < y1 + 10)] = (60, 90, 180)
    for wx in (x1 + 16, x2 - 16):
        img[(xx - wx) ** 2 + (yy - (y2 - 8)) ** 2 < 8**2] = (30, 30, 30)
    # ball inside box 2
    x1, y1, x2, y2 = _GT_BOXES[2]
    img[(xx - (x1 + x2) / 2) ** 2 + (yy - (y1 + y2) / 2) ** 2 < 16**2] = (240, 200, 40)
    target = {
        "boxes": torch.tensor(_GT_BOXES, dtype=torch.float32),
        "labels": torch.tensor(_GT_LABELS, dtype=torch.int64),
    }
    return np.clip(img, 0, 255).astype(np.uint8), target


def prediction_tensor_size(
    grid_h: int, grid_w: int, anchors_per_cell: int, num_classes: int, objectness: bool = False
) -> int:
    """How many numbers a one-level anchor head predicts for one image.

    Per anchor: 4 box offsets ``(dx, dy, dw, dh)`` and ``C + 1`` class scores (the
    ``+ 1`` is background), as in SSD and Faster R-CNN's second stage. With
    ``objectness=True`` (YOLO v2/v3 style) it is 4 offsets, 1 objectness score and ``C``
    class scores instead - also ``C + 5`` numbers.

    Args:
        grid_h, grid_w (int): feature-map size.
        anchors_per_cell (int): ``A``, anchors at every location.
        num_classes (int): ``C``, object classes without background.
        objectness (bool): score "object or not" separately instead of a background class.

    Returns:
        int: ``grid_h * grid_w * A * (4 + C + 1)``.
    """
    per_anchor = 4 + 1 + num_classes if objectness else 4 + num_classes + 1
    return grid_h * grid_w * anchors_per_cell * per_anchor


def anchor_numbers(
    stride: int,
    sizes: tuple,
    ratios: tuple,
    location: str,
    fg_iou: float,
    bg_iou: float = 0.3,
    low_quality: bool = False,
) -> dict:
    """The anchors of the scene and their labels, for one state of the widget.

    Returns:
        dict: ``grid`` ``(H, W)``, ``A`` (anchors per cell), ``anchors``
        (``Tensor[H*W*A, 4]`` xyxy), ``matches`` (``Tensor[H*W*A]`` int64: ground-truth
        index, ``BACKGROUND`` or ``IGNORE``), ``codes`` (``np.ndarray[A, H*W]`` 0 negative /
        1 ignored / 2 positive), ``cell`` ``(row, col)`` of the location, ``at_cell``
        (``Tensor[A, 4]``, the anchors there) and ``at_cell_matches`` (``Tensor[A]``),
        ``counts`` (dict), ``tensor_size`` (numbers predicted, C = 3 classes).
    """
    if location not in LOCATIONS:
        raise ValueError(f"location must be one of {list(LOCATIONS)}, got {location!r}")
    _, target = _scene()
    grid = (IMAGE_SIZE // stride, IMAGE_SIZE // stride)
    base = generate_anchors(sizes, ratios)  # [A, 4] centred at 0
    # offset 0.5: anchors centred in their cell (torchvision's AnchorGenerator uses 0)
    anchors = grid_anchors(grid, stride, base, offset=0.5)  # [H*W*A, 4]
    matches = match_anchors_to_boxes(
        anchors, target["boxes"], fg_iou, bg_iou, allow_low_quality_matches=low_quality
    )  # [H*W*A]
    a = base.shape[0]
    per_loc = matches.view(grid[0] * grid[1], a)  # [H*W, A], location-major like grid_anchors
    codes = np.full(per_loc.shape, _CODE_POS, np.uint8)
    codes[(per_loc == BACKGROUND).numpy()] = _CODE_NEG
    codes[(per_loc == IGNORE).numpy()] = _CODE_IGN
    x, y = LOCATIONS[location]
    cell = (int(y // stride), int(x // stride))
    k = cell[0] * grid[1] + cell[1]
    return {
        "grid": grid,
        "A": a,
        "anchors": anchors,
        "matches": matches,
        "codes": codes.T,  # [A, H*W]
        "cell": cell,
        "at_cell": anchors.view(-1, a, 4)[k],
        "at_cell_matches": per_loc[k],
        "counts": {
            "total": int(matches.numel()),
            "positive": int((matches >= 0).sum()),
            "ignored": int((matches == IGNORE).sum()),
            "negative": int((matches == BACKGROUND).sum()),
        },
        "tensor_size": prediction_tensor_size(grid[0], grid[1], a, len(CLASS_NAMES) - 1),
    }


def _fmt(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def anchors_figure(
    stride: int,
    sizes: tuple,
    ratios: tuple,
    location: str,
    fg_iou: float,
    bg_iou: float = 0.3,
    low_quality: bool = False,
    height: int = 470,
):
    """The widget's figure for one state (see :func:`anchor_numbers`).

    Left: the scene, its ground-truth boxes (blue), every positive anchor (thin green),
    the anchors of the chosen cell (thick: green positive, orange dashed ignored, grey
    dotted negative) and the feature-map cell centres. Right: the label of every anchor,
    one row per anchor shape and one column per location.
    """
    _, target = _scene()
    n = anchor_numbers(stride, sizes, ratios, location, fg_iou, bg_iou, low_quality)
    gh, gw = n["grid"]
    at, am = n["at_cell"], n["at_cell_matches"]
    layout, refs = subplot_layout(
        [(1, 1), (1, 2)], rows=1, cols=2, column_widths=[0.5, 0.5], horizontal_spacing=0.1
    )
    left, right = refs[(1, 1)], refs[(1, 2)]
    # every location's centre, coloured by the best label among its anchors
    best = n["codes"].max(axis=0)  # [H*W]
    cy, cx = np.mgrid[0:gh, 0:gw]
    colors = np.array([_NEG, _IGN, _POS])[best]
    r, c = n["cell"]
    k = r * gw + c  # the chosen location's column in the label map
    shape_names = [f"r={rr:g} s={ss:g}" for rr in ratios for ss in sizes]
    data = [
        {**_image_trace(), **left},
        {**box_trace(target["boxes"], color=_GT, name="ground truth", width=3), **left},
        {
            **label_trace(
                target["boxes"],
                [CLASS_NAMES[i] for i in target["labels"]],
                color=_GT,
                position="above",
            ),
            **left,
        },
        {
            **box_trace(
                n["anchors"][n["matches"] >= 0],
                color=_POS,
                width=1,
                opacity=0.6,
                name="all positive anchors",
            ),
            **left,
        },
        {
            **box_trace(
                at[am == BACKGROUND], color=_NEG, width=2, dash="dot", name="at the cell: negative"
            ),
            **left,
        },
        {
            **box_trace(
                at[am == IGNORE], color=_IGN, width=2.5, dash="dash", name="at the cell: ignored"
            ),
            **left,
        },
        {**box_trace(at[am >= 0], color=_POS, width=3.5, name="at the cell: positive"), **left},
        {
            "type": "scatter",
            "x": ((cx.reshape(-1) + 0.5) * stride).tolist(),
            "y": ((cy.reshape(-1) + 0.5) * stride).tolist(),
            "mode": "markers",
            "marker": {"color": colors.tolist(), "size": 6, "line": {"width": 1, "color": "white"}},
            "name": "cell centres",
            "hoverinfo": "skip",
            **left,
        },
        {
            "type": "scatter",
            "x": [(c + 0.5) * stride],
            "y": [(r + 0.5) * stride],
            "mode": "markers",
            "marker": {"symbol": "x", "size": 12, "color": "black"},
            "name": f"the cell ({r}, {c})",
            **left,
        },
        {
            "type": "heatmap",
            "z": n["codes"].tolist(),
            "zmin": 0,
            "zmax": 2,
            "showscale": False,
            "colorscale": [
                [0, _NEG],
                [0.33, _NEG],
                [0.34, _IGN],
                [0.66, _IGN],
                [0.67, _POS],
                [1, _POS],
            ],
            "xgap": 1,
            "ygap": 1,
            "hovertemplate": "location %{x}, anchor %{y}<extra></extra>",
            "name": "labels",
            **right,
        },
        {
            "type": "scatter",
            "x": [k, k],
            "y": [-0.5, n["A"] - 0.5],
            "mode": "lines",
            "line": {"color": "black", "width": 2},
            "showlegend": False,
            "hoverinfo": "skip",
            "name": "chosen column",
            **right,
        },
    ]
    counts = n["counts"]
    layout.update(
        title={
            "text": (
                f"grid {gh}×{gw} × A = {n['A']} anchors = {counts['total']}: "
                f"<b style='color:{_POS}'>{counts['positive']} positive</b>, "
                f"<b style='color:{_IGN}'>{counts['ignored']} ignored</b>, "
                f"{counts['negative']} negative<br>prediction tensor {gh}×{gw}×{n['A']}×(4 + 3 + 1)"
                f" = {n['tensor_size']} numbers  (sizes {_fmt(sizes)}; ratios h/w {_fmt(ratios)})"
            ),
            "font": {"size": 13},
            "x": 0.01,
            "y": 0.98,
            "yanchor": "top",
        },
        height=height,
        margin={"l": 10, "r": 10, "t": 100, "b": 40},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "font": {"size": 11}},
    )
    set_image_axes(layout, left, IMAGE_SIZE, IMAGE_SIZE, margin=24)
    layout[axis_key(right, "x")].update(
        title={"text": "location (row-major)"}, range=[-0.5, gh * gw - 0.5]
    )
    layout[axis_key(right, "y")].update(
        range=[n["A"] - 0.5, -0.5], tickvals=list(range(n["A"])), ticktext=shape_names
    )
    return fast_figure(data, layout)


@lru_cache(maxsize=1)
def _image_trace_cached() -> str:
    return json.dumps(image_trace(_scene()[0]))


def _image_trace() -> dict:
    """The scene as an image trace (encoded to PNG once)."""
    return json.loads(_image_trace_cached())


_SIZES = [(32,), (32, 64), (24, 48, 96)]
_RATIOS = [(1.0,), (0.5, 1.0, 2.0), (0.33, 0.5, 1.0, 2.0, 3.0)]


class AnchorsWidget(Widget):
    """Anchors over a small scene, labelled by IoU with the ground truth.

    The default state is the lecture's example: stride 32 on a 160-px image gives a
    5 x 5 grid; 2 sizes x 5 aspect ratios = 10 anchors per cell; 3 classes plus
    background make ``5 * 5 * 10 * (4 + 3 + 1) = 2000`` predicted numbers.
    """

    controls = [
        Control(
            "stride",
            "stride",
            values=[16, 32],
            default=32,
            kind="toggle",
            labels=["16 (10×10)", "32 (5×5)"],
        ),
        Control(
            "sizes",
            "sizes",
            values=_SIZES,
            default=(32, 64),
            kind="dropdown",
            labels=[_fmt(s) for s in _SIZES],
        ),
        Control(
            "ratios",
            "aspect ratios h/w",
            values=_RATIOS,
            default=_RATIOS[2],
            kind="dropdown",
            labels=["1", "0.5, 1, 2", "0.33 … 3"],
        ),
        Control("location", "location", values=list(LOCATIONS), default="person"),
        Control(
            "fg_iou",
            "positive if IoU ≥",
            values=[0.4, 0.5, 0.6, 0.7],
            default=0.5,
            static_values=[0.4, 0.5, 0.7],
        ),
        Control("bg_iou", "negative if IoU <", values=[0.2, 0.3, 0.4], default=0.3),
        Control(
            "low_quality",
            "best anchor of each box is positive",
            values=[False, True],
            default=False,
            kind="toggle",
            labels=["no", "yes"],
        ),
    ]
    static_controls = ("location", "ratios", "fg_iou")

    def figure(self, stride, sizes, ratios, location, fg_iou, bg_iou, low_quality):
        return anchors_figure(
            stride,
            sizes,
            ratios,
            location,
            fg_iou,
            bg_iou=min(bg_iou, fg_iou),
            low_quality=low_quality,
        )
