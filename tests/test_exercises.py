"""Exercises: every check fails on the student stub and passes on the master's solution,
the committed student versions are exactly what the masters give, and the check cell
reports instead of raising."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch

from vizlib.exercises import all_exercises, check, run_check
from vizlib.exercises.checking import forbidden_in_source
from vizlib.exercises.notebooks import (
    find_exercise_cells,
    lint_master,
    strip_solutions,
    student_version,
)
from vizlib.exercises.spec import compare_values
from vizlib.exercises.student import master_paths, render_student, stale_students
from vizlib.exercises.wire import Opaque, decode, encode

REPO = Path(__file__).resolve().parents[1]
MASTERS = REPO / "masters"


def _exercise_cells():
    """(master path, exercise id, master source, student source) for every exercise of every master."""
    found = []
    for path in master_paths(MASTERS):
        master = nbformat.read(str(path), as_version=4)
        student = student_version(master)
        for ex_id, index in find_exercise_cells(master).items():
            found.append(
                pytest.param(
                    path,
                    ex_id,
                    master.cells[index].source,
                    student.cells[index].source,
                    id=f"{path.relative_to(MASTERS)}::{ex_id}",
                )
            )
    return found


EXERCISE_CELLS = _exercise_cells()


def test_there_are_masters_with_exercises():
    assert EXERCISE_CELLS, "no exercise cell found under masters/"


@pytest.mark.parametrize(("path", "ex_id", "master_src", "student_src"), EXERCISE_CELLS)
def test_check_passes_on_solution_and_fails_on_stub(
    path, ex_id, master_src, student_src, submission
):
    ex = all_exercises()[ex_id]
    solved = run_check(ex_id, submission.define(master_src, ex.function))
    assert solved.problem is None
    failed = [f"{r.case.name}: {r.message}" for r in solved.results if not r.passed]
    assert not failed, f"{path.name}: the solution of {ex_id} fails {failed}"
    assert solved.score == ex.points

    stub = run_check(ex_id, submission.define(student_src, ex.function))
    assert stub.passed == 0 and stub.score == 0
    assert stub.not_attempted, "the stub must read as 'not attempted yet'"
    assert "BEGIN SOLUTION" not in student_src and "NotImplementedError" in student_src


def test_every_registered_exercise_is_used_by_a_master():
    used = {p.values[1] for p in EXERCISE_CELLS}
    assert set(all_exercises()) <= used, (
        f"exercises without a master: {set(all_exercises()) - used}"
    )


@pytest.mark.parametrize("path", master_paths(MASTERS), ids=lambda p: str(p.relative_to(MASTERS)))
def test_masters_follow_the_convention(path):
    assert lint_master(nbformat.read(str(path), as_version=4)) == []


def test_committed_student_versions_are_what_the_command_writes():
    assert stale_students(MASTERS, REPO) == [], "run: python -m vizlib.exercises.student"


def test_no_published_notebook_holds_a_solution():
    for folder in ("book", "lessons"):
        for path in (REPO / folder).rglob("*.ipynb"):
            assert "BEGIN SOLUTION" not in path.read_text(encoding="utf-8"), path


def test_student_version_clears_exercise_and_check_outputs_only(tmp_path):
    master = nbformat.read(str(MASTERS / "book" / "exercises.ipynb"), as_version=4)
    for cell in master.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", text="kept?\n")]
            cell.execution_count = 1
    student = student_version(master)
    for m, s in zip(master.cells, student.cells, strict=True):
        if m.cell_type != "code":
            continue
        exercise_or_check = "# EXERCISE" in m.source or "check(" in m.source
        assert (s.outputs == []) == exercise_or_check
        assert (s.execution_count is None) == exercise_or_check
    assert master.cells[3].outputs, "the master must not be modified"
    path = tmp_path / "masters" / "book" / "x.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(master, str(path))
    assert "kept?" in render_student(path)


def test_student_version_clears_cells_that_run_the_readers_function():
    # a "train with your function" cell: its output in the master comes from the solution
    master = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "# EXERCISE iou\ndef iou(a, b):\n    # BEGIN SOLUTION\n    return a\n"
                "    # END SOLUTION\n"
            ),
            nbformat.v4.new_code_cell('check("iou", iou)'),
            nbformat.v4.new_code_cell(
                'ok = run_check("iou", iou).passed\nprint("yours" if ok else "vizlib")'
            ),
            nbformat.v4.new_code_cell("print(1)"),
        ]
    )
    for cell in master.cells:
        cell.outputs = [nbformat.v4.new_output("stream", text="from the master run\n")]
    student = student_version(master)
    assert [bool(c.outputs) for c in student.cells] == [False, False, False, True]


def test_strip_solutions_keeps_indentation_and_checks_markers():
    source = "def f(x):\n    y = 1\n    # BEGIN SOLUTION\n    return x + y\n    # END SOLUTION\n"
    out = strip_solutions(source, "f")
    assert out == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n"
        '    raise NotImplementedError("exercise f: replace this line with your code")\n'
    )
    for bad in (
        "# BEGIN SOLUTION\nx = 1\n",
        "x = 1\n# END SOLUTION\n",
        "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n",
    ):
        with pytest.raises(ValueError):
            strip_solutions(bad)


def test_lint_reports_broken_masters():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("# EXERCISE iou\ndef iou(a, b):\n    return a\n"),
            nbformat.v4.new_code_cell(
                "# EXERCISE nope\ndef f():\n    # BEGIN SOLUTION\n    pass\n    # END SOLUTION\n"
            ),
        ]
    )
    problems = " ".join(lint_master(nb))
    assert "no # BEGIN SOLUTION" in problems and "no check cell" in problems
    assert "'nope' is not registered" in problems


def test_check_prints_what_failed_with_hints_and_never_raises(capsys, submission):
    check("iou", submission.define(submission.IOU_NAN_AT_ZERO_AREA, "iou"))
    text = capsys.readouterr().out
    assert "✗ a zero-area box gives 0, not NaN: got NaN at [0, 0]" in text
    assert "hint: 0 / 0 is NaN" in text and "8 of 9 cases passed: 2.67 of 3 points." in text

    def not_written(boxes):
        raise NotImplementedError

    def crashes(boxes):
        return boxes[:, 7]

    assert check("box_area", not_written) is None
    assert "Not attempted yet (NotImplementedError)" in capsys.readouterr().out
    check("box_area", crashes)
    text = capsys.readouterr().out
    assert "raised IndexError" in text and "0 of 5 cases passed" in text


def test_check_reports_in_place_changes_and_wrong_shapes(submission):
    def in_place(boxes):
        boxes[:, 2:] -= boxes[:, :2]
        return boxes[:, 2] * boxes[:, 3]

    result = run_check("box_area", in_place)
    assert any("changed its argument 1 in place" in r.message for r in result.results)

    iou_nan_at_zero_area = submission.define(submission.IOU_NAN_AT_ZERO_AREA, "iou")

    def transposed(a, b):
        return iou_nan_at_zero_area(b, a)

    result = run_check("iou", transposed)
    assert any("expected shape (3, 2), got (2, 3)" in r.message for r in result.results)


def test_using_the_reference_earns_nothing():
    from torchvision.ops import box_iou

    def iou(a, b):
        return box_iou(a, b)

    result = run_check("iou", iou)
    assert result.score == 0 and "uses box_iou" in result.problem
    source = "import torchvision\ndef iou(a, b):\n    return torchvision.ops.box_iou(a, b)\n"
    assert forbidden_in_source(source, all_exercises()["iou"].forbidden, "iou") == ["box_iou"]
    own = "def box_area(b):\n    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])\n"
    assert forbidden_in_source(own, all_exercises()["box_area"].forbidden, "box_area") == []


def test_compare_values_messages():
    e = torch.tensor([[0.5, 1.0]])
    assert compare_values(e, e.clone()) is None
    assert "expected a torch.Tensor" in compare_values(e, [[0.5, 1.0]])
    assert "got NaN at [0, 1]" in compare_values(e, torch.tensor([[0.5, float("nan")]]))
    assert "largest error at [0, 0]" in compare_values(e, torch.tensor([[0.25, 1.0]]))
    assert compare_values((1, e), (1, e)) is None and "value 0" in compare_values((1, e), (2, e))
    assert compare_values(3.0, torch.tensor(3.0)) is None


def test_wire_round_trip_and_untrusted_values():
    value = (
        torch.tensor([[1.0, float("nan")], [float("inf"), 2.0]]),
        3,
        "s",
        None,
        [1.5],
        {"k": torch.zeros(0, 4)},
    )
    back = decode(encode(value))
    assert compare_values(value[0], back[0]) is None and back[1:4] == (3, "s", None)
    assert back[5]["k"].shape == (0, 4)
    assert isinstance(decode(encode(object())), Opaque)
    assert decode(encode(object())) != decode(encode(object()))


def test_the_reference_itself_earns_nothing():
    import torchvision

    import vizlib.boxes

    assert run_check("iou", torchvision.ops.box_iou).score == 0
    assert run_check("box_area", vizlib.boxes.box_area).score == 0
