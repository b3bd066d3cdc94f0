"""Trimap (boundary band) mIoU: the band, and the metric against a hand example."""

from __future__ import annotations

import pytest
import torch

from vizlib.metrics import SegmentationMetric
from vizlib.metrics.boundary import TrimapMetric, boundary_band, boundary_mask


def two_halves(h=6, w=8, split=4):
    t = torch.zeros(h, w, dtype=torch.long)
    t[:, split:] = 1
    return t


def test_boundary_of_two_halves_is_the_two_columns_that_meet():
    edge = boundary_mask(two_halves())
    want = torch.zeros(6, 8, dtype=torch.bool)
    want[:, 3:5] = True
    assert torch.equal(edge, want)


def test_a_uniform_map_has_no_boundary_and_ignore_makes_none():
    assert not boundary_mask(torch.full((5, 5), 3)).any()
    t = torch.zeros(5, 5, dtype=torch.long)
    t[2, 2] = 255
    assert not boundary_mask(t).any()
    assert boundary_mask(t, ignore_index=None).sum() == 5  # the pixel and its 4 neighbours


@pytest.mark.parametrize("width", [0, 1, 2, 5])
def test_band_width_is_a_chebyshev_dilation(width):
    band = boundary_band(two_halves(6, 16, 8), width)
    cols = band.any(dim=0).nonzero().flatten().tolist()
    assert cols == list(range(max(0, 7 - width), min(16, 9 + width)))
    assert band.all(dim=0).eq(band.any(dim=0)).all()  # whole columns


def test_band_keeps_leading_dimensions():
    maps = torch.stack([two_halves(), two_halves().flip(-1), torch.zeros(6, 8, dtype=torch.long)])
    band = boundary_band(maps, 1)
    assert band.shape == (3, 6, 8)
    assert torch.equal(band[0], boundary_band(maps[0], 1)) and not band[2].any()


def test_trimap_miou_by_hand():
    target = two_halves()  # columns 0-3 class 0, 4-7 class 1
    pred = target.clone()
    pred[:, 4] = 0  # the prediction's edge is one column late
    metric = TrimapMetric(2, width=0)  # band: columns 3 and 4
    metric.update(pred, target)
    # in the band: class 0 TP 6 (col 3), FP 6 (col 4); class 1 TP 0, FN 6
    scores = metric.compute()
    assert scores.per_class_iou.tolist() == [0.5, 0.0]
    assert scores.miou == 0.25
    # a wide band covers everything: the ordinary mIoU
    wide, full = TrimapMetric(2, width=10), SegmentationMetric(2)
    wide.update(pred, target)
    full.update(pred, target)
    assert wide.compute().miou == pytest.approx(full.compute().miou)


def test_bad_input():
    with pytest.raises(ValueError, match="width"):
        boundary_band(two_halves(), -1)
    with pytest.raises(ValueError, match="labels"):
        boundary_mask(torch.rand(4, 4))
    with pytest.raises(ValueError, match="labels"):
        boundary_mask(torch.zeros(4, dtype=torch.long))
