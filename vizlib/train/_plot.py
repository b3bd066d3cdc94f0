"""Loss curves of a :class:`~vizlib.train.History` as a matplotlib figure.

The figure is a bare ``matplotlib.figure.Figure`` (not created through pyplot), so the
inline backend never shows it on its own: the caller decides where it goes (a cell's
result, a PNG pushed into a live display, a file).
"""

from __future__ import annotations

import io
import math

__all__ = ["history_figure", "figure_png"]

# Columns of an epoch summary that are not validation metrics.
_EPOCH_BOOKKEEPING = {"epoch", "lr", "seconds"}


def _ema(values: list[float], weight: float) -> list[float]:
    out, avg = [], None
    for v in values:
        avg = v if avg is None else weight * avg + (1 - weight) * v
        out.append(avg)
    return out


def history_figure(history, smooth: float = 0.9, figsize=None, title: str | None = None):
    """One panel per loss term (total first), then one for validation metrics if any."""
    from matplotlib.figure import Figure

    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"smooth must be in [0, 1), got {smooth}")
    terms = ["loss", *history.terms]
    metric_names = []
    for row in history.epochs:
        for k in row:
            if k not in _EPOCH_BOOKKEEPING and k not in terms and k not in metric_names:
                metric_names.append(k)
    n = len(terms) + (1 if metric_names else 0)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=figsize or (3.2 * cols, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    steps = history.steps["step"]
    for ax, term in zip(axes, terms, strict=False):
        values = history.steps[term]
        ax.plot(steps, values, color="C0", alpha=0.3 if smooth else 1.0, lw=0.8)
        if smooth and values:
            ax.plot(steps, _ema(values, smooth), color="C0", lw=1.5)
        # per-epoch means as dots at each epoch's last step
        ends = _epoch_end_steps(history)
        if ends:
            ax.plot(ends, [e[term] for e in history.epochs], "o", color="C1", ms=3)
        ax.set_title("total loss" if term == "loss" else term, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if values and min(values) > 0 and max(values) / min(values) > 30:
            ax.set_yscale("log")  # a loss that falls by orders of magnitude reads better in log
    if metric_names:
        ax = axes[len(terms)]
        epochs = history.epoch_values("epoch")
        for i, name in enumerate(metric_names):
            ax.plot(epochs, history.epoch_values(name), "o-", color=f"C{i + 2}", ms=3, label=name)
        ax.set_title("validation", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _epoch_end_steps(history) -> list[int]:
    last: dict[int, int] = {}
    for step, epoch in zip(history.steps["step"], history.steps["epoch"], strict=True):
        last[epoch] = step
    ends = [last.get(row["epoch"]) for row in history.epochs]
    return [] if None in ends else ends


def figure_png(fig, dpi: int = 80) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
