"""Evaluate a trained model with its task's standard metric, and show where it fails.

* :func:`evaluate_detection`: COCO box (and mask) AP through ``pycocotools``
  (:mod:`.detection`).
* :func:`evaluate_keypoints`: COCO keypoint AP, matched by object keypoint similarity
  (:mod:`.detection`).
* :func:`evaluate_segmentation`: mIoU and pixel accuracy from the confusion matrix of the
  whole set; :func:`score_segmenter`: all a segmentation chapter reports about a model
  (:mod:`.segmentation`).
* :func:`inference_ms`: milliseconds per image of a forward pass (:mod:`.timing`).
* :class:`ResultsTable`: rows of results, shown as an HTML table (:mod:`.tables`).

Each returns an :class:`Evaluation` (:mod:`.common`): the summary ``metrics``, one score
per image, and the predictions. A single number hides *how* a model fails, so
:meth:`Evaluation.gallery` picks the best images, the worst, and typical failures (images
that fail, near the middle of the failing ones: what goes wrong most of the time, not
the freak cases); ``vizlib.viz.gallery.plot_gallery`` draws them.
"""

from .common import Evaluation, Gallery, prediction_gallery
from .detection import (
    COCO_KEYPOINT_SUMMARY_NAMES,
    evaluate_detection,
    evaluate_keypoints,
    targets_to_coco,
)
from .segmentation import evaluate_segmentation, score_segmenter
from .tables import ResultsTable
from .timing import inference_ms

__all__ = [
    "COCO_KEYPOINT_SUMMARY_NAMES",
    "Evaluation",
    "Gallery",
    "ResultsTable",
    "evaluate_detection",
    "evaluate_keypoints",
    "evaluate_segmentation",
    "inference_ms",
    "prediction_gallery",
    "score_segmenter",
    "targets_to_coco",
]
