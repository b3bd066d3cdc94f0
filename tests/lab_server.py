"""A JupyterLab for browser checks: started, driven to run a notebook, stopped.

Used by ``tests/test_jupyterlab.py`` and ``benchmarks/bench_widgets_browser.py``.
:func:`running_lab` starts ``jupyter lab`` (from the project's virtualenv) on a free
local port, with a known token and its own config, settings, workspace, runtime and data
folders, so nothing of the user's JupyterLab is read or written. :func:`open_and_run_all`
opens a notebook in Chromium and runs all its cells from the Run menu.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUPYTER = Path(sys.executable).parent / "jupyter"
SHOTS = Path(os.environ.get("VIZLIB_TEST_SHOTS", "/tmp"))  # screenshots when something fails


class LabError(RuntimeError):
    """JupyterLab did not start, or a notebook did not run."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_lab(tmp: Path, work: Path, env_extra: dict | None = None, app: str = "lab"):
    """Run ``jupyter lab`` serving ``work``; yields ``(base url, token)``.

    Args:
        tmp (Path): an empty folder for JupyterLab's own folders and its log.
        work (Path): the folder of notebooks it serves.
        env_extra (dict, optional): more environment for the server and its kernels.
        app (str): ``'lab'``, or ``'notebook'`` for Jupyter Notebook 7 (when installed).
    """
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
        (tmp / var.lower()).mkdir(exist_ok=True)
        env[var] = str(tmp / var.lower())
    env.update(OMP_NUM_THREADS="1", VIZLIB_MODE="live", PYTHONPATH=str(ROOT))
    env.update(env_extra or {})
    env.pop("VIZLIB_BOOK", None)
    log_path = tmp / "lab.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            str(JUPYTER),
            app,
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            "--allow-root",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            *(
                [
                    "--LabApp.news_url=None",
                    "--LabApp.check_for_updates_class="
                    "jupyterlab.handlers.announcements.NeverCheckForUpdate",
                ]
                if app == "lab"
                else []
            ),
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
                raise LabError("jupyter lab did not start:\n" + log_path.read_text()[-3000:])
            time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def local_only_page(browser, base: str, errors: list, foreign: list, **kwargs):
    """A new page whose requests to any host but ``base`` are blocked (and listed in
    ``foreign``); page errors are listed in ``errors``."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, **kwargs)
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


def open_and_run_all(page, base: str, token: str, name: str, app: str = "lab") -> list[str]:
    """Open notebook ``name`` and run all its cells; returns the dialogs accepted."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    dialogs: list[str] = []
    if app == "lab":
        # a workspace of its own (and ?reset): JupyterLab must not reopen another notebook
        page.goto(f"{base}/lab/workspaces/{name.split('.')[0]}/tree/{name}?reset&token={token}")
    else:  # Notebook 7: one notebook per page
        page.goto(f"{base}/notebooks/{name}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # wait for the kernel, then Run > Run All Cells
    if app == "lab":
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000
        )
    else:  # Notebook 7 has no execution indicator: give its kernel a moment
        page.wait_for_timeout(5_000)
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
        raise LabError(f"{name}: Run All Cells did not start (dialogs seen: {dialogs})")
    return dialogs
