"""The static figures of every widget, in a real browser (Playwright + Debian's chromium).

Each widget's ``static_html()`` is put in a tiny page that loads ``plotly.min.js`` (copied
from the installed plotly package, as the book does) from a local ``http.server``. For
every slider we click other positions and check that the frame named by *all* sliders is
shown, that the plot's data or layout changed, that there are no console errors, and that
no request leaves the local server. The built book itself is tested in test_book.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import plotly
import plotly.graph_objects as go
import pytest

from vizlib.widgets import Control, Widget, all_widget_classes

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class TwoSliders(Widget):
    """A toy with two sliders, so the 'keep the other slider's value' logic is tested."""

    controls = [
        Control("a", "slope", values=[0, 1, 2], default=1),
        Control("b", "offset", values=[0, 1], default=0),
    ]

    def figure(self, a, b):
        xs = list(range(5))
        fig = go.Figure(
            [go.Scatter(x=[0, 4], y=[0, 0]), go.Scatter(x=xs, y=[a * x + b for x in xs])]
        )
        return fig.update_layout(title=f"{a}x+{b}", height=300)


def _widgets():
    found = {"TwoSliders": TwoSliders}
    found.update(all_widget_classes())
    return found


WIDGETS = _widgets()

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{name}</title>
<link rel="icon" href="data:,"><script src="plotly.min.js"></script></head><body>{body}</body></html>"""


@pytest.fixture(scope="module")
def site(tmp_path_factory, serve):
    root = tmp_path_factory.mktemp("widgets_site")
    shutil.copy(
        Path(plotly.__file__).parent / "package_data" / "plotly.min.js", root / "plotly.min.js"
    )
    for name, cls in WIDGETS.items():
        html = cls().static_html(include_plotlyjs=False)
        (root / f"{name}.html").write_text(PAGE.format(name=name, body=html), encoding="utf-8")
    return serve(root)


STATE_JS = """() => {
  const gd = document.querySelector('.plotly-graph-div');
  const layout = Object.assign({}, gd.layout); delete layout.sliders;
  return {frame: gd.getAttribute('data-vizlib-frame'),
          plot: JSON.stringify(gd.data) + JSON.stringify(layout),
          actives: (gd.layout.sliders || []).map(s => s.active)};
}"""


def _click_step(page, k, i, n):
    """Click slider ``k`` at step ``i`` of ``n`` (plotly moves to the nearest step)."""
    rail = page.locator(".slider-group").nth(k).locator("rect.slider-rail-touch-rect")
    rail.scroll_into_view_if_needed()  # a mouse click must land inside the viewport
    box = rail.bounding_box()
    # the rail's usable width is inset by the grip's half-width at each end
    inset = 10
    x = box["x"] + inset + (box["width"] - 2 * inset) * (i / max(n - 1, 1))
    page.mouse.click(x, box["y"] + box["height"] / 2)


@pytest.mark.parametrize("name", list(WIDGETS))
def test_every_slider_changes_the_plot(browser, site, name):
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    errors, foreign = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(site) else None)
    page.goto(f"{site}/{name}.html")
    page.wait_for_function("() => document.querySelector('.plotly-graph-div[data-vizlib-frame]')")
    first = page.evaluate(STATE_JS)
    # (name, number of steps) of each slider, as the page has them
    sliders = page.evaluate("""() => document.querySelector('.plotly-graph-div').layout.sliders
                                   .map(s => [s.name, s.steps.length])""")
    assert len(first["actives"]) == len(sliders) >= 1
    default = list(first["actives"])
    actives = list(default)

    def move(k, i, must_change=True):
        before = page.evaluate(STATE_JS)
        _click_step(page, k, i, sliders[k][1])
        actives[k] = i
        want = "-".join(map(str, actives))
        page.wait_for_function(
            "(w) => document.querySelector('.plotly-graph-div').getAttribute('data-vizlib-frame') === w",
            arg=want,
            timeout=10_000,
        )
        after = page.evaluate(STATE_JS)
        assert after["actives"] == actives
        if must_change:
            assert after["plot"] != before["plot"], (
                f"{name}: slider {sliders[k][0]} step {i} did not change the plot"
            )

    # each slider, the others at their defaults: two new positions, then back
    for k, (_, n) in enumerate(sliders):
        targets = [j for j in dict.fromkeys((n - 1, 0, n // 2)) if j != default[k]][:2]
        for i in targets:
            move(k, i)
        move(k, default[k])
    # then all sliders away from their defaults at once: the frame keeps every slider's value
    for k, (_, n) in enumerate(sliders):
        move(k, n - 1 if default[k] != n - 1 else 0, must_change=False)
    final = page.evaluate(STATE_JS)
    assert final["plot"] != first["plot"]
    assert not errors, f"{name}: console errors {errors}"
    assert not foreign, f"{name}: requests outside the local server {foreign}"
    page.close()
