"""Manual grading: answers out to a sheet, scores back into the grades (and on to the
gradebook), every mistake in the sheet one clear error."""

from __future__ import annotations

import csv
import io

import nbformat
import pytest

from vizlib.exercises.gradebook import gradebook
from vizlib.exercises.manual import export_answers, main, manual_items, merge_scores


def _nb(answer: str | None) -> str:
    cells = [nbformat.v4.new_markdown_cell("Why does the focal loss help? (2 points)")]
    if answer is not None:
        cell = nbformat.v4.new_markdown_cell(answer)
        cell.metadata["tags"] = ["manual:why_focal:2"]
        cells.append(cell)
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells))


@pytest.fixture
def course(tmp_path):
    (tmp_path / "assignment.ipynb").write_text(_nb("Your answer here."))
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "ana.ipynb").write_text(_nb("Easy negatives stop dominating the loss."))
    (subs / "bo.ipynb").write_text(_nb("=HYPERLINK(1)"))  # a formula, kept as text
    (subs / "cy.ipynb").write_text(_nb(None))  # deleted the cell
    grades = tmp_path / "grades.csv"
    grades.write_text(
        "student,file,iou,total,max,notebook,issues\n"
        "ana,a,3,3,3,runs,\nbo,b,1,1,3,runs,\ncy,c,0,0,3,runs,\n"
    )
    return tmp_path, subs, grades


def _fill(sheet, scores: dict[str, str], comment: str = "") -> None:
    rows = list(csv.DictReader(io.StringIO(sheet.read_text())))
    for r in rows:
        r["score"] = scores.get(r["student"].lstrip("'"), "")
        r["comment"] = comment if r["student"] == "ana" else ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    sheet.write_text(buffer.getvalue())


def test_answers_go_out_and_scores_come_back_into_the_totals(course):
    root, subs, grades = course
    assert manual_items(root / "assignment.ipynb") == {"why_focal": 2.0}
    sheet = root / "manual.csv"
    argv = ["export", str(subs), "--assignment", str(root / "assignment.ipynb")]
    assert main([*argv, "--out", str(sheet)]) == 0  # the command on the instructors' page
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO(sheet.read_text()))}
    assert rows["ana"]["answer"].startswith("Easy negatives")
    assert rows["bo"]["answer"] == "'=HYPERLINK(1)", "a formula reaches the sheet as text"
    assert rows["cy"]["answer"].startswith("(no answer")
    with pytest.raises(ValueError, match="exists"):
        export_answers(subs, root / "assignment.ipynb", sheet)

    _fill(sheet, {"ana": "2", "bo": "0.5", "cy": "0"}, comment="clear")
    assert main(["merge", str(grades), str(sheet), "--out", str(root / "final.csv")]) == 0
    final = {r["student"]: r for r in csv.DictReader(io.StringIO((root / "final.csv").read_text()))}
    assert final["ana"]["manual: why_focal"] == "2" and final["ana"]["total"] == "5"
    assert final["bo"]["total"] == "1.5" and final["bo"]["max"] == "5"
    assert final["ana"]["manual comments"] == "why_focal: clear"
    # the gradebook takes final.csv in place of grades.csv
    roster = root / "roster.csv"
    roster.write_text("id,name,submission\n1,Ana,ana\n2,Bo,bo\n3,Cy,cy\n")
    rows, unclaimed = gradebook(root / "final.csv", roster)
    assert unclaimed == []
    assert {r.name: (r.points, r.max_points) for r in rows} == {
        "Ana": (5.0, 5.0),
        "Bo": (1.5, 5.0),
        "Cy": (0.0, 5.0),
    }


@pytest.mark.parametrize(
    "scores, message",
    [
        ({"ana": "2", "bo": "", "cy": "0"}, "bo, why_focal\\): not scored yet"),
        ({"ana": "3", "bo": "1", "cy": "0"}, "outside \\[0, 2\\]"),
        ({"ana": "two", "bo": "1", "cy": "0"}, "'two' is not a number"),
    ],
)
def test_a_bad_sheet_stops_the_merge_with_the_row_to_fix(course, scores, message, capsys):
    root, subs, grades = course
    sheet = root / "manual.csv"
    export_answers(subs, root / "assignment.ipynb", sheet)
    _fill(sheet, scores)
    argv = ["merge", str(grades), str(sheet), "--out", str(root / "final.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "line " in err and "Traceback" not in err
    with pytest.raises(ValueError, match=message):
        merge_scores(grades, sheet, root / "final.csv")
    assert not (root / "final.csv").exists(), "nothing is written when the sheet is wrong"


def test_an_assignment_without_manual_items_says_how_to_tag_one(tmp_path):
    (tmp_path / "a.ipynb").write_text(_nb(None))
    with pytest.raises(ValueError, match="manual:<id>:<points>"):
        manual_items(tmp_path / "a.ipynb")
