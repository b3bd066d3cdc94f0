"""The concept-page widgets (upsampling, transposed convolution, receptive field, focal
loss): live controls drive the figure, static figures hold every state, and the numbers
drawn are vizlib core's and agree with PyTorch / torchvision."""

from __future__ import annotations

import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
import torchvision
from torch.nn import functional as F

from vizlib import conv_algebra as ca
from vizlib import receptive_field as rf
from vizlib.widgets import (
    FocalLossWidget,
    ReceptiveFieldWidget,
    TransposedConvWidget,
    UpsamplingWidget,
)
from vizlib.widgets import focal_loss as fl_mod
from vizlib.widgets import receptive_field as rf_mod
from vizlib.widgets import upsampling as up_mod

MINE = [UpsamplingWidget, TransposedConvWidget, ReceptiveFieldWidget, FocalLossWidget]


def z(fig, k) -> np.ndarray:
    return np.asarray(fig.data[k].z, dtype=np.float64)


def title(fig) -> str:
    return next(a.text for a in fig.layout.annotations if "<br>" in (a.text or ""))


@pytest.fixture(scope="module")
def static_states():
    """Every static state's figure, per widget class (computed once for the module)."""
    out = {}
    for cls in MINE:
        w = cls()
        out[cls] = [(state, w.figure(**state)) for _, state in w.static_states()]
    return out


@pytest.mark.parametrize("cls", MINE, ids=lambda c: c.__name__)
def test_live_controls_change_the_figure(cls):
    w = cls()
    box = w.live()
    assert set(box.controls) == {c.name for c in cls.controls}
    for c in cls.controls:
        before = box.last_figure.to_json()
        default = box.controls[c.name].value
        box.controls[c.name].value = next(v for v in c.values if v != default)
        assert box.last_figure is w.last_figure
        assert box.last_figure.to_json() != before, f"{c.name} did not change the figure"
        box.controls[c.name].value = default
        assert box.last_figure.to_json() == before


@pytest.mark.parametrize("cls", MINE, ids=lambda c: c.__name__)
def test_static_figure_has_every_state(cls, static_states):
    w = cls()
    fig = w.static_figure()
    sliders = [
        c for c in cls.controls if cls.static_controls is None or c.name in cls.static_controls
    ]
    assert len(fig.layout.sliders) == len(sliders)
    assert len(fig.frames) == math.prod(len(c.steps()) for c in sliders) == len(static_states[cls])
    for sl, c in zip(fig.layout.sliders, sliders, strict=True):
        assert [s.label for s in sl.steps] == [c.label_of(v) for v in c.steps()]
    # from the default state, every position of every slider shows a different frame
    frames = {
        f["name"]: json.dumps(f["data"]) + json.dumps(f["layout"])
        for f in json.loads(fig.to_json())["frames"]
    }
    base = [sl.active for sl in fig.layout.sliders]
    for k, c in enumerate(sliders):
        names = [
            "-".join(str(j if i == k else b) for i, b in enumerate(base))
            for j in range(len(c.steps()))
        ]
        assert len({frames[n] for n in names}) == len(names), f"slider {c.name} repeats a frame"


@pytest.mark.parametrize("cls", MINE, ids=lambda c: c.__name__)
def test_every_state_is_a_valid_plotly_figure(cls, static_states):
    # the widgets skip plotly's validation for speed; here every state is validated once
    for state, fig in static_states[cls]:
        go.Figure(fig.to_dict())  # raises on an unknown property or a bad value
        assert len(fig.data) == len(static_states[cls][0][1].data), state


# ------------------------------------------------------------------ transposed convolution
def test_transposed_conv_numbers_are_conv_algebras(static_states):
    for state, fig in static_states[TransposedConvWidget]:
        k, s, p = state["kernel_size"], state["stride"], state["padding"]
        if state["dim"] == "1D":
            x = torch.arange(1.0, 5.0)
            w = torch.arange(1.0, k + 1)
            T = ca.conv_transpose_matrix_1d(4, w, s, p)
            C = ca.conv_matrix_1d(T.shape[0], w, s, p)
            np.testing.assert_array_equal(z(fig, 0), C.numpy())
            np.testing.assert_array_equal(z(fig, 1), T.numpy())
            np.testing.assert_array_equal(z(fig, 1), z(fig, 0).T)  # T is C transposed
            layer = torch.nn.ConvTranspose1d(1, 1, k, s, p, bias=False)
            layer.weight.data = w.view(1, 1, k)
            y = layer(x.view(1, 1, 4)).detach().view(-1)
            np.testing.assert_allclose(z(fig, 2)[-1], y.numpy())  # the sum of the stamps
            np.testing.assert_allclose(z(fig, 2)[:-1].sum(0), y.numpy())
            np.testing.assert_array_equal(
                z(fig, 3)[0], ca.conv_transpose_by_stamping_1d(x, w, s, p).overlap.numpy()
            )
        else:
            x = torch.arange(1.0, 10.0).view(3, 3)
            w = torch.ones(k, k)
            m = ca.conv_transpose_output_size(3, k, s, p)
            np.testing.assert_array_equal(z(fig, 1), ca.conv_matrix_2d(m, w, s, p).numpy())
            layer = torch.nn.ConvTranspose2d(1, 1, k, s, p, bias=False)
            layer.weight.data = w.view(1, 1, k, k)
            y = layer(x.view(1, 1, 3, 3)).detach()[0, 0]
            np.testing.assert_allclose(z(fig, 2), y.numpy())
            overlap = ca.conv_transpose_by_stamping_2d(x, w, s, p).overlap
            np.testing.assert_array_equal(z(fig, 3), overlap.numpy())
        assert "MISMATCH" not in title(fig)


def test_transposed_conv_checkerboard():
    fig = TransposedConvWidget().render(dim="2D", kernel_size=3, stride=2, padding=0)
    assert set(np.unique(z(fig, 3))) == {1, 2, 4}  # uneven overlaps: the checkerboard
    fig = TransposedConvWidget().render(dim="2D", kernel_size=2, stride=2, padding=0)
    assert set(np.unique(z(fig, 3))) == {1}  # kernel divisible by the stride: even


# ------------------------------------------------------------------ receptive field
def test_receptive_field_numbers_are_the_cores(static_states):
    for state, fig in static_states[ReceptiveFieldWidget]:
        layers = rf_mod.stack_layers(state["stack"], state["n_convs"])
        last = rf.receptive_field_table(layers, rf_mod.INPUT)[-1]
        oh, ow = last.output_hw
        unit = (oh // 2, ow // 2) if state["unit"] == "centre" else (0, 0)
        x1, y1, x2, y2 = rf.receptive_field_of_unit(layers, unit, rf_mod.INPUT).tolist()
        xs = [v for v in fig.data[1].x if v is not None]
        ys = [v for v in fig.data[1].y if v is not None]
        assert (min(xs), max(xs), min(ys), max(ys)) == (x1 - 0.5, x2 - 0.5, y1 - 0.5, y2 - 0.5)
        # the shaded pixels are exactly those whose gradient reaches the unit ...
        seen = z(fig, 0) > 0
        mask = rf.empirical_receptive_field(
            rf_mod.stack_model(layers), (1, rf_mod.INPUT, rf_mod.INPUT), unit
        ).mask
        np.testing.assert_array_equal(seen, mask.numpy())
        # ... and they fill the analytic box's extent
        rows, cols = np.nonzero(seen)
        assert (cols.min(), cols.max() + 1, rows.min(), rows.max() + 1) == (x1, x2, y1, y2)
        assert f"receptive field {last.size[0]}×{last.size[0]}" in title(fig)


def test_receptive_field_growth_rules():
    fig = ReceptiveFieldWidget().render()
    curves = {
        t.name: list(t.y) for t in fig.data if t.type == "scatter" and t.name in rf_mod.STACKS
    }
    assert curves["3x3 convs"] == [1 + 2 * L for L in range(1, 7)]  # the 1 + 2L rule
    assert curves["3x3 convs, stride 2"] == [2 ** (L + 1) - 1 for L in range(1, 7)]
    assert curves["dilated 1, 2, 4, ..."] == [2 ** (L + 1) - 1 for L in range(1, 7)]
    # a real network: the stack's model, read back by layers_from_model, gives the same table
    model = rf_mod.stack_model(rf_mod.stack_layers("VGG: pool every 2 convs", 6))
    sizes = [
        r.size[0]
        for r in rf.receptive_field_table(rf.layers_from_model(model))
        if r.layer.kind == "conv"
    ]
    assert sizes == curves["VGG: pool every 2 convs"]


# ------------------------------------------------------------------ upsampling
def test_upsampling_numbers_match_pytorch(static_states):
    for state, fig in static_states[UpsamplingWidget]:
        f, method, ac = state["factor"], state["method"], state["align_corners"]
        E = up_mod.encoder_map(f)
        X, idx = F.max_pool2d(E[None, None], f, return_indices=True)
        np.testing.assert_allclose(z(fig, 0), E.numpy(), atol=1e-6)
        np.testing.assert_allclose(z(fig, 2), X[0, 0].numpy(), atol=1e-6)
        if method == "max unpool":
            want = F.max_unpool2d(X, idx, f, output_size=E.shape)
        elif method == "bed of nails":
            want = torch.zeros_like(E)[None, None]
            want[..., ::f, ::f] = X
        elif method == "nearest":
            want = F.interpolate(X, scale_factor=f, mode="nearest")
        else:
            want = F.interpolate(X, scale_factor=f, mode=method, align_corners=ac)
        np.testing.assert_allclose(
            z(fig, 3), want[0, 0].numpy(), atol=6e-3
        )  # drawn rounded to 0.01
        assert "DIFFERS" not in title(fig)


def test_upsampling_max_unpool_puts_values_back_at_the_switches():
    fig = UpsamplingWidget().render(method="max unpool", factor=3)
    E = up_mod.encoder_map(3)
    out = z(fig, 3)
    nonzero = out != 0
    assert nonzero.sum() == 16  # one value per pooling window
    np.testing.assert_allclose(out[nonzero], E.numpy()[nonzero], atol=1e-6)  # at the argmax


# ------------------------------------------------------------------ focal loss
def test_focal_loss_numbers_match_torchvision(static_states):
    logits, targets, groups = fl_mod.dense_batch()
    for state, fig in static_states[FocalLossWidget]:
        g, a = state["gamma"], state["alpha"]
        tv = torchvision.ops.sigmoid_focal_loss(
            logits, targets, alpha=-1 if a == "none" else a, gamma=g
        )
        shares = torch.zeros(3, dtype=tv.dtype).index_add_(0, groups, tv) / tv.sum()
        bars = [t for t in fig.data if t.type == "bar"]
        np.testing.assert_allclose([b.x[1] for b in bars], (100 * shares).numpy(), atol=0.006)
        ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        ce_shares = torch.zeros(3, dtype=ce.dtype).index_add_(0, groups, ce) / ce.sum()
        np.testing.assert_allclose([b.x[0] for b in bars], (100 * ce_shares).numpy(), atol=0.006)
        for t in fig.data[:5]:  # the curves: -(1 - p)^gamma log p
            gamma = float(t.name.split("=")[1].split()[0])
            p = np.asarray(t.x, dtype=np.float64)
            np.testing.assert_allclose(t.y, -((1 - p) ** gamma) * np.log(p), atol=2e-4, rtol=1e-3)


def test_focal_loss_gamma_two_shrinks_easy_examples_100x():
    t = title(FocalLossWidget().render(gamma=2.0))
    assert "at p_t = 0.9 the loss is 100× smaller" in t
    # easy negatives dominate cross-entropy and nearly vanish from the focal loss
    ce, _ = fl_mod.loss_shares(0.0, None)
    focal, _ = fl_mod.loss_shares(2.0, None)
    assert ce[0] > 0.4 and focal[0] < 0.01
