"""Keypoint metrics: COCO's object keypoint similarity (OKS) and PCK.

**OKS** plays for keypoints the role IoU plays for boxes (COCO keypoint challenge, 2017;
Ronchi & Perona, "Benchmarking and Error Diagnosis in Multi-Instance Pose Estimation",
ICCV 2017). For a predicted pose and a ground-truth pose with object area ``s``::

    OKS = mean over visible keypoints i of  exp(-d_i**2 / (2 * s * k_i**2)),   k_i = 2 * sigma_i

where ``d_i`` is the distance between predicted and true keypoint ``i`` and ``sigma_i`` the
per-keypoint spread measured from annotators (eyes are placed more precisely than hips).
Dividing by the area makes the score scale-free. :func:`oks` is pycocotools'
``COCOeval.computeOks``, including its rule for a ground truth with no visible keypoint:
the distance is measured to a box twice the object's box (how far the keypoint falls
outside it), averaged over all keypoints.

**PCK** (percentage of correct keypoints): a keypoint is correct when it lies within
``threshold * normaliser`` of the truth, the normaliser being a per-instance length (head
size for PCKh on MPII, torso or box size otherwise) (Yang & Ramanan, TPAMI 2013;
Andriluka et al., CVPR 2014).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from vizlib._checks import as_float_tensor, as_keypoints, check_boxes, check_fraction
from vizlib.boxes import box_convert

__all__ = ["COCO_PERSON_SIGMAS", "oks", "PCKResult", "pck"]

# The 17 COCO person keypoints' sigmas (nose, eyes, ears, shoulders, elbows, wrists, hips,
# knees, ankles), as in pycocotools Params.setKpParams.
COCO_PERSON_SIGMAS = (
    torch.tensor(
        [
            0.26,
            0.25,
            0.25,
            0.35,
            0.35,
            0.79,
            0.79,
            0.72,
            0.72,
            0.62,
            0.62,
            1.07,
            1.07,
            0.87,
            0.87,
            0.89,
            0.89,
        ],
        dtype=torch.float64,
    )
    / 10.0
)


def oks(pred_keypoints, gt_keypoints, gt_areas, sigmas=None, gt_boxes=None) -> torch.Tensor:
    """Object keypoint similarity of every prediction with every ground truth, as pycocotools.

    Args:
        pred_keypoints (Tensor[N, K, 2 or 3]): predicted ``(x, y[, score])`` in pixels; a
            third column is ignored.
        gt_keypoints (Tensor[M, K, 3]): true ``(x, y, v)``; ``v > 0`` marks a labelled
            keypoint (COCO: 1 occluded, 2 visible).
        gt_areas (Tensor[M]): object areas ``s`` (COCO's segment area), >= 0.
        sigmas (Tensor[K], optional): per-keypoint sigmas; default
            :data:`COCO_PERSON_SIGMAS` (K = 17).
        gt_boxes (Tensor[M, 4], optional): ground-truth boxes ``(x1, y1, x2, y2)``; needed
            only for ground truths without any labelled keypoint.

    Returns:
        Tensor[N, M] float64: OKS in [0, 1].
    """
    dt = as_keypoints("pred_keypoints", pred_keypoints).detach().cpu().double()
    gt = as_keypoints("gt_keypoints", gt_keypoints, (3,)).detach().cpu().double()
    if dt.shape[1] != gt.shape[1]:
        raise ValueError(
            f"pred_keypoints and gt_keypoints must have the same K, got {dt.shape[1]} and {gt.shape[1]}"
        )
    num_kpts = gt.shape[1]
    area = as_float_tensor("gt_areas", gt_areas).detach().cpu().double()
    if area.dim() != 1 or area.numel() != len(gt):
        raise ValueError(f"gt_areas must have shape [M] = [{len(gt)}], got {tuple(area.shape)}")
    if bool((area < 0).any()):
        raise ValueError("gt_areas must be >= 0")
    sig = (
        COCO_PERSON_SIGMAS
        if sigmas is None
        else as_float_tensor("sigmas", sigmas).detach().cpu().double()
    )
    if sig.dim() != 1 or sig.numel() != num_kpts:
        raise ValueError(f"sigmas must have shape [K] = [{num_kpts}], got {tuple(sig.shape)}")
    if bool((sig <= 0).any()):
        raise ValueError("sigmas must be > 0")
    visible = gt[..., 2] > 0  # [M, K]
    any_visible = visible.any(dim=1)  # [M]
    if not bool(any_visible.all()):
        if gt_boxes is None:
            raise ValueError(
                "gt_boxes is needed: some ground truths have no labelled keypoint, and COCO then "
                "measures the distance to twice their box"
            )
    if gt_boxes is not None:
        boxes = check_boxes("gt_boxes", gt_boxes).detach().cpu().double()
        if len(boxes) != len(gt):
            raise ValueError(
                f"gt_boxes must have shape [M, 4] = [{len(gt)}, 4], got {tuple(boxes.shape)}"
            )

    variances = (2 * sig) ** 2  # [K]
    dx = dt[:, None, :, 0] - gt[None, :, :, 0]  # [N, M, K]
    dy = dt[:, None, :, 1] - gt[None, :, :, 1]  # [N, M, K]
    if not bool(any_visible.all()):
        # No labelled keypoint: distance from each predicted keypoint to the box
        # [x - w, x + 2w] x [y - h, y + 2h] (0 inside), as computeOks does.
        x, y, w, h = box_convert(boxes, "xyxy", "xywh").unbind(dim=1)  # [M] each
        x0, x1, y0, y1 = x - w, x + w * 2, y - h, y + h * 2  # [M] each
        px, py = dt[:, None, :, 0], dt[:, None, :, 1]  # [N, 1, K]
        x0, x1 = x0[None, :, None], x1[None, :, None]  # [1, M, 1]
        y0, y1 = y0[None, :, None], y1[None, :, None]  # [1, M, 1]
        out_x = (x0 - px).clamp(min=0) + (px - x1).clamp(min=0)  # [N, M, K]
        out_y = (y0 - py).clamp(min=0) + (py - y1).clamp(min=0)  # [N, M, K]
        none = ~any_visible[None, :, None]  # [1, M, 1]
        dx = torch.where(none, out_x, dx)
        dy = torch.where(none, out_y, dy)
    # e = d^2 / (2 s k^2), written in computeOks' order so the floats agree.
    e = (dx**2 + dy**2) / variances / (area[None, :, None] + np.spacing(1)) / 2  # [N, M, K]
    similarity = torch.exp(-e)  # [N, M, K]
    # Average over labelled keypoints; over all K for a ground truth with none labelled.
    counted = torch.where(any_visible[:, None], visible, torch.ones_like(visible))  # [M, K]
    return (similarity * counted).sum(dim=2) / counted.sum(dim=1)  # [N, M]


class PCKResult(NamedTuple):
    """Result of :func:`pck`."""

    per_keypoint: torch.Tensor  # [K] float64: fraction correct per keypoint, NaN if never labelled
    mean: float  # fraction correct over all labelled keypoints pooled (NaN if none)


def pck(pred_keypoints, gt_keypoints, threshold: float, normaliser) -> PCKResult:
    """Percentage of correct keypoints: within ``threshold * normaliser`` of the truth.

    Only labelled keypoints (``v > 0``) are scored. The mean pools all labelled keypoints
    (weighting each keypoint type by how often it is labelled, as the MPII PCKh code does).

    Args:
        pred_keypoints (Tensor[N, K, 2 or 3]): predicted ``(x, y[, score])``.
        gt_keypoints (Tensor[N, K, 3]): true ``(x, y, v)`` of the same N instances.
        threshold (float): fraction of the normaliser, in [0, 1] (0.5 for PCKh@0.5, 0.2
            for PCK@0.2).
        normaliser (Tensor[N] or float): per-instance length in pixels (head size, torso
            size, max(box width, height)), > 0.

    Returns:
        PCKResult: ``per_keypoint`` (Tensor[K] float64) and ``mean`` (float), in [0, 1].
    """
    dt = as_keypoints("pred_keypoints", pred_keypoints).detach().cpu().double()
    gt = as_keypoints("gt_keypoints", gt_keypoints, (3,)).detach().cpu().double()
    if dt.shape[:2] != gt.shape[:2]:
        raise ValueError(
            f"pred_keypoints and gt_keypoints must both be [N, K, ...] with the same N and K, "
            f"got {tuple(dt.shape)} and {tuple(gt.shape)}"
        )
    thr = check_fraction("threshold", threshold)
    if isinstance(normaliser, (int, float)) and not isinstance(normaliser, bool):
        norm = torch.full((len(gt),), float(normaliser), dtype=torch.float64)
    else:
        norm = as_float_tensor("normaliser", normaliser).detach().cpu().double()
    if norm.dim() != 1 or norm.numel() != len(gt):
        raise ValueError(
            f"normaliser must be a number or have shape [N] = [{len(gt)}], got {tuple(norm.shape)}"
        )
    if bool((norm <= 0).any()):
        raise ValueError("normaliser must be > 0")
    labelled = gt[..., 2] > 0  # [N, K]
    distance = torch.linalg.vector_norm(dt[..., :2] - gt[..., :2], dim=-1)  # [N, K]
    correct = (distance <= thr * norm[:, None]) & labelled  # [N, K]
    count = labelled.sum(dim=0)  # [K]
    per_keypoint = torch.where(
        count > 0,
        correct.sum(dim=0) / count.clamp(min=1),
        torch.full((gt.shape[1],), float("nan"), dtype=torch.float64),
    )
    total = int(labelled.sum())
    return PCKResult(per_keypoint.double(), float(correct.sum()) / total if total else float("nan"))
