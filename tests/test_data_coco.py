"""COCO export: pycocotools reads it, perfect predictions score AP = 1, and the two
ground-truth exports (scenes, target dicts) write the same annotations."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vizlib.data import (
    DETECTION_CLASSES,
    NUM_KEYPOINTS,
    STUFF_IDS,
    DetectionScenes,
    SceneConfig,
    make_scene,
    panoptic_rgb_to_ids,
    targets_to_coco,
    to_coco,
    to_coco_results,
)
from vizlib.evaluate.coco import evaluate_coco

CONFIG = SceneConfig(image_size=48, p_empty=0.15)


@pytest.fixture(scope="module")
def dataset():
    return DetectionScenes(24, seed=6, config=CONFIG)


def _perfect(dataset):
    """Predictions equal to the ground truth (score 1), as a model would return them."""
    preds, ids = [], []
    for scene in dataset.scenes():
        n = scene.num_objects
        preds.append(
            {
                "boxes": torch.from_numpy(scene.boxes),
                "scores": torch.ones(n),
                "labels": torch.from_numpy(scene.labels),
                "masks": torch.from_numpy(scene.masks).float()[
                    :, None
                ],  # (N, 1, H, W) probabilities
                "keypoints": torch.from_numpy(scene.keypoints),
            }
        )
        ids.append(scene.index)
    return preds, ids


def test_export_loads_in_pycocotools(dataset, tmp_path):
    from pycocotools.coco import COCO

    gt = to_coco(dataset, "instances", out_dir=tmp_path, write_images=True)
    coco = COCO(str(tmp_path / "instances.json"))
    assert len(coco.getImgIds()) == 24 and len(coco.getCatIds()) == 5
    assert len(coco.getAnnIds()) == sum(s.num_objects for s in dataset.scenes())
    assert any(s.num_objects == 0 for s in dataset.scenes()), "the set includes empty images"
    # masks survive the RLE round trip; bbox is [x, y, w, h]
    scene = next(s for s in dataset.scenes() if s.num_objects)
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[scene.index]))[0]
    np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), scene.masks[0])
    x1, y1, x2, y2 = scene.boxes[0].tolist()
    assert ann["bbox"] == [x1, y1, x2 - x1, y2 - y1] and ann["area"] == scene.masks[0].sum()
    assert gt["images"][0]["width"] == 48
    assert (tmp_path / "images" / gt["images"][0]["file_name"]).exists()


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_perfect_predictions_score_ap_one(dataset, iou_type):
    gt = to_coco(dataset, "instances")
    preds, ids = _perfect(dataset)
    stats = evaluate_coco(gt, to_coco_results(preds, ids, iou_type), iou_type)
    assert stats[0] == pytest.approx(1.0) and stats[1] == pytest.approx(1.0)


def test_perfect_keypoints_score_oks_ap_one(dataset, tmp_path):
    gt = to_coco(dataset, "keypoints", out_dir=tmp_path)
    cat = json.loads((tmp_path / "keypoints.json").read_text())["categories"][0]
    assert len(cat["keypoints"]) == NUM_KEYPOINTS and cat["skeleton"]
    preds, ids = _perfect(dataset)
    stats = evaluate_coco(gt, to_coco_results(preds, ids, "keypoints"), "keypoints")
    assert stats[0] == pytest.approx(1.0)


def test_wrong_predictions_score_below_one(dataset):
    gt = to_coco(dataset, "instances")
    preds, ids = _perfect(dataset)
    for p in preds:
        p["boxes"] = p["boxes"] + 4.0  # shifted boxes
    assert evaluate_coco(gt, to_coco_results(preds, ids, "bbox"), "bbox")[0] < 0.8
    # no detections: AP and AR are 0 wherever there are objects (and -1, "undefined", in an
    # area range without any: these 48-pixel scenes hold no medium or large object)
    empty = evaluate_coco(gt, [], "bbox")
    assert empty[0] == 0.0 and empty[1] == 0.0 and empty[8] == 0.0
    assert set(empty.tolist()) <= {0.0, -1.0}


def test_targets_to_coco_writes_what_to_coco_writes(dataset):
    """The two ground-truth exports share one annotation writer: the same scenes as
    target dicts give the same annotations (ids, boxes, areas, masks, keypoints)."""
    scenes = list(dataset.scenes())
    targets = [
        {
            "boxes": torch.from_numpy(s.boxes),
            "labels": torch.from_numpy(s.labels),
            "masks": torch.from_numpy(s.masks),
            "keypoints": torch.from_numpy(s.keypoints),
        }
        for s in scenes
    ]
    ids = [s.index for s in scenes]
    sizes = [s.image.shape[:2] for s in scenes]
    for task in ("instances", "keypoints"):
        exported = to_coco(dataset, task)
        built = targets_to_coco(
            targets, ids, sizes, DETECTION_CLASSES, keypoints=task == "keypoints"
        )
        assert built["annotations"] == exported["annotations"]
        assert [(i["id"], i["width"], i["height"]) for i in built["images"]] == [
            (i["id"], i["width"], i["height"]) for i in exported["images"]
        ]
        present = {a["category_id"] for a in exported["annotations"]}
        assert [c["id"] for c in built["categories"]] == sorted(present)
        assert all(c["name"] == DETECTION_CLASSES[c["id"]] for c in built["categories"])
    # without masks the area is the box's
    no_masks = targets_to_coco(
        [{"boxes": torch.tensor([[1.0, 2.0, 5.0, 10.0]]), "labels": torch.tensor([3])}],
        [7],
        [(16, 16)],
    )
    assert (
        no_masks["annotations"][0]["area"] == 32.0
        and "segmentation" not in no_masks["annotations"][0]
    )
    with pytest.raises(ValueError, match="image ids"):
        targets_to_coco(targets[:2], [1, 1], sizes[:2])
    with pytest.raises(ValueError, match="targets"):
        targets_to_coco(targets[:2], [1], sizes[:2])


def test_panoptic_export_round_trips(tmp_path):
    scenes = [make_scene(2, i, CONFIG) for i in range(6)]
    coco = to_coco(scenes, "panoptic", out_dir=tmp_path)
    assert {c["isthing"] for c in coco["categories"]} == {0, 1}
    for scene, ann in zip(scenes, coco["annotations"], strict=True):
        ids = panoptic_rgb_to_ids(np.array(Image.open(tmp_path / "panoptic" / ann["file_name"])))
        assert (ids > 0).all(), "every pixel belongs to a segment (stuff covers the rest)"
        by_id = {s["id"]: s for s in ann["segments_info"]}
        assert set(np.unique(ids)) == set(by_id)
        for seg_id, seg in by_id.items():
            region = ids == seg_id
            assert seg["area"] == region.sum()
            if seg["category_id"] in STUFF_IDS:
                assert (scene.semantic[region] == seg["category_id"]).all()
            else:
                np.testing.assert_array_equal(region, scene.masks[seg_id - 1])
    assert (tmp_path / "panoptic.json").exists()


def test_bad_arguments():
    with pytest.raises(ValueError, match="task"):
        to_coco([make_scene(0, 0, CONFIG)], "captions")
    with pytest.raises(ValueError, match="out_dir"):
        to_coco([make_scene(0, 0, CONFIG)], "panoptic")
    with pytest.raises(ValueError, match="image ids"):
        to_coco_results([{}], [], "bbox")
