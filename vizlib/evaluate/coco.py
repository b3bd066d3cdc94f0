"""COCO evaluation, the one entry point every chapter calls: :func:`evaluate_coco`.

It takes COCO ground truth (``vizlib.data.to_coco`` for the generated scenes,
``vizlib.data.targets_to_coco`` for any dataset) and COCO results
(``vizlib.data.to_coco_results``), and returns the summary numbers of pycocotools'
``COCOeval.summarize()``: 12 for boxes and masks, 10 for keypoints.

Behind it, the fastest engine that gives pycocotools' numbers:

* ``"bbox"``: vizlib's own :func:`vizlib.metrics.coco_evaluate`, equal to pycocotools on
  all 12 numbers (``tests/test_evaluate_coco.py``, ``tests/test_metrics_coco.py``) and
  several times faster (``benchmarks/bench_coco_eval.py``, results in
  ``benchmarks/results/coco_eval.md``);
* ``"segm"`` and ``"keypoints"``: ``pycocotools`` itself (vizlib's engine matches boxes
  only: mask IoU on run-length encodings and OKS matching are not ported).

An empty result list is evaluated as it is (pycocotools' ``loadRes`` cannot read one):
AP and AR are 0 wherever there is ground truth, and -1 where an area range holds none,
as pycocotools writes for a set without detections.
"""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np

__all__ = ["COCO_IOU_TYPES", "evaluate_coco"]

#: What :func:`evaluate_coco` matches by: box IoU, mask IoU, or keypoint similarity (OKS).
COCO_IOU_TYPES = ("bbox", "segm", "keypoints")


def evaluate_coco(ground_truth: dict, results: list[dict], iou_type: str = "bbox", verbose: bool = False,
                  oks_sigmas=None) -> np.ndarray:
    """COCO AP and AR: the summary numbers of pycocotools' ``COCOeval``.

    ``stats[0]`` is AP averaged over IoU (or OKS) 0.50:0.95, ``stats[1]`` AP at 0.50,
    ``stats[2]`` AP at 0.75, then AP by object size and the recalls (the order of
    ``vizlib.metrics.COCO_SUMMARY_NAMES``; keypoints: ``COCO_KEYPOINT_SUMMARY_NAMES``
    of :mod:`vizlib.evaluate.detection`). -1 marks a number with no ground truth to
    measure (e.g. large-object AP on a set of small objects).

    Args:
        ground_truth (dict): a COCO dataset dict (``images``, ``annotations``,
            ``categories``), e.g. from ``vizlib.data.to_coco`` or ``targets_to_coco``.
            Not modified.
        results (list of dict): COCO results (``image_id``, ``category_id``, ``score``,
            ``bbox`` / ``segmentation`` / ``keypoints``), e.g. from
            ``vizlib.data.to_coco_results``. Not modified.
        iou_type (str): ``"bbox"``, ``"segm"`` or ``"keypoints"``.
        verbose (bool): print pycocotools' table of the numbers.
        oks_sigmas (sequence of float, optional): keypoints only: one OKS constant per
            keypoint; default ``vizlib.data.KEYPOINT_OKS_SIGMAS`` (the scenes').

    Returns:
        np.ndarray: 12 floats (``"bbox"``, ``"segm"``) or 10 (``"keypoints"``).
    """
    if iou_type not in COCO_IOU_TYPES:
        raise ValueError(f"iou_type must be one of {COCO_IOU_TYPES}, got {iou_type!r}")
    if not isinstance(ground_truth, dict) or not {"images", "annotations", "categories"} <= set(ground_truth):
        raise ValueError("ground_truth must be a COCO dataset dict with 'images', 'annotations' and "
                         "'categories' (vizlib.data.to_coco or targets_to_coco)")
    if not isinstance(results, (list, tuple)):
        raise ValueError(f"results must be a list of COCO result dicts, got {type(results).__name__}")
    if oks_sigmas is not None and iou_type != "keypoints":
        raise ValueError("oks_sigmas is for iou_type='keypoints' only")
    if iou_type == "bbox":
        from ..metrics import coco_evaluate

        evaluation = coco_evaluate(ground_truth, list(results))
        if verbose:
            print(evaluation)
        return np.asarray(evaluation.stats, dtype=np.float64)
    return _pycocotools_stats(ground_truth, list(results), iou_type, verbose, oks_sigmas)


def _pycocotools_stats(ground_truth: dict, results: list[dict], iou_type: str, verbose: bool,
                       oks_sigmas) -> np.ndarray:
    """``COCOeval(gt, dt, iou_type)``: evaluate, accumulate, summarize; its ``stats``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:
        gt = COCO()
        gt.dataset = copy.deepcopy(ground_truth)  # pycocotools edits what it is given
        gt.createIndex()
        if results:
            dt = gt.loadRes(copy.deepcopy(results))
        else:  # loadRes cannot read an empty list: an empty result set, evaluated as such
            dt = COCO()
            dt.dataset = {"images": copy.deepcopy(ground_truth["images"]), "annotations": [],
                          "categories": copy.deepcopy(ground_truth["categories"])}
            dt.createIndex()
        ev = COCOeval(gt, dt, iou_type)
        if iou_type == "keypoints":
            if oks_sigmas is None:
                from ..data.scenes import KEYPOINT_OKS_SIGMAS

                oks_sigmas = KEYPOINT_OKS_SIGMAS
            ev.params.kpt_oks_sigmas = np.asarray(oks_sigmas, dtype=float)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats, dtype=np.float64)
