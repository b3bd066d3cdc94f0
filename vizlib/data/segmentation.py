"""The data of the segmentation chapters (FCN, U-Net, DeepLab), as train and validation sets.

:func:`segmentation_data` gives the generated scenes (things and stuff, the default: no
network) or PASCAL VOC 2012 (opt-in download) as datasets of
``(image [3, H, W], mask [H, W] int64)`` of one fixed size, with what a model needs to
know about them (:class:`SegmentationData`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .datasets import SegmentationScenes
from .real import VOC_CLASSES, voc_segmentation
from .scenes import CLASS_NAMES, NUM_SEMANTIC_CLASSES, SceneConfig
from .sources import check_data_args

__all__ = ["SegmentationData", "segmentation_data"]


@dataclass
class SegmentationData:
    """Train and validation sets of one segmentation task, and what a model needs to know.

    Attributes:
        train, val (Dataset): ``(image Tensor[3, H, W] float in [0, 1], mask Tensor[H, W] int64)``.
        num_classes (int): classes the model scores.
        class_names (tuple[str, ...]): their names.
        ignore_index (int): target value of pixels not to learn from or count (255).
        source (str): ``"scenes"`` or ``"voc"``.
    """

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    num_classes: int
    class_names: tuple[str, ...]
    ignore_index: int = 255
    source: str = "scenes"


class _Resized(torch.utils.data.Dataset):
    """A real data set resized to ``size x size`` (masks by nearest neighbour), first ``n`` items."""

    def __init__(self, base, size: int, n: int | None):
        from torchvision.transforms import v2

        self.base, self.n = base, len(base) if n is None else min(n, len(base))
        self.resize = v2.Resize((size, size), antialias=True)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        image, mask = self.resize(*self.base[index])  # tv_tensors.Mask is resized with NEAREST
        return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()


def segmentation_data(
    source: str = "scenes",
    *,
    image_size: int = 64,
    train_images: int = 2000,
    val_images: int = 200,
    seed: int = 0,
    root: str | Path = "data",
    download: bool = False,
) -> SegmentationData:
    """The data of the segmentation chapters.

    Args:
        source (str): ``"scenes"``: generated scenes, things over stuff (9 classes:
            background, 5 things, 3 stuff; ``vizlib.data.SegmentationScenes``), train and
            validation drawn from different seeds. ``"voc"``: PASCAL VOC 2012
            segmentation (21 classes, 255 = void), ``train`` and ``val`` splits, resized
            to ``image_size`` squares.
        image_size (int): side of the square images.
        train_images, val_images (int): set sizes (VOC: at most the split's size).
        seed (int): scenes only: train uses ``seed + 1``, validation ``seed + 2``.
        root (str or Path): VOC only: the folder that holds (or will hold) ``VOCdevkit/``.
        download (bool): VOC only: fetch it (about 2 GB) if missing.

    Returns:
        SegmentationData

    Raises:
        ValueError: a bad argument.
        vizlib.data.DataNotFoundError: ``"voc"`` without its files and without
            ``download=True`` (or offline), with what to do.
    """
    image_size, train_images, val_images, seed = check_data_args(
        source, image_size, train_images, val_images, seed, download
    )
    if source == "scenes":
        config = SceneConfig(image_size=image_size)
        return SegmentationData(
            SegmentationScenes(train_images, seed=seed + 1, config=config),
            SegmentationScenes(val_images, seed=seed + 2, config=config),
            NUM_SEMANTIC_CLASSES,
            tuple(CLASS_NAMES),
            255,
            "scenes",
        )
    if source == "voc":
        train = voc_segmentation(root, "2012", "train", download=download)
        val = voc_segmentation(root, "2012", "val", download=download)
        return SegmentationData(
            _Resized(train, image_size, train_images),
            _Resized(val, image_size, val_images),
            len(VOC_CLASSES),
            tuple(VOC_CLASSES),
            255,
            "voc",
        )
    raise AssertionError(source)  # pragma: no cover - checked above
