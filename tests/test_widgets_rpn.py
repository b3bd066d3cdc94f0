"""The RPN explorer (vizlib/widgets/rpn.py): its anchor labels are torchvision's RPN labels,
its proposals are torchvision's ``filter_proposals``, on simulated and on a real RPN's
outputs; live controls, static frames and input validation."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest
import torch
import torchvision
from torchvision.models.detection._utils import Matcher
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.rpn import (
    RegionProposalNetwork,
    RPNHead,
    concat_box_prediction_layers,
)

from vizlib.anchors import BACKGROUND, IGNORE, anchors_for_image, match_anchors
from vizlib.boxes import box_iou, decode_deltas
from vizlib.widgets import RPNExplorer, all_widget_classes
from vizlib.widgets import rpn as wr

MAX_STATIC_BYTES = 1_000_000


def _text(fig) -> str:
    return json.dumps(json.loads(fig.to_json()), sort_keys=True)


def _torchvision_rpn(fg=0.7, bg=0.3, nms_thresh=0.7, pre=1000, post=10, sizes=(16, 32)):
    return RegionProposalNetwork(
        AnchorGenerator((sizes,), ((0.5, 1.0, 2.0),)),
        RPNHead(8, 3 * len(sizes)),
        fg_iou_thresh=fg,
        bg_iou_thresh=bg,
        batch_size_per_image=256,
        positive_fraction=0.5,
        pre_nms_top_n={"training": pre, "testing": pre},
        post_nms_top_n={"training": post, "testing": post},
        nms_thresh=nms_thresh,
    ).eval()


def test_registered():
    assert all_widget_classes()["RPNExplorer"] is RPNExplorer


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "sizes,ratios,stride,fg,bg,low",
    [
        ((16, 32), (0.5, 1.0, 2.0), 8, 0.7, 0.3, True),
        ((16, 32), (0.5, 1.0, 2.0), 8, 0.7, 0.3, False),
        ((8, 16, 32), (1.0,), 4, 0.5, 0.3, True),
        ((16,), (0.5, 1.0, 2.0), 4, 0.6, 0.2, False),
    ],
)
def test_labels_are_torchvision_rpn_labels(sizes, ratios, stride, fg, bg, low):
    n = wr.rpn_label_numbers(sizes, ratios, fg, bg, low, stride)
    image, target = wr.rpn_scene()
    anchors = anchors_for_image((64, 64), [(64 // stride,) * 2], [sizes], ratios)
    assert torch.equal(n["anchors"], anchors)
    assert torch.equal(n["matches"], match_anchors(box_iou(target["boxes"], anchors), fg, bg, low))
    rpn = _torchvision_rpn(fg, bg)
    rpn.proposal_matcher = Matcher(fg, bg, allow_low_quality_matches=low)
    labels, _ = rpn.assign_targets_to_anchors([anchors], [target])
    assert torch.equal(n["labels"], labels[0])
    counts = n["counts"]
    assert counts["positive"] == int((labels[0] == 1).sum())
    assert counts["negative"] == int((labels[0] == 0).sum())
    assert counts["ignored"] == int((labels[0] == -1).sum())
    assert counts["positive"] + counts["negative"] + counts["ignored"] == counts["total"]
    assert n["grid"] == (64 // stride, 64 // stride) and n["A"] == len(sizes) * len(ratios)
    # each object's positives and ignored are the anchors it overlaps most, all of them once
    best = n["iou"].argmax(dim=0)
    pos = torch.cat([o["positive"] for o in n["objects"]]).sort().values
    ign = torch.cat([o["ignored"] for o in n["objects"]]).sort().values
    assert torch.equal(pos, torch.nonzero(n["matches"] >= 0).flatten())
    assert torch.equal(ign, torch.nonzero(n["matches"] == IGNORE).flatten())
    for k, o in enumerate(n["objects"]):
        assert bool((best[o["positive"]] == k).all()) and bool((best[o["ignored"]] == k).all())
        assert o["best_iou"] == pytest.approx(float(n["iou"][k].max()))
    # the faint centres: exactly the locations whose every anchor is negative
    per_loc = (n["matches"] == BACKGROUND).view(-1, n["A"]).all(dim=1)
    assert len(n["background_locations"]) == int(per_loc.sum())


def test_low_quality_rule_makes_every_positive_on_the_default_scene():
    # 64 x 64 scenes, stride 8: no anchor reaches IoU 0.7, the rule gives every positive
    off = wr.rpn_label_numbers((16, 32), (0.5, 1.0, 2.0), 0.7, 0.3, False)
    on = wr.rpn_label_numbers((16, 32), (0.5, 1.0, 2.0), 0.7, 0.3, True)
    assert off["counts"]["positive"] == off["counts"]["rescued"] == 0
    assert on["counts"]["positive"] == on["counts"]["rescued"] >= 4
    assert all(len(o["positive"]) >= 1 for o in on["objects"])
    # the rescued anchors came out of the ignored band (their IoU is >= 0.3), not negatives
    assert on["counts"]["negative"] == off["counts"]["negative"]
    assert on["counts"]["ignored"] == off["counts"]["ignored"] - on["counts"]["positive"]
    loose = wr.rpn_label_numbers((16, 32), (0.5, 1.0, 2.0), 0.5, 0.3, True)
    assert loose["counts"]["positive"] > on["counts"]["positive"]
    assert loose["counts"]["rescued"] == 0


def test_rpn_anchor_labels_mapping():
    m = torch.tensor([2, BACKGROUND, IGNORE, 0])
    assert wr.rpn_anchor_labels(m).tolist() == [1.0, 0.0, -1.0, 1.0]
    with pytest.raises(ValueError, match="int64"):
        wr.rpn_anchor_labels(torch.tensor([0.0, 1.0]))


# --------------------------------------------------------------------------- proposals


def _random_rpn_outputs(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 80 - 8  # some boxes start outside the image
    wh = torch.rand(n, 2, generator=g) * 30 + 2
    boxes = torch.cat([xy, xy + wh], dim=1)
    boxes[:5] = torch.tensor([-20.0, -20.0, -5.0, -5.0])  # wholly outside: empty once clipped
    logits = torch.randn(n, generator=g) * 3
    return boxes, logits


@pytest.mark.parametrize("thr", [0.3, 0.5, 0.7, 1.0])
@pytest.mark.parametrize("pre,post", [(1000, 10), (50, 20), (300, 1000)])
def test_filter_is_torchvision_filter_proposals(thr, pre, post):
    boxes, logits = _random_rpn_outputs(300, seed=int(thr * 10) + pre)
    rpn = _torchvision_rpn(nms_thresh=thr, pre=pre, post=post)
    ref_boxes, ref_scores = rpn.filter_proposals(boxes[None], logits[None], [(64, 64)], [300])
    out = wr.filter_rpn_proposals(boxes, logits, (64, 64), thr, post, pre_nms_top_n=pre)
    torch.testing.assert_close(out["proposals"], ref_boxes[0], rtol=0, atol=0)
    torch.testing.assert_close(out["proposal_scores"].sigmoid(), ref_scores[0])
    # and its NMS is torchvision.ops.nms on the clipped, non-empty boxes
    valid = out["valid"]
    ref_keep = valid[torchvision.ops.nms(out["clipped"][valid], logits[valid], thr)]
    assert torch.equal(out["kept"], ref_keep)
    assert not set(range(5)) & set(valid.tolist())  # empty boxes never reach NMS


def test_filter_validation():
    boxes, logits = _random_rpn_outputs(20, seed=0)
    with pytest.raises(ValueError, match="scores must have shape"):
        wr.filter_rpn_proposals(boxes, logits[:3], (64, 64), 0.7, 10)
    with pytest.raises(ValueError, match="top_k"):
        wr.filter_rpn_proposals(boxes, logits, (64, 64), 0.7, 0)
    with pytest.raises(ValueError, match="iou_threshold"):
        wr.filter_rpn_proposals(boxes, logits, (64, 64), 1.5, 10)


def test_simulated_outputs_are_seeded_and_decoded():
    image, target = wr.rpn_scene()
    anchors = anchors_for_image((64, 64), [(8, 8)], [(16, 32)], (0.5, 1.0, 2.0))
    d1, s1 = wr.simulated_rpn_outputs(anchors, target["boxes"], seed=0)
    d2, s2 = wr.simulated_rpn_outputs(anchors, target["boxes"], seed=0)
    d3, _ = wr.simulated_rpn_outputs(anchors, target["boxes"], seed=1)
    assert torch.equal(d1, d2) and torch.equal(s1, s2) and not torch.equal(d1, d3)
    assert d1.shape == (len(anchors), 4) and bool(((s1 >= 0) & (s1 <= 1)).all())
    assert "simulated" in wr.simulated_rpn_outputs.__doc__.lower()
    # the widget decodes them onto the anchors, then filters them
    n = wr.rpn_proposal_numbers((16, 32), (0.5, 1.0, 2.0), 0.7, 10)
    assert n["simulated"]
    torch.testing.assert_close(n["boxes"], decode_deltas(d1, anchors))
    ref = wr.filter_rpn_proposals(decode_deltas(d1, anchors), s1, (64, 64), 0.7, 10, 1000)
    assert torch.equal(n["top"], ref["top"])
    # plausible: the best-scored proposals sit on objects
    assert n["found"] >= 3
    iou = box_iou(target["boxes"], n["proposals"])
    assert float(iou.max(dim=0).values[:3].min()) > 0.5


def test_a_real_rpn_on_the_scene():
    """A torchvision RPN (untrained, seeded) run on the scene: its pre-NMS boxes and
    objectness go into the widget, which keeps what the RPN itself keeps."""
    torch.manual_seed(0)
    image, target = wr.rpn_scene()
    rpn = _torchvision_rpn(nms_thresh=0.7, pre=200, post=10)
    features = [torch.nn.Conv2d(3, 8, 8, stride=8)(image[None])]  # [1, 8, 8, 8]: stride 8
    from torchvision.models.detection.image_list import ImageList

    images = ImageList(image[None], [(64, 64)])
    with torch.no_grad():
        objectness, deltas = rpn.head(features)
        anchors = rpn.anchor_generator(images, features)
        obj, reg = concat_box_prediction_layers(objectness, deltas)
        boxes = rpn.box_coder.decode(reg, anchors).view(1, -1, 4)
        ref_boxes, ref_scores = rpn.filter_proposals(boxes, obj.view(1, -1), [(64, 64)], [384])
        ref_out, _ = rpn(images, {"0": features[0]})
    torch.testing.assert_close(ref_out[0], ref_boxes[0])
    w = RPNExplorer(
        image,
        target["boxes"],
        target["labels"],
        proposals=(boxes[0], obj.flatten()),
        pre_nms_top_n=200,
    )
    state = w.state_defaults()
    n = wr.rpn_proposal_numbers(
        state["sizes"], state["ratios"], 0.7, 10, scene=w.scene, pre_nms_top_n=200
    )
    assert not n["simulated"]
    torch.testing.assert_close(n["proposals"], ref_boxes[0], rtol=0, atol=0)
    torch.testing.assert_close(n["proposal_scores"].sigmoid(), ref_scores[0])
    fig = w.figure(**state)
    assert "the model's RPN" in fig.layout.title.text and "SIMULATED" not in fig.layout.title.text
    # given proposals do not move with the anchor controls
    other = w.figure(**{**state, "sizes": (8,), "ratios": (1.0,)})
    assert fig.data[-2].x == other.data[-2].x


def test_title_numbers():
    w = RPNExplorer()
    state = w.state_defaults()
    assert (state["fg_iou"], state["bg_iou"], state["low_quality"], state["nms_thresh"]) == (
        0.7,
        0.3,
        True,
        0.7,
    )
    lab = wr.rpn_label_numbers(state["sizes"], state["ratios"], 0.7, 0.3, True, state["stride"])
    prop = wr.rpn_proposal_numbers(state["sizes"], state["ratios"], 0.7, state["top_k"])
    title = w.figure(**state).layout.title.text
    c = lab["counts"]
    assert f"<b>{c['positive']} positive</b>" in title and f"{c['negative']} negative" in title
    assert f"{c['ignored']} ignored" in title and "SIMULATED" in title
    assert f"NMS at 0.7 keeps {len(prop['kept'])}" in title
    assert f"find {prop['found']}/4 objects" in title
    # what is drawn: each object's positives in its own trace, the top-k proposals
    fig = w.figure(**state)
    pos_traces = [t for t in fig.data if t.name and " positive" in t.name and t.name[0] == "#"]
    assert [t.name for t in pos_traces] == [
        f"#{k}: {len(o['positive'])} positive" for k, o in enumerate(lab["objects"])
    ]
    assert sum(x is None for x in fig.data[-2].x) == len(prop["top"]) == state["top_k"]


# --------------------------------------------------------------------------- widget


def test_live_controls_change_the_figure():
    w = RPNExplorer()
    box = w.live()
    assert set(box.controls) == {c.name for c in RPNExplorer.controls}
    for c in RPNExplorer.controls:
        widget = box.controls[c.name]
        start = widget.value
        before = _text(w.last_figure)
        changed = False
        for v in c.values:
            if v == start:
                continue
            widget.value = v
            if _text(w.last_figure) != before:
                changed = True
                break
        assert changed, f"no value of control {c.name!r} changed the figure"
        widget.value = start
        assert _text(w.last_figure) == before


def test_figure_is_valid_plotly_and_keeps_its_traces():
    w = RPNExplorer()
    go.Figure(json.loads(w.render().to_json()))
    kinds = None
    for _, state in w.static_states()[::7]:
        k = [t.type for t in w.figure(**state).data]
        kinds = kinds or k
        assert k == kinds


def test_static_figure_sliders_frames_and_size():
    w = RPNExplorer()
    fig = w.static_figure()
    w.static_figure = lambda: fig
    html = w.static_html(include_plotlyjs=False)
    assert [s.name for s in fig.layout.sliders] == list(RPNExplorer.static_controls)
    n_states = 1
    for s in fig.layout.sliders:
        assert len(s.steps) == len(w.control(s.name).steps())
        n_states *= len(s.steps)
    assert len(fig.frames) == n_states <= w.max_static_states
    assert len(html.encode("utf-8")) <= MAX_STATIC_BYTES
    assert all(t.type != "image" for fr in fig.frames for t in fr.data)
    # every static slider, moved alone from the default, changes some frame's content
    base = "-".join(str(s.active) for s in fig.layout.sliders)
    frames = {fr.name: fr for fr in fig.frames}
    for k, s in enumerate(fig.layout.sliders):
        for i in range(len(s.steps)):
            idx = [int(v) for v in base.split("-")]
            if i == idx[k]:
                continue
            idx[k] = i
            other = frames["-".join(map(str, idx))]
            assert other.to_plotly_json() != frames[base].to_plotly_json(), s.name


def test_validation():
    image, target = wr.rpn_scene()
    with pytest.raises(ValueError, match="both image and boxes"):
        RPNExplorer(image=image)
    with pytest.raises(ValueError, match="pair"):
        RPNExplorer(image, target["boxes"], proposals=torch.zeros(3, 4))
    with pytest.raises(ValueError, match="one per box"):
        RPNExplorer(image, target["boxes"], proposals=(torch.zeros(3, 4), torch.zeros(2)))
    with pytest.raises(ValueError, match="no name"):
        RPNExplorer(image, target["boxes"], torch.tensor([1, 2, 3, 9]))
    with pytest.raises(ValueError, match="at least 8 x 8"):
        RPNExplorer(image[:, :6, :6], target["boxes"])
    with pytest.raises(ValueError, match="offset"):
        RPNExplorer(offset=1.5)
    with pytest.raises(ValueError, match="unknown controls"):
        RPNExplorer(nms=0.5)
    with pytest.raises(ValueError, match="x2 < x1"):
        RPNExplorer(image, torch.tensor([[10.0, 10.0, 5.0, 20.0]]))
    # a scene with no objects: every anchor negative, proposals still drawn
    empty = RPNExplorer(image, torch.zeros(0, 4))
    n = wr.rpn_label_numbers((16,), (1.0,), scene=empty.scene)
    assert n["counts"]["negative"] == n["counts"]["total"] == 64
    empty.render()
