"""vizlib.viz.segmentation: label maps in colour (the scenes' palette, grey for ignored),
legends, prediction grids and trimap curves, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from vizlib.data import CLASS_NAMES, PALETTE
from vizlib.viz.segmentation import (
    IGNORED_GREY,
    colour_labels,
    legend_handles,
    segmentation_grid,
    trimap_figure,
)


def test_colour_labels_uses_the_scene_palette_and_grey_for_ignored():
    labels = torch.tensor([[0, 1, 8], [255, 3, 3]])
    rgb = colour_labels(labels)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    for i, j in [(0, 0), (0, 1), (0, 2), (1, 1)]:
        assert (rgb[i, j] == PALETTE[int(labels[i, j])]).all()
    assert (rgb[1, 0] == IGNORED_GREY).all()
    assert torch.equal(labels, torch.tensor([[0, 1, 8], [255, 3, 3]]))  # input untouched


def test_colour_labels_beyond_the_palette_is_fixed_and_distinct():
    labels = np.arange(21).reshape(3, 7)  # PASCAL VOC's 21 classes
    a, b = colour_labels(labels), colour_labels(labels.copy())
    assert (a == b).all()  # the same colours every call
    assert len({tuple(c) for c in a.reshape(-1, 3)}) >= 20


@pytest.mark.parametrize(
    "labels, word",
    [
        (np.zeros((2, 2, 2), dtype=np.int64), "labels"),
        (np.zeros((2, 2), dtype=np.float32), "labels"),
        (np.array([[0, -1]]), "labels"),
    ],
)
def test_colour_labels_bad_input(labels, word):
    with pytest.raises(ValueError, match=word):
        colour_labels(labels)


def test_colour_labels_bad_num_labels():
    with pytest.raises(ValueError, match="num_labels"):
        colour_labels(np.zeros((2, 2), dtype=np.int64), num_labels=0)


def test_legend_handles_name_every_class():
    handles = legend_handles(CLASS_NAMES)
    assert [h.get_label() for h in handles] == list(CLASS_NAMES)
    with pytest.raises(ValueError, match="class_names"):
        legend_handles([])


def test_segmentation_grid_draws_one_row_per_image():
    images = [torch.rand(3, 16, 16) for _ in range(3)]
    truths = [torch.randint(0, 9, (16, 16)) for _ in range(3)]
    preds = {"a": truths, "b": [t.flip(0) for t in truths]}
    fig = segmentation_grid(images, truths, preds, titles=["x", "y", "z"], class_names=CLASS_NAMES)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * 4  # image, truth, a, b
    assert [ax.get_title() for ax in fig.axes[:4]] == ["image", "truth", "a", "b"]
    assert fig.axes[4].get_ylabel() == "y"
    assert len(fig.legends) == 1


@pytest.mark.parametrize(
    "args, kwargs, word",
    [
        (([torch.rand(3, 4, 4)], [torch.zeros(4, 4, dtype=torch.long)] * 2, {}), {}, "same length"),
        (([torch.rand(3, 4, 4)], [torch.zeros(4, 4, dtype=torch.long)], {"a": []}), {}, "a 0"),
        (([], [], {}), {}, "no images"),
        (([torch.rand(3, 4, 4)], [torch.zeros(4, 4, dtype=torch.long)], [[]]), {}, "predictions"),
        (
            ([torch.rand(3, 4, 4)], [torch.zeros(4, 4, dtype=torch.long)], {}),
            {"titles": ["a", "b"]},
            "titles",
        ),
    ],
)
def test_segmentation_grid_bad_input(args, kwargs, word):
    with pytest.raises(ValueError, match=word):
        segmentation_grid(*args, **kwargs)


def test_trimap_figure_draws_each_model_and_its_full_mIoU():
    fig = trimap_figure([1, 2, 4], {"a": [0.2, 0.3, 0.5], "b": [0.1, 0.2, 0.4]}, full={"a": 0.7})
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 3  # two curves and a's dotted full-image line
    assert list(lines[0].get_ydata()) == [0.2, 0.3, 0.5]


@pytest.mark.parametrize(
    "widths, curves, full, word",
    [
        ([], {"a": []}, None, "widths"),
        ([1, 2], {}, None, "curves"),
        ([1, 2], {"a": [0.1]}, None, "curves"),
        ([1], {"a": [0.1]}, [0.5], "full"),
    ],
)
def test_trimap_figure_bad_input(widths, curves, full, word):
    with pytest.raises(ValueError, match=word):
        trimap_figure(widths, curves, full)
