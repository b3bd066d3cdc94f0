"""Manual grading: free-text answers out to a sheet, your scores back into the grades.

An assignment asks for a written answer in a cell tagged ``manual:<id>:<points>`` (the
cell's tags, as Jupyter's and Colab's cell-tag editors show them), e.g.
``manual:why_focal:2``. The student writes their answer in that cell::

    python -m vizlib.exercises.manual export submissions/ --assignment masters/lessons/fcn.ipynb \\
        --out manual.csv
    # fill the "score" (and "comment") columns in a spreadsheet, save as CSV, then
    python -m vizlib.exercises.manual merge grades/grades.csv manual.csv --out grades/final.csv

``final.csv`` is ``grades.csv`` with one column per manual item, its comments, and the
total and maximum including them: the gradebook (``vizlib.exercises.gradebook``) takes it
in place of ``grades.csv``. A score that is missing, not a number or outside
``[0, points]``, or a student or item the grades do not know, stops the merge with one
line saying which row; nothing is written then.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
from pathlib import Path

from .grade import csv_text, csv_text_value, submission_paths

__all__ = ["export_answers", "main", "manual_items", "merge_scores"]

_TAG = re.compile(r"^manual:([A-Za-z_][\w-]*):(\d+(?:\.\d+)?)$")
SHEET = ["student", "item", "points", "answer", "score", "comment"]


def _cells(path: Path) -> list[dict]:
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        return [c for c in nb["cells"] if isinstance(c, dict)]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _tags(cell: dict) -> list[str]:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return [t for t in tags if isinstance(t, str)]


def manual_items(assignment: Path) -> dict[str, float]:
    """``{item id: points}`` of the cells tagged ``manual:<id>:<points>``, in order."""
    assignment = Path(assignment)
    if not assignment.is_file():
        raise ValueError(f"no assignment notebook {assignment}")
    items: dict[str, float] = {}
    for cell in _cells(assignment):
        for tag in _tags(cell):
            m = _TAG.match(tag)
            if m:
                if m.group(1) in items:
                    raise ValueError(f"{assignment}: the manual item {m.group(1)} is tagged twice")
                items[m.group(1)] = float(m.group(2))
    if not items:
        raise ValueError(
            f"{assignment} has no manual item (a cell tagged manual:<id>:<points>, "
            "e.g. manual:why_focal:2)"
        )
    return items


def _answer(cells: list[dict], item: str) -> str:
    for cell in cells:
        if any((m := _TAG.match(t)) and m.group(1) == item for t in _tags(cell)):
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else str(source)
            return text.strip() or "(empty)"
    return "(no answer: the tagged cell is not in the notebook)"


def export_answers(submissions: Path, assignment: Path, out: Path) -> int:
    """Write the sheet: one row per student and item, ``score`` and ``comment`` blank.
    Refuses to overwrite a sheet (it may hold your scores). Returns the rows written."""
    items = manual_items(assignment)
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise ValueError(f"no folder {submissions} (the folder of submitted notebooks)")
    if out.exists():
        raise ValueError(f"{out} exists (it may hold your scores): give another --out")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(SHEET)
    n = 0
    for path in submission_paths(submissions):
        student = path.relative_to(submissions.resolve()).with_suffix("").as_posix()
        cells = _cells(path)
        for item, points in items.items():
            writer.writerow(
                [csv_text(student), item, f"{points:g}", csv_text(_answer(cells, item)), "", ""]
            )
            n += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(buffer.getvalue(), encoding="utf-8")
    return n


def _read(path: Path, what: str) -> list[dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {path} does not exist: expected a CSV file")
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def merge_scores(grades_csv: Path, sheet_csv: Path, out: Path) -> None:
    """``grades.csv`` plus the sheet's scores: a column per item, the comments, and the
    total and maximum with them (see the module's docstring)."""
    grades = _read(grades_csv, "grades")
    sheet = _read(sheet_csv, "manual sheet")
    if not grades or not {"student", "total", "max"} <= set(grades[0]):
        raise ValueError(f"{grades_csv} is not a grades.csv (student, total, max columns)")
    if not sheet or not set(SHEET) <= set(sheet[0]):
        raise ValueError(f"{sheet_csv} lacks the columns {', '.join(SHEET)}")
    students = [csv_text_value(g["student"]) for g in grades]
    items: dict[str, float] = {}
    scores: dict[tuple[str, str], float] = {}
    comments: dict[str, list[str]] = {}
    for line, row in enumerate(sheet, start=2):  # line 1 is the header
        student, item = csv_text_value(row["student"]), row["item"]
        where = f"{sheet_csv} line {line} ({student}, {item})"
        if student not in students:
            raise ValueError(f"{where}: no such student in {grades_csv}")
        try:
            points = float(row["points"])
        except ValueError:
            raise ValueError(f"{where}: points {row['points']!r} is not a number") from None
        if items.setdefault(item, points) != points:
            raise ValueError(f"{where}: points {points:g}, elsewhere {items[item]:g}")
        text = row["score"].strip()
        if not text:
            raise ValueError(f"{where}: not scored yet (the score column is empty)")
        try:
            score = float(text)
        except ValueError:
            raise ValueError(f"{where}: score {text!r} is not a number") from None
        if not 0 <= score <= points:
            raise ValueError(f"{where}: score {score:g} is outside [0, {points:g}]")
        if (student, item) in scores:
            raise ValueError(f"{where}: scored twice")
        scores[student, item] = score
        if row["comment"].strip():
            comments.setdefault(student, []).append(f"{item}: {csv_text_value(row['comment'])}")
    unscored = [f"{s} / {i}" for s in students for i in items if (s, i) not in scores]
    if unscored:
        raise ValueError(f"{sheet_csv} has no row for {', '.join(unscored[:5])}")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    head = list(grades[0]) + [f"manual: {i}" for i in items] + ["manual comments"]
    writer.writerow(head)
    for g, student in zip(grades, students, strict=True):
        manual = [scores[student, i] for i in items]
        row = dict(g)
        row["total"] = f"{float(g['total']) + sum(manual):g}"
        row["max"] = f"{float(g['max']) + sum(items.values()):g}"
        writer.writerow(
            [row[c] for c in grades[0]]
            + [f"{m:g}" for m in manual]
            + [csv_text("; ".join(comments.get(student, [])))]
        )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(buffer.getvalue(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vizlib.exercises.manual",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="the students' answers to a sheet")
    ex.add_argument("submissions", type=Path)
    ex.add_argument("--assignment", type=Path, required=True)
    ex.add_argument("--out", type=Path, default=Path("manual.csv"))
    mg = sub.add_parser("merge", help="the sheet's scores into the grades")
    mg.add_argument("grades", type=Path, help="the grader's grades.csv")
    mg.add_argument("sheet", type=Path, help="the scored sheet")
    mg.add_argument("--out", type=Path, default=Path("grades") / "final.csv")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            n = export_answers(args.submissions, args.assignment, args.out)
            print(f"wrote {args.out}: {n} answers to score")
        else:
            merge_scores(args.grades, args.sheet, args.out)
            print(f"wrote {args.out}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
