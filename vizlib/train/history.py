"""What a training run returns: the loss of every step and the metrics of every epoch."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

__all__ = ["History"]


class History(Mapping):
    """The record of a training run, readable like a dict of lists.

    Per step (one entry per optimiser step): ``history["step"]`` (1, 2, ...),
    ``history["epoch"]``, ``history["lr"]``, ``history["loss"]`` (the total) and one
    list per loss term when the model returns a dict of losses (for example
    ``history["loss_box_reg"]``), plus ``history["grad_norm"]`` when gradients are
    clipped.

    Per epoch: :attr:`epochs` is a list of dicts (epoch number, mean of each loss term,
    learning rate at its end, seconds, and whatever ``val_fn`` returned);
    ``history.epoch_values("mIoU")`` is one of them as a list.

    ``history.seconds`` is the time spent training (summed over resumed runs).
    """

    def __init__(self) -> None:
        self.steps: dict[str, list[float]] = {"step": [], "epoch": [], "lr": [], "loss": []}
        self.epochs: list[dict[str, float]] = []
        self.terms: list[str] = []  # the loss terms, besides the total "loss"
        self.seconds: float = 0.0

    # -- Mapping interface over the per-step columns --------------------------------
    def __getitem__(self, key: str) -> list[float]:
        if key in self.steps:
            return self.steps[key]
        if self.epochs and key in self.epochs[-1]:
            return self.epoch_values(key)
        raise KeyError(
            f"{key!r}: the history has per-step {sorted(self.steps)} "
            f"and per-epoch {sorted(self.epochs[-1]) if self.epochs else []}"
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in last.items() if k != "epoch")
        return (
            f"History({len(self.steps['step'])} steps, {len(self.epochs)} epochs, "
            f"{self.seconds:.1f} s{'; last epoch: ' + shown if shown else ''})"
        )

    # -- recording -------------------------------------------------------------------
    def add_step(
        self,
        step: int,
        epoch: int,
        lr: float,
        losses: Mapping[str, float],
        grad_norm: float | None = None,
    ) -> None:
        """Append one optimiser step; ``losses`` holds ``"loss"`` and any terms."""
        if not self.terms and len(losses) > 1:
            self.terms = [k for k in losses if k != "loss"]
            for k in self.terms:
                self.steps.setdefault(k, [None] * len(self.steps["step"]))
        self.steps["step"].append(step)
        self.steps["epoch"].append(epoch)
        self.steps["lr"].append(lr)
        for k in ["loss", *self.terms]:
            self.steps[k].append(float(losses[k]))
        if grad_norm is not None:
            self.steps.setdefault("grad_norm", []).append(float(grad_norm))

    def end_epoch(
        self, epoch: int, lr: float, seconds: float, metrics: Mapping | None = None
    ) -> dict:
        """Summarise the steps of ``epoch`` (mean of each loss term) with ``metrics``."""
        rows = [i for i, e in enumerate(self.steps["epoch"]) if e == epoch]
        summary: dict[str, float] = {"epoch": epoch}
        for k in ["loss", *self.terms]:
            vals = [self.steps[k][i] for i in rows]
            summary[k] = sum(vals) / len(vals) if vals else math.nan
        summary["lr"] = lr
        summary["seconds"] = seconds
        for k, v in (metrics or {}).items():
            summary[str(k)] = float(v)
        self.epochs.append(summary)
        return summary

    def epoch_values(self, key: str) -> list[float]:
        """``key`` (a loss term or a validation metric) for every epoch."""
        return [e.get(key, math.nan) for e in self.epochs]

    # -- saving ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain lists and numbers (what a checkpoint stores)."""
        return {
            "steps": {k: list(v) for k, v in self.steps.items()},
            "epochs": [dict(e) for e in self.epochs],
            "terms": list(self.terms),
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> History:
        """The inverse of :meth:`to_dict`."""
        h = cls()
        h.steps = {k: list(v) for k, v in data["steps"].items()}
        h.epochs = [dict(e) for e in data["epochs"]]
        h.terms = list(data["terms"])
        h.seconds = float(data["seconds"])
        return h

    # -- drawing ---------------------------------------------------------------------
    def plot(self, smooth: float = 0.9, figsize: tuple[float, float] | None = None):
        """The loss curves, one panel per loss term, plus one for validation metrics.

        Args:
            smooth (float): weight of the exponential moving average drawn over the
                raw per-step losses, in [0, 1) (0: no smoothing line).

        Returns:
            matplotlib.figure.Figure: not attached to pyplot, so that it shows once
            (as a cell's last expression) and never twice.
        """
        from ._plot import history_figure

        return history_figure(self, smooth=smooth, figsize=figsize)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)
