"""Exercises: every check (public and hidden cases) fails on the student stub and passes
on the master's solution, the committed student versions are exactly what the masters
give, the check cell reports instead of raising, and weights keep answers of all zeros
from earning much."""

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
from vizlib.exercises.spec import (
    EDGE_WEIGHT,
    Case,
    compare_values,
    hidden_cases,
    load_hidden_folder,
)
from vizlib.exercises.student import master_paths, render_student, stale_students
from vizlib.exercises.wire import Opaque, decode, encode

REPO = Path(__file__).resolve().parents[1]
MASTERS = REPO / "masters"
SECRET = "a secret for the exercise tests"


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
    solved = run_check(ex_id, submission.define(master_src, ex.function), secret=SECRET)
    assert solved.problem is None
    failed = [f"{r.case.name}: {r.message}" for r in solved.results if not r.passed]
    assert not failed, f"{path.name}: the solution of {ex_id} fails {failed}"
    assert solved.score == ex.points

    stub = run_check(ex_id, submission.define(student_src, ex.function), secret=SECRET)
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
    # a weight-0.25 edge case of 9 public cases (5 weighing 1, 4 weighing 0.25): 0.125 of 3
    assert "✗ a zero-area box gives 0, not NaN (0.12 pt): got NaN at [0, 0]" in text
    assert "hint: 0 / 0 is NaN" in text and "8 of 9 cases passed: 2.88 of 3 points." in text
    assert "hidden" not in text  # the check cell runs the public cases only

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


def _zeros_like(value):
    """The answer of a function that returns zeros of the right shape (or nothing)."""
    if isinstance(value, torch.Tensor):
        return torch.zeros_like(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_zeros_like(v) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return type(value)(0)
    return None


def test_answers_of_all_zeros_earn_little():
    """Issue 15: every case weighing the same, zeros of the right shape earned 4.6 of 48
    points (44% of the IoU exercise). Edge cases that zeros pass weigh EDGE_WEIGHT, and
    hidden cases carry half of an exercise's points where there are some."""
    from vizlib.exercises.checking import CheckResult, Outcome, judge

    earned, total = {}, 0.0
    for ex_id, ex in all_exercises().items():
        cases = ex.cases() + hidden_cases(ex, SECRET)
        results = [
            judge(c, Outcome(value=_zeros_like(c.expected), args_after=tuple(c.args)))
            for c in cases
        ]
        earned[ex_id] = CheckResult(ex, results).score / ex.points
        total += ex.points
    book = sum(earned[i] * all_exercises()[i].points for i in earned) / total
    assert book <= 0.05, f"answers of all zeros earn {book:.1%} of the book's points"
    worst = max(earned, key=earned.get)
    assert earned[worst] <= 0.125, f"answers of all zeros earn {earned[worst]:.0%} of {worst}"
    assert earned["iou"] <= 0.1 and earned["box_area"] <= 0.1


def test_weights_and_the_hidden_share_make_the_score():
    ex = all_exercises()["iou"]

    def key(a, b):
        return str(a.tolist()), str(b.tolist())

    table = {key(*c.args): c.expected for c in ex.cases()}

    def pasted(a, b):  # the public answers as a table, zeros elsewhere
        answer = table.get(key(a, b))
        return answer.clone() if answer is not None else torch.zeros(len(a), len(b))

    public_only = run_check("iou", pasted)
    assert public_only.score == ex.points and public_only.hidden_share == 0
    graded = run_check("iou", pasted, secret=SECRET)
    assert graded.score == ex.points * (1 - ex.hidden_share) == 1.5
    assert [r.passed for r in graded.results] == [not r.case.hidden for r in graded.results]
    points = [graded.case_points(r.case) for r in graded.results]
    assert abs(sum(points) - ex.points) < 1e-9
    edge = [r.case for r in graded.results if r.case.weight == EDGE_WEIGHT]
    assert edge and graded.case_points(edge[0]) == 1.5 * EDGE_WEIGHT / 6  # 5 x 1 + 4 x 0.25
    assert "wrong result" in graded.report() and "hint" not in graded.report().split("hidden")[1]


def test_hidden_cases_come_from_the_secret_and_tell_nothing():
    ex = all_exercises()["iou"]
    first, again, other = (hidden_cases(ex, s) for s in (SECRET, SECRET, SECRET + "!"))
    assert first and all(c.hidden for c in first)
    assert all(torch.equal(a.args[0], b.args[0]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0].args[0], other[0].args[0])
    public = [c.args for c in ex.cases()]
    assert not any(
        a[0].shape == c.args[0].shape and torch.equal(a[0], c.args[0])
        for a in public
        for c in first
    )
    from vizlib.exercises.checking import hidden_reason

    assert hidden_reason("wrong values: largest error at [2, 1]: expected 0.25, got 0") == (
        "wrong result"
    )
    assert hidden_reason("raised ValueError: tensor([[1., 2.]]) (line 3 of your cell)") == (
        "raised ValueError"
    )
    assert hidden_reason("raised Leak_1_2_3: x") == "raised an exception"
    with pytest.raises(ValueError, match="weight"):
        Case("weightless", (), expected=0, weight=0)


def test_an_instructor_folder_of_hidden_cases(tmp_path, monkeypatch):
    from vizlib.exercises import spec

    all_exercises()  # the bank's generators first; what this test adds goes with it
    monkeypatch.setattr(spec, "_HIDDEN", {k: list(v) for k, v in spec._HIDDEN.items()})
    with pytest.raises(ValueError, match="no folder"):
        load_hidden_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no \\*.py file"):
        load_hidden_folder(tmp_path)
    (tmp_path / "broken.py").write_text("raise RuntimeError('typo')\n")
    with pytest.raises(ValueError, match="broken.py: RuntimeError: typo"):
        load_hidden_folder(tmp_path)
    (tmp_path / "broken.py").write_text(
        "from vizlib.exercises.spec import Case, hidden\n"
        "@hidden('no_such_exercise')\ndef _cases(g):\n    yield Case('x', (), expected=0)\n"
    )
    with pytest.raises(ValueError, match="unknown exercises: no_such_exercise"):
        load_hidden_folder(tmp_path)
    (tmp_path / "broken.py").unlink()
    (tmp_path / "area.py").write_text(
        "import torch\nfrom vizlib.exercises.spec import Case, hidden\n"
        "@hidden('box_area')\ndef _cases(g):\n"
        "    yield Case('mine', (torch.ones(1, 4),), expected=torch.zeros(1), weight=2)\n"
    )
    assert load_hidden_folder(tmp_path) == ["box_area"]
    assert load_hidden_folder(tmp_path) == ["box_area"]  # loaded again: not added twice
    cases = hidden_cases(all_exercises()["box_area"], SECRET)
    assert [c.name for c in cases if c.weight == 2] == ["mine"] and cases[-1].hidden
    (tmp_path / "area.py").write_text(
        "from vizlib.exercises.spec import hidden\n"
        "@hidden('box_area')\ndef _cases(g):\n    yield 1 / 0\n"
    )
    load_hidden_folder(tmp_path)
    with pytest.raises(
        ValueError, match=r"hidden cases of box_area \(vizlib_hidden_.*ZeroDivision"
    ):
        hidden_cases(all_exercises()["box_area"], SECRET)
