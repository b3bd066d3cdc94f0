"""vizlib.roi returns what torchvision.ops.roi_pool / roi_align return, and its helpers show
the same bins and sample points the kernels use."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision import ops

from vizlib import roi as R


def random_rois(k, n_images, height, width, stride, seed, spill=0.3):
    """``k`` rows ``(batch index, x1, y1, x2, y2)`` in image pixels over ``n_images`` images
    whose feature maps are ``height x width`` at ``stride``; some spill over the border."""
    g = torch.Generator().manual_seed(seed)
    img_w, img_h = width * stride, height * stride
    wh = torch.rand(k, 2, generator=g) * torch.tensor([img_w, img_h]) * 0.8  # [k, 2]
    lo = (torch.rand(k, 2, generator=g) * (1 + 2 * spill) - spill) * torch.tensor([img_w, img_h])
    index = torch.randint(0, n_images, (k, 1), generator=g).float()
    return torch.cat([index, lo, lo + wh], dim=1)  # [k, 5]


def special_rois(height, width, stride):
    """Hand-picked rows: tiny, flat, on the borders, outside, half-cell corners."""
    w, h = width * stride, height * stride
    s = stride
    rows = [
        [0, 0, 0, w, h],  # the whole image
        [0, 0, 0, 0, 0],  # a point at the corner
        [0, 3.2 * s, 2.1 * s, 3.2 * s, 2.1 * s],  # a point inside
        [0, 1.0 * s, 1.0 * s, 1.3 * s, 4.0 * s],  # thinner than a cell
        [0, 2.5 * s, 1.5 * s, 4.5 * s, 3.5 * s],  # corners on half cells (rounding ties)
        [0, w - 0.2 * s, h - 0.3 * s, w, h],  # tiny, in the bottom-right corner
        [0, -2.0 * s, -3.0 * s, 0.5 * s, 1.0 * s],  # mostly outside, top-left
        [0, w - s, h - s, w + 3 * s, h + 2 * s],  # mostly outside, bottom-right
        [0, -5.0 * s, -5.0 * s, -2.0 * s, -2.0 * s],  # wholly outside: empty bins
        [0, w + s, 0, w + 4 * s, h],  # wholly outside on the right
        [0, 0, h - 1.0 * s, w, h + 0.9 * s],  # one row on the bottom border
    ]
    return torch.tensor(rows, dtype=torch.float32)


CONFIGS = [
    # (N, C, H, W, stride, output_size)
    (1, 3, 16, 16, 1, 7),
    (2, 4, 13, 19, 4, (3, 5)),
    (3, 2, 20, 11, 16, (7, 7)),
    (2, 5, 9, 9, 1, (1, 1)),
    (1, 1, 1, 1, 1, (2, 2)),  # a 1 x 1 map: every point reads the one pixel or nothing
    (2, 3, 7, 12, 2, (4, 2)),
]


def _case(config, seed, dtype=torch.float32):
    n, c, h, w, stride, out = config
    g = torch.Generator().manual_seed(100 + seed)
    x = torch.randn(n, c, h, w, generator=g).to(dtype)
    rois = torch.cat([random_rois(40, n, h, w, stride, seed), special_rois(h, w, stride)])
    return x, rois.to(dtype), out, 1.0 / stride


@pytest.mark.parametrize("config", range(len(CONFIGS)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_roi_pool_matches_torchvision(config, dtype):
    x, rois, out, scale = _case(CONFIGS[config], config, dtype)
    expected = ops.roi_pool(x, rois, out, scale)
    got = R.roi_pool(x, rois, out, scale)
    assert got.dtype == dtype and got.shape == expected.shape
    assert torch.equal(got, expected)  # a max picks one input value: exactly equal


@pytest.mark.parametrize("config", range(len(CONFIGS)))
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_matches_torchvision(config, sampling_ratio, aligned):
    x, rois, out, scale = _case(CONFIGS[config], config)
    expected = ops.roi_align(x, rois, out, scale, sampling_ratio, aligned)
    got = R.roi_align(x, rois, out, scale, sampling_ratio, aligned)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_float64_matches_torchvision_closely(aligned):
    x, rois, out, scale = _case(CONFIGS[2], 7, torch.float64)
    expected = ops.roi_align(x, rois, out, scale, -1, aligned)
    got = R.roi_align(x, rois, out, scale, -1, aligned)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    corners=st.lists(st.floats(-6.0, 30.0, width=32), min_size=4, max_size=4),
    out=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    scale=st.sampled_from([1.0, 0.5, 0.25, 1 / 16]),
    sampling_ratio=st.sampled_from([-1, 1, 2, 3]),
    aligned=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_roi_ops_match_torchvision_on_any_box(corners, out, scale, sampling_ratio, aligned, seed):
    x1, x2 = sorted(corners[:2])
    y1, y2 = sorted(corners[2:])
    rois = torch.tensor([[0.0, x1, y1, x2, y2]]) / torch.tensor([1, scale, scale, scale, scale])
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 2, 24, 20, generator=g)
    assert torch.equal(R.roi_pool(x, rois, out, scale), ops.roi_pool(x, rois, out, scale))
    torch.testing.assert_close(
        R.roi_align(x, rois, out, scale, sampling_ratio, aligned),
        ops.roi_align(x, rois, out, scale, sampling_ratio, aligned),
        atol=1e-5,
        rtol=1e-5,
    )


# --------------------------------------------------------------------------- the matrix form


@pytest.mark.parametrize("config", range(len(CONFIGS)))
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_matrices_match_torchvision_forward_and_backward(config, sampling_ratio, aligned):
    x, rois, out, scale = _case(CONFIGS[config], config, torch.float64)
    rois = rois[torch.randperm(len(rois), generator=torch.Generator().manual_seed(config))]
    x.requires_grad_(True)
    expected = ops.roi_align(x, rois, out, scale, max(sampling_ratio, 0), aligned)
    got = R.roi_align_matrices(x, rois, out, scale, sampling_ratio, aligned)
    assert got.dtype == torch.float64 and got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)
    # the gradient comes from autograd through the matrix products: it must be torchvision's
    grad = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    (want,) = torch.autograd.grad(expected, x, grad)
    (have,) = torch.autograd.grad(got, x, grad)
    torch.testing.assert_close(have, want, atol=1e-12, rtol=1e-12)


def test_roi_align_matrices_are_products_of_row_and_column_weights():
    # a RoI of 3 x 2 cells in 2 x 2 bins (1.5 cells wide, 1 high), one read per bin at
    # y = 0.5 + (p + 0.5) * 1 and x = 1 + (q + 0.5) * 1.5: inside the map, so each read's
    # weights are the hat max(0, 1 - |t - i|) along each axis
    x = torch.arange(20.0).reshape(1, 1, 4, 5)
    rois = torch.tensor([[0.0, 1.0, 0.5, 4.0, 2.5]])
    got = R.roi_align_matrices(x, rois, (2, 2), 1.0, 1, False)[0, 0]
    ys, xs = torch.tensor([1.0, 2.0]), torch.tensor([1.75, 3.25])
    rows = (1 - (ys[:, None] - torch.arange(4.0)).abs()).clamp(min=0)  # A: [2, H]
    cols = (1 - (xs[:, None] - torch.arange(5.0)).abs()).clamp(min=0)  # B: [2, W]
    torch.testing.assert_close(got, rows @ x[0, 0] @ cols.T)
    torch.testing.assert_close(got, R.roi_align(x, rois, (2, 2), 1.0, 1, False)[0, 0])


def test_roi_align_matrices_of_no_boxes_and_of_an_image_without_boxes():
    x = torch.randn(3, 2, 6, 6, requires_grad=True)
    assert R.roi_align_matrices(x, torch.zeros(0, 5), 3).shape == (0, 2, 3, 3)
    rois = torch.tensor([[2.0, 0, 0, 4, 4], [0.0, 1, 1, 5, 5]])  # image 1 has none
    got = R.roi_align_matrices(x, rois, 3, 1.0, 2)
    torch.testing.assert_close(got, ops.roi_align(x, rois, 3, 1.0, 2))
    got.sum().backward()
    assert not bool(x.grad[1].any()), "an image without a box gets no gradient"


def test_list_of_boxes_per_image_is_the_same_as_rows():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 4, 10, 12, generator=g)
    per_image = [
        torch.tensor([[0.0, 0, 20, 20], [4, 6, 30, 18]]),
        torch.zeros(0, 4),
        torch.tensor([[10.0, 2, 44, 38]]),
    ]
    rows = R.to_rois(per_image, 3)
    assert rows.tolist() == [
        [0, 0, 0, 20, 20],
        [0, 4, 6, 30, 18],
        [2, 10, 2, 44, 38],
    ]
    for fn, ref in ((R.roi_pool, ops.roi_pool), (R.roi_align, ops.roi_align)):
        got = fn(x, per_image, (3, 2), 0.25)
        assert torch.equal(got, fn(x, rows, (3, 2), 0.25))
        torch.testing.assert_close(got, ref(x, per_image, (3, 2), 0.25), atol=1e-6, rtol=1e-6)


def test_no_boxes_give_an_empty_batch_and_inputs_are_not_modified():
    x = torch.randn(2, 3, 5, 5)
    rois = torch.tensor([[1.0, 0.5, 0.5, 3.5, 3.5]])
    x0, r0 = x.clone(), rois.clone()
    assert R.roi_pool(x, torch.zeros(0, 5), 2).shape == (0, 3, 2, 2)
    assert R.roi_align(x, [torch.zeros(0, 4)], (2, 3)).shape == (0, 3, 2, 3)
    R.roi_pool(x, rois, 2)
    R.roi_align(x, rois, 2)
    assert torch.equal(x, x0) and torch.equal(rois, r0)


# --------------------------------------------------------------------------- by hand


def test_roi_pool_by_hand():
    # a 6 x 6 map whose value is 10 * row + column: a bin's max is its bottom-right cell
    f = (10 * torch.arange(6.0)[:, None] + torch.arange(6.0)[None, :])[None, None]
    # box (1.4, 0.6, 4.4, 3.2) rounds to cells x 1..4, y 1..3 (4 wide, 3 high)
    bins = R.roi_pool_bins(torch.tensor([1.4, 0.6, 4.4, 3.2]), 2, feature_size=(6, 6))
    assert bins.roi == (1, 1, 4, 3)
    # rows: 3 cells in 2 bins of 1.5: [floor(0), ceil(1.5)) = [0, 2) and [floor(1.5), 3) = [1, 3)
    assert bins.rows.tolist() == [[1, 3], [2, 4]]  # the two bin rows share row 2
    assert bins.cols.tolist() == [[1, 3], [3, 5]]
    out = R.roi_pool(f, torch.tensor([[0, 1.4, 0.6, 4.4, 3.2]]), 2)
    assert out[0, 0].tolist() == [[22, 24], [32, 34]]


def test_roi_pool_rounds_halves_away_from_zero_as_c_does():
    # torch.round(2.5) == 2 (to even); the kernel's C round(2.5) == 3
    assert R.roi_pool_bins(torch.tensor([2.5, 0.5, 4.5, 1.5]), 1).roi == (3, 1, 5, 2)
    assert R.roi_pool_bins(torch.tensor([-2.5, -0.5, -0.5, 0.0]), 1).roi == (-3, -1, -1, 0)
    f = torch.arange(8.0)[None, None, None, :].expand(1, 1, 2, 8).contiguous()
    rois = torch.tensor([[0, 1.5, 0, 2.5, 1]])  # cells 2..3, not 2..2
    assert R.roi_pool(f, rois, (1, 2))[0, 0, 0].tolist() == [2.0, 3.0]
    assert torch.equal(R.roi_pool(f, rois, (1, 2)), ops.roi_pool(f, rois, (1, 2)))


def test_roi_pool_bins_are_what_roi_pool_max_pools():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 3, 12, 15, generator=g)
    for roi in random_rois(30, 1, 12, 15, 4, seed=9):
        bins = R.roi_pool_bins(roi[1:], (3, 4), 0.25, feature_size=(12, 15))
        want = torch.zeros(3, 3, 4)
        for i, (r0, r1) in enumerate(bins.rows.tolist()):
            for j, (c0, c1) in enumerate(bins.cols.tolist()):
                if r1 > r0 and c1 > c0:
                    want[:, i, j] = x[0, :, r0:r1, c0:c1].flatten(1).max(dim=1).values
        assert torch.equal(R.roi_pool(x, roi[None], (3, 4), 0.25)[0], want)


def test_bilinear_sample_by_hand_and_at_the_borders():
    f = torch.tensor([[[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]]])  # [1, 2, 3]: 10 * row + col
    y = torch.tensor([0.0, 0.5, 0.25, -0.5, -1.0, -1.01, 1.5, 2.0, 2.01, 0.5, 0.5, 0.5, 0.5])
    x = torch.tensor([0.0, 0.5, 1.75, 1.0, 0.0, 0.0, 1.0, 2.0, 0.0, -1.0, -1.01, 2.5, 3.01])
    want = [
        0.0,  # on a pixel
        5.5,  # the middle of four
        4.25,  # 10 * 0.25 + 1.75
        1.0,  # above row 0, within a pixel: reads row 0
        0.0,  # y = -1 still reads row 0 (column 0)
        0.0,  # y < -1: nothing
        11.0,  # past the last row: the last row
        12.0,  # y = H, x = W - 1 : still read
        0.0,  # y > H: nothing
        5.0,  # x = -1: column 0
        0.0,  # x < -1: nothing
        7.0,  # past the last column: that column
        0.0,  # x > W: nothing
    ]
    assert R.bilinear_sample(f, y, x)[0].tolist() == pytest.approx(want)
    # 2-d points keep their shape; every channel is read
    f2 = torch.stack([f[0], -f[0]])  # [2, 2, 3]
    v = R.bilinear_sample(f2, y.view(13, 1), x.view(13, 1))
    assert v.shape == (2, 13, 1) and torch.equal(v[1], -v[0])


def test_bilinear_sample_is_roi_align_with_one_point():
    g = torch.Generator().manual_seed(2)
    f = torch.randn(3, 6, 7, generator=g)
    y = torch.rand(40, generator=g) * 9 - 1.5  # some beyond the borders
    x = torch.rand(40, generator=g) * 10 - 1.5
    # aligned: the box (x, y, x + 1, y + 1) moves to (x - 0.5, ...): its one sample is (y, x)
    rois = torch.stack([torch.zeros(40), x, y, x + 1, y + 1], dim=1)
    ref = ops.roi_align(f[None], rois, 1, 1.0, 1, True)[:, :, 0, 0]  # [40, C]
    torch.testing.assert_close(R.bilinear_sample(f, y, x).T, ref, atol=1e-5, rtol=1e-5)
    # a linear map is reproduced exactly inside the pixel centres
    lin = (2 * torch.arange(6.0)[:, None] + 3 * torch.arange(7.0)[None, :])[None]
    yi, xi = torch.rand(20, generator=g) * 5, torch.rand(20, generator=g) * 6
    torch.testing.assert_close(R.bilinear_sample(lin, yi, xi)[0], 2 * yi + 3 * xi)


def test_roi_align_points_by_hand():
    # box 0..8 x 0..4 at scale 1, 2 x 2 bins of 4 x 2 pixels; adaptive: 2 x 4 samples
    p = R.roi_align_points(torch.tensor([0.0, 0.0, 8.0, 4.0]), 2)
    assert p.shape == (2, 2, 2, 4, 2)
    assert p[0, 0, :, 0, 0].tolist() == [0.5, 1.5]  # y of the first bin's rows of samples
    assert p[0, 0, 0, :, 1].tolist() == [0.5, 1.5, 2.5, 3.5]
    assert p[1, 1, 1, 3].tolist() == [3.5, 7.5]  # the last point
    # aligned: half a pixel up and left; sampling ratio 1: the bin centres
    q = R.roi_align_points(torch.tensor([0.0, 0.0, 8.0, 4.0]), 2, 1.0, 1, True)
    assert q.shape == (2, 2, 1, 1, 2)
    assert q[:, :, 0, 0].tolist() == [[[0.5, 1.5], [0.5, 5.5]], [[2.5, 1.5], [2.5, 5.5]]]
    # stride 16, the adaptive count is ceil(bin size in cells)
    r = R.roi_align_points(torch.tensor([0.0, 0.0, 200.0, 100.0]), 7, 1 / 16)
    assert r.shape[2:4] == (math.ceil(100 / 16 / 7), math.ceil(200 / 16 / 7)) == (1, 2)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_align_is_the_average_of_bilinear_samples_at_its_points(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(4)
    f = torch.randn(2, 14, 11, generator=g)
    box = torch.tensor([3.0, 5.0, 33.0, 50.0])
    pts = R.roi_align_points(box, (3, 2), 0.25, sampling_ratio, aligned)  # [3, 2, sy, sx, 2]
    want = R.bilinear_sample(f, pts[..., 0], pts[..., 1]).mean(dim=(-2, -1))  # [C, 3, 2]
    rois = torch.cat([torch.zeros(1), box])[None]
    got = ops.roi_align(f[None], rois, (3, 2), 0.25, sampling_ratio, aligned)[0]
    torch.testing.assert_close(want, got, atol=1e-5, rtol=1e-5)


# --------------------------------------------------------------------------- quantisation


def test_quantisation_error_by_hand():
    # cells 0..6 (7, the last counted in) into 2 bins of 3.5: [0, 4) and [3, 7);
    # exact bins [0, 3] and [3, 6]: edge offsets 0, 1, 0, 1 on each axis
    assert R.quantisation_error(torch.tensor([0.0, 0.0, 6.0, 6.0]), 2) == pytest.approx(0.5)
    # a box on cell borders at stride 16 still pools 8 cells into 7 bins: every bin's end
    # is one cell late, its start exact: 0.5 cells = 8 image pixels on average
    box = torch.tensor([0.0, 0.0, 112.0, 112.0])
    assert R.roi_pool_bins(box, 7, 1 / 16).cols[:, 1].tolist() == [2, 3, 4, 5, 6, 7, 8]
    assert R.quantisation_error(box, 7, 1 / 16) == pytest.approx(0.5)
    # shifting the box by 0.4 cell moves no bin of RoI pooling: starts now 0.4 early, ends
    # 0.6 late; by 0.6 cell every corner rounds up a cell: starts 0.4 late, ends 1.4 late
    moved = box + 0.4 * 16
    a, b = R.roi_pool_bins(moved, 7, 1 / 16), R.roi_pool_bins(box, 7, 1 / 16)
    assert a.roi == b.roi and torch.equal(a.rows, b.rows) and torch.equal(a.cols, b.cols)
    assert R.quantisation_error(moved, 7, 1 / 16) == pytest.approx((0.4 + 0.6) / 2)
    assert R.quantisation_error(box + 0.6 * 16, 7, 1 / 16) == pytest.approx((0.4 + 1.4) / 2)


def test_the_classic_vgg16_example():
    # Fast R-CNN on VGG16: a 600 x 800 image, conv5_3 at stride 16 is 38 x 50 x 512, and
    # every RoI becomes 512 x 7 x 7 (25,088 numbers) for fc6
    g = torch.Generator().manual_seed(16)
    conv5 = torch.randn(1, 512, 38, 50, generator=g)
    rois = torch.tensor([[0, 100.0, 60.0, 300.0, 245.0], [0, 0, 0, 799, 599], [0, 30, 40, 62, 50]])
    pooled = R.roi_pool(conv5, rois, (7, 7), 1 / 16)
    assert pooled.shape == (3, 512, 7, 7) and pooled[0].numel() == 25_088
    assert torch.equal(pooled, ops.roi_pool(conv5, rois, (7, 7), 1 / 16))
    torch.testing.assert_close(
        R.roi_align(conv5, rois, (7, 7), 1 / 16, 2), ops.roi_align(conv5, rois, (7, 7), 1 / 16, 2)
    )
    # the first RoI: x 6.25..18.75 -> cells 6..19, y 3.75..15.3 -> cells 4..15
    bins = R.roi_pool_bins(rois[0, 1:], 7, 1 / 16, feature_size=(38, 50))
    assert bins.roi == (6, 4, 19, 15)
    assert bins.cols.tolist() == [[6 + 2 * j, 8 + 2 * j] for j in range(7)]
    # on average its bin edges are 0.57 cells (9 image pixels) from the exact ones
    assert R.quantisation_error(rois[0, 1:], 7, 1 / 16) == pytest.approx(0.5660, abs=1e-4)
    # the small RoI (2 x 0.6 cells): y 2.5..3.125 rounds to the one row 3 (2.5 -> 3, away
    # from zero), and its 3 columns feed 7 bins that overlap
    small = R.roi_pool_bins(rois[2, 1:], 7, 1 / 16)
    assert small.roi == (2, 3, 4, 3) and small.rows.tolist() == [[3, 4]] * 7
    assert small.cols.tolist() == [[2, 3], [2, 3], [2, 4], [3, 4], [3, 5], [4, 5], [4, 5]]
    assert R.quantisation_error(rois[2, 1:], 7, 1 / 16) == pytest.approx(0.7034, abs=1e-4)


# --------------------------------------------------------------------------- errors

X = torch.zeros(2, 3, 8, 8)
ROIS = torch.tensor([[0, 1.0, 1.0, 5.0, 5.0]])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"input": torch.zeros(3, 8, 8)}, r"input must be a floating tensor \[N, C, H, W\]"),
        ({"input": torch.zeros(1, 3, 8, 8, dtype=torch.int64)}, "floating tensor"),
        ({"input": [[1.0]]}, "got list"),
        ({"input": torch.zeros(1, 3, 0, 8)}, "H, W >= 1"),
        ({"boxes": torch.tensor([[1.0, 1.0, 5.0, 5.0]])}, r"pass a list: \[boxes\]"),
        ({"boxes": torch.zeros(3)}, r"Tensor\[K, 5\]"),
        ({"boxes": "box"}, "got str"),
        ({"boxes": torch.tensor([[0, 5.0, 1.0, 1.0, 5.0]])}, "x2 < x1"),
        ({"boxes": torch.tensor([[0, 1.0, float("nan"), 5.0, 5.0]])}, "finite"),
        ({"boxes": torch.tensor([[2, 1.0, 1.0, 5.0, 5.0]])}, r"batch index in \[0, 1\]"),
        ({"boxes": torch.tensor([[0.5, 1.0, 1.0, 5.0, 5.0]])}, "batch index"),
        ({"boxes": torch.tensor([[-1, 1.0, 1.0, 5.0, 5.0]])}, "batch index"),
        ({"boxes": [torch.zeros(0, 4)] * 3}, "3 tensors .* only 2 images"),
        ({"boxes": [torch.zeros(1, 5)]}, r"boxes\[0\] must have shape \[N, 4\]"),
        ({"output_size": 0}, "output_size must be >= 1"),
        ({"output_size": (2, -1)}, r"output_size\[1\] must be >= 1"),
        ({"output_size": (2, 2, 2)}, "pair"),
        ({"output_size": 2.5}, "must be an int"),
        ({"spatial_scale": 0.0}, "spatial_scale must be > 0"),
        ({"spatial_scale": -0.25}, "spatial_scale must be > 0"),
        ({"spatial_scale": float("inf")}, "finite"),
    ],
)
@pytest.mark.parametrize(
    "fn",
    [R.roi_pool, R.roi_align, R.roi_align_matrices],
    ids=["roi_pool", "roi_align", "roi_align_matrices"],
)
def test_bad_input_raises_clear_errors(fn, kwargs, match):
    args = {"input": X, "boxes": ROIS, "output_size": 2, "spatial_scale": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        fn(**args)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sampling_ratio": 0}, "sampling_ratio must be -1 .* or a positive int"),
        ({"sampling_ratio": -2}, "sampling_ratio must be -1"),
        ({"sampling_ratio": 1.5}, "sampling_ratio must be an int"),
        ({"aligned": 1}, "aligned must be True or False"),
    ],
)
def test_roi_align_option_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        R.roi_align(X, ROIS, 2, **kwargs)
    with pytest.raises(ValueError, match=match):
        R.roi_align_matrices(X, ROIS, 2, **kwargs)
    with pytest.raises(ValueError, match=match):
        R.roi_align_points(torch.tensor([1.0, 1.0, 5.0, 5.0]), 2, **kwargs)


def test_helper_errors():
    box = torch.tensor([1.0, 1.0, 5.0, 5.0])
    with pytest.raises(ValueError, match=r"box must be 4 numbers"):
        R.roi_pool_bins(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="x2 < x1"):
        R.quantisation_error(torch.tensor([5.0, 1.0, 1.0, 5.0]), 2)
    with pytest.raises(ValueError, match="feature_size"):
        R.roi_pool_bins(box, 2, 1.0, feature_size=(0, 4))
    with pytest.raises(ValueError, match="spatial_scale"):
        R.quantisation_error(box, 2, spatial_scale=0)
    with pytest.raises(ValueError, match=r"feature must be a tensor \[C, H, W\]"):
        R.bilinear_sample(torch.zeros(1, 1, 4, 4), torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="same shape"):
        R.bilinear_sample(torch.zeros(1, 4, 4), torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        R.bilinear_sample(torch.zeros(1, 4, 4), torch.tensor([float("nan")]), torch.zeros(1))
    with pytest.raises(ValueError, match="H, W >= 1"):
        R.bilinear_sample(torch.zeros(1, 0, 4), torch.zeros(1), torch.zeros(1))
