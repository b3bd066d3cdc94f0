"""COCO's box IoU, which treats "crowd" ground truth differently.

COCO marks a region covering many objects of one class (a crowd of people, a pile of
bananas) with ``iscrowd=1`` instead of drawing every instance (Lin et al., "Microsoft COCO:
Common Objects in Context", ECCV 2014). A detection of *one* person inside the crowd box
must not be punished for covering only a small part of it, so for a crowd box the overlap
is measured against the detection alone:

* regular ground truth: ``IoU = inter / (area(det) + area(gt) - inter)``,
* crowd ground truth:   ``IoU = inter / area(det)``  (how much of the detection is inside).

This module is a line-by-line port of pycocotools' ``bbIou`` (``maskApi.c``), in float64
and in COCO's own ``(x, y, w, h)`` box format, so that thresholds like IoU >= 0.5 fall
exactly where pycocotools puts them. Plain IoU lives in :func:`vizlib.boxes.box_iou`.
"""

from __future__ import annotations

import numpy as np
import torch

from vizlib._checks import as_flags, check_boxes
from vizlib.boxes import box_convert

__all__ = ["coco_box_iou", "coco_iou_xywh"]


def coco_iou_xywh(dt: np.ndarray, gt: np.ndarray, iscrowd: np.ndarray) -> np.ndarray:
    """pycocotools' ``maskUtils.iou`` for boxes, on COCO's own arrays.

    The engine behind :func:`coco_box_iou` (tensors, ``xyxy``) and
    :func:`vizlib.metrics.coco_evaluate` (which keeps COCO's ``xywh`` boxes as they are).
    NumPy in and out: it runs once per image and category inside the COCO loop, so it
    checks shapes only (the boxes' values are checked where they enter the evaluation).

    Args:
        dt (ndarray[D, 4]): float64 detections ``(x, y, w, h)`` (top-left corner + size).
        gt (ndarray[G, 4]): float64 ground truth ``(x, y, w, h)``.
        iscrowd (ndarray[G] bool): crowd flags of ``gt``.

    Returns:
        ndarray[D, G] float64: in [0, 1]; 0 where the boxes do not overlap with positive area.
    """
    if dt.ndim != 2 or gt.ndim != 2 or dt.shape[1] != 4 or gt.shape[1] != 4:
        raise ValueError(
            f"dt and gt must have shape [N, 4] (x, y, w, h), got {dt.shape} and {gt.shape}"
        )
    if iscrowd.shape != (len(gt),) or iscrowd.dtype != bool:
        raise ValueError(
            f"iscrowd must be a bool array [{len(gt)}] (one per gt box), "
            f"got {iscrowd.dtype} {iscrowd.shape}"
        )
    # Written exactly as bbIou computes it (x + w, not a stored x2) so that the floats agree.
    inter_w = np.minimum(
        dt[:, None, 0] + dt[:, None, 2], gt[None, :, 0] + gt[None, :, 2]
    ) - np.maximum(dt[:, None, 0], gt[None, :, 0])  # [D, G]
    inter_h = np.minimum(
        dt[:, None, 1] + dt[:, None, 3], gt[None, :, 1] + gt[None, :, 3]
    ) - np.maximum(dt[:, None, 1], gt[None, :, 1])  # [D, G]
    overlap = (inter_w > 0) & (inter_h > 0)  # [D, G]; touching boxes do not overlap
    inter = np.where(overlap, inter_w * inter_h, 0.0)  # [D, G]
    dt_area = (dt[:, 2] * dt[:, 3])[:, None]  # [D, 1]
    gt_area = (gt[:, 2] * gt[:, 3])[None, :]  # [1, G]
    union = np.where(iscrowd[None, :], dt_area, dt_area + gt_area - inter)  # [D, G]
    # Where boxes overlap, union >= inter > 0; elsewhere the IoU is 0 anyway.
    return np.where(overlap, inter / np.where(overlap, union, 1.0), 0.0)


def coco_box_iou(boxes1, boxes2, iscrowd=None) -> torch.Tensor:
    """IoU of every detection with every ground-truth box, the COCO way (crowd-aware).

    Args:
        boxes1 (Tensor[N, 4]): detections in ``(x1, y1, x2, y2)`` format.
        boxes2 (Tensor[M, 4]): ground truth in ``(x1, y1, x2, y2)`` format.
        iscrowd (Tensor[M], bool, optional): crowd flags of ``boxes2``; for a crowd box the
            denominator is the area of the detection. None means no crowds (plain IoU).

    Returns:
        Tensor[N, M] float64: the overlap of ``boxes1[i]`` with ``boxes2[j]`` at ``[i, j]``,
        in [0, 1]. Computed in float64 in COCO's ``(x, y, w, h)`` format, like pycocotools.
    """
    b1 = check_boxes("boxes1", boxes1).detach().cpu().double()
    b2 = check_boxes("boxes2", boxes2).detach().cpu().double()
    if iscrowd is None:
        crowd = np.zeros(len(b2), dtype=bool)
    else:
        crowd = as_flags("iscrowd", iscrowd, len(b2), "one flag per box of boxes2").numpy()
    dt = box_convert(b1, "xyxy", "xywh").numpy()
    gt = box_convert(b2, "xyxy", "xywh").numpy()
    return torch.from_numpy(coco_iou_xywh(dt, gt, crowd))
