"""vizlib.upsampling against torch: F.interpolate, F.max_pool2d/max_unpool2d, ConvTranspose2d."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from vizlib.upsampling import (
    bed_of_nails,
    bicubic,
    bilinear,
    bilinear_conv_transpose,
    bilinear_kernel,
    bilinear_upsampling_weights,
    cubic_weight,
    max_pool_with_switches,
    max_unpool,
    nearest,
    source_coordinates,
)

TOL = dict(atol=1e-5, rtol=0)


def as_batch(x):
    """F.interpolate and pooling want [N, C, H, W]; our functions also take [H, W]."""
    return x if x.dim() == 4 else x[None, None]


# -------------------------------------------------------------------- nearest, bed of nails


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 4, 6)])
def test_nearest_equals_interpolate(factor, shape):
    x = torch.randn(shape)
    want = F.interpolate(as_batch(x), scale_factor=factor, mode="nearest")
    assert torch.equal(as_batch(nearest(x, factor)), want)


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_bed_of_nails_is_a_strided_transposed_conv_with_a_one(factor):
    x = torch.randn(2, 3, 4, 5)
    out = bed_of_nails(x, factor)
    assert out.shape == (2, 3, 4 * factor, 5 * factor)
    assert torch.equal(out[..., ::factor, ::factor], x)
    assert out.count_nonzero() == x.count_nonzero()  # zeros everywhere else
    # the same thing as a transposed convolution: 1x1 kernel of one, stride = factor
    ones = torch.ones(3, 1, 1, 1)
    want = F.conv_transpose2d(x, ones, stride=factor, output_padding=factor - 1, groups=3)
    assert torch.equal(out, want)


# --------------------------------------------------------------------- max pool / unpool


def test_max_pool_with_switches_and_unpool_equal_torch():
    rng = random.Random(0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        k = rng.randint(1, 4)
        h, w = rng.randint(k, 11), rng.randint(k, 11)  # often not a multiple of k
        shape = rng.choice([(h, w), (rng.randint(1, 2), rng.randint(1, 3), h, w)])
        if rng.random() < 0.3:  # small integers: many ties inside a window
            x = torch.randint(0, 3, shape, generator=gen).float()
        else:
            x = torch.randn(shape, generator=gen)
        pooled, switches = max_pool_with_switches(x, k)
        want, want_switches = F.max_pool2d(as_batch(x), k, return_indices=True)
        assert torch.equal(as_batch(pooled), want)
        assert torch.equal(as_batch(switches), want_switches)
        unpooled = max_unpool(pooled, switches, (h, w))
        want_unpooled = F.max_unpool2d(want, want_switches, k, output_size=(h, w))
        assert torch.equal(as_batch(unpooled), want_unpooled)


def test_unpool_puts_each_maximum_back_in_place():
    x = torch.tensor([[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 9.0, 1.0]])
    pooled, switches = max_pool_with_switches(x, 2)
    assert pooled.tolist() == [[5.0, 9.0]] and switches.tolist() == [[1, 6]]
    assert max_unpool(pooled, switches, (2, 4)).tolist() == [[0, 5, 0, 0], [0, 0, 9, 0]]


# ------------------------------------------------------------------------ bilinear, bicubic


FACTORS = [1, 2, 3, 4, 0.5, 0.75, 1.5, 2.5, 3.3]


@pytest.mark.parametrize("mode, fn", [("bilinear", bilinear), ("bicubic", bicubic)])
@pytest.mark.parametrize("align_corners", [False, True])
def test_interpolation_equals_torch(mode, fn, align_corners):
    gen = torch.Generator().manual_seed(1)
    for factor in FACTORS:
        for shape in [(6, 9), (2, 3, 5, 4), (1, 1, 1, 3)]:
            x = torch.randn(shape, generator=gen)
            if min(shape[-2:]) * factor < 1:
                continue  # nothing left to compare
            want = F.interpolate(
                as_batch(x), scale_factor=factor, mode=mode, align_corners=align_corners
            )
            got = fn(x, factor, align_corners=align_corners)
            assert got.dtype == x.dtype and got.shape[:-2] == x.shape[:-2]
            torch.testing.assert_close(as_batch(got), want, **TOL)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    factor=st.one_of(st.integers(1, 5), st.floats(0.6, 4.0)),
    mode=st.sampled_from(["bilinear", "bicubic"]),
    seed=st.integers(0, 2**16),
)
def test_interpolation_equals_torch_property(h, w, factor, mode, seed):
    if math.floor(h * factor) < 1 or math.floor(w * factor) < 1:
        return
    x = torch.randn(1, 2, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    fn = bilinear if mode == "bilinear" else bicubic
    want = F.interpolate(x, scale_factor=factor, mode=mode, align_corners=False)
    torch.testing.assert_close(fn(x, factor), want, **TOL)


def test_bilinear_copies_an_axis_whose_length_does_not_change():
    # 3 rows * 1.25 -> 3 rows: torch's CPU kernel copies the rows, only columns move
    x = torch.arange(12.0).reshape(3, 4) ** 2
    out = bilinear(x, 1.25)
    assert out.shape == (3, 5) and torch.equal(out[:, 0], x[:, 0])
    torch.testing.assert_close(
        as_batch(out), F.interpolate(as_batch(x), scale_factor=1.25, mode="bilinear"), **TOL
    )


def test_source_coordinates_line_up_edges_or_corners():
    # factor 2, align_corners=False: output centres at -0.25, 0.25, 0.75, ...
    assert source_coordinates(3, 2).tolist() == [-0.25, 0.25, 0.75, 1.25, 1.75, 2.25]
    # align_corners=True: first and last output centres on first and last input centres
    corners = source_coordinates(3, 2, align_corners=True)
    torch.testing.assert_close(
        corners, torch.tensor([0, 0.4, 0.8, 1.2, 1.6, 2], dtype=torch.float64)
    )


def test_cubic_weight_interpolates_and_sums_to_one():
    integers = torch.tensor([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    assert cubic_weight(integers).tolist() == [0, 0, 0, 1, 0, 0, 0]
    t = torch.linspace(0, 1, 11, dtype=torch.float64)[:-1]
    taps = cubic_weight(t[:, None] - torch.tensor([-1.0, 0.0, 1.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(taps.sum(1), torch.ones(10, dtype=torch.float64))
    assert (taps < 0).any()  # negative lobes: why bicubic overshoots


def test_inputs_are_not_modified():
    x = torch.randn(2, 2, 4, 4)
    before = x.clone()
    for fn in (nearest, bed_of_nails, bilinear, bicubic):
        fn(x, 2)
    pooled, switches = max_pool_with_switches(x, 2)
    p0, s0 = pooled.clone(), switches.clone()
    max_unpool(pooled, switches, (4, 4))
    assert torch.equal(x, before) and torch.equal(pooled, p0) and torch.equal(switches, s0)


# ------------------------------------------------------ transposed conv initialised bilinear


def test_bilinear_kernel_factor_2():
    tent = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.equal(bilinear_kernel(2), tent[:, None] * tent[None, :])
    assert bilinear_kernel(3).shape == (5, 5) and bilinear_kernel(3)[2, 2] == 1


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 5, 6])
def test_bilinear_conv_transpose_equals_interpolate_in_the_interior(factor):
    x = torch.rand(2, 3, 7, 6, dtype=torch.float64) + 0.5  # positive: the border differs
    layer = bilinear_conv_transpose(3, factor).double()
    with torch.no_grad():
        y = layer(x)
    want = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert y.shape == want.shape == (2, 3, 7 * factor, 6 * factor)
    b = factor // 2  # border width
    inner = (..., slice(b, y.shape[-2] - b), slice(b, y.shape[-1] - b))
    torch.testing.assert_close(y[inner], want[inner], atol=1e-6, rtol=0)  # float32 kernel
    if b:  # on the border the transposed conv fades toward zero
        assert (y[..., 0, :] < want[..., 0, :]).all() and (y[..., :, -1] < want[..., :, -1]).all()
    # everywhere: interpolation of the zero-padded image, cropped by `factor` each side
    padded = F.interpolate(
        F.pad(x, (1, 1, 1, 1)), scale_factor=factor, mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(y, padded[..., factor:-factor, factor:-factor], atol=1e-6, rtol=0)


def test_bilinear_weights_do_not_mix_channels():
    weight = bilinear_upsampling_weights(3, 2)
    assert weight.shape == (3, 3, 4, 4)
    for i in range(3):
        for j in range(3):
            assert torch.equal(weight[i, j], bilinear_kernel(2) if i == j else torch.zeros(4, 4))


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: nearest(torch.ones(4), 2), "x"),
        (lambda: nearest(torch.ones(2, 2), 0), "factor"),
        (lambda: nearest(torch.ones(2, 2), 1.5), "factor"),
        (lambda: bed_of_nails(torch.tensor([[1.0, float("nan")]]), 2), "x"),
        (lambda: bilinear(torch.ones(2, 2), -1), "factor"),
        (lambda: bilinear(torch.ones(2, 2), float("inf")), "factor"),
        (lambda: bilinear(torch.ones(2, 2), True), "factor"),
        (lambda: bilinear(torch.ones(2, 2), 0.1), "factor"),
        (lambda: bicubic(torch.full((2, 2), float("inf")), 2), "x"),
        (lambda: bicubic(torch.ones(0, 3), 2), "x"),
        (lambda: max_pool_with_switches(torch.ones(3, 3), 4), "k"),
        (lambda: max_pool_with_switches(torch.ones(3, 3), 0), "k"),
        (lambda: max_unpool(torch.ones(1, 1), torch.zeros(1, 1), (2, 2)), "switches"),
        (
            lambda: max_unpool(torch.ones(1, 1), torch.zeros(1, 2, dtype=torch.long), (2, 2)),
            "switches",
        ),
        (lambda: max_unpool(torch.ones(1, 1), torch.full((1, 1), 4), (2, 2)), "switches"),
        (
            lambda: max_unpool(torch.ones(1, 1), torch.zeros(1, 1, dtype=torch.long), 2),
            "output_size",
        ),
        (lambda: bilinear_kernel(0), "factor"),
        (lambda: bilinear_upsampling_weights(0, 2), "channels"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
