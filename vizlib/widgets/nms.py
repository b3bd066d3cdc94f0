"""NMS widget: greedy NMS step by step on a crowded scene, soft-NMS beside it.

Four people stand in a street; two of them overlap (IoU 0.56 between their true boxes).
A detector fired several scored boxes on each, plus a few false alarms. The sliders set
the IoU threshold, the score threshold applied before NMS, and how many greedy steps to
show. The left panel is greedy NMS (:func:`vizlib.nms.nms_trace`, identical to
:func:`vizlib.nms.nms` and ``torchvision.ops.nms``); the right one is linear soft-NMS
(:func:`vizlib.nms.soft_nms`) at the same IoU threshold. Which people each finds is
counted with :func:`vizlib.metrics.match_detections` at IoU 0.5. This module only draws.

Any other scene can be given instead (``NMSWidget(scene=(image, target, boxes, scores))``,
see :func:`check_nms_scene`), e.g. a trained detector's raw boxes on one image before its
own NMS: the detection chapters do that.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import torch

from vizlib.metrics import match_detections
from vizlib.nms import NMSStep, nms_trace, soft_nms
from vizlib.viz._figure import fast_figure, set_image_axes, subplot_layout
from vizlib.viz.boxes import PALETTE, box_trace, image_trace, label_trace
from vizlib.widgets._base import Control, Widget

__all__ = [
    "NMSWidget",
    "NMSScene",
    "check_nms_scene",
    "nms_scene",
    "nms_numbers",
    "nms_figure",
    "SOFT_SHOWN",
    "MAX_STEPS",
]

#: Soft-NMS keeps every box with a lowered score; boxes at or above this are drawn solid.
SOFT_SHOWN = 0.3
#: The step slider's last position, "all" (every greedy step done).
MAX_STEPS = 11

_W, _H = 240, 150
_GT = (
    (20.0, 30.0, 58.0, 135.0),
    (86.0, 25.0, 126.0, 130.0),
    (96.0, 30.0, 136.0, 134.0),
    (180.0, 40.0, 215.0, 138.0),
)
# (box, score): a few detections per person, then false alarms on the background.
_DETECTIONS = (
    ((21, 31, 57, 134), 0.95),
    ((14, 25, 55, 127), 0.81),
    ((24, 41, 62, 141), 0.62),
    ((87, 26, 125, 131), 0.93),
    ((80, 19, 122, 121), 0.77),
    ((90, 36, 130, 137), 0.58),
    ((97, 31, 137, 133), 0.88),
    ((92, 27, 133, 130), 0.70),
    ((181, 42, 214, 137), 0.91),
    ((175, 30, 212, 129), 0.74),
    ((185, 51, 223, 141), 0.45),
    ((148, 92, 176, 122), 0.22),
    ((60, 62, 88, 112), 0.34),
    ((200, 4, 236, 30), 0.12),
)

_KEPT, _SUPP, _NOW, _WAIT, _GTC = PALETTE[2], PALETTE[3], PALETTE[0], "#9a9a9a", "#222222"


def nms_scene() -> tuple[np.ndarray, dict, torch.Tensor, torch.Tensor]:
    """The widget's street scene (fresh copies: changing them changes nothing).

    Returns:
        tuple: ``image`` (``uint8 [150, 240, 3]``), ``target`` (``boxes`` ``Tensor[4, 4]``
        float32 xyxy, ``labels`` ``Tensor[4]`` int64, all 1 = person), ``boxes``
        (``Tensor[14, 4]`` float32 xyxy detections) and ``scores`` (``Tensor[14]``).
    """
    image, target, boxes, scores = _scene()
    return image.copy(), {k: v.clone() for k, v in target.items()}, boxes.clone(), scores.clone()


class NMSScene:
    """A scene for the widget: an image, its true boxes, and scored boxes to suppress.

    Made by :func:`check_nms_scene`. Compared and hashed by identity, so the widget's
    caches hold each scene apart.

    Attributes:
        image (uint8 [H, W, 3]), target (dict: ``boxes`` ``Tensor[M, 4]`` float32 xyxy),
        boxes (``Tensor[K, 4]`` float32 xyxy), scores (``Tensor[K]`` float32),
        noun (str): what the objects are called in the title ("people", "objects").
    """

    __slots__ = ("image", "target", "boxes", "scores", "noun", "_trace")

    def __init__(
        self, image: np.ndarray, target: dict, boxes: torch.Tensor, scores: torch.Tensor, noun: str
    ):
        self.image, self.target, self.boxes, self.scores, self.noun = (
            image,
            target,
            boxes,
            scores,
            noun,
        )
        self._trace: str | None = None

    def __iter__(self):  # unpacks like nms_scene(): image, target, boxes, scores
        return iter((self.image, self.target, self.boxes, self.scores))

    def image_trace_json(self) -> str:
        if self._trace is None:
            self._trace = json.dumps(image_trace(self.image))  # encoded to PNG once
        return self._trace


def check_nms_scene(scene, noun: str = "objects") -> NMSScene:
    """Validate ``(image, target, boxes, scores)`` and copy it into an :class:`NMSScene`.

    Args:
        scene (tuple): ``image`` (``[H, W, 3]`` uint8, or a ``[3, H, W]`` float tensor in
            [0, 1] as torchvision's models take), ``target`` (a dict with ``boxes``
            ``Tensor[M, 4]`` xyxy pixels: the true objects), ``boxes`` (``Tensor[K, 4]``
            xyxy: the scored boxes NMS works on, e.g. a detector's raw predictions) and
            ``scores`` (``Tensor[K]`` in [0, 1]).
        noun (str): what the objects are called in the figure's title.

    Returns:
        NMSScene: copies (changing the inputs later changes nothing).
    """
    from vizlib._checks import check_boxes
    from vizlib.viz.boxes import as_uint8_image

    if isinstance(scene, NMSScene):
        return scene
    if not isinstance(scene, (tuple, list)) or len(scene) != 4:
        raise ValueError("scene must be a tuple (image, target, boxes, scores)")
    image, target, boxes, scores = scene
    image = as_uint8_image(image).copy()
    if not isinstance(target, dict) or "boxes" not in target:
        raise ValueError("scene's target must be a dict with 'boxes' [M, 4]")
    gt = check_boxes("target['boxes']", target["boxes"]).detach().cpu().float().clone()
    boxes = check_boxes("boxes", boxes).detach().cpu().float().clone()
    scores = torch.as_tensor(scores).detach().cpu().float().clone()
    if scores.shape != (len(boxes),):
        raise ValueError(
            f"scores must have shape [K] = [{len(boxes)}] (one per box), got {tuple(scores.shape)}"
        )
    if not bool(((scores >= 0) & (scores <= 1)).all()):
        raise ValueError("scores must be in [0, 1]")
    if not isinstance(noun, str) or not noun:
        raise ValueError(f"noun must be a non-empty string, got {noun!r}")
    labels = torch.ones(len(gt), dtype=torch.int64)
    return NMSScene(image, {"boxes": gt, "labels": labels}, boxes, scores, noun)


@lru_cache(maxsize=1)
def _scene() -> tuple[np.ndarray, dict, torch.Tensor, torch.Tensor]:
    yy, xx = np.mgrid[0:_H, 0:_W].astype(np.float32)  # [H, W] each
    img = np.zeros((_H, _W, 3), np.float32)
    img[:] = (205, 200, 190)
    img[yy > 110] = (120, 120, 125)  # pavement
    img += 12 * np.sin(xx / 9.0)[..., None] * (yy < 110)[..., None]  # a patterned wall
    colors = ((190, 60, 60), (60, 110, 190), (70, 150, 80), (200, 150, 40))
    for (x1, y1, x2, y2), c in zip(_GT, colors, strict=True):
        cx = (x1 + x2) / 2
        img[(xx >= x1 + 5) & (xx < x2 - 5) & (yy >= y1 + 24) & (yy < y2 - 30)] = c  # body
        img[(np.abs(xx - cx) > 3) & (np.abs(xx - cx) < 12) & (yy >= y2 - 30) & (yy < y2)] = (
            50,
            50,
            60,
        )  # legs
        img[(xx - cx) ** 2 + (yy - (y1 + 11)) ** 2 < 10**2] = (230, 185, 150)  # head
    image = np.clip(img, 0, 255).astype(np.uint8)
    target = {
        "boxes": torch.tensor(_GT, dtype=torch.float32),
        "labels": torch.ones(len(_GT), dtype=torch.int64),
    }
    boxes = torch.tensor([b for b, _ in _DETECTIONS], dtype=torch.float32)
    scores = torch.tensor([s for _, s in _DETECTIONS], dtype=torch.float32)
    return image, target, boxes, scores


@lru_cache(maxsize=64)
def _run_nms(iou_threshold: float, score_threshold: float, scene: NMSScene | None = None):
    """Greedy NMS, soft-NMS and their matches to the objects for one pair of thresholds.

    Cached: the step slider only re-slices the trace, so moving it costs no maths.
    """
    _, target, boxes, scores = _scene() if scene is None else scene
    candidates = torch.nonzero(scores >= score_threshold).flatten()  # [K]
    local = nms_trace(boxes[candidates], scores[candidates], iou_threshold)
    # back to indices into all the boxes
    trace = tuple(
        NMSStep(
            kept=int(candidates[s.kept]),
            score=s.score,
            suppressed=tuple(int(candidates[j]) for j in s.suppressed),
            ious=s.ious,
        )
        for s in local
    )
    soft_local, soft_scores = soft_nms(
        boxes[candidates], scores[candidates], iou_threshold, method="linear", score_threshold=0.0
    )
    soft_keep = candidates[soft_local]
    final = torch.tensor([s.kept for s in trace], dtype=torch.int64)
    shown = soft_scores >= SOFT_SHOWN
    m_nms = match_detections(boxes[final], scores[final], target["boxes"], 0.5)
    m_soft = match_detections(boxes[soft_keep[shown]], soft_scores[shown], target["boxes"], 0.5)
    return trace, candidates, soft_keep, soft_scores, m_nms, m_soft


def nms_numbers(
    iou_threshold: float, score_threshold: float, step: int | None = None, scene=None
) -> dict:
    """Greedy NMS and soft-NMS on the scene, for one state of the widget.

    Args:
        iou_threshold (float): NMS suppresses boxes with IoU > this with a kept box.
        score_threshold (float): boxes scoring below it are dropped before NMS.
        step (int, optional): how many greedy steps are done; the last one done is
            highlighted as "now". ``None``: all of them, nothing highlighted.
        scene (optional): ``(image, target, boxes, scores)`` or an :class:`NMSScene`
            (see :func:`check_nms_scene`); default the street (:func:`nms_scene`).

    Returns:
        dict: ``candidates`` (``Tensor[K]`` indices of the boxes above the score
        threshold), ``trace`` (list of :class:`vizlib.nms.NMSStep`, indices into all
        boxes), ``steps_done``, ``kept`` / ``suppressed`` / ``current`` /
        ``current_suppressed`` / ``waiting`` (lists of box indices at this step),
        ``soft_keep``, ``soft_scores`` (soft-NMS order and decayed scores, indices into
        all boxes), ``found_nms`` and ``found_soft`` (people matched at IoU 0.5 by the
        final greedy result and by the soft-NMS boxes scoring >= :data:`SOFT_SHOWN`),
        ``fp_nms``, ``fp_soft``.
    """
    scene = None if scene is None else check_nms_scene(scene)
    trace, candidates, soft_keep, soft_scores, m_nms, m_soft = _run_nms(
        float(iou_threshold), float(score_threshold), scene
    )
    done = len(trace) if step is None else min(step, len(trace))
    # the last step done is "now", unless every step is shown (step None)
    before = done if step is None else max(done - 1, 0)
    kept = [s.kept for s in trace[:before]]
    suppressed = [j for s in trace[:before] for j in s.suppressed]
    now = trace[done - 1] if (done and step is not None) else None
    current = [now.kept] if now else []
    current_suppressed = list(now.suppressed) if now else []
    decided = set(kept) | set(suppressed) | set(current) | set(current_suppressed)
    waiting = [int(i) for i in candidates if int(i) not in decided]
    return {
        "candidates": candidates.clone(),
        "trace": list(trace),
        "steps_done": done,
        "all": step is None,
        "kept": kept,
        "suppressed": suppressed,
        "current": current,
        "current_suppressed": current_suppressed,
        "waiting": waiting,
        "soft_keep": soft_keep.clone(),
        "soft_scores": soft_scores.clone(),
        "found_nms": int(m_nms.tp.sum()),
        "fp_nms": int(m_nms.fp.sum()),
        "found_soft": int(m_soft.tp.sum()),
        "fp_soft": int(m_soft.fp.sum()),
    }


def _step_text(n: dict) -> str:
    done, trace = n["steps_done"], n["trace"]
    if n["all"]:
        return f"all {len(trace)} greedy steps done: the green boxes are NMS's output"
    if done == 0:
        return f"step 0: {len(n['candidates'])} boxes above the score threshold, sorted by score"
    s = trace[done - 1]
    what = ", ".join(f"#{j} (IoU {v:.2f})" for j, v in zip(s.suppressed, s.ious, strict=True))
    text = f"step {done}/{len(trace)}: keep #{s.kept} ({s.score:.2f})"
    text += f"; it suppresses {what}" if what else "; it suppresses nothing"
    return text


def nms_figure(
    iou_threshold: float,
    score_threshold: float,
    step: int | None = None,
    height: int = 400,
    scene=None,
):
    """The widget's figure for one state (see :func:`nms_numbers`).

    Left, greedy NMS: kept boxes green, the box kept at this step blue (thick), the boxes
    it suppresses now red, boxes suppressed earlier faded red, boxes not yet visited grey.
    Right, soft-NMS: every box keeps a (lowered) score; solid if it stays >= 0.3.
    Black dotted: the true boxes. ``scene``: see :func:`nms_numbers`.
    """
    scene = None if scene is None else check_nms_scene(scene)
    image, target, boxes, scores = _scene() if scene is None else scene
    height_px, width_px = image.shape[:2]
    noun = "people" if scene is None else scene.noun
    n = nms_numbers(iou_threshold, score_threshold, step, scene)
    layout, refs = subplot_layout([(1, 1), (1, 2)], rows=1, cols=2, horizontal_spacing=0.03)
    left, right = refs[(1, 1)], refs[(1, 2)]

    def sel(idx):
        return boxes[torch.as_tensor(idx, dtype=torch.int64)] if len(idx) else boxes[:0]

    def tags(idx):
        return [f"#{i} {float(scores[i]):.2f}" for i in idx]

    labelled = n["kept"] + n["current"]
    soft, soft_s = n["soft_keep"].tolist(), n["soft_scores"].tolist()
    new = dict(zip(soft, soft_s, strict=True))
    solid = [i for i in soft if new[i] >= SOFT_SHOWN]
    faint = [i for i in soft if new[i] < SOFT_SHOWN]
    data = [
        # left: greedy NMS (the same 8 traces in every state)
        {**_image_trace(scene), **left},
        {
            **box_trace(
                target["boxes"],
                color=_GTC,
                dash="dot",
                width=1.5,
                name="true boxes",
                legendgroup="gt",
            ),
            **left,
        },
        {
            **box_trace(
                sel(n["waiting"]),
                color=_WAIT,
                width=1.5,
                name="not yet visited",
                hovertext=tags(n["waiting"]),
            ),
            **left,
        },
        {
            **box_trace(
                sel(n["suppressed"]),
                color=_SUPP,
                width=1,
                dash="dash",
                opacity=0.45,
                name="suppressed earlier",
                hovertext=tags(n["suppressed"]),
            ),
            **left,
        },
        {
            **box_trace(
                sel(n["kept"]), color=_KEPT, width=2.5, name="kept", hovertext=tags(n["kept"])
            ),
            **left,
        },
        {
            **box_trace(
                sel(n["current_suppressed"]),
                color=_SUPP,
                width=2.5,
                name="suppressed now",
                hovertext=tags(n["current_suppressed"]),
            ),
            **left,
        },
        {
            **box_trace(
                sel(n["current"]),
                color=_NOW,
                width=4,
                name="kept now",
                hovertext=tags(n["current"]),
            ),
            **left,
        },
        {
            **label_trace(sel(labelled), tags(labelled), color="#000000", size=10, name="scores"),
            **left,
        },
        # right: soft-NMS
        {**_image_trace(scene), **right},
        {
            **box_trace(
                target["boxes"],
                color=_GTC,
                dash="dot",
                width=1.5,
                name="true boxes",
                showlegend=False,
                legendgroup="gt",
            ),
            **right,
        },
        {
            **box_trace(
                sel(faint),
                color=_SUPP,
                width=1,
                dash="dot",
                opacity=0.5,
                name=f"soft-NMS: score < {SOFT_SHOWN}",
                hovertext=[f"#{i} {new[i]:.2f}" for i in faint],
            ),
            **right,
        },
        {
            **box_trace(
                sel(solid),
                color=_KEPT,
                width=2.5,
                name=f"soft-NMS: score ≥ {SOFT_SHOWN}",
                hovertext=[f"#{i} {new[i]:.2f}" for i in solid],
            ),
            **right,
        },
        {
            **label_trace(
                sel(solid),
                [f"{new[i]:.2f}" for i in solid],
                color="#000000",
                size=10,
                name="new scores",
            ),
            **right,
        },
    ]
    set_image_axes(layout, left, width_px, height_px, show_ticks=False)
    set_image_axes(layout, right, width_px, height_px, show_ticks=False)
    final = n["all"] or n["steps_done"] == len(n["trace"])
    total = len(target["boxes"])
    greedy = (
        f"greedy NMS: {len(n['trace'])} kept, finds {n['found_nms']}/{total} {noun}"
        if final
        else "greedy NMS, step by step"
    )
    layout.update(
        title={
            "text": (
                f"{_step_text(n)}<br>{greedy}  |  soft-NMS (linear): "
                f"{len(solid)} boxes ≥ {SOFT_SHOWN}, finds {n['found_soft']}/{total} {noun}, "
                f"{n['fp_soft']} false"
            ),
            "font": {"size": 13},
            "x": 0.01,
            "y": 0.97,
            "yanchor": "top",
        },
        height=height,
        margin={"l": 10, "r": 10, "t": 120, "b": 10},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "font": {"size": 11}},
    )
    return fast_figure(data, layout)


@lru_cache(maxsize=1)
def _image_trace_cached() -> str:
    return json.dumps(image_trace(_scene()[0]))


def _image_trace(scene: NMSScene | None = None) -> dict:
    """The scene as an image trace (encoded to PNG once)."""
    return json.loads(_image_trace_cached() if scene is None else scene.image_trace_json())


class NMSWidget(Widget):
    """Greedy NMS step by step (left) and soft-NMS (right) on a crowded street.

    At the default IoU threshold 0.5 greedy NMS deletes the best box of the person
    standing behind another (their true boxes overlap with IoU 0.56): the failure case.
    Soft-NMS only lowers that box's score, and it survives.

    Args:
        scene (optional): another scene, ``(image, target, boxes, scores)`` (see
            :func:`check_nms_scene`), e.g. a detector's raw boxes on one image.
        noun (str): what the scene's objects are called in the title.
        **defaults: the controls' starting values.
    """

    controls = [
        Control(
            "iou_threshold",
            "IoU threshold",
            values=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
            default=0.5,
            static_values=[0.3, 0.4, 0.5, 0.6, 0.7],
        ),
        Control("score_threshold", "score threshold", values=[0.05, 0.3, 0.5], default=0.05),
        Control(
            "step",
            "greedy step",
            values=list(range(MAX_STEPS + 1)),
            default=MAX_STEPS,
            labels=[str(k) for k in range(MAX_STEPS)] + ["all"],
        ),
    ]
    static_controls = ("iou_threshold", "step")

    def __init__(self, scene=None, noun: str = "objects", **defaults):
        self.scene = None if scene is None else check_nms_scene(scene, noun)
        super().__init__(**defaults)

    def figure(self, iou_threshold, score_threshold, step):
        return nms_figure(
            iou_threshold, score_threshold, None if step == MAX_STEPS else step, scene=self.scene
        )
