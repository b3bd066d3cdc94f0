"""The widget framework (vizlib/widgets/_base.py) on a toy widget: live and static modes."""

from __future__ import annotations

import json
import re

import plotly.graph_objects as go
import pytest

import vizlib
from vizlib.widgets import Control, Widget, all_widget_classes
from vizlib.widgets._base import SLIDER_SCRIPT, frame_name


class Toy(Widget):
    """y = a * x + b over x = 0..4, with a fixed background trace and a title that changes."""

    controls = [
        Control("a", "slope", values=[0, 1, 2], default=1),
        Control(
            "b",
            "offset",
            values=[-1.0, 0.0, 1.0, 2.0],
            default=0.0,
            kind="dropdown",
            static_values=[0.0, 2.0],
        ),
        Control("shape", "shape", values=["lines", "markers"], default="lines", kind="toggle"),
    ]

    def figure(self, a, b, shape):
        xs = list(range(5))
        fig = go.Figure()
        fig.add_trace(go.Scatter(x=[0, 4], y=[0, 0], name="axis"))  # never changes
        fig.add_trace(go.Scatter(x=xs, y=[a * x + b for x in xs], mode=shape, name="line"))
        fig.update_layout(title=f"y = {a}x + {b}", height=300)
        return fig


def test_control_validation():
    with pytest.raises(ValueError, match="default"):
        Control("a", "a", values=[1, 2], default=3)
    with pytest.raises(ValueError, match="kind"):
        Control("a", "a", values=[1, 2], default=1, kind="knob")
    with pytest.raises(ValueError, match="None"):
        Control("a", "a", values=[None, 1], default=1)
    with pytest.raises(ValueError, match="identifier"):
        Control("not a name", "a", values=[1], default=1)
    with pytest.raises(ValueError, match="labels"):
        Control("a", "a", values=[1, 2], default=1, labels=["one"])
    with pytest.raises(ValueError, match="static_values"):
        Control("a", "a", values=[1, 2, 3], default=1, static_values=[2, 3])
    with pytest.raises(ValueError, match="unknown controls"):
        Toy(c=1)
    with pytest.raises(ValueError, match="not one of"):
        Toy(a=7)


def test_defaults_and_render():
    w = Toy(a=2)
    assert w.state_defaults() == {"a": 2, "b": 0.0, "shape": "lines"}
    assert list(w.render(b=1.0).data[1].y) == [1.0, 3.0, 5.0, 7.0, 9.0]
    with pytest.raises(ValueError, match="unknown controls"):
        w.render(z=1)


def test_live_controls_drive_the_figure():
    w = Toy()
    box = w.live()
    assert set(box.controls) == {"a", "b", "shape"}
    assert type(box.controls["a"]).__name__ == "SelectionSlider"
    assert type(box.controls["b"]).__name__ == "Dropdown"
    assert type(box.controls["shape"]).__name__ == "ToggleButtons"
    first = w.last_figure
    assert list(first.data[1].y) == [0, 1, 2, 3, 4]

    box.controls["a"].value = 2
    assert box.last_figure is w.last_figure
    assert list(w.last_figure.data[1].y) == [0, 2, 4, 6, 8]
    box.controls["b"].value = -1.0  # a value live mode offers but static mode does not
    assert list(w.last_figure.data[1].y) == [-1.0, 1.0, 3.0, 5.0, 7.0]
    box.controls["shape"].value = "markers"
    assert w.last_figure.data[1].mode == "markers"
    assert w.last_state == {"a": 2, "b": -1.0, "shape": "markers"}
    assert w.last_figure.layout.title.text == "y = 2x + -1.0"


def test_static_figure_frames_and_sliders():
    w = Toy()
    fig = w.static_figure()
    # 3 slopes x 2 static offsets x 2 shapes
    assert len(fig.frames) == 12
    assert len(fig.layout.sliders) == 3
    steps = [[s.label for s in sl.steps] for sl in fig.layout.sliders]
    assert steps == [["0", "1", "2"], ["0.0", "2.0"], ["lines", "markers"]]
    assert [sl.active for sl in fig.layout.sliders] == [1, 0, 0]
    assert all(s.method == "skip" for sl in fig.layout.sliders for s in sl.steps)
    assert {f.name for f in fig.frames} == {
        frame_name((i, j, k)) for i in range(3) for j in range(2) for k in range(2)
    }
    # only the changing trace goes into frames; the constant one is stored once
    assert all(list(f.traces) == [1] for f in fig.frames)
    assert all(set(f.layout.to_plotly_json()) == {"title"} for f in fig.frames)
    # the room for the sliders is added below the plot
    assert fig.layout.height > 300


def test_static_frames_reproduce_every_state():
    """Apply each frame the way SLIDER_SCRIPT does and compare with figure(**state)."""
    w = Toy()
    fig = json.loads(w.static_figure().to_json())
    frames = {f["name"]: f for f in fig["frames"]}
    for idx, state in w.static_states():
        f = frames[frame_name(idx)]
        data = list(fig["data"])
        for k, t in enumerate(f["traces"]):
            data[t] = f["data"][k]
        want = json.loads(w.figure(**state).to_json())
        assert data == want["data"]
        assert f["layout"]["title"] == want["layout"]["title"]


def test_static_frames_when_trace_count_changes():
    class Varying(Widget):
        controls = [Control("n", "n", values=[1, 2, 3], default=1)]

        def figure(self, n):
            return go.Figure([go.Scatter(x=[i], y=[i]) for i in range(n)])

    fig = Varying().static_figure()
    assert [len(f.data) for f in fig.frames] == [1, 2, 3]
    assert all(f.group == "full" for f in fig.frames)


def test_static_state_limit_and_static_controls():
    class Big(Widget):
        controls = [
            Control("a", "a", values=list(range(10)), default=0),
            Control("b", "b", values=list(range(10)), default=0),
        ]

        def figure(self, a, b):
            return go.Figure(go.Scatter(x=[a], y=[b]))

    with pytest.raises(ValueError, match="max_static_states"):
        Big().static_figure()

    class Smaller(Big):
        static_controls = ["a"]

    fig = Smaller(b=3).static_figure()
    assert len(fig.frames) == 10 and len(fig.layout.sliders) == 1
    assert all(f.data[0].y == (3,) for f in fig.frames)


def test_static_html_has_script_and_no_cdn():
    html = Toy().static_html(include_plotlyjs=False)
    assert "plotly_sliderchange" in html and "Plotly.react" in html
    assert "cdn" not in html.lower() and "<script src" not in html
    assert "{plot_id}" not in html and "{plot_id}" in SLIDER_SCRIPT
    # plotly's to_html would otherwise play every frame as an animation on page load
    assert "Plotly.animate" not in html


def test_static_html_is_the_display_modules_figure_html():
    from vizlib.display import figure_html

    w = Toy()
    fig = w.static_figure()
    w.static_figure = lambda: fig  # the same figure (and div id source) for both calls
    for include in (False, True):
        ours = w.static_html(include_plotlyjs=include)
        theirs = figure_html(fig, post_script=w.static_post_script(), include_plotlyjs=include)
        # plotly draws a fresh random div id per call: equal once the ids are the same
        ids = (
            re.findall(r'id="([0-9a-f-]{36})"', ours)[:1]
            + re.findall(r'id="([0-9a-f-]{36})"', theirs)[:1]
        )
        assert len(ids) == 2 and ours.replace(ids[0], "ID") == theirs.replace(ids[1], "ID")


def test_show_picks_the_mode(monkeypatch):
    w = Toy()
    with pytest.raises(ValueError, match="mode"):
        w.show(mode="paper")
    monkeypatch.setenv("VIZLIB_MODE", "live")
    assert vizlib.display_mode() == "live"
    box = w.show()
    assert box is not None and w.last_figure is not None
    monkeypatch.setenv("VIZLIB_MODE", "static")
    assert w.show() is None


def test_all_widget_classes_are_widgets():
    for name, cls in all_widget_classes().items():
        assert issubclass(cls, Widget), name
        assert cls.controls, f"{name} has no controls"
