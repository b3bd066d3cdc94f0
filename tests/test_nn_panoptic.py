"""Panoptic FPN (vizlib.nn.panoptic): the merge equals detectron2's algorithm (a port of
``combine_semantic_and_instance_outputs`` below), the semantic head's shapes and its loss
(F.cross_entropy's), the model's losses and outputs, empty images, bad input; and PQ of
merged maps equals torchmetrics' PanopticQuality."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vizlib.data import STUFF_IDS, THING_IDS, PanopticScenes
from vizlib.metrics.panoptic import match_segments, panoptic_quality
from vizlib.nn.panoptic import (
    IGNORE,
    PANOPTIC_FPN_LOSS_NAMES,
    THING_CLASS,
    PanopticFPN,
    SemanticHead,
    panoptic_merge,
    panoptic_segments,
    semantic_loss,
    semantic_targets,
)

CATEGORIES = {c: True for c in THING_IDS} | {c: False for c in STUFF_IDS}


def detectron2_combine(scores, labels, masks, semantic, overlap, stuff_area, score_thresh):
    """detectron2/modeling/meta_arch/panoptic_fpn.py, combine_semantic_and_instance_outputs
    (v0.6), with its Instances unpacked: masks [D, H, W] bool, semantic [H, W] (0 = things)."""
    panoptic_seg = torch.zeros_like(semantic, dtype=torch.int32)
    sorted_inds = torch.argsort(-scores)
    current_segment_id = 0
    segments_info = []
    instance_masks = masks.to(dtype=torch.bool)
    for inst_id in sorted_inds:
        score = scores[inst_id].item()
        if score < score_thresh:
            break
        mask = instance_masks[inst_id]
        mask_area = mask.sum().item()
        if mask_area == 0:
            continue
        intersect = (mask > 0) & (panoptic_seg > 0)
        intersect_area = intersect.sum().item()
        if intersect_area * 1.0 / mask_area > overlap:
            continue
        if intersect_area > 0:
            mask = mask & (panoptic_seg == 0)
        current_segment_id += 1
        panoptic_seg[mask] = current_segment_id
        segments_info.append(
            {"id": current_segment_id, "isthing": True, "category_id": labels[inst_id].item()}
        )
    for semantic_label in torch.unique(semantic).cpu().tolist():
        if semantic_label == 0:
            continue
        mask = (semantic == semantic_label) & (panoptic_seg == 0)
        mask_area = mask.sum().item()
        if mask_area < stuff_area:
            continue
        current_segment_id += 1
        panoptic_seg[mask] = current_segment_id
        segments_info.append(
            {"id": current_segment_id, "isthing": False, "category_id": semantic_label}
        )
    return panoptic_seg, segments_info


def random_outputs(g, d=6, size=32, stuff=3):
    """Random overlapping instances (boxes of ones, probabilities) and a blocky semantic map."""
    masks = torch.zeros(d, size, size)
    for i in range(d):
        x1, y1 = torch.randint(0, size - 6, (2,), generator=g).tolist()
        w, h = torch.randint(3, 16, (2,), generator=g).tolist()
        masks[i, y1 : y1 + h, x1 : x1 + w] = 0.4 + 0.6 * torch.rand(1, generator=g)
    scores = torch.rand(d, generator=g)
    labels = torch.randint(1, 6, (d,), generator=g)
    blocks = torch.randint(0, stuff + 1, (4, 4), generator=g)
    semantic = blocks.repeat_interleave(size // 4, 0).repeat_interleave(size // 4, 1)
    return scores, labels, masks, semantic


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    ("overlap", "area", "score"), [(0.5, 0, 0.5), (0.2, 40, 0.3), (0.8, 4096, 0.0), (1.0, 64, 0.7)]
)
def test_merge_equals_detectron2(seed, overlap, area, score):
    g = torch.Generator().manual_seed(seed)
    scores, labels, masks, semantic = random_outputs(g)
    ids, segments = panoptic_merge(scores, labels, masks, semantic, STUFF_IDS, overlap, score, area)
    theirs, their_info = detectron2_combine(
        scores, labels, masks > 0.5, semantic, overlap, area, score
    )
    assert torch.equal(ids, theirs.long())
    stuff_of = dict(enumerate(STUFF_IDS, start=1))
    assert [(s["id"], s["category_id"], s["isthing"]) for s in segments] == [
        (s["id"], s["category_id"] if s["isthing"] else stuff_of[s["category_id"]], s["isthing"])
        for s in their_info
    ]
    for s in segments:
        assert s["area"] == int((ids == s["id"]).sum())


def test_merge_rules_by_hand():
    semantic = torch.zeros(8, 8, dtype=torch.long)
    semantic[:, 4:] = 1  # right half: stuff class 1 (category 6)
    masks = torch.zeros(3, 8, 8)
    masks[0, :4, :4] = 0.9  # 16 px, score 0.9
    masks[1, :4, 2:6] = 0.9  # 16 px, half on instance 0, score 0.8: kept (0.5 is not > 0.5)
    masks[2, :3, :3] = 0.9  # 9 px, all on instance 0, score 0.7: dropped
    scores = torch.tensor([0.9, 0.8, 0.7])
    ids, segs = panoptic_merge(
        scores, torch.tensor([1, 2, 3]), masks, semantic, (6, 7, 8), 0.5, 0.5, 10
    )
    assert [s["category_id"] for s in segs] == [1, 2, 6]
    assert int((ids == 2).sum()) == 8 and segs[1]["instance"] == 1
    assert segs[2]["area"] == 32 - 8  # the stuff's free pixels
    # the default minimum area (4,096) drops every stuff segment of an 8 x 8 map
    ids, segs = panoptic_merge(scores, torch.tensor([1, 2, 3]), masks, semantic, (6, 7, 8))
    assert all(s["isthing"] for s in segs) and int((ids == 0).sum()) == 64 - 24
    # a score threshold above every score: stuff only; no instance at all: stuff only
    ids, segs = panoptic_merge(
        scores, torch.tensor([1, 2, 3]), masks, semantic, (6, 7, 8), 0.5, 0.95, 0
    )
    assert [s["category_id"] for s in segs] == [6]
    ids, segs = panoptic_merge(
        torch.zeros(0),
        torch.zeros(0, dtype=torch.long),
        torch.zeros(0, 1, 8, 8),
        semantic,
        (6, 7, 8),
        stuff_min_area=0,
    )
    assert [s["category_id"] for s in segs] == [6] and int((ids == 0).sum()) == 32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scores": torch.ones(2, dtype=torch.long)}, "scores"),
        ({"labels": torch.ones(2)}, "labels"),
        ({"masks": torch.zeros(3, 8, 8)}, "masks"),
        ({"semantic": torch.full((8, 8), 4)}, "head classes"),
        ({"stuff_categories": (6, 6)}, "distinct"),
        ({"overlap_threshold": 1.5}, "overlap_threshold"),
        ({"stuff_min_area": -1}, "stuff_min_area"),
    ],
)
def test_merge_rejects_bad_input(kwargs, match):
    args = {
        "scores": torch.tensor([0.9, 0.8]),
        "labels": torch.tensor([1, 2]),
        "masks": torch.zeros(2, 8, 8),
        "semantic": torch.zeros(8, 8, dtype=torch.long),
        "stuff_categories": (6, 7, 8),
    } | kwargs
    with pytest.raises(ValueError, match=match):
        panoptic_merge(**args)


def test_semantic_targets_and_truth_segments():
    _, t = PanopticScenes(4, seed=3)[1]
    semantic, instances = (
        t["semantic"].as_subclass(torch.Tensor),
        t["instances"].as_subclass(torch.Tensor),
    )
    target = semantic_targets(semantic, STUFF_IDS)
    assert target.dtype == torch.int64 and target.shape == semantic.shape
    assert bool((target[instances > 0] == THING_CLASS).all())
    for k, c in enumerate(STUFF_IDS, start=1):
        assert bool((target[semantic == c] == k).all())
    void = semantic.clone()
    void[0, 0] = 0
    assert int(semantic_targets(void, STUFF_IDS)[0, 0]) == IGNORE
    ids, segs = panoptic_segments(semantic, instances, STUFF_IDS)
    assert len([s for s in segs if s["isthing"]]) == len(t["labels"])
    assert [s["category_id"] for s in segs if s["isthing"]] == t["labels"].tolist()
    assert sum(s["area"] for s in segs) == semantic.numel() and bool((ids > 0).all())
    # the truth scored against itself: PQ 1 for every class present
    r = panoptic_quality([(ids, segs)], [(ids, segs)], CATEGORIES)
    assert r.all.pq == 1.0
    with pytest.raises(ValueError, match="stuff_categories"):
        semantic_targets(semantic, ())
    with pytest.raises(ValueError, match="integer"):
        semantic_targets(semantic.float(), STUFF_IDS)


def test_semantic_head_shapes_and_loss():
    head = SemanticHead(16, [4, 8, 16], 4, dims=32, groups=8)
    feats = [torch.randn(2, 16, 64 // s, 64 // s) for s in (4, 8, 16)]
    assert head(feats).shape == (2, 4, 16, 16)
    logits = head.logits_at(feats, (64, 64))
    assert logits.shape == (2, 4, 64, 64)
    assert [sum(isinstance(m, torch.nn.Conv2d) for m in h) for h in head.scale_heads] == [1, 1, 2]
    t = torch.randint(0, 4, (2, 64, 64))
    t[0, :10] = IGNORE
    assert torch.allclose(semantic_loss(logits, t), F.cross_entropy(logits, t, ignore_index=IGNORE))
    empty = semantic_loss(logits, torch.full_like(t, IGNORE))
    assert float(empty.detach()) == 0.0 and empty.requires_grad
    with pytest.raises(ValueError, match="in \\[0, 3\\]"):
        semantic_loss(logits, torch.full_like(t, 7))
    with pytest.raises(ValueError, match="powers of 2"):
        SemanticHead(16, [2, 8], 4)
    with pytest.raises(ValueError, match="3 levels"):
        head(feats[:2])


def _batch(n=3, seed=5):
    ds = PanopticScenes(40, seed=seed)
    empty = next(i for i in range(len(ds)) if len(ds[i][1]["labels"]) == 0)
    items = [ds[i] for i in (empty, *range(n - 1))]
    images = torch.stack([im.as_subclass(torch.Tensor) for im, _ in items])
    targets = []
    for _, t in items:
        d = {k: t[k].as_subclass(torch.Tensor) for k in ("boxes", "labels", "masks")}
        d["sem_seg"] = semantic_targets(t["semantic"].as_subclass(torch.Tensor), STUFF_IDS)
        targets.append(d)
    return images, targets


def test_model_losses_outputs_and_empty_images():
    torch.manual_seed(0)
    model = PanopticFPN(5, 64, canonical_size=64, canonical_level=4, semantic_loss_weight=0.5)
    images, targets = _batch()
    model.train()
    losses = model(images, targets)
    assert tuple(losses) == PANOPTIC_FPN_LOSS_NAMES and model.loss_names == PANOPTIC_FPN_LOSS_NAMES
    sum(losses.values()).backward()
    assert all(bool(torch.isfinite(v)) for v in losses.values())
    assert model.semantic_head.predictor.weight.grad is not None
    # the semantic term is lambda_s times the head's cross-entropy
    model.semantic_loss_weight = 1.0
    torch.manual_seed(1)
    full = model(images, targets)["loss_sem_seg"]
    assert torch.allclose(losses["loss_sem_seg"], 0.5 * full, rtol=1e-4)
    # only the empty image
    one = model(images[:1], targets[:1])
    assert one["loss_mask"].item() == 0.0 and all(bool(torch.isfinite(v)) for v in one.values())
    model.eval()
    with torch.no_grad():
        out = model(images)
    for o in out:
        assert o["sem_seg"].shape == (4, 64, 64) and o["panoptic"].shape == (64, 64)
        assert o["masks"].shape[1:] == (1, 64, 64)
        present = set(o["panoptic"].unique().tolist()) - {0}
        assert present == {s["id"] for s in o["segments"]}
    with pytest.raises(ValueError, match="sem_seg"):
        model.train()
        model(images, [{k: v for k, v in t.items() if k != "sem_seg"} for t in targets])
    with pytest.raises(ValueError, match="keypoint"):
        PanopticFPN(5, 64, num_keypoints=3)


def _torchmetrics_pq(preds, gts):
    """torchmetrics' PanopticQuality of (ids, segments) pairs: maps of (category, instance)."""
    tm = pytest.importorskip("torchmetrics.detection")

    def pairs(ids, segments):
        out = torch.zeros(*ids.shape, 2, dtype=torch.long)  # category 0: void (unknown)
        for s in segments:
            region = ids == s["id"]
            out[region, 0] = s["category_id"]
            out[region, 1] = s["id"] if s["category_id"] in THING_IDS else 0
        return out

    metric = tm.PanopticQuality(
        things=set(THING_IDS),
        stuffs=set(STUFF_IDS),
        allow_unknown_preds_category=True,
        return_sq_and_rq=True,
        return_per_class=True,
    )
    metric.update(torch.stack([pairs(*p) for p in preds]), torch.stack([pairs(*g) for g in gts]))
    return metric.compute()  # [C, 3]: PQ, SQ, RQ per class, classes sorted


def _noisy_predictions(void: bool):
    """Merged maps of the truth made worse: masks moved, one class wrong, noisy stuff. With
    ``void``, the semantic map keeps its thing class and small stuff regions are dropped,
    so some pixels are left void; without, every pixel gets a segment."""
    ds = PanopticScenes(12, seed=9)
    g = torch.Generator().manual_seed(0)
    preds, gts = [], []
    for i in range(len(ds)):
        _, t = ds[i]
        sem = t["semantic"].as_subclass(torch.Tensor)
        inst = t["instances"].as_subclass(torch.Tensor)
        gts.append(panoptic_segments(sem, inst, STUFF_IDS))
        masks = t["masks"].as_subclass(torch.Tensor).float()
        shifted = torch.roll(
            masks, shifts=(int(torch.randint(-2, 3, (), generator=g)), 1), dims=(1, 2)
        )
        noisy_sem = semantic_targets(sem, STUFF_IDS)
        noisy_sem[torch.rand(noisy_sem.shape, generator=g) < 0.1] = 1
        if not void:
            noisy_sem[noisy_sem == THING_CLASS] = 2
        labels = t["labels"].clone()
        if len(labels):
            labels[0] = labels[0] % 5 + 1  # one wrong class: a FP and a FN
        scores = torch.rand(len(labels), generator=g)
        area = 100 if void else 0
        preds.append(panoptic_merge(scores, labels, shifted, noisy_sem, STUFF_IDS, 0.5, 0.2, area))
    return preds, gts


def test_pq_of_merged_maps_equals_torchmetrics():
    preds, gts = _noisy_predictions(void=False)
    assert all(bool((ids > 0).all()) for ids, _ in preds)
    ours = panoptic_quality(preds, gts, CATEGORIES)
    theirs = _torchmetrics_pq(preds, gts)  # [C, 3]
    for k, c in enumerate(sorted(CATEGORIES)):
        mine = ours.per_class[c]
        if mine.tp + mine.fp + mine.fn == 0:
            continue
        assert torch.allclose(
            theirs[k].double(), torch.tensor([mine.pq, mine.sq, mine.rq]).double(), atol=1e-6
        ), c
    assert ours.things.rq < 1 and ours.stuff.sq < 1  # the test is not trivial
    # and segment by segment: the matches the counts come from
    for pred, gt in zip(preds, gts, strict=True):
        m = match_segments(*pred, *gt, CATEGORIES)
        assert all(iou > 0.5 for _, _, iou in m.matches)
        assert len(m.matches) + len(m.false_positives) + len(m.ignored) == len(pred[1])
        assert len(m.matches) + len(m.false_negatives) == len(gt[1])


def test_with_void_predictions_torchmetrics_leaves_them_out_of_the_union():
    """panopticapi (and vizlib) count a true segment's pixels predicted void in the union;
    torchmetrics 1.x leaves them out (its _calculate_iou subtracts the (void, target)
    intersection): same matches here, a higher SQ where a prediction leaves void."""
    preds, gts = _noisy_predictions(void=True)
    assert any(bool((ids == 0).any()) for ids, _ in preds)
    ours = panoptic_quality(preds, gts, CATEGORIES)
    theirs = _torchmetrics_pq(preds, gts)
    for k, c in enumerate(sorted(CATEGORIES)):
        mine = ours.per_class[c]
        if mine.tp == 0:
            continue
        assert float(theirs[k, 1]) >= mine.sq - 1e-6  # torchmetrics sums in float32
    assert (
        max(
            float(theirs[k, 1]) - ours.per_class[c].sq
            for k, c in enumerate(sorted(CATEGORIES))
            if ours.per_class[c].tp
        )
        > 1e-3
    )
