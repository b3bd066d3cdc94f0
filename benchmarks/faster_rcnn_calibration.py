"""Calibration: vizlib's Faster R-CNN (with and without the FPN) beside torchvision's, at the
budget a chapter can afford on a CPU.

Every model trains on ``DetectionScenes(4000, seed=1)`` in batches of 16 for ``--steps``
optimiser steps (AdamW, lr 2e-3, weight decay 1e-4, 5% linear warm-up then cosine,
gradients clipped at norm 10, seed 0), through ``vizlib.train.fit``, and is evaluated on
``DetectionScenes(300, seed=2)`` with ``vizlib.evaluate.evaluate_detection`` (COCO mAP,
AP50, AP of small objects, per-class AP50 from ``evaluate.coco.per_class_ap``). One process,
one thread. Run by hand:

    OMP_NUM_THREADS=1 python benchmarks/faster_rcnn_calibration.py [--steps 1000]
        [--models fpn,single,torchvision]

It prints first the seconds per step of each model measured in turn on the same batches
(``--timing-steps``, 0 to skip; ``--no-train`` for the timing alone), then, per model, the
parameters, the training time, the final losses and the metrics.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torchvision

import vizlib
from vizlib.boxes import box_iou
from vizlib.data import DETECTION_CLASSES, DetectionScenes, collate_detection
from vizlib.evaluate import evaluate_detection
from vizlib.evaluate.coco import per_class_ap
from vizlib.nn.blocks import count_parameters
from vizlib.nn.faster_rcnn import LOSS_NAMES, FasterRCNN
from vizlib.nn.torchvision_detection import torchvision_faster_rcnn
from vizlib.train import fit

NUM_CLASSES = len(DETECTION_CLASSES) - 1
BUILDERS = {
    "fpn": ("vizlib FasterRCNN, FPN (strides 4, 8, 16)", lambda: FasterRCNN(NUM_CLASSES, 64)),
    "single": (
        "vizlib FasterRCNN, no FPN (stride 16)",
        lambda: FasterRCNN(NUM_CLASSES, 64, use_fpn=False),
    ),
    "torchvision": (
        "torchvision FasterRCNN, same backbone and settings",
        lambda: torchvision_faster_rcnn(NUM_CLASSES + 1, 64),
    ),
}


# object sizes (square root of the box area, pixels) for the recall by size
SIZE_BINS = ((0.0, 12.0), (12.0, 20.0), (20.0, 1e9))


def recall_by_size(evaluation, val_set, score_threshold: float = 0.3) -> dict[str, float]:
    """Share of the objects of each size found by a detection of their class with IoU >= 0.5
    and score >= ``score_threshold`` (COCO's APs is every object here: all are < 32 px)."""
    found = {b: [0, 0] for b in SIZE_BINS}
    for i, pred in enumerate(evaluation.predictions):
        target = val_set[i][1]
        gt = target["boxes"].as_subclass(torch.Tensor)
        keep = pred["scores"] >= score_threshold
        boxes, labels = pred["boxes"][keep], pred["labels"][keep]
        iou = box_iou(gt, boxes)  # [M, D]
        same = target["labels"][:, None] == labels[None, :]
        hit = ((iou >= 0.5) & same).any(dim=1)  # [M]
        size = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])).sqrt()
        for lo, hi in SIZE_BINS:
            rows = (size >= lo) & (size < hi)
            found[(lo, hi)][0] += int(hit[rows].sum())
            found[(lo, hi)][1] += int(rows.sum())
    names = ["< 12 px", "12-20 px", ">= 20 px"]
    return {f"{n} ({t})": h / max(t, 1) for n, (h, t) in zip(names, found.values(), strict=True)}


def calibrate(
    key: str, steps: int, train_set, val_set, seed: int = 0, checkpoints: str | None = None
) -> None:
    name, build = BUILDERS[key]
    vizlib.seed_everything(seed)
    model = build()
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_size=16,
        shuffle=True,
        drop_last=True,
        collate_fn=collate_detection,
        generator=torch.Generator().manual_seed(seed),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    history = fit(
        model,
        loader,
        optimizer,
        steps=steps,
        warmup_steps=0.05,
        clip_grad_norm=10.0,
        seed=seed,
        device="cpu",
        progress="off",
        checkpoint_dir=None if checkpoints is None else f"{checkpoints}/{key}",
    )
    evaluation = evaluate_detection(model, val_set, batch_size=16, device="cpu")
    m = evaluation.metrics
    ap50 = per_class_ap(evaluation, iou=0.5)
    last = {k: sum(history[k][-50:]) / len(history[k][-50:]) for k in LOSS_NAMES}
    print(f"--- {name} [{key}]")
    print(f"parameters {count_parameters(model):,}; {steps} steps in {history.seconds:.0f} s:")
    print(f"  {history.seconds / steps:.3f} s/step (batch 16, 1 thread)")
    print(
        "  losses (mean of the last 50 steps): "
        + ", ".join(f"{k} {v:.4f}" for k, v in last.items())
    )
    print(
        f"  mAP@[.5:.95] {m['bbox/AP']:.3f}  AP50 {m['bbox/AP50']:.3f}  AP75 {m['bbox/AP75']:.3f}"
        f"  AR100 {m.get('bbox/AR100', float('nan')):.3f}"
    )
    by_size = recall_by_size(evaluation, val_set)
    print(
        "  recall (IoU 0.5, score 0.3) by object size: "
        + ", ".join(f"{k} {v:.3f}" for k, v in by_size.items())
    )
    print("  AP50 per class: " + ", ".join(f"{c} {v:.3f}" for c, v in ap50.items()))
    print(f"  lowest class AP50: {min(ap50.values()):.3f}", flush=True)


def time_steps(keys, train_set, steps: int, rounds: int = 3) -> None:
    """Median seconds per training step of each model on the same batches, the models taking
    turns (so that a shared machine's load falls on all of them alike)."""
    batches = [collate_detection([train_set[16 * b + i] for i in range(16)]) for b in range(steps)]
    models = {}
    for k in keys:
        vizlib.seed_everything(0)
        models[k] = BUILDERS[k][1]()
        models[k].train()
    times = {k: [] for k in keys}
    for _ in range(rounds):
        for k, model in models.items():
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            for images, targets in batches:
                start = time.perf_counter()
                losses = model(images, targets)
                optimizer.zero_grad()
                sum(losses.values()).backward()
                optimizer.step()
                times[k].append(time.perf_counter() - start)
    print(f"--- seconds per step (batch 16, median of {rounds} x {steps}, models in turn)")
    for k, ts in times.items():
        print(f"  {BUILDERS[k][0]} [{k}]: {statistics.median(ts):.3f} s/step", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--models", default="fpn,single,torchvision")
    parser.add_argument(
        "--timing-steps", type=int, default=10, help="steps per model and round of the timing"
    )
    parser.add_argument("--no-train", action="store_true", help="only the timing")
    parser.add_argument(
        "--checkpoints", default=None, help="folder for fit's checkpoints: a re-run resumes"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    for k in keys:
        if k not in BUILDERS:
            raise SystemExit(f"unknown model {k!r}; choose from {', '.join(BUILDERS)}")
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"{platform.machine()}, threads={torch.get_num_threads()}, steps={args.steps}",
        flush=True,
    )
    train_set = DetectionScenes(4000, seed=1)
    val_set = DetectionScenes(300, seed=2)
    if args.timing_steps:
        time_steps(keys, train_set, args.timing_steps)
    if not args.no_train:
        for k in keys:
            calibrate(k, args.steps, train_set, val_set, checkpoints=args.checkpoints)


if __name__ == "__main__":
    main()
