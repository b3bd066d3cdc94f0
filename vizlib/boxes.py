"""Boxes: formats, area, clipping, IoU and the box codings detectors regress.

Every box in vizlib is a float tensor ``[N, 4]`` in absolute pixels, in ``(x1, y1, x2, y2)``
("xyxy") format, as in ``torchvision.ops``. This module is the only place that converts
between formats.

Format names follow ``torchvision.ops.box_convert``; other libraries disagree, so read
the names carefully when you move boxes between them:

* ``xyxy``   - top-left corner and bottom-right corner ``(x1, y1, x2, y2)``.
  Albumentations calls it ``pascal_voc``; TensorFlow's Object Detection API stores
  ``(ymin, xmin, ymax, xmax)`` instead (y first!).
* ``xywh``   - top-left corner and size ``(x1, y1, w, h)``. This is COCO's ``bbox``
  (Albumentations ``coco``, Detectron2 ``XYWH_ABS``).
* ``cxcywh`` - centre and size ``(cx, cy, w, h)``. YOLO label files use it normalised
  by the image size (Albumentations ``yolo``); DETR predicts it normalised too.

Box codings turn a box into the numbers a network regresses, and back:

* :func:`encode_normalised_cxcywh` / :func:`decode_normalised_cxcywh` - centre and size
  as fractions of the image: one box per image, regressed directly (classification +
  localisation, OverFeat and the ILSVRC localisation entries; DETR's box targets).
* :func:`encode_deltas` / :func:`decode_deltas` - Faster R-CNN's ``(dx, dy, dw, dh)``
  relative to an anchor or proposal (Girshick et al., R-CNN 2014; Ren et al. 2015).
* :func:`encode_ltrb` / :func:`decode_ltrb` - FCOS's distances from a point to the four
  sides (Tian et al., 2019).
* :func:`encode_yolo` / :func:`decode_yolo` - YOLO v1's grid cell plus offsets within
  the cell (Redmon et al., 2016).

Overlap comes in two shapes: :func:`box_iou` compares every box with every other
(``[N, M]``), :func:`paired_box_iou` compares boxes in pairs (a prediction with its own
ground truth, elementwise). :func:`count_windows` counts the windows a sliding-window
detector would classify: the candidate boxes that proposals and anchors replace.
"""

from __future__ import annotations

import math
from numbers import Real

import torch

from vizlib._checks import (
    as_float_rows,
    as_float_tensor,
    check_boxes,
    check_choice,
    check_image_size,
    check_int_pair,
    check_positive_int,
    check_positive_numbers,
    check_same_length,
)
from vizlib.conv_algebra import conv_output_size

__all__ = [
    "BOX_FORMATS",
    "DEFAULT_BBOX_XFORM_CLIP",
    "box_convert",
    "box_area",
    "clip_boxes_to_image",
    "box_iou",
    "paired_box_iou",
    "generalized_box_iou",
    "count_windows",
    "encode_normalised_cxcywh",
    "decode_normalised_cxcywh",
    "encode_deltas",
    "decode_deltas",
    "encode_ltrb",
    "decode_ltrb",
    "encode_yolo",
    "decode_yolo",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")

# Largest log-scale change decode_deltas allows: a box may grow at most 1000/16 = 62.5
# times its anchor. Without it an untrained network's exp(dw) overflows to inf.
# Same value as torchvision's BoxCoder (and Detectron's _DEFAULT_SCALE_CLAMP).
DEFAULT_BBOX_XFORM_CLIP = math.log(1000.0 / 16)


# --------------------------------------------------------------------------- formats


def _check_any_format(name: str, boxes, fmt: str) -> torch.Tensor:
    """Validate boxes in one of :data:`BOX_FORMATS`: ``[N, 4]``, finite, and not inside
    out (what "inside out" means depends on the format: this module's concept)."""
    if fmt == "xyxy":
        return check_boxes(name, boxes)
    t = as_float_rows(name, boxes, 4, fmt)
    negative = (t[:, 2] < 0) | (t[:, 3] < 0)
    if bool(negative.any()):
        i = int(negative.nonzero()[0, 0])
        raise ValueError(f"{name}[{i}] = {t[i].tolist()} has a negative width or height ({fmt})")
    return t


def _to_xyxy(boxes: torch.Tensor, fmt: str) -> torch.Tensor:
    a, b, c, d = boxes.unbind(-1)
    if fmt == "xyxy":
        return boxes.clone()
    if fmt == "xywh":  # top-left corner + size
        return torch.stack([a, b, a + c, b + d], dim=-1)
    # cxcywh: centre + size
    return torch.stack([a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d], dim=-1)


def _from_xyxy(boxes: torch.Tensor, fmt: str) -> torch.Tensor:
    x1, y1, x2, y2 = boxes.unbind(-1)
    if fmt == "xyxy":
        return boxes.clone()
    if fmt == "xywh":
        return torch.stack([x1, y1, x2 - x1, y2 - y1], dim=-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def box_convert(boxes, in_fmt: str, out_fmt: str) -> torch.Tensor:
    """Convert boxes from one format to another.

    The formats are torchvision's (other libraries use the same names for other things,
    see the module docstring):

    * ``'xyxy'``: ``(x1, y1, x2, y2)``, top-left and bottom-right corners;
    * ``'xywh'``: ``(x1, y1, w, h)``, top-left corner and size (COCO's ``bbox``);
    * ``'cxcywh'``: ``(cx, cy, w, h)``, centre and size.

    Args:
        boxes (Tensor[N, 4]): boxes in ``in_fmt``, float (integers are converted to float32).
        in_fmt (str): the format of ``boxes``.
        out_fmt (str): the format wanted.

    Returns:
        Tensor[N, 4]: a new tensor, the boxes in ``out_fmt``.
    """
    in_fmt = check_choice("in_fmt", in_fmt, BOX_FORMATS)
    out_fmt = check_choice("out_fmt", out_fmt, BOX_FORMATS)
    t = _check_any_format("boxes", boxes, in_fmt)
    # Go through xyxy: two small functions instead of six pairwise ones.
    return _from_xyxy(_to_xyxy(t, in_fmt), out_fmt)


def box_area(boxes) -> torch.Tensor:
    """Area of each box.

    Args:
        boxes (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` format, ``x1 <= x2``,
            ``y1 <= y2``.

    Returns:
        Tensor[N]: ``(x2 - x1) * (y2 - y1)``; zero for a degenerate box.
    """
    t = check_boxes("boxes", boxes)
    return (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])


def clip_boxes_to_image(boxes, size) -> torch.Tensor:
    """Clip boxes so that they lie inside an image of the given size.

    Args:
        boxes (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` format.
        size (tuple[int, int]): the image size ``(height, width)`` (height first, as
            torchvision's ``clip_boxes_to_image`` and ``image.shape[-2:]``).

    Returns:
        Tensor[N, 4]: new boxes with x in ``[0, width]`` and y in ``[0, height]``. A box
        wholly outside the image becomes a zero-area box on the image border.
    """
    t = check_boxes("boxes", boxes)
    height, width = check_image_size("size", size)
    x = t[:, 0::2].clamp(min=0, max=width)  # [N, 2]: x1, x2
    y = t[:, 1::2].clamp(min=0, max=height)  # [N, 2]: y1, y2
    return torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)


# --------------------------------------------------------------------------- overlap


def _inter_union(b1: torch.Tensor, b2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Intersection and union of boxes ``[..., 4]`` paired elementwise, broadcasting.

    ``box_iou`` calls it with ``[N, 1, 4]`` and ``[1, M, 4]`` (every pair), ``paired_box_iou``
    with boxes already in pairs: one formula for both.
    """
    area1 = (b1[..., 2] - b1[..., 0]) * (b1[..., 3] - b1[..., 1])  # [...]
    area2 = (b2[..., 2] - b2[..., 0]) * (b2[..., 3] - b2[..., 1])  # [...]
    top_left = torch.max(b1[..., :2], b2[..., :2])  # [..., 2], broadcast
    bottom_right = torch.min(b1[..., 2:], b2[..., 2:])  # [..., 2]
    wh = (bottom_right - top_left).clamp(min=0)  # [..., 2]; no overlap -> 0
    inter = wh[..., 0] * wh[..., 1]  # [...]
    union = area1 + area2 - inter  # [...]
    return inter, union


def _safe_divide(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` with 0 where ``den == 0`` (two zero-area boxes: IoU 0, not NaN)."""
    return torch.where(
        den > 0, num / den.clamp(min=torch.finfo(den.dtype).tiny), torch.zeros_like(num)
    )


def box_iou(boxes1, boxes2) -> torch.Tensor:
    """Intersection over union (Jaccard index) of every pair of boxes.

    ``IoU(A, B) = area(A & B) / area(A | B)``. Where both boxes have zero area the union
    is 0 and the IoU is defined as 0 (torchvision returns NaN there).

    Args:
        boxes1 (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` format.
        boxes2 (Tensor[M, 4]): boxes in ``(x1, y1, x2, y2)`` format.

    Returns:
        Tensor[N, M]: the IoU of ``boxes1[i]`` and ``boxes2[j]`` at ``[i, j]``, in [0, 1].
    """
    b1 = check_boxes("boxes1", boxes1)
    b2 = check_boxes("boxes2", boxes2)
    b1, b2 = _common_dtype(b1, b2)
    inter, union = _inter_union(b1[:, None, :], b2[None, :, :])  # [N, M] each
    return _safe_divide(inter, union)


def _check_box_array(name: str, boxes) -> torch.Tensor:
    """Validate boxes ``[..., 4]`` in ``(x1, y1, x2, y2)`` format, any leading shape (the
    broadcasting of :func:`paired_box_iou`; ``check_boxes`` takes ``[N, 4]`` only)."""
    t = as_float_tensor(name, boxes)
    if t.dim() == 1 and t.numel() == 0:
        t = t.reshape(0, 4)
    if t.dim() == 0 or t.shape[-1] != 4:
        raise ValueError(f"{name} must have shape [..., 4] (x1, y1, x2, y2), got {tuple(t.shape)}")
    check_boxes(name, t.reshape(-1, 4))  # finite, x1 <= x2, y1 <= y2 (index into the flat boxes)
    return t


def paired_box_iou(boxes1, boxes2) -> torch.Tensor:
    """IoU of boxes in pairs: ``boxes1[i]`` with ``boxes2[i]`` only (elementwise).

    :func:`box_iou` compares every box with every other (``[N, M]``); scoring each
    prediction against its own ground truth needs only the pairs, the diagonal of
    ``box_iou(boxes1, boxes2)``, without computing the rest. Leading dimensions broadcast
    as in any elementwise torch operation, so a YOLO grid's boxes ``[N, S, S, B, 4]``
    compare with their cell's object ``[N, S, S, 1, 4]`` in one call. Where both boxes
    have zero area the IoU is 0, not NaN.

    Args:
        boxes1 (Tensor[..., 4]): boxes in ``(x1, y1, x2, y2)`` format.
        boxes2 (Tensor[..., 4]): boxes in ``(x1, y1, x2, y2)`` format, with leading
            dimensions that broadcast with ``boxes1``'s (e.g. the same ``[N, 4]``).

    Returns:
        Tensor[...]: the IoU of each pair (the broadcast leading shape), in [0, 1].
    """
    b1 = _check_box_array("boxes1", boxes1)
    b2 = _check_box_array("boxes2", boxes2)
    try:
        torch.broadcast_shapes(b1.shape[:-1], b2.shape[:-1])
    except RuntimeError:
        raise ValueError(
            f"boxes1 and boxes2 must be pairs of boxes [..., 4] whose leading dimensions "
            f"broadcast (e.g. the same N), got {tuple(b1.shape)} and {tuple(b2.shape)}"
        ) from None
    b1, b2 = _common_dtype(b1, b2)
    inter, union = _inter_union(b1, b2)  # [...] each
    return _safe_divide(inter, union)


def generalized_box_iou(boxes1, boxes2) -> torch.Tensor:
    """Generalised IoU of every pair of boxes (Rezatofighi et al., CVPR 2019).

    ``GIoU = IoU - (area(C) - area(A | B)) / area(C)`` where ``C`` is the smallest box
    enclosing both. Unlike IoU it keeps decreasing as disjoint boxes move apart, so it
    gives a gradient where IoU is flat at 0. Where ``C`` has zero area (two identical
    degenerate boxes) the penalty is defined as 0, so GIoU = IoU = 0.

    Args:
        boxes1 (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` format.
        boxes2 (Tensor[M, 4]): boxes in ``(x1, y1, x2, y2)`` format.

    Returns:
        Tensor[N, M]: the GIoU of ``boxes1[i]`` and ``boxes2[j]`` at ``[i, j]``, in [-1, 1].
    """
    b1 = check_boxes("boxes1", boxes1)
    b2 = check_boxes("boxes2", boxes2)
    b1, b2 = _common_dtype(b1, b2)
    inter, union = _inter_union(b1[:, None, :], b2[None, :, :])  # [N, M] each
    iou = _safe_divide(inter, union)  # [N, M]
    enclose_tl = torch.min(b1[:, None, :2], b2[None, :, :2])  # [N, M, 2]
    enclose_br = torch.max(b1[:, None, 2:], b2[None, :, 2:])  # [N, M, 2]
    enclose_wh = enclose_br - enclose_tl  # [N, M, 2], never negative
    enclose = enclose_wh[..., 0] * enclose_wh[..., 1]  # [N, M]
    return iou - _safe_divide(enclose - union, enclose)


def _common_dtype(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype)


# --------------------------------------------------------------------------- sliding windows


def count_windows(image_size, window_sizes, stride: int) -> int:
    """How many crops a sliding-window detector classifies in one image.

    Every window shape is a candidate box at every position it fits: a window of height
    ``h`` fits at ``(H - h) // stride + 1`` vertical positions (none when ``h > H``),
    likewise across, which is the output size of a convolution with that kernel and
    stride (:func:`vizlib.conv_algebra.conv_output_size`); every window shape adds its
    own positions. OverFeat (Sermanet et al., 2014) made this affordable by sharing the
    convolutions between windows; R-CNN (Girshick et al., 2014) by classifying only
    ~2000 proposed regions.

    Args:
        image_size (tuple[int, int]): ``(height, width)`` in pixels.
        window_sizes (sequence of (int, int)): ``(height, width)`` of each window shape.
        stride (int): pixels between neighbouring positions.

    Returns:
        int: the number of crops.
    """
    height, width = check_int_pair("image_size", image_size)
    stride = check_positive_int("stride", stride)
    if isinstance(window_sizes, (str, bytes)) or not hasattr(window_sizes, "__iter__"):
        raise ValueError(
            f"window_sizes must be a sequence of (height, width) pairs, got {window_sizes!r}"
        )
    total = 0
    for size in window_sizes:
        h, w = check_int_pair("window_sizes", size)
        if h > height or w > width:
            continue  # the window fits nowhere
        total += conv_output_size(height, h, stride) * conv_output_size(width, w, stride)
    return total


# --------------------------------------------------------------------------- codings


def _centre_size(boxes: torch.Tensor) -> tuple[torch.Tensor, ...]:
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights, widths, heights


def encode_normalised_cxcywh(boxes, image_size) -> torch.Tensor:
    """Boxes as centre and size in fractions of the image: what a box head regresses when
    an image holds one object (classification + localisation; DETR's box targets).

    Dividing by the image size makes every number of order 1 whatever the image size,
    so a loss on them does not change scale with it.

    Args:
        boxes (Tensor[N, 4]): ``(x1, y1, x2, y2)`` in pixels.
        image_size (tuple[int, int]): ``(height, width)``.

    Returns:
        Tensor[N, 4]: ``(cx / W, cy / H, w / W, h / H)``; a box inside the image has every
        number in [0, 1].
    """
    height, width = check_image_size("image_size", image_size)
    b = check_boxes("boxes", boxes)
    scale = b.new_tensor([width, height, width, height])  # [4]
    return _from_xyxy(b, "cxcywh") / scale  # [N, 4]


def decode_normalised_cxcywh(codes, image_size) -> torch.Tensor:
    """Pixel boxes from :func:`encode_normalised_cxcywh`'s codes (its inverse).

    A regression head may output a negative width or height; it is clamped to 0, so
    every decoded box is valid (a zero-area box has IoU 0 with anything).

    Args:
        codes (Tensor[N, 4]): ``(cx / W, cy / H, w / W, h / H)``.
        image_size (tuple[int, int]): ``(height, width)``.

    Returns:
        Tensor[N, 4]: ``(x1, y1, x2, y2)`` in pixels.
    """
    height, width = check_image_size("image_size", image_size)
    c = as_float_tensor("codes", codes)
    if c.dim() != 2 or c.shape[1] != 4:
        raise ValueError(f"codes must have shape [N, 4] (cx, cy, w, h), got {tuple(c.shape)}")
    scale = c.new_tensor([width, height, width, height])  # [4]
    centre_size = c * scale  # [N, 4]
    centre_size = torch.cat([centre_size[:, :2], centre_size[:, 2:].clamp(min=0)], dim=1)
    return _to_xyxy(centre_size, "cxcywh")


def encode_deltas(boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """Faster R-CNN regression targets: ``boxes`` relative to ``anchors``.

    For a box with centre ``(x, y)`` and size ``(w, h)`` and an anchor (or proposal)
    ``(xa, ya, wa, ha)``::

        dx = wx * (x - xa) / wa        dw = ww * log(w / wa)
        dy = wy * (y - ya) / ha        dh = wh * log(h / ha)

    Dividing by the anchor's size makes the targets scale-invariant; the log makes a
    doubling and a halving equally large (Girshick et al., 2014). The weights scale the
    targets to roughly unit variance: torchvision's RPN uses ``(1, 1, 1, 1)``, its RoI
    heads ``(10, 10, 5, 5)``. Same as ``torchvision.models.detection._utils.BoxCoder``
    ``.encode_single(boxes, anchors)``.

    Args:
        boxes (Tensor[N, 4]): the boxes to encode (ground truth), ``(x1, y1, x2, y2)``,
            positive width and height (``log(0)`` is undefined).
        anchors (Tensor[N, 4]): the reference boxes, ``(x1, y1, x2, y2)``, positive width
            and height; ``anchors[i]`` goes with ``boxes[i]``.
        weights (tuple[float, float, float, float]): ``(wx, wy, ww, wh)``.

    Returns:
        Tensor[N, 4]: ``(dx, dy, dw, dh)`` per box.
    """
    b = check_boxes("boxes", boxes, allow_empty_area=False)
    a = check_boxes("anchors", anchors, allow_empty_area=False)
    check_same_length(boxes=b, anchors=a)
    wx, wy, ww, wh = check_positive_numbers("weights", weights, length=4)
    b, a = _common_dtype(b, a)
    x, y, w, h = _centre_size(b)
    xa, ya, wa, ha = _centre_size(a)
    dx = wx * (x - xa) / wa
    dy = wy * (y - ya) / ha
    dw = ww * torch.log(w / wa)
    dh = wh * torch.log(h / ha)
    return torch.stack([dx, dy, dw, dh], dim=1)


def decode_deltas(
    deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0), clamp: float = DEFAULT_BBOX_XFORM_CLIP
) -> torch.Tensor:
    """Apply Faster R-CNN deltas to anchors: the inverse of :func:`encode_deltas`.

    ``dw`` and ``dh`` (after dividing by their weights) are clamped at ``clamp``
    (default ``log(1000 / 16)``, as torchvision's ``BoxCoder``) so that ``exp`` cannot
    overflow. Same as ``BoxCoder(weights).decode_single(deltas, anchors)``.

    For per-class deltas ``[N, K * 4]`` (RoI heads), reshape to ``[N * K, 4]`` and repeat
    each anchor ``K`` times.

    Args:
        deltas (Tensor[N, 4]): ``(dx, dy, dw, dh)`` per anchor.
        anchors (Tensor[N, 4]): reference boxes, ``(x1, y1, x2, y2)``, positive size.
        weights (tuple[float, float, float, float]): ``(wx, wy, ww, wh)``, as used to encode.
        clamp (float): the largest ``dw / ww`` and ``dh / wh`` used.

    Returns:
        Tensor[N, 4]: the decoded boxes, ``(x1, y1, x2, y2)``.
    """
    d = as_float_rows("deltas", deltas, 4, "dx, dy, dw, dh")
    a = check_boxes("anchors", anchors, allow_empty_area=False)
    check_same_length(deltas=d, anchors=a)
    wx, wy, ww, wh = check_positive_numbers("weights", weights, length=4)
    if isinstance(clamp, bool) or not isinstance(clamp, Real) or math.isnan(clamp):
        raise ValueError(f"clamp must be a number, got {clamp!r}")
    d, a = _common_dtype(d, a)
    xa, ya, wa, ha = _centre_size(a)
    dx, dy = d[:, 0] / wx, d[:, 1] / wy
    dw = (d[:, 2] / ww).clamp(max=clamp)
    dh = (d[:, 3] / wh).clamp(max=clamp)
    x = dx * wa + xa
    y = dy * ha + ya
    w = torch.exp(dw) * wa
    h = torch.exp(dh) * ha
    return torch.stack([x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h], dim=1)


def encode_ltrb(points, boxes) -> torch.Tensor:
    """FCOS regression targets: distances from each point to its box's four sides.

    ``(l, t, r, b) = (x - x1, y - y1, x2 - x, y2 - y)`` (Tian et al., FCOS, 2019). A point
    inside its box has four non-negative distances; FCOS only trains the points where
    ``min(l, t, r, b) > 0``, so a negative distance marks a point outside the box.

    Args:
        points (Tensor[N, 2]): locations ``(x, y)`` in pixels.
        boxes (Tensor[N, 4]): ``(x1, y1, x2, y2)``; ``boxes[i]`` goes with ``points[i]``.

    Returns:
        Tensor[N, 4]: ``(l, t, r, b)``.
    """
    p = as_float_rows("points", points, 2, "x, y")
    b = check_boxes("boxes", boxes)
    check_same_length(points=p, boxes=b)
    p, b = _common_dtype(p, b)
    left_top = p - b[:, :2]  # [N, 2]
    right_bottom = b[:, 2:] - p  # [N, 2]
    return torch.cat([left_top, right_bottom], dim=1)


def decode_ltrb(points, ltrb) -> torch.Tensor:
    """The boxes that FCOS distances describe: the inverse of :func:`encode_ltrb`.

    Args:
        points (Tensor[N, 2]): locations ``(x, y)`` in pixels.
        ltrb (Tensor[N, 4]): distances ``(l, t, r, b)`` with ``l + r >= 0`` and
            ``t + b >= 0`` (a network predicts them as ``exp`` or ``relu``, so >= 0).

    Returns:
        Tensor[N, 4]: ``(x - l, y - t, x + r, y + b)`` in ``(x1, y1, x2, y2)`` format.
    """
    p = as_float_rows("points", points, 2, "x, y")
    d = as_float_rows("ltrb", ltrb, 4, "l, t, r, b")
    check_same_length(points=p, ltrb=d)
    inside_out = (d[:, 0] + d[:, 2] < 0) | (d[:, 1] + d[:, 3] < 0)
    if bool(inside_out.any()):
        i = int(inside_out.nonzero()[0, 0])
        raise ValueError(
            f"ltrb[{i}] = {d[i].tolist()} gives x2 < x1 or y2 < y1 (l + r or t + b < 0)"
        )
    p, d = _common_dtype(p, d)
    return torch.cat([p - d[:, :2], p + d[:, 2:]], dim=1)


def encode_yolo(boxes, image_size, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLO v1 targets: the grid cell that holds each box's centre, and the box within it.

    The image is cut into ``grid x grid`` cells (Redmon et al., 2016, S = 7). The cell
    containing a box's centre is responsible for it and predicts:

    * ``x_off, y_off``: the centre's position inside that cell, in [0, 1) (it reaches 1
      only for a centre exactly on the image's right or bottom edge);
    * ``w, h``: the box's size relative to the whole image, in [0, 1].

    The paper regresses ``sqrt(w), sqrt(h)`` so that an error on a small box costs more;
    this function returns plain ``w, h`` and leaves the square root to the loss.

    Args:
        boxes (Tensor[N, 4]): ``(x1, y1, x2, y2)`` in pixels, centres inside the image.
        image_size (tuple[int, int]): ``(height, width)``.
        grid (int): ``S``, the number of cells along each side.

    Returns:
        tuple[Tensor[N, 2], Tensor[N, 4]]: ``cells`` (int64 ``(i, j)`` = (row, column))
        and ``coords`` (``(x_off, y_off, w, h)``).
    """
    b = check_boxes("boxes", boxes)
    height, width = check_image_size("image_size", image_size)
    s = check_positive_int("grid", grid)
    cx, cy, w, h = _centre_size(b)
    outside = (cx < 0) | (cx > width) | (cy < 0) | (cy > height)
    if bool(outside.any()):
        i = int(outside.nonzero()[0, 0])
        raise ValueError(
            f"boxes[{i}] = {b[i].tolist()} has its centre outside the {height:g}x{width:g} "
            "image_size; clip the boxes first (clip_boxes_to_image)"
        )
    gx = cx / width * s  # centre in cell units, [0, S]
    gy = cy / height * s
    # A centre exactly on the far edge belongs to the last cell, not to a cell S.
    col = gx.floor().clamp(max=s - 1)
    row = gy.floor().clamp(max=s - 1)
    cells = torch.stack([row, col], dim=1).long()
    coords = torch.stack([gx - col, gy - row, w / width, h / height], dim=1)
    return cells, coords


def decode_yolo(cells, coords, image_size, grid: int) -> torch.Tensor:
    """Boxes from YOLO v1 cell coordinates: the inverse of :func:`encode_yolo`.

    Args:
        cells (Tensor[N, 2]): integer ``(i, j)`` = (row, column), each in ``[0, grid)``.
        coords (Tensor[N, 4]): ``(x_off, y_off, w, h)``: centre within the cell and size
            relative to the image, ``w, h >= 0``.
        image_size (tuple[int, int]): ``(height, width)``.
        grid (int): ``S``, the number of cells along each side.

    Returns:
        Tensor[N, 4]: boxes in ``(x1, y1, x2, y2)`` pixels.
    """
    s = check_positive_int("grid", grid)
    height, width = check_image_size("image_size", image_size)
    if (
        not isinstance(cells, torch.Tensor)
        or cells.is_floating_point()
        or cells.dtype == torch.bool
    ):
        raise ValueError(
            f"cells must be an integer tensor [N, 2] (row, column), got {_describe(cells)}"
        )
    if cells.dim() != 2 or cells.shape[1] != 2:
        raise ValueError(f"cells must have shape [N, 2] (row, column), got {tuple(cells.shape)}")
    if cells.numel() and bool(((cells < 0) | (cells >= s)).any()):
        raise ValueError(
            f"cells must be in [0, grid) = [0, {s}), got values {cells.min().item()}..{cells.max().item()}"
        )
    c = as_float_rows("coords", coords, 4, "x_off, y_off, w, h")
    check_same_length(cells=cells, coords=c)
    if bool((c[:, 2:] < 0).any()):
        raise ValueError("coords must have w >= 0 and h >= 0")
    row, col = cells[:, 0].to(c.dtype), cells[:, 1].to(c.dtype)
    cx = (col + c[:, 0]) / s * width
    cy = (row + c[:, 1]) / s * height
    w, h = c[:, 2] * width, c[:, 3] * height
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of dtype {value.dtype}"
    return type(value).__name__
