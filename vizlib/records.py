"""Run records: what a lesson's full run achieved, on what, and from which source.

A lesson notebook ends its full-profile run with :func:`write_record`, which writes
``lessons/results/<lesson>.json``: the metrics, the lesson's stated target and whether
it was met, train and total seconds, the device, the library versions, the date, and a
hash of the notebook's source cells. The book's results page shows every record as a
table (:func:`records_table`), and a test fails when a lesson's source changed after its
recorded run (:func:`stale_records`): the outputs stored in the notebook, which are the
ones the book publishes, would no longer match its code.

Which file is hashed: a lesson may keep its solution "master" in
``masters/lessons/<lesson>.ipynb`` and publish a student version derived from it in
``lessons/<lesson>.ipynb``; the master is the source then (:func:`lesson_source`).

Only a full run writes a record: in the smoke profile :func:`write_record` does nothing
but say so, so a CI run can never overwrite a real one; nor does it under the class
grader (``VIZLIB_GRADING=1``), whose sandbox may not write into the checkout. A record made
on a GPU is not replaced by one made on a CPU unless asked (``overwrite=True``). Under the
grader :func:`project_root` does not look above vizlib's own files either: the checkout
found there is the instructor's, which a submission may not read.

A detection chapter also hands :func:`write_record` its evaluations
(``detections={"SSD": evaluation, ...}``): every model's detections on the validation
set and the set's ground truth go to ``lessons/results/detections/<lesson>.json.gz``,
under the same source hash, so that the book's comparison page can score every detector
the same way (AP by size, TIDE's error breakdown) without training anything
(:func:`read_detections`).
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .evaluate.tables import ResultsTable

__all__ = [
    "COMPARISONS",
    "RECORD_FORMAT",
    "environment",
    "lesson_source",
    "project_root",
    "read_detections",
    "read_records",
    "records_table",
    "source_hash",
    "stale_records",
    "target_met",
    "write_record",
]

RECORD_FORMAT = 2  # 2: "target" is a list of targets (1: one dict)
COMPARISONS = (">=", ">", "<=", "<")
RESULTS = Path("lessons") / "results"
DETECTIONS = RESULTS / "detections"
# The source hash's scheme: "sha256" hashed the Colab install block too (until 2026-12-06;
# tools/rehash_records.py moved the records that were fresh under it).
HASH_SCHEME = "sha256-v2"


# -- where things are -----------------------------------------------------------------


def _is_root(path: Path) -> bool:
    return (path / "vizlib" / "__init__.py").is_file() and (path / "lessons").is_dir()


def _being_graded() -> bool:
    return os.environ.get("VIZLIB_GRADING", "").strip() not in ("", "0")


def project_root(start: str | os.PathLike | None = None) -> Path | None:
    """The book's repository root (it holds ``vizlib/`` and ``lessons/``), or None.

    Looked for above ``start`` (default: the working directory, which is ``lessons/``
    while a lesson runs), then above this file (vizlib imported from a checkout).
    ``None`` when vizlib was pip-installed and no checkout is around (Colab), and never
    the checkout vizlib lives in while a class is graded (``VIZLIB_GRADING=1``): a
    submission runs in its own folder, and the sandbox denies it the instructor's files,
    so a lesson that reads another chapter's record reads none instead of failing.
    """
    candidates = [Path(start) if start is not None else Path.cwd()]
    if start is None and not _being_graded():
        candidates.append(Path(__file__).resolve().parent)
    for base in candidates:
        base = base.resolve()
        for path in (base, *base.parents):
            if _is_root(path):
                return path
    return None


def _lesson_name(lesson: str | os.PathLike) -> str:
    name = Path(lesson).name
    name = name[: -len(".ipynb")] if name.endswith(".ipynb") else name
    if not name or name.startswith("."):
        raise ValueError(
            f"lesson must be a lesson's name like 'fcn' (or its notebook path), got {lesson!r}"
        )
    return name


def lesson_source(lesson: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """The notebook whose source a lesson's record hashes.

    The master ``masters/lessons/<lesson>.ipynb`` when it exists (the student version in
    ``lessons/`` is derived from it), else ``lessons/<lesson>.ipynb``. This is the one
    place that rule lives.
    """
    root = Path(root) if root is not None else project_root()
    if root is None:
        raise ValueError("not inside the book's repository (no folder with vizlib/ and lessons/)")
    name = _lesson_name(lesson)
    master = root / "masters" / "lessons" / f"{name}.ipynb"
    return master if master.is_file() else root / "lessons" / f"{name}.ipynb"


# -- the source hash --------------------------------------------------------------------


def _normalise(source) -> str:
    text = "".join(source) if isinstance(source, list) else str(source)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


# A notebook's first code cell installs vizlib when it runs in Colab:
#     if "google.colab" in sys.modules:
#         %pip install -q "vizlib==X.Y.Z"
#         ...
# That block says how a reader gets the library (tools/colab_install.py writes it, pinned
# to each release), not what the lesson runs: a new release must not make every recorded
# run stale. The hash sees the guard line only, never what is indented under it.
COLAB_GUARD = 'if "google.colab" in sys.modules:'


def _without_colab_install(text: str) -> str:
    out, inside = [], False
    for line in text.split("\n"):
        if inside and (line[:1] in (" ", "\t") or not line.strip()):
            continue  # the install block (blank lines inside it included)
        inside = line.startswith(COLAB_GUARD)
        out.append(COLAB_GUARD if inside else line)
    return "\n".join(out)


def source_hash(notebook: str | os.PathLike) -> str:
    """``"sha256-v2:<hex>"`` over the notebook's cell sources, in order.

    Only what a reader sees as the lesson counts: each cell's type and source (code,
    markdown and raw cells). Outputs, execution counts and metadata do not, nor do
    line endings, trailing spaces or empty cells, so executing or re-saving a notebook
    keeps its hash, and any edit to its text changes it, except inside the Colab install
    block (the lines under ``if "google.colab" in sys.modules:``), which a release
    rewrites to pin its version.
    """
    path = Path(notebook)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"notebook {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"notebook {path} is not valid JSON: {exc}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path} is not a notebook (no list of cells)")
    digest = hashlib.sha256()
    for cell in nb["cells"]:
        text = _normalise(cell.get("source", ""))
        if cell.get("cell_type") == "code":
            text = _without_colab_install(text)
        if not text:
            continue
        digest.update(str(cell.get("cell_type", "")).encode() + b"\0")
        digest.update(text.encode("utf-8") + b"\0")
    return HASH_SCHEME + ":" + digest.hexdigest()


# -- writing --------------------------------------------------------------------------


def environment() -> dict:
    """The device and versions a run used: device name, torch, torchvision, Python."""
    import torch

    try:
        import torchvision

        tv = torchvision.__version__
    except ImportError:  # pragma: no cover - torchvision is a requirement
        tv = None
    from . import __version__, device

    dev = device()
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        cpu = platform.processor() or platform.machine() or "unknown"
        name = f"{dev.type}: {cpu} ({os.cpu_count()} cores)"
    return {
        "device": name,
        "device_type": dev.type,
        "torch": torch.__version__,
        "torchvision": tv,
        "python": platform.python_version(),
        "vizlib": __version__,
    }


def target_met(metrics: dict, target: dict) -> bool:
    """Whether ``metrics[target["metric"]]`` satisfies the target's comparison."""
    value = metrics[target["metric"]]
    op = target["comparison"]
    return {
        ">=": value >= target["value"],
        ">": value > target["value"],
        "<=": value <= target["value"],
        "<": value < target["value"],
    }[op]


def _check_target(metrics: dict, target) -> dict:
    if (
        not isinstance(target, dict)
        or set(target) - {"metric", "value", "comparison"}
        or not {"metric", "value"} <= set(target)
    ):
        raise ValueError(
            "a target must be a dict {'metric': name, 'value': number, "
            f"'comparison': one of {COMPARISONS}}}, got {target!r}"
        )
    target = {"comparison": ">=", **target}
    if target["metric"] not in metrics:
        raise ValueError(
            f"target metric {target['metric']!r} is not among the metrics {sorted(metrics)}"
        )
    if target["comparison"] not in COMPARISONS:
        raise ValueError(
            f"target comparison must be one of {COMPARISONS}, got {target['comparison']!r}"
        )
    if not _is_number(target["value"]):
        raise ValueError(f"target value must be a finite number, got {target['value']!r}")
    target["value"] = float(target["value"])
    return target


def _check_targets(metrics: dict, targets) -> list[dict]:
    """One target (a dict) or several (a non-empty list of dicts), checked, as a list.

    A chapter states several targets when one number would hide a failure: every class's
    IoU, not only the mean (a model that paints only the stuff scores 3/8 mIoU)."""
    if isinstance(targets, dict):
        targets = [targets]
    if not isinstance(targets, (list, tuple)) or not targets:
        raise ValueError(
            "target must be a dict {'metric', 'value', 'comparison'} or a non-empty list "
            f"of them, got {targets!r}"
        )
    checked = [_check_target(metrics, t) for t in targets]
    names = [t["metric"] for t in checked]
    if len(set(names)) != len(names):
        raise ValueError(f"each target must name a different metric, got {names}")
    return checked


def record_targets(record: dict) -> list[dict]:
    """The targets of a record, as a list (records of format 1 held one dict)."""
    t = record.get("target", [])
    return [t] if isinstance(t, dict) else list(t)


def _target_line(metrics: dict, target: dict) -> str:
    met = target_met(metrics, target)
    return (
        f"{target['metric']} {metrics[target['metric']]:.4g} "
        f"(target {target['comparison']} {target['value']:g}: {'met' if met else 'NOT met'})"
    )


def _is_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _kernel_seconds() -> float | None:
    """Seconds since this process (the notebook's kernel) started."""
    try:
        import psutil

        return time.time() - psutil.Process().create_time()
    except Exception:  # pragma: no cover - psutil is a requirement; be safe anyway
        return None


def write_record(
    lesson: str,
    metrics: dict,
    target,
    *,
    train_seconds: float,
    total_seconds: float | None = None,
    notebook: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    overwrite: bool = False,
    detections: dict | None = None,
) -> Path | None:
    """Record a lesson's full run in ``lessons/results/<lesson>.json``.

    Args:
        lesson (str): the lesson's name, its notebook's stem (``"fcn"``).
        metrics (dict[str, float]): the lesson's evaluation results.
        target (dict or list of dict): the lesson's stated target, e.g.
            ``{"metric": "mIoU", "value": 0.6, "comparison": ">="}`` (comparison
            defaults to ``">="``; ``metric`` must be a key of ``metrics``), or a list
            of them, all of which must be met (e.g. one per class). The record always
            stores a list.
        train_seconds (float): time spent training (``history.seconds``).
        total_seconds (float, optional): the whole run; default: since the kernel started.
        notebook (path, optional): the notebook to hash; default :func:`lesson_source`.
        root (path, optional): the repository root; default :func:`project_root`.
        overwrite (bool): replace a GPU run's record with one from a CPU.
        detections (dict[str, Evaluation], optional): model name -> what
            :func:`vizlib.evaluate.evaluate_detection` returned for it, all on the same
            dataset; stored beside the record (see the module docstring).

    Returns:
        Path or None: the record written, or None when nothing was written (not the
        full profile; a graded run; not in the repository; a GPU record kept), with a
        printed reason.
    """
    from . import profile

    name = _lesson_name(lesson)
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError(f"metrics must be a non-empty dict of numbers, got {metrics!r}")
    clean = {}
    for k, v in metrics.items():
        if hasattr(v, "item"):
            v = v.item()
        if not _is_number(v):
            raise ValueError(f"metric {k!r} must be a finite number, got {v!r}")
        clean[str(k)] = float(v)
    targets = _check_targets(clean, target)
    if not _is_number(train_seconds) or train_seconds < 0:
        raise ValueError(f"train_seconds must be a number >= 0, got {train_seconds!r}")
    if total_seconds is None:
        total_seconds = _kernel_seconds()
    if total_seconds is not None and (not _is_number(total_seconds) or total_seconds < 0):
        raise ValueError(f"total_seconds must be a number >= 0, got {total_seconds!r}")
    if detections is not None:
        detections = _detections_payload(detections)

    met = all(target_met(clean, t) for t in targets)
    for t in targets[:-1]:
        print(_target_line(clean, t))
    summary = _target_line(clean, targets[-1])
    if len(targets) > 1:
        summary += f"; {'all' if met else 'NOT all'} {len(targets)} targets met"
    current = profile()
    if current != "full":
        print(
            f"{summary}; no record written: this is the {current!r} profile, and only a "
            "full run records its results"
        )
        return None
    if _being_graded():
        # the grader's sandbox: the checkout found through vizlib is the instructor's
        print(f"{summary}; no record written: this run is being graded")
        return None
    root = Path(root) if root is not None else project_root()
    if root is None:
        print(f"{summary}; no record written: not inside the book's repository")
        return None
    source = Path(notebook) if notebook is not None else lesson_source(name, root)
    env = environment()
    path = root / RESULTS / f"{name}.json"
    if path.is_file() and not overwrite and env["device_type"] != "cuda":
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            old = {}
        if old.get("device_type") == "cuda":
            print(
                f"{summary}; kept the GPU record {path.relative_to(root)} ({old.get('device')}): "
                "a CPU run does not replace it (overwrite=True would)"
            )
            return None
    try:
        rel_source = source.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel_source = str(source)
    digest = source_hash(source)
    record = {
        "record_format": RECORD_FORMAT,
        "lesson": name,
        "notebook": rel_source,
        "source_hash": digest,
        "profile": current,
        "metrics": clean,
        "target": targets,
        "target_met": met,
        "train_seconds": round(float(train_seconds), 2),
        "total_seconds": None if total_seconds is None else round(float(total_seconds), 2),
        **env,
        "date": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    }
    if detections is not None:
        record["detections"] = _write_detections(root, name, digest, detections).as_posix()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    train = f"train {train_seconds:.0f} s"
    total = f", total {total_seconds:.0f} s" if total_seconds is not None else ""
    print(f"{summary}; {train}{total} on {env['device']}; recorded in {path.relative_to(root)}")
    return path


# -- stored detections -----------------------------------------------------------------


def _rounded(tensor, digits: int) -> list:
    return [round(float(v), digits) for v in tensor.reshape(-1).tolist()]


def _boxes_list(boxes) -> list:
    # 0.01 px: far below what moves an IoU threshold on 64-pixel scenes; the file is a
    # third of full precision's size
    import torch

    boxes = torch.as_tensor(boxes).as_subclass(torch.Tensor).float().reshape(-1, 4)
    return [_rounded(b, 2) for b in boxes]


def _detections_payload(detections: dict) -> dict:
    """{"targets": [...], "models": {name: [...]}}: plain lists, checked and rounded."""
    from .evaluate.common import Evaluation

    if not isinstance(detections, dict) or not detections:
        raise ValueError(
            "detections must be a non-empty dict of model name -> the Evaluation that "
            f"vizlib.evaluate.evaluate_detection returned, got {detections!r}"
        )
    models, dataset, n = {}, None, None
    for model_name, evaluation in detections.items():
        if not isinstance(evaluation, Evaluation) or evaluation.task != "detection":
            raise ValueError(
                f"detections[{model_name!r}] must be what vizlib.evaluate.evaluate_detection "
                f"returns, got {type(evaluation).__name__}"
            )
        if n is None:
            dataset, n = evaluation.dataset, len(evaluation.predictions)
        elif len(evaluation.predictions) != n:
            raise ValueError(
                f"detections[{model_name!r}] has {len(evaluation.predictions)} images, the "
                f"first model {n}: every model must be evaluated on the same dataset"
            )
        models[str(model_name)] = [
            {
                "boxes": _boxes_list(p["boxes"]),
                "scores": _rounded(p["scores"], 5),
                "labels": [int(v) for v in p["labels"].reshape(-1).tolist()],
            }
            for p in evaluation.predictions
        ]
    targets = []
    for i in range(n):
        target = dataset[i][1]
        targets.append(
            {
                "boxes": _boxes_list(target["boxes"]),
                "labels": [int(v) for v in target["labels"].reshape(-1).tolist()],
            }
        )
    return {"targets": targets, "models": models}


def _write_detections(root: Path, lesson: str, digest: str, payload: dict) -> Path:
    rel = DETECTIONS / f"{lesson}.json.gz"
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"lesson": lesson, "source_hash": digest, **payload}
    tmp = path.with_name(f".{path.name}.tmp")
    # mtime=0: the same detections give the same bytes (no spurious git change)
    with gzip.GzipFile(tmp, "wb", mtime=0) as f:
        f.write(json.dumps(data, separators=(",", ":")).encode("utf-8"))
    os.replace(tmp, path)
    return rel


def read_detections(lesson: str, root: str | os.PathLike | None = None) -> dict:
    """A detection chapter's stored detections (see :func:`write_record`).

    Returns:
        dict: ``"lesson"``, ``"source_hash"`` (the lesson's, when it ran), ``"targets"``
        (per image ``{"boxes": Tensor[M, 4] (x1, y1, x2, y2), "labels": Tensor[M]}``) and
        ``"models"`` (name -> per image ``{"boxes": Tensor[N, 4], "scores": Tensor[N],
        "labels": Tensor[N]}``), the input form of :func:`vizlib.metrics.coco_evaluate`.
    """
    import torch

    name = _lesson_name(lesson)
    root = Path(root) if root is not None else project_root()
    if root is None:
        raise ValueError("read_detections needs the book's repository: none was found")
    path = root / DETECTIONS / f"{name}.json.gz"
    if not path.is_file():
        raise ValueError(
            f"no stored detections for lesson {name!r} ({path.relative_to(root)} is missing): "
            "a detection chapter writes them in its full-profile run"
        )
    with gzip.open(path, "rb") as f:
        data = json.loads(f.read().decode("utf-8"))

    def tensors(d: dict) -> dict:
        out = {"boxes": torch.tensor(d["boxes"], dtype=torch.float32).reshape(-1, 4)}
        if "scores" in d:
            out["scores"] = torch.tensor(d["scores"], dtype=torch.float32)
        out["labels"] = torch.tensor(d["labels"], dtype=torch.int64)
        return out

    return {
        "lesson": data["lesson"],
        "source_hash": data["source_hash"],
        "targets": [tensors(t) for t in data["targets"]],
        "models": {k: [tensors(p) for p in v] for k, v in data["models"].items()},
    }


# -- reading and checking ---------------------------------------------------------------


def read_records(root: str | os.PathLike | None = None) -> list[dict]:
    """Every record in ``lessons/results/``, sorted by lesson name (empty if none)."""
    root = Path(root) if root is not None else project_root()
    if root is None:
        return []
    records = []
    for path in sorted((root / RESULTS).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(record, dict) or "lesson" not in record:
            raise ValueError(f"{path} is not a run record (no 'lesson' key)")
        record["_path"] = str(path)
        records.append(record)
    return records


def _stale_reason(record: dict, root: Path) -> str | None:
    source = lesson_source(record["lesson"], root)
    if not source.is_file():
        return f"its notebook {source.relative_to(root)} does not exist"
    recorded = str(record.get("source_hash", ""))
    if not recorded.startswith(HASH_SCHEME + ":"):
        return (
            f"its source hash {recorded[:16]!r} is not of the scheme {HASH_SCHEME!r} "
            "(tools/rehash_records.py moves a record that was fresh under the old one)"
        )
    if recorded != source_hash(source):
        return (
            f"{source.relative_to(root)} changed after its recorded full run of "
            f"{record.get('date', '?')} on {record.get('device', '?')}"
        )
    if record.get("detections"):
        path = root / record["detections"]
        try:
            with gzip.open(path, "rb") as f:
                stored = json.loads(f.read().decode("utf-8")).get("source_hash")
        except (OSError, ValueError):
            return f"its detections {record['detections']} are missing or unreadable"
        if stored != recorded:
            return f"its detections {record['detections']} come from another run"
    return None


def stale_records(root: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """``(lesson, reason)`` for every record whose lesson source changed since the run.

    A stale record means the outputs stored in the published notebook came from other
    code: re-run the lesson in the full profile (``tools/gpu_run.py``).
    """
    root = Path(root) if root is not None else project_root()
    if root is None:
        return []
    out = []
    for record in read_records(root):
        reason = _stale_reason(record, root)
        if reason:
            out.append((record["lesson"], reason))
    return out


class RecordsTable(ResultsTable):
    """The records as a table (a :class:`~vizlib.evaluate.ResultsTable`): HTML in a
    notebook, aligned text in a terminal; each lesson links to its page in the book."""

    def __init__(self, records: list[dict], root: Path | None) -> None:
        self.root = root
        toc = root / "_toc.yml" if root is not None else None
        toc_text = toc.read_text(encoding="utf-8") if toc is not None and toc.is_file() else ""
        self.linked = set()  # lessons with a page in the book, so the link resolves
        rows = []
        for r in records:
            targets = record_targets(r)
            t = targets[0] if targets else {}  # the headline: the first target stated
            metric = t.get("metric")
            value = r.get("metrics", {}).get(metric)
            metrics = r.get("metrics", {})
            met = sum(1 for x in targets if x.get("metric") in metrics and target_met(metrics, x))
            stale = _stale_reason(r, root) if root is not None else None
            if f"lessons/{r['lesson']}" in toc_text:
                self.linked.add(r["lesson"])
            rows.append(
                {
                    "lesson": r["lesson"],
                    "result": f"{metric} {value:.3g}" if value is not None else "?",
                    "target": f"{t.get('comparison', '')} {t.get('value', '')}"
                    + (f" and {len(targets) - 1} more" if len(targets) > 1 else ""),
                    "met": ("yes" if r.get("target_met") else "no")
                    + (f" ({met} of {len(targets)})" if len(targets) > 1 else ""),
                    "train": _duration(r.get("train_seconds")),
                    "total": _duration(r.get("total_seconds")),
                    "device": str(r.get("device", "?")),
                    "torch": str(r.get("torch", "?")),
                    "date": str(r.get("date", "?"))[:10],
                    "source": "changed since" if stale else "up to date",
                }
            )
        if root is None:
            empty = (
                "The records live in the book's repository (lessons/results/); "
                "open this page from a checkout of it to see them."
            )
        else:
            empty = "No full runs recorded yet."
        super().__init__(rows, empty=empty)

    def cell_html(self, key: str, text: str) -> str:
        escaped = html.escape(text)
        if key == "lesson" and text in self.linked:  # its page in the built book
            return f'<a href="../lessons/{escaped}.html">{escaped}</a>'
        return escaped


def _duration(seconds) -> str:
    if seconds is None:
        return "?"
    seconds = float(seconds)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def records_table(root: str | os.PathLike | None = None) -> RecordsTable:
    """All records of ``lessons/results/`` as a table (shows in a notebook as HTML)."""
    root = Path(root) if root is not None else project_root()
    return RecordsTable(read_records(root) if root is not None else [], root)


if __name__ == "__main__":  # python -m vizlib.records: print the table and stale records
    print(records_table())
    for lesson, reason in stale_records():
        print(f"STALE {lesson}: {reason}", file=sys.stderr)
