"""Default augmentations, built from ``torchvision.transforms.v2``.

They take and return ``(image, target)`` with tv_tensors inside, so one random flip or
crop moves the image, the boxes, the masks and the keypoints together (the datasets
of ``vizlib.data.datasets`` put tv_tensors in their targets for exactly this). They
keep the image size, so a batch stacks, and they accept images with no thing.

Why these: horizontal flips and scale jitter are the augmentations of Faster R-CNN,
Mask R-CNN and SSD (Liu et al., 2016, show that zoom/crop matters most for SSD);
colour jitter keeps a model from keying on the exact colours of the generator.
"""

from __future__ import annotations

from torchvision.transforms import v2

from .._checks import check_fraction, check_positive_int

__all__ = ["train_transforms"]


def train_transforms(
    image_size: int,
    task: str = "detection",
    flip: float = 0.5,
    crop: float = 0.5,
    min_scale: float = 0.5,
    colour: float = 0.25,
):
    """Training augmentations for a task of ``vizlib.data.datasets``.

    Args:
        image_size (int): output side in pixels (the dataset's ``config.image_size``).
        task (str): the dataset's task. ``localisation`` gets no crop (a crop could
            cut away the image's only thing).
        flip (float): probability of a horizontal flip.
        crop (float): probability of a random resized crop (scale jitter): a window
            of ``min_scale`` to 1 of the image area, resized back to ``image_size``.
        min_scale (float): smallest crop area, as a fraction of the image, in (0, 1].
        colour (float): strength of brightness/contrast/saturation jitter, in [0, 1].

    Returns:
        a ``v2.Compose`` called as ``transform(image, target)``.
    """
    check_positive_int("image_size", image_size)
    check_fraction("flip", flip)
    check_fraction("crop", crop)
    check_fraction("colour", colour)
    if not 0 < check_fraction("min_scale", min_scale):
        raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
    steps = [v2.RandomHorizontalFlip(p=flip)]
    if task != "localisation" and crop > 0:
        resized_crop = v2.RandomResizedCrop(image_size, scale=(min_scale, 1.0), antialias=True)
        steps.append(v2.RandomApply([resized_crop], p=crop))
    if colour > 0:
        # no hue jitter: it converts to HSV and back, which alone took a fifth of the
        # time of a whole sample (benchmarks/bench_scenes.py); things already come in
        # every hue
        steps.append(v2.ColorJitter(brightness=colour, contrast=colour, saturation=colour))
    return v2.Compose(steps)
