"""Benchmark: slider to painted frame, for every live widget, in a real JupyterLab.

Run by hand (not a test); it takes about two minutes per path on 2 cores:

    .venv/bin/python benchmarks/bench_widgets_browser.py                 # both paths
    .venv/bin/python benchmarks/bench_widgets_browser.py --paths widget --no-write
    .venv/bin/python benchmarks/bench_widgets_browser.py --app notebook  # Notebook 7

(``--app notebook`` needs ``pip install notebook``. Notebook 7 keeps the arrow keys for
its own shortcuts, so there each slider step is a click on the rail where the next value
sits. That also times the pointer events.)

It starts JupyterLab as ``tests/test_jupyterlab.py`` does (``tests/lab_server.py``),
writes a notebook with one cell per widget of ``vizlib.widgets.WIDGETS`` (each shown live,
at its defaults), runs it in headless Chromium and drives every control of every widget:

* **single moves**: each slider is moved one step at a time with the arrow keys (up to
  :data:`MOVES_PER_SLIDER` steps, back where it reaches its end), and each toggle or
  dropdown gets its next value, waiting after each move until the figure has been quiet
  for :data:`QUIET_MS`;
* **a fast drag**: :data:`DRAG_STEPS` arrow-key steps :data:`DRAG_GAP_MS` apart (about
  a drag at 60 Hz) on the widget's longest slider.

Measured in the page: the time of the key press (or click), and every change the browser
makes under the widget's figure (a ``MutationObserver`` on the element that holds it,
which excludes the controls). **Slider to frame** is the time from the key press to
the first animation frame after the figure's first change. That is the first frame that
can show the new figure. The first move of each widget is listed apart (goal: included).
A *burst* is a run of changes with gaps under 30 ms. A second burst after the first
means the figure was drawn twice. For the drag, **lag** is the time from the last key press to
the figure's last change. It should be one update at most, so the figure is never more
than a step behind.

Two paths can be compared in one run (``--paths``): ``widget``, the live figure kept on
the page and changed in place (``vizlib/widgets/_live.py``, issue 18), and ``output``,
the whole figure redrawn in an ``ipywidgets.Output`` each time (the path before it,
``VIZLIB_LIVE_FIGURE=output``). Writes ``benchmarks/results/widgets_browser.md`` and
``.json`` unless ``--no-write``. Goal per widget: median <= 100 ms and worst <= 150 ms,
first move included.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from lab_server import local_only_page, open_and_run_all, running_lab  # noqa: E402

from vizlib.widgets import WIDGETS, all_widget_classes  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
GOAL_MEDIAN_MS, GOAL_WORST_MS = 100.0, 150.0
MOVES_PER_SLIDER = 6
DRAG_STEPS, DRAG_GAP_MS = 20, 16
QUIET_MS = 400  # a figure quiet this long after a move has settled
BURST_GAP_MS = 30

CHROMIUM = os.environ.get("VIZLIB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Installed once per page: key presses and clicks are timed in the capture phase (before
# any widget sees them); each widget's figure holder gets a MutationObserver that records
# the time of every batch of changes and the animation frame that follows it.
PROBE_JS = """() => {
  if (window.__viz) { return; }
  const viz = window.__viz = {inputs: [], regions: {}};
  const stamp = () => viz.inputs.push(performance.now());
  document.addEventListener('keydown', stamp, true);
  document.addEventListener('pointerdown', stamp, true);
  document.addEventListener('change', stamp, true);  // a dropdown's choice
  viz.watch = (key, el) => {
    const log = viz.regions[key] = {changes: [], frames: []};
    new MutationObserver((records) => {
      const t = performance.now();
      log.changes.push([t, records.length]);
      requestAnimationFrame(() => log.frames.push([t, performance.now()]));
    }).observe(el, {attributes: true, childList: true, subtree: true, characterData: true});
  };
}"""


def _notebook(path: Path, names: list[str]) -> None:
    import nbformat

    cells = [nbformat.v4.new_code_cell(f"from vizlib.widgets import {', '.join(names)}")]
    cells += [nbformat.v4.new_code_cell(f"{name}()") for name in names]
    nb = nbformat.v4.new_notebook(cells=cells)
    # without a kernelspec JupyterLab asks for a kernel in a dialog that blocks every click
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    nbformat.write(nb, path)


def _regions(page, names):
    """Wait for every widget's figure; watch each figure holder; return the controls."""
    page.evaluate(PROBE_JS)
    found = {}
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    for k, name in enumerate(names):
        cell = cells.nth(k + 1)
        cell.scroll_into_view_if_needed()
        box = cell.locator(".jp-OutputArea .widget-vbox").first
        box.wait_for(state="attached", timeout=120_000)
        holder = box.locator(":scope > :nth-child(2)")
        holder.locator(".js-plotly-plot").first.wait_for(state="attached", timeout=120_000)
        holder.evaluate(f"(el) => window.__viz.watch({json.dumps(name)}, el)")
        found[name] = box
    return found


def _settle(page, name: str, since: float, timeout_ms: int = 8_000) -> dict:
    """Wait until the figure of ``name`` has been quiet for QUIET_MS after time ``since``
    (page clock); return the changes and frames logged since then."""
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        page.wait_for_timeout(QUIET_MS // 2)
        log = page.evaluate(
            "([n, s]) => { const r = window.__viz.regions[n];"
            " return {now: performance.now(), changes: r.changes.filter(c => c[0] > s),"
            " frames: r.frames.filter(f => f[0] > s)}; }",
            [name, since],
        )
        last = log["changes"][-1][0] if log["changes"] else since
        if log["changes"] and log["now"] - last >= QUIET_MS:
            return log
        if time.monotonic() > deadline:
            return log


def _bursts(changes: list) -> int:
    """How many runs of changes with gaps under BURST_GAP_MS: how often the figure was drawn."""
    times = [t for t, _ in changes]
    return 1 + sum(b - a > BURST_GAP_MS for a, b in zip(times, times[1:], strict=False))


def _measure(page, name: str, act) -> dict | None:
    """Do ``act()`` (one input) and time it: key to frame, bursts, changes."""
    n_inputs = page.evaluate("() => window.__viz.inputs.length")
    act()
    page.wait_for_function(f"() => window.__viz.inputs.length > {n_inputs}", timeout=5_000)
    t_in = page.evaluate(f"() => window.__viz.inputs[{n_inputs}]")
    log = _settle(page, name, t_in)
    if not log["changes"]:
        return None  # nothing changed (a value the figure does not depend on)
    first = log["changes"][0][0]
    frame = next(f for t, f in log["frames"] if t == first) if log["frames"] else first
    return {
        "to_frame_ms": round(frame - t_in, 1),
        "settled_ms": round(log["changes"][-1][0] - t_in, 1),
        "bursts": _bursts(log["changes"]),
        "changes": sum(c[1] for c in log["changes"]),
    }


def _slider_state(handle) -> tuple[int, int, int]:
    now, lo, hi = (
        handle.get_attribute(a) for a in ("aria-valuenow", "aria-valuemin", "aria-valuemax")
    )
    return int(float(now)), int(float(lo)), int(float(hi))


def _click_step(page, slider, handle, to: int, lo: int, hi: int):
    """Click the slider's rail where value ``to`` sits (Notebook 7 keeps the arrow keys
    for itself: a focused handle does not move)."""
    rail = slider.locator(".noUi-base").first.bounding_box()
    h = handle.bounding_box()
    page.mouse.click(rail["x"] + rail["width"] * (to - lo) / (hi - lo), h["y"] + h["height"] / 2)


def _drive(page, name: str, box, moves_per_slider: int, app: str = "lab") -> dict:
    singles, drag = [], None
    sliders = box.locator(".widget-slider")
    longest, longest_n = None, 0
    for s in range(sliders.count()):
        handle = sliders.nth(s).locator(".noUi-handle").first
        handle.scroll_into_view_if_needed()
        now, lo, hi = _slider_state(handle)
        if hi - lo > longest_n:
            longest, longest_slider, longest_n = handle, sliders.nth(s), hi - lo
        step = 1 if now < hi else -1
        for _ in range(min(moves_per_slider, hi - lo)):
            now, lo, hi = _slider_state(handle)
            if not lo <= now + step <= hi:
                step = -step
            if app == "lab":
                handle.focus()
                key = "ArrowRight" if step > 0 else "ArrowLeft"
                m = _measure(page, name, lambda key=key: page.keyboard.press(key))
            else:
                args = (page, sliders.nth(s), handle, now + step, lo, hi)
                m = _measure(page, name, lambda args=args: _click_step(*args))
            if m:
                singles.append(dict(m, control=f"slider {s}"))
    for sel in (".widget-toggle-buttons", ".widget-dropdown"):
        groups = box.locator(sel)
        for g in range(groups.count()):
            group = groups.nth(g)
            if sel.endswith("dropdown"):
                select = group.locator("select")
                options = select.locator("option").all_inner_texts()
                current = select.evaluate("(e) => e.selectedIndex")
                target = options[(current + 1) % len(options)]
                m = _measure(page, name, lambda s=select, t=target: s.select_option(label=t))
            else:
                buttons = group.locator("button")
                idx = next(
                    (
                        i
                        for i in range(buttons.count())
                        if "mod-active" not in (buttons.nth(i).get_attribute("class") or "")
                    ),
                    0,
                )
                button = buttons.nth(idx)
                m = _measure(page, name, button.click)
            if m:
                singles.append(dict(m, control=sel.strip(".").replace("widget-", "")))
    if longest is not None:
        page.evaluate("() => { window.__viz.dragKeys = window.__viz.inputs.length; }")
        longest.focus()
        now, lo, hi = _slider_state(longest)
        step = 1 if now < hi else -1
        for _ in range(DRAG_STEPS):  # back and forth between the slider's ends
            if not lo <= now + step <= hi:
                step = -step
            now += step
            if app == "lab":
                page.keyboard.press("ArrowRight" if step > 0 else "ArrowLeft")
            else:
                _click_step(page, longest_slider, longest, now, lo, hi)
            page.wait_for_timeout(DRAG_GAP_MS)
        t_first, t_last = page.evaluate(
            "() => [window.__viz.inputs[window.__viz.dragKeys], window.__viz.inputs[window.__viz.inputs.length - 1]]"
        )
        log = _settle(page, name, t_first, timeout_ms=20_000)
        if log["changes"]:
            drag = {
                "keys": DRAG_STEPS,
                "keys_ms": round(t_last - t_first, 1),
                # <= 0: the figure showed the last value before the last key (a bounce
                # back to a value already drawn, coalesced away)
                "lag_ms": round(max(0.0, log["changes"][-1][0] - t_last), 1),
                "redraws": _bursts(log["changes"]),
            }
    return {"singles": singles, "drag": drag}


def _summary(result: dict) -> dict:
    times = [m["to_frame_ms"] for m in result["singles"]]
    if not times:
        return {}
    return {
        "moves": len(times),
        "first_ms": times[0],
        "median_ms": round(statistics.median(times), 1),
        "worst_ms": max(times),
        "settled_median_ms": round(
            statistics.median(m["settled_ms"] for m in result["singles"]), 1
        ),
        "second_burst": sum(m["bursts"] > 1 for m in result["singles"]),
        "changes_median": int(statistics.median(m["changes"] for m in result["singles"])),
        "drag": result["drag"],
        "goal": times
        and statistics.median(times) <= GOAL_MEDIAN_MS
        and max(times) <= GOAL_WORST_MS,
    }


def run_path(path: str, names: list[str], moves: int, app: str = "lab") -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        work = tmp / "notebooks"
        work.mkdir()
        _notebook(work / "widgets.ipynb", names)
        env = {"VIZLIB_LIVE_FIGURE": path}
        results = {}
        with running_lab(tmp, work, env, app) as (base, token), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            errors, foreign = [], []
            page = local_only_page(browser, base, errors, foreign)
            open_and_run_all(page, base, token, "widgets.ipynb", app)
            boxes = _regions(page, names)
            page.wait_for_timeout(2_000)  # let the last figures finish their first draw
            for name in names:
                boxes[name].scroll_into_view_if_needed()
                results[name] = _drive(page, name, boxes[name], moves, app)
                s = _summary(results[name])
                print(
                    f"  [{path}] {name:22s} first {s.get('first_ms')} median {s.get('median_ms')} "
                    f"worst {s.get('worst_ms')} ms; drag {s.get('drag')}",
                    flush=True,
                )
            browser.close()
        if errors:
            print(f"  page errors: {errors[:3]}")
        return {name: {"summary": _summary(r), "moves": r} for name, r in results.items()}


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return float("nan")


def write(results: dict, meta: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stem = "widgets_browser" if meta["app"] == "lab" else f"widgets_browser_{meta['app']}"
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    lines = [
        "# Live widgets in "
        + {"lab": "JupyterLab", "notebook": "Jupyter Notebook 7"}[meta["app"]]
        + ": slider to painted frame",
        "",
        f"Measured {meta['date']} on {meta['machine']} ({meta['python']}, plotly {meta['plotly']}, "
        f"JupyterLab {meta['jupyterlab']}"
        + (f", Notebook {meta['notebook']}" if meta.get("notebook") else "")
        + ", Chromium headless), by `benchmarks/bench_widgets_browser.py`. "
        f"Machine load (1-min average) at the start: {meta['load']:.1f}.",
        "",
        "**Slider to frame**: from the key press (or click) to the first animation frame after the "
        "figure's first change, over single moves of every control of the widget (sliders one step "
        f"at a time, up to {MOVES_PER_SLIDER} steps each; toggles and dropdowns their next value). "
        "*First* is the widget's first move. *2nd burst*: moves after which the figure changed again "
        f"more than {BURST_GAP_MS} ms after its first change (drawn twice). *Drag*: {DRAG_STEPS} "
        + ("arrow-key steps" if meta["app"] == "lab" else "clicks on the rail, a step apart,")
        + f" {DRAG_GAP_MS} ms apart on the longest slider; *lag* is the last key to "
        f"the figure's last change, *redraws* how many times the figure changed. "
        f"Goal: median <= {GOAL_MEDIAN_MS:.0f} ms and worst <= {GOAL_WORST_MS:.0f} ms, first move included.",
        "",
    ]
    for path, res in results.items():
        title = {
            "widget": "In place (vizlib's live figure, `vizlib/widgets/_live.py`)",
            "output": "Whole figure in an `Output` (before issue 18; `VIZLIB_LIVE_FIGURE=output`)",
        }[path]
        lines += [
            f"## {title}",
            "",
            "| widget | moves | first ms | median ms | worst ms | settled median ms | 2nd burst | DOM changes (median) | drag lag ms | drag redraws | goal |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, r in res.items():
            s = r["summary"]
            d = s.get("drag") or {}
            lines.append(
                f"| {name} | {s.get('moves')} | {s.get('first_ms')} | {s.get('median_ms')} | "
                f"{s.get('worst_ms')} | {s.get('settled_median_ms')} | {s.get('second_burst')} | "
                f"{s.get('changes_median')} | {d.get('lag_ms', '-')} | {d.get('redraws', '-')} | "
                f"{'met' if s.get('goal') else 'missed'} |"
            )
        lines.append("")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))
    return RESULTS / f"{stem}.md"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--paths", nargs="+", default=["widget", "output"], choices=["widget", "output"]
    )
    ap.add_argument("--widgets", nargs="+", default=None, help="class names (default: all)")
    ap.add_argument("--moves", type=int, default=MOVES_PER_SLIDER)
    ap.add_argument(
        "--app",
        default="lab",
        choices=["lab", "notebook"],
        help="JupyterLab, or Jupyter Notebook 7 (pip install notebook first)",
    )
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    names = args.widgets or [n for n in WIDGETS if n in all_widget_classes()]
    import jupyterlab
    import plotly

    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores ({platform.system()})",
        "python": f"Python {platform.python_version()}",
        "plotly": plotly.__version__,
        "jupyterlab": jupyterlab.__version__,
        "load": _load(),
        "app": args.app,
    }
    if args.app == "notebook":
        import notebook

        meta["notebook"] = notebook.__version__
    results = {}
    for path in args.paths:
        t0 = time.monotonic()
        results[path] = run_path(path, names, args.moves, args.app)
        print(f"[{path}] {time.monotonic() - t0:.0f} s")
    if not args.no_write:
        print(f"wrote {write(results, meta)}")


if __name__ == "__main__":
    main()
