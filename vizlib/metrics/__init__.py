"""Evaluation metrics (layer 1, core maths: numpy/torch only, no plotting).

* :mod:`~vizlib.metrics.detection` - greedy matching of detections to ground truth
  (VOC and COCO rules): :func:`match_detections`.
* :mod:`~vizlib.metrics.average_precision` - :func:`precision_recall_curve`,
  :func:`average_precision` (``'voc07'``, ``'voc'``, ``'coco'``).
* :mod:`~vizlib.metrics.mean_ap` - :func:`mean_average_precision` over classes.
* :mod:`~vizlib.metrics.coco_iou` - COCO's crowd-aware box IoU, :func:`coco_box_iou`.
* :mod:`~vizlib.metrics.coco` - :func:`coco_evaluate`, the 12 COCO numbers, equal to
  pycocotools.
* :mod:`~vizlib.metrics.tide` - TIDE's error breakdown of AP50 (Bolya et al. 2020):
  :func:`tide_errors`.
* :mod:`~vizlib.metrics.segmentation` - :func:`confusion_matrix`, :func:`pixel_accuracy`,
  :func:`per_class_iou`, :func:`mean_iou` and the accumulator :class:`SegmentationMetric`.
* :mod:`~vizlib.metrics.panoptic` - panoptic quality: :func:`panoptic_quality`,
  :class:`PanopticQuality`.
* :mod:`~vizlib.metrics.keypoints` - COCO's :func:`oks` and :func:`pck`.
"""

from vizlib.metrics.average_precision import (
    AP_METHODS,
    COCO_RECALL_THRESHOLDS,
    VOC07_RECALL_THRESHOLDS,
    PrecisionRecall,
    average_precision,
    precision_envelope,
    precision_recall_curve,
)
from vizlib.metrics.coco import (
    COCO_AREA_RANGES,
    COCO_IOU_THRESHOLDS,
    COCO_MAX_DETS,
    COCO_SUMMARY_NAMES,
    NO_GROUND_TRUTH,
    CocoEvaluation,
    coco_evaluate,
)
from vizlib.metrics.coco_iou import coco_box_iou
from vizlib.metrics.detection import MATCH_RULES, NO_MATCH, DetectionMatches, match_detections
from vizlib.metrics.keypoints import COCO_PERSON_SIGMAS, PCKResult, oks, pck
from vizlib.metrics.mean_ap import MeanAP, mean_average_precision
from vizlib.metrics.panoptic import (
    VOID,
    ClassPQ,
    PanopticQuality,
    PanopticResult,
    PQScores,
    SegmentMatches,
    match_segments,
    panoptic_quality,
)
from vizlib.metrics.segmentation import (
    SegmentationMetric,
    SegmentationScores,
    confusion_matrix,
    mean_iou,
    per_class_iou,
    pixel_accuracy,
)
from vizlib.metrics.tide import (
    TIDE_ERROR_TYPES,
    TIDE_SPECIAL_ERRORS,
    TideBreakdown,
    tide_errors,
)

__all__ = [
    # detection
    "NO_MATCH",
    "MATCH_RULES",
    "DetectionMatches",
    "match_detections",
    "AP_METHODS",
    "COCO_RECALL_THRESHOLDS",
    "VOC07_RECALL_THRESHOLDS",
    "PrecisionRecall",
    "precision_recall_curve",
    "precision_envelope",
    "average_precision",
    "MeanAP",
    "mean_average_precision",
    # COCO
    "coco_box_iou",
    "COCO_IOU_THRESHOLDS",
    "COCO_MAX_DETS",
    "COCO_AREA_RANGES",
    "COCO_SUMMARY_NAMES",
    "NO_GROUND_TRUTH",
    "CocoEvaluation",
    "coco_evaluate",
    # TIDE
    "TIDE_ERROR_TYPES",
    "TIDE_SPECIAL_ERRORS",
    "TideBreakdown",
    "tide_errors",
    # segmentation
    "SegmentationMetric",
    "SegmentationScores",
    "confusion_matrix",
    "pixel_accuracy",
    "per_class_iou",
    "mean_iou",
    # panoptic
    "VOID",
    "ClassPQ",
    "PQScores",
    "PanopticResult",
    "PanopticQuality",
    "panoptic_quality",
    "match_segments",
    "SegmentMatches",
    # keypoints
    "COCO_PERSON_SIGMAS",
    "PCKResult",
    "oks",
    "pck",
]
