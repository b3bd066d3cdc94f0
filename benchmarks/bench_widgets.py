"""Benchmark: every widget's live update time and static figure size.

Run by hand (not a test):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_widgets.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_widgets.py --widgets NMSWidget --no-write

Every widget listed in ``vizlib.widgets.WIDGETS`` is measured (new widgets are picked up
by adding their line there):

* **live update**: the widget's ipywidgets box is built (``live()``) and each control is
  moved through its values, one ``.value`` assignment at a time, as a reader would drag a
  slider; each assignment recomputes ``figure(**state)`` (core maths + figure
  construction). Outside a kernel nothing is drawn, so this is the Python time of one
  update, the part the widget controls (plotly.js's redraw in the browser comes on top).
  The first figure of a process is timed separately (imports, lazy initialisation in
  torch); the median and the worst of the rest are reported. Goal: <= 50 ms.
* **static figure**: ``static_html(include_plotlyjs=False)``, the ``<div>`` the book
  embeds (plotly.js itself is loaded once per page): its size, frames, and the time to
  precompute it. Goal: <= 1 MB.

Wall-clock and CPU time (``time.process_time``: robust to other programs sharing the
machine) are both recorded. Writes benchmarks/results/widgets.md and widgets.json unless
``--no-write``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vizlib  # noqa: E402
from vizlib.widgets import all_widget_classes  # noqa: E402

GOAL_MS = 50.0
GOAL_BYTES = 1_000_000
RESULTS = Path(__file__).resolve().parent / "results"


def time_live(cls, rounds: int) -> dict:
    """Time one live update per control change (see the module docstring)."""
    w = cls()
    t0, c0 = time.perf_counter(), time.process_time()
    box = w.live()  # builds the controls and draws the default state once
    first_wall, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    walls, cpus = [], []
    for _ in range(rounds):
        for c in cls.controls:
            ctrl = box.controls[c.name]
            default = ctrl.value
            for v in [*c.values, default]:
                if v == ctrl.value:
                    continue
                before = box.last_figure
                t0, c0 = time.perf_counter(), time.process_time()
                ctrl.value = v  # -> observe -> figure(**state)
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
                assert box.last_figure is not before, f"{cls.__name__}.{c.name} did not redraw"
    return {
        "first_ms": round(1000 * first_wall, 1),
        "first_cpu_ms": round(1000 * first_cpu, 1),
        "updates": len(walls),
        "median_ms": round(1000 * statistics.median(walls), 1),
        "max_ms": round(1000 * max(walls), 1),
        "median_cpu_ms": round(1000 * statistics.median(cpus), 1),
        "max_cpu_ms": round(1000 * max(cpus), 1),
    }


def time_static(cls) -> dict:
    w = cls()
    t0, c0 = time.perf_counter(), time.process_time()
    html = w.static_html(include_plotlyjs=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "states": len(w.static_states()),
        "html_bytes": len(html.encode("utf-8")),
        "build_s": round(wall, 2),
        "build_cpu_s": round(cpu, 2),
    }


def markdown(rows: dict, meta: dict) -> str:
    lines = [
        "# Widgets: live update time and static figure size",
        "",
        f"Measured {meta['date']} on {meta['machine']} (Python {meta['python']}, torch {meta['torch']}, "
        f"plotly {meta['plotly']}), `OMP_NUM_THREADS={meta['omp']}`, by `benchmarks/bench_widgets.py`. "
        f"Machine load (1-min average) at the start: {meta['load']}.",
        "",
        "**Live update**: Python time of one control change (core maths + figure), median and worst "
        f"over all values of all controls, {meta['rounds']} round(s); the first figure of the process "
        f"is listed apart. Goal <= {GOAL_MS:.0f} ms. **Static figure**: the HTML `<div>` the book "
        f"embeds (plotly.js loaded once per page, not counted). Goal <= {GOAL_BYTES / 1e6:.0f} MB.",
        "",
        "| widget | updates | median ms (CPU) | worst ms (CPU) | first figure ms | states | static KB | "
        "precompute s | goals |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in rows.items():
        live, st = r["live"], r["static"]
        ok_live = live["median_cpu_ms"] <= GOAL_MS
        ok_size = st["html_bytes"] <= GOAL_BYTES
        goals = (
            ("live ok" if ok_live else "live SLOW")
            + ", "
            + ("size ok" if ok_size else "size TOO BIG")
        )
        lines.append(
            f"| {name} | {live['updates']} | {live['median_ms']} ({live['median_cpu_ms']}) | "
            f"{live['max_ms']} ({live['max_cpu_ms']}) | {live['first_ms']} | {st['states']} | "
            f"{st['html_bytes'] / 1024:.0f} | {st['build_s']} | {goals} |"
        )
    lines += [
        "",
        "Wall-clock times include waiting for the CPU when other programs run; the CPU times are "
        "this process's own. The goal is checked on the median CPU time. A worst case far above "
        "the median is a one-time cost on the first use of a code path in the process: for "
        "UpsamplingWidget it is torch's own first `F.max_unpool2d` call (about 0.6 s of lazy "
        "initialisation, measured alone; the widget checks its output against it).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widgets", nargs="*", help="class names (default: all)")
    parser.add_argument("--rounds", type=int, default=2, help="passes over every control's values")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    os.environ.pop("VIZLIB_BOOK", None)
    classes = all_widget_classes()
    if args.widgets:
        unknown = set(args.widgets) - set(classes)
        if unknown:
            parser.error(f"unknown widgets {sorted(unknown)}; known: {sorted(classes)}")
        classes = {k: v for k, v in classes.items() if k in args.widgets}

    import plotly
    import torch

    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores ({platform.system()})",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "plotly": plotly.__version__,
        "vizlib": vizlib.__version__,
        "omp": os.environ.get("OMP_NUM_THREADS", "unset"),
        "load": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else "n/a",
        "rounds": args.rounds,
    }
    rows = {}
    for name, cls in classes.items():
        live = time_live(cls, args.rounds)
        static = time_static(cls)
        rows[name] = {"live": live, "static": static}
        print(
            f"{name:22s} live median {live['median_ms']:6.1f} ms (cpu {live['median_cpu_ms']:6.1f}), "
            f"worst {live['max_ms']:6.1f} ms, first {live['first_ms']:7.1f} ms | static "
            f"{static['html_bytes'] / 1024:7.0f} KB, {static['states']} states, {static['build_s']} s",
            flush=True,
        )
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "widgets.json").write_text(
            json.dumps({"meta": meta, "widgets": rows}, indent=2) + "\n"
        )
        (RESULTS / "widgets.md").write_text(markdown(rows, meta))
        print(f"wrote {RESULTS / 'widgets.md'} and widgets.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
