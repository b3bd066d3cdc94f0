"""Widgets: the third layer of vizlib (see DESIGN.md and ``_base.py``).

A widget is a small class, state -> core maths -> figure, that shows itself live (with
ipywidgets, when a kernel is attached) or static (plotly sliders over precomputed frames,
in the published book). ``from vizlib.widgets import NMSWidget`` imports only the module
that defines it: nothing heavy is imported eagerly.

To add a widget: write ``vizlib/widgets/<name>.py`` with a subclass of
:class:`~vizlib.widgets._base.Widget` and add ONE line to ``WIDGETS`` below.
"""

from __future__ import annotations

import importlib

from ._base import Control, Widget

# class name -> module (relative to vizlib.widgets). One line per widget.
WIDGETS = {
    "UpsamplingWidget": "upsampling",
    "TransposedConvWidget": "transposed_conv",
    "ReceptiveFieldWidget": "receptive_field",
    "FocalLossWidget": "focal_loss",
    "IoUWidget": "iou",
    "AnchorsWidget": "anchors",
    "NMSWidget": "nms",
    "PRCurveWidget": "pr_curve",
    "RoIPoolingWidget": "roi",
    "RPNExplorer": "rpn",
    "PanopticPQWidget": "panoptic",
}

__all__ = ["Control", "Widget", "WIDGETS", "all_widget_classes", *WIDGETS]


def __getattr__(name: str):
    if name in WIDGETS:
        module = importlib.import_module(f".{WIDGETS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def all_widget_classes() -> dict:
    """``{class name: class}`` for every widget listed in ``WIDGETS`` whose module exists."""
    found = {}
    for name, module in WIDGETS.items():
        try:
            mod = importlib.import_module(f".{module}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module}":
                raise  # the module exists but something it imports is missing
            continue
        found[name] = getattr(mod, name)
    return found
