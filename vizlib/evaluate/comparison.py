"""Every detector of the book side by side, read from the chapters' records.

Each detection chapter trains its detectors in its full run and records what they reached
(:func:`vizlib.records.write_record`): the metrics, the device, and, since the comparison
page was written, every model's detections on the 300 validation scenes (the same scenes,
``DetectionScenes(300, seed=2)``, in every chapter). This module turns them into the
comparison page's table and error breakdown; it trains nothing and types no number:

* :func:`comparison_rows`: one row per detector: COCO mAP, AP50, AP75 and AP by object
  size recomputed from the stored detections (so every detector is scored by the same
  code), speed at batch 1 and 32, parameters and training seconds from its record, and
  the device and date of the run, shown because records may come from different machines;
* :func:`tide_rows`: TIDE's breakdown of each detector's missing AP50 into
  classification, localisation, both, duplicate, background and missed errors
  (Bolya et al. 2020; :func:`vizlib.metrics.tide_errors`).

Object sizes: COCO calls an object small under 32 x 32 pixels and large over 96 x 96, for
photographs of about 640 pixels. Every shape of the 64-pixel scenes is "small" by that
rule, so AP by size is computed with each box scaled by ``size_scale`` (2, as the
Faster R-CNN chapter does): small is under 16 x 16 scene pixels, large over 48 x 48. IoU,
and so every other number, is unchanged by the scaling.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

__all__ = ["BOOK_DETECTORS", "Detector", "comparison_rows", "tide_rows"]


class Detector(NamedTuple):
    """One detector of the book: where its record is and how to describe it."""

    lesson: str  # the chapter's notebook stem, the record's name
    model: str  # the model's name inside that record ("FPN" in "mAP FPN")
    name: str  # the name shown
    stages: str  # "one-stage" or "two-stage"
    priors: str  # what the boxes are predicted from: "grid cells", "anchors", "points", ...


# Sorted as the book teaches them. A detector whose chapter has no record yet has no row.
BOOK_DETECTORS = (
    Detector("yolo", "YOLO", "YOLO (grid)", "one-stage", "grid cells"),
    Detector("ssd", "SSD", "SSD", "one-stage", "anchors"),
    Detector("retinanet", "RetinaNet", "RetinaNet", "one-stage", "anchors"),
    Detector("fcos", "FCOS", "FCOS", "one-stage", "anchor-free (points)"),
    Detector("rcnn", "R-CNN", "R-CNN", "two-stage", "selective search"),
    Detector("rcnn", "Fast R-CNN", "Fast R-CNN", "two-stage", "selective search"),
    Detector("faster_rcnn", "no FPN", "Faster R-CNN", "two-stage", "anchors (RPN)"),
    Detector("faster_rcnn", "FPN", "Faster R-CNN + FPN", "two-stage", "anchors (RPN)"),
    Detector("mask_rcnn", "Mask R-CNN", "Mask R-CNN (boxes)", "two-stage", "anchors (RPN)"),
    Detector("panoptic", "Panoptic FPN", "Panoptic FPN (boxes)", "two-stage", "anchors (RPN)"),
)

NAN = float("nan")


def _check_detectors(detectors) -> tuple[Detector, ...]:
    if isinstance(detectors, Detector):
        detectors = (detectors,)
    if not isinstance(detectors, (list, tuple)) or not detectors:
        raise ValueError(f"detectors must be a non-empty sequence of Detector, got {detectors!r}")
    for i, d in enumerate(detectors):
        if not isinstance(d, Detector):
            raise ValueError(f"detectors[{i}] must be a Detector, got {type(d).__name__}")
    return tuple(detectors)


def _check_scale(size_scale) -> float:
    if isinstance(size_scale, bool) or not isinstance(size_scale, (int, float)):
        raise ValueError(f"size_scale must be a number > 0, got {size_scale!r}")
    if not (math.isfinite(size_scale) and size_scale > 0):
        raise ValueError(f"size_scale must be a finite number > 0, got {size_scale!r}")
    return float(size_scale)


def _records_by_lesson(root: Path) -> dict[str, dict]:
    from ..records import read_records

    return {r["lesson"]: r for r in read_records(root)}


def _metric(record: dict, key: str) -> float:
    value = record.get("metrics", {}).get(key)
    # -1 is COCO's "undefined" (no object of that size), stored so by the chapters
    return NAN if value is None or value == -1 else float(value)


def _scaled(items: list[dict], scale: float) -> list[dict]:
    return [{**d, "boxes": d["boxes"] * scale} for d in items]


def _coco_numbers(targets: list[dict], predictions: list[dict], size_scale: float) -> dict:
    """mAP, AP50, AP75, and AP small / medium / large with the boxes scaled."""
    from ..metrics import coco_evaluate

    # one evaluation: scaling moves every box's area, not any IoU, so only the size
    # ranges change; mAP, AP50 and AP75 are the unscaled ones
    stats = coco_evaluate(_scaled(targets, size_scale), _scaled(predictions, size_scale)).stats
    out = {"mAP": stats[0], "AP50": stats[1], "AP75": stats[2]}
    out |= {"AP small": stats[3], "AP medium": stats[4], "AP large": stats[5]}
    return {k: (NAN if v < 0 else float(v)) for k, v in out.items()}


def _stored(lesson: str, root: Path, cache: dict) -> dict | None:
    from ..records import read_detections

    if lesson not in cache:
        try:
            cache[lesson] = read_detections(lesson, root)
        except ValueError:  # the chapter's record predates stored detections
            cache[lesson] = None
    return cache[lesson]


def _root(root) -> Path:
    from ..records import project_root

    found = Path(root) if root is not None else project_root()
    if found is None:
        raise ValueError("the comparison reads lessons/results/: no book repository was found")
    return found


def comparison_rows(
    root: str | os.PathLike | None = None,
    detectors=BOOK_DETECTORS,
    size_scale: float = 2.0,
) -> list[dict]:
    """One row per detector that has a record (see the module docstring).

    Args:
        root (path, optional): the repository; default :func:`vizlib.records.project_root`.
        detectors (sequence of Detector): which detectors, in order.
        size_scale (float): boxes are scaled by it before COCO's size ranges apply.

    Returns:
        list[dict]: per detector ``detector``, ``stages``, ``priors``, ``mAP``,
        ``AP50``, ``AP75``, ``AP small``, ``AP medium``, ``AP large`` (from the stored
        detections; NaN where the record has none, or no object of that size),
        ``mAP (record)`` (the chapter's own figure, for checking), ``ms/image batch 1``,
        ``ms/image batch 32`` (NaN where the record predates them), ``ms/image
        (chapter)`` (the chapter's own timing, a batch of 16), ``parameters``, ``train
        (s)``, ``device``, ``date``, ``lesson`` and ``scored from`` (``"detections"`` or
        ``"record"``).
    """
    detectors = _check_detectors(detectors)
    size_scale = _check_scale(size_scale)
    root = _root(root)
    records = _records_by_lesson(root)
    cache: dict = {}
    rows = []
    for d in detectors:
        record = records.get(d.lesson)
        if record is None or f"mAP {d.model}" not in record.get("metrics", {}):
            continue
        stored = _stored(d.lesson, root, cache)
        row = {"detector": d.name, "stages": d.stages, "priors": d.priors}
        if stored is not None and d.model in stored["models"]:
            row |= _coco_numbers(stored["targets"], stored["models"][d.model], size_scale)
            row["scored from"] = "detections"
        else:
            row |= {k: _metric(record, f"{k} {d.model}") for k in ("mAP", "AP50", "AP75")}
            row |= {"AP small": NAN, "AP medium": NAN, "AP large": NAN}
            row["scored from"] = "record"
        row["mAP (record)"] = _metric(record, f"mAP {d.model}")
        row["ms/image batch 1"] = _metric(record, f"ms_per_image batch 1 {d.model}")
        row["ms/image batch 32"] = _metric(record, f"ms_per_image batch 32 {d.model}")
        row["ms/image (chapter)"] = _metric(record, f"ms_per_image {d.model}")
        row["parameters"] = _metric(record, f"parameters {d.model}")
        row["train (s)"] = _metric(record, f"train_seconds {d.model}")
        row["device"] = str(record.get("device", "?"))
        row["date"] = str(record.get("date", "?"))[:10]
        row["lesson"] = d.lesson
        rows.append(row)
    return rows


def tide_rows(
    root: str | os.PathLike | None = None,
    detectors=BOOK_DETECTORS,
) -> list[dict]:
    """TIDE's error breakdown of each detector that has stored detections.

    Returns:
        list[dict]: per detector ``detector``, ``AP50`` (TIDE's base) and, for each
        error type (``Cls``, ``Loc``, ``Both``, ``Dupe``, ``Bkg``, ``Miss``, and the
        summaries ``FP`` and ``FN``), ``dAP <type>``, the AP50 gained by fixing only those
        errors, and ``n <type>``, how many there are.
    """
    from ..metrics import tide_errors

    detectors = _check_detectors(detectors)
    root = _root(root)
    cache: dict = {}
    rows = []
    for d in detectors:
        stored = _stored(d.lesson, root, cache)
        if stored is None or d.model not in stored["models"]:
            continue
        breakdown = tide_errors(stored["targets"], stored["models"][d.model])
        row = {"detector": d.name, "AP50": breakdown.ap50}
        row |= {f"dAP {k}": v for k, v in breakdown.delta_ap.items()}
        row |= {f"n {k}": v for k, v in breakdown.counts.items()}
        rows.append(row)
    return rows
