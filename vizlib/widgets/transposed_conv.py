"""Widget: the transposed convolution as a matrix and as stamping, in 1D and 2D.

A convolution on a flattened input is a matrix ``C`` (``y = C x``); the transposed
convolution is the layer whose matrix is ``C^T`` (Dumoulin & Visin 2016). The same
output is obtained by stamping a copy of the kernel, scaled by each input value, every
``stride`` pixels, adding where the stamps overlap and cropping ``padding``. Where the
number of overlapping stamps varies (kernel size not divisible by the stride) the output
shows the checkerboard pattern of Odena et al. (Distill 2016).

Every number drawn comes from :mod:`vizlib.conv_algebra`; the figure also checks it
against ``torch.nn.functional.conv_transpose1d/2d``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from vizlib import conv_algebra as ca
from vizlib.viz import grids

from ._base import Control, Widget

__all__ = ["TransposedConvWidget", "transposed_conv_example"]

INPUT_1D = 4  # input length in 1D
INPUT_2D = 3  # input height and width in 2D


def transposed_conv_example(dim: str, kernel_size: int, stride: int, padding: int) -> dict:
    """The numbers the widget draws for one state, all from :mod:`vizlib.conv_algebra`.

    1D: input ``x = [1, 2, 3, 4]``, kernel ``[1, 2, ..., k]``.
    2D: input ``x`` = 3x3 of ``1..9``, kernel of ones (so the output shows the overlaps).

    Args:
        dim (str): ``'1D'`` or ``'2D'``.
        kernel_size, stride, padding (int): as in ``nn.ConvTranspose1d/2d``.

    Returns:
        dict with ``x`` (input), ``kernel``, ``C`` (the matching convolution's matrix,
        Tensor[n_in, n_out] over flattened grids), ``T`` (the transposed convolution's
        matrix, Tensor[n_out, n_in]; equals ``C.T``), ``y_matrix`` (``T @ x``, reshaped),
        ``stamped`` (:class:`vizlib.conv_algebra.Stamped`: output and overlap counts),
        ``y_torch`` (``F.conv_transpose1d/2d``) and ``stamps`` (1D only: Tensor[n, m], row
        ``i`` is the stamp of ``x[i]`` after the crop).
    """
    if dim not in ("1D", "2D"):
        raise ValueError(f"dim must be '1D' or '2D', got {dim!r}")
    if dim == "1D":
        x = torch.arange(1.0, INPUT_1D + 1)
        kernel = torch.arange(1.0, kernel_size + 1)
        T = ca.conv_transpose_matrix_1d(INPUT_1D, kernel, stride, padding)  # [m, n]
        m = T.shape[0]
        C = ca.conv_matrix_1d(m, kernel, stride, padding)  # [n, m]
        stamped = ca.conv_transpose_by_stamping_1d(x, kernel, stride, padding)
        # the stamp of each input on its own: stamping a one-hot input
        stamps = torch.stack(
            [
                ca.conv_transpose_by_stamping_1d(
                    x * (torch.arange(INPUT_1D) == i), kernel, stride, padding
                ).output
                for i in range(INPUT_1D)
            ]
        )  # [n, m]
        y_torch = F.conv_transpose1d(
            x[None, None], kernel[None, None], stride=stride, padding=padding
        )[0, 0]
        return dict(
            x=x,
            kernel=kernel,
            C=C,
            T=T,
            y_matrix=T @ x,
            stamped=stamped,
            y_torch=y_torch,
            stamps=stamps,
        )
    x = torch.arange(1.0, INPUT_2D * INPUT_2D + 1).reshape(INPUT_2D, INPUT_2D)
    kernel = torch.ones(kernel_size, kernel_size)
    T = ca.conv_transpose_matrix_2d(INPUT_2D, kernel, stride, padding)  # [m*m, n*n]
    m = ca.conv_transpose_output_size(INPUT_2D, kernel_size, stride, padding)
    C = ca.conv_matrix_2d(m, kernel, stride, padding)  # [n*n, m*m]
    stamped = ca.conv_transpose_by_stamping_2d(x, kernel, stride, padding)
    y_torch = F.conv_transpose2d(x[None, None], kernel[None, None], stride=stride, padding=padding)[
        0, 0
    ]
    return dict(
        x=x,
        kernel=kernel,
        C=C,
        T=T,
        y_matrix=(T @ x.flatten()).reshape(m, m),
        stamped=stamped,
        y_torch=y_torch,
        stamps=None,
    )


class TransposedConvWidget(Widget):
    """The convolution matrix, its transpose, and the transposed convolution as stamps.

    Controls: 1D or 2D, kernel size, stride, padding. In 1D the panels are the
    convolution matrix ``C``, its transpose ``T = C^T``, the stamps (one row per input
    value, then their sum) and the overlap count; in 2D the input, ``T``, the output and
    the overlap count (the checkerboard appears with kernel 3, stride 2).
    """

    controls = [
        Control("dim", "dimensions", values=["1D", "2D"], default="1D", kind="toggle"),
        Control("kernel_size", "kernel size", values=[2, 3, 4], default=3),
        Control("stride", "stride", values=[1, 2], default=2),
        Control("padding", "padding", values=[0, 1], default=0),
    ]

    def figure(self, dim="1D", kernel_size=3, stride=2, padding=0):
        ex = transposed_conv_example(dim, kernel_size, stride, padding)
        out, overlap = ex["stamped"]
        agree = bool(torch.allclose(ex["y_matrix"], out) and torch.allclose(out, ex["y_torch"]))
        check = (
            "T @ x = stamping = F.conv_transpose"
            if agree
            else "MISMATCH between T @ x, stamping and torch"
        )
        if dim == "1D":
            n, m = ex["C"].shape
            stamps = torch.cat([ex["stamps"], out[None]])  # [n + 1, m]: the stamps, then their sum
            panels = [ex["C"], ex["T"], stamps, overlap[None].float()]
            titles = [
                f"C: conv {m}→{n}  ({n}×{m})",
                f"T = Cᵀ  ({m}×{n})",
                "stamps x[i]·w, last row: sum",
                "overlap count",
            ]
            texts = [True, True, True, True]
        else:
            m = out.shape[0]
            # T is tall ((m*m) x 9): draw its transpose C, whose row i, read as an m x m
            # image, is the stamp that input pixel i leaves on the output.
            panels = [ex["x"], ex["C"], out, overlap.float()]
            titles = [
                f"input x ({INPUT_2D}×{INPUT_2D})",
                f"C = Tᵀ ({INPUT_2D**2}×{m * m})",
                f"y = T x = stamps ({m}×{m})",
                "overlap count",
            ]
            texts = [True, False, True, True]
        data = [
            grids.heatmap(z, k, text=text, zmin=0)
            for k, (z, text) in enumerate(zip(panels[:3], texts[:3], strict=True))
        ]
        data.append(
            grids.heatmap(
                panels[3], 3, text=True, zmin=0, zmax=4, colorscale=grids.COLORSCALE_COUNTS
            )
        )
        overlaps = ", ".join(str(v) for v in sorted(set(overlap.flatten().tolist())))
        layout = grids.panel_layout(
            [tuple(p.shape) for p in panels],
            titles,
            # 1D: the matrices above, the stamps below; 2D: the images above, the matrix below
            rows=[[0, 1], [2, 3]] if dim == "1D" else [[0, 2, 3], [1]],
            cell=22 if dim == "1D" else [22, 10, 22, 22],
            gap=45,
            row_heights=[220, 110] if dim == "1D" else [176, 154],  # the same height in 1D and 2D
            title=(
                f"{dim} transposed convolution: kernel {kernel_size}, stride {stride}, "
                f"padding {padding}<br><sub>{check}; stamps per output pixel: {overlaps}</sub>"
            ),
            top=105,
        )
        if dim == "1D":
            # mark the sum row of the stamps panel
            data.append(grids.rect_trace([(n, 0, n, m - 1)], 2, color="#333333", width=1.5))
        else:
            data.append(grids.rect_trace([], 2))
        return grids.figure(data, layout)
