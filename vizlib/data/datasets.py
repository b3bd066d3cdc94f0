"""Torch datasets over the generated scenes: one generator, a view per task.

Every view returns ``(image, target)``. The image is a ``tv_tensors.Image`` of shape
``(3, H, W)``, float32 in [0, 1] (what torchvision's models expect). Targets hold
``tv_tensors`` (``BoundingBoxes``, ``Mask``; keypoints as zero-size boxes, see
``points_as_boxes``) while the transforms run, so a
``transforms.v2`` augmentation moves boxes, masks and keypoints with the image; then
the dataset tidies the result up:

* things whose mask vanished (cropped away) are dropped, with their label and keypoints;
* boxes are recomputed as the tight box of each (transformed) visible mask, the
  definition the generator uses (after a rotation, torchvision's box of the rotated
  box would be looser);
* keypoints become ``(N, K, 3)`` (x, y, visibility): a point the augmentation moved
  outside the image gets visibility 0, and each ring is put back in its canonical
  order (topmost, then clockwise; a mirror flip reverses it).

Views (``task``):

=============== ============================================================ ==========
task            target                                                       class
=============== ============================================================ ==========
segmentation    ``Mask (H, W) int64`` semantic ids (see ``scenes``)          ``SegmentationScenes``
detection       dict: boxes, labels, masks, keypoints, image_id              ``DetectionScenes``
keypoints       same as detection                                            ``KeypointScenes``
localisation    dict: box ``(4,)``, label ``()``, mask ``(H, W)``; one thing ``LocalisationScenes``
panoptic        dict: semantic, instances ``(H, W)`` + the detection keys    ``PanopticScenes``
=============== ============================================================ ==========

Images with no thing give ``boxes (0, 4)``, ``labels (0,)``, ``masks (0, H, W)``,
``keypoints (0, K, 3)``; every view, transform and ``collate_detection`` accepts them.
"""

from __future__ import annotations

import inspect

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from .._checks import check_choice, check_positive_int
from .cache import SceneCache
from .scenes import (
    KEYPOINT_NAMES,
    NUM_KEYPOINTS,
    THING_CLASSES,
    Scene,
    SceneConfig,
    canonical_keypoint_order,
    things_only_semantic,
)

__all__ = [
    "TASKS",
    "UNCLAMPED_POINTS",
    "points_as_boxes",
    "boxes_as_points",
    "Scenes",
    "SegmentationScenes",
    "DetectionScenes",
    "KeypointScenes",
    "LocalisationScenes",
    "PanopticScenes",
    "scene_to_sample",
    "finish_sample",
    "masks_to_tight_boxes",
]

TASKS = ("segmentation", "detection", "keypoints", "localisation", "panoptic")

# Keypoints travel through the transforms as zero-size boxes (x, y, x, y), not as
# ``tv_tensors.KeyPoints``. Two reasons: KeyPoints only exists from torchvision 0.23, and
# (checked on 0.29) its flips map x to W - 1 - x (pixel-index convention) while its
# resize, crop and affine use continuous coordinates, as boxes and masks do, so after a
# flip keypoints would sit one pixel off their own mask. Boxes use one convention for
# every transform: x -> W - x for a flip, where pixel j spans [j, j + 1).
#: True where BoundingBoxes take ``clamping_mode=None`` (torchvision >= 0.23): points
#: outside the image then keep their exact position. Before, transforms clamp boxes to
#: the image, and a point found exactly on the border is taken to have left it; where
#: it went is lost, so if it was a ring's topmost point the canonical order starts at
#: another point (only for rings with a point outside the image).
UNCLAMPED_POINTS = "clamping_mode" in inspect.signature(tv_tensors.BoundingBoxes.__new__).parameters
#: Pixels: a clamped point this close to the border is taken to have left the image.
BORDER_TOLERANCE = 1e-3


def points_as_boxes(points: torch.Tensor, canvas_size) -> tv_tensors.BoundingBoxes:
    """Points ``[N, K, 2]`` as zero-size boxes ``BoundingBoxes[N * K, 4]`` (x, y, x, y).

    Every geometric v2 transform maps a box's corners through the same map as the
    image, so a zero-size box moves exactly like its point. Do not put
    ``SanitizeBoundingBoxes`` in a dataset's transforms: it would take these for
    degenerate objects; the dataset drops vanished things itself.
    """
    flat = points.reshape(-1, 2)
    kwargs = {"clamping_mode": None} if UNCLAMPED_POINTS else {}
    return tv_tensors.BoundingBoxes(
        torch.cat([flat, flat], dim=1), format="XYXY", canvas_size=canvas_size, **kwargs
    )


def boxes_as_points(boxes: torch.Tensor, num_things: int, canvas_size):
    """Inverse of ``points_as_boxes``: ``(points [N, K, 2], outside [N, K] bool)``."""
    points = boxes.as_subclass(torch.Tensor)[:, :2].reshape(num_things, NUM_KEYPOINTS, 2)
    x, y = points[..., 0], points[..., 1]
    h, w = canvas_size
    if getattr(boxes, "clamping_mode", "hard") is None:
        outside = (x < 0) | (x >= w) | (y < 0) | (y >= h)
    else:  # clamped: a point that left the image now lies on its border, give or take the
        # float rounding of a later resize (a point clamped to 40 and scaled by 48/40 lands on
        # 47.99999, not 48), so "on the border" means within BORDER_TOLERANCE of it
        eps = BORDER_TOLERANCE
        outside = (x <= eps) | (x >= w - eps) | (y <= eps) | (y >= h - eps)
    return points, outside


# ------------------------------------------------------------------- sample helpers


def masks_to_tight_boxes(masks: torch.Tensor) -> torch.Tensor:
    """The tight box of each mask, in pixel-edge coordinates.

    Args:
        masks (Tensor[N, H, W]): bool (or 0/1) masks; none may be empty.

    Returns:
        Tensor[N, 4]: float32 boxes ``(x1, y1, x2, y2)``: pixel column ``j`` spans
        ``[j, j + 1)``, so a one-pixel mask at (row 2, column 3) has box (3, 2, 4, 3).
        (``torchvision.ops.masks_to_boxes`` returns pixel *indices*: x2 = 3 there.)
    """
    if masks.dim() != 3:
        raise ValueError(f"masks must have shape [N, H, W], got {tuple(masks.shape)}")
    masks = masks.as_subclass(torch.Tensor).bool()
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.float32)
    cols, rows = masks.any(dim=1), masks.any(dim=2)  # [N, W], [N, H]
    if not bool(cols.any(dim=1).all()):
        raise ValueError("masks must not be empty: drop empty masks before taking boxes")
    col_idx = torch.arange(w, device=masks.device)  # [W]
    row_idx = torch.arange(h, device=masks.device)  # [H]
    x1 = torch.where(cols, col_idx, w).amin(dim=1)
    x2 = torch.where(cols, col_idx, -1).amax(dim=1) + 1
    y1 = torch.where(rows, row_idx, h).amin(dim=1)
    y2 = torch.where(rows, row_idx, -1).amax(dim=1) + 1
    return torch.stack([x1, y1, x2, y2], dim=1).float()


def scene_to_sample(scene: Scene, task: str = "detection"):
    """``(image, target)`` of tv_tensors, ready for ``transforms.v2``.

    The target holds everything the task needs while the transforms run:
    ``boxes`` (BoundingBoxes XYXY), ``labels``, ``masks`` (Mask ``[N, H, W]``),
    ``keypoints_as_boxes`` (the ``N * K`` keypoints as zero-size boxes, see
    ``points_as_boxes``), ``keypoint_visibility`` ``[N, K]``, ``semantic`` and ``instances``
    (Mask ``[H, W]``) for the dense views, and ``image_id``.
    """
    check_choice("task", task, TASKS)
    size = tuple(scene.image.shape[:2])
    image = tv_tensors.Image(torch.from_numpy(scene.image).permute(2, 0, 1).float() / 255)
    target = {
        "boxes": tv_tensors.BoundingBoxes(
            torch.from_numpy(scene.boxes).reshape(-1, 4), format="XYXY", canvas_size=size
        ),
        "labels": torch.from_numpy(scene.labels).long(),
        "masks": tv_tensors.Mask(torch.from_numpy(scene.masks)),
        "image_id": scene.index,
    }
    points = torch.from_numpy(scene.keypoints[..., :2]).reshape(-1, NUM_KEYPOINTS, 2)
    target["keypoints_as_boxes"] = points_as_boxes(points, size)
    target["keypoint_visibility"] = torch.from_numpy(scene.keypoints[..., 2]).reshape(
        -1, NUM_KEYPOINTS
    )
    if task in ("segmentation", "panoptic"):
        target["semantic"] = tv_tensors.Mask(torch.from_numpy(scene.semantic).long())
    if task == "panoptic":
        target["instances"] = tv_tensors.Mask(torch.from_numpy(scene.instances).long())
    return image, target


def finish_sample(image, target, task: str = "detection", things_only: bool = False):
    """Tidy a (transformed) sample from ``scene_to_sample`` into the task's target.

    Drops things whose mask vanished, recomputes tight boxes, merges keypoints and
    visibility into ``(N, K, 3)`` (visibility 0 outside the image), reorders each
    ring canonically. See the module docstring for each task's target.
    """
    check_choice("task", task, TASKS)
    h, w = image.shape[-2:]
    masks = target["masks"].as_subclass(torch.Tensor).bool()
    n = masks.shape[0]
    carrier = target["keypoints_as_boxes"]
    if len(target["labels"]) != n or carrier.shape[0] != n * NUM_KEYPOINTS:
        raise ValueError(
            "the transforms changed the number of things in the target (boxes, labels, masks "
            "and keypoints no longer match); leave out SanitizeBoundingBoxes: the dataset "
            "drops things whose mask vanished by itself"
        )
    keep = masks.flatten(1).any(dim=1)  # [N] things still (partly) in the picture
    masks = masks[keep]
    labels = target["labels"][keep]
    points, outside = boxes_as_points(carrier, n, (h, w))
    visibility = torch.where(outside, 0.0, target["keypoint_visibility"].float())  # [N, K]
    keypoints = torch.cat([points.float(), visibility[..., None]], dim=-1)[keep]  # [N', K, 3]
    keypoints = canonical_keypoint_order(_reset_padding(keypoints, labels))

    out = {
        "boxes": tv_tensors.BoundingBoxes(
            masks_to_tight_boxes(masks), format="XYXY", canvas_size=(h, w)
        ),
        "labels": labels.long(),
        "masks": tv_tensors.Mask(masks),
        "keypoints": keypoints,
        "image_id": target.get("image_id", -1),
    }
    if task == "segmentation":
        semantic = target["semantic"].as_subclass(torch.Tensor).long()
        if things_only:
            semantic = things_only_semantic(semantic)
        return image, tv_tensors.Mask(semantic)
    if task == "localisation":
        found = len(out["labels"]) > 0
        return image, {
            "box": out["boxes"][0].as_subclass(torch.Tensor) if found else torch.zeros(4),
            "label": out["labels"][0] if found else torch.tensor(0),
            "mask": tv_tensors.Mask(masks[0] if found else torch.zeros((h, w), dtype=torch.bool)),
            "image_id": out["image_id"],
        }
    if task == "panoptic":
        semantic = target["semantic"].as_subclass(torch.Tensor).long()
        instances = target["instances"].as_subclass(torch.Tensor).long()
        # renumber instance ids 1..N' after dropping vanished things
        new_id = torch.zeros(n + 1, dtype=torch.long)
        new_id[1:][keep] = torch.arange(1, int(keep.sum()) + 1)
        out["semantic"] = tv_tensors.Mask(semantic)
        out["instances"] = tv_tensors.Mask(new_id[instances])
    return image, out


def _reset_padding(keypoints: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Put the slots a class does not use back to exactly (0, 0, 0) (they were moved
    by the transforms like real points)."""
    out = keypoints.clone()
    for i, label in enumerate(labels.tolist()):
        out[i, len(KEYPOINT_NAMES[THING_CLASSES[label - 1]]) :] = 0
    return out


# --------------------------------------------------------------------------- dataset


class Scenes(Dataset):
    """Generated scenes as a torch ``Dataset``, seen through one ``task``.

    Args:
        num_images (int): length of the data set (images ``0 .. num_images - 1``).
        seed (int): the stream of scenes; train and validation sets use different seeds.
        config (SceneConfig): image size and generator settings.
        task (str): one of ``TASKS`` (see the module docstring for each target).
        transforms (callable, optional): a ``transforms.v2`` transform called as
            ``transforms(image, target)`` on tv_tensors (see ``vizlib.data.transforms``).
        cache (bool | str | Path): ``True`` keeps generated scenes in memory (cheap at
            64 px); a folder path also stores them on disk (``SceneCache``); ``False``
            regenerates each time (it is deterministic either way).
        things_only (bool): segmentation only: VOC-style map (0 = background, 1..5 things)
            instead of stuff and things.
    """

    task = "detection"

    def __init__(
        self,
        num_images: int = 1000,
        seed: int = 0,
        config: SceneConfig | None = None,
        task: str | None = None,
        transforms=None,
        cache=True,
        things_only: bool = False,
    ):
        self.num_images = check_positive_int("num_images", num_images, allow_zero=True)
        self.seed = check_positive_int("seed", seed, allow_zero=True)
        self.config = SceneConfig() if config is None else config
        if not isinstance(self.config, SceneConfig):
            raise ValueError(f"config must be a SceneConfig, got {type(self.config).__name__}")
        task = self.task if task is None else task
        check_choice("task", task, TASKS)
        self.task = task
        if transforms is not None and not callable(transforms):
            raise ValueError(f"transforms must be callable, got {type(transforms).__name__}")
        self.transforms = transforms
        self.things_only = bool(things_only)
        num_objects = 1 if task == "localisation" else None
        self._cache = SceneCache(self.seed, self.config, num_objects=num_objects, store=cache)

    def __len__(self) -> int:
        return self.num_images

    def scene(self, index: int) -> Scene:
        """The raw ``Scene`` (numpy arrays, no transform) behind item ``index``."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"index must be an int, got {type(index).__name__}")
        if index < 0:
            index += self.num_images
        if not 0 <= index < self.num_images:
            raise IndexError(f"index {index} out of range for {self.num_images} images")
        return self._cache.get(index)

    def __getitem__(self, index: int):
        image, target = scene_to_sample(self.scene(int(index)), self.task)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return finish_sample(image, target, self.task, things_only=self.things_only)

    def scenes(self):
        """Iterate over the raw scenes (for ``to_coco`` and galleries)."""
        return (self.scene(i) for i in range(self.num_images))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_images={self.num_images}, seed={self.seed}, "
            f"task={self.task!r}, image_size={self.config.image_size})"
        )


class SegmentationScenes(Scenes):
    """Semantic segmentation view: ``(image, Mask (H, W) int64)``; ids as in ``scenes``."""

    task = "segmentation"


class DetectionScenes(Scenes):
    """Detection / instance segmentation view: torchvision-style target dicts."""

    task = "detection"


class KeypointScenes(Scenes):
    """Keypoint view: the detection target, whose ``keypoints`` are ``(N, K, 3)``."""

    task = "keypoints"


class LocalisationScenes(Scenes):
    """Single-object localisation: exactly one thing per image; target box ``(4,)``,
    label ``()`` int64 (1..5), mask ``(H, W)``. Use augmentations that cannot crop the
    thing away: if one does, the label becomes 0 and the box zeros."""

    task = "localisation"


class PanopticScenes(Scenes):
    """Panoptic view: ``semantic`` and ``instances`` maps plus the detection keys."""

    task = "panoptic"
