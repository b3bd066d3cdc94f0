"""The web book builds with warnings as errors, every page in _toc.yml is there, links
resolve, and in a real browser every page draws its figures and formulas, every slider of
a static widget changes its plot, no page logs a console error and none asks a host but
the local server for anything."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list[str]:
    """Every file named in _toc.yml, without extension, relative to the root."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", []))
    walk(toc.get("chapters", []))
    return [re.sub(r"\.(md|ipynb)$", "", f) for f in files]


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    env = dict(os.environ)
    env.pop("VIZLIB_PROFILE", None)  # the build sets what it needs
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going", "--all"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
    )
    if proc.returncode != 0:
        pytest.fail(f"jupyter-book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    html = out / "_build" / "html"
    assert (html / "index.html").exists()
    return html


def test_every_toc_page_is_built(built_book):
    missing = [f for f in toc_files() if not (built_book / f"{f}.html").exists()]
    assert not missing, f"pages in _toc.yml missing from the HTML: {missing}"


def test_plotly_js_is_served_once_locally(built_book):
    assert (built_book / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    for page in built_book.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        # plotly.js is never inlined into a page (it is ~4.8 MB)
        assert len(text) < 3_000_000, f"{page.name} is {len(text)} bytes: plotly.js inlined?"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("script", "img", "link") and (attrs.get("src") or attrs.get("href")):
            self.links.append(attrs.get("src") or attrs.get("href"))


@functools.cache
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_no_broken_internal_links(built_book):
    broken = []
    pages = [p for p in sorted(built_book.rglob("*.html")) if "_static" not in p.parts]
    for page in pages:
        for href in _parse(page).links:
            url = urlparse(href)
            if url.scheme or href.startswith(("//", "mailto:", "javascript:")):
                continue
            target = page if not url.path else (page.parent / unquote(url.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(built_book)} -> {href}")
            elif (
                url.fragment and target.suffix == ".html" and url.fragment not in _parse(target).ids
            ):
                broken.append(f"{page.relative_to(built_book)} -> {href} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def served_book(built_book, serve):
    return serve(built_book)


def open_page(browser, url):
    """Open ``url``; return (page, console errors, foreign requests). Foreign requests are
    recorded and aborted so that a page that would reach the internet fails fast."""
    context = browser.new_context()
    page = context.new_page()
    errors, foreign = [], []
    page.on(
        "console",
        lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    local = urlparse(url).netloc

    def route(r):
        target = urlparse(r.request.url)
        if target.scheme in ("data", "blob", "about") or target.netloc == local:
            r.continue_()
        else:
            foreign.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load", timeout=60_000)
    try:  # on a loaded 2-core machine "idle" can take long; the checks below wait for what they need
        page.wait_for_load_state("networkidle", timeout=10_000)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError
        pass
    return page, errors, foreign


_PLOT_STATE = """gd => {
  const layout = Object.assign({}, gd.layout); delete layout.sliders;
  return {frame: gd.getAttribute('data-vizlib-frame'),
          plot: JSON.stringify(gd.data) + JSON.stringify(layout)};
}"""


def _every_slider_moves_its_plot(page, page_name, html):
    """Static widgets (vizlib.widgets): drag each slider of each one to another step and
    see the frame named by all sliders shown and the plot changed, with no kernel."""
    n_static = html.count("gd.on('plotly_sliderchange', update)")  # one per static widget
    if not n_static:
        return
    page.wait_for_function(
        f"document.querySelectorAll('.plotly-graph-div[data-vizlib-frame]').length >= {n_static}",
        timeout=20_000,
    )
    widgets = page.locator(".plotly-graph-div[data-vizlib-frame]")
    assert widgets.count() == n_static
    for w in range(widgets.count()):
        gd = widgets.nth(w)
        sliders = gd.evaluate(
            "gd => gd.layout.sliders.map(s => [s.name, s.steps.length, s.active || 0])"
        )
        actives = [active for _, _, active in sliders]
        for k, (name, n, active) in enumerate(sliders):
            target = n - 1 if active != n - 1 else 0
            before = gd.evaluate(_PLOT_STATE)
            rail = gd.locator(".slider-group").nth(k).locator("rect.slider-rail-touch-rect")
            rail.evaluate(
                "el => el.scrollIntoView({block: 'center'})"
            )  # clear of the sticky header
            box = rail.bounding_box()
            inset = 10  # the rail's usable width is inset by the grip's half-width at each end
            x = box["x"] + inset + (box["width"] - 2 * inset) * (target / max(n - 1, 1))
            page.mouse.click(x, box["y"] + box["height"] / 2)
            actives[k] = target
            want = "-".join(map(str, actives))
            page.wait_for_function(
                "([el, want]) => el.getAttribute('data-vizlib-frame') === want",
                arg=[gd.element_handle(), want],
                timeout=10_000,
            )
            after = gd.evaluate(_PLOT_STATE)
            assert after["plot"] != before["plot"], (
                f"{page_name}: widget {w}, slider {name!r} to step {target} did not change the plot"
            )


@pytest.mark.browser
@pytest.mark.parametrize("page_name", toc_files())
def test_page_in_browser(browser, served_book, built_book, page_name):
    page, errors, foreign = open_page(browser, f"{served_book}/{page_name}.html")
    try:
        html = (built_book / f"{page_name}.html").read_text(encoding="utf-8")
        n_plots = html.count('class="plotly-graph-div"')
        if n_plots:
            page.wait_for_function(
                f"document.querySelectorAll('.plotly-graph-div .main-svg').length >= {n_plots}",
                timeout=20_000,
            )
            drawn = page.evaluate(
                "Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => !!d.querySelector('svg.main-svg'))"
            )
            assert all(drawn), f"{page_name}: plotly figures not drawn: {drawn}"
            _every_slider_moves_its_plot(page, page_name, html)
        if 'class="math' in html:
            page.wait_for_function(
                "document.querySelectorAll('mjx-container').length > 0", timeout=20_000
            )
            leftover = page.evaluate(
                "Array.from(document.querySelectorAll('.math')).filter(e => !e.querySelector('mjx-container')).length"
            )
            assert leftover == 0, f"{page_name}: {leftover} formulas not typeset"
        page.wait_for_timeout(300)  # late console errors (theme scripts) show up here
        assert not errors, f"{page_name}: console errors: {errors}"
        assert not foreign, f"{page_name}: requests to other hosts: {foreign}"
    finally:
        page.context.close()


def test_concept_pages_publish_static_widgets(built_book):
    """The browser test drags the sliders of every static widget; make sure there are some:
    each concept page built around a widget publishes it in static form."""
    pages = [
        "upsampling",
        "transposed_convolution",
        "receptive_fields",
        "iou",
        "anchors",
        "nms",
        "pr_curves_map",
        "focal_loss",
    ]
    for name in pages:
        html = (built_book / "book" / f"{name}.html").read_text(encoding="utf-8")
        assert "gd.on('plotly_sliderchange', update)" in html, f"book/{name}: no static widget"


def test_no_page_needs_a_widget_manager(built_book):
    """The book serves no ipywidgets manager (``nb_ipywidgets_js`` is empty in _config.yml):
    widgets publish as static plotly figures and training progress as text, so a page that
    stored an ipywidgets output would show an empty box. None may."""
    for page_name in toc_files():
        html = (built_book / f"{page_name}.html").read_text(encoding="utf-8")
        for mime in (
            "application/vnd.jupyter.widget-view+json",
            "application/vnd.jupyter.widget-state+json",
        ):
            assert mime not in html, (
                f"{page_name}: an ipywidgets output ({mime}), which the book cannot show"
            )


def test_toc_parser_finds_the_root():
    files = toc_files()
    assert files[0] == "book/preface" and len(files) == len(set(files))
