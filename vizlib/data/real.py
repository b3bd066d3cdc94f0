"""Real data sets, opt-in: PASCAL VOC, Penn-Fudan pedestrians, COCO subsets.

The book runs on generated scenes and needs no network. These loaders are for readers
who want real photographs. Nothing is downloaded unless you pass ``download=True``;
without the files (or offline) a loader raises an error that says where the data
comes from, which folder layout it expects under ``root`` and how to get it.

Every loader returns ``(image, target)`` like the generated scenes: the image a
``tv_tensors.Image`` float32 in [0, 1], detection targets dicts with ``boxes``
(``BoundingBoxes`` xyxy), ``labels`` (int64, 0 = background), ``masks`` (``Mask``
``(N, H, W)``) where the data set has them, and ``image_id``; images without objects
get ``boxes (0, 4)`` and friends. ``transforms`` are ``transforms.v2`` transforms,
called as ``transforms(image, target)``.

Where torchvision has a loader we use it (``VOCDetection``, ``VOCSegmentation``,
``CocoDetection``) with ``torchvision.datasets.wrap_dataset_for_transforms_v2``, which
turns its targets into tv_tensors. Penn-Fudan has no torchvision loader: a small
``Dataset`` reads its two folders.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

__all__ = [
    "VOC_CLASSES",
    "voc_detection",
    "voc_segmentation",
    "PennFudanPedestrians",
    "coco_subset",
    "make_coco_subset",
    "DataNotFoundError",
]

#: PASCAL VOC's 20 classes after "background" (label 0), in torchvision's order.
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)

PENN_FUDAN_URL = "https://www.cis.upenn.edu/~jshi/ped_html/PennFudanPed.zip"
COCO_ANNOTATIONS_URL = "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"


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


def _empty_detection_target(image_id, h: int, w: int, with_masks: bool) -> dict:
    target = {
        "boxes": tv_tensors.BoundingBoxes(torch.zeros((0, 4)), format="XYXY", canvas_size=(h, w)),
        "labels": torch.zeros((0,), dtype=torch.int64),
        "image_id": image_id,
    }
    if with_masks:
        target["masks"] = tv_tensors.Mask(torch.zeros((0, h, w), dtype=torch.bool))
    return target


class _V2Detection(Dataset):
    """A torchvision dataset wrapped for transforms v2, with float images, complete
    targets (also for images without objects) and the reader's transforms last."""

    def __init__(self, wrapped, transforms=None, with_masks: bool = False):
        if transforms is not None and not callable(transforms):
            raise ValueError(f"transforms must be callable, got {type(transforms).__name__}")
        self.wrapped, self.transforms, self.with_masks = wrapped, transforms, with_masks

    def __len__(self) -> int:
        return len(self.wrapped)

    def __getitem__(self, index):
        image, target = self.wrapped[index]
        image = _TO_FLOAT_IMAGE(image)
        h, w = image.shape[-2:]
        # start from an empty target, so an image without objects has every field
        full = _empty_detection_target(target.get("image_id", index), h, w, self.with_masks)
        full.update(target)
        full["labels"] = full["labels"].long()
        if "masks" in full:
            full["masks"] = tv_tensors.Mask(full["masks"].bool())
        if self.transforms is not None:
            image, full = self.transforms(image, full)
        return image, full


class _V2Segmentation(Dataset):
    def __init__(self, wrapped, transforms=None):
        if transforms is not None and not callable(transforms):
            raise ValueError(f"transforms must be callable, got {type(transforms).__name__}")
        self.wrapped, self.transforms = wrapped, transforms

    def __len__(self) -> int:
        return len(self.wrapped)

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


def voc_detection(root, year: str = "2012", image_set: str = "train", download: bool = False, transforms=None):
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


def voc_segmentation(root, year: str = "2012", image_set: str = "train", download: bool = False, transforms=None):
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


# ------------------------------------------------------------------------ Penn-Fudan

_PENN_FUDAN_LAYOUT = """  {root}/PennFudanPed/
      PNGImages/FudanPed00001.png, PennPed00001.png, ...
      PedMasks/FudanPed00001_mask.png, ...  (0 = background, k = pedestrian k)"""


class PennFudanPedestrians(Dataset):
    """Penn-Fudan pedestrians (Wang et al., 2007): 170 photos, boxes and instance masks.

    torchvision's detection tutorial uses it; it has no loader in ``torchvision.datasets``.

    Args:
        root (str or Path): the folder that holds (or will hold) ``PennFudanPed/``.
        download (bool): fetch ``PennFudanPed.zip`` (about 50 MB) if missing.
        transforms (callable, optional): ``transforms.v2`` on ``(image, target)``.

    Items: ``(Image, {"boxes", "labels" (all 1 = person), "masks", "image_id"})``.

    Raises:
        DataNotFoundError (a FileNotFoundError): the files are missing, with what to do.
    """

    CLASSES = ("background", "person")

    def __init__(self, root, download: bool = False, transforms=None):
        if transforms is not None and not callable(transforms):
            raise ValueError(f"transforms must be callable, got {type(transforms).__name__}")
        self.root = Path(root) / "PennFudanPed"
        self.transforms = transforms
        layout = _PENN_FUDAN_LAYOUT.format(root=root)
        how = (
            "call again with download=True, or download the zip yourself and extract it "
            "into root so that the layout above exists."
        )
        source = f"Penn-Fudan Database for Pedestrian Detection and Segmentation, {PENN_FUDAN_URL}"
        if download and not (self.root / "PNGImages").is_dir():
            from torchvision.datasets.utils import download_and_extract_archive

            try:
                download_and_extract_archive(PENN_FUDAN_URL, str(root))
            except OSError as exc:
                raise _missing("Penn-Fudan", root, layout, source, how, cause=exc) from exc
        images, masks = self.root / "PNGImages", self.root / "PedMasks"
        if not images.is_dir() or not masks.is_dir():
            raise _missing("Penn-Fudan", root, layout, source, how)
        self.images = sorted(images.glob("*.png"))
        if not self.images:
            raise _missing("Penn-Fudan (no PNG images)", root, layout, source, how)
        self.masks = [masks / f"{p.stem}_mask.png" for p in self.images]
        absent = [m.name for m in self.masks if not m.exists()]
        if absent:
            raise DataNotFoundError(f"Penn-Fudan masks missing in {masks}: {absent[:5]}")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        from PIL import Image

        image = _TO_FLOAT_IMAGE(Image.open(self.images[index]).convert("RGB"))
        ids = torch.from_numpy(np.array(Image.open(self.masks[index]), dtype=np.int64))  # [H, W]
        instance_ids = ids.unique()
        instance_ids = instance_ids[instance_ids != 0]  # 0 is background
        masks = ids[None] == instance_ids[:, None, None]  # [N, H, W]
        h, w = ids.shape
        target = _empty_detection_target(index, h, w, with_masks=True)
        if len(instance_ids):
            from .datasets import masks_to_tight_boxes

            target["boxes"] = tv_tensors.BoundingBoxes(masks_to_tight_boxes(masks), format="XYXY", canvas_size=(h, w))
            target["labels"] = torch.ones(len(instance_ids), dtype=torch.int64)
            target["masks"] = tv_tensors.Mask(masks)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target


# ------------------------------------------------------------------------------ COCO

_COCO_LAYOUT = """  {root}/
      annotations/instances_{split}.json   (or a subset: any COCO instances json)
      {split}/<file_name>.jpg              (the images the json lists)"""


def make_coco_subset(annotation_file, out_file, num_images: int, seed: int = 0, only_annotated: bool = True) -> dict:
    """Write a smaller COCO instances file: ``num_images`` images and their annotations.

    Args:
        annotation_file (str or Path): a full COCO instances json.
        out_file (str or Path): where to write the subset.
        num_images (int): how many images to keep (a seeded random choice).
        seed (int): which images.
        only_annotated (bool): choose among images that have at least one annotation.

    Returns:
        dict: the subset (also written to ``out_file``).
    """
    from .._checks import check_positive_int

    check_positive_int("num_images", num_images)
    data = json.loads(Path(annotation_file).read_text())
    annotated = {a["image_id"] for a in data["annotations"]}
    pool = [im for im in data["images"] if im["id"] in annotated or not only_annotated]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(pool), size=min(num_images, len(pool)), replace=False).tolist())
    images = [pool[i] for i in chosen]
    ids = {im["id"] for im in images}
    subset = dict(data, images=images, annotations=[a for a in data["annotations"] if a["image_id"] in ids])
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    Path(out_file).write_text(json.dumps(subset))
    return subset


def _download_coco_subset(root: Path, split: str, annotation_file: Path, num_images: int) -> None:
    """Fetch COCO's annotation zip, cut a subset, fetch only that subset's images."""
    from torchvision.datasets.utils import download_and_extract_archive, download_url

    full = root / "annotations" / f"instances_{split}.json"
    if not full.exists():
        download_and_extract_archive(COCO_ANNOTATIONS_URL, str(root))
    if not annotation_file.exists():
        make_coco_subset(full, annotation_file, num_images)
    for image in json.loads(annotation_file.read_text())["images"]:
        if not (root / split / image["file_name"]).exists():
            download_url(image["coco_url"], str(root / split), filename=image["file_name"])


def coco_subset(
    root,
    split: str = "val2017",
    annotation_file=None,
    num_images: int = 200,
    download: bool = False,
    transforms=None,
    target_keys=("boxes", "labels", "masks", "image_id"),
):
    """A COCO subset through ``torchvision.datasets.CocoDetection`` and
    ``wrap_dataset_for_transforms_v2``.

    Args:
        root (str or Path): holds ``annotations/`` and the image folder ``{split}/``.
        split (str): the image folder, e.g. ``val2017``.
        annotation_file (str or Path, optional): the instances json to use; default
            ``root/annotations/instances_{split}_subset{num_images}.json`` if it exists,
            else ``root/annotations/instances_{split}.json``.
        num_images (int): the subset's size when ``download=True`` creates it.
        download (bool): fetch COCO's annotation zip (about 250 MB), write a subset of
            ``num_images`` images (``make_coco_subset``) and fetch only those images.
        transforms (callable, optional): ``transforms.v2`` on ``(image, target)``.
        target_keys: the target fields (torchvision's names: ``boxes``, ``labels``,
            ``masks``, ``image_id``, ``area``, ``iscrowd``, ...). Labels are COCO
            category ids (1..90, with gaps).

    Raises:
        DataNotFoundError (a FileNotFoundError): the files are missing, with what to do.
    """
    from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2

    root = Path(root)
    subset_file = root / "annotations" / f"instances_{split}_subset{num_images}.json"
    if annotation_file is None:
        full = root / "annotations" / f"instances_{split}.json"
        annotation_file = subset_file if (subset_file.exists() or download) else full
    annotation_file = Path(annotation_file)
    layout = _COCO_LAYOUT.format(root=root, split=split)
    source = "COCO (Lin et al., 2014), https://cocodataset.org/#download"
    how = (
        f"call again with download=True (fetches {COCO_ANNOTATIONS_URL}, then only the "
        f"{num_images} images of the subset), or download the annotations and images "
        "yourself into the layout above (make_coco_subset cuts a smaller json)."
    )
    if download:
        try:
            _download_coco_subset(root, split, annotation_file, num_images)
        except OSError as exc:
            raise _missing("COCO", root, layout, source, how, cause=exc) from exc
    if not annotation_file.exists():
        raise _missing(f"COCO annotations {annotation_file.name}", root, layout, source, how)
    images = root / split
    listed = json.loads(annotation_file.read_text()).get("images", [])
    absent = [im["file_name"] for im in listed if not (images / im["file_name"]).exists()]
    if absent:
        raise _missing(f"COCO images ({len(absent)} of {len(listed)}, e.g. {absent[0]})", root, layout, source, how)
    base = CocoDetection(str(images), str(annotation_file))
    wrapped = wrap_dataset_for_transforms_v2(base, target_keys=set(target_keys))
    return _V2Detection(wrapped, transforms, with_masks="masks" in target_keys)
