"""Input validation shared by every public vizlib function.

Each helper raises ``ValueError`` naming the argument and saying what was expected,
so that a student's mistake reads as a sentence, not a stack of broadcasting errors.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import torch

__all__ = [
    "as_float_tensor",
    "as_image_batch",
    "check_boxes",
    "check_finite",
    "check_fraction",
    "check_image_batch",
    "check_image_size",
    "check_int_pair",
    "check_int_tensor",
    "check_positive_int",
    "check_same_length",
]


def as_float_tensor(name: str, value, ndim: int | None = None, last: int | None = None) -> torch.Tensor:
    """``value`` as a floating tensor (float tensors keep their dtype; ints become float32).

    Checks the number of dimensions and the size of the last one when given, and that
    every entry is finite.
    """
    if isinstance(value, torch.Tensor):
        t = value
    elif isinstance(value, (np.ndarray, list, tuple)):
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric, could not convert it: {exc}") from None
        t = t.float()
    else:
        raise ValueError(f"{name} must be a tensor, array or list, got {type(value).__name__}")
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if not t.is_floating_point():
        t = t.float()
    if ndim is not None and t.dim() != ndim:
        want = f"[..., {last}]" if last else f"{ndim} dimensions"
        raise ValueError(f"{name} must have {ndim} dimensions ({want}), got shape {tuple(t.shape)}")
    if last is not None and (t.dim() == 0 or t.shape[-1] != last):
        raise ValueError(f"{name} must have last dimension {last}, got shape {tuple(t.shape)}")
    check_finite(name, t)
    return t


def check_finite(name: str, t: torch.Tensor) -> None:
    """Raise if ``t`` holds NaN or inf."""
    if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, but it holds NaN or inf")


def check_boxes(name: str, boxes, allow_empty_area: bool = True) -> torch.Tensor:
    """Validate ``boxes`` as ``Tensor[N, 4]`` in ``(x1, y1, x2, y2)`` format.

    Returns the boxes as a floating tensor (never modifies the input). Zero-area boxes
    (x2 == x1) are allowed; x2 < x1 or y2 < y1 is an error.
    """
    t = as_float_tensor(name, boxes)
    if t.dim() == 1 and t.numel() == 0:
        t = t.reshape(0, 4)
    if t.dim() != 2 or t.shape[1] != 4:
        raise ValueError(f"{name} must have shape [N, 4] (x1, y1, x2, y2), got {tuple(t.shape)}")
    if t.numel():
        bad = (t[:, 2] < t[:, 0]) | (t[:, 3] < t[:, 1])
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"{name}[{i}] = {t[i].tolist()} has x2 < x1 or y2 < y1; boxes must be "
                "(x1, y1, x2, y2) with x1 <= x2 and y1 <= y2"
            )
        if not allow_empty_area:
            flat = (t[:, 2] == t[:, 0]) | (t[:, 3] == t[:, 1])
            if bool(flat.any()):
                i = int(flat.nonzero()[0, 0])
                raise ValueError(f"{name}[{i}] = {t[i].tolist()} has zero width or height")
    return t


def check_fraction(name: str, value) -> float:
    """A threshold in [0, 1] as a float."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(float(value)):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def check_positive_int(name: str, value, allow_zero: bool = False) -> int:
    """A positive (or non-negative) Python int."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = int(value.item())
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    low = 0 if allow_zero else 1
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


def check_same_length(**named) -> int:
    """All arguments have the same first dimension; returns it."""
    lengths = {k: len(v) for k, v in named.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise ValueError(f"expected the same number of entries: {desc}")
    return next(iter(lengths.values())) if lengths else 0


def check_int_pair(name: str, value, allow_zero: bool = False) -> tuple[int, int]:
    """An int or a pair of ints ``(height, width)`` as a pair, each checked positive."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}")
        return (
            check_positive_int(f"{name}[0]", value[0], allow_zero),
            check_positive_int(f"{name}[1]", value[1], allow_zero),
        )
    v = check_positive_int(name, value, allow_zero)
    return v, v


def check_int_tensor(name: str, value, what: str = "") -> torch.Tensor:
    """``value`` must be an integer tensor (not float, complex or bool); ``what`` ends the
    message, e.g. ``"[N] (a class per box)"``."""
    if (
        not isinstance(value, torch.Tensor)
        or value.is_floating_point()
        or value.is_complex()
        or value.dtype == torch.bool
    ):
        got = f"dtype {value.dtype}" if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"{name} must be an integer tensor{' ' + what if what else ''}, got {got}")
    return value


def check_image_size(name: str, size) -> tuple[float, float]:
    """An image size ``(height, width)`` (height first, as ``image.shape[-2:]``) as two
    positive floats; accepts a ``torch.Size`` and one-element tensors."""
    if isinstance(size, torch.Size):
        size = tuple(size)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"{name} must be a pair (height, width), got {size!r}")
    out = []
    for v in size:
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)) or v <= 0:
            raise ValueError(
                f"{name} must be a pair of positive numbers (height, width), got {size!r}"
            )
        out.append(float(v))
    return out[0], out[1]


def check_image_batch(x, in_channels: int | None = None) -> torch.Tensor:
    """Raise ``ValueError`` unless ``x`` is a floating tensor ``[N, C, H, W]`` (with
    ``in_channels`` channels when given); returns ``x``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        what = f"a {x.dim()}-d {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"images must be a floating tensor [N, C, H, W], got {what}")
    if in_channels is not None and x.shape[1] != in_channels:
        raise ValueError(f"images must have {in_channels} channels, got shape {tuple(x.shape)}")
    return x


def as_image_batch(images) -> torch.Tensor:
    """``images`` as one plain ``Tensor[N, C, H, W]``: a batch tensor as it is, or a list of
    same-size ``[C, H, W]`` images (what a detection loader gives) stacked; ``tv_tensors``
    lose their subclass. Raises ``ValueError`` on an empty list, mixed sizes, or anything
    that is not a floating ``[N, C, H, W]`` batch."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError("images is an empty list")
        shapes = {tuple(im.shape) if isinstance(im, torch.Tensor) else type(im).__name__ for im in images}
        if len(shapes) != 1:
            raise ValueError(f"images must all have the same size to be batched, got {sorted(map(str, shapes))}")
        if not all(isinstance(im, torch.Tensor) for im in images):
            raise ValueError(f"images must be tensors [C, H, W], got {type(images[0]).__name__}")
        images = torch.stack([im.as_subclass(torch.Tensor) for im in images])
    elif isinstance(images, torch.Tensor):
        images = images.as_subclass(torch.Tensor)
    return check_image_batch(images)
