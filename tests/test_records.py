"""Run records: the source hash, write_record's rules, the table, and the staleness check
that fails when a lesson changed after its recorded full run."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import nbformat
import pytest

from vizlib import records
from vizlib.records import (
    lesson_source,
    read_records,
    records_table,
    source_hash,
    stale_records,
    write_record,
)

ROOT = Path(__file__).resolve().parents[1]


# -- the real check on this repository ------------------------------------------------


def test_no_lesson_changed_after_its_recorded_full_run():
    stale = stale_records(ROOT)
    assert not stale, "\n".join(
        f"{lesson}: {why}; re-run it in the full profile (tools/gpu_run.py) so that the "
        "published outputs match its source"
        for lesson, why in stale
    )


def test_every_record_is_complete():
    for r in read_records(ROOT):
        missing = {
            "lesson",
            "source_hash",
            "profile",
            "metrics",
            "target",
            "target_met",
            "train_seconds",
            "total_seconds",
            "device",
            "torch",
            "date",
        } - set(r)
        assert not missing, f"{r['_path']} lacks {sorted(missing)}"
        assert r["profile"] == "full", f"{r['_path']} comes from a {r['profile']!r} run"
        targets = records.record_targets(r)
        assert targets and all(t["metric"] in r["metrics"] for t in targets)
        assert r["target_met"] == all(records.target_met(r["metrics"], t) for t in targets)
        if "detections" in r:  # stored beside the record, from the same run
            stored = records.read_detections(r["lesson"], ROOT)
            assert stored["source_hash"] == r["source_hash"]
            assert stored["models"] and all(
                len(v) == len(stored["targets"]) for v in stored["models"].values()
            )


# -- on a temporary repository --------------------------------------------------------


def make_repo(tmp_path: Path, master: bool = False) -> Path:
    (tmp_path / "vizlib").mkdir(parents=True)
    (tmp_path / "vizlib" / "__init__.py").write_text("")
    (tmp_path / "lessons").mkdir()
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# FCN\nA lesson."),
            nbformat.v4.new_code_cell("x = 1\nprint(x)"),
        ]
    )
    nbformat.write(nb, tmp_path / "lessons" / "fcn.ipynb")
    if master:
        (tmp_path / "masters" / "lessons").mkdir(parents=True)
        nb.cells.append(nbformat.v4.new_code_cell("answer = 42  # only in the master"))
        nbformat.write(nb, tmp_path / "masters" / "lessons" / "fcn.ipynb")
    return tmp_path


def edit(path: Path, change) -> None:
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


TARGET = {"metric": "mIoU", "value": 0.5, "comparison": ">="}


@pytest.fixture
def full(monkeypatch):
    monkeypatch.setenv("VIZLIB_PROFILE", "full")


def test_source_hash_ignores_outputs_metadata_and_whitespace_but_not_edits(tmp_path):
    path = make_repo(tmp_path) / "lessons" / "fcn.ipynb"
    before = source_hash(path)
    assert before.startswith("sha256-v2:") and len(before) == 10 + 64

    def run_it(nb):  # what executing and re-saving does
        nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
        nb.cells[1].execution_count = 3
        nb.metadata["kernelspec"] = {"name": "python3"}
        nb.cells[1].metadata["tags"] = ["hide-input"]
        nb.cells[1].source = nb.cells[1].source.replace("\n", "  \r\n") + "\n\n"
        nb.cells.append(nbformat.v4.new_code_cell(""))

    edit(path, run_it)
    assert source_hash(path) == before

    edit(path, lambda nb: setattr(nb.cells[1], "source", "x = 2\nprint(x)"))
    assert source_hash(path) != before
    edit(path, lambda nb: setattr(nb.cells[1], "source", "x = 1\nprint(x)"))
    assert source_hash(path) == before
    edit(path, lambda nb: setattr(nb.cells[0], "source", "# FCN\nA lesson, edited."))
    assert source_hash(path) != before  # the published page shows markdown too


INSTALL = 'import sys\n\nif "google.colab" in sys.modules:\n    %pip install -q "vizlib=={}"\n'


def test_source_hash_ignores_the_colab_install_block_only(tmp_path):
    path = make_repo(tmp_path) / "lessons" / "fcn.ipynb"
    edit(path, lambda nb: nb.cells.insert(0, nbformat.v4.new_code_cell(INSTALL.format("0.1.0"))))
    before = source_hash(path)

    def release(nb):  # a new release pins another version, with a fallback under it
        nb.cells[0].source = INSTALL.format("0.2.0") + "    try:\n        import vizlib\n"
        nb.cells[0].source += "    except ImportError:\n\n        %pip install vizlib\n"

    edit(path, release)
    assert source_hash(path) == before
    # what follows the block counts again, and so does the guard itself
    edit(path, lambda nb: setattr(nb.cells[0], "source", nb.cells[0].source + "x = 3\n"))
    assert source_hash(path) != before
    edit(
        path,
        lambda nb: setattr(
            nb.cells[0], "source", INSTALL.format("0.2.0").replace("colab", "kaggle")
        ),
    )
    assert source_hash(path) != before
    # in a markdown cell the same text is prose and counts
    md = nbformat.v4.new_markdown_cell(INSTALL.format("0.1.0"))
    edit(path, lambda nb: nb.cells.__setitem__(0, md))
    before = source_hash(path)
    edit(path, lambda nb: setattr(nb.cells[0], "source", INSTALL.format("0.2.0")))
    assert source_hash(path) != before


def test_a_record_of_the_old_hash_scheme_is_stale_until_moved(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("rehash", ROOT / "tools" / "rehash_records.py")
    rehash = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rehash)

    root = make_repo(tmp_path)
    lesson = root / "lessons" / "fcn.ipynb"
    (root / "lessons" / "results").mkdir()
    for name in ("fcn", "old"):
        if name == "old":
            nbformat.write(nbformat.read(lesson, as_version=4), root / "lessons" / "old.ipynb")
        record = {"lesson": name, "source_hash": rehash.old_source_hash(lesson), "date": "d"}
        (root / "lessons" / "results" / f"{name}.json").write_text(json.dumps(record))
    edit(root / "lessons" / "old.ipynb", lambda nb: setattr(nb.cells[1], "source", "x = 2"))

    reasons = dict(stale_records(root))
    assert "scheme" in reasons["fcn"] and "scheme" in reasons["old"]
    assert dict(rehash.rehash(root, dry_run=True)) == {
        "fcn": "moved to sha256-v2",
        "old": "left: stale under the old scheme (re-run it)",
    }
    assert set(dict(stale_records(root))) == {"fcn", "old"}  # a dry run writes nothing
    rehash.rehash(root)
    assert set(dict(stale_records(root))) == {"old"}  # a stale record never becomes fresh
    moved = json.loads((root / "lessons" / "results" / "fcn.json").read_text())
    assert moved["source_hash"] == source_hash(lesson)
    assert moved["source_hash_migrated_from"].startswith("sha256:")
    assert dict(rehash.rehash(root))["fcn"] == "left: already sha256-v2"


def test_source_hash_rejects_what_is_not_a_notebook(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        source_hash(tmp_path / "none.ipynb")
    (tmp_path / "bad.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        source_hash(tmp_path / "bad.ipynb")


def test_lesson_source_prefers_the_master(tmp_path):
    root = make_repo(tmp_path)
    assert lesson_source("fcn", root) == root / "lessons" / "fcn.ipynb"
    root = make_repo(tmp_path / "with_master", master=True)
    assert lesson_source("lessons/fcn.ipynb", root) == root / "masters" / "lessons" / "fcn.ipynb"


def test_write_record_then_a_source_change_makes_it_stale(tmp_path, full, capsys):
    root = make_repo(tmp_path)
    path = write_record(
        "fcn",
        {"mIoU": 0.61, "pixel_acc": 0.9},
        TARGET,
        train_seconds=12.5,
        total_seconds=20.0,
        root=root,
    )
    assert path == root / "lessons" / "results" / "fcn.json"
    rec = json.loads(path.read_text())
    assert rec["source_hash"] == source_hash(root / "lessons" / "fcn.ipynb")
    assert rec["notebook"] == "lessons/fcn.ipynb"
    assert rec["target_met"] is True and rec["profile"] == "full"
    assert rec["train_seconds"] == 12.5 and rec["total_seconds"] == 20.0
    assert rec["device"] and rec["torch"] and rec["torchvision"] and rec["python"]
    assert "recorded in lessons/results/fcn.json" in capsys.readouterr().out
    assert stale_records(root) == []

    edit(
        root / "lessons" / "fcn.ipynb",
        lambda nb: nb.cells.append(nbformat.v4.new_code_cell("y = 2")),
    )
    ((lesson, why),) = stale_records(root)
    assert lesson == "fcn" and "changed after its recorded full run" in why
    assert "changed since" in str(records_table(root))


def test_with_a_master_the_master_is_what_counts(tmp_path, full):
    root = make_repo(tmp_path, master=True)
    write_record("fcn", {"mIoU": 0.4}, TARGET, train_seconds=1, total_seconds=2, root=root)
    assert (
        json.loads((root / "lessons/results/fcn.json").read_text())["notebook"]
        == "masters/lessons/fcn.ipynb"
    )
    # the student version is derived and may differ; the master may not
    edit(root / "lessons" / "fcn.ipynb", lambda nb: nb.cells.append(nbformat.v4.new_code_cell("z")))
    assert stale_records(root) == []
    edit(root / "masters" / "lessons" / "fcn.ipynb", lambda nb: nb.cells.pop())
    assert [lesson for lesson, _ in stale_records(root)] == ["fcn"]


def test_a_missing_notebook_makes_its_record_stale(tmp_path, full):
    root = make_repo(tmp_path)
    write_record("fcn", {"mIoU": 0.4}, TARGET, train_seconds=1, total_seconds=2, root=root)
    (root / "lessons" / "fcn.ipynb").unlink()
    assert "does not exist" in stale_records(root)[0][1]


def test_a_smoke_run_never_writes_a_record(tmp_path, monkeypatch, capsys):
    root = make_repo(tmp_path)
    monkeypatch.setenv("VIZLIB_PROFILE", "smoke")
    assert write_record("fcn", {"mIoU": 0.1}, TARGET, train_seconds=1, root=root) is None
    assert not (root / "lessons" / "results").exists()
    assert "'smoke' profile" in capsys.readouterr().out


def test_a_graded_run_never_writes_a_record(tmp_path, full, monkeypatch, capsys):
    root = make_repo(tmp_path)
    monkeypatch.setenv("VIZLIB_GRADING", "1")
    assert write_record("fcn", {"mIoU": 0.1}, TARGET, train_seconds=1, root=root) is None
    assert not (root / "lessons" / "results").exists()
    assert "being graded" in capsys.readouterr().out


def test_project_root_under_the_grader_is_never_the_checkout_vizlib_lives_in(tmp_path, monkeypatch):
    # A graded submission runs in a folder of its own; the sandbox denies it the
    # instructor's checkout, so reading another chapter's record there would crash a
    # correct notebook (it did: U-Net's comparison with the FCN chapter's record).
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VIZLIB_GRADING", raising=False)
    assert records.project_root() == ROOT  # found above vizlib's own files
    monkeypatch.setenv("VIZLIB_GRADING", "0")
    assert records.project_root() == ROOT
    monkeypatch.setenv("VIZLIB_GRADING", "1")
    assert records.project_root() is None
    repo = make_repo(tmp_path / "copy")  # a checkout in the submission's own folder counts
    monkeypatch.chdir(repo / "lessons")
    assert records.project_root() == repo


def test_a_cpu_run_does_not_replace_a_gpu_record(tmp_path, full, monkeypatch, capsys):
    root = make_repo(tmp_path)
    results = root / "lessons" / "results"
    results.mkdir()
    gpu = {"lesson": "fcn", "device": "NVIDIA H100", "device_type": "cuda"}
    (results / "fcn.json").write_text(json.dumps(gpu))
    monkeypatch.setattr(
        records, "environment", lambda: {"device": "cpu: x86_64", "device_type": "cpu"}
    )
    assert (
        write_record("fcn", {"mIoU": 0.7}, TARGET, train_seconds=1, total_seconds=2, root=root)
        is None
    )
    assert "kept the GPU record" in capsys.readouterr().out
    assert json.loads((results / "fcn.json").read_text()) == gpu
    assert (
        write_record(
            "fcn",
            {"mIoU": 0.7},
            TARGET,
            train_seconds=1,
            total_seconds=2,
            root=root,
            overwrite=True,
        )
        is not None
    )
    assert json.loads((results / "fcn.json").read_text())["device_type"] == "cpu"


@pytest.mark.parametrize(
    "metrics, target, match",
    [
        ({}, TARGET, "metrics"),
        ({"mIoU": float("nan")}, TARGET, "finite"),
        ({"mIoU": 0.5}, {"metric": "AP", "value": 0.5}, "not among the metrics"),
        ({"mIoU": 0.5}, {"metric": "mIoU", "value": 0.5, "comparison": "=="}, "comparison"),
        ({"mIoU": 0.5}, {"metric": "mIoU"}, "target must be"),
    ],
)
def test_write_record_rejects_bad_input(tmp_path, full, metrics, target, match):
    with pytest.raises(ValueError, match=match):
        write_record("fcn", metrics, target, train_seconds=1, root=make_repo(tmp_path))


def _evaluation(predictions, targets):
    """An Evaluation as evaluate_detection returns it, over a list-of-pairs dataset."""
    import torch

    from vizlib.evaluate.common import Evaluation

    dataset = [(torch.zeros(3, 8, 8), t) for t in targets]
    return Evaluation(
        "detection", {"bbox/AP": 0.5}, [0.0] * len(targets), "F1", predictions, dataset
    )


def test_a_detection_record_stores_its_detections_and_reads_them_back(tmp_path, full):
    import torch

    root = make_repo(tmp_path)
    targets = [
        {"boxes": torch.tensor([[1.0, 2.0, 5.0, 7.0]]), "labels": torch.tensor([3])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)},  # empty image
    ]
    preds = [
        {
            "boxes": torch.tensor([[1.004, 2.0, 5.0, 7.126]]),
            "scores": torch.tensor([0.912345678]),
            "labels": torch.tensor([3]),
        },
        {
            "boxes": torch.zeros(0, 4),
            "scores": torch.zeros(0),
            "labels": torch.zeros(0, dtype=torch.int64),
        },
    ]
    path = write_record(
        "fcn",
        {"mIoU": 0.6},
        TARGET,
        train_seconds=1,
        total_seconds=2,
        root=root,
        detections={"mine": _evaluation(preds, targets)},
    )
    rec = json.loads(path.read_text())
    assert rec["detections"] == "lessons/results/detections/fcn.json.gz"
    stored = records.read_detections("fcn", root)
    assert stored["source_hash"] == rec["source_hash"]
    assert torch.equal(stored["targets"][0]["boxes"], targets[0]["boxes"])
    assert stored["targets"][1]["boxes"].shape == (0, 4)
    got = stored["models"]["mine"]
    assert torch.allclose(got[0]["boxes"], torch.tensor([[1.0, 2.0, 5.0, 7.13]]))  # 0.01 px
    assert got[0]["scores"].item() == pytest.approx(0.91235) and got[0]["labels"].tolist() == [3]
    assert got[1]["boxes"].shape == (0, 4) and got[1]["scores"].shape == (0,)
    assert stale_records(root) == []
    # detections from another run than the record make it stale; so does a missing file
    edit(root / "lessons" / "fcn.ipynb", lambda nb: nb.cells.append(nbformat.v4.new_code_cell("y")))
    write_record("fcn", {"mIoU": 0.6}, TARGET, train_seconds=1, total_seconds=2, root=root)
    rec3 = json.loads(path.read_text())
    rec3["detections"] = rec["detections"]
    path.write_text(json.dumps(rec3))
    assert "come from another run" in stale_records(root)[0][1]
    (root / rec["detections"]).unlink()
    assert "missing or unreadable" in stale_records(root)[0][1]
    with pytest.raises(ValueError, match="no stored detections"):
        records.read_detections("fcn", root)


def test_detections_of_different_datasets_or_not_evaluations_are_refused(tmp_path, full):
    import torch

    root = make_repo(tmp_path)
    t = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}
    p = {
        "boxes": torch.zeros(0, 4),
        "scores": torch.zeros(0),
        "labels": torch.zeros(0, dtype=torch.int64),
    }
    for bad, word in [
        ({}, "non-empty dict"),
        ({"a": 1}, "evaluate_detection"),
        ({"a": _evaluation([p], [t]), "b": _evaluation([p, p], [t, t])}, "same dataset"),
    ]:
        with pytest.raises(ValueError, match=word):
            write_record("fcn", {"mIoU": 0.6}, TARGET, train_seconds=1, root=root, detections=bad)
    assert not (root / "lessons" / "results").exists()  # nothing written on bad input


def test_target_comparisons():
    assert records.target_met({"loss": 0.2}, {"metric": "loss", "value": 0.3, "comparison": "<="})
    assert not records.target_met({"AP": 0.2}, {"metric": "AP", "value": 0.3, "comparison": ">="})


def test_the_table_with_no_records_and_with_some(tmp_path, full):
    root = make_repo(tmp_path)
    (root / "_toc.yml").write_text("parts:\n  - chapters:\n    - file: lessons/fcn\n")
    empty = records_table(root)
    assert len(empty) == 0 and "No full runs recorded yet" in empty._repr_html_()
    write_record("fcn", {"mIoU": 0.61}, TARGET, train_seconds=95, total_seconds=130, root=root)
    table = records_table(root)
    html = table._repr_html_()
    assert '<a href="../lessons/fcn.html">fcn</a>' in html
    assert "mIoU 0.61" in html and "&gt;= 0.5" in html and "up to date" in html
    assert "2.2 min" in str(table)  # 130 s
    (root / "_toc.yml").write_text("parts: []\n")  # no page for it: no link that would break
    assert "<a href" not in records_table(root)._repr_html_()


def test_the_results_page_runs_and_is_listed_in_the_toc(monkeypatch):
    from IPython.core.inputtransformer2 import TransformerManager

    nb = nbformat.read(ROOT / "book" / "results.ipynb", as_version=4)
    monkeypatch.chdir(ROOT / "book")  # where the book build runs it
    namespace: dict = {}
    result = None
    for cell in nb.cells:
        if cell.cell_type == "code":
            code = TransformerManager().transform_cell(cell.source)  # %pip -> python
            *body, last = code.rstrip().split("\n")
            exec("\n".join(body), namespace)
            result = eval(last, namespace)
    assert isinstance(result, records.RecordsTable)
    assert len(result) == len(read_records(ROOT))
    assert "<table" in result._repr_html_() or "No full runs recorded yet" in result._repr_html_()
    assert "book/results" in (ROOT / "_toc.yml").read_text()


# -- tools/gpu_run.py: bringing a run back ---------------------------------------------


def _gpu_run():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_run", ROOT / "tools" / "gpu_run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_run", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _bundle(tmp_path: Path, root: Path, name: str = "fcn", error: bool = False) -> Path:
    """What a device call brings back: an executed notebook and the record it wrote."""
    bundle = tmp_path / "bundle"
    (bundle / "notebooks").mkdir(parents=True)
    (bundle / "results").mkdir()
    source = lesson_source(name, root)
    nb = nbformat.read(source, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="epoch 1/1  loss 0.1\n")]
    if error:
        code.outputs.append(
            nbformat.v4.new_output("error", ename="RuntimeError", evalue="CUDA", traceback=[])
        )
    nbformat.write(nb, bundle / "notebooks" / f"{name}.ipynb")
    write_record(name, {"mIoU": 0.7}, TARGET, train_seconds=60, total_seconds=90, root=root)
    (root / "lessons" / "results" / f"{name}.json").rename(bundle / "results" / f"{name}.json")
    return bundle


def test_collect_installs_an_executed_lesson_and_its_record(tmp_path, full):
    gpu_run = _gpu_run()
    root = make_repo(tmp_path / "repo")
    bundle = _bundle(tmp_path, root)
    rows = gpu_run.collect(bundle, root)
    assert [(r.lesson, r.status) for r in rows] == [("fcn", "installed")]
    installed = nbformat.read(root / "lessons" / "fcn.ipynb", as_version=4)
    assert installed.cells[1].outputs[0]["text"].startswith("epoch 1/1")
    assert (root / "lessons" / "results" / "fcn.json").is_file()
    assert stale_records(root) == []


def test_collect_refuses_a_stale_or_failed_run(tmp_path, full):
    gpu_run = _gpu_run()
    root = make_repo(tmp_path / "repo")
    bundle = _bundle(tmp_path, root)
    edit(
        root / "lessons" / "fcn.ipynb",
        lambda nb: nb.cells.append(nbformat.v4.new_code_cell("later = 1")),
    )
    rows = gpu_run.collect(bundle, root)
    assert rows[0].status == "refused" and "changed since this run" in rows[0].note
    assert not (root / "lessons" / "results" / "fcn.json").exists()

    root = make_repo(tmp_path / "repo2")
    failed = _bundle(tmp_path / "b2", root, error=True)
    with tarfile.open(tmp_path / "gpu_run.tar.gz", "w:gz") as tar:  # as the device packs it
        tar.add(failed / "notebooks", arcname="notebooks")
        tar.add(failed / "results", arcname="results")
    rows = gpu_run.collect(tmp_path / "gpu_run.tar.gz", root)
    assert rows[0].status == "refused" and "RuntimeError" in rows[0].note


def test_collect_with_a_master_regenerates_the_student_version(tmp_path, full):
    gpu_run = _gpu_run()
    root = make_repo(tmp_path / "repo", master=True)
    bundle = _bundle(tmp_path, root)
    rows = gpu_run.collect(bundle, root)
    assert rows[0].status == "installed", rows[0].note
    master = nbformat.read(root / "masters" / "lessons" / "fcn.ipynb", as_version=4)
    student = nbformat.read(root / "lessons" / "fcn.ipynb", as_version=4)
    assert master.cells[1].outputs and student.cells[1].outputs  # the run's outputs kept


def test_prepare_splits_lessons_into_calls_that_fit(tmp_path):
    gpu_run = _gpu_run()
    root = make_repo(tmp_path)
    paths = [root / "lessons" / f"l{i}.ipynb" for i in range(4)]
    (root / "lessons" / "results").mkdir()
    for i, p in enumerate(paths):
        (root / "lessons" / "results" / f"{p.stem}.json").write_text(
            json.dumps({"device_type": "cuda", "total_seconds": [300, 100, 250, 400][i]})
        )
    calls = gpu_run.plan_calls(paths, root, budget=540)
    assert [[p.stem for p in c] for c in calls] == [["l0", "l1"], ["l2"], ["l3"]]
    assert all(sum(gpu_run._recorded_seconds(p, root) for p in c) <= 540 for c in calls)


def test_several_targets_are_all_checked_and_stored_as_a_list(tmp_path, full):
    root = make_repo(tmp_path)
    metrics = {"mIoU": 0.8, "IoU star": 0.45, "IoU cross": 0.6}
    targets = [
        {"metric": "mIoU", "value": 0.75},
        {"metric": "IoU star", "value": 0.5},
        {"metric": "IoU cross", "value": 0.5},
    ]
    path = write_record("fcn", metrics, targets, train_seconds=1.0, total_seconds=2.0, root=root)
    rec = json.loads(path.read_text())
    assert [t["metric"] for t in rec["target"]] == ["mIoU", "IoU star", "IoU cross"]
    assert rec["target_met"] is False  # one class below its target fails the record
    assert records.record_targets(rec) == rec["target"]
    row = records_table(root).rows[0]
    assert row["met"] == "no (2 of 3)" and row["target"].endswith("and 2 more")
    metrics["IoU star"] = 0.5
    rec = json.loads(
        write_record("fcn", metrics, targets, train_seconds=1.0, root=root).read_text()
    )
    assert rec["target_met"] is True


@pytest.mark.parametrize(
    "bad", [[], [{"metric": "mIoU"}], [{"metric": "mIoU", "value": 0.5}] * 2, "mIoU"]
)
def test_bad_target_lists_are_refused(tmp_path, full, bad):
    root = make_repo(tmp_path)
    with pytest.raises(ValueError, match="target"):
        write_record("fcn", {"mIoU": 0.8}, bad, train_seconds=1.0, root=root)


def test_a_format_1_record_reads_as_one_target():
    assert records.record_targets({"target": {"metric": "m", "value": 1.0}}) == [
        {"metric": "m", "value": 1.0}
    ]
