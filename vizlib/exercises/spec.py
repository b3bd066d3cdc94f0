"""What an exercise is: an id, points, the function the reader writes, and test cases.

Instructors write one module per chapter in :mod:`vizlib.exercises.bank`; each exercise
is a function that yields :class:`Case` objects, registered with :func:`exercise`::

    @exercise("box_area", title="Area of boxes", function="box_area", points=2,
              hint="Width is x2 - x1, height is y2 - y1; multiply them row by row.",
              forbidden=("box_area",))
    def _box_area_cases():
        yield Case("one 2 x 3 box", (torch.tensor([[0.0, 0.0, 2.0, 3.0]]),),
                   expected=torch.tensor([6.0]))

The expected values are computed here, in the instructor's code (by a reference such as
``torchvision.ops.box_iou`` or by hand), never by the reader's notebook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Case", "Exercise", "exercise", "get", "all_exercises", "compare_values"]


@dataclass(frozen=True)
class Case:
    """One test of the reader's function.

    Args:
        name: what the case checks, as the reader will read it ("disjoint boxes give 0").
        args: positional arguments passed to the reader's function (copied for each call).
        expected: the right return value (tensor, number, tuple of those).
        raises: instead of ``expected``, the exception type the function must raise.
        atol, rtol: tolerances for floating comparisons (``torch.allclose``).
        hint: shown when this case fails.
    """

    name: str
    args: tuple
    expected: Any = None
    raises: type[BaseException] | None = None
    atol: float = 1e-5
    rtol: float = 1e-4
    hint: str = ""


@dataclass(frozen=True)
class Exercise:
    """An exercise: the reader writes ``function``; ``make_cases`` yields its tests.

    ``forbidden`` lists names the reader's code may not import or call (the reference the
    exercise asks them to write): bare names (``"box_iou"``) match an imported name or an
    attribute; dotted names (``"vizlib.boxes"``) match an imported module.
    """

    id: str
    title: str
    function: str
    points: float
    hint: str
    make_cases: Callable[[], Iterable[Case]]
    forbidden: tuple[str, ...] = ()
    _cache: list = field(default_factory=list, repr=False, compare=False)

    def cases(self) -> list[Case]:
        """The test cases (built once, then reused)."""
        if not self._cache:
            built = list(self.make_cases())
            if not built:
                raise ValueError(f"exercise {self.id!r} has no test cases")
            self._cache.extend(built)
        return list(self._cache)


_REGISTRY: dict[str, Exercise] = {}


def exercise(
    id: str, *, title: str, function: str, points: float, hint: str, forbidden: tuple[str, ...] = ()
) -> Callable:
    """Decorator registering a case generator as exercise ``id`` (ids are unique)."""
    if not id or not id.replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"exercise id must be letters, digits, '_' or '.', got {id!r}")
    if points <= 0:
        raise ValueError(f"points must be positive, got {points}")

    def register(make_cases: Callable[[], Iterable[Case]]):
        if id in _REGISTRY:
            raise ValueError(f"exercise id {id!r} is registered twice")
        _REGISTRY[id] = Exercise(
            id, title, function, float(points), hint, make_cases, tuple(forbidden)
        )
        return make_cases

    return register


def _load_bank() -> None:
    import importlib
    import pkgutil

    from . import bank

    for info in pkgutil.iter_modules(bank.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{bank.__name__}.{info.name}")


def get(exercise_id: str) -> Exercise:
    """The exercise registered as ``exercise_id`` (ValueError naming the known ids if none)."""
    _load_bank()
    if exercise_id not in _REGISTRY:
        raise ValueError(f"no exercise {exercise_id!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[exercise_id]


def all_exercises() -> dict[str, Exercise]:
    """Every registered exercise, by id."""
    _load_bank()
    return dict(_REGISTRY)


def _where(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def compare_values(expected: Any, got: Any, atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """None when ``got`` matches ``expected``, else a sentence saying what differs.

    Tensors must be tensors of the same shape with close values (NaN only where NaN is
    expected); numbers must be close; tuples and lists are compared item by item.
    """
    import numpy as np
    import torch

    if isinstance(expected, torch.Tensor):
        if isinstance(got, np.ndarray):
            got = torch.from_numpy(got)
        if not isinstance(got, torch.Tensor):
            return f"expected a torch.Tensor of shape {tuple(expected.shape)}, got {type(got).__name__}"
        if tuple(got.shape) != tuple(expected.shape):
            return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        if expected.dtype == torch.bool or not expected.is_floating_point():
            if got.is_floating_point() and expected.dtype != torch.bool:
                got = got.round()
            same = got.detach().cpu().to(expected.dtype) == expected
            if bool(same.all()):
                return None
            i = tuple(int(v) for v in (~same).nonzero()[0])
            return f"wrong value at {_where(i)}: expected {expected[i].item()}, got {got[i].item()}"
        if got.dtype == torch.bool or got.is_complex():
            return f"expected a real floating tensor, got dtype {got.dtype}"
        g = got.detach().cpu().double()
        e = expected.double()
        nan_g, nan_e = torch.isnan(g), torch.isnan(e)
        bad_nan = nan_g & ~nan_e
        if bool(bad_nan.any()):
            i = tuple(int(v) for v in bad_nan.nonzero()[0])
            return (
                f"got NaN at {_where(i)} where {e[i].item():.4g} was expected (a division 0 / 0?)"
            )
        close = torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
        if bool(close.all()):
            return None
        err = torch.where(close, torch.zeros_like(g), (g - e).abs().nan_to_num(float("inf")))
        i = tuple(int(v) for v in torch.nonzero(err == err.max())[0]) if err.dim() else ()
        return (
            f"wrong values: largest error at {_where(i)}: expected {e[i].item():.6g}, "
            f"got {g[i].item():.6g}"
        )
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            n = len(got) if isinstance(got, (tuple, list)) else type(got).__name__
            return f"expected {len(expected)} values, got {n}"
        for k, (e, g) in enumerate(zip(expected, got, strict=True)):
            message = compare_values(e, g, atol, rtol)
            if message:
                return f"value {k}: {message}"
        return None
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return (
            None
            if got == expected and type(got) is type(expected)
            else f"expected {expected!r}, got {got!r}"
        )
    if isinstance(expected, (int, float)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, (np.floating, np.integer)):
            got = got.item()
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return f"expected a number ({expected!r}), got {type(got).__name__}"
        if math.isnan(got) and not math.isnan(expected):
            return f"got NaN where {expected!r} was expected"
        if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return None
        return f"expected {expected!r}, got {got!r}"
    return None if got == expected else f"expected {expected!r}, got {got!r}"
