"""Benchmark: the book's COCO entry point, vizlib.evaluate.coco.evaluate_coco, against
pycocotools COCOeval (iouType='bbox').

Every chapter evaluates through ``evaluate_coco``; for boxes it runs vizlib's own engine
(``vizlib.metrics.coco_evaluate``), so this times what a chapter pays.

Run by hand (not a test):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_coco_eval.py            # 5,000 images
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_coco_eval.py --images 500 --no-write

A synthetic data set shaped like a COCO validation run: 5,000 images, 20 categories, about
7 objects per image of all three sizes (a few crowds), and a detector's output of about
40 scored boxes per image (jittered copies of the objects, duplicates, background false
positives, some tied scores). Both evaluators get the same COCO-format inputs:

* pycocotools: ``COCO.loadRes`` (parse the results), then ``evaluate``, ``accumulate``,
  ``summarize``;
* vizlib: ``evaluate_coco(gt_dict, results, "bbox")``, the entry point, which does all of
  it (its engine's parsing plays the part of loadRes; the breakdown below times the
  engine's three steps separately).

Prints wall-clock and CPU seconds (CPU time of this process: robust to other programs
sharing the machine), the load average while it ran, the ratios, and whether all 12
summary numbers agree to 1e-6.
faster-coco-eval is timed too when it is installed (it is not a requirement). Writes the
report to benchmarks/results/coco_eval.md unless --no-write.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import io
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vizlib.evaluate.coco import evaluate_coco  # noqa: E402
from vizlib.metrics import COCO_SUMMARY_NAMES  # noqa: E402
from vizlib.metrics import coco as vz_coco  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "coco_eval.md"


def synthetic(seed: int, n_images: int, n_cats: int, gt_per_image: float, fp_per_image: float):
    """COCO-format ground truth (dict) and results (list of dicts)."""
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(n_images)]
    categories = [{"id": c + 1, "name": f"class{c + 1}"} for c in range(n_cats)]
    anns, results = [], []
    for img in images:
        for _ in range(rng.poisson(gt_per_image)):
            side = float(np.exp(rng.uniform(np.log(8), np.log(400))))  # small, medium, large
            w, h = side * rng.uniform(0.6, 1.4), side * rng.uniform(0.6, 1.4)
            x, y = rng.uniform(0, 640 - min(w, 600)), rng.uniform(0, 480 - min(h, 450))
            c = int(rng.integers(1, n_cats + 1))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img["id"],
                    "category_id": c,
                    "bbox": [x, y, w, h],
                    "area": w * h * rng.uniform(0.5, 0.9),  # a mask is smaller than its box
                    "iscrowd": int(rng.random() < 0.01),
                }
            )
            for _ in range(rng.poisson(1.3)):  # detections of this object (0: a miss)
                j = rng.normal(0, rng.uniform(0.01, 0.15), 4) * [w, h, w, h]
                label = c if rng.random() > 0.1 else int(rng.integers(1, n_cats + 1))
                score = float(rng.beta(4, 2))
                results.append(
                    {
                        "image_id": img["id"],
                        "category_id": label,
                        "bbox": [x + j[0], y + j[1], max(w + j[2], 1.0), max(h + j[3], 1.0)],
                        "score": round(score, 2) if rng.random() < 0.2 else score,
                    }
                )
        for _ in range(rng.poisson(fp_per_image)):  # background false positives
            side = float(np.exp(rng.uniform(np.log(8), np.log(300))))
            results.append(
                {
                    "image_id": img["id"],
                    "category_id": int(rng.integers(1, n_cats + 1)),
                    "bbox": [
                        rng.uniform(0, 600),
                        rng.uniform(0, 450),
                        side,
                        side * rng.uniform(0.5, 2),
                    ],
                    "score": float(rng.beta(2, 4)),
                }
            )
    return {"images": images, "annotations": anns, "categories": categories}, results


class Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def run_pycocotools(gt: dict, results: list):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, results = copy.deepcopy(gt), copy.deepcopy(results)  # loadRes adds keys in place
    times = {}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        with Timer() as t:
            coco_dt = coco_gt.loadRes(results)
        times["loadRes"] = t
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        for step in ("evaluate", "accumulate", "summarize"):
            with Timer() as t:
                getattr(ev, step)()
            times[step] = t
    return np.array(ev.stats), times


def run_vizlib(gt: dict, results: list):
    times = {}
    with Timer() as t:
        stats = evaluate_coco(gt, results, "bbox")
    times["total"] = t
    # The engine's three steps timed one by one (private functions, for the breakdown only).
    with Timer() as t:
        num_images, category_ids, gts, dts = vz_coco._load_coco_format(gt, results)
    times["parse"] = t
    with Timer() as t:
        matched = vz_coco._match_all(num_images, len(category_ids), gts, dts)
    times["match"] = t
    with Timer() as t:
        vz_coco._summarize(*vz_coco._accumulate(len(category_ids), *matched))
    times["accumulate+summarize"] = t
    return stats, times


def run_faster_coco_eval(gt: dict, results: list):
    try:
        from faster_coco_eval import COCO as FCOCO
        from faster_coco_eval import COCOeval_faster
    except ImportError:
        return None, None
    gt, results = copy.deepcopy(gt), copy.deepcopy(results)
    with contextlib.redirect_stdout(io.StringIO()), Timer() as t:
        coco_gt = FCOCO(gt)
        ev = COCOeval_faster(coco_gt, coco_gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.array(ev.stats[:12]), t


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--categories", type=int, default=20)
    parser.add_argument("--gt-per-image", type=float, default=7.0)
    parser.add_argument("--fp-per-image", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-write", action="store_true", help="do not write benchmarks/results/coco_eval.md"
    )
    parser.add_argument(
        "--note", default="", help="a sentence for the report (e.g. what else ran on the machine)"
    )
    args = parser.parse_args()
    load_before = _load()

    gt, results = synthetic(
        args.seed, args.images, args.categories, args.gt_per_image, args.fp_per_image
    )
    ref, ref_t = run_pycocotools(gt, results)
    ours, our_t = run_vizlib(gt, results)
    fast, fast_t = run_faster_coco_eval(gt, results)
    load_after = _load()

    ref_wall = sum(t.wall for t in ref_t.values())
    ref_cpu = sum(t.cpu for t in ref_t.values())
    diff = float(np.abs(ours - ref).max())
    lines = [
        "# COCO box evaluation: the entry point (vizlib.evaluate.coco.evaluate_coco) vs pycocotools",
        "",
        f"`{' '.join(['python', *sys.argv])}` on {datetime.date.today()}",
        "",
        f"Data: {args.images} images, {args.categories} categories, {len(gt['annotations'])} objects "
        f"({sum(a['iscrowd'] for a in gt['annotations'])} crowds), {len(results)} detections (seed {args.seed}).",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
        f"Python {platform.python_version()}, numpy {np.__version__}, pycocotools {_version('pycocotools')}. "
        "Wall time suffers when other programs share the machine; CPU time (this process) does not.",
        f"Load average (1 min) {load_before} before and {load_after} after the run, on {os.cpu_count()} CPUs."
        + (f" {args.note}" if args.note else ""),
        "",
        "| step | pycocotools wall s | pycocotools CPU s |",
        "|---|---:|---:|",
        *(f"| {k} | {t.wall:.2f} | {t.cpu:.2f} |" for k, t in ref_t.items()),
        f"| **total** | **{ref_wall:.2f}** | **{ref_cpu:.2f}** |",
        "",
        "| step | vizlib wall s | vizlib CPU s |",
        "|---|---:|---:|",
        *(f"| {k} | {t.wall:.2f} | {t.cpu:.2f} |" for k, t in our_t.items() if k != "total"),
        f"| **total (`evaluate_coco`, the entry point)** | **{our_t['total'].wall:.2f}** | **{our_t['total'].cpu:.2f}** |",
        "",
        f"Speed-up, vizlib over pycocotools (loadRes + evaluate + accumulate + summarize): "
        f"**{ref_wall / our_t['total'].wall:.1f}x** wall, **{ref_cpu / our_t['total'].cpu:.1f}x** CPU. "
        f"Without loadRes vs parsing: {(ref_wall - ref_t['loadRes'].wall) / (our_t['total'].wall - our_t['parse'].wall):.1f}x wall.",
        "",
        f"All 12 numbers agree to 1e-6: **{'yes' if diff <= 1e-6 else 'NO'}** (max |difference| = {diff:.1e}).",
        "",
        "| | " + " | ".join(COCO_SUMMARY_NAMES) + " |",
        "|---|" + "---:|" * 12,
        "| pycocotools | " + " | ".join(f"{v:.4f}" for v in ref) + " |",
        "| vizlib | " + " | ".join(f"{v:.4f}" for v in ours) + " |",
    ]
    if fast is None:
        lines += ["", "faster-coco-eval: not installed, skipped."]
    else:
        fdiff = float(np.abs(fast - ref).max())
        lines += [
            "",
            f"faster-coco-eval {_version('faster-coco-eval')}: {fast_t.wall:.2f} s wall, {fast_t.cpu:.2f} s CPU "
            f"(vizlib / faster-coco-eval CPU time: {our_t['total'].cpu / fast_t.cpu:.1f}x); "
            f"max |difference| from pycocotools {fdiff:.1e}.",
        ]
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(report)
        print(f"written to {RESULTS}")


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:  # not on every platform
        return "?"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
