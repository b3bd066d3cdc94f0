"""Matching, precision-recall curves, AP and mAP: hand examples, properties, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vizlib.metrics import (
    AP_METHODS,
    NO_MATCH,
    average_precision,
    match_detections,
    mean_average_precision,
    precision_envelope,
    precision_recall_curve,
)

# --------------------------------------------------------------------------- matching


def boxes(*rows):
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, 4)


def test_voc_and_coco_rules_differ_on_a_claimed_best_object():
    gt = boxes([0, 0, 10, 10], [4, 0, 14, 10])
    # det 0 claims object 0 (IoU 1). det 1 overlaps object 0 (IoU 0.82, already claimed)
    # and object 1 (IoU 70/130 = 0.54).
    dt = boxes([0, 0, 10, 10], [1, 0, 11, 10])
    scores = torch.tensor([0.9, 0.8])
    coco = match_detections(dt, scores, gt, 0.5, rule="coco")
    assert coco.tp.tolist() == [True, True]  # COCO falls back to object 1
    assert coco.matched_gt.tolist() == [0, 1]
    voc = match_detections(dt, scores, gt, 0.5, rule="voc")
    assert voc.tp.tolist() == [True, False]  # VOC: best object taken -> duplicate
    assert voc.fp.tolist() == [False, True]


def test_matching_is_by_score_not_input_order_and_results_come_back_in_input_order():
    gt = boxes([0, 0, 10, 10])
    dt = boxes([0, 0, 10, 9], [0, 0, 10, 10])  # the second is better, but scores decide
    m = match_detections(dt, torch.tensor([0.9, 0.3]), gt, 0.5)
    assert m.tp.tolist() == [True, False] and m.fp.tolist() == [False, True]
    assert m.matched_gt.tolist() == [0, NO_MATCH]
    m = match_detections(dt, torch.tensor([0.3, 0.9]), gt, 0.5)
    assert m.tp.tolist() == [False, True]


def test_crowd_absorbs_many_detections_and_ignored_objects_neither_tp_nor_fp():
    gt = boxes([0, 0, 100, 100], [200, 200, 210, 210])
    crowd = torch.tensor([True, False])
    # Two small detections inside the crowd: IoU with the crowd = inter / area(det) = 1.
    dt = boxes([10, 10, 20, 20], [30, 30, 40, 40], [200, 200, 210, 210], [500, 500, 510, 510])
    m = match_detections(dt, torch.tensor([0.9, 0.8, 0.7, 0.6]), gt, 0.5, gt_crowd=crowd)
    assert m.ignored.tolist() == [True, True, False, False]
    assert m.tp.tolist() == [False, False, True, False]
    assert m.fp.tolist() == [False, False, False, True]
    assert m.matched_gt.tolist() == [0, 0, 1, NO_MATCH]
    # VOC 'difficult': one detection is ignored, a second one is a duplicate under VOC.
    m = match_detections(
        dt[:2],
        torch.tensor([0.9, 0.8]),
        boxes([10, 10, 20, 20]),
        0.5,
        gt_ignore=torch.tensor([True]),
        rule="voc",
    )
    assert m.ignored.tolist() == [True, False] and m.fp.tolist() == [False, True]


def test_coco_prefers_a_regular_object_to_an_ignored_one_and_ties_go_to_the_later_object():
    gt = boxes([0, 0, 10, 10], [0, 0, 10, 12])  # IoU of det with them: 1.0 and 0.83
    ignore = torch.tensor([True, False])
    m = match_detections(boxes([0, 0, 10, 10]), torch.tensor([1.0]), gt, 0.5, gt_ignore=ignore)
    assert m.tp.tolist() == [True] and m.matched_gt.tolist() == [1]
    # Two identical objects: pycocotools keeps the last best, so det 0 takes object 1.
    twin = boxes([0, 0, 10, 10], [0, 0, 10, 10])
    m = match_detections(boxes([0, 0, 10, 10], [0, 0, 10, 10]), torch.tensor([0.9, 0.8]), twin, 0.5)
    assert m.matched_gt.tolist() == [1, 0]


def test_threshold_one_accepts_a_perfect_box():
    gt = boxes([0, 0, 10, 10])
    assert match_detections(gt, torch.tensor([1.0]), gt, 1.0).tp.tolist() == [True]


def test_empty_inputs():
    m = match_detections(boxes(), torch.zeros(0), boxes([0, 0, 1, 1]), 0.5)
    assert m.tp.shape == (0,)
    m = match_detections(boxes([0, 0, 1, 1]), torch.ones(1), boxes(), 0.5)
    assert m.fp.tolist() == [True]


# --------------------------------------------------------------------------- PR and AP


def hand_curve():
    """3 objects; detections by score: TP, FP, TP, FP, TP."""
    scores = torch.tensor([0.5, 0.9, 0.6, 0.8, 0.7])  # shuffled on purpose
    is_tp = torch.tensor([True, True, False, False, True])
    return precision_recall_curve(scores, is_tp, num_gt=3)


def test_precision_recall_curve_by_hand():
    c = hand_curve()
    assert c.scores.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.5])
    assert c.precision.tolist() == pytest.approx([1, 1 / 2, 2 / 3, 2 / 4, 3 / 5])
    assert c.recall.tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 2 / 3, 1])
    assert precision_envelope(c.precision).tolist() == pytest.approx(
        [1, 2 / 3, 2 / 3, 3 / 5, 3 / 5]
    )


def test_average_precision_by_hand():
    c = hand_curve()
    # all points: recall steps of 1/3 at envelope heights 1, 2/3, 3/5
    assert average_precision(c.precision, c.recall, "voc") == pytest.approx(34 / 45)
    # 11 points: r = 0..0.3 -> 1, r = 0.4..0.6 -> 2/3, r = 0.7..1 -> 3/5
    assert average_precision(c.precision, c.recall, "voc07") == pytest.approx(
        (4 + 3 * 2 / 3 + 4 * 0.6) / 11
    )
    # 101 points: r = 0..0.33 -> 1 (34), 0.34..0.66 -> 2/3 (33), 0.67..1 -> 3/5 (34)
    assert average_precision(c.precision, c.recall, "coco") == pytest.approx(
        (34 + 33 * 2 / 3 + 34 * 0.6) / 101
    )


def test_ignored_detections_and_ties_and_empty_curve():
    c = precision_recall_curve(
        torch.tensor([0.9, 0.9, 0.5]),
        torch.tensor([False, True, True]),
        2,
        ignored=torch.tensor([False, False, True]),
    )
    # tie: input order kept (FP first), the ignored one dropped
    assert c.precision.tolist() == [0.0, 0.5] and c.recall.tolist() == [0.0, 0.5]
    empty = precision_recall_curve(torch.zeros(0), torch.zeros(0, dtype=torch.bool), 4)
    for method in AP_METHODS:
        assert average_precision(empty.precision, empty.recall, method) == 0.0


@st.composite
def scored_detections(draw):
    n = draw(st.integers(0, 25))
    scores = draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=n, max_size=n))
    is_tp = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    num_gt = draw(st.integers(max(1, sum(is_tp)), sum(is_tp) + 5))
    return torch.tensor(scores, dtype=torch.float64), torch.tensor(is_tp, dtype=torch.bool), num_gt


@settings(max_examples=60, deadline=None)
@given(scored_detections())
def test_ap_is_in_unit_interval_and_a_lowest_false_positive_never_raises_it(data):
    scores, is_tp, num_gt = data
    c = precision_recall_curve(scores, is_tp, num_gt)
    low = (scores.min() - 1.0) if len(scores) else torch.tensor(0.0, dtype=torch.float64)
    c_fp = precision_recall_curve(
        torch.cat([scores, low.reshape(1)]), torch.cat([is_tp, torch.tensor([False])]), num_gt
    )
    for method in AP_METHODS:
        ap = average_precision(c.precision, c.recall, method)
        assert 0.0 <= ap <= 1.0
        assert average_precision(c_fp.precision, c_fp.recall, method) <= ap + 1e-12


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**31 - 1), st.sampled_from(["coco", "voc"]))
def test_perfect_detections_give_ap_one(n, seed, rule):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 500
    gt = torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g, dtype=torch.float64) * 50], dim=1)
    m = match_detections(gt, torch.rand(n, generator=g), gt, 0.95, rule=rule)
    assert m.tp.all()
    c = precision_recall_curve(torch.rand(n, generator=g), m.tp, n)
    for method in AP_METHODS:
        assert average_precision(c.precision, c.recall, method) == pytest.approx(1.0)


# --------------------------------------------------------------------------- mAP


def test_mean_average_precision_by_hand():
    targets = [
        {"boxes": boxes([0, 0, 10, 10], [20, 20, 30, 30]), "labels": torch.tensor([1, 2])},
        {
            "boxes": boxes([0, 0, 10, 10]),
            "labels": torch.tensor([1]),
            "difficult": torch.tensor([True]),
        },
        {
            "boxes": boxes([5, 5, 9, 9]),
            "labels": torch.tensor([3]),
            "difficult": torch.tensor([True]),
        },
    ]
    preds = [
        {
            "boxes": boxes([0, 0, 10, 10], [50, 50, 60, 60]),
            "scores": torch.tensor([0.9, 0.95]),
            "labels": torch.tensor([1, 1]),
        },
        {
            "boxes": boxes([0, 0, 10, 10]),
            "scores": torch.tensor([0.99]),
            "labels": torch.tensor([1]),
        },
        {"boxes": boxes(), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)},
    ]
    r = mean_average_precision(preds, targets, 0.5, method="voc")
    # class 1: the 0.99 detection is on a difficult object (ignored); then FP (0.95), TP (0.9)
    # -> precision 1/2 at recall 1: AP 0.5. Class 2: never detected: 0. Class 3: only a
    # difficult object: no AP (NaN), left out of the mean.
    assert r.per_class[1] == pytest.approx(0.5)
    assert r.per_class[2] == 0.0
    assert math.isnan(r.per_class[3])
    assert r.map == pytest.approx(0.25)
    assert r.num_gt == {1: 1, 2: 1, 3: 0}


# --------------------------------------------------------------------------- bad input

ONE = boxes([0, 0, 1, 1])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: match_detections(boxes([2, 0, 1, 1]), torch.ones(1), ONE), "pred_boxes"),
        (lambda: match_detections(ONE, torch.ones(1), torch.zeros(1, 3)), "gt_boxes"),
        (lambda: match_detections(ONE, torch.ones(2), ONE), "pred_scores"),
        (lambda: match_detections(ONE, torch.tensor([float("nan")]), ONE), "pred_scores"),
        (lambda: match_detections(ONE, torch.ones(1), ONE, 1.5), "iou_threshold"),
        (
            lambda: match_detections(
                ONE, torch.ones(1), ONE, gt_ignore=torch.ones(2, dtype=torch.bool)
            ),
            "gt_ignore",
        ),
        (lambda: match_detections(ONE, torch.ones(1), ONE, gt_crowd=torch.ones(1)), "gt_crowd"),
        (lambda: match_detections(ONE, torch.ones(1), ONE, rule="pascal"), "rule"),
        (
            lambda: precision_recall_curve(torch.ones(2), torch.ones(3, dtype=torch.bool), 1),
            "is_tp",
        ),
        (
            lambda: precision_recall_curve(torch.ones(1, 2), torch.ones(2, dtype=torch.bool), 1),
            "scores",
        ),
        (
            lambda: precision_recall_curve(torch.ones(2), torch.ones(2, dtype=torch.bool), 0),
            "num_gt",
        ),
        (
            lambda: precision_recall_curve(torch.ones(2), torch.ones(2, dtype=torch.bool), 1),
            "num_gt",
        ),
        (lambda: precision_recall_curve(torch.ones(2), torch.tensor([0.5, 1.0]), 2), "is_tp"),
        (
            lambda: precision_recall_curve(
                torch.ones(2), torch.ones(2, dtype=torch.bool), 2, ignored=torch.ones(1)
            ),
            "ignored",
        ),
        (lambda: average_precision(torch.ones(2), torch.ones(3)), "same length"),
        (lambda: average_precision(torch.ones(2), torch.tensor([0.5, 0.2])), "recall"),
        (lambda: average_precision(torch.tensor([1.5]), torch.tensor([0.5])), "precision"),
        (lambda: average_precision(torch.ones(1), torch.ones(1), "voc12"), "method"),
        (lambda: average_precision(torch.ones(1, 1), torch.ones(1)), "precision"),
        (lambda: precision_envelope(torch.tensor(1.0)), "precision"),
        (lambda: mean_average_precision("x", []), "predictions"),
        (lambda: mean_average_precision([], [], method="x"), "method"),
        (lambda: mean_average_precision([], [], rule="x"), "rule"),
        (lambda: mean_average_precision([], [], iou_threshold=-0.1), "iou_threshold"),
        (lambda: mean_average_precision([{}], [{}]), r"predictions\[0\]"),
        (
            lambda: mean_average_precision(
                [{"boxes": ONE, "scores": torch.ones(1), "labels": torch.ones(1)}],
                [{"boxes": ONE, "labels": torch.ones(1, dtype=torch.int64)}],
            ),
            r"predictions\[0\]\['labels'\]",
        ),
        (
            lambda: mean_average_precision(
                [
                    {
                        "boxes": ONE,
                        "scores": torch.ones(2),
                        "labels": torch.ones(1, dtype=torch.int64),
                    }
                ],
                [{"boxes": ONE, "labels": torch.ones(1, dtype=torch.int64)}],
            ),
            r"predictions\[0\]\['scores'\]",
        ),
        (lambda: mean_average_precision([], [{}]), "one entry per image"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_inputs_are_not_modified():
    dt, gt = boxes([0, 0, 10, 10], [1, 1, 9, 9]), boxes([0, 0, 10, 10])
    scores = torch.tensor([0.2, 0.8])
    before = (dt.clone(), gt.clone(), scores.clone())
    match_detections(dt, scores, gt, 0.5)
    precision_recall_curve(scores, torch.tensor([True, False]), 1)
    assert (
        torch.equal(dt, before[0]) and torch.equal(gt, before[1]) and torch.equal(scores, before[2])
    )


def test_accepts_tensors_that_require_grad():
    """Model outputs straight from a forward pass (with autograd on) are fine."""
    dt = boxes([0, 0, 10, 10], [1, 1, 9, 9]).requires_grad_()
    scores = torch.tensor([0.2, 0.8], requires_grad=True)
    m = match_detections(dt, scores, boxes([0, 0, 10, 10]), 0.5)
    assert m.tp.tolist() == [False, True]
    c = precision_recall_curve(scores, m.tp, 1)
    assert average_precision(c.precision.requires_grad_(), c.recall, "voc") == 1.0
    r = mean_average_precision(
        [{"boxes": dt, "scores": scores, "labels": torch.tensor([1, 1])}],
        [{"boxes": boxes([0, 0, 10, 10]), "labels": torch.tensor([1])}],
    )
    assert r.map == 1.0


# ------------------------------------------- the COCO engine's matching kernel


def test_greedy_match_coco_at_many_thresholds_is_each_threshold_alone_and_match_detections():
    from vizlib.boxes import box_iou
    from vizlib.metrics.detection import greedy_match_coco

    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        n_dt, n_gt = (
            int(torch.randint(0, 9, (1,), generator=g)),
            int(torch.randint(0, 7, (1,), generator=g)),
        )
        xy = torch.randint(0, 30, (n_dt + n_gt, 2), generator=g).double()
        wh = torch.randint(1, 20, (n_dt + n_gt, 2), generator=g).double()
        all_boxes = torch.cat([xy, xy + wh], dim=1)
        dt, gt = all_boxes[:n_dt], all_boxes[n_dt:]
        scores = torch.rand(n_dt, generator=g)
        ignore = torch.rand(n_gt, generator=g) < 0.3
        order = torch.argsort(-scores, stable=True)
        ious = box_iou(dt[order], gt).numpy()  # [D, G], by descending score
        thresholds = np.array([0.3, 0.5, 0.75])
        # two ignore patterns (settings): the random one and none
        settings_ = np.stack([ignore.numpy(), np.zeros(n_gt, dtype=bool)])  # [S = 2, G]
        crowd = np.zeros(n_gt, dtype=bool)
        matched = greedy_match_coco(ious, thresholds, settings_, crowd)
        assert matched.shape == (2, 3, n_dt) and matched.dtype == np.int64
        for s in range(2):
            for t, thr in enumerate(thresholds):
                alone = greedy_match_coco(ious, thresholds[t : t + 1], settings_[s : s + 1], crowd)[
                    0, 0
                ]
                np.testing.assert_array_equal(matched[s, t], alone)
                m = match_detections(
                    dt, scores, gt, float(thr), gt_ignore=torch.from_numpy(settings_[s])
                )
                np.testing.assert_array_equal(m.matched_gt[order].numpy(), alone)


_NO_FLAGS = np.zeros((1, 2), dtype=bool)


@pytest.mark.parametrize(
    "ious, ignore, crowd, match",
    [
        (np.ones(3), _NO_FLAGS, np.zeros(2, dtype=bool), "ious"),
        (np.ones((3, 2)), np.zeros((1, 3), dtype=bool), np.zeros(2, dtype=bool), "G = 2"),
        (np.ones((3, 2)), _NO_FLAGS, np.zeros(2), "bool"),
        (np.ones((3, 2)), _NO_FLAGS, np.array([True, False]), "crowd"),
    ],
)
def test_greedy_match_coco_bad_input(ious, ignore, crowd, match):
    from vizlib.metrics.detection import greedy_match_coco

    with pytest.raises(ValueError, match=match):
        greedy_match_coco(ious, np.array([0.5]), ignore, crowd)
