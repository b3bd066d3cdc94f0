"""vizlib.evaluate.coco.per_class_ap: each class's AP of a detection evaluation is
pycocotools' per-category precision (COCOeval.eval["precision"]) averaged as its summary
averages it, and the classes' mean is the evaluation's own AP and AP50."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vizlib.data import DetectionScenes, SceneConfig, to_coco_results
from vizlib.evaluate import Evaluation, evaluate_detection
from vizlib.evaluate.coco import per_class_ap


class Replay(torch.nn.Module):
    """A 'detector' that returns prepared predictions, image after image, in eval mode."""

    def __init__(self, predictions: list[dict]):
        super().__init__()
        self.predictions = predictions
        self.next = 0
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # so that it has a device

    def forward(self, images):
        out = self.predictions[self.next : self.next + len(images)]
        self.next += len(images)
        return out


def noisy_detections(dataset, seed: int) -> list[dict]:
    """Per image: the true boxes moved by a few pixels (a quarter with the wrong label), and
    two random false positives, with random scores: every class gets an AP strictly between 0 and 1."""
    g = torch.Generator().manual_seed(seed)
    preds = []
    for i in range(len(dataset)):
        target = dataset[i][1]
        boxes = target["boxes"].as_subclass(torch.Tensor).float()
        labels = target["labels"].clone()
        boxes = boxes + torch.randn(boxes.shape, generator=g) * 1.0
        wrong = torch.rand(len(labels), generator=g) < 0.25
        labels[wrong] = torch.randint(1, 6, (int(wrong.sum()),), generator=g)
        xy = torch.rand(2, 2, generator=g) * 40
        extra = torch.cat([xy, xy + 8 + torch.rand(2, 2, generator=g) * 16], dim=1)
        preds.append(
            {
                "boxes": torch.cat([boxes, extra]).clamp(0, 64),
                "scores": torch.rand(len(boxes) + 2, generator=g),
                "labels": torch.cat([labels, torch.randint(1, 6, (2,), generator=g)]),
            }
        )
    return preds


def pycocotools_precision(gt: dict, results: list) -> tuple[np.ndarray, list[int]]:
    """pycocotools' accumulated precision [T, R, K, A, M] and its category ids."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "bbox")
        ev.evaluate()
        ev.accumulate()
    return ev.eval["precision"], list(ev.params.catIds)


@pytest.fixture(scope="module")
def evaluation():
    data = DetectionScenes(40, seed=5, config=SceneConfig(image_size=64))
    return evaluate_detection(Replay(noisy_detections(data, seed=3)), data, batch_size=8)


@pytest.mark.parametrize("iou", [None, 0.5, 0.75, 0.95])
def test_per_class_ap_is_pycocotools_per_category_precision(evaluation, iou):
    gt = evaluation.details["ground_truth"]
    results = to_coco_results(evaluation.predictions, [im["id"] for im in gt["images"]])
    precision, cat_ids = pycocotools_precision(gt, results)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    t = slice(None) if iou is None else [int(np.argmin(np.abs(np.linspace(0.5, 0.95, 10) - iou)))]
    expected = {}
    for k, c in enumerate(cat_ids):
        p = precision[t, :, k, 0, -1]  # area "all", 100 detections, as summarize() reads it
        expected[names[c]] = float(np.mean(p[p > -1]))
    got = per_class_ap(evaluation, iou=iou)
    assert list(got) == [names[c] for c in cat_ids]  # category-id order, every class present
    if iou != 0.95:  # the case is not degenerate (at 0.95 a moved box rarely matches)
        assert all(0.0 < v < 1.0 for v in got.values()), got
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name


def test_the_mean_over_classes_is_the_evaluations_ap_and_ap50(evaluation):
    assert np.mean(list(per_class_ap(evaluation).values())) == pytest.approx(
        evaluation.metrics["bbox/AP"], abs=1e-12
    )
    assert np.mean(list(per_class_ap(evaluation, iou=0.5).values())) == pytest.approx(
        evaluation.metrics["bbox/AP50"], abs=1e-12
    )


def test_a_class_without_ground_truth_is_left_out():
    gt = {
        "images": [{"id": 0, "width": 32, "height": 32}],
        "annotations": [
            {
                "id": 1,
                "image_id": 0,
                "category_id": 1,
                "bbox": [2, 2, 10, 10],
                "area": 100,
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "ellipse"}, {"id": 2, "name": "star"}],
    }
    preds = [
        {
            "boxes": torch.tensor([[2.0, 2.0, 12.0, 12.0], [20.0, 20.0, 30.0, 30.0]]),
            "scores": torch.tensor([0.9, 0.8]),
            "labels": torch.tensor([1, 2]),
        }
    ]
    ev = Evaluation("detection", {}, [1.0], "F1", preds, None, {"ground_truth": gt})
    assert per_class_ap(ev, iou=0.5) == {"ellipse": pytest.approx(1.0)}


@pytest.mark.parametrize("iou", [0.4, 0.52, 1.0, True, "0.5"])
def test_iou_must_be_a_coco_threshold(evaluation, iou):
    with pytest.raises(ValueError, match="iou must be"):
        per_class_ap(evaluation, iou=iou)


def test_only_a_detection_evaluation():
    with pytest.raises(ValueError, match="evaluate_detection"):
        per_class_ap({"ground_truth": {}})
    with pytest.raises(ValueError, match="evaluate_detection"):
        per_class_ap(Evaluation("segmentation", {}, [], "IoU", [], None, {}))
