"""vizlib.evaluate on tiny fake models: an oracle scores AP / OKS AP / mIoU 1, a model
that misses objects scores less and its misses are what the gallery shows (drawn by
vizlib.viz.gallery)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from vizlib.data import (
    DetectionScenes,
    KeypointScenes,
    SceneConfig,
    SegmentationScenes,
    collate_detection,
)
from vizlib.evaluate import (
    evaluate_detection,
    evaluate_keypoints,
    evaluate_segmentation,
    prediction_gallery,
)
from vizlib.viz.gallery import plot_gallery

CONFIG = SceneConfig(image_size=48, p_empty=0.15)


def _key(image: torch.Tensor) -> bytes:
    return (image.as_subclass(torch.Tensor) * 255).round().byte().numpy().tobytes()


class OracleDetector(nn.Module):
    """Returns each image's ground truth as its predictions (score 1)... except on the
    images listed in ``blind``, where it finds nothing."""

    def __init__(self, dataset, blind=()):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))  # so that it has a device
        self.truth = {}
        for i in range(len(dataset)):
            image, target = dataset[i]
            self.truth[_key(image)] = (
                i,
                {
                    k: v.as_subclass(torch.Tensor) if isinstance(v, torch.Tensor) else v
                    for k, v in target.items()
                },
            )
        self.blind = set(blind)

    def forward(self, images):
        out = []
        for image in images:
            i, t = self.truth[_key(image)]
            n = 0 if i in self.blind else len(t["boxes"])
            out.append(
                {
                    "boxes": t["boxes"][:n].float(),
                    "labels": t["labels"][:n],
                    "scores": torch.ones(n),
                    "masks": t["masks"][:n, None].float(),
                    "keypoints": t["keypoints"][:n],
                }
            )
        return out


@pytest.fixture(scope="module")
def detection():
    return DetectionScenes(12, seed=3, config=CONFIG)


def test_an_oracle_detector_scores_ap_one(detection):
    ev = evaluate_detection(OracleDetector(detection), detection, iou_types=("bbox", "segm"))
    assert ev["bbox/AP"] == pytest.approx(1.0) and ev["bbox/AP50"] == pytest.approx(1.0)
    assert ev["segm/AP"] == pytest.approx(1.0)
    assert ev.per_image == [1.0] * 12
    assert ev.details["ground_truth"]["info"]["description"].startswith("vizlib")  # the export
    assert "bbox/AP" in str(ev)


def test_missed_objects_lower_ap_and_lead_the_gallery(detection):
    with_objects = [i for i in range(len(detection)) if len(detection[i][1]["labels"])]
    blind = with_objects[:3]
    ev = evaluate_detection(OracleDetector(detection, blind=blind), detection)
    assert ev["bbox/AP"] < 0.95
    assert [ev.per_image[i] for i in blind] == [0.0, 0.0, 0.0]
    gallery = ev.gallery(k=3)
    assert sorted(gallery.worst) == sorted(blind)
    assert all(ev.per_image[i] == 1.0 for i in gallery.best)
    assert set(gallery.typical_failures) <= set(blind)  # only 3 failures: the worst again
    fig = plot_gallery(ev, k=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sum(t.startswith("worst: F1 0.00") for t in titles) == 3


def test_the_ground_truth_built_from_targets_agrees_with_the_export(detection):
    blind = [1, 4]
    plain = [detection[i] for i in range(len(detection))]  # a list: no export, same targets
    model = OracleDetector(detection, blind=blind)
    from_export = evaluate_detection(model, detection)
    from_targets = evaluate_detection(
        model, plain, class_names=("background", "a", "b", "c", "d", "e")
    )
    assert "info" not in from_targets.details["ground_truth"]
    assert from_targets.metrics == pytest.approx(from_export.metrics)
    loader = DataLoader(detection, batch_size=5, shuffle=True, collate_fn=collate_detection)
    assert evaluate_detection(model, loader).metrics == from_export.metrics  # index order kept


def test_evaluate_detection_restores_train_mode_and_rejects_bad_input(detection):
    model = OracleDetector(detection).train()
    evaluate_detection(model, detection)
    assert model.training
    with pytest.raises(ValueError, match="iou_types"):
        evaluate_detection(model, detection, iou_types=("mask",))
    with pytest.raises(ValueError, match="score_threshold"):
        evaluate_detection(model, detection, score_threshold=1.5)

    class NotADetector(nn.Module):
        def forward(self, images):
            return [torch.zeros(3) for _ in images]

    with pytest.raises(ValueError, match="one dict per image"):
        evaluate_detection(NotADetector(), detection)


def test_an_oracle_keypoint_model_scores_oks_ap_one():
    data = KeypointScenes(10, seed=5, config=CONFIG)
    ev = evaluate_keypoints(OracleDetector(data), data)
    assert ev["keypoints/AP"] == pytest.approx(1.0) and ev["bbox/AP"] == pytest.approx(1.0)
    assert all(s == pytest.approx(1.0) for s in ev.per_image)

    with_objects = [i for i in range(len(data)) if len(data[i][1]["labels"])]
    blind = OracleDetector(data, blind=with_objects[:2])
    ev = evaluate_keypoints(blind, data, with_boxes=False)
    assert ev["keypoints/AP"] < 1.0 and "bbox/AP" not in ev.metrics
    assert sorted(ev.gallery(k=2).worst) == sorted(with_objects[:2])
    assert len([a for a in plot_gallery(ev, k=2).axes if a.get_title()]) >= 4


class OracleSegmenter(nn.Module):
    """Logits that put all the weight on the true class (optionally at half resolution)."""

    def __init__(self, dataset, num_classes, half=False, wrong=()):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.truth = {
            _key(dataset[i][0]): (i, dataset[i][1].as_subclass(torch.Tensor))
            for i in range(len(dataset))
        }
        self.num_classes, self.half, self.wrong = num_classes, half, set(wrong)

    def forward(self, images):
        maps = []
        for image in images:
            i, mask = self.truth[_key(image)]
            maps.append(torch.zeros_like(mask) if i in self.wrong else mask)
        logits = (
            nn.functional.one_hot(torch.stack(maps), self.num_classes).permute(0, 3, 1, 2).float()
        )
        return {"out": logits[..., ::2, ::2] if self.half else logits}


def test_an_oracle_segmenter_scores_miou_one_and_a_wrong_one_less():
    data = SegmentationScenes(6, seed=2, config=CONFIG)
    ev = evaluate_segmentation(OracleSegmenter(data, 9), data, num_classes=9)
    assert ev["mIoU"] == pytest.approx(1.0) and ev["pixel_accuracy"] == pytest.approx(1.0)
    assert ev.per_image == [1.0] * 6
    defined = [v for v in ev.details["per_class_iou"].values() if not math.isnan(v)]
    assert defined and all(v == 1.0 for v in defined)
    assert "grass" in ev.details["per_class_iou"]

    wrong = OracleSegmenter(data, 9, wrong=[2])
    ev = evaluate_segmentation(wrong, DataLoader(data, batch_size=4), num_classes=9)
    assert ev["mIoU"] < 1.0
    assert ev.gallery(k=1).worst == [2]
    assert ev.per_image[2] < 0.5 and ev.per_image[0] == 1.0
    fig = plot_gallery(ev, k=2)
    assert any(t.startswith("worst: mIoU") for t in (a.get_title() for a in fig.axes))

    # Half-resolution logits are upsampled to the target first (as FCN does).
    half = evaluate_segmentation(OracleSegmenter(data, 9, half=True), data, num_classes=9)
    assert 0.5 < half["mIoU"] <= 1.0
    with pytest.raises(ValueError, match="logits"):
        evaluate_segmentation(OracleSegmenter(data, 9), data, num_classes=5)


def test_prediction_gallery_picks_best_worst_and_typical_failures():
    scores = [0.9, 0.1, 0.45, 0.3, float("nan"), 0.95, 0.2, 0.4, 0.05, 0.35, 0.6]
    g = prediction_gallery(scores, k=2, fail_below=0.5)
    assert g.best == [5, 0]
    assert g.worst == [8, 1]
    # failing, worst removed: 0.2 (6), 0.3 (3), 0.35 (9), 0.4 (7), 0.45 (2) -> the middle two
    assert g.typical_failures == [3, 9]
    assert 4 not in g.best + g.worst + g.typical_failures  # NaN: no score, never shown
    assert prediction_gallery([0.9, 0.8], k=2).typical_failures == []  # nothing fails
    with pytest.raises(ValueError, match="k"):
        prediction_gallery(scores, k=0)


def test_a_torchvision_detector_trains_with_fit_and_evaluates():
    """The real thing, tiny: torchvision's dict of four losses through fit, then COCO AP."""
    import torchvision

    from vizlib.train import fit

    data = DetectionScenes(4, seed=1, config=SceneConfig(image_size=64))
    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=6, min_size=64, max_size=64
    )
    loader = DataLoader(data, batch_size=2, collate_fn=collate_detection)
    history = fit(
        model,
        loader,
        torch.optim.SGD(model.parameters(), lr=0.01),
        epochs=1,
        device="cpu",
        progress="off",
        clip_grad_norm=10.0,
    )
    assert history.terms == [
        "loss_classifier",
        "loss_box_reg",
        "loss_objectness",
        "loss_rpn_box_reg",
    ]
    assert not model.training
    ev = evaluate_detection(model, data)
    assert 0.0 <= ev["bbox/AP"] <= 1.0 and len(ev.per_image) == 4
