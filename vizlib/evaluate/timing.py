"""How long a model takes: milliseconds per image of a forward pass.

:func:`inference_ms` is the one timer of the book: every chapter that reports a speed
calls it, so that the numbers are measured the same way (eval mode, no gradients, a
warm-up pass, and on a GPU a synchronisation before reading the clock).
:func:`batch_inference_ms` times the same model at several batch sizes: the detectors'
comparison reads each at batch 1 (one camera frame at a time: latency) and batch 32
(offline throughput), the two settings of Huang et al. 2017's speed/accuracy study.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from .._checks import check_image_batch, check_positive_int
from .common import model_device

__all__ = ["batch_inference_ms", "inference_ms"]


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


def batch_inference_ms(
    model: torch.nn.Module,
    images: Sequence[torch.Tensor],
    batch_sizes: Sequence[int] = (1, 32),
    images_per_size: int = 32,
) -> dict[int, float]:
    """Milliseconds per image of ``model`` at each batch size (:func:`inference_ms`).

    Args:
        model (nn.Module): a detector taking a list of ``[C, H, W]`` images.
        images (list of Tensor[C, H, W]): the images to time on; a batch larger than the
            list reuses them in turn (the time of a forward pass does not depend on
            which images fill it, only on how many).
        batch_sizes (sequence of int): the batch sizes, each >= 1.
        images_per_size (int): images timed at each size (at least one batch), so a
            small batch is timed over as many images as a large one.

    Returns:
        dict[int, float]: batch size -> wall-clock ms per image.
    """
    if not isinstance(images, (list, tuple)) or len(images) == 0:
        raise ValueError(
            f"images must be a non-empty list of [C, H, W] tensors, got {type(images).__name__}"
            + (" of length 0" if isinstance(images, (list, tuple)) else "")
        )
    if (
        isinstance(batch_sizes, (str, bytes))
        or not isinstance(batch_sizes, Sequence)
        or not batch_sizes
    ):
        raise ValueError(
            f"batch_sizes must be a non-empty sequence of ints >= 1, got {batch_sizes!r}"
        )
    sizes = [check_positive_int(f"batch_sizes[{i}]", b) for i, b in enumerate(batch_sizes)]
    images_per_size = check_positive_int("images_per_size", images_per_size)
    out = {}
    for size in sizes:
        batch = [images[i % len(images)] for i in range(size)]
        out[size] = inference_ms(model, batch, repeats=max(1, -(-images_per_size // size)))
    return out
