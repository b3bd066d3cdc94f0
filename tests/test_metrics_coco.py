"""vizlib.metrics.coco_evaluate gives pycocotools COCOeval's 12 numbers (to 1e-6)."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vizlib.metrics import (
    COCO_SUMMARY_NAMES,
    NO_GROUND_TRUTH,
    coco_box_iou,
    coco_evaluate,
    mean_average_precision,
)


def synthetic_coco(
    seed: int,
    n_images: int = 200,
    n_cats: int = 4,
    max_gt: int = 8,
    extra_dt: int = 6,
    crowd_p=0.05,
):
    """A random data set and detections that exercise every COCO convention.

    Objects of all three sizes (and areas exactly 32**2 and 96**2, on both range
    boundaries), an ``area`` field that differs from the box area, crowds, images without
    objects, images without detections, detections of a category with no ground truth and
    of a category not in the data set, integer boxes (IoUs exactly on thresholds), tied
    scores, and detections from tight to loose.
    """
    rng = np.random.default_rng(seed)
    images = [{"id": int(i) * 3 + 7} for i in range(n_images)]
    cats = [{"id": int(c) * 2 + 1} for c in range(n_cats + 1)]  # the last one has no gt
    gt_cats = [c["id"] for c in cats[:n_cats]]
    anns, dts = [], []
    for img in images:
        n_gt = 0 if rng.random() < 0.1 else int(rng.integers(0, max_gt + 1))
        with_dt = rng.random() > 0.1
        for _ in range(n_gt):
            scale = float(rng.choice([8, 20, 32, 60, 96, 150, 300]))
            w, h = (
                (scale, scale) if rng.random() < 0.15 else tuple(rng.uniform(0.6, 1.4, 2) * scale)
            )
            x, y = rng.uniform(0, 400, 2)
            if rng.random() < 0.3:
                x, y, w, h = np.round([x, y, w, h])
            c = int(rng.choice(gt_cats))
            area = w * h * (rng.uniform(0.4, 1.0) if rng.random() < 0.3 else 1.0)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img["id"],
                    "category_id": c,
                    "bbox": [float(x), float(y), float(w), float(h)],
                    "area": float(area),
                    "iscrowd": int(rng.random() < crowd_p),
                }
            )
            if not with_dt or rng.random() < 0.15:
                continue
            for _ in range(int(rng.integers(1, 4))):
                jitter = rng.normal(0, rng.uniform(0.01, 0.25) * max(w, h), 4)
                box = [
                    x + jitter[0],
                    y + jitter[1],
                    max(w + jitter[2], 1.0),
                    max(h + jitter[3], 1.0),
                ]
                if rng.random() < 0.2:
                    box = np.round(box)
                if rng.random() < 0.05:
                    box = [x, y, w, h]  # perfect
                cat = c if rng.random() > 0.1 else int(rng.choice([cc["id"] for cc in cats] + [99]))
                dts.append(
                    {
                        "image_id": img["id"],
                        "category_id": cat,
                        "bbox": [float(v) for v in box],
                        "score": float(rng.random()),
                    }
                )
        if with_dt:
            for _ in range(int(rng.integers(0, extra_dt + 1))):  # background false positives
                s = float(rng.choice([10, 40, 120]))
                w, h = rng.uniform(0.5, 1.5, 2) * s
                x, y = rng.uniform(0, 500, 2)
                dts.append(
                    {
                        "image_id": img["id"],
                        "category_id": int(rng.choice([cc["id"] for cc in cats])),
                        "bbox": [float(x), float(y), float(w), float(h)],
                        "score": float(rng.random()),
                    }
                )
    for d in dts:
        if rng.random() < 0.3:
            d["score"] = float(np.round(d["score"], 1))  # ties
    return {"images": images, "annotations": anns, "categories": cats}, dts


def pycocotools_eval(gt: dict, dts: list) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(dts)) if dts else COCO()
        if not dts:  # loadRes cannot read an empty list
            coco_dt.dataset = {
                "images": gt["images"],
                "categories": gt["categories"],
                "annotations": [],
            }
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def assert_same_as_pycocotools(gt, dts):
    ref = pycocotools_eval(gt, dts)
    ours = coco_evaluate(gt, dts)
    np.testing.assert_allclose(
        ours.stats, ref.stats, rtol=0, atol=1e-6, err_msg=str(list(COCO_SUMMARY_NAMES))
    )
    np.testing.assert_allclose(ours.precision, ref.eval["precision"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.recall, ref.eval["recall"], rtol=0, atol=1e-6)
    return ours, ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_all_12_numbers_equal_pycocotools(seed):
    gt, dts = synthetic_coco(seed)
    ours, _ = assert_same_as_pycocotools(gt, dts)
    assert ours.stats[0] > 0.05  # a non-trivial data set: some detections are right
    # every COCO convention was exercised
    assert any(a["iscrowd"] for a in gt["annotations"])
    areas = [a["area"] for a in gt["annotations"]]
    assert min(areas) < 32**2 < max(areas) and max(areas) > 96**2
    assert len({d["score"] for d in dts}) < len(dts)  # tied scores


def test_more_than_100_detections_per_image_and_many_crowds():
    gt, dts = synthetic_coco(7, n_images=12, n_cats=1, max_gt=30, extra_dt=150, crowd_p=0.3)
    counts = np.bincount([d["image_id"] for d in dts])
    assert counts.max() > 100
    ours, ref = assert_same_as_pycocotools(gt, dts)
    assert ours.stats[6] < ours.stats[7] < ours.stats[8]  # AR1 < AR10 < AR100


def test_accepts_pycocotools_objects_and_tensor_form():
    gt, dts = synthetic_coco(3, n_images=40)
    ref = pycocotools_eval(gt, dts)
    ours = coco_evaluate(ref.cocoGt, ref.cocoDt)
    np.testing.assert_allclose(ours.stats, ref.stats, atol=1e-6, rtol=0)

    # Tensor form: torchvision-style dicts, xyxy boxes, one per image (in any order).
    targets, preds = [], []
    for img in reversed(gt["images"]):
        g = [a for a in gt["annotations"] if a["image_id"] == img["id"]]
        d = [a for a in dts if a["image_id"] == img["id"]]

        def xyxy(rows):
            b = torch.tensor([r["bbox"] for r in rows], dtype=torch.float64).reshape(-1, 4)
            return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], dim=1)

        targets.append(
            {
                "boxes": xyxy(g),
                "labels": torch.tensor([a["category_id"] for a in g], dtype=torch.int64),
                "area": torch.tensor([a["area"] for a in g], dtype=torch.float64),
                "iscrowd": torch.tensor([a["iscrowd"] for a in g], dtype=torch.int64),
                "image_id": img["id"],
            }
        )
        preds.append(
            {
                "boxes": xyxy(d),
                "scores": torch.tensor([a["score"] for a in d], dtype=torch.float64),
                "labels": torch.tensor([a["category_id"] for a in d], dtype=torch.int64),
            }
        )
    from_tensors = coco_evaluate(targets, preds)
    # The tensor form's categories are the labels present in gt (the dict lists one more,
    # without annotations, which only adds -1 entries).
    np.testing.assert_allclose(from_tensors.stats, ref.stats, atol=1e-6, rtol=0)


def test_no_ground_truth_gives_minus_one_and_no_detections_gives_zero():
    gt, dts = synthetic_coco(4, n_images=20)
    empty_gt = dict(gt, annotations=[])
    ours, _ = assert_same_as_pycocotools(empty_gt, dts)
    assert (ours.stats == NO_GROUND_TRUTH).all()
    assert (ours.precision == NO_GROUND_TRUTH).all()

    ours, ref = assert_same_as_pycocotools(gt, [])
    assert set(ours.stats.tolist()) <= {0.0, NO_GROUND_TRUTH}

    # Only small objects: medium and large AP/AR are undefined (-1), like pycocotools.
    small = dict(gt, annotations=[a for a in gt["annotations"] if a["area"] < 20**2])
    ours, ref = assert_same_as_pycocotools(small, dts)
    assert ours.stats[4] == ours.stats[5] == NO_GROUND_TRUTH


def test_hand_example():
    """Two objects, three detections: worked out by hand."""
    gt = {
        "images": [{"id": 1}],
        "categories": [{"id": 1}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [0, 0, 10, 10],
                "area": 100,
                "iscrowd": 0,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "bbox": [50, 50, 10, 10],
                "area": 100,
                "iscrowd": 0,
            },
        ],
    }
    dts = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},  # IoU 1
        {"image_id": 1, "category_id": 1, "bbox": [100, 100, 10, 10], "score": 0.8},  # FP
        {"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 8], "score": 0.7},  # IoU 0.8
    ]
    ours = coco_evaluate(gt, dts)
    # At t <= 0.8: TP, FP, TP -> precision envelope 1 up to recall 0.5, then 2/3 up to 1:
    # 51 recall points at 1, 50 at 2/3. At t > 0.8: only recall 0.5 -> 51 points at 1.
    ap_low = (51 + 50 * 2 / 3) / 101
    ap_high = 51 / 101
    n_low = 7  # thresholds 0.50 ... 0.80
    assert ours.stats[0] == pytest.approx((n_low * ap_low + 3 * ap_high) / 10, abs=1e-12)
    assert ours.stats[1] == pytest.approx(ap_low, abs=1e-12)
    assert ours.stats[2] == pytest.approx(ap_low, abs=1e-12)
    assert ours.stats[6] == pytest.approx(0.5, abs=1e-12)  # AR1: the best detection only
    assert ours.stats[8] == pytest.approx((n_low * 1.0 + 3 * 0.5) / 10, abs=1e-12)
    assert ours.stats[3] == pytest.approx(ours.stats[0])  # every object is small
    assert ours.stats[4] == ours.stats[5] == NO_GROUND_TRUTH
    assert_same_as_pycocotools(gt, dts)
    assert set(ours.summary()) == set(COCO_SUMMARY_NAMES)
    assert "Average Precision" in str(ours)


def test_mean_average_precision_coco_flavour_is_ap50():
    """Single threshold, COCO rule and 101 points: mAP@0.5 equals COCO's AP50."""
    gt, dts = synthetic_coco(5, n_images=60, crowd_p=0.0)
    gt = dict(
        gt, annotations=[dict(a, area=a["bbox"][2] * a["bbox"][3]) for a in gt["annotations"]]
    )
    ref = pycocotools_eval(gt, dts)
    known = {c["id"] for c in gt["categories"]}
    targets, preds = [], []
    for img in gt["images"]:
        g = [a for a in gt["annotations"] if a["image_id"] == img["id"]]
        d = [a for a in dts if a["image_id"] == img["id"] and a["category_id"] in known]

        def xyxy(rows):
            b = torch.tensor([r["bbox"] for r in rows], dtype=torch.float64).reshape(-1, 4)
            return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], dim=1)

        targets.append(
            {
                "boxes": xyxy(g),
                "labels": torch.tensor([a["category_id"] for a in g], dtype=torch.int64),
            }
        )
        preds.append(
            {
                "boxes": xyxy(d),
                "scores": torch.tensor([a["score"] for a in d], dtype=torch.float64),
                "labels": torch.tensor([a["category_id"] for a in d], dtype=torch.int64),
            }
        )
    result = mean_average_precision(preds, targets, iou_threshold=0.5, method="coco")
    assert result.map == pytest.approx(ref.stats[1], abs=1e-6)


def test_coco_box_iou_equals_mask_api():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(30, 2, generator=g, dtype=torch.float64) * 50
    wh = torch.rand(30, 2, generator=g, dtype=torch.float64) * 40
    wh[::7] = 0.0  # degenerate boxes
    boxes = torch.cat([xy, xy + wh], dim=1)
    dt, gt = boxes[:20], boxes[10:]
    crowd = torch.arange(len(gt)) % 3 == 0
    ours = coco_box_iou(dt, gt, crowd)
    to_xywh = lambda b: torch.cat([b[:, :2], b[:, 2:] - b[:, :2]], dim=1).tolist()  # noqa: E731
    ref = mask_utils.iou(to_xywh(dt), to_xywh(gt), crowd.int().tolist())
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-12, rtol=0)
    assert ours.dtype == torch.float64 and not ours.isnan().any()


def _gt():
    return {
        "images": [{"id": 1}],
        "categories": [{"id": 1}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}
        ],
    }


@pytest.mark.parametrize(
    "gt, dt, match",
    [
        ("nope", [], "gt"),
        ({"images": []}, [], "gt must be a COCO dataset"),
        (_gt(), 3, "dt must be"),
        (
            _gt(),
            [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}],
            r"dt\[0\] has no 'score'",
        ),
        (
            _gt(),
            [{"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}],
            r"dt\[0\] refers to image_id 2",
        ),
        (
            _gt(),
            [{"image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 1], "score": 1}],
            r"dt\[0\]\['bbox'\].*negative",
        ),
        (
            _gt(),
            [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": float("nan")}],
            r"dt\[0\]\['score'\]",
        ),
        (_gt(), [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 1}], "bbox"),
        (
            dict(
                _gt(),
                annotations=[{"id": 1, "image_id": 1, "category_id": 5, "bbox": [0, 0, 1, 1]}],
            ),
            [],
            r"gt\['annotations'\]\[0\] refers to category_id 5",
        ),
        (
            [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}],
            [],
            "dt must be a list",
        ),
        (
            [{"boxes": torch.tensor([[0.0, 0, 1, 1]]), "labels": torch.tensor([1])}],
            [{"boxes": torch.tensor([[0.0, 0, 1, 1]]), "labels": torch.tensor([1])}],
            r"dt\[0\] has no 'scores'",
        ),
        (
            [{"boxes": torch.tensor([[2.0, 0, 1, 1]]), "labels": torch.tensor([1])}],
            [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0)}],
            r"gt\[0\]\['boxes'\]",
        ),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(gt, dt, match):
    with pytest.raises(ValueError, match=match):
        coco_evaluate(gt, dt)


def test_inputs_are_not_modified():
    gt, dts = synthetic_coco(6, n_images=10)
    gt_copy, dts_copy = copy.deepcopy(gt), copy.deepcopy(dts)
    coco_evaluate(gt, dts)
    assert gt == gt_copy and dts == dts_copy


def test_accepts_json_paths(tmp_path):
    import json

    gt, dts = synthetic_coco(8, n_images=10)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dts))
    np.testing.assert_array_equal(
        coco_evaluate(str(tmp_path / "gt.json"), tmp_path / "dt.json").stats,
        coco_evaluate(gt, dts).stats,
    )
    with pytest.raises(ValueError, match="gt"):
        coco_evaluate(str(tmp_path / "missing.json"), dts)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: coco_box_iou(torch.ones(2, 3), torch.ones(1, 4)), "boxes1"),
        (lambda: coco_box_iou(torch.ones(2, 4), torch.tensor([[2.0, 0, 1, 1]])), "boxes2"),
        (
            lambda: coco_box_iou(
                torch.ones(2, 4), torch.ones(1, 4), torch.ones(2, dtype=torch.bool)
            ),
            "iscrowd",
        ),
        (lambda: coco_box_iou(torch.ones(2, 4), torch.ones(1, 4), torch.ones(1)), "iscrowd"),
    ],
)
def test_coco_box_iou_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------- the engine's array kernels


def test_coco_iou_xywh_equals_mask_api_on_xywh_arrays():
    from vizlib.metrics.coco_iou import coco_iou_xywh

    rng = np.random.default_rng(3)
    dt = np.concatenate([rng.uniform(0, 50, (12, 2)), rng.uniform(0, 30, (12, 2))], axis=1)
    gt = np.concatenate([rng.uniform(0, 50, (9, 2)), rng.uniform(0, 30, (9, 2))], axis=1)
    gt[::4, 2] = 0.0  # zero-width ground truth
    crowd = np.arange(9) % 3 == 1
    ref = mask_utils.iou(dt.tolist(), gt.tolist(), crowd.astype(int).tolist())
    np.testing.assert_array_equal(coco_iou_xywh(dt, gt, crowd), ref)  # bit for bit
    assert coco_iou_xywh(dt[:0], gt, crowd).shape == (0, 9)
    assert coco_iou_xywh(dt, gt[:0], crowd[:0]).shape == (12, 0)


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.ones((2, 3)), np.ones((1, 4)), np.zeros(1, bool)), "dt and gt"),
        ((np.ones((2, 4)), np.ones(4), np.zeros(1, bool)), "dt and gt"),
        ((np.ones((2, 4)), np.ones((1, 4)), np.zeros(2, bool)), "iscrowd"),
        ((np.ones((2, 4)), np.ones((1, 4)), np.zeros(1)), "iscrowd"),
    ],
)
def test_coco_iou_xywh_bad_input(args, match):
    from vizlib.metrics.coco_iou import coco_iou_xywh

    with pytest.raises(ValueError, match=match):
        coco_iou_xywh(*args)


def test_coco_sampled_precision_reads_the_envelope_at_each_recall_threshold():
    from vizlib.metrics import COCO_RECALL_THRESHOLDS, average_precision
    from vizlib.metrics.average_precision import coco_sampled_precision

    rng = np.random.default_rng(0)
    curves = []
    for _ in range(6):
        k = int(rng.integers(1, 30))
        recall = np.sort(rng.uniform(0, 1, k))
        precision = rng.uniform(0, 1, k)
        curves.append((precision, recall))
        got = coco_sampled_precision(precision, recall)  # [101]
        # the definition, one recall threshold at a time
        want = [
            precision[np.argmax(recall >= r) :].max() if (recall >= r).any() else 0.0
            for r in COCO_RECALL_THRESHOLDS
        ]
        np.testing.assert_allclose(got, want, rtol=0, atol=0)
        assert average_precision(
            torch.from_numpy(precision), torch.from_numpy(recall), "coco"
        ) == pytest.approx(got.mean(), abs=1e-15)
    # several curves at once, [2, 3, K], give what each curve gives alone
    k = 7
    p = rng.uniform(0, 1, (2, 3, k))
    r = np.sort(rng.uniform(0, 1, (2, 3, k)), axis=-1)
    batch = coco_sampled_precision(p, r)
    assert batch.shape == (2, 3, 101)
    for i in range(2):
        for j in range(3):
            np.testing.assert_array_equal(batch[i, j], coco_sampled_precision(p[i, j], r[i, j]))


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.ones(3), np.ones(4)), "same shape"),
        ((np.ones(()), np.ones(())), "same shape"),
        ((torch.ones(3), np.ones(3)), "NumPy"),
        ((np.ones(3), np.array([0.5, 0.2, 0.9])), "non-decreasing"),
    ],
)
def test_coco_sampled_precision_bad_input(args, match):
    from vizlib.metrics.average_precision import coco_sampled_precision

    with pytest.raises(ValueError, match=match):
        coco_sampled_precision(*args)
