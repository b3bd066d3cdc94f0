"""vizlib.nn.rcnn: R-CNN and Fast R-CNN on external proposals. Their loss is torchvision's
fastrcnn_loss, their box coding torchvision's BoxCoder, their crops what the paper warps,
and images with no object go through every step: sampling, loss, training, evaluation."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.roi_heads import fastrcnn_loss
from torchvision.ops import roi_pool

from vizlib.boxes import decode_deltas, encode_deltas
from vizlib.data import DetectionScenes, collate_detection
from vizlib.evaluate import evaluate_detection
from vizlib.nn.rcnn import RCNN, FastRCNN, expand_boxes
from vizlib.proposals import CachedProposals, selective_search
from vizlib.train import fit

MODELS = {
    "rcnn": lambda **kw: RCNN(5, warp_size=16, channels=(8, 16), width=32, **kw),
    "fast": lambda **kw: FastRCNN(5, width=32, **kw),
}


def empty_target():
    return {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}


def scenes(n=4, seed=3):
    images, targets = collate_detection([DetectionScenes(n, seed=seed)[i] for i in range(n)])
    return [im.as_subclass(torch.Tensor) for im in images], [
        {"boxes": t["boxes"].as_subclass(torch.Tensor), "labels": t["labels"]} for t in targets
    ]


def fixed_proposals(image):
    """Four boxes for any image: cheap, deterministic."""
    return torch.tensor(
        [
            [0.0, 0.0, 32.0, 32.0],
            [10.0, 10.0, 40.0, 30.0],
            [30.0, 30.0, 64.0, 64.0],
            [5.0, 40.0, 25.0, 60.0],
        ]
    )


def test_box_coding_is_torchvisions_boxcoder_with_roi_weights():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(20, 2, generator=g) * 50
    props = torch.cat([xy, xy + 1 + torch.rand(20, 2, generator=g) * 30], dim=1)
    gt = props + torch.randn(20, 4, generator=g)
    gt[:, 2:] = torch.maximum(gt[:, 2:], gt[:, :2] + 1)
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    deltas = encode_deltas(gt, props, (10.0, 10.0, 5.0, 5.0))
    torch.testing.assert_close(deltas, coder.encode_single(gt, props))
    torch.testing.assert_close(
        decode_deltas(deltas, props, (10.0, 10.0, 5.0, 5.0)), gt, atol=1e-4, rtol=0
    )


def test_expand_boxes_leaves_the_paper_margin():
    grown = expand_boxes(torch.tensor([[10.0, 20.0, 30.0, 60.0]]), warp_size=32, context=4)
    # side * 32 / 24 around the same centre; 4 px of the 32 are margin on each side
    torch.testing.assert_close(
        grown, torch.tensor([[20 - 40 / 3, 40 - 80 / 3, 20 + 40 / 3, 40 + 80 / 3]])
    )
    torch.testing.assert_close(expand_boxes(grown[:0], 32, 4), torch.zeros(0, 4))
    with pytest.raises(ValueError, match="half"):
        expand_boxes(grown, 8, 4)


def test_rcnn_warp_of_a_ramp_is_the_ramp():
    # on a linear image bilinear sampling is exact: a box as wide as the warp is copied
    x = torch.arange(64.0).expand(3, 64, 64)
    model = RCNN(5, warp_size=16, context=0, channels=(8, 16))
    crop = model.warp(x[None], [torch.tensor([[20.0, 8.0, 36.0, 24.0]])])
    assert crop.shape == (1, 3, 16, 16)
    torch.testing.assert_close(crop[0, 0, 0, 1:-1], torch.arange(21.0, 35.0))


def test_fast_rcnn_pools_the_shared_map_at_its_stride():
    model = FastRCNN(5)
    feature = torch.randn(2, model.backbone.out_channels, 16, 16)
    boxes = [torch.tensor([[4.0, 4.0, 40.0, 28.0]]), torch.tensor([[0.0, 0.0, 64.0, 64.0]])]
    pooled = model.pool(feature, boxes)
    assert model.spatial_scale == 0.25 and pooled.shape == (2, 64, 7, 7)
    torch.testing.assert_close(pooled, roi_pool(feature, boxes, (7, 7), 0.25))


@pytest.mark.parametrize("name", MODELS)
def test_loss_is_torchvisions_fastrcnn_loss(name):
    torch.manual_seed(0)
    model = MODELS[name](proposer=fixed_proposals).train()
    images, targets = scenes()
    x = torch.stack(images)
    proposals = model.proposals_for(x, targets)
    torch.manual_seed(1)
    sample = model.sample_regions(proposals, targets)
    logits, deltas = model.score_regions(x, sample.regions)
    expected = fastrcnn_loss(logits, deltas, list(sample.labels), list(sample.targets))
    torch.manual_seed(1)  # the same sample again
    losses = model(images, targets)
    torch.testing.assert_close(losses["loss_classifier"], expected[0])
    torch.testing.assert_close(losses["loss_box_reg"], expected[1])
    counts = sample.counts()
    assert all(pos <= 16 and pos + neg <= 64 for pos, neg in counts)  # at most 1 in 4 positive
    assert sum(pos for pos, _ in counts) >= sum(len(t["boxes"]) for t in targets)  # gt added


def test_sampled_regions_get_the_class_of_their_object_and_deltas_to_it():
    model = MODELS["fast"]()
    gt = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    props = torch.tensor([[11.0, 10.0, 31.0, 30.0], [40.0, 40.0, 60.0, 60.0]])
    sample = model.sample_regions([props], [{"boxes": gt, "labels": torch.tensor([3])}])
    regions, labels, targets = sample.regions[0], sample.labels[0], sample.targets[0]
    assert sorted(labels.tolist()) == [0, 3, 3]  # the shifted box, the object itself; background
    for r, lab, t in zip(regions, labels, targets, strict=True):
        if lab > 0:
            torch.testing.assert_close(t, encode_deltas(gt, r[None], (10.0, 10.0, 5.0, 5.0))[0])
        else:
            torch.testing.assert_close(t, torch.zeros(4))


@pytest.mark.parametrize("name", MODELS)
def test_proposals_come_from_the_argument_the_target_or_the_proposer(name):
    seen = []

    def proposer(image):
        seen.append(1)
        return fixed_proposals(image)

    model = MODELS[name](proposer=proposer).eval()
    images, _ = scenes(2)
    one = [torch.tensor([[0.0, 0.0, 20.0, 20.0]])] * 2
    assert [len(p) for p in model.proposals_for(images, proposals=one)] == [1, 1] and not seen
    with_props = [dict(empty_target(), proposals=one[0]) for _ in range(2)]
    assert [len(p) for p in model.proposals_for(images, with_props)] == [1, 1] and not seen
    assert [len(p) for p in model.proposals_for(images)] == [4, 4] and len(seen) == 2
    with pytest.raises(ValueError, match="no proposals"):
        MODELS[name]().proposals_for(images)


@pytest.mark.parametrize("name", MODELS)
def test_detections_are_labelled_boxes_inside_the_image(name):
    torch.manual_seed(0)
    model = MODELS[name](proposer=fixed_proposals, score_thresh=0.0).eval()
    images, _ = scenes(2)
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2
    for d in out:
        assert set(d) == {"boxes", "labels", "scores"} and len(d["boxes"]) > 0
        assert bool(((d["labels"] >= 1) & (d["labels"] <= 5)).all())
        assert bool((d["boxes"] >= 0).all()) and bool((d["boxes"] <= 64).all())
        assert bool((d["scores"][:-1] >= d["scores"][1:]).all())


@pytest.mark.parametrize("name", MODELS)
def test_empty_images_go_through_sampling_loss_training_and_evaluation(name):
    torch.manual_seed(0)
    model = MODELS[name](proposer=fixed_proposals).train()
    blank = [torch.rand(3, 64, 64) for _ in range(2)]
    # no object: every region is background, the box loss is 0, the gradient is finite
    sample = model.sample_regions([fixed_proposals(None)] * 2, [empty_target()] * 2)
    assert sample.counts() == [(0, 4), (0, 4)]
    losses = model(blank, [empty_target()] * 2)
    assert (
        float(losses["loss_box_reg"].detach()) == 0.0
        and float(losses["loss_classifier"].detach()) > 0
    )
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # no object and no proposal: no region at all, losses 0 and still differentiable
    model.zero_grad()
    losses = model(blank, [empty_target()] * 2, proposals=[torch.zeros(0, 4)] * 2)
    assert float(sum(losses.values()).detach()) == 0.0
    sum(losses.values()).backward()
    # eval: no proposal, no detection
    model.eval()
    out = model(blank, proposals=[torch.zeros(0, 4)] * 2)
    assert [len(d["boxes"]) for d in out] == [0, 0]
    # training and COCO evaluation on scenes with empty ones among them
    data = DetectionScenes(60, seed=1)
    empty = [i for i in range(len(data)) if len(data[i][1]["boxes"]) == 0]
    assert empty, "the scenes should hold images without objects"
    picked = torch.utils.data.Subset(data, empty[:2] + [i for i in range(6) if i not in empty][:2])
    loader = torch.utils.data.DataLoader(picked, batch_size=2, collate_fn=collate_detection)
    model = MODELS[name](proposer=fixed_proposals)
    history = fit(
        model,
        loader,
        torch.optim.SGD(model.parameters(), lr=0.01),
        steps=2,
        progress=False,
        device="cpu",
    )
    assert all(torch.isfinite(torch.tensor(history["loss"])))
    evaluation = evaluate_detection(model, picked, device="cpu")
    assert len(evaluation.predictions) == 4 and 0.0 <= evaluation.metrics["bbox/AP50"] <= 1.0


@pytest.mark.parametrize("name", MODELS)
def test_one_batch_is_learnt(name):
    torch.manual_seed(0)
    images, targets = scenes(2)
    cache = CachedProposals(
        lambda im: selective_search(im, scale=(100.0,), strategies=(("rgb", "CTSF"),))
    )
    model = MODELS[name](proposer=cache).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        losses = model(images, targets)
        loss = sum(losses.values())
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < first / 3 and cache.computed == 2


def test_bad_arguments_are_refused():
    images, targets = scenes(2)
    model = MODELS["fast"](proposer=fixed_proposals).train()
    with pytest.raises(ValueError, match="needs targets"):
        model(images)
    with pytest.raises(ValueError, match=r"\[1, 5\]"):
        model(
            images,
            [{"boxes": torch.tensor([[0.0, 0.0, 5.0, 5.0]]), "labels": torch.tensor([6])}] * 2,
        )
    with pytest.raises(ValueError, match="2 dicts"):
        model(images, targets[:1])
    with pytest.raises(ValueError, match="proposals"):
        model.eval()(images, proposals=[torch.zeros(0, 4)])
    with pytest.raises(ValueError, match="pooler"):
        FastRCNN(5, pooler="max")
    with pytest.raises(ValueError, match="multiple"):
        RCNN(5, warp_size=30)
    with pytest.raises(ValueError, match="half"):
        RCNN(5, warp_size=32, context=16)
    with pytest.raises(ValueError, match="callable"):
        RCNN(5, proposer="selective search")
    with pytest.raises(ValueError, match="bg_iou"):
        RCNN(5, fg_iou=0.3, bg_iou=0.5)
