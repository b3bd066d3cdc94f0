"""The class grader on a folder of submissions with every kind of broken notebook.

Each submission is built here from the master (or the student version); the expected
scores are those of the instructor's tests on what the submission's functions really
compute, whatever the notebook prints, deletes or monkeypatches.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch

from vizlib.exercises import run_check
from vizlib.exercises.grade import Limits, grade, write_results
from vizlib.exercises.notebooks import find_exercise_cells, student_version
from vizlib.exercises.sandbox import landlock_abi

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
MASTER = nbformat.read(str(REPO / "masters" / "book" / "exercises.ipynb"), as_version=4)
AREA_CELL, IOU_CELL = (find_exercise_cells(MASTER)[k] for k in ("box_area", "iou"))
# Generous enough for a cold torch import on a loaded 2-core CI machine (15 s was tight
# there; 30 s passed the fresh-clone CI run with both cores busy); the infinite loop pays
# the full notebook limit, so every second here is a second of the suite.
LIMITS = Limits(timeout=30, check_timeout=15, memory_mb=512, max_output_kb=64)


def _escape_cell(submission, subs: Path, out: Path) -> str:
    """A box_area cell that is right, but first tries everything a submission must not do."""
    attacks = textwrap.dedent(f"""\
        import ctypes, os, signal
        def attempt(name, action):
            try:
                action()
                print("ATTACK", name, "SUCCEEDED")
            except Exception as exc:
                print("ATTACK", name, "blocked:", type(exc).__name__)
        attempt("write ../escape.txt", lambda: open("../escape.txt", "w").write("x"))
        attempt("overwrite the results", lambda: open({str(out / "grades.csv")!r}, "w").write("HACKED"))
        attempt("overwrite another submission", lambda: open({str(subs / "good.ipynb")!r}, "w").write("{{}}"))
        attempt("read another submission", lambda: open({str(subs / "good.ipynb")!r}).read(10))
        attempt("list the other runs", lambda: os.listdir(os.path.dirname(os.path.dirname(os.getcwd()))))
        def libc_write():
            if ctypes.CDLL(None).open(b"../escape2.txt", os.O_WRONLY | os.O_CREAT, 0o644) < 0:
                raise PermissionError("libc open failed")
        attempt("write through libc", libc_write)
        import subprocess
        subprocess.Popen(["sleep", "4242"], start_new_session=True)  # a process left behind
        """)
    if landlock_abi() >= 6:  # signals are scoped: the grader cannot be killed
        attacks += 'attempt("kill the grader", lambda: os.kill(os.getppid(), signal.SIGKILL))\n'
    return submission.area(
        "return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])\n"
    ).replace("import torch\n", "import torch\n" + attacks, 1)


def _notebook(
    area: str | None = None,
    iou: str | None = None,
    base=MASTER,
    extra: tuple[str, ...] = (),
    drop=(),
):
    nb = copy.deepcopy(base)
    if area is not None:
        nb.cells[AREA_CELL].source = area
    if iou is not None:
        nb.cells[IOU_CELL].source = iou
    nb.cells += [nbformat.v4.new_code_cell(src) for src in extra]
    nb.cells = [c for c in nb.cells if not any(d(c) for d in drop)]
    return nbformat.writes(nb)


def _is_check(cell) -> bool:
    return cell.cell_type == "code" and 'check("' in cell.source


def _is_area(cell) -> bool:
    return cell.cell_type == "code" and "box_area" in cell.source


def _score(exercise_id: str, function) -> float:
    return run_check(exercise_id, function).score


def _submissions(submission, subs: Path, out: Path) -> dict[str, tuple]:
    """Write the submissions; returns {student: (box_area score, iou score, notebook, issues)}."""
    nan_iou_cell = submission.IOU_NAN_AT_ZERO_AREA
    n_check = len(MASTER.cells) + 1  # an extra cell appended at the end
    nan_iou = _score("iou", submission.define(nan_iou_cell, "iou"))
    wrong_area = _score("box_area", lambda b: b.sum(1))
    zero_iou = _score("iou", lambda a, b: torch.zeros(len(a), len(b)))
    cases = {
        "good": (_notebook(), (2, 3, "runs", [])),
        "stub": (nbformat.writes(student_version(MASTER)), (0, 0, "runs", [])),
        "partial": (_notebook(iou=nan_iou_cell), (2, nan_iou, "runs", [])),
        "syntax_error": (
            _notebook(area="# EXERCISE box_area\ndef box_area(boxes)\n    return boxes\n"),
            (0, 3, f"error in cell {AREA_CELL + 1}: SyntaxError", ["SyntaxError"]),
        ),
        "exception": (
            _notebook(
                area=submission.area("return boxes[:, 7]\n"), extra=("raise RuntimeError('boom')",)
            ),
            (0, 3, f"error in cell {n_check}: RuntimeError: boom", []),
        ),
        "infinite_loop": (
            _notebook(iou=submission.iou("while True:\n    pass\n")),
            (2, 0, "timed out in cell", [f"iou: timed out after {LIMITS.check_timeout} s"]),
        ),
        "os_exit": (
            _notebook(area="# EXERCISE box_area\nimport os\nos._exit(3)\n"),
            (0, 3, f"kernel died in cell {AREA_CELL + 1}", ["exited with code 3"]),
        ),
        "segfault": (
            _notebook(iou=submission.iou("import ctypes\nreturn ctypes.string_at(0)\n")),
            (2, 0, "kernel died in cell", ["SIGSEGV"]),
        ),
        "memory_bomb": (
            _notebook(
                area=submission.area(
                    "hog = []\nwhile True:\n    hog.append(torch.empty(1 << 26, dtype=torch.uint8))\n"
                ),
                extra=("hog = [bytearray(1 << 26) for _ in range(10**6)]",),
            ),
            (0, 3, f"out of memory in cell {n_check}", ["box_area: ran out of memory"]),
        ),
        "flood": (
            _notebook(area=submission.area("while True:\n    print('spam ' * 200)\n")),
            (0, 3, "output flood in cell", ["box_area: output flood"]),
        ),
        "corrupt": (_notebook()[:700], (0, 0, "not run: unreadable", ["not a readable notebook"])),
        "empty": ("", (0, 0, "not run: unreadable", ["the file is empty"])),
        "malformed": (
            '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", '
            '"source": {"a": 1}, "metadata": {}, "outputs": [], "execution_count": null}]}',
            (0, 0, "runs", ["box_area: no exercise cell found"]),
        ),
        "escape": (
            _notebook(area=_escape_cell(submission, subs, out)),
            (2, 3, "runs", ["tried to write outside its folder (blocked)", "escape.txt"]),
        ),
        "tamper": (
            _notebook(
                # imports spelled so that the static check does not see them: the sandbox must hold alone
                area=(
                    "# EXERCISE box_area\nimport torch, torchvision\n"
                    "c = __import__('vizlib.exercises.check' + 'ing', fromlist=['x'])\n"
                    "s = __import__('vizlib.exercises.sp' + 'ec', fromlist=['x'])\n"
                    "c.judge = lambda case, outcome: c.CaseResult(case, True)\n"
                    "s.compare_values = lambda *a, **k: None\n"
                    "setattr(torchvision.ops, 'box_' + 'area', lambda b: b.sum(1))\n"
                    "def check(*args, **kwargs):\n    print('5 of 5 cases passed: all points')\n\n"
                    "def box_area(boxes):\n    return boxes.sum(1)\n"
                ),
                iou=submission.iou("return torch.zeros(len(boxes1), len(boxes2))\n"),
                drop=(_is_check,),
            ),
            (wrong_area, zero_iou, "runs", []),
        ),
        "reference": (
            _notebook(
                iou=submission.iou(
                    "from torchvision.ops import box_iou\nreturn box_iou(boxes1, boxes2)\n"
                ),
                drop=(_is_area, _is_check),
            ),
            (0, 0, "runs", ["box_area: no exercise cell found", "iou: uses box_iou"]),
        ),
    }
    subs.mkdir()
    for name, (text, _) in cases.items():
        (subs / f"{name}.ipynb").write_text(text, encoding="utf-8")
    return {name: expected for name, (_, expected) in cases.items()}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


@pytest.fixture(scope="module")
def graded(tmp_path_factory, submission):
    root = tmp_path_factory.mktemp("grading")
    subs, out = root / "submissions", root / "grades"
    expected = _submissions(submission, subs, out)
    out.mkdir()
    (out / "grades.csv").write_text("instructor's previous file\n")
    before = _digest(subs)
    grades = grade(subs, ["box_area", "iou"], limits=LIMITS, jobs=2)
    after = _digest(subs)
    left_behind = [p for p in Path("/proc").glob("[0-9]*") if _cmdline(p) == "sleep 4242"]
    sentinel = (out / "grades.csv").read_text()
    write_results(grades, ["box_area", "iou"], out)
    return {
        "grades": {g.student: g for g in grades},
        "expected": expected,
        "root": root,
        "out": out,
        "before": before,
        "after": after,
        "sentinel": sentinel,
        "left_behind": left_behind,
    }


def test_every_submission_gets_its_expected_score(graded):
    got = {
        name: (g.checks["box_area"].score, g.checks["iou"].score)
        for name, g in graded["grades"].items()
    }
    want = {name: (float(e[0]), float(e[1])) for name, e in graded["expected"].items()}
    assert got == want


def test_every_failure_is_reported(graded):
    for name, (_, _, notebook, issues) in graded["expected"].items():
        g = graded["grades"][name]
        assert notebook in g.notebook, f"{name}: {g.notebook!r}"
        text = "; ".join(g.issues)
        for issue in issues:
            assert issue in text, f"{name}: {issue!r} not in {text!r}"
        if not issues and name not in ("exception",):
            assert not [i for i in g.issues if not i.startswith("notebook")], f"{name}: {g.issues}"


def test_no_submission_reaches_outside_its_folder(graded):
    assert graded["before"] == graded["after"], "a submission changed the submissions folder"
    assert graded["sentinel"] == "instructor's previous file\n", (
        "a submission wrote into the results"
    )
    assert not list(graded["root"].rglob("escape*.txt"))
    assert not graded["left_behind"], "a process a submission started outlived the grading"
    printed = graded["grades"]["escape"].output["box_area"]
    assert printed.count("ATTACK") >= 6 and "SUCCEEDED" not in printed, printed


def test_results_are_written_by_the_grader(graded):
    out = graded["out"]
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(graded["expected"])
    for name, g in graded["grades"].items():
        assert float(rows[name]["total"]) == g.total and float(rows[name]["max"]) == 5
        assert (out / "feedback" / f"{name}.md").is_file()
    assert rows["good"]["total"] == "5" and rows["tamper"]["total"] != "5"
    table = (out / "grades.md").read_text()
    assert "| good | 2 | 3 | 5 | runs" in table and "HACKED" not in table
    feedback = (out / "feedback" / "partial.md").read_text()
    assert "a zero-area box gives 0, not NaN: got NaN" in feedback and "hint:" in feedback
