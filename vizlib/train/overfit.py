"""Overfit one batch: the seconds-long check to run before a long training.

Any model with enough parameters can memorise a single batch. If its loss does not fall
close to zero on one batch repeated, something is broken, and a long training run
would only hide it behind a slowly falling curve: a loss not connected to the output,
frozen or detached parameters, labels that do not match the outputs, a learning rate
far off, a model stuck in eval mode. (Karpathy, "A Recipe for Training Neural
Networks", 2019: "overfit one batch".)

The check trains a *copy* of the model and restores the random-number state, so the
chapter's real training afterwards is the same with or without it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .. import device as default_device
from .._checks import check_positive_int
from .loop import compute_losses, move_to, split_batch

__all__ = ["OverfitError", "OverfitReport", "overfit_one_batch"]


class OverfitError(AssertionError):
    """The model could not overfit one batch: the model or its loss is broken."""


@dataclass(repr=False)
class OverfitReport:
    """The verdict of :func:`overfit_one_batch`.

    Attributes:
        passed (bool): the loss fell by at least ``factor``.
        initial (float): the mean loss of the first tenth of the steps.
        final (float): the mean loss of the last tenth of the steps.
        factor (float): the fall that was asked for.
        losses (list[float]): the total loss of every step.
        frozen (list[str]): parameters that requires_grad but got no gradient.
        message (str): the verdict in words, with hints when it failed.
    """

    passed: bool
    initial: float
    final: float
    factor: float
    losses: list[float] = field(repr=False)
    frozen: list[str] = field(repr=False)
    message: str = ""

    def __str__(self) -> str:
        return self.message

    __repr__ = __str__  # a cell ending in overfit_one_batch(...) shows the verdict


def overfit_one_batch(
    model: torch.nn.Module,
    batch,
    *,
    lr: float = 1e-3,
    optimizer: Callable | None = None,
    loss_fn: Callable | None = None,
    steps: int = 100,
    factor: float = 10.0,
    device=None,
    strict: bool = True,
) -> OverfitReport:
    """Train a copy of ``model`` on one batch and check that its loss collapses.

    Args:
        model (nn.Module): the model to check; it is not modified.
        batch: one ``(inputs, targets)`` pair, e.g. ``next(iter(loader))``.
        lr (float): learning rate of the default optimiser (Adam).
        optimizer (callable, optional): ``optimizer(parameters) -> Optimizer`` to use
            instead of Adam.
        loss_fn (callable, optional): as in :func:`vizlib.train.fit`.
        steps (int): optimiser steps on the batch.
        factor (float): the loss must fall below ``initial / factor``.
        device: where to run; default :func:`vizlib.device`.
        strict (bool): raise :class:`OverfitError` when the check fails (default);
            False returns the failing report instead.

    Returns:
        OverfitReport: ``passed``, ``initial``, ``final`` and a message; print it.

    Raises:
        OverfitError: the loss did not fall by ``factor`` (with ``strict``).
        ValueError: a bad argument, or no parameter receives a gradient.
    """
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    steps = check_positive_int("steps", steps)
    if not (isinstance(factor, (int, float)) and factor > 1):
        raise ValueError(f"factor must be a number > 1, got {factor!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    dev = torch.device(device) if device is not None else default_device()
    inputs, targets = split_batch(batch)
    inputs, targets = move_to(inputs, dev), move_to(targets, dev)

    devices = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        trial = copy.deepcopy(model).to(dev).train()
        params = [p for p in trial.parameters() if p.requires_grad]
        if not params:
            raise ValueError(
                "the model has no parameter with requires_grad=True: nothing can learn"
            )
        opt = optimizer(params) if optimizer is not None else torch.optim.Adam(params, lr=lr)
        losses: list[float] = []
        frozen: list[str] = []
        for i in range(steps):
            opt.zero_grad(set_to_none=True)
            total = compute_losses(trial, inputs, targets, loss_fn)["loss"]
            if not total.requires_grad:
                raise ValueError(
                    "the loss does not depend on any parameter (it has no "
                    "grad_fn): is it computed from detached tensors or .item()?"
                )
            total.backward()
            if i == 0:
                frozen = [
                    n for n, p in trial.named_parameters() if p.requires_grad and p.grad is None
                ]
            value = float(total.detach())
            losses.append(value)
            if not math.isfinite(value):
                break
            opt.step()

    # Means over the first and the last tenth of the steps: dropout makes single steps noisy.
    tenth = max(1, steps // 10)
    initial = sum(losses[:tenth]) / len(losses[:tenth])
    final = sum(losses[-tenth:]) / tenth if len(losses) == steps else losses[-1]
    passed = math.isfinite(final) and final <= initial / factor
    report = OverfitReport(passed, initial, final, float(factor), losses, frozen)
    report.message = _verdict(report, steps)
    if strict and not passed:
        raise OverfitError(report.message)
    return report


def _verdict(r: OverfitReport, steps: int) -> str:
    head = (
        f"overfit one batch: loss {r.initial:.4g} -> {r.final:.4g} in {steps} steps "
        f"(needed < {r.initial / r.factor:.4g})"
    )
    if r.passed:
        return head + ": passed, the model can learn."
    hints = []
    if not math.isfinite(r.final):
        hints.append(
            "the loss became NaN/inf: lower the learning rate or check the loss for "
            "log(0) and division by zero"
        )
    elif r.final > r.initial * 0.9:
        hints.append(
            "the loss barely moved: is the loss computed from the model's output? "
            "is the learning rate far too small?"
        )
    else:
        hints.append("the loss falls, but too slowly: raise lr or steps; if it bounces, lower lr")
    if r.frozen:
        shown = ", ".join(r.frozen[:5]) + (" ..." if len(r.frozen) > 5 else "")
        hints.append(
            f"{len(r.frozen)} trainable parameter(s) got no gradient ({shown}): "
            "a layer the forward pass skips, or a detach()"
        )
    hints.append("check that the targets match the outputs (class indices, box format)")
    return head + ": FAILED.\n  - " + "\n  - ".join(hints)
