"""Sphinx extension: the built book loads nothing from any host but itself.

- Sets ``VIZLIB_BOOK=1`` before any page is executed, so that notebook kernels (which
  inherit the environment) make plotly emit ``text/html`` that expects plotly.js on the
  page, and widgets render in their static mode.
- Copies ``plotly.min.js`` from the installed plotly package into ``_static/`` once and
  loads it synchronously in every page's ``<head>`` (not 4.8 MB inlined per figure, never
  from a CDN).
MathJax is served locally by ``sphinx-mathjax-offline`` (see ``_config.yml``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PLOTLY_JS = "plotly.min.js"


def _plotly_js_source() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall plotly (pip install -r requirements.txt)")
    return path


def _copy_plotly_js(app, exc) -> None:
    if exc is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_plotly_js_source(), static / PLOTLY_JS)


def _drop_thebe(app, pagename, templatename, context, doctree) -> None:
    # Jupyter Book always loads sphinx-thebe, which declares `const THEBE_JS_URL` twice
    # (a console error on every page) and points at a CDN. The book launches Colab, not
    # Binder, so Thebe is removed from every page.
    scripts = context.get("script_files")
    if scripts is None:
        return
    context["script_files"] = [
        s for s in scripts
        if "THEBE_JS_URL" not in (getattr(s, "attributes", {}) or {}).get("body", "")
        and "thebe" not in str(getattr(s, "filename", s) or "")
    ]


def setup(app):
    os.environ["VIZLIB_BOOK"] = "1"
    # Plain blocking <script> in <head>: figures inline their own drawing code and need
    # window.Plotly to exist when they run.
    app.add_js_file(PLOTLY_JS, priority=100)
    app.connect("build-finished", _copy_plotly_js)
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
