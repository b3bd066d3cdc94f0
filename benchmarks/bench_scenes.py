"""Benchmark: how many scenes per second the generator makes on one CPU core.

Run by hand (not a test):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scenes.py             # writes the report
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scenes.py --quick --no-write

For each image size (64, 128, 256 px) it times:

* ``make_scene``: the numpy generator alone (image + every annotation);
* ``dataset[i]``, no cache, no augmentation: generator + conversion to tv_tensors +
  the target tidying of ``finish_sample``;
* ``dataset[i]``, no cache, with ``train_transforms`` (flip, scale jitter, colour jitter);
* ``dataset[i]`` from the in-memory cache (second epoch), with ``train_transforms``.

Rates are images per CPU-second of this process (``time.process_time``), which stays
honest when other programs share the machine; wall-clock rates are printed too. Torch
is limited to one thread. The question it answers: does generation starve a GPU?
A small detector on an H100 trains on a few thousand 64 px images per second, and a
DataLoader with ``num_workers`` workers multiplies the one-core rate by about that many.
Writes benchmarks/results/scenes.md unless --no-write.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from vizlib.data import DetectionScenes, SceneConfig, make_scene, train_transforms  # noqa: E402


def rate(fn, count: int) -> tuple[float, float]:
    """(images per CPU second, images per wall second) of calling fn(i) for i < count."""
    fn(0)  # warm up (imports, caches)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(1, count + 1):
        fn(i)
    return count / (time.process_time() - cpu), count / (time.perf_counter() - wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images (a smoke run)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    for size in (64, 128, 256):
        count = {64: 1500, 128: 600, 256: 200}[size] // (10 if args.quick else 1)
        config = SceneConfig(image_size=size)
        plain = DetectionScenes(count + 1, seed=1, config=config, cache=False)
        augmented = DetectionScenes(
            count + 1, seed=1, config=config, cache=False, transforms=train_transforms(size)
        )
        cached = DetectionScenes(
            count + 1, seed=1, config=config, cache=True, transforms=train_transforms(size)
        )
        for i in range(count + 1):
            cached.scene(i)  # first epoch fills the cache
        cases = [
            ("make_scene (numpy generator)", lambda i, c=config: make_scene(1, i, c)),
            ("dataset[i], no cache, no augmentation", plain.__getitem__),
            ("dataset[i], no cache, train_transforms", augmented.__getitem__),
            ("dataset[i], memory cache, train_transforms", cached.__getitem__),
        ]
        for name, fn in cases:
            cpu_rate, wall_rate = rate(fn, count)
            rows.append((size, name, count, cpu_rate, wall_rate))
            print(
                f"{size:4d} px  {name:45s} {cpu_rate:8.0f} img/CPU-s  ({wall_rate:7.0f} img/wall-s, n={count})"
            )

    if args.no_write:
        return
    lines = [
        "# Scene generation speed (`benchmarks/bench_scenes.py`)",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs "
        f"(shared with other jobs: the CPU-second rate is the one to read), Python {platform.python_version()}",
        f"- torch {torch.__version__}, one thread (`OMP_NUM_THREADS=1`, `torch.set_num_threads(1)`)",
        "- rate = images per CPU-second of the benchmark process (`time.process_time`); "
        "wall-clock rate in brackets",
        "",
        "| size | what | images | img / CPU-s | (img / wall-s) |",
        "|---:|---|---:|---:|---:|",
    ]
    lines += [f"| {s} | {name} | {n} | {c:.0f} | ({w:.0f}) |" for s, name, n, c, w in rows]
    lines += [
        "",
        "Reading: one core generates several hundred 64 px scenes a second (with every",
        "annotation); `DetectionScenes` keeps generated scenes in memory by default, so",
        "from the second epoch on only the augmentation and the tensor conversion cost.",
        "A GPU run uses a `DataLoader` with workers (each worker adds about one core's",
        "rate); for 256 px a disk cache (`cache=<folder>`) lets later runs skip generation.",
        "",
    ]
    out = Path(__file__).resolve().parent / "results" / "scenes.md"
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
