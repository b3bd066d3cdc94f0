"""Real-data loaders, offline: tiny fixtures written in each data set's on-disk format."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from vizlib.data import collate_detection
from vizlib.data.real import (
    VOC_CLASSES,
    DataNotFoundError,
    voc_detection,
    voc_segmentation,
)

# ------------------------------------------------------------------------- fixtures


def _write_jpeg(path: Path, h: int, w: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)


_VOC_XML = """<annotation>
  <folder>VOC2012</folder><filename>{name}.jpg</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  <segmented>1</segmented>
{objects}</annotation>
"""
_VOC_OBJECT = """  <object><name>{cls}</name><pose>Unspecified</pose><truncated>0</truncated>
    <difficult>0</difficult>
    <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>
  </object>
"""

VOC_ITEMS = {
    "2008_000001": [("dog", 5, 6, 30, 25), ("person", 20, 2, 38, 28)],
    "2008_000002": [("car", 1, 1, 20, 12)],
}


def _voc_palette() -> list[int]:
    """VOC's colour map (bit-interleaved), as a flat PIL palette."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


@pytest.fixture
def voc_root(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    h, w = 30, 40
    for k, (name, objects) in enumerate(VOC_ITEMS.items()):
        _write_jpeg(voc / "JPEGImages" / f"{name}.jpg", h, w, k)
        xml = _VOC_XML.format(
            name=name,
            w=w,
            h=h,
            objects="".join(
                _VOC_OBJECT.format(cls=c, x1=a, y1=b, x2=cc, y2=d) for c, a, b, cc, d in objects
            ),
        )
        (voc / "Annotations").mkdir(parents=True, exist_ok=True)
        (voc / "Annotations" / f"{name}.xml").write_text(xml)
        # segmentation: class index per pixel, 255 = void border, palette PNG as VOC ships
        seg = np.zeros((h, w), dtype=np.uint8)
        for c, a, b, cc, d in objects:
            seg[b:d, a:cc] = VOC_CLASSES.index(c)
            seg[b, a:cc] = 255
        png = Image.fromarray(seg, mode="P")
        png.putpalette(_voc_palette())
        (voc / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        png.save(voc / "SegmentationClass" / f"{name}.png")
    for folder in ("Main", "Segmentation"):
        (voc / "ImageSets" / folder).mkdir(parents=True, exist_ok=True)
        (voc / "ImageSets" / folder / "train.txt").write_text("\n".join(VOC_ITEMS) + "\n")
    return tmp_path


# ---------------------------------------------------------------------------- tests


def test_voc_detection_on_fixture(voc_root):
    ds = voc_detection(voc_root, transforms=v2.RandomHorizontalFlip(p=1.0))
    assert len(ds) == 2
    image, target = ds[0]
    assert (
        isinstance(image, tv_tensors.Image)
        and image.dtype == torch.float32
        and image.shape == (3, 30, 40)
    )
    assert isinstance(target["boxes"], tv_tensors.BoundingBoxes)
    assert [VOC_CLASSES[i] for i in target["labels"].tolist()] == ["dog", "person"]
    # VOC's xmin is 1-based; torchvision reads the numbers as written. Flipped: x1' = W - x2
    assert target["boxes"][0].tolist() == [40 - 30, 6, 40 - 5, 25]
    images, targets = collate_detection([ds[0], ds[1]])
    assert len(images) == 2 and targets[1]["labels"].tolist() == [VOC_CLASSES.index("car")]


def test_voc_segmentation_on_fixture(voc_root):
    ds = voc_segmentation(voc_root)
    image, mask = ds[0]
    assert image.shape == (3, 30, 40) and mask.shape == (30, 40) and mask.dtype == torch.int64
    assert set(mask.unique().tolist()) == {
        0,
        VOC_CLASSES.index("dog"),
        VOC_CLASSES.index("person"),
        255,
    }
    assert mask[10, 8] == VOC_CLASSES.index("dog")


@pytest.mark.parametrize(
    "load, words",
    [
        (
            lambda root: voc_detection(root),
            ["PASCAL VOC", "VOCdevkit/VOC2012", "Annotations", "download=True"],
        ),
        (lambda root: voc_segmentation(root), ["SegmentationClass", "download=True"]),
    ],
)
def test_missing_data_says_what_to_do(tmp_path, load, words):
    with pytest.raises(DataNotFoundError) as info:
        load(tmp_path / "nothing-here")
    assert isinstance(info.value, FileNotFoundError)
    for word in words:
        assert word in str(info.value)


def test_failed_download_says_offline(tmp_path, monkeypatch):
    import urllib.error

    import torchvision.datasets.voc as tv_voc

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_voc, "download_and_extract_archive", offline)
    with pytest.raises(DataNotFoundError, match="offline"):
        voc_detection(tmp_path, download=True)
    with pytest.raises(DataNotFoundError, match="offline"):
        voc_segmentation(tmp_path, download=True)
