"""The class grader on a folder of submissions with every kind of broken notebook.

Each submission is built here from the master (or the student version); the expected
scores are those of the instructor's tests (public and hidden cases, drawn from
``SECRET``) on what the submission's functions really compute, whatever the notebook
prints, deletes, monkeypatches or writes to the grader's report channel.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import socket
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch

from vizlib.exercises import get, run_check
from vizlib.exercises.grade import Limits, grade, main, write_results
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
SECRET = "the instructor's secret for these tests"


# A service on this machine that no submission may reach, a token in the grader's
# environment that no submission may read, and a file a submission leaves in /dev/shm.
_LISTENER = socket.socket()
_LISTENER.bind(("127.0.0.1", 0))
_LISTENER.listen(64)
SHM_ESCAPE = Path("/dev/shm") / f"vizlib-escape-{os.getpid()}"


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
        import socket
        attempt("connect to a local service", lambda: socket.create_connection(("127.0.0.1", {_LISTENER.getsockname()[1]}), timeout=2))
        def read_token():
            if "INSTRUCTOR_TOKEN" in os.environ:
                return
            raise PermissionError("not in this environment")
        attempt("read the grader's environment variables", read_token)
        attempt("read the worker's environment", lambda: open(f"/proc/{{os.getppid()}}/environ", "rb").read())
        try:  # allowed: its /dev/shm is its own, and vanishes with it
            open({str(SHM_ESCAPE)!r}, "w").write("x")
        except OSError:
            pass
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
    """What the grader must give ``function``: its score on the public and hidden cases."""
    return run_check(exercise_id, function, secret=SECRET).score


# A cell that writes what the old report protocol (and a guess of the new one) would take
# as full marks to every descriptor it may hold, then leaves its function unwritten.
FORGED_AREA = textwrap.dedent("""\
    # EXERCISE box_area
    import json, os
    spec = __import__("vizlib.exercises.sp" + "ec", fromlist=["x"])
    wire = __import__("vizlib.exercises.wi" + "re", fromlist=["x"])
    lines = [{"loaded": True}]
    for i, case in enumerate(spec.get("box_area").cases()):
        for nonce in (None, "0" * 32):
            lines.append({"case": i, "nonce": nonce, "value": wire.encode(case.expected),
                          "error": None, "types": [], "line": None,
                          "args_after": wire.encode(tuple(case.args))})
    lines.append({"done": True})
    data = "".join(json.dumps(line) + "\\n" for line in lines).encode()
    for fd in range(3, 64) if type(get_ipython()).__name__ == "_NoIPython" else ():
        try:  # (only where the grader runs the cell alone: a kernel's own sockets would break)
            os.write(fd, data)
        except OSError:
            pass


    def box_area(boxes):
        raise NotImplementedError("exercise box_area: replace this line with your code")
    """)


# Looks, from the submission's own process, for any case input or answer left in memory
# that the garbage collector or a frame can reach: encoded tensors, a job's list of cases.
PEEK = textwrap.dedent("""\
    import gc as _gc


    def _peek():
        return [
            sorted(o)[:3]
            for o in _gc.get_objects()
            if isinstance(o, dict) and ("__tensor__" in o or isinstance(o.get("cases"), list))
        ][:3]
    """)


def _pasted_iou_cell() -> str:
    """An iou cell holding the public cases' answers as a table (no import of the bank):
    it answers what it recognises, zeros otherwise, and prints on every call."""
    rows = [
        (c.args[0].tolist(), c.args[1].tolist(), c.expected.tolist()) for c in get("iou").cases()
    ]
    return textwrap.dedent(f"""\
        # EXERCISE iou
        import torch
        TABLE = {rows!r}


        def iou(boxes1, boxes2):
            print("CALL")
            for a, b, answer in TABLE:
                if boxes1.tolist() == a and boxes2.tolist() == b:
                    return torch.tensor(answer).reshape(len(a), len(b))
            return torch.zeros(len(boxes1), len(boxes2))
        """)


def _submissions(submission, subs: Path, out: Path) -> dict[str, tuple]:
    """Write the submissions; returns {student: (box_area score, iou score, notebook, issues)}."""
    nan_iou_cell = submission.IOU_NAN_AT_ZERO_AREA
    n_check = len(MASTER.cells) + 1  # an extra cell appended at the end
    nan_iou = _score("iou", submission.define(nan_iou_cell, "iou"))
    pasted_iou = _score("iou", submission.define(_pasted_iou_cell(), "iou"))
    in_place_cell = submission.area(
        "boxes[:, 2:] -= boxes[:, :2]\nreturn boxes[:, 2] * boxes[:, 3]\n"
    )
    in_place_area = _score("box_area", submission.define(in_place_cell, "box_area"))
    assert 0 < in_place_area < 0.5  # only the case without boxes is left unchanged
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
        "forged": (
            _notebook(area=FORGED_AREA, iou=student_version(MASTER).cells[IOU_CELL].source),
            (0, 0, "runs", ["box_area: wrote", "report channel", "(ignored)"]),
        ),
        "pasted": (_notebook(iou=_pasted_iou_cell()), (2, pasted_iou, "runs", [])),
        "peek": (
            _notebook(
                area=MASTER.cells[AREA_CELL].source + "\n" + PEEK + "print('PEEK', _peek())\n",
                iou=MASTER.cells[IOU_CELL].source + "\n" + PEEK + "print('PEEK', _peek())\n",
                extra=(PEEK + "raise RuntimeError(f'PEEK {_peek()}')",),
            ),
            (2, 3, f"error in cell {n_check}: RuntimeError: PEEK []", []),
        ),
        "in_place": (_notebook(area=in_place_cell), (in_place_area, 3, "runs", [])),
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
    os.environ["INSTRUCTOR_TOKEN"] = "hunter2"
    try:
        grades = grade(subs, ["box_area", "iou"], limits=LIMITS, jobs=2, secret=SECRET)
    finally:
        del os.environ["INSTRUCTOR_TOKEN"]
    after = _digest(subs)
    shm_left = SHM_ESCAPE.exists()
    SHM_ESCAPE.unlink(missing_ok=True)
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
        "shm_left": shm_left,
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
    assert printed.count("ATTACK") >= 9 and "SUCCEEDED" not in printed, printed
    assert not graded["shm_left"], "a file a submission wrote in /dev/shm outlived it"


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
    assert "✗ a zero-area box gives 0, not NaN (0.062 pt): got NaN" in feedback
    assert "hint:" in feedback


def test_forged_reports_and_pasted_answers_earn_only_what_they_answer(graded):
    grades = graded["grades"]
    iou = get("iou")
    public_share = iou.points * (1 - iou.hidden_share)
    assert grades["good"].total == 5 and grades["stub"].total == 0
    # every line the forger wrote to the report pipe was ignored, and said so
    assert grades["forged"].total == 0
    assert grades["forged"].checks["box_area"].not_attempted
    # a table of the public answers passes every public case and no hidden one
    pasted = grades["pasted"].checks["iou"]
    assert pasted.score == public_share == 1.5
    assert all(r.passed != r.case.hidden for r in pasted.results)


def test_hidden_cases_say_only_passed_or_failed(graded):
    out = graded["out"]
    feedback = (out / "feedback" / "pasted.md").read_text().split("## iou:")[1]
    hidden = [line for line in feedback.splitlines() if "hidden case:" in line]
    assert len(hidden) == 4 and all(line.endswith(": wrong result") for line in hidden)
    # what the function printed while answering hidden cases never reaches the feedback
    n_public = len(get("iou").cases())
    assert 1 <= graded["grades"]["pasted"].output["iou"].count("CALL") <= n_public
    table = (out / "grades.md").read_text()
    assert "## How the points are shared" in table
    assert "- iou (3 points): 9 public cases, 1.5 points (weights 1, 0.25, 0.25" in table
    assert "; 4 hidden cases, 1.5 points" in table


def test_the_command_draws_hidden_cases_from_the_secret_and_an_instructor_folder(
    tmp_path, monkeypatch
):
    from vizlib.exercises import all_exercises, spec

    all_exercises()  # the bank's generators first; the folder's go with this test
    monkeypatch.setattr(spec, "_HIDDEN", {k: list(v) for k, v in spec._HIDDEN.items()})
    subs, out, extra = tmp_path / "subs", tmp_path / "grades", tmp_path / "hidden"
    subs.mkdir()
    extra.mkdir()
    (subs / "good.ipynb").write_text(_notebook(), encoding="utf-8")
    (extra / "more_area.py").write_text(
        textwrap.dedent("""\
            import torch
            from vizlib.exercises.spec import Case, hidden


            @hidden("box_area")
            def _instructors_own(g):
                boxes = torch.tensor([[0.0, 0.0, 7.0, 3.0]])
                yield Case("the instructor's box", (boxes,), expected=torch.tensor([21.0]),
                           weight=3)
            """),
        encoding="utf-8",
    )
    argv = [str(subs), "--exercises", "box_area", "--out", str(out), "--no-run", "--jobs", "1"]
    assert main([*argv, "--hidden", str(extra), "--check-timeout", "15"]) == 0
    secret = (out / "secret.txt").read_text().strip()
    assert len(secret) >= 32 and (out / "secret.txt").stat().st_mode & 0o077 == 0
    feedback = (out / "feedback" / "good.md").read_text()
    assert "hidden case: the instructor's box (0.43 pt)" in feedback
    assert "hidden case: random boxes (4)" in feedback and "2 of 2 points" in feedback
    md = (out / "grades.md").read_text()
    assert "box\\_area (2 points): 5 public cases, 1 points (weights 1, 1, 0.25, 0.25, 1)" in md
    assert "5 hidden cases, 1 points (weights 1, 1, 1, 1, 3)" in md
    assert "a new random secret, saved in " in md and "secret.txt (fingerprint " in md
    # what the sandbox enforced here, and what it could not, is in the results
    assert "## What the sandbox enforced on this machine" in md
    assert "| network | enforced: an empty network namespace" in md or "not enforced" in md
    assert "| process cap |" in md and "| environment | enforced" in md
    assert secret not in md
    # the same secret again: the same hidden cases, named as coming from that file
    (tmp_path / "secret").write_text(secret + "\n")
    assert main([*argv, "--secret-file", str(tmp_path / "secret")]) == 0
    again = (out / "grades.md").read_text()
    fingerprint = md.split("fingerprint ")[1][:12]
    assert f"fingerprint {fingerprint}" in again and "secret in" in again


def test_make_grade_passes_the_secret_the_hidden_folder_and_the_regraded_names():
    import shutil
    import subprocess

    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    args = ["SUBMISSIONS=subs", "ASSIGNMENT=a.ipynb", "SECRET=s.txt", "HIDDEN=mine", "ONLY=bob"]
    run = subprocess.run(
        [make, "-n", "-s", "-C", str(REPO), "-o", ".venv/.installed", "grade", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "--secret-file s.txt --hidden mine --only bob" in run.stdout


def test_no_case_input_or_answer_is_left_where_a_submission_can_reach_it(graded):
    """A check child finds neither the job's cases (hidden inputs included) nor the answers
    of the exercises checked before it; the notebook's kernel finds neither."""
    peek = graded["grades"]["peek"]
    assert peek.output["box_area"].strip().endswith("PEEK []"), peek.output
    assert peek.output["iou"].strip().endswith("PEEK []"), peek.output
    in_place = (graded["out"] / "feedback" / "in_place.md").read_text()
    assert "changed its argument 1 in place" in in_place


def test_the_paths_a_submission_tried_to_write_stay_with_the_instructor(graded):
    """Paths are chosen by the submission's code, which may hold a hidden case's inputs."""
    out = graded["out"]
    problems = (out / "feedback" / "escape.md").read_text().split("Problems found:")[1]
    problems = problems.split("\n## ")[0]
    assert "tried to write outside its folder (blocked)" in problems
    assert "escape" not in problems, problems
    assert "escape.txt" in (out / "grades.csv").read_text()


def test_the_worker_takes_only_the_answer_to_the_case_it_asked():
    """The report channel at the level of the pipes: a child that floods it with junk and
    forged answers (guessed nonces, cases not asked) gets only its real answers taken."""
    import json
    import os
    import time

    from vizlib.exercises import _worker
    from vizlib.exercises.wire import encode

    cases = [encode((torch.ones(3),)), encode((2,)), encode((torch.zeros(2),))]
    forged = {"case": 1, "nonce": "0" * 32, "value": 99, "error": None, "types": []}
    res_r, res_w = os.pipe()
    cmd_r, cmd_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a hostile child: junk, forged answers, then honest ones
        try:
            for fd in (res_r, cmd_w, out_r):
                os.close(fd)
            junk = b"\n" * 50_000 + b"{not json\n" + (json.dumps(forged) + "\n").encode()
            os.write(res_w, junk + b'{"loaded": true}\n' + (json.dumps(forged) + "\n").encode())
            buffer = bytearray()
            while (request := _worker._read_request(cmd_r, buffer)) is not None:
                after = request["args"]
                if request["case"] == 0:  # changes its input in place
                    after = encode((torch.full((3,), 7.0),))
                answer = {"case": request["case"], "nonce": request["nonce"], "value": 1}
                answer.update(error=None, types=[], line=None, args_after=after)
                os.write(res_w, (json.dumps(forged) + "\n" + json.dumps(answer) + "\n").encode())
        finally:
            os._exit(0)
    for fd in (res_w, cmd_r, out_w):
        os.close(fd)
    fds = {"results": res_r, "requests": cmd_w, "output": out_r}
    start = time.monotonic()
    got = _worker._serve_cases(pid, fds, cases, 2, start + 10, 1 << 20)
    assert time.monotonic() - start < 5
    answers = [line for line in got["lines"] if "case" in line]
    assert [(a["case"], a["value"], a["changed"]) for a in answers] == [
        (0, 1, 0),
        (1, 1, None),
        (2, 1, None),
    ]
    assert got["lines"][0] == {"loaded": True} and got["lines"][-1] == {"done": True}
    assert got["ignored"] == 50_000 + 2 + 1 + 3  # blank lines, junk, forged before and after


def test_regrading_one_student_replaces_their_row_and_feedback_only(tmp_path, capsys):
    subs, out = tmp_path / "subs", tmp_path / "grades"
    subs.mkdir()
    (subs / "good.ipynb").write_text(_notebook(), encoding="utf-8")
    (subs / "late").mkdir()
    (subs / "late" / "bob.ipynb").write_text(
        nbformat.writes(student_version(MASTER)), encoding="utf-8"
    )
    argv = [str(subs), "--exercises", "box_area", "--out", str(out), "--no-run", "--jobs", "1"]
    assert main(argv) == 0
    csv_before = (out / "grades.csv").read_text().splitlines()
    good_feedback = (out / "feedback" / "good.md").read_text()
    assert csv_before[2].startswith("late/bob,") and ",0,0,2," in csv_before[2]

    # bob hands in a corrected notebook: only he is graded again, with the class's secret
    (subs / "late" / "bob.ipynb").write_text(_notebook(), encoding="utf-8")
    assert main([*argv, "--only", "late/bob"]) == 0
    csv_after = (out / "grades.csv").read_text().splitlines()
    assert csv_after[:2] == csv_before[:2], "the header and the other students' rows stay"
    assert csv_after[2].startswith("late/bob,") and ",2,2,2," in csv_after[2]
    assert (out / "feedback" / "good.md").read_text() == good_feedback
    assert "2 of 2 points" in (out / "feedback" / "late__bob.md").read_text()
    md = (out / "grades.md").read_text()
    assert "| late/bob | 2 | 2 |" in md and "Regraded on " in md and "late/bob." in md

    # mistakes get one line, not a traceback, and leave the results alone
    capsys.readouterr()
    assert main([*argv, "--only", "nobody"]) == 2
    assert "no submission named nobody" in capsys.readouterr().err
    (out / "secret.txt").unlink()
    assert main([*argv, "--only", "late/bob"]) == 2
    assert "needs the secret of the class's run" in capsys.readouterr().err
    assert (out / "grades.csv").read_text().splitlines() == csv_after


def test_gradescope_autograder_grades_one_submission_into_results_json(tmp_path):
    """The zip's run_autograder, run as Gradescope would (its folders under a temporary
    root), grades the student's one notebook into results.json: one test per exercise."""
    import json
    import os
    import subprocess
    import zipfile

    from vizlib.exercises import gradescope

    assignment = tmp_path / "exercises.ipynb"
    assignment.write_text(nbformat.writes(MASTER), encoding="utf-8")
    argv = ["--assignment", str(assignment), "--out", str(tmp_path / "autograder.zip")]
    assert gradescope.main([*argv, "--no-run"]) == 0  # the command on the instructors' page
    names = zipfile.ZipFile(tmp_path / "autograder.zip").namelist()
    assert {"setup.sh", "run_autograder", "exercises.ipynb", "secret.txt"} <= set(names)
    assert gradescope.main(["--assignment", str(tmp_path / "none.ipynb")]) == 2
    root = tmp_path / "autograder"
    with zipfile.ZipFile(tmp_path / "autograder.zip") as zf:
        zf.extractall(root / "source")
        assert "vizlib[grade]==" in zf.read("setup.sh").decode()
    (root / "submission").mkdir()
    (root / "submission" / "my homework.ipynb").write_text(
        _notebook(iou=student_version(MASTER).cells[IOU_CELL].source), encoding="utf-8"
    )
    env = {
        **os.environ,
        "AUTOGRADER_ROOT": str(root),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }

    def run():
        return subprocess.run(
            ["bash", str(root / "source" / "run_autograder")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = run()
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    tests = {t["name"]: t for t in results["tests"]}
    assert set(tests) == {"box_area", "iou"}
    assert tests["box_area"]["score"] == tests["box_area"]["max_score"] == 2
    assert tests["iou"]["score"] == 0 and tests["iou"]["max_score"] == 3
    assert results["score"] == 2 and "NotImplementedError" in tests["iou"]["output"]
    # two notebooks: a clear message in results.json, not a crash
    (root / "submission" / "another.ipynb").write_text(_notebook(), encoding="utf-8")
    assert run().returncode != 0
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0 and "submit one notebook" in results["output"]


def test_weights_stated_in_the_assignment_override_the_banks(tmp_path, capsys):
    from vizlib.exercises.notebooks import stated_weights

    assert stated_weights({"cell_type": "code", "source": "# EXERCISE iou\n"}) == {}
    cell = {"cell_type": "code", "source": "# EXERCISE iou (points 4, hidden share 0.75)\n"}
    assert stated_weights(cell) == {"points": 4.0, "hidden_share": 0.75}
    with pytest.raises(ValueError, match="expected 'points <number>'"):
        stated_weights({"cell_type": "code", "source": "# EXERCISE iou (weight 4)\n"})

    master = copy.deepcopy(MASTER)
    master.cells[AREA_CELL].source = master.cells[AREA_CELL].source.replace(
        "# EXERCISE box_area", "# EXERCISE box_area (points 4, hidden share 0.75)", 1
    )
    assignment = tmp_path / "assignment.ipynb"
    nbformat.write(master, str(assignment))
    student = student_version(master)
    assert "# EXERCISE box_area (points 4" in student.cells[AREA_CELL].source
    subs, out = tmp_path / "subs", tmp_path / "grades"
    subs.mkdir()
    (subs / "good.ipynb").write_text(_notebook(), encoding="utf-8")
    argv = [str(subs), "--assignment", str(assignment), "--out", str(out), "--no-run"]
    assert main([*argv, "--jobs", "1"]) == 0
    md = (out / "grades.md").read_text()
    assert "| student | box_area (4) | iou (3) | total (7) |" in md
    assert "| good | 4 | 3 | 7 |" in md
    assert "box\\_area (4 points):" in md and "hidden cases, 3 points" in md

    master.cells[AREA_CELL].source = master.cells[AREA_CELL].source.replace(
        "(points 4, hidden share 0.75)", "(points 4, hidden share 1.5)", 1
    )
    nbformat.write(master, str(assignment))
    capsys.readouterr()
    assert main([*argv, "--jobs", "1"]) == 2
    assert "hidden share must be in [0, 1)" in capsys.readouterr().err
