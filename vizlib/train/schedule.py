"""Learning-rate schedule: linear warm-up, then cosine decay.

Warm-up (Goyal et al., 2017, "Accurate, Large Minibatch SGD") starts from a small
learning rate so that the first, noisy gradients of a freshly initialised network do
not throw it into a bad region; Adam's moment estimates are unreliable for the same
first steps. Cosine decay (Loshchilov & Hutter, 2017, "SGDR") then lowers the rate
smoothly to a floor, which usually ends lower than a constant rate with no tuning.
The "poly" decay, ``(1 - progress) ** 0.9``, is the policy of ParseNet and DeepLab
(Chen et al., 2018, "DeepLab", TPAMI): it stays near the base rate longer than a line and
drops steeply at the end.

The schedule is a pure function of the step, so a resumed run needs only the step
number to be back on it, and a chapter can plot it before training.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .._checks import check_fraction, check_positive_int

__all__ = ["POLY_POWER", "SCHEDULES", "lr_factor"]

SCHEDULES = ("cosine", "linear", "constant", "poly")
POLY_POWER = 0.9  # DeepLab's power of the "poly" schedule


def lr_factor(
    step: int,
    total_steps: int,
    warmup_steps: int = 0,
    schedule: str | Callable[[int, int], float] = "cosine",
    min_lr_ratio: float = 0.0,
) -> float:
    """The multiplier of the base learning rate for optimiser step ``step``.

    Args:
        step (int): the step about to be taken, counted from 0.
        total_steps (int): how many steps the whole run takes (>= 1).
        warmup_steps (int): steps of linear warm-up from ``1 / (warmup_steps + 1)`` of
            the base rate up to the base rate; 0 for none.
        schedule (str or callable): after warm-up, ``"cosine"`` (half a cosine from 1
            down to ``min_lr_ratio``), ``"linear"`` (straight line down to it) or
            ``"constant"`` (stays at 1), ``"poly"`` (``(1 - progress) ** POLY_POWER``
            down to ``min_lr_ratio``, DeepLab's policy; with no warm-up and no floor it
            equals ``torch.optim.lr_scheduler.PolynomialLR(power=0.9)``); or a function
            ``(step, total_steps) -> factor`` that replaces the whole schedule, warm-up
            included.
        min_lr_ratio (float): the floor the decay ends at, as a fraction of the base
            rate, in [0, 1].

    Returns:
        float: the factor, in ``(0, 1]`` for the built-in schedules.
    """
    check_positive_int("step", step, allow_zero=True)
    total_steps = check_positive_int("total_steps", total_steps)
    warmup_steps = check_positive_int("warmup_steps", warmup_steps, allow_zero=True)
    min_lr_ratio = check_fraction("min_lr_ratio", min_lr_ratio)
    if callable(schedule):
        return float(schedule(step, total_steps))
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES} or a callable, got {schedule!r}")
    if step < warmup_steps:
        # (step + 1) so that the very first step already moves the weights.
        return (step + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return 1.0
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)  # 0 → 1 over the decay
    if schedule == "linear":
        shape = 1.0 - progress
    elif schedule == "poly":
        shape = (1.0 - progress) ** POLY_POWER
    else:
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr_ratio + (1.0 - min_lr_ratio) * shape
