"""RoI pooling and RoIAlign: a fixed-size feature for a region of any size.

A two-stage detector proposes regions of every size and shape, but its second stage (fully
connected layers in Fast R-CNN, Girshick 2015) wants the same ``C x h x w`` input for each.
Both operations cut the region of interest (RoI) out of the backbone's feature map and
split it into an ``h x w`` grid of bins; they differ in how a bin reads the map.

* :func:`roi_pool` (Girshick 2015, Fast R-CNN) works in whole cells. It rounds the RoI's
  corners to cells (quantisation), splits the rounded RoI into bins whose edges are
  floored / ceiled to cells again, and takes the maximum over the cells of each bin. The
  bins therefore do not sit where the RoI is: up to half a cell off at each corner, and at
  stride 16 a cell is 16 image pixels (see :func:`roi_pool_bins`, :func:`quantisation_error`).
* :func:`roi_align` (He et al. 2017, Mask R-CNN) never rounds. Each bin keeps its exact,
  fractional position; it reads the map at a few regularly spaced points inside the bin by
  bilinear interpolation (:func:`bilinear_sample`) and averages them
  (:func:`roi_align_points`). ``aligned=True`` (Detectron2, Wu et al. 2019) also shifts the
  RoI by half a pixel, so that a pixel's centre sits at ``i + 0.5`` as in the box
  coordinates, not at ``i``.

Both return exactly what ``torchvision.ops.roi_pool`` / ``torchvision.ops.roi_align``
return on a CPU, with the same signatures; they are written to be read, one RoI at a time,
and are slower. The only differences are stricter checks: a box with ``x2 < x1`` or
``y2 < y1``, a batch index that is not a whole number in range, and ``sampling_ratio = 0``
are errors here (torchvision silently makes the box one cell, reads out of bounds, or
treats 0 as "adaptive").

Coordinates: boxes are ``(x1, y1, x2, y2)`` in image pixels; ``spatial_scale`` (one over the
backbone's stride, e.g. ``1/16`` for VGG16's conv5) maps them onto the feature map.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from vizlib._checks import as_float_tensor, check_boxes, check_int_pair, check_number

__all__ = [
    "RoIPoolBins",
    "roi_pool",
    "roi_align",
    "roi_align_matrices",
    "bilinear_sample",
    "roi_pool_bins",
    "roi_align_points",
    "quantisation_error",
    "to_rois",
]


class RoIPoolBins(NamedTuple):
    """The bins of RoI pooling for one RoI (see :func:`roi_pool_bins`).

    Bin ``(i, j)`` covers ``feature[:, rows[i, 0]:rows[i, 1], cols[j, 0]:cols[j, 1]]``
    (ends excluded); a bin with ``end <= start`` is empty and pools to 0.

    Attributes:
        rows (Tensor[h, 2]): int64 ``(start, end)`` row of each row of bins.
        cols (Tensor[w, 2]): int64 ``(start, end)`` column of each column of bins.
        roi (tuple[int, int, int, int]): the rounded RoI ``(x1, y1, x2, y2)`` in cells,
            last cell included (so ``x2 - x1 + 1`` cells wide), before clipping.
    """

    rows: torch.Tensor
    cols: torch.Tensor
    roi: tuple[int, int, int, int]


# --------------------------------------------------------------------------- input checks


def _check_input(input) -> torch.Tensor:
    """The feature maps ``Tensor[N, C, H, W]``, floating, at least one cell."""
    if not isinstance(input, torch.Tensor) or input.dim() != 4 or not input.is_floating_point():
        got = (
            f"a {input.dim()}-d {input.dtype} tensor"
            if isinstance(input, torch.Tensor)
            else type(input).__name__
        )
        raise ValueError(f"input must be a floating tensor [N, C, H, W] (feature maps), got {got}")
    if input.shape[2] < 1 or input.shape[3] < 1:
        raise ValueError(f"input must have H, W >= 1, got shape {tuple(input.shape)}")
    return input


def _check_sampling_ratio(sampling_ratio) -> int:
    if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int):
        raise ValueError(f"sampling_ratio must be an int, got {sampling_ratio!r}")
    if sampling_ratio == 0 or sampling_ratio < -1:
        raise ValueError(
            "sampling_ratio must be -1 (adaptive: ceil(bin size) points per bin side) or a "
            f"positive int (that many points per bin side), got {sampling_ratio}"
        )
    return sampling_ratio


def _check_aligned(aligned) -> bool:
    if not isinstance(aligned, bool):
        raise ValueError(f"aligned must be True or False, got {aligned!r}")
    return aligned


def to_rois(boxes, num_images: int | None = None) -> torch.Tensor:
    """Boxes as the ``Tensor[K, 5]`` rows the RoI operations read.

    Args:
        boxes (Tensor[K, 5] or list[Tensor[Ki, 4]]): either rows ``(batch index, x1, y1,
            x2, y2)``, or one ``Tensor[Ki, 4]`` of ``(x1, y1, x2, y2)`` boxes per image
            (entry ``i`` belongs to image ``i``), as torchvision accepts them.
        num_images (int, optional): ``N``, the number of feature maps; batch indices must
            lie in ``[0, N - 1]``.

    Returns:
        Tensor[K, 5]: a new floating tensor ``(batch index, x1, y1, x2, y2)``; the list
        form is concatenated in image order (torchvision's ``convert_boxes_to_roi_format``).
    """
    if isinstance(boxes, (list, tuple)):
        per_image = [check_boxes(f"boxes[{i}]", b) for i, b in enumerate(boxes)]
        if num_images is not None and len(per_image) > num_images:
            raise ValueError(
                f"boxes has {len(per_image)} tensors (one per image) but input has only "
                f"{num_images} images"
            )
        dtype = per_image[0].dtype if per_image else torch.float32
        rows = [
            torch.cat([torch.full((len(b), 1), float(i), dtype=dtype), b.to(dtype)], dim=1)
            for i, b in enumerate(per_image)
        ]
        return torch.cat(rows) if rows else torch.zeros(0, 5, dtype=dtype)
    if not isinstance(boxes, torch.Tensor):
        raise ValueError(
            "boxes must be a Tensor[K, 5] (batch index, x1, y1, x2, y2) or a list of "
            f"Tensor[Ki, 4] (x1, y1, x2, y2), one per image; got {type(boxes).__name__}"
        )
    rois = as_float_tensor("boxes", boxes)
    if rois.dim() != 2 or rois.shape[1] != 5:
        one_image = rois.dim() == 2 and rois.shape[1] == 4
        hint = " (for the [K, 4] boxes of one image, pass a list: [boxes])" if one_image else ""
        raise ValueError(
            "boxes must be a Tensor[K, 5] (batch index, x1, y1, x2, y2) or a list of "
            f"Tensor[Ki, 4], got shape {tuple(rois.shape)}{hint}"
        )
    check_boxes("boxes[:, 1:]", rois[:, 1:])
    index = rois[:, 0]
    bad = (index != index.round()) | (index < 0)
    if num_images is not None:
        bad |= index >= num_images
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        limit = f"[0, {num_images - 1}]" if num_images is not None else "a whole number >= 0"
        raise ValueError(
            f"boxes[{i}, 0] = {float(index[i])!r} is not a batch index in {limit}: the first "
            "column of Tensor[K, 5] says which image (feature map) each box belongs to"
        )
    return rois.clone()


def _check_box(box) -> torch.Tensor:
    """One box ``(x1, y1, x2, y2)`` as a floating ``Tensor[4]``."""
    t = as_float_tensor("box", box)
    if t.shape != (4,):
        raise ValueError(f"box must be 4 numbers (x1, y1, x2, y2), got shape {tuple(t.shape)}")
    return check_boxes("box", t[None])[0]


# --------------------------------------------------------------------------- RoI pooling


def _round_half_away(v: torch.Tensor) -> torch.Tensor:
    # The kernel calls C's round(), which takes halves away from zero (2.5 -> 3). torch.round
    # takes them to the even neighbour (2.5 -> 2) and would move such RoIs by a cell.
    whole = torch.trunc(v)
    return whole + torch.sign(v) * (torch.abs(v - whole) >= 0.5).to(v.dtype)


def _quantised_bins(lo, hi, n: int, size: int | None) -> tuple[torch.Tensor, int, int]:
    """One axis of RoI pooling: ``n`` bins ``(start, end)`` over the cells ``round(lo)`` to
    ``round(hi)``, the last included; clipped to ``[0, size]`` when ``size`` is given."""
    first, last = int(_round_half_away(lo)), int(_round_half_away(hi))
    # Fast R-CNN counts the last cell in (x2 - x1 + 1 cells); a flat RoI keeps one cell.
    cells = max(last - first + 1, 1)
    bin_size = torch.tensor(cells, dtype=lo.dtype) / n  # in the input's dtype, as the kernel
    k = torch.arange(n, dtype=lo.dtype)  # [n]
    # Neighbouring bins share a cell whenever bin_size is not whole: floor and ceil both widen.
    start = torch.floor(k * bin_size).long() + first  # [n]
    end = torch.ceil((k + 1) * bin_size).long() + first  # [n]
    if size is not None:
        start, end = start.clamp(0, size), end.clamp(0, size)
    return torch.stack([start, end], dim=1), first, last


def _pool_bins(box: torch.Tensor, out_hw, scale: torch.Tensor, size_hw) -> RoIPoolBins:
    x1, y1, x2, y2 = box * scale  # the RoI on the feature map, still fractional
    h, w = out_hw
    height, width = size_hw if size_hw is not None else (None, None)
    rows, top, bottom = _quantised_bins(y1, y2, h, height)
    cols, left, right = _quantised_bins(x1, x2, w, width)
    return RoIPoolBins(rows, cols, (left, top, right, bottom))


def _scale_tensor(spatial_scale, dtype) -> torch.Tensor:
    # The kernels multiply in the input's dtype (spatial_scale is cast to it first).
    return torch.tensor(
        check_number("spatial_scale", spatial_scale, low=0, strict=True), dtype=dtype
    )


def roi_pool_bins(box, output_size, spatial_scale: float = 1.0, feature_size=None) -> RoIPoolBins:
    """The quantised bins RoI pooling max-pools for one box (Girshick 2015).

    The RoI's corners ``box * spatial_scale`` are rounded to cells (halves away from
    zero), the last cell included; its ``H_r x W_r`` cells are split into ``h x w`` bins,
    bin ``i`` covering rows ``floor(i * H_r / h)`` to ``ceil((i + 1) * H_r / h)`` (end
    excluded) from the RoI's first row, then clipped to the feature map. This is
    torchvision's CPU kernel, in the box's dtype (float32 for a list or an int tensor).

    Args:
        box (Tensor[4]): ``(x1, y1, x2, y2)`` in image pixels.
        output_size (int or tuple[int, int]): ``(h, w)`` bins.
        spatial_scale (float): feature-map cells per image pixel (``1/16`` at stride 16).
        feature_size (tuple[int, int], optional): ``(H, W)`` of the feature map, to clip the
            bins to; ``None``: not clipped.

    Returns:
        RoIPoolBins: ``rows`` (``Tensor[h, 2]``), ``cols`` (``Tensor[w, 2]``) and ``roi``.
    """
    b = _check_box(box)
    out_hw = check_int_pair("output_size", output_size)
    size_hw = None if feature_size is None else check_int_pair("feature_size", feature_size)
    return _pool_bins(b, out_hw, _scale_tensor(spatial_scale, b.dtype), size_hw)


def roi_pool(input, boxes, output_size, spatial_scale: float = 1.0) -> torch.Tensor:
    """RoI max pooling (Girshick 2015, Fast R-CNN), equal to ``torchvision.ops.roi_pool``.

    Each RoI is rounded to whole cells and split into ``h x w`` quantised bins
    (:func:`roi_pool_bins`); each bin outputs the maximum of its cells, per channel. A bin
    that lies wholly outside the feature map outputs 0.

    Args:
        input (Tensor[N, C, H, W]): feature maps of ``N`` images.
        boxes (Tensor[K, 5] or list[Tensor[Ki, 4]]): ``(batch index, x1, y1, x2, y2)`` rows,
            or one ``Tensor[Ki, 4]`` of ``(x1, y1, x2, y2)`` boxes per image; image pixels,
            ``x1 <= x2``, ``y1 <= y2``.
        output_size (int or tuple[int, int]): ``(h, w)`` of the output.
        spatial_scale (float): feature-map cells per image pixel (``1/16`` at stride 16).

    Returns:
        Tensor[K, C, h, w]: the pooled features, in the input's dtype.
    """
    x = _check_input(input)
    rois = to_rois(boxes, x.shape[0]).to(x.dtype)
    h, w = check_int_pair("output_size", output_size)
    scale = _scale_tensor(spatial_scale, x.dtype)
    out = x.new_zeros(len(rois), x.shape[1], h, w)  # empty bins stay 0
    for k, roi in enumerate(rois):
        fmap = x[int(roi[0])]  # [C, H, W]
        bins = _pool_bins(roi[1:].cpu(), (h, w), scale, x.shape[2:])
        for i, (r0, r1) in enumerate(bins.rows.tolist()):
            for j, (c0, c1) in enumerate(bins.cols.tolist()):
                if r1 > r0 and c1 > c0:
                    out[k, :, i, j] = fmap[:, r0:r1, c0:c1].amax(dim=(1, 2))  # [C]
    return out


# --------------------------------------------------------------------------- RoIAlign


def _bilinear_axis(t: torch.Tensor, size: int):
    """One axis of a bilinear read at coordinates ``t`` on ``size`` cells (torchvision's rules).

    A read more than one cell outside the map counts for nothing; within that cell it reads
    the border. Returns ``(low, high, frac, inside)``: the two cells read (int64), the weight
    of ``high`` (``low`` gets ``1 - frac``), and whether the read counts, each shaped as ``t``.
    """
    inside = (t >= -1) & (t <= size)
    t = t.clamp(min=0)
    low = t.floor().long()
    last = low >= size - 1  # on or past the last cell: read it alone
    low = torch.where(last, size - 1, low)
    t = torch.where(last, low.to(t.dtype), t)
    high = torch.where(last, low, low + 1)
    return low, high, t - low, inside


def _bilinear(feature: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """:func:`bilinear_sample` without the checks: ``[C, H, W]`` at ``y, x`` -> ``[C, *y.shape]``."""
    height, width = feature.shape[-2:]
    y0, y1, ly, inside_y = _bilinear_axis(y, height)
    x0, x1, lx, inside_x = _bilinear_axis(x, width)
    hy, hx = 1 - ly, 1 - lx  # ly, lx: how far past the top-left neighbour, in [0, 1)
    value = (
        hy * hx * feature[:, y0, x0]
        + hy * lx * feature[:, y0, x1]
        + ly * hx * feature[:, y1, x0]
        + ly * lx * feature[:, y1, x1]
    )  # [C, *y.shape]
    inside = inside_y & inside_x
    return torch.where(inside, value, torch.zeros((), dtype=value.dtype, device=value.device))


def bilinear_sample(feature, y, x) -> torch.Tensor:
    """Bilinear interpolation of a feature map at fractional points, as RoIAlign reads it.

    Pixel ``(i, j)`` has its value at the point ``(y, x) = (i, j)``; a point between four
    pixels mixes them with weights ``(1 - ly)(1 - lx)``, ``(1 - ly) lx``, ``ly (1 - lx)``,
    ``ly lx`` where ``ly, lx`` are its distances past the top-left one. Border rules of
    torchvision's RoIAlign kernel: a point with ``y < -1``, ``y > H``, ``x < -1`` or
    ``x > W`` gives 0; otherwise coordinates below 0 read row / column 0 and those at or
    past ``H - 1`` (``W - 1``) read the last row (column).

    Args:
        feature (Tensor[C, H, W]): one feature map.
        y (Tensor[...]): row coordinates of the points.
        x (Tensor[...]): column coordinates, same shape as ``y``.

    Returns:
        Tensor[C, ...]: the interpolated values, in the feature's dtype.
    """
    if not isinstance(feature, torch.Tensor) or feature.dim() != 3:
        got = tuple(feature.shape) if isinstance(feature, torch.Tensor) else type(feature).__name__
        raise ValueError(f"feature must be a tensor [C, H, W], got {got}")
    f = as_float_tensor("feature", feature)
    if f.shape[1] < 1 or f.shape[2] < 1:
        raise ValueError(f"feature must have H, W >= 1, got shape {tuple(f.shape)}")
    ty = as_float_tensor("y", y).to(f.dtype)
    tx = as_float_tensor("x", x).to(f.dtype)
    if ty.shape != tx.shape:
        raise ValueError(
            f"y and x must have the same shape, got {tuple(ty.shape)} and {tuple(tx.shape)}"
        )
    return _bilinear(f, ty.to(f.device), tx.to(f.device))


def _align_grid(box, out_hw, scale, sampling_ratio, aligned):
    """RoIAlign's sample coordinates for one RoI: ``ys [h, sy]``, ``xs [w, sx]`` and the
    number of samples per bin (at least 1, so that an empty grid averages to 0)."""
    # Half a pixel left and up: box coordinates put pixel i's centre at i + 0.5, the
    # interpolation at i (Detectron2's fix; aligned=False keeps Mask R-CNN's original).
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = box * scale - offset
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # the original forces tiny RoIs to one pixel
        roi_w, roi_h = roi_w.clamp(min=1), roi_h.clamp(min=1)
    h, w = out_hw
    bin_h, bin_w = roi_h / h, roi_w / w  # exact, fractional bin sizes
    # -1: adaptive, about one sample per pixel of the bin (ceil(bin size) per side)
    sy = sampling_ratio if sampling_ratio > 0 else math.ceil(float(bin_h))
    sx = sampling_ratio if sampling_ratio > 0 else math.ceil(float(bin_w))

    def axis(start, bin_size, n, s):
        k = torch.arange(n, dtype=box.dtype)[:, None]  # [n, 1] bin
        i = torch.arange(s, dtype=box.dtype)[None, :]  # [1, s] sample within the bin
        # the s points split the bin into s equal parts and sit in their middles
        return start + k * bin_size + (i + 0.5) * bin_size / s  # [n, s]

    return axis(y1, bin_h, h, sy), axis(x1, bin_w, w, sx), max(sy * sx, 1)


def roi_align_points(
    box,
    output_size,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> torch.Tensor:
    """Where RoIAlign reads the feature map for one box (He et al. 2017).

    The RoI ``box * spatial_scale`` (minus half a pixel if ``aligned``) is split into
    ``h x w`` equal bins, never rounded; each bin holds a ``sy x sx`` grid of points in the
    middles of equal sub-cells, with ``sy = sx = sampling_ratio`` or, when it is -1,
    ``sy = ceil(bin height)`` and ``sx = ceil(bin width)``. Computed in the box's dtype,
    as torchvision's kernel.

    Args:
        box (Tensor[4]): ``(x1, y1, x2, y2)`` in image pixels.
        output_size (int or tuple[int, int]): ``(h, w)`` bins.
        spatial_scale (float): feature-map cells per image pixel.
        sampling_ratio (int): points per bin side; -1: adaptive.
        aligned (bool): shift by -0.5 pixel (Detectron2); False: Mask R-CNN's original.

    Returns:
        Tensor[h, w, sy, sx, 2]: ``(y, x)`` of every point in the coordinates of
        :func:`bilinear_sample` (pixel ``(i, j)`` centred at ``(i, j)``; add 0.5 to draw
        them over cells that span ``[j, j + 1)``).
    """
    b = _check_box(box)
    out_hw = check_int_pair("output_size", output_size)
    ratio = _check_sampling_ratio(sampling_ratio)
    scale = _scale_tensor(spatial_scale, b.dtype)
    ys, xs = _align_grid(b, out_hw, scale, ratio, _check_aligned(aligned))[:2]
    (h, sy), (w, sx) = ys.shape, xs.shape
    y = ys[:, None, :, None].expand(h, w, sy, sx)  # [h, w, sy, sx]
    x = xs[None, :, None, :].expand(h, w, sy, sx)  # [h, w, sy, sx]
    return torch.stack([y, x], dim=-1)


def roi_align(
    input,
    boxes,
    output_size,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> torch.Tensor:
    """RoIAlign (He et al. 2017, Mask R-CNN), equal to ``torchvision.ops.roi_align``.

    Each bin of the RoI keeps its exact position; its output is the average of the feature
    map bilinearly interpolated (:func:`bilinear_sample`) at the bin's sample points
    (:func:`roi_align_points`).

    Args:
        input (Tensor[N, C, H, W]): feature maps of ``N`` images.
        boxes (Tensor[K, 5] or list[Tensor[Ki, 4]]): ``(batch index, x1, y1, x2, y2)`` rows,
            or one ``Tensor[Ki, 4]`` of ``(x1, y1, x2, y2)`` boxes per image; image pixels,
            ``x1 <= x2``, ``y1 <= y2``.
        output_size (int or tuple[int, int]): ``(h, w)`` of the output.
        spatial_scale (float): feature-map cells per image pixel (``1/16`` at stride 16).
        sampling_ratio (int): sample points per bin side; -1: ``ceil(bin size)``.
        aligned (bool): shift the RoI by -0.5 pixel (Detectron2, torchvision's Mask R-CNN
            uses False); False: Mask R-CNN's original.

    Returns:
        Tensor[K, C, h, w]: the pooled features, in the input's dtype.
    """
    x = _check_input(input)
    rois = to_rois(boxes, x.shape[0]).to(x.dtype)
    out_hw = check_int_pair("output_size", output_size)
    ratio = _check_sampling_ratio(sampling_ratio)
    aligned = _check_aligned(aligned)
    scale = _scale_tensor(spatial_scale, x.dtype)
    h, w = out_hw
    out = x.new_zeros(len(rois), x.shape[1], h, w)
    for k, roi in enumerate(rois):
        ys, xs, count = _align_grid(roi[1:].cpu(), out_hw, scale, ratio, aligned)
        sy, sx = ys.shape[1], xs.shape[1]
        y = ys[:, None, :, None].expand(h, w, sy, sx).to(x.device)  # [h, w, sy, sx]
        xx = xs[None, :, None, :].expand(h, w, sy, sx).to(x.device)  # [h, w, sy, sx]
        samples = _bilinear(x[int(roi[0])], y, xx)  # [C, h, w, sy, sx]
        out[k] = samples.sum(dim=(-2, -1)) / count  # [C, h, w]: the bin's average
    return out


# --------------------------------------------------------------------------- RoIAlign as matrices


def _axis_weights(start, bin_size, bins: int, samples, size: int) -> torch.Tensor:
    """Row (or column) weights of RoIAlign along one axis, for every RoI.

    Bin ``p`` of RoI ``r`` averages ``samples[r]`` bilinear reads along this axis; each read
    at coordinate ``t`` puts weight ``1 - (t - floor t)`` on cell ``floor t`` and the rest on
    the next cell, with :func:`bilinear_sample`'s border rules. Summed over the reads and
    divided by their number, that is one row of a ``[bins, size]`` matrix per RoI.

    Args:
        start, bin_size (Tensor[R]): the RoIs' first coordinate and bin size, in cells.
        bins (int): bins along the axis.
        samples (Tensor[R]): int64 reads per bin along the axis (0 reads nothing: an
            empty RoI with ``aligned=True`` and adaptive sampling pools to 0).
        size (int): cells of the feature map along the axis.

    Returns:
        Tensor[R, bins, size]
    """
    n = max(int(samples.max()), 1) if len(samples) else 1
    p = torch.arange(bins, dtype=start.dtype, device=start.device)[None, :, None]  # [1, P, 1]
    i = torch.arange(n, device=start.device)[None, None, :]  # [1, 1, S]
    s = samples.clamp(min=1).to(start.dtype)[:, None, None]  # [R, 1, 1]
    # the reads split the bin into s equal parts and sit in their middles
    t = start[:, None, None] + (p + (i + 0.5) / s) * bin_size[:, None, None]  # [R, P, S]
    low, high, frac, inside = _bilinear_axis(t, size)  # [R, P, S] each
    keep = ((i < samples[:, None, None]) & inside).to(t.dtype) / s
    w = t.new_zeros(len(start), bins, n, size)  # [R, P, S, size]
    w.scatter_add_(3, low[..., None], ((1 - frac) * keep)[..., None])
    w.scatter_add_(3, high[..., None], (frac * keep)[..., None])
    return w.sum(dim=2)  # [R, P, size]


def _roi_align_matrices(x, rois, out_hw, spatial_scale: float, sampling_ratio: int, aligned: bool):
    """:func:`roi_align_matrices` without the checks (``rois`` a floating ``Tensor[K, 5]``)."""
    n_images, c, height, width = x.shape
    h, w = out_hw
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, 1:] * spatial_scale - offset).unbind(dim=1)  # [K] each
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # the original forces tiny RoIs to one cell
        roi_w, roi_h = roi_w.clamp(min=1), roi_h.clamp(min=1)
    bin_h, bin_w = roi_h / h, roi_w / w
    if sampling_ratio > 0:
        sy = sx = torch.full((len(rois),), sampling_ratio, device=x.device)
    else:  # adaptive: ceil(bin size) reads per bin side
        sy, sx = bin_h.ceil().long(), bin_w.ceil().long()
    rows = _axis_weights(y1, bin_h, h, sy, height)  # [K, h, H]
    cols = _axis_weights(x1, bin_w, w, sx, width)  # [K, w, W]
    image = rois[:, 0].long()
    in_order = bool((image[1:] >= image[:-1]).all())  # a detector's RoIs come image by image
    if not in_order:
        order = torch.argsort(image, stable=True)
        rows, cols = rows[order], cols[order]
    counts = torch.bincount(image, minlength=n_images).tolist()
    parts = []
    for n, (a, b) in enumerate(zip(rows.split(counts), cols.split(counts), strict=True)):
        if len(a) == 0:
            continue
        k = len(a)
        # out[r] = A_r F B_r^T: first every row of every RoI of this image at once ...
        f = x[n].transpose(0, 1).reshape(height, c * width)  # [H, C * W]
        t = (a.reshape(k * h, height) @ f).reshape(k, h, c, width).transpose(1, 2)  # [k, C, h, W]
        # ... then the columns, RoI by RoI (a batched product)
        parts.append(t @ b.transpose(1, 2)[:, None])  # [k, C, h, w]
    out = torch.cat(parts) if parts else x.new_zeros(0, c, h, w)
    if not in_order:  # back to the RoIs' own order (index_select: its gradient is cheap)
        out = out.index_select(0, torch.argsort(order))
    return out


def roi_align_matrices(
    input,
    boxes,
    output_size,
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> torch.Tensor:
    """RoIAlign as two small matrix products per RoI: ``out[r] = A_r F B_r^T``.

    A read at ``(y, x)`` weighs cell ``(i, j)`` by ``a(y, i) * b(x, j)``: bilinear
    interpolation is separable, and so are its border rules. Averaging the reads of a bin
    keeps it separable, so bin ``(p, q)`` of RoI ``r`` is ``sum_ij A_r[p, i] F[:, i, j]
    B_r[q, j]``, where row ``p`` of ``A_r`` (``[h, H]``) holds the mean row weights of the
    bin's reads and row ``q`` of ``B_r`` (``[w, W]``) the mean column weights. Each channel
    of the output is then ``A_r F_c B_r^T``, like the matrix form of a convolution: the
    same numbers as :func:`roi_align` and ``torchvision.ops.roi_align``, from matrix
    products.

    Why have it: autograd differentiates the products, so the gradient is two more
    products. torchvision's CPU kernel computes its backward one read and one channel at a
    time, on one thread: about 6 x its forward (``benchmarks/results/roi_align.md``), and
    39 % of a Mask R-CNN training step on the 2-core machine
    (``benchmarks/results/mask_rcnn_calibration.md``).

    Args:
        input (Tensor[N, C, H, W]): feature maps of ``N`` images.
        boxes (Tensor[K, 5] or list[Tensor[Ki, 4]]): as :func:`roi_align`.
        output_size (int or tuple[int, int]): ``(h, w)`` of the output.
        spatial_scale (float): feature-map cells per image pixel.
        sampling_ratio (int): reads per bin side; -1: ``ceil(bin size)``.
        aligned (bool): shift the RoI by -0.5 pixel (Detectron2); False: Mask R-CNN's.

    Returns:
        Tensor[K, C, h, w]: the pooled features, in the input's dtype.
    """
    x = _check_input(input)
    rois = to_rois(boxes, x.shape[0]).to(device=x.device, dtype=x.dtype)
    out_hw = check_int_pair("output_size", output_size)
    ratio = _check_sampling_ratio(sampling_ratio)
    scale = float(_scale_tensor(spatial_scale, x.dtype))
    return _roi_align_matrices(x, rois, out_hw, scale, ratio, _check_aligned(aligned))


# --------------------------------------------------------------------------- how far off


def quantisation_error(box, output_size, spatial_scale: float = 1.0) -> float:
    """How far RoI pooling's bins are from the exact bins, in feature-map cells.

    The exact bins split the RoI ``box * spatial_scale`` into ``h x w`` equal parts, in
    coordinates where cell ``j`` spans ``[j, j + 1)`` (RoIAlign with ``aligned=True``
    samples inside them). RoI pooling's bins (:func:`roi_pool_bins`, not clipped) span
    whole cells. The error is the mean, over the ``2h`` row edges and ``2w`` column edges
    of the bins, of the distance between a quantised edge and the exact one. Multiply by
    the stride (``1 / spatial_scale``) for image pixels.

    Even a box on cell borders is off: RoI pooling counts the last cell in, so its RoI is
    one cell too wide and tall, and its bins overlap when ``cells / h`` is not whole.

    Args:
        box (Tensor[4]): ``(x1, y1, x2, y2)`` in image pixels.
        output_size (int or tuple[int, int]): ``(h, w)`` bins.
        spatial_scale (float): feature-map cells per image pixel.

    Returns:
        float: the mean edge offset, in cells (0 only if every bin edge is exact).
    """
    b = _check_box(box)
    h, w = check_int_pair("output_size", output_size)
    bins = _pool_bins(b, (h, w), _scale_tensor(spatial_scale, b.dtype), None)
    x1, y1, x2, y2 = (b.double() * check_number("spatial_scale", spatial_scale)).tolist()

    def offsets(quantised: torch.Tensor, lo: float, hi: float, n: int) -> torch.Tensor:
        edges = lo + (hi - lo) * torch.arange(n + 1, dtype=torch.float64) / n  # [n + 1]
        exact = torch.stack([edges[:-1], edges[1:]], dim=1)  # [n, 2]: each bin's two edges
        return (quantised.double() - exact).abs().flatten()  # [2n]

    return float(torch.cat([offsets(bins.rows, y1, y2, h), offsets(bins.cols, x1, x2, w)]).mean())
