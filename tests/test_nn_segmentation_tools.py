"""What the segmentation chapters share around their models (vizlib.nn.segmentation) and
their drawings (vizlib.viz.segmentation): the data's shapes, scores that agree with
vizlib.metrics computed by hand, timings, tables, and bad input."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

import vizlib.nn as vnn
from vizlib.data import CLASS_NAMES, PALETTE
from vizlib.data.real import VOC_CLASSES, DataNotFoundError
from vizlib.metrics import confusion_matrix, mean_iou, per_class_iou, pixel_accuracy
from vizlib.metrics.boundary import boundary_band
from vizlib.viz.segmentation import (
    IGNORED_GREY,
    colour_labels,
    legend_handles,
    segmentation_grid,
    trimap_figure,
)

# --------------------------------------------------------------------------- the data


@pytest.fixture(scope="module")
def scenes():
    return vnn.segmentation_data("scenes", image_size=32, train_images=6, val_images=4, seed=3)


def test_scene_data_shapes_and_classes(scenes):
    assert scenes.source == "scenes" and scenes.num_classes == 9 == len(scenes.class_names)
    assert scenes.class_names == tuple(CLASS_NAMES) and scenes.ignore_index == 255
    assert (len(scenes.train), len(scenes.val)) == (6, 4)
    image, mask = scenes.train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    assert mask.shape == (32, 32) and mask.dtype == torch.int64
    assert int(mask.min()) >= 0 and int(mask.max()) < scenes.num_classes


def test_scene_data_is_deterministic_and_train_differs_from_val(scenes):
    again = vnn.segmentation_data("scenes", image_size=32, train_images=6, val_images=4, seed=3)
    assert torch.equal(again.train[2][0], scenes.train[2][0])
    assert torch.equal(again.val[1][1], scenes.val[1][1])
    assert not torch.equal(scenes.train[0][0], scenes.val[0][0])
    other = vnn.segmentation_data("scenes", image_size=32, train_images=2, val_images=2, seed=4)
    assert not torch.equal(other.train[0][0], scenes.train[0][0])


def _write_voc(root, items: dict, split: str, size=(30, 40)) -> None:
    """A tiny PASCAL VOC 2012 segmentation split in the real on-disk layout."""
    voc = root / "VOCdevkit" / "VOC2012"
    h, w = size
    for k, (name, (cls, x1, y1, x2, y2)) in enumerate(items.items()):
        (voc / "JPEGImages").mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(k).integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(voc / "JPEGImages" / f"{name}.jpg", quality=95)
        seg = np.zeros((h, w), dtype=np.uint8)
        seg[y1:y2, x1:x2] = VOC_CLASSES.index(cls)
        seg[y1, x1:x2] = 255  # VOC's void border
        (voc / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        png = Image.fromarray(seg, mode="P")
        png.putpalette([v for i in range(256) for v in (i, i, i)])
        png.save(voc / "SegmentationClass" / f"{name}.png")
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
    (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(items) + "\n")


def test_voc_data_is_resized_with_nearest_masks(tmp_path):
    _write_voc(tmp_path, {"2008_000001": ("dog", 4, 6, 30, 24), "2008_000002": ("car", 0, 0, 20, 12)}, "train")
    _write_voc(tmp_path, {"2008_000003": ("person", 10, 10, 40, 30)}, "val")
    data = vnn.segmentation_data("voc", image_size=16, train_images=1, val_images=5, root=tmp_path)
    assert data.source == "voc" and data.num_classes == 21 and data.class_names == tuple(VOC_CLASSES)
    assert (len(data.train), len(data.val)) == (1, 1)  # at most what the split holds
    image, mask = data.val[0]
    assert type(image) is torch.Tensor and type(mask) is torch.Tensor  # plain tensors, not tv_tensors
    assert image.shape == (3, 16, 16) and image.is_floating_point() and mask.shape == (16, 16)
    assert mask.dtype == torch.int64
    # nearest neighbour: only labels of the original map, no blends of 0 and 15
    assert set(mask.unique().tolist()) <= {0, VOC_CLASSES.index("person"), 255}
    assert VOC_CLASSES.index("person") in mask.unique().tolist()


def test_voc_without_files_says_what_to_do(tmp_path):
    with pytest.raises(DataNotFoundError, match="download=True"):
        vnn.segmentation_data("voc", root=tmp_path)


@pytest.mark.parametrize("kwargs, word", [
    ({"source": "coco"}, "source"),
    ({"image_size": 0}, "image_size"),
    ({"train_images": -1}, "train_images"),
    ({"val_images": 2.5}, "val_images"),
    ({"seed": -1}, "seed"),
    ({"download": "yes"}, "download"),
])
def test_segmentation_data_bad_input(kwargs, word):
    with pytest.raises(ValueError, match=word):
        vnn.segmentation_data(**kwargs)


# ---------------------------------------------------------------------------- scores


class _Oracle(nn.Module):
    """Reads the true label that :class:`_EncodedScenes` wrote into channel 0: perfect logits."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.classes = nn.Parameter(torch.arange(num_classes, dtype=torch.float32), requires_grad=False)
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
    return vnn.SegmentationData(data.train, val, data.num_classes, data.class_names, data.ignore_index, data.source)


def test_a_perfect_model_scores_one_everywhere(scenes):
    data = _with_val(scenes, _EncodedScenes(scenes.val))
    model = _Oracle(data.num_classes)
    s = vnn.score_segmenter(model, data, widths=(0, 1, 3), batch_size=3, timing_images=2)
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
    s = vnn.score_segmenter(model, data, widths=widths, batch_size=2, timing_images=1)

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
        assert s["trimap"][w] == pytest.approx(mean_iou(confusion_matrix(pred, banded, data.num_classes, 255)))
    # the errors sit on boundaries: the narrower the band, the worse its mIoU
    assert s["trimap"][0] < s["trimap"][1] < s["trimap"][3] < s["mIoU"]


def test_score_segmenter_counts_parameters_and_keeps_the_mode(scenes):
    model = vnn.FCN(scenes.num_classes, "32s", channels=(4, 4, 8, 8, 8), hidden=8).train()
    s = vnn.score_segmenter(model, scenes, widths=(2,), batch_size=4, timing_images=2)
    assert s["parameters"] == vnn.count_parameters(model, trainable_only=True)
    assert model.training
    assert 0 <= s["mIoU"] <= 1 and set(s["trimap"]) == {2}


@pytest.mark.parametrize("kwargs, word", [
    ({"model": "fcn"}, "model"),
    ({"data": [(torch.rand(3, 8, 8), torch.zeros(8, 8, dtype=torch.long))]}, "data"),
    ({"widths": ()}, "widths"),
    ({"widths": 2}, "widths"),
    ({"widths": (1, -1)}, "widths"),
    ({"batch_size": 0}, "batch_size"),
    ({"timing_images": 0}, "timing_images"),
])
def test_score_segmenter_bad_input(scenes, kwargs, word):
    args = {"model": _Oracle(9), "data": scenes, **kwargs}
    with pytest.raises(ValueError, match=word):
        vnn.score_segmenter(args.pop("model"), args.pop("data"), **args)


# ---------------------------------------------------------------------------- timing


class _Sleeper(nn.Module):
    """Sleeps ``seconds`` per forward call, whatever the batch size."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.weight = nn.Parameter(torch.zeros(()))
        self.calls = 0
        self.modes = []

    def forward(self, x):
        self.calls += 1
        self.modes.append(self.training)
        time.sleep(self.seconds)
        return x * self.weight


def test_inference_ms_is_per_image_and_in_eval_mode():
    model = _Sleeper(0.04).train()
    ms = vnn.inference_ms(model, torch.rand(8, 3, 8, 8), repeats=3)
    assert model.calls == 4  # one warm-up, three timed
    assert model.modes == [False] * 4 and model.training  # timed in eval mode, mode restored
    assert 5 <= ms < 20  # 40 ms a call over 8 images: 5 ms per image (plus overhead)


def test_inference_ms_works_for_a_model_without_parameters():
    assert vnn.inference_ms(nn.Identity(), torch.rand(2, 3, 4, 4)) >= 0


@pytest.mark.parametrize("model, images, repeats, word", [
    ("model", torch.rand(1, 3, 8, 8), 1, "model"),
    (nn.Identity(), torch.rand(3, 8, 8), 1, "images"),
    (nn.Identity(), torch.zeros(1, 3, 8, 8, dtype=torch.long), 1, "images"),
    (nn.Identity(), torch.rand(0, 3, 8, 8), 1, "images"),
    (nn.Identity(), torch.rand(1, 3, 8, 8), 0, "repeats"),
])
def test_inference_ms_bad_input(model, images, repeats, word):
    with pytest.raises(ValueError, match=word):
        vnn.inference_ms(model, images, repeats=repeats)


# ----------------------------------------------------------------------- results table


def test_results_table_text_and_html():
    table = vnn.ResultsTable([{"model": "FCN-8s", "mIoU": 0.61234, "parameters": 1234567},
                              {"model": "<b>", "mIoU": 0.5, "extra": True}],
                             {"mIoU": ".3f", "parameters": ","})
    assert len(table) == 2 and table.columns == ["model", "mIoU", "parameters", "extra"]
    lines = str(table).splitlines()
    assert lines[0].split() == ["model", "mIoU", "parameters", "extra"]
    assert lines[1].split() == ["FCN-8s", "0.612", "1,234,567"]  # a missing value is empty
    assert lines[2].split() == ["<b>", "0.500", "True"]  # bools are not numbers to format
    html = table._repr_html_()
    assert "<td>0.612</td>" in html and "<td>&lt;b&gt;</td>" in html and "<b>" not in html
    assert html.count("<tr>") == 3


def test_results_table_empty():
    assert str(vnn.ResultsTable([])) == "(no rows)"
    assert "no rows" in vnn.ResultsTable([])._repr_html_()


@pytest.mark.parametrize("rows, formats, word", [
    ({"model": "a"}, None, "rows"),
    ("abc", None, "rows"),
    ([{"a": 1}, ["b", 2]], None, r"rows\[1\]"),
    ([{"a": 1}], [".3f"], "formats"),
    ([{"a": 1}], {"a": 3}, "formats"),
    ([{"a": 1}], {"a": "q"}, "formats"),
])
def test_results_table_bad_input(rows, formats, word):
    with pytest.raises(ValueError, match=word):
        vnn.ResultsTable(rows, formats)


# ---------------------------------------------------------------------------- drawing


def test_colour_labels_uses_the_scene_palette_and_grey_for_ignored():
    labels = torch.tensor([[0, 1, 8], [255, 3, 3]])
    rgb = colour_labels(labels)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    for (i, j) in [(0, 0), (0, 1), (0, 2), (1, 1)]:
        assert (rgb[i, j] == PALETTE[int(labels[i, j])]).all()
    assert (rgb[1, 0] == IGNORED_GREY).all()
    assert torch.equal(labels, torch.tensor([[0, 1, 8], [255, 3, 3]]))  # input untouched


def test_colour_labels_beyond_the_palette_is_fixed_and_distinct():
    labels = np.arange(21).reshape(3, 7)  # PASCAL VOC's 21 classes
    a, b = colour_labels(labels), colour_labels(labels.copy())
    assert (a == b).all()  # the same colours every call
    assert len({tuple(c) for c in a.reshape(-1, 3)}) >= 20


@pytest.mark.parametrize("labels, word", [
    (np.zeros((2, 2, 2), dtype=np.int64), "labels"),
    (np.zeros((2, 2), dtype=np.float32), "labels"),
    (np.array([[0, -1]]), "labels"),
])
def test_colour_labels_bad_input(labels, word):
    with pytest.raises(ValueError, match=word):
        colour_labels(labels)


def test_colour_labels_bad_num_labels():
    with pytest.raises(ValueError, match="num_labels"):
        colour_labels(np.zeros((2, 2), dtype=np.int64), num_labels=0)


def test_legend_handles_name_every_class():
    handles = legend_handles(CLASS_NAMES)
    assert [h.get_label() for h in handles] == list(CLASS_NAMES)
    with pytest.raises(ValueError, match="class_names"):
        legend_handles([])


def test_segmentation_grid_draws_one_row_per_image():
    images = [torch.rand(3, 16, 16) for _ in range(3)]
    truths = [torch.randint(0, 9, (16, 16)) for _ in range(3)]
    preds = {"a": truths, "b": [t.flip(0) for t in truths]}
    fig = segmentation_grid(images, truths, preds, titles=["x", "y", "z"], class_names=CLASS_NAMES)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * 4  # image, truth, a, b
    assert [ax.get_title() for ax in fig.axes[:4]] == ["image", "truth", "a", "b"]
    assert fig.axes[4].get_ylabel() == "y"
    assert len(fig.legends) == 1


@pytest.mark.parametrize("args, kwargs, word", [
    (([torch.rand(3, 4, 4)], [torch.zeros(4, 4, dtype=torch.long)] * 2, {}), {}, "same length"),
    (([torch.rand(3, 4, 4)], [torch.zeros(4, 4, dtype=torch.long)], {"a": []}), {}, "a 0"),
    (([], [], {}), {}, "no images"),
    (([torch.rand(3, 4, 4)], [torch.zeros(4, 4, dtype=torch.long)], [[]]), {}, "predictions"),
    (([torch.rand(3, 4, 4)], [torch.zeros(4, 4, dtype=torch.long)], {}), {"titles": ["a", "b"]}, "titles"),
])
def test_segmentation_grid_bad_input(args, kwargs, word):
    with pytest.raises(ValueError, match=word):
        segmentation_grid(*args, **kwargs)


def test_trimap_figure_draws_each_model_and_its_full_mIoU():
    fig = trimap_figure([1, 2, 4], {"a": [0.2, 0.3, 0.5], "b": [0.1, 0.2, 0.4]}, full={"a": 0.7})
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 3  # two curves and a's dotted full-image line
    assert list(lines[0].get_ydata()) == [0.2, 0.3, 0.5]


@pytest.mark.parametrize("widths, curves, full, word", [
    ([], {"a": []}, None, "widths"),
    ([1, 2], {}, None, "curves"),
    ([1, 2], {"a": [0.1]}, None, "curves"),
    ([1], {"a": [0.1]}, [0.5], "full"),
])
def test_trimap_figure_bad_input(widths, curves, full, word):
    with pytest.raises(ValueError, match=word):
        trimap_figure(widths, curves, full)
