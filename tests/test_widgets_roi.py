"""The RoI pooling widget: its numbers are vizlib.roi's and torchvision.ops', its controls
change the figure live, its static figure stays small, and it takes a real feature map."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from torchvision import ops

from vizlib import roi as R
from vizlib.widgets import RoIPoolingWidget, all_widget_classes
from vizlib.widgets import roi as wr

MAX_STATIC_BYTES = 1_000_000


def _text(fig) -> str:
    return json.dumps(json.loads(fig.to_json()), sort_keys=True)


def test_registered():
    assert all_widget_classes()["RoIPoolingWidget"] is RoIPoolingWidget


def test_live_controls_change_the_figure():
    w = RoIPoolingWidget()
    box = w.live()
    assert set(box.controls) == {c.name for c in RoIPoolingWidget.controls}
    for c in RoIPoolingWidget.controls:
        widget = box.controls[c.name]
        start, before = widget.value, _text(w.last_figure)
        changed = False
        for v in c.values:
            if v == start:
                continue
            widget.value = v
            assert w.last_state[c.name] == v
            if _text(w.last_figure) != before:
                changed = True
                break
        assert changed, f"no value of control {c.name!r} changed the figure"
        widget.value = start
        assert _text(w.last_figure) == before


def test_figure_is_valid_plotly_and_keeps_its_traces():
    w = RoIPoolingWidget()
    go.Figure(json.loads(w.render().to_json()))  # validated once, the slow way
    kinds = [t.type for t in w.render().data]
    for _, state in w.static_states()[::7]:
        assert [t.type for t in w.figure(**state).data] == kinds


def test_static_figure_sliders_frames_and_size():
    w = RoIPoolingWidget()
    fig = w.static_figure()
    assert [s.name for s in fig.layout.sliders] == list(w.static_controls)
    n_states = int(np.prod([len(w.control(c).steps()) for c in w.static_controls]))
    assert len(fig.frames) == n_states <= w.max_static_states
    w.static_figure = lambda: fig
    size = len(w.static_html(include_plotlyjs=False).encode("utf-8"))
    assert size <= MAX_STATIC_BYTES, f"static figure is {size} bytes"


STATES = [
    {},
    {"dx": 0.25, "dy": 0.5, "output_size": 7, "aligned": True},
    {"size": 0.5, "output_size": 2, "sampling_ratio": 2},
    {"dx": 0.75, "size": 1.25, "output_size": 5, "sampling_ratio": 1, "aligned": True},
]


@pytest.mark.parametrize("state", STATES)
def test_numbers_match_torchvision(state):
    w = RoIPoolingWidget()
    full = {**w.state_defaults(), **state}
    n = w.numbers(**state)
    f = wr.default_feature()[None]  # [1, 1, 16, 16]
    rois = torch.cat([torch.zeros(1), n["box"]])[None]
    out = full["output_size"]
    assert torch.equal(n["pooled"], ops.roi_pool(f, rois, out, 1.0)[0, 0])
    torch.testing.assert_close(
        n["aligned_out"],
        ops.roi_align(f, rois, out, 1.0, full["sampling_ratio"], full["aligned"])[0, 0],
        atol=1e-5,
        rtol=1e-5,
    )
    # the max cells drawn hold the pooled values, bin by bin
    fmap = n["feature"]
    values = sorted(float(fmap[r, c]) for r, c in n["max_cells"])
    assert values == sorted(n["pooled"].flatten().tolist())
    # RoIAlign's output is the mean of the feature at the points drawn
    pts = n["points"]
    mean = R.bilinear_sample(fmap[None], pts[..., 0], pts[..., 1]).mean(dim=(-2, -1))[0]
    torch.testing.assert_close(mean, n["aligned_out"], atol=1e-5, rtol=1e-5)
    # the exact bin edges drawn contain the sample points, which split each bin evenly
    ys, xs = n["align_edges"]
    assert ys[0] < float(pts[..., 0].min()) and float(pts[..., 0].max()) < ys[-1]
    assert xs[0] < float(pts[..., 1].min()) and float(pts[..., 1].max()) < xs[-1]
    assert n["error"] == R.quantisation_error(n["box"], out, 1.0)


def test_figure_shows_the_numbers():
    w = RoIPoolingWidget()
    state = {"dx": 0.5, "output_size": 3}
    n = w.numbers(**state)
    fig = w.render(**state)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert np.allclose(np.asarray(heat[2].z), n["pooled"].numpy(), atol=0.005)
    assert np.allclose(np.asarray(heat[3].z), n["aligned_out"].numpy(), atol=0.005)
    title = fig.layout.annotations[0].text
    assert f"{n['error']:.2f} cells" in title
    # one marker per sample point, one x per non-empty bin
    points = next(t for t in fig.data if t.name == "sample")
    assert len(points.x) == n["points"][..., 0].numel()
    assert len(next(t for t in fig.data if t.name == "max of the bin").x) == 9


def test_shifting_by_a_fraction_of_a_cell_moves_only_roialign():
    w = RoIPoolingWidget()
    a, b = w.numbers(dx=0.0), w.numbers(dx=0.25)
    assert torch.equal(a["bins"].cols, b["bins"].cols)  # RoI pooling: the same cells
    assert torch.equal(a["pooled"], b["pooled"])
    assert not torch.equal(a["points"], b["points"])  # RoIAlign follows the RoI
    assert not torch.equal(a["aligned_out"], b["aligned_out"])


def test_a_real_feature_map_and_box():
    g = torch.Generator().manual_seed(0)
    conv5 = torch.randn(8, 38, 50, generator=g)  # a VGG-like stride-16 map of a 600 x 800 image
    box = torch.tensor([100.0, 60.0, 300.0, 245.0])
    w = RoIPoolingWidget(feature=conv5, box=box, spatial_scale=1 / 16, channel=3)
    n = w.numbers(output_size=7)
    rois = torch.cat([torch.zeros(1), box])[None]
    assert torch.equal(n["box"], box)
    assert torch.equal(n["pooled"], ops.roi_pool(conv5[None], rois, 7, 1 / 16)[0, 3])
    torch.testing.assert_close(
        n["aligned_out"], ops.roi_align(conv5[None], rois, 7, 1 / 16)[0, 3], atol=1e-5, rtol=1e-5
    )
    assert n["error_px"] == pytest.approx(16 * R.quantisation_error(box, 7, 1 / 16))
    # a shift of 0.5 cell is 8 image pixels
    moved = w.numbers(dx=0.5)["box"]
    assert moved.tolist() == pytest.approx((box + torch.tensor([8.0, 0, 8, 0])).tolist())
    fig = w.render(output_size=7)
    assert "image px" in fig.layout.annotations[0].text
    go.Figure(json.loads(fig.to_json()))
    # a 2-d map is one channel
    w2 = RoIPoolingWidget(feature=conv5[0].numpy(), box=box, spatial_scale=1 / 16)
    assert torch.equal(w2.numbers()["feature"], conv5[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"feature": torch.zeros(2, 3, 8, 8)}, r"feature must be a map \[H, W\] or \[C, H, W\]"),
        ({"feature": torch.zeros(8)}, "feature must be a map"),
        ({"feature": torch.zeros(3, 8, 8), "channel": 3}, "channel must be < 3"),
        ({"channel": -1}, "channel must be >= 0"),
        ({"box": (1.0, 2.0, 3.0)}, "box must be 4 numbers"),
        ({"box": (5.0, 2.0, 3.0, 6.0)}, "x2 < x1"),
        ({"spatial_scale": 0}, "spatial_scale must be > 0"),
        ({"output_size": 9}, "output_size=9 is not one of"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RoIPoolingWidget(**kwargs)
