"""Grade a folder of submitted notebooks with the instructor's tests.

    python -m vizlib.exercises.grade SUBMISSIONS --assignment masters/book/exercises.ipynb

Every ``*.ipynb`` under ``SUBMISSIONS`` is one student's notebook (the student is named
by its path without ``.ipynb``). For each one the grader

1. reads the file once, before anything runs (an empty or corrupt file is reported);
2. takes each exercise's cell (the cell starting ``# EXERCISE <id>``) and runs it alone in
   a fresh, confined process that calls the reader's function on the instructor's inputs:
   the public cases of the bank, then hidden cases drawn from the secret
   (``--secret-file``, else a new random one saved in ``OUT/secret.txt``) by the bank's
   generators and those of ``--hidden DIR``. The inputs go one at a time, each with a
   fresh nonce, and only the answer to the case asked is taken (a forged report line is
   ignored); the return values come back as data and are judged here, against expected
   values that never leave this process, so deleting or editing a check cell or
   monkeypatching anything in the notebook gains nothing;
3. runs the whole notebook top to bottom in a fresh, confined kernel (``--no-run`` skips
   this) and reports whether it runs, and where and why it stopped;

each process in its own temporary folder, with a time limit, a memory limit and a cap on
its output, several submissions at once (one per core). Each case earns its weight's
share of its part of the exercise's points: the hidden cases carry the exercise's
``hidden_share`` (half by default), the public cases the rest. Results go to ``--out``
(default ``grades/``): ``grades.csv``, ``grades.md`` (the table, also printed, and how
the points are shared) and ``feedback/<student>.md``, all written by this process alone,
after every run has ended.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import csv
import hashlib
import io
import json
import os
import re
import secrets
import select
import shutil
import subprocess
import symtable
import sys
import tempfile
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .checking import (
    CaseResult,
    CheckResult,
    Outcome,
    forbidden_in_source,
    forbidden_message,
    judge,
)
from .spec import Exercise, get, hidden_cases, load_hidden_folder, with_weights

__all__ = [
    "Limits",
    "SubmissionGrade",
    "grade",
    "exercise_ids_of",
    "submission_paths",
    "write_results",
    "md_text",
    "md_code_block",
    "csv_text",
    "csv_text_value",
    "main",
]

MAX_NOTEBOOK_BYTES = 50 << 20


@dataclass(frozen=True)
class Limits:
    """Limits for each submission (seconds, MB, KB)."""

    timeout: int = 600  # the whole notebook
    check_timeout: int = 60  # one exercise, all its cases
    memory_mb: int = 2048  # beyond what Python and torch hold
    max_output_kb: int = 1024  # printed by one process


@dataclass
class SubmissionGrade:
    """One student's grade: per exercise results, the notebook run, and what went wrong."""

    student: str
    path: str
    checks: dict[str, CheckResult] = field(default_factory=dict)
    notebook: str = "not run"
    issues: list[str] = field(default_factory=list)
    output: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return round(sum(c.score for c in self.checks.values()), 2)

    @property
    def max_points(self) -> float:
        return sum(c.exercise.points for c in self.checks.values())


def exercise_ids_of(notebook: Path) -> list[str]:
    """The exercise ids of an assignment notebook (master or student version), in order."""
    import nbformat

    from .notebooks import find_exercise_cells

    ids = list(find_exercise_cells(nbformat.read(str(notebook), as_version=4)))
    if not ids:
        raise ValueError(
            f"{notebook} has no exercise cell (a code cell starting '# EXERCISE <id>')"
        )
    return ids


def stated_weights_of(notebook: Path) -> dict[str, dict[str, float]]:
    """``{exercise id: {"points": ..., "hidden_share": ...}}`` as an assignment's exercise
    cells state them (``# EXERCISE iou (points 4, hidden share 0.6)``); ValueError naming
    the cell on a statement it cannot read or a weight out of range."""
    import nbformat

    from .notebooks import find_exercise_cells, stated_weights

    nb = nbformat.read(str(notebook), as_version=4)
    out = {}
    for ex_id, index in find_exercise_cells(nb).items():
        try:
            stated = stated_weights(nb.cells[index])
            if stated:
                with_weights(get(ex_id), **stated)  # in range
        except ValueError as exc:
            raise ValueError(f"{notebook}, exercise {ex_id}: {exc}") from None
        if stated:
            out[ex_id] = stated
    return out


# ---------------------------------------------------------------- reading submissions


def _read_submission(path: Path) -> tuple[str | None, object | None, str | None]:
    """(text, notebook, problem): the notebook, or why it cannot be read."""
    import nbformat

    try:
        size = path.stat().st_size
        if size == 0:
            return None, None, "the file is empty"
        if size > MAX_NOTEBOOK_BYTES:
            return None, None, f"the file is larger than {MAX_NOTEBOOK_BYTES >> 20} MB"
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, None, f"the file cannot be read as text: {exc}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a student's notebook may be old or sloppy
            nb = nbformat.reads(text, as_version=4, capture_validation_error={})
        cells = nb.get("cells")
        if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
            raise ValueError("it has no list of cells")
    except Exception as exc:  # noqa: BLE001 - any parse failure means the same thing
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return None, None, f"not a readable notebook (corrupt .ipynb?): {reason}"
    return text, nb, None


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(str(s) for s in src) if isinstance(src, list) else str(src)


def _exercise_cell(nb, ex: Exercise) -> int | None:
    """The index of the reader's cell for ``ex``: its ``# EXERCISE`` cell, else the last
    code cell defining the function (a reader may have deleted the header line)."""
    from .notebooks import find_exercise_cells

    cells = nb.get("cells", [])
    index = find_exercise_cells(nb).get(ex.id)
    if index is not None:
        return index
    pattern = re.compile(rf"^def\s+{re.escape(ex.function)}\s*\(", re.MULTILINE)
    for i in range(len(cells) - 1, -1, -1):
        if cells[i].get("cell_type") == "code" and pattern.search(_source(cells[i])):
            return i
    return None


def _parse_cell(source: str) -> ast.Module | None:
    """A code cell's syntax tree (IPython magics made Python first); None if it does not parse."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - leave it to ast.parse
        pass
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return None


def _global_reads(tree: ast.Module) -> set[str]:
    """The global names ``tree`` reads and does not bind itself (builtins excluded)."""
    try:
        table = symtable.symtable(ast.unparse(tree), "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError):
        return set()
    names = {
        s.get_name()
        for s in table.get_symbols()
        if s.is_referenced() and not (s.is_assigned() or s.is_imported())
    }
    stack = list(table.get_children())
    while stack:
        scope = stack.pop()
        names |= {s.get_name() for s in scope.get_symbols() if s.is_global() and s.is_referenced()}
        stack += scope.get_children()
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    return names - bound - set(dir(builtins))


def _definitions(stmt: ast.stmt) -> list[tuple[str, ast.stmt]]:
    """``(name, statement)`` for what a top-level statement of an earlier cell defines that
    is safe to run again: imports (one per name), functions, classes, and assignments of
    values that call nothing (constants such as ``EPS = 1e-6``); never a training run."""
    if isinstance(stmt, ast.Import):
        return [(a.asname or a.name.split(".")[0], ast.Import(names=[a])) for a in stmt.names]
    if isinstance(stmt, ast.ImportFrom):
        return [
            (a.asname or a.name, ast.ImportFrom(module=stmt.module, names=[a], level=stmt.level))
            for a in stmt.names
            if a.name != "*"
        ]
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [(stmt.name, stmt)]
    value = getattr(stmt, "value", None)
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, ast.AnnAssign) and value is not None:
        targets = [stmt.target]
    else:
        return []
    if not all(isinstance(t, ast.Name) for t in targets) or any(
        isinstance(n, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr))
        for n in ast.walk(value)
    ):
        return []
    return [(t.id, stmt) for t in targets]


def _helpers(nb, index: int, source: str) -> list[str]:
    """What the exercise cell needs from the reader's earlier cells, as sources to run first.

    A reader may define a helper (or import a module) in an earlier cell and call it from
    the exercise's function: the notebook's own check passes then, so the grader must
    provide it too. Only the definitions the cell reaches (directly or through other
    helpers) are taken, the last one of each name before the cell, in notebook order.
    """
    tree = _parse_cell(source)
    if tree is None:
        return []
    found: dict[str, tuple[tuple[int, int], ast.stmt]] = {}
    for c, cell in enumerate(nb.get("cells", [])[:index]):
        if cell.get("cell_type") != "code":
            continue
        earlier = _parse_cell(_source(cell))
        for k, stmt in enumerate(earlier.body if earlier else []):
            for name, node in _definitions(stmt):
                found[name] = ((c, k), node)
    wanted, taken = list(_global_reads(tree)), {}
    while wanted:
        name = wanted.pop()
        if name in taken or name not in found:
            continue
        taken[name] = found[name]
        wanted += _global_reads(ast.Module(body=[found[name][1]], type_ignores=[]))
    unique = {id(node): (order, node) for order, node in taken.values()}
    return [
        ast.unparse(ast.fix_missing_locations(ast.Module(body=[node], type_ignores=[])))
        for _, node in sorted(unique.values(), key=lambda item: item[0])
    ]


def _prepare(
    g: SubmissionGrade,
    nb,
    text: str,
    filename: str,
    exercises: list[Exercise],
    cases_of: dict,
    encoded_cases: dict,
    run_notebooks: bool,
) -> dict:
    """The worker's job for one readable submission (exercises it cannot grade go in ``g``)."""
    job_exercises = []
    for ex in exercises:
        index = _exercise_cell(nb, ex)
        source, helpers = None, []
        if index is None:
            problem = (
                f"no exercise cell found (the cell starting '# EXERCISE {ex.id}', "
                f"defining {ex.function}())"
            )
        else:
            source = _source(nb.get("cells", [])[index])
            helpers = _helpers(nb, index, source)
            # a helper from an earlier cell must not smuggle the forbidden reference in
            used = forbidden_in_source("\n".join([*helpers, source]), ex.forbidden, ex.function)
            problem = forbidden_message(used) if used else None
        if problem:
            g.checks[ex.id] = CheckResult(
                ex, [CaseResult(c, False, problem) for c in cases_of[ex.id]], problem=problem
            )
            g.issues.append(f"{ex.id}: {problem}")
            continue
        job_exercises.append(
            {
                "id": ex.id,
                "function": ex.function,
                "source": source,
                "helpers": helpers,
                "cases": encoded_cases[ex.id],
                "hidden_from": sum(not c.hidden for c in cases_of[ex.id]),
            }
        )
    code_cells = [
        [i + 1, _source(c)]
        for i, c in enumerate(nb.get("cells", []))
        if c.get("cell_type") == "code" and _source(c).strip()
    ]
    notebook = {"name": filename, "text": text, "cells": code_cells} if run_notebooks else None
    return {"exercises": job_exercises, "notebook": notebook}


# ---------------------------------------------------------------- workers


class _Worker:
    def __init__(self, env: dict, cwd: str, log):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vizlib.exercises._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.buffer = b""
        self.ready = False
        self.job: int | None = None
        self.sent_at = 0.0

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def send(self, job_index: int, job: dict) -> None:
        self.job, self.sent_at = job_index, time.monotonic()
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


def _run_jobs(jobs: list[dict], n_workers: int, budget: float, tmp: str, quiet: bool) -> list[dict]:
    """Run ``jobs`` on ``n_workers`` worker processes; one report per job, in order."""
    import vizlib

    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    package_root = str(Path(vizlib.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    reports: list[dict | None] = [None] * len(jobs)
    pending = deque(range(len(jobs)))
    log = open(os.path.join(tmp, "workers.log"), "ab")  # noqa: SIM115 - closed below
    workers = [_Worker(env, tmp, log) for _ in range(max(1, min(n_workers, len(jobs))))]
    done = 0
    try:
        while done < len(jobs):
            for w in workers:
                if w.ready and w.job is None and pending:
                    w.send(pending[0], jobs[pending.popleft()])
            readable, _, _ = select.select(workers, [], [], 1.0)
            for w in list(workers):
                lost = None
                if w in readable:
                    chunk = os.read(w.fileno(), 1 << 20)
                    if not chunk:
                        lost = "the grading worker died"
                    w.buffer += chunk
                    while b"\n" in w.buffer:
                        line, w.buffer = w.buffer.split(b"\n", 1)
                        try:
                            message = json.loads(line)
                        except ValueError:
                            message = {"worker_error": "the grading worker sent a garbled report"}
                        if message.get("ready"):
                            w.ready = True
                        elif w.job is not None:
                            reports[w.job] = message
                            done += 1
                            if not quiet:
                                print(f"  graded {done}/{len(jobs)}", file=sys.stderr, flush=True)
                            w.job = None
                if w.job is not None and time.monotonic() - w.sent_at > budget:
                    lost = "the grading worker stopped answering"
                if lost:
                    if w.job is not None:
                        reports[w.job] = {"worker_error": lost}
                        done += 1
                    elif not w.ready:
                        raise RuntimeError(
                            f"a grading worker failed to start; see {tmp}/workers.log"
                        )
                    w.kill()
                    workers[workers.index(w)] = _Worker(env, tmp, log)
    finally:
        for w in workers:
            w.kill()
        log.close()
    return [r or {"worker_error": "no report"} for r in reports]


# ---------------------------------------------------------------- judging


def _decode(data):
    from .wire import Opaque, decode

    try:
        return decode(data)
    except Exception:  # noqa: BLE001 - untrusted data: anything malformed is just wrong
        return Opaque("value", "a malformed value")


def _judge_exercise(
    ex: Exercise, cases: list, raw: dict, limits: Limits
) -> tuple[CheckResult, str | None]:
    """The CheckResult of one exercise from a worker's raw report (the answers to
    ``cases``, in order), and the issue to list."""
    outcomes: list[Outcome | None] = [None] * len(cases)
    load_error, loaded, finished = None, False, False
    memory = False
    for line in raw.get("lines", []):
        if not isinstance(line, dict):
            continue
        if "load_error" in line:
            load_error = str(line["load_error"])[:600]
            memory |= "MemoryError" in (line.get("types") or [])
        elif line.get("loaded"):
            loaded = True
        elif line.get("done"):
            finished = True
        elif isinstance(line.get("case"), int) and 0 <= line["case"] < len(cases):
            types = tuple(str(t) for t in (line.get("types") or []))
            error = line.get("error")
            memory |= "MemoryError" in types or "can't allocate memory" in str(error)
            changed = line.get("changed")
            outcomes[line["case"]] = Outcome(
                value=_decode(line.get("value")),
                error=None if error is None else str(error)[:600],
                error_types=types,
                line=line.get("line") if isinstance(line.get("line"), int) else None,
                changed_arg=changed if type(changed) is int and changed >= 0 else None,
            )
    status = raw.get("status")
    if status == "timeout":
        why = f"timed out after {limits.check_timeout} s"
    elif status == "flood":
        why = f"output flood: printed more than {limits.max_output_kb} KB"
    elif status == "too_large":
        why = "returned more data than the grader accepts"
    elif memory:
        why = f"ran out of memory (limit {limits.memory_mb} MB)"
    else:
        why = f"its process {raw.get('exit', 'ended')} before finishing"
    if memory and status is None:
        status = "memory"
    if load_error:
        problem = f"your cell failed to run: {load_error}"
        return CheckResult(
            ex, [CaseResult(c, False, problem) for c in cases], problem=problem
        ), problem
    if not loaded:
        problem = f"your cell did not finish running: {why}"
        return CheckResult(
            ex, [CaseResult(c, False, problem) for c in cases], problem=problem
        ), problem
    results = []
    for case, outcome in zip(cases, outcomes, strict=True):
        if outcome is None:
            outcome = Outcome(status=status or "died", error=f"did not finish: {why}")
        results.append(judge(case, outcome))
    issue = None if finished and not memory else why
    forged = raw.get("ignored")
    if isinstance(forged, int) and forged > 0:
        # lines no request asked for: written to the report pipe by the reader's code
        forged_issue = (
            f"wrote {forged} line{'s' if forged > 1 else ''} to the grader's report channel "
            "that answered no case asked (ignored)"
        )
        issue = f"{issue}; {forged_issue}" if issue else forged_issue
    return CheckResult(ex, results), issue


def _notebook_summary(nb: dict | None, limits: Limits) -> tuple[str, bool]:
    """A one-line account of the notebook run, and whether it is a problem."""
    if nb is None:
        return "not run", False
    where = f"cell {nb['cell']}" if nb.get("cell") else "startup"
    status = nb.get("status")
    if status == "ok":
        return f"runs ({nb.get('seconds', 0):.0f} s)", False
    if status == "error":
        return f"error in {where}: {nb.get('error', '')}", True
    if status == "timeout":
        return f"timed out in {where} after {limits.timeout} s", True
    if status == "died":
        return f"kernel died in {where}: {nb.get('error', '')}", True
    if status == "memory":
        return (
            f"out of memory in {where} (limit {limits.memory_mb} MB): {nb.get('error', '')}",
            True,
        )
    if status == "flood":
        return f"output flood in {where} ({nb.get('error') or 'too much output'})", True
    return f"{status}: {nb.get('error', '')}", True


def _events_issues(report: dict) -> list[str]:
    paths: list[str] = []
    blocks = list(report.get("exercises", {}).values()) + [report.get("notebook") or {}]
    for block in blocks:
        for event in block.get("events", []) if isinstance(block, dict) else []:
            if event.get("path") not in paths:
                paths.append(event.get("path"))
    if not paths:
        return []
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return [f"{_BLOCKED_WRITES}: {shown}"]


# ---------------------------------------------------------------- grading


def grade(
    submissions: Path,
    exercise_ids: list[str],
    *,
    limits: Limits = Limits(),
    jobs: int | None = None,
    profile: str = "smoke",
    run_notebooks: bool = True,
    exclude: Path | None = None,
    quiet: bool = True,
    secret: str | None = None,
    only: set[str] | None = None,
    weights: dict[str, dict[str, float]] | None = None,
) -> list[SubmissionGrade]:
    """Grade every ``*.ipynb`` under ``submissions``; returns one grade per notebook, by name.

    Args:
        submissions: the folder of submitted notebooks (searched recursively).
        exercise_ids: the exercises to grade (e.g. from :func:`exercise_ids_of`).
        limits: time, memory and output limits for each submission.
        jobs: submissions graded at once (default: the cores this process may use).
        profile: ``VIZLIB_PROFILE`` for the notebook runs (``smoke`` keeps training short).
        run_notebooks: also run each notebook top to bottom in a fresh kernel.
        exclude: a folder not to search (the results folder, when it is inside).
        secret: draw each exercise's hidden cases from it (:func:`~vizlib.exercises.spec.
            hidden_cases`: the bank's and those of a folder loaded with
            :func:`~vizlib.exercises.spec.load_hidden_folder`); None grades the public
            cases alone. The command line always passes one.
        weights: ``{exercise id: {"points": p, "hidden_share": h}}`` the assignment
            states (:func:`stated_weights_of`), over the bank's.
        only: grade these students only (names as in ``grades.csv``: the notebook's path
            under ``submissions`` without ``.ipynb``); ValueError naming any not found.
    """
    submissions = Path(submissions).resolve()
    if not submissions.is_dir():
        raise ValueError(f"submissions must be a folder, got {submissions}")
    weights = weights or {}
    exercises = [with_weights(get(i), **weights.get(i, {})) for i in exercise_ids]
    if not exercises:
        raise ValueError("no exercises to grade")
    from .wire import encode

    cases_of = {
        ex.id: ex.cases() + (hidden_cases(ex, secret) if secret is not None else [])
        for ex in exercises
    }
    encoded_cases = {ex.id: [encode(tuple(c.args)) for c in cases_of[ex.id]] for ex in exercises}
    paths = submission_paths(submissions, exclude)
    if only is not None:
        name_of = {p: p.relative_to(submissions).with_suffix("").as_posix() for p in paths}
        missing = sorted(set(only) - set(name_of.values()))
        if missing:
            raise ValueError(
                f"no submission named {', '.join(missing)} under {submissions} "
                "(a name is the notebook's path there, without .ipynb)"
            )
        paths = [p for p in paths if name_of[p] in only]
    grades: list[SubmissionGrade] = []
    job_list: list[dict] = []
    job_of: dict[int, int] = {}
    env = {
        "VIZLIB_PROFILE": profile,
        "VIZLIB_GRADING": "1",  # write_record writes nothing (it would aim at the checkout)
        "TQDM_DISABLE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    tmp = tempfile.mkdtemp(prefix="vizlib-grade-")
    try:
        for path in paths:
            student = path.relative_to(submissions).with_suffix("").as_posix()
            g = SubmissionGrade(student, str(path))
            grades.append(g)
            text, nb, unreadable = _read_submission(path)
            if not unreadable:
                try:
                    job = _prepare(
                        g, nb, text, path.name, exercises, cases_of, encoded_cases, run_notebooks
                    )
                except Exception as exc:  # noqa: BLE001 - a malformed notebook must not stop the class
                    unreadable = f"a malformed notebook: {type(exc).__name__}: {exc}"[:300]
            if unreadable:
                g.checks.clear()
                g.issues[:] = [unreadable]
                g.notebook = "not run: unreadable"
                for ex in exercises:
                    g.checks[ex.id] = CheckResult(
                        ex,
                        [CaseResult(c, False, unreadable) for c in cases_of[ex.id]],
                        problem=unreadable,
                    )
                continue
            job.update(
                {
                    "folder": os.path.join(tmp, f"s{len(job_list)}"),
                    "limits": {
                        "timeout": limits.timeout,
                        "check_timeout": limits.check_timeout,
                        "memory_mb": limits.memory_mb,
                        "max_output": limits.max_output_kb * 1024,
                    },
                    "env": env,
                }
            )
            job_of[len(grades) - 1] = len(job_list)
            job_list.append(job)
        if jobs:
            n_workers = jobs
        elif hasattr(os, "sched_getaffinity"):
            n_workers = len(os.sched_getaffinity(0))
        else:
            n_workers = os.cpu_count() or 1
        budget = limits.check_timeout * (len(exercises) + 1) + limits.timeout + 120
        reports = _run_jobs(job_list, n_workers, budget, tmp, quiet) if job_list else []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for gi, ji in job_of.items():
        g, report = grades[gi], reports[ji]
        if "worker_error" in report:
            g.issues.append(f"grading failed: {report['worker_error']}")
        for ex in exercises:
            if ex.id in g.checks:
                continue
            raw = report.get("exercises", {}).get(ex.id)
            if raw is None:
                problem = f"not graded: {report.get('worker_error', 'no result')}"
                g.checks[ex.id] = CheckResult(
                    ex, [CaseResult(c, False, problem) for c in cases_of[ex.id]], problem=problem
                )
                continue
            g.checks[ex.id], issue = _judge_exercise(ex, cases_of[ex.id], raw, limits)
            if issue:
                g.issues.append(f"{ex.id}: {issue}")
            if raw.get("output"):
                g.output[ex.id] = str(raw["output"])[:2000]
        g.checks = {ex.id: g.checks[ex.id] for ex in exercises}
        if run_notebooks:
            g.notebook, bad = _notebook_summary(report.get("notebook"), limits)
            if bad:
                g.issues.append(f"notebook: {g.notebook}")
        g.issues += _events_issues(report)
    return grades


# ---------------------------------------------------------------- results


def _safe_name(student: str) -> str:
    return re.sub(r"[^\w.-]", "_", student.replace("/", "__"))[:150] or "student"


# Control characters (a terminal's escape sequences among them) never reach a result file.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Characters that start Markdown (or MyST) markup anywhere in a line, and HTML.
_MARKUP = re.compile(r"([\\`*_\[\]<>&|~$])")
# What starts a heading, list, quote, rule or setext underline at the start of a line.
_LINE_START = re.compile(r"^(\s*)(#|[-+=]|\d+(?=[.)]))")


def _escape_start(m: re.Match) -> str:
    # "1." is escaped after the digits (a backslash before a digit escapes nothing)
    lead, mark = m.group(1), m.group(2)
    return lead + (mark + "\\" if mark[0].isdigit() else "\\" + mark)


def md_text(text: str) -> str:
    """Untrusted text (a file name, an exception's message) as one line of Markdown that
    shows as itself: markup, links, HTML and line breaks are escaped or removed."""
    text = _CONTROL.sub(" ", str(text).replace("\r", " ").replace("\n", " ")).strip()
    text = _MARKUP.sub(r"\\\1", text)
    return _LINE_START.sub(_escape_start, text, count=1)


def md_code_block(text: str) -> str:
    """Untrusted text as a fenced code block it cannot close: the fence is longer than any
    run of backticks inside."""
    text = _CONTROL.sub(" ", str(text).replace("\r\n", "\n").replace("\r", "\n"))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}\n"


# What a spreadsheet may read as a formula (OWASP's list), and the apostrophe itself, so
# that csv_text_value can undo csv_text exactly.
_ESCAPED_START = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_text(text: str) -> str:
    """A text field a spreadsheet will not run: one starting like a formula (``= + - @``,
    a tab or a carriage return) gets a leading apostrophe (OWASP's advice). One starting
    with an apostrophe gets one more, so :func:`csv_text_value` can undo it."""
    text = str(text)
    return "'" + text if text[:1] in _ESCAPED_START else text


def csv_text_value(cell: str) -> str:
    """The text :func:`csv_text` wrote ``cell`` from (a leading apostrophe dropped)."""
    return cell[1:] if cell.startswith("'") else cell


def sandbox_text(report: dict[str, dict[str, str]]) -> str:
    """Markdown: what the sandbox enforced on this machine (``sandbox.sandbox_report()``),
    rule by rule, for the exercise checks and the notebook kernel."""
    checks, kernel = report.get("checks", {}), report.get("kernel", {})
    lines = [
        "## What the sandbox enforced on this machine",
        "",
        "| rule | exercise checks | notebook kernel |",
        "|---|---|---|",
    ]
    for rule in dict.fromkeys([*checks, *kernel]):
        cells = [md_text(x) for x in (rule, checks.get(rule, "-"), kernel.get(rule, "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_header(exercise_ids: list[str]) -> list[str]:
    """The columns of ``grades.csv``."""
    return ["student", "file"] + list(exercise_ids) + ["total", "max", "notebook", "issues"]


def csv_row(g: SubmissionGrade, exercise_ids: list[str]) -> list[str]:
    """One student's row of ``grades.csv`` (what came from the submission escaped)."""
    return (
        [csv_text(g.student), csv_text(g.path)]
        + [f"{g.checks[i].score:g}" for i in exercise_ids]
        + [f"{g.total:g}", f"{g.max_points:g}", csv_text(g.notebook)]
        + [csv_text("; ".join(g.issues))]
    )


def table(grades: list[SubmissionGrade], exercise_ids: list[str]) -> str:
    """The grades as a Markdown table (readable as plain text too); what came from the
    submissions (names, errors) is escaped."""
    return _table_of_rows([csv_row(g, exercise_ids) for g in grades], exercise_ids, grades)


def _table_of_rows(
    rows: list[list[str]], exercise_ids: list[str], grades: list[SubmissionGrade] = ()
) -> str:
    """The Markdown table of ``grades.csv`` rows (a regrade merges rows, not grades); the
    points in its head are those the grades were judged on (the assignment's, if stated)."""
    exercises = [grades[0].checks[i].exercise if grades else get(i) for i in exercise_ids]
    n = len(exercises)
    head = ["student"] + [f"{ex.id} ({ex.points:g})" for ex in exercises]
    head += [f"total ({sum(ex.points for ex in exercises):g})", "notebook", "issues"]
    lines = [head, ["---"] * len(head)]
    for row in rows:
        student, scores = csv_text_value(row[0]), row[2 : 2 + n]
        total, notebook, issues = row[2 + n], csv_text_value(row[4 + n]), csv_text_value(row[5 + n])
        lines.append([md_text(student), *scores, total, md_text(notebook), md_text(issues or "—")])
    return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


_BLOCKED_WRITES = "tried to write outside its folder (blocked)"


def _for_the_student(issue: str) -> str:
    """An issue as the student's feedback shows it: the paths a submission tried to write
    are left out (its code chose them while it held a hidden case's inputs, so they could
    carry those out); the instructor's grades.csv and grades.md keep them."""
    if issue.startswith(_BLOCKED_WRITES + ":"):
        return _BLOCKED_WRITES + " (your instructor's grades list the paths)"
    return issue


def feedback(g: SubmissionGrade) -> str:
    """The feedback file of one student (Markdown; what came from the submission is escaped,
    and nothing its code chose while it held a hidden case's inputs is shown)."""
    parts = [
        f"# Feedback: {md_text(g.student)}\n",
        f"Total: **{g.total:g} of {g.max_points:g} points**.\n",
        f"Your notebook, run top to bottom in a fresh kernel: {md_text(g.notebook)}.\n",
    ]
    if g.issues:
        issues = "\n".join(f"- {md_text(_for_the_student(i))}" for i in g.issues)
        parts.append("Problems found:\n\n" + issues + "\n")
    for ex_id, result in g.checks.items():
        parts.append(f"## {ex_id}: {result.score:g} of {result.exercise.points:g} points\n")
        parts.append(md_code_block(result.report()))
        if g.output.get(ex_id):
            parts.append(
                "Your cell printed (first lines):\n\n" + md_code_block(g.output[ex_id][:1000])
            )
    return "\n".join(parts)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def weights_text(grades: list[SubmissionGrade], exercise_ids: list[str]) -> str:
    """How each exercise's points are shared among its public and hidden cases (Markdown),
    from the cases the grades were judged on (every student's are the same)."""
    if not grades:
        return ""
    lines = ["## How the points are shared", ""]
    for ex_id in exercise_ids:
        result = grades[0].checks[ex_id]
        ex, share = result.exercise, result.hidden_share
        public = [r.case for r in result.results if not r.case.hidden]
        hidden = [r.case for r in result.results if r.case.hidden]

        def part(cases, points, kind):
            text = f"{len(cases)} {kind} case{'s' if len(cases) != 1 else ''}, "
            text += f"{points:g} points"
            if len({c.weight for c in cases}) > 1:
                text += " (weights " + ", ".join(f"{c.weight:g}" for c in cases) + ")"
            return text

        line = f"- {md_text(ex.id)} ({ex.points:g} points): {part(public, ex.points * (1 - share), 'public')}"
        if hidden:
            line += f"; {part(hidden, ex.points * share, 'hidden')}"
        else:
            line += "; no hidden cases (a table of the public answers earns all its points)"
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_results(
    grades: list[SubmissionGrade], exercise_ids: list[str], out: Path, note: str = ""
) -> None:
    """Write ``grades.csv``, ``grades.md`` and ``feedback/<student>.md`` under ``out``
    (rewritten). ``grades.md`` also says how each exercise's points are shared among its
    cases (:func:`weights_text`), then ``note`` (e.g. which secret drew the hidden cases)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [csv_row(g, exercise_ids) for g in grades]
    _write_tables(rows, grades, exercise_ids, out, note)
    fb = out / "feedback"
    if fb.is_dir():
        shutil.rmtree(fb)
    fb.mkdir()
    for g in grades:
        _write(fb / f"{_safe_name(g.student)}.md", feedback(g))


def gradescope_results(g: SubmissionGrade) -> dict:
    """One submission's grade in Gradescope's autograder format (the ``results.json`` its
    ``run_autograder`` writes): a total ``score`` and one test per exercise, whose
    ``output`` is the student's feedback for it (hidden cases say only passed or failed)."""
    tests = []
    for ex_id, result in g.checks.items():
        tests.append(
            {
                "name": ex_id,
                "score": result.score,
                "max_score": result.exercise.points,
                "output": result.report(),
                "visibility": "visible",
            }
        )
    notes = [f"Your notebook, run top to bottom in a fresh kernel: {g.notebook}."]
    notes += [_for_the_student(i) for i in g.issues]
    return {"score": g.total, "output": "\n".join(notes), "tests": tests}


def _write_tables(rows, grades, exercise_ids, out: Path, note: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(csv_header(exercise_ids))
    writer.writerows(rows)
    _write(out / "grades.csv", buffer.getvalue())
    extra = "\n".join(t for t in (weights_text(grades, exercise_ids), note) if t)
    _write(
        out / "grades.md",
        "# Grades\n\n"
        + _table_of_rows(rows, exercise_ids, grades)
        + ("\n" + extra if extra else ""),
    )


def merge_results(
    grades: list[SubmissionGrade], exercise_ids: list[str], out: Path, note: str = ""
) -> None:
    """A regrade: put ``grades`` (some students, graded again) into the results already
    under ``out``. Their rows of ``grades.csv`` and ``grades.md`` are replaced (a student
    new to the class is added at the end), their feedback files rewritten; every other
    student's row and feedback stay as they were."""
    out = Path(out)
    path = out / "grades.csv"
    if not path.is_file():
        raise ValueError(f"no {path} to regrade into: grade the whole class first")
    with open(path, newline="", encoding="utf-8") as f:
        old = list(csv.reader(f))
    if not old or old[0] != csv_header(exercise_ids):
        raise ValueError(
            f"{path} grades other exercises ({', '.join(old[0][2:-4]) if old else 'none'}); "
            f"a regrade grades the same ones ({', '.join(exercise_ids)})"
        )
    new = {g.student: csv_row(g, exercise_ids) for g in grades}
    rows = [new.pop(csv_text_value(row[0]), row) for row in old[1:]]
    rows += list(new.values())
    regraded = ", ".join(g.student for g in grades)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    note = (note + "\n" if note else "") + md_text(f"Regraded on {stamp}: {regraded}.") + "\n"
    _write_tables(rows, grades, exercise_ids, out, note)
    fb = out / "feedback"
    fb.mkdir(exist_ok=True)
    for g in grades:
        _write(fb / f"{_safe_name(g.student)}.md", feedback(g))


def submission_paths(submissions: Path, exclude: Path | None = None) -> list[Path]:
    """The notebooks to grade under ``submissions``, sorted (Jupyter's checkpoints, links
    and anything under ``exclude`` left out)."""
    submissions = Path(submissions).resolve()
    return sorted(
        p
        for p in submissions.rglob("*.ipynb")
        if p.is_file()
        and not p.is_symlink()
        and ".ipynb_checkpoints" not in p.parts
        and not (exclude and Path(exclude).resolve() in p.parents)
    )


def _exercise_ids(args) -> list[str]:
    """The exercise ids the command line asks for; ValueError saying what is wrong."""
    if args.assignment:
        if not args.assignment.is_file():
            raise ValueError(f"no assignment notebook {args.assignment}")
        import nbformat

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nbformat.read(str(args.assignment), as_version=4)
        except Exception as exc:  # noqa: BLE001 - nbformat's many ways to reject a file
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise ValueError(f"cannot read the assignment {args.assignment}: {reason}") from None
        ids = exercise_ids_of(args.assignment)
    else:
        ids = [s.strip() for s in args.exercises.split(",") if s.strip()]
        if not ids:
            raise ValueError("--exercises names no exercise (give e.g. --exercises box_area,iou)")
    for ex_id in ids:
        get(ex_id)  # ValueError naming the known ones
    return ids


def _secret(args) -> tuple[str, str | None]:
    """(secret, where it came from): ``--secret-file``, else a new random one (source None:
    the caller saves it once every submission has run).

    Never an option or an environment variable: a submission's sandbox may read other
    processes' command lines and environments under ``/proc`` (issue 15, item 2), while
    Landlock keeps it from reading a file outside the system folders."""
    if args.secret_file is not None:
        try:
            secret = args.secret_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the secret file {args.secret_file}: {exc}") from None
        if not secret:
            raise ValueError(f"the secret file {args.secret_file} is empty")
        return secret, f"the secret in {args.secret_file}"
    return secrets.token_hex(16), None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vizlib.exercises.grade",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("submissions", type=Path, help="folder of submitted notebooks")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--assignment",
        type=Path,
        help="the assignment notebook (master or student version): its exercises are graded",
    )
    which.add_argument("--exercises", help="comma-separated exercise ids to grade")
    parser.add_argument(
        "--out", type=Path, default=Path("grades"), help="results folder (default grades/)"
    )
    parser.add_argument(
        "--jobs", type=_positive_int, default=None, help="submissions at once (default: cores)"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_int,
        default=Limits.timeout,
        help="seconds for the whole notebook",
    )
    parser.add_argument(
        "--check-timeout",
        type=_positive_int,
        default=Limits.check_timeout,
        help="seconds for one exercise's cases",
    )
    parser.add_argument(
        "--memory-mb", type=_positive_int, default=Limits.memory_mb, help="memory per process"
    )
    parser.add_argument(
        "--max-output-kb",
        type=_positive_int,
        default=Limits.max_output_kb,
        help="output one process may print",
    )
    parser.add_argument(
        "--profile",
        default="smoke",
        choices=("smoke", "full"),
        help="VIZLIB_PROFILE for the notebook runs (default smoke)",
    )
    parser.add_argument("--no-run", action="store_true", help="do not run the whole notebooks")
    parser.add_argument(
        "--secret-file",
        type=Path,
        help="file holding the secret that draws the hidden cases (default: a new random "
        "secret, saved in OUT/secret.txt for a regrade)",
    )
    parser.add_argument(
        "--only",
        metavar="NAMES",
        help="regrade these students only (comma-separated names, as in grades.csv) into "
        "the results already in OUT, with the secret of OUT/secret.txt unless --secret-file",
    )
    parser.add_argument(
        "--gradescope-json",
        type=Path,
        metavar="FILE",
        help="also write the grade in Gradescope's results.json format (one submission "
        "only: what Gradescope's run_autograder does; see vizlib.exercises.gradescope)",
    )
    parser.add_argument(
        "--hidden",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of *.py files adding hidden cases (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        ids = _exercise_ids(args)
        weights = stated_weights_of(args.assignment) if args.assignment else {}
        if not args.submissions.is_dir():
            raise ValueError(
                f"no folder {args.submissions} (the folder of submitted notebooks)"
                if not args.submissions.exists()
                else f"{args.submissions} is not a folder (give the folder of submitted notebooks)"
            )
        for folder in args.hidden:
            load_hidden_folder(folder)
        only = None
        if args.only is not None:
            only = {n.strip() for n in args.only.split(",") if n.strip()}
            if not only:
                raise ValueError("--only names no student (give e.g. --only alice,bob)")
            if args.secret_file is None:  # the same hidden cases as the class had
                args.secret_file = args.out / "secret.txt"
                if not args.secret_file.is_file():
                    raise ValueError(
                        f"a regrade needs the secret of the class's run: no {args.secret_file} "
                        "(give --secret-file)"
                    )
        secret, secret_source = _secret(args)
        for ex_id in ids:  # a generator that fails says so now, in one line
            hidden_cases(get(ex_id), secret)
    except ValueError as exc:  # the instructor's mistake: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    limits = Limits(args.timeout, args.check_timeout, args.memory_mb, args.max_output_kb)
    found = submission_paths(args.submissions, exclude=args.out)
    if not found and args.gradescope_json is None:
        # a mistyped folder, most likely: keep the last run's results rather than blank them
        print(
            f"warning: no notebooks (*.ipynb) under {args.submissions}: nothing graded, "
            f"{args.out}/ left as it was",
            file=sys.stderr,
        )
        return 1
    if args.gradescope_json is not None and len(found) != 1:
        message = (
            f"submit one notebook: found {len(found)} ({', '.join(p.name for p in found[:5])})"
        )
        print(f"error: {message}", file=sys.stderr)
        args.gradescope_json.parent.mkdir(parents=True, exist_ok=True)
        args.gradescope_json.write_text(json.dumps({"score": 0, "output": message}))
        return 2
    start = time.monotonic()
    try:
        grades = grade(
            args.submissions,
            ids,
            limits=limits,
            jobs=args.jobs,
            profile=args.profile,
            run_notebooks=not args.no_run,
            exclude=args.out,
            quiet=False,
            secret=secret,
            only=only,
            weights=weights,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if secret_source is None:  # a new secret: kept for a regrade of the same cases
        args.out.mkdir(parents=True, exist_ok=True)
        secret_path = args.out / "secret.txt"
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        secret_source = f"a new random secret, saved in {secret_path}"
    fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:12]
    note = (
        f"Hidden cases drawn from {secret_source} (fingerprint {fingerprint}); "
        "the same secret draws the same cases."
    )
    from .sandbox import sandbox_report

    report = sandbox_report()
    note_md = md_text(note) + "\n\n" + sandbox_text(report)
    if only is None:
        write_results(grades, ids, args.out, note=note_md)
    else:
        try:
            merge_results(grades, ids, args.out, note=note_md)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.gradescope_json is not None:
        args.gradescope_json.parent.mkdir(parents=True, exist_ok=True)
        _write(args.gradescope_json, json.dumps(gradescope_results(grades[0]), indent=1))
    print(table(grades, ids))
    print(note)
    weak = [
        f"{role}: {rule}: {text}"
        for role, rules in report.items()
        for rule, text in rules.items()
        if not text.startswith("enforced")
    ]
    if weak:
        print("The sandbox could not enforce everything on this machine:")
        print("\n".join(f"  - {line}" for line in weak))
    print(
        f"{len(grades)} notebooks graded in {time.monotonic() - start:.0f} s; results in "
        f"{args.out}/grades.csv, {args.out}/grades.md and {args.out}/feedback/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
