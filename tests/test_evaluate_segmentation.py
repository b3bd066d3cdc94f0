"""vizlib.evaluate.score_segmenter: scores that agree with vizlib.metrics computed by
hand, trimap bands, parameters, the model's mode kept, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import vizlib.nn as vnn
from vizlib.data import SegmentationData, segmentation_data
from vizlib.evaluate import score_segmenter
from vizlib.metrics import confusion_matrix, mean_iou, per_class_iou, pixel_accuracy
from vizlib.metrics.boundary import boundary_band


@pytest.fixture(scope="module")
def scenes():
    return segmentation_data("scenes", image_size=32, train_images=6, val_images=4, seed=3)


class _Oracle(nn.Module):
    """Reads the true label that :class:`_EncodedScenes` wrote into channel 0: perfect logits."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.classes = nn.Parameter(
            torch.arange(num_classes, dtype=torch.float32), requires_grad=False
        )
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        label = torch.round(x[:, :1] * 20)  # [N, 1, H, W]
        return -self.scale * (label - self.classes[None, :, None, None]) ** 2  # [N, C, H, W]


class _EncodedScenes(torch.utils.data.Dataset):
    """Scenes whose image carries the mask (channel 0 = label / 20), optionally corrupted:
    one class relabelled 0, and/or the map shifted right by ``shift`` pixels (errors on
    boundaries only)."""

    def __init__(self, base, flip_class: int | None = None, shift: int = 0):
        self.base, self.flip_class, self.shift = base, flip_class, shift

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        image, mask = self.base[i]
        shown = mask.clone()
        if self.flip_class is not None:  # the "model" will call this class 0 instead
            shown[shown == self.flip_class] = 0
        shown = shown.roll(self.shift, dims=-1)
        image = image.clone()
        image[0] = shown.float() / 20
        return image, mask


def _with_val(data, val):
    return SegmentationData(
        data.train, val, data.num_classes, data.class_names, data.ignore_index, data.source
    )


def test_a_perfect_model_scores_one_everywhere(scenes):
    data = _with_val(scenes, _EncodedScenes(scenes.val))
    model = _Oracle(data.num_classes)
    s = score_segmenter(model, data, widths=(0, 1, 3), batch_size=3, timing_images=2)
    assert s["mIoU"] == pytest.approx(1.0) and s["pixel_accuracy"] == pytest.approx(1.0)
    assert s["trimap"] == {0: pytest.approx(1.0), 1: pytest.approx(1.0), 3: pytest.approx(1.0)}
    assert s["parameters"] == 1  # the trainable scale only
    assert s["ms_per_image"] > 0
    assert np.isnan(s["per_class_iou"]["background"])  # never true, never predicted
    assert len(s["evaluation"].predictions) == len(data.val)


def test_scores_agree_with_vizlib_metrics_computed_by_hand(scenes):
    """A model that confuses one class and is off by two pixels: mIoU, accuracy,
    per-class and trimap IoU equal vizlib.metrics on the predictions, counted by hand."""
    present = torch.cat([scenes.val[i][1].flatten() for i in range(len(scenes.val))]).unique()
    flip = int(present[-1])  # a class that occurs: predicted as class 0
    data = _with_val(scenes, _EncodedScenes(scenes.val, flip_class=flip, shift=2))
    model = _Oracle(data.num_classes)
    widths = (0, 1, 3)
    s = score_segmenter(model, data, widths=widths, batch_size=2, timing_images=1)

    preds, masks = [], []
    with torch.no_grad():
        for i in range(len(data.val)):
            image, mask = data.val[i]
            preds.append(model(image[None]).argmax(1)[0])
            masks.append(mask)
    pred, truth = torch.stack(preds), torch.stack(masks)  # [N, H, W]
    cm = confusion_matrix(pred, truth, data.num_classes, 255)
    assert s["mIoU"] == pytest.approx(mean_iou(cm))
    assert s["mIoU"] < 1
    assert s["pixel_accuracy"] == pytest.approx(pixel_accuracy(cm))
    iou = per_class_iou(cm)
    assert s["per_class_iou"][data.class_names[flip]] == pytest.approx(0.0)
    for c, name in enumerate(data.class_names):
        if not torch.isnan(iou[c]):
            assert s["per_class_iou"][name] == pytest.approx(float(iou[c]))
    for w in widths:
        band = torch.stack([boundary_band(m, w, 255) for m in masks])  # [N, H, W] bool
        banded = torch.where(band, truth, torch.full_like(truth, 255))
        assert s["trimap"][w] == pytest.approx(
            mean_iou(confusion_matrix(pred, banded, data.num_classes, 255))
        )
    # the errors sit on boundaries: the narrower the band, the worse its mIoU
    assert s["trimap"][0] < s["trimap"][1] < s["trimap"][3] < s["mIoU"]


def test_score_segmenter_counts_parameters_and_keeps_the_mode(scenes):
    model = vnn.FCN(scenes.num_classes, "32s", channels=(4, 4, 8, 8, 8), hidden=8).train()
    s = score_segmenter(model, scenes, widths=(2,), batch_size=4, timing_images=2)
    assert s["parameters"] == vnn.count_parameters(model, trainable_only=True)
    assert model.training
    assert 0 <= s["mIoU"] <= 1 and set(s["trimap"]) == {2}


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"model": "fcn"}, "model"),
        ({"data": [(torch.rand(3, 8, 8), torch.zeros(8, 8, dtype=torch.long))]}, "data"),
        ({"widths": ()}, "widths"),
        ({"widths": 2}, "widths"),
        ({"widths": (1, -1)}, "widths"),
        ({"batch_size": 0}, "batch_size"),
        ({"timing_images": 0}, "timing_images"),
    ],
)
def test_score_segmenter_bad_input(scenes, kwargs, word):
    args = {"model": _Oracle(9), "data": scenes, **kwargs}
    with pytest.raises(ValueError, match=word):
        score_segmenter(args.pop("model"), args.pop("data"), **args)
