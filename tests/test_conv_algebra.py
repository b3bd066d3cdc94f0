"""vizlib.conv_algebra against torch: F.conv1d/conv2d, nn.ConvTranspose1d/2d, real shapes."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from vizlib.conv_algebra import (
    conv_matrix_1d,
    conv_matrix_2d,
    conv_output_size,
    conv_transpose_by_stamping_1d,
    conv_transpose_by_stamping_2d,
    conv_transpose_matrix_1d,
    conv_transpose_matrix_2d,
    conv_transpose_output_size,
)

DT = torch.float64  # exact enough that any disagreement is a real bug
TOL = dict(atol=1e-10, rtol=0)


def random_conv_1d(rng: random.Random):
    """(n, k, stride, padding, dilation) with a valid convolution output."""
    while True:
        k, s, d = rng.randint(1, 5), rng.randint(1, 3), rng.randint(1, 3)
        p, n = rng.randint(0, 3), rng.randint(1, 14)
        if n + 2 * p >= d * (k - 1) + 1:
            return n, k, s, p, d


def random_transpose_1d(rng: random.Random):
    """(n, k, stride, padding, dilation, output_padding) that nn.ConvTranspose1d accepts."""
    while True:
        n, k, s, d = rng.randint(1, 8), rng.randint(1, 5), rng.randint(1, 3), rng.randint(1, 3)
        q, p = rng.randint(0, max(s, d) - 1), rng.randint(0, 3)
        if (n - 1) * s - 2 * p + d * (k - 1) + 1 >= 1:  # valid with output_padding 0 too
            return n, k, s, p, d, q


def torch_transpose_1d(x, kernel, s, p, d, q):
    layer = torch.nn.ConvTranspose1d(
        1, 1, kernel.numel(), s, p, q, dilation=d, bias=False, dtype=DT
    )
    with torch.no_grad():
        layer.weight.copy_(kernel.view(1, 1, -1))
        return layer(x.view(1, 1, -1)).flatten()


def torch_transpose_2d(x, kernel, s, p, d, q):
    layer = torch.nn.ConvTranspose2d(
        1, 1, tuple(kernel.shape), s, p, q, dilation=d, bias=False, dtype=DT
    )
    with torch.no_grad():
        layer.weight.copy_(kernel[None, None])
        return layer(x[None, None])[0, 0]


# ---------------------------------------------------------------------------- output sizes


def test_output_size_formulas_match_real_shapes():
    rng = random.Random(0)
    for _ in range(300):
        n, k, s, p, d = random_conv_1d(rng)
        y = F.conv1d(torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p, dilation=d)
        assert conv_output_size(n, k, s, p, d) == y.shape[-1]
        n, k, s, p, d, q = random_transpose_1d(rng)
        y = F.conv_transpose1d(
            torch.zeros(1, 1, n),
            torch.zeros(1, 1, k),
            stride=s,
            padding=p,
            output_padding=q,
            dilation=d,
        )
        assert conv_transpose_output_size(n, k, s, p, d, q) == y.shape[-1]


def test_ceil_mode_matches_max_pool():
    rng = random.Random(1)
    for _ in range(200):
        k, s, d, n = rng.randint(1, 4), rng.randint(1, 3), rng.randint(1, 2), rng.randint(1, 12)
        p = rng.randint(0, k // 2)  # pooling allows padding up to half the kernel
        if n + 2 * p < d * (k - 1) + 1:
            continue
        for ceil in (False, True):
            y = F.max_pool1d(torch.zeros(1, 1, n), k, s, p, d, ceil_mode=ceil)
            assert conv_output_size(n, k, s, p, d, ceil_mode=ceil) == y.shape[-1], (n, k, s, p, d)


def test_convolution_inverts_transposed_output_size():
    # a convolution maps the transposed output length back to the input length
    rng = random.Random(2)
    for _ in range(200):
        n, k, s, p, d, q = random_transpose_1d(rng)
        m = conv_transpose_output_size(n, k, s, p, d, q)
        assert conv_output_size(m, k, s, p, d) == n + q // s


# ------------------------------------------------------------------------ matrices vs torch


def test_conv_matrix_1d_equals_conv1d():
    rng = random.Random(3)
    gen = torch.Generator().manual_seed(3)
    for _ in range(200):
        n, k, s, p, d = random_conv_1d(rng)
        kernel = torch.randn(k, generator=gen, dtype=DT)
        x = torch.randn(n, generator=gen, dtype=DT)
        matrix = conv_matrix_1d(n, kernel, s, p, d)
        want = F.conv1d(x.view(1, 1, n), kernel.view(1, 1, k), stride=s, padding=p, dilation=d)
        torch.testing.assert_close(matrix @ x, want.flatten(), **TOL)


def test_conv_matrix_1d_is_not_flipped():
    # cross-correlation: with no padding, row 0 is the kernel as written
    kernel = torch.tensor([1.0, 2.0, 3.0])
    assert conv_matrix_1d(5, kernel)[0].tolist() == [1.0, 2.0, 3.0, 0.0, 0.0]


def test_conv_transpose_matrix_1d_equals_conv_transpose1d():
    rng = random.Random(4)
    gen = torch.Generator().manual_seed(4)
    for _ in range(200):
        n, k, s, p, d, q = random_transpose_1d(rng)
        kernel = torch.randn(k, generator=gen, dtype=DT)
        x = torch.randn(n, generator=gen, dtype=DT)
        matrix = conv_transpose_matrix_1d(n, kernel, s, p, d, q)
        torch.testing.assert_close(matrix @ x, torch_transpose_1d(x, kernel, s, p, d, q), **TOL)


def test_conv_transpose_matrix_1d_is_the_transpose():
    rng = random.Random(5)
    gen = torch.Generator().manual_seed(5)
    for _ in range(200):
        n, k, s, p, d, q = random_transpose_1d(rng)
        kernel = torch.randn(k, generator=gen, dtype=DT)
        t = conv_transpose_matrix_1d(n, kernel, s, p, d, q)
        m = conv_transpose_output_size(n, k, s, p, d, q)
        c = conv_matrix_1d(m, kernel, s, p, d)
        torch.testing.assert_close(t, c[:n].T, **TOL)
        if q < s:  # in particular q == 0: exactly the transpose, nothing cut
            torch.testing.assert_close(t, c.T, **TOL)


def test_output_padding_adds_rows_at_the_end():
    rng = random.Random(6)
    gen = torch.Generator().manual_seed(6)
    checked_nonzero = checked_zero = 0
    for _ in range(300):
        n, k, s, p, d, q = random_transpose_1d(rng)
        if q == 0:
            continue
        kernel = torch.rand(k, generator=gen, dtype=DT) + 0.5  # no zero taps
        t0 = conv_transpose_matrix_1d(n, kernel, s, p, d, 0)
        tq = conv_transpose_matrix_1d(n, kernel, s, p, d, q)
        m0 = t0.shape[0]
        assert tq.shape == (m0 + q, n)
        torch.testing.assert_close(tq[:m0], t0, **TOL)  # the rows of q = 0 come first
        # beyond the first min(q, padding) extra rows nothing is stamped: zero rows
        assert (tq[m0 + min(q, p) :] == 0).all()
        checked_zero += q > p
        # every row y is row y + padding of the uncropped stamp matrix (padding 0), or
        # zero past its end: output_padding gives back rows the far-side crop removed
        uncropped = conv_transpose_matrix_1d(n, kernel, s, 0, d, 0)
        for y in range(m0 + q):
            want = uncropped[y + p] if y + p < len(uncropped) else torch.zeros(n, dtype=DT)
            assert torch.equal(tq[y], want)
        checked_nonzero += bool(tq[m0:].any())
    assert checked_zero and checked_nonzero  # both cases really occurred


def test_conv_matrix_2d_equals_conv2d():
    rng = random.Random(7)
    gen = torch.Generator().manual_seed(7)
    for _ in range(60):
        (h, kh, sh, ph, dh), (w, kw, sw, pw, dw) = random_conv_1d(rng), random_conv_1d(rng)
        kernel = torch.randn(kh, kw, generator=gen, dtype=DT)
        x = torch.randn(h, w, generator=gen, dtype=DT)
        matrix = conv_matrix_2d((h, w), kernel, (sh, sw), (ph, pw), (dh, dw))
        want = F.conv2d(
            x[None, None], kernel[None, None], stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw)
        )[0, 0]
        torch.testing.assert_close(matrix @ x.flatten(), want.flatten(), **TOL)


def test_conv_transpose_matrix_2d_equals_conv_transpose2d_and_transpose():
    rng = random.Random(8)
    gen = torch.Generator().manual_seed(8)
    for _ in range(60):
        (h, kh, sh, ph, dh, qh) = random_transpose_1d(rng)
        (w, kw, sw, pw, dw, qw) = random_transpose_1d(rng)
        kernel = torch.randn(kh, kw, generator=gen, dtype=DT)
        x = torch.randn(h, w, generator=gen, dtype=DT)
        args = ((sh, sw), (ph, pw), (dh, dw))
        t = conv_transpose_matrix_2d((h, w), kernel, *args, (qh, qw))
        want = torch_transpose_2d(x, kernel, *args, (qh, qw))
        torch.testing.assert_close(t @ x.flatten(), want.flatten(), **TOL)
        t0 = conv_transpose_matrix_2d((h, w), kernel, *args, 0)
        out_h = conv_transpose_output_size(h, kh, sh, ph, dh)
        out_w = conv_transpose_output_size(w, kw, sw, pw, dw)
        torch.testing.assert_close(t0, conv_matrix_2d((out_h, out_w), kernel, *args).T, **TOL)


def test_int_and_pair_arguments_agree():
    kernel = torch.randn(3, 3, dtype=DT)
    a = conv_matrix_2d(7, kernel, 2, 1, 1)
    b = conv_matrix_2d((7, 7), kernel, (2, 2), (1, 1), (1, 1))
    assert torch.equal(a, b)


# --------------------------------------------------------------------------------- stamping


def test_stamping_1d_equals_conv_transpose1d():
    rng = random.Random(9)
    gen = torch.Generator().manual_seed(9)
    for _ in range(150):
        n, k, s, p, d, q = random_transpose_1d(rng)
        kernel = torch.randn(k, generator=gen, dtype=DT)
        x = torch.randn(n, generator=gen, dtype=DT)
        out, overlap = conv_transpose_by_stamping_1d(x, kernel, s, p, d, q)
        torch.testing.assert_close(out, torch_transpose_1d(x, kernel, s, p, d, q), **TOL)
        # the overlap count is the transposed convolution of ones with a kernel of ones
        ones = torch_transpose_1d(torch.ones(n, dtype=DT), torch.ones(k, dtype=DT), s, p, d, q)
        assert torch.equal(overlap, ones.round().long())


def test_stamping_2d_equals_conv_transpose2d():
    rng = random.Random(10)
    gen = torch.Generator().manual_seed(10)
    for _ in range(40):
        (h, kh, sh, ph, dh, qh) = random_transpose_1d(rng)
        (w, kw, sw, pw, dw, qw) = random_transpose_1d(rng)
        kernel = torch.randn(kh, kw, generator=gen, dtype=DT)
        x = torch.randn(h, w, generator=gen, dtype=DT)
        args = ((sh, sw), (ph, pw), (dh, dw), (qh, qw))
        out, overlap = conv_transpose_by_stamping_2d(x, kernel, *args)
        torch.testing.assert_close(out, torch_transpose_2d(x, kernel, *args), **TOL)
        ones = torch_transpose_2d(torch.ones(h, w, dtype=DT), torch.ones(kh, kw, dtype=DT), *args)
        assert torch.equal(overlap, ones.round().long())


def test_checkerboard_overlap_for_kernel_3_stride_2():
    stamped = conv_transpose_by_stamping_2d(torch.ones(4, 4), torch.ones(3, 3), stride=2, padding=1)
    # away from the far border the count alternates 1, 2 per axis: 1, 2 and 4 in 2D
    inner = stamped.overlap[:6, :6]
    per_axis = torch.tensor([1, 2, 1, 2, 1, 2])
    assert torch.equal(inner, per_axis[:, None] * per_axis[None, :])
    assert set(inner.unique().tolist()) == {1, 2, 4}


def test_stamping_does_not_modify_inputs():
    x, kernel = torch.randn(3, 3), torch.randn(2, 2)
    x0, k0 = x.clone(), kernel.clone()
    conv_transpose_by_stamping_2d(x, kernel, 2)
    assert torch.equal(x, x0) and torch.equal(kernel, k0)


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: conv_output_size(-1, 3), "n"),
        (lambda: conv_output_size(5, 0), "kernel"),
        (lambda: conv_output_size(5, 3, stride=0), "stride"),
        (lambda: conv_output_size(5, 3, padding=-1), "padding"),
        (lambda: conv_output_size(5, 3, dilation=0), "dilation"),
        (lambda: conv_output_size(2, 3), "kernel"),
        (lambda: conv_output_size(5.0, 3), "n"),
        (lambda: conv_transpose_output_size(5, 3, stride=2, output_padding=2), "output_padding"),
        (
            lambda: conv_transpose_output_size(5, 3, stride=1, dilation=1, output_padding=1),
            "output_padding",
        ),
        (lambda: conv_transpose_output_size(1, 1, padding=1), "padding"),
        (lambda: conv_matrix_1d(5, torch.ones(3, 3)), "kernel"),
        (lambda: conv_matrix_1d(5, torch.ones(0)), "kernel"),
        (lambda: conv_matrix_1d(5, torch.tensor([1.0, float("nan")])), "kernel"),
        (lambda: conv_matrix_1d(-5, torch.ones(3)), "input_size"),
        (lambda: conv_matrix_2d((5, 5), torch.ones(3)), "kernel"),
        (lambda: conv_matrix_2d((5, -5), torch.ones(3, 3)), "input_hw"),
        (lambda: conv_matrix_2d((5, 5, 5), torch.ones(3, 3)), "input_hw"),
        (lambda: conv_matrix_2d((5, 5), torch.full((3, 3), float("inf"))), "kernel"),
        (
            lambda: conv_transpose_matrix_1d(4, torch.ones(3), stride=2, output_padding=2),
            "output_padding",
        ),
        (
            lambda: conv_transpose_matrix_2d(4, torch.ones(3, 3), stride=(2, 1), output_padding=1),
            "output_padding",
        ),
        (lambda: conv_transpose_by_stamping_1d(torch.ones(2, 2), torch.ones(3)), "x"),
        (lambda: conv_transpose_by_stamping_1d(torch.tensor([float("nan")]), torch.ones(3)), "x"),
        (lambda: conv_transpose_by_stamping_2d(torch.ones(3), torch.ones(3, 3)), "x"),
        (lambda: conv_transpose_by_stamping_2d(torch.ones(3, 3), torch.ones(3)), "kernel"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()
