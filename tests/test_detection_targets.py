"""Targets of the two-stage detectors: one check (vizlib._checks.check_detection_targets)
behind R-CNN, Fast R-CNN and Faster R-CNN, each bad input a clear ValueError."""

import pytest
import torch

from vizlib._checks import check_detection_targets
from vizlib.nn.faster_rcnn import FasterRCNN
from vizlib.nn.rcnn import FastRCNN


def _target(boxes, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def test_good_targets_come_back_as_plain_tensors():
    targets = [_target([[1, 2, 10, 12]], [3]), _target([], [])]  # an empty image is a target too
    boxes, labels = check_detection_targets(targets, 2, num_classes=5)
    assert [b.shape for b in boxes] == [(1, 4), (0, 4)]
    assert labels[0].tolist() == [3] and labels[0].dtype == torch.int64 and labels[1].numel() == 0


@pytest.mark.parametrize(
    "targets, message",
    [
        ([_target([[1, 2, 10, 12]], [3])], "list of 2 dicts"),  # one target for two images
        ("boxes", "list of 2 dicts"),
        (
            [{"boxes": torch.zeros(0, 4)}, _target([], [])],
            r"targets\[0\] must be a dict with boxes and labels",
        ),
        (
            [_target([[1, 2, 10, 12]], [0]), _target([], [])],
            r"must be in \[1, 5\] \(0 is background\)",
        ),
        ([_target([[1, 2, 10, 12]], [6]), _target([], [])], r"must be in \[1, 5\]"),
        (
            [_target([[1, 2, 10, 12]], [1, 2]), _target([], [])],
            r"targets\[0\]\['labels'\] must have shape \[1\]",
        ),
        ([_target([[10, 2, 1, 12]], [1]), _target([], [])], r"targets\[0\]\['boxes'\]"),  # x2 < x1
    ],
)
def test_bad_targets_say_what_is_wrong(targets, message):
    with pytest.raises(ValueError, match=message):
        check_detection_targets(targets, 2, num_classes=5)


@pytest.mark.parametrize("model", [FasterRCNN(5, 64), FastRCNN(5)], ids=["FasterRCNN", "FastRCNN"])
def test_the_models_reject_a_label_out_of_range(model):
    model.train()
    images = torch.rand(1, 3, 64, 64)
    bad = [{**_target([[4, 4, 20, 20]], [7]), "proposals": torch.tensor([[4.0, 4, 20, 20]])}]
    with pytest.raises(ValueError, match=r"must be in \[1, 5\]"):
        model(images, bad)
