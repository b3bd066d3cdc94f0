"""The live widgets in a real JupyterLab, driven by a real browser (Playwright + chromium).

Starts ``jupyter lab`` (from the project's virtualenv) on a free local port with a known
token and temporary config, settings, workspace, runtime and data directories; joins the
NMS and anchors concept notebooks, each up to its widget's cell, into one temporary
notebook (one page load and one kernel start instead of two: about 30 s less on 2 cores);
opens it, runs all its cells, moves one slider of each widget and checks that the plotly
figure drawn by that widget changed (its ``data`` before and after). Requests to any host
but the local server are blocked, so the test also shows that the live mode needs no
network.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JUPYTER = Path(sys.executable).parent / "jupyter"
SHOTS = Path(os.environ.get("VIZLIB_TEST_SHOTS", "/tmp"))  # screenshots when something fails

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cells_through_widget(page: Path, widget: str) -> list:
    """A concept page's cells up to and including the one that shows ``widget``: the page's
    own imports and text, without the later cells that only cost time here."""
    import nbformat

    nb = nbformat.read(page, as_version=4)
    last = next(
        (i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip() == widget),
        None,
    )
    assert last is not None, f"{page.name}: no cell that is just {widget}"
    return nb.cells[: last + 1]


WIDGETS = (("nms.ipynb", "NMSWidget()"), ("anchors.ipynb", "AnchorsWidget()"))
NOTEBOOK = "widgets.ipynb"


def _join_pages(dest: Path) -> None:
    import nbformat

    nb = nbformat.read(ROOT / "book" / WIDGETS[0][0], as_version=4)
    nb.cells = [
        c for page, widget in WIDGETS for c in _cells_through_widget(ROOT / "book" / page, widget)
    ]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # the pages' ids may repeat across them
    nbformat.write(nb, dest)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, require):
    """A running JupyterLab: yields (base url, token, notebook folder)."""
    if not JUPYTER.exists():
        require(f"no jupyter next to {sys.executable}", "pip install -r requirements.txt")
    tmp = tmp_path_factory.mktemp("jupyterlab")
    work = tmp / "notebooks"
    work.mkdir()
    _join_pages(work / NOTEBOOK)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    for var in (
        "JUPYTER_CONFIG_DIR",
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
        "JUPYTER_RUNTIME_DIR",
        "JUPYTER_DATA_DIR",
        "IPYTHONDIR",
    ):
        (tmp / var.lower()).mkdir()
        env[var] = str(tmp / var.lower())
    env.update(OMP_NUM_THREADS="1", VIZLIB_MODE="live", PYTHONPATH=str(ROOT))
    env.pop("VIZLIB_BOOK", None)
    log = open(tmp / "lab.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            str(JUPYTER),
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            "--allow-root",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
        ],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("jupyter lab did not start:\n" + (tmp / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield base, token, work
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# The data of the plotly figure a slider's widget drew: the last plotly div inside the
# nearest element around the slider that holds one (the widget's own box or output).
FIGURE_JS = """(slider) => {
  let node = slider;
  while (node && !node.querySelector('.js-plotly-plot')) { node = node.parentElement; }
  if (!node) { return null; }
  const divs = node.querySelectorAll('.js-plotly-plot');
  return JSON.stringify(divs[divs.length - 1].data);
}"""


def _dismiss_dialogs(page, seen: list[str]) -> None:
    """Accept any modal dialog JupyterLab raised (e.g. a kernel choice, asked on a slow
    start), remembering its text: it would block every click behind it."""
    for _ in range(5):
        dialog = page.locator(".jp-Dialog")
        if not dialog.count():
            return
        seen.append(" ".join(dialog.first.inner_text().split())[:300])
        accept = dialog.first.locator(".jp-Dialog-button.jp-mod-accept")
        if accept.count():
            accept.first.click()
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(500)


def _open_and_run_all(page, base, token, name):
    # imported here, not at the top: without playwright the browser fixture skips (fails in CI)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    dialogs: list[str] = []
    # a workspace of its own (and ?reset): JupyterLab must not reopen the other notebook
    page.goto(f"{base}/lab/workspaces/{name.split('.')[0]}/tree/{name}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # wait for the kernel, then Run > Run All Cells
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    _dismiss_dialogs(page, dialogs)
    page.locator(".jp-Notebook .jp-Cell").first.click()  # focus the notebook: enables the menu
    for _ in range(3):  # Run > Run All Cells, until a cell shows it ran or is queued
        _dismiss_dialogs(page, dialogs)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.jp-InputPrompt'))"
                ".some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))",
                timeout=10_000,
            )
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    else:
        page.screenshot(path=str(SHOTS / f"{name}-not-run.png"))
        pytest.fail(f"{name}: Run All Cells did not start (dialogs seen: {dialogs})")
    return dialogs


def _move_slider(page, name, slider_label, t0):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # the widget's slider, found by its label, and the figure it drew
    slider = page.locator(".widget-slider", has=page.locator("label", has_text=slider_label)).first
    # attached, not visible: JupyterLab skips rendering off-screen cells (content-visibility)
    try:
        slider.wait_for(state="attached", timeout=90_000)
    except PlaywrightTimeout:
        page.screenshot(path=str(SHOTS / f"{name}-no-widget-{slider_label}.png"), full_page=True)
        raise
    slider.scroll_into_view_if_needed()
    element = slider.element_handle()
    page.wait_for_function(f"(s) => ({FIGURE_JS})(s) !== null", arg=element, timeout=60_000)
    before = element.evaluate(FIGURE_JS)
    t1 = time.monotonic()
    readout = slider.locator(".widget-readout")
    value_before = readout.inner_text()
    handle = slider.locator(".noUi-handle")
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        f"([s, b]) => {{ const d = ({FIGURE_JS})(s); return d !== null && d !== b; }}",
        arg=[element, before],
        timeout=30_000,
    )
    after = element.evaluate(FIGURE_JS)
    assert readout.inner_text() != value_before
    print(
        f"{name} / {slider_label}: figure drawn after {t1 - t0:.1f} s, "
        f"redrawn after {time.monotonic() - t1:.1f} s"
    )
    return json.loads(before), json.loads(after)


def test_nms_and_anchors_widgets_update_live_in_jupyterlab(browser, lab):
    base, token, _ = lab
    start = time.monotonic()
    errors, foreign = [], []

    def new_page():
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(base)
                else (foreign.append(route.request.url), route.abort())
            ),
        )
        return page

    page = new_page()
    dialogs = _open_and_run_all(page, base, token, NOTEBOOK)
    before, after = _move_slider(page, NOTEBOOK, "IoU threshold", start)
    assert before != after  # moving the IoU threshold redrew the boxes
    assert len(before) == len(after)  # the same traces, new data
    anchors_before, anchors_after = _move_slider(page, NOTEBOOK, "location", start)
    assert anchors_before != anchors_after
    assert anchors_before != after, "each slider's own widget figure, not the same one"
    page.close()
    if dialogs:
        print(f"dialogs accepted: {dialogs}")
    assert not errors, f"page errors: {errors}"
    print(f"blocked requests to other hosts: {foreign}; {time.monotonic() - start:.0f} s in all")
