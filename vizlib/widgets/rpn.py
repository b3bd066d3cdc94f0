"""RPN explorer: which anchors Faster R-CNN's region proposal network trains on, and what
its scored boxes become once they are proposals.

Left panel, training targets (Ren et al. 2015, section 3.1.2): the anchors of one image
(:func:`vizlib.anchors.anchors_for_image`) labelled by :func:`vizlib.anchors.match_anchors`
with the RPN's two IoU thresholds: positive if IoU >= ``fg_iou`` (0.7), negative if below
``bg_iou`` (0.3), ignored in between; the low-quality rule makes each object's best
anchors positive too, even below 0.7. On the book's 64 x 64 scenes almost every positive
comes from that rule. Labels are mapped to the RPN's ``1.0`` / ``0.0`` / ``-1.0``, as
torchvision's ``RegionProposalNetwork.assign_targets_to_anchors``.

Right panel, inference: scored boxes (the RPN's deltas already decoded onto their
anchors) are clipped to the image, empty boxes dropped, greedy NMS
(:func:`vizlib.nms.nms`) at ``nms_thresh`` applied, and the ``top_k`` best kept, as
torchvision's ``RegionProposalNetwork.filter_proposals`` does for one feature level.

A trained model's boxes and scores can be given (``RPNExplorer(image, boxes,
proposals=(boxes, scores))``); without them the widget *simulates* an RPN's output (see
:func:`simulated_rpn_outputs`) and says so in its title. This module only draws; the
maths is vizlib's core (anchors, boxes, nms).
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import torch

from vizlib._checks import as_float_tensor, check_boxes, check_labels, check_positive_int
from vizlib.anchors import BACKGROUND, IGNORE, anchors_for_image, match_anchors
from vizlib.boxes import box_iou, clip_boxes_to_image, decode_deltas, encode_deltas
from vizlib.nms import nms
from vizlib.viz._figure import fast_figure, set_image_axes, subplot_layout
from vizlib.viz.boxes import as_uint8_image, box_trace, color_for, image_trace, label_trace
from vizlib.widgets._base import Control, Widget

__all__ = [
    "RPNExplorer",
    "RPNScene",
    "check_rpn_scene",
    "rpn_scene",
    "simulated_rpn_outputs",
    "rpn_anchor_labels",
    "rpn_label_numbers",
    "filter_rpn_proposals",
    "rpn_proposal_numbers",
    "rpn_figure",
    "POSITIVE",
    "NEGATIVE",
    "IGNORED",
    "MIN_SIZE",
    "SCENE_SEED",
    "SCENE_INDEX",
]

#: The RPN's anchor labels (torchvision's ``assign_targets_to_anchors``).
POSITIVE, NEGATIVE, IGNORED = 1.0, 0.0, -1.0
#: torchvision's RPN drops proposals narrower or lower than this after clipping.
MIN_SIZE = 1e-3
#: The default scene: ``vizlib.data.DetectionScenes(seed=SCENE_SEED)[SCENE_INDEX]``,
#: four objects from 13 to 28 px.
SCENE_SEED, SCENE_INDEX = 0, 4

_POS_NAMES = ("positive", "negative", "ignored")
_IGN, _NEG, _GT, _PROP = "#E69F00", "#999999", "#000000", "#D55E00"


# --------------------------------------------------------------------------- the scene


class RPNScene:
    """An image, its objects and (optionally) an RPN's boxes and scores before NMS.

    Made by :func:`check_rpn_scene`. Compared and hashed by identity, so the widget's
    caches hold each scene apart.

    Attributes:
        image (uint8 [H, W, 3]), boxes (``Tensor[M, 4]`` float32 xyxy), names
        (``list[str]``, one per object, for the legend), proposals (``Tensor[P, 4]``
        float32 xyxy, or ``None``: simulate them), scores (``Tensor[P]`` float32 or
        ``None``).
    """

    __slots__ = ("image", "boxes", "names", "proposals", "scores", "_trace")

    def __init__(self, image, boxes, names, proposals, scores):
        self.image, self.boxes, self.names = image, boxes, names
        self.proposals, self.scores = proposals, scores
        self._trace: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the image."""
        return int(self.image.shape[0]), int(self.image.shape[1])

    @property
    def simulated(self) -> bool:
        """Whether the proposals are simulated (none were given)."""
        return self.proposals is None

    def image_trace_json(self) -> str:
        if self._trace is None:
            self._trace = json.dumps(image_trace(self.image))  # encoded to PNG once
        return self._trace


def check_rpn_scene(image, boxes, labels=None, proposals=None, class_names=None) -> RPNScene:
    """Validate an image, its objects and optional RPN outputs; copy them into an :class:`RPNScene`.

    Args:
        image: ``[3, H, W]`` float tensor in [0, 1] (as torchvision's models and
            ``vizlib.data`` give it) or ``uint8 [H, W, 3]``.
        boxes (Tensor[M, 4]): the objects, ``(x1, y1, x2, y2)`` pixels.
        labels (Tensor[M], optional): class indices, named by ``class_names``.
        proposals (tuple, optional): ``(boxes Tensor[P, 4], scores Tensor[P])``: an RPN's
            decoded boxes ``(x1, y1, x2, y2)`` *before* clipping and NMS, with their
            objectness (logits or probabilities: only their order matters).
        class_names (Sequence[str], optional): names of the label indices; default
            ``vizlib.data.DETECTION_CLASSES`` when ``labels`` is given.

    Returns:
        RPNScene: copies (changing the inputs later changes nothing).
    """
    img = as_uint8_image(image).copy()
    gt = check_boxes("boxes", boxes).detach().cpu().float().clone()
    if labels is None:
        names = [f"object {m}" for m in range(len(gt))]
    else:
        lab = check_labels("labels", labels, len(gt)).detach().cpu()
        if class_names is None:
            from vizlib.data import DETECTION_CLASSES

            class_names = DETECTION_CLASSES
        class_names = list(class_names)
        bad = [int(v) for v in lab if not 0 <= int(v) < len(class_names)]
        if bad:
            raise ValueError(
                f"labels {bad} have no name: class_names has {len(class_names)} entries"
            )
        names = [class_names[int(v)] for v in lab]
    if proposals is None:
        return RPNScene(img, gt, names, None, None)
    if not isinstance(proposals, (tuple, list)) or len(proposals) != 2:
        raise ValueError(
            "proposals must be a pair (boxes Tensor[P, 4], scores Tensor[P]), the RPN's "
            f"decoded boxes and their objectness before NMS; got {type(proposals).__name__}"
        )
    pb = check_boxes("proposals[0]", proposals[0]).detach().cpu().float().clone()
    ps = as_float_tensor("proposals[1]", proposals[1]).detach().cpu().float().clone()
    if ps.shape != (len(pb),):
        raise ValueError(
            f"proposals[1] (scores) must have shape [P] = [{len(pb)}], one per box, "
            f"got {tuple(ps.shape)}"
        )
    return RPNScene(img, gt, names, pb, ps)


@lru_cache(maxsize=1)
def _default_scene() -> RPNScene:
    image, target = rpn_scene()
    return check_rpn_scene(image, target["boxes"], target["labels"])


def rpn_scene(seed: int = SCENE_SEED, index: int = SCENE_INDEX) -> tuple[torch.Tensor, dict]:
    """One scene of :class:`vizlib.data.DetectionScenes` as plain tensors.

    Returns:
        tuple: ``image`` (``Tensor[3, 64, 64]`` float in [0, 1]) and ``target`` (``boxes``
        ``Tensor[M, 4]`` float32 xyxy, ``labels`` ``Tensor[M]`` int64).
    """
    from vizlib.data import DetectionScenes

    seed = check_positive_int("seed", seed, allow_zero=True)
    index = check_positive_int("index", index, allow_zero=True)
    image, target = DetectionScenes(index + 1, seed=seed)[index]
    return image.as_subclass(torch.Tensor).clone(), {
        "boxes": target["boxes"].as_subclass(torch.Tensor).float().clone(),
        "labels": target["labels"].clone(),
    }


# --------------------------------------------------------------------------- numbers


def _anchors(size: tuple[int, int], stride: int, sizes, ratios, offset: float) -> torch.Tensor:
    h, w = size
    if h < stride or w < stride:
        raise ValueError(f"the image ({h} x {w}) must be at least one stride ({stride}) wide")
    return anchors_for_image(size, [(h // stride, w // stride)], [sizes], ratios, offset=offset)


def rpn_anchor_labels(matches: torch.Tensor) -> torch.Tensor:
    """The RPN's label per anchor from :func:`vizlib.anchors.match_anchors`' result.

    Args:
        matches (Tensor[N]): int64 ground-truth index, ``BACKGROUND`` or ``IGNORE``.

    Returns:
        Tensor[N]: float32 ``1.0`` positive, ``0.0`` negative, ``-1.0`` ignored, as
        torchvision's ``RegionProposalNetwork.assign_targets_to_anchors``.
    """
    if not isinstance(matches, torch.Tensor) or matches.dim() != 1 or matches.is_floating_point():
        raise ValueError("matches must be an int64 tensor [N] from vizlib.anchors.match_anchors")
    labels = torch.full(matches.shape, POSITIVE, dtype=torch.float32)
    labels[matches == BACKGROUND] = NEGATIVE
    labels[matches == IGNORE] = IGNORED
    return labels


def rpn_label_numbers(
    sizes,
    ratios,
    fg_iou: float = 0.7,
    bg_iou: float = 0.3,
    low_quality: bool = True,
    stride: int = 8,
    scene: RPNScene | None = None,
    offset: float = 0.0,
) -> dict:
    """The RPN's training labels of every anchor of the scene, for one state of the widget.

    Args:
        sizes (tuple[float]): anchor sizes (square root of the area) in pixels.
        ratios (tuple[float]): aspect ratios ``h / w``.
        fg_iou, bg_iou (float): the RPN's thresholds (0.7 and 0.3 in the paper).
        low_quality (bool): each object's best anchors (ties included) are positive too.
        stride (int): pixels between anchor locations (one feature map of size
            ``(H // stride, W // stride)``).
        scene (RPNScene, optional): default :func:`rpn_scene`.
        offset (float): where the anchors sit in their cell (0: torchvision's corner).

    Returns:
        dict: ``anchors`` (``Tensor[N, 4]``), ``iou`` (``Tensor[M, N]``), ``matches``
        (``Tensor[N]`` from ``match_anchors``), ``labels`` (``Tensor[N]`` 1 / 0 / -1),
        ``grid`` ``(h, w)``, ``A`` (anchors per location), ``counts`` (dict:
        ``total``, ``positive``, ``negative``, ``ignored``, ``rescued``: positives whose
        IoU is below ``fg_iou``, made so by the low-quality rule), ``objects`` (one dict
        per object: ``positive`` and ``ignored``, ``Tensor`` indices of the anchors whose
        best object it is; ``best_iou``), ``background_locations`` (``Tensor[L, 2]`` x, y
        of the locations whose every anchor is negative).
    """
    scene = _default_scene() if scene is None else scene
    anchors = _anchors(scene.size, stride, sizes, ratios, offset)  # [N, 4]
    iou = box_iou(scene.boxes, anchors)  # [M, N]
    matches = match_anchors(iou, fg_iou, bg_iou, low_quality)  # [N]
    labels = rpn_anchor_labels(matches)
    n, m = len(anchors), len(scene.boxes)
    best_iou, best_gt = (
        iou.max(dim=0) if m else (torch.zeros(n), torch.full((n,), -1, dtype=torch.int64))
    )  # [N] each
    positive = labels == POSITIVE
    ignored = labels == IGNORED
    objects = [
        {
            "positive": torch.nonzero(positive & (best_gt == k)).flatten(),
            "ignored": torch.nonzero(ignored & (best_gt == k)).flatten(),
            "best_iou": float(iou[k].max()) if n else 0.0,
        }
        for k in range(m)
    ]
    grid = (scene.size[0] // stride, scene.size[1] // stride)
    a = n // (grid[0] * grid[1])
    all_negative = (labels.view(-1, a) == NEGATIVE).all(dim=1)  # [h * w], location-major
    centres = ((anchors[:, :2] + anchors[:, 2:]) / 2).view(-1, a, 2)[:, 0]  # [h * w, 2]
    return {
        "anchors": anchors,
        "iou": iou,
        "matches": matches,
        "labels": labels,
        "grid": grid,
        "A": a,
        "counts": {
            "total": n,
            "positive": int(positive.sum()),
            "negative": int((labels == NEGATIVE).sum()),
            "ignored": int(ignored.sum()),
            "rescued": int((positive & (best_iou < fg_iou)).sum()),
        },
        "objects": objects,
        "background_locations": centres[all_negative],
    }


def simulated_rpn_outputs(anchors, gt_boxes, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A *simulated* RPN's output on one image: deltas and objectness per anchor.

    Not a trained network: a plausible stand-in so that the proposal panel has something
    to filter. Each anchor that overlaps an object (IoU >= 0.2) moves half-way towards its
    best object (half of :func:`vizlib.boxes.encode_deltas`), every anchor gets a small
    seeded jitter, and the score is the decoded box's IoU with its best object plus
    seeded noise. Deterministic for a given ``seed``.

    Args:
        anchors (Tensor[N, 4]): ``(x1, y1, x2, y2)``, positive sizes.
        gt_boxes (Tensor[M, 4]): the objects, ``(x1, y1, x2, y2)``.
        seed (int): seed of the jitter and the noise.

    Returns:
        tuple: ``deltas`` (``Tensor[N, 4]`` ``(dx, dy, dw, dh)``, decode them with
        :func:`vizlib.boxes.decode_deltas`) and ``scores`` (``Tensor[N]`` in [0, 1]).
    """
    a = check_boxes("anchors", anchors, allow_empty_area=False).float()
    gt = check_boxes("gt_boxes", gt_boxes, allow_empty_area=False).float()
    seed = check_positive_int("seed", seed, allow_zero=True)
    g = torch.Generator().manual_seed(seed)
    deltas = 0.08 * torch.randn(len(a), 4, generator=g)  # [N, 4]
    noise = 0.08 * torch.randn(len(a), generator=g)  # [N]
    if len(gt) == 0 or len(a) == 0:
        return deltas, (0.05 + noise).clamp(0, 1)
    best_iou, best_gt = box_iou(gt, a).max(dim=0)  # [N]
    near = best_iou >= 0.2
    deltas[near] += 0.5 * encode_deltas(gt[best_gt[near]], a[near])
    decoded = decode_deltas(deltas, a)  # [N, 4]
    score = box_iou(gt, decoded).max(dim=0).values  # [N]
    return deltas, (score + noise).clamp(0, 1)


def filter_rpn_proposals(
    boxes,
    scores,
    image_size,
    nms_thresh: float,
    top_k: int,
    pre_nms_top_n: int | None = None,
    min_size: float = MIN_SIZE,
) -> dict:
    """Scored boxes to proposals: best first, clip, drop empty boxes, NMS, keep ``top_k``.

    The steps of torchvision's ``RegionProposalNetwork.filter_proposals`` for one image
    and one feature level, with score threshold 0.

    Args:
        boxes (Tensor[P, 4]): decoded boxes ``(x1, y1, x2, y2)``.
        scores (Tensor[P]): their objectness (any monotone score: logits or probabilities).
        image_size (tuple[int, int]): ``(height, width)``.
        nms_thresh (float): NMS drops boxes with IoU > this with a kept box (RPN: 0.7).
        top_k (int): how many proposals are kept after NMS (torchvision's
            ``post_nms_top_n``).
        pre_nms_top_n (int, optional): only the best this many boxes go on (torchvision:
            1000 per level at test time); ``None``: all.
        min_size (float): boxes narrower or lower than this after clipping are dropped.

    Returns:
        dict: ``clipped`` (``Tensor[P, 4]``), ``valid`` (``Tensor[V]`` indices of the
        boxes left after ``pre_nms_top_n`` and dropping small ones), ``kept`` (``Tensor[K]`` indices after NMS,
        by decreasing score), ``proposals`` (``Tensor[k, 4]``, the clipped boxes of
        ``kept[:top_k]``), ``proposal_scores`` (``Tensor[k]``), ``top`` (their indices).
    """
    b = check_boxes("boxes", boxes)
    s = as_float_tensor("scores", scores)
    if s.shape != (len(b),):
        raise ValueError(f"scores must have shape [P] = [{len(b)}], got {tuple(s.shape)}")
    top_k = check_positive_int("top_k", top_k)
    if pre_nms_top_n is None:
        best = torch.arange(len(b))
    else:
        n = min(check_positive_int("pre_nms_top_n", pre_nms_top_n), len(b))
        best = s.topk(n).indices  # as torchvision: topk, whose order NMS redoes anyway
    clipped = clip_boxes_to_image(b, image_size)  # [P, 4]
    wh = clipped[best, 2:] - clipped[best, :2]  # [n, 2]
    valid = best[(wh >= min_size).all(dim=1)]  # [V]
    kept = valid[nms(clipped[valid], s[valid], nms_thresh)]  # [K]
    top = kept[:top_k]
    return {
        "clipped": clipped,
        "valid": valid,
        "kept": kept,
        "top": top,
        "proposals": clipped[top],
        "proposal_scores": s[top],
    }


@lru_cache(maxsize=32)
def _simulated(scene: RPNScene, sizes, ratios, stride: int, offset: float, seed: int):
    anchors = _anchors(scene.size, stride, sizes, ratios, offset)
    deltas, scores = simulated_rpn_outputs(anchors, scene.boxes, seed)
    return decode_deltas(deltas, anchors), scores


@lru_cache(maxsize=64)
def _filtered(scene: RPNScene, sizes, ratios, stride, offset, seed, nms_thresh, pre_nms_top_n):
    if scene.simulated:
        boxes, scores = _simulated(scene, sizes, ratios, stride, offset, seed)
    else:
        boxes, scores = scene.proposals, scene.scores
    # top_k only slices `kept`: one NMS per threshold (and anchor set, when simulated)
    out = filter_rpn_proposals(
        boxes, scores, scene.size, nms_thresh, max(len(boxes), 1), pre_nms_top_n
    )
    return boxes, scores, out


def rpn_proposal_numbers(
    sizes,
    ratios,
    nms_thresh: float = 0.7,
    top_k: int = 10,
    stride: int = 8,
    scene: RPNScene | None = None,
    offset: float = 0.0,
    seed: int = 0,
    pre_nms_top_n: int | None = 1000,
) -> dict:
    """The proposals of the scene for one state of the widget (see :func:`filter_rpn_proposals`).

    The scene's own RPN boxes and scores when it has them; otherwise
    :func:`simulated_rpn_outputs` on the anchors of ``sizes``, ``ratios``, ``stride``
    decoded with :func:`vizlib.boxes.decode_deltas`. ``pre_nms_top_n``: as in
    :func:`filter_rpn_proposals` (default torchvision's test-time 1000).

    Returns:
        dict: ``boxes`` and ``scores`` (before filtering, ``Tensor[P, 4]``, ``Tensor[P]``),
        ``simulated`` (bool), the keys of :func:`filter_rpn_proposals` for ``top_k``, and
        ``found`` (objects with a proposal at IoU >= 0.5), ``best_iou`` (``Tensor[M]``,
        each object's best proposal IoU).
    """
    scene = _default_scene() if scene is None else scene
    top_k = check_positive_int("top_k", top_k)
    boxes, scores, out = _filtered(
        scene,
        tuple(sizes),
        tuple(ratios),
        stride,
        float(offset),
        seed,
        float(nms_thresh),
        pre_nms_top_n,
    )
    top = out["kept"][:top_k]
    proposals = out["clipped"][top]
    iou = box_iou(scene.boxes, proposals)  # [M, k]
    best = iou.max(dim=1).values if iou.numel() else torch.zeros(len(scene.boxes))
    return {
        "boxes": boxes,
        "scores": scores,
        "simulated": scene.simulated,
        "clipped": out["clipped"],
        "valid": out["valid"],
        "kept": out["kept"],
        "top": top,
        "proposals": proposals,
        "proposal_scores": scores[top],
        "best_iou": best,
        "found": int((best >= 0.5).sum()),
    }


# --------------------------------------------------------------------------- figure


def _fmt(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def rpn_figure(
    sizes,
    ratios,
    fg_iou: float = 0.7,
    bg_iou: float = 0.3,
    low_quality: bool = True,
    nms_thresh: float = 0.7,
    top_k: int = 10,
    stride: int = 8,
    scene: RPNScene | None = None,
    offset: float = 0.0,
    seed: int = 0,
    pre_nms_top_n: int | None = 1000,
    height: int = 580,
):
    """The widget's figure for one state.

    Left: the objects (black dotted, named), each object's positive anchors in its own
    colour, the ignored anchors (orange dashed) and the locations whose anchors are all
    negative (faint grey dots); the counts are in the title. Right: the ``top_k``
    proposals left after clipping and NMS, with their rank.
    """
    scene = _default_scene() if scene is None else scene
    lab = rpn_label_numbers(sizes, ratios, fg_iou, bg_iou, low_quality, stride, scene, offset)
    prop = rpn_proposal_numbers(
        sizes, ratios, nms_thresh, top_k, stride, scene, offset, seed, pre_nms_top_n
    )
    h, w = scene.size
    anchors, iou = lab["anchors"], lab["iou"]
    layout, refs = subplot_layout([(1, 1), (1, 2)], rows=1, cols=2, horizontal_spacing=0.06)
    left, right = refs[(1, 1)], refs[(1, 2)]
    image = json.loads(scene.image_trace_json())
    tags = [f"#{k} {name}" for k, name in enumerate(scene.names)]

    def ious(idx):
        return [f"IoU {float(iou[:, i].max()):.2f}" for i in idx.tolist()]

    data = [
        {**image, **left},
        {
            **box_trace(scene.boxes, color=_GT, dash="dot", width=1.5, name="objects"),
            "legendgroup": "gt",
            **left,
        },
        {**label_trace(scene.boxes, tags, color=_GT, size=10, position="above"), **left},
        {
            **box_trace(
                anchors[lab["labels"] == IGNORED],
                color=_IGN,
                width=1,
                dash="dash",
                opacity=0.6,
                name=f"ignored ({lab['counts']['ignored']})",
            ),
            **left,
        },
        {
            "type": "scatter",
            "x": np.round(lab["background_locations"][:, 0].numpy(), 2).tolist(),
            "y": np.round(lab["background_locations"][:, 1].numpy(), 2).tolist(),
            "mode": "markers",
            "marker": {"color": _NEG, "size": 4, "opacity": 0.5},
            "name": "locations with only negatives",
            "hoverinfo": "name",
            **left,
        },
    ]
    for k, obj in enumerate(lab["objects"]):
        data.append(
            {
                **box_trace(
                    anchors[obj["positive"]],
                    color=color_for(k),
                    width=2.5,
                    name=f"#{k}: {len(obj['positive'])} positive",
                    hovertext=ious(obj["positive"]),
                ),
                **left,
            }
        )
    ranks = [f"{r + 1}" for r in range(len(prop["top"]))]
    data += [
        {**image, **right},
        {
            **box_trace(
                scene.boxes, color=_GT, dash="dot", width=1.5, name="objects", showlegend=False
            ),
            "legendgroup": "gt",
            **right,
        },
        {
            **box_trace(
                prop["proposals"],
                color=_PROP,
                width=1.5,
                name=f"top {len(prop['top'])} proposals",
                hovertext=[
                    f"rank {r}, score {float(s):.3f}"
                    for r, s in zip(ranks, prop["proposal_scores"], strict=True)
                ],
            ),
            **right,
        },
        {**label_trace(prop["proposals"], ranks, color=_PROP, size=9), **right},
    ]
    set_image_axes(layout, left, w, h, margin=2, show_ticks=False)
    set_image_axes(layout, right, w, h, margin=2, show_ticks=False)
    c = lab["counts"]
    gh, gw = lab["grid"]
    rule = (
        f"low-quality rule on: {c['rescued']} of them by the rule"
        if low_quality
        else ("low-quality rule off")
    )
    per_object = "; ".join(
        f"#{k} {name} {len(o['positive'])} / {len(o['ignored'])} ({o['best_iou']:.2f})"
        for k, (name, o) in enumerate(zip(scene.names, lab["objects"], strict=True))
    )
    source = "a SIMULATED RPN (no model given)" if prop["simulated"] else "the model's RPN"
    title = (
        f"<b>anchors</b> {gh}×{gw} locations × {lab['A']} (sizes {_fmt(sizes)}; ratios "
        f"{_fmt(ratios)}) = {c['total']}: positive if IoU ≥ {fg_iou:g}, negative if < "
        f"{bg_iou:g}<br><b>{c['positive']} positive</b> ({rule}), "
        f"<b style='color:{_IGN}'>{c['ignored']} ignored</b>, {c['negative']} negative"
        f"<br>per object, positive / ignored (best anchor IoU): {per_object}<br>"
        f"<b>proposals</b> from {source}: {len(prop['boxes'])} boxes → {len(prop['valid'])} "
        f"(best {pre_nms_top_n or 'all'}, non-empty once clipped) → NMS at {nms_thresh:g} "
        f"keeps {len(prop['kept'])} → the top {len(prop['top'])} find {prop['found']}/"
        f"{len(scene.boxes)} objects at IoU ≥ 0.5"
    )
    layout.update(
        title={"text": title, "font": {"size": 12}, "x": 0.01, "y": 0.98, "yanchor": "top"},
        height=height,
        margin={"l": 10, "r": 10, "t": 150, "b": 10},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.02, "yanchor": "top", "x": 0, "font": {"size": 11}},
    )
    return fast_figure(data, layout)


# --------------------------------------------------------------------------- widget

_SIZES = [(8,), (16,), (8, 16), (16, 32), (8, 16, 32)]
_RATIOS = [(1.0,), (0.5, 1.0, 2.0)]


class RPNExplorer(Widget):
    """The RPN's anchor labels (left) and its proposals after NMS (right) on one image.

    Controls: anchor sizes and aspect ratios, the stride of the anchor grid, the two IoU
    thresholds (RPN: 0.7 / 0.3), the low-quality rule, the NMS threshold (RPN: 0.7) and
    how many proposals are kept.

    Args:
        image: ``[3, H, W]`` float in [0, 1] or ``uint8 [H, W, 3]``; default the scene
            :func:`rpn_scene` (a 64 x 64 ``DetectionScenes`` image with four objects).
        boxes (Tensor[M, 4]): its objects, ``(x1, y1, x2, y2)`` (required with ``image``).
        labels (Tensor[M], optional): class indices, named by ``class_names``.
        proposals (tuple, optional): a trained RPN's ``(boxes Tensor[P, 4], scores
            Tensor[P])`` on this image: decoded boxes and objectness *before* clipping
            and NMS. Without them the proposals are **simulated** by
            :func:`simulated_rpn_outputs` from the current anchors (the title says so).
        class_names (Sequence[str], optional): see :func:`check_rpn_scene`.
        offset (float): where anchors sit in their cell; 0 as torchvision's
            ``AnchorGenerator``.
        seed (int): seed of the simulated proposals.
        pre_nms_top_n (int, optional): only the best this many boxes go to NMS
            (torchvision's test-time 1000); ``None``: all.
        **defaults: the controls' starting values.
    """

    controls = [
        Control(
            "sizes",
            "anchor sizes",
            values=_SIZES,
            default=(16, 32),
            kind="dropdown",
            labels=[_fmt(s) for s in _SIZES],
            static_values=[(16,), (16, 32)],
        ),
        Control(
            "ratios",
            "aspect ratios h/w",
            values=_RATIOS,
            default=(0.5, 1.0, 2.0),
            kind="toggle",
            labels=[_fmt(r) for r in _RATIOS],
        ),
        Control("stride", "stride", values=[4, 8], default=8, kind="toggle"),
        Control(
            "fg_iou",
            "positive if IoU ≥",
            values=[0.5, 0.6, 0.7, 0.8],
            default=0.7,
            static_values=[0.5, 0.7],
        ),
        Control("bg_iou", "negative if IoU <", values=[0.1, 0.2, 0.3, 0.4, 0.5], default=0.3),
        Control(
            "low_quality",
            "each object's best anchors are positive",
            values=[False, True],
            default=True,
            kind="toggle",
            labels=["no", "yes"],
        ),
        Control(
            "nms_thresh",
            "NMS IoU threshold",
            values=[0.3, 0.5, 0.7, 0.9, 1.0],
            default=0.7,
            labels=["0.3", "0.5", "0.7", "0.9", "1 (no NMS)"],
            static_values=[0.5, 0.7, 1.0],
        ),
        Control(
            "top_k",
            "proposals kept",
            values=[5, 10, 20, 50, 100],
            default=10,
            static_values=[10, 50],
        ),
    ]
    static_controls = ("sizes", "fg_iou", "low_quality", "nms_thresh", "top_k")

    def __init__(
        self,
        image=None,
        boxes=None,
        labels=None,
        proposals=None,
        class_names=None,
        offset: float = 0.0,
        seed: int = 0,
        pre_nms_top_n: int | None = 1000,
        **defaults,
    ):
        if image is None and boxes is None and labels is None and proposals is None:
            self.scene = _default_scene()
        elif image is None or boxes is None:
            raise ValueError("give both image and boxes (or neither, for the default scene)")
        else:
            self.scene = check_rpn_scene(image, boxes, labels, proposals, class_names)
        self.offset = float(offset)
        self.seed = check_positive_int("seed", seed, allow_zero=True)
        self.pre_nms_top_n = (
            None if pre_nms_top_n is None else check_positive_int("pre_nms_top_n", pre_nms_top_n)
        )
        super().__init__(**defaults)
        h, w = self.scene.size
        stride = max(self.control("stride").values)
        if h < stride or w < stride:
            raise ValueError(f"image must be at least {stride} x {stride} pixels, got {h} x {w}")
        # fail now, not at the first redraw, on an offset that grid_anchors refuses
        _anchors(self.scene.size, stride, (16,), (1.0,), self.offset)

    def figure(self, sizes, ratios, stride, fg_iou, bg_iou, low_quality, nms_thresh, top_k):
        return rpn_figure(
            sizes,
            ratios,
            fg_iou,
            min(bg_iou, fg_iou),
            low_quality,
            nms_thresh,
            top_k,
            stride,
            scene=self.scene,
            offset=self.offset,
            seed=self.seed,
            pre_nms_top_n=self.pre_nms_top_n,
        )
