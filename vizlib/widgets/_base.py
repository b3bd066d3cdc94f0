"""The widget framework: one code path from state to figure, live or static.

A widget is a small class. It lists its controls (each a name, a label and the discrete
values it offers) and implements one method, :meth:`Widget.figure`, that turns a state
(one value per control) into a plotly figure by calling vizlib's core maths. Everything
else is here, shared by every widget:

* **live** (a kernel is attached: JupyterLab, Colab, VS Code): ipywidgets controls; each
  change calls ``figure(**state)`` again and redraws it in an ``ipywidgets.Output``.
* **static** (the notebook is executed to be published): ``figure(**state)`` is computed
  ahead for every combination of the static controls' values and stored as plotly
  *frames*; each control becomes a plotly slider, and a few lines of JavaScript
  (:data:`SLIDER_SCRIPT`) show the frame that matches *all* sliders whenever one moves.
  The reader of the web book drags sliders with no kernel at all.

Which one is used comes from :func:`vizlib.display_mode` (``VIZLIB_MODE`` overrides).

Writing a widget::

    class Square(Widget):
        controls = [Control("n", "n", values=[1, 2, 3], default=2)]

        def figure(self, n):
            y = core_maths.square(n)          # the maths lives in vizlib's core
            return go.Figure(go.Bar(y=[y]))

    Square()            # in a notebook: shows itself, live or static
    Square().figure(n=3)  # any state, as a plain figure

Rules that keep the static figures small and the live updates fast:

* keep the same traces (same number, same order, same types) in every state, and change
  only what must change: a frame then stores only the traces that differ;
* round numbers and use small dtypes (uint8 images, float32 or rounded floats);
* keep the product of the static controls' values small (:attr:`Widget.max_static_states`);
  a widget may list the controls that become static sliders (:attr:`Widget.static_controls`)
  and offer fewer values in static mode (:attr:`Control.static_values`).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Control", "Widget", "SLIDER_SCRIPT", "frame_name"]

KINDS = ("slider", "dropdown", "toggle")


@dataclass
class Control:
    """One control of a widget.

    Args:
        name (str): the keyword passed to :meth:`Widget.figure`.
        label (str): what the reader sees next to the control.
        values (Sequence): the discrete values offered (live slider options and static
            slider steps), in display order. Any Python values (numbers, strings, tuples)
            except ``None``, which ipywidgets reads as "nothing selected".
        default: the value shown first; must be one of ``values``.
        kind (str): ``'slider'``, ``'dropdown'`` or ``'toggle'`` (live mode only: in the
            static book every control is a plotly slider).
        labels (Sequence[str], optional): how each value is written; ``str(value)`` if
            not given.
        static_values (Sequence, optional): a subset of ``values`` offered in static
            mode, to keep the number of precomputed states small; must contain ``default``.
    """

    name: str
    label: str
    values: Sequence
    default: Any
    kind: str = "slider"
    labels: Sequence[str] | None = None
    static_values: Sequence | None = field(default=None)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"Control name must be a Python identifier, got {self.name!r}")
        self.values = list(self.values)
        if not self.values:
            raise ValueError(f"Control {self.name!r}: values must not be empty")
        if any(v is None for v in self.values):
            # ipywidgets' selection widgets use None for "nothing selected"
            raise ValueError(
                f"Control {self.name!r}: None cannot be a value; use a string such as 'none'"
            )
        if self.kind not in KINDS:
            raise ValueError(
                f"Control {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}"
            )
        if self.default not in self.values:
            raise ValueError(
                f"Control {self.name!r}: default {self.default!r} is not one of its values {self.values}"
            )
        if self.labels is not None:
            self.labels = [str(s) for s in self.labels]
            if len(self.labels) != len(self.values):
                raise ValueError(
                    f"Control {self.name!r}: labels has {len(self.labels)} entries but values "
                    f"has {len(self.values)}"
                )
        if self.static_values is not None:
            self.static_values = list(self.static_values)
            missing = [v for v in self.static_values if v not in self.values]
            if missing:
                raise ValueError(
                    f"Control {self.name!r}: static_values {missing} are not in values"
                )
            if self.default not in self.static_values:
                raise ValueError(
                    f"Control {self.name!r}: static_values must contain the default {self.default!r}"
                )

    def label_of(self, value) -> str:
        """How ``value`` is written on the control."""
        if self.labels is None:
            return str(value)
        return self.labels[self.values.index(value)]

    def steps(self) -> list:
        """The values offered in static mode."""
        return list(self.static_values) if self.static_values is not None else list(self.values)


def frame_name(indices: Sequence[int]) -> str:
    """The name of the static frame for one combination of slider positions, e.g. ``'0-2'``."""
    return "-".join(str(int(i)) for i in indices)


# Runs in the browser after the static figure is drawn (plotly replaces {plot_id} with
# the div's id). Each slider step uses method "skip": plotly only moves the slider and
# fires "plotly_sliderchange"; here we read the positions of ALL sliders, find the frame
# named by them, put its traces in place of the base ones (frame.traces says which) and
# its layout keys over the current layout, and redraw with Plotly.react. Moving one slider
# therefore keeps the values of the others.
SLIDER_SCRIPT = """
(function () {
  var gd = document.getElementById('{plot_id}');
  if (!gd || gd.__vizlibSliders) { return; }
  gd.__vizlibSliders = true;
  var busy = false, pending = false;
  function frameFor(name) {
    var t = gd._transitionData;
    return (t && t._frameHash) ? t._frameHash[name] : null;
  }
  function update() {
    if (busy) { pending = true; return; }
    var sliders = gd.layout.sliders || [];
    var name = sliders.map(function (s) { return s.active || 0; }).join('-');
    var f = frameFor(name);
    if (!f) { return; }
    var data;
    if (f.group === 'full') {
      data = f.data.slice();
    } else {
      data = gd.data.slice();
      (f.traces || []).forEach(function (ti, k) { data[ti] = f.data[k]; });
    }
    var layout = Object.assign({}, gd.layout, f.layout || {});
    layout.sliders = gd.layout.sliders;
    busy = true;
    Promise.resolve(Plotly.react(gd, data, layout)).then(function () {
      gd.setAttribute('data-vizlib-frame', name);
      busy = false;
      if (pending) { pending = false; update(); }
    }, function (err) { busy = false; console.error(err); });
  }
  gd.on('plotly_sliderchange', update);
  gd.setAttribute('data-vizlib-frame', (gd.layout.sliders || []).map(function (s) { return s.active || 0; }).join('-'));
})();
"""

# Vertical space (pixels) that one plotly slider with its current-value line takes.
_SLIDER_HEIGHT = 72
_SLIDER_GAP = 10  # below the last slider


class Widget:
    """Base class of every widget: state -> core maths -> figure, live or static.

    Subclasses set :attr:`controls` and implement :meth:`figure`. A subclass that needs
    arguments (an image, a list of boxes) takes them in its own ``__init__`` and calls
    ``super().__init__(**defaults)``; ``defaults`` overrides the controls' defaults.

    Attributes:
        controls (list[Control]): the controls, in display order.
        static_controls (Sequence[str] | None): names of the controls that become sliders
            in static mode (the others stay at their default); ``None`` means all.
        max_static_states (int): the most states precomputed for the static figure.
        last_figure: the figure drawn by the latest live update (``None`` before).
        last_state (dict): the state of the latest live update.
    """

    controls: list[Control] = []
    static_controls: Sequence[str] | None = None
    max_static_states: int = 60

    def __init__(self, **defaults):
        names = [c.name for c in self.controls]
        if len(set(names)) != len(names):
            raise ValueError(f"{type(self).__name__}: control names must be unique, got {names}")
        unknown = sorted(set(defaults) - set(names))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown controls {unknown}; expected some of {names}"
            )
        for c in self.controls:
            if c.name in defaults and defaults[c.name] not in c.values:
                raise ValueError(
                    f"{type(self).__name__}: {c.name}={defaults[c.name]!r} is not one of {c.values}"
                )
        self._defaults = dict(defaults)
        self.last_figure = None
        self.last_state: dict | None = None

    # ----------------------------------------------------------------- the one path
    def figure(self, **state):
        """The figure for one state (one value per control). Subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement figure(**state)")

    def state_defaults(self) -> dict:
        """The default state: ``{control name: default value}``."""
        return {c.name: self._defaults.get(c.name, c.default) for c in self.controls}

    def render(self, **state):
        """``figure`` at the default state, with ``state`` overriding some controls."""
        return self.figure(**self._full_state(state))

    def _full_state(self, state: dict) -> dict:
        full = self.state_defaults()
        unknown = sorted(set(state) - set(full))
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: unknown controls {unknown}; expected some of {list(full)}"
            )
        full.update(state)
        return full

    def control(self, name: str) -> Control:
        """The control called ``name``."""
        for c in self.controls:
            if c.name == name:
                return c
        raise ValueError(
            f"{type(self).__name__} has no control {name!r}; it has {[c.name for c in self.controls]}"
        )

    # ----------------------------------------------------------------- live mode
    def live(self):
        """ipywidgets controls above the figure of the current state, changed in place.

        The figure is a :class:`~vizlib.widgets._live.LiveFigure`: one plotly
        ``FigureWidget`` kept on the page, to which each change sends only the traces
        and layout keys that differ (or an ``Output`` redrawn whole where a
        ``FigureWidget`` cannot be shown, or ``VIZLIB_LIVE_FIGURE=output`` asks for it:
        the path before issue 18, kept for comparison). :meth:`warm_up` runs once, after the first
        figure, so that the reader's first move does not pay a one-time start-up; then, in a
        kernel, :func:`~vizlib.widgets._live.spare_moves_full_collections` keeps Python's
        full garbage collections short.

        Returns:
            ipywidgets.VBox: with extra attributes ``controls`` (``{name: ipywidget}``,
            so code and tests can drive them: ``box.controls['stride'].value = 2``),
            ``widget`` (this object) and ``live_figure`` (the ``LiveFigure``). Every
            change redraws and stores the new figure in ``self.last_figure`` (and
            ``box.last_figure``).
        """
        import ipywidgets as W

        from ._live import LiveFigure, spare_moves_full_collections

        state0 = self.state_defaults()
        ctrls = {c.name: _ipywidget_for(W, c, state0[c.name]) for c in self.controls}
        fig0 = self.figure(**state0)
        view = LiveFigure(fig0, prefer_widget=os.environ.get("VIZLIB_LIVE_FIGURE") != "output")
        box = W.VBox(
            [W.HBox(list(ctrls.values()), layout=W.Layout(flex_flow="row wrap")), view.widget]
        )
        box.controls = ctrls
        box.widget = self
        box.live_figure = view
        self.last_figure, self.last_state = fig0, state0
        box.last_figure = fig0

        def redraw(change=None):
            state = {name: w.value for name, w in ctrls.items()}
            fig = self.figure(**state)
            self.last_figure, self.last_state = fig, state
            box.last_figure = fig
            view.show(fig)

        for w in ctrls.values():
            w.observe(redraw, names="value")
        self.warm_up()
        spare_moves_full_collections()  # after the warm-up, so its objects are frozen too
        return box

    def warm_up(self) -> None:
        """Draw, once, every value of every control with the others at their defaults,
        so that the reader's moves do not pay one-time costs: torch's lazy start-up of an
        operator (the first ``F.max_unpool2d`` of a process takes about 0.3 s) or a
        widget's own caches (the RPN explorer's proposals at a new NMS threshold, about
        50 ms each). Called by :meth:`live`; a widget may override it."""
        state = self.state_defaults()
        for c in self.controls:
            for value in c.values:
                if value != state[c.name]:
                    self.figure(**{**state, c.name: value})

    # ----------------------------------------------------------------- static mode
    def static_states(self) -> list[tuple[tuple[int, ...], dict]]:
        """Every state precomputed for the static figure, with its slider indices.

        Returns:
            list of ``(indices, state)``: ``indices[k]`` is the position of static
            slider ``k``; ``state`` is the full keyword state for :meth:`figure`.
        """
        sliders = self._static_sliders()
        base = self.state_defaults()
        grids = [range(len(c.steps())) for c in sliders]
        states = []
        for idx in itertools.product(*grids):
            state = dict(base)
            for c, i in zip(sliders, idx, strict=True):
                state[c.name] = c.steps()[i]
            states.append((tuple(idx), state))
        return states

    def _static_sliders(self) -> list[Control]:
        if self.static_controls is None:
            sliders = list(self.controls)
        else:
            sliders = [self.control(n) for n in self.static_controls]
        n = 1
        for c in sliders:
            n *= len(c.steps())
        if n > self.max_static_states:
            raise ValueError(
                f"{type(self).__name__}: the static figure would need {n} states "
                f"(more than max_static_states={self.max_static_states}); list fewer "
                "static_controls or give some controls static_values"
            )
        base = self.state_defaults()
        for c in sliders:
            if base[c.name] not in c.steps():
                raise ValueError(
                    f"{type(self).__name__}: default {c.name}={base[c.name]!r} is not among "
                    f"its static values {c.steps()}"
                )
        return sliders

    def static_figure(self):
        """The figure with every static state precomputed as a frame and one slider per control.

        The initial view is the default state. Frames are named by the sliders' indices
        (:func:`frame_name`) and hold only the traces and layout keys that differ between
        states. The sliders' steps use method ``"skip"``: the figure needs the script from
        :meth:`static_post_script` (``show`` and :meth:`static_html` add it) to switch frames.

        Returns:
            plotly.graph_objects.Figure
        """
        import plotly.graph_objects as go

        sliders = self._static_sliders()
        states = self.static_states()
        base = self.state_defaults()
        base_idx = tuple(c.steps().index(base[c.name]) for c in sliders)

        figs = {idx: self.figure(**state) for idx, state in states}
        jsons = {idx: json.loads(fig.to_json()) for idx, fig in figs.items()}
        base_json = jsons[base_idx]
        base_data = base_json["data"]
        same_count = all(len(j["data"]) == len(base_data) for j in jsons.values())

        # Which traces and which top-level layout keys change anywhere?
        if same_count:
            changed = sorted(
                {
                    t
                    for j in jsons.values()
                    for t in range(len(base_data))
                    if j["data"][t] != base_data[t]
                }
            )
        layout_keys = sorted(
            {
                k
                for j in jsons.values()
                for k in set(j["layout"]) | set(base_json["layout"])
                if k not in ("sliders", "updatemenus", "template")
                and j["layout"].get(k) != base_json["layout"].get(k)
            }
        )

        frames = []
        for idx, _state in states:
            j = jsons[idx]
            layout = {k: j["layout"].get(k, _EMPTY.get(k)) for k in layout_keys}
            if same_count:
                frame = {
                    "name": frame_name(idx),
                    "data": [j["data"][t] for t in changed],
                    "traces": changed,
                }
            else:
                frame = {
                    "name": frame_name(idx),
                    "data": j["data"],
                    "group": "full",
                    "traces": list(range(len(j["data"]))),
                }
            frame["layout"] = layout
            frames.append(frame)

        fig_dict = {"data": base_data, "layout": dict(base_json["layout"]), "frames": frames}
        layout = fig_dict["layout"]
        # The sliders go under everything the figure drew in its own bottom margin (tick
        # labels, axis titles, a legend): the margin and the height grow by their room.
        n = len(sliders)
        margin = dict(layout.get("margin") or {})
        bottom = int(margin.get("b", 80))  # plotly's default bottom margin
        room = _SLIDER_GAP + _SLIDER_HEIGHT * n
        margin["b"] = bottom + room
        layout["margin"] = margin
        if layout.get("height"):
            layout["height"] = int(layout["height"]) + room
        layout["sliders"] = [
            {
                "active": base_idx[k],
                "currentvalue": {"prefix": f"{c.label}: ", "font": {"size": 13}},
                "pad": {"t": bottom + _SLIDER_HEIGHT * k, "b": 0},
                "x": 0.0,
                "len": 1.0,
                "y": 0,
                "yanchor": "top",
                "name": c.name,
                "steps": [
                    {"label": c.label_of(v), "method": "skip", "args": [None], "value": str(i)}
                    for i, v in enumerate(c.steps())
                ],
            }
            for k, c in enumerate(sliders)
        ]
        # The JSON dicts came from figures; re-validating 60 frames would take seconds.
        try:
            return go.Figure(fig_dict, _validate=False)
        except TypeError:  # pragma: no cover - a plotly without the private switch
            return go.Figure(fig_dict)

    def static_post_script(self) -> str:
        """The JavaScript that makes the static figure's sliders switch frames."""
        return SLIDER_SCRIPT

    def static_html(self, include_plotlyjs=None) -> str:
        """The static figure as an HTML ``<div>`` with its slider script, through
        :func:`vizlib.display.figure_html`, the one path from a plotly figure to HTML (no
        MathJax, no CDN, frames not auto-played; plotly.js inlined unless the book is
        being built)."""
        from vizlib.display import figure_html

        return figure_html(
            self.static_figure(),
            post_script=self.static_post_script(),
            include_plotlyjs=include_plotlyjs,
        )

    # ----------------------------------------------------------------- display
    def show(self, mode: str | None = None):
        """Display the widget: ``mode`` ``'live'`` or ``'static'``; ``None`` asks
        :func:`vizlib.display_mode`. Returns the live box in live mode, else ``None``."""
        import vizlib

        mode = vizlib.display_mode() if mode is None else mode
        if mode not in vizlib.MODES:
            raise ValueError(f"mode must be one of {vizlib.MODES} or None, got {mode!r}")
        if mode == "live":
            from IPython.display import display

            box = self.live()
            display(box)
            return box
        from IPython.display import HTML, display

        display(HTML(self.static_html()))
        return None

    def _ipython_display_(self):
        self.show()

    def _repr_mimebundle_(self, include=None, exclude=None):
        # Used only by front ends that bypass _ipython_display_: the static view.
        return {"text/html": self.static_html(), "text/plain": repr(self)}

    def __repr__(self):
        state = ", ".join(f"{k}={v!r}" for k, v in self.state_defaults().items())
        return f"{type(self).__name__}({state})"


# Layout keys that a state may lack although another state has them: what "absent" means.
_EMPTY = {"annotations": [], "shapes": [], "images": []}


def _ipywidget_for(W, c: Control, value):
    options = [(c.label_of(v), v) for v in c.values]
    common = dict(
        options=options, value=value, description=c.label, style={"description_width": "initial"}
    )
    if c.kind == "dropdown":
        return W.Dropdown(**common)
    if c.kind == "toggle":
        return W.ToggleButtons(**common)
    return W.SelectionSlider(continuous_update=True, **common)
