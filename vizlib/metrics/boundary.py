"""Boundary quality of a segmentation: mIoU in a band around the true boundaries.

mIoU over whole images is dominated by the interiors of large regions, which every
model gets right; the differences between a coarse and a sharp model live at the edges.
DeepLab (Chen et al., TPAMI 2017, following Kohli et al. 2009) reports the *trimap*
mIoU: the same confusion-matrix mIoU, counted only over pixels within ``width`` pixels
of a boundary of the ground truth. As ``width`` grows it approaches the ordinary mIoU.

A pixel is on a boundary when one of its 4 neighbours has a different label; the band
is every pixel within ``width`` pixels of one (the square neighbourhood, Chebyshev
distance), so ``width=0`` keeps the boundary pixels only. Pixels labelled ``ignore_index``
are never counted, and do not make boundaries.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .._checks import as_label_map, check_positive_int
from .segmentation import SegmentationMetric

__all__ = ["boundary_mask", "boundary_band", "TrimapMetric"]


def _label_maps(name: str, labels) -> torch.Tensor:
    """Label maps with two spatial dimensions, where boundaries can be found."""
    t = as_label_map(name, labels)
    if t.dim() < 2:
        raise ValueError(f"{name} must be label maps [..., H, W], got shape {tuple(t.shape)}")
    return t


def boundary_mask(labels, ignore_index: int | None = 255) -> torch.Tensor:
    """Pixels that have a 4-neighbour with a different label.

    Args:
        labels (Tensor[..., H, W] int): label maps.
        ignore_index (int, optional): a label that makes no boundary (its pixels and their
            neighbours are not marked because of it).

    Returns:
        Tensor[..., H, W] bool.
    """
    t = _label_maps("labels", labels)
    valid = torch.ones_like(t, dtype=torch.bool) if ignore_index is None else t != ignore_index
    edge = torch.zeros_like(t, dtype=torch.bool)
    # vertical neighbours: rows i and i + 1 differ (and both are real labels)
    down = (
        (t[..., 1:, :] != t[..., :-1, :]) & valid[..., 1:, :] & valid[..., :-1, :]
    )  # [..., H-1, W]
    edge[..., 1:, :] |= down
    edge[..., :-1, :] |= down
    right = (
        (t[..., :, 1:] != t[..., :, :-1]) & valid[..., :, 1:] & valid[..., :, :-1]
    )  # [..., H, W-1]
    edge[..., :, 1:] |= right
    edge[..., :, :-1] |= right
    return edge


def boundary_band(labels, width: int, ignore_index: int | None = 255) -> torch.Tensor:
    """Pixels within ``width`` pixels (Chebyshev distance) of a boundary of ``labels``.

    Args:
        labels (Tensor[..., H, W] int): label maps.
        width (int): half-width of the band, >= 0.
        ignore_index (int, optional): see :func:`boundary_mask`.

    Returns:
        Tensor[..., H, W] bool.
    """
    width = check_positive_int("width", width, allow_zero=True)
    edge = boundary_mask(labels, ignore_index)
    if width == 0:
        return edge
    shape = edge.shape
    flat = edge.reshape(-1, 1, *shape[-2:]).float()  # [B, 1, H, W]
    # a max over a (2w+1) square window is a dilation of the boundary by w pixels
    grown = F.max_pool2d(flat, 2 * width + 1, stride=1, padding=width)
    return grown.reshape(shape) > 0


class TrimapMetric:
    """mIoU counted only in a band of half-width ``width`` around the true boundaries.

    Example::

        band = TrimapMetric(num_classes=9, width=2)
        for images, masks in loader:
            band.update(model(images).argmax(1), masks)
        band.compute().miou

    Args:
        num_classes (int): ``C``.
        width (int): half-width of the band in pixels.
        ignore_index (int, optional): target value of pixels not counted.
    """

    def __init__(self, num_classes: int, width: int = 2, ignore_index: int | None = 255):
        self.width = check_positive_int("width", width, allow_zero=True)
        # pixels outside the band are relabelled to a value the metric ignores
        self._ignore = 255 if ignore_index is None else ignore_index
        self._metric = SegmentationMetric(num_classes, self._ignore)
        self.ignore_index = ignore_index

    def update(self, pred, target) -> None:
        """Count one batch: ``pred`` and ``target`` of the same shape ``[..., H, W]``."""
        t = _label_maps("target", target)
        band = boundary_band(t, self.width, self.ignore_index)
        self._metric.update(pred, torch.where(band, t, torch.full_like(t, self._ignore)))

    def reset(self) -> None:
        self._metric.reset()

    def compute(self):
        """:class:`~vizlib.metrics.SegmentationScores` of the band's pixels."""
        return self._metric.compute()
