"""Benchmark: plotly.js's own time per live-widget move, in a bare page (no Jupyter).

Run by hand (about a minute):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_plotly_update.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_plotly_update.py --widgets IoUWidget --no-write

It splits a move's time in ``benchmarks/bench_widgets_browser.py`` into its parts. For
each widget of ``vizlib.widgets.WIDGETS``, the longest slider is moved through its values
three times. The edit messages are the ones ``vizlib/widgets/_live.py`` would send, built
by the same function (``edit_message``). A blank Chromium page that loaded the plotly package's
``plotly.min.js`` then applies each message with ``Plotly.update``, as
``live_figure.js`` does, and the time is taken up to the next animation frame. So the
figure is measured without the kernel, the WebSocket or JupyterLab.

It is measured twice: once as the widget draws it, and once with its text left out (the
traces' ``text``/``texttemplate`` and the layout's annotations). The difference is what
the numbers written in heatmap cells and the subplot titles cost.
Writes ``benchmarks/results/plotly_update.md`` unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vizlib.widgets import WIDGETS, all_widget_classes  # noqa: E402
from vizlib.widgets._live import _plain, edit_message  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CHROMIUM = os.environ.get("VIZLIB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Applies each message as live_figure.js does; returns ms from update to the next frame.
APPLY_JS = """async ([first, messages]) => {
  const gd = document.createElement('div');
  document.body.appendChild(gd);
  await Plotly.newPlot(gd, first.data, first.layout);
  const times = [];
  for (const m of messages) {
    const indexes = m.traces.map((t) => t[0]);
    const style = {};
    m.traces.forEach(([t, edits], k) => {
      for (const [path, value] of Object.entries(edits)) {
        if (!(path in style)) { style[path] = new Array(indexes.length).fill(undefined); }
        style[path][k] = value;
      }
    });
    const t0 = performance.now();
    await Plotly.update(gd, style, m.layout, indexes);
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    times.push(performance.now() - t0);
  }
  Plotly.purge(gd);
  gd.remove();
  return times;
}"""


def without_text(fig: dict) -> dict:
    fig = copy.deepcopy(fig)
    for trace in fig["data"]:
        trace.pop("text", None)
        trace.pop("texttemplate", None)
    fig["layout"].pop("annotations", None)
    return fig


def messages(figs: list[dict]) -> list[dict]:
    """What the live figure would send for each move (nothing sent: an empty message)."""
    empty = {"traces": [], "layout": {}}
    return [edit_message(a, b) or empty for a, b in zip(figs, figs[1:], strict=False)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widgets", nargs="+", default=None)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    import plotly
    from playwright.sync_api import sync_playwright

    names = args.widgets or [n for n in WIDGETS if n in all_widget_classes()]
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_content("<html><body></body></html>")
        page.add_script_tag(
            path=str(Path(plotly.__file__).parent / "package_data" / "plotly.min.js")
        )
        for name in names:
            w = all_widget_classes()[name]()
            sliders = [c for c in w.controls if c.kind == "slider"] or list(w.controls)
            control = max(sliders, key=lambda c: len(c.values))
            states = [dict(w.state_defaults(), **{control.name: v}) for v in control.values * 3]
            figs = [_plain(w.figure(**s)) for s in states]
            row = {"widget": name, "control": control.name, "moves": len(figs) - 1}
            for label, fs in (("as drawn", figs), ("no text", [without_text(f) for f in figs])):
                t = page.evaluate(APPLY_JS, [fs[0], messages(fs)])
                row[label] = (round(statistics.median(t), 1), round(max(t), 1))
            rows.append(row)
            print(row, flush=True)
        browser.close()
    if args.no_write:
        return
    lines = [
        "# plotly.js's own time per live-widget move (bare page)",
        "",
        f"Measured {datetime.date.today().isoformat()} on {platform.machine()} CPU, "
        f"{os.cpu_count()} cores ({platform.system()}), plotly {plotly.__version__}, Chromium "
        f"headless, load {os.getloadavg()[0]:.1f}, by `benchmarks/bench_plotly_update.py`: the "
        "edit messages of `vizlib/widgets/_live.py` applied with `Plotly.update`, timed to the "
        "next animation frame, over the widget's longest slider moved through its values 3 "
        "times. *No text*: the same without the traces' text and the layout's annotations.",
        "",
        "| widget | control | moves | median ms | worst ms | no text: median ms | no text: worst ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['widget']} | {r['control']} | {r['moves']} | {r['as drawn'][0]} | "
            f"{r['as drawn'][1]} | {r['no text'][0]} | {r['no text'][1]} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "plotly_update.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'plotly_update.md'}")


if __name__ == "__main__":
    main()
