"""Upsampling, written out: nearest, bed of nails, max unpooling, bilinear, bicubic.

Every function takes an image ``(H, W)`` or a batch ``(N, C, H, W)`` (any leading
dimensions: the last two are height and width) and never modifies it. The interpolating
ones are written the readable way, one axis at a time:

1. the *source coordinate* of each output pixel, in input pixel units (pixel centres at
   0, 1, 2, ...);
2. the input pixels near it (the *taps*) and a *weight* for each, from an interpolation
   kernel of the distance (a tent for bilinear, Keys' cubic for bicubic);
3. gather those pixels and sum them, weighted.

Bilinear and bicubic are separable, so doing rows then columns gives the 2D result.
They agree with ``F.interpolate(..., scale_factor=factor)`` (tests: to 1e-5).

The learned alternative, a transposed convolution, can be *initialised* to bilinear
upsampling (Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015): :func:`bilinear_kernel`, :func:`bilinear_upsampling_weights`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import as_float_tensor, check_number, check_positive_int

__all__ = [
    "bed_of_nails",
    "bicubic",
    "bilinear",
    "bilinear_conv_transpose",
    "bilinear_kernel",
    "bilinear_upsampling_weights",
    "cubic_weight",
    "max_pool_with_switches",
    "max_unpool",
    "nearest",
    "output_size",
    "source_coordinates",
]


# ----------------------------------------------------------------------------------------
# checks


def _image(name: str, x) -> torch.Tensor:
    x = as_float_tensor(name, x)
    if x.dim() < 2 or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise ValueError(
            f"{name} must be an image [H, W] or a batch [N, C, H, W] with H, W >= 1, "
            f"got shape {tuple(x.shape)}"
        )
    return x


# ----------------------------------------------------------------------------------------
# copying values: nearest, bed of nails, max unpooling


def nearest(x, factor: int) -> torch.Tensor:
    """Nearest-neighbour upsampling: each pixel becomes a ``factor x factor`` block.

    Equals ``F.interpolate(x, scale_factor=factor, mode='nearest')``.

    Args:
        x (Tensor[..., H, W]): image or batch, finite.
        factor (int): >= 1.

    Returns:
        Tensor[..., H * factor, W * factor]: same dtype as ``x``.
    """
    x = _image("x", x)
    factor = check_positive_int("factor", factor)
    return x.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def bed_of_nails(x, factor: int) -> torch.Tensor:
    """ "Bed of nails" upsampling: each value at the top-left of its block, zeros elsewhere.

    It is a transposed convolution with stride ``factor`` and a 1x1 kernel of one: the
    zeros are what a learned kernel then fills in.

    Args:
        x (Tensor[..., H, W]): image or batch, finite.
        factor (int): >= 1.

    Returns:
        Tensor[..., H * factor, W * factor]: same dtype as ``x``.
    """
    x = _image("x", x)
    factor = check_positive_int("factor", factor)
    h, w = x.shape[-2:]
    out = x.new_zeros(*x.shape[:-2], h * factor, w * factor)
    out[..., ::factor, ::factor] = x
    return out


def max_pool_with_switches(x, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``k x k`` max pooling with stride ``k`` that remembers where each maximum was.

    The "switches" let :func:`max_unpool` put each value back where it came from
    (Zeiler & Fergus 2014; SegNet, Badrinarayanan et al. 2017). Same results as
    ``F.max_pool2d(x, k, return_indices=True)``: rows and columns that do not fill a
    whole window are dropped, and a tie goes to the first maximum in row-major order.

    Args:
        x (Tensor[..., H, W]): image or batch, finite, ``H, W >= k``.
        k (int): window size and stride, >= 1.

    Returns:
        (Tensor[..., H // k, W // k], Tensor[..., H // k, W // k] int64): the maxima and
        the switches, each the flat index ``row * W + col`` of its maximum in the input
        plane.
    """
    x = _image("x", x)
    k = check_positive_int("k", k)
    h, w = x.shape[-2:]
    if h < k or w < k:
        raise ValueError(f"k = {k} is larger than the image ({h} x {w})")
    out_h, out_w = h // k, w // k
    lead = x.shape[:-2]
    blocks = x[..., : out_h * k, : out_w * k].reshape(*lead, out_h, k, out_w, k)
    blocks = blocks.transpose(-3, -2).reshape(*lead, out_h, out_w, k * k)  # [..., oh, ow, k*k]
    pooled, where = blocks.max(dim=-1)  # `where`: row-major position inside the window
    rows = torch.arange(out_h).unsqueeze(1) * k + where // k  # [..., oh, ow]
    cols = torch.arange(out_w).unsqueeze(0) * k + where % k  # [..., oh, ow]
    return pooled, rows * w + cols


def max_unpool(pooled, switches, output_size) -> torch.Tensor:
    """Put each pooled value back at its switch; zeros everywhere else.

    Same as ``F.max_unpool2d(pooled, switches, k, output_size=output_size)``.

    Args:
        pooled (Tensor[..., h, w]): values, finite.
        switches (Tensor[..., h, w] int64): flat indices ``row * W + col`` into the
            output plane, from :func:`max_pool_with_switches`.
        output_size ((int, int)): ``(H, W)`` of the output.

    Returns:
        Tensor[..., H, W]: same dtype as ``pooled``.
    """
    pooled = _image("pooled", pooled)
    if not isinstance(switches, torch.Tensor) or switches.dtype != torch.int64:
        raise ValueError("switches must be an int64 tensor, as max_pool_with_switches returns")
    if switches.shape != pooled.shape:
        raise ValueError(
            f"switches must have the shape of pooled {tuple(pooled.shape)}, "
            f"got {tuple(switches.shape)}"
        )
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
        raise ValueError(f"output_size must be a pair (H, W), got {output_size!r}")
    h, w = (check_positive_int(f"output_size[{i}]", v) for i, v in enumerate(output_size))
    if switches.numel() and (switches.min() < 0 or switches.max() >= h * w):
        raise ValueError(f"switches must lie in [0, H * W) = [0, {h * w}) for output_size")
    lead = pooled.shape[:-2]
    out = pooled.new_zeros(*lead, h * w)
    out.scatter_(-1, switches.flatten(-2), pooled.flatten(-2))  # each value to its switch
    return out.reshape(*lead, h, w)


# ----------------------------------------------------------------------------------------
# interpolating: bilinear, bicubic


def output_size(n: int, factor: float) -> int:
    """``floor(n * factor)``: the output length for a scale factor, as ``F.interpolate``."""
    n = check_positive_int("n", n)
    out = math.floor(n * check_number("factor", factor, low=0, strict=True))
    if out < 1:
        raise ValueError(f"factor = {factor} shrinks a length of {n} to nothing")
    return out


def source_coordinates(n_in: int, factor: float, align_corners: bool = False) -> torch.Tensor:
    """Where each output pixel's centre falls in the input, in input pixel units.

    ``align_corners=False`` (the default, and what ``F.interpolate`` does) treats pixels
    as unit squares and lines up the *outer edges* of input and output:
    ``(dst + 0.5) / factor - 0.5``. ``align_corners=True`` lines up the *centres* of the
    corner pixels: ``dst * (n_in - 1) / (n_out - 1)``.

    Args:
        n_in (int): input length.
        factor (float): scale factor, > 0; the output has ``floor(n_in * factor)`` pixels.
        align_corners (bool): see above.

    Returns:
        Tensor[n_out] float64.
    """
    n_out = output_size(n_in, factor)
    dst = torch.arange(n_out, dtype=torch.float64)
    if align_corners:
        if n_out == 1:
            return torch.zeros(1, dtype=torch.float64)
        return dst * ((n_in - 1) / (n_out - 1))
    # F.interpolate given a scale_factor uses 1 / factor here, not n_in / n_out
    return (dst + 0.5) / factor - 0.5


def cubic_weight(distance: torch.Tensor, a: float = -0.75) -> torch.Tensor:
    """Keys' cubic convolution kernel (Keys 1981), with ``a = -0.75`` as PyTorch and OpenCV.

    ``(a + 2)|d|^3 - (a + 3)|d|^2 + 1`` for ``|d| <= 1``, ``a|d|^3 - 5a|d|^2 + 8a|d| - 4a``
    for ``1 < |d| < 2``, 0 beyond. It is 1 at 0 and 0 at the other integers, so it passes
    through the samples, and it dips below zero (sharpening, slight overshoot).

    Args:
        distance (Tensor): distances between source coordinate and tap, any shape.
        a (float): the free parameter.

    Returns:
        Tensor: the weights, same shape.
    """
    d = distance.abs()
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return torch.where(d <= 1, near, torch.where(d < 2, far, torch.zeros_like(d)))


def _resample_axis(x, dim, taps, weights):
    """Sum over taps of ``weights[:, t] * x`` gathered at ``taps[:, t]`` along ``dim``.

    ``taps`` and ``weights`` are ``[n_out, n_taps]``; taps are already clamped to the
    image (the edge pixel is repeated beyond the border, as ``F.interpolate`` does).
    """
    shape = [1] * x.dim()
    shape[dim] = -1  # weights broadcast along every other dimension
    out = 0
    for t in range(taps.shape[1]):
        gathered = x.index_select(dim, taps[:, t])  # [..., n_out, ...]
        out = out + gathered * weights[:, t].to(x.dtype).view(shape)
    return out


def _linear_axis(x, dim, factor, align_corners):
    n_in = x.shape[dim]
    src = source_coordinates(n_in, factor, align_corners)  # [n_out]
    if len(src) == n_in:
        # PyTorch's CPU kernel copies an axis whose length does not change, whatever the
        # factor (3 pixels * 1.25 -> 3 pixels are not shifted by a tenth); we do the same.
        return x.clone()
    src = src.clamp(min=0)  # PyTorch's linear modes clamp a negative source to 0
    left = src.floor()
    taps = left.unsqueeze(1) + torch.tensor([0.0, 1.0], dtype=torch.float64)  # [n_out, 2]
    weights = (1 - (src.unsqueeze(1) - taps).abs()).clamp(min=0)  # the tent 1 - |d|
    return _resample_axis(x, dim, taps.long().clamp(0, n_in - 1), weights)


def _cubic_axis(x, dim, factor, align_corners):
    n_in = x.shape[dim]
    src = source_coordinates(n_in, factor, align_corners)  # [n_out], not clamped
    left = src.floor()
    offsets = torch.tensor([-1.0, 0.0, 1.0, 2.0], dtype=torch.float64)
    taps = left.unsqueeze(1) + offsets  # [n_out, 4]: two on each side
    weights = cubic_weight(src.unsqueeze(1) - taps)  # [n_out, 4]
    return _resample_axis(x, dim, taps.long().clamp(0, n_in - 1), weights)


def bilinear(x, factor: float, align_corners: bool = False) -> torch.Tensor:
    """Bilinear interpolation, written as source coordinates, tent weights and a gather.

    Each output pixel is a weighted average of the 2 x 2 input pixels around its source
    coordinate, weight ``1 - |distance|`` per axis. Beyond the outer pixel centres the
    edge pixel is repeated. Equals ``F.interpolate(x, scale_factor=factor,
    mode='bilinear', align_corners=align_corners)`` on the CPU, including its shortcut:
    an axis whose length does not change (``floor(n * factor) == n``) is copied as is.

    Args:
        x (Tensor[..., H, W]): image or batch, finite.
        factor (float): scale factor, > 0 (below 1 shrinks, without antialiasing).
        align_corners (bool): see :func:`source_coordinates`.

    Returns:
        Tensor[..., floor(H * factor), floor(W * factor)]: same dtype as ``x``.
    """
    x = _image("x", x)
    factor = check_number("factor", factor, low=0, strict=True)
    out = _linear_axis(x, x.dim() - 2, factor, align_corners)  # rows ...
    return _linear_axis(out, x.dim() - 1, factor, align_corners)  # ... then columns


def bicubic(x, factor: float, align_corners: bool = False) -> torch.Tensor:
    """Bicubic interpolation: 4 x 4 taps around the source coordinate, Keys' weights.

    Equals ``F.interpolate(x, scale_factor=factor, mode='bicubic',
    align_corners=align_corners)``. The weights can be negative, so the output can
    overshoot the input range near edges (ringing); clamp it for images.

    Args:
        x (Tensor[..., H, W]): image or batch, finite.
        factor (float): scale factor, > 0.
        align_corners (bool): see :func:`source_coordinates`.

    Returns:
        Tensor[..., floor(H * factor), floor(W * factor)]: same dtype as ``x``.
    """
    x = _image("x", x)
    factor = check_number("factor", factor, low=0, strict=True)
    out = _cubic_axis(x, x.dim() - 2, factor, align_corners)
    return _cubic_axis(out, x.dim() - 1, factor, align_corners)


# ----------------------------------------------------------------------------------------
# a transposed convolution that upsamples bilinearly (the FCN initialisation)


def bilinear_kernel(factor: int) -> torch.Tensor:
    """The ``K x K`` transposed-convolution kernel of bilinear upsampling by ``factor``.

    ``K = 2 * factor - factor % 2``; the kernel is the outer product of a tent
    ``1 - |i - centre| / factor``, centred at ``factor - 1`` (``K`` odd) or
    ``factor - 0.5`` (``K`` even). Stamped at stride ``factor``, the tents of neighbouring
    pixels cross-fade linearly: exactly bilinear interpolation (FCN, Long et al. 2015).

    Args:
        factor (int): >= 1.

    Returns:
        Tensor[K, K] float32.
    """
    factor = check_positive_int("factor", factor)
    size = 2 * factor - factor % 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    tent = 1 - (torch.arange(size, dtype=torch.float64) - centre).abs() / factor  # [K]
    return (tent.unsqueeze(1) * tent.unsqueeze(0)).float()  # [K, K]


def bilinear_upsampling_weights(channels: int, factor: int) -> torch.Tensor:
    """Weight for ``nn.ConvTranspose2d(channels, channels, K, stride=factor, padding=P)``
    that upsamples each channel bilinearly, with ``K = 2 * factor - factor % 2`` and
    ``P = ceil((factor - 1) / 2)`` (so the output is exactly ``factor`` times larger).

    Channel ``c`` maps to channel ``c`` only (:func:`bilinear_kernel` on the diagonal,
    zeros elsewhere). In the interior the layer equals ``F.interpolate(mode='bilinear',
    align_corners=False)``. The outermost ``factor // 2`` output rows and columns differ:
    there interpolation repeats the edge pixel, while the transposed convolution fades
    toward zero, as if the image were surrounded by zeros. Precisely, the layer equals
    interpolating the image padded with one ring of zeros, then cropping ``factor``
    pixels from each side.

    Args:
        channels (int): input and output channels, >= 1.
        factor (int): >= 1.

    Returns:
        Tensor[channels, channels, K, K] float32: ``ConvTranspose2d.weight``'s layout
        (in_channels, out_channels, kH, kW).
    """
    channels = check_positive_int("channels", channels)
    kernel = bilinear_kernel(factor)
    weight = torch.zeros(channels, channels, *kernel.shape)
    for c in range(channels):
        weight[c, c] = kernel
    return weight


def bilinear_conv_transpose(channels: int, factor: int) -> nn.ConvTranspose2d:
    """An ``nn.ConvTranspose2d`` initialised to bilinear upsampling by ``factor`` (no bias).

    See :func:`bilinear_upsampling_weights` for the kernel, padding and border behaviour.
    It is an ordinary layer: training can move it away from bilinear.

    Args:
        channels (int): input and output channels, >= 1.
        factor (int): >= 1.

    Returns:
        nn.ConvTranspose2d: maps ``[N, channels, H, W]`` to
        ``[N, channels, H * factor, W * factor]``.
    """
    weight = bilinear_upsampling_weights(channels, factor)
    layer = nn.ConvTranspose2d(
        channels,
        channels,
        weight.shape[-1],
        stride=factor,
        padding=math.ceil((factor - 1) / 2),
        bias=False,
    )
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer
