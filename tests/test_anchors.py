"""vizlib.anchors agrees with torchvision's AnchorGenerator, Matcher and sampler."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from vizlib import anchors as A
from vizlib.boxes import box_area, box_iou


def random_boxes(n, seed=0, size=100.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 2 + 1
    return torch.cat([xy, xy + wh], dim=1)


def test_constants_are_torchvision_matcher_values():
    assert A.BACKGROUND == Matcher.BELOW_LOW_THRESHOLD
    assert A.IGNORE == Matcher.BETWEEN_THRESHOLDS


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(1, 1000), min_size=1, max_size=4),
    st.lists(st.floats(0.1, 10), min_size=1, max_size=4),
)
def test_anchor_has_area_s_squared_and_height_over_width_r(sizes, ratios):
    base = A.generate_anchors(sizes, ratios)
    assert base.shape == (len(sizes) * len(ratios), 4)
    expected_area = torch.tensor([s * s for _ in ratios for s in sizes])
    expected_ratio = torch.tensor([r for r in ratios for _ in sizes])
    w, h = base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]
    torch.testing.assert_close(box_area(base), expected_area, rtol=1e-5, atol=0)
    torch.testing.assert_close(h / w, expected_ratio, rtol=1e-5, atol=0)
    torch.testing.assert_close(base[:, :2], -base[:, 2:])  # centred at 0


def test_generate_anchors_matches_torchvision_when_rounded():
    sizes, ratios = (32, 64, 128), (0.5, 1.0, 2.0)
    ours = A.generate_anchors(sizes, ratios, round_to_int=True)
    torch.testing.assert_close(ours, AnchorGenerator().generate_anchors(sizes, ratios))


@pytest.mark.parametrize(
    "image_size, feature_sizes, sizes, ratios",
    [
        ((800, 1056), [(200, 264)], ((32,),), (0.5, 1.0, 2.0)),
        # an FPN: five levels, one size each, three ratios
        (
            (256, 320),
            [(64, 80), (32, 40), (16, 20), (8, 10), (4, 5)],
            ((32,), (64,), (128,), (256,), (512,)),
            (0.5, 1.0, 2.0),
        ),
        # non-square, non-divisible: stride is image // feature
        ((100, 75), [(13, 9), (7, 5)], ((16, 24), (48,)), ((1.0,), (0.25, 3.0))),
        ((32, 32), [(1, 1)], ((8,),), (1.0,)),
    ],
)
def test_anchors_for_image_match_torchvision_anchor_generator(
    image_size, feature_sizes, sizes, ratios
):
    if not isinstance(ratios[0], (list, tuple)):
        tv_ratios = (ratios,) * len(sizes)
    else:
        tv_ratios = ratios
    generator = AnchorGenerator(sizes, tv_ratios)
    images = ImageList(torch.zeros(1, 3, *image_size), [image_size])
    features = [torch.zeros(1, 8, h, w) for h, w in feature_sizes]
    expected = generator(images, features)[0]
    ours = A.anchors_for_image(image_size, feature_sizes, sizes, ratios, round_to_int=True)
    torch.testing.assert_close(ours, expected)


def test_grid_anchors_order_and_offset():
    base = A.generate_anchors((10, 20), (1.0,))  # A = 2
    anchors = A.grid_anchors((3, 4), 8, base, offset=0.5)
    assert anchors.shape == (3 * 4 * 2, 4)
    grid = anchors.view(3, 4, 2, 4)
    # anchor a at row i, column j is centred at ((j + 0.5) * 8, (i + 0.5) * 8)
    centre = (grid[..., :2] + grid[..., 2:]) / 2  # [3, 4, 2, 2]
    torch.testing.assert_close(centre[2, 1, 1], torch.tensor([12.0, 20.0]))
    torch.testing.assert_close(grid[0, 0], base + 4.0)
    # a non-square stride (stride_h, stride_w)
    a2 = A.grid_anchors((2, 2), (10, 4), base).view(2, 2, 2, 4)
    torch.testing.assert_close((a2[1, 1, 0, :2] + a2[1, 1, 0, 2:]) / 2, torch.tensor([4.0, 10.0]))


def test_multilevel_anchors_is_a_list_of_levels():
    base = [A.generate_anchors((8,), (1.0,)), A.generate_anchors((16,), (0.5, 2.0))]
    levels = A.multilevel_anchors([(4, 4), (2, 2)], [4, 8], base)
    assert [lv.shape[0] for lv in levels] == [16, 8]
    one_base = A.multilevel_anchors([(4, 4), (2, 2)], [4, 8], base[0])
    assert [lv.shape[0] for lv in one_base] == [16, 4]


# ------------------------------------------------------------------ matching


def iou_problem(seed, num_gt, num_anchors):
    gt = random_boxes(num_gt, seed)
    anchors = random_boxes(num_anchors, seed + 1000)
    return box_iou(gt, anchors)


@pytest.mark.parametrize("low_quality", [False, True])
@pytest.mark.parametrize("fg, bg", [(0.7, 0.3), (0.5, 0.5), (0.5, 0.4), (1.0, 0.0)])
@pytest.mark.parametrize("seed", range(4))
def test_match_anchors_matches_torchvision_matcher(seed, fg, bg, low_quality):
    iou = iou_problem(seed, num_gt=1 + seed * 3, num_anchors=300)
    assert (iou.max(dim=1).values > 0).all()  # every gt overlaps some anchor (see docstring)
    expected = Matcher(fg, bg, low_quality)(iou.clone())
    torch.testing.assert_close(A.match_anchors(iou, fg, bg, low_quality), expected)


def test_low_quality_matches_include_ties_and_use_each_anchors_best_gt():
    iou = torch.tensor(
        [
            [0.2, 0.4, 0.4, 0.1, 0.0],  # gt 0: best 0.4 at anchors 1 and 2 (a tie)
            [0.0, 0.45, 0.1, 0.3, 0.0],  # gt 1: best 0.45 at anchor 1
            [0.0, 0.0, 0.0, 0.0, 0.9],  # gt 2: a good match
        ]
    )
    without = A.match_anchors(iou, 0.7, 0.3)
    assert without.tolist() == [A.BACKGROUND, A.IGNORE, A.IGNORE, A.IGNORE, 2]
    with_lq = A.match_anchors(iou, 0.7, 0.3, allow_low_quality_matches=True)
    # anchor 1 is claimed by gt 0 and gt 1 and goes to its own best, gt 1; anchor 2 (tie) to gt 0
    assert with_lq.tolist() == [A.BACKGROUND, 1, 0, A.IGNORE, 2]
    torch.testing.assert_close(with_lq, Matcher(0.7, 0.3, True)(iou.clone()))


def test_gt_overlapping_nothing_claims_nothing():
    iou = torch.tensor([[0.8, 0.0, 0.0], [0.0, 0.0, 0.0]])  # gt 1 overlaps no anchor
    ours = A.match_anchors(iou, 0.7, 0.3, allow_low_quality_matches=True)
    assert ours.tolist() == [0, A.BACKGROUND, A.BACKGROUND]
    # torchvision would turn anchors 1 and 2 into positives of gt 0 (their argmax at IoU 0)
    assert Matcher(0.7, 0.3, True)(iou.clone()).tolist() == [0, 0, 0]


def test_match_anchors_empty_inputs():
    assert A.match_anchors(torch.zeros(0, 5), 0.7, 0.3).tolist() == [A.BACKGROUND] * 5
    assert A.match_anchors(torch.zeros(3, 0), 0.7, 0.3, True).shape == (0,)


def test_match_anchors_to_boxes_is_match_anchors_on_iou():
    anchors, gt = random_boxes(50, 1), random_boxes(4, 2)
    torch.testing.assert_close(
        A.match_anchors_to_boxes(anchors, gt, 0.5, 0.4, True),
        A.match_anchors(box_iou(gt, anchors), 0.5, 0.4, True),
    )


# ------------------------------------------------------------------ sampling


@pytest.mark.parametrize("batch, fraction", [(256, 0.5), (16, 0.25), (10, 1.0), (5, 0.0), (0, 0.5)])
@pytest.mark.parametrize("num_pos", [0, 3, 200])
def test_sample_balanced_matches_torchvision_for_the_same_seed(batch, fraction, num_pos):
    g = torch.Generator().manual_seed(num_pos)
    labels = torch.zeros(1000, dtype=torch.int64)
    labels[torch.randperm(1000, generator=g)[:num_pos]] = 1
    labels[torch.randperm(1000, generator=g)[:100]] = A.IGNORE  # may overwrite some positives
    torch.manual_seed(7)
    tv_pos, tv_neg = BalancedPositiveNegativeSampler(batch, fraction)([labels])
    torch.manual_seed(7)
    pos, neg = A.sample_balanced(labels, batch, fraction)
    assert torch.equal(pos, tv_pos[0].bool()) and torch.equal(neg, tv_neg[0].bool())
    assert pos.sum() <= int(batch * fraction) and pos.sum() + neg.sum() <= batch
    assert (labels[pos] >= 1).all() and (labels[neg] == 0).all()


def test_sample_balanced_generator_repeats():
    labels = torch.tensor([1, 0, 0, 1, 0, A.IGNORE, 0, 1, 0, 0])
    a = A.sample_balanced(labels, 4, 0.5, generator=torch.Generator().manual_seed(3))
    b = A.sample_balanced(labels, 4, 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].sum() == 2 and a[1].sum() == 2


# ------------------------------------------------------------------ bad input

BASE = A.generate_anchors((16,), (1.0,))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: A.generate_anchors((), (1.0,)), "sizes"),
        (lambda: A.generate_anchors((-16,), (1.0,)), "sizes"),
        (lambda: A.generate_anchors((16,), (math.nan,)), "aspect_ratios"),
        (lambda: A.generate_anchors((16,), (0.0,)), "aspect_ratios"),
        (lambda: A.generate_anchors(("a",), (1.0,)), "sizes"),
        (lambda: A.grid_anchors((0, 4), 8, BASE), "feature_size"),
        (lambda: A.grid_anchors((2.5, 4), 8, BASE), "feature_size"),
        (lambda: A.grid_anchors((4, 4), -8, BASE), "stride"),
        (lambda: A.grid_anchors((4, 4), (8, math.inf), BASE), "stride"),
        (lambda: A.grid_anchors((4, 4), 8, torch.zeros(2, 3)), "base_anchors"),
        (lambda: A.grid_anchors((4, 4), 8, torch.tensor([[1.0, 0.0, -1.0, 0.0]])), "base_anchors"),
        (lambda: A.grid_anchors((4, 4), 8, BASE, offset=1.5), "offset"),
        (lambda: A.multilevel_anchors([(4, 4)], [8, 16], BASE), "strides"),
        (lambda: A.multilevel_anchors([], [], BASE), "feature_sizes"),
        (lambda: A.multilevel_anchors([(4, 4), (2, 2)], [8, 16], [BASE]), "base_anchors"),
        (lambda: A.anchors_for_image((0, 64), [(4, 4)], ((16,),), (1.0,)), "image_size"),
        (lambda: A.anchors_for_image((64, 64), [(4, 4)], ((16,), (32,)), (1.0,)), "sizes"),
        (lambda: A.anchors_for_image((64, 64), [(128, 4)], ((16,),), (1.0,)), "feature_sizes"),
        (
            lambda: A.anchors_for_image((64, 64), [(4, 4)], ((16,),), [(1.0,), (2.0,)]),
            "aspect_ratios",
        ),
        (lambda: A.match_anchors(torch.zeros(3), 0.7, 0.3), "iou_matrix"),
        (lambda: A.match_anchors(torch.full((2, 2), math.nan), 0.7, 0.3), "iou_matrix"),
        (lambda: A.match_anchors(torch.full((2, 2), 1.5), 0.7, 0.3), "iou_matrix"),
        (lambda: A.match_anchors(torch.ones(2, 2, dtype=torch.bool), 0.7, 0.3), "iou_matrix"),
        (lambda: A.match_anchors(torch.zeros(2, 2), 1.7, 0.3), "fg_iou_thresh"),
        (lambda: A.match_anchors(torch.zeros(2, 2), 0.7, -0.1), "bg_iou_thresh"),
        (lambda: A.match_anchors(torch.zeros(2, 2), 0.3, 0.7), "bg_iou_thresh"),
        (lambda: A.match_anchors(torch.zeros(2, 2), 0.7, 0.3, "yes"), "allow_low_quality_matches"),
        (
            lambda: A.match_anchors_to_boxes(torch.zeros(2, 5), torch.zeros(1, 4), 0.7, 0.3),
            "anchors",
        ),
        (
            lambda: A.match_anchors_to_boxes(BASE, torch.tensor([[0, 0, math.nan, 1]]), 0.7, 0.3),
            "gt_boxes",
        ),
        (lambda: A.sample_balanced(torch.zeros(2, 2), 4, 0.5), "labels"),
        (lambda: A.sample_balanced([0, 1], 4, 0.5), "labels"),
        (lambda: A.sample_balanced(torch.tensor([0.0, math.nan]), 4, 0.5), "labels"),
        (lambda: A.sample_balanced(torch.zeros(4), -1, 0.5), "batch_size_per_image"),
        (lambda: A.sample_balanced(torch.zeros(4), 4.0, 0.5), "batch_size_per_image"),
        (lambda: A.sample_balanced(torch.zeros(4), 4, 1.5), "positive_fraction"),
        (lambda: A.sample_balanced(torch.zeros(4), 4, 0.5, generator=3), "generator"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_functions_do_not_modify_inputs():
    iou = iou_problem(0, 3, 40)
    before = iou.clone()
    A.match_anchors(iou, 0.7, 0.3, True)
    torch.testing.assert_close(iou, before)
    labels = torch.tensor([1, 0, -2, 0])
    A.sample_balanced(labels, 2, 0.5)
    assert labels.tolist() == [1, 0, -2, 0]
