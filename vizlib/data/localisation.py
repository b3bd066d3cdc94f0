"""The localisation chapter's data: one object per image, as tensors in memory.

64-pixel images are small, and a CPU epoch should not be spent converting samples, so
the sets are held as tensors (:class:`TensorSamples`):

* :func:`localisation_data`: one thing per generated scene (the default, no network), or
  PASCAL VOC's single-object photographs (an opt-in download), with the class label and
  the box of the one object;
* :func:`keypoint_data`: one class's keypoints, one thing per scene (pose as regression).

The models that learn from them are in :mod:`vizlib.nn.localisation`, their scores in
:mod:`vizlib.evaluate.localisation`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from .._checks import check_choice, check_image_batch, check_positive_int
from .sources import check_data_args

__all__ = [
    "KeypointData",
    "SingleObjectData",
    "TensorSamples",
    "keypoint_data",
    "localisation_data",
]


class TensorSamples(torch.utils.data.Dataset):
    """Samples held as tensors: ``images[i]`` and a dict of ``fields[k][i]``.

    A ``DataLoader`` over it batches the dicts into dicts of ``[B, ...]`` tensors, which
    is what :func:`vizlib.nn.localisation.localisation_loss` takes.

    Args:
        images (Tensor[N, 3, H, W]): float images in [0, 1].
        **fields (Tensor[N, ...]): the targets, one row per image (``label``, ``box``, ...).
    """

    def __init__(self, images: torch.Tensor, **fields: torch.Tensor):
        check_image_batch(images)
        for name, value in fields.items():
            if not isinstance(value, torch.Tensor) or len(value) != len(images):
                raise ValueError(
                    f"{name} must be a tensor with one row per image ({len(images)}), "
                    f"got {type(value).__name__} of length {len(value)}"
                )
        self.images, self.fields = images, fields

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index], {k: v[index] for k, v in self.fields.items()}

    def subset(self, indices) -> TensorSamples:
        """The samples at ``indices`` (a list or a tensor of indices), as a new set."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return TensorSamples(self.images[idx], **{k: v[idx] for k, v in self.fields.items()})

    def __repr__(self) -> str:
        fields = ", ".join(f"{k} {tuple(v.shape[1:])}" for k, v in self.fields.items())
        return f"TensorSamples({len(self)} images {tuple(self.images.shape[1:])}; {fields})"


class SingleObjectData(NamedTuple):
    """What :func:`localisation_data` returns.

    ``train`` and ``val`` give ``(image [3, H, W], {"label": int64 [], "box": [4]})``,
    the box xyxy in pixels; ``class_names[label]`` names a label (0 is background).
    """

    train: TensorSamples
    val: TensorSamples
    class_names: tuple[str, ...]
    source: str


class KeypointData(NamedTuple):
    """What :func:`keypoint_data` returns.

    ``train`` and ``val`` give ``(image [3, H, W], {"keypoints": [K, 3], "box": [4]})``
    (``(x, y, visibility)`` in pixels; the box is the thing's, for PCK's normaliser);
    ``keypoint_names[k]`` names keypoint ``k``.
    """

    train: TensorSamples
    val: TensorSamples
    keypoint_names: tuple[str, ...]
    thing: str


def _scene_samples(count: int, seed: int, image_size: int, thing: str | None = None):
    """``count`` one-thing scenes of stream ``seed`` (only those showing ``thing``, if given)."""
    from .scenes import THING_CLASSES, SceneConfig, make_scene

    config = SceneConfig(image_size=image_size)
    wanted = None if thing is None else THING_CLASSES.index(thing) + 1
    scenes, index = [], 0
    while len(scenes) < count:
        # raw scenes, no tv_tensors round trip: with one thing and no augmentation the
        # generator's box (the tight box of the visible mask) is the dataset's box
        scene = make_scene(seed, index, config, num_objects=1)
        index += 1
        if wanted is None or int(scene.labels[0]) == wanted:
            scenes.append(scene)
    images = torch.stack([torch.from_numpy(s.image).permute(2, 0, 1) for s in scenes]).float() / 255
    return scenes, images  # images: [N, 3, H, W]


def _voc_single_objects(root, image_set: str, count: int, image_size: int, download: bool):
    """PASCAL VOC 2012 photos that hold exactly one annotated object, resized to squares."""
    from torchvision.transforms import v2

    from .real import voc_detection

    data = voc_detection(root, "2012", image_set, download=download)
    # R-CNN's "warp": every photo is squashed to a square, boxes move with it
    resize = v2.Resize((image_size, image_size), antialias=True)
    images, labels, boxes = [], [], []
    for i in range(len(data)):
        image, target = data[i]
        if len(target["labels"]) != 1:
            continue
        image, target = resize(image, target)
        images.append(image.as_subclass(torch.Tensor))
        labels.append(target["labels"][0])
        boxes.append(target["boxes"][0].as_subclass(torch.Tensor))
        if len(images) == count:
            break
    if not images:
        raise ValueError(f"PASCAL VOC {image_set} holds no image with a single object under {root}")
    return TensorSamples(
        torch.stack(images), label=torch.stack(labels).long(), box=torch.stack(boxes).float()
    )


def localisation_data(
    source: str = "scenes",
    *,
    image_size: int = 64,
    train_images: int = 2000,
    val_images: int = 300,
    seed: int = 0,
    root: str | Path = "data",
    download: bool = False,
) -> SingleObjectData:
    """The data of classification + localisation: one object per image.

    Args:
        source (str): ``"scenes"``: generated scenes with exactly one thing (5 classes,
            ``vizlib.data.make_scene(..., num_objects=1)``; train from stream ``seed + 1``,
            validation from ``seed + 2``). ``"voc"``: the PASCAL VOC 2012 ``train`` and
            ``val`` photos that hold exactly one annotated object (20 classes), squashed
            to ``image_size`` squares (an opt-in download).
        image_size (int): side of the square images.
        train_images, val_images (int): set sizes (VOC: at most what the split holds).
        seed (int): scenes only.
        root (str or Path): VOC only: the folder that holds (or will hold) ``VOCdevkit/``.
        download (bool): VOC only: fetch it (about 2 GB) if missing.

    Returns:
        SingleObjectData: ``train``, ``val`` (:class:`TensorSamples` with ``label`` ``[N]``
        int64 and ``box`` ``[N, 4]`` xyxy pixels), ``class_names``, ``source``.

    Raises:
        ValueError: a bad argument.
        vizlib.data.DataNotFoundError: ``"voc"`` without its files and without
            ``download=True`` (or offline), with what to do.
    """
    image_size, train_images, val_images, seed = check_data_args(
        source, image_size, train_images, val_images, seed, download
    )
    if source == "voc":
        from .real import VOC_CLASSES

        train = _voc_single_objects(root, "train", train_images, image_size, download)
        val = _voc_single_objects(root, "val", val_images, image_size, download)
        return SingleObjectData(train, val, tuple(VOC_CLASSES), "voc")
    from .scenes import DETECTION_CLASSES

    sets = []
    for count, stream in ((train_images, seed + 1), (val_images, seed + 2)):
        scenes, images = _scene_samples(count, stream, image_size)
        labels = torch.tensor([int(s.labels[0]) for s in scenes])  # [N]
        boxes = torch.stack([torch.from_numpy(s.boxes[0]) for s in scenes]).float()  # [N, 4]
        sets.append(TensorSamples(images, label=labels, box=boxes))
    return SingleObjectData(sets[0], sets[1], tuple(DETECTION_CLASSES), "scenes")


def keypoint_data(
    thing: str = "star",
    *,
    image_size: int = 64,
    train_images: int = 2000,
    val_images: int = 300,
    seed: int = 0,
) -> KeypointData:
    """The data of pose as regression: one thing of one class per scene, and its keypoints.

    As a person has the same joints in every photo, every thing of one class has the same
    keypoints: a star its centre and five tips, ordered by a rule read off the picture
    (the topmost tip first, then clockwise; see ``vizlib.data.scenes``). A tip outside
    the image has visibility 0.

    Args:
        thing (str): one of ``vizlib.data.THING_CLASSES``.
        image_size (int): side of the square images.
        train_images, val_images (int): set sizes; scenes showing another class are
            skipped (about four in five), so this generates about five times as many.
        seed (int): train from stream ``seed + 1``, validation from ``seed + 2``.

    Returns:
        KeypointData: ``train``, ``val`` (:class:`TensorSamples` with ``keypoints``
        ``[N, K, 3]`` and ``box`` ``[N, 4]``), ``keypoint_names`` (K names), ``thing``.
    """
    from .scenes import KEYPOINT_NAMES, THING_CLASSES

    check_choice("thing", thing, THING_CLASSES)
    image_size = check_positive_int("image_size", image_size)
    train_images = check_positive_int("train_images", train_images)
    val_images = check_positive_int("val_images", val_images)
    seed = check_positive_int("seed", seed, allow_zero=True)
    k = len(KEYPOINT_NAMES[thing])  # the class's own keypoints; the other slots are padding
    sets = []
    for count, stream in ((train_images, seed + 1), (val_images, seed + 2)):
        scenes, images = _scene_samples(count, stream, image_size, thing)
        keypoints = torch.stack(
            [torch.from_numpy(s.keypoints[0, :k]) for s in scenes]
        ).float()  # [N, K, 3]
        boxes = torch.stack([torch.from_numpy(s.boxes[0]) for s in scenes]).float()  # [N, 4]
        sets.append(TensorSamples(images, keypoints=keypoints, box=boxes))
    return KeypointData(sets[0], sets[1], tuple(KEYPOINT_NAMES[thing]), thing)
