"""The localisation chapter's scores (vizlib.evaluate.localisation): class accuracy, IoU and
the ILSVRC rule; PCK against vizlib.metrics.pck, normalised by the box."""

from __future__ import annotations

import math

import pytest
import torch

from vizlib.data.localisation import TensorSamples
from vizlib.evaluate.localisation import keypoint_scores, localisation_scores
from vizlib.metrics import pck


class _Oracle(torch.nn.Module):
    """Answers from a table of the true labels and boxes (image i is filled with i)."""

    def __init__(self, labels, boxes, num_classes=6):
        super().__init__()
        self.labels, self.boxes, self.num_classes = labels, boxes, num_classes
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def predict(self, images):
        idx = images[:, 0, 0, 0].long()
        return {
            "labels": self.labels[idx],
            "scores": torch.ones(len(idx)),
            "boxes": self.boxes[idx],
        }


def test_localisation_scores_count_class_iou_and_the_ilsvrc_rule():
    images = torch.arange(4.0)[:, None, None, None].expand(4, 3, 8, 8).clone()
    boxes = torch.tensor([[0.0, 0, 4, 4]] * 4)
    data = TensorSamples(images, label=torch.tensor([1, 2, 3, 4]), box=boxes)
    predicted = torch.tensor([[0.0, 0, 4, 4], [0.0, 0, 4, 2], [0.0, 0, 4, 4], [4.0, 4, 8, 8]])
    oracle = _Oracle(torch.tensor([1, 2, 5, 4]), predicted).train()
    scores = localisation_scores(oracle, data, batch_size=3)
    assert scores["accuracy"] == 0.75
    assert math.isclose(scores["mean_iou"], (1 + 0.5 + 1 + 0) / 4)
    # right class and IoU >= 0.5: images 0 and 1 (IoU exactly 0.5 counts)
    assert scores["correct"] == 0.5
    assert scores["iou"].shape == (4,) and scores["boxes"].shape == (4, 4)
    assert oracle.training, "the model's mode is kept"
    with pytest.raises(ValueError, match="data"):
        localisation_scores(oracle, TensorSamples(images, keypoints=torch.zeros(4, 2, 3)))


class _KeypointOracle(torch.nn.Module):
    def __init__(self, points):
        super().__init__()
        self.points = points
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def predict(self, images):
        return self.points[images[:, 0, 0, 0].long()]


def test_keypoint_scores_agree_with_vizlib_pck_and_normalise_by_the_box():
    images = torch.arange(3.0)[:, None, None, None].expand(3, 3, 8, 8).clone()
    truth = torch.tensor(
        [[[10.0, 10, 2], [20, 10, 2]], [[30.0, 30, 2], [40, 30, 0]], [[5.0, 5, 2], [6, 6, 2]]]
    )
    boxes = torch.tensor([[0.0, 0, 20, 10], [20, 20, 40, 40], [0, 0, 10, 10]])  # sizes 20, 20, 10
    pred = truth[..., :2].clone()
    pred[0, 0, 0] += 5.0  # 0.25 of 20: wrong at 0.2, right at 0.3
    pred[1, 1] = torch.tensor([0.0, 0.0])  # unlabelled: not scored
    pred[2, 1, 1] += 2.0  # 0.2 of 10: exactly at the threshold, right
    data = TensorSamples(images, keypoints=truth, box=boxes)
    model = _KeypointOracle(pred)
    scores = keypoint_scores(model, data, threshold=0.2)
    assert math.isclose(scores["pck"], 4 / 5)
    assert math.isclose(scores["pck"], pck(pred, truth, 0.2, torch.tensor([20.0, 20, 10])).mean)
    assert torch.allclose(scores["image_pck"], torch.tensor([0.5, 1.0, 1.0]))
    assert math.isclose(float(scores["distance"][0, 0]), 0.25)
    assert keypoint_scores(model, data, threshold=0.3)["pck"] == 1.0
    with pytest.raises(ValueError, match="threshold"):
        keypoint_scores(model, data, threshold=2.0)
