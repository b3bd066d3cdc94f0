"""vizlib.evaluate.comparison: the comparison page's rows, read from records and stored
detections - scored from the detections where they exist (AP by size with scaled boxes),
from the record where not, nothing for a chapter with no record; and on this repository,
the recomputed mAP equals each chapter's recorded one."""

from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest
import torch

from vizlib.evaluate.common import Evaluation
from vizlib.evaluate.comparison import BOOK_DETECTORS, Detector, comparison_rows, tide_rows
from vizlib.records import read_records, write_record

ROOT = Path(__file__).resolve().parents[1]


def _repo(tmp_path: Path, lessons: list[str]) -> Path:
    (tmp_path / "vizlib").mkdir()
    (tmp_path / "vizlib" / "__init__.py").write_text("")
    (tmp_path / "lessons").mkdir()
    for name in lessons:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"# {name}")])
        nbformat.write(nb, tmp_path / "lessons" / f"{name}.ipynb")
    return tmp_path


def _t(boxes, labels):
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def _p(boxes, scores, labels):
    return {**_t(boxes, labels), "scores": torch.tensor(scores, dtype=torch.float32)}


# two objects: 10 px wide (small even when scaled by 2: 20 < 32) and 30 px (scaled: 60, medium);
# a third image is empty
TARGETS = [_t([[2, 2, 12, 12]], [1]), _t([[20, 20, 50, 50]], [2]), _t([], [])]
PERFECT = [_p([[2, 2, 12, 12]], [0.9], [1]), _p([[20, 20, 50, 50]], [0.8], [2]), _p([], [], [])]
SMALL_ONLY = [_p([[2, 2, 12, 12]], [0.9], [1]), _p([], [], []), _p([], [], [])]


def _evaluation(predictions):
    dataset = [(torch.zeros(3, 64, 64), t) for t in TARGETS]
    return Evaluation("detection", {}, [0.0] * 3, "F1", predictions, dataset)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("VIZLIB_PROFILE", "full")
    root = _repo(tmp_path, ["ssd", "faster_rcnn"])
    metrics = {
        "mAP A": 0.5,
        "mAP B": 0.25,
        "ms_per_image batch 1 A": 4.0,
        "ms_per_image batch 32 A": 1.0,
        "ms_per_image A": 2.0,
        "parameters A": 1000.0,
        "train_seconds A": 60.0,
    }
    target = {"metric": "mAP A", "value": 0.1}
    write_record(
        "ssd",
        metrics,
        target,
        train_seconds=1,
        total_seconds=2,
        root=root,
        detections={"A": _evaluation(PERFECT), "B": _evaluation(SMALL_ONLY)},
    )
    old = {"mAP FPN": 0.7, "AP50 FPN": 0.9, "AP75 FPN": 0.8, "ms_per_image FPN": 20.0}
    write_record(
        "faster_rcnn",
        old,
        {"metric": "mAP FPN", "value": 0.5},
        train_seconds=1,
        total_seconds=2,
        root=root,
    )
    return root


DETECTORS = (
    Detector("ssd", "A", "Perfect", "one-stage", "anchors"),
    Detector("ssd", "B", "Small only", "one-stage", "anchors"),
    Detector("faster_rcnn", "FPN", "Old record", "two-stage", "anchors (RPN)"),
    Detector("yolo", "YOLO", "No record", "one-stage", "grid cells"),
)


def test_rows_come_from_detections_where_stored_and_from_the_record_where_not(repo):
    perfect, small_only, old = comparison_rows(repo, DETECTORS)  # "No record" has no row
    assert perfect["scored from"] == "detections" and perfect["mAP"] == pytest.approx(1.0)
    assert perfect["AP small"] == pytest.approx(1.0) and perfect["AP medium"] == pytest.approx(1.0)
    assert math.isnan(perfect["AP large"])  # no object that large
    assert perfect["mAP (record)"] == 0.5  # the record's own figure, kept for the check
    assert (
        perfect["ms/image batch 1"],
        perfect["ms/image batch 32"],
        perfect["ms/image (chapter)"],
    ) == (4, 1, 2)
    assert perfect["parameters"] == 1000 and perfect["train (s)"] == 60
    # the medium object is missed: AP small 1, AP medium 0 (with boxes scaled by 2; unscaled
    # both objects are "small" and AP small would be 0.5)
    assert small_only["AP small"] == pytest.approx(1.0) and small_only[
        "AP medium"
    ] == pytest.approx(0.0)
    assert math.isnan(small_only["ms/image batch 1"])
    unscaled = comparison_rows(repo, DETECTORS[1], size_scale=1.0)[0]
    assert unscaled["AP small"] == pytest.approx(0.5) and math.isnan(unscaled["AP medium"])
    assert old["scored from"] == "record" and old["mAP"] == 0.7 and old["AP50"] == 0.9
    assert math.isnan(old["AP small"]) and math.isnan(old["ms/image batch 1"])
    assert old["ms/image (chapter)"] == 20.0 and old["device"] and old["date"]


def test_tide_rows_cover_only_detectors_with_stored_detections(repo):
    perfect, small_only = tide_rows(repo, DETECTORS)
    assert perfect["detector"] == "Perfect" and perfect["AP50"] == pytest.approx(1.0)
    assert all(
        perfect[f"dAP {e}"] == pytest.approx(0.0)
        for e in ("Cls", "Loc", "Both", "Dupe", "Bkg", "Miss")
    )
    # half the classes' objects missed: AP50 0.5, and fixing the misses gives it all back
    assert small_only["AP50"] == pytest.approx(0.5)
    assert small_only["n Miss"] == 1 and small_only["dAP Miss"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"detectors": ()}, "detectors"),
        ({"detectors": ["ssd"]}, r"detectors\[0\]"),
        ({"size_scale": 0}, "size_scale"),
        ({"size_scale": "2"}, "size_scale"),
    ],
)
def test_bad_input(repo, kwargs, word):
    with pytest.raises(ValueError, match=word):
        comparison_rows(repo, **kwargs)


def test_on_this_repository_the_recomputed_map_is_each_chapters_own():
    rows = comparison_rows(ROOT)
    lessons = {r["lesson"] for r in read_records(ROOT)}
    assert {r["lesson"] for r in rows} == {d.lesson for d in BOOK_DETECTORS} & lessons
    for r in rows:
        if r["scored from"] == "detections":  # boxes stored to 0.01 px, scores to 5 digits
            assert r["mAP"] == pytest.approx(r["mAP (record)"], abs=2e-3), r["detector"]
