"""Panoptic quality: hand-computed examples and a line-by-line port of panopticapi."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from vizlib.metrics import VOID, PanopticQuality, panoptic_quality

CATEGORIES = {10: True, 20: False, 30: True}  # 10 a thing, 20 stuff, 30 never occurs


def image_one():
    gt = torch.tensor([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 0, 0], [3, 3, 0, 0]])
    gt_segments = [
        {"id": 1, "category_id": 10},
        {"id": 2, "category_id": 10},
        {"id": 3, "category_id": 20},
    ]
    pred = torch.tensor([[5, 5, 6, 6], [5, 5, 6, 7], [8, 8, 8, 7], [8, 8, 8, 7]])
    pred_segments = [
        {"id": 5, "category_id": 10},  # = gt 1: IoU 1
        {"id": 6, "category_id": 10},  # 3 of gt 2's 4 pixels: IoU 3/4
        {"id": 7, "category_id": 10},  # 2 of its 3 pixels on void: ignored, not a FP
        {"id": 8, "category_id": 20},  # gt 3 plus 2 void pixels, which leave the union: IoU 1
    ]
    return (pred, pred_segments), (gt, gt_segments)


def image_two():
    gt = torch.tensor([[1, 1, 1, 1], [2, 2, 0, 0], [3, 3, 3, 3]])
    gt_segments = [
        {"id": 1, "category_id": 10, "iscrowd": 1},
        {"id": 2, "category_id": 10},
        {"id": 3, "category_id": 20},
    ]
    pred = torch.tensor([[5, 5, 6, 6], [7, 7, 7, 7], [9, 9, 9, 9]])
    pred_segments = [
        {"id": 5, "category_id": 10},  # inside the crowd of its own class: ignored
        {"id": 6, "category_id": 20},  # on a crowd of another class: FP (class 20)
        {"id": 7, "category_id": 10},  # gt 2 plus 2 void pixels: IoU 1, TP
        {"id": 9, "category_id": 10},  # on stuff 20: FP (class 10); gt 3 is a FN (class 20)
    ]
    return (pred, pred_segments), (gt, gt_segments)


def test_hand_example_one_image():
    pred, gt = image_one()
    r = panoptic_quality([pred], [gt], CATEGORIES)
    assert r.per_class[10][3:] == (2, 0, 0)  # tp, fp, fn
    assert r.per_class[10].pq == pytest.approx(1.75 / 2) and r.per_class[10].rq == 1.0
    assert r.per_class[20].pq == pytest.approx(1.0)
    assert math.isnan(r.per_class[30].pq)
    assert r.all.pq == pytest.approx((0.875 + 1.0) / 2) and r.all.n == 2
    assert r.things.pq == pytest.approx(0.875) and r.things.n == 1
    assert r.stuff.pq == pytest.approx(1.0) and r.stuff.n == 1


def test_hand_example_crowd_void_and_counts_summed_over_images():
    (p1, g1), (p2, g2) = image_one(), image_two()
    alone = panoptic_quality([p2], [g2], CATEGORIES)
    assert alone.per_class[10][3:] == (1, 1, 0)
    assert alone.per_class[20][3:] == (0, 1, 1)
    assert alone.per_class[10].pq == pytest.approx(1 / 1.5)
    assert alone.per_class[20].pq == 0.0 and alone.per_class[20].sq == 0.0

    r = panoptic_quality([p1, p2], [g1, g2], CATEGORIES)
    # class 10: tp 3 (IoUs 1, 0.75, 1), fp 1; class 20: tp 1 (IoU 1), fp 1, fn 1
    assert r.per_class[10].pq == pytest.approx(2.75 / 3.5)
    assert r.per_class[10].sq == pytest.approx(2.75 / 3)
    assert r.per_class[10].rq == pytest.approx(3 / 3.5)
    assert r.per_class[20].pq == pytest.approx(1 / 2)
    assert r.all.pq == pytest.approx((2.75 / 3.5 + 0.5) / 2)
    for c in (10, 20):  # PQ = SQ x RQ
        assert r.per_class[c].pq == pytest.approx(r.per_class[c].sq * r.per_class[c].rq)

    metric = PanopticQuality(CATEGORIES)
    metric.update(p1[0], p1[1], g1[0], g1[1])
    metric.update(p2[0], p2[1], g2[0], g2[1])
    assert metric.compute() == r


def panopticapi_single_core(pan_gt, gt_segms, pan_pred, pred_segms, categories):
    """``pq_compute_single_core`` of panopticapi/evaluation.py, with the PNG decoding removed."""
    OFFSET = 256 * 256 * 256
    pq_stat = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0, "iou": 0.0})
    gt_segms = {el["id"]: dict(el) for el in gt_segms}
    pred_segms = {el["id"]: dict(el) for el in pred_segms}
    labels, labels_cnt = np.unique(pan_gt, return_counts=True)
    for label, label_cnt in zip(labels, labels_cnt, strict=True):
        if label in gt_segms:
            gt_segms[label]["area"] = label_cnt  # (COCO's JSON area is this pixel count)
    labels, labels_cnt = np.unique(pan_pred, return_counts=True)
    for label, label_cnt in zip(labels, labels_cnt, strict=True):
        if label not in pred_segms:
            continue
        pred_segms[label]["area"] = label_cnt
    pan_gt_pred = pan_gt.astype(np.uint64) * OFFSET + pan_pred.astype(np.uint64)
    gt_pred_map = {}
    labels, labels_cnt = np.unique(pan_gt_pred, return_counts=True)
    for label, intersection in zip(labels, labels_cnt, strict=True):
        gt_pred_map[(label // OFFSET, label % OFFSET)] = intersection
    gt_matched, pred_matched = set(), set()
    for (gt_label, pred_label), intersection in gt_pred_map.items():
        if gt_label not in gt_segms or pred_label not in pred_segms:
            continue
        if gt_segms[gt_label].get("iscrowd", 0) == 1:
            continue
        if gt_segms[gt_label]["category_id"] != pred_segms[pred_label]["category_id"]:
            continue
        union = (
            pred_segms[pred_label]["area"]
            + gt_segms[gt_label]["area"]
            - intersection
            - gt_pred_map.get((VOID, pred_label), 0)
        )
        iou = intersection / union
        if iou > 0.5:
            pq_stat[gt_segms[gt_label]["category_id"]]["tp"] += 1
            pq_stat[gt_segms[gt_label]["category_id"]]["iou"] += iou
            gt_matched.add(gt_label)
            pred_matched.add(pred_label)
    crowd_labels_dict = {}
    for gt_label, gt_info in gt_segms.items():
        if gt_label in gt_matched:
            continue
        if gt_info.get("iscrowd", 0) == 1:
            crowd_labels_dict[gt_info["category_id"]] = gt_label
            continue
        pq_stat[gt_info["category_id"]]["fn"] += 1
    for pred_label, pred_info in pred_segms.items():
        if pred_label in pred_matched:
            continue
        intersection = gt_pred_map.get((VOID, pred_label), 0)
        if pred_info["category_id"] in crowd_labels_dict:
            intersection += gt_pred_map.get(
                (crowd_labels_dict[pred_info["category_id"]], pred_label), 0
            )
        if intersection / pred_info["area"] > 0.5:
            continue
        pq_stat[pred_info["category_id"]]["fp"] += 1
    return pq_stat


def random_panoptic(rng, h=24, w=32):
    """A truth of random rectangles over void (at most one crowd per class) and a noisy prediction."""
    cats = list(CATEGORIES)[:2]
    gt = np.zeros((h, w), dtype=np.int64)
    gt_segments, crowd_cats = [], set()
    for sid in range(1, rng.integers(2, 9)):
        y, x = rng.integers(0, h - 2), rng.integers(0, w - 2)
        gt[y : y + rng.integers(2, 12), x : x + rng.integers(2, 14)] = sid
        c = int(rng.choice(cats))
        crowd = int(c not in crowd_cats and rng.random() < 0.2)
        crowd_cats |= {c} if crowd else set()
        gt_segments.append({"id": sid, "category_id": c, "iscrowd": crowd})
    present = set(np.unique(gt).tolist())
    gt_segments = [s for s in gt_segments if s["id"] in present]
    # prediction: the truth shifted a little, some segments relabelled, extra blobs
    pred = np.roll(gt, (rng.integers(-2, 3), rng.integers(-2, 3)), axis=(0, 1)) * 7
    for sid in range(1, rng.integers(1, 4)):
        y, x = rng.integers(0, h - 2), rng.integers(0, w - 2)
        pred[y : y + rng.integers(2, 8), x : x + rng.integers(2, 8)] = 1000 + sid
    ids = sorted(set(np.unique(pred).tolist()) - {VOID})
    pred_segments = [{"id": i, "category_id": int(rng.choice(cats))} for i in ids]
    return pred, pred_segments, gt, gt_segments


@pytest.mark.parametrize("seed", range(3))
def test_equals_a_port_of_panopticapi(seed):
    rng = np.random.default_rng(seed)
    metric = PanopticQuality(CATEGORIES)
    totals = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0, "iou": 0.0})
    for _ in range(30):
        pred, pred_segments, gt, gt_segments = random_panoptic(rng)
        metric.update(torch.from_numpy(pred), pred_segments, torch.from_numpy(gt), gt_segments)
        for c, s in panopticapi_single_core(
            gt, gt_segments, pred, pred_segments, CATEGORIES
        ).items():
            for k in s:
                totals[c][k] += s[k]
    r = metric.compute()
    for c, s in totals.items():
        assert (r.per_class[c].tp, r.per_class[c].fp, r.per_class[c].fn) == (
            s["tp"],
            s["fp"],
            s["fn"],
        )
        if s["tp"] + s["fp"] + s["fn"]:
            assert r.per_class[c].pq == pytest.approx(
                s["iou"] / (s["tp"] + 0.5 * s["fp"] + 0.5 * s["fn"])
            )
    assert sum(s["tp"] for s in totals.values()) > 0 and sum(s["fp"] for s in totals.values()) > 0


def test_bad_input_raises_value_error_naming_the_argument():
    (pred, ps), (gt, gs) = image_one()
    metric = PanopticQuality(CATEGORIES)
    cases = [
        (lambda: metric.update(pred.float(), ps, gt, gs), "pred_ids"),
        (lambda: metric.update(pred, ps, gt[:2], gs), "same shape"),
        (lambda: metric.update(pred, ps[:-1], gt, gs), "pred_segments does not list"),
        (
            lambda: metric.update(pred, ps, gt, [*gs, {"id": 9, "category_id": 10}]),
            "gt_segments lists",
        ),
        (
            lambda: metric.update(pred, [{**ps[0], "category_id": 99}, *ps[1:]], gt, gs),
            r"pred_segments\[0\].*category_id",
        ),
        (lambda: metric.update(pred, ps, gt, [{"id": 0, "category_id": 10}, *gs]), "reserved"),
        (lambda: metric.update(pred, ps, gt, "x"), "gt_segments"),
        (lambda: metric.update(pred, ps, -gt, gs), "gt_ids"),
        (lambda: PanopticQuality({}), "categories"),
        (lambda: PanopticQuality({1: "thing"}), "categories"),
        (lambda: panoptic_quality([(pred, ps)], [], CATEGORIES), "one entry per image"),
        (lambda: panoptic_quality("x", [], CATEGORIES), "preds"),
        (lambda: panoptic_quality([pred], [gt], CATEGORIES), r"preds\[0\]"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
