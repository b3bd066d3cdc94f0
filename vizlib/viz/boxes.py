"""Boxes, labels and masks drawn over an image: plotly for widgets, matplotlib for print.

Boxes are ``Tensor[N, 4]`` (or arrays/lists) in absolute pixels, ``(x1, y1, x2, y2)``
format, as everywhere in vizlib. Pixel ``(row, col)`` covers the square
``[col, col + 1] x [row, row + 1]``, so the box ``(0, 0, W, H)`` is exactly the whole
image: the same convention as ``torchvision.ops`` and the COCO annotations.

Plotly pieces come in two kinds:

* **traces** (:func:`box_trace`, :func:`label_trace`, :func:`image_trace`): plain trace
  dicts (``{'type': 'scatter', ...}``; pass them to ``go.Figure`` or ``fig.add_trace``).
  One scatter holds *all* boxes of a group, outlines separated by ``None``. A widget
  keeps the same list of traces in every state, so that the precomputed slider steps of
  the static book only replace their ``x``/``y`` (cheap) and never the image. Dicts, not
  ``go.Scatter``: a live widget builds its figure in a few ms without plotly's
  validation (see :mod:`vizlib.viz._figure`, which also sets image axes).
* **print** (:func:`draw_boxes_mpl`): boxes, labels and masks on a matplotlib axes, for
  static figures and galleries.

Nothing here computes IoU, matches or scores: that is the core's job (``vizlib.boxes``,
``vizlib.anchors``, ``vizlib.nms``); this module only draws what it is given.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np

from vizlib._checks import check_boxes

__all__ = [
    "PALETTE",
    "color_for",
    "with_alpha",
    "as_uint8_image",
    "image_to_data_uri",
    "image_trace",
    "box_outline_xy",
    "box_trace",
    "label_trace",
    "overlay_masks",
    "draw_boxes_mpl",
]

# The drawing colours: Okabe & Ito's colour-blind-safe palette (with a grey and a violet),
# as hex strings, cycled by box or class index (color_for) and used by curves and widgets.
# Not the colours of the scenes' classes in label maps: those belong to the label scheme
# (vizlib.data.PALETTE, uint8 RGB per class id, which the COCO panoptic export carries).
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # green
    "#D55E00",  # vermillion
    "#CC79A7",  # purple-pink
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
    "#999999",  # grey
    "#7F3C8D",  # violet
)


def color_for(index: int) -> str:
    """The palette colour for class (or box) number ``index``; wraps around."""
    return PALETTE[int(index) % len(PALETTE)]


def with_alpha(color: str, alpha: float) -> str:
    """``'#RRGGBB'`` as an ``'rgba(r,g,b,alpha)'`` string (plotly fill colours)."""
    if not (isinstance(color, str) and color.startswith("#") and len(color) == 7):
        raise ValueError(f"color must be a '#RRGGBB' string, got {color!r}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{float(alpha):.3g})"


def _boxes_np(name: str, boxes) -> np.ndarray:
    """Validated ``[N, 4]`` xyxy boxes as a float64 numpy array (input untouched)."""
    if boxes is None:
        return np.zeros((0, 4))
    return check_boxes(name, boxes).detach().cpu().double().numpy()


def as_uint8_image(image) -> np.ndarray:
    """An image as ``uint8 [H, W, 3]``.

    Accepts ``[H, W]`` (grey), ``[H, W, 3]`` or a torch ``[3, H, W]`` tensor; floats are
    read as values in ``[0, 1]``, integers as values in ``[0, 255]``.
    """
    if hasattr(image, "detach"):  # torch tensor, channels first like torchvision
        image = image.detach().cpu()
        if image.dim() == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)  # [H, W, 3]
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"image must have shape [H, W], [H, W, 3] or [3, H, W], got {a.shape}")
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("image must be finite, but it holds NaN or inf")
        return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
        return np.clip(a.astype(np.int64) * (255 if a.dtype == bool else 1), 0, 255).astype(
            np.uint8
        )
    raise ValueError(f"image must hold numbers, got dtype {a.dtype}")


def image_to_data_uri(image, fmt: str = "png") -> str:
    """The image as a ``data:image/png;base64,...`` URI (a few KB for a small scene).

    A PNG data URI is ~10x smaller in a figure than plotly's per-pixel ``z`` array, and
    it is put in once, outside the slider steps.
    """
    from PIL import Image

    if fmt not in ("png", "jpeg"):
        raise ValueError(f"fmt must be 'png' or 'jpeg', got {fmt!r}")
    buffer = io.BytesIO()
    Image.fromarray(as_uint8_image(image)).save(buffer, format=fmt.upper(), optimize=True)
    return f"data:image/{fmt};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_trace(image, name: str = "image") -> dict:
    """An image trace (dict) whose pixels cover ``[0, W] x [0, H]`` (box coordinates)."""
    a = as_uint8_image(image)
    # plotly's image trace centres pixel i at x0 + i*dx: x0 = 0.5 puts its edges at i, i + 1.
    return {
        "type": "image",
        "source": image_to_data_uri(a),
        "x0": 0.5,
        "y0": 0.5,
        "dx": 1,
        "dy": 1,
        "name": name,
        "hoverinfo": "skip",
    }


def box_outline_xy(boxes) -> tuple[list, list]:
    """Outline coordinates of every box, for one ``go.Scatter``: ``(xs, ys)``.

    Each box is a closed path of five corners; boxes are separated by ``None`` so that
    plotly lifts the pen between them. Numbers are rounded to 0.01 px (smaller HTML).
    """
    b = _boxes_np("boxes", boxes)
    xs: list = []
    ys: list = []
    for x1, y1, x2, y2 in np.round(b, 2).tolist():
        xs += [x1, x2, x2, x1, x1, None]
        ys += [y1, y1, y2, y2, y1, None]
    return xs, ys


def box_trace(
    boxes,
    color: str = PALETTE[0],
    name: str = "boxes",
    width: float = 2.0,
    dash: str | None = None,
    fill_opacity: float = 0.0,
    opacity: float = 1.0,
    hovertext: Sequence[str] | None = None,
    showlegend: bool = True,
    legendgroup: str | None = None,
) -> dict:
    """All ``boxes`` as the outlines of one scatter trace (a dict).

    Args:
        boxes (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` format, pixels. ``N`` may be 0:
            the trace is then empty, which keeps a widget's list of traces fixed.
        color (str): ``'#RRGGBB'`` line colour.
        name (str): legend entry.
        width (float): line width in px.
        dash (str, optional): plotly dash style, e.g. ``'dash'``, ``'dot'``.
        fill_opacity (float): opacity of the fill inside each box (0: none).
        opacity (float): opacity of the whole trace.
        hovertext (list[str], optional): one text per box, shown on hover.
        showlegend (bool): whether the trace appears in the legend.
        legendgroup (str, optional): legend group name.

    Returns:
        dict: a plotly scatter trace.
    """
    xs, ys = box_outline_xy(boxes)
    n = len(xs) // 6
    text = None
    if hovertext is not None:
        if len(hovertext) != n:
            raise ValueError(f"hovertext must have one entry per box ({n}), got {len(hovertext)}")
        text = [t for t in hovertext for _ in range(6)]
    trace = {
        "type": "scatter",
        "x": xs,
        "y": ys,
        "mode": "lines",
        "name": name,
        "line": {"color": color, "width": width},
        "fill": "toself" if fill_opacity > 0 else "none",
        "opacity": opacity,
        "hoverinfo": "text+name" if text is not None else "name",
        "showlegend": showlegend,
    }
    if dash is not None:
        trace["line"]["dash"] = dash
    if fill_opacity > 0:
        trace["fillcolor"] = with_alpha(color, fill_opacity)
    if text is not None:
        trace["hovertext"] = text
    if legendgroup is not None:
        trace["legendgroup"] = legendgroup
    return trace


def label_trace(
    boxes,
    texts: Sequence[str],
    color: str = "#ffffff",
    name: str = "labels",
    size: int = 11,
    position: str = "top left",
) -> dict:
    """One text per box, at its top-left corner (a scatter trace dict).

    Args:
        boxes (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` format.
        texts (list[str]): ``N`` strings, e.g. ``'cat 0.93'``.
        color (str): text colour.
        name (str): trace name.
        size (int): font size in px.
        position (str): ``'top left'`` (inside, at the top-left corner) or ``'above'``.
    """
    b = _boxes_np("boxes", boxes)
    if len(texts) != len(b):
        raise ValueError(f"texts must have one entry per box ({len(b)}), got {len(texts)}")
    if position not in ("top left", "above"):
        raise ValueError(f"position must be 'top left' or 'above', got {position!r}")
    x = np.round(b[:, 0] + (1.0 if position == "top left" else 0.0), 2).tolist()
    y = np.round(b[:, 1] + (1.0 if position == "top left" else -1.0), 2).tolist()
    return {
        "type": "scatter",
        "x": x,
        "y": y,
        "mode": "text",
        "text": list(texts),
        "textposition": "bottom right" if position == "top left" else "top right",
        "textfont": {"color": color, "size": size},
        "name": name,
        "hoverinfo": "skip",
        "showlegend": False,
    }


def _int_list(name: str, values, n: int) -> list[int]:
    if values is None:
        return [0] * n
    a = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values).reshape(-1)
    if len(a) != n:
        raise ValueError(f"{name} must have one entry per box ({n}), got {len(a)}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integers (class indices), got dtype {a.dtype}")
    return [int(v) for v in a]


def _float_list(name: str, values, n: int) -> list[float] | None:
    if values is None:
        return None
    a = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=float)
    a = a.reshape(-1)
    if len(a) != n:
        raise ValueError(f"{name} must have one entry per box ({n}), got {len(a)}")
    return [float(v) for v in a]


def _label_texts(labels, scores, class_names) -> list[str]:
    texts = []
    for i, k in enumerate(labels):
        name = class_names[k] if class_names is not None and k < len(class_names) else str(k)
        texts.append(name if scores is None else f"{name} {scores[i]:.2f}")
    return texts


def overlay_masks(
    image, masks, colors: Sequence[str] | None = None, alpha: float = 0.5
) -> np.ndarray:
    """Blend instance masks into an image, each in its colour.

    Args:
        image: ``[H, W, 3]`` uint8 array (or anything :func:`as_uint8_image` reads).
        masks (Tensor[N, H, W], bool): one mask per instance.
        colors (list[str], optional): ``'#RRGGBB'`` per mask; the palette by default.
        alpha (float): opacity of the mask colour, in [0, 1].

    Returns:
        np.ndarray[H, W, 3], uint8: a new image (the input is not modified).
    """
    img = as_uint8_image(image).astype(np.float32)  # a copy
    m = np.asarray(masks.detach().cpu() if hasattr(masks, "detach") else masks)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[1:] != img.shape[:2]:
        raise ValueError(
            f"masks must have shape [N, {img.shape[0]}, {img.shape[1]}] to match the image, "
            f"got {m.shape}"
        )
    if m.dtype != bool:
        raise ValueError(f"masks must be bool, got dtype {m.dtype}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if colors is None:
        colors = [color_for(i) for i in range(len(m))]
    if len(colors) != len(m):
        raise ValueError(f"colors must have one entry per mask ({len(m)}), got {len(colors)}")
    for mask, color in zip(m, colors, strict=True):
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)
        img[mask] = (1 - alpha) * img[mask] + alpha * rgb  # [K, 3]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def draw_boxes_mpl(
    image=None,
    boxes=None,
    labels=None,
    scores=None,
    class_names: Sequence[str] | None = None,
    masks=None,
    ax=None,
    colors: Sequence[str] | None = None,
    linewidth: float = 2.0,
    linestyle: str = "-",
    fontsize: float = 8.0,
):
    """Draw an image with boxes, labels, scores and masks on a matplotlib axes.

    Args:
        image: ``[H, W, 3]`` / ``[H, W]`` array or ``[3, H, W]`` tensor, or None (no image).
        boxes (Tensor[N, 4]): boxes in ``(x1, y1, x2, y2)`` format, pixels.
        labels (Tensor[N], int, optional): class index per box; picks the colour.
        scores (Tensor[N], optional): confidence per box, printed after the name.
        class_names (list[str], optional): name of each class index.
        masks (Tensor[N, H, W], bool, optional): instance masks, overlaid in box colours.
        ax (matplotlib Axes, optional): where to draw (a new 5 x 5 in figure if None).
        colors (list[str], optional): one colour per box, instead of the class colours.
        linewidth, linestyle, fontsize: of the outlines and labels.

    Returns:
        matplotlib.axes.Axes: the axes drawn on.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    b = _boxes_np("boxes", boxes)
    n = len(b)
    lab = _int_list("labels", labels, n)
    sc = _float_list("scores", scores, n)
    if colors is None:
        colors = [color_for(k) for k in lab]
    elif len(colors) != n:
        raise ValueError(f"colors must have one entry per box ({n}), got {len(colors)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    if image is not None:
        img = as_uint8_image(image)
        if masks is not None:
            img = overlay_masks(img, masks, colors=list(colors))
        h, w = img.shape[:2]
        # extent puts pixel edges on integer coordinates, like the boxes
        ax.imshow(img, extent=(0, w, h, 0), interpolation="nearest")
    texts = (
        _label_texts(lab, sc, class_names) if (labels is not None or scores is not None) else None
    )
    for i, (x1, y1, x2, y2) in enumerate(b.tolist()):
        ax.add_patch(
            Rectangle(
                (x1, y1),
                x2 - x1,
                y2 - y1,
                fill=False,
                edgecolor=colors[i],
                linewidth=linewidth,
                linestyle=linestyle,
            )
        )
        if texts is not None:
            ax.text(
                x1,
                y1,
                texts[i],
                color="white",
                fontsize=fontsize,
                va="bottom",
                ha="left",
                bbox={"facecolor": colors[i], "alpha": 0.8, "pad": 1, "edgecolor": "none"},
            )
    if image is None and n:
        ax.set_xlim(min(0, b[:, 0].min()), b[:, 2].max() + 1)
        ax.set_ylim(b[:, 3].max() + 1, min(0, b[:, 1].min()))
        ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax
