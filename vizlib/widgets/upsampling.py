"""Widget: five ways to upsample a feature map, side by side with what was lost.

A decoder (FCN, U-Net, SegNet) must bring a coarse feature map back to the resolution of
the image. The widget starts from an "encoder" map ``E`` of ``4f x 4f`` pixels, max-pools
it by ``f`` (remembering where each maximum was: the *switches*) into the ``4 x 4`` input
``X``, and upsamples ``X`` by ``f`` with the chosen method: nearest, bed of nails, max
unpooling (with the switches), bilinear or bicubic interpolation. The last panel follows
one row through ``E``, ``X`` and the output, where the methods differ most: steps,
spikes, straight lines between pixel centres, or a smooth curve that overshoots.

Every number comes from :mod:`vizlib.upsampling`; the figure also checks it against
PyTorch (``F.interpolate``, ``F.max_unpool2d``, ``F.conv_transpose2d``).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from vizlib import upsampling as up
from vizlib._checks import check_choice
from vizlib.viz import grids

from ._base import Control, Widget

__all__ = ["METHODS", "UpsamplingWidget", "encoder_map", "upsample"]

METHODS = ("nearest", "bed of nails", "max unpool", "bilinear", "bicubic")
SIZE = 4  # the input X is SIZE x SIZE
PROFILE_ROW = 1  # the row of X followed in the last panel


def encoder_map(factor: int) -> torch.Tensor:
    """A deterministic ``4f x 4f`` feature map: a bright blob, a step edge and some texture.

    The same continuous picture is sampled at every factor, so the panels look alike.

    Returns:
        Tensor[4f, 4f] float32, values in [0, 9], rounded to 0.1.
    """
    n = SIZE * factor
    c = (torch.arange(n, dtype=torch.float64) + 0.5) / n  # pixel centres in (0, 1)
    v, u = torch.meshgrid(c, c, indexing="ij")  # [n, n] each: row and column coordinates
    blob = torch.exp(-((u - 0.33) ** 2 + (v - 0.42) ** 2) / 0.045)
    edge = (u + 0.3 * v > 0.78).double()
    texture = 0.5 + 0.5 * torch.sin(37.0 * u + 11.0 * v) * torch.cos(23.0 * v - 5.0 * u)
    e = 6.5 * blob + 2.5 * edge + 1.2 * texture
    return (e.clamp(0, 9) * 10).round().float() / 10


def upsample(method: str, factor: int, align_corners: bool = False) -> dict:
    """Pool the encoder map, then upsample it back with ``method``; numbers for the figure.

    Args:
        method (str): one of :data:`METHODS`.
        factor (int): the pooling window and the upsampling factor.
        align_corners (bool): for bilinear and bicubic (see
            :func:`vizlib.upsampling.source_coordinates`).

    Returns:
        dict with ``E`` (Tensor[4f, 4f]), ``X`` (Tensor[4, 4], max-pooled ``E``),
        ``switches`` (Tensor[4, 4] int64, flat indices into ``E``), ``Y`` (Tensor[4f, 4f],
        the upsampled ``X``) and ``Y_torch`` (the same computed by PyTorch).
    """
    check_choice("method", method, METHODS)
    E = encoder_map(factor)
    X, switches = up.max_pool_with_switches(E, factor)  # [4, 4] each
    n = SIZE * factor
    x4 = X[None, None]  # [1, 1, 4, 4]: PyTorch wants a batch
    if method == "nearest":
        Y = up.nearest(X, factor)
        Y_torch = F.interpolate(x4, scale_factor=factor, mode="nearest")[0, 0]
    elif method == "bed of nails":
        Y = up.bed_of_nails(X, factor)
        # a transposed convolution with a 1x1 kernel of one and stride f
        Y_torch = F.conv_transpose2d(
            x4, torch.ones(1, 1, 1, 1), stride=factor, output_padding=factor - 1
        )[0, 0]
    elif method == "max unpool":
        Y = up.max_unpool(X, switches, (n, n))
        Y_torch = F.max_unpool2d(x4, switches[None, None], factor, output_size=(n, n))[0, 0]
    elif method == "bilinear":
        Y = up.bilinear(X, factor, align_corners=align_corners)
        Y_torch = F.interpolate(
            x4, scale_factor=factor, mode="bilinear", align_corners=align_corners
        )[0, 0]
    else:
        Y = up.bicubic(X, factor, align_corners=align_corners)
        Y_torch = F.interpolate(
            x4, scale_factor=factor, mode="bicubic", align_corners=align_corners
        )[0, 0]
    return dict(E=E, X=X, switches=switches, Y=Y, Y_torch=Y_torch)


_TORCH_NAME = {
    "nearest": "F.interpolate(mode='nearest')",
    "bed of nails": "F.conv_transpose2d (1x1 kernel, stride f)",
    "max unpool": "F.max_unpool2d",
    "bilinear": "F.interpolate(mode='bilinear')",
    "bicubic": "F.interpolate(mode='bicubic')",
}


class UpsamplingWidget(Widget):
    """Nearest, bed of nails, max unpooling, bilinear and bicubic upsampling, compared.

    Controls: the method, the factor ``f`` (2, 3 or 4) and ``align_corners`` (bilinear
    and bicubic only).
    """

    controls = [
        Control("method", "method", values=list(METHODS), default="bilinear", kind="toggle"),
        Control("factor", "factor f", values=[2, 3, 4], default=2),
        Control(
            "align_corners", "align_corners", values=[False, True], default=False, kind="toggle"
        ),
    ]

    def figure(self, method="bilinear", factor=2, align_corners=False):
        r = upsample(method, factor, align_corners)
        E, X, Y, switches = r["E"], r["X"], r["Y"], r["switches"]
        n = SIZE * factor
        agree = torch.allclose(Y, r["Y_torch"], atol=1e-5)
        interp = method in ("bilinear", "bicubic")
        note = (
            f"align_corners={align_corners}" if interp else "align_corners: not used by this method"
        )
        check = f"equals {_TORCH_NAME[method]}" if agree else f"DIFFERS from {_TORCH_NAME[method]}"
        err = float((Y - E).abs().mean())
        title = (
            f"{method}, factor {factor}: mean |output − E| = {err:.2f}"
            f"<br><sub>{check}; {note}; range of the output {float(Y.min()):.2f} .. "
            f"{float(Y.max()):.2f} (E: {float(E.min()):.1f} .. {float(E.max()):.1f})</sub>"
        )

        # the row followed in the profile: the middle row of X's row PROFILE_ROW block
        row = PROFILE_ROW * factor + factor // 2
        big = 8 * 21.0  # every 4f x 4f panel is drawn 168 px wide, whatever f
        layout = grids.panel_layout(
            [(n, n), (SIZE, SIZE), (n, n), (9, 30)],
            [
                f"encoder map E ({n}×{n})",
                f"X = max-pool(E, {factor}) (4×4)",
                f"output ({n}×{n})",
                f"row {row}: E, X and the output",
            ],
            rows=[[0, 1, 2], [3]],
            cell=[big / n, 28.0, big / n, 20.0],
            grid_panels=[True, True, True, False],
            row_heights=[big, 180],
            row_gap=80,
            gap=55,
            top=105,
            bottom=50,
            title=title,
        )
        layout["xaxis4"].update(
            range=[-0.5, n - 0.5], title={"text": "column (output pixels)"}, showgrid=True
        )
        layout["yaxis4"].update(range=[-1.6, 10.0], showgrid=True, zeroline=True)
        layout["showlegend"] = True
        layout["legend"] = {
            "x": 1.0,
            "xanchor": "right",
            "y": layout["yaxis4"]["domain"][1],
            "yanchor": "top",
            "font": {"size": 10},
            "bgcolor": "rgba(255,255,255,0.8)",
        }

        text_big = False  # 64+ cells: the numbers would not fit; hover shows them
        zmax = 9.0
        # where each maximum came from: shown on E, and used by max unpooling
        rows_s, cols_s = switches.flatten() // n, switches.flatten() % n
        marks = [(int(a), int(b), int(a), int(b)) for a, b in zip(rows_s, cols_s, strict=True)]
        centres = torch.arange(SIZE) * factor + (factor - 1) / 2  # X's pixel centres, output units
        data = [
            grids.heatmap(E, 0, zmin=0, zmax=zmax, text=text_big, decimals=1),
            grids.rect_trace(marks, 0, color="#D55E00", width=1.5, name="switches"),
            grids.heatmap(X, 1, zmin=0, zmax=zmax, text="%{z:.1f}", decimals=1),
            grids.heatmap(Y, 2, zmin=0, zmax=zmax, text=text_big, decimals=2),
            grids.rect_trace(
                marks if method == "max unpool" else [], 2, color="#D55E00", width=1.5
            ),
            dict(
                type="scatter",
                x=list(range(n)),
                y=grids.compact(E[row], 2),
                xaxis="x4",
                yaxis="y4",
                mode="lines",
                name="E",
                line={"color": "#999999", "width": 1.5, "shape": "hvh"},
            ),
            dict(
                type="scatter",
                x=list(range(n)),
                y=grids.compact(Y[row], 3),
                xaxis="x4",
                yaxis="y4",
                mode="lines+markers",
                name="output",
                line={"color": "#0072B2", "width": 2},
                marker={"size": 5},
            ),
            dict(
                type="scatter",
                x=grids.compact(centres, 2),
                y=grids.compact(X[PROFILE_ROW], 2),
                xaxis="x4",
                yaxis="y4",
                mode="markers",
                name="X (at its pixel centres)",
                marker={
                    "size": 10,
                    "color": "rgba(0,0,0,0)",
                    "line": {"color": "#D55E00", "width": 2},
                },
            ),
        ]
        for trace in data[:5]:
            trace["showlegend"] = False
        # the followed row, outlined on E and on the output
        data.append(
            grids.rect_trace([(row, 0, row, n - 1)], 0, color="#333333", width=1, dash="dot")
        )
        data.append(
            grids.rect_trace([(row, 0, row, n - 1)], 2, color="#333333", width=1, dash="dot")
        )
        data[-1]["showlegend"] = data[-2]["showlegend"] = False
        return grids.figure(data, layout)
