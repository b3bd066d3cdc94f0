"""SSD: default boxes, matching, hard negative mining, loss, decoding and the model, checked
against torchvision's SSD (DefaultBoxGenerator, SSDMatcher, BoxCoder, compute_loss,
postprocess_detections), a hand-made hard-negative case, and empty images."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList

from vizlib.anchors import (
    BACKGROUND,
    default_boxes,
    hard_negative_mining,
    match_default_boxes,
    ssd_scales,
    ssd_wh_pairs,
)
from vizlib.boxes import box_iou, encode_deltas
from vizlib.nn.backbone import VGGBackbone
from vizlib.nn.ssd import (
    LOSS_TERMS,
    SSD,
    SSD_BOX_WEIGHTS,
    SSDTargets,
    boxes_per_location,
    encode_ssd_targets,
    ssd_loss,
    ssd_output_size,
    ssd_postprocess,
)
from vizlib.nn.torchvision_detection import torchvision_ssd


def _tv_boxes(aspect_ratios, feature_sizes, image_size, **kwargs):
    gen = DefaultBoxGenerator(aspect_ratios, **kwargs)
    images = ImageList(torch.zeros(1, 3, *image_size), [tuple(image_size)])
    return gen(images, [torch.zeros(1, 1, *f) for f in feature_sizes])[0]


def _random_boxes(n, size=64.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size * 0.7
    wh = 4 + torch.rand(n, 2, generator=g) * size * 0.4
    return torch.cat([xy, (xy + wh).clamp(max=size)], dim=1)


# ------------------------------------------------------------------ default boxes


def test_scale_rule():
    assert ssd_scales(6, 0.2, 0.9) == pytest.approx([0.2, 0.34, 0.48, 0.62, 0.76, 0.9])
    assert ssd_scales(3, 0.15, 0.55) == pytest.approx([0.15, 0.35, 0.55])
    assert ssd_scales(1, 0.3, 0.9) == [0.3]
    for bad in ((0, 0.2, 0.9), (3, 0.9, 0.2), (3, 0.0, 0.5), (3, 0.2, 1.5)):
        with pytest.raises(ValueError):
            ssd_scales(*bad)


@pytest.mark.parametrize(
    ("aspect_ratios", "feature_sizes", "image_size", "kwargs"),
    [
        (
            [[2.0], [2.0], [2.0]],
            [(8, 8), (4, 4), (2, 2)],
            (64, 64),
            dict(min_ratio=0.15, max_ratio=0.55),
        ),
        ([[2], [2, 3], [2, 3], [2]], [(10, 10), (5, 5), (3, 3), (1, 1)], (80, 80), {}),
        ([[2.0], [3.0]], [(6, 8), (3, 4)], (48, 64), dict(min_ratio=0.3, max_ratio=0.9)),
        ([[2.0], [2.0]], [(4, 4), (2, 2)], (64, 64), dict(scales=[0.3, 0.6, 1.2], clip=False)),
    ],
)
def test_default_boxes_equal_torchvision(aspect_ratios, feature_sizes, image_size, kwargs):
    want = _tv_boxes(aspect_ratios, feature_sizes, image_size, **kwargs)
    ours = default_boxes(
        image_size,
        feature_sizes,
        aspect_ratios,
        kwargs.get("min_ratio", 0.15),
        kwargs.get("max_ratio", 0.9),
        scales=kwargs.get("scales"),
        clip=kwargs.get("clip", True),
    )
    torch.testing.assert_close(ours, want)


def test_default_boxes_layout():
    boxes = default_boxes((64, 64), [(8, 8), (4, 4)], [[2.0], []], 0.25, 0.5)
    assert boxes.shape == (8 * 8 * 4 + 4 * 4 * 2, 4)
    first = boxes[: 8 * 8 * 4].view(8, 8, 4, 4)
    centre = (first[..., :2] + first[..., 2:]) / 2
    torch.testing.assert_close(centre[2, 5, 0], torch.tensor([44.0, 20.0]))  # row 2, column 5
    wh = first[0, 0, :, 2:] - first[0, 0, :, :2]
    s, s_prime = 0.25 * 64, math.sqrt(0.25 * 0.5) * 64
    want = torch.tensor(
        [[s, s], [s_prime, s_prime], [s * 2**0.5, s / 2**0.5], [s / 2**0.5, s * 2**0.5]]
    )
    torch.testing.assert_close(wh, want)
    pairs = ssd_wh_pairs([0.25, 0.5], [[2.0], []])
    assert [len(p) for p in pairs] == [4, 2] == boxes_per_location([[2.0], []])


def test_output_size_counts():
    # SSD300 on PASCAL VOC: 8,732 default boxes of 21 + 4 numbers
    assert ssd_output_size(
        [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)], [4, 6, 6, 6, 4, 4], 20
    ) == (8732, 25)
    assert ssd_output_size([(8, 8), (4, 4), (2, 2)], 4, 5) == (336, 10)
    with pytest.raises(ValueError, match="boxes_per_loc"):
        ssd_output_size([(8, 8)], [4, 4], 5)


def test_default_boxes_reject_bad_input():
    with pytest.raises(ValueError, match="aspect_ratios"):
        default_boxes((64, 64), [(8, 8), (4, 4)], [[2.0]])
    with pytest.raises(ValueError, match="feature_sizes"):
        default_boxes((64, 64), [], [])
    with pytest.raises(ValueError, match="scales"):
        default_boxes((64, 64), [(8, 8)], [[2.0]], scales=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        default_boxes((64, 64), [(8, 8)], [[-2.0]])


# ------------------------------------------------------------------ matching


@pytest.mark.parametrize("seed", range(4))
def test_matching_equals_torchvision_ssd_matcher(seed):
    boxes = default_boxes((64, 64), [(8, 8), (4, 4), (2, 2)], [[2.0]] * 3, 0.15, 0.55)
    gt = _random_boxes(1 + seed, seed=seed)
    want = det_utils.SSDMatcher(0.5)(box_iou(gt, boxes))
    torch.testing.assert_close(match_default_boxes(gt, boxes, 0.5), want)


def test_matching_rules_by_hand():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 20, 20], [30, 30, 40, 40], [50, 50, 60, 60]])
    gt = torch.tensor([[0.0, 0, 19, 19], [31, 31, 45, 45]])
    m = match_default_boxes(gt, boxes, 0.5)
    # box 1 (IoU 0.90) matches object 0; box 0 (IoU 0.28) does not; object 1's best box
    # (box 2, IoU 0.38 < 0.5) is claimed by the second rule anyway; box 3 touches nothing
    assert m.tolist() == [BACKGROUND, 0, 1, BACKGROUND]


def test_matching_empty_image_is_all_background():
    boxes = default_boxes((64, 64), [(4, 4)], [[2.0]], 0.3, 0.3)
    m = match_default_boxes(torch.zeros(0, 4), boxes)
    assert m.shape == (len(boxes),) and bool((m == BACKGROUND).all())
    with pytest.raises(ValueError, match="gt_boxes"):
        match_default_boxes(torch.tensor([[5.0, 5, 1, 1]]), boxes)
    with pytest.raises(ValueError, match="iou_threshold"):
        match_default_boxes(torch.zeros(0, 4), boxes, 1.5)


# ------------------------------------------------------------------ hard negatives


def _torchvision_mining(loss, positive, ratio=3.0):
    """The selection in torchvision's SSD.compute_loss, line for line."""
    num_negative = ratio * positive.sum(1, keepdim=True)
    negative_loss = loss.clone()
    negative_loss[positive] = -float("inf")
    _, idx = negative_loss.sort(1, descending=True)
    return idx.sort(1)[1] < num_negative


def test_hard_negatives_by_hand():
    loss = torch.tensor([[0.1, 0.9, 0.5, 0.3, 0.8, 0.2, 2.0, 0.05]])
    positive = torch.tensor([[False, False, False, False, False, False, True, False]])
    # one positive (index 6, the highest loss, never a negative): the 3 hardest negatives
    assert hard_negative_mining(loss, positive).nonzero()[:, 1].tolist() == [1, 2, 4]
    # ratio 1: only the hardest
    assert hard_negative_mining(loss, positive, 1.0).nonzero()[:, 1].tolist() == [1]
    # two positives, 6 negatives wanted, 6 available: all of them
    two = positive.clone()
    two[0, 0] = True
    assert hard_negative_mining(loss, two).nonzero()[:, 1].tolist() == [1, 2, 3, 4, 5, 7]
    # an empty image (no positive) gets no negative; its neighbour in the batch is unaffected
    batch = hard_negative_mining(
        loss.repeat(2, 1), torch.cat([positive, torch.zeros_like(positive)])
    )
    assert batch[0].nonzero().flatten().tolist() == [1, 2, 4] and not bool(batch[1].any())


@pytest.mark.parametrize("seed", range(3))
def test_hard_negatives_equal_torchvision(seed):
    g = torch.Generator().manual_seed(seed)
    loss = torch.rand(4, 300, generator=g)
    positive = torch.rand(4, 300, generator=g) < torch.tensor([[0.02], [0.1], [0.0], [0.3]])
    ours = hard_negative_mining(loss, positive)
    theirs = _torchvision_mining(loss, positive)
    # image 3 has fewer than 3 negatives per positive: torchvision's selection then runs
    # into the positives (sorted last, at -inf) and its loss counts them twice; vizlib's not
    torch.testing.assert_close(ours, theirs & ~positive)
    assert bool((theirs & positive)[3].any()) and not bool((theirs & positive)[:3].any())
    assert not bool((ours & positive).any())


def test_hard_negatives_reject_bad_input():
    with pytest.raises(ValueError, match="bool"):
        hard_negative_mining(torch.rand(2, 5), torch.rand(2, 5))
    with pytest.raises(ValueError, match="shape"):
        hard_negative_mining(torch.rand(2, 5), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        hard_negative_mining(torch.rand(5), torch.zeros(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="neg_pos_ratio"):
        hard_negative_mining(torch.rand(2, 5), torch.zeros(2, 5, dtype=torch.bool), -1)


# ------------------------------------------------------------------ targets, loss, decoding


def _scene_targets():
    return [
        {
            "boxes": torch.tensor([[4.0, 6.0, 20.0, 30.0], [30.0, 30.0, 60.0, 50.0]]),
            "labels": torch.tensor([2, 5]),
        },
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},  # an empty image
        {"boxes": torch.tensor([[10.0, 40.0, 22.0, 52.0]]), "labels": torch.tensor([1])},
    ]


def _tv_model(seed=0):
    torch.manual_seed(seed)
    return torchvision_ssd(6, 64, backbone=VGGBackbone((8, 8, 8, 8, 8), convs_per_stage=1))


def test_targets_encode_with_variances():
    boxes = default_boxes((64, 64), [(8, 8), (4, 4), (2, 2)], [[2.0]] * 3, 0.15, 0.55)
    t = encode_ssd_targets(_scene_targets(), boxes, 5)
    assert t.labels.shape == (3, len(boxes)) and t.deltas.shape == (3, len(boxes), 4)
    assert not bool((t.labels[1] > 0).any()) and bool((t.matched[1] == BACKGROUND).all())
    assert sorted(set(t.labels[0].tolist())) == [0, 2, 5]
    coder = det_utils.BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    pos = t.labels[0] > 0
    want = coder.encode_single(_scene_targets()[0]["boxes"][t.matched[0][pos]], boxes[pos])
    torch.testing.assert_close(t.deltas[0][pos], want)
    torch.testing.assert_close(
        want,
        encode_deltas(_scene_targets()[0]["boxes"][t.matched[0][pos]], boxes[pos], SSD_BOX_WEIGHTS),
    )
    with pytest.raises(ValueError, match="labels"):
        encode_ssd_targets(
            [{"boxes": torch.tensor([[0.0, 0, 5, 5]]), "labels": torch.tensor([7])}], boxes, 5
        )


def test_loss_equals_torchvision_compute_loss():
    model = _tv_model()
    targets = _scene_targets()
    images = torch.rand(3, 3, 64, 64)
    image_list = ImageList(images, [(64, 64)] * 3)
    features = list(model.backbone(images).values())
    head = model.head(features)
    anchors = model.anchor_generator(image_list, features)
    matched = [
        det_utils.SSDMatcher(0.5)(box_iou(t["boxes"], a))
        if len(t["boxes"])
        else torch.full((len(a),), -1, dtype=torch.int64)
        for t, a in zip(targets, anchors, strict=True)
    ]
    want = model.compute_loss(targets, head, anchors, matched)
    encoded = encode_ssd_targets(targets, anchors[0], 5)
    ours = ssd_loss(head["cls_logits"], head["bbox_regression"], encoded)
    assert tuple(ours) == LOSS_TERMS
    torch.testing.assert_close(ours["cls_positive"] + ours["cls_negative"], want["classification"])
    torch.testing.assert_close(ours["box"], want["bbox_regression"])


def test_loss_of_an_all_empty_batch_is_zero_and_finite():
    boxes = default_boxes((64, 64), [(4, 4)], [[2.0]], 0.3, 0.5)
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
    encoded = encode_ssd_targets(empty, boxes, 5)
    logits = torch.randn(2, len(boxes), 6, requires_grad=True)
    terms = ssd_loss(logits, torch.randn(2, len(boxes), 4), encoded)
    assert all(float(v.detach()) == 0.0 for v in terms.values())
    sum(terms.values()).backward()
    assert logits.grad is not None and bool(torch.isfinite(logits.grad).all())


def test_loss_uses_the_given_mining_and_checks_input():
    boxes = default_boxes((64, 64), [(4, 4)], [[2.0]], 0.3, 0.5)
    encoded = encode_ssd_targets(_scene_targets()[:1], boxes, 5)
    logits, deltas = torch.randn(1, len(boxes), 6), torch.zeros(1, len(boxes), 4)
    none = ssd_loss(logits, deltas, encoded, mining=lambda loss, pos, r: torch.zeros_like(pos))
    assert float(none["cls_negative"]) == 0.0
    every = ssd_loss(logits, deltas, encoded, mining=lambda loss, pos, r: ~pos)
    assert float(every["cls_negative"]) > float(ssd_loss(logits, deltas, encoded)["cls_negative"])
    with pytest.raises(ValueError, match="box_deltas"):
        ssd_loss(logits, deltas[:, :-1], encoded)
    with pytest.raises(ValueError, match="targets"):
        ssd_loss(
            logits, deltas, SSDTargets(encoded.labels[:, :-1], encoded.deltas, encoded.matched)
        )
    with pytest.raises(ValueError, match="mining"):
        ssd_loss(logits, deltas, encoded, mining=lambda loss, pos, r: pos[:, :1])


def test_postprocess_equals_torchvision():
    model = _tv_model()
    model.detections_per_img = 50
    g = torch.Generator().manual_seed(3)
    boxes = _tv_boxes(
        [[2.0]] * 3, [(8, 8), (4, 4), (2, 2)], (64, 64), min_ratio=0.15, max_ratio=0.55
    )
    logits = torch.randn(2, len(boxes), 6, generator=g) * 3
    deltas = torch.randn(2, len(boxes), 4, generator=g)
    want = model.postprocess_detections(
        {"cls_logits": logits, "bbox_regression": deltas}, [boxes, boxes], [(64, 64)] * 2
    )
    ours = ssd_postprocess(logits, deltas, boxes, (64, 64), 0.01, 0.45, 50, 400)
    for o, w in zip(ours, want, strict=True):
        for key in ("boxes", "scores", "labels"):
            torch.testing.assert_close(o[key], w[key])
    with pytest.raises(ValueError, match="boxes"):
        ssd_postprocess(logits, deltas, boxes[:-1], (64, 64))
    with pytest.raises(ValueError, match="score_threshold"):
        ssd_postprocess(logits, deltas, boxes, (64, 64), score_threshold=2.0)


# ------------------------------------------------------------------ the model


def test_model_shapes_train_and_eval_with_an_empty_image():
    torch.manual_seed(0)
    model = SSD(5, backbone=VGGBackbone((8, 8, 8, 8, 8), convs_per_stage=1))
    images = torch.rand(3, 3, 64, 64)
    logits, deltas = model.raw(images)
    d, k = ssd_output_size(model.feature_sizes((64, 64)), model.anchors_per_location, 5)
    assert logits.shape == (3, d, 6) and deltas.shape == (3, d, 4) and k == 10
    assert model.default_boxes((64, 64)).shape == (d, 4)
    terms = model.train()(list(images), _scene_targets())
    assert tuple(terms) == LOSS_TERMS and all(bool(torch.isfinite(v)) for v in terms.values())
    sum(terms.values()).backward()
    empty = [_scene_targets()[1]]
    assert all(float(v.detach()) == 0.0 for v in model(images[:1], empty).values())
    out = model.eval()(images)
    assert len(out) == 3 and all(set(o) == {"boxes", "scores", "labels"} for o in out)
    assert all(bool(((o["labels"] >= 1) & (o["labels"] <= 5)).all()) for o in out)
    with pytest.raises(ValueError, match="targets"):
        model.train()(images)


def test_model_matches_torchvision_ssd_with_the_same_weights():
    tv = _tv_model(1)
    ours = SSD(5, backbone=VGGBackbone((8, 8, 8, 8, 8), convs_per_stage=1))
    ours.backbone.load_state_dict(tv.backbone.body.state_dict())
    for k in range(3):
        ours.cls_heads[k].load_state_dict(tv.head.classification_head.module_list[k].state_dict())
        ours.box_heads[k].load_state_dict(tv.head.regression_head.module_list[k].state_dict())
    tv.eval(), ours.eval()
    images = torch.rand(2, 3, 64, 64)
    normalised, _ = tv.transform(list(images))
    head = tv.head(list(tv.backbone(normalised.tensors).values()))
    logits, deltas = ours.raw(normalised.tensors)
    torch.testing.assert_close(logits, head["cls_logits"])
    torch.testing.assert_close(deltas, head["bbox_regression"])
    torch.testing.assert_close(
        ours.default_boxes((64, 64)),
        tv.anchor_generator(
            normalised, [torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2)]
        )[0],
    )


def test_model_rejects_bad_settings():
    with pytest.raises(ValueError, match="levels"):
        SSD(5, levels=(3, 2, 4))
    with pytest.raises(ValueError, match="aspect_ratios"):
        SSD(5, aspect_ratios=((2.0,),))
    with pytest.raises(ValueError, match="num_classes"):
        SSD(0)
