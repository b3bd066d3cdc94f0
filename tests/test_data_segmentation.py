"""vizlib.data.segmentation: the segmentation chapters' data: shapes, classes, determinism,
PASCAL VOC resized with nearest-neighbour masks (offline, on a tiny fixture in the real
on-disk layout), and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vizlib.data import CLASS_NAMES, DATA_SOURCES, check_data_args, segmentation_data
from vizlib.data.real import VOC_CLASSES, DataNotFoundError


@pytest.fixture(scope="module")
def scenes():
    return segmentation_data("scenes", image_size=32, train_images=6, val_images=4, seed=3)


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
    again = segmentation_data("scenes", image_size=32, train_images=6, val_images=4, seed=3)
    assert torch.equal(again.train[2][0], scenes.train[2][0])
    assert torch.equal(again.val[1][1], scenes.val[1][1])
    assert not torch.equal(scenes.train[0][0], scenes.val[0][0])
    other = segmentation_data("scenes", image_size=32, train_images=2, val_images=2, seed=4)
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
    _write_voc(
        tmp_path,
        {"2008_000001": ("dog", 4, 6, 30, 24), "2008_000002": ("car", 0, 0, 20, 12)},
        "train",
    )
    _write_voc(tmp_path, {"2008_000003": ("person", 10, 10, 40, 30)}, "val")
    data = segmentation_data("voc", image_size=16, train_images=1, val_images=5, root=tmp_path)
    assert (
        data.source == "voc" and data.num_classes == 21 and data.class_names == tuple(VOC_CLASSES)
    )
    assert (len(data.train), len(data.val)) == (1, 1)  # at most what the split holds
    image, mask = data.val[0]
    assert (
        type(image) is torch.Tensor and type(mask) is torch.Tensor
    )  # plain tensors, not tv_tensors
    assert image.shape == (3, 16, 16) and image.is_floating_point() and mask.shape == (16, 16)
    assert mask.dtype == torch.int64
    # nearest neighbour: only labels of the original map, no blends of 0 and 15
    assert set(mask.unique().tolist()) <= {0, VOC_CLASSES.index("person"), 255}
    assert VOC_CLASSES.index("person") in mask.unique().tolist()


def test_voc_without_files_says_what_to_do(tmp_path):
    with pytest.raises(DataNotFoundError, match="download=True"):
        segmentation_data("voc", root=tmp_path)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"source": "coco"}, "source"),
        ({"image_size": 0}, "image_size"),
        ({"train_images": -1}, "train_images"),
        ({"val_images": 2.5}, "val_images"),
        ({"seed": -1}, "seed"),
        ({"download": "yes"}, "download"),
    ],
)
def test_segmentation_data_bad_input(kwargs, word):
    with pytest.raises(ValueError, match=word):
        segmentation_data(**kwargs)


def test_check_data_args_returns_the_checked_ints():
    assert DATA_SOURCES == ("scenes", "voc")
    assert check_data_args("voc", 64, 10, 5, 0, False) == (64, 10, 5, 0)
    with pytest.raises(ValueError, match="source"):
        check_data_args("coco", 64, 10, 5, 0, False)
