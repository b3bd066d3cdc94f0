"""Live mode's figure (vizlib/widgets/_live.py): changed in place, equal to a whole redraw.

The browser side (live_figure.js applying the edits with plotly.js in JupyterLab) is
checked by tests/test_jupyterlab.py and measured by benchmarks/bench_widgets_browser.py.
Here: the messages sent for each move, applied to the first figure the way
``Plotly.update`` applies property paths, give exactly the figure the widget draws for
that state, for every widget and control.
"""

from __future__ import annotations

import copy
import re
import sys

import plotly.graph_objects as go
import pytest

from vizlib.widgets import _live, all_widget_classes
from vizlib.widgets._live import LiveFigure, _edits, _plain

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _set(obj: dict, path: str, value) -> None:
    """``obj[path] = value`` for a plotly property path; ``None`` removes it."""
    keys = [int(i) if i else name for name, i in _STEP.findall(path)]
    for key in keys[:-1]:
        if isinstance(key, str) and key not in obj:
            obj[key] = {}
        obj = obj[key]
    if value is None:
        obj.pop(keys[-1], None)
    else:
        obj[keys[-1]] = copy.deepcopy(value)


def _on_page(view: LiveFigure) -> dict:
    """The figure the browser shows: the first one with every message applied."""
    fig = copy.deepcopy(view.view.figure)
    for message in view.sent:
        if "figure" in message:
            fig = copy.deepcopy(message["figure"])
            continue
        for i, edits in message["traces"]:
            for path, value in edits.items():
                _set(fig["data"][i], path, value)
        for path, value in message["layout"].items():
            _set(fig["layout"], path, value)
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
    assert view.view is not None, "anywidget is a dependency: the in-place path"
    assert _on_page(view) == _drawn(w.last_figure)
    for c in cls.controls:
        values = c.values if len(c.values) <= 6 else c.values[:3] + c.values[-3:]
        for v in [*values, c.default]:
            box.controls[c.name].value = v
            assert _on_page(view) == _drawn(w.last_figure), f"{c.name}={v!r}"
    assert view.sent, "no move changed the figure"
    assert all("figure" not in m for m in view.sent), "the widgets keep their traces"


def test_a_small_change_sends_a_small_edit():
    def fig(label, y):
        return go.Figure(
            [go.Scatter(y=[1, 2], marker={"color": "red"}), go.Scatter(y=y)],
            layout={"annotations": [{"text": "a"}, {"text": label}], "xaxis": {"range": [0, 1]}},
        )

    view = LiveFigure(fig("b", [3, 4]))
    view.show(fig("c", [3, 5]))
    assert view.sent == [{"traces": [[1, {"y": [3, 5]}]], "layout": {"annotations[1].text": "c"}}]
    view.show(fig("c", [3, 5]))  # the same figure again: nothing is sent
    assert len(view.sent) == 1


def test_a_figure_with_other_traces_is_rebuilt():
    f1 = go.Figure([go.Scatter(y=[1, 2])], layout={"title": {"text": "one"}})
    f2 = go.Figure([go.Bar(y=[3]), go.Scatter(y=[4, 5])], layout={"title": {"text": "two"}})
    view = LiveFigure(f1)
    view.show(f2)
    assert "figure" in view.sent[-1]
    assert _on_page(view) == _drawn(f2)
    view.show(f1)
    assert _on_page(view) == _drawn(f1)


def test_output_path_when_asked(monkeypatch):
    from vizlib.widgets import IoUWidget

    monkeypatch.setenv("VIZLIB_LIVE_FIGURE", "output")
    box = IoUWidget().live()
    assert box.live_figure.view is None
    assert type(box.children[1].children[0]).__name__ == "Output"
    first = box.last_figure
    value = box.controls["cx"].options[0][1]
    box.controls["cx"].value = value  # still redraws
    assert box.last_figure is box.widget.last_figure
    assert box.last_figure is not first and box.widget.last_state["cx"] == value


def test_without_anywidget_the_output_path_says_so_once(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "anywidget", None)  # import anywidget -> ImportError
    monkeypatch.setattr(_live, "_said", set())
    _live.figure_view_class.cache_clear()  # built once per kernel: build it again here
    fig = go.Figure(go.Scatter(y=[1, 2]))
    for _ in range(2):
        view = LiveFigure(fig)
        assert view.view is None
        assert type(view.widget.children[0]).__name__ == "Output"
    err = capsys.readouterr().err
    assert err.count("anywidget is not installed") == 1
    monkeypatch.undo()
    _live.figure_view_class.cache_clear()
    assert LiveFigure(fig).view is not None  # with anywidget back


def test_a_host_that_never_draws_the_figure_falls_back(monkeypatch, capsys):
    monkeypatch.setattr(_live, "_said", set())
    monkeypatch.setattr(_live, "_in_kernel", lambda: True)
    monkeypatch.setattr(_live, "_draw_into", lambda out, fig: None)
    fig = go.Figure(go.Scatter(y=[1, 2]))

    moved = go.Figure(go.Scatter(y=[3, 4]))

    drawn = LiveFigure(fig)
    drawn._created -= 2 * _live.RENDER_GRACE_S
    drawn._heard_from_browser(drawn.view, {"event": "rendered"}, [])  # what live_figure.js sends
    assert drawn.rendered and not drawn.sent  # it drew the figure the kernel has
    drawn.show(moved)
    assert drawn.view is not None  # the browser drew it: stays
    assert drawn.sent == [{"traces": [[0, {"y": [3, 4]}]], "layout": {}}]

    young = LiveFigure(fig)
    young.show(moved)
    assert young.view is not None  # within the grace period: stays

    for _ in range(2):
        silent = LiveFigure(fig)
        silent._created -= 2 * _live.RENDER_GRACE_S
        silent.show(moved)  # a slider moved, and the figure was never drawn
        assert silent.view is None and not silent.sent
        assert type(silent.widget.children[0]).__name__ == "Output"
        silent.show(go.Figure(go.Scatter(y=[5, 6])))  # keeps working on the Output path
    assert capsys.readouterr().err.count("shows the sliders but not") == 1


def test_a_late_view_or_a_lost_edit_gets_the_whole_figure():
    f1, f2 = go.Figure(go.Scatter(y=[1, 2])), go.Figure(go.Scatter(y=[1, 3]))
    view = LiveFigure(f1)
    view.show(f2)
    # a view drawn after the edits (a reloaded page) starts from the first figure
    view._heard_from_browser(view.view, {"event": "rendered"}, [])
    assert view.sent[-1] == {"figure": _plain(f2)}
    view._heard_from_browser(view.view, {"event": "resend"}, [])
    assert view.sent[-1] == {"figure": _plain(f2)}
    assert _on_page(view) == _drawn(f2)


def test_live_warms_up_every_value_of_every_control():
    from vizlib.widgets import Control, Widget

    class Spy(Widget):
        controls = [
            Control("a", "a", values=[1, 2, 3, 4, 5], default=3),
            Control("b", "b", values=["x", "y", "z"], default="x", kind="toggle"),
        ]

        def __init__(self):
            super().__init__()
            self.drawn = []

        def figure(self, a, b):
            self.drawn.append((a, b))
            return go.Figure(go.Scatter(y=[a, len(b)]))

    w = Spy()
    w.live()
    # the first figure, then each control through its values, the other at its default
    assert w.drawn == [(3, "x"), (1, "x"), (2, "x"), (4, "x"), (5, "x"), (3, "y"), (3, "z")]


def test_full_collections_are_spared_in_a_kernel_only():
    import gc

    frozen_before = gc.get_freeze_count()
    try:
        assert _live.spare_moves_full_collections() is False  # pytest is no kernel
        assert gc.get_freeze_count() == frozen_before
        import weakref

        class Node:
            pass

        garbage = Node()
        garbage.me = garbage  # a reference cycle: only the collector frees it
        alive = weakref.ref(garbage)
        del garbage
        assert _live.spare_moves_full_collections(in_kernel=True) is True
        # everything alive is frozen, and the cycle was collected first, not frozen for ever
        assert gc.get_freeze_count() > frozen_before
        assert alive() is None
    finally:
        gc.unfreeze()


def test_live_spares_full_collections_after_its_warm_up(monkeypatch):
    from vizlib.widgets import Control, Widget

    events = []

    class Spy(Widget):
        controls = [Control("a", "a", values=[1, 2], default=1)]

        def figure(self, a):
            events.append(("figure", a))
            return go.Figure(go.Scatter(y=[a]))

    monkeypatch.setattr(_live, "spare_moves_full_collections", lambda: events.append("spared"))
    Spy().live()
    assert events == [("figure", 1), ("figure", 2), "spared"]
