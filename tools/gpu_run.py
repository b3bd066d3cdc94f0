"""Run chosen lessons in the full profile on the lent GPU machine, and bring them back.

The GPU machine is reached through the session's device tool (its ``run`` call), not
through a shell command, so this is two commands around one tool call:

1. ``prepare``: here, fill ``.gpu/`` (ignored by git) with the wheels the GPU machine
   lacks and the runner (``../shared/gpu/prepare.sh``) plus this project's device-side
   script, check that the carried tree fits, and print the exact ``run`` call(s)::

       .venv/bin/python tools/gpu_run.py prepare fcn unet

   prints, for example::

       run(command="bash .gpu/vizlib_run.sh masters/lessons/fcn.ipynb lessons/unet.ipynb",
           carry=[".gpu"], timeout_s=600)

   On the GPU machine that script installs the wheels, executes each notebook top to
   bottom in a fresh kernel with ``VIZLIB_PROFILE=full`` and ``VIZLIB_BOOK=1`` (plain
   text progress and self-contained figures: what the published book shows) and
   ``VIZLIB_RESUME=0`` (trained from scratch, never from an old checkpoint), and packs
   the executed notebooks, the records they wrote (``lessons/results/*.json``) and the
   log into one file, ``$OUT/gpu_run.tar.gz`` (the tool brings back at most 8 files).
   A lesson's master (``masters/lessons/<name>.ipynb``) runs when it exists, else the
   lesson itself (see ``vizlib.records.lesson_source``). One call may run 10 minutes:
   when the lessons' recorded times add up to more, ``prepare`` splits them into
   several calls.

2. ``collect``: with the folder the reply names as ``files_at`` (or the tarball)::

       .venv/bin/python tools/gpu_run.py collect /path/from/files_at

   For each executed notebook it checks that no cell raised, that its source cells are
   still exactly the lesson's current source (else the run is stale and is refused),
   and that its record is a full run whose hash matches; then it writes the executed
   notebook over the master (and regenerates the student version in ``lessons/`` with
   ``vizlib.exercises.student``) or over the lesson, and copies the record into
   ``lessons/results/``. ``--dry-run`` checks without writing. Commit the result.

``local`` runs the same lessons on this machine (CPU, or a local GPU) and collects them:
a CPU record stands until a GPU run replaces it (a CPU run never replaces a GPU record).

Give the machine back (the tool's ``give_back``) when done: its idle time counts.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vizlib.records import lesson_source, source_hash  # noqa: E402

CALL_SECONDS = 540  # of the 600 s a device call may run: setup and packing take the rest
DEFAULT_SECONDS = 180  # a lesson with no record yet: about two minutes on an H100, plus setup
CARRY_LIMIT = 64 * 2**20
BUNDLE = "gpu_run.tar.gz"

DEVICE_SCRIPT = r"""#!/usr/bin/env bash
# Written by tools/gpu_run.py prepare. On the GPU machine, from the project root:
#   bash .gpu/vizlib_run.sh NOTEBOOK.ipynb [...]
# Runs each notebook in the full profile and packs the executed copies, the records they
# wrote and the log into $OUT/gpu_run.tar.gz.
set -uo pipefail
bash .gpu/setup.sh || exit 1
work=$(mktemp -d)
mkdir -p "$work/notebooks" "$work/results"
stamp="$work/stamp"; touch "$stamp"
export VIZLIB_PROFILE=full VIZLIB_BOOK=1 VIZLIB_MODE=static VIZLIB_RESUME=0 PYTHONUNBUFFERED=1
python3 .gpu/run_notebooks.py --out "$work/notebooks" "$@" 2>&1 | tee "$work/run.log"
rc=${PIPESTATUS[0]}
if [ -d lessons/results ]; then
  find lessons/results -maxdepth 1 -name '*.json' -newer "$stamp" -exec cp {} "$work/results/" \;
fi
if [ -d lessons/results/detections ]; then
  mkdir -p "$work/results/detections"
  find lessons/results/detections -name '*.json.gz' -newer "$stamp" -exec cp {} "$work/results/detections/" \;
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$work/gpu.txt" 2>&1
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__)" >> "$work/gpu.txt" 2>&1
rm -f "$stamp"
tar -czf "${OUT:-.}/gpu_run.tar.gz" -C "$work" .
echo "packed $(ls "$work/notebooks" | wc -l) notebooks, $(ls "$work/results" | wc -l) records into gpu_run.tar.gz (rc $rc)"
exit "$rc"
"""


# -- prepare -------------------------------------------------------------------------------


def _resolve(lessons: list[str], root: Path) -> list[Path]:
    paths = []
    for name in lessons:
        path = lesson_source(name, root)
        if not path.is_file():
            raise SystemExit(
                f"no notebook for lesson {name!r}: looked for {path.relative_to(root)}"
            )
        paths.append(path)
    return paths


def _recorded_seconds(path: Path, root: Path) -> float:
    record = root / "lessons" / "results" / f"{path.stem}.json"
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        if data.get("device_type") == "cuda" and data.get("total_seconds"):
            return float(data["total_seconds"]) + 20  # a fresh kernel and imports
    except (OSError, ValueError):
        pass
    return DEFAULT_SECONDS


def plan_calls(paths: list[Path], root: Path, budget: float = CALL_SECONDS) -> list[list[Path]]:
    """Split notebooks into device calls that each fit ``budget`` seconds (first fit, in order)."""
    calls: list[list[Path]] = []
    used: list[float] = []
    for path in paths:
        seconds = _recorded_seconds(path, root)
        for i, total in enumerate(used):
            if total + seconds <= budget:
                calls[i].append(path)
                used[i] += seconds
                break
        else:
            calls.append([path])
            used.append(seconds)
    return calls


def carried_bytes(root: Path) -> int:
    """Bytes the device tool carries: tracked and untracked-unignored files, plus .gpu/."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    total = 0
    for name in out.decode().split("\0"):
        p = root / name
        if name and p.is_file():
            total += p.stat().st_size
    gpu = root / ".gpu"
    if gpu.is_dir():
        total += sum(p.stat().st_size for p in gpu.rglob("*") if p.is_file())
    return total


def prepare(
    lessons: list[str], root: Path, shared: Path, extra: list[str], skip_wheels: bool
) -> list[str]:
    paths = _resolve(lessons, root)
    script = shared / "prepare.sh"
    if not skip_wheels or not (root / ".gpu" / "whl").is_dir():
        if not script.is_file():
            raise SystemExit(
                f"{script} not found: pass --shared DIR (the folder with prepare.sh, "
                "setup.sh and run_notebooks.py)"
            )
        subprocess.run(["bash", str(script), *extra], cwd=root, check=True)
    device = root / ".gpu" / "vizlib_run.sh"
    device.write_text(DEVICE_SCRIPT, encoding="utf-8")
    size = carried_bytes(root)
    print(f"carried tree: {size / 2**20:.1f} MiB of {CARRY_LIMIT / 2**20:.0f} MiB")
    if size > CARRY_LIMIT:
        raise SystemExit(
            "the carried tree is over the limit: move large untracked files out of "
            "the working tree (or add them to .gitignore)"
        )
    commands = []
    for call in plan_calls(paths, root):
        rel = " ".join(shlex.quote(p.relative_to(root).as_posix()) for p in call)
        commands.append(f"bash .gpu/vizlib_run.sh {rel}")
    print(f"\n{len(commands)} device call(s); make each with the device tool, then collect:")
    for i, command in enumerate(commands, 1):
        print(
            f'\n[{i}/{len(commands)}] run(command={json.dumps(command)}, carry=[".gpu"], timeout_s=600)'
        )
        print("      then: .venv/bin/python tools/gpu_run.py collect <files_at of that reply>")
    print("\nFinally give the machine back (give_back).")
    return commands


# -- collect -------------------------------------------------------------------------------


@dataclass
class Collected:
    lesson: str
    status: str  # "installed", "checked" (dry run) or "refused"
    note: str = ""


def _bundle_dir(source: Path, scratch: Path) -> Path:
    """The folder holding notebooks/ and results/: extracted from the tarball if needed."""
    source = Path(source)
    tarball = source if source.is_file() else source / BUNDLE
    if tarball.is_file():
        with tarfile.open(tarball) as tar:
            if sys.version_info >= (3, 12):
                tar.extractall(scratch, filter="data")
            else:  # pragma: no cover - 3.10/3.11: refuse paths that leave the folder
                for member in tar.getmembers():
                    if member.name.startswith(("/", "..")) or ".." in Path(member.name).parts:
                        raise SystemExit(f"unsafe path in {tarball}: {member.name}")
                tar.extractall(scratch)
        return scratch
    if (source / "notebooks").is_dir():
        return source
    raise SystemExit(f"{source}: neither {BUNDLE} nor a folder with notebooks/ in it")


def _errors(nb: dict) -> list[str]:
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {i}: {out.get('ename')}: {out.get('evalue', '')[:200]}")
    return found


def collect(source: Path, root: Path, dry_run: bool = False) -> list[Collected]:
    """Check and install executed notebooks and their records; see the module docstring."""
    import nbformat

    report = []
    with tempfile.TemporaryDirectory() as scratch:
        bundle = _bundle_dir(Path(source), Path(scratch))
        log = bundle / "run.log"
        if log.is_file():
            print(log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1])
        gpu = bundle / "gpu.txt"
        if gpu.is_file():
            print("device:", " / ".join(gpu.read_text().split("\n")[:2]))
        for executed in sorted((bundle / "notebooks").glob("*.ipynb")):
            name = executed.stem
            target = lesson_source(name, root)
            nb = json.loads(executed.read_text(encoding="utf-8"))
            problems = _errors(nb)
            if not target.is_file():
                problems.append(f"no such lesson here ({target.relative_to(root)})")
            elif source_hash(executed) != source_hash(target):
                problems.append(f"{target.relative_to(root)} changed since this run: run it again")
            record_path = bundle / "results" / f"{name}.json"
            record = None
            if record_path.is_file():
                record = json.loads(record_path.read_text(encoding="utf-8"))
                if record.get("profile") != "full":
                    problems.append(f"its record is from the {record.get('profile')!r} profile")
                if record.get("source_hash") != source_hash(executed):
                    problems.append("its record was written by other source cells")
                if (
                    record.get("detections")
                    and not (bundle / "results" / "detections" / f"{name}.json.gz").is_file()
                ):
                    problems.append(f"its detections ({record['detections']}) did not come back")
            if problems:
                report.append(Collected(name, "refused", "; ".join(problems)))
                continue
            note = (
                f"{record['device']}, {record.get('total_seconds')} s"
                if record
                else "no record: does the lesson call vizlib.records.write_record at its end?"
            )
            if record and record.get("device_type") != "cuda":
                note += " (not a GPU run)"
            if dry_run:
                report.append(Collected(name, "checked", note))
                continue
            nbformat.write(
                nbformat.reads(executed.read_text(encoding="utf-8"), as_version=4), target
            )
            written = [target.relative_to(root).as_posix()]
            if target.parts[-3] == "masters":
                from vizlib.exercises.student import render_student

                student = root / "lessons" / f"{name}.ipynb"
                student.write_text(render_student(target), encoding="utf-8")
                written.append(student.relative_to(root).as_posix())
            if record:
                results = root / "lessons" / "results"
                results.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(record_path, results / f"{name}.json")
                written.append(f"lessons/results/{name}.json")
                if record.get("detections"):
                    (results / "detections").mkdir(exist_ok=True)
                    shutil.copyfile(
                        bundle / "results" / "detections" / f"{name}.json.gz",
                        root / record["detections"],
                    )
                    written.append(record["detections"])
            report.append(Collected(name, "installed", f"{note}; wrote {', '.join(written)}"))
    for row in report:
        print(f"{row.status:9s} {row.lesson}: {row.note}")
    return report


# -- local ---------------------------------------------------------------------------------


def run_local(lessons: list[str], root: Path, shared: Path) -> list[Collected]:
    """Run the lessons here in the full profile, then collect them like a GPU run."""
    paths = _resolve(lessons, root)
    runner = shared / "run_notebooks.py"
    if not runner.is_file():
        raise SystemExit(f"{runner} not found: pass --shared DIR")
    with tempfile.TemporaryDirectory() as scratch:
        bundle = Path(scratch)
        (bundle / "notebooks").mkdir()
        (bundle / "results").mkdir()
        env = {
            **os.environ,
            "VIZLIB_PROFILE": "full",
            "VIZLIB_BOOK": "1",
            "VIZLIB_MODE": "static",
            "VIZLIB_RESUME": "0",
        }  # a recorded run trains from scratch, whatever checkpoints exist
        subprocess.run(
            [
                sys.executable,
                str(runner),
                "--out",
                str(bundle / "notebooks"),
                # a slow CPU may need more than run_notebooks' 1,800 s for one training cell
                *(
                    ["--timeout", os.environ["VIZLIB_CELL_TIMEOUT"]]
                    if "VIZLIB_CELL_TIMEOUT" in os.environ
                    else []
                ),
                *[str(p) for p in paths],
            ],
            cwd=root,
            env=env,
            check=False,
        )
        for path in paths:  # the notebooks wrote their records straight into lessons/results
            record = root / "lessons" / "results" / f"{path.stem}.json"
            if record.is_file():
                shutil.copyfile(record, bundle / "results" / record.name)
            detections = root / "lessons" / "results" / "detections" / f"{path.stem}.json.gz"
            if detections.is_file():
                (bundle / "results" / "detections").mkdir(exist_ok=True)
                shutil.copyfile(detections, bundle / "results" / "detections" / detections.name)
        return collect(bundle, root)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("prepare", help="fill .gpu/ and print the device tool's run call(s)")
    p.add_argument("lessons", nargs="+", help="lesson names (fcn) or notebook paths")
    p.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "gpu")
    p.add_argument("--extra", nargs="*", default=[], help="more wheels to carry (pip names)")
    p.add_argument("--skip-wheels", action="store_true", help="reuse .gpu/whl if it is there")
    c = sub.add_parser("collect", help="check and install what a device call brought back")
    c.add_argument("source", type=Path, help="the reply's files_at folder, or gpu_run.tar.gz")
    c.add_argument("--dry-run", action="store_true")
    loc = sub.add_parser("local", help="run the lessons here in the full profile and collect")
    loc.add_argument("lessons", nargs="+")
    loc.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "gpu")
    args = ap.parse_args(argv)
    if args.mode == "prepare":
        prepare(args.lessons, ROOT, args.shared, args.extra, args.skip_wheels)
        return 0
    rows = (
        collect(args.source, ROOT, args.dry_run)
        if args.mode == "collect"
        else run_local(args.lessons, ROOT, args.shared)
    )
    return 1 if any(r.status == "refused" for r in rows) or not rows else 0


if __name__ == "__main__":
    raise SystemExit(main())
