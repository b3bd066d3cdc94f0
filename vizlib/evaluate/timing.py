"""How long a model takes: milliseconds per image of a forward pass.

:func:`inference_ms` is the one timer of the book: every chapter that reports a speed
calls it, so that the numbers are measured the same way (eval mode, no gradients, a
warm-up pass, and on a GPU a synchronisation before reading the clock).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from .._checks import check_image_batch, check_positive_int
from .common import model_device

__all__ = ["inference_ms"]


def _sync(device: torch.device) -> None:
    # CUDA kernels run asynchronously: without waiting for them the clock would read
    # only the time it took to queue them.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_ms(
    model: torch.nn.Module, images: torch.Tensor | Sequence[torch.Tensor], repeats: int = 3
) -> float:
    """Milliseconds per image of ``model(images)`` (eval mode, no gradients), after a warm-up.

    Args:
        model (nn.Module): on its device; left in the mode it was in.
        images (Tensor[N, C, H, W], or a list of N Tensor[C, H, W]): a batch, or a list
            of images as torchvision's detectors take them (sizes may differ); moved to
            the model's device.
        repeats (int): timed passes over the batch.

    Returns:
        float: wall-clock milliseconds per image, averaged over ``repeats`` passes
        (on a GPU, after synchronising, so the kernels' time is counted).
    """
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    repeats = check_positive_int("repeats", repeats)
    device = model_device(model)
    if isinstance(images, (list, tuple)):
        for i, image in enumerate(images):
            if (
                not isinstance(image, torch.Tensor)
                or image.dim() != 3
                or not image.is_floating_point()
            ):
                what = (
                    f"a {image.dim()}-d {image.dtype} tensor"
                    if isinstance(image, torch.Tensor)
                    else type(image).__name__
                )
                raise ValueError(f"images[{i}] must be a floating tensor [C, H, W], got {what}")
        images = [image.to(device) for image in images]
    else:
        images = check_image_batch(images).to(device)
    if len(images) == 0:
        raise ValueError("images must hold at least one image, got an empty batch")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(images)  # warm-up: allocations, kernel selection
            _sync(device)
            start = time.perf_counter()
            for _ in range(repeats):
                model(images)
            _sync(device)
    finally:
        model.train(was_training)
    return 1000 * (time.perf_counter() - start) / (repeats * len(images))
