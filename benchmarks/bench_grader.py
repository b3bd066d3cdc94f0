"""Benchmark: grade a class of 30 notebooks with ``python -m vizlib.exercises.grade``.

Run by hand (not a test):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_grader.py            # 30 notebooks
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_grader.py --students 10 --no-write

The class is the page "Your first exercises" (book/exercises.ipynb) as 30 students hand it
in: 18 right, 6 with an IoU that returns NaN for zero-area boxes, 4 untouched student
versions, 1 with a syntax error, 1 whose function raises. No submission loops forever:
the figure is the grader's throughput (an infinite loop costs one worker slot its
``--check-timeout`` plus its ``--timeout``, whatever the rest of the class does).

It runs the grader's command line exactly as an instructor would (each notebook's two
exercises in their own confined processes, and the whole notebook in a fresh kernel),
and samples the memory of the whole process tree every 0.25 s: the peak of the summed
PSS (proportional set size: pages shared by forked processes counted once, split among
them) is the memory the grading really takes; the largest single process's peak RSS is
reported too. Prints the figures and writes benchmarks/results/grader.json unless
--no-write.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parents[1]
MASTER = REPO / "masters" / "book" / "exercises.ipynb"

NAN_IOU = """# EXERCISE iou
import torch


def iou(boxes1, boxes2):
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    a1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    a2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    return inter / (a1[:, None] + a2[None, :] - inter)
"""


def make_class(folder: Path, students: int) -> None:
    from vizlib.exercises.notebooks import find_exercise_cells, student_version

    master = nbformat.read(str(MASTER), as_version=4)
    cells = find_exercise_cells(master)
    kinds = ["right"] * 18 + ["nan_iou"] * 6 + ["stub"] * 4 + ["syntax"] + ["raises"]
    for i in range(students):
        kind = kinds[i % len(kinds)]
        nb = student_version(master) if kind == "stub" else copy.deepcopy(master)
        if kind == "nan_iou":
            nb.cells[cells["iou"]].source = NAN_IOU
        elif kind == "syntax":
            nb.cells[
                cells["box_area"]
            ].source = "# EXERCISE box_area\ndef box_area(boxes)\n    pass\n"
        elif kind == "raises":
            nb.cells[
                cells["box_area"]
            ].source = "# EXERCISE box_area\ndef box_area(boxes):\n    return boxes[:, 9]\n"
        nbformat.write(nb, str(folder / f"student{i:02d}_{kind}.ipynb"))


def tree_memory(root: psutil.Process) -> tuple[float, float, int]:
    """(summed PSS MB, summed RSS MB, processes) of ``root`` and its descendants."""
    pss = rss = 0.0
    procs = [root]
    try:
        procs += root.children(recursive=True)
    except psutil.Error:
        pass
    for p in procs:
        try:
            info = p.memory_full_info()
        except psutil.Error:
            continue
        pss += getattr(info, "pss", info.rss) / 2**20
        rss += info.rss / 2**20
    return pss, rss, len(procs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument(
        "--jobs", type=int, default=None, help="passed to the grader (default: its own, = cores)"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-grader-") as tmp:
        subs, out = Path(tmp) / "submissions", Path(tmp) / "grades"
        subs.mkdir()
        make_class(subs, args.students)
        cmd = [
            sys.executable,
            "-m",
            "vizlib.exercises.grade",
            str(subs),
            "--assignment",
            str(MASTER),
            "--out",
            str(out),
        ] + (["--jobs", str(args.jobs)] if args.jobs else [])
        env = dict(os.environ, OMP_NUM_THREADS="1")
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=REPO
        )
        root = psutil.Process(proc.pid)
        peak_pss = peak_rss = 0.0
        peak_procs = 0
        while proc.poll() is None:
            pss, rss, n = tree_memory(root)
            peak_pss, peak_rss, peak_procs = (
                max(peak_pss, pss),
                max(peak_rss, rss),
                max(peak_procs, n),
            )
            time.sleep(0.25)
        wall = time.perf_counter() - start
        stdout = proc.stdout.read().decode()
        import resource

        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"the grader failed ({proc.returncode}):\n{stdout}")
        rows = (out / "grades.csv").read_text().splitlines()[1:]
    result = {
        "date": datetime.date.today().isoformat(),
        "students": args.students,
        "graded": len(rows),
        "wall_s": round(wall, 1),
        "s_per_notebook": round(wall / args.students, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_tree_pss_mb": round(peak_pss),
        "peak_tree_rss_mb": round(peak_rss),
        "largest_process_rss_mb": round(usage.ru_maxrss / 1024),
        "peak_processes": peak_procs,
        "jobs": args.jobs or len(os.sched_getaffinity(0)),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}",
        "load_average_before": round(load_before, 1),
    }
    print(stdout.split("\n\n")[0][-3000:])
    print(json.dumps(result, indent=2))
    if not args.no_write:
        (REPO / "benchmarks" / "results" / "grader.json").write_text(
            json.dumps(result, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
