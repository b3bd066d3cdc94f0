"""COCO evaluation, the one entry point every chapter calls: :func:`evaluate_coco`.

It takes COCO ground truth (``vizlib.data.to_coco`` for the generated scenes,
``vizlib.data.targets_to_coco`` for any dataset) and COCO results
(``vizlib.data.to_coco_results``), and returns the summary numbers of pycocotools'
``COCOeval.summarize()``: 12 for boxes and masks, 10 for keypoints.
:func:`per_class_ap` gives the AP of each class of a detection evaluation, from the same
engine's precision array (a mean over classes hides the class a detector never learns).

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

from .._checks import check_choice
from ..data.coco_export import COCO_IOU_TYPES

__all__ = ["evaluate_coco", "per_class_ap"]


def evaluate_coco(
    ground_truth: dict,
    results: list[dict],
    iou_type: str = "bbox",
    verbose: bool = False,
    oks_sigmas=None,
) -> np.ndarray:
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
    check_choice("iou_type", iou_type, COCO_IOU_TYPES)
    if not isinstance(ground_truth, dict) or not {"images", "annotations", "categories"} <= set(
        ground_truth
    ):
        raise ValueError(
            "ground_truth must be a COCO dataset dict with 'images', 'annotations' and "
            "'categories' (vizlib.data.to_coco or targets_to_coco)"
        )
    if not isinstance(results, (list, tuple)):
        raise ValueError(
            f"results must be a list of COCO result dicts, got {type(results).__name__}"
        )
    if oks_sigmas is not None and iou_type != "keypoints":
        raise ValueError("oks_sigmas is for iou_type='keypoints' only")
    if iou_type == "bbox":
        from ..metrics import coco_evaluate

        evaluation = coco_evaluate(ground_truth, list(results))
        if verbose:
            print(evaluation)
        return np.asarray(evaluation.stats, dtype=np.float64)
    return _pycocotools_stats(ground_truth, list(results), iou_type, verbose, oks_sigmas)


def _pycocotools_stats(
    ground_truth: dict, results: list[dict], iou_type: str, verbose: bool, oks_sigmas
) -> np.ndarray:
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
            dt.dataset = {
                "images": copy.deepcopy(ground_truth["images"]),
                "annotations": [],
                "categories": copy.deepcopy(ground_truth["categories"]),
            }
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


def per_class_ap(evaluation, iou: float | None = None) -> dict[str, float]:
    """The box AP of each class of a detection evaluation, as pycocotools computes it per category.

    COCO's AP is a mean over the classes; this is the class's own term of that mean: the
    precision array ``[T, R, K, A, M]`` of the evaluation (vizlib's engine, equal to
    pycocotools' ``COCOeval.eval["precision"]``), at area ``"all"`` and 100 detections per
    image, averaged over the 101 recall points (and the IoU thresholds).

    Args:
        evaluation (Evaluation): from :func:`vizlib.evaluate.evaluate_detection` (task
            ``"detection"``): its predictions and the COCO ground truth it was scored on
            (``details["ground_truth"]``).
        iou (float, optional): one of COCO's IoU thresholds 0.50, 0.55, ..., 0.95: the AP
            at that threshold (``0.5``: the class's AP50). ``None``: averaged over all ten
            (the class's AP@[.5:.95]).

    Returns:
        dict[str, float]: ``{class name: AP}`` in category-id order. A class with no
        ground truth in the set has no AP and is left out (pycocotools writes -1).

    Raises:
        ValueError: if ``evaluation`` is not a detection evaluation with its ground truth,
            or ``iou`` is not one of the ten thresholds.
    """
    from ..data.coco_export import to_coco_results
    from ..metrics import COCO_IOU_THRESHOLDS, coco_evaluate

    details = getattr(evaluation, "details", None)
    if (
        getattr(evaluation, "task", None) != "detection"
        or not isinstance(details, dict)
        or "ground_truth" not in details
    ):
        raise ValueError(
            "evaluation must be what vizlib.evaluate.evaluate_detection returns "
            f"(a detection Evaluation with its ground truth), got {type(evaluation).__name__}"
        )
    thresholds = np.asarray(COCO_IOU_THRESHOLDS)
    if iou is None:
        which = slice(None)
    else:
        if (
            isinstance(iou, bool)
            or not isinstance(iou, (int, float))
            or not np.isclose(thresholds, iou, rtol=0, atol=1e-9).any()
        ):
            raise ValueError(
                "iou must be None (the mean over 0.50:0.95) or one of COCO's thresholds "
                f"{[round(float(t), 2) for t in thresholds]}, got {iou!r}"
            )
        which = [int(np.argmin(np.abs(thresholds - iou)))]
    ground_truth = details["ground_truth"]
    image_ids = [image["id"] for image in ground_truth["images"]]  # the order it was scored in
    results = to_coco_results(evaluation.predictions, image_ids, iou_type="bbox")
    engine = coco_evaluate(ground_truth, results)
    names = {c["id"]: c.get("name", str(c["id"])) for c in ground_truth["categories"]}
    precision = engine.precision[which][:, :, :, 0, -1]  # [T', R, K]: area "all", 100 detections
    ap = {}
    for k, category in enumerate(engine.category_ids):
        values = precision[:, :, k]  # [T', R]
        defined = values > -1  # -1: no ground truth of this class (pycocotools' mark)
        if defined.any():
            ap[names[category]] = float(values[defined].mean())
    return ap
