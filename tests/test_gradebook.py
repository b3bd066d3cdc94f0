"""The gradebook step after the grader: roster join, late rule, Canvas-style export."""

from __future__ import annotations

import csv
from datetime import datetime

import pytest

from vizlib.exercises.gradebook import gradebook, late_factor, main, read_roster

GRADES = """student,file,box_area,iou,total,max,notebook,issues
alice,/s/alice.ipynb,2,3,5,5,runs (3 s),
bob,/s/bob.ipynb,2,0,2,5,runs (3 s),iou: wrong
eve_hw,/s/eve_hw.ipynb,0,0,0,5,not run: unreadable,the file is empty
stranger,/s/stranger.ipynb,2,3,5,5,runs (3 s),
"""
ROSTER = """id,name,submission,submitted_at
s1,Alice A,alice,2026-12-01T20:00
s2,Bob B,bob,2026-12-03T10:00
s3,Eve E,eve_hw,
s4,Carol C,,
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "grades.csv").write_text(GRADES)
    (tmp_path / "roster.csv").write_text(ROSTER)
    return tmp_path


def test_roster_joins_grades_with_the_late_rule(files):
    rows, unclaimed = gradebook(
        files / "grades.csv", files / "roster.csv", datetime(2026, 12, 1, 23, 59), late_per_day=10
    )
    by_id = {r.student_id: r for r in rows}
    assert [r.student_id for r in rows] == ["s1", "s2", "s3", "s4"]  # roster order
    assert by_id["s1"].points == 5 and by_id["s1"].note == ""
    # 34 h late: two started days, -20%, and the grader's issue kept
    assert by_id["s2"].raw_points == 2 and by_id["s2"].points == 1.6
    assert by_id["s2"].note == "late by 2 days: -20%; iou: wrong"
    assert by_id["s3"].points == 0 and "the file is empty" in by_id["s3"].note
    assert by_id["s4"].points == 0 and by_id["s4"].note == "no submission"
    assert unclaimed == ["stranger"]


@pytest.mark.parametrize(
    "hours, keep",
    [(-1, 1.0), (0, 1.0), (0.01, 0.9), (24, 0.9), (24.5, 0.8), (5 * 24, 0.5), (5 * 24 + 1, 0.0)],
)
def test_late_factor_counts_started_days(hours, keep):
    from datetime import timedelta

    deadline = datetime(2026, 12, 1, 12, 0)
    got, _ = late_factor(deadline + timedelta(hours=hours), deadline, per_day=10, max_days=5)
    assert got == pytest.approx(keep)


def test_cli_writes_a_canvas_style_csv_with_safe_cells(files, capsys):
    (files / "roster.csv").write_text("id,name,submission\ns1,=HYPERLINK(1),alice\n")
    code = main(
        [
            str(files / "grades.csv"),
            "--roster",
            str(files / "roster.csv"),
            "--assignment",
            "FCN lesson",
        ]
    )
    assert code == 1  # three submissions are on no roster row: said, not dropped
    assert "'bob'" in capsys.readouterr().out
    rows = list(csv.reader((files / "gradebook.csv").open()))
    assert rows[0][:3] == ["Student", "SIS User ID", "FCN lesson (5)"]
    assert rows[1][:3] == ["'=HYPERLINK(1)", "s1", "5"]  # a formula never runs


@pytest.mark.parametrize(
    "roster, message",
    [
        ("name\nAlice\n", "lacks the column"),
        ("id,name\ns1,A\ns1,B\n", "appears twice"),
        ("id,name,submission\ns1,A,x\ns2,B,x\n", "claimed twice"),
        ("id,name,submitted_at\ns1,A,yesterday\n", "not a time"),
    ],
)
def test_a_bad_roster_is_a_clear_error(files, roster, message, capsys):
    (files / "roster.csv").write_text(roster)
    with pytest.raises(ValueError, match=message):
        read_roster(files / "roster.csv")
    code = main(
        [str(files / "grades.csv"), "--roster", str(files / "roster.csv"), "--assignment", "x"]
    )
    assert code == 2 and "error:" in capsys.readouterr().err


def test_bad_late_rule_and_missing_files_are_clear_errors(files):
    with pytest.raises(ValueError, match="percentage"):
        late_factor(datetime(2026, 1, 2), datetime(2026, 1, 1), per_day=120)
    with pytest.raises(ValueError, match="does not exist"):
        gradebook(files / "nope.csv", files / "roster.csv")
    assert (
        main(
            [
                str(files / "grades.csv"),
                "--roster",
                str(files / "roster.csv"),
                "--assignment",
                "x",
                "--deadline",
                "soon",
            ]
        )
        == 2
    )


def test_a_submission_named_like_a_formula_still_meets_its_roster_row(tmp_path):
    """The grader writes such a name with a leading apostrophe (csv_text); the gradebook
    reads it back, so the student is not listed as having no submission."""
    from vizlib.exercises.grade import SubmissionGrade, write_results

    grades = [
        SubmissionGrade(name, f"/s/{name}.ipynb", notebook="runs (3 s)")
        for name in ("-dash", "'q", "ok")
    ]
    write_results(grades, [], tmp_path / "out")
    assert "'-dash" in (tmp_path / "out" / "grades.csv").read_text()  # escaped on disk
    (tmp_path / "roster.csv").write_text(
        "id,name,submission\ns1,Dash D,-dash\ns2,Quote Q,'q\ns3,Ok O,ok\n"
    )
    rows, unclaimed = gradebook(tmp_path / "out" / "grades.csv", tmp_path / "roster.csv")
    assert unclaimed == []
    assert all(r.note != "no submission" for r in rows), rows


def test_a_header_only_roster_is_read_as_empty_not_as_missing_columns(files):
    (files / "roster.csv").write_text("id,name\n")
    assert read_roster(files / "roster.csv") == []
    with pytest.raises(ValueError, match="max-late-days"):
        gradebook(files / "grades.csv", files / "roster.csv", max_late_days=-1)
