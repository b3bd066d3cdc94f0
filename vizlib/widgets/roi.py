"""RoI pooling vs RoIAlign widget: where each one reads the feature map for one RoI.

Left, RoI pooling (Girshick 2015): the RoI rounded to whole cells, its quantised bins
(which overlap when the RoI's cells do not divide evenly) and the cell each bin's maximum
comes from. Right, RoIAlign (He et al. 2017): the exact bins and the points where it
interpolates the map. Below, the two ``h x w`` outputs. The title gives RoI pooling's
quantisation error (:func:`vizlib.roi.quantisation_error`). The bins, points and outputs
come from :mod:`vizlib.roi` (equal to ``torchvision.ops``); this module only draws them.

The feature map is drawn as a grid whose cell ``(i, j)`` is centred on ``(x, y) = (j, i)``:
exactly RoIAlign's sampling coordinates, so the sample points are drawn where they are
computed. The RoI itself (``box * spatial_scale``, in which cell ``j`` spans ``[j, j + 1)``)
is therefore drawn half a cell up and left: with ``aligned=False`` the sample points sit
half a cell right of and below it, the misalignment that ``aligned=True`` removes.
"""

from __future__ import annotations

import numpy as np
import torch

from vizlib import roi as R
from vizlib._checks import as_float_tensor, check_number, check_positive_int
from vizlib.viz import grids

from ._base import Control, Widget

__all__ = ["RoIPoolingWidget", "roi_widget_numbers", "roi_widget_figure", "default_feature"]

#: The default RoI on the default 16 x 16 map (spatial scale 1), before shift and scale.
DEFAULT_BOX = (2.1, 3.6, 12.2, 12.7)
_POOL, _ALIGN, _EXACT = "#D55E00", "#0072B2", "#000000"
_SAMPLING_LABELS = {-1: "adaptive", 1: "1×1", 2: "2×2", 3: "3×3"}


def default_feature(size: int = 16) -> torch.Tensor:
    """A ``[1, size, size]`` map with a visible pattern: two bumps and a diagonal ridge,
    values in [0, 1] rounded to 2 decimals, so that each bin's maximum is easy to spot."""
    size = check_positive_int("size", size)
    yy, xx = torch.meshgrid(torch.arange(float(size)), torch.arange(float(size)), indexing="ij")
    s = size / 16
    bump1 = torch.exp(-((xx - 4.5 * s) ** 2 + (yy - 5.0 * s) ** 2) / (2 * (2.2 * s) ** 2))
    bump2 = 0.8 * torch.exp(-((xx - 11.0 * s) ** 2 + (yy - 10.5 * s) ** 2) / (2 * (1.8 * s) ** 2))
    ridge = 0.55 * torch.exp(-((xx - yy - 1.0 * s) ** 2) / (2 * (0.9 * s) ** 2))
    ripple = 0.12 * torch.sin(xx * 1.7) * torch.cos(yy * 1.3)  # so neighbours differ
    f = bump1 + bump2 + ridge + ripple
    f = (f - f.min()) / (f.max() - f.min())
    return torch.round(f * 100)[None] / 100


def _check_feature(feature) -> torch.Tensor:
    """A feature map as ``Tensor[C, H, W]`` (an ``[H, W]`` map gets ``C = 1``)."""
    f = as_float_tensor("feature", feature)
    if f.dim() == 2:
        f = f[None]
    if f.dim() != 3 or f.shape[1] < 2 or f.shape[2] < 2:
        raise ValueError(
            f"feature must be a map [H, W] or [C, H, W] with H, W >= 2, got {tuple(f.shape)}"
        )
    return f.detach().cpu()


def _moved_box(box: torch.Tensor, dx: float, dy: float, size: float, scale: float):
    """The box scaled by ``size`` about its centre, then shifted by ``(dx, dy)`` cells."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half_w, half_h = (box[2] - box[0]) * size / 2, (box[3] - box[1]) * size / 2
    sx, sy = dx / scale, dy / scale  # cells -> image pixels
    return torch.stack([cx - half_w + sx, cy - half_h + sy, cx + half_w + sx, cy + half_h + sy])


def roi_widget_numbers(
    dx: float,
    dy: float,
    size: float,
    output_size: int,
    sampling_ratio: int,
    aligned: bool,
    feature=None,
    box=None,
    spatial_scale: float = 1.0,
    channel: int = 0,
) -> dict:
    """RoI pooling and RoIAlign of one RoI on one channel, for one state of the widget.

    Args:
        dx, dy (float): shift of the RoI in feature-map cells.
        size (float): the RoI's width and height are multiplied by it (about its centre).
        output_size (int): ``h = w`` bins.
        sampling_ratio (int): RoIAlign's points per bin side; -1 adaptive.
        aligned (bool): RoIAlign's half-pixel shift.
        feature (Tensor[C, H, W] or Tensor[H, W], optional): the map; default
            :func:`default_feature`.
        box (Tensor[4], optional): ``(x1, y1, x2, y2)`` in image pixels; default
            :data:`DEFAULT_BOX`.
        spatial_scale (float): feature-map cells per image pixel.
        channel (int): the channel shown.

    Returns:
        dict: ``feature`` (``Tensor[H, W]``, the channel), ``box`` (``Tensor[4]``, image
        pixels), ``roi`` (``Tensor[4]``, ``box * spatial_scale``), ``bins``
        (:class:`vizlib.roi.RoIPoolBins`, clipped to the map), ``max_cells`` (``(row, col)``
        of each non-empty bin's maximum), ``pooled`` and ``aligned_out`` (``Tensor[h, w]``
        from :func:`vizlib.roi.roi_pool` / :func:`vizlib.roi.roi_align`), ``points``
        (``Tensor[h, w, sy, sx, 2]``), ``align_edges`` (``(ys [h + 1], xs [w + 1])``, the
        exact bin edges RoIAlign uses), ``error`` (cells) and ``error_px`` (image pixels).
    """
    f = default_feature() if feature is None else _check_feature(feature)
    channel = check_positive_int("channel", channel, allow_zero=True)
    if channel >= f.shape[0]:
        raise ValueError(f"channel must be < {f.shape[0]} (the feature's channels), got {channel}")
    scale = check_number("spatial_scale", spatial_scale, low=0, strict=True)
    b0 = as_float_tensor("box", DEFAULT_BOX if box is None else box)
    if b0.shape != (4,):
        raise ValueError(f"box must be 4 numbers (x1, y1, x2, y2), got shape {tuple(b0.shape)}")
    b = _moved_box(b0, float(dx), float(dy), float(size), scale)
    fmap = f[channel : channel + 1]  # [1, H, W]
    height, width = fmap.shape[1:]
    rows = torch.cat([torch.zeros(1), b])[None]  # [1, 5]
    pooled = R.roi_pool(fmap[None], rows, output_size, scale)[0, 0]  # [h, w]
    aligned_out = R.roi_align(fmap[None], rows, output_size, scale, sampling_ratio, aligned)[0, 0]
    bins = R.roi_pool_bins(b, output_size, scale, feature_size=(height, width))
    max_cells = []
    for r0, r1 in bins.rows.tolist():
        for c0, c1 in bins.cols.tolist():
            if r1 > r0 and c1 > c0:
                k = int(fmap[0, r0:r1, c0:c1].argmax())  # the first maximum, as the kernel
                max_cells.append((r0 + k // (c1 - c0), c0 + k % (c1 - c0)))
    points = R.roi_align_points(b, output_size, scale, sampling_ratio, aligned)
    # the exact bin edges RoIAlign uses (the kernel's start and bin size)
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (b * scale - offset).tolist()
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    k = torch.arange(output_size + 1, dtype=torch.float64)
    error = R.quantisation_error(b, output_size, scale)
    return {
        "feature": fmap[0],
        "box": b,
        "roi": b * scale,
        "bins": bins,
        "max_cells": max_cells,
        "pooled": pooled,
        "aligned_out": aligned_out,
        "points": points,
        "align_edges": (y1 + k * roi_h / output_size, x1 + k * roi_w / output_size),
        "error": error,
        "error_px": error / scale,
    }


def _lines(edges_y, edges_x) -> tuple[list, list]:
    """The grid lines of a set of bin edges as one scatter's ``(xs, ys)``."""
    xs: list = []
    ys: list = []
    y0, y1 = float(edges_y[0]), float(edges_y[-1])
    x0, x1 = float(edges_x[0]), float(edges_x[-1])
    for x in edges_x.tolist():
        xs += [x, x, None]
        ys += [y0, y1, None]
    for y in edges_y.tolist():
        xs += [x0, x1, None]
        ys += [y, y, None]
    return xs, ys


def _outline(x1, y1, x2, y2) -> tuple[list, list]:
    return [x1, x2, x2, x1, x1], [y1, y1, y2, y2, y1]


def roi_widget_figure(
    dx: float,
    dy: float,
    size: float,
    output_size: int,
    sampling_ratio: int,
    aligned: bool,
    feature=None,
    box=None,
    spatial_scale: float = 1.0,
    channel: int = 0,
):
    """The widget's figure for one state (see :func:`roi_widget_numbers`)."""
    n = roi_widget_numbers(
        dx, dy, size, output_size, sampling_ratio, aligned, feature, box, spatial_scale, channel
    )
    fmap = n["feature"]
    height, width = fmap.shape
    h = w = output_size
    zmin, zmax = float(fmap.min()), float(fmap.max())
    if zmax == zmin:
        zmax = zmin + 1.0
    pts = n["points"]
    sy, sx = pts.shape[2], pts.shape[3]
    samples = "adaptive " if sampling_ratio == -1 else ""
    stride = 1 / spatial_scale
    px = f" = {n['error_px']:.1f} image px" if stride != 1 else ""
    title = (
        f"<b style='color:{_POOL}'>RoI pooling</b>: bin edges {n['error']:.2f} cells{px} from the "
        f"exact bins on average  |  <b style='color:{_ALIGN}'>RoIAlign</b>: exact bins, "
        f"{samples}{sy}×{sx} points per bin, aligned={aligned}"
    )
    decimals = 2
    layout = grids.panel_layout(
        [(height, width), (height, width), (h, w), (h, w)],
        [
            "RoI pooling: rounded RoI, quantised bins, × = max",
            "RoIAlign: exact bins and sample points",
            f"RoI pooling output ({h}×{w})",
            f"RoIAlign output ({h}×{w})",
        ],
        rows=[[0, 1], [2, 3]],
        cell=[20.0, 20.0, 26.0, 26.0],
        row_heights=[20.0 * max(height, width), 7 * 26.0],
        gap=40,
        row_gap=60,
        top=95,
        bottom=30,
        title=title,
    )
    layout["annotations"][0]["font"] = {"size": 13}
    # the exact RoI: cell j spans [j - 0.5, j + 0.5] in the grid's coordinates
    rx1, ry1, rx2, ry2 = (n["roi"] - 0.5).tolist()
    exact_x, exact_y = _outline(rx1, ry1, rx2, ry2)
    left, top_, right, bottom = n["bins"].roi
    pool_rects = [
        (r0, c0, r1 - 1, c1 - 1)
        for r0, r1 in n["bins"].rows.tolist()
        for c0, c1 in n["bins"].cols.tolist()
        if r1 > r0 and c1 > c0
    ]
    edge_y, edge_x = n["align_edges"]
    grid_x, grid_y = _lines(edge_y, edge_x)
    text = "%{z:.2f}"

    def line(xs, ys, panel, color, width_px, name, dash=None):
        xa, ya = grids.axis_ids(panel)
        style = {"color": color, "width": width_px}
        if dash:
            style["dash"] = dash
        return {
            "type": "scatter",
            "x": xs,
            "y": ys,
            "xaxis": xa,
            "yaxis": ya,
            "mode": "lines",
            "line": style,
            "name": name,
            "hoverinfo": "skip",
            "showlegend": False,
        }

    def markers(ys, xs, panel, color, symbol, size_px, name):
        xa, ya = grids.axis_ids(panel)
        return {
            "type": "scatter",
            "x": grids.compact(xs, 3),
            "y": grids.compact(ys, 3),
            "xaxis": xa,
            "yaxis": ya,
            "mode": "markers",
            "marker": {"color": color, "symbol": symbol, "size": size_px},
            "name": name,
            "hovertemplate": "(y %{y}, x %{x})<extra>" + name + "</extra>",
            "showlegend": False,
        }

    cells = np.array(n["max_cells"], dtype=np.float64).reshape(-1, 2)
    data = [
        grids.heatmap(fmap, 0, zmin=zmin, zmax=zmax, decimals=decimals, name="feature map"),
        grids.rect_trace(pool_rects, 0, color=_POOL, width=1, name="quantised bins"),
        grids.rect_trace(
            [(top_, left, bottom, right)], 0, color=_POOL, width=3, name="rounded RoI"
        ),
        line(exact_x, exact_y, 0, _EXACT, 1.5, "exact RoI", dash="dash"),
        markers(cells[:, 0], cells[:, 1], 0, _POOL, "x", 9, "max of the bin"),
        grids.heatmap(fmap, 1, zmin=zmin, zmax=zmax, decimals=decimals, name="feature map"),
        line(grid_x, grid_y, 1, _ALIGN, 1.5, "exact bins"),
        line(exact_x, exact_y, 1, _EXACT, 1.5, "exact RoI", dash="dash"),
        markers(pts[..., 0].flatten(), pts[..., 1].flatten(), 1, _ALIGN, "circle", 4, "sample"),
        grids.heatmap(n["pooled"], 2, zmin=zmin, zmax=zmax, text=text, decimals=decimals),
        grids.heatmap(n["aligned_out"], 3, zmin=zmin, zmax=zmax, text=text, decimals=decimals),
    ]
    return grids.figure(data, layout)


class RoIPoolingWidget(Widget):
    """RoI pooling's quantised bins against RoIAlign's exact bins, on one RoI.

    By default a 16 x 16 map with two bumps and a ridge, and a RoI of 10.1 x 9.1 cells.
    Move it by a fraction of a cell: RoI pooling's bins do not move at all (shift x 0.25)
    or jump a whole cell (0.5, when a corner's rounding flips), while RoIAlign's follow it.

    Args:
        feature (Tensor[C, H, W] or Tensor[H, W], optional): a real feature map, e.g. a
            trained backbone's output for one image (detached to the CPU).
        box (Tensor[4], optional): a RoI ``(x1, y1, x2, y2)`` in image pixels.
        spatial_scale (float): feature-map cells per image pixel (``1/16`` at stride 16).
        channel (int): the channel drawn and pooled.
        **defaults: the controls' starting values.
    """

    controls = [
        Control("dx", "shift x (cells)", values=[0.0, 0.25, 0.5, 0.75], default=0.0),
        Control("dy", "shift y (cells)", values=[0.0, 0.25, 0.5, 0.75], default=0.0),
        Control(
            "size",
            "RoI size ×",
            values=[0.5, 0.75, 1.0, 1.25],
            default=1.0,
            static_values=[0.5, 1.0],
        ),
        Control(
            "output_size",
            "output h = w",
            values=[2, 3, 4, 5, 6, 7],
            default=3,
            static_values=[2, 3, 7],
        ),
        Control(
            "sampling_ratio",
            "RoIAlign points per bin side",
            values=list(_SAMPLING_LABELS),
            default=-1,
            kind="dropdown",
            labels=list(_SAMPLING_LABELS.values()),
        ),
        Control(
            "aligned",
            "RoIAlign aligned (−0.5 px)",
            values=[False, True],
            default=False,
            kind="toggle",
            labels=["no", "yes"],
        ),
    ]
    static_controls = ("dx", "size", "output_size", "aligned")
    max_static_states = 48

    def __init__(
        self, feature=None, box=None, spatial_scale: float = 1.0, channel: int = 0, **defaults
    ):
        self.feature = None if feature is None else _check_feature(feature)
        self.box = None if box is None else as_float_tensor("box", box).detach().cpu()
        self.spatial_scale = check_number("spatial_scale", spatial_scale, low=0, strict=True)
        self.channel = channel
        super().__init__(**defaults)
        # fail now, not at the first redraw, on a bad box or channel
        roi_widget_numbers(**self.state_defaults(), **self._inputs())

    def _inputs(self) -> dict:
        return {
            "feature": self.feature,
            "box": self.box,
            "spatial_scale": self.spatial_scale,
            "channel": self.channel,
        }

    def numbers(self, **state) -> dict:
        """:func:`roi_widget_numbers` for a state (defaults for the controls not given)."""
        return roi_widget_numbers(**self._full_state(state), **self._inputs())

    def figure(self, dx, dy, size, output_size, sampling_ratio, aligned):
        return roi_widget_figure(
            dx, dy, size, output_size, sampling_ratio, aligned, **self._inputs()
        )
