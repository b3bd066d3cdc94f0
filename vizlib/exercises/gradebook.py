"""From the grader's ``grades.csv`` to a course's gradebook: roster, late rule, export.

The grader (``make grade``) names each submission by its file; a course knows students by
an id. This joins the two through a roster file, applies a late rule, and writes a CSV a
course platform imports (Canvas-style columns: ``Student``, ``SIS User ID``, then one
column per assignment holding the points)::

    python -m vizlib.exercises.gradebook grades/grades.csv --roster roster.csv \\
        --assignment "FCN lesson" [--deadline 2026-12-01T23:59 --late-per-day 10] \\
        [--out grades/gradebook.csv]

The roster is a CSV with a header: ``id`` and ``name`` (required), ``submission`` (the
notebook's name in the submissions folder, without ``.ipynb``; default: the id) and
``submitted_at`` (ISO 8601 time, optional, for the late rule). A student on the roster
without a submission gets 0 and the note "no submission"; a submission no roster row
claims is reported, never dropped silently.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .grade import csv_text, csv_text_value

__all__ = ["GradebookRow", "gradebook", "late_factor", "main", "read_roster"]


@dataclass(frozen=True)
class GradebookRow:
    student_id: str
    name: str
    points: float  # after the late rule
    raw_points: float  # as graded
    max_points: float
    note: str


def _csv_rows(path: Path, required: tuple[str, ...], what: str) -> list[dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {path} does not exist: expected a CSV file")
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(
            f"{what} {path} lacks the column(s) {', '.join(missing)}: expected a header with "
            + ", ".join(required)
        )
    return list(reader)


def _time(text: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{where}: {text!r} is not a time; expected ISO 8601, e.g. 2026-12-01T23:59"
        ) from None


def read_roster(path: Path) -> list[dict]:
    """The roster's rows (``id``, ``name``, ``submission``, and ``submitted_at``: a
    ``datetime`` or None), checked: ids and submission names unique, times readable."""
    rows = _csv_rows(path, ("id", "name"), "the roster")
    seen_ids, seen_subs, out = set(), set(), []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        sid = (row.get("id") or "").strip()
        if not sid:
            raise ValueError(f"the roster, line {i}: empty id")
        sub = (row.get("submission") or "").strip() or sid
        if sid in seen_ids:
            raise ValueError(f"the roster, line {i}: id {sid!r} appears twice")
        if sub in seen_subs:
            raise ValueError(f"the roster, line {i}: submission {sub!r} is claimed twice")
        when = (row.get("submitted_at") or "").strip()
        seen_ids.add(sid)
        seen_subs.add(sub)
        out.append(
            {
                "id": sid,
                "name": (row.get("name") or "").strip(),
                "submission": sub,
                "submitted_at": _time(when, f"the roster, line {i}") if when else None,
            }
        )
    return out


def late_factor(
    submitted: datetime | None, deadline: datetime | None, per_day: float, max_days: int = 5
) -> tuple[float, str]:
    """The share of the points a submission keeps, and a note.

    ``per_day`` percent off for every started day (24 h) after ``deadline``; 0 points after
    ``max_days`` started days. On time, or without a time or a deadline: 1.0.
    """
    _check_late_rule(per_day, max_days)
    if submitted is None or deadline is None or submitted <= deadline:
        return 1.0, ""
    late = submitted - deadline
    days = late.days + (1 if late.seconds or late.microseconds else 0)  # started days
    if days > max_days:
        return 0.0, f"late by {days} days (more than {max_days}): 0 points"
    keep = max(0.0, 1.0 - per_day / 100 * days)
    return keep, f"late by {days} day{'s' if days > 1 else ''}: -{per_day * days:g}%"


def _check_late_rule(per_day: float, max_days: int) -> None:
    if not 0 <= per_day <= 100:
        raise ValueError(f"late-per-day must be a percentage in [0, 100], got {per_day}")
    if isinstance(max_days, bool) or not isinstance(max_days, int) or max_days < 0:
        raise ValueError(f"max-late-days must be a whole number >= 0, got {max_days!r}")


def gradebook(
    grades_csv: Path,
    roster: Path,
    deadline: datetime | None = None,
    late_per_day: float = 0.0,
    max_late_days: int = 5,
) -> tuple[list[GradebookRow], list[str]]:
    """Join ``grades.csv`` (written by the grader) to the roster.

    Returns:
        (rows in roster order, submissions no roster row claims)
    """
    _check_late_rule(late_per_day, max_late_days)
    roster_rows = read_roster(roster)
    # grades.csv escapes names that start like a formula ('-x' is written "'-x"): undone here
    rows_in = _csv_rows(grades_csv, ("student", "total", "max"), "grades")
    graded = {csv_text_value(r["student"]): r for r in rows_in}
    if not graded:
        raise ValueError(f"{grades_csv} holds no graded submission")
    maxima = {r["max"] for r in graded.values()}
    if len(maxima) != 1:
        raise ValueError(f"{grades_csv} mixes assignments (max points {sorted(maxima)})")
    max_points = float(maxima.pop())
    rows = []
    for student in roster_rows:
        g = graded.get(student["submission"])
        if g is None:
            rows.append(
                GradebookRow(student["id"], student["name"], 0.0, 0.0, max_points, "no submission")
            )
            continue
        raw = float(g["total"])
        keep, note = late_factor(student["submitted_at"], deadline, late_per_day, max_late_days)
        issues = (g.get("issues") or "").strip()
        note = "; ".join(x for x in (note, "" if issues in ("", "—") else issues) if x)
        rows.append(
            GradebookRow(
                student["id"], student["name"], round(raw * keep, 2), raw, max_points, note
            )
        )
    claimed = {s["submission"] for s in roster_rows}
    return rows, sorted(set(graded) - claimed)


def write_canvas_csv(rows: list[GradebookRow], assignment: str, out: Path) -> None:
    """Canvas-style import: ``Student``, ``SIS User ID``, ``<assignment> (<max>)``, plus the
    raw points and a note for the instructor (import tools ignore unknown columns)."""
    if not rows:
        raise ValueError("no roster rows to write")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["Student", "SIS User ID", f"{assignment} ({rows[0].max_points:g})", "raw points", "note"]
    )
    for r in rows:
        writer.writerow(
            [
                csv_text(r.name),
                csv_text(r.student_id),
                f"{r.points:g}",
                f"{r.raw_points:g}",
                csv_text(r.note),
            ]
        )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(buffer.getvalue(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("grades", type=Path, help="the grader's grades.csv")
    parser.add_argument(
        "--roster", type=Path, required=True, help="CSV: id, name[, submission, submitted_at]"
    )
    parser.add_argument(
        "--assignment", required=True, help="the assignment's name in the gradebook"
    )
    parser.add_argument("--deadline", help="ISO 8601 time, e.g. 2026-12-01T23:59")
    parser.add_argument(
        "--late-per-day", type=float, default=0.0, help="percent off per started day"
    )
    parser.add_argument("--max-late-days", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=None, help="default: gradebook.csv beside grades.csv"
    )
    args = parser.parse_args(argv)
    try:
        deadline = _time(args.deadline, "--deadline") if args.deadline else None
        rows, unclaimed = gradebook(
            args.grades, args.roster, deadline, args.late_per_day, args.max_late_days
        )
        out = args.out or args.grades.with_name("gradebook.csv")
        write_canvas_csv(rows, args.assignment, out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{len(rows)} students written to {out}; "
        f"{sum(r.note == 'no submission' for r in rows)} without a submission"
    )
    for name in unclaimed:
        print(f"warning: submission {name!r} is on no roster row (not in the gradebook)")
    return 1 if unclaimed else 0


if __name__ == "__main__":
    sys.exit(main())
