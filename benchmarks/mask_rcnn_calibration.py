"""Calibration: the Mask R-CNN chapter's model at a budget of ``--steps``, before its full run.

The model is the chapter's ``make_model()`` (vizlib's ``MaskRCNN`` on the Faster R-CNN
chapter's FPN model, canonical size 64, mask head 4 x 64, keypoint head 4 x ``--keypoint-width``,
20 detections per image). It trains on ``DetectionScenes(4000, seed=1)`` in batches of 16
(``vizlib.data.train_loader``, seed 0) with the chapter's recipe (AdamW, lr 2e-3, weight
decay 1e-4, 5% warm-up then cosine, gradients clipped at 10, seed 0) through
``vizlib.train.fit``, and is scored on ``DetectionScenes(300, seed=2)`` as the chapter scores
it (score >= 0.3): box and mask AP (COCO), keypoint AP (OKS). Run by hand:

    OMP_NUM_THREADS=2 python benchmarks/mask_rcnn_calibration.py --steps 1500

Why it exists: the chapter's box target is the Faster R-CNN chapter's recorded ``mAP FPN``
(1,500 steps). This run says where the same budget lands before a full run is spent on it.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torchvision

import vizlib
from vizlib.data import DETECTION_CLASSES, DetectionScenes, collate_detection, train_loader
from vizlib.evaluate import evaluate_detection, evaluate_keypoints
from vizlib.nn.mask_rcnn import MaskRCNN
from vizlib.train import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--keypoint-width", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()

    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, {platform.machine()}, "
        f"threads={torch.get_num_threads()}, steps={args.steps}, keypoint head 4 x {args.keypoint_width}"
    )
    train_set, val_set = DetectionScenes(4000, seed=1), DetectionScenes(300, seed=2)
    vizlib.seed_everything(0)
    model = MaskRCNN(
        len(DETECTION_CLASSES) - 1,
        (64, 64),
        canonical_size=64,
        canonical_level=4,
        mask_head_layers=(64,) * 4,
        mask_dim_reduced=64,
        num_keypoints=6,
        keypoint_head_layers=(args.keypoint_width,) * 4,
        detections_per_img=20,
    )
    loader = train_loader(train_set, 16, collate_fn=collate_detection, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    start = time.perf_counter()
    fit(
        model,
        loader,
        optimizer,
        steps=args.steps,
        warmup_steps=0.05,
        clip_grad_norm=10.0,
        seed=0,
        progress=False,
    )
    seconds = time.perf_counter() - start
    print(f"{args.steps} steps in {seconds:.0f} s ({seconds / args.steps:.3f} s/step, batch 16)")
    boxes_masks = evaluate_detection(
        model,
        val_set,
        iou_types=("bbox", "segm"),
        class_names=DETECTION_CLASSES,
        score_threshold=0.3,
    ).metrics
    keypoints = evaluate_keypoints(
        model, val_set, class_names=DETECTION_CLASSES, score_threshold=0.3, with_boxes=False
    ).metrics
    for key in ("bbox/AP", "bbox/AP50", "bbox/AP75", "segm/AP", "segm/AP50", "segm/AP75"):
        print(f"{key:>10}: {boxes_masks[key]:.4f}")
    for key in ("keypoints/AP", "keypoints/AP50"):
        print(f"{key:>10}: {keypoints[key]:.4f}")


if __name__ == "__main__":
    main()
