"""The one COCO entry point (vizlib.evaluate.coco.evaluate_coco) gives pycocotools' numbers,
all of them, for every IoU type the chapters use: boxes (through vizlib's own engine),
masks and keypoints (through pycocotools)."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from vizlib.data import (
    KEYPOINT_OKS_SIGMAS,
    DetectionScenes,
    KeypointScenes,
    SceneConfig,
    to_coco,
    to_coco_results,
)
from vizlib.data.coco_export import COCO_IOU_TYPES
from vizlib.evaluate.coco import evaluate_coco

CONFIG = SceneConfig(image_size=64, p_empty=0.1)


def pycocotools_stats(gt: dict, results: list, iou_type: str) -> np.ndarray:
    """pycocotools run by hand, the reference: loadRes, evaluate, accumulate, summarize."""
    gt, results = copy.deepcopy(gt), copy.deepcopy(results)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(results), iou_type)
        if iou_type == "keypoints":
            ev.params.kpt_oks_sigmas = np.asarray(KEYPOINT_OKS_SIGMAS, dtype=float)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


def noisy_predictions(dataset, seed: int) -> tuple[list[dict], list[int]]:
    """A detector's output, imperfect in every way AP measures: jittered boxes, masks and
    keypoints, misses, duplicates, wrong labels, false positives and tied scores."""
    g = torch.Generator().manual_seed(seed)
    preds, ids = [], []
    for scene in dataset.scenes():
        boxes = torch.from_numpy(scene.boxes).float().reshape(-1, 4)
        labels = torch.from_numpy(scene.labels).long()
        masks = torch.from_numpy(scene.masks)
        kp = torch.from_numpy(scene.keypoints).float()
        keep = torch.rand(len(boxes), generator=g) > 0.15  # misses
        boxes, labels, masks, kp = boxes[keep], labels[keep], masks[keep], kp[keep]
        dup = torch.rand(len(boxes), generator=g) < 0.3  # duplicates of some objects
        boxes = torch.cat([boxes, boxes[dup]])
        labels = torch.cat([labels, labels[dup]])
        masks = torch.cat([masks, masks[dup]])
        kp = torch.cat([kp, kp[dup]])
        wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
        boxes = boxes + torch.randn(boxes.shape, generator=g) * 0.12 * wh
        boxes = torch.cat(
            [torch.minimum(boxes[:, :2], boxes[:, 2:]), torch.maximum(boxes[:, :2], boxes[:, 2:])],
            1,
        )
        masks = torch.roll(masks, shifts=(int(torch.randint(-2, 3, (), generator=g)),), dims=(2,))
        kp[..., :2] += torch.randn(kp[..., :2].shape, generator=g) * 0.4
        wrong = torch.rand(len(labels), generator=g) < 0.1
        labels = torch.where(wrong, torch.randint(1, 6, labels.shape, generator=g), labels)
        n_fp = int(torch.randint(0, 3, (), generator=g))  # background false positives
        xy = torch.rand(n_fp, 2, generator=g) * 48
        boxes = torch.cat(
            [boxes, torch.cat([xy, xy + 4 + torch.rand(n_fp, 2, generator=g) * 12], 1)]
        )
        labels = torch.cat([labels, torch.randint(1, 6, (n_fp,), generator=g)])
        masks = torch.cat([masks, torch.zeros(n_fp, *masks.shape[1:], dtype=torch.bool)])
        kp = torch.cat([kp, torch.rand(n_fp, *kp.shape[1:], generator=g) * 48])
        scores = torch.rand(len(boxes), generator=g)
        scores = torch.where(
            torch.rand(len(boxes), generator=g) < 0.2, scores.mul(4).round() / 4, scores
        )  # ties
        preds.append(
            {"boxes": boxes, "scores": scores, "labels": labels, "masks": masks, "keypoints": kp}
        )
        ids.append(scene.index)
    return preds, ids


def crowded_coco(seed: int, n_images: int = 40) -> tuple[dict, list]:
    """A COCO-like set: objects of all three sizes, crowds, area fields smaller than the
    box (as masks are), and more than 100 detections on some images."""
    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "width": 640, "height": 480} for i in range(n_images)]
    anns, results = [], []
    for img in images:
        for _ in range(rng.poisson(6)):
            side = float(np.exp(rng.uniform(np.log(8), np.log(400))))
            w, h = side * rng.uniform(0.6, 1.4), side * rng.uniform(0.6, 1.4)
            x, y = rng.uniform(0, 600), rng.uniform(0, 450)
            c = int(rng.integers(1, 5))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img["id"],
                    "category_id": c,
                    "bbox": [x, y, w, h],
                    "area": w * h * rng.uniform(0.5, 0.9),
                    "iscrowd": int(rng.random() < 0.05),
                }
            )
            for _ in range(rng.poisson(1.5)):
                j = rng.normal(0, 0.1, 4) * [w, h, w, h]
                results.append(
                    {
                        "image_id": img["id"],
                        "category_id": c if rng.random() > 0.1 else int(rng.integers(1, 5)),
                        "bbox": [x + j[0], y + j[1], max(w + j[2], 1.0), max(h + j[3], 1.0)],
                        "score": float(np.round(rng.beta(4, 2), 1)),
                    }
                )
        for _ in range(rng.poisson(20 if img["id"] % 7 else 130)):
            s = float(np.exp(rng.uniform(np.log(8), np.log(300))))
            results.append(
                {
                    "image_id": img["id"],
                    "category_id": int(rng.integers(1, 5)),
                    "bbox": [rng.uniform(0, 600), rng.uniform(0, 450), s, s * rng.uniform(0.5, 2)],
                    "score": float(rng.beta(2, 4)),
                }
            )
    cats = [{"id": c, "name": f"class{c}"} for c in range(1, 5)]
    return {"images": images, "annotations": anns, "categories": cats}, results


@pytest.fixture(scope="module")
def scenes():
    return DetectionScenes(30, seed=11, config=CONFIG)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_all_12_numbers_equal_pycocotools_on_scenes(scenes, iou_type, seed):
    gt = to_coco(scenes, "instances")
    preds, ids = noisy_predictions(scenes, seed)
    results = to_coco_results(preds, ids, iou_type)
    ours = evaluate_coco(gt, results, iou_type)
    ref = pycocotools_stats(gt, results, iou_type)
    assert ours.shape == (12,)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    assert 0.05 < ours[0] < 0.95, "a test of imperfect predictions, not of 0 or 1"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_all_12_box_numbers_equal_pycocotools_with_crowds_and_every_size(seed):
    gt, results = crowded_coco(seed)
    ours = evaluate_coco(gt, results, "bbox")
    np.testing.assert_allclose(ours, pycocotools_stats(gt, results, "bbox"), rtol=0, atol=1e-12)
    assert (ours[3:6] > 0).all(), "small, medium and large objects all took part"


def test_all_10_keypoint_numbers_equal_pycocotools():
    data = KeypointScenes(30, seed=12, config=CONFIG)
    gt = to_coco(data, "keypoints")
    preds, ids = noisy_predictions(data, 3)
    results = to_coco_results(preds, ids, "keypoints")
    ours = evaluate_coco(gt, results, "keypoints")
    assert ours.shape == (10,)
    np.testing.assert_allclose(
        ours, pycocotools_stats(gt, results, "keypoints"), rtol=0, atol=1e-12
    )
    assert 0.05 < ours[0] < 0.95


def test_boxes_are_evaluated_by_vizlibs_engine_without_pycocotools(scenes, monkeypatch):
    """The fastest engine that stays equal: boxes never reach COCOeval."""
    import pycocotools.cocoeval

    gt = to_coco(scenes, "instances")
    preds, ids = noisy_predictions(scenes, 0)
    results = to_coco_results(preds, ids, "bbox")
    expected = pycocotools_stats(gt, results, "bbox")

    def refuse(*args, **kwargs):
        raise AssertionError("pycocotools was called for boxes")

    monkeypatch.setattr(pycocotools.cocoeval, "COCOeval", refuse)
    np.testing.assert_allclose(evaluate_coco(gt, results, "bbox"), expected, rtol=0, atol=1e-12)
    with pytest.raises(AssertionError, match="pycocotools was called"):
        evaluate_coco(gt, to_coco_results(preds, ids, "segm"), "segm")


@pytest.mark.parametrize("iou_type", COCO_IOU_TYPES)
def test_no_detections_give_what_pycocotools_gives_an_empty_result_set(iou_type):
    data = KeypointScenes(12, seed=13, config=CONFIG)
    gt = to_coco(data, "keypoints")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        empty = COCO()
        empty.dataset = {"images": gt["images"], "annotations": [], "categories": gt["categories"]}
        empty.createIndex()
        ev = COCOeval(coco, empty, iou_type)
        ev.params.kpt_oks_sigmas = np.asarray(KEYPOINT_OKS_SIGMAS, dtype=float)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ours = evaluate_coco(gt, [], iou_type)
    np.testing.assert_array_equal(ours, ev.stats)
    assert ours[0] == 0.0 and set(ours.tolist()) <= {0.0, -1.0}


def test_inputs_are_not_modified(scenes):
    gt = to_coco(scenes, "instances")
    preds, ids = noisy_predictions(scenes, 1)
    for iou_type in ("bbox", "segm"):
        results = to_coco_results(preds, ids, iou_type)
        gt_copy, results_copy = copy.deepcopy(gt), copy.deepcopy(results)
        evaluate_coco(gt, results, iou_type)
        assert gt == gt_copy and results == results_copy


def test_verbose_prints_the_table(scenes, capsys):
    gt = to_coco(scenes, "instances")
    preds, ids = noisy_predictions(scenes, 0)
    evaluate_coco(gt, to_coco_results(preds, ids, "bbox"), "bbox", verbose=True)
    assert (
        "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]"
        in capsys.readouterr().out
    )


def test_bad_arguments_are_named(scenes):
    gt = to_coco(scenes, "instances")
    with pytest.raises(ValueError, match="iou_type"):
        evaluate_coco(gt, [], "boxes")
    with pytest.raises(ValueError, match="ground_truth"):
        evaluate_coco({"images": []}, [], "bbox")
    with pytest.raises(ValueError, match="results"):
        evaluate_coco(gt, {"bbox": []}, "bbox")
    with pytest.raises(ValueError, match="oks_sigmas"):
        evaluate_coco(gt, [], "bbox", oks_sigmas=[0.1])
