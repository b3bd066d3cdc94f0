"""Run an exercise's cases on the reader's function and say what passed, with hints.

The same judging code serves the check cell in the reader's notebook (the function runs
right there) and the grader (the function runs in a sandboxed process; only its return
values come back, and they are judged here, by the instructor's code).
"""

from __future__ import annotations

import ast
import builtins
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

from .spec import Case, Exercise, compare_values, get, hidden_cases

__all__ = [
    "Outcome",
    "CaseResult",
    "CheckResult",
    "run_case",
    "judge",
    "run_check",
    "check",
    "forbidden_in_function",
    "forbidden_in_source",
    "copy_value",
    "hidden_reason",
]

NOT_ATTEMPTED = "not attempted yet (NotImplementedError)"


@dataclass
class Outcome:
    """What happened when the reader's function ran on one case.

    ``value`` is its return value; ``error`` a one-line description of the exception it
    raised (``error_types``: the names of the exception's classes, most specific first;
    ``line``: the line of the reader's cell it was raised from); ``args_after`` the
    arguments after the call, or (from the grader's worker, which never sends the inputs
    back) ``changed_arg``: the index of the first argument the call changed in place.
    ``status`` is set by the grader when the case never finished (``"timeout"``,
    ``"died"``, ``"flood"``, ``"memory"``), with ``error`` saying why.
    """

    value: Any = None
    error: str | None = None
    error_types: tuple[str, ...] = ()
    line: int | None = None
    args_after: tuple | None = None
    status: str | None = None
    changed_arg: int | None = None


@dataclass
class CaseResult:
    case: Case
    passed: bool
    message: str = ""


@dataclass
class CheckResult:
    """The results of one exercise's cases; ``problem`` voids them all when set."""

    exercise: Exercise
    results: list[CaseResult]
    problem: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return 0 if self.problem else sum(r.passed for r in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def hidden_share(self) -> float:
        """The share of the points the hidden cases carry: the exercise's ``hidden_share``
        when there are hidden cases, else 0 (the public cases carry all the points)."""
        return self.exercise.hidden_share if any(r.case.hidden for r in self.results) else 0.0

    def case_points(self, case: Case) -> float:
        """What ``case`` is worth: its part's points (public or hidden) times its weight's
        share of that part."""
        part = [r.case.weight for r in self.results if r.case.hidden == case.hidden]
        share = self.hidden_share if case.hidden else 1.0 - self.hidden_share
        return self.exercise.points * share * case.weight / sum(part) if part else 0.0

    @property
    def score(self) -> float:
        """Points earned: the points of the cases passed (see :meth:`case_points`)."""
        if self.problem or not self.total:
            return 0.0
        return round(sum(self.case_points(r.case) for r in self.results if r.passed), 2)

    @property
    def not_attempted(self) -> bool:
        return bool(self.results) and all(r.message == NOT_ATTEMPTED for r in self.results)

    def report(self) -> str:
        """The report a reader reads under the check cell (plain text)."""
        ex = self.exercise
        pts = f"{ex.points:g} point" + ("" if ex.points == 1 else "s")
        lines = [f'Exercise "{ex.id}": {ex.title} ({pts})']
        if self.problem:
            lines.append(f"  {self.problem}")
        elif self.not_attempted:
            lines.append(
                f"  {NOT_ATTEMPTED[0].upper()}{NOT_ATTEMPTED[1:]}: write the function "
                "in the cell above, run it, then run this cell again."
            )
        lines += [f"  note: {n}" for n in self.notes]
        weighted = len({(r.case.hidden, r.case.weight) for r in self.results}) > 1
        for r in self.results:
            name = f"hidden case: {r.case.name}" if r.case.hidden else r.case.name
            if weighted:
                name += f" ({self.case_points(r.case):.2g} pt)"
            if r.passed and not self.problem:
                lines.append(f"  ✓ {name}")
            else:
                message = hidden_reason(r.message) if r.case.hidden else r.message
                why = "" if (self.problem or self.not_attempted) else f": {message}"
                lines.append(f"  ✗ {name}{why}")
                if r.case.hint and not (self.problem or self.not_attempted or r.case.hidden):
                    lines.append(f"      hint: {r.case.hint}")
        lines.append(
            f"{self.passed} of {self.total} cases passed: {self.score:g} of {ex.points:g} points."
        )
        if self.passed < self.total and ex.hint:
            lines.append(f"Hint: {ex.hint}")
        return "\n".join(lines)


_BUILTIN_ERRORS = {
    name
    for name, v in vars(builtins).items()
    if isinstance(v, type) and issubclass(v, BaseException)
}


def hidden_reason(message: str) -> str:
    """What a hidden case's feedback says of a failure: its kind only. Never the expected
    value, nor text the reader's code chose (an exception's message or class name could
    carry the hidden inputs out to the reader)."""
    if message == NOT_ATTEMPTED:
        return message
    if message.startswith("raised "):
        kind = message[len("raised ") :].split(":", 1)[0].split(" ", 1)[0]
        return f"raised {kind}" if kind in _BUILTIN_ERRORS else "raised an exception"
    if message.startswith("the result is right, but the function changed"):
        return "the function changed an argument in place"
    if message.startswith("expected it to raise"):
        return "did not raise the exception expected"
    if message.startswith("did not finish"):
        return "did not finish"
    return "wrong result"


def copy_value(x: Any) -> Any:
    """A copy of a case argument, so that each call gets fresh inputs."""
    import numpy as np
    import torch

    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, (list, tuple)):
        return type(x)(copy_value(v) for v in x)
    if isinstance(x, dict):
        return {k: copy_value(v) for k, v in x.items()}
    return x


def _error_line(tb, filename: str | None) -> int | None:
    frames = traceback.extract_tb(tb)
    mine = [f for f in frames if filename and f.filename == filename]
    return (mine or frames or [None])[-1].lineno if (mine or frames) else None


def run_case(function, case: Case) -> Outcome:
    """Call ``function(*case.args)`` on copies of the arguments and record what happened."""
    args = copy_value(tuple(case.args))
    try:
        value = function(*args)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - a student's function may raise anything
        code = getattr(function, "__code__", None)
        return Outcome(
            error=f"{type(exc).__name__}: {exc}".strip().rstrip(":")[:500],
            error_types=tuple(c.__name__ for c in type(exc).__mro__),
            line=_error_line(exc.__traceback__, code.co_filename if code else None),
            args_after=args,
        )
    return Outcome(value=value, args_after=args)


def judge(case: Case, outcome: Outcome) -> CaseResult:
    """Decide whether ``outcome`` passes ``case``, and say why not."""
    if outcome.status:
        return CaseResult(case, False, outcome.error or outcome.status)
    if outcome.error is not None:
        if case.raises is not None and case.raises.__name__ in outcome.error_types:
            return CaseResult(case, True)
        if "NotImplementedError" in outcome.error_types:
            return CaseResult(case, False, NOT_ATTEMPTED)
        where = f" (line {outcome.line} of your cell)" if outcome.line else ""
        return CaseResult(case, False, f"raised {outcome.error}{where}")
    if case.raises is not None:
        return CaseResult(
            case,
            False,
            f"expected it to raise {case.raises.__name__}, "
            f"but it returned {type(outcome.value).__name__}",
        )
    message = compare_values(case.expected, outcome.value, case.atol, case.rtol)
    if message:
        return CaseResult(case, False, message)
    changed = outcome.changed_arg
    if outcome.args_after is not None:
        for k, (before, after) in enumerate(zip(case.args, outcome.args_after, strict=False)):
            if compare_values(before, after, 0.0, 0.0):
                changed = k
                break
    if changed is not None:
        return CaseResult(
            case,
            False,
            f"the result is right, but the function changed its "
            f"argument {changed + 1} in place: work on a copy",
        )
    return CaseResult(case, True)


def _code_names(code) -> set[str]:
    names = set(code.co_names) | set(code.co_freevars)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            names |= _code_names(const)
    return names


def forbidden_in_function(function, forbidden: tuple[str, ...]) -> list[str]:
    """The forbidden names that ``function``'s code refers to (imports, calls, attributes)."""
    if not forbidden:
        return []
    module = getattr(function, "__module__", None) or ""
    if module.split(".")[0] in ("torchvision", "vizlib"):  # the library's own function itself
        return [f"{module}.{getattr(function, '__name__', '?')}"]
    code = getattr(function, "__code__", None)
    if code is None:
        return []
    names = _code_names(code) - {getattr(function, "__name__", "")}
    return sorted({f for f in forbidden if f.split(".")[-1] in names and "." not in f})


def forbidden_in_source(source: str, forbidden: tuple[str, ...], function: str = "") -> list[str]:
    """The forbidden names that imports or attribute accesses in ``source`` refer to."""
    if not forbidden:
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found = set()
    bare = {f for f in forbidden if "." not in f}
    dotted = {f for f in forbidden if "." in f}

    def module_hit(module: str) -> None:
        for d in dotted:
            if module == d or module.startswith(d + "."):
                found.add(d)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                module_hit(alias.name)
                found.update(bare & set(alias.name.split(".")))
        elif isinstance(node, ast.ImportFrom):
            module_hit(node.module or "")
            for alias in node.names:
                module_hit(f"{node.module}.{alias.name}")
                if alias.name in bare:
                    found.add(alias.name)
        elif isinstance(node, ast.Attribute) and node.attr in bare:
            found.add(node.attr)
        elif isinstance(node, ast.Name) and node.id in bare and node.id != function:
            found.add(node.id)
    return sorted(found)


def forbidden_message(names: list[str]) -> str:
    return (
        f"uses {', '.join(names)}, which this exercise asks you to write yourself: "
        "no points until the function works without it"
    )


def run_check(exercise_id: str, function, secret: str | None = None) -> CheckResult:
    """Run exercise ``exercise_id``'s cases on ``function``; returns the results (prints nothing).

    ``secret``: also run the hidden cases drawn from it (what the grader would score; the
    instructor's tests use it, the reader's check cell never does).
    """
    ex = get(exercise_id)
    cases = ex.cases() + (hidden_cases(ex, secret) if secret is not None else [])
    if not callable(function):
        return CheckResult(
            ex,
            [CaseResult(c, False, "not a function") for c in cases],
            problem=f"expected the function {ex.function}, got {type(function).__name__}",
        )
    results = [judge(case, run_case(function, case)) for case in cases]
    used = forbidden_in_function(function, ex.forbidden)
    return CheckResult(ex, results, problem=forbidden_message(used) if used else None)


def check(exercise_id: str, function) -> None:
    """The check cell: run the exercise's tests on ``function`` and print what passed.

    Never raises on a wrong or unwritten function (the notebook must run top to bottom);
    prints ``not attempted yet`` while the function still raises ``NotImplementedError``.
    """
    result = run_check(exercise_id, function)
    sys.stdout.write(result.report() + "\n")
