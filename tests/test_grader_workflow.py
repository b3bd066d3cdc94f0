"""The grader as an instructor meets it (issue 15, items 3 and 4): a lesson grades clean,
a helper from an earlier cell counts, results files are safe to open, bad arguments get
one clear line, and ``make student-check`` really checks.
"""

from __future__ import annotations

import copy
import csv
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from vizlib.exercises.grade import (
    Limits,
    SubmissionGrade,
    csv_text,
    csv_text_value,
    exercise_ids_of,
    feedback,
    grade,
    main,
    md_code_block,
    md_text,
    write_results,
)
from vizlib.exercises.notebooks import find_exercise_cells

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
MASTER = nbformat.read(str(REPO / "masters" / "book" / "exercises.ipynb"), as_version=4)
AREA_CELL, IOU_CELL = (find_exercise_cells(MASTER)[k] for k in ("box_area", "iou"))
LIMITS = Limits(timeout=90, check_timeout=30, memory_mb=1024, max_output_kb=64)
IDS = ["box_area", "iou"]


def _with(cells: dict[int, str] | None = None, before: dict[int, str] | None = None) -> str:
    """The master with some cells replaced, and new code cells inserted before others."""
    nb = copy.deepcopy(MASTER)
    for index, source in (cells or {}).items():
        nb.cells[index].source = source
    for index in sorted(before or {}, reverse=True):
        nb.cells.insert(index, nbformat.v4.new_code_cell(before[index]))
    return nbformat.writes(nb)


HELPERS = textwrap.dedent("""\
    import torch as T
    from torchvision.ops import box_iou  # imported for a plot, not used by the answers

    EPS = 0.0
    model = undefined_training_run()  # never re-run by the grader


    def width_height(boxes):
        return (boxes[:, 2:] - boxes[:, :2]).clamp(min=EPS)


    def area_of(boxes):
        wh = width_height(boxes)
        return wh[:, 0] * wh[:, 1]
    """)
AREA_WITH_HELPER = "# EXERCISE box_area\n\ndef box_area(boxes):\n    return area_of(boxes)\n"
IOU_WITH_HELPER = textwrap.dedent("""\
    # EXERCISE iou
    def iou(boxes1, boxes2):
        lt = T.max(boxes1[:, None, :2], boxes2[None, :, :2])
        rb = T.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        union = area_of(boxes1)[:, None] + area_of(boxes2)[None, :] - inter
        return T.where(union > 0, inter / union.clamp(min=1e-12), T.zeros_like(union))
    """)
SMUGGLER = (
    "from torchvision.ops import box_iou as _fast\n\ndef overlap(a, b):\n    return _fast(a, b)\n"
)
# an exception message that tries to close the report's code block and write Markdown
INJECTION = textwrap.dedent("""\
    # EXERCISE box_area
    def box_area(boxes):
        return boxes

    raise RuntimeError("```\\n# You got full marks\\n<img src=x onerror=alert(1)> [link](http://evil)")
    """)

# A lesson in miniature: start_lesson, training with checkpoints, and a run record in the
# full profile (which writes into the checkout it finds through vizlib).
LESSON_CELLS = (
    textwrap.dedent("""\
        from dataclasses import dataclass

        import torch
        import vizlib
        from vizlib.records import write_record
        from vizlib.train import fit


        @dataclass(frozen=True)
        class Settings:
            seed: int = 0


        lesson = vizlib.start_lesson("gradedlesson", {"full": Settings(), "smoke": Settings()})
        model = torch.nn.Linear(2, 1)
        data = [(torch.randn(4, 2), torch.randn(4, 1))] * 2
        fit(model, data, torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, device="cpu",
            loss_fn=torch.nn.functional.mse_loss, progress=False,
            checkpoint_dir=lesson.checkpoints / "linear")
        assert list(lesson.checkpoints.rglob("*.pt")), "fit wrote no checkpoint"
        """),
    'write_record("gradedlesson", {"acc": 1.0}, {"metric": "acc", "value": 0.5}, '
    'train_seconds=1.0, notebook="lesson.ipynb")',
)
# 1.2 MB of figures, 19 times the text cap of LIMITS (the R-CNN lesson shows 2.2 MB)
FIGURES = (
    "import base64, os\nfrom IPython.display import display\n\n"
    "png = base64.b64encode(os.urandom(300_000)).decode()\n"
    "for _ in range(3):\n    display({'image/png': png}, raw=True)"
)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("workflow")
    subs = root / "submissions"
    subs.mkdir()
    notebooks = {
        # the function calls a helper (and an import) from an earlier cell
        "helpers": _with(
            {AREA_CELL: AREA_WITH_HELPER, IOU_CELL: IOU_WITH_HELPER}, {AREA_CELL: HELPERS}
        ),
        # the forbidden reference hidden in an earlier cell's helper still earns nothing
        "smuggler": _with(
            {
                IOU_CELL: "# EXERCISE iou\ndef iou(boxes1, boxes2):\n    return overlap(boxes1, boxes2)\n"
            },
            {AREA_CELL: SMUGGLER},
        ),
        "=HYPERLINK(1)": _with(),  # a file name a spreadsheet would run
        "-injection": _with({AREA_CELL: INJECTION}),
        "lesson": _with(before={len(MASTER.cells): "\n".join(LESSON_CELLS)}),
        "figures": _with(before={len(MASTER.cells): FIGURES}),
    }
    for name, text in notebooks.items():
        (subs / f"{name}.ipynb").write_text(text, encoding="utf-8")
    records = REPO / "lessons" / "results" / "gradedlesson.json"
    grades = grade(subs, IDS, limits=LIMITS, jobs=2, profile="full")
    out = root / "grades"
    write_results(grades, IDS, out)
    return {"grades": {g.student: g for g in grades}, "out": out, "record": records.exists()}


def _scores(g: SubmissionGrade) -> tuple[float, float]:
    return g.checks["box_area"].score, g.checks["iou"].score


def test_a_helper_from_an_earlier_cell_counts(graded):
    g = graded["grades"]["helpers"]
    assert _scores(g) == (2, 3), g.issues
    assert not [i for i in g.issues if not i.startswith("notebook")], g.issues


def test_the_reference_hidden_in_a_helper_earns_nothing(graded):
    g = graded["grades"]["smuggler"]
    assert _scores(g) == (2, 0)
    assert any("iou: uses box_iou" in i for i in g.issues), g.issues


def test_a_lesson_grades_clean_and_writes_nothing_in_the_checkout(graded):
    g = graded["grades"]["lesson"]
    assert g.notebook.startswith("runs"), g.notebook
    assert g.issues == [], g.issues
    assert not graded["record"], "a graded run wrote lessons/results/gradedlesson.json"


def test_figures_are_no_output_flood(graded):
    g = graded["grades"]["figures"]
    assert g.notebook.startswith("runs") and g.issues == [], (g.notebook, g.issues)


def test_results_files_are_safe_to_open(graded):
    out = graded["out"]
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in ("student", "file", "notebook", "issues"):
            assert row[key][:1] not in "=+-@\t\r" or row[key] == "", (key, row[key])
    assert {r["student"] for r in rows} >= {"'=HYPERLINK(1)", "'-injection"}
    assert next(r for r in rows if r["student"] == "'=HYPERLINK(1)")["total"] == "5"
    text = (out / "feedback" / "-injection.md").read_text()
    _assert_plain(
        text, headings=["Feedback: -injection", "box_area: 0 of 2 points", "iou: 3 of 3 points"]
    )
    assert "You got full marks" in text and graded["grades"]["-injection"].total == 3


def _assert_plain(text: str, headings: list[str]) -> None:
    """The Markdown renders with exactly these headings, and no HTML or link."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    found = [
        "".join(c.content for c in tokens[i + 1].children)
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]
    assert found == headings
    inline = [c for t in tokens if t.children for c in t.children]
    kinds = {t.type for t in tokens} | {c.type for c in inline}
    assert not kinds & {"html_block", "html_inline", "link_open", "image"}, kinds


def test_markdown_and_csv_escaping():
    hostile = "# Title\n- item <b>x</b> `code` [a](b) *em* | pipe 1. $x$"
    assert "\n" not in md_text(hostile)
    g = SubmissionGrade("=cmd|' /C calc'!A0", "/s/x.ipynb", notebook="error in cell 3: " + hostile)
    g.issues = [hostile, "+1", "```\n# Injected\n```"]
    _assert_plain(feedback(g), headings=["Feedback: =cmd|' /C calc'!A0"])
    block = md_code_block("a ```` b")
    assert block.startswith("`````text\n") and block.endswith("\n`````\n")
    assert [csv_text(s) for s in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "ok")] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "ok",
    ]
    texts = ("=1+1", "-1", "'quoted", "''", "'=x", "ok", "")
    assert [csv_text_value(csv_text(t)) for t in texts] == list(texts)  # reversible


def test_bad_arguments_get_one_clear_line(tmp_path, capsys):
    master = str(REPO / "masters" / "book" / "exercises.ipynb")
    cases = {
        "no folder": ([str(tmp_path / "nope"), "--assignment", master], "no folder"),
        "unknown exercise": ([str(tmp_path), "--exercises", "box_area,nope"], "no exercise 'nope'"),
        "no assignment": (
            [str(tmp_path), "--assignment", str(tmp_path / "a.ipynb")],
            "no assignment",
        ),
    }
    for what, (argv, message) in cases.items():
        assert main(argv) == 2, what
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, (what, err)
    (tmp_path / "grades").mkdir()
    (tmp_path / "grades" / "grades.csv").write_text("last run\n")
    assert main([str(tmp_path), "--exercises", "box_area", "--out", str(tmp_path / "grades")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("warning: no notebooks") and err.count("\n") == 1, err
    assert (tmp_path / "grades" / "grades.csv").read_text() == "last run\n"
    # the command itself: no traceback
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vizlib.exercises.grade",
            str(tmp_path / "nope"),
            "--exercises",
            "iou",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().startswith("error: no folder"), run.stderr


def test_make_handout_writes_the_student_versions_and_an_archive_pinned_to_this_release(
    tmp_path,
):
    import zipfile

    import vizlib

    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    masters, out = tmp_path / "masters", tmp_path / "handout"
    (masters / "book").mkdir(parents=True)
    master = nbformat.v4.new_notebook(cells=[c.copy() for c in MASTER.cells])
    master.cells.insert(
        0,
        nbformat.v4.new_code_cell(
            'import sys\n\nif "google.colab" in sys.modules:\n    %pip install vizlib\n'
        ),
    )
    nbformat.write(master, str(masters / "book" / "exercises.ipynb"))
    run = subprocess.run(
        [make, "-s", "-C", str(REPO), "-o", ".venv/.installed", "handout"]
        + [f"MASTERS={masters}", f"OUT={out}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    student = (out / "book" / "exercises.ipynb").read_text(encoding="utf-8")
    assert "NotImplementedError" in student and "BEGIN SOLUTION" not in student
    top = f"vizlib-exercises-{vizlib.__version__}"
    with zipfile.ZipFile(out.with_suffix(".zip")) as zf:
        assert sorted(zf.namelist()) == [f"{top}/HANDOUT.md", f"{top}/book/exercises.ipynb"]
        assert zf.read(f"{top}/book/exercises.ipynb").decode() == student
        assert f"vizlib=={vizlib.__version__}" in zf.read(f"{top}/HANDOUT.md").decode()


def test_handout_archive_of_the_books_masters_installs_this_release(tmp_path):
    import zipfile

    import vizlib
    from vizlib.exercises.student import master_paths, write_archive

    names = write_archive(REPO / "masters", tmp_path / "handout.zip")
    pin = f'%pip install -q "vizlib=={vizlib.__version__}"'
    with zipfile.ZipFile(tmp_path / "handout.zip") as zf:
        notebooks = [n for n in names if n.endswith(".ipynb")]
        assert len(notebooks) == len(master_paths(REPO / "masters"))
        for name in notebooks:
            nb = nbformat.reads(zf.read(name).decode(), as_version=4)
            first = next(c for c in nb.cells if c.cell_type == "code")
            assert pin in first.source, f"{name}: its install line is not {pin}"
    with pytest.raises(ValueError, match=r"\.zip"):
        write_archive(REPO / "masters", tmp_path / "handout.tar")


def test_make_student_check_fails_on_a_stale_student_version(tmp_path):
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    masters, out = tmp_path / "masters", tmp_path / "out"
    (masters / "book").mkdir(parents=True)
    nbformat.write(MASTER, str(masters / "book" / "exercises.ipynb"))

    def run(*args: str) -> subprocess.CompletedProcess:
        # -o: never reinstall the environment from a test
        return subprocess.run(
            [
                make,
                "-s",
                "-C",
                str(REPO),
                "-o",
                ".venv/.installed",
                *args,
                f"MASTERS={masters}",
                f"OUT={out}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    missing = run("student-check")
    assert missing.returncode != 0 and "stale" in missing.stdout, missing.stdout + missing.stderr
    assert not out.exists(), "student-check wrote files"
    assert run("student").returncode == 0
    assert run("student-check").returncode == 0
    target = out / "book" / "exercises.ipynb"
    nb = nbformat.read(str(target), as_version=4)
    nb.cells[1].source += "\n# edited by hand"
    nbformat.write(nb, str(target))
    stale = run("student-check")
    assert stale.returncode != 0 and str(target) in stale.stdout, stale.stdout
    # make takes "--check" as its own --check-symlink-times: refuse instead of rewriting
    before = target.read_text()
    wrong = run("student", "--check")
    assert wrong.returncode != 0 and "student-check" in wrong.stdout + wrong.stderr
    assert target.read_text() == before


def test_every_lesson_grades_clean_from_the_checkout(tmp_path):
    """Every lesson's master and student version, graded as documented (smoke profile), in
    one class: each runs top to bottom with no accusation, the master scores full marks on
    its own exercises, the student version none (not attempted), and nothing is written in
    the checkout. (One run of 2 x N notebooks: 4-8 s of kernel each, one worker.)"""
    subs = tmp_path / "submissions"
    subs.mkdir()
    lessons = sorted(  # (a master without its student version fails test_exercises)
        p.stem
        for p in (REPO / "masters" / "lessons").glob("*.ipynb")
        if (REPO / "lessons" / p.name).is_file()
    )
    ids_of = {name: exercise_ids_of(REPO / "lessons" / f"{name}.ipynb") for name in lessons}
    for name in lessons:
        shutil.copy(REPO / "masters" / "lessons" / f"{name}.ipynb", subs / f"{name}-master.ipynb")
        shutil.copy(REPO / "lessons" / f"{name}.ipynb", subs / f"{name}-student.ipynb")
    ids = [i for name in lessons for i in ids_of[name]]
    watched = [REPO, REPO / "lessons", REPO / "lessons" / "results", REPO / "masters" / "lessons"]
    before = {d: sorted(p.name for p in d.iterdir()) for d in watched}
    # one grading worker: with two, this test and the browser tests running beside it on
    # the other pytest worker overloaded 2 cores (the JupyterLab test timed out once)
    grades = {g.student: g for g in grade(subs, ids, limits=Limits(timeout=300), jobs=1)}
    for student, g in grades.items():
        name, version = student.rsplit("-", 1)
        assert g.notebook.startswith("runs"), (student, g.notebook)
        own = ids_of[name]
        # the other lessons' exercises are not in this notebook; nothing else is wrong
        others = [
            i for i in g.issues if not any(i.startswith(x + ":") for x in ids if x not in own)
        ]
        assert others == [], (student, others)
        checks = [g.checks[i] for i in own]
        if version == "master":
            assert all(c.score == c.exercise.points > 0 for c in checks), (student, checks)
        else:
            assert all(c.score == 0 and c.not_attempted for c in checks), (student, checks)
    assert {d: sorted(p.name for p in d.iterdir()) for d in watched} == before
