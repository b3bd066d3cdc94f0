"""Write the student versions of the master notebooks.

    python -m vizlib.exercises.student                 # masters/ -> book/, lessons/ (the committed ones)
    python -m vizlib.exercises.student --out handout/  # the same files under handout/, to hand out
    python -m vizlib.exercises.student --check         # exit 1 if a committed student version is stale
    python -m vizlib.exercises.student --archive handout.zip   # one file to post on a course site

``masters/book/<page>.ipynb`` becomes ``<out>/book/<page>.ipynb`` and
``masters/lessons/<lesson>.ipynb`` becomes ``<out>/lessons/<lesson>.ipynb``: solutions
replaced by stubs that raise ``NotImplementedError``, exercise and check outputs cleared,
every other output kept (the lessons' outputs come from their recorded training run).
The archive holds the same files under one folder named for the release, and a
``HANDOUT.md`` saying how to open them: each notebook's first cell installs exactly that
vizlib release in Colab (``tools/colab_install.py`` pins it).
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

__all__ = [
    "master_paths",
    "render_student",
    "write_students",
    "stale_students",
    "write_archive",
    "main",
]

REPO = Path(__file__).resolve().parents[2]


def master_paths(masters: Path) -> list[Path]:
    """Every master notebook under ``masters`` (checkpoints excluded), sorted."""
    return sorted(p for p in Path(masters).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def render_student(master_path: Path) -> str:
    """The text of the student version of one master notebook (nbformat's JSON, newline-ended)."""
    import nbformat

    from .notebooks import lint_master, student_version

    master = nbformat.read(str(master_path), as_version=4)
    problems = lint_master(master)
    if problems:
        raise ValueError(f"{master_path}: " + "; ".join(problems))
    text = nbformat.writes(student_version(master))
    return text if text.endswith("\n") else text + "\n"


def write_students(masters: Path, out: Path) -> list[Path]:
    """Write the student version of every master under ``out``; returns the paths written."""
    written = []
    for path in master_paths(masters):
        target = Path(out) / path.relative_to(masters)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = render_student(path)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def stale_students(masters: Path, out: Path) -> list[str]:
    """The student versions under ``out`` that differ from what their master gives (or are missing)."""
    stale = []
    for path in master_paths(masters):
        target = Path(out) / path.relative_to(masters)
        if not target.exists() or target.read_text(encoding="utf-8") != render_student(path):
            stale.append(str(target))
    return stale


HANDOUT = """\
# Exercises of the book, vizlib {version}

Each notebook here is a chapter's student version: its exercises raise
`NotImplementedError` until you write them, and the check cell under each one says how
your function does on its cases.

- **In Colab:** File > Upload notebook, then Runtime > Change runtime type > GPU for the
  chapters under `lessons/`. The first cell installs vizlib {version}, the release these
  notebooks were made with; run the cells from the top.
- **On your machine:** `pip install vizlib=={version} jupyterlab`, then `jupyter lab` in
  this folder. Without a GPU, `VIZLIB_PROFILE=smoke jupyter lab` runs every cell in seconds
  (with tiny data: for trying the exercises, not for training).

Hand in the notebook file (`.ipynb`) with your solutions; keep its name.
"""


def write_archive(masters: Path, archive: Path) -> list[str]:
    """A zip at ``archive`` of every master's student version and a ``HANDOUT.md``, under
    one folder ``vizlib-exercises-<version>/``; returns the names it holds."""
    from .. import __version__

    archive = Path(archive)
    if archive.suffix != ".zip":
        raise ValueError(f"the archive must be a .zip file, got {str(archive)!r}")
    paths = master_paths(masters)
    if not paths:
        raise ValueError(f"no master notebooks under {masters}")
    top = f"vizlib-exercises-{__version__}"
    archive.parent.mkdir(parents=True, exist_ok=True)
    names = []
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/HANDOUT.md", HANDOUT.format(version=__version__))
        names.append(f"{top}/HANDOUT.md")
        for path in paths:
            name = f"{top}/{path.relative_to(masters).as_posix()}"
            zf.writestr(name, render_student(path))
            names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vizlib.exercises.student",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--masters",
        type=Path,
        default=REPO / "masters",
        help="folder of master notebooks (default: masters/ of the repository)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO,
        help="where the student versions go (default: the repository, i.e. book/ and lessons/)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a student version is missing or stale",
    )
    parser.add_argument(
        "--archive",
        type=Path,
        help="also write every student version into this .zip, with a HANDOUT.md, to post",
    )
    args = parser.parse_args(argv)
    if not args.masters.is_dir():
        parser.error(f"no masters folder at {args.masters}")
    if args.archive is not None and args.check:
        parser.error("--archive writes a file; --check writes nothing: give one of them")
    if args.check:
        stale = stale_students(args.masters, args.out)
        for path in stale:
            print(f"stale: {path} (run python -m vizlib.exercises.student)")
        return 1 if stale else 0
    for path in write_students(args.masters, args.out):
        print(f"wrote {path}")
    if args.archive is not None:
        try:
            names = write_archive(args.masters, args.archive)
        except ValueError as exc:
            parser.error(str(exc))
        print(f"wrote {args.archive}: {len(names) - 1} notebooks and HANDOUT.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
