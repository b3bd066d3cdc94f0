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

These cases are **public**: the reader's check cell runs them, and they ship with vizlib.
Grading adds **hidden** cases that never ship: a generator registered with :func:`hidden`
draws them at grading time from a random generator seeded by the instructor's secret
(:func:`hidden_cases`), so nobody without the secret knows their inputs, and nobody at
all knows their expected values but the grader's own process::

    @hidden("box_area")
    def _box_area_hidden(g):          # g: a torch.Generator seeded from the secret
        boxes = random_boxes(12, g)
        yield Case("12 random boxes", (boxes,), expected=box_area(boxes))

The same decorator registers the cases of an instructor's own folder of ``*.py`` files
(``--hidden DIR``: :func:`load_hidden_folder`), which never leave that folder.

Weights: each case has a ``weight`` (1 by default). An exercise's points are shared
between its public and its hidden cases: ``hidden_share`` of them (0.5 by default) go to
the hidden cases when there are any, the rest to the public ones, and within each part
a case earns its weight's share. Without hidden cases (the reader's check cell) the
public cases carry all the points.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Case",
    "Exercise",
    "exercise",
    "hidden",
    "hidden_cases",
    "load_hidden_folder",
    "get",
    "all_exercises",
    "compare_values",
    "HIDDEN_SHARE",
    "EDGE_WEIGHT",
]

HIDDEN_SHARE = 0.5  # the default share of an exercise's points that its hidden cases carry
# The weight the bank gives an edge case whose answer is all zeros or empty (no boxes, a
# disjoint pair): worth checking, but a function returning zeros must not live on them.
EDGE_WEIGHT = 0.25


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
        weight: the case's share of its part (public or hidden) of the exercise's points,
            relative to the other cases of that part (1 by default; a case that a
            function answering zeros passes deserves less).
        hidden: set by :func:`hidden_cases` on the cases of a hidden generator; a hidden
            case's feedback says passed or failed and why in general terms, never its
            inputs or expected values.
    """

    name: str
    args: tuple
    expected: Any = None
    raises: type[BaseException] | None = None
    atol: float = 1e-5
    rtol: float = 1e-4
    hint: str = ""
    weight: float = 1.0
    hidden: bool = False

    def __post_init__(self):
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight)) or (
            self.weight <= 0
        ):
            raise ValueError(f"case {self.name!r}: weight must be a positive number")


@dataclass(frozen=True)
class Exercise:
    """An exercise: the reader writes ``function``; ``make_cases`` yields its tests.

    ``forbidden`` lists names the reader's code may not import or call (the reference the
    exercise asks them to write): bare names (``"box_iou"``) match an imported name or an
    attribute; dotted names (``"vizlib.boxes"``) match an imported module.
    ``hidden_share`` is the share of ``points`` that hidden cases carry when graded with
    some (see the module docstring).
    """

    id: str
    title: str
    function: str
    points: float
    hint: str
    make_cases: Callable[[], Iterable[Case]]
    forbidden: tuple[str, ...] = ()
    hidden_share: float = HIDDEN_SHARE
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


_HIDDEN: dict[str, list[Callable]] = {}


def exercise(
    id: str,
    *,
    title: str,
    function: str,
    points: float,
    hint: str,
    forbidden: tuple[str, ...] = (),
    hidden_share: float = HIDDEN_SHARE,
) -> Callable:
    """Decorator registering a case generator as exercise ``id`` (ids are unique)."""
    if not id or not id.replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"exercise id must be letters, digits, '_' or '.', got {id!r}")
    if points <= 0:
        raise ValueError(f"points must be positive, got {points}")
    if not 0 <= hidden_share < 1:
        raise ValueError(f"hidden_share must be in [0, 1), got {hidden_share}")

    def register(make_cases: Callable[[], Iterable[Case]]):
        if id in _REGISTRY:
            raise ValueError(f"exercise id {id!r} is registered twice")
        _REGISTRY[id] = Exercise(
            id,
            title,
            function,
            float(points),
            hint,
            make_cases,
            tuple(forbidden),
            float(hidden_share),
        )
        return make_cases

    return register


def hidden(exercise_id: str) -> Callable:
    """Decorator registering a generator of hidden cases for ``exercise_id``.

    The generator takes a ``torch.Generator`` seeded from the grading secret and the
    exercise id, and yields :class:`Case` objects (their inputs drawn from it, their
    expected values computed from a reference). Several generators may serve one exercise
    (the bank's and an instructor folder's); their cases add up.
    """

    def register(make: Callable):
        makers = _HIDDEN.setdefault(exercise_id, [])
        key = (make.__module__, make.__qualname__)
        same = [i for i, m in enumerate(makers) if (m.__module__, m.__qualname__) == key]
        if same:  # the same file loaded again: replaced, not added twice
            makers[same[0]] = make
        else:
            makers.append(make)
        return make

    return register


def seed_of(secret: str, exercise_id: str, k: int = 0) -> int:
    """The seed of generator ``k`` of ``exercise_id``'s hidden cases under ``secret``."""
    digest = hashlib.sha256(f"{secret}\0{exercise_id}\0{k}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def hidden_cases(ex: Exercise, secret: str) -> list[Case]:
    """The hidden cases of ``ex`` under ``secret`` (the same secret, the same cases).

    ValueError naming the generator when one fails or yields something else than a Case.
    """
    import torch

    _load_bank()
    cases = []
    for k, make in enumerate(_HIDDEN.get(ex.id, [])):
        g = torch.Generator().manual_seed(seed_of(secret, ex.id, k))
        where = f"{getattr(make, '__module__', '?')}.{getattr(make, '__qualname__', '?')}"
        try:
            drawn = list(make(g))
        except Exception as exc:
            raise ValueError(
                f"the hidden cases of {ex.id} ({where}) failed: {type(exc).__name__}: {exc}"
            ) from exc
        wrong = [type(c).__name__ for c in drawn if not isinstance(c, Case)]
        if wrong:
            raise ValueError(f"the hidden cases of {ex.id} ({where}) yield {wrong[0]}, not Case")
        cases += [dataclasses.replace(c, hidden=True) for c in drawn]
    return cases


def load_hidden_folder(folder: str | Path) -> list[str]:
    """Run every ``*.py`` file of an instructor's folder of hidden cases (files that
    register generators with :func:`hidden`); returns the exercise ids they serve.

    ValueError when the folder is missing, holds no such file, or a file fails to run or
    names an unknown exercise.
    """
    import importlib.util

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"no folder of hidden cases {folder}")
    files = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    if not files:
        raise ValueError(f"{folder} holds no *.py file of hidden cases")
    _load_bank()
    names = set()
    for path in files:
        name = f"vizlib_hidden_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        names.add(name)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ValueError(f"{path}: {type(exc).__name__}: {exc}") from None
    served = sorted(k for k, v in _HIDDEN.items() if any(m.__module__ in names for m in v))
    unknown = [k for k in served if k not in _REGISTRY]
    if unknown:
        raise ValueError(f"{folder}: hidden cases for unknown exercises: {', '.join(unknown)}")
    return served


def _load_bank() -> None:
    import importlib
    import pkgutil

    from . import bank

    for info in pkgutil.iter_modules(bank.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{bank.__name__}.{info.name}")


def with_weights(
    ex: Exercise, points: float | None = None, hidden_share: float | None = None
) -> Exercise:
    """``ex`` with the points and hidden share an assignment states (None: the bank's)."""
    points = ex.points if points is None else float(points)
    share = ex.hidden_share if hidden_share is None else float(hidden_share)
    if not points > 0:
        raise ValueError(f"exercise {ex.id}: points must be positive, got {points:g}")
    if not 0 <= share < 1:
        raise ValueError(f"exercise {ex.id}: hidden share must be in [0, 1), got {share:g}")
    return dataclasses.replace(ex, points=points, hidden_share=share)


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
