"""Matrices, feature maps and small images as plotly heatmaps laid out in panels.

The widgets about convolutions (transposed convolution, upsampling, receptive fields)
all draw the same things: a few grids of numbers side by side, each with square cells,
row 0 at the top (as a matrix or an image is read), sometimes with the numbers written
in the cells, and rectangles marking a region. This module draws them and computes
nothing a reader is meant to learn (the maths comes from ``vizlib.conv_algebra``,
``vizlib.upsampling`` and ``vizlib.receptive_field``).

Speed matters: a live widget redraws as a slider moves (goal: 50 ms). Two plotly costs
dominate and are avoided here: ``plotly.subplots.make_subplots`` (about 50 ms; panels are
laid out by hand in :func:`panel_layout`) and plotly's validation of every property when a
figure is built from ``go.*`` objects (tens of ms). Traces are therefore plain dicts and
:func:`figure` assembles them without validation; the tests validate every widget state
once (``go.Figure(fig.to_dict())``), so a typo still fails there.

Cell ``(row, col)`` of a grid is drawn centred on ``x = col, y = row``; it covers
``[col - 0.5, col + 0.5] x [row - 0.5, row + 0.5]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "BOOK_WIDTH",
    "COLORSCALE_COUNTS",
    "COLORSCALE_SIGNED",
    "COLORSCALE_VALUES",
    "axis_ids",
    "compact",
    "figure",
    "heatmap",
    "panel_layout",
    "rect_trace",
]

# White for 0, then darker blues: counts and non-negative values (a zero reads as "empty").
COLORSCALE_VALUES = [[0.0, "#ffffff"], [0.15, "#deebf7"], [0.5, "#6baed6"], [1.0, "#08306b"]]
# Red below 0, white at 0, blue above: weights and signed values (use with zmid=0).
COLORSCALE_SIGNED = [[0.0, "#b2182b"], [0.5, "#ffffff"], [1.0, "#2166ac"]]
# Light to dark orange, no white: counts that are never 0 (overlaps of stamps).
COLORSCALE_COUNTS = [[0.0, "#fee6ce"], [0.5, "#fdae6b"], [1.0, "#d94801"]]


def axis_ids(k: int) -> tuple[str, str]:
    """The plotly axis ids of panel ``k`` (0-based): ``('x', 'y')``, ``('x2', 'y2')``, ..."""
    if int(k) < 0:
        raise ValueError(f"panel index must be >= 0, got {k}")
    suffix = "" if k == 0 else str(int(k) + 1)
    return f"x{suffix}", f"y{suffix}"


def compact(values, decimals: int = 3) -> np.ndarray:
    """``values`` as the smallest exact numpy array: uint8/int16 when every value is a
    whole number in their range, else float32 rounded to ``decimals`` (small JSON, no
    float64 noise). NaN (an empty cell) is kept, and forces float32.

    Tensors are detached and moved to the CPU.
    """
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    a = np.asarray(values)
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    a = a.astype(np.float64)
    finite = a[~np.isnan(a)]
    if not np.all(np.isfinite(finite)):
        raise ValueError("values must be finite (NaN marks an empty cell; inf is not allowed)")
    if finite.size == a.size and np.all(finite == np.round(finite)):
        lo, hi = (finite.min(), finite.max()) if finite.size else (0, 0)
        if lo >= 0 and hi <= 255:
            return a.astype(np.uint8)
        if lo >= -(2**15) and hi < 2**15:
            return a.astype(np.int16)
    return np.round(a, decimals).astype(np.float32)


def heatmap(
    z,
    panel: int = 0,
    *,
    colorscale=None,
    zmin: float | None = None,
    zmax: float | None = None,
    zmid: float | None = None,
    text: bool | str = False,
    decimals: int = 2,
    name: str = "",
    hover: str = "row %{y}, col %{x}: %{z}",
    showscale: bool = False,
    opacity: float = 1.0,
):
    """One grid of numbers as a ``go.Heatmap`` in panel ``panel``.

    Args:
        z (Tensor[R, C] or array-like): the values; NaN draws an empty (transparent) cell.
        panel (int): which panel of :func:`panel_layout` it goes in.
        colorscale: a plotly colorscale; :data:`COLORSCALE_VALUES` by default,
            :data:`COLORSCALE_SIGNED` when ``zmid`` is given.
        zmin, zmax, zmid (float, optional): fix the colour range (so that the colours of
            two states compare).
        text (bool or str): write the values in the cells (``True``: rounded to
            ``decimals``; a string: a plotly ``texttemplate`` such as ``'%{z:.1f}'``).
        decimals (int): rounding of the stored values.
        name (str): the trace name.
        hover (str): the hover template (``<extra></extra>`` is added).
        showscale (bool): draw a colour bar.
        opacity (float): in [0, 1].

    Returns:
        dict: a heatmap trace (plotly's property names).
    """
    a = compact(z, decimals)
    if a.ndim != 2:
        raise ValueError(f"z must be 2D [rows, cols], got shape {a.shape}")
    if colorscale is None:
        colorscale = COLORSCALE_SIGNED if zmid is not None else COLORSCALE_VALUES
    xa, ya = axis_ids(panel)
    kwargs = dict(
        z=a,
        xaxis=xa,
        yaxis=ya,
        colorscale=colorscale,
        showscale=showscale,
        name=name,
        hovertemplate=hover + "<extra></extra>",
        opacity=opacity,
        xgap=1,
        ygap=1,
    )
    if zmin is not None:
        kwargs["zmin"] = float(zmin)
    if zmax is not None:
        kwargs["zmax"] = float(zmax)
    if zmid is not None:
        kwargs["zmid"] = float(zmid)
    if text:
        kwargs["texttemplate"] = text if isinstance(text, str) else "%{z}"
        kwargs["textfont"] = {"size": 11}
    return {"type": "heatmap", **kwargs}


def rect_trace(
    rects,
    panel: int = 0,
    *,
    color: str = "#D55E00",
    width: float = 2.5,
    name: str = "",
    dash: str | None = None,
    fill: str | None = None,
):
    """Rectangles around groups of cells, as ONE scatter trace (outlines split by ``None``).

    Args:
        rects (sequence of (r0, c0, r1, c1)): inclusive cell ranges: the rectangle covers
            rows ``r0..r1`` and columns ``c0..c1``. May be empty (an empty trace, so that a
            widget keeps the same traces in every state).
        panel (int): the panel.
        color (str): line colour.
        width (float): line width in pixels.
        name (str): trace name (legend and hover).
        dash (str, optional): plotly dash style, e.g. ``'dot'``.
        fill (str, optional): fill colour (``'toself'`` fill), e.g. an ``rgba`` string.

    Returns:
        dict: a scatter trace.
    """
    xs: list = []
    ys: list = []
    for i, r in enumerate(rects):
        if len(r) != 4:
            raise ValueError(f"rects[{i}] must be (r0, c0, r1, c1), got {r!r}")
        r0, c0, r1, c1 = (float(v) for v in r)
        if r1 < r0 or c1 < c0:
            raise ValueError(f"rects[{i}] = {tuple(r)} has r1 < r0 or c1 < c0")
        x0, x1, y0, y1 = c0 - 0.5, c1 + 0.5, r0 - 0.5, r1 + 0.5
        xs += [x0, x1, x1, x0, x0, None]
        ys += [y0, y0, y1, y1, y0, None]
    xa, ya = axis_ids(panel)
    line = {"color": color, "width": width}
    if dash:
        line["dash"] = dash
    kwargs = dict(
        x=xs,
        y=ys,
        xaxis=xa,
        yaxis=ya,
        mode="lines",
        line=line,
        name=name,
        hoverinfo="skip",
        showlegend=False,
    )
    if fill:
        kwargs.update(fill="toself", fillcolor=fill)
    return {"type": "scatter", **kwargs}


# The width of the book's text column (Jupyter Book 1, PyData theme, desktop): a figure
# wider than this is cut off on the page, sliders included.
BOOK_WIDTH = 740


def panel_layout(
    shapes: Sequence[tuple[int, int]],
    titles: Sequence[str] | None = None,
    *,
    rows: Sequence[Sequence[int]] | None = None,
    cell: float | Sequence[float] = 22.0,
    gap: float = 50.0,
    row_gap: float = 75.0,
    row_heights: Sequence[float] | None = None,
    max_width: float = BOOK_WIDTH,
    top: int = 60,
    bottom: int = 40,
    left: int = 40,
    right: int = 20,
    grid_panels: Sequence[bool] | None = None,
    title: str | None = None,
) -> dict:
    """A plotly layout with one panel per grid, in one or more rows, cells square.

    Each panel is ``cols * cell`` pixels wide and ``rows * cell`` high (its own ``cell``
    when one is given per panel). When the widest row would not fit in ``max_width``
    (the book's text column), every panel shrinks by the same factor. Grids are drawn
    top-down (row 0 at the top) with ``scaleanchor`` keeping the cells square.

    Args:
        shapes (sequence of (rows, cols)): the size of each panel, in cells. A panel that
            is not a grid (a curve, a bar chart) gives its size in cells too and sets
            ``grid_panels[k] = False``.
        titles (sequence of str, optional): a title over each panel.
        rows (sequence of sequence of int, optional): which panels go in each row, top
            row first, e.g. ``[[0, 1], [2]]``; by default all panels in one row.
        cell (float or sequence of float): pixels per cell before shrinking, for all
            panels or one per panel.
        gap (float): pixels between panels of a row.
        row_gap (float): pixels between rows (room for tick labels and the next titles).
        row_heights (sequence of float, optional): the height of each row in pixels, so
            that the figure keeps its size when the grids change; a grid taller than its
            row shrinks to fit. By default each row is as high as its tallest panel.
        max_width (float): the most pixels the figure may take.
        top, bottom, left, right (int): margins in pixels.
        grid_panels (sequence of bool, optional): which panels are grids (reversed y,
            square cells, integer ticks); all by default.
        title (str, optional): the figure's title, drawn above the panel titles (HTML
            allowed, e.g. a second line in ``<sub>``).

    Returns:
        dict: layout keys (``xaxis``, ``yaxis``, ``xaxis2``, ..., ``annotations``,
        ``width``, ``height``, ``margin``), ready for :func:`figure`.
    """
    shapes = [(int(r), int(c)) for r, c in shapes]
    n = len(shapes)
    if not n:
        raise ValueError("shapes must list at least one panel")
    if any(r < 1 or c < 1 for r, c in shapes):
        raise ValueError(f"every panel needs at least one row and one column, got {shapes}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries for {n} panels")
    grid_panels = [True] * n if grid_panels is None else [bool(g) for g in grid_panels]
    if len(grid_panels) != n:
        raise ValueError(f"grid_panels has {len(grid_panels)} entries for {n} panels")
    rows = [list(range(n))] if rows is None else [[int(k) for k in row] for row in rows]
    if sorted(k for row in rows for k in row) != list(range(n)) or any(not row for row in rows):
        raise ValueError(f"rows must place each of the {n} panels exactly once, got {rows}")
    if row_heights is not None and len(row_heights) != len(rows):
        raise ValueError(f"row_heights has {len(row_heights)} entries for {len(rows)} rows")
    cells = [float(cell)] * n if np.isscalar(cell) else [float(c) for c in cell]
    if len(cells) != n or min(cells) <= 0:
        raise ValueError(f"cell must be a positive number or one per panel, got {cell!r}")

    def row_width(row, px):
        return sum(shapes[k][1] * px[k] for k in row) + gap * (len(row) - 1)

    # one factor for every panel, so that the widest row fits the page
    shrink = min(
        [1.0]
        + [
            (max_width - left - right - gap * (len(row) - 1))
            / sum(shapes[k][1] * cells[k] for k in row)
            for row in rows
        ]
    )
    cells = [px * shrink for px in cells]
    plot_w = max(row_width(row, cells) for row in rows)
    natural_h = [max(shapes[k][0] * cells[k] for k in row) for row in rows]
    heights = [float(h) for h in row_heights] if row_heights is not None else natural_h
    plot_h = sum(heights) + row_gap * (len(rows) - 1)
    width = int(round(plot_w + left + right))
    height = int(round(plot_h + top + bottom))

    layout: dict = {
        "width": width,
        "height": height,
        "margin": {"l": left, "r": right, "t": top, "b": bottom},
        "plot_bgcolor": "white",
        "showlegend": False,
        "annotations": [],
    }
    if title:
        # an annotation, not layout.title: its place is fixed in pixels above the panel
        # titles, whatever the figure's height (static figures add sliders below)
        layout["annotations"].append(
            {
                "text": title,
                "x": 0.0,
                "y": 1.0,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "left",
                "yanchor": "bottom",
                "yshift": 32,
                "showarrow": False,
                "align": "left",
                "font": {"size": 15},
            }
        )
    y_top = 0.0  # pixels from the top of the plot area
    for row, row_h in zip(rows, heights, strict=True):
        x = 0.0
        for k in row:
            (n_rows, n_cols), px, is_grid = shapes[k], cells[k], grid_panels[k]
            w, h = n_cols * px, min(n_rows * px, row_h)
            x0, x1 = x / plot_w, min((x + w) / plot_w, 1.0)
            y1 = 1.0 - y_top / plot_h
            y0 = max(1.0 - (y_top + (h if is_grid else row_h)) / plot_h, 0.0)
            x += w + gap
            xa, ya = axis_ids(k)
            key = "" if k == 0 else str(k + 1)
            xaxis = {"domain": [round(x0, 4), round(x1, 4)], "anchor": ya, "zeroline": False}
            yaxis = {"domain": [round(y0, 4), round(y1, 4)], "anchor": xa, "zeroline": False}
            if is_grid:
                xaxis.update(
                    range=[-0.5, n_cols - 0.5],
                    showgrid=False,
                    tickmode="auto",
                    nticks=min(n_cols, 8),
                    constrain="domain",
                    fixedrange=True,
                )
                yaxis.update(
                    range=[n_rows - 0.5, -0.5],
                    showgrid=False,
                    tickmode="auto",
                    nticks=min(n_rows, 8),
                    scaleanchor=xa,
                    scaleratio=1,
                    constrain="domain",
                    fixedrange=True,
                )
            layout[f"xaxis{key}"] = xaxis
            layout[f"yaxis{key}"] = yaxis
            if titles is not None and titles[k]:
                layout["annotations"].append(
                    {
                        "text": titles[k],
                        "x": (x0 + x1) / 2,
                        "y": y1,
                        "xref": "paper",
                        "yref": "paper",
                        "xanchor": "center",
                        "yanchor": "bottom",
                        "yshift": 6,
                        "showarrow": False,
                        "font": {"size": 13},
                    }
                )
        y_top += row_h + row_gap
    return layout


def figure(data, layout):
    """A ``go.Figure`` from trace dicts and a layout dict, without plotly's validation.

    Validation costs tens of milliseconds per figure, too much for a live widget; the
    widget tests validate each figure instead. Falls back to a validated figure on a
    plotly version without the private ``_validate`` switch.

    Args:
        data (list[dict]): traces, each with a ``type``.
        layout (dict): the layout.

    Returns:
        plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    try:
        return go.Figure(data=list(data), layout=layout, _validate=False)
    except TypeError:  # pragma: no cover - a plotly without the switch
        return go.Figure(data=list(data), layout=layout)
