"""Benchmark: how much Python's full garbage collections slow a live widget's moves.

Run by hand (not a test):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_widget_gc.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_widget_gc.py --widgets PanopticPQWidget --no-write

The browser benchmark (``bench_widgets_browser.py``) saw single moves of 280-330 ms in
widgets whose median is 70-90 ms, on different moves from run to run. The kernel's full
("generation 2") collections are the cause: each walks every object the collector tracks
(300,000-400,000 with torch, plotly and the widgets loaded).

For every widget of ``vizlib.widgets.WIDGETS`` this builds the live box and makes a random
walk of moves (one control to another of its values, as a reader does, so the walk reaches
states with several controls off their defaults); each move is timed in Python (figure,
edit message; outside a kernel nothing is sent). Three passes over the same walk:

1. **warm**: fills the widgets' own caches, not reported;
2. **as is**: the collector as Python sets it up;
3. **frozen**: after :func:`vizlib.widgets._live.spare_moves_full_collections`, which a
   live widget calls in a kernel.

Reports median and worst ms and the number of full collections per pass. Every widget
runs in the same process, one after the other, so later widgets see the objects of the
earlier ones, as in a chapter's kernel. Writes ``benchmarks/results/widget_gc.md`` and
``.json`` unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vizlib.widgets import WIDGETS, all_widget_classes  # noqa: E402
from vizlib.widgets._live import spare_moves_full_collections  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def random_walk(cls, moves: int, seed: int = 0) -> list[tuple[str, object]]:
    """``moves`` (control, value) pairs: each a control moved to another of its values."""
    rng = random.Random(seed)
    state = {c.name: c.default for c in cls.controls}
    walk = []
    for _ in range(moves):
        c = rng.choice([c for c in cls.controls if len(c.values) > 1])
        value = rng.choice([v for v in c.values if v != state[c.name]])
        state[c.name] = value
        walk.append((c.name, value))
    return walk


class _FullCollections:
    """Counts generation-2 collections while active (``gc.callbacks``)."""

    def __init__(self):
        self.count = 0

    def __call__(self, phase, info):
        if phase == "start" and info["generation"] == 2:
            self.count += 1


def time_walk(box, walk) -> tuple[list[float], int]:
    counter = _FullCollections()
    gc.callbacks.append(counter)
    times = []
    try:
        for name, value in walk:
            t0 = time.perf_counter()
            box.controls[name].value = value  # -> figure(**state) -> LiveFigure.show
            times.append(1000 * (time.perf_counter() - t0))
    finally:
        gc.callbacks.remove(counter)
    return times, counter.count


def summary(times: list[float], collections: int) -> dict:
    return {
        "moves": len(times),
        "median_ms": round(statistics.median(times), 1),
        "worst_ms": round(max(times), 1),
        "full_collections": collections,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widgets", nargs="*", help="class names (default: all)")
    parser.add_argument("--moves", type=int, default=150, help="moves per pass")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    os.environ.pop("VIZLIB_BOOK", None)
    classes = all_widget_classes()
    names = args.widgets or [n for n in WIDGETS if n in classes]
    unknown = set(names) - set(classes)
    if unknown:
        parser.error(f"unknown widgets {sorted(unknown)}; known: {sorted(classes)}")

    rows = {}
    for name in names:
        cls = classes[name]
        box = cls().live()
        walk = random_walk(cls, args.moves)
        time_walk(box, walk)  # warm
        as_is = summary(*time_walk(box, walk))
        spare_moves_full_collections(in_kernel=True)
        frozen = summary(*time_walk(box, walk))
        gc.unfreeze()  # the next widget starts from the same collector state
        rows[name] = {"as_is": as_is, "frozen": frozen}
        print(
            f"{name:22s} as is: median {as_is['median_ms']:6.1f} worst {as_is['worst_ms']:6.1f} ms, "
            f"{as_is['full_collections']:3d} full collections | frozen: median "
            f"{frozen['median_ms']:6.1f} worst {frozen['worst_ms']:6.1f} ms, "
            f"{frozen['full_collections']:3d}",
            flush=True,
        )

    if not args.no_write:
        meta = {
            "date": datetime.date.today().isoformat(),
            "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "omp": os.environ.get("OMP_NUM_THREADS", "unset"),
            "load": round(os.getloadavg()[0], 1),
            "moves": args.moves,
        }
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "widget_gc.json").write_text(
            json.dumps({"meta": meta, "widgets": rows}, indent=2) + "\n"
        )
        lines = [
            "# Live widgets: full garbage collections and the slowest moves",
            "",
            f"Measured {meta['date']} on {meta['machine']}, Python {meta['python']}, "
            f"`OMP_NUM_THREADS={meta['omp']}`, load {meta['load']}, by `benchmarks/bench_widget_gc.py` "
            f"({meta['moves']} moves of a random walk per pass, Python time of a move: figure and edit "
            'message). "Frozen": after `spare_moves_full_collections()` (`gc.collect(); gc.freeze()`), '
            "which a live widget calls in a kernel after its warm-up.",
            "",
            "| widget | as is: median ms | worst ms | full collections | frozen: median ms | worst ms | "
            "full collections |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in rows.items():
            a, f = r["as_is"], r["frozen"]
            lines.append(
                f"| {name} | {a['median_ms']} | {a['worst_ms']} | {a['full_collections']} | "
                f"{f['median_ms']} | {f['worst_ms']} | {f['full_collections']} |"
            )
        (RESULTS / "widget_gc.md").write_text("\n".join(lines) + "\n")
        print(f"wrote {RESULTS / 'widget_gc.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
