"""vizlib.viz.gallery.plot_gallery: what each panel shows (segmentation: image | truth |
prediction in the label colours; detection: kept predictions solid, ground truth dashed;
keypoints: predicted dots and true crosses), the titles, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from vizlib.data import CLASS_NAMES
from vizlib.evaluate import Evaluation
from vizlib.viz.boxes import as_uint8_image
from vizlib.viz.gallery import plot_gallery
from vizlib.viz.segmentation import colour_labels


def _segmentation(scores=(1.0, 0.2, 0.7)):
    g = torch.Generator().manual_seed(0)
    data = [
        (torch.rand(3, 6, 5, generator=g), torch.randint(0, 9, (6, 5), generator=g)) for _ in scores
    ]
    preds = [torch.zeros(6, 5, dtype=torch.uint8) for _ in scores]
    return Evaluation(
        "segmentation", {"mIoU": 0.5}, list(scores), "mIoU", preds, data, class_names=CLASS_NAMES
    )


def test_a_segmentation_panel_is_image_truth_and_prediction_in_the_label_colours():
    ev = _segmentation()
    fig = plot_gallery(ev, k=1)
    assert isinstance(fig, Figure)
    titled = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert set(titled) == {"best: mIoU 1.00", "typical failures: mIoU 0.20", "worst: mIoU 0.20"}
    shown = np.asarray(titled["best: mIoU 1.00"].images[0].get_array())
    image, mask = ev.dataset[0]
    gap = np.full((6, 2, 3), 255, dtype=np.uint8)
    expected = np.concatenate(
        [
            as_uint8_image(image),
            gap,
            colour_labels(mask, 9),
            gap,
            colour_labels(ev.predictions[0].long(), 9),
        ],
        axis=1,
    )
    assert shown.shape == (6, 5 * 3 + 4, 3) and (shown == expected).all()


def _detection(task="detection"):
    image = torch.rand(3, 20, 20)
    target = {
        "boxes": torch.tensor([[1.0, 1.0, 8.0, 8.0], [10.0, 10.0, 18.0, 18.0]]),
        "labels": torch.tensor([1, 2]),
        "keypoints": torch.tensor(
            [[[2.0, 2.0, 2.0], [5.0, 5.0, 0.0]], [[12.0, 12.0, 2.0], [15.0, 15.0, 1.0]]]
        ),
    }
    pred = {
        "boxes": torch.tensor([[1.0, 1.0, 8.0, 8.0], [3.0, 3.0, 9.0, 9.0]]),
        "scores": torch.tensor([0.9, 0.2]),
        "labels": torch.tensor([1, 1]),
        "keypoints": torch.tensor(
            [[[2.0, 2.0, 1.0], [5.0, 5.0, 1.0]], [[4.0, 4.0, 1.0], [6.0, 6.0, 1.0]]]
        ),
    }
    return Evaluation(task, {"bbox/AP": 0.5}, [0.5], "F1", [pred], [(image, target)])


def test_detections_below_the_threshold_are_not_drawn_and_the_truth_is_dashed():
    ax = next(a for a in plot_gallery(_detection(), k=1, score_threshold=0.5).axes if a.get_title())
    styles = [p.get_linestyle() for p in ax.patches]
    assert styles.count("--") == 2  # both true boxes
    assert len(styles) - styles.count("--") == 1  # the 0.9 detection, not the 0.2 one
    assert not ax.get_lines()  # no keypoints for a detection
    ax = next(a for a in plot_gallery(_detection(), k=1, score_threshold=0.1).axes if a.get_title())
    assert len(ax.patches) == 4


def test_keypoints_show_kept_predictions_and_labelled_truth():
    ax = next(
        a
        for a in plot_gallery(_detection("keypoints"), k=1, score_threshold=0.5).axes
        if a.get_title()
    )
    dots, crosses = ax.get_lines()
    assert list(dots.get_xdata()) == [2.0, 5.0]  # the kept prediction's two points
    assert list(crosses.get_xdata()) == [
        2.0,
        12.0,
        15.0,
    ]  # the unlabelled (v = 0) point is left out


def test_plot_gallery_bad_input():
    with pytest.raises(ValueError, match="Evaluation"):
        plot_gallery({"mIoU": 0.5})
    with pytest.raises(ValueError, match="score_threshold"):
        plot_gallery(_detection(), score_threshold=1.5)
    with pytest.raises(ValueError, match="k"):
        plot_gallery(_segmentation(), k=0)
    with pytest.raises(ValueError, match="no image has a score"):
        plot_gallery(_segmentation(scores=(math.nan, math.nan)))
