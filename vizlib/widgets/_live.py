"""Live mode's figure: one plotly figure kept on the page and changed in place.

A live widget used to redraw by clearing an ``ipywidgets.Output`` and displaying a new
plotly figure in it. The browser then threw away the whole plot and built a new one:
2,400-9,700 DOM changes per slider step, then a second burst of 1,100-4,300 when the new
plot resized itself into its output area. That took 100-300 ms from a key press to a
painted frame (issue 18).

:class:`LiveFigure` keeps one plotly figure on the page for the whole life of the
widget: a small anywidget, :func:`figure_view_class`, whose browser side
(``live_figure.js``) draws it with plotly.js. Each new state's figure is compared with
the one on the page, property by property (``'annotations[2].text'``,
``'marker.color'``, a trace's ``'y'``). Only what differs is sent, in one message, and
applied as one ``Plotly.update`` on the plot already there. Messages that arrive while
the page is drawing are merged and drawn once, so a fast drag does not queue redraws. The widgets
help here, because they keep the same traces in every state (see ``_base.py``).

Why not plotly's own ``FigureWidget`` (tried first): after every update its browser
side computes and sends back the plot's defaults for every trace and the layout (15-27
KB per move), which the kernel then handles and echoes, and each edit is validated in
Python. In the RoI pooling widget the move took 101 ms (median) that way, and 83 ms
this way (benchmarks/bench_widgets_browser.py, both measured on 2026-12-06).

Two fallbacks keep the widget usable where the live figure cannot be shown. Each
says so once per kernel:

* ``anywidget`` is not installed: the figure is drawn the old way, in an ``Output``;
* the page shows the sliders but never draws the figure. A host without third-party
  widget support does this, for example Colab before
  ``enable_custom_widget_manager()``, which ``import vizlib`` calls. When a slider moves
  and the figure has not reported itself drawn after :data:`RENDER_GRACE_S` seconds,
  the figure moves to an ``Output`` (checked in :meth:`LiveFigure.show`).

One more cause of slow moves lies in the kernel, not the browser: Python's full garbage
collection, see :func:`spare_moves_full_collections`.
"""

from __future__ import annotations

import functools
import gc
import json
import sys
import time
from pathlib import Path

__all__ = ["LiveFigure", "RENDER_GRACE_S", "edit_message", "spare_moves_full_collections"]

# How long the live figure may take to report its first draw before a slider move switches
# to the Output path. Its first draw in a page evaluates plotly.js (4.8 MB): about 1 s in
# JupyterLab on a 2-core machine.
RENDER_GRACE_S = 5.0

_said: set[str] = set()  # the fallback notes already printed in this kernel


def _say_once(key: str, message: str) -> None:
    if key not in _said:
        _said.add(key)
        print(f"vizlib: {message}", file=sys.stderr)


def _plain(fig) -> dict:
    """``fig`` as plain JSON types (lists, not numpy arrays), so that ``==`` compares it."""
    return json.loads(fig.to_json())


class LiveFigure:
    """A plotly figure on the page that each :meth:`show` changes in place.

    Args:
        fig (plotly.graph_objects.Figure): the first figure.
        prefer_widget (bool): ``False`` forces the ``Output`` path (tests, comparisons).

    Attributes:
        widget (ipywidgets.Box): what to put on the page. It holds the
            :class:`FigureView`, or an ``Output`` after a fallback.
        view (FigureView | None): the figure kept on the page.
        rendered (bool): the browser reported drawing ``view``.
        sent (list[dict]): every message sent to ``view`` after its first figure.
    """

    def __init__(self, fig, prefer_widget: bool = True):
        import ipywidgets as W

        self.widget = W.Box()
        self.view = None
        self.rendered = False
        self.sent: list[dict] = []
        self._on_page = _plain(fig)
        self._created = time.monotonic()
        self._output = None
        if prefer_widget:
            try:
                view_class = figure_view_class()
            except ImportError:
                _say_once(
                    "anywidget",
                    "anywidget is not installed, so live figures are redrawn whole on each "
                    "change (slower); pip install anywidget for in-place updates",
                )
            else:
                self.view = view_class(figure=self._on_page)
                self.view.on_msg(self._heard_from_browser)
                self.widget.children = (self.view,)
        if self.view is None:
            self._use_output(fig)

    # ------------------------------------------------------------------ updates
    def show(self, fig) -> None:
        """Put ``fig`` on the page: only what differs from the figure already there.

        If the browser moves sliders (this is called on every control change) but has
        never reported drawing the figure within :data:`RENDER_GRACE_S`, ``fig`` goes to
        an ``Output`` instead, from then on."""
        if self.view is not None and self._never_drawn():
            _say_once(
                "no-render",
                "this notebook host shows the sliders but not vizlib's live figure (an "
                "anywidget), so live figures are redrawn whole on each change (slower). In "
                "Colab, run google.colab.output.enable_custom_widget_manager() (import vizlib "
                "does it).",
            )
            self._use_output(fig)
            return
        if self.view is None:
            _draw_into(self._output, fig)
            return
        new = _plain(fig)
        message = edit_message(self._on_page, new)
        self._on_page = new
        if message is not None:
            self._send(message)

    def _never_drawn(self) -> bool:
        return (
            not self.rendered and _in_kernel() and time.monotonic() - self._created > RENDER_GRACE_S
        )

    # ------------------------------------------------------------------ helpers
    def _send(self, message: dict) -> None:
        self.sent.append(message)
        self.view.send(message)

    def _heard_from_browser(self, _view, content, _buffers) -> None:
        event = content.get("event") if isinstance(content, dict) else None
        if event == "rendered":
            self.rendered = True
            if self.view.figure != self._on_page:  # a view drawn late (a reload)
                self._send({"figure": self._on_page})
        elif event == "resend":
            self._send({"figure": self._on_page})

    def _use_output(self, fig) -> None:
        import ipywidgets as W

        self.view = None
        self._output = W.Output()
        self.widget.children = (self._output,)
        _draw_into(self._output, fig)


@functools.cache
def figure_view_class():
    """The anywidget class of the live figure (built once: it reads plotly.js, 4.8 MB).

    Its JavaScript is ``live_figure.js`` with the plotly package's own ``plotly.min.js``
    before it, evaluated once per page: nothing is fetched from the network.
    Raises ImportError when anywidget is not installed.
    """
    import anywidget
    import plotly
    import traitlets

    plotly_js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(
        encoding="utf-8"
    )
    esm = (
        "function vizlibPlotly() {\n"
        "  if (!globalThis.__vizlibPlotly) {\n"
        "    const previous = globalThis.Plotly;  // plotly.js sets window.Plotly: restore\n"
        "    const module = { exports: {} };\n"
        "    (function (module) {\n" + plotly_js + "\n    }).call(globalThis, module);\n"
        "    globalThis.__vizlibPlotly = module.exports;\n"
        "    if (previous) { globalThis.Plotly = previous; }\n"
        "  }\n"
        "  return globalThis.__vizlibPlotly;\n"
        "}\n" + (Path(__file__).parent / "live_figure.js").read_text(encoding="utf-8")
    )

    class FigureView(anywidget.AnyWidget):
        """One plotly figure drawn by plotly.js and changed by edit messages."""

        _esm = traitlets.Unicode(esm).tag(sync=True)
        figure = traitlets.Dict().tag(sync=True)  # the first figure, plain JSON

    return FigureView


def edit_message(old: dict, new: dict) -> dict | None:
    """The message that turns figure ``old`` into ``new`` on the page (plotly JSON both).

    Returns:
        ``{"traces": [[index, {path: value}]], "layout": {path: value}}`` with each changed
        property by its own path (``'annotations[2].text'``, ``'marker.color'``): plotly.js
        then redraws only what the paths touch (a whole ``'annotations'`` list made it
        replot everything: about 50 ms of a 100 ms step in the RoI pooling widget,
        profiled in Chromium). ``{"figure": new}`` when the traces differ in number, order
        or types (the widgets avoid it). ``None`` when nothing changed.
    """
    if [t.get("type") for t in new["data"]] != [t.get("type") for t in old["data"]]:
        return {"figure": new}
    traces = [
        [i, dict(_edits(a, b))]
        for i, (a, b) in enumerate(zip(old["data"], new["data"], strict=True))
        if a != b
    ]
    layout = {k: v for k, v in _edits(old["layout"], new["layout"]) if k != "template"}
    return {"traces": traces, "layout": layout} if traces or layout else None


def _is_leaf(value) -> bool:
    # plotly's JSON writes numeric arrays as {"dtype": ..., "bdata": base64}: one value
    return not isinstance(value, dict) or "bdata" in value


def _edits(old, new, path: str = ""):
    """The changes from ``old`` to ``new`` (plotly JSON) as ``(path, value)`` pairs.

    Paths are plotly property paths (``'marker.color'``, ``'annotations[2].text'``): dicts
    are compared key by key and lists of dicts of the same length item by item; anything
    else that differs (numbers, strings, data arrays) is one value. A key that ``new``
    lacks is ``(path, None)``, plotly's way to remove a property.
    """
    if not _is_leaf(old) and not _is_leaf(new):
        for key, value in new.items():
            if key not in old:
                yield _join(path, key), value
            elif old[key] != value:
                yield from _edits(old[key], value, _join(path, key))
        for key in old:
            if key not in new:
                yield _join(path, key), None
    elif (
        isinstance(old, list)
        and isinstance(new, list)
        and len(old) == len(new)
        and all(isinstance(x, dict) for x in old + new)
    ):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                yield from _edits(a, b, f"{path}[{i}]")
    else:
        yield path, new


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def spare_moves_full_collections(in_kernel: bool | None = None) -> bool:
    """Collect once, then freeze every object alive now (``gc.freeze``), in a kernel only.

    A full ("generation 2") collection walks every object the collector tracks. With torch,
    plotly and the widgets loaded that is 300,000-400,000 objects and 150-230 ms on the
    2-core machine. A widget whose moves make lasting objects triggers one now and then:
    the Upsampling widget's moves took 6.3 ms (median) in Python and 183 ms in the one move
    that met a full collection; the PQ widget, while it built its maps as Python lists,
    met 16 in 150 moves (worst 357 ms), and its slowest moves in the browser benchmark took
    280-320 ms (issue 18). Frozen objects are never walked again, so a full collection
    walks only what was made since the freeze: 6.6 ms and 52.3 ms at worst for the same
    moves (``benchmarks/bench_widget_gc.py``, ``benchmarks/results/widget_gc.md``).

    The price: cyclic garbage among the frozen objects is never freed. The collection just
    before the freeze leaves none; objects freed by reference counting (tensors, most
    figures) are freed as before. ``gc.unfreeze()`` undoes it. Outside a kernel (tests,
    scripts) it does nothing, unless ``in_kernel=True``.

    Returns:
        bool: whether it froze.
    """
    if not (_in_kernel() if in_kernel is None else in_kernel):
        return False
    gc.collect()
    gc.freeze()
    return True


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _draw_into(out, fig) -> None:
    """Show ``fig`` in the Output widget, replacing what was there (only inside a kernel)."""
    if not _in_kernel():
        return  # plain Python (tests, scripts): keep the figure, draw nothing
    from IPython.display import display

    with out:
        out.clear_output(wait=True)
        display(fig)
