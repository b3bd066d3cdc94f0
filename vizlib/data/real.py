"""Real data, opt-in: PASCAL VOC, what a chapter's ``source="voc"`` trains on.

The book runs on generated scenes and needs no network. These loaders are for readers
who want real photographs. Nothing is downloaded unless you pass ``download=True``;
without the files (or offline) a loader raises an error that says where the data
comes from, which folder layout it expects under ``root`` and how to get it.

Every loader returns ``(image, target)`` like the generated scenes: the image a
``tv_tensors.Image`` float32 in [0, 1]; detection targets are dicts with ``boxes``
(``BoundingBoxes`` xyxy), ``labels`` (int64, 0 = background) and ``image_id``, and images
without objects get ``boxes (0, 4)`` and ``labels (0,)``; segmentation targets are a
``Mask``. ``transforms`` are ``transforms.v2`` transforms, called as
``transforms(image, target)``.

They are torchvision's loaders (``VOCDetection``, ``VOCSegmentation``) wrapped with
``torchvision.datasets.wrap_dataset_for_transforms_v2``, which turns their targets into
tv_tensors; another set torchvision reads (``CocoDetection``) wraps the same way.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = [
    "VOC_CLASSES",
    "voc_detection",
    "voc_segmentation",
    "DataNotFoundError",
]

#: PASCAL VOC's 20 classes after "background" (label 0), in torchvision's order.
VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)


class DataNotFoundError(FileNotFoundError):
    """A real data set is not on disk (and was not, or could not be, downloaded)."""


def _missing(name: str, root, layout: str, source: str, how: str, cause=None) -> DataNotFoundError:
    offline = f"\nThe download failed ({cause}); are you offline?" if cause else ""
    return DataNotFoundError(
        f"{name} not found under {str(root)!r}.{offline}\n"
        f"Source: {source}\n"
        f"Expected layout under root:\n{layout}\n"
        f"To get it: {how}"
    )


_TO_FLOAT_IMAGE = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])


def _empty_detection_target(image_id, h: int, w: int) -> dict:
    return {
        "boxes": tv_tensors.BoundingBoxes(torch.zeros((0, 4)), format="XYXY", canvas_size=(h, w)),
        "labels": torch.zeros((0,), dtype=torch.int64),
        "image_id": image_id,
    }


class _V2Wrapped(Dataset):
    """A torchvision dataset wrapped for transforms v2; the reader's ``transforms`` run
    last, on ``(image, target)``."""

    def __init__(self, wrapped, transforms=None):
        if transforms is not None and not callable(transforms):
            raise ValueError(f"transforms must be callable, got {type(transforms).__name__}")
        self.wrapped, self.transforms = wrapped, transforms

    def __len__(self) -> int:
        return len(self.wrapped)


class _V2Detection(_V2Wrapped):
    """Detection: float images, complete targets (also for images without objects)."""

    def __getitem__(self, index):
        image, target = self.wrapped[index]
        image = _TO_FLOAT_IMAGE(image)
        h, w = image.shape[-2:]
        # start from an empty target, so an image without objects has every field
        full = _empty_detection_target(target.get("image_id", index), h, w)
        full.update(target)
        full["labels"] = full["labels"].long()
        if self.transforms is not None:
            image, full = self.transforms(image, full)
        return image, full


class _V2Segmentation(_V2Wrapped):
    """Semantic segmentation: float images, an int64 ``Mask`` of class indices."""

    def __getitem__(self, index):
        image, mask = self.wrapped[index]
        image = _TO_FLOAT_IMAGE(image)
        mask = tv_tensors.Mask(mask.as_subclass(torch.Tensor).long().reshape(image.shape[-2:]))
        if self.transforms is not None:
            image, mask = self.transforms(image, mask)
        return image, mask


# ------------------------------------------------------------------------- PASCAL VOC

_VOC_LAYOUT = """  {root}/VOCdevkit/VOC{year}/
      Annotations/<id>.xml            (detection)
      JPEGImages/<id>.jpg
      ImageSets/Main/{split}.txt        (detection ids, one a line)
      ImageSets/Segmentation/{split}.txt (segmentation ids)
      SegmentationClass/<id>.png      (palette PNG: class index per pixel, 255 = void)"""


def _voc(cls_name: str, root, year: str, image_set: str, download: bool):
    from torchvision import datasets

    cls = getattr(datasets, cls_name)
    voc_root = Path(root) / "VOCdevkit" / f"VOC{year}"
    splits = "Main" if cls_name == "VOCDetection" else "Segmentation"
    split_file = voc_root / "ImageSets" / splits / f"{image_set}.txt"
    layout = _VOC_LAYOUT.format(root=root, year=year, split=image_set)
    how = (
        f"call again with download=True (torchvision fetches VOCtrainval for {year} from "
        "the PASCAL VOC server, about 2 GB), or download and extract that tar yourself so "
        "that the layout above exists."
    )
    source = "PASCAL VOC (Everingham et al., 2010), http://host.robots.ox.ac.uk/pascal/VOC/"
    if not download and not split_file.exists():
        raise _missing(f"PASCAL VOC {year} ({image_set}, {splits})", root, layout, source, how)
    try:
        return cls(str(root), year=year, image_set=image_set, download=download)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError
        if split_file.exists():
            raise
        raise _missing(f"PASCAL VOC {year}", root, layout, source, how, cause=exc) from exc


def voc_detection(
    root, year: str = "2012", image_set: str = "train", download: bool = False, transforms=None
):
    """PASCAL VOC detection through ``torchvision.datasets.VOCDetection``.

    Args:
        root (str or Path): the folder that holds (or will hold) ``VOCdevkit/``.
        year (str): ``"2007"`` .. ``"2012"``.
        image_set (str): ``train``, ``val``, ``trainval`` (or ``test`` for 2007).
        download (bool): fetch the archive if it is missing (about 2 GB).
        transforms (callable, optional): ``transforms.v2`` on ``(image, target)``.

    Returns:
        Dataset of ``(Image, {"boxes", "labels", "image_id"})``; labels index ``VOC_CLASSES``.

    Raises:
        DataNotFoundError (a FileNotFoundError): the files are missing, with what to do.
    """
    from torchvision.datasets import wrap_dataset_for_transforms_v2

    base = _voc("VOCDetection", root, year, image_set, download)
    wrapped = wrap_dataset_for_transforms_v2(base, target_keys={"boxes", "labels"})
    return _V2Detection(wrapped, transforms)


def voc_segmentation(
    root, year: str = "2012", image_set: str = "train", download: bool = False, transforms=None
):
    """PASCAL VOC semantic segmentation through ``torchvision.datasets.VOCSegmentation``.

    Returns:
        Dataset of ``(Image, Mask (H, W) int64)``: 0 background, 1..20 ``VOC_CLASSES``,
        255 void (object boundaries; pass ``ignore_index=255`` to the loss).

    Raises:
        DataNotFoundError (a FileNotFoundError): the files are missing, with what to do.
    """
    from torchvision.datasets import wrap_dataset_for_transforms_v2

    base = _voc("VOCSegmentation", root, year, image_set, download)
    return _V2Segmentation(wrap_dataset_for_transforms_v2(base), transforms)
