"""OKS equals pycocotools' computeOks; PCK by hand; bad input."""

from __future__ import annotations

import contextlib
import copy
import io
import math

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vizlib.metrics import COCO_PERSON_SIGMAS, oks, pck

K = 17


def synthetic_keypoints(seed: int, n_images: int = 15):
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1} for i in range(n_images)]
    anns, dts = [], []
    for img in images:
        for _ in range(int(rng.integers(0, 4))):
            x, y = rng.uniform(0, 300, 2)
            w, h = rng.uniform(20, 150, 2)
            kx, ky = x + rng.uniform(0, w, K), y + rng.uniform(0, h, K)
            v = rng.choice([0, 1, 2], K, p=[0.3, 0.2, 0.5])
            if rng.random() < 0.25:
                v[:] = 0  # no labelled keypoint: COCO measures to twice the box
            kp = np.stack([kx * (v > 0), ky * (v > 0), v], axis=1)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img["id"],
                    "category_id": 1,
                    "bbox": [float(x), float(y), float(w), float(h)],
                    "area": float(w * h * rng.uniform(0.5, 1.0)),
                    "iscrowd": 0,
                    "keypoints": kp.ravel().tolist(),
                    "num_keypoints": int((v > 0).sum()),
                }
            )
            for _ in range(int(rng.integers(0, 3))):
                noise = rng.normal(0, rng.uniform(1, 30), (K, 2))
                d = np.stack([kx + noise[:, 0], ky + noise[:, 1], np.ones(K)], axis=1)
                dts.append(
                    {
                        "image_id": img["id"],
                        "category_id": 1,
                        "keypoints": d.ravel().tolist(),
                        "score": float(rng.random()),
                    }
                )
        for _ in range(int(rng.integers(0, 2))):  # a pose far away
            d = np.stack([rng.uniform(0, 600, K), rng.uniform(0, 600, K), np.ones(K)], axis=1)
            dts.append(
                {
                    "image_id": img["id"],
                    "category_id": 1,
                    "keypoints": d.ravel().tolist(),
                    "score": float(rng.random()),
                }
            )
    return {"images": images, "annotations": anns, "categories": [{"id": 1}]}, dts


@pytest.mark.parametrize("seed", [0, 1])
def test_oks_equals_pycocotools_compute_oks(seed):
    gt, dts = synthetic_keypoints(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(dts)), "keypoints")
        ev.evaluate()
    compared = no_visible = 0
    for img in gt["images"]:
        g = [a for a in gt["annotations"] if a["image_id"] == img["id"]]
        d = [a for a in dts if a["image_id"] == img["id"]]
        ref = ev.ious[(img["id"], 1)]
        if not g or not d:
            assert len(ref) == 0
            continue
        d = [d[i] for i in np.argsort([-a["score"] for a in d], kind="mergesort")]  # as computeOks
        bbox = torch.tensor([a["bbox"] for a in g], dtype=torch.float64)
        ours = oks(
            torch.tensor([a["keypoints"] for a in d], dtype=torch.float64).reshape(-1, K, 3),
            torch.tensor([a["keypoints"] for a in g], dtype=torch.float64).reshape(-1, K, 3),
            torch.tensor([a["area"] for a in g], dtype=torch.float64),
            COCO_PERSON_SIGMAS,
            gt_boxes=torch.cat([bbox[:, :2], bbox[:, :2] + bbox[:, 2:]], dim=1),
        )
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-9, rtol=0)
        compared += ours.numel()
        no_visible += sum(a["num_keypoints"] == 0 for a in g)
    assert compared > 20 and no_visible > 0


def test_oks_by_hand():
    sigmas = torch.tensor([0.1, 0.2], dtype=torch.float64)
    gt = torch.tensor([[[0.0, 0.0, 2], [10.0, 0.0, 0]]])  # only the first keypoint labelled
    pred = torch.tensor([[[3.0, 4.0], [99.0, 99.0]]])  # 5 px off; the unlabelled one is ignored
    area = torch.tensor([100.0])
    expected = math.exp(-(25 / (2 * 0.1) ** 2 / (100 + np.spacing(1)) / 2))  # k = 2 sigma
    assert oks(pred, gt, area, sigmas).item() == pytest.approx(expected, rel=1e-12)
    assert oks(gt[:, :, :2], gt, area, sigmas).item() == pytest.approx(1.0)


def test_pck_by_hand():
    gt = torch.tensor([[[0.0, 0, 1], [10, 0, 1], [5, 5, 0]], [[0.0, 0, 2], [10, 0, 0], [5, 5, 2]]])
    pred = torch.tensor([[[1.0, 0], [10, 5], [50, 50]], [[0.0, 3], [0, 0], [5, 5]]])
    # distances: instance 0: 1, 5, (unlabelled); instance 1: 3, (unlabelled), 0
    r = pck(pred, gt, threshold=0.5, normaliser=torch.tensor([4.0, 8.0]))  # thresholds 2 and 4
    assert r.per_keypoint.tolist() == pytest.approx([1.0, 0.0, 1.0])  # 2/2, 0/1, 1/1
    assert r.mean == pytest.approx(3 / 4)
    none_labelled = pck(pred, gt * torch.tensor([1.0, 1, 0]), 0.5, 10.0)
    assert math.isnan(none_labelled.mean) and none_labelled.per_keypoint.isnan().all()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: oks(torch.zeros(2, K), torch.ones(1, K, 3), torch.ones(1)), "pred_keypoints"),
        (lambda: oks(torch.zeros(2, K, 2), torch.ones(1, K, 2), torch.ones(1)), "gt_keypoints"),
        (lambda: oks(torch.zeros(2, 5, 2), torch.ones(1, K, 3), torch.ones(1)), "same K"),
        (lambda: oks(torch.zeros(2, K, 2), torch.ones(1, K, 3), torch.ones(2)), "gt_areas"),
        (lambda: oks(torch.zeros(2, K, 2), torch.ones(1, K, 3), -torch.ones(1)), "gt_areas"),
        (
            lambda: oks(torch.zeros(2, K, 2), torch.ones(1, K, 3), torch.ones(1), torch.ones(3)),
            "sigmas",
        ),
        (lambda: oks(torch.zeros(2, K, 2), torch.zeros(1, K, 3), torch.ones(1)), "gt_boxes"),
        (
            lambda: oks(
                torch.zeros(2, K, 2), torch.ones(1, K, 3), torch.ones(1), gt_boxes=torch.ones(2, 4)
            ),
            "gt_boxes",
        ),
        (
            lambda: oks(torch.full((2, K, 2), float("nan")), torch.ones(1, K, 3), torch.ones(1)),
            "pred_keypoints",
        ),
        (lambda: pck(torch.zeros(2, K, 2), torch.ones(3, K, 3), 0.5, 1.0), "same N and K"),
        (lambda: pck(torch.zeros(2, K, 2), torch.ones(2, K, 3), 2.0, 1.0), "threshold"),
        (lambda: pck(torch.zeros(2, K, 2), torch.ones(2, K, 3), 0.5, torch.ones(3)), "normaliser"),
        (lambda: pck(torch.zeros(2, K, 2), torch.ones(2, K, 3), 0.5, 0.0), "normaliser"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_accepts_tensors_that_require_grad():
    gt = torch.tensor([[[0.0, 0.0, 2], [10.0, 0.0, 2]]])
    pred = gt[:, :, :2].clone().requires_grad_()
    assert oks(pred, gt, torch.tensor([100.0]), torch.tensor([0.1, 0.1])).item() == pytest.approx(
        1.0
    )
    assert pck(pred, gt, 0.1, torch.tensor([10.0])).mean == 1.0
