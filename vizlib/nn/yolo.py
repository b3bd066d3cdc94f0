"""A YOLO-style grid detector (Redmon et al., 2016): detection as one regression.

The image is cut into an ``S x S`` grid. Every cell predicts ``B`` boxes, each with a
confidence, and one set of ``C`` class probabilities, so the whole image gives one
tensor of fixed size ``S x S x (5 B + C)`` (7 x 7 x 30 for PASCAL VOC: S = 7, B = 2,
C = 20). The variable number of objects is handled by *which* cell answers: the cell
that holds an object's centre is responsible for it (:func:`encode_yolo_targets`, built
on :func:`vizlib.boxes.encode_yolo`), and of its ``B`` boxes the one that already
overlaps the object best (highest IoU) learns it (:func:`responsible_boxes`).

Layout of one cell's ``5 B + C`` numbers (the paper's)::

    [x, y, sqrt(w), sqrt(h), conf] * B  +  [p_1, ..., p_C]

``x, y``: the box centre inside the cell, in [0, 1]; ``w, h``: the box size relative to
the image (regressed as square roots, so that the same error costs a small box more than
a big one); ``conf``: how sure the box is that it holds an object, trained towards the
IoU of the box with the object; ``p_c``: the class given that there is an object. The
paper leaves the outputs linear; here ``x, y, sqrt(w), sqrt(h), conf`` go through a
sigmoid and the class scores through a softmax, so that every number lives in [0, 1]
like its target (YOLO v2 does the same for the centre and the confidence).

The loss (:func:`yolo_loss`, the paper's equation 3) is a sum of squared errors with
two weights: ``lambda_coord = 5`` makes box errors count more, and ``lambda_noobj = 0.5``
makes the many empty boxes count less, since almost every box of almost every image
is empty and would otherwise drown the few that hold objects.

At test time (:func:`yolo_postprocess`) a box's score for class ``c`` is
``conf * p_c`` (class-specific confidence); boxes under a score threshold are dropped
and the rest go through class-aware NMS (:func:`vizlib.nms.batched_nms`).

An anchor-based variant (YOLO v2, SSD, Faster R-CNN's RPN) gives every cell ``A``
anchor boxes of fixed shapes, each with its own ``5 + C`` numbers: an
``S x S x A (5 + C)`` output. Its targets are in :func:`encode_anchor_targets`.

Class indices: targets use the book's labels (0 background, objects ``1 .. C``); the
``C`` class probabilities of a cell are for labels ``1 .. C`` (index ``c`` is label
``c + 1``): YOLO has no background class, the confidence plays its part.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .._checks import (
    as_image_batch,
    check_choice,
    check_fraction,
    check_image_size,
    check_number,
    check_positive_int,
)
from ..boxes import box_iou, clip_boxes_to_image, decode_yolo, encode_yolo, paired_box_iou
from ..nms import batched_nms
from .backbone import VGGBackbone
from .blocks import ConvBlock

__all__ = [
    "YOLOv1",
    "YOLOTargets",
    "AnchorTargets",
    "yolo_output_size",
    "anchor_output_size",
    "split_output",
    "encode_yolo_targets",
    "encode_anchor_targets",
    "predicted_boxes",
    "responsible_boxes",
    "yolo_loss",
    "decode_output",
    "yolo_postprocess",
    "LOSS_TERMS",
    "CONF_TARGETS",
]

#: The names of the loss terms :func:`yolo_loss` returns, in the paper's order.
LOSS_TERMS = ("xy", "wh", "obj", "noobj", "class")
#: What a responsible box's confidence is trained towards.
CONF_TARGETS = ("iou", "one")


def yolo_output_size(grid: int, boxes_per_cell: int, num_classes: int) -> tuple[int, int, int]:
    """``(S, S, 5 B + C)``: the shape of a YOLO v1 prediction for one image.

    >>> yolo_output_size(7, 2, 20)  # PASCAL VOC in the paper
    (7, 7, 30)
    """
    s = check_positive_int("grid", grid)
    b = check_positive_int("boxes_per_cell", boxes_per_cell)
    c = check_positive_int("num_classes", num_classes)
    return (s, s, 5 * b + c)


def anchor_output_size(grid: int, num_anchors: int, num_classes: int) -> tuple[int, int, int]:
    """``(S, S, A (5 + C))``: the anchor variant's prediction for one image.

    Every anchor has its own class scores, so a cell can hold objects of different
    classes (YOLO v1 cannot: one class distribution per cell).
    """
    s = check_positive_int("grid", grid)
    a = check_positive_int("num_anchors", num_anchors)
    c = check_positive_int("num_classes", num_classes)
    return (s, s, a * (5 + c))


# -- the output tensor ---------------------------------------------------------------


def _check_output(output, boxes_per_cell: int, num_classes: int | None = None) -> torch.Tensor:
    """A YOLO output ``[N, S, S, 5B + C]`` (the layout of this module's docstring)."""
    if not isinstance(output, torch.Tensor) or not output.is_floating_point() or output.dim() != 4:
        raise ValueError(
            f"output must be a float tensor [N, S, S, 5B + C], got "
            f"{tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__}"
        )
    b = check_positive_int("boxes_per_cell", boxes_per_cell)
    n, s1, s2, depth = output.shape
    if s1 != s2:
        raise ValueError(
            f"output must be [N, S, S, 5B + C] with a square grid, got {tuple(output.shape)}"
        )
    if depth <= 5 * b:
        raise ValueError(f"output's last dimension ({depth}) must be 5B + C > 5B = {5 * b}")
    if num_classes is not None and depth != 5 * b + num_classes:
        raise ValueError(
            f"output's last dimension must be 5B + C = {5 * b + num_classes}, got {depth}"
        )
    return output


def split_output(output, boxes_per_cell: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut a YOLO output into its boxes, confidences and class probabilities.

    Args:
        output (Tensor[N, S, S, 5B + C]): the activated output (see the module docstring).
        boxes_per_cell (int): ``B``.

    Returns:
        tuple: ``boxes`` (Tensor[N, S, S, B, 4]: ``x, y, sqrt(w), sqrt(h)``), ``conf``
        (Tensor[N, S, S, B]) and ``class_probs`` (Tensor[N, S, S, C]). Views, not copies.
    """
    out = _check_output(output, boxes_per_cell)
    b = boxes_per_cell
    per_box = out[..., : 5 * b].unflatten(-1, (b, 5))  # [N, S, S, B, 5]
    return per_box[..., :4], per_box[..., 4], out[..., 5 * b :]


# -- targets ---------------------------------------------------------------------------


class YOLOTargets(NamedTuple):
    """The training targets of a batch, laid out on the grid.

    Attributes:
        obj (Tensor[N, S, S] bool): the cell is responsible for an object.
        coords (Tensor[N, S, S, 4]): that object's ``(x, y, w, h)`` from
            :func:`vizlib.boxes.encode_yolo` (0 where ``obj`` is False).
        labels (Tensor[N, S, S] int64): its label ``1 .. C`` (0 where ``obj`` is False).
        boxes (Tensor[N, S, S, 4]): its box, ``(x1, y1, x2, y2)`` pixels (0 elsewhere).
        dropped (int): objects that lost their cell to a bigger object whose centre fell
            in the same cell: YOLO v1 can answer for one object per cell only.
    """

    obj: torch.Tensor
    coords: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    dropped: int


def _target_fields(targets, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = targets[i]
    if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
        raise ValueError(f"targets[{i}] must be a dict with 'boxes' [M, 4] and 'labels' [M]")
    boxes = torch.as_tensor(t["boxes"]).as_subclass(torch.Tensor).reshape(-1, 4).float()
    labels = torch.as_tensor(t["labels"]).as_subclass(torch.Tensor).reshape(-1)
    if labels.is_floating_point() or len(labels) != len(boxes):
        raise ValueError(f"targets[{i}]: labels must be an integer tensor with one label per box")
    return boxes, labels.long()


def encode_yolo_targets(
    targets, image_size, grid: int, num_classes: int | None = None
) -> YOLOTargets:
    """Put each object in the grid cell that holds its centre.

    When several centres fall in one cell, the biggest object keeps the cell (it is
    written last) and the others are counted in ``dropped``.

    Args:
        targets (list[dict]): per image, ``boxes`` (Tensor[M, 4], xyxy pixels, centres
            inside the image) and ``labels`` (Tensor[M] int64, ``1 .. C``).
        image_size (tuple[int, int]): ``(height, width)`` of every image.
        grid (int): ``S``.
        num_classes (int, optional): ``C``; labels outside ``1 .. C`` raise.

    Returns:
        YOLOTargets: tensors of shape ``[N, S, S, ...]`` on the device of the first boxes.
    """
    if not isinstance(targets, (list, tuple)):
        raise ValueError(f"targets must be a list of per-image dicts, got {type(targets).__name__}")
    height, width = check_image_size("image_size", image_size)
    s = check_positive_int("grid", grid)
    n = len(targets)
    device = torch.as_tensor(targets[0]["boxes"]).device if n else torch.device("cpu")
    obj = torch.zeros(n, s, s, dtype=torch.bool, device=device)
    coords = torch.zeros(n, s, s, 4, device=device)
    labels = torch.zeros(n, s, s, dtype=torch.int64, device=device)
    boxes = torch.zeros(n, s, s, 4, device=device)
    dropped = 0
    for i in range(n):
        b, lab = _target_fields(targets, i)
        if num_classes is not None and len(lab) and bool(((lab < 1) | (lab > num_classes)).any()):
            raise ValueError(
                f"targets[{i}]: labels must be in 1..{num_classes}, got {lab.tolist()}"
            )
        if len(b) == 0:
            continue
        cells, c = encode_yolo(b, (height, width), s)  # [M, 2] (row, col), [M, 4]
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # [M]
        order = torch.argsort(area, stable=True)  # smallest first: the biggest writes last
        for k in order.tolist():
            row, col = int(cells[k, 0]), int(cells[k, 1])
            dropped += int(obj[i, row, col])
            obj[i, row, col] = True
            coords[i, row, col] = c[k].to(coords.dtype)
            labels[i, row, col] = lab[k]
            boxes[i, row, col] = b[k]
    return YOLOTargets(obj, coords, labels, boxes, dropped)


# -- boxes from the output --------------------------------------------------------------


def _cell_grid(s: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    idx = torch.arange(s, device=device, dtype=dtype)
    rows, cols = torch.meshgrid(idx, idx, indexing="ij")  # [S, S] each
    return rows, cols


def predicted_boxes(box_part: torch.Tensor, image_size) -> torch.Tensor:
    """Pixel boxes from the box part of a YOLO output, for every cell and box at once.

    The output holds ``x, y, sqrt(w), sqrt(h)``; squaring the last two gives the YOLO
    coding that :func:`vizlib.boxes.decode_yolo` inverts (centre ``((col + x) / S * W,
    (row + y) / S * H)``, size ``(w * W, h * H)``), each box with its own cell.
    Differentiable with respect to ``box_part``.

    Args:
        box_part (Tensor[N, S, S, B, 4]): ``x, y, sqrt(w), sqrt(h)`` (from :func:`split_output`).
        image_size (tuple[int, int]): ``(height, width)``.

    Returns:
        Tensor[N, S, S, B, 4]: ``(x1, y1, x2, y2)`` pixels.
    """
    size = check_image_size("image_size", image_size)
    if (
        not isinstance(box_part, torch.Tensor)
        or box_part.dim() != 5
        or box_part.shape[-1] != 4
        or box_part.shape[1] != box_part.shape[2]
    ):
        got = (
            tuple(box_part.shape) if isinstance(box_part, torch.Tensor) else type(box_part).__name__
        )
        raise ValueError(
            f"box_part must be a tensor [N, S, S, B, 4] (x, y, sqrt w, sqrt h), got {got}"
        )
    n, s, _, b, _ = box_part.shape
    rows, cols = _cell_grid(s, box_part.device, torch.int64)
    cells = torch.stack([rows, cols], dim=-1)[None, :, :, None, :].expand(
        n, s, s, b, 2
    )  # [N, S, S, B, 2]
    coords = torch.cat(
        [box_part[..., :2], box_part[..., 2:] ** 2], dim=-1
    )  # [N, S, S, B, 4]: x, y, w, h
    boxes = decode_yolo(cells.reshape(-1, 2), coords.reshape(-1, 4), size, s)  # [N*S*S*B, 4]
    return boxes.reshape(n, s, s, b, 4)


def responsible_boxes(
    output, targets: YOLOTargets, image_size, boxes_per_cell: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of a cell's ``B`` boxes learns its object: the one with the highest IoU.

    The paper: "At training time we only want one bounding box predictor to be
    responsible for each object. We assign one predictor to be responsible for
    predicting an object based on which prediction has the highest current IoU with the
    ground truth." So the ``B`` boxes of a cell specialise (in size, in shape) as they
    train. Ties (e.g. at the start, when every IoU is 0) go to the first box.

    Args:
        output (Tensor[N, S, S, 5B + C]): activated output.
        targets (YOLOTargets): from :func:`encode_yolo_targets`.
        image_size (tuple[int, int]): ``(height, width)``.
        boxes_per_cell (int): ``B``.

    Returns:
        tuple: ``responsible`` (Tensor[N, S, S, B] bool, at most one True per cell, only
        in object cells) and ``iou`` (Tensor[N, S, S, B], each box's IoU with its cell's
        object, 0 in empty cells; no gradient).
    """
    box_part, _, _ = split_output(output, boxes_per_cell)
    with torch.no_grad():
        pred = predicted_boxes(box_part.detach(), image_size)  # [N, S, S, B, 4]
        iou = paired_box_iou(
            pred, targets.boxes[..., None, :]
        )  # [N, S, S, B]: each box with its cell's object
        iou = iou * targets.obj[..., None]
        best = iou.argmax(dim=-1)  # [N, S, S]; first of equals
        responsible = nn.functional.one_hot(best, boxes_per_cell).bool() & targets.obj[..., None]
    return responsible, iou


# -- the loss --------------------------------------------------------------------------


def yolo_loss(
    output,
    targets: YOLOTargets,
    image_size,
    boxes_per_cell: int,
    lambda_coord: float = 5.0,
    lambda_noobj: float = 0.5,
    conf_target: str = "iou",
) -> dict[str, torch.Tensor]:
    """The YOLO v1 loss (Redmon et al., 2016, equation 3), one term at a time.

    With ``1obj_ij`` = box ``j`` of cell ``i`` is responsible for an object,
    ``1noobj_ij`` = it is not, and ``1obj_i`` = cell ``i`` holds an object:

    * ``xy``:    ``lambda_coord * sum 1obj_ij [(x - x^)^2 + (y - y^)^2]``
    * ``wh``:    ``lambda_coord * sum 1obj_ij [(sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]``
    * ``obj``:   ``sum 1obj_ij (conf - conf^)^2``, the target ``conf^`` being the box's IoU
      with the object (``conf_target="iou"``, the paper) or 1 (``"one"``)
    * ``noobj``: ``lambda_noobj * sum 1noobj_ij conf^2``
    * ``class``: ``sum 1obj_i sum_c (p_c - p^_c)^2``, one-hot ``p^``

    Each term is summed over the grid and averaged over the images of the batch.

    Args:
        output (Tensor[N, S, S, 5B + C]): activated output (:meth:`YOLOv1.raw`).
        targets (YOLOTargets): from :func:`encode_yolo_targets` with the same ``S``.
        image_size (tuple[int, int]): ``(height, width)``.
        boxes_per_cell (int): ``B``.
        lambda_coord (float): weight of the box terms, >= 0 (paper: 5).
        lambda_noobj (float): weight of the empty boxes' confidence, >= 0 (paper: 0.5).
        conf_target (str): ``"iou"`` or ``"one"``.

    Returns:
        dict[str, Tensor]: the scalar terms ``LOSS_TERMS``, already weighted; their sum
        is the loss.
    """
    box_part, conf, class_probs = split_output(output, boxes_per_cell)
    n, s = output.shape[:2]
    if not isinstance(targets, YOLOTargets):
        raise ValueError("targets must be YOLOTargets (from encode_yolo_targets)")
    if targets.obj.shape != (n, s, s):
        raise ValueError(
            f"targets are for a grid {tuple(targets.obj.shape)}, the output is "
            f"[N, S, S] = {(n, s, s)}"
        )
    lambda_coord = check_number("lambda_coord", lambda_coord, low=0)
    lambda_noobj = check_number("lambda_noobj", lambda_noobj, low=0)
    check_choice("conf_target", conf_target, CONF_TARGETS)
    num_classes = class_probs.shape[-1]
    labels = targets.labels
    if bool(((labels[targets.obj] < 1) | (labels[targets.obj] > num_classes)).any()):
        raise ValueError(f"target labels must be in 1..C = 1..{num_classes} in object cells")

    responsible, iou = responsible_boxes(output, targets, image_size, boxes_per_cell)
    resp = responsible.to(output.dtype)  # [N, S, S, B]
    coords = targets.coords.to(output.dtype)[..., None, :]  # [N, S, S, 1, 4]
    sqrt_wh = coords[..., 2:].clamp(min=0).sqrt()  # [N, S, S, 1, 2]
    xy_err = ((box_part[..., :2] - coords[..., :2]) ** 2).sum(-1)  # [N, S, S, B]
    wh_err = ((box_part[..., 2:] - sqrt_wh) ** 2).sum(-1)  # [N, S, S, B]
    target_conf = iou if conf_target == "iou" else torch.ones_like(iou)
    obj_err = (conf - target_conf) ** 2  # [N, S, S, B]
    noobj_err = conf**2 * (1 - resp)  # [N, S, S, B]
    one_hot = nn.functional.one_hot((labels - 1).clamp(min=0), num_classes).to(output.dtype)
    class_err = ((class_probs - one_hot) ** 2).sum(-1) * targets.obj.to(output.dtype)  # [N, S, S]
    per_image = max(n, 1)
    return {
        "xy": lambda_coord * (xy_err * resp).sum() / per_image,
        "wh": lambda_coord * (wh_err * resp).sum() / per_image,
        "obj": (obj_err * resp).sum() / per_image,
        "noobj": lambda_noobj * noobj_err.sum() / per_image,
        "class": class_err.sum() / per_image,
    }


# -- decoding ----------------------------------------------------------------------------


def decode_output(output, image_size, boxes_per_cell: int) -> dict[str, torch.Tensor]:
    """Every box of every cell, before any threshold or NMS (the "raw predictions").

    Args:
        output (Tensor[N, S, S, 5B + C]): activated output.
        image_size (tuple[int, int]): ``(height, width)``.
        boxes_per_cell (int): ``B``.

    Returns:
        dict: ``"boxes"`` (Tensor[N, S*S*B, 4], xyxy pixels, clipped to the image),
        ``"conf"`` (Tensor[N, S*S*B]), ``"class_probs"`` (Tensor[N, S*S*B, C], the
        cell's, repeated for its B boxes), ``"cells"`` (Tensor[S*S*B, 2] int64
        (row, col) of each box) and ``"slot"`` (Tensor[S*S*B] int64: which of the B).
        Box ``k`` is cell ``k // B``, slot ``k % B``, cells in row-major order.
    """
    size = check_image_size("image_size", image_size)
    box_part, conf, class_probs = split_output(output, boxes_per_cell)
    n, s, _, b, _ = box_part.shape
    boxes = predicted_boxes(box_part.detach().float(), size).reshape(-1, 4)  # [N*S*S*B, 4]
    boxes = clip_boxes_to_image(boxes, size).reshape(n, s * s * b, 4)
    rows, cols = _cell_grid(s, output.device, torch.int64)
    cells = (
        torch.stack([rows, cols], dim=-1).reshape(s * s, 1, 2).expand(s * s, b, 2).reshape(-1, 2)
    )
    slot = torch.arange(b, device=output.device).repeat(s * s)
    probs = class_probs.reshape(n, s * s, 1, -1).expand(n, s * s, b, class_probs.shape[-1])
    return {
        "boxes": boxes,
        "conf": conf.reshape(n, s * s * b),
        "class_probs": probs.reshape(n, s * s * b, -1),
        "cells": cells,
        "slot": slot,
    }


def yolo_postprocess(
    output,
    image_size,
    boxes_per_cell: int,
    score_threshold: float = 0.05,
    nms_threshold: float = 0.5,
    max_detections: int = 100,
) -> list[dict]:
    """Detections from a YOLO output: class-specific scores, a threshold, NMS.

    A box's score is ``conf * max_c p_c`` and its label the best class (``c + 1``).

    Args:
        output (Tensor[N, S, S, 5B + C]): activated output.
        image_size (tuple[int, int]): ``(height, width)``.
        boxes_per_cell (int): ``B``.
        score_threshold (float): boxes scoring below it are dropped, in [0, 1]
            (low for mAP, which wants the whole ranking; ~0.3 to show pictures).
        nms_threshold (float): IoU above which a lower-scored box of the same class is
            suppressed, in [0, 1].
        max_detections (int): keep at most this many per image (the best).

    Returns:
        list[dict]: per image, torchvision style: ``boxes`` (Tensor[K, 4] xyxy),
        ``scores`` (Tensor[K]), ``labels`` (Tensor[K] int64), best first.
    """
    score_threshold = check_fraction("score_threshold", score_threshold)
    nms_threshold = check_fraction("nms_threshold", nms_threshold)
    max_detections = check_positive_int("max_detections", max_detections)
    raw = decode_output(output, image_size, boxes_per_cell)
    best_prob, best_class = raw["class_probs"].max(dim=-1)  # [N, S*S*B]
    scores = (raw["conf"] * best_prob).detach().float()
    results = []
    for i in range(len(scores)):
        keep = torch.where(scores[i] >= score_threshold)[0]
        boxes, sc, labels = raw["boxes"][i, keep], scores[i, keep], best_class[i, keep] + 1
        kept = batched_nms(boxes, sc, labels, nms_threshold)[:max_detections]
        results.append({"boxes": boxes[kept], "scores": sc[kept], "labels": labels[kept]})
    return results


# -- the model ---------------------------------------------------------------------------


class YOLOv1(nn.Module):
    """A YOLO v1 detector: backbone, a convolutional head, one ``S x S x (5B + C)`` tensor.

    The paper ends with two fully connected layers, so its grid is fixed by its input
    size (448 -> 7 x 7). Here the head is convolutional (as in YOLO v2): a 3x3
    :class:`~vizlib.nn.blocks.ConvBlock` and a 1x1 convolution with ``5B + C`` outputs,
    so the grid is the backbone's feature map, ``S = image size / stride``, and cell
    ``(i, j)`` is computed from the features at ``(i, j)``.

    Called like torchvision's detectors: in train mode ``model(images, targets)``
    returns the dict of loss terms (:func:`yolo_loss`), in eval mode ``model(images)``
    returns one dict of ``boxes``, ``scores``, ``labels`` per image
    (:func:`yolo_postprocess`). :meth:`raw` gives the output tensor itself.

    Args:
        num_classes (int): ``C``, object classes (no background).
        boxes_per_cell (int): ``B``.
        backbone (nn.Module, optional): returns a list of maps (the last is used) and has
            ``out_channels``; default ``VGGBackbone((16, 32, 64, 128), convs_per_stage=1)``
            (output stride 16: a 64-pixel image gives a 4 x 4 grid).
        head_channels (int): channels of the head's 3x3 convolutions.
        lambda_coord, lambda_noobj, conf_target: see :func:`yolo_loss`.
        score_threshold, nms_threshold, max_detections: see :func:`yolo_postprocess`.

    Images must be square, with a side divisible by the backbone's stride.
    """

    def __init__(
        self,
        num_classes: int,
        boxes_per_cell: int = 2,
        backbone: nn.Module | None = None,
        head_channels: int = 128,
        lambda_coord: float = 5.0,
        lambda_noobj: float = 0.5,
        conf_target: str = "iou",
        score_threshold: float = 0.05,
        nms_threshold: float = 0.5,
        max_detections: int = 100,
    ):
        super().__init__()
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.boxes_per_cell = check_positive_int("boxes_per_cell", boxes_per_cell)
        if backbone is None:
            backbone = VGGBackbone((16, 32, 64, 128), convs_per_stage=1)
        if not hasattr(backbone, "out_channels"):
            raise ValueError("backbone must have an out_channels attribute")
        head_channels = check_positive_int("head_channels", head_channels)
        check_choice("conf_target", conf_target, CONF_TARGETS)
        self.backbone = backbone
        self.head = ConvBlock(backbone.out_channels, head_channels, num_convs=2)
        depth = 5 * self.boxes_per_cell + self.num_classes
        self.predictor = nn.Conv2d(head_channels, depth, kernel_size=1)
        # Almost every box is empty: start every confidence near 0.02 (sigmoid(-4)) so the
        # first steps are not spent unlearning confidences of 0.5 on empty boxes (the
        # "prior" initialisation of RetinaNet, Lin et al., 2017).
        with torch.no_grad():
            self.predictor.bias.zero_()
            self.predictor.bias[4 : 5 * self.boxes_per_cell : 5] = -4.0
        self.lambda_coord, self.lambda_noobj, self.conf_target = (
            lambda_coord,
            lambda_noobj,
            conf_target,
        )
        self.score_threshold = check_fraction("score_threshold", score_threshold)
        self.nms_threshold = check_fraction("nms_threshold", nms_threshold)
        self.max_detections = check_positive_int("max_detections", max_detections)

    def raw(self, images) -> torch.Tensor:
        """The activated output tensor ``[N, S, S, 5B + C]`` (see the module docstring)."""
        x = _as_batch(images)
        features = self.backbone(x)
        last = features[-1] if isinstance(features, (list, tuple)) else features
        out = self.predictor(self.head(last)).permute(0, 2, 3, 1)  # [N, S, S, 5B + C]
        b5 = 5 * self.boxes_per_cell
        return torch.cat([out[..., :b5].sigmoid(), out[..., b5:].softmax(dim=-1)], dim=-1)

    def forward(self, images, targets=None):
        x = _as_batch(images)
        output = self.raw(x)
        size = tuple(x.shape[-2:])
        if self.training:
            if targets is None:
                raise ValueError(
                    "in train mode YOLOv1 needs targets (a list of dicts with boxes, labels)"
                )
            encoded = encode_yolo_targets(targets, size, output.shape[1], self.num_classes)
            return yolo_loss(
                output,
                encoded,
                size,
                self.boxes_per_cell,
                self.lambda_coord,
                self.lambda_noobj,
                self.conf_target,
            )
        return yolo_postprocess(
            output,
            size,
            self.boxes_per_cell,
            self.score_threshold,
            self.nms_threshold,
            self.max_detections,
        )


def _as_batch(images) -> torch.Tensor:
    """Images as one batch ``[N, C, S, S]``: square, as YOLO's grid needs."""
    x = as_image_batch(images)
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"images must be square (an S x S grid), got {tuple(x.shape[-2:])}")
    return x


# -- the anchor variant ---------------------------------------------------------------


class AnchorTargets(NamedTuple):
    """Targets of the anchor variant (``S x S x A``): YOLO v2's assignment.

    Attributes:
        obj (Tensor[N, S, S, A] bool): this anchor of this cell is responsible.
        coords (Tensor[N, S, S, A, 4]): ``(x, y, log(w / anchor_w), log(h / anchor_h))``:
            the centre inside the cell and the size relative to the anchor.
        labels (Tensor[N, S, S, A] int64): label ``1 .. C`` (0 elsewhere).
        dropped (int): objects that lost their (cell, anchor) to a bigger object.
    """

    obj: torch.Tensor
    coords: torch.Tensor
    labels: torch.Tensor
    dropped: int


def encode_anchor_targets(targets, image_size, grid: int, anchors) -> AnchorTargets:
    """Assign each object to the cell of its centre and, there, to the best-shaped anchor.

    The anchor chosen is the one whose box, centred on the object, has the highest IoU
    with it: only the shapes compete (YOLO v2, Redmon & Farhadi, 2017). Two objects in
    one cell can now both be learnt, as long as they pick different anchors.

    Args:
        targets (list[dict]): per image, ``boxes`` (Tensor[M, 4] xyxy pixels) and
            ``labels`` (Tensor[M] int64).
        image_size (tuple[int, int]): ``(height, width)``.
        grid (int): ``S``.
        anchors (Tensor[A, 2]): anchor ``(width, height)`` in pixels, > 0.

    Returns:
        AnchorTargets.
    """
    height, width = check_image_size("image_size", image_size)
    s = check_positive_int("grid", grid)
    a = torch.as_tensor(anchors, dtype=torch.float32)
    if a.dim() != 2 or a.shape[1] != 2 or len(a) == 0:
        raise ValueError(f"anchors must have shape [A, 2] (width, height), got {tuple(a.shape)}")
    if not bool(torch.isfinite(a).all()) or bool((a <= 0).any()):
        raise ValueError("anchors must be finite and > 0")
    if not isinstance(targets, (list, tuple)):
        raise ValueError(f"targets must be a list of per-image dicts, got {type(targets).__name__}")
    n, num_a = len(targets), len(a)
    obj = torch.zeros(n, s, s, num_a, dtype=torch.bool)
    coords = torch.zeros(n, s, s, num_a, 4)
    labels = torch.zeros(n, s, s, num_a, dtype=torch.int64)
    anchor_boxes = torch.cat([-a / 2, a / 2], dim=1)  # [A, 4] centred on (0, 0)
    dropped = 0
    for i in range(n):
        b, lab = _target_fields(targets, i)
        if len(b) == 0:
            continue
        b = b.cpu()
        cells, c = encode_yolo(b, (height, width), s)  # [M, 2], [M, 4]
        wh = b[:, 2:] - b[:, :2]  # [M, 2]
        centred = torch.cat([-wh / 2, wh / 2], dim=1)  # [M, 4] centred on (0, 0)
        best = box_iou(centred, anchor_boxes).argmax(dim=1)  # [M]
        area = wh[:, 0] * wh[:, 1]
        for k in torch.argsort(area, stable=True).tolist():
            row, col, j = int(cells[k, 0]), int(cells[k, 1]), int(best[k])
            dropped += int(obj[i, row, col, j])
            obj[i, row, col, j] = True
            size = wh[k].clamp(min=1e-6) / a[j]  # [2]
            coords[i, row, col, j] = torch.cat([c[k, :2], size.log()])
            labels[i, row, col, j] = lab[k]
    return AnchorTargets(obj, coords, labels, dropped)
