"""Semantic segmentation metrics: hand example, accumulation over batches, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vizlib.metrics import (
    SegmentationMetric,
    confusion_matrix,
    mean_iou,
    per_class_iou,
    pixel_accuracy,
)


def test_hand_example():
    target = torch.tensor([[0, 0, 1], [1, 2, 255]])
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])  # the last pixel is ignored
    cm = confusion_matrix(pred, target, num_classes=4)
    expected = torch.zeros(4, 4, dtype=torch.int64)
    expected[0, 0], expected[0, 1], expected[1, 1], expected[2, 2] = 1, 1, 2, 1
    assert torch.equal(cm, expected)
    assert pixel_accuracy(cm) == pytest.approx(4 / 5)
    iou = per_class_iou(cm)
    # class 0: 1 / (2 true + 1 predicted - 1); class 1: 2 / (2 + 3 - 2); class 2: 1;
    # class 3 appears nowhere: NaN, left out of the mean.
    assert iou[:3].tolist() == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert math.isnan(iou[3])
    assert mean_iou(cm) == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)

    metric = SegmentationMetric(4)
    metric.update(pred, target)
    scores = metric.compute()
    assert scores.miou == pytest.approx(mean_iou(cm)) and torch.equal(scores.confusion_matrix, cm)
    metric.reset()
    assert math.isnan(metric.compute().pixel_accuracy)


def test_a_class_predicted_but_absent_from_truth_counts_as_zero():
    cm = confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 0]), 2)
    assert per_class_iou(cm).tolist() == [0.5, 0.0]
    assert mean_iou(cm) == pytest.approx(0.25)


def test_ignore_index_none_and_inside_range():
    t = torch.tensor([0, 1, 1])
    assert confusion_matrix(torch.tensor([0, 1, 0]), t, 2, ignore_index=None).sum() == 3
    assert confusion_matrix(torch.tensor([0, 1, 0]), t, 2, ignore_index=0).sum() == 2


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 6),
    st.integers(1, 5),
    st.data(),
)
def test_miou_is_the_same_however_the_data_is_split_into_batches(num_classes, n_images, data):
    seed = data.draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    pred = torch.randint(0, num_classes, (n_images, 5, 7), generator=g)
    target = torch.randint(0, num_classes, (n_images, 5, 7), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.1] = 255
    whole = SegmentationMetric(num_classes)
    whole.update(pred, target)
    cuts = sorted(data.draw(st.lists(st.integers(0, n_images), max_size=3)))
    batched = SegmentationMetric(num_classes)
    for lo, hi in zip([0, *cuts], [*cuts, n_images], strict=True):
        batched.update(pred[lo:hi], target[lo:hi])
    a, b = whole.compute(), batched.compute()
    assert torch.equal(a.confusion_matrix, b.confusion_matrix)
    assert a.miou == b.miou or (math.isnan(a.miou) and math.isnan(b.miou))
    # and the matrix is the plain count of (true, predicted) pairs
    keep = target != 255
    ref = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(ref, (target[keep].numpy(), pred[keep].numpy()), 1)
    assert np.array_equal(a.confusion_matrix.numpy(), ref)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: confusion_matrix(torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.long), 2),
            "pred",
        ),
        (
            lambda: confusion_matrix(
                torch.zeros(2, dtype=torch.long), torch.zeros(3, dtype=torch.long), 2
            ),
            "same shape",
        ),
        (
            lambda: confusion_matrix(torch.zeros(2, dtype=torch.long), torch.tensor([0, 5]), 2),
            "target holds 5",
        ),
        (lambda: confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 2), "pred holds 3"),
        (
            lambda: confusion_matrix(
                torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), 0
            ),
            "num_classes",
        ),
        (
            lambda: confusion_matrix(
                torch.zeros(2, dtype=torch.long),
                torch.zeros(2, dtype=torch.long),
                2,
                ignore_index=1.5,
            ),
            "ignore_index",
        ),
        (lambda: confusion_matrix([0, 1], torch.zeros(2, dtype=torch.long), 2), "pred"),
        (lambda: pixel_accuracy(torch.zeros(2, 3)), "confmat"),
        (lambda: per_class_iou(-torch.ones(2, 2)), "confmat"),
        (lambda: mean_iou("x"), "confmat"),
        (lambda: SegmentationMetric(-1), "num_classes"),
        (
            lambda: SegmentationMetric(2).update(torch.zeros(2), torch.zeros(2, dtype=torch.long)),
            "pred",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
