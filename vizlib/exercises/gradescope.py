"""Gradescope's autograder: a zip that grades each submission with this grader.

    python -m vizlib.exercises.gradescope --assignment masters/book/exercises.ipynb \
        --out autograder.zip [--secret-file secret.txt] [--hidden DIR] [--no-run]

Upload the zip as a programming assignment's autograder ("Ubuntu" base image). It holds

- ``setup.sh``: installs the vizlib release this zip was made with, and what the grader
  needs (``vizlib[grade]==X.Y.Z``), once, when Gradescope builds the image;
- ``run_autograder``: for each submission, grades the one notebook the student handed in
  with ``python -m vizlib.exercises.grade`` (the same sandbox, checks and hidden cases as
  ``make grade``) and writes Gradescope's ``results.json``: one test per exercise, whose
  output is the student's feedback;
- the assignment notebook, the secret that draws the hidden cases (a new random one unless
  given: keep the zip to yourself) and your own hidden-case folders.

The student's code runs inside the grader's sandbox there too: it cannot read the secret
or the assignment in ``/autograder/source``. Everything under ``/autograder`` can be moved
with ``AUTOGRADER_ROOT`` (the tests run the script in a temporary folder).
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import sys
import zipfile
from pathlib import Path

__all__ = ["build_autograder", "main"]

SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image.
set -euo pipefail
apt-get update && apt-get install -y python3 python3-pip python3-venv
# newer images mark the system Python as managed elsewhere (PEP 668); older pips lack the flag
python3 -m pip install {requirement} || python3 -m pip install --break-system-packages {requirement}
"""

RUN = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission; the grade goes to results/results.json.
set -uo pipefail
root="${{AUTOGRADER_ROOT:-/autograder}}"
cd "$root/source"
python3 -m vizlib.exercises.grade "$root/submission" --assignment {assignment} \\
  --out "$root/work" --secret-file secret.txt {options} \\
  --gradescope-json "$root/results/results.json"
"""


def build_autograder(
    assignment: Path,
    out: Path,
    *,
    secret_file: Path | None = None,
    hidden: tuple[Path, ...] = (),
    run_notebooks: bool = True,
    requirement: str | None = None,
) -> list[str]:
    """Write the autograder zip at ``out``; returns the names it holds.

    Args:
        assignment: the assignment notebook (master or student version).
        out: the ``.zip`` to write.
        secret_file: the secret drawing the hidden cases (default: a new random one).
        hidden: folders of your own hidden cases (``*.py``), copied in.
        run_notebooks: also run each whole notebook (``--no-run`` when False).
        requirement: what ``setup.sh`` installs (default ``vizlib[grade]==<this version>``).
    """
    from .. import __version__

    assignment, out = Path(assignment), Path(out)
    if not assignment.is_file() or assignment.suffix != ".ipynb":
        raise ValueError(f"assignment must be a notebook (.ipynb), got {assignment}")
    if out.suffix != ".zip":
        raise ValueError(f"the autograder must be a .zip file, got {out}")
    if secret_file is not None:
        secret = Path(secret_file).read_text(encoding="utf-8").strip()
        if not secret:
            raise ValueError(f"the secret file {secret_file} is empty")
    else:
        secret = secrets.token_hex(16)
    folders = [Path(h) for h in hidden]
    for folder in folders:
        if not folder.is_dir():
            raise ValueError(f"no folder of hidden cases {folder}")
    options = [] if run_notebooks else ["--no-run"]
    options += [f"--hidden hidden/{i}" for i in range(len(folders))]
    requirement = requirement or f"vizlib[grade]=={__version__}"
    files = {
        "setup.sh": SETUP.format(requirement=shlex.quote(requirement)),
        "run_autograder": RUN.format(
            assignment=shlex.quote(assignment.name), options=" ".join(options)
        ),
        assignment.name: assignment.read_text(encoding="utf-8"),
        "secret.txt": secret + "\n",
    }
    for i, folder in enumerate(folders):
        for path in sorted(folder.glob("*.py")):
            files[f"hidden/{i}/{path.name}"] = path.read_text(encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o755 if name in ("setup.sh", "run_autograder") else 0o644) << 16
            zf.writestr(info, text)
    return list(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vizlib.exercises.gradescope",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--assignment", type=Path, required=True, help="the assignment notebook")
    parser.add_argument("--out", type=Path, default=Path("autograder.zip"), help="the zip")
    parser.add_argument("--secret-file", type=Path, help="the secret (default: a new one)")
    parser.add_argument("--hidden", type=Path, action="append", default=[], metavar="DIR")
    parser.add_argument("--no-run", action="store_true", help="do not run the whole notebooks")
    args = parser.parse_args(argv)
    try:
        names = build_autograder(
            args.assignment,
            args.out,
            secret_file=args.secret_file,
            hidden=tuple(args.hidden),
            run_notebooks=not args.no_run,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
