"""Widget: the receptive field of one output unit, computed and measured.

Choose a stack of 3x3 convolutions (plain, strided, with max-pooling, or dilated) and a
unit of its output. The input panel shades the pixels whose gradient reaches that unit
(measured by backpropagation: :func:`vizlib.receptive_field.empirical_receptive_field`)
and outlines the box computed from the layer table
(:func:`vizlib.receptive_field.receptive_field_of_unit`); the curve panel shows how the
receptive field grows with depth: ``1 + 2L`` for L plain 3x3 convolutions, doubling per
layer with stride 2 or with dilations 1, 2, 4, ... (Araujo et al., Distill 2019).
"""

from __future__ import annotations

import torch
from torch import nn

from vizlib import receptive_field as rf
from vizlib.viz import grids

from ._base import Control, Widget

__all__ = ["ReceptiveFieldWidget", "STACKS", "stack_layers", "stack_model"]

INPUT = 33  # input height and width: odd, so the centre unit of a stride-1 stack is centred
MAX_CONVS = 6

# name -> how the l-th 3x3 convolution (l = 0, 1, ...) and what follows it look
STACKS = {
    "3x3 convs": "3x3 convolutions, stride 1, padding 1",
    "3x3 convs, stride 2": "every convolution has stride 2",
    "VGG: pool every 2 convs": "a 2x2 max-pool (stride 2) after every second convolution",
    "dilated 1, 2, 4, ...": "3x3 convolutions with dilation 1, 2, 4, ... (padding = dilation)",
}
# white where the gradient is 0 (the unit cannot see the pixel), light blue for the
# faintest nonzero gradient, dark blue for the strongest
_SEEN = [[0.0, "#ffffff"], [0.003, "#ffffff"], [0.004, "#c6dbef"], [1.0, "#08306b"]]
_COLORS = {
    "3x3 convs": "#0072B2",
    "3x3 convs, stride 2": "#D55E00",
    "VGG: pool every 2 convs": "#009E73",
    "dilated 1, 2, 4, ...": "#CC79A7",
}


def stack_layers(stack: str, n_convs: int) -> list[rf.Layer]:
    """The geometry of ``n_convs`` 3x3 convolutions arranged as ``stack`` (a key of STACKS).

    Returns:
        list[vizlib.receptive_field.Layer]: convolutions (and pools), input to output.
    """
    if stack not in STACKS:
        raise ValueError(f"stack must be one of {list(STACKS)}, got {stack!r}")
    if not isinstance(n_convs, int) or not 1 <= n_convs <= MAX_CONVS:
        raise ValueError(f"n_convs must be an int in [1, {MAX_CONVS}], got {n_convs!r}")
    layers = []
    for i in range(n_convs):
        if stack == "3x3 convs":
            layers.append(rf.Layer("conv", 3, 1, 1, name=f"conv{i + 1}"))
        elif stack == "3x3 convs, stride 2":
            layers.append(rf.Layer("conv", 3, 2, 1, name=f"conv{i + 1}"))
        elif stack == "dilated 1, 2, 4, ...":
            d = 2**i
            layers.append(rf.Layer("conv", 3, 1, d, d, name=f"conv{i + 1}"))
        else:  # VGG-style
            layers.append(rf.Layer("conv", 3, 1, 1, name=f"conv{i + 1}"))
            if i % 2 == 1 and i + 1 < n_convs:  # pool between blocks, not after the last conv
                layers.append(rf.Layer("pool", 2, 2, name=f"pool{i // 2 + 1}"))
    return layers


def stack_model(layers) -> nn.Sequential:
    """A single-channel ``nn.Sequential`` with the geometry of ``layers`` (weights do not matter)."""
    modules = []
    for layer in layers:
        if layer.kind == "conv":
            modules += [
                nn.Conv2d(
                    1, 1, layer.kernel, layer.stride, layer.padding, layer.dilation, bias=False
                ),
                nn.ReLU(),
            ]
        else:
            modules.append(nn.MaxPool2d(layer.kernel, layer.stride, layer.padding, layer.dilation))
    return nn.Sequential(*modules)


def _rf_after_each_conv(stack: str) -> list[int]:
    """Receptive field size after 1, 2, ..., MAX_CONVS convolutions of ``stack``."""
    rows = rf.receptive_field_table(stack_layers(stack, MAX_CONVS))
    return [r.size[0] for r in rows if r.layer.kind == "conv"]


class ReceptiveFieldWidget(Widget):
    """Receptive field of one output unit for a stack of 3x3 convolutions.

    Controls: the number of convolutions, the kind of stack and which output unit (the
    centre one or the top-left corner one, where the image border clips the field).
    """

    controls = [
        Control("n_convs", "3x3 convolutions L", values=list(range(1, MAX_CONVS + 1)), default=3),
        Control("stack", "stack", values=list(STACKS), default="3x3 convs", kind="dropdown"),
        Control(
            "unit", "output unit", values=["centre", "corner"], default="centre", kind="toggle"
        ),
    ]

    def figure(self, n_convs=3, stack="3x3 convs", unit="centre"):
        layers = stack_layers(stack, n_convs)
        last = rf.receptive_field_table(layers, INPUT)[-1]
        out_h, out_w = last.output_hw
        pos = (out_h // 2, out_w // 2) if unit == "centre" else (0, 0)
        box = rf.receptive_field_of_unit(layers, pos, INPUT)  # xyxy, pixel edges
        x1, y1, x2, y2 = (int(v) for v in box.tolist())
        measured = rf.empirical_receptive_field(stack_model(layers), (1, INPUT, INPUT), pos)
        rows, cols = torch.nonzero(measured.mask, as_tuple=True)
        same = bool(
            rows.min() == y1 and rows.max() == y2 - 1 and cols.min() == x1 and cols.max() == x2 - 1
        )
        # [H, W] uint8: 255 at the strongest pixel, 0 (white) where the unit sees nothing;
        # uint8 keeps the 48 precomputed frames of the static figure small
        strength = measured.gradient / measured.gradient.max()
        grad = torch.where(measured.mask, (strength * 254).round() + 1, 0).to(torch.uint8)

        size, jump = last.size[0], last.jump[0]
        curves = {name: _rf_after_each_conv(name) for name in STACKS}
        ls = list(range(1, MAX_CONVS + 1))
        check = (
            "gradient RF = analytic box" if same else "gradient RF differs from the analytic box"
        )
        title = (
            f"{n_convs} conv{'s' if n_convs > 1 else ''} ({stack}): receptive field {size}×{size}, "
            f"jump {jump}, output {out_h}×{out_w}"
            f"<br><sub>1 + 2L = {1 + 2 * n_convs}; unit {pos}: input box x {x1}..{x2 - 1}, "
            f"y {y1}..{y2 - 1}; {check}</sub>"
        )

        in_cell = 9.0
        layout = grids.panel_layout(
            [(INPUT, INPUT), (out_h, out_w), (11, 32)],
            [
                f"input {INPUT}×{INPUT}: gradient of the unit",
                f"output {out_h}×{out_w}",
                "receptive field size vs depth",
            ],
            rows=[[0, 1], [2]],
            cell=[in_cell, in_cell * INPUT / max(out_h, out_w), 20.0],
            grid_panels=[True, True, False],
            row_heights=[in_cell * INPUT, 220],
            row_gap=80,
            gap=55,
            top=105,
            bottom=50,
            title=title,
        )
        # the curve panel: log2 axis, since strides and dilations double the field
        layout["xaxis3"].update(
            title={"text": "convolutions L"}, dtick=1, range=[0.7, MAX_CONVS + 0.3]
        )
        layout["yaxis3"].update(
            type="log",
            title={"text": "size (pixels)"},
            range=[0.3, 2.2],
            tickvals=[3, 5, 7, 9, 15, 31, 63, 127],
        )
        layout["showlegend"] = True
        layout["legend"] = {
            "x": layout["xaxis3"]["domain"][0] + 0.01,
            "y": layout["yaxis3"]["domain"][1],
            "xanchor": "left",
            "yanchor": "top",
            "bgcolor": "rgba(255,255,255,0.8)",
            "font": {"size": 11},
        }

        data = [
            grids.heatmap(
                grad,
                0,
                zmin=0,
                zmax=255,
                colorscale=_SEEN,
                hover="row %{y}, col %{x}: gradient %{z} / 255",
            ),
            grids.rect_trace([(y1, x1, y2 - 1, x2 - 1)], 0, color="#D55E00", name="analytic box"),
            grids.heatmap(
                torch.zeros(out_h, out_w),
                1,
                zmin=0,
                zmax=1,
                hover="unit (%{y}, %{x})",
                colorscale=[[0.0, "#e8e8e8"], [1.0, "#e8e8e8"]],
            ),
            grids.rect_trace(
                [(pos[0], pos[1], pos[0], pos[1])],
                1,
                color="#D55E00",
                fill="rgba(213,94,0,0.6)",
                name="chosen unit",
            ),
        ]
        for name, sizes in curves.items():
            chosen = name == stack
            data.append(
                dict(
                    type="scatter",
                    x=ls,
                    y=sizes,
                    xaxis="x3",
                    yaxis="y3",
                    mode="lines+markers",
                    name=name,
                    line={"color": _COLORS[name], "width": 3 if chosen else 1.2},
                    opacity=1.0 if chosen else 0.45,
                    marker={"size": 6},
                    hovertemplate="L=%{x}: %{y} pixels<extra>" + name + "</extra>",
                )
            )
        data.append(
            dict(
                type="scatter",
                x=ls,
                y=[1 + 2 * L for L in ls],
                xaxis="x3",
                yaxis="y3",
                mode="lines",
                name="1 + 2L",
                hoverinfo="skip",
                line={"color": "#333333", "dash": "dot", "width": 1.5},
            )
        )
        data.append(
            dict(
                type="scatter",
                x=[n_convs],
                y=[size],
                xaxis="x3",
                yaxis="y3",
                mode="markers",
                name="this stack",
                showlegend=False,
                marker={
                    "size": 14,
                    "color": "rgba(0,0,0,0)",
                    "line": {"color": "#000000", "width": 2},
                },
                hovertemplate="L=%{x}: %{y} pixels<extra></extra>",
            )
        )
        for trace in data[:4]:
            trace["showlegend"] = False
        return grids.figure(data, layout)
