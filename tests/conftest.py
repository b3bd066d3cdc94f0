"""What several test files share: the CI switch, hypothesis profiles, Chromium driven by
Playwright, a local HTTP server, and builders of fake exercise submissions.

CI (``.ci/run``) exports ``VIZLIB_CI=1``. There a test whose tool is missing (Chromium,
Playwright, JupyterLab) FAILS, so that a broken CI machine cannot pass by skipping; on a
developer's machine the same test skips and says what to install.

Markers (see ``pyproject.toml``): ``browser`` and ``book`` are also given here to every
test that uses the ``browser`` or ``built_book`` fixture, so that ``make check`` (which
deselects ``slow``, ``browser`` and ``book``) never starts a browser or builds the book.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import textwrap
import threading
from collections.abc import Callable

import pytest
from hypothesis import settings

IN_CI = os.environ.get("VIZLIB_CI", "") not in ("", "0")

# hypothesis: random examples on a developer's machine (new cases every run, each failure
# printed with the seed that reproduces it); in CI the same examples every run, so that a
# red CI run means a changed code path, never a lucky draw. HYPOTHESIS_PROFILE overrides.
settings.register_profile("dev", print_blob=True)
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "dev"))


def unavailable(what: str, fix: str) -> None:
    """Fail in CI, skip elsewhere: ``what`` is missing and ``fix`` says how to get it."""
    if IN_CI:
        pytest.fail(f"{what} in CI (VIZLIB_CI is set): {fix}", pytrace=False)
    pytest.skip(f"{what}: {fix}")


@pytest.fixture(scope="session")
def require() -> Callable[[str, str], None]:
    """:func:`unavailable` for test files: ``require(what, fix)`` skips locally, fails in CI."""
    return unavailable


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects: the markers must be there by then
def pytest_collection_modifyitems(items):
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)
        if "built_book" in fixtures:
            item.add_marker(pytest.mark.book)


# --------------------------------------------------------------------------- browser

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The Chromium to drive: ``$VIZLIB_CHROMIUM`` when set, else ``chromium`` on the PATH
    (Debian's package; Playwright's own downloaded browsers are not used: no network)."""
    override = os.environ.get("VIZLIB_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (a Playwright ``Browser``), one per test module."""
    path = chromium_path()
    if path is None:
        where = os.environ.get("VIZLIB_CHROMIUM") or "chromium on the PATH"
        unavailable(
            f"no Chromium ({where})",
            "apt-get install -y chromium, or point VIZLIB_CHROMIUM at a Chromium binary",
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed", "pip install -r requirements.txt")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield b
        b.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def serve():
    """``serve(folder)`` -> the base URL (``http://127.0.0.1:PORT``) of a local HTTP server
    for that folder; every server started is shut down after the module."""
    servers = []

    def start(folder: str | os.PathLike) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- submissions


class Submission:
    """Exercise cells as a student might write them, for the exercise and grader tests.

    ``area(body)`` and ``iou(body)`` are the cells of the ``box_area`` and ``iou``
    exercises (``masters/book/exercises.ipynb``) with ``body`` as the function's body;
    ``define(source, name)`` runs a cell and returns the function it defines.
    """

    @staticmethod
    def cell(exercise: str, signature: str, body: str) -> str:
        body = textwrap.indent(textwrap.dedent(body), "    ")
        return f"# EXERCISE {exercise}\nimport torch\n\n\ndef {signature}:\n{body}"

    @classmethod
    def area(cls, body: str) -> str:
        return cls.cell("box_area", "box_area(boxes)", body)

    @classmethod
    def iou(cls, body: str) -> str:
        return cls.cell("iou", "iou(boxes1, boxes2)", body)

    @staticmethod
    def define(source: str, name: str):
        namespace: dict = {"__name__": "__main__"}
        exec(compile(source, "<exercise cell>", "exec"), namespace)  # noqa: S102 - the tests' own code
        return namespace[name]


# An IoU that is right except for the classic slip: 0 / 0 = NaN for two zero-area boxes.
Submission.IOU_NAN_AT_ZERO_AREA = Submission.iou("""\
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    a1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    a2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    return inter / (a1[:, None] + a2[None, :] - inter)
""")


@pytest.fixture(scope="session")
def submission() -> type[Submission]:
    return Submission
