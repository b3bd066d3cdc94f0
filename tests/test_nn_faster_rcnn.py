"""vizlib.nn.faster_rcnn: every piece of Faster R-CNN checked against its counterpart in
torchvision.models.detection (same weights, same seed, same numbers), then the whole model
against torchvision's FasterRCNN with copied weights, and the model through vizlib.train.fit
and vizlib.evaluate.evaluate_detection, images without objects included."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection import rpn as tv_rpn
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss
from torchvision.ops import MultiScaleRoIAlign

from vizlib.anchors import anchors_for_image
from vizlib.boxes import box_iou
from vizlib.nn.backbone import VGGBackbone
from vizlib.nn.faster_rcnn import (
    LOSS_NAMES,
    BoxHead,
    BoxPredictor,
    FasterRCNN,
    RegionProposalNetwork,
    RPNHead,
    fast_rcnn_loss,
    flatten_rpn_outputs,
    multiscale_roi_align,
    postprocess_detections,
    propose,
    roi_head_targets,
    rpn_anchors,
    rpn_loss,
    rpn_targets,
)
from vizlib.nn.fpn import FPNBackbone

SIZE = (64, 64)


def random_boxes(n: int, g: torch.Generator, image: float = 64.0, small: float = 4.0):
    xy = torch.rand(n, 2, generator=g) * (image - 20)
    wh = small + torch.rand(n, 2, generator=g) * 20
    return torch.cat([xy, (xy + wh).clamp(max=image)], dim=1)


def tiny_model(use_fpn: bool = True, **kwargs) -> FasterRCNN:
    backbone = FPNBackbone(
        VGGBackbone((4, 8, 8, 8), convs_per_stage=1), (1, 2, 3), out_channels=8, use_fpn=use_fpn
    )
    return FasterRCNN(5, 64, backbone=backbone, box_head_width=16, **kwargs)


def empty_target():
    return {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}


def scene_targets():
    return [
        {
            "boxes": torch.tensor([[10.0, 12.0, 30.0, 40.0], [40.0, 5.0, 52.0, 17.0]]),
            "labels": torch.tensor([2, 5]),
        },
        empty_target(),
    ]


# -- the RPN's pieces ------------------------------------------------------------------------


def test_rpn_head_and_flattening_equal_torchvisions():
    torch.manual_seed(0)
    ours = RPNHead(8, 3)
    theirs = tv_rpn.RPNHead(8, 3)
    with torch.no_grad():
        for o, t in [
            (ours.conv, theirs.conv[0][0]),
            (ours.objectness, theirs.cls_logits),
            (ours.deltas, theirs.bbox_pred),
        ]:
            t.weight.copy_(o.weight)
            t.bias.copy_(torch.randn_like(t.bias))
            o.bias.copy_(t.bias)
    features = [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4)]
    objectness, deltas = ours(features)
    assert [tuple(o.shape) for o in objectness] == [(2, 3, 8, 8), (2, 3, 4, 4)]
    assert [tuple(d.shape) for d in deltas] == [(2, 12, 8, 8), (2, 12, 4, 4)]
    flat_o, flat_d = flatten_rpn_outputs(objectness, deltas)
    assert flat_o.shape == (2, 240) and flat_d.shape == (2, 240, 4)
    want_o, want_d = tv_rpn.concat_box_prediction_layers(*theirs(features))
    torch.testing.assert_close(flat_o.reshape(-1, 1), want_o)
    torch.testing.assert_close(flat_d.reshape(-1, 4), want_d)
    # anchor a of location (i, j) is row (i * W + j) * A + a, its deltas channels 4a..4a+3
    assert flat_o[1, (2 * 8 + 5) * 3 + 1] == objectness[0][1, 1, 2, 5]
    assert torch.equal(flat_d[1, (2 * 8 + 5) * 3 + 1], deltas[0][1, 4:8, 2, 5])
    with pytest.raises(ValueError, match="4A"):
        flatten_rpn_outputs(objectness, [d[:, :4] for d in deltas])


def test_rpn_anchors_equal_torchvisions_anchor_generator():
    # ratio 1 and even sizes: torchvision's rounding to whole pixels changes nothing
    anchors, counts = rpn_anchors([(16, 16), (8, 8)], [4, 8], [(8, 16), (16, 32)], (1.0,))
    generator = AnchorGenerator(((8, 16), (16, 32)), ((1.0,), (1.0,)))
    images = ImageList(torch.zeros(1, 3, 64, 64), [(64, 64)])
    want = generator(images, [torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 8, 8)])[0]
    assert counts == [512, 128]
    torch.testing.assert_close(anchors, want)
    # other ratios: the same up to torchvision's rounding
    ours, _ = rpn_anchors([(16, 16)], [4], [(8, 16)], (0.5, 1.0, 2.0))
    rounded = anchors_for_image(SIZE, [(16, 16)], [(8, 16)], (0.5, 1.0, 2.0), round_to_int=True)
    assert (ours - rounded).abs().max() <= 0.5
    with pytest.raises(ValueError, match="sizes"):
        rpn_anchors([(16, 16)], [4], [(8,), (16,)], (1.0,))


def test_rpn_targets_equal_torchvisions_assignment():
    g = torch.Generator().manual_seed(1)
    anchors, _ = rpn_anchors([(16, 16), (8, 8)], [4, 8], [(8, 16), (16, 32)], (0.5, 1.0, 2.0))
    rpn = tv_rpn.RegionProposalNetwork(None, None, 0.7, 0.3, 256, 0.5, {}, {}, 0.7)
    gts = [random_boxes(5, g), torch.zeros(0, 4)]
    want_labels, want_boxes = rpn.assign_targets_to_anchors(
        [anchors, anchors], [{"boxes": b} for b in gts]
    )
    for gt, wl, wb in zip(gts, want_labels, want_boxes, strict=True):
        labels, matched = rpn_targets(anchors, gt)
        assert torch.equal(labels, wl)
        positive = labels == 1
        assert torch.equal(matched[positive], wb[positive])
        assert not bool(matched[~positive].any()), "no object: zeros"
    labels, _ = rpn_targets(anchors, gts[0])
    assert {-1.0, 0.0, 1.0} == set(labels.tolist())
    # every object has a positive anchor, however bad its best IoU
    iou = box_iou(gts[0], anchors)
    assert bool((iou[:, labels == 1].max(dim=1).values > 0).all())
    empty_labels, empty_boxes = rpn_targets(anchors, torch.zeros(0, 4))
    assert not bool(empty_labels.any()) and empty_boxes.shape == anchors.shape
    with pytest.raises(ValueError, match="gt_boxes"):
        rpn_targets(anchors, torch.zeros(3))


def test_rpn_loss_equals_torchvisions_with_the_same_sample():
    g = torch.Generator().manual_seed(2)
    anchors, _ = rpn_anchors([(8, 8)], [8], [(16, 32)], (0.5, 1.0, 2.0))
    k = len(anchors)
    gts = [random_boxes(3, g), torch.zeros(0, 4), random_boxes(1, g)]
    targets = [rpn_targets(anchors, b) for b in gts]
    labels = torch.stack([t[0] for t in targets])
    matched = torch.stack([t[1] for t in targets])
    objectness = torch.randn(3, k, generator=g, requires_grad=True)
    deltas = torch.randn(3, k, 4, generator=g) * 0.3
    deltas.requires_grad_(True)

    torch.manual_seed(7)
    loss_obj, loss_box = rpn_loss(objectness, deltas, anchors, labels, matched, 32, 0.5)
    rpn = tv_rpn.RegionProposalNetwork(None, None, 0.7, 0.3, 32, 0.5, {}, {}, 0.7)
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    # torchvision encodes every anchor (its background rows match box 0); only positives count
    tv_matched = [
        torch.where(lab[:, None] == 1, m, anchors) for lab, m in zip(labels, matched, strict=True)
    ]
    regression = [coder.encode_single(m, anchors) for m in tv_matched]
    torch.manual_seed(7)
    want_obj, want_box = rpn.compute_loss(
        objectness.reshape(-1, 1), deltas.reshape(-1, 4), list(labels), regression
    )
    torch.testing.assert_close(loss_obj, want_obj)
    torch.testing.assert_close(loss_box, want_box)
    (loss_obj + loss_box).backward()
    assert objectness.grad.count_nonzero() <= 3 * 32, "only the sampled anchors learn"
    # no object anywhere: no box loss, objectness still trained
    zero = torch.zeros(3, k)
    obj, box = rpn_loss(objectness, deltas, anchors, zero, torch.zeros(3, k, 4), 32, 0.5)
    assert float(box.detach()) == 0.0 and float(obj.detach()) > 0
    with pytest.raises(ValueError, match="labels"):
        rpn_loss(objectness, deltas, anchors, zero[:2], matched, 32, 0.5)


def test_propose_equals_torchvisions_filter_proposals():
    g = torch.Generator().manual_seed(3)
    anchors, counts = rpn_anchors(
        [(16, 16), (8, 8), (4, 4)], [4, 8, 16], [(8, 16), (16, 32), (32, 64)], (0.5, 1.0, 2.0)
    )
    n, k = 2, len(anchors)
    objectness = torch.randn(n, k, generator=g) * 3
    deltas = torch.randn(n, k, 4, generator=g) * 0.5
    rpn = tv_rpn.RegionProposalNetwork(
        None,
        None,
        0.7,
        0.3,
        256,
        0.5,
        {"training": 60, "testing": 60},
        {"training": 40, "testing": 40},
        0.7,
        score_thresh=0.2,
    )
    rpn.eval()
    decoded = BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(deltas.reshape(-1, 4), [anchors] * n)
    want_boxes, want_scores = rpn.filter_proposals(
        decoded.view(n, -1, 4), objectness.reshape(-1, 1), [SIZE] * n, counts
    )
    got = propose(objectness, deltas, anchors, counts, SIZE, 60, 40, 0.7, score_thresh=0.2)
    for (boxes, scores), wb, ws in zip(got, want_boxes, want_scores, strict=True):
        assert len(boxes) == len(wb) <= 40
        torch.testing.assert_close(boxes, wb)
        torch.testing.assert_close(scores, ws)
        assert bool((boxes >= 0).all() and (boxes <= 64).all()), "clipped to the image"
    # fewer anchors on a level than pre_nms_top_n: all of them compete
    few = propose(objectness, deltas, anchors, counts, SIZE, 5000, 5000, 1.0)
    assert len(few[0][0]) > 1000
    with pytest.raises(ValueError, match="num_anchors_per_level"):
        propose(objectness, deltas, anchors, [10, 20], SIZE, 60, 40)
    with pytest.raises(ValueError, match="nms_thresh"):
        propose(objectness, deltas, anchors, counts, SIZE, 60, 40, nms_thresh=1.5)


def test_region_proposal_network_module_proposals_and_losses():
    torch.manual_seed(0)
    rpn = RegionProposalNetwork(
        8, [8, 16], [(16, 32), (32, 64)], pre_nms_top_n=(50, 20), post_nms_top_n=(30, 10)
    )
    features = [torch.randn(2, 8, 8, 8), torch.randn(2, 8, 4, 4)]
    rpn.eval()
    proposals, scores, losses = rpn(features, SIZE)
    assert losses == {} and all(len(p) <= 10 for p in proposals)
    assert [len(s) for s in scores] == [len(p) for p in proposals]
    rpn.train()
    gt = [t["boxes"] for t in scene_targets()]
    proposals, _, losses = rpn(features, SIZE, gt)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg"}
    assert all(len(p) <= 30 for p in proposals)
    sum(losses.values()).backward()
    assert rpn.head.objectness.weight.grad is not None
    with pytest.raises(ValueError, match="same number of anchor sizes"):
        RegionProposalNetwork(8, [8, 16], [(16,), (32, 64)])
    with pytest.raises(ValueError, match="bg_iou"):
        RegionProposalNetwork(8, [8], [(16,)], fg_iou=0.3, bg_iou=0.7)


# -- the RoI heads' pieces -------------------------------------------------------------------


def test_roi_head_targets_equal_torchvisions_sample():
    g = torch.Generator().manual_seed(4)
    gts = [random_boxes(3, g), torch.zeros(0, 4), random_boxes(2, g)]
    labels = [torch.tensor([1, 4, 2]), torch.zeros(0, dtype=torch.int64), torch.tensor([3, 3])]
    # proposals: jittered copies of the objects (positives) and random boxes (negatives)
    proposals = []
    for gt in gts:
        near = gt.repeat(6, 1) + torch.randn(len(gt) * 6, 4, generator=g) * 3
        near = torch.cat([near[:, :2], torch.maximum(near[:, 2:], near[:, :2] + 1)], dim=1)
        proposals.append(torch.cat([near, random_boxes(40, g)]))
    torch.manual_seed(11)
    rois, roi_labels, targets = roi_head_targets(proposals, gts, labels, 0.5, 0.5, 24, 0.25)
    heads = RoIHeads(None, None, None, 0.5, 0.5, 24, 0.25, (10.0, 10.0, 5.0, 5.0), 0.05, 0.5, 100)
    torch.manual_seed(11)
    want_rois, _, want_labels, want_targets = heads.select_training_samples(
        [p.clone() for p in proposals],
        [{"boxes": b, "labels": lab} for b, lab in zip(gts, labels, strict=True)],
    )
    for r, lab, t, wr, wl, wt in zip(
        rois, roi_labels, targets, want_rois, want_labels, want_targets, strict=True
    ):
        assert torch.equal(r, wr) and torch.equal(lab, wl)
        fg = lab > 0
        torch.testing.assert_close(t[fg], wt[fg])
        assert not bool(t[~fg].any())
        assert len(r) <= 24 and int(fg.sum()) <= 6
    assert int((roi_labels[0] > 0).sum()) == 6, "the objects (and their copies) are positives"
    assert not bool((roi_labels[1] > 0).any()), "no object: every region is background"
    # the objects' own boxes are regions too: a perfect positive with target 0
    exact = torch.where((rois[2][:, None, :] == gts[2][None]).all(-1).any(-1))[0]
    assert len(exact) >= 1 and not bool(targets[2][exact].any())
    with pytest.raises(ValueError, match="gt_labels"):
        roi_head_targets(proposals, gts, labels[:2])


def test_multiscale_roi_align_equals_torchvisions():
    torch.manual_seed(5)
    g = torch.Generator().manual_seed(5)
    features = [torch.randn(2, 6, 16, 16), torch.randn(2, 6, 8, 8), torch.randn(2, 6, 4, 4)]
    proposals = [random_boxes(30, g), random_boxes(20, g, small=20.0)]
    named = {"p4": features[0], "p8": features[1], "p16": features[2]}
    for size, level in [(224, 4), (16, 3)]:
        pooler = MultiScaleRoIAlign(
            ["p4", "p8", "p16"], 7, 2, canonical_scale=size, canonical_level=level
        )
        want = pooler(named, proposals, [SIZE, SIZE])
        got = multiscale_roi_align(features, [4, 8, 16], proposals, 7, 2, size, level)
        assert got.shape == (50, 6, 7, 7)
        torch.testing.assert_close(got, want)
        # on a CPU it is the matrix form (vizlib.roi.roi_align_matrices): same gradient too
        leaves = [f.detach().requires_grad_(True) for f in features]
        grad = torch.randn(got.shape, generator=g)
        named_leaves = dict(zip(named, leaves, strict=True))
        # (a level no region reads gets no gradient: allow_unused, compared as zeros)
        want_grads = torch.autograd.grad(
            pooler(named_leaves, proposals, [SIZE] * 2), leaves, grad, allow_unused=True
        )
        got_grads = torch.autograd.grad(
            multiscale_roi_align(leaves, [4, 8, 16], proposals, 7, 2, size, level),
            leaves,
            grad,
            allow_unused=True,
        )
        for leaf, have, expected in zip(leaves, got_grads, want_grads, strict=True):
            zero = torch.zeros_like(leaf)
            torch.testing.assert_close(
                zero if have is None else have,
                zero if expected is None else expected,
                atol=1e-4,
                rtol=1e-4,
            )
    # one level: everything reads it
    single = MultiScaleRoIAlign(["p16"], (5, 3), 0)({"p16": features[2]}, proposals, [SIZE] * 2)
    torch.testing.assert_close(
        multiscale_roi_align(features[2:], [16], proposals, (5, 3), 0), single
    )
    with pytest.raises(ValueError, match="consecutive powers of 2"):
        multiscale_roi_align(features, [4, 8, 32], proposals)
    with pytest.raises(ValueError, match="one Tensor"):
        multiscale_roi_align(features, [4, 8, 16], proposals[:1])


def test_fast_rcnn_loss_equals_torchvisions():
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(20, 6, generator=g, requires_grad=True)
    regression = torch.randn(20, 24, generator=g, requires_grad=True)
    labels = [torch.randint(0, 6, (12,), generator=g), torch.zeros(8, dtype=torch.int64)]
    targets = [torch.randn(12, 4, generator=g), torch.randn(8, 4, generator=g)]
    cls, box = fast_rcnn_loss(logits, regression, labels, targets)
    want_cls, want_box = fastrcnn_loss(logits, regression, labels, targets)
    torch.testing.assert_close(cls, want_cls)
    torch.testing.assert_close(box, want_box)
    # tensors work as well as per-image lists
    cls2, box2 = fast_rcnn_loss(logits, regression, torch.cat(labels), torch.cat(targets))
    assert torch.equal(cls, cls2) and torch.equal(box, box2)
    # only the true class's deltas of the positives are trained
    box.backward()
    grad = regression.grad.reshape(20, 6, 4).abs().sum(-1)  # [R, C + 1]
    all_labels = torch.cat(labels)
    for r in range(20):
        wanted = {int(all_labels[r])} if all_labels[r] > 0 else set()
        assert set(torch.where(grad[r] > 0)[0].tolist()) == wanted
    empty = fast_rcnn_loss(
        torch.zeros(0, 6), torch.zeros(0, 24), torch.zeros(0, dtype=torch.int64), torch.zeros(0, 4)
    )
    assert [float(x) for x in empty] == [0.0, 0.0]
    with pytest.raises(ValueError, match="box_regression"):
        fast_rcnn_loss(logits, regression[:, :20], labels, targets)


def test_postprocess_detections_equal_torchvisions():
    g = torch.Generator().manual_seed(7)
    proposals = [random_boxes(30, g), random_boxes(25, g)]
    logits = torch.randn(55, 6, generator=g) * 3
    regression = torch.randn(55, 24, generator=g)
    heads = RoIHeads(None, None, None, 0.5, 0.5, 64, 0.25, (10.0, 10.0, 5.0, 5.0), 0.1, 0.5, 20)
    want_boxes, want_scores, want_labels = heads.postprocess_detections(
        logits, regression, proposals, [SIZE, SIZE]
    )
    got = postprocess_detections(logits, regression, proposals, SIZE, 0.1, 0.5, 20)
    for det, wb, ws, wl in zip(got, want_boxes, want_scores, want_labels, strict=True):
        assert 0 < len(det["boxes"]) <= 20
        torch.testing.assert_close(det["boxes"], wb)
        torch.testing.assert_close(det["scores"], ws)
        assert torch.equal(det["labels"], wl) and bool((det["labels"] >= 1).all())
    with pytest.raises(ValueError, match="rows"):
        postprocess_detections(logits[:50], regression[:50], proposals, SIZE)


def test_box_head_and_predictor_shapes():
    head, predictor = BoxHead(6 * 7 * 7, 32), BoxPredictor(32, 5)
    logits, deltas = predictor(head(torch.randn(10, 6, 7, 7)))
    assert logits.shape == (10, 6) and deltas.shape == (10, 24)


# -- the whole model ---------------------------------------------------------------------------


def test_faster_rcnn_train_and_eval_outputs_with_images_without_objects():
    torch.manual_seed(0)
    model = tiny_model()
    images = torch.rand(2, 3, 64, 64)
    model.train()
    losses = model(images, scene_targets())
    assert tuple(losses) == LOSS_NAMES
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.backbone.body.stages[0][0].weight.grad is not None
    # a batch with no object at all: no box losses, still finite
    nothing = model(list(images), [empty_target(), empty_target()])
    assert float(nothing["loss_rpn_box_reg"].detach()) == 0
    assert float(nothing["loss_box_reg"].detach()) == 0
    assert torch.isfinite(sum(nothing.values()))
    sum(nothing.values()).backward()
    model.eval()
    with torch.no_grad():
        dets = model(list(images))
    assert len(dets) == 2
    for d in dets:
        assert set(d) == {"boxes", "labels", "scores"}
        assert d["boxes"].shape[1] == 4 and len(d["boxes"]) <= 100
        assert d["labels"].dtype == torch.int64
        assert bool(((d["labels"] >= 1) & (d["labels"] <= 5)).all())
        assert bool((d["boxes"] >= 0).all() and (d["boxes"] <= 64).all())
        assert bool((d["scores"][:-1] >= d["scores"][1:]).all()), "best first"


def test_faster_rcnn_checks_its_input():
    model = tiny_model()
    model.train()
    images = torch.rand(2, 3, 64, 64)
    with pytest.raises(ValueError, match="targets"):
        model(images)
    with pytest.raises(ValueError, match="64x64"):
        model(torch.rand(2, 3, 32, 32), scene_targets())
    bad = scene_targets()
    bad[0]["labels"] = torch.tensor([0, 6])
    with pytest.raises(ValueError, match=r"\[1, 5\]"):
        model(images, bad)
    with pytest.raises(ValueError, match="one per image"):
        model(images, scene_targets()[:1])
    with pytest.raises(ValueError, match="backbone"):
        FasterRCNN(5, 64, backbone=VGGBackbone())


def test_faster_rcnn_without_fpn_uses_one_level_with_every_anchor_size():
    model = tiny_model(use_fpn=False)
    assert model.strides == [16] and not model.use_fpn
    assert model.rpn.anchor_sizes == [(8.0, 16.0, 32.0, 64.0)]
    assert model.rpn.head.num_anchors == 12
    pyramid = tiny_model()
    assert pyramid.rpn.anchor_sizes == [(8.0, 16.0), (16.0, 32.0), (32.0, 64.0)]
    model.train()
    losses = model(torch.rand(2, 3, 64, 64), scene_targets())
    assert tuple(losses) == LOSS_NAMES
    info = model.inspect(torch.rand(1, 3, 64, 64))
    assert info["num_anchors_per_level"] == [4 * 4 * 12]
    assert all(bool((k == 4).all()) for k in info["proposal_levels"])


def test_inspect_returns_every_intermediate():
    torch.manual_seed(0)
    model = tiny_model(canonical_size=16, canonical_level=3)
    model.train()
    targets = scene_targets()
    info = model.inspect(torch.rand(2, 3, 64, 64), targets)
    assert model.training, "the mode is restored"
    assert info["strides"] == [4, 8, 16]
    k = 16 * 16 * 6 + 8 * 8 * 6 + 4 * 4 * 6
    assert info["anchors"].shape == (k, 4) and info["num_anchors_per_level"] == [1536, 384, 96]
    assert info["anchor_levels"].tolist() == [2] * 1536 + [3] * 384 + [4] * 96
    assert info["objectness"].shape == (2, k) and bool((info["objectness"] <= 1).all())
    assert info["anchor_labels"].shape == (2, k)
    labels = info["anchor_labels"]
    assert int((labels[0] == 1).sum()) >= 2 and not bool((labels[1] != 0).any())
    pos = labels[0] == 1
    assert set(map(tuple, info["anchor_matched_boxes"][0][pos].tolist())) <= set(
        map(tuple, targets[0]["boxes"].tolist())
    )
    for props, scores, levels in zip(
        info["proposals"], info["proposal_scores"], info["proposal_levels"], strict=True
    ):
        assert props.shape[1] == 4 and len(props) == len(scores) == len(levels) <= 100
        assert bool(((levels >= 2) & (levels <= 4)).all())
    assert len(info["detections"]) == 2 and set(info["detections"][0]) == {
        "boxes",
        "labels",
        "scores",
    }
    # the sampled regions include the objects themselves, as positives of their class
    rois, roi_labels = info["rois"], info["roi_labels"]
    assert set(roi_labels[0].tolist()) >= {2, 5}
    assert not bool((roi_labels[1] > 0).any())
    # small canonical size: the 28-pixel object reads a coarser level than the 12-pixel one
    levels = model.roi_levels([targets[0]["boxes"]])[0]
    assert levels.tolist() == [3, 2]
    assert len(info["roi_levels"][0]) == len(rois[0])
    without = model.inspect(torch.rand(1, 3, 64, 64))
    assert "anchor_labels" not in without and "rois" not in without


def _copy_into_torchvision(ours: FasterRCNN, theirs) -> None:
    """Our weights, under torchvision's names."""
    renames = [
        ("backbone.neck.lateral.", "backbone.fpn.inner_blocks.", ".0."),
        ("backbone.neck.output.", "backbone.fpn.layer_blocks.", ".0."),
    ]
    state = {}
    for name, value in ours.state_dict().items():
        new = name
        for old, repl, inner in renames:
            if name.startswith(old):
                index, rest = name[len(old) :].split(".", 1)
                new = f"{repl}{index}{inner}{rest}"
        new = new.replace("rpn.head.conv.", "rpn.head.conv.0.0.")
        new = new.replace("rpn.head.objectness.", "rpn.head.cls_logits.")
        new = new.replace("rpn.head.deltas.", "rpn.head.bbox_pred.")
        new = new.replace("box_head.", "roi_heads.box_head.")
        new = new.replace("box_predictor.", "roi_heads.box_predictor.")
        state[new] = value
    theirs.load_state_dict(state, strict=True)


def test_the_whole_model_equals_torchvisions_faster_rcnn_with_the_same_weights():
    from vizlib.nn.torchvision_detection import PyramidBackbone, torchvision_faster_rcnn

    torch.manual_seed(0)
    # aspect ratio 1 and even anchor sizes: torchvision's rounded anchors are ours exactly
    ours = tiny_model(aspect_ratios=(1.0,))
    backbone = PyramidBackbone(VGGBackbone((4, 8, 8, 8), convs_per_stage=1), (1, 2, 3), 8)
    theirs = torchvision_faster_rcnn(
        6, 64, backbone, ratios=(1.0,), box_head_width=16, image_mean=[0.0] * 3, image_std=[1.0] * 3
    )
    _copy_into_torchvision(ours, theirs)
    for module in (ours, theirs):  # random heads, so that the comparison sees something
        module.eval()
    with torch.no_grad():
        for p in ours.rpn.head.parameters():
            p.normal_(0, 0.3)
        _copy_into_torchvision(ours, theirs)
    images = list(torch.rand(2, 3, 64, 64))
    with torch.no_grad():
        got, want = ours(images), theirs(images)
    for d, w in zip(got, want, strict=True):
        assert len(d["boxes"]) > 0
        torch.testing.assert_close(d["boxes"], w["boxes"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(d["scores"], w["scores"], atol=1e-5, rtol=1e-4)
        assert torch.equal(d["labels"], w["labels"])
    # train mode: the same sample (same seed) gives the same four losses
    ours.train()
    theirs.train()
    targets = scene_targets()
    torch.manual_seed(3)
    torch.empty(2).uniform_()  # torchvision's transform first draws a size for each image
    got = ours(images, targets)
    torch.manual_seed(3)
    want = theirs(images, targets)
    assert set(got) == set(want)
    for name in LOSS_NAMES:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-4)


def test_torchvision_faster_rcnn_builder_keeps_the_scene_size():
    from vizlib.nn.torchvision_detection import PyramidBackbone, torchvision_faster_rcnn

    torch.manual_seed(0)
    model = torchvision_faster_rcnn(6, 64)
    assert model.transform.min_size == (64,) and model.transform.max_size == 64
    assert model.backbone.strides == [4, 8, 16]
    sizes = model.rpn.anchor_generator.sizes
    assert sizes == ((8.0, 16.0), (16.0, 32.0), (32.0, 64.0))
    assert model.rpn._pre_nms_top_n == {"training": 300, "testing": 300}
    assert model.rpn._post_nms_top_n == {"training": 100, "testing": 100}
    assert model.rpn.fg_bg_sampler.batch_size_per_image == 128
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 64
    assert model.roi_heads.box_predictor.cls_score.out_features == 6
    small = torchvision_faster_rcnn(
        6, 64, PyramidBackbone(VGGBackbone((4, 8, 8, 8), convs_per_stage=1), (1, 2, 3), 8)
    )
    small.train()
    losses = small(list(torch.rand(2, 3, 64, 64)), scene_targets())
    assert set(losses) == set(LOSS_NAMES)
    small.eval()
    with torch.no_grad():
        dets = small(list(torch.rand(2, 3, 64, 64)))
    assert len(dets) == 2 and bool((dets[0]["boxes"] <= 64).all())
    with pytest.raises(ValueError, match="image_size"):
        torchvision_faster_rcnn(6, 0)


def test_fit_and_evaluate_detection_run_it_like_a_torchvision_detector(tmp_path):
    from vizlib.data import DetectionScenes, collate_detection
    from vizlib.evaluate import evaluate_detection
    from vizlib.train import fit

    torch.manual_seed(0)
    model = tiny_model()
    scenes = DetectionScenes(4, seed=1)
    loader = torch.utils.data.DataLoader(scenes, batch_size=2, collate_fn=collate_detection)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    history = fit(model, loader, opt, steps=2, progress="off", seed=0)
    assert set(LOSS_NAMES) <= set(history) and len(history["loss_box_reg"]) == 2
    result = evaluate_detection(model, DetectionScenes(3, seed=2), batch_size=2)
    assert 0.0 <= result.metrics["bbox/AP"] <= 1.0 and len(result.predictions) == 3


def test_a_tiny_model_overfits_two_scenes():
    torch.manual_seed(0)
    model = tiny_model()
    images = torch.rand(2, 3, 64, 64)
    images[0, :, 12:40, 10:30] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    images[0, :, 5:17, 40:52] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]
    targets = scene_targets()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(60):
        losses = model(images, targets)
        if first is None:
            first = {k: float(v.detach()) for k, v in losses.items()}
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
    last = {k: float(v.detach()) for k, v in model(images, targets).items()}
    for name in ("loss_objectness", "loss_classifier"):
        assert last[name] < first[name] / 3, f"{name}: {first[name]:.3f} -> {last[name]:.3f}"


def test_mixed_precision_keeps_the_box_arithmetic_in_float32():
    torch.manual_seed(0)
    model = tiny_model()
    model.train()
    images = torch.rand(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(images, scene_targets())
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        info = model.inspect(images)
        dets = model(images)
    assert info["proposals"][0].dtype == torch.float32
    assert dets[0]["boxes"].dtype == torch.float32
    # the proposals are not rounded to bfloat16's quarter pixels
    coords = torch.cat(info["proposals"]).flatten()
    assert not torch.equal(coords, coords.bfloat16().float())


def test_pyramid_roi_align_is_torchvisions_multiscale_roi_align():
    from vizlib.nn.torchvision_detection import PyramidRoIAlign

    g = torch.Generator().manual_seed(2)
    named = {
        "p4": torch.randn(2, 3, 16, 16, generator=g),
        "p8": torch.randn(2, 3, 8, 8, generator=g),
        "p16": torch.randn(2, 3, 4, 4, generator=g),
    }
    proposals = [random_boxes(25, g), random_boxes(15, g, small=20.0)]
    shapes = [(64, 64), (59, 64)]  # the tallest sets the strides, as in torchvision
    for names, size, level in [(["p4", "p8", "p16"], 64, 4), (["p8", "p16"], 224, 4)]:
        want = MultiScaleRoIAlign(names, (7, 5), 2, canonical_scale=size, canonical_level=level)
        got = PyramidRoIAlign(names, (7, 5), 2, canonical_scale=size, canonical_level=level)
        assert isinstance(got, MultiScaleRoIAlign)  # torchvision's detectors check the type
        torch.testing.assert_close(got(named, proposals, shapes), want(named, proposals, shapes))
    with pytest.raises(ValueError, match="lack"):
        PyramidRoIAlign(["p32"], 7, 2)(named, proposals, shapes)
    with pytest.raises(ValueError, match="featmap_names"):
        PyramidRoIAlign("p4", 7, 2)
    with pytest.raises(ValueError, match="image_shapes"):
        PyramidRoIAlign(["p4"], 7, 2)(named, proposals, [])


def test_multiscale_roi_align_takes_the_matrix_form_only_for_a_cpu_backward(monkeypatch):
    import vizlib.nn.faster_rcnn as module

    calls = []
    real = module.roi_align_matrices

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "roi_align_matrices", counted)
    g = torch.Generator().manual_seed(4)
    features = [torch.randn(1, 3, 16, 16, generator=g), torch.randn(1, 3, 8, 8, generator=g)]
    proposals = [random_boxes(10, g)]
    multiscale_roi_align(features, [4, 8], proposals, 7, 2, 64, 4)
    assert calls == [], "inference keeps torchvision's kernel"
    leaves = [f.requires_grad_(True) for f in features]
    multiscale_roi_align(leaves, [4, 8], proposals, 7, 2, 64, 4)
    assert len(calls) == 2, "training on a CPU reads each level with the matrix form"
    with torch.no_grad():
        multiscale_roi_align(leaves, [4, 8], proposals, 7, 2, 64, 4)
    assert len(calls) == 2
