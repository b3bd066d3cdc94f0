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
    "as_flags",
    "as_float_rows",
    "as_float_tensor",
    "as_image_batch",
    "as_keypoints",
    "as_label_map",
    "check_boxes",
    "check_choice",
    "check_finite",
    "check_fraction",
    "check_image_batch",
    "check_image_size",
    "check_int_pair",
    "check_int_tensor",
    "check_labels",
    "check_number",
    "check_per_image",
    "check_positive_int",
    "check_positive_numbers",
    "check_positive_pair",
    "check_same_length",
    "check_same_shape",
]


def as_float_tensor(
    name: str, value, ndim: int | None = None, last: int | None = None
) -> torch.Tensor:
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


def as_float_rows(name: str, value, columns: int, what: str) -> torch.Tensor:
    """``value`` as a floating ``Tensor[N, columns]``: ``N`` rows of ``columns`` numbers
    (boxes, points), finite; an empty 1-D input (``torch.tensor([])``, ``[]``) reads as no
    rows. ``what`` names the columns in the message, e.g. ``"x, y"``."""
    t = as_float_tensor(name, value)
    if t.dim() == 1 and t.numel() == 0:
        t = t.reshape(0, columns)
    if t.dim() != 2 or t.shape[1] != columns:
        raise ValueError(f"{name} must have shape [N, {columns}] ({what}), got {tuple(t.shape)}")
    return t


def check_boxes(name: str, boxes, allow_empty_area: bool = True) -> torch.Tensor:
    """Validate ``boxes`` as ``Tensor[N, 4]`` in ``(x1, y1, x2, y2)`` format.

    Returns the boxes as a floating tensor (never modifies the input). Zero-area boxes
    (x2 == x1) are allowed; x2 < x1 or y2 < y1 is an error.
    """
    t = as_float_rows(name, boxes, 4, "x1, y1, x2, y2")
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


def check_per_image(what: str, **named) -> int:
    """Each argument a list (or tuple) with one ``what`` per image, all of the same
    length; returns it. E.g. ``check_per_image("dicts", predictions=p, targets=t)``."""
    for name, value in named.items():
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list of {what}, got {type(value).__name__}")
    lengths = [len(v) for v in named.values()]
    if len(set(lengths)) > 1:
        raise ValueError(
            f"{' and '.join(named)} must have one entry per image, got "
            + " and ".join(map(str, lengths))
        )
    return lengths[0] if lengths else 0


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


def check_number(name: str, value, low: float | None = None, strict: bool = False) -> float:
    """A finite real number as a float (a one-element tensor counts), ``>= low`` when
    ``low`` is given (``> low`` when ``strict``)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    if low is not None and (value < low or (strict and value == low)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low:g}, got {value}")
    return float(value)


def check_positive_numbers(name: str, values, length: int | None = None) -> list[float]:
    """A non-empty sequence (list, tuple, tensor; a lone number is one) of finite numbers
    > 0, as floats; exactly ``length`` of them when given."""
    if isinstance(values, torch.Tensor):
        values = values.flatten().tolist()
    if isinstance(values, Real) and not isinstance(values, bool):
        values = [values]
    count = "a non-empty sequence of" if length is None else f"{length}"
    if (
        not isinstance(values, (tuple, list))
        or not values
        or (length is not None and len(values) != length)
    ):
        raise ValueError(f"{name} must be {count} positive numbers, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must hold positive finite numbers, got {values!r}")
    return [float(v) for v in values]


def check_positive_pair(name: str, value, single: bool = True) -> tuple[float, float]:
    """A pair ``(height, width)`` of finite numbers > 0 as floats (a ``torch.Size`` and
    one-element tensors count); with ``single``, one number means both."""
    if isinstance(value, torch.Size):
        value = tuple(value)
    if single and isinstance(value, (Real, torch.Tensor)) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        either = "a number or " if single else ""
        raise ValueError(f"{name} must be {either}a pair (height, width), got {value!r}")
    out = []
    for v in value:
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)) or v <= 0:
            raise ValueError(
                f"{name} must be a pair of positive numbers (height, width), got {value!r}"
            )
        out.append(float(v))
    return out[0], out[1]


def check_image_size(name: str, size) -> tuple[float, float]:
    """An image size ``(height, width)`` (height first, as ``image.shape[-2:]``) as two
    positive floats; accepts a ``torch.Size`` and one-element tensors, not a lone number."""
    return check_positive_pair(name, size, single=False)


def check_choice(name: str, value, choices: tuple):
    """``value``, which must be one of ``choices`` (e.g. a function's modes)."""
    if isinstance(value, (torch.Tensor, np.ndarray)) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Raise unless tensors ``a`` and ``b`` have the same shape (no broadcasting)."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_labels(name: str, labels, n: int) -> torch.Tensor:
    """``labels`` as ``Tensor[n]`` int64 on its device, one class index per box: an integer
    tensor (not a list, so that it stays on the boxes' device)."""
    check_int_tensor(name, labels, f"[{n}] (a class per box)")
    if labels.shape != (n,):
        raise ValueError(
            f"{name} must have shape [{n}] (a class per box), got {tuple(labels.shape)}"
        )
    return labels.long()


def as_flags(name: str, value, n: int | None = None, what: str = "one per box") -> torch.Tensor:
    """``value`` as a bool ``Tensor[N]`` on the CPU: bool, or integers 0/1 (a tensor, array
    or list); exactly ``n`` entries when given (``what`` says what each is for)."""
    if not isinstance(value, (torch.Tensor, np.ndarray, list, tuple)):
        raise ValueError(f"{name} must be a bool tensor of shape [N], got {type(value).__name__}")
    t = (
        value.detach().cpu()
        if isinstance(value, torch.Tensor)
        else torch.as_tensor(np.asarray(value))
    )
    if t.dim() != 1:
        raise ValueError(f"{name} must have shape [N], got {tuple(t.shape)}")
    if n is not None and t.numel() != n:
        raise ValueError(f"{name} must have shape [{n}] ({what}), got {tuple(t.shape)}")
    if t.dtype != torch.bool:
        if (
            t.is_floating_point()
            or t.is_complex()
            or (t.numel() and not bool(((t == 0) | (t == 1)).all()))
        ):
            raise ValueError(f"{name} must be a bool tensor (or 0/1 integers), got dtype {t.dtype}")
        t = t.bool()
    return t


def as_label_map(name: str, value) -> torch.Tensor:
    """``value`` as an int64 tensor of class indices (label maps, any shape) on the CPU,
    where pixels are counted; a tensor or array of integers, not logits."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, torch.Tensor):
        raise ValueError(
            f"{name} must be an integer tensor of class indices, got {type(value).__name__}"
        )
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer class indices, got dtype {value.dtype} "
            "(for logits [B, C, H, W], take .argmax(dim=1) first)"
        )
    return value.detach().cpu().long()


def as_keypoints(name: str, value, coords: tuple[int, ...] = (2, 3)) -> torch.Tensor:
    """``value`` as a floating ``Tensor[N, K, c]``: ``K`` keypoints of ``N`` objects, each
    ``(x, y)`` or ``(x, y, visibility)``, with ``c`` one of ``coords``; finite."""
    k = as_float_tensor(name, value)
    if k.dim() != 3 or k.shape[-1] not in coords:
        want = " or ".join(f"[N, K, {c}]" for c in coords)
        raise ValueError(f"{name} must have shape {want}, got {tuple(k.shape)}")
    return k


def check_image_batch(x, in_channels: int | None = None) -> torch.Tensor:
    """Raise ``ValueError`` unless ``x`` is a floating tensor ``[N, C, H, W]`` (with
    ``in_channels`` channels when given); returns ``x``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        what = (
            f"a {x.dim()}-d {x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
        )
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
        shapes = {
            tuple(im.shape) if isinstance(im, torch.Tensor) else type(im).__name__ for im in images
        }
        if len(shapes) != 1:
            raise ValueError(
                f"images must all have the same size to be batched, got {sorted(map(str, shapes))}"
            )
        if not all(isinstance(im, torch.Tensor) for im in images):
            raise ValueError(f"images must be tensors [C, H, W], got {type(images[0]).__name__}")
        images = torch.stack([im.as_subclass(torch.Tensor) for im in images])
    elif isinstance(images, torch.Tensor):
        images = images.as_subclass(torch.Tensor)
    return check_image_batch(images)


def check_detection_targets(
    targets, n: int, num_classes: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The boxes and labels of ``n`` images' targets (torchvision's format: a list of dicts
    with ``boxes`` ``Tensor[M, 4]`` (x1, y1, x2, y2) and ``labels`` ``Tensor[M]`` in
    ``[1, num_classes]``, 0 being background), checked, as plain tensors."""
    if not isinstance(targets, (list, tuple)) or len(targets) != n:
        raise ValueError(
            f"targets must be a list of {n} dicts (one per image) with boxes and labels"
        )
    boxes, labels = [], []
    for i, t in enumerate(targets):
        if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"targets[{i}] must be a dict with boxes and labels")
        b = t["boxes"]
        b = check_boxes(
            f"targets[{i}]['boxes']",
            b.as_subclass(torch.Tensor) if isinstance(b, torch.Tensor) else b,
        )
        lab = check_labels(f"targets[{i}]['labels']", t["labels"], len(b))
        if len(lab) and (int(lab.min()) < 1 or int(lab.max()) > num_classes):
            raise ValueError(
                f"targets[{i}]['labels'] must be in [1, {num_classes}] (0 is background), "
                f"got {lab.tolist()}"
            )
        boxes.append(b)
        labels.append(lab)
    return boxes, labels
