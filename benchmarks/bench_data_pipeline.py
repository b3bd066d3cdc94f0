"""Benchmark: does the data pipeline keep up with the model? (issue 17, item 3)

Run by hand (not a test):

    .venv/bin/python benchmarks/bench_data_pipeline.py              # writes the report
    .venv/bin/python benchmarks/bench_data_pipeline.py --quick --no-write

For the FCN chapter's model (``vizlib.nn.FCN(num_classes, "8s")``, built in one line by
``masters/lessons/fcn.ipynb``) on its data (``segmentation_data("scenes")``: 2,000
training scenes of 64 px), at its batch size (16), loss (cross-entropy, ignore 255) and
optimiser (AdamW, lr 3e-3, weight decay 1e-4), it measures images per second of:

(a) the loader alone (``vizlib.data.train_loader`` with 0, 1, 2 and "auto" workers,
    batches moved to the device): its first epoch generates the scenes, the second
    serves them from the in-memory cache (worker start-up is counted in the first);
(b) the training step alone (forward, loss, backward, AdamW step) on synthetic tensors
    already on the device;
(c) the two together: the same steps on the loader's batches, in the first epoch
    (scenes generated as the steps need them) and in a cached epoch (every scene
    generated beforehand, as from the second epoch on),

and the ratio (c) / (b) against the goal of 70%. Torch's CPU threads are set
explicitly (``--threads``; default: what ``vizlib.start_lesson`` picks on a CPU, half
the cores, 1 to 4). Rates are wall-clock: the loader's workers are other processes.
Writes benchmarks/results/data_pipeline.md unless --no-write.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import vizlib  # noqa: E402
import vizlib.nn as vnn  # noqa: E402
from vizlib.data import collate_segmentation, segmentation_data, train_loader  # noqa: E402

GOAL = 0.70
RESULTS = Path(__file__).resolve().parent / "results" / "data_pipeline.md"


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def to_device(batch, device: torch.device):
    return [t.to(device, non_blocking=device.type == "cuda") for t in batch]


def fresh_data(args):
    """The chapter's training set with an empty scene cache."""
    return segmentation_data("scenes", image_size=args.size, train_images=args.images, seed=0)


def loader_alone(args, device, workers) -> tuple[int, float, float]:
    """(num_workers, images/s of the first epoch, images/s of the second) of the loader alone."""
    data = fresh_data(args)
    loader = train_loader(
        data.train, args.batch, collate_fn=collate_segmentation, workers=workers, device=device
    )
    rates = []
    for _ in range(2):
        start, count = time.perf_counter(), 0
        for batch in loader:
            images, _ = to_device(batch, device)
            count += len(images)
        sync(device)
        rates.append(count / (time.perf_counter() - start))
    n = loader.num_workers
    del loader  # stops its persistent workers
    return n, rates[0], rates[1]


def _workers(workers, device, data) -> int:
    probe = train_loader(data.train, 1, workers=workers, device=device)
    return probe.num_workers


def make_step(num_classes: int, device: torch.device, lr: float = 3e-3):
    """A training step of a fresh FCN-8s (seeded): step(images, masks) -> None."""
    vizlib.seed_everything(0)
    model = vnn.FCN(num_classes, "8s").to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = partial(F.cross_entropy, ignore_index=255)

    def step(images, masks):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), masks).backward()
        optimizer.step()

    return step


def synthetic(args, device, num_classes) -> float:
    """Images/s of the training step alone, on tensors already on the device."""
    step = make_step(num_classes, device)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=gen).to(device)
    masks = torch.randint(0, num_classes, (args.batch, args.size, args.size), generator=gen).to(
        device
    )
    for _ in range(args.warmup):
        step(images, masks)
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step(images, masks)
    sync(device)
    return args.steps * args.batch / (time.perf_counter() - start)


def together(args, device, num_classes, workers, cached: bool) -> float:
    """Images/s of the training step fed by the loader (after ``args.warmup`` steps)."""
    data = fresh_data(args)
    if cached:  # as in the second epoch: every scene already generated (workers fork with it)
        for i in range(len(data.train)):
            data.train.scene(i)
    loader = train_loader(
        data.train, args.batch, collate_fn=collate_segmentation, workers=workers, device=device
    )
    step = make_step(num_classes, device)
    batches = iter(loader)
    for _ in range(args.warmup):  # includes starting the workers
        step(*to_device(next(batches), device))
    sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step(*to_device(next(batches), device))
    sync(device)
    rate = args.steps * args.batch / (time.perf_counter() - start)
    del batches, loader
    return rate


def section(args, device, num_classes, threads: int) -> list[str]:
    """Measure (a), (b), (c) with ``threads`` torch threads; print them; the report's lines."""
    torch.set_num_threads(threads)
    print(f"--- torch.set_num_threads({threads})")
    load_before = os.getloadavg()
    worker_counts = [0, 1, 2, "auto"]
    rows_a = []
    for workers in worker_counts:
        n, first, second = loader_alone(args, device, workers)
        label = f"{workers} (= {n})" if workers == "auto" else str(workers)
        rows_a.append((label, first, second))
        print(
            f"(a) loader alone, workers {label}: {first:.0f} img/s generating, {second:.0f} cached"
        )

    rate_b1 = synthetic(args, device, num_classes)
    print(f"(b) forward/backward/step on synthetic tensors: {rate_b1:.1f} img/s")
    rows_c = []
    for workers in worker_counts:
        n = _workers(workers, device, fresh_data(args))
        label = f"{workers} (= {n})" if workers == "auto" else str(workers)
        if workers == "auto" and n in worker_counts:  # the same loader as a row above
            label = f"{workers} (= {n}: that row's run)"
            rows_c.append((label, *next(r[1:] for r in rows_c if r[0] == str(n))))
        else:
            first = together(args, device, num_classes, workers, cached=False)
            cached = together(args, device, num_classes, workers, cached=True)
            rows_c.append((label, first, cached))
        print(
            f"(c) loader + step, workers {label}: {rows_c[-1][1]:.1f} img/s first epoch, "
            f"{rows_c[-1][2]:.1f} cached"
        )
    rate_b2 = synthetic(args, device, num_classes)  # again: how much the machine drifted
    rate_b = (rate_b1 + rate_b2) / 2
    print(f"(b) again: {rate_b2:.1f} img/s; mean {rate_b:.1f}")
    for label, first, cached in rows_c:
        print(
            f"    workers {label}: (c)/(b) = {first / rate_b:.0%} first epoch, {cached / rate_b:.0%} cached"
        )
    load_after = os.getloadavg()
    load = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    print(f"load average before {load(load_before)}, after {load(load_after)}")
    return [
        f"### torch.set_num_threads({threads}) in the main process",
        "",
        f"Load average (1, 5, 15 min) before: {load(load_before)}; after: {load(load_after)}.",
        "",
        "(a) The loader alone (`vizlib.data.train_loader`, `collate_segmentation`)",
        "",
        "| workers | img/s, first epoch (generating) | img/s, second epoch (cache) |",
        "|---|---:|---:|",
        *[f"| {label} | {first:.0f} | {second:.0f} |" for label, first, second in rows_a],
        "",
        f"(b) Forward + loss + backward + AdamW step on synthetic tensors: **{rate_b:.1f} img/s** "
        f"(mean of {rate_b1:.1f} before (c) and {rate_b2:.1f} after)",
        "",
        f"(c) The two together; goal: (c) / (b) >= {GOAL:.0%}",
        "",
        "| workers | img/s, first epoch | (c) / (b) | img/s, cached epoch | (c) / (b) |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {label} | {first:.1f} | {first / rate_b:.0%} | {cached:.1f} | {cached / rate_b:.0%} |"
            for label, first, cached in rows_c
        ],
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lesson_threads = max(1, min(4, cores() // 2))
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[lesson_threads],
        help=f"torch threads, one section each (default: {lesson_threads}, as a lesson)",
    )
    parser.add_argument("--device", default=None, help="default: vizlib.device()")
    parser.add_argument("--images", type=int, default=2000, help="training scenes (the chapter's)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="timed steps in (b) and (c)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 256 images, 3 steps")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if args.quick:
        args.images, args.steps, args.warmup = 256, 3, 1
    device = torch.device(args.device) if args.device else vizlib.device()
    num_classes = fresh_data(args).num_classes
    settings = [
        f"date: {datetime.date.today().isoformat()}",
        f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs ({cores()} available to "
        f"this process), {platform.python_implementation()} {platform.python_version()}",
        f"device: {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        f"torch {torch.__version__}; main process: torch.set_num_threads as in each section's "
        "title; workers: 1 thread each (torch's default in a DataLoader worker)",
        f"model: FCN-8s ({vnn.count_parameters(vnn.FCN(num_classes, '8s')):,} parameters), "
        f"{num_classes} classes; data: {args.images} scenes of {args.size} px, batch {args.batch}; "
        f"(b), (c): {args.steps} timed steps after {args.warmup} untimed",
    ]
    for line in settings:
        print(line)
    lines = ["# Data pipeline against the model (`benchmarks/bench_data_pipeline.py`)", ""]
    lines += [f"- {line}" for line in settings]
    lines += [
        "- rates are wall-clock images per second; (a) moves each batch to the device too",
        "",
    ]
    for threads in args.threads:
        lines += section(args, device, num_classes, threads)
    if args.no_write:
        return
    lines += ["## Reading", "", ""]
    # keep the reading written by hand after an earlier run
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    reading = old.split("## Reading", 1)[1].strip() if "## Reading" in old else "(to write by hand)"
    RESULTS.write_text("\n".join(lines) + reading + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
