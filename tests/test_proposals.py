"""vizlib.proposals: selective search finds the objects of a hand-made image, its
similarities follow the paper's formulas, and proposal_recall matches a hand count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vizlib.boxes import box_iou
from vizlib.proposals import (
    CachedProposals,
    initial_regions,
    proposal_recall,
    region_features,
    region_similarity,
    selective_search,
)


def two_squares() -> tuple[torch.Tensor, torch.Tensor]:
    """A grey 64 x 64 image with a red and a blue square; their boxes (pixel edges)."""
    image = torch.full((3, 64, 64), 0.5)
    image[:, 8:24, 6:26] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]  # red, 20 wide, 16 high
    image[:, 36:60, 38:56] = torch.tensor([0.1, 0.2, 0.9])[:, None, None]  # blue
    return image, torch.tensor([[6.0, 8.0, 26.0, 24.0], [38.0, 36.0, 56.0, 60.0]])


def test_selective_search_finds_both_squares():
    image, gt = two_squares()
    boxes = selective_search(image)
    assert boxes.dtype == torch.float32 and boxes.shape[1] == 4
    best = box_iou(gt, boxes).max(dim=1).values
    assert bool((best > 0.9).all()), best
    # the exact boxes are there: a square is one initial region
    for g in gt:
        assert bool((boxes == g).all(dim=1).any())


def test_boxes_are_valid_unique_inside_and_the_whole_image_is_one_of_them():
    image, _ = two_squares()
    boxes = selective_search(
        image, scale=(50.0, 100.0), strategies=(("rgb", "CTSF"), ("lab", "TSF"))
    )
    assert bool((boxes[:, 2] > boxes[:, 0]).all()) and bool((boxes[:, 3] > boxes[:, 1]).all())
    assert bool((boxes >= 0).all()) and bool((boxes <= 64).all())
    assert len(torch.unique(boxes, dim=0)) == len(boxes)
    assert bool((boxes == torch.tensor([0.0, 0.0, 64.0, 64.0])).all(dim=1).any())


def test_ranking_is_seeded_and_only_reorders():
    image, _ = two_squares()
    a, b = selective_search(image, seed=3), selective_search(image, seed=3)
    torch.testing.assert_close(a, b)
    c = selective_search(image, seed=4)
    assert {tuple(r) for r in a.tolist()} == {tuple(r) for r in c.tolist()}


def test_uint8_and_array_inputs_give_the_same_boxes():
    image, _ = two_squares()
    as_bytes = (image * 255).round().to(torch.uint8)
    torch.testing.assert_close(selective_search(as_bytes), selective_search(as_bytes.numpy()))


def test_an_empty_image_gives_the_whole_image():
    boxes = selective_search(torch.full((3, 32, 48), 0.3))
    torch.testing.assert_close(boxes, torch.tensor([[0.0, 0.0, 48.0, 32.0]]))


def test_initial_regions_are_numbered_without_gaps():
    image, _ = two_squares()
    labels = initial_regions(image, scale=100.0, sigma=0.0)  # no blur: no blended edge regions
    assert labels.shape == (64, 64)
    assert sorted(np.unique(labels).tolist()) == list(range(labels.max() + 1))
    assert labels.max() + 1 == 3  # background, red, blue
    assert labels[10, 10] != labels[40, 40] and labels[0, 0] not in (labels[10, 10], labels[40, 40])


def test_region_features_sizes_boxes_and_histograms():
    image, gt = two_squares()
    labels = initial_regions(image, sigma=0.0)
    f = region_features(image.permute(1, 2, 0).double().numpy(), labels)
    red = labels[10, 10]
    assert f["size"][red] == 20 * 16
    np.testing.assert_array_equal(f["boxes"][red], gt[0].numpy())
    np.testing.assert_allclose(f["colour"].sum(axis=1), 1.0)
    np.testing.assert_allclose(f["texture"].sum(axis=1), 1.0)
    assert f["colour"].shape[1] == 75 and f["texture"].shape[1] == 240
    # a flat red square: each channel in one bin (0.9 -> bin 22, 0.1 -> bin 2), 1/3 each
    expected = np.zeros(75)
    expected[[22, 25 + 2, 50 + 2]] = 1 / 3
    np.testing.assert_allclose(f["colour"][red], expected)


def test_region_similarity_is_the_papers_sum():
    a = {
        "colour": np.array([0.5, 0.5, 0.0]),
        "texture": np.array([1.0, 0.0]),
        "size": 10.0,
        "box": (0.0, 0.0, 5.0, 2.0),
    }
    b = {
        "colour": np.array([0.0, 0.5, 0.5]),
        "texture": np.array([0.25, 0.75]),
        "size": 6.0,
        "box": (5.0, 0.0, 8.0, 2.0),
    }
    area = 100.0
    colour, texture = 0.5, 0.25
    size = 1 - 16 / 100
    fill = 1 - (8 * 2 - 16) / 100  # the box around both is exactly filled
    assert region_similarity(a, b, area, "C") == pytest.approx(colour)
    assert region_similarity(a, b, area, "T") == pytest.approx(texture)
    assert region_similarity(a, b, area, "S") == pytest.approx(size)
    assert region_similarity(a, b, area, "F") == pytest.approx(fill)
    assert region_similarity(a, b, area, "CTSF") == pytest.approx(colour + texture + size + fill)
    b_far = dict(b, box=(20.0, 20.0, 23.0, 22.0))
    assert region_similarity(a, b_far, area, "F") == pytest.approx(1 - (23 * 22 - 16) / 100)


def test_grouping_makes_one_box_per_region_and_merge():
    # four flat quadrants: 4 initial regions, 3 merges, 7 boxes before the duplicates go
    image = torch.zeros(3, 32, 32)
    image[0, :16, :16] = 1.0
    image[1, :16, 16:] = 1.0
    image[2, 16:, :16] = 1.0
    image[:, 16:, 16:] = 0.5
    boxes = selective_search(image, scale=(100.0,), sigma=0.0, strategies=(("rgb", "CTSF"),))
    quadrants = {
        (0.0, 0.0, 16.0, 16.0),
        (16.0, 0.0, 32.0, 16.0),
        (0.0, 16.0, 16.0, 32.0),
        (16.0, 16.0, 32.0, 32.0),
    }
    found = {tuple(r) for r in boxes.tolist()}
    assert quadrants <= found and (0.0, 0.0, 32.0, 32.0) in found
    assert 6 <= len(boxes) <= 7  # 4 + 3 boxes; the last two merges may both give the whole image


def test_proposal_recall_matches_a_hand_count():
    proposals = [
        torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 9.0, 10.0]]),
        torch.tensor([[50.0, 50.0, 60.0, 60.0]]),
        torch.zeros(0, 4),
    ]
    gt = [
        torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 28.0, 30.0], [70.0, 70.0, 80.0, 80.0]]),
        torch.zeros(0, 4),  # an image with no object counts for nothing
        torch.tensor([[1.0, 1.0, 5.0, 5.0]]),  # an image with no proposal misses its objects
    ]
    r = proposal_recall(proposals, gt, iou_thresholds=(0.5, 0.85), counts=(1, 2, 3, 10))
    # 4 objects. IoUs: object 0 with proposal 0: 1.0; object 1 with proposal 1: 0.8;
    # object 2 and the last image's object: nothing
    assert r["num_objects"] == 4
    assert r["recall"][0.5] == pytest.approx([0.25, 0.5, 0.5, 0.5])
    assert r["recall"][0.85] == pytest.approx([0.25, 0.25, 0.25, 0.25])
    assert r["counts"] == [1, 2, 3, 10]
    assert r["mean_proposals"] == pytest.approx(4 / 3)


def test_proposal_recall_without_objects_is_nan():
    r = proposal_recall([torch.tensor([[0.0, 0.0, 1.0, 1.0]])], [torch.zeros(0, 4)], counts=(1,))
    assert math.isnan(r["recall"][0.5][0])


def test_cached_proposals_run_once_per_image():
    calls = []

    def proposer(image):
        calls.append(1)
        return torch.tensor([[0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0]])

    cache = CachedProposals(proposer, max_proposals=2)
    a, b = torch.zeros(3, 8, 8), torch.ones(3, 8, 8)
    assert cache.precompute([a, (b, {}), a.clone()]) >= 0
    assert len(calls) == 2 and len(cache) == 2 and cache.computed == 2
    assert cache(a).shape == (2, 4) and len(calls) == 2
    assert cache.seconds >= 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image=torch.zeros(64, 64)), r"\[3, H, W\]"),
        (dict(image=torch.zeros(4, 8, 8)), r"\[3, H, W\]"),
        (dict(image=torch.full((3, 8, 8), 2.0)), r"\[0, 1\]"),
        (dict(image=torch.full((3, 8, 8), float("nan"))), "finite"),
        (dict(image=torch.zeros(3, 8, 8, dtype=torch.int32)), "dtype"),
        (dict(scale=0.0), "scale"),
        (dict(scale="big"), "scale"),
        (dict(sigma=-1.0), "sigma"),
        (dict(min_size=0), "min_size"),
        (dict(strategies=(("rgb", "CX"),)), "similarity"),
        (dict(strategies=(("xyz", "C"),)), "colour_space"),
        (dict(strategies="CTSF"), "strategies"),
        (dict(seed=-1), "seed"),
    ],
)
def test_selective_search_rejects_bad_input(kwargs, message):
    args = dict(image=torch.zeros(3, 8, 8))
    args.update(kwargs)
    image = args.pop("image")
    with pytest.raises(ValueError, match=message):
        selective_search(image, **args)


@pytest.mark.parametrize(
    "args, message",
    [
        (([torch.zeros(0, 4)], []), "one entry per image"),
        ((torch.zeros(1, 4), [torch.zeros(0, 4)]), "lists"),
        (([torch.tensor([[2.0, 0.0, 1.0, 1.0]])], [torch.zeros(0, 4)]), "x2 < x1"),
        (([torch.zeros(0, 4)], [torch.zeros(0, 3)]), r"\[N, 4\]"),
    ],
)
def test_proposal_recall_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        proposal_recall(*args)


def test_proposal_recall_rejects_bad_settings():
    p, g = [torch.zeros(0, 4)], [torch.zeros(0, 4)]
    with pytest.raises(ValueError, match="increasing"):
        proposal_recall(p, g, counts=(5, 2))
    with pytest.raises(ValueError, match="counts"):
        proposal_recall(p, g, counts=(0, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        proposal_recall(p, g, iou_thresholds=(1.5,))
    with pytest.raises(ValueError, match="callable"):
        CachedProposals("selective search")
    with pytest.raises(ValueError, match="max_proposals"):
        CachedProposals(max_proposals=0)
