"""RetinaNet: anchors, matching, head, focal loss, decoding and the model, checked against
torchvision's RetinaNet (AnchorGenerator, Matcher, RetinaNetHead, compute_loss,
postprocess_detections), the prior-probability bias, and empty images."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import RetinaNetHead as TVRetinaNetHead

from vizlib.anchors import BACKGROUND, IGNORE
from vizlib.boxes import box_iou
from vizlib.nn.backbone import VGGBackbone
from vizlib.nn.retinanet import (
    LOSS_TERMS,
    SCENE_ANCHOR_SCALES,
    RetinaNet,
    RetinaNetHead,
    RetinaNetTargets,
    encode_retinanet_targets,
    prior_bias,
    retinanet_anchor_sizes,
    retinanet_loss,
    retinanet_postprocess,
)
from vizlib.nn.torchvision_detection import (
    PyramidBackbone,
    load_torchvision_retinanet_weights,
    torchvision_retinanet,
)

SIZE = (64, 64)


def _small_backbone():
    return VGGBackbone((8, 16, 16, 16, 16), convs_per_stage=1)


def _model(**kwargs):
    torch.manual_seed(0)
    return RetinaNet(3, backbone=_small_backbone(), **{"fpn_channels": 16, **kwargs})


def _tv_model(**kwargs):
    torch.manual_seed(1)
    backbone = PyramidBackbone(_small_backbone(), levels=(2, 3, 4), out_channels=16)
    return torchvision_retinanet(4, 64, backbone=backbone, scales=SCENE_ANCHOR_SCALES, **kwargs)


def _targets():
    return [
        {
            "boxes": torch.tensor([[4.0, 6.0, 20.0, 18.0], [30.0, 30.0, 60.0, 50.0]]),
            "labels": torch.tensor([1, 3]),
        },
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},
        {"boxes": torch.tensor([[10.0, 40.0, 19.0, 48.0]]), "labels": torch.tensor([2])},
    ]


def _head_outputs(model, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = len(model.anchors(SIZE))
    return torch.randn(n, a, model.num_classes, generator=g) - 2, 0.3 * torch.randn(
        n, a, 4, generator=g
    )


def test_prior_bias():
    assert prior_bias(0.01) == pytest.approx(-math.log(99))
    assert prior_bias(0.5) == 0.0
    assert torch.sigmoid(torch.tensor(prior_bias(0.01))) == pytest.approx(0.01)
    for bad in (0.0, 1.0, -0.1, 2, "a", None):
        with pytest.raises(ValueError):
            prior_bias(bad)


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_anchor_sizes_and_anchors_equal_torchvision(offset):
    assert retinanet_anchor_sizes([8, 16], (1.0, 2.0)) == [(8.0, 16.0), (16.0, 32.0)]
    model = _model(anchor_offset=offset)
    anchors = model.anchors(SIZE)
    images = ImageList(torch.zeros(1, 3, *SIZE), [SIZE])
    feats = [torch.zeros(1, 1, *f) for f in model.feature_sizes(SIZE)]
    if offset == 0:
        gen = AnchorGenerator(tuple(model.anchor_sizes), (tuple(model.ratios),) * 3)
        torch.testing.assert_close(anchors, gen(images, feats)[0])
    # the builder's generator, its base anchors moved by offset strides
    gen = _tv_model(anchor_offset=offset).anchor_generator
    torch.testing.assert_close(anchors, gen(images, feats)[0])
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    assert float(centres[:9].mean()) == pytest.approx(offset * 8, abs=0.5)
    assert model.anchors_per_level(SIZE) == [8 * 8 * 9, 4 * 4 * 9, 2 * 2 * 9]
    for bad in ([], [0, 8], "8"):
        with pytest.raises(ValueError):
            retinanet_anchor_sizes(bad)


@pytest.mark.parametrize("groups", [None, 8])
def test_head_equals_torchvision_head_with_the_same_weights(groups):
    from functools import partial

    ours = RetinaNetHead(16, 9, 3, norm_groups=groups)
    norm = None if groups is None else partial(torch.nn.GroupNorm, groups)
    theirs = TVRetinaNetHead(16, 9, 3, norm_layer=norm)
    # the same names: torchvision's weights load as they are
    ours.load_state_dict(theirs.state_dict())
    feats = [torch.randn(2, 16, 8, 8), torch.randn(2, 16, 4, 4), torch.randn(2, 16, 2, 2)]
    logits, deltas = ours(feats)
    out = theirs(feats)
    torch.testing.assert_close(logits, out["cls_logits"])
    torch.testing.assert_close(deltas, out["bbox_regression"])
    assert logits.shape == (2, (64 + 16 + 4) * 9, 3)


def test_head_initialisation_and_prior():
    head = RetinaNetHead(16, 9, 3)
    bias = head.classification_head.cls_logits.bias
    torch.testing.assert_close(bias, torch.full_like(bias, prior_bias(0.01)))
    assert float(head.regression_head.bbox_reg.bias.detach().abs().max()) == 0.0
    w = head.classification_head.conv[0][0].weight.detach()
    assert 0.005 < float(w.std()) < 0.02
    flat = RetinaNetHead(16, 9, 3, prior_probability=None)
    assert float(flat.classification_head.cls_logits.bias.detach().abs().max()) == 0.0
    with torch.no_grad():
        logits, _ = head([torch.randn(1, 16, 4, 4)])
    assert float(torch.sigmoid(logits).mean()) == pytest.approx(0.01, rel=0.2)
    with pytest.raises(ValueError):
        head([torch.randn(16, 4, 4)])
    with pytest.raises(ValueError):
        RetinaNetHead(16, 0, 3)


def test_matching_equals_torchvision_matcher_and_targets():
    model = _model()
    anchors = model.anchors(SIZE)
    targets = _targets()
    enc = encode_retinanet_targets(targets, anchors, 3)
    matcher = det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=True)
    for i, t in enumerate(targets):
        if len(t["boxes"]):
            assert torch.equal(enc.matched[i], matcher(box_iou(t["boxes"], anchors)))
    assert bool((enc.matched[1] == BACKGROUND).all())  # the empty image
    assert bool((enc.labels[1] == 0).all()) and bool((enc.deltas[1] == 0).all())
    pos = enc.positive
    assert bool((enc.labels[pos] > 0).all()) and bool((enc.labels[~pos] == 0).all())
    assert int(pos[0].sum()) >= 2 and int(pos[2].sum()) >= 1  # every object has a positive
    assert bool((enc.matched == IGNORE).any())
    one_hot = enc.one_hot(3)
    assert one_hot.shape == (3, len(anchors), 3)
    assert torch.equal(one_hot.sum(-1), pos.float())


def test_loss_equals_torchvision_compute_loss_with_an_empty_image():
    model, tv = _model(), _tv_model()
    anchors = model.anchors(SIZE)
    targets = _targets()
    logits, deltas = _head_outputs(model)
    ours = retinanet_loss(logits, deltas, encode_retinanet_targets(targets, anchors, 3))
    assert set(ours) == set(LOSS_TERMS)
    # torchvision keeps a score for label 0, never a positive: set it to -100 (loss ~ 0)
    full = torch.cat([torch.full_like(logits[..., :1], -100.0), logits], dim=-1)
    theirs = tv.compute_loss(
        targets, {"cls_logits": full, "bbox_regression": deltas}, [anchors] * 3
    )
    torch.testing.assert_close(
        ours["cls_positive"] + ours["cls_negative"], theirs["classification"]
    )
    torch.testing.assert_close(ours["box"], theirs["bbox_regression"])


def test_loss_of_empty_images_is_the_background_focal_loss():
    model = _model()
    anchors = model.anchors(SIZE)
    logits, deltas = _head_outputs(model, n=2)
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}] * 2
    terms = retinanet_loss(logits, deltas, encode_retinanet_targets(empty, anchors, 3))
    assert float(terms["cls_positive"]) == 0.0 and float(terms["box"]) == 0.0
    from torchvision.ops import sigmoid_focal_loss as tv_focal

    expected = tv_focal(logits, torch.zeros_like(logits), reduction="sum") / 2
    torch.testing.assert_close(terms["cls_negative"], expected)
    assert math.isfinite(float(terms["cls_negative"])) and float(terms["cls_negative"]) > 0
    # no image at all
    none = encode_retinanet_targets([], anchors, 3)
    z = retinanet_loss(logits[:0], deltas[:0], none)
    assert all(float(v) == 0.0 for v in z.values())


def test_loss_with_a_custom_focal_and_bad_input():
    model = _model()
    anchors = model.anchors(SIZE)
    logits, deltas = _head_outputs(model)
    enc = encode_retinanet_targets(_targets(), anchors, 3)
    bce = retinanet_loss(
        logits,
        deltas,
        enc,
        focal=lambda x, t: torch.nn.functional.binary_cross_entropy_with_logits(
            x, t, reduction="none"
        ),
    )
    same = retinanet_loss(logits, deltas, enc, alpha=None, gamma=0.0)
    torch.testing.assert_close(bce["cls_negative"], same["cls_negative"])
    with pytest.raises(ValueError):
        retinanet_loss(logits, deltas, enc, focal=lambda x, t: x.sum())
    with pytest.raises(ValueError):
        retinanet_loss(logits, deltas, enc, focal="focal")
    with pytest.raises(ValueError):
        retinanet_loss(logits, deltas[..., :3], enc)
    with pytest.raises(ValueError):
        retinanet_loss(logits[:, :10], deltas[:, :10], enc)
    with pytest.raises(ValueError):
        retinanet_loss(logits, deltas, (enc.labels, enc.deltas))
    with pytest.raises(ValueError):
        encode_retinanet_targets(_targets(), anchors[:, :3], 3)
    with pytest.raises(ValueError):
        encode_retinanet_targets(
            [{"boxes": torch.zeros(1, 4), "labels": torch.tensor([7])}], anchors, 3
        )
    with pytest.raises(ValueError):
        encode_retinanet_targets({"boxes": torch.zeros(0, 4)}, anchors, 3)


def test_postprocess_equals_torchvision():
    model, tv = _model(), _tv_model(detections_per_img=300, topk_candidates=50)
    anchors = model.anchors(SIZE)
    counts = model.anchors_per_level(SIZE)
    logits, deltas = _head_outputs(model, seed=3)
    ours = retinanet_postprocess(
        logits, deltas, anchors, counts, SIZE, max_detections=300, topk_candidates=50
    )
    full = torch.cat([torch.full_like(logits[..., :1], -100.0), logits], dim=-1)
    theirs = tv.postprocess_detections(
        {
            "cls_logits": list(full.split(counts, 1)),
            "bbox_regression": list(deltas.split(counts, 1)),
        },
        [list(anchors.split(counts))] * 3,
        [SIZE] * 3,
    )
    for a, b in zip(ours, theirs, strict=True):
        assert len(a["boxes"]) > 0
        torch.testing.assert_close(a["boxes"], b["boxes"])
        torch.testing.assert_close(a["scores"], b["scores"])
        assert torch.equal(a["labels"], b["labels"])
    nothing = retinanet_postprocess(logits - 100, deltas, anchors, counts, SIZE)
    assert all(len(d["boxes"]) == 0 and d["boxes"].shape == (0, 4) for d in nothing)
    for kwargs in ({"score_threshold": 1.5}, {"max_detections": 0}):
        with pytest.raises(ValueError):
            retinanet_postprocess(logits, deltas, anchors, counts, SIZE, **kwargs)
    with pytest.raises(ValueError):
        retinanet_postprocess(logits, deltas, anchors, [1, 2], SIZE)
    with pytest.raises(ValueError):
        retinanet_postprocess(logits, deltas, anchors[:5], counts, SIZE)


def test_model_train_and_eval_with_an_empty_image():
    model = _model()
    images = torch.rand(3, 3, *SIZE)
    terms = model(images, _targets())
    assert set(terms) == set(LOSS_TERMS) and all(
        math.isfinite(float(v.detach())) for v in terms.values()
    )
    sum(terms.values()).backward()
    assert model.head.classification_head.cls_logits.weight.grad is not None
    model.eval()
    with torch.no_grad():
        out = model(images)
        empty = model(torch.zeros(1, 3, *SIZE))
    assert len(out) == 3 and all(set(d) == {"boxes", "scores", "labels"} for d in out)
    assert empty[0]["boxes"].shape[1] == 4
    # the prior: an untrained model scores about 0.01 everywhere, under the 0.05 threshold
    assert len(empty[0]["boxes"]) == 0
    with pytest.raises(ValueError):
        model.train()(images)


@pytest.mark.parametrize("groups", [None, 4])
def test_model_matches_torchvision_retinanet_with_the_same_weights(groups):
    model, tv = _model(head_norm_groups=groups), _tv_model(head_norm_groups=groups)
    load_torchvision_retinanet_weights(model, tv)
    model.eval()
    tv.eval()
    x = torch.rand(2, 3, *SIZE)
    with torch.no_grad():
        head = tv.head(list(tv.backbone(x).values()))
        logits, deltas = model.raw(x)
    torch.testing.assert_close(logits, head["cls_logits"][..., 1:])
    torch.testing.assert_close(deltas, head["bbox_regression"])
    with pytest.raises(ValueError):
        load_torchvision_retinanet_weights(
            RetinaNet(5, backbone=_small_backbone(), fpn_channels=16), tv
        )
    with pytest.raises(ValueError):
        load_torchvision_retinanet_weights(model, torch.nn.Linear(2, 2))


def test_model_rejects_bad_settings():
    for kwargs in (
        {"levels": (2, 9)},
        {"fpn_channels": 0},
        {"scales": ()},
        {"bg_iou_thresh": 0.6},
        {"gamma": -1},
        {"prior_probability": 1.0},
        {"focal": 3},
        {"score_threshold": 2.0},
        {"head_norm_groups": 5},
        {"anchor_offset": 1.0},
    ):
        with pytest.raises(ValueError):
            _model(**kwargs)
    with pytest.raises(ValueError):
        _tv_model(anchor_offset=-0.5)
    with pytest.raises(ValueError):
        RetinaNet(0)
    with pytest.raises(ValueError):
        RetinaNet(3, backbone=torch.nn.Linear(2, 2))


def test_targets_type():
    t = RetinaNetTargets(
        torch.tensor([[0, 2]]), torch.tensor([[BACKGROUND, 0]]), torch.zeros(1, 2, 4)
    )
    assert t.positive.tolist() == [[False, True]] and t.negative.tolist() == [[True, False]]
    assert t.one_hot(2).tolist() == [[[0.0, 0.0], [0.0, 1.0]]]


def test_focal_loss_widget_takes_a_models_real_scores():
    from vizlib.widgets.focal_loss import FocalLossWidget, check_batch, loss_shares

    logits = torch.tensor([-6.0, -5.0, 0.3, 1.0])
    targets = torch.tensor([0.0, 0.0, 0.0, 1.0])
    groups = torch.tensor([0, 0, 1, 2])
    shares, total = loss_shares(2.0, None, (logits, targets, groups))
    assert sum(shares) == pytest.approx(1.0) and total > 0
    fig = FocalLossWidget(batch=(logits, targets, groups)).render(gamma=2.0)
    assert any("the 2 easy negatives" in (a.text or "") for a in fig.layout.annotations)
    for bad in ((logits, targets), (logits, targets[:2], groups), (logits, targets, groups + 3)):
        with pytest.raises(ValueError):
            check_batch(bad)
