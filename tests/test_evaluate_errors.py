"""vizlib.evaluate.errors (the false positives, misses and per-class PR curves behind a
detector's AP) and their drawings in vizlib.viz.gallery, on hand-made evaluations whose
answers are known, and the per-class curves' areas against COCO's per-class AP."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

from vizlib.evaluate import Evaluation, class_pr_curves, detection_errors, per_class_ap
from vizlib.evaluate.detection import evaluate_detection
from vizlib.metrics import average_precision
from vizlib.viz.gallery import plot_class_pr_curves, plot_errors

NAMES = ("background", "square", "disc")


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def _evaluation(preds, targets):
    data = [(torch.zeros(3, 40, 40), t) for t in targets]
    return Evaluation("detection", {}, [0.0] * len(preds), "F1", preds, data, class_names=NAMES)


def _pred(boxes, scores, labels):
    return {
        "boxes": _t(boxes),
        "scores": torch.tensor(scores, dtype=torch.float32),
        "labels": torch.tensor(labels, dtype=torch.int64),
    }


def _target(boxes, labels):
    return {"boxes": _t(boxes), "labels": torch.tensor(labels, dtype=torch.int64)}


def _case():
    targets = [
        _target([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 2]),
        _target([[5, 5, 15, 15]], [1]),
        _target([], []),  # an empty image
    ]
    preds = [
        # image 0: square found; the disc boxed well but called a square (a false positive
        # AND a miss); a duplicate of the square, less sure (a false positive)
        _pred([[0, 0, 10, 10], [20, 20, 30, 30], [1, 0, 10, 10]], [0.9, 0.8, 0.5], [1, 1, 1]),
        # image 1: the square found only under the score threshold (a miss above 0.3)
        _pred([[5, 5, 15, 15]], [0.2], [1]),
        # image 2: a confident detection on an empty image
        _pred([[1, 1, 9, 9]], [0.95], [2]),
    ]
    return _evaluation(preds, targets)


def test_detection_errors_on_a_hand_made_set():
    false_positives, misses = detection_errors(_case(), score_threshold=0.3)
    assert [(fp.image, fp.label, round(fp.score, 2)) for fp in false_positives] == [
        (2, 2, 0.95),  # most confident first
        (0, 1, 0.8),
        (0, 1, 0.5),
    ]
    assert [(m.image, m.label, m.box.tolist()) for m in misses] == [
        (0, 2, [20.0, 20.0, 30.0, 30.0]),
        (1, 1, [5.0, 5.0, 15.0, 15.0]),
    ]
    # with every score kept, image 1's square is found
    _, misses = detection_errors(_case(), score_threshold=0.0)
    assert [(m.image, m.label) for m in misses] == [(0, 2)]
    # a strict IoU turns a found object into a miss and its detection into a false positive
    fps, misses = detection_errors(
        _evaluation([_pred([[0, 0, 10, 12]], [0.9], [1])], [_target([[0, 0, 10, 10]], [1])]),
        iou_threshold=0.9,
    )
    assert len(fps) == 1 and len(misses) == 1


def test_class_pr_curves_on_a_hand_made_set():
    curves = class_pr_curves(_case())
    assert set(curves) == {"square", "disc"}
    # squares: detections 0.9 (tp), 0.8 (fp), 0.5 (fp), 0.2 (tp) over 2 objects
    torch.testing.assert_close(
        curves["square"].precision.float(), torch.tensor([1.0, 0.5, 1 / 3, 0.5])
    )
    torch.testing.assert_close(curves["square"].recall.float(), torch.tensor([0.5, 0.5, 0.5, 1.0]))
    # discs: one false positive (on the empty image), one object never found
    torch.testing.assert_close(curves["disc"].recall.float(), torch.tensor([0.0]))


def test_class_pr_curves_areas_are_cocos_per_class_ap50():
    from vizlib.data import DetectionScenes

    data = DetectionScenes(12, seed=5)
    g = torch.Generator().manual_seed(0)

    class Jittery(torch.nn.Module):
        """Each true box moved a little, with a random score; plus a random false box."""

        def forward(self, images):
            out = []
            for image in images:
                i = next(k for k in range(len(data)) if torch.equal(data[k][0], image))
                t = data[i][1]
                boxes = t["boxes"].as_subclass(torch.Tensor) + torch.randn(
                    len(t["boxes"]), 4, generator=g
                )
                extra = torch.tensor([[2.0, 2.0, 14.0, 14.0]])
                out.append({
                    "boxes": torch.cat([boxes, extra]),
                    "scores": torch.rand(len(boxes) + 1, generator=g),
                    "labels": torch.cat([t["labels"], torch.tensor([1])]),
                })  # fmt: skip
            return out

    evaluation = evaluate_detection(Jittery(), data, batch_size=1)
    coco = per_class_ap(evaluation, iou=0.5)
    curves = class_pr_curves(evaluation, iou_threshold=0.5)
    assert set(curves) == set(coco)
    for name, curve in curves.items():
        ap = average_precision(curve.precision, curve.recall, method="coco")
        assert float(ap) == pytest.approx(coco[name], abs=1e-6), name


def test_drawings():
    fig = plot_errors(_case(), k=4)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for sub in fig.subfigs for ax in sub.axes]
    assert "image 2" in titles and "image 1: best box square 0.20" in titles
    fig = plot_class_pr_curves(_case(), title="model")
    assert [ax.get_title() for ax in fig.axes] == ["model: square", "model: disc"]
    empty = _evaluation([_pred([], [], [])], [_target([], [])])
    assert plot_class_pr_curves(empty).axes == []
    assert detection_errors(empty) == ([], [])


def test_bad_input():
    with pytest.raises(ValueError, match="evaluate_detection"):
        detection_errors({"predictions": []})
    seg = Evaluation("segmentation", {}, [], "mIoU", [], [])
    with pytest.raises(ValueError, match="task 'segmentation'"):
        class_pr_curves(seg)
    with pytest.raises(ValueError, match="score_threshold"):
        detection_errors(_case(), score_threshold=1.5)
    with pytest.raises(ValueError, match="iou_threshold"):
        class_pr_curves(_case(), iou_threshold=-0.1)
    with pytest.raises(ValueError, match="even int"):
        plot_errors(_case(), k=3)
