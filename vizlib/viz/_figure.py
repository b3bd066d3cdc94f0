"""Fast plotly figures for widgets: plain dicts in, ``go.Figure`` out, no re-validation.

A live widget redraws on every slider move and aims at <= 50 ms of Python per update.
Building a figure with ``make_subplots`` and ``add_trace``/``update_layout`` validates
every property on every call (~100 ms for a two-panel figure); building the same figure
from plain dicts with validation switched off takes a few ms. So the widgets build their
traces as dicts (the ``*_trace`` functions of :mod:`vizlib.viz.boxes` and
:mod:`vizlib.viz.curves` return dicts), take their subplot layout from
:func:`subplot_layout` (computed once by ``make_subplots``, then copied), and wrap the
result with :func:`fast_figure`. Tests validate the figures once, the slow way
(``go.Figure(fig.to_dict())``), so a typo still fails a test.
"""

from __future__ import annotations

import json
from functools import lru_cache

__all__ = ["fast_figure", "subplot_layout", "axis_key", "set_image_axes"]


def fast_figure(data: list[dict], layout: dict):
    """``go.Figure`` from trace dicts and a layout dict, skipping plotly's validation.

    Falls back to a validated figure if this plotly version lacks the ``_validate``
    switch (it has been there since plotly 4).
    """
    import plotly.graph_objects as go

    try:
        return go.Figure({"data": data, "layout": layout}, _validate=False)
    except TypeError:  # pragma: no cover - a plotly without the private switch
        return go.Figure({"data": data, "layout": layout})


@lru_cache(maxsize=32)
def _cached_subplots(key: str) -> tuple[str, str]:
    from plotly.subplots import make_subplots

    kwargs = json.loads(key)
    cells = kwargs.pop("cells")
    fig = make_subplots(**kwargs)
    refs = {}
    for row, col in cells:
        fig.add_scatter(x=[], y=[], row=row, col=col)
        trace = fig.data[-1]
        refs[f"{row},{col}"] = {"xaxis": trace.xaxis or "x", "yaxis": trace.yaxis or "y"}
    # The layout keeps the default template: given explicitly, plotly does not deep-copy
    # its own default into every new figure (a third of the build time otherwise).
    layout = json.loads(fig.to_json())["layout"]
    return json.dumps(layout), json.dumps(refs)


def subplot_layout(cells: list[tuple[int, int]], **make_subplots_kwargs) -> tuple[dict, dict]:
    """The layout of ``make_subplots(**kwargs)`` and the axis ids of each cell, cached.

    Args:
        cells (list[tuple[int, int]]): the ``(row, col)`` cells that will hold traces.
        **make_subplots_kwargs: passed to ``plotly.subplots.make_subplots`` (JSON-able).

    Returns:
        tuple: ``layout`` (a fresh dict, safe to modify) and ``refs``
        (``{(row, col): {'xaxis': 'x2', 'yaxis': 'y2'}}``, to put in each trace dict).
    """
    key = json.dumps({"cells": [list(c) for c in cells], **make_subplots_kwargs}, sort_keys=True)
    layout_json, refs_json = _cached_subplots(key)
    refs = {tuple(int(v) for v in k.split(",")): v for k, v in json.loads(refs_json).items()}
    return json.loads(layout_json), refs


def axis_key(ref: dict, letter: str) -> str:
    """The layout key of a cell's ``x`` or ``y`` axis: ``{'xaxis': 'x2', ...}, 'x'`` -> ``'xaxis2'``."""
    return f"{letter}axis{ref[letter + 'axis'][1:]}"


def set_image_axes(
    layout: dict,
    ref: dict,
    width: float,
    height: float,
    margin: float = 0.0,
    show_ticks: bool = True,
) -> dict:
    """Image coordinates on one subplot of a layout dict: ``y`` down, square pixels.

    Args:
        layout (dict): the figure's layout (modified in place and returned).
        ref (dict): the cell's ``{'xaxis': 'x2', 'yaxis': 'y2'}`` from :func:`subplot_layout`.
        width, height (float): the image size in pixels; ``[0, width] x [0, height]`` is shown.
        margin (float): extra pixels shown around it.
        show_ticks (bool): show the pixel coordinates on the axes.
    """
    xkey, ykey = axis_key(ref, "x"), axis_key(ref, "y")
    layout.setdefault(xkey, {}).update(
        range=[-margin, width + margin],
        showgrid=False,
        zeroline=False,
        constrain="domain",
        showticklabels=show_ticks,
    )
    layout.setdefault(ykey, {}).update(
        range=[height + margin, -margin],
        showgrid=False,
        zeroline=False,
        scaleanchor=ref["xaxis"],
        scaleratio=1,
        constrain="domain",
        showticklabels=show_ticks,
    )
    return layout
