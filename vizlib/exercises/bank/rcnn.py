"""Exercises of the chapter on R-CNN and Fast R-CNN: RoI pooling of one RoI (Girshick 2015),
and the bilinear interpolation RoIAlign reads the feature map with (He et al. 2017).

Expected values come from ``torchvision.ops.roi_pool`` and from
``vizlib.roi.bilinear_sample`` (proven equal to ``torchvision.ops.roi_align`` with one
sample per bin in tests/test_roi.py), plus hand-computed cases."""

from __future__ import annotations

import math

from ..spec import EDGE_WEIGHT, Case, exercise, hidden

_NOT_THE_ANSWER = ("vizlib.exercises",)


def _float_rounding_matters(cells: int, bins: int) -> bool:
    """True when float32 (torchvision), float64 and exact integer arithmetic disagree on a
    bin edge of ``cells`` cells split into ``bins`` bins (e.g. 29 cells in 7 bins), so that
    the cases never depend on how the reader computes ``k * cells / bins``."""
    import numpy as np

    size32 = np.float32(cells) / np.float32(bins)
    for k in range(bins):
        starts = {
            int(np.floor(np.float32(k) * size32)),
            (k * cells) // bins,
            math.floor(k * (cells / bins)),
        }
        ends = {
            int(np.ceil(np.float32(k + 1) * size32)),
            -((-(k + 1) * cells) // bins),
            math.ceil((k + 1) * (cells / bins)),
        }
        if len(starts) > 1 or len(ends) > 1:
            return True
    return False


def _c_round(v: float) -> int:
    # C's round(): halves away from zero
    return int(math.copysign(math.floor(abs(v) + 0.5), v)) if v else 0


@exercise(
    "rcnn.roi_pool_one",
    title="RoI pooling of one RoI",
    function="roi_pool_one",
    points=4,
    hint="1) the RoI on the map: multiply the box by spatial_scale and round each corner "
    "(halves away from zero, as C's round: 2.5 -> 3; math.floor(v + 0.5) for v >= 0). "
    "2) it covers the cells x1..x2 and y1..y2, both ends included: roi_w = max(x2 - x1 + 1, 1). "
    "3) bin i of h covers rows y1 + floor(i * roi_h / h) up to y1 + ceil((i + 1) * roi_h / h) "
    "(end excluded), clipped to [0, H]; same for columns. 4) each bin's output is the max "
    "over its cells, per channel; an empty bin (end <= start after clipping) gives 0.",
    forbidden=(
        "roi_pool",
        "roi_align",
        "RoIPool",
        "MultiScaleRoIAlign",
        "torchvision.ops",
        "vizlib.roi",
    )
    + _NOT_THE_ANSWER,
)
def _roi_pool_one_cases():
    import torch
    from torchvision.ops import roi_pool

    def expected(feature, box, output_size, scale):
        rois = torch.cat([torch.zeros(1), box])[None]  # [1, 5]: image 0
        return roi_pool(feature[None], rois, output_size, scale)[0]  # [C, h, w]

    grid = (10 * torch.arange(6.0)[:, None] + torch.arange(6.0)[None, :])[None]  # [1, 6, 6]
    yield Case(
        "a 6 x 6 map of 10 * row + column, box (1.4, 0.6, 4.4, 3.2) into 2 x 2: each bin's "
        "max is its bottom-right cell",
        (grid, torch.tensor([1.4, 0.6, 4.4, 3.2]), (2, 2), 1.0),
        expected=torch.tensor([[[22.0, 24.0], [32.0, 34.0]]]),
        hint="the box rounds to cells x 1..4 and y 1..3; the 3 rows split into bins "
        "[1, 3) and [2, 4): floor for the start, ceil for the end, so the bins share row 2",
    )
    yield Case(
        "a box on cells 0..3 of a 4 x 4 map into 4 x 4 bins: one cell per bin, the map itself",
        (grid[:, :4, :4], torch.tensor([0.0, 0.0, 3.0, 3.0]), (4, 4), 1.0),
        expected=grid[:, :4, :4].clone(),
        hint="the last cell counts: x1 = 0, x2 = 3 is 4 cells wide",
    )
    ramp = torch.arange(8.0)[None, None, :].expand(2, 2, 8) * torch.tensor([[[1.0]], [[-1.0]]])
    yield Case(
        "corners at 1.5 and 2.5 round to 2 and 3 (halves away from zero), two channels",
        (ramp.contiguous(), torch.tensor([1.5, 0.0, 2.5, 1.0]), (1, 2), 1.0),
        expected=torch.tensor([[[2.0, 3.0]], [[-2.0, -3.0]]]),
        hint="torch.round and Python's round take halves to even (2.5 -> 2); C's round, "
        "which torchvision uses, takes them away from zero (2.5 -> 3)",
    )
    g = torch.Generator().manual_seed(31)
    conv5 = torch.randn(4, 12, 16, generator=g)  # a stride-16 map of a 192 x 256 image
    box = torch.tensor([40.0, 20.0, 200.0, 150.0])
    yield Case(
        "stride 16 (spatial_scale 1/16), a 160 x 130 px box into 7 x 7, 4 channels",
        (conv5, box, (7, 7), 1 / 16),
        expected=expected(conv5, box, (7, 7), 1 / 16),
        hint="multiply the box by spatial_scale before rounding",
    )
    yield Case(
        "a non-square output (2 x 3)",
        (conv5, box, (2, 3), 1 / 16),
        expected=expected(conv5, box, (2, 3), 1 / 16),
        hint="output_size is (h, w): h bins down (rows, y), w bins across (columns, x)",
    )
    small = torch.tensor([70.0, 50.0, 90.0, 60.0])  # about 1 x 1 cell: bins overlap
    yield Case(
        "a RoI smaller than the output: several bins read the same cell",
        (conv5, small, (3, 3), 1 / 16),
        expected=expected(conv5, small, (3, 3), 1 / 16),
    )
    outside = torch.tensor([-30.0, -40.0, 60.0, 50.0])
    yield Case(
        "a box partly outside the image: bins are clipped to the map, empty bins give 0",
        (conv5, outside, (4, 4), 1 / 16),
        expected=expected(conv5, outside, (4, 4), 1 / 16),
        hint="clip each bin's start and end to [0, H] (rows) and [0, W] (columns); a bin "
        "whose end <= start after clipping outputs 0",
    )
    gone = torch.tensor([300.0, 10.0, 400.0, 90.0])
    yield Case(
        "a box wholly outside the map: every bin is empty, the output is all 0",
        (conv5, gone, (2, 2), 1 / 16),
        expected=torch.zeros(4, 2, 2),
        weight=EDGE_WEIGHT,
    )
    feature = torch.randn(3, 20, 24, generator=g)
    n = 0
    while n < 12:
        xy = torch.rand(2, generator=g) * torch.tensor([24.0, 20.0]) * 4 - 8  # scale 1/4
        wh = torch.rand(2, generator=g) * 50 + 1
        b = torch.cat([xy, xy + wh])
        out = (
            int(torch.randint(1, 8, (1,), generator=g)),
            int(torch.randint(1, 8, (1,), generator=g)),
        )
        x1, y1, x2, y2 = (_c_round(float(v) * 0.25) for v in b)
        if _float_rounding_matters(max(y2 - y1 + 1, 1), out[0]) or _float_rounding_matters(
            max(x2 - x1 + 1, 1), out[1]
        ):
            continue  # the bin edges would depend on float32 vs float64
        n += 1
        yield Case(
            f"random box {n} at spatial_scale 1/4 into {out[0]} x {out[1]}: agrees with "
            "torchvision.ops.roi_pool",
            (feature, b, out, 0.25),
            expected=expected(feature, b, out, 0.25),
        )


@exercise(
    "rcnn.bilinear_sample",
    title="Bilinear interpolation of a feature map",
    function="bilinear_sample",
    points=3,
    hint="Pixel (i, j) sits at the point (y, x) = (i, j). A point whose y < -1, y > H, "
    "x < -1 or x > W gives 0. Otherwise clamp y and x up to 0; take y0 = floor(y), "
    "y1 = y0 + 1, but if y0 >= H - 1 use y0 = y1 = H - 1 and y = H - 1 (same for x). "
    "With ly = y - y0, lx = x - x0 the value is (1-ly)(1-lx) f[y0, x0] + (1-ly) lx f[y0, x1] "
    "+ ly (1-lx) f[y1, x0] + ly lx f[y1, x1]. Index all points at once: feature[:, y0, x0] "
    "is [C, P].",
    forbidden=(
        "roi_align",
        "roi_pool",
        "grid_sample",
        "interpolate",
        "torchvision.ops",
        "vizlib.roi",
    )
    + _NOT_THE_ANSWER,
)
def _bilinear_cases():
    import torch

    from vizlib.roi import bilinear_sample

    f = torch.tensor([[[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]]])  # [1, 2, 3]: 10 * row + column

    def pts(*values):
        return torch.tensor(values, dtype=torch.float32)

    yield Case(
        "on pixels: the pixels' values",
        (f, pts(0.0, 1.0, 1.0), pts(0.0, 2.0, 0.0)),
        expected=torch.tensor([[0.0, 12.0, 10.0]]),
        hint="pixel (i, j) is at y = i, x = j: no half-pixel shift here",
    )
    yield Case(
        "between pixels: (0.5, 0.5) is the mean of four, (0.25, 1.75) is 10 * 0.25 + 1.75",
        (f, pts(0.5, 0.25), pts(0.5, 1.75)),
        expected=torch.tensor([[5.5, 4.25]]),
    )
    yield Case(
        "within one pixel outside the map: the border's value (y -0.5 and -1, x -1, y past "
        "the last row)",
        (f, pts(-0.5, -1.0, 0.5, 1.5, 2.0), pts(1.0, 0.0, -1.0, 1.0, 2.0)),
        expected=torch.tensor([[1.0, 0.0, 5.0, 11.0, 12.0]]),
        hint="clamp y and x up to 0; from row H - 1 on, read row H - 1 alone (y = H still counts)",
    )
    yield Case(
        "more than one pixel outside (y < -1, y > H, x < -1, x > W): 0",
        (f, pts(-1.01, 2.01, 0.5, 0.5), pts(0.0, 0.0, -1.01, 3.01)),
        expected=torch.zeros(1, 4),
        hint="test the four limits before clamping: -1 <= y <= H and -1 <= x <= W",
        weight=EDGE_WEIGHT,
    )
    two = torch.stack([f[0], -2 * f[0]])  # [2, 2, 3]
    yield Case(
        "two channels: [C, P] out, each channel interpolated the same way",
        (two, pts(0.5, 1.0), pts(0.5, 0.25)),
        expected=torch.tensor([[5.5, 10.25], [-11.0, -20.5]]),
    )
    g = torch.Generator().manual_seed(44)
    feature = torch.randn(4, 9, 11, generator=g)
    y = torch.rand(200, generator=g) * 12 - 2  # some beyond every border
    x = torch.rand(200, generator=g) * 14 - 2
    yield Case(
        "200 random points on a 4 x 9 x 11 map, some outside: agrees with vizlib.roi "
        "(RoIAlign's interpolation)",
        (feature, y, x),
        expected=bilinear_sample(feature, y, x),
    )
    yield Case(
        "no points: [C, 0]",
        (feature, torch.zeros(0), torch.zeros(0)),
        expected=torch.zeros(4, 0),
        weight=EDGE_WEIGHT,
    )


# ---------------------------------------------------------------- hidden cases
# Drawn at grading time from the instructor's secret (vizlib.exercises.spec.hidden): the
# same kinds of input as the random public cases, unknown without the secret.


@hidden("rcnn.roi_pool_one")
def _roi_pool_one_hidden(g):
    import torch
    from torchvision.ops import roi_pool

    n = 0
    while n < 4:
        scale = (1.0, 0.5, 0.25, 0.125, 1 / 16)[int(torch.randint(0, 5, (1,), generator=g))]
        channels = int(torch.randint(1, 5, (1,), generator=g))
        height, width = (int(v) for v in torch.randint(4, 25, (2,), generator=g))
        feature = torch.randn(channels, height, width, generator=g)
        size = torch.tensor([width / scale, height / scale])
        xy = torch.rand(2, generator=g) * size * 0.9 - 0.1 * size
        wh = torch.rand(2, generator=g) * size * 0.8 + 1
        b = torch.cat([xy, xy + wh])
        out = tuple(int(v) for v in torch.randint(1, 8, (2,), generator=g))
        x1, y1, x2, y2 = (_c_round(float(v) * scale) for v in b)
        if _float_rounding_matters(max(y2 - y1 + 1, 1), out[0]) or _float_rounding_matters(
            max(x2 - x1 + 1, 1), out[1]
        ):
            continue  # the bin edges would depend on float32 vs float64
        n += 1
        rois = torch.cat([torch.zeros(1), b])[None]  # [1, 5]: image 0
        yield Case(
            f"a random box and map ({n})",
            (feature, b, out, scale),
            expected=roi_pool(feature[None], rois, out, scale)[0],
        )


@hidden("rcnn.bilinear_sample")
def _bilinear_hidden(g):
    import torch

    from vizlib.roi import bilinear_sample

    for k in range(3):
        channels, height, width = (int(v) for v in torch.randint(1, 14, (3,), generator=g))
        feature = torch.randn(channels, height, width, generator=g)
        points = int(torch.randint(1, 120, (1,), generator=g))
        y = torch.rand(points, generator=g) * (height + 3) - 2
        x = torch.rand(points, generator=g) * (width + 3) - 2
        yield Case(
            f"random points on a random map ({k + 1})",
            (feature, y, x),
            expected=bilinear_sample(feature, y, x),
        )
