"""Convolution and transposed convolution as explicit matrices, and their output sizes.

A convolution is linear, so on a flattened single-channel input it *is* a matrix ``C``:
``y = C @ x``. The transposed convolution is the layer whose matrix is ``C.T`` (hence the
name; Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016).
This module builds those matrices entry by entry, gives the output-size arithmetic, and
computes the transposed convolution the way it is usually drawn: stamp a copy of the
kernel, scaled by each input value, onto the output; sum where stamps overlap; crop the
padding.

PyTorch's "convolution" is a cross-correlation: output ``o`` reads input
``o * stride - padding + t * dilation`` with kernel tap ``t``, and the kernel is *not*
flipped. Everything here follows PyTorch, so the matrices agree with ``F.conv1d``,
``F.conv2d``, ``nn.ConvTranspose1d`` and ``nn.ConvTranspose2d`` (the tests prove it).

Images are flattened row-major, as ``x.flatten()`` does: pixel ``(row, col)`` of an
``H x W`` image is entry ``row * W + col``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._checks import as_float_tensor, check_int_pair, check_positive_int

__all__ = [
    "Stamped",
    "conv_matrix_1d",
    "conv_matrix_2d",
    "conv_output_size",
    "conv_transpose_by_stamping_1d",
    "conv_transpose_by_stamping_2d",
    "conv_transpose_matrix_1d",
    "conv_transpose_matrix_2d",
    "conv_transpose_output_size",
]


class Stamped(NamedTuple):
    """Result of the stamping view of a transposed convolution.

    Attributes:
        output (Tensor): the transposed convolution, same as ``nn.ConvTranspose``.
        overlap (Tensor[int64]): same shape; how many kernel stamps touch each output
            pixel. With kernel 3 and stride 2 it alternates 1, 2, 1, 2, ... along each
            axis (1, 2 and 4 in 2D): the checkerboard that transposed convolutions are
            known to leave in images (Odena et al., "Deconvolution and checkerboard
            artifacts", Distill 2016).
    """

    output: torch.Tensor
    overlap: torch.Tensor


# ----------------------------------------------------------------------------------------
# argument checks


def _kernel(kernel, ndim: int) -> torch.Tensor:
    """The kernel as a finite floating tensor with ``ndim`` dimensions, at least one tap."""
    shape = "[k]" if ndim == 1 else "[kh, kw]"
    if not isinstance(kernel, torch.Tensor):
        kernel = as_float_tensor("kernel", kernel)
    if kernel.dim() != ndim:
        raise ValueError(
            f"kernel must be a {ndim}D tensor {shape}, got shape {tuple(kernel.shape)}"
        )
    kernel = as_float_tensor("kernel", kernel, ndim=ndim)
    if kernel.numel() == 0:
        raise ValueError(f"kernel must have at least one tap, got shape {tuple(kernel.shape)}")
    return kernel


def _check_output_padding(output_padding: int, stride: int, dilation: int, axis: str = "") -> None:
    """PyTorch's bound on a transposed convolution's ``output_padding`` (specific to it)."""
    # PyTorch's rule: the extra positions must be ones a slightly longer input could have
    # produced, i.e. fewer than one stride (or one dilation step) of them.
    if not (output_padding < stride or output_padding < dilation):
        raise ValueError(
            f"output_padding{axis} = {output_padding} must be smaller than stride{axis} "
            f"({stride}) or dilation{axis} ({dilation}), as in torch.nn.ConvTranspose"
        )


def _conv_params(n, kernel, stride, padding, dilation) -> tuple[int, int, int, int, int]:
    """One axis of a convolution: input length ``n``, ``kernel`` size, ``stride`` and
    ``dilation`` ints >= 1, ``padding`` >= 0 (the hyper-parameters of ``nn.Conv1d``)."""
    return (
        check_positive_int("n", n),
        check_positive_int("kernel", kernel),
        check_positive_int("stride", stride),
        check_positive_int("padding", padding, allow_zero=True),
        check_positive_int("dilation", dilation),
    )


def _conv_params_2d(stride, padding, dilation, output_padding=0) -> tuple[tuple[int, int], ...]:
    """``stride``, ``padding``, ``dilation`` and ``output_padding`` of a 2D (transposed)
    convolution as ``(h, w)`` pairs: stride and dilation >= 1, paddings >= 0, and
    ``output_padding`` within PyTorch's bound on each axis."""
    s = check_int_pair("stride", stride)
    p = check_int_pair("padding", padding, allow_zero=True)
    d = check_int_pair("dilation", dilation)
    q = check_int_pair("output_padding", output_padding, allow_zero=True)
    _check_output_padding(q[0], s[0], d[0], "[0]")
    _check_output_padding(q[1], s[1], d[1], "[1]")
    return s, p, d, q


# ----------------------------------------------------------------------------------------
# output sizes


def conv_output_size(
    n: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Length of the output of a convolution (or pooling) along one axis.

    ``floor((n + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1``: the number of
    positions a window of effective size ``dilation * (kernel - 1) + 1`` can take on the
    padded input, moving ``stride`` at a time.

    Args:
        n (int): input length, >= 1.
        kernel (int): kernel size, >= 1.
        stride (int): >= 1.
        padding (int): zeros added on *each* side, >= 0.
        dilation (int): spacing between kernel taps, >= 1.
        ceil_mode (bool): round up instead of down, as ``nn.MaxPool2d(ceil_mode=True)``;
            then the last window must still start inside the input or the left padding.

    Returns:
        int: the output length, >= 1.

    Raises:
        ValueError: on a non-int or out-of-range argument, or a dilated kernel larger
            than the padded input.
    """
    n, kernel, stride, padding, dilation = _conv_params(n, kernel, stride, padding, dilation)
    effective_kernel = dilation * (kernel - 1) + 1
    room = n + 2 * padding - effective_kernel  # how far the window can slide
    if room < 0:
        raise ValueError(
            f"kernel (effective size dilation * (kernel - 1) + 1 = {effective_kernel}) is "
            f"larger than the padded input (n + 2 * padding = {n + 2 * padding})"
        )
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1  # ceil division
    # PyTorch drops a last window that would start entirely in the right padding.
    if (out - 1) * stride >= n + padding:
        out -= 1
    return out


def conv_transpose_output_size(
    n: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
) -> int:
    """Length of the output of a transposed convolution along one axis.

    ``(n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1``:
    ``n`` stamps of effective size ``dilation * (kernel - 1) + 1``, placed ``stride``
    apart, cropped by ``padding`` on each side, plus ``output_padding`` extra positions
    at the end (bottom/right). A convolution with the same ``kernel, stride, padding,
    dilation`` maps this length back to ``n``; when ``stride > 1`` several lengths map
    to the same ``n``, and ``output_padding`` picks which one.

    Args:
        n (int): input length, >= 1.
        kernel (int): kernel size, >= 1.
        stride (int): >= 1.
        padding (int): >= 0; *removes* positions here (it is the padding of the matching
            convolution).
        dilation (int): >= 1.
        output_padding (int): >= 0 and smaller than ``stride`` or ``dilation``
            (PyTorch's rule).

    Returns:
        int: the output length, >= 1.

    Raises:
        ValueError: on out-of-range arguments, ``output_padding`` too large, or a
            ``padding`` that crops everything.
    """
    n, kernel, stride, padding, dilation = _conv_params(n, kernel, stride, padding, dilation)
    output_padding = check_positive_int("output_padding", output_padding, allow_zero=True)
    _check_output_padding(output_padding, stride, dilation)
    out = (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        raise ValueError(
            f"padding = {padding} crops the whole output: the transposed convolution "
            f"would have length {out}"
        )
    return out


# ----------------------------------------------------------------------------------------
# explicit matrices, 1D


def conv_matrix_1d(
    input_size: int, kernel, stride: int = 1, padding: int = 0, dilation: int = 1
) -> torch.Tensor:
    """The matrix ``C`` of a single-channel 1D convolution: ``C @ x == F.conv1d(x, kernel)``.

    Row ``o`` of ``C`` holds the kernel, placed where output ``o`` reads the input: tap
    ``t`` reads input ``o * stride - padding + t * dilation``. Taps that land in the zero
    padding read nothing and are dropped, so the padding never appears in ``C``. The
    kernel is not flipped (PyTorch's convolution is a cross-correlation).

    Args:
        input_size (int): length ``n`` of the input, >= 1.
        kernel (Tensor[k]): the 1D kernel, floating, finite.
        stride, padding, dilation (int): as in ``F.conv1d``.

    Returns:
        Tensor[n_out, n]: ``n_out = conv_output_size(n, k, stride, padding, dilation)``,
        same dtype as ``kernel``.
    """
    kernel = _kernel(kernel, 1)
    n = check_positive_int("input_size", input_size)
    n_out = conv_output_size(n, kernel.numel(), stride, padding, dilation)
    out = torch.arange(n_out).unsqueeze(1)  # [n_out, 1]
    tap = torch.arange(kernel.numel()).unsqueeze(0)  # [1, k]
    reads = out * stride - padding + tap * dilation  # [n_out, k] input index read by each tap
    inside = (reads >= 0) & (reads < n)  # taps in the padding read zeros: no entry
    rows = out.expand_as(reads)[inside]
    weights = kernel.unsqueeze(0).expand_as(reads)[inside]
    matrix = torch.zeros(n_out, n, dtype=kernel.dtype)
    matrix[rows, reads[inside]] = weights  # taps of one row hit distinct columns
    return matrix


def conv_transpose_matrix_1d(
    input_size: int,
    kernel,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
) -> torch.Tensor:
    """The matrix ``T`` of a single-channel 1D transposed convolution.

    ``T @ x == nn.ConvTranspose1d(1, 1, k, stride, padding, output_padding,
    dilation=dilation, bias=False)`` with weight ``kernel``. Column ``i`` of ``T`` is the
    kernel stamped at ``i * stride - padding``: input ``i`` adds ``kernel[t] * x[i]`` to
    output ``i * stride - padding + t * dilation``, the same index relation as the
    convolution with the roles of input and output swapped. Hence, with
    ``m = conv_transpose_output_size(n, ...)``::

        T == conv_matrix_1d(m, kernel, stride, padding, dilation)[:n].T

    and for ``output_padding < stride`` (always the case with ``output_padding = 0``) the
    ``[:n]`` keeps everything: ``T`` is exactly ``C.T``.

    What ``output_padding = q`` adds: ``q`` extra rows at the *end* of ``T`` (the first
    rows are those of ``q = 0``). They are the outputs that the far-side padding crop
    would otherwise remove: the first ``min(q, padding)`` of them can carry kernel taps, and
    the rest (beyond every stamp) are zero rows.

    Args:
        input_size (int): length ``n`` of the input, >= 1.
        kernel (Tensor[k]): the 1D kernel, floating, finite.
        stride, padding, dilation, output_padding (int): as in ``nn.ConvTranspose1d``.

    Returns:
        Tensor[m, n]: same dtype as ``kernel``.
    """
    kernel = _kernel(kernel, 1)
    n = check_positive_int("input_size", input_size)
    m = conv_transpose_output_size(n, kernel.numel(), stride, padding, dilation, output_padding)
    inp = torch.arange(n).unsqueeze(0)  # [1, n]
    tap = torch.arange(kernel.numel()).unsqueeze(1)  # [k, 1]
    writes = inp * stride - padding + tap * dilation  # [k, n] output index each tap adds to
    inside = (writes >= 0) & (writes < m)  # writes into the cropped padding are lost
    cols = inp.expand_as(writes)[inside]
    weights = kernel.unsqueeze(1).expand_as(writes)[inside]
    matrix = torch.zeros(m, n, dtype=kernel.dtype)
    matrix[writes[inside], cols] = weights  # taps of one column hit distinct rows
    return matrix


# ----------------------------------------------------------------------------------------
# explicit matrices, 2D


def _one_hot(index: int, size: int, dtype: torch.dtype) -> torch.Tensor:
    e = torch.zeros(size, dtype=dtype)
    e[index] = 1
    return e


def conv_matrix_2d(input_hw, kernel, stride=1, padding=0, dilation=1) -> torch.Tensor:
    """The matrix ``C`` of a single-channel 2D convolution on the row-major flattened image.

    ``(C @ x.flatten()).reshape(out_h, out_w) == F.conv2d(x, kernel)`` for an ``H x W``
    image ``x``. Built tap by tap: the kernel tap ``(a, b)`` reads input row
    ``r * stride_h - padding_h + a * dilation_h`` for output row ``r`` (a 1D selection
    matrix ``R_a``) and likewise a column (``S_b``); with row-major flattening the pair is
    the Kronecker product, so ``C = sum_ab kernel[a, b] * kron(R_a, S_b)``. No kernel flip
    (cross-correlation, as PyTorch).

    Args:
        input_hw (int or (int, int)): input height and width.
        kernel (Tensor[kh, kw]): the 2D kernel, floating, finite.
        stride, padding, dilation (int or (int, int)): as in ``F.conv2d``.

    Returns:
        Tensor[out_h * out_w, H * W]: same dtype as ``kernel``.
    """
    kernel = _kernel(kernel, 2)
    h, w = check_int_pair("input_hw", input_hw)
    (sh, sw), (ph, pw), (dh, dw), _ = _conv_params_2d(stride, padding, dilation)
    kh, kw = kernel.shape
    out_h = conv_output_size(h, kh, sh, ph, dh)
    out_w = conv_output_size(w, kw, sw, pw, dw)
    matrix = torch.zeros(out_h * out_w, h * w, dtype=kernel.dtype)
    for a in range(kh):
        rows = conv_matrix_1d(h, _one_hot(a, kh, kernel.dtype), sh, ph, dh)  # [out_h, H]
        for b in range(kw):
            cols = conv_matrix_1d(w, _one_hot(b, kw, kernel.dtype), sw, pw, dw)  # [out_w, W]
            matrix += kernel[a, b] * torch.kron(rows, cols)  # [out_h*out_w, H*W]
    return matrix


def conv_transpose_matrix_2d(
    input_hw, kernel, stride=1, padding=0, dilation=1, output_padding=0
) -> torch.Tensor:
    """The matrix ``T`` of a single-channel 2D transposed convolution (row-major flattening).

    ``(T @ x.flatten()).reshape(out_h, out_w)`` equals ``nn.ConvTranspose2d(1, 1,
    kernel.shape, stride, padding, output_padding, dilation=dilation, bias=False)`` with
    weight ``kernel``. Built like :func:`conv_matrix_2d` from the 1D transposed matrices,
    ``T = sum_ab kernel[a, b] * kron(R_a^T, S_b^T)``, so for ``output_padding = 0``::

        T == conv_matrix_2d((out_h, out_w), kernel, stride, padding, dilation).T

    With ``output_padding = (qh, qw)`` the output grid gains ``qh`` rows at the bottom and
    ``qw`` columns on the right; see :func:`conv_transpose_matrix_1d` for which of them
    can carry kernel taps (the first ``min(q, padding)``) and which are zero.

    Args:
        input_hw (int or (int, int)): input height and width.
        kernel (Tensor[kh, kw]): the 2D kernel, floating, finite.
        stride, padding, dilation, output_padding (int or (int, int)): as in
            ``nn.ConvTranspose2d``.

    Returns:
        Tensor[out_h * out_w, H * W]: same dtype as ``kernel``.
    """
    kernel = _kernel(kernel, 2)
    h, w = check_int_pair("input_hw", input_hw)
    (sh, sw), (ph, pw), (dh, dw), (qh, qw) = _conv_params_2d(
        stride, padding, dilation, output_padding
    )
    kh, kw = kernel.shape
    out_h = conv_transpose_output_size(h, kh, sh, ph, dh, qh)
    out_w = conv_transpose_output_size(w, kw, sw, pw, dw, qw)
    matrix = torch.zeros(out_h * out_w, h * w, dtype=kernel.dtype)
    for a in range(kh):
        rows = conv_transpose_matrix_1d(h, _one_hot(a, kh, kernel.dtype), sh, ph, dh, qh)
        for b in range(kw):
            cols = conv_transpose_matrix_1d(w, _one_hot(b, kw, kernel.dtype), sw, pw, dw, qw)
            matrix += kernel[a, b] * torch.kron(rows, cols)  # [out_h*out_w, H*W]
    return matrix


# ----------------------------------------------------------------------------------------
# the stamping view of the transposed convolution


def conv_transpose_by_stamping_1d(
    x, kernel, stride: int = 1, padding: int = 0, dilation: int = 1, output_padding: int = 0
) -> Stamped:
    """Transposed 1D convolution as "stamp, sum the overlaps, crop the padding".

    Each input value ``x[i]`` stamps a copy of the kernel scaled by ``x[i]``, starting at
    ``i * stride`` on an uncropped canvas (taps ``dilation`` apart). Where stamps overlap
    they add up. Finally ``padding`` positions are cropped from each side, and
    ``output_padding`` extra positions are kept at the end. No kernel flip (PyTorch).

    Args:
        x (Tensor[n]): single-channel input, finite.
        kernel (Tensor[k]): the 1D kernel, finite.
        stride, padding, dilation, output_padding (int): as in ``nn.ConvTranspose1d``.

    Returns:
        Stamped: ``output`` (Tensor[m], the dtype of ``x`` and ``kernel`` promoted) equal
        to ``nn.ConvTranspose1d``, and ``overlap`` (Tensor[m] int64), the number of
        stamps touching each output position; ``m = conv_transpose_output_size(n, ...)``.
    """
    x = as_float_tensor("x", x)
    if x.dim() != 1 or x.numel() == 0:
        raise ValueError(f"x must be a non-empty 1D tensor [n], got shape {tuple(x.shape)}")
    kernel = _kernel(kernel, 1)
    n, k = x.numel(), kernel.numel()
    m = conv_transpose_output_size(n, k, stride, padding, dilation, output_padding)
    stamp_size = dilation * (k - 1) + 1
    canvas_size = (n - 1) * stride + stamp_size + output_padding  # before the crop
    dtype = torch.promote_types(x.dtype, kernel.dtype)
    canvas = torch.zeros(canvas_size, dtype=dtype)
    overlap = torch.zeros(canvas_size, dtype=torch.int64)
    for i in range(n):
        start = i * stride
        window = slice(start, start + stamp_size, dilation)  # k positions, dilation apart
        canvas[window] += x[i] * kernel
        overlap[window] += 1
    keep = slice(padding, padding + m)  # crop `padding` on each side (the far side keeps
    return Stamped(canvas[keep], overlap[keep])  # `output_padding` of it back)


def conv_transpose_by_stamping_2d(
    x, kernel, stride=1, padding=0, dilation=1, output_padding=0
) -> Stamped:
    """Transposed 2D convolution as "stamp, sum the overlaps, crop the padding".

    Pixel ``x[i, j]`` stamps the kernel scaled by ``x[i, j]`` with its top-left corner
    at ``(i * stride_h, j * stride_w)`` of an uncropped canvas; overlapping stamps add
    up; ``padding`` rows/columns are cropped from each side, and ``output_padding``
    extra ones kept at the bottom/right. No kernel flip (PyTorch).

    Args:
        x (Tensor[H, W]): single-channel image, finite.
        kernel (Tensor[kh, kw]): the 2D kernel, finite.
        stride, padding, dilation, output_padding (int or (int, int)): as in
            ``nn.ConvTranspose2d``.

    Returns:
        Stamped: ``output`` (Tensor[out_h, out_w]) equal to ``nn.ConvTranspose2d``, and
        ``overlap`` (Tensor[out_h, out_w] int64), how many stamps touch each pixel (with
        kernel 3 and stride 2 the checkerboard of 1s, 2s and 4s).
    """
    x = as_float_tensor("x", x)
    if x.dim() != 2 or x.numel() == 0:
        raise ValueError(f"x must be a non-empty 2D tensor [H, W], got shape {tuple(x.shape)}")
    kernel = _kernel(kernel, 2)
    (sh, sw), (ph, pw), (dh, dw), (qh, qw) = _conv_params_2d(
        stride, padding, dilation, output_padding
    )
    (h, w), (kh, kw) = x.shape, kernel.shape
    out_h = conv_transpose_output_size(h, kh, sh, ph, dh, qh)
    out_w = conv_transpose_output_size(w, kw, sw, pw, dw, qw)
    stamp_h, stamp_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    canvas_hw = ((h - 1) * sh + stamp_h + qh, (w - 1) * sw + stamp_w + qw)
    canvas = torch.zeros(canvas_hw, dtype=torch.promote_types(x.dtype, kernel.dtype))
    overlap = torch.zeros(canvas_hw, dtype=torch.int64)
    for i in range(h):
        for j in range(w):
            rows = slice(i * sh, i * sh + stamp_h, dh)
            cols = slice(j * sw, j * sw + stamp_w, dw)
            canvas[rows, cols] += x[i, j] * kernel  # [kh, kw]
            overlap[rows, cols] += 1
    keep = (slice(ph, ph + out_h), slice(pw, pw + out_w))
    return Stamped(canvas[keep], overlap[keep])
