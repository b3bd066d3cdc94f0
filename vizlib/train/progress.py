"""How a training run reports its progress, depending on where it runs.

* In a live notebook (JupyterLab, Colab, VS Code): a bar that updates in place and a
  loss curve redrawn every couple of seconds, both plain ``text/html`` / ``image/png``
  outputs updated through an IPython display handle. No ipywidgets: a notebook executed
  without a front end (nbclient) applies the updates to its stored outputs, so what is
  saved is the finished bar and the final curve, never a dead widget.
* Executed for publishing (``vizlib.display_mode() == "static"``, set by the book build
  and the GPU runner): one plain text line per epoch, then the final loss curve drawn
  once as a static figure.
* In a terminal: a ``tqdm`` text bar per epoch and the same epoch lines.
* ``progress=False``: nothing.

Every reporter has the same four methods: ``start``, ``step``, ``end_epoch``, ``close``.
"""

from __future__ import annotations

import base64
import sys
import time

from ._plot import figure_png, history_figure

__all__ = ["PROGRESS_MODES", "epoch_line", "make_progress"]

PROGRESS_MODES = ("auto", "live", "text", "bar", "off")


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def epoch_line(summary: dict, n_epochs: int, terms: list[str]) -> str:
    """``epoch 3/10  loss 0.412 (cls 0.2, box 0.21)  lr 1e-03  12.3 s  val mIoU 0.51``."""
    text = f"epoch {summary['epoch']}/{n_epochs}  loss {_fmt(summary['loss'])}"
    if terms:
        text += " (" + ", ".join(f"{_short(t)} {_fmt(summary[t])}" for t in terms) + ")"
    text += f"  lr {summary['lr']:.1e}  {summary['seconds']:.1f} s"
    metrics = [k for k in summary if k not in ("epoch", "loss", "lr", "seconds", *terms)]
    if metrics:
        text += "  val " + ", ".join(f"{k} {_fmt(summary[k])}" for k in metrics)
    return text


def _short(term: str) -> str:
    # torchvision names its terms loss_classifier, loss_box_reg, ...: the prefix is noise.
    return term[5:] if term.startswith("loss_") else term


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def make_progress(mode: str | bool):
    """The reporter for ``mode`` (one of :data:`PROGRESS_MODES`, or True/False)."""
    if mode is True:
        mode = "auto"
    if mode is False or mode is None:
        mode = "off"
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress must be one of {PROGRESS_MODES} or True/False, got {mode!r}")
    if mode == "auto":
        from .. import display_mode

        if _in_kernel():
            mode = "live" if display_mode() == "live" else "text"
        else:
            mode = "bar" if sys.stderr.isatty() else "text"
    if mode == "live":
        return LiveProgress()
    if mode == "text":
        return TextProgress(figure=_in_kernel())
    if mode == "bar":
        return BarProgress()
    return SilentProgress()


class SilentProgress:
    """Reports nothing."""

    def start(self, header: str, n_epochs: int) -> None:
        self.n_epochs = n_epochs

    def step(self, epoch: int, i: int, n: int, history) -> None:
        pass

    def end_epoch(self, summary: dict, history) -> None:
        pass

    def close(self, history, message: str | None = None) -> None:
        pass


class TextProgress(SilentProgress):
    """Plain text lines: what a published page and a log file should show."""

    def __init__(self, figure: bool = False) -> None:
        self.figure = figure

    def start(self, header: str, n_epochs: int) -> None:
        self.n_epochs = n_epochs
        print(header, flush=True)

    def end_epoch(self, summary: dict, history) -> None:
        print(epoch_line(summary, self.n_epochs, history.terms), flush=True)

    def close(self, history, message: str | None = None) -> None:
        if message:
            print(message, flush=True)
        if self.figure and history.steps["step"]:
            from IPython.display import Image, display

            display(Image(data=figure_png(history_figure(history), dpi=100)))


class BarProgress(TextProgress):
    """A tqdm text bar per epoch in a terminal (plain tqdm: never a widget)."""

    def start(self, header: str, n_epochs: int) -> None:
        super().start(header, n_epochs)
        self.bar = None

    def step(self, epoch: int, i: int, n: int, history) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(
                total=n,
                desc=f"epoch {epoch}/{self.n_epochs}",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self.bar.update(i - self.bar.n)
        if history.steps["loss"]:
            self.bar.set_postfix_str(f"loss {_fmt(history.steps['loss'][-1])}", refresh=False)

    def end_epoch(self, summary: dict, history) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        super().end_epoch(summary, history)

    def close(self, history, message: str | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        super().close(history, message)


class LiveProgress(TextProgress):
    """A bar and a loss curve updated in place in a live notebook."""

    bar_every = 0.25  # seconds between bar redraws
    curve_every = 2.0  # seconds between curve redraws (a redraw costs ~0.1 s)

    def __init__(self) -> None:
        super().__init__(figure=False)

    def start(self, header: str, n_epochs: int) -> None:
        from IPython.display import display

        super().start(header, n_epochs)
        self.t0 = time.perf_counter()
        self.last_bar = -1e9
        self.last_curve = (
            self.t0
        )  # the first curve after curve_every s: a short run draws once, at the end
        self.epoch = 0
        self.bar = display(self._bar_bundle(0, 0, 1, None), raw=True, display_id=True)
        self.curve = display(
            {"text/plain": "(the loss curve appears after the first steps)"},
            raw=True,
            display_id=True,
        )

    def _bar_bundle(
        self, epoch: int, i: int, n: int, loss: float | None, done: bool = False
    ) -> dict:
        frac = 1.0 if done else (i / n if n else 0.0)
        elapsed = time.perf_counter() - self.t0
        if done:
            where = f"done: {self.n_epochs} epochs"
        elif n == 0:
            where = f"stopped at epoch {epoch}/{self.n_epochs}"
        else:
            where = f"epoch {epoch}/{self.n_epochs}  step {i}/{n}"
        text = f"{where}  {elapsed:.1f} s" + (f"  loss {_fmt(loss)}" if loss is not None else "")
        cells = 30
        filled = int(round(frac * cells))
        plain = "[" + "#" * filled + "." * (cells - filled) + "] " + text
        html = (
            f'<div style="font-family:monospace;font-size:13px">'
            f'<progress value="{frac:.4f}" max="1" style="width:280px;vertical-align:middle">'
            f"</progress> {text}</div>"
        )
        return {"text/plain": plain, "text/html": html}

    def step(self, epoch: int, i: int, n: int, history) -> None:
        self.epoch = epoch
        now = time.perf_counter()
        if now - self.last_bar >= self.bar_every or i == n:
            self.last_bar = now
            loss = history.steps["loss"][-1] if history.steps["loss"] else None
            self.bar.update(self._bar_bundle(epoch, i, n, loss), raw=True)
        if now - self.last_curve >= self.curve_every and len(history.steps["step"]) >= 2:
            self._draw_curve(history)

    def _draw_curve(self, history) -> None:
        png = base64.b64encode(figure_png(history_figure(history), dpi=80)).decode("ascii")
        last = history.steps["step"][-1]
        self.curve.update(
            {
                "image/png": png,
                "text/plain": f"loss curve up to step {last}: "
                f"loss {_fmt(history.steps['loss'][-1])}",
            },
            raw=True,
        )
        # measured after the draw, so a slow draw cannot eat the whole run
        self.last_curve = time.perf_counter()

    def end_epoch(self, summary: dict, history) -> None:
        super().end_epoch(summary, history)
        if history.steps["step"] and time.perf_counter() - self.last_curve >= self.curve_every:
            self._draw_curve(history)

    def close(self, history, message: str | None = None) -> None:
        loss = history.steps["loss"][-1] if history.steps["loss"] else None
        self.bar.update(self._bar_bundle(self.epoch, 0, 0, loss, done=message is None), raw=True)
        if history.steps["step"]:
            self._draw_curve(history)
        if message:
            print(message, flush=True)
