"""Exercises: check cells for readers, student versions and a class grader for instructors.

A chapter's exercise cell asks the reader to write one function; the check cell right
after it runs the instructor's tests on it::

    from vizlib.exercises import check
    check("iou", iou)

which prints each case as passed or failed, with a hint, and never raises (a notebook
with unwritten exercises still runs top to bottom). The tests live in
:mod:`vizlib.exercises.bank`, one module per chapter: public cases (the check cell's),
weighted per case, and generators of hidden cases that the grader alone draws, from a
secret the instructor holds (see :mod:`vizlib.exercises.spec`).

Instructors: ``python -m vizlib.exercises.student`` writes the student versions of the
master notebooks (solutions between ``# BEGIN SOLUTION`` / ``# END SOLUTION`` replaced
by a stub); ``python -m vizlib.exercises.grade SUBMISSIONS --assignment NOTEBOOK``
grades a folder of submitted notebooks (see ``book/for_instructors.md``).

Importing this package needs only vizlib (and torch); the grader's own dependencies
(nbformat, jupyter_client) are imported by the grader alone.
"""

from .checking import CheckResult, check, run_check
from .spec import Case, Exercise, all_exercises, exercise, get

__all__ = [
    "check",
    "run_check",
    "CheckResult",
    "Case",
    "Exercise",
    "exercise",
    "get",
    "all_exercises",
]
