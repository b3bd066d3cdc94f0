"""Exercises inside notebooks: find them, and turn a master into the student version.

The convention (the markers are those of otter-grader and nbgrader, so their tools read
the masters too)::

    # EXERCISE iou
    import torch

    def iou(boxes1, boxes2):
        \"\"\"...\"\"\"
        # BEGIN SOLUTION
        ...the instructor's solution...
        # END SOLUTION

and, in a later cell, the check cell ``check("iou", iou)``. The student version
replaces each solution block by a stub that raises ``NotImplementedError`` (indented like
the ``# BEGIN SOLUTION`` line) and clears the outputs of exercise and check cells; every
other cell keeps its outputs.
"""

from __future__ import annotations

import copy
import re

__all__ = [
    "EXERCISE_HEADER",
    "exercise_id_of",
    "checked_ids_of",
    "find_exercise_cells",
    "stated_weights",
    "strip_solutions",
    "has_solution_markers",
    "student_version",
    "lint_master",
]

EXERCISE_HEADER = re.compile(r"^\s*#\s*EXERCISE\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_CHECK_CALL = re.compile(r"""\bcheck\(\s*['"]([A-Za-z_][\w.]*)['"]""")
_BEGIN = re.compile(r"^(\s*)#\s*BEGIN SOLUTION\b")
_END = re.compile(r"^\s*#\s*END SOLUTION\b")


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(str(s) for s in src) if isinstance(src, list) else str(src)


# An exercise cell may state its weights after the id, for the grader:
#     # EXERCISE iou (points 4, hidden share 0.6)
_STATED = re.compile(r"^\s*#\s*EXERCISE\s+[A-Za-z_][\w.]*\s*\(([^)]*)\)", re.MULTILINE)
_WEIGHT = re.compile(r"^\s*(points|hidden share)\s+([0-9]*\.?[0-9]+)\s*$")


def stated_weights(cell) -> dict[str, float]:
    """The weights an exercise cell states after its id, as ``{"points": 4.0,
    "hidden_share": 0.6}`` (either may be missing); ValueError on a statement it cannot
    read."""
    m = _STATED.search(_source(cell)) if cell.get("cell_type") == "code" else None
    if not m:
        return {}
    out = {}
    for part in m.group(1).split(","):
        w = _WEIGHT.match(part)
        if not w:
            raise ValueError(
                f"cannot read {part.strip()!r} in '# EXERCISE ... ({m.group(1)})': expected "
                "'points <number>' and/or 'hidden share <number>', comma-separated"
            )
        out["points" if w.group(1) == "points" else "hidden_share"] = float(w.group(2))
    return out


def exercise_id_of(cell) -> str | None:
    """The exercise id of a code cell whose source has a ``# EXERCISE <id>`` line, else None."""
    if cell.get("cell_type") != "code":
        return None
    m = EXERCISE_HEADER.search(_source(cell))
    return m.group(1) if m else None


def checked_ids_of(cell) -> list[str]:
    """The exercise ids a code cell checks with ``check("<id>", ...)``."""
    if cell.get("cell_type") != "code":
        return []
    return _CHECK_CALL.findall(_source(cell))


def runs_student_code(cell) -> bool:
    """Whether a code cell runs the reader's own function (``run_check(...)`` decides between
    it and vizlib's, e.g. to train with the reader's loss): its output depends on the
    reader's answer, so the student version starts without it."""
    return cell.get("cell_type") == "code" and "run_check(" in _source(cell)


def find_exercise_cells(nb) -> dict[str, int]:
    """``{exercise id: cell index}`` for the exercise cells of ``nb``, in notebook order.

    Where a notebook has two cells for one id (a reader copied the cell), the last wins:
    it is the one the reader ran last when working top to bottom.
    """
    found: dict[str, int] = {}
    for i, cell in enumerate(nb.get("cells", [])):
        ex_id = exercise_id_of(cell)
        if ex_id:
            found.pop(ex_id, None)
            found[ex_id] = i
    return found


def has_solution_markers(source: str) -> bool:
    return any(_BEGIN.match(line) or _END.match(line) for line in source.splitlines())


def strip_solutions(source: str, exercise_id: str = "") -> str:
    """``source`` with each ``# BEGIN SOLUTION`` … ``# END SOLUTION`` block replaced by a stub.

    Raises:
        ValueError: on an unclosed, nested or unopened block.
    """
    out: list[str] = []
    inside = False
    what = f"exercise {exercise_id}" if exercise_id else "this exercise"
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        begin, end = _BEGIN.match(line), _END.match(line)
        if begin:
            if inside:
                raise ValueError(f"line {number}: BEGIN SOLUTION inside another solution block")
            inside = True
            indent = begin.group(1).lstrip("\n")
            out.append(f"{indent}# YOUR CODE HERE\n")
            out.append(
                f'{indent}raise NotImplementedError("{what}: replace this line with your code")\n'
            )
        elif end:
            if not inside:
                raise ValueError(f"line {number}: END SOLUTION without BEGIN SOLUTION")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("BEGIN SOLUTION without END SOLUTION")
    text = "".join(out)
    return text[:-1] if text.endswith("\n") and not source.endswith("\n") else text


def student_version(master):
    """The student version of a master notebook (a new notebook; the master is unchanged)."""
    nb = copy.deepcopy(master)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        src = _source(cell)
        ex_id = exercise_id_of(cell)
        if has_solution_markers(src):
            try:
                cell.source = strip_solutions(src, ex_id or "")
            except ValueError as exc:
                raise ValueError(f"cell {i}: {exc}") from None
        if ex_id or checked_ids_of(cell) or runs_student_code(cell):
            cell.outputs = []
            cell.execution_count = None
    return nb


def lint_master(nb) -> list[str]:
    """Problems with a master notebook's exercises (an empty list when it follows the convention).

    Every exercise cell names a registered exercise, holds a solution block, defines the
    exercise's function (also once stubbed), and is followed by a check cell for its id;
    every check cell checks an exercise of this notebook.
    """
    import ast

    from .spec import all_exercises

    known = all_exercises()
    problems: list[str] = []
    seen: dict[str, int] = {}
    checked: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        ex_id = exercise_id_of(cell)
        for cid in checked_ids_of(cell):
            checked.setdefault(cid, i)
            if cid not in seen:
                problems.append(f"cell {i}: checks {cid!r} before (or without) its exercise cell")
        if not ex_id:
            if cell.cell_type == "code" and has_solution_markers(_source(cell)):
                problems.append(
                    f"cell {i}: solution markers outside an exercise cell (no # EXERCISE line)"
                )
            continue
        if ex_id in seen:
            problems.append(f"cell {i}: exercise {ex_id!r} appears twice")
        seen[ex_id] = i
        if ex_id not in known:
            problems.append(
                f"cell {i}: exercise {ex_id!r} is not registered in vizlib.exercises.bank"
            )
            continue
        src = _source(cell)
        if not has_solution_markers(src):
            problems.append(f"cell {i}: exercise {ex_id!r} has no # BEGIN SOLUTION block")
        for label, text in (("master", src), ("student version", None)):
            try:
                text = text if text is not None else strip_solutions(src, ex_id)
                tree = ast.parse(text)
            except (SyntaxError, ValueError) as exc:
                problems.append(f"cell {i}: the {label} of {ex_id!r} does not parse: {exc}")
                continue
            defs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
            if known[ex_id].function not in defs:
                problems.append(
                    f"cell {i}: the {label} of {ex_id!r} does not define {known[ex_id].function}()"
                )
    for ex_id, i in seen.items():
        if ex_id not in checked:
            problems.append(f"cell {i}: exercise {ex_id!r} has no check cell after it")
    return problems
