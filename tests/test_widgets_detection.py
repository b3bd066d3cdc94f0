"""The detection widgets (IoU, anchors, NMS, PR curve) and their drawing modules.

* live mode: moving each ipywidgets control programmatically changes ``.last_figure``;
* the numbers a widget shows are vizlib core's, and agree with torchvision / pycocotools;
* static mode: one plotly slider per static control, one frame per state, <= 1 MB of HTML;
* ``vizlib.viz.boxes`` and ``vizlib.viz.curves``: conventions, validation, AP areas.
"""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from vizlib.anchors import BACKGROUND, IGNORE, generate_anchors, grid_anchors
from vizlib.boxes import box_iou, generalized_box_iou
from vizlib.metrics import average_precision, precision_recall_curve
from vizlib.nms import nms
from vizlib.viz import boxes as vb
from vizlib.viz import curves as vc
from vizlib.widgets import AnchorsWidget, IoUWidget, NMSWidget, PRCurveWidget, all_widget_classes
from vizlib.widgets import anchors as wa
from vizlib.widgets import iou as wi
from vizlib.widgets import nms as wn
from vizlib.widgets import pr_curve as wp

matplotlib.use("Agg")

WIDGETS = [IoUWidget, AnchorsWidget, NMSWidget, PRCurveWidget]
MAX_STATIC_BYTES = 1_000_000


def _data(fig) -> str:
    return json.dumps(json.loads(fig.to_json())["data"], sort_keys=True)


def _text(fig) -> str:
    return json.dumps(json.loads(fig.to_json()), sort_keys=True)


def test_widgets_are_registered():
    found = all_widget_classes()
    for cls in WIDGETS:
        assert found[cls.__name__] is cls


# --------------------------------------------------------------------------- live mode


@pytest.mark.parametrize("cls", WIDGETS, ids=lambda c: c.__name__)
def test_live_controls_change_the_figure(cls):
    w = cls()
    box = w.live()
    assert set(box.controls) == {c.name for c in cls.controls}
    for c in cls.controls:
        widget = box.controls[c.name]
        start = widget.value
        before = _text(w.last_figure)
        # the first other value that changes the picture: every control must have one
        changed = False
        for v in c.values:
            if v == start:
                continue
            widget.value = v
            assert w.last_state[c.name] == v
            if _text(w.last_figure) != before:
                changed = True
                break
        assert changed, f"{cls.__name__}: no value of control {c.name!r} changed the figure"
        widget.value = start  # back, so the next control starts from the defaults
        assert _text(w.last_figure) == before


@pytest.mark.parametrize("cls", WIDGETS, ids=lambda c: c.__name__)
def test_figures_are_valid_plotly(cls):
    # the widgets skip plotly's validation for speed: validate once, the slow way
    w = cls()
    fig = w.figure(**w.state_defaults())
    go.Figure(json.loads(fig.to_json()))


@pytest.mark.parametrize("cls", WIDGETS, ids=lambda c: c.__name__)
def test_same_traces_in_every_static_state(cls):
    # the static frames then store only the traces that change
    w = cls()
    kinds = None
    for _, state in w.static_states()[:: max(1, len(w.static_states()) // 6)]:
        k = [t.type for t in w.figure(**state).data]
        kinds = kinds or k
        assert k == kinds


# --------------------------------------------------------------------------- static mode


@pytest.fixture(scope="module")
def statics():
    out = {}
    for cls in WIDGETS:
        w = cls()
        fig = w.static_figure()
        w.static_figure = lambda fig=fig: fig  # build the frames once: static_html reuses them
        out[cls] = (fig, w.static_html(include_plotlyjs=False))
    return out


@pytest.mark.parametrize("cls", WIDGETS, ids=lambda c: c.__name__)
def test_static_figure_sliders_frames_and_size(cls, statics):
    fig, html = statics[cls]
    w = cls()
    names = (
        list(w.static_controls) if w.static_controls is not None else [c.name for c in w.controls]
    )
    assert [s.name for s in fig.layout.sliders] == names
    n_states = 1
    for s, name in zip(fig.layout.sliders, names, strict=True):
        assert len(s.steps) == len(w.control(name).steps())
        n_states *= len(s.steps)
    assert len(fig.frames) == n_states <= w.max_static_states
    size = len(html.encode("utf-8"))
    assert size <= MAX_STATIC_BYTES, f"{cls.__name__}: static figure is {size} bytes"
    # the image (if any) is stored once, outside the frames
    assert all(t.type != "image" for fr in fig.frames for t in fr.data)


# --------------------------------------------------------------------------- IoU


@pytest.mark.parametrize("state", [(45, 50, 40), (60, 50, 40), (90, 30, 20), (30, 70, 60)])
def test_iou_numbers_match_torchvision(state):
    n = wi.iou_numbers(*state)
    assert n["iou"] == pytest.approx(float(torchvision.ops.box_iou(n["a"], n["b"])[0, 0]))
    assert n["giou"] == pytest.approx(
        float(torchvision.ops.generalized_box_iou(n["a"], n["b"])[0, 0])
    )
    assert n["iou"] == pytest.approx(n["inter"] / n["union"])
    assert n["giou"] == pytest.approx(n["iou"] - (n["area_c"] - n["union"]) / n["area_c"])


def test_iou_widget_shows_core_numbers_and_extremes():
    same = wi.iou_numbers(45, 50, 40)  # B exactly on A
    assert same["iou"] == same["giou"] == 1.0
    apart = wi.iou_numbers(90, 50, 20)  # B clear of A
    assert apart["iou"] == 0.0 and apart["giou"] < 0 and apart["intersection"].shape == (0, 4)
    touching = wi.iou_numbers(75, 50, 20)  # B's left edge on A's right edge
    fig = IoUWidget().figure(cx=60, cy=50, size=40)
    n = wi.iou_numbers(60, 50, 40)
    bars = next(t for t in fig.data if t.type == "bar")
    assert list(bars.x) == [round(n["giou"], 4), round(n["iou"], 4)]
    assert float(box_iou(n["a"], n["b"])[0, 0]) == n["iou"]
    assert float(generalized_box_iou(n["a"], n["b"])[0, 0]) == n["giou"]
    # IoU is flat at 0 once the boxes part; GIoU keeps falling as they move apart
    assert touching["iou"] == apart["iou"] == 0.0
    assert apart["giou"] < touching["giou"] < 0


# --------------------------------------------------------------------------- anchors


def test_anchors_default_is_the_lecture_poll():
    w = AnchorsWidget()
    s = w.state_defaults()
    n = wa.anchor_numbers(
        s["stride"],
        s["sizes"],
        s["ratios"],
        s["location"],
        s["fg_iou"],
        s["bg_iou"],
        s["low_quality"],
    )
    assert n["grid"] == (5, 5) and n["A"] == 10
    assert n["counts"]["total"] == 250
    assert n["tensor_size"] == 5 * 5 * 10 * (4 + 3 + 1) == 2000
    assert wa.prediction_tensor_size(5, 5, 10, 3, objectness=True) == 2000
    assert "2000 numbers" in w.figure(**s).layout.title.text


@pytest.mark.parametrize("fg,bg,low", [(0.5, 0.3, False), (0.7, 0.3, True), (0.4, 0.4, False)])
def test_anchor_labels_match_torchvision_matcher(fg, bg, low):
    from torchvision.models.detection._utils import Matcher

    n = wa.anchor_numbers(16, (32, 64), (0.5, 1.0, 2.0), "car", fg, bg, low)
    _, target = wa.anchor_scene()
    anchors = grid_anchors(n["grid"], 16, generate_anchors((32, 64), (0.5, 1.0, 2.0)), offset=0.5)
    assert torch.equal(n["anchors"], anchors)
    ref = Matcher(fg, bg, allow_low_quality_matches=low)(
        torchvision.ops.box_iou(target["boxes"], anchors)
    )
    # torchvision's BELOW_LOW_THRESHOLD = -1, BETWEEN_THRESHOLDS = -2 are vizlib's named constants
    assert BACKGROUND == Matcher.BELOW_LOW_THRESHOLD and IGNORE == Matcher.BETWEEN_THRESHOLDS
    assert torch.equal(n["matches"], ref)
    counts = n["counts"]
    assert counts["positive"] + counts["ignored"] + counts["negative"] == counts["total"]
    assert counts["positive"] == int((ref >= 0).sum())
    # the label map has one row per anchor shape and one column per location
    assert n["codes"].shape == (6, n["grid"][0] * n["grid"][1])


def test_anchors_low_quality_matches_rescue_objects():
    strict = wa.anchor_numbers(32, (32, 64), (0.33, 0.5, 1.0, 2.0, 3.0), "person", 0.7)
    rescued = wa.anchor_numbers(
        32, (32, 64), (0.33, 0.5, 1.0, 2.0, 3.0), "person", 0.7, low_quality=True
    )
    assert strict["counts"]["positive"] == 0
    assert rescued["counts"]["positive"] >= 3  # every object gets its best anchor


# --------------------------------------------------------------------------- NMS


@pytest.mark.parametrize("thr", [0.3, 0.5, 0.6, 0.8])
@pytest.mark.parametrize("score", [0.05, 0.5])
def test_nms_widget_keeps_what_torchvision_keeps(thr, score):
    _, _, boxes, scores = wn.nms_scene()
    n = wn.nms_numbers(thr, score)
    cand = n["candidates"]
    ref = cand[torchvision.ops.nms(boxes[cand], scores[cand], thr)]
    assert (
        [s.kept for s in n["trace"]]
        == ref.tolist()
        == cand[nms(boxes[cand], scores[cand], thr)].tolist()
    )
    assert n["kept"] == ref.tolist()  # "all": every step done
    assert sorted(n["kept"] + n["suppressed"]) == sorted(cand.tolist())


def test_nms_steps_and_failure_case():
    n0 = wn.nms_numbers(0.5, 0.05, step=0)
    assert n0["kept"] == n0["current"] == [] and len(n0["waiting"]) == len(n0["candidates"])
    n2 = wn.nms_numbers(0.5, 0.05, step=2)
    assert len(n2["kept"]) == 1 and len(n2["current"]) == 1
    assert n2["current"][0] == n2["trace"][1].kept
    # the failure case: the person behind another is lost at 0.5, found at 0.6 and by soft-NMS
    assert wn.nms_numbers(0.5, 0.05)["found_nms"] == 3
    assert wn.nms_numbers(0.6, 0.05)["found_nms"] == 4
    assert wn.nms_numbers(0.5, 0.05)["found_soft"] == 4
    fig = NMSWidget().figure(iou_threshold=0.5, score_threshold=0.05, step=wn.MAX_STEPS)
    assert "finds 3/4 people" in fig.layout.title.text


# --------------------------------------------------------------------------- PR curve


@pytest.mark.parametrize("iou", [0.5, 0.75, 0.9])
@pytest.mark.parametrize("method", ["voc07", "voc", "coco"])
def test_pr_widget_numbers_are_the_core_ones(iou, method):
    n = wp.pr_numbers(0.5, iou, method)
    curve = n["curve"]
    for m in ("voc07", "voc", "coco"):
        assert n["ap"][m] == average_precision(curve.precision, curve.recall, m)
    pred, target = wp.pr_dataset()
    kept = pred["scores"] >= 0.5
    assert n["tp"] + n["fp"] == int(kept.sum())
    assert n["tp"] + n["fn"] == len(target["boxes"])
    k = n["marker_index"]
    assert curve.recall[k] == pytest.approx(n["recall"])
    assert curve.precision[k] == pytest.approx(n["precision"])
    fig = PRCurveWidget().figure(score_threshold=0.5, iou_threshold=iou, method=method)
    area = next(t for t in fig.data if t.fill == "toself")
    assert f"= {n['ap'][method]:.3f}" in area.name


def test_pr_map_equals_pycocotools():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    pred, target = wp.pr_dataset()

    def xywh(b):
        return [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]

    gt = COCO()
    gt.dataset = {
        "images": [{"id": 1, "width": 250, "height": 160}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {
                "id": i + 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": xywh(b),
                "area": float((b[2] - b[0]) * (b[3] - b[1])),
                "iscrowd": 0,
            }
            for i, b in enumerate(target["boxes"].tolist())
        ],
    }
    gt.createIndex()
    dt = gt.loadRes(
        [
            {"image_id": 1, "category_id": 1, "bbox": xywh(b), "score": float(s)}
            for b, s in zip(pred["boxes"].tolist(), pred["scores"].tolist(), strict=True)
        ]
    )
    ev = COCOeval(gt, dt, "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert wp.coco_map() == pytest.approx(ev.stats[0], abs=1e-12)
    # COCO's AP at IoU 0.5 is the widget's 101-point AP at 0.5 (COCO matching)
    assert wp.pr_numbers(0.5, 0.5, "coco")["ap"]["coco"] == pytest.approx(ev.stats[1], abs=1e-12)


def test_pr_iou_threshold_changes_the_curve():
    loose = wp.pr_numbers(0.1, 0.5, "voc")
    tight = wp.pr_numbers(0.1, 0.9, "voc")
    assert tight["ap"]["voc"] < loose["ap"]["voc"]
    assert not torch.equal(loose["curve"].recall, tight["curve"].recall)


# --------------------------------------------------------------------------- viz.curves


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=25), st.integers(0, 5)
)
def test_ap_region_area_is_the_core_ap(dets, extra_gt):
    scores = torch.tensor([s for s, _ in dets], dtype=torch.float64)
    tp = torch.tensor([t for _, t in dets])
    num_gt = int(tp.sum()) + extra_gt
    if num_gt == 0:
        return
    c = precision_recall_curve(scores, tp, num_gt)
    for method in ("voc07", "voc", "coco"):
        xs, ys, area = vc.ap_region(c.precision, c.recall, method)
        assert area == pytest.approx(average_precision(c.precision, c.recall, method), abs=1e-12)
        # the outline's own area (shoelace) is the same number
        x, y = np.asarray(xs), np.asarray(ys)
        shoelace = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
        assert shoelace == pytest.approx(area, abs=1e-9)


def test_pr_curve_figure_and_validation():
    c = precision_recall_curve(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([True, False, True]), 3)
    fig = vc.pr_curve_figure(c.precision, c.recall, "coco", marker_index=1)
    assert len(fig.data) == 4 and list(fig.data[3].x) == [pytest.approx(1 / 3, abs=1e-4)]
    ax = vc.plot_pr_curve_mpl(c.precision, c.recall, "voc07")
    assert ax.get_xlabel() == "recall"
    with pytest.raises(ValueError, match="method"):
        vc.ap_region(c.precision, c.recall, "voc2012")
    with pytest.raises(ValueError, match="non-decreasing"):
        vc.ap_region([0.5, 0.5], [0.6, 0.2], "voc")
    with pytest.raises(ValueError, match="same length"):
        vc.sampled_envelope([0.5], [0.1, 0.2], [0.0])


# --------------------------------------------------------------------------- viz.boxes


def test_box_outlines_and_labels():
    b = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 10.0, 5.0]])
    xs, ys = vb.box_outline_xy(b)
    assert xs[:6] == [1.0, 3.0, 3.0, 1.0, 1.0, None] and ys[:6] == [2.0, 2.0, 4.0, 4.0, 2.0, None]
    t = vb.box_trace(b, hovertext=["a", "b"])
    assert t["type"] == "scatter" and len(t["hovertext"]) == len(t["x"])
    assert vb.box_trace(b[:0])["x"] == []  # empty groups keep their trace
    lab = vb.label_trace(b, ["a", "b"])
    assert lab["text"] == ["a", "b"]
    with pytest.raises(ValueError, match="x2 < x1"):
        vb.box_trace(torch.tensor([[3.0, 0.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match="one entry per box"):
        vb.label_trace(b, ["only one"])
    with pytest.raises(ValueError, match="alpha"):
        vb.with_alpha("#000000", 2)


def test_images_masks_and_figures():
    img = np.zeros((6, 8, 3), np.uint8)
    masks = torch.zeros(1, 6, 8, dtype=torch.bool)
    masks[0, :2, :3] = True
    out = vb.overlay_masks(img, masks, colors=["#ff0000"], alpha=0.5)
    assert out[0, 0].tolist() == [128, 0, 0] and out[5, 7].tolist() == [0, 0, 0]
    assert img.sum() == 0  # input untouched
    with pytest.raises(ValueError, match="shape"):
        vb.overlay_masks(img, torch.zeros(1, 5, 8, dtype=torch.bool))
    assert vb.as_uint8_image(torch.ones(3, 6, 8)).shape == (6, 8, 3)
    assert vb.as_uint8_image(np.full((2, 2), 0.5))[0, 0].tolist() == [128, 128, 128]
    tr = vb.image_trace(img)
    assert tr["source"].startswith("data:image/png;base64,") and tr["x0"] == 0.5
    ax = vb.draw_boxes_mpl(
        img, torch.tensor([[0.0, 0.0, 8.0, 6.0]]), labels=[1], scores=[0.5], masks=masks
    )
    assert len(ax.patches) == 1 and ax.texts[0].get_text() == "1 0.50"
    matplotlib.pyplot.close("all")
