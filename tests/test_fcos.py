"""FCOS: locations, size ranges, target assignment (centre sampling, smallest object), the
ltrb coding, centre-ness, GIoU loss, the loss and the decoding, checked against
torchvision's FCOS (FCOS.compute_loss's matching, FCOSHead.compute_loss, the
postprocessing, generalized_box_iou_loss), hand-made cases and empty images."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import generalized_box_iou_loss

from vizlib.anchors import BACKGROUND
from vizlib.boxes import decode_ltrb, encode_ltrb
from vizlib.losses import fcos_centerness_target
from vizlib.nn.backbone import VGGBackbone
from vizlib.nn.fcos import (
    FCOS,
    LOSS_TERMS,
    SCENE_SIZE_RANGES,
    FCOSHead,
    FCOSTargets,
    assign_fcos_targets,
    encode_fcos_targets,
    fcos_loss,
    fcos_points,
    fcos_postprocess,
    fcos_size_ranges,
    giou_loss,
)
from vizlib.nn.fpn import FPNBackbone
from vizlib.nn.torchvision_detection import PyramidBackbone, torchvision_fcos

C = 5
SIZE = 64


def _random_targets(n, seed=0, size=SIZE):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        m = int(torch.randint(0, 5, (1,), generator=g)) if i else 3
        xy = torch.rand(m, 2, generator=g) * size * 0.6
        wh = 5 + torch.rand(m, 2, generator=g) * size * 0.5
        boxes = torch.cat([xy, (xy + wh).clamp(max=size)], dim=1)
        out.append({"boxes": boxes, "labels": torch.randint(1, C + 1, (m,), generator=g)})
    return out


def _twins(seed=0):
    """torchvision's FCOS and ours with the same weights, points and size ranges."""
    torch.manual_seed(seed)
    tv = torchvision_fcos(
        C + 1,
        SIZE,
        backbone=PyramidBackbone(VGGBackbone((16, 32, 64, 64), convs_per_stage=1), (2, 3), 64),
        head_convs=2,
        score_thresh=0.05,
        detections_per_img=100,
    ).eval()
    ours = FCOS(C, size_ranges=fcos_size_ranges([8, 16]), offset=0.0).eval()
    ours.backbone.body.load_state_dict(tv.backbone.body.state_dict())
    for i in range(2):
        ours.backbone.neck.lateral[i].load_state_dict(
            tv.backbone.fpn.inner_blocks[i][0].state_dict()
        )
        ours.backbone.neck.output[i].load_state_dict(
            tv.backbone.fpn.layer_blocks[i][0].state_dict()
        )
    state = tv.head.state_dict()
    for k in ("classification_head.cls_logits.weight", "classification_head.cls_logits.bias"):
        state[k] = state[k][1:]  # torchvision's column 0 (background) is never a positive
    ours.head.load_state_dict(state)
    return tv, ours


def _tv_anchors(tv, features):
    images = ImageList(torch.zeros(1, 3, SIZE, SIZE), [(SIZE, SIZE)])
    return tv.anchor_generator(images, features)[0]


# ------------------------------------------------------------------ points and ranges


def test_points_and_ranges():
    pts, strides = fcos_points([(2, 2), (1, 1)], [8, 16])
    assert pts.tolist() == [[4, 4], [12, 4], [4, 12], [12, 12], [8, 8]]
    assert strides.tolist() == [8, 8, 8, 8, 16]
    corner, _ = fcos_points([(2, 2)], [8], offset=0.0)
    assert corner.tolist() == [[0, 0], [8, 0], [0, 8], [8, 8]]
    assert fcos_size_ranges([8, 16, 32, 64, 128]) == [
        (0, 64),
        (64, 128),
        (128, 256),
        (256, 512),
        (512, math.inf),
    ]
    assert SCENE_SIZE_RANGES[0][1] == SCENE_SIZE_RANGES[1][0] == 32
    for bad in (([], [8]), ([(2, 2)], [8, 16]), ([(2, 2)], [0])):
        with pytest.raises(ValueError):
            fcos_points(*bad)
    with pytest.raises(ValueError):
        fcos_points([(2, 2)], [8], offset=1.5)
    for bad in (([8], 8, 4), ([], 4, 8), ([8], -1, 8)):
        with pytest.raises(ValueError):
            fcos_size_ranges(*bad)


def test_points_equal_torchvision_anchor_centres():
    tv, _ = _twins()
    anchors = _tv_anchors(tv, [torch.zeros(1, 64, 8, 8), torch.zeros(1, 64, 4, 4)])
    pts, strides = fcos_points([(8, 8), (4, 4)], [8, 16], offset=0.0)
    torch.testing.assert_close((anchors[:, :2] + anchors[:, 2:]) / 2, pts)
    torch.testing.assert_close(anchors[:, 2] - anchors[:, 0], strides)


# ------------------------------------------------------------------ assignment


def _ranges(count_per_level, ranges):
    return torch.cat([torch.tensor([r] * n) for n, r in zip(count_per_level, ranges, strict=True)])


def test_assignment_by_hand():
    # one 8-pixel-stride level of 4 x 4 locations at the cell middles (4, 12, 20, 28)
    pts, strides = fcos_points([(4, 4)], [8])
    ranges = _ranges([16], [(0.0, math.inf)])
    box = torch.tensor([[2.0, 2.0, 22.0, 14.0]])  # centre (12, 8)
    t = assign_fcos_targets(box, torch.tensor([3]), pts, strides, ranges, center_radius=None)
    inside = [i for i, (x, y) in enumerate(pts.tolist()) if 2 < x < 22 and 2 < y < 14]
    assert torch.nonzero(t.matched != BACKGROUND).flatten().tolist() == inside == [0, 1, 2, 4, 5, 6]
    assert t.labels[inside].tolist() == [3] * 6
    # location (12, 4): l, t, r, b = 10, 2, 10, 10 -> centre-ness sqrt(1 * 0.2)
    torch.testing.assert_close(t.ltrb[1], torch.tensor([10.0, 2.0, 10.0, 10.0]))
    torch.testing.assert_close(t.centerness[1], torch.tensor(math.sqrt(0.2)))
    torch.testing.assert_close(t.ltrb[inside], encode_ltrb(pts[inside], box.expand(6, 4)))
    torch.testing.assert_close(decode_ltrb(pts[inside], t.ltrb[inside]), box.expand(6, 4))
    # centre sampling, radius 0.75 stride (6 px): only (12, 4) and (12, 12) are near (12, 8)
    t = assign_fcos_targets(box, torch.tensor([3]), pts, strides, ranges, center_radius=0.75)
    assert torch.nonzero(t.matched != BACKGROUND).flatten().tolist() == [1, 5]
    # a size range that excludes m = max(l, t, r, b): nothing
    t = assign_fcos_targets(box, torch.tensor([3]), pts, strides, _ranges([16], [(0.0, 10.0)]))
    assert bool((t.matched == BACKGROUND).all())
    # two objects claim the same location: the smaller wins
    two = torch.tensor([[0.0, 0.0, 30.0, 30.0], [8.0, 8.0, 16.0, 16.0]])
    t = assign_fcos_targets(two, torch.tensor([1, 2]), pts, strides, ranges, center_radius=None)
    assert int(t.matched[5]) == 1 and int(t.labels[5]) == 2  # location (12, 12)
    assert int(t.matched[0]) == 0


def test_assignment_equals_torchvision():
    tv, _ = _twins()
    features = [torch.zeros(1, 64, 8, 8), torch.zeros(1, 64, 4, 4)]
    anchors = _tv_anchors(tv, features)
    pts, strides = fcos_points([(8, 8), (4, 4)], [8, 16], offset=0.0)
    ranges = _ranges([64, 16], fcos_size_ranges([8, 16]))  # torchvision's rule: (4, 8) strides
    targets = _random_targets(6, seed=3)
    seen = {}

    def spy(targets, head_outputs, anchors, matched_idxs):
        seen["matched"] = matched_idxs
        return {}

    tv.head.compute_loss = spy
    tv.compute_loss(targets, {}, [anchors] * len(targets), [64, 16])
    for t, theirs in zip(targets, seen["matched"], strict=True):
        ours = assign_fcos_targets(t["boxes"], t["labels"], pts, strides, ranges, 1.5)
        torch.testing.assert_close(ours.matched, theirs)
    assert any(bool((m >= 0).any()) for m in seen["matched"])


def test_assignment_scene_ranges_use_both_levels():
    model = FCOS(C)
    pts, strides, ranges, sizes = model.points((SIZE, SIZE))
    assert sizes == [64, 16] and pts.shape == (80, 2)
    small = torch.tensor([[10.0, 10.0, 22.0, 20.0]])
    big = torch.tensor([[0.0, 0.0, 64.0, 60.0]])
    t_small = assign_fcos_targets(small, torch.tensor([1]), pts, strides, ranges)
    t_big = assign_fcos_targets(big, torch.tensor([1]), pts, strides, ranges)
    assert set(strides[t_small.matched >= 0].tolist()) == {8.0}
    assert set(strides[t_big.matched >= 0].tolist()) == {16.0}


def test_empty_images_and_bad_input():
    model = FCOS(C)
    pts, strides, ranges, _ = model.points((SIZE, SIZE))
    t = assign_fcos_targets(
        torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), pts, strides, ranges
    )
    assert bool((t.matched == BACKGROUND).all()) and float(t.centerness.abs().sum()) == 0
    enc = encode_fcos_targets(
        [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}],
        pts,
        strides,
        ranges,
        C,
    )
    assert enc.labels.shape == (1, 80) and int(enc.labels.sum()) == 0
    with pytest.raises(ValueError):
        assign_fcos_targets(torch.tensor([[5.0, 5, 1, 1]]), torch.tensor([1]), pts, strides, ranges)
    with pytest.raises(ValueError):
        assign_fcos_targets(torch.tensor([[1.0, 1, 5, 5]]), torch.tensor([0]), pts, strides, ranges)
    with pytest.raises(ValueError):
        assign_fcos_targets(torch.zeros(0, 4), torch.zeros(0), pts, strides, ranges[:5])
    with pytest.raises(ValueError):
        assign_fcos_targets(
            torch.zeros(0, 4), torch.zeros(0), pts, strides, ranges, center_radius=0
        )
    with pytest.raises(ValueError):
        encode_fcos_targets(
            [{"boxes": torch.tensor([[1.0, 1, 5, 5]]), "labels": torch.tensor([9])}],
            pts,
            strides,
            ranges,
            C,
        )
    # the model: an empty image gives a finite loss with no box or centre-ness part
    model.train()
    x = torch.rand(2, 3, SIZE, SIZE)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    terms = model(x, [empty, empty])
    assert set(terms) == set(LOSS_TERMS)
    values = {k: float(v.detach()) for k, v in terms.items()}
    assert values["bbox_regression"] == 0 and values["bbox_ctrness"] == 0
    assert math.isfinite(values["classification"]) and values["classification"] > 0
    sum(terms.values()).backward()
    model.eval()
    with torch.no_grad():
        out = model(x[:1])[0]
    assert out["boxes"].shape[1] == 4 and len(out["boxes"]) == len(out["scores"]) == len(
        out["labels"]
    )


# ------------------------------------------------------------------ centre-ness and GIoU


def test_centerness_and_giou():
    ltrb = torch.tensor([[5.0, 5, 5, 5], [1.0, 4, 3, 4], [0.0, 2, 4, 2]])
    torch.testing.assert_close(
        fcos_centerness_target(ltrb), torch.tensor([1.0, math.sqrt(1 / 3), 0.0])
    )
    g = torch.Generator().manual_seed(0)
    a = torch.rand(50, 2, generator=g) * 40
    b = torch.rand(50, 2, generator=g) * 40
    boxes1 = torch.cat([a, a + 1 + torch.rand(50, 2, generator=g) * 20], dim=1)
    boxes2 = torch.cat([b, b + 1 + torch.rand(50, 2, generator=g) * 20], dim=1)
    torch.testing.assert_close(giou_loss(boxes1, boxes2), generalized_box_iou_loss(boxes1, boxes2))
    torch.testing.assert_close(
        giou_loss(boxes1, boxes2, "sum"), generalized_box_iou_loss(boxes1, boxes2, reduction="sum")
    )
    assert float(giou_loss(boxes1[:1], boxes1[:1])) == pytest.approx(0.0, abs=1e-6)
    assert giou_loss(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0,)
    with pytest.raises(ValueError):
        giou_loss(boxes1, boxes2[:3])
    with pytest.raises(ValueError):
        giou_loss(boxes1, boxes2, "max")


# ------------------------------------------------------------------ loss, head, decoding


def test_loss_equals_torchvision():
    tv, ours = _twins()
    features = [torch.zeros(1, 64, 8, 8), torch.zeros(1, 64, 4, 4)]
    anchors = _tv_anchors(tv, features)
    targets = _random_targets(4, seed=1)
    targets.append({"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)})
    g = torch.Generator().manual_seed(2)
    n, L = len(targets), 80
    logits = torch.randn(n, L, C, generator=g)
    reg = torch.rand(n, L, 4, generator=g) * 3
    ctr = torch.randn(n, L, generator=g)
    pts, strides, ranges, sizes = ours.points((SIZE, SIZE))
    enc = encode_fcos_targets(targets, pts, strides, ranges, C)
    terms = fcos_loss(logits, reg, ctr, enc, pts, strides)
    assert tuple(terms) == LOSS_TERMS
    head_outputs = {
        "cls_logits": torch.cat([torch.full((n, L, 1), -1e4), logits], dim=2),
        "bbox_regression": reg,
        "bbox_ctrness": ctr[..., None],
    }
    theirs = tv.compute_loss(targets, head_outputs, [anchors] * n, sizes)
    for k in LOSS_TERMS:
        torch.testing.assert_close(terms[k], theirs[k], rtol=1e-4, atol=1e-5)
    assert "bbox_ctrness" not in fcos_loss(
        logits, reg, ctr, enc, pts, strides, use_centerness=False
    )
    with pytest.raises(ValueError):
        fcos_loss(logits, reg[:, :5], ctr, enc, pts, strides)
    with pytest.raises(ValueError):
        fcos_loss(logits, reg, ctr, enc._replace(labels=enc.labels[:, :5]), pts, strides)
    with pytest.raises(ValueError):
        fcos_loss(logits, reg, ctr, (1, 2), pts, strides)


def test_model_equals_torchvision():
    tv, ours = _twins()
    x = torch.rand(3, 3, SIZE, SIZE)
    normalised, _ = tv.transform(list(x))
    with torch.no_grad():
        head = tv.head(list(tv.backbone(normalised.tensors).values()))
        cls, reg, ctr = ours.raw(normalised.tensors)
        torch.testing.assert_close(cls, head["cls_logits"][..., 1:])
        torch.testing.assert_close(reg, head["bbox_regression"])
        torch.testing.assert_close(ctr, head["bbox_ctrness"][..., 0])
    # the decoding, on head outputs whose scores have no ties
    anchors = _tv_anchors(tv, [torch.zeros(1, 64, 8, 8), torch.zeros(1, 64, 4, 4)])
    g = torch.Generator().manual_seed(5)
    n, sizes = 3, [64, 16]
    logits = torch.randn(n, 80, C, generator=g) * 2
    reg = torch.rand(n, 80, 4, generator=g) * 2
    ctr = torch.randn(n, 80, generator=g)
    split = {
        "cls_logits": list(torch.cat([torch.full((n, 80, 1), -1e4), logits], 2).split(sizes, 1)),
        "bbox_regression": list(reg.split(sizes, 1)),
        "bbox_ctrness": list(ctr[..., None].split(sizes, 1)),
    }
    theirs = tv.postprocess_detections(split, [list(anchors.split(sizes))] * n, [(SIZE, SIZE)] * n)
    pts, strides, _, _ = ours.points((SIZE, SIZE))
    mine = fcos_postprocess(
        logits, reg, ctr, pts, strides, sizes, (SIZE, SIZE), score_threshold=0.05
    )
    for a, b in zip(mine, theirs, strict=True):
        assert len(a["boxes"]) == len(b["boxes"]) > 10
        torch.testing.assert_close(a["boxes"], b["boxes"])
        torch.testing.assert_close(a["scores"], b["scores"])
        torch.testing.assert_close(a["labels"], b["labels"])


def test_postprocess_without_centerness_and_bad_input():
    pts, strides = fcos_points([(2, 2)], [8])
    logits = torch.full((1, 4, 2), -10.0)
    logits[0, 1, 1] = 3.0  # location (12, 4), class 2
    reg = torch.ones(1, 4, 4)
    ctr = torch.zeros(1, 4)
    out = fcos_postprocess(logits, reg, ctr, pts, strides, [4], (16, 16), use_centerness=False)[0]
    assert out["labels"].tolist() == [2]
    torch.testing.assert_close(out["scores"], torch.sigmoid(torch.tensor([3.0])))
    torch.testing.assert_close(out["boxes"], torch.tensor([[4.0, 0.0, 16.0, 12.0]]))
    with_ctr = fcos_postprocess(logits, reg, ctr, pts, strides, [4], (16, 16))[0]
    torch.testing.assert_close(
        with_ctr["scores"], torch.sqrt(torch.sigmoid(torch.tensor([3.0])) * 0.5)
    )
    with pytest.raises(ValueError):
        fcos_postprocess(logits, reg, ctr, pts, strides, [3], (16, 16))
    with pytest.raises(ValueError):
        fcos_postprocess(logits, reg, ctr[:, :2], pts, strides, [4], (16, 16))
    with pytest.raises(ValueError):
        fcos_postprocess(logits, reg, ctr, pts, strides, [4], (16, 16), score_threshold=2)


def test_head_shared_across_levels_and_model_checks():
    head = FCOSHead(64, C)
    a, b = torch.rand(2, 64, 8, 8), torch.rand(2, 64, 4, 4)
    cls, reg, ctr = head([a, b])
    assert cls.shape == (2, 80, C) and reg.shape == (2, 80, 4) and ctr.shape == (2, 80)
    assert bool((reg >= 0).all())
    cls_b, _, _ = head([b])  # the same weights on any level
    torch.testing.assert_close(cls[:, 64:], cls_b)
    torch.testing.assert_close(torch.sigmoid(cls).mean(), torch.tensor(0.01), atol=2e-3, rtol=0)
    with pytest.raises(ValueError):
        FCOSHead(48, C)
    with pytest.raises(ValueError):
        FCOSHead(64, C, prior=1.0)
    with pytest.raises(ValueError):
        FCOS(C, backbone=VGGBackbone((16, 32)))
    with pytest.raises(ValueError):
        FCOS(C, size_ranges=((0, 16),))
    with pytest.raises(ValueError):
        FCOS(C, size_ranges=((16, 0), (16, math.inf)))
    with pytest.raises(ValueError):
        FCOS(C, center_radius=-1)
    with pytest.raises(ValueError):
        FCOS(C).train()(torch.rand(1, 3, SIZE, SIZE))
    # three levels fall back to the paper's rule
    three = FCOS(C, backbone=FPNBackbone(levels=(1, 2, 3)))
    assert three.size_ranges == fcos_size_ranges([4, 8, 16])


def test_custom_centerness_target_and_overfit_step():
    torch.manual_seed(0)
    model = FCOS(C, centerness_target=lambda ltrb: torch.full((len(ltrb),), 0.5))
    targets = _random_targets(2, seed=4)
    enc = model.encode(targets, (SIZE, SIZE))
    assert isinstance(enc, FCOSTargets)
    pos = enc.labels > 0
    assert bool(pos.any()) and bool((enc.centerness[pos] == 0.5).all())
    model = FCOS(C).train()
    x = torch.rand(2, 3, SIZE, SIZE)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        loss = sum(model(x, targets).values())
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first
