"""Live mode's figure (vizlib/widgets/_live.py): changed in place, equal to a whole redraw.

The browser side (plotly.js applying the edits in JupyterLab) is checked by
tests/test_jupyterlab.py and measured by benchmarks/bench_widgets_browser.py. Here:
the edits sent for each move, applied to the ``FigureWidget`` on the kernel's side, give
exactly the figure the widget draws for that state, for every widget and control.
"""

from __future__ import annotations

import sys

import plotly.graph_objects as go
import pytest

from vizlib.widgets import _live, all_widget_classes
from vizlib.widgets._live import LiveFigure, _edits, _plain


def _on_page(view: LiveFigure) -> dict:
    """The FigureWidget's figure as plain JSON, without the uids it gives its traces."""
    fig = _plain(go.Figure(view.figure_widget.to_dict()))
    for trace in fig["data"]:
        trace.pop("uid", None)
    fig["layout"].pop("template", None)
    return fig


def _drawn(fig) -> dict:
    fig = _plain(fig)
    fig["layout"].pop("template", None)
    return fig


def test_edits_name_each_changed_property_by_its_path():
    old = {
        "marker": {"color": "red", "size": 3},
        "annotations": [{"text": "a", "x": 1}, {"text": "b", "x": 2}],
        "x": {"dtype": "f8", "bdata": "AAAA"},
        "mode": "lines",
        "name": "n",
    }
    new = {
        "marker": {"color": "blue", "size": 3},
        "annotations": [{"text": "a", "x": 1}, {"text": "B", "x": 2}],
        "x": {"dtype": "f8", "bdata": "AAAB"},
        "mode": "markers",
        "title": {"text": "t"},
    }
    assert dict(_edits(old, new)) == {
        "marker.color": "blue",
        "annotations[1].text": "B",
        "x": {"dtype": "f8", "bdata": "AAAB"},  # a typed array is one value, not a dict
        "mode": "markers",
        "title": {"text": "t"},  # new: the whole value
        "name": None,  # gone: plotly's way to remove it
    }
    # lists of another length, or not of dicts, are replaced whole
    assert dict(_edits({"a": [{"t": 1}]}, {"a": [{"t": 1}, {"t": 2}]})) == {
        "a": [{"t": 1}, {"t": 2}]
    }
    assert dict(_edits({"y": [1, 2]}, {"y": [1, 3]})) == {"y": [1, 3]}
    assert list(_edits(new, new)) == []


@pytest.mark.parametrize("name", sorted(all_widget_classes()))
def test_every_move_puts_exactly_the_widgets_figure_on_the_page(name):
    """Move every control through its values (twice around for sliders): after each move
    the figure on the page, built by the edits alone, equals the widget's own figure."""
    cls = all_widget_classes()[name]
    w = cls()
    box = w.live()
    view = box.live_figure
    assert view.figure_widget is not None, "anywidget is a dependency: the in-place path"
    assert _on_page(view) == _drawn(w.last_figure)
    sent = []
    for c in cls.controls:
        values = c.values if len(c.values) <= 6 else c.values[:3] + c.values[-3:]
        for v in [*values, c.default]:
            before = len(view.updates)
            box.controls[c.name].value = v
            if len(view.updates) > before:
                sent.append(view.updates[-1])
            assert _on_page(view) == _drawn(w.last_figure), f"{c.name}={v!r}"
    assert sent, "no move changed the figure"


def test_a_small_change_sends_a_small_edit():
    def fig(label, y):
        return go.Figure(
            [go.Scatter(y=[1, 2], marker={"color": "red"}), go.Scatter(y=y)],
            layout={"annotations": [{"text": "a"}, {"text": label}], "xaxis": {"range": [0, 1]}},
        )

    view = LiveFigure(fig("b", [3, 4]))
    sent = []
    view.figure_widget.observe(lambda c: c["new"] and sent.append(c["new"]), names="_py2js_update")
    view.show(fig("c", [3, 5]))
    assert view.updates == [(1, 1)]
    (msg,) = sent
    assert msg["style_traces"] == [1] and list(msg["style_data"]) == ["y"]
    assert msg["layout_data"] == {"annotations.1.text": "c"}
    view.show(fig("c", [3, 5]))  # the same figure again: nothing is sent
    assert len(sent) == 1 and view.updates[-1] == (0, 0)


def test_a_figure_with_other_traces_is_rebuilt():
    f1 = go.Figure([go.Scatter(y=[1, 2])], layout={"title": {"text": "one"}})
    f2 = go.Figure([go.Bar(y=[3]), go.Scatter(y=[4, 5])], layout={"title": {"text": "two"}})
    view = LiveFigure(f1)
    view.show(f2)
    assert _on_page(view) == _drawn(f2)
    view.show(f1)
    assert _on_page(view) == _drawn(f1)


def test_output_path_when_asked(monkeypatch):
    from vizlib.widgets import IoUWidget

    monkeypatch.setenv("VIZLIB_LIVE_FIGURE", "output")
    box = IoUWidget().live()
    assert box.live_figure.figure_widget is None
    assert type(box.children[1].children[0]).__name__ == "Output"
    box.controls["cx"].value = box.controls["cx"].options[0][1]  # still redraws
    assert box.last_figure is box.widget.last_figure


def test_without_anywidget_the_output_path_says_so_once(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "anywidget", None)  # import anywidget -> ImportError
    monkeypatch.setattr(_live, "_said", set())
    fig = go.Figure(go.Scatter(y=[1, 2]))
    for _ in range(2):
        view = LiveFigure(fig)
        assert view.figure_widget is None
        assert type(view.widget.children[0]).__name__ == "Output"
    err = capsys.readouterr().err
    assert err.count("anywidget is not installed") == 1


def test_a_host_that_never_draws_the_figure_falls_back(monkeypatch, capsys):
    monkeypatch.setattr(_live, "_said", set())
    monkeypatch.setattr(_live, "_in_kernel", lambda: True)
    monkeypatch.setattr(_live, "_draw_into", lambda out, fig: None)
    fig = go.Figure(go.Scatter(y=[1, 2]))

    drawn = LiveFigure(fig)
    drawn._created -= 2 * _live.RENDER_GRACE_S
    drawn.figure_widget.set_trait("_js2py_layoutDelta", {"layout_delta": {}, "layout_edit_id": 0})
    assert drawn.rendered
    drawn.slider_moved()
    assert drawn.figure_widget is not None  # the browser drew it: stays

    young = LiveFigure(fig)
    young.slider_moved()
    assert young.figure_widget is not None  # within the grace period: stays

    for _ in range(2):
        silent = LiveFigure(fig)
        silent._created -= 2 * _live.RENDER_GRACE_S
        silent.slider_moved()
        assert silent.figure_widget is None
        assert type(silent.widget.children[0]).__name__ == "Output"
        silent.show(go.Figure(go.Scatter(y=[3, 4])))  # keeps working on the Output path
    assert capsys.readouterr().err.count("shows the sliders but not") == 1


def test_live_warms_up_once(monkeypatch):
    from vizlib.widgets import UpsamplingWidget

    calls = []
    monkeypatch.setattr(UpsamplingWidget, "warm_up", lambda self: calls.append(self))
    w = UpsamplingWidget()
    w.live()
    assert calls == [w]
