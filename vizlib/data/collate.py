"""Collate functions: how a ``DataLoader`` turns a list of samples into a batch.

Detection targets have a different number of things per image, so they cannot be
stacked: torchvision's detection models take a *list* of images and a *list* of
target dicts. ``collate_detection`` builds those lists and makes every target
well-formed, including images with no thing at all (``boxes (0, 4)``...), which the
default collate would not do.
"""

from __future__ import annotations

import torch
from torch.utils.data import default_collate

from .scenes import NUM_KEYPOINTS

__all__ = ["collate_detection", "collate_segmentation"]


def _tidy(target: dict, height: int, width: int, index: int) -> dict:
    if not isinstance(target, dict):
        raise ValueError(f"target {index} must be a dict, got {type(target).__name__}")
    for key in ("boxes", "labels"):
        if key not in target:
            raise ValueError(
                f"target {index} has no {key!r}; detection targets need boxes and labels"
            )
    out = dict(target)
    boxes = torch.as_tensor(target["boxes"])
    if boxes.numel() == 0:
        boxes = boxes.reshape(0, 4)  # a (0,) tensor from an empty list
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"target {index}: boxes must have shape [N, 4], got {tuple(boxes.shape)}")
    out["boxes"] = target["boxes"] if boxes is target["boxes"] else boxes.float()
    n = boxes.shape[0]
    labels = torch.as_tensor(target["labels"]).reshape(-1).long()
    if len(labels) != n:
        raise ValueError(f"target {index}: {n} boxes but {len(labels)} labels")
    out["labels"] = labels
    if "masks" in target:
        masks = torch.as_tensor(target["masks"])
        out["masks"] = masks.reshape(0, height, width).bool() if n == 0 else masks
        if out["masks"].shape[0] != n:
            raise ValueError(f"target {index}: {n} boxes but {out['masks'].shape[0]} masks")
    if "keypoints" in target:
        kps = torch.as_tensor(target["keypoints"])
        k = kps.shape[1] if kps.dim() == 3 else NUM_KEYPOINTS
        out["keypoints"] = kps.reshape(0, k, 3).float() if n == 0 else kps
        if out["keypoints"].shape[0] != n:
            raise ValueError(
                f"target {index}: {n} boxes but {out['keypoints'].shape[0]} keypoint sets"
            )
    return out


def collate_detection(batch):
    """Batch of ``(image, target)`` samples -> ``(list of images, list of targets)``.

    Args:
        batch (list of (Tensor[3, H, W], dict)): samples; images may differ in size.

    Returns:
        (list[Tensor[3, H, W]], list[dict]): the images, and targets whose fields have
        consistent shapes even when an image has no thing (``boxes (0, 4)``,
        ``labels (0,)`` int64, ``masks (0, H, W)``, ``keypoints (0, K, 3)``).
    """
    if not isinstance(batch, (list, tuple)) or not batch:
        raise ValueError("batch must be a non-empty list of (image, target) pairs")
    images, targets = [], []
    for i, sample in enumerate(batch):
        if not isinstance(sample, (list, tuple)) or len(sample) != 2:
            raise ValueError(f"sample {i} must be an (image, target) pair")
        image, target = sample
        if not isinstance(image, torch.Tensor) or image.dim() != 3:
            raise ValueError(
                f"image {i} must be a Tensor[C, H, W], got {getattr(image, 'shape', type(image))}"
            )
        images.append(image)
        targets.append(_tidy(target, image.shape[-2], image.shape[-1], i))
    return images, targets


def collate_segmentation(batch):
    """Batch of ``(image, mask)`` -> ``(Tensor[B, 3, H, W], Tensor[B, H, W] int64)``
    (plain tensors, so a loss never dispatches on tv_tensor subclasses)."""
    images, masks = default_collate(batch)
    return images.as_subclass(torch.Tensor), masks.as_subclass(torch.Tensor).long()
