"""vizlib.nms returns what torchvision.ops returns (ties included) and has NMS's properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision import ops

from vizlib import nms as N
from vizlib.boxes import box_iou


def clustered_boxes(n, seed=0, clusters=10, image=200.0, integer=False):
    """Boxes jittered around a few centres, like a detector's raw output."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(clusters, 2, generator=g) * image
    sizes = torch.rand(clusters, 2, generator=g) * 40 + 5
    which = torch.randint(0, clusters, (n,), generator=g)
    c = centres[which] + torch.randn(n, 2, generator=g) * 4
    wh = sizes[which] * (1 + 0.2 * torch.randn(n, 2, generator=g)).clamp(min=0.1)
    boxes = torch.cat([c - wh / 2, c + wh / 2], dim=1)
    scores = torch.rand(n, generator=g)
    if integer:  # integer corners make exact IoU ties with the threshold likely
        boxes = boxes.round()
        scores = (scores * 4).round() / 4  # only 5 distinct scores: many ties
    return boxes, scores


def degenerate_boxes():
    boxes = torch.tensor(
        [
            [0.0, 0.0, 10.0, 10.0],
            [0.0, 0.0, 10.0, 10.0],  # duplicate
            [5.0, 5.0, 5.0, 15.0],  # zero width
            [5.0, 5.0, 5.0, 15.0],  # duplicate zero width
            [4.0, 4.0, 4.0, 4.0],  # a point
            [4.0, 4.0, 4.0, 4.0],
            [0.0, 0.0, 10.0, 5.0],  # IoU 0.5 with box 0 exactly
            [2.0, 2.0, 8.0, 8.0],
        ]
    )
    scores = torch.tensor([0.9, 0.9, 0.8, 0.8, 0.7, 0.7, 0.9, 0.5])
    return boxes, scores


CASES = [clustered_boxes(300, seed) for seed in range(3)]
CASES += [clustered_boxes(300, 10 + seed, integer=True) for seed in range(3)]
CASES += [
    degenerate_boxes(),
    (torch.zeros(0, 4), torch.zeros(0)),
    (torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([0.3])),
]
CASES += [(clustered_boxes(50, 3)[0], torch.ones(50))]  # every score tied


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_matches_torchvision_exactly(case, threshold):
    boxes, scores = CASES[case]
    expected = ops.nms(boxes, scores, threshold)
    ours = N.nms(boxes, scores, threshold)
    assert ours.dtype == torch.int64
    assert ours.tolist() == expected.tolist()
    assert [step.kept for step in N.nms_trace(boxes, scores, threshold)] == expected.tolist()


def test_nms_ties_keep_input_order():
    boxes = torch.tensor([[0.0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21], [0, 0, 1, 1]])
    scores = torch.tensor([0.5, 0.9, 0.5, 0.5])
    assert N.nms(boxes, scores, 0.5).tolist() == [1, 0, 2]  # box 3 duplicates box 0


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("num_classes", [1, 3, 80])
def test_batched_nms_matches_torchvision_small(case, num_classes):
    boxes, scores = CASES[case]
    labels = torch.randint(
        0, num_classes, (len(boxes),), generator=torch.Generator().manual_seed(case)
    )
    expected = ops.batched_nms(boxes, scores, labels, 0.5)  # the coordinate trick (N <= 1000)
    assert N.batched_nms(boxes, scores, labels, 0.5).tolist() == expected.tolist()


def test_batched_nms_matches_torchvision_large():
    # Above 1000 boxes torchvision loops over classes instead; its final sort is not
    # stable, so use distinct scores here (ties are covered by the small cases).
    boxes, _ = clustered_boxes(2500, seed=5)
    scores = torch.randperm(2500, generator=torch.Generator().manual_seed(1)).float() / 2500
    labels = torch.randint(0, 20, (2500,), generator=torch.Generator().manual_seed(2))
    expected = ops.batched_nms(boxes, scores, labels, 0.6)
    assert N.batched_nms(boxes, scores, labels, 0.6).tolist() == expected.tolist()


def test_batched_nms_does_not_suppress_across_classes():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert N.batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]


def test_nms_trace_records_suppressions_and_ious():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 5], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    steps = N.nms_trace(boxes, scores, 0.4)
    assert [s.kept for s in steps] == [0, 3]
    assert steps[0].suppressed == (1, 2)
    assert steps[0].ious == pytest.approx((90 / 110, 0.5))
    assert steps[0].score == pytest.approx(0.9)
    assert steps[1].suppressed == () and steps[1].ious == ()
    assert N.nms_trace(torch.zeros(0, 4), torch.zeros(0), 0.5) == []


def test_soft_nms_known_values():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 5], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.6])
    keep, new = N.soft_nms(boxes, scores, iou_threshold=0.3, method="linear")
    # box 1 has IoU 0.5 with box 0: its score becomes 0.8 * (1 - 0.5) = 0.4, below box 2
    assert keep.tolist() == [0, 2, 1]
    torch.testing.assert_close(new, torch.tensor([0.9, 0.6, 0.4]))
    keep, new = N.soft_nms(boxes, scores, method="gaussian", sigma=0.5)
    torch.testing.assert_close(
        new[keep.tolist().index(1)], 0.8 * torch.exp(torch.tensor(-0.25 / 0.5))
    )
    # a high score_threshold drops the decayed box
    keep, _ = N.soft_nms(boxes, scores, iou_threshold=0.3, score_threshold=0.5)
    assert keep.tolist() == [0, 2]
    keep, new = N.soft_nms(torch.zeros(0, 4), torch.zeros(0))
    assert keep.shape == (0,) and new.shape == (0,)


def test_soft_nms_with_a_step_weight_limit_is_hard_nms():
    # With linear decay and score_threshold above every decayed score, soft-NMS keeps
    # what hard NMS keeps: the decayed boxes all fall out.
    boxes, scores = clustered_boxes(200, seed=8)
    scores = scores * 0.5 + 0.5  # in [0.5, 1]
    keep, _ = N.soft_nms(boxes, scores, iou_threshold=0.5, score_threshold=0.5)
    hard = N.nms(boxes, scores, 0.5)
    assert set(keep.tolist()) >= set(hard.tolist())


# ------------------------------------------------------------------ properties


@st.composite
def detections(draw, max_n=25):
    n = draw(st.integers(0, max_n))
    coords = draw(st.lists(st.integers(0, 30), min_size=4 * n, max_size=4 * n))
    t = torch.tensor(coords, dtype=torch.float32).reshape(n, 4)
    boxes = torch.cat([torch.minimum(t[:, :2], t[:, 2:]), torch.maximum(t[:, :2], t[:, 2:])], dim=1)
    scores = torch.tensor(
        draw(st.lists(st.sampled_from([0.1, 0.5, 0.9, 1.0]), min_size=n, max_size=n))
    )
    return boxes, scores.reshape(n)


@settings(max_examples=60, deadline=None)
@given(detections(), st.sampled_from([0.0, 0.3, 0.5, 0.8, 1.0]))
def test_nms_properties(det, threshold):
    boxes, scores = det
    keep = N.nms(boxes, scores, threshold)
    assert keep.tolist() == ops.nms(boxes, scores, threshold).tolist()
    kept = boxes[keep]
    # IoU compared with the threshold in float64, as NMS (and torchvision's kernel) does:
    # a float32 IoU of exactly 0.3 (9 / 30) is 0.30000001, above 0.3 in float64 but equal
    # to float32(0.3) in a float32 comparison.
    iou = box_iou(kept, kept).double()
    off_diagonal = ~torch.eye(len(keep), dtype=torch.bool)
    assert (iou[off_diagonal] <= threshold).all()  # survivors never overlap too much
    assert (scores[keep][:-1] >= scores[keep][1:]).all()  # sorted by score
    removed = sorted(set(range(len(boxes))) - set(keep.tolist()))
    for j in removed:  # every removed box overlaps a kept box that outranks it
        over = box_iou(boxes[j : j + 1], kept)[0].double() > threshold
        assert (over & (scores[keep] >= scores[j])).any()


@settings(max_examples=40, deadline=None)
@given(detections(), st.sampled_from(N.SOFT_NMS_METHODS), st.floats(0, 1), st.floats(0.05, 2))
def test_soft_nms_scores_never_increase(det, method, threshold, sigma):
    boxes, scores = det
    keep, new = N.soft_nms(boxes, scores, threshold, sigma, method, score_threshold=0.0)
    assert len(set(keep.tolist())) == len(keep) == len(boxes)  # nothing dropped at threshold 0
    assert (new <= scores[keep] + 1e-7).all()
    assert (new[:-1] >= new[1:] - 1e-7).all()  # kept in decreasing new score


@settings(max_examples=30, deadline=None)
@given(detections(), st.integers(1, 4))
def test_batched_nms_property_equals_per_class_nms(det, num_classes):
    boxes, scores = det
    labels = torch.arange(len(boxes)) % num_classes
    keep = N.batched_nms(boxes, scores, labels, 0.5)
    assert keep.tolist() == ops.batched_nms(boxes, scores, labels, 0.5).tolist()


# ------------------------------------------------------------------ bad input

B2 = torch.tensor([[0.0, 0, 1, 1], [0, 0, 2, 2]])
S2 = torch.tensor([0.5, 0.4])
L2 = torch.tensor([0, 1])
FUNCS = {
    "nms": lambda b, s, t: N.nms(b, s, t),
    "batched_nms": lambda b, s, t: N.batched_nms(
        b, s, L2[: len(s)] if len(s) <= 2 else torch.zeros(len(s), dtype=torch.int64), t
    ),
    "soft_nms": lambda b, s, t: N.soft_nms(b, s, t),
    "nms_trace": lambda b, s, t: N.nms_trace(b, s, t),
}


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize(
    "boxes, scores, threshold, name",
    [
        (torch.tensor([[1.0, 0, 0, 1], [0, 0, 2, 2]]), S2, 0.5, "boxes"),  # x2 < x1
        (torch.zeros(2, 3), S2, 0.5, "boxes"),
        (torch.tensor([[0.0, 0, math.nan, 1], [0, 0, 2, 2]]), S2, 0.5, "boxes"),
        (torch.ones(2, 4, dtype=torch.bool), S2, 0.5, "boxes"),
        (B2, torch.tensor([0.5, math.inf]), 0.5, "scores"),
        (B2, torch.zeros(2, 1), 0.5, "scores"),
        (B2, torch.tensor([0.5]), 0.5, "same number"),
        (B2, S2, 1.5, "iou_threshold"),
        (B2, S2, -0.1, "iou_threshold"),
        (B2, S2, math.nan, "iou_threshold"),
        (B2, S2, "0.5", "iou_threshold"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(func, boxes, scores, threshold, name):
    with pytest.raises(ValueError, match=name):
        FUNCS[func](boxes, scores, threshold)


def test_bad_labels_and_soft_nms_arguments():
    with pytest.raises(ValueError, match="labels"):
        N.batched_nms(B2, S2, torch.tensor([0.0, 1.0]), 0.5)
    with pytest.raises(ValueError, match="labels"):
        N.batched_nms(B2, S2, torch.tensor([[0, 1]]), 0.5)
    with pytest.raises(ValueError, match="labels"):
        N.batched_nms(B2, S2, torch.tensor([0, 1, 2]), 0.5)
    with pytest.raises(ValueError, match="labels"):
        N.batched_nms(B2, S2, [0, 1], 0.5)
    with pytest.raises(ValueError, match="method"):
        N.soft_nms(B2, S2, method="hard")
    with pytest.raises(ValueError, match="sigma"):
        N.soft_nms(B2, S2, sigma=0.0)
    with pytest.raises(ValueError, match="score_threshold"):
        N.soft_nms(B2, S2, score_threshold=-1.0)
    with pytest.raises(ValueError, match="scores"):
        N.soft_nms(B2, torch.tensor([0.5, -0.1]))


def test_inputs_are_not_modified():
    boxes, scores = clustered_boxes(100, seed=4)
    b0, s0 = boxes.clone(), scores.clone()
    N.nms(boxes, scores, 0.5)
    N.soft_nms(boxes, scores, 0.5, method="gaussian")
    N.nms_trace(boxes, scores, 0.5)
    torch.testing.assert_close(boxes, b0)
    torch.testing.assert_close(scores, s0)
