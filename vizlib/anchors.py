"""Anchors: generating them over feature maps, matching them to ground truth, sampling.

An anchor detector (Faster R-CNN's RPN, Ren et al. 2015; RetinaNet, Lin et al. 2017)
places a fixed set of boxes at every location of a feature map and learns, for each, a
class and the small correction (see :func:`vizlib.boxes.encode_deltas`) that turns it
into an object's box. Three steps build the training targets:

1. :func:`generate_anchors` makes the base anchors (centred at 0), one per
   (size, aspect ratio); :func:`grid_anchors` copies them to every feature-map location
   (:func:`multilevel_anchors` / :func:`anchors_for_image` for a feature pyramid);
2. :func:`match_anchors` gives each anchor a ground-truth box, or :data:`BACKGROUND`,
   or :data:`IGNORE`;
3. :func:`sample_balanced` picks a batch with a fixed share of positives, because
   background anchors outnumber objects a thousand to one.

SSD (Liu et al., 2016) calls its anchors *default boxes* and builds them by a rule:
:func:`ssd_scales` (one scale per feature map, ``s_k = s_min + (s_max - s_min)(k - 1) /
(m - 1)``), :func:`default_boxes` (boxes of those scales and aspect ratios centred on
every cell of every map), :func:`match_default_boxes` (each object's best default box,
then every default box with IoU >= 0.5) and :func:`hard_negative_mining` (the negatives
with the highest loss, three per positive, instead of a random sample).

The results agree with torchvision's ``AnchorGenerator``, ``Matcher``,
``BalancedPositiveNegativeSampler``, ``DefaultBoxGenerator``, ``SSDMatcher`` and the
hard-negative selection of ``SSD.compute_loss`` (``torchvision.models.detection``).
"""

from __future__ import annotations

import math
from numbers import Real

import torch

from vizlib._checks import (
    as_float_tensor,
    check_boxes,
    check_fraction,
    check_int_pair,
    check_positive_int,
    check_positive_numbers,
    check_positive_pair,
)
from vizlib.boxes import box_iou

__all__ = [
    "BACKGROUND",
    "IGNORE",
    "generate_anchors",
    "grid_anchors",
    "multilevel_anchors",
    "anchors_for_image",
    "match_anchors",
    "match_anchors_to_boxes",
    "sample_balanced",
    "ssd_scales",
    "ssd_wh_pairs",
    "default_boxes",
    "match_default_boxes",
    "hard_negative_mining",
]

#: Matched index of an anchor whose best IoU is below ``bg_iou_thresh``: a negative.
BACKGROUND = -1
#: Matched index of an anchor whose best IoU lies between the thresholds: not trained on.
IGNORE = -2


# --------------------------------------------------------------------------- generation


def generate_anchors(sizes, aspect_ratios, round_to_int: bool = False) -> torch.Tensor:
    """Base anchors centred at ``(0, 0)``: one per (aspect ratio, size) pair.

    An anchor of size ``s`` and aspect ratio ``r`` has area ``s**2`` and
    ``height / width = r``: ``w = s / sqrt(r)``, ``h = s * sqrt(r)``. Anchors come
    ratio-major, size-minor (``[r0 s0, r0 s1, ..., r1 s0, ...]``), as torchvision's
    ``AnchorGenerator.generate_anchors``.

    Args:
        sizes (sequence of float): anchor sizes ``s`` in pixels (the square root of the area).
        aspect_ratios (sequence of float): ratios ``r = height / width``.
        round_to_int (bool): round the corners to whole pixels, as torchvision does (then
            the area is only close to ``s**2``). Default ``False``: exact.

    Returns:
        Tensor[A, 4]: float32 anchors ``(x1, y1, x2, y2)`` = ``(-w/2, -h/2, w/2, h/2)``,
        ``A = len(aspect_ratios) * len(sizes)``.
    """
    s = torch.tensor(check_positive_numbers("sizes", sizes), dtype=torch.float64)
    r = torch.tensor(check_positive_numbers("aspect_ratios", aspect_ratios), dtype=torch.float64)
    # sqrt(r) splits the ratio between height and width so that w * h = s**2.
    h_ratios = torch.sqrt(r)
    w_ratios = 1 / h_ratios
    widths = (w_ratios[:, None] * s[None, :]).reshape(-1)  # [R, S] -> [A]
    heights = (h_ratios[:, None] * s[None, :]).reshape(-1)  # [R, S] -> [A]
    base = torch.stack([-widths, -heights, widths, heights], dim=1) / 2  # [A, 4]
    base = base.float()  # computed in float64, stored as float32 like torchvision
    return base.round() if round_to_int else base


def _check_offset(offset) -> float:
    """Where an anchor sits in its cell, in [0, 1) (specific to anchor grids: 0 is
    torchvision's corner, 0.5 the cell's centre)."""
    if isinstance(offset, bool) or not isinstance(offset, Real) or not 0.0 <= offset < 1.0:
        raise ValueError(
            f"offset must be a number in [0, 1) (0 or 0.5 in practice), got {offset!r}"
        )
    return float(offset)


def grid_anchors(feature_size, stride, base_anchors, offset: float = 0.0) -> torch.Tensor:
    """Copy the base anchors to every location of one feature map.

    Location ``(i, j)`` (row, column) of the feature map sits at pixel
    ``((j + offset) * stride_w, (i + offset) * stride_h)`` of the image. torchvision's
    ``AnchorGenerator`` uses ``offset = 0`` (anchors centred on the cell's top-left
    corner); ``0.5`` centres them in the cell (FCOS, Detectron2's option).

    The order is location-major, anchor-minor, rows before columns, as torchvision: the
    ``A`` anchors of location ``(0, 0)``, then those of ``(0, 1)``, ..., so that
    ``result.view(H, W, A, 4)[i, j, a]`` is anchor ``a`` at row ``i``, column ``j``.

    Args:
        feature_size (tuple[int, int]): ``(H, W)`` of the feature map.
        stride (float or tuple[float, float]): pixels between neighbouring locations,
            ``(stride_h, stride_w)`` or one number for both.
        base_anchors (Tensor[A, 4]): anchors centred at 0, ``(x1, y1, x2, y2)``,
            e.g. from :func:`generate_anchors`.
        offset (float): where in the cell the centre sits, in [0, 1).

    Returns:
        Tensor[H * W * A, 4]: anchors ``(x1, y1, x2, y2)`` in image pixels.
    """
    height, width = check_int_pair("feature_size", feature_size)
    stride_h, stride_w = check_positive_pair("stride", stride)
    base = check_boxes("base_anchors", base_anchors)
    offset = _check_offset(offset)
    shifts_x = (
        torch.arange(width, dtype=base.dtype, device=base.device) + offset
    ) * stride_w  # [W]
    shifts_y = (
        torch.arange(height, dtype=base.dtype, device=base.device) + offset
    ) * stride_h  # [H]
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")  # [H, W] each
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)  # [H * W]
    shifts = torch.stack([shift_x, shift_y, shift_x, shift_y], dim=1)  # [H * W, 4]
    # Every (location, base anchor) pair: broadcast [H * W, 1, 4] + [1, A, 4].
    return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)  # [H * W * A, 4]


def multilevel_anchors(
    feature_sizes, strides, base_anchors, offset: float = 0.0
) -> list[torch.Tensor]:
    """:func:`grid_anchors` for every level of a feature pyramid.

    Args:
        feature_sizes (list[tuple[int, int]]): ``(H_l, W_l)`` per level.
        strides (list[float or tuple[float, float]]): stride per level.
        base_anchors (list[Tensor[A_l, 4]]): base anchors per level (or one tensor used
            at every level).
        offset (float): as in :func:`grid_anchors`.

    Returns:
        list[Tensor[H_l * W_l * A_l, 4]]: one tensor per level; ``torch.cat`` them for
        the image's anchors in torchvision's order (level-major).
    """
    if not isinstance(feature_sizes, (list, tuple)) or len(feature_sizes) == 0:
        raise ValueError(f"feature_sizes must be a non-empty list of (H, W), got {feature_sizes!r}")
    levels = len(feature_sizes)
    if isinstance(base_anchors, torch.Tensor):
        base_anchors = [base_anchors] * levels
    if not isinstance(strides, (list, tuple)) or len(strides) != levels:
        raise ValueError(
            f"strides must be a list with one stride per level ({levels}), got {strides!r}"
        )
    if not isinstance(base_anchors, (list, tuple)) or len(base_anchors) != levels:
        raise ValueError(
            f"base_anchors must be one tensor or a list with one tensor per level ({levels}), "
            f"got {len(base_anchors) if isinstance(base_anchors, (list, tuple)) else base_anchors!r}"
        )
    return [
        grid_anchors(f, s, a, offset)
        for f, s, a in zip(feature_sizes, strides, base_anchors, strict=True)
    ]


def anchors_for_image(
    image_size, feature_sizes, sizes, aspect_ratios, offset: float = 0.0, round_to_int: bool = False
) -> torch.Tensor:
    """All anchors of one image, as torchvision's ``AnchorGenerator(sizes, aspect_ratios)``.

    The stride of each level is ``image_size // feature_size`` (integer division, as
    torchvision). With ``round_to_int=True`` and ``offset=0`` the result equals
    ``AnchorGenerator(sizes, aspect_ratios)(image_list, feature_maps)[0]``.

    Args:
        image_size (tuple[int, int]): ``(height, width)`` of the (padded) input image.
        feature_sizes (list[tuple[int, int]]): ``(H_l, W_l)`` per level.
        sizes (list[sequence of float]): anchor sizes per level, e.g. ``((32,), (64,), ...)``.
        aspect_ratios (list[sequence of float]): aspect ratios per level (or one sequence
            used at every level).
        offset (float): as in :func:`grid_anchors`.
        round_to_int (bool): as in :func:`generate_anchors`.

    Returns:
        Tensor[sum_l H_l * W_l * A_l, 4]: anchors ``(x1, y1, x2, y2)``, level-major.
    """
    img_h, img_w = check_int_pair("image_size", image_size)
    if not isinstance(feature_sizes, (list, tuple)) or len(feature_sizes) == 0:
        raise ValueError(f"feature_sizes must be a non-empty list of (H, W), got {feature_sizes!r}")
    levels = len(feature_sizes)
    if not isinstance(sizes, (list, tuple)) or len(sizes) != levels:
        raise ValueError(
            f"sizes must be a list with one sequence per level ({levels}), got {sizes!r}"
        )
    if (
        isinstance(aspect_ratios, (list, tuple))
        and aspect_ratios
        and not isinstance(aspect_ratios[0], (list, tuple))
    ):
        aspect_ratios = [aspect_ratios] * levels
    if not isinstance(aspect_ratios, (list, tuple)) or len(aspect_ratios) != levels:
        raise ValueError(
            f"aspect_ratios must be one sequence, or one per level ({levels}), got {aspect_ratios!r}"
        )
    feature_sizes = [check_int_pair("feature_sizes", f) for f in feature_sizes]
    strides = [(img_h // fh, img_w // fw) for fh, fw in feature_sizes]
    for (fh, fw), (sh, sw) in zip(feature_sizes, strides, strict=True):
        if sh == 0 or sw == 0:
            raise ValueError(
                f"feature_sizes entry {(fh, fw)} is larger than image_size {(img_h, img_w)}"
            )
    base = [generate_anchors(s, r, round_to_int) for s, r in zip(sizes, aspect_ratios, strict=True)]
    return torch.cat(multilevel_anchors(feature_sizes, strides, base, offset))


# --------------------------------------------------------------------------- matching


def match_anchors(
    iou_matrix, fg_iou_thresh: float, bg_iou_thresh: float, allow_low_quality_matches: bool = False
) -> torch.Tensor:
    """Give every anchor a ground-truth box, or mark it background or ignored.

    For each anchor take its best IoU over the ground-truth boxes:

    * ``>= fg_iou_thresh``: matched to that box (a positive);
    * ``< bg_iou_thresh``: :data:`BACKGROUND` (a negative);
    * in between: :data:`IGNORE` (too ambiguous to train either way).

    With ``allow_low_quality_matches`` every ground-truth box also claims the anchor(s)
    it overlaps most - all of them when several tie - even below ``fg_iou_thresh``, so
    that no object is left without a positive (Faster R-CNN's RPN rule; RPN uses 0.7 /
    0.3 with it, the RoI heads 0.5 / 0.5 without). As in torchvision, such an anchor is
    matched to *its own* best box, which is usually the box that claimed it.

    Same as ``torchvision.models.detection._utils.Matcher(fg_iou_thresh, bg_iou_thresh,
    allow_low_quality_matches)(iou_matrix)``, with two differences: empty inputs are
    allowed (no ground truth: every anchor is background), and a ground-truth box that
    overlaps no anchor at all (best IoU 0) claims nothing - torchvision would let it
    turn every anchor it does not touch into a positive.

    Args:
        iou_matrix (Tensor[M, N]): IoU of ground-truth box ``m`` (rows) and anchor ``n``
            (columns), values in [0, 1], e.g. ``box_iou(gt_boxes, anchors)``.
        fg_iou_thresh (float): IoU at or above which an anchor is a positive, in [0, 1].
        bg_iou_thresh (float): IoU below which an anchor is background, in
            ``[0, fg_iou_thresh]``.
        allow_low_quality_matches (bool): see above.

    Returns:
        Tensor[N]: int64; for each anchor the index of its ground-truth box in
        ``[0, M)``, or :data:`BACKGROUND`, or :data:`IGNORE`.
    """
    iou = as_float_tensor("iou_matrix", iou_matrix)
    if iou.dim() != 2:
        raise ValueError(
            f"iou_matrix must have shape [M, N] (ground truth x anchors), got {tuple(iou.shape)}"
        )
    if iou.numel() and bool(((iou < 0) | (iou > 1)).any()):
        raise ValueError("iou_matrix must hold IoU values in [0, 1]")
    fg = check_fraction("fg_iou_thresh", fg_iou_thresh)
    bg = check_fraction("bg_iou_thresh", bg_iou_thresh)
    if bg > fg:
        raise ValueError(f"bg_iou_thresh ({bg}) must be <= fg_iou_thresh ({fg})")
    if not isinstance(allow_low_quality_matches, bool):
        raise ValueError(
            f"allow_low_quality_matches must be a bool, got {allow_low_quality_matches!r}"
        )
    num_gt, num_anchors = iou.shape
    if num_gt == 0:
        return torch.full((num_anchors,), BACKGROUND, dtype=torch.int64, device=iou.device)
    if num_anchors == 0:
        return torch.empty(0, dtype=torch.int64, device=iou.device)

    best_iou, best_gt = iou.max(dim=0)  # [N]: best ground truth for each anchor
    matches = best_gt.clone()
    matches[best_iou < bg] = BACKGROUND
    matches[(best_iou >= bg) & (best_iou < fg)] = IGNORE

    if allow_low_quality_matches:
        best_iou_per_gt = iou.max(dim=1).values  # [M]: best anchor IoU for each gt
        # Every (gt, anchor) pair that reaches its gt's best, ties included.
        is_best = (iou == best_iou_per_gt[:, None]) & (best_iou_per_gt[:, None] > 0)  # [M, N]
        claimed = is_best.any(dim=0)  # [N]
        matches[claimed] = best_gt[claimed]
    return matches


def match_anchors_to_boxes(
    anchors,
    gt_boxes,
    fg_iou_thresh: float,
    bg_iou_thresh: float,
    allow_low_quality_matches: bool = False,
) -> torch.Tensor:
    """:func:`match_anchors` on ``box_iou(gt_boxes, anchors)``.

    Args:
        anchors (Tensor[N, 4]): anchors ``(x1, y1, x2, y2)``.
        gt_boxes (Tensor[M, 4]): ground-truth boxes ``(x1, y1, x2, y2)``.
        fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches: as in :func:`match_anchors`.

    Returns:
        Tensor[N]: int64 matched ground-truth index, :data:`BACKGROUND` or :data:`IGNORE`.
    """
    a = check_boxes("anchors", anchors)
    g = check_boxes("gt_boxes", gt_boxes)
    return match_anchors(box_iou(g, a), fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches)


# --------------------------------------------------------------------------- sampling


def sample_balanced(
    labels,
    batch_size_per_image: int,
    positive_fraction: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample anchors (or proposals) for the loss with a fixed share of positives.

    Takes up to ``int(batch_size_per_image * positive_fraction)`` positives at random,
    then fills the batch with random negatives (Faster R-CNN: 256 anchors, half positive,
    for the RPN; 512 proposals, a quarter positive, for the RoI heads). Without it the
    loss would be dominated by easy background.

    With ``generator=None`` it draws from torch's global generator in the same order as
    torchvision's ``BalancedPositiveNegativeSampler``, so the same seed picks the same
    samples.

    Args:
        labels (Tensor[N]): integer (or float) labels: ``>= 1`` positive, ``0`` negative,
            ``< 0`` ignored (e.g. :data:`IGNORE`).
        batch_size_per_image (int): how many to sample at most.
        positive_fraction (float): the largest share of positives, in [0, 1].
        generator (torch.Generator, optional): source of randomness.

    Returns:
        tuple[Tensor[N], Tensor[N]]: bool masks ``(positive, negative)`` of the sampled.
    """
    if not isinstance(labels, torch.Tensor) or labels.dtype == torch.bool or labels.is_complex():
        raise ValueError(f"labels must be a real tensor [N], got {type(labels).__name__}")
    if labels.dim() != 1:
        raise ValueError(f"labels must have shape [N], got {tuple(labels.shape)}")
    if labels.is_floating_point() and labels.numel() and not bool(torch.isfinite(labels).all()):
        raise ValueError("labels must be finite, but it holds NaN or inf")
    batch = check_positive_int("batch_size_per_image", batch_size_per_image, allow_zero=True)
    fraction = check_fraction("positive_fraction", positive_fraction)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )

    positive = torch.where(labels >= 1)[0]
    negative = torch.where(labels == 0)[0]
    num_pos = min(positive.numel(), int(batch * fraction))
    num_neg = min(negative.numel(), batch - num_pos)  # negatives fill the rest
    device = labels.device
    pos_pick = positive[
        torch.randperm(positive.numel(), generator=generator, device=device)[:num_pos]
    ]
    neg_pick = negative[
        torch.randperm(negative.numel(), generator=generator, device=device)[:num_neg]
    ]
    pos_mask = torch.zeros(labels.shape, dtype=torch.bool, device=device)
    neg_mask = torch.zeros(labels.shape, dtype=torch.bool, device=device)
    pos_mask[pos_pick] = True
    neg_mask[neg_pick] = True
    return pos_mask, neg_mask


# --------------------------------------------------------------------------- SSD


def ssd_scales(num_maps: int, s_min: float = 0.2, s_max: float = 0.9) -> list[float]:
    """SSD's scale rule: ``s_k = s_min + (s_max - s_min) (k - 1) / (m - 1)``, ``k = 1..m``.

    The scale of the default boxes of feature map ``k`` is a fraction of the image side,
    spaced evenly from ``s_min`` (the finest map) to ``s_max`` (the coarsest). The paper
    (Liu et al., 2016) uses ``s_min = 0.2``, ``s_max = 0.9`` on 300-pixel images.

    Args:
        num_maps (int): ``m``, the number of feature maps, >= 1 (``m = 1`` gives ``[s_min]``).
        s_min (float): scale of the first map, in (0, 1].
        s_max (float): scale of the last map, in ``[s_min, 1]``.

    Returns:
        list[float]: ``m`` scales, fractions of the image side.
    """
    m = check_positive_int("num_maps", num_maps)
    lo, hi = check_fraction("s_min", s_min), check_fraction("s_max", s_max)
    if not 0 < lo <= hi:
        raise ValueError(f"expected 0 < s_min <= s_max <= 1, got s_min={s_min}, s_max={s_max}")
    if m == 1:
        return [lo]
    return [lo + (hi - lo) * k / (m - 1) for k in range(m)]


def _check_ratio_lists(aspect_ratios, levels: int) -> list[list[float]]:
    if not isinstance(aspect_ratios, (list, tuple)) or len(aspect_ratios) != levels:
        raise ValueError(
            f"aspect_ratios must be a list with one sequence per feature map ({levels}), "
            f"e.g. [[2.0]] * {levels}, got {aspect_ratios!r}"
        )
    out = []
    for k, ratios in enumerate(aspect_ratios):
        if not isinstance(ratios, (list, tuple)):
            raise ValueError(f"aspect_ratios[{k}] must be a sequence of ratios, got {ratios!r}")
        out.append(check_positive_numbers(f"aspect_ratios[{k}]", ratios) if ratios else [])
    return out


def ssd_wh_pairs(scales, aspect_ratios, clip: bool = True) -> list[torch.Tensor]:
    """The widths and heights of one location's default boxes, per feature map.

    Map ``k`` gets (the paper's section 2.2, torchvision's order): a square of side
    ``s_k``; a square of side ``s'_k = sqrt(s_k s_{k+1})`` (``s_{m+1} = 1``); and for each
    aspect ratio ``a`` in ``aspect_ratios[k]`` two boxes, ``(w, h) = (s_k sqrt(a), s_k /
    sqrt(a))`` and its transpose. Here ``a = w / h`` of the first box of the pair, so a
    list ``[2]`` gives the ratios 2 and 1/2 (the paper's ``{1, 2, 3, 1/2, 1/3}`` is
    ``[2, 3]``). That is ``2 + 2 len(aspect_ratios[k])`` boxes per location.

    Args:
        scales (sequence of float): ``s_1 .. s_m`` (e.g. :func:`ssd_scales`), or
            ``m + 1`` values whose last is ``s_{m+1}`` (default 1).
        aspect_ratios (list[sequence of float]): ratios per map, ``m`` sequences.
        clip (bool): clamp widths and heights to [0, 1] (torchvision's ``clip=True``).

    Returns:
        list[Tensor[A_k, 2]]: ``(w, h)`` as fractions of the image, one tensor per map.
    """
    s = check_positive_numbers("scales", scales)
    if not isinstance(aspect_ratios, (list, tuple)) or len(aspect_ratios) not in (
        len(s),
        len(s) - 1,
    ):
        raise ValueError(
            f"aspect_ratios must hold one sequence per feature map ({len(s)} scales), "
            f"got {aspect_ratios!r}"
        )
    ratios = _check_ratio_lists(aspect_ratios, len(aspect_ratios))
    m = len(ratios)
    if len(s) == m:
        s = s + [1.0]
    pairs = []
    for k in range(m):
        s_k, s_prime = s[k], math.sqrt(s[k] * s[k + 1])
        wh = [[s_k, s_k], [s_prime, s_prime]]
        for a in ratios[k]:
            w, h = s_k * math.sqrt(a), s_k / math.sqrt(a)
            wh += [[w, h], [h, w]]
        t = torch.tensor(wh, dtype=torch.float32)  # [A_k, 2]
        pairs.append(t.clamp(0, 1) if clip else t)
    return pairs


def default_boxes(
    image_size,
    feature_sizes,
    aspect_ratios,
    s_min: float = 0.2,
    s_max: float = 0.9,
    scales=None,
    clip: bool = True,
) -> torch.Tensor:
    """SSD's default boxes of one image, on several feature maps, in pixels.

    Map ``k`` of size ``(H_k, W_k)`` gets, centred on each of its cells (centre
    ``((j + 0.5) / W_k, (i + 0.5) / H_k)`` of the image), the boxes of
    :func:`ssd_wh_pairs`. Coarse maps carry big boxes, fine maps small ones, so each
    object is predicted by the map whose cells and receptive field suit its size.

    Order: map-major, then location (rows before columns), then box, so that
    ``result[offset_k:].view(H_k, W_k, A_k, 4)[i, j, a]`` is box ``a`` at row ``i``,
    column ``j`` of map ``k`` (the order of a head's ``[N, A_k * K, H, W]`` output after
    ``permute(0, 2, 3, 1)``). Equals ``torchvision.models.detection.anchor_utils.
    DefaultBoxGenerator(aspect_ratios, s_min, s_max, scales, clip=clip)`` on an image of
    ``image_size`` with feature maps of ``feature_sizes``.

    Args:
        image_size (tuple[int, int]): ``(height, width)`` in pixels.
        feature_sizes (list[tuple[int, int]]): ``(H_k, W_k)`` of each of the ``m`` maps.
        aspect_ratios (list[sequence of float]): ratios ``w / h`` per map (see
            :func:`ssd_wh_pairs`), ``m`` sequences.
        s_min, s_max (float): the scale rule's ends (:func:`ssd_scales`), fractions of the image.
        scales (sequence of float, optional): the scales themselves (``m`` or ``m + 1``
            values) instead of the rule.
        clip (bool): clamp each box's width and height to the image (in ``cx, cy, w, h``
            form, as torchvision; a box may still reach past the image's edge).

    Returns:
        Tensor[D, 4]: float32 ``(x1, y1, x2, y2)`` pixels, ``D = sum_k H_k W_k A_k``.
    """
    img_h, img_w = check_int_pair("image_size", image_size)
    if not isinstance(feature_sizes, (list, tuple)) or len(feature_sizes) == 0:
        raise ValueError(f"feature_sizes must be a non-empty list of (H, W), got {feature_sizes!r}")
    sizes = [check_int_pair("feature_sizes", f) for f in feature_sizes]
    m = len(sizes)
    ratios = _check_ratio_lists(aspect_ratios, m)
    if scales is None:
        scales = ssd_scales(m, s_min, s_max)
    else:
        scales = check_positive_numbers("scales", scales)
        if len(scales) not in (m, m + 1):
            raise ValueError(
                f"scales must hold {m} or {m + 1} values (one per map), got {len(scales)}"
            )
    if not isinstance(clip, bool):
        raise ValueError(f"clip must be a bool, got {clip!r}")
    pairs = ssd_wh_pairs(scales, ratios, clip)
    boxes = []
    for (fh, fw), wh in zip(sizes, pairs, strict=True):
        cx = (torch.arange(fw, dtype=torch.float32) + 0.5) / fw  # [W_k]
        cy = (torch.arange(fh, dtype=torch.float32) + 0.5) / fh  # [H_k]
        cy, cx = torch.meshgrid(cy, cx, indexing="ij")  # [H_k, W_k] each
        centres = torch.stack([cx.reshape(-1), cy.reshape(-1)], dim=1)  # [H_k W_k, 2]
        a = len(wh)
        c = centres[:, None, :].expand(-1, a, 2)  # [H_k W_k, A_k, 2]
        s = wh[None, :, :].expand(len(centres), a, 2)
        boxes.append(torch.cat([c - s / 2, c + s / 2], dim=-1).reshape(-1, 4))
    scale = torch.tensor([img_w, img_h, img_w, img_h], dtype=torch.float32)
    return torch.cat(boxes) * scale


def match_default_boxes(gt_boxes, boxes, iou_threshold: float = 0.5) -> torch.Tensor:
    """SSD's matching: each object's best default box, then every box with IoU >= 0.5.

    Two rules, in this order (Liu et al., 2016, section 2.2):

    1. every default box whose best IoU with the objects is ``>= iou_threshold`` is
       matched to that object; the others are :data:`BACKGROUND`;
    2. each object then claims the default box it overlaps most, whatever the IoU, so
       that no object is left without a positive (if two objects want the same box, the
       later one keeps it).

    There is no :data:`IGNORE` zone. Equals ``torchvision.models.detection._utils.
    SSDMatcher(iou_threshold)(box_iou(gt_boxes, boxes))``, except that no objects (an
    empty image) give all :data:`BACKGROUND` (torchvision's SSD handles that case before
    calling its matcher) and an object that overlaps no box at all claims nothing.

    Args:
        gt_boxes (Tensor[M, 4]): the objects, ``(x1, y1, x2, y2)`` pixels; ``M`` may be 0.
        boxes (Tensor[D, 4]): the default boxes, ``(x1, y1, x2, y2)`` pixels.
        iou_threshold (float): in [0, 1]; 0.5 in the paper.

    Returns:
        Tensor[D]: int64 index of each default box's object in ``[0, M)``, or :data:`BACKGROUND`.
    """
    g = check_boxes("gt_boxes", gt_boxes)
    d = check_boxes("boxes", boxes)
    thr = check_fraction("iou_threshold", iou_threshold)
    matches = torch.full((len(d),), BACKGROUND, dtype=torch.int64, device=d.device)
    if len(g) == 0 or len(d) == 0:
        return matches
    iou = box_iou(g, d)  # [M, D]
    best_iou, best_gt = iou.max(dim=0)  # [D]
    above = best_iou >= thr
    matches[above] = best_gt[above]
    best_box_iou, best_box = iou.max(dim=1)  # [M]
    for m in range(len(g)):  # in order, so that a later object wins a shared box
        if best_box_iou[m] > 0:
            matches[best_box[m]] = m
    return matches


def hard_negative_mining(loss, positive, neg_pos_ratio: float = 3.0) -> torch.Tensor:
    """SSD's hard negatives: per image, the ``neg_pos_ratio * P`` negatives of highest loss.

    A dense detector has a few positives and thousands of negatives. Instead of all of
    them (the loss would learn "background everywhere") or a random sample (mostly easy
    ones, that teach nothing), SSD keeps, per image, the negatives whose classification
    loss is highest - the background boxes the model currently mistakes for objects -
    at most 3 for each of that image's ``P`` positives (Liu et al., 2016). An image with no
    positive (an empty image) gets no negative, as in the paper and torchvision.

    Equals the selection of ``torchvision.models.detection.ssd.SSD.compute_loss``
    (``neg_to_pos_ratio = 3`` from ``positive_fraction = 0.25``), with one difference:
    when an image has fewer than ``3 P`` negatives, torchvision's selection runs on into
    the positives (and its loss counts them twice); here they never are negatives. Ties in
    the loss are broken by position, lowest index first.

    Args:
        loss (Tensor[N, D]): the classification loss of each default box of each image
            (cross-entropy against background for the negatives).
        positive (Tensor[N, D] bool): the positives (matched to an object).
        neg_pos_ratio (float): negatives per positive, >= 0.

    Returns:
        Tensor[N, D] bool: the negatives chosen (never a positive).
    """
    x = as_float_tensor("loss", loss)
    if x.dim() != 2:
        raise ValueError(
            f"loss must have shape [N, D] (images x default boxes), got {tuple(x.shape)}"
        )
    if not isinstance(positive, torch.Tensor) or positive.dtype != torch.bool:
        raise ValueError(
            f"positive must be a bool tensor [N, D], got "
            f"{positive.dtype if isinstance(positive, torch.Tensor) else type(positive).__name__}"
        )
    if positive.shape != x.shape:
        raise ValueError(
            f"positive must have the shape of loss {tuple(x.shape)}, got {tuple(positive.shape)}"
        )
    if (
        isinstance(neg_pos_ratio, bool)
        or not isinstance(neg_pos_ratio, Real)
        or not neg_pos_ratio >= 0
    ):
        raise ValueError(f"neg_pos_ratio must be a number >= 0, got {neg_pos_ratio!r}")
    num_neg = neg_pos_ratio * positive.sum(dim=1, keepdim=True)  # [N, 1]
    candidates = x.detach().masked_fill(positive, -math.inf)  # positives sort last
    order = candidates.argsort(dim=1, descending=True, stable=True)  # [N, D]
    rank = order.argsort(dim=1)  # rank of each box in its image
    return (rank < num_neg) & ~positive
