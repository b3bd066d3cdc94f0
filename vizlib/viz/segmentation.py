"""Drawing semantic segmentations (matplotlib): label maps in colour, side-by-side
predictions of several models, and boundary-quality curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .._checks import check_positive_int
from .boxes import as_uint8_image

__all__ = ["colour_labels", "segmentation_grid", "trimap_figure", "legend_handles"]

IGNORED_GREY = 128


def _palette(num_labels: int) -> np.ndarray:
    from ..data.scenes import PALETTE

    if num_labels <= len(PALETTE):
        return PALETTE
    rng = np.random.default_rng(0)  # fixed colours for the classes beyond the palette
    extra = rng.integers(0, 256, size=(num_labels - len(PALETTE), 3), dtype=np.uint8)
    return np.concatenate([PALETTE, extra])


def colour_labels(labels, num_labels: int | None = None) -> np.ndarray:
    """A label map ``[H, W]`` (int) as an RGB image ``uint8 [H, W, 3]``.

    The scenes' palette (``vizlib.data.PALETTE``) for ids 0-8, fixed random colours for
    higher ids (PASCAL VOC's 21 classes), grey for 255 (ignored).
    """
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer map [H, W], got {labels.dtype} {labels.shape}")
    if labels.size and int(labels.min()) < 0:
        raise ValueError(
            f"labels must be class ids >= 0 (or 255 for ignored), got {int(labels.min())}"
        )
    if num_labels is not None:
        num_labels = check_positive_int("num_labels", num_labels)
    known = labels != 255
    top = int(labels[known].max()) + 1 if known.any() else 1
    palette = _palette(max(top, num_labels or 0))
    out = np.full((*labels.shape, 3), IGNORED_GREY, dtype=np.uint8)
    out[known] = palette[labels[known]]
    return out


def legend_handles(class_names: Sequence[str]):
    """Matplotlib patches naming each class's colour (for ``fig.legend``)."""
    from matplotlib.patches import Patch

    if isinstance(class_names, str) or not isinstance(class_names, Sequence) or not class_names:
        raise ValueError(f"class_names must be a non-empty sequence of names, got {class_names!r}")
    palette = _palette(len(class_names))
    return [Patch(color=palette[i] / 255, label=name) for i, name in enumerate(class_names)]


def segmentation_grid(
    images,
    truths,
    predictions: Mapping[str, Sequence],
    *,
    titles: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    size: float = 1.6,
):
    """One row per image: the image, the truth, then each model's prediction.

    Args:
        images (sequence of Tensor[3, H, W]): the images.
        truths (sequence of Tensor[H, W] int): the true label maps.
        predictions (dict[str, sequence of Tensor[H, W] int]): each model's label maps,
            in the same order as ``images``.
        titles (sequence of str, optional): a caption for each row (e.g. its score).
        class_names (sequence of str, optional): add a colour legend.
        size (float): inches per panel.

    Returns:
        matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    if not isinstance(predictions, Mapping):
        raise ValueError(
            "predictions must be a dict {model name: label maps}, got "
            f"{type(predictions).__name__}"
        )
    n = len(images)
    if len(truths) != n or any(len(p) != n for p in predictions.values()):
        lengths = ", ".join(f"{k} {len(p)}" for k, p in predictions.items())
        raise ValueError(
            "images, truths and every model's predictions must have the same length, "
            f"got images {n}, truths {len(truths)}" + (f", {lengths}" if lengths else "")
        )
    if n == 0:
        raise ValueError("nothing to draw: no images")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must have one entry per image ({n}), got {len(titles)}")
    columns = ["image", "truth", *predictions]
    fig = Figure(
        figsize=(size * len(columns), size * n + (0.5 if class_names else 0.2)),
        layout="constrained",
    )
    axes = fig.subplots(n, len(columns), squeeze=False)
    for r in range(n):
        panels = [as_uint8_image(images[r]), colour_labels(truths[r])]
        panels += [colour_labels(p[r]) for p in predictions.values()]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
        if titles is not None:
            axes[r, 0].set_ylabel(titles[r], fontsize=7)
    if class_names:
        fig.legend(
            handles=legend_handles(class_names),
            loc="outside lower center",
            ncol=min(len(class_names), 9),
            fontsize=7,
            frameon=False,
        )
    return fig


def trimap_figure(
    widths: Sequence[int],
    curves: Mapping[str, Sequence[float]],
    full: Mapping[str, float] | None = None,
    title: str = "",
):
    """mIoU in a band around the true boundaries, against the band's half-width.

    Args:
        widths (sequence of int): band half-widths in pixels (x axis).
        curves (dict[str, sequence of float]): each model's trimap mIoU at each width.
        full (dict[str, float], optional): each model's ordinary mIoU, drawn as a dotted line.

    Returns:
        matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    widths = list(widths)
    if not widths:
        raise ValueError("widths must name at least one band half-width")
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError(f"curves must be a non-empty dict {{model name: values}}, got {curves!r}")
    for name, values in curves.items():
        if len(values) != len(widths):
            raise ValueError(f"curves[{name!r}] has {len(values)} values for {len(widths)} widths")
    if full is not None and not isinstance(full, Mapping):
        raise ValueError(f"full must be a dict {{model name: mIoU}}, got {type(full).__name__}")
    fig = Figure(figsize=(5.5, 3.4), layout="constrained")
    ax = fig.subplots()
    for i, (name, values) in enumerate(curves.items()):
        (line,) = ax.plot(widths, list(values), "o-", label=name, color=f"C{i}")
        if full and name in full:
            ax.axhline(full[name], color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("band half-width around the true boundaries (pixels)")
    ax.set_ylabel("mIoU inside the band")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
