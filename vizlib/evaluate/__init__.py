"""Evaluate a trained model with its task's standard metric, and show where it fails.

This package is the evaluation home: it runs models and returns numbers (drawing them is
``vizlib.viz``'s job). Its entry points:

* :func:`evaluate_coco`: COCO AP and AR of any chapter's results, the one COCO entry point
  (boxes through vizlib's engine, masks and keypoints through ``pycocotools``), and
  :func:`per_class_ap` from the same evaluation (:mod:`.coco`);
* :func:`evaluate_detection`: runs a torchvision-style detector over a data set and scores
  its boxes (and masks) with :func:`evaluate_coco`; :func:`evaluate_keypoints`: keypoint AP,
  matched by object keypoint similarity (:mod:`.detection`);
* :func:`evaluate_segmentation`: mIoU and pixel accuracy from the confusion matrix of the
  whole set; :func:`score_segmenter`: all a segmentation chapter reports about a model
  (:mod:`.segmentation`);
* :func:`localisation_scores` and :func:`keypoint_scores`: the localisation chapter's
  class accuracy, box IoU and PCK (:mod:`.localisation`);
* :func:`inference_ms`: milliseconds per image of a forward pass, and
  :func:`batch_inference_ms` at several batch sizes (:mod:`.timing`);
* :class:`ResultsTable`: rows of results, shown as an HTML table (:mod:`.tables`).

COCO export (ground truth and results as COCO JSON) is data's: ``vizlib.data.to_coco``,
``vizlib.data.targets_to_coco`` and ``vizlib.data.to_coco_results``.

The model-running evaluations return an :class:`Evaluation` (:mod:`.common`): the summary
``metrics``, one score per image, and the predictions. A single number hides *how* a model
fails, so :meth:`Evaluation.gallery` picks the best images, the worst, and typical failures
(images that fail, near the middle of the failing ones: what goes wrong most of the time,
not the freak cases); ``vizlib.viz.gallery.plot_gallery`` draws them.
"""

from .coco import evaluate_coco, per_class_ap
from .common import Evaluation, Gallery, prediction_gallery
from .detection import COCO_KEYPOINT_SUMMARY_NAMES, evaluate_detection, evaluate_keypoints
from .errors import FalsePositive, Miss, class_pr_curves, detection_errors
from .localisation import keypoint_scores, localisation_scores
from .segmentation import evaluate_segmentation, score_segmenter
from .tables import ResultsTable
from .timing import batch_inference_ms, inference_ms

__all__ = [
    "COCO_KEYPOINT_SUMMARY_NAMES",
    "Evaluation",
    "FalsePositive",
    "Gallery",
    "Miss",
    "ResultsTable",
    "class_pr_curves",
    "detection_errors",
    "evaluate_coco",
    "evaluate_detection",
    "evaluate_keypoints",
    "evaluate_segmentation",
    "batch_inference_ms",
    "inference_ms",
    "keypoint_scores",
    "localisation_scores",
    "per_class_ap",
    "prediction_gallery",
    "score_segmenter",
]
