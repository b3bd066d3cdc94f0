"""vizlib.losses equals torch.nn.functional, torchvision.ops and torchvision's fastrcnn_loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torchvision.models.detection.roi_heads import fastrcnn_loss
from torchvision.ops import sigmoid_focal_loss as tv_focal

from vizlib import losses as L
from vizlib.boxes import encode_ltrb


def randn(*shape, seed=0, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


@pytest.mark.parametrize("beta", [0.0, 1.0 / 9, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("reduction", L.REDUCTIONS)
def test_smooth_l1_matches_torch(beta, reduction):
    x, y = randn(7, 4, seed=1, scale=2), randn(7, 4, seed=2, scale=2)
    x[0, 0], y[0, 0] = 1.0, 1.0 + beta  # exactly at the joint
    torch.testing.assert_close(
        L.smooth_l1_loss(x, y, beta, reduction),
        F.smooth_l1_loss(x, y, beta=beta, reduction=reduction),
    )


def test_smooth_l1_gradients_match_torch():
    x = randn(50, seed=3, scale=2).requires_grad_()
    y = randn(50, seed=4)
    L.smooth_l1_loss(x, y, 0.5).backward()
    ours = x.grad.clone()
    x.grad = None
    F.smooth_l1_loss(x, y, beta=0.5).backward()
    torch.testing.assert_close(ours, x.grad)


def test_smooth_l1_empty_input_behaves_like_torch():
    e = torch.zeros(0, 4)
    assert L.smooth_l1_loss(e, e, reduction="sum") == 0
    assert torch.isnan(L.smooth_l1_loss(e, e)) and torch.isnan(F.smooth_l1_loss(e, e))


@pytest.mark.parametrize("alpha", [0.25, 0.0, 1.0, None])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
@pytest.mark.parametrize("reduction", L.REDUCTIONS)
def test_sigmoid_focal_loss_matches_torchvision(alpha, gamma, reduction):
    logits = randn(6, 10, seed=5, scale=4)
    logits[0, :3] = torch.tensor([-40.0, 40.0, 0.0])  # saturated and undecided
    targets = (randn(6, 10, seed=6) > 0.5).float()
    targets[1, 0] = 0.3  # soft target
    expected = tv_focal(logits, targets, -1 if alpha is None else alpha, gamma, reduction)
    torch.testing.assert_close(
        L.sigmoid_focal_loss(logits, targets, alpha, gamma, reduction), expected
    )


def test_focal_loss_with_gamma_zero_and_no_alpha_is_bce():
    logits, targets = randn(20, seed=7), (randn(20, seed=8) > 0).float()
    torch.testing.assert_close(
        L.sigmoid_focal_loss(logits, targets, alpha=None, gamma=0.0, reduction="mean"),
        F.binary_cross_entropy_with_logits(logits, targets),
    )


def test_focal_loss_curve_agrees_with_focal_loss():
    logits = torch.linspace(-5, 5, 21)
    p_t = torch.sigmoid(logits)  # for positive targets p_t = p
    for gamma in (0.0, 1.0, 2.0):
        torch.testing.assert_close(
            L.focal_loss_curve(p_t, gamma, alpha_t=0.25),
            L.sigmoid_focal_loss(logits, torch.ones(21), alpha=0.25, gamma=gamma),
        )
    curve = L.focal_loss_curve([0.1, 0.5, 0.9, 1.0], gamma=2.0)
    assert curve[-1] == 0 and (curve[:-1] > curve[1:]).all()
    # focusing: an easy example (p_t = 0.9) loses 100x of its CE loss with gamma = 2
    torch.testing.assert_close(curve[2] / -math.log(0.9), torch.tensor(0.01))


def test_centerness_known_values_and_edges():
    ltrb = torch.tensor(
        [[5.0, 5.0, 5.0, 5.0], [1.0, 2.0, 3.0, 8.0], [0.0, 1.0, 4.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    )
    expected = torch.tensor([1.0, math.sqrt(1 / 3 * 2 / 8), 0.0, 0.0])
    torch.testing.assert_close(L.fcos_centerness_target(ltrb), expected)
    assert L.fcos_centerness_target(torch.zeros(0, 4)).shape == (0,)


def _centre_rounding_bound(boxes: torch.Tensor) -> torch.Tensor:
    """The most that rounding can take off centre-ness 1 at each box's centre.

    At a box's centre centre-ness is exactly 1; computed in floating point (unit roundoff
    ``u``: 2**-24 in float32) it is 1 only up to rounding, and that rounding is not small
    for a thin box far from the origin. Along one axis, with corners ``a <= b`` (already
    rounded, as the test builds them): the centre ``fl(a + b) / 2`` is off by at most
    ``u |a + b| / 2``, so the exact distances ``l = c - a`` and ``r = b - c`` differ by at
    most ``u |a + b|``; rounding ``l`` and ``r`` adds at most ``u (l + r) = u (b - a)``.
    Hence ``|l - r| <= u (|a + b| + |b - a|) = 2 u M`` with ``M = max(|a|, |b|)``, while
    ``max(l, r) >= (l + r) / 2 >= (1 - u)(b - a) / 2``, so ``min / max >= 1 - e`` with
    ``e = 4 u M / ((1 - u)(b - a))``: the condition number is ``M / (b - a)``. The two
    divisions, the product and the square root each round once more (relative ``u``):
    ``c >= sqrt((1 - e_x)(1 - e_y)) (1 - u) ** 2.5``.

    Example (a hypothesis find): the box ``(0, 16, 1, 16.01)`` in float32 has
    ``e_y = 4 u 16.01 / 0.01 = 3.8e-4``, so centre-ness may be as low as ``1 - 1.9e-4``, and
    it is 0.99981: a fixed tolerance of 1e-4 was wrong for it. A box at least 1 px wide and
    high within 200 px of the origin gets a bound below 1e-4.

    Args:
        boxes (Tensor[N, 4]): ``(x1, y1, x2, y2)``, in the dtype the centre-ness is computed in.

    Returns:
        Tensor[N] (float64): ``1 - sqrt((1 - e_x)(1 - e_y)) (1 - u) ** 2.5``.
    """
    u = torch.finfo(boxes.dtype).eps / 2
    b = boxes.double()
    m = torch.maximum(b[:, :2].abs(), b[:, 2:].abs())  # [N, 2]: M along x and y
    size = b[:, 2:] - b[:, :2]  # [N, 2]: b - a along x and y
    e = (4 * u * m / ((1 - u) * size)).clamp(max=1)  # [N, 2]
    return 1 - torch.sqrt((1 - e).prod(dim=1)) * (1 - u) ** 2.5


# boxes as (x1, y1, w, h), one to eight of them
_BOXES = st.integers(1, 8).flatmap(
    lambda n: st.lists(st.floats(0, 100), min_size=4 * n, max_size=4 * n)
)


@settings(max_examples=40, deadline=None)
@given(_BOXES)
@example([0.0, 16.0, 1.0, 0.01])  # thin and far from the origin: 1 - 1.9e-4 in float32
@example([100.0, 100.0, 1.0, 1.0])  # the bound 1e-4 that the test once used, for a 1 px box
def test_centerness_in_unit_interval_and_one_at_the_centre(coords):
    for dtype in (torch.float32, torch.float64):
        t = torch.tensor(coords, dtype=dtype).reshape(-1, 4)
        boxes = torch.cat([t[:, :2], t[:, :2] + t[:, 2:]], dim=1)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        c = L.fcos_centerness_target(encode_ltrb(centres, boxes))
        assert c.dtype == dtype
        assert ((c >= 0) & (c <= 1 + 1e-6)).all()
        positive = (t[:, 2:] > 1e-3).all(dim=1)
        gap, bound = 1 - c.double()[positive], _centre_rounding_bound(boxes)[positive]
        assert (gap <= bound).all(), (
            f"{dtype}: 1 - centre-ness {gap.tolist()} > bound {bound.tolist()}"
        )
        if dtype == torch.float32:  # where the old fixed tolerance was sound, the bound is tighter
            wide = ((boxes[positive, 2:] - boxes[positive, :2]) >= 1).all(dim=1)
            assert (bound[wide] < 1e-4).all()


@pytest.mark.parametrize("num_classes", [2, 5, 91])
@pytest.mark.parametrize("fg", ["some", "none", "all"])
def test_multitask_loss_matches_torchvision_fastrcnn_loss(num_classes, fg):
    n = 64
    logits = randn(n, num_classes, seed=num_classes)
    labels = torch.randint(0, num_classes, (n,), generator=torch.Generator().manual_seed(1))
    if fg == "none":
        labels = torch.zeros(n, dtype=torch.int64)
    elif fg == "all":
        labels = labels.clamp(min=1)
    box_regression = randn(n, num_classes * 4, seed=2)
    targets = randn(n, 4, seed=3)
    cls, box = fastrcnn_loss(
        logits, box_regression, [labels[:40], labels[40:]], [targets[:40], targets[40:]]
    )
    ours = L.multitask_loss(logits, labels, box_regression, targets)
    torch.testing.assert_close(ours["classification"], cls)
    torch.testing.assert_close(ours["box_regression"], box)
    torch.testing.assert_close(ours["total"], cls + box)


def test_multitask_loss_class_agnostic_l2_weight_and_backward():
    logits = randn(6, 3, seed=1).requires_grad_()
    labels = torch.tensor([0, 1, 2, 0, 2, 1])
    preds = randn(6, 4, seed=2).requires_grad_()
    targets = randn(6, 4, seed=3)
    out = L.multitask_loss(logits, labels, preds, targets, box_weight=2.0, box_loss="l2")
    fg = labels > 0
    expected_box = ((preds[fg] - targets[fg]) ** 2).sum() / 6
    torch.testing.assert_close(out["box_regression"], expected_box)
    torch.testing.assert_close(out["total"], F.cross_entropy(logits, labels) + 2.0 * expected_box)
    out["total"].backward()
    assert (preds.grad[~fg] == 0).all() and (
        preds.grad[fg] != 0
    ).any()  # background boxes get no gradient
    empty = L.multitask_loss(
        torch.zeros(0, 3, requires_grad=True),
        torch.zeros(0, dtype=torch.int64),
        torch.zeros(0, 4),
        torch.zeros(0, 4),
    )
    assert empty["total"] == 0
    empty["total"].backward()


# ------------------------------------------------------------------ bad input

X = torch.zeros(3, 4)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: L.smooth_l1_loss(X, torch.zeros(3, 5)), "same shape"),
        (lambda: L.smooth_l1_loss(torch.full((3, 4), math.nan), X), "input"),
        (lambda: L.smooth_l1_loss(X, torch.full((3, 4), math.inf)), "target"),
        (lambda: L.smooth_l1_loss(X, X, beta=-1.0), "beta"),
        (lambda: L.smooth_l1_loss(X, X, reduction="avg"), "reduction"),
        (lambda: L.smooth_l1_loss(X.bool(), X), "input"),
        (lambda: L.sigmoid_focal_loss(X, torch.zeros(4, 3)), "same shape"),
        (lambda: L.sigmoid_focal_loss(X, X + 2), "targets"),
        (lambda: L.sigmoid_focal_loss(X, X, alpha=1.5), "alpha"),
        (lambda: L.sigmoid_focal_loss(X, X, alpha=-1), "alpha"),
        (lambda: L.sigmoid_focal_loss(X, X, gamma=-2.0), "gamma"),
        (lambda: L.sigmoid_focal_loss(X, X, reduction=None), "reduction"),
        (lambda: L.sigmoid_focal_loss(torch.full((3, 4), math.nan), X), "inputs"),
        (lambda: L.focal_loss_curve([0.0, 0.5]), "p_t"),
        (lambda: L.focal_loss_curve([0.5, 1.5]), "p_t"),
        (lambda: L.focal_loss_curve([0.5], gamma=math.nan), "gamma"),
        (lambda: L.focal_loss_curve([0.5], alpha_t=2.0), "alpha"),
        (lambda: L.fcos_centerness_target(torch.zeros(3, 3)), "ltrb"),
        (lambda: L.fcos_centerness_target(torch.tensor([[1.0, -1.0, 1.0, 1.0]])), "ltrb"),
        (lambda: L.fcos_centerness_target(torch.tensor([[1.0, math.nan, 1.0, 1.0]])), "ltrb"),
        (
            lambda: L.multitask_loss(torch.zeros(3), torch.zeros(3, dtype=torch.int64), X, X),
            "class_logits",
        ),
        (lambda: L.multitask_loss(torch.zeros(3, 2), torch.zeros(3), X, X), "class_targets"),
        (
            lambda: L.multitask_loss(torch.zeros(3, 2), torch.zeros(4, dtype=torch.int64), X, X),
            "class_targets",
        ),
        (
            lambda: L.multitask_loss(torch.zeros(3, 2), torch.tensor([0, 1, 2]), X, X),
            "class_targets",
        ),
        (
            lambda: L.multitask_loss(
                torch.zeros(3, 2), torch.tensor([0, 1, 1]), torch.zeros(3, 5), X
            ),
            "box_preds",
        ),
        (
            lambda: L.multitask_loss(
                torch.zeros(3, 2), torch.tensor([0, 1, 1]), X, torch.zeros(2, 4)
            ),
            "box_targets",
        ),
        (
            lambda: L.multitask_loss(
                torch.zeros(3, 2), torch.tensor([0, 1, 1]), X, X, box_weight=-1.0
            ),
            "box_weight",
        ),
        (
            lambda: L.multitask_loss(
                torch.zeros(3, 2), torch.tensor([0, 1, 1]), X, X, box_loss="l1"
            ),
            "box_loss",
        ),
        (
            lambda: L.multitask_loss(
                torch.zeros(3, 2), torch.tensor([0, 1, 1]), X, X, beta=math.inf
            ),
            "beta",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_inputs_are_not_modified():
    x, y = randn(5, 4, seed=1), randn(5, 4, seed=2)
    x0, y0 = x.clone(), y.clone()
    L.smooth_l1_loss(x, y)
    L.sigmoid_focal_loss(x, (y > 0).float())
    L.multitask_loss(x, torch.tensor([0, 1, 2, 3, 1]), x, y)
    torch.testing.assert_close(x, x0)
    torch.testing.assert_close(y, y0)


# -- median frequency balancing -----------------------------------------------------------


def _median_frequency_by_loops(masks, num_classes, ignore_index=None):
    """Eigen & Fergus's definition, image by image in numpy: freq(c) = pixels of c / pixels
    of the images where c appears, weight = median(freq) / freq(c), 0 for absent classes."""
    import numpy as np

    class_pixels = np.zeros(num_classes)
    image_pixels = np.zeros(num_classes)
    for mask in masks.numpy():
        labels = mask[mask != ignore_index] if ignore_index is not None else mask.ravel()
        for c in np.unique(labels):
            class_pixels[c] += (labels == c).sum()
            image_pixels[c] += labels.size
    present = image_pixels > 0
    freq = class_pixels[present] / image_pixels[present]
    weights = np.zeros(num_classes)
    weights[present] = np.median(freq) / freq
    return torch.tensor(weights, dtype=torch.float32)


def test_median_frequency_weights_by_hand():
    # image 0: 12 pixels of class 0, 4 of class 1; image 1: 8 of class 0, 8 of class 2
    a = torch.zeros(4, 4, dtype=torch.long)
    a[0] = 1
    b = torch.zeros(4, 4, dtype=torch.long)
    b[2:] = 2
    # freq: class 0 20/32, class 1 4/16, class 2 8/16; median 1/2; class 3 absent
    weights = L.median_frequency_weights(torch.stack([a, b]), 4)
    torch.testing.assert_close(weights, torch.tensor([0.8, 2.0, 1.0, 0.0]))
    assert weights.dtype == torch.float32


def test_median_frequency_weights_median_of_an_even_count_averages_the_middle_two():
    mask = torch.tensor(
        [[0, 0, 0, 0, 0, 0, 1, 1, 1, 2]]
    )  # freq 0.6, 0.3, 0.1 + absent -> median 0.3
    torch.testing.assert_close(L.median_frequency_weights(mask, 3), torch.tensor([0.5, 1.0, 3.0]))
    mask = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1, 2, 3]])  # freq .5 .3 .1 .1 -> median 0.2
    torch.testing.assert_close(
        L.median_frequency_weights(mask, 4), torch.tensor([0.4, 2 / 3, 2.0, 2.0])
    )


@given(
    st.integers(1, 5),
    st.integers(1, 6),
    st.integers(2, 7),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_median_frequency_weights_match_the_definition(n, side, num_classes, seed, ignore):
    g = torch.Generator().manual_seed(seed)
    masks = torch.randint(0, num_classes, (n, side, side + 1), generator=g)
    ignore_index = None
    if ignore:
        ignore_index = 255
        masks[torch.rand(masks.shape, generator=g) < 0.3] = 255
        masks.view(-1)[0] = 0  # at least one labelled pixel
    torch.testing.assert_close(
        L.median_frequency_weights(masks, num_classes, ignore_index),
        _median_frequency_by_loops(masks, num_classes, ignore_index),
    )


def test_median_frequency_weights_of_the_scenes_favour_the_things():
    from vizlib.data import segmentation_data
    from vizlib.data.scenes import STUFF_IDS, THING_IDS

    scenes = segmentation_data("scenes", image_size=64, train_images=24, val_images=1, seed=3).train
    masks = torch.stack([scenes[i][1] for i in range(len(scenes))])
    weights = L.median_frequency_weights(masks, 9, ignore_index=255)
    # every thing covers fewer pixels of its images than any stuff covers of its own
    assert weights[list(THING_IDS)].min() > weights[list(STUFF_IDS)].max()
    torch.testing.assert_close(weights, _median_frequency_by_loops(masks, 9, 255))


def test_median_frequency_weights_ignore_and_input_untouched():
    masks = torch.tensor([[[0, 1, 255], [1, 1, 255]]])
    before = masks.clone()
    torch.testing.assert_close(
        L.median_frequency_weights(masks, 2, ignore_index=255), torch.tensor([2.0, 2 / 3])
    )  # freq 1/4, 3/4 of the 4 labelled pixels; median 1/2
    assert torch.equal(masks, before)
    one = L.median_frequency_weights(masks[0], 2, ignore_index=255)  # [H, W]: one image
    torch.testing.assert_close(one, torch.tensor([2.0, 2 / 3]))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: L.median_frequency_weights(torch.zeros(2, 4, 4), 3), "masks"),
        (lambda: L.median_frequency_weights(torch.zeros(2, 4, 4, dtype=torch.bool), 3), "masks"),
        (lambda: L.median_frequency_weights(torch.zeros(2, 1, 4, 4, dtype=torch.long), 3), "masks"),
        (lambda: L.median_frequency_weights(torch.full((2, 4), 3), 3), r"\[0, 3\)"),
        (lambda: L.median_frequency_weights(torch.full((2, 4), -1), 3), r"\[0, 3\)"),
        (
            lambda: L.median_frequency_weights(torch.full((2, 4), 255), 3, ignore_index=255),
            "labelled",
        ),
        (lambda: L.median_frequency_weights(torch.zeros(2, 4, dtype=torch.long), 0), "num_classes"),
        (
            lambda: L.median_frequency_weights(torch.zeros(2, 4, dtype=torch.long), 2.0),
            "num_classes",
        ),
        (
            lambda: L.median_frequency_weights(
                torch.zeros(2, 4, dtype=torch.long), 2, ignore_index=1.5
            ),
            "ignore_index",
        ),
    ],
)
def test_median_frequency_weights_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()
