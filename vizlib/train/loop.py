"""``fit``: the one training loop every chapter shares (``vizlib.train.fit``).

The loop itself is the textbook one (forward, loss, backward, step); what it adds is
what a chapter should not have to re-write each time:

* the loss: either ``loss_fn(model(inputs), targets)``, or, with no ``loss_fn``, the
  model computes it, ``model(inputs, targets)``, returning one tensor or a dict of
  loss terms as torchvision's detection models do in train mode (each term is
  recorded and plotted; their sum is what is minimised);
* mixed precision on a GPU (bf16 autocast where supported, else fp16 with a
  ``GradScaler`` so that small fp16 gradients do not underflow to zero);
* gradient clipping by global norm;
* a learning-rate schedule: linear warm-up, then cosine decay (:mod:`.schedule`);
* a checkpoint after every epoch, written atomically (:mod:`.checkpoint`), and resuming
  from the newest one when the same call runs again: re-running a chapter's training
  cell after a crash or a kernel restart continues where it stopped, and re-running a
  finished one just loads its weights;
* progress that reads right live and in the published book (:mod:`.progress`);
* several processes under ``torchrun`` (:mod:`.distributed`): the same call, run by
  ``torchrun --nproc_per_node=N script.py``, trains with ``DistributedDataParallel``,
  each process reading its share of the data; rank 0 alone shows progress and writes
  checkpoints, every process resumes from the same one, and the recorded losses are
  averaged over the processes;
* a :class:`~vizlib.train.History` of every step's losses and every epoch's metrics.

On a CPU, two runs with the same ``seed`` (and the same model initialisation) give the
same history and the same weights, and a resumed run ends with the same weights as an
uninterrupted one: the checkpoint stores every random-number state.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from .. import device as default_device
from .. import seed_everything
from .._checks import check_positive_int
from . import distributed
from .checkpoint import (
    checkpoint_path,
    load_latest,
    restore_training_state,
    save_atomic,
    training_state,
)
from .history import History
from .progress import PROGRESS_MODES, make_progress
from .schedule import SCHEDULES, lr_factor

__all__ = ["FitConfig", "fit", "compute_losses", "move_to", "split_batch"]


@dataclass
class FitConfig:
    """The settings of a training run (all optional except one of epochs/steps).

    Attributes:
        epochs (int): passes over the training data. Give this or ``steps``.
        steps (int): optimiser steps in all; the last epoch may stop part-way.
        epoch_steps (int): steps that make one epoch; by default ``len(train_data)``.
            Needed when the data has no length (a generator).
        loss_fn (callable): ``loss_fn(model(inputs), targets)`` returns a scalar tensor
            or a dict of scalar loss terms. ``None``: the model returns them itself when
            called as ``model(inputs, targets)`` (torchvision detection style).
        device (str or torch.device): where to train; default :func:`vizlib.device`.
        amp ("auto", "bf16", "fp16" or False): mixed precision, on CUDA only. ``"auto"``
            picks bf16 where the GPU supports it, else fp16 with a gradient scaler.
        clip_grad_norm (float): clip the global gradient norm to this; ``None``: don't.
        warmup_steps (int or float): linear warm-up length, in steps, or as a fraction
            of all steps when a float in (0, 1).
        schedule ("cosine", "linear", "constant" or callable): the decay after warm-up;
            see :func:`vizlib.train.lr_factor`.
        min_lr_ratio (float): where the decay ends, as a fraction of the base rate.
        checkpoint_dir (path): save a checkpoint there after every epoch and resume from
            the newest one; ``None``: no checkpoints.
        resume (bool): resume from ``checkpoint_dir`` if it holds a checkpoint (True);
            False starts afresh and overwrites. The environment variable
            ``VIZLIB_RESUME=0`` turns resuming off everywhere: a run recorded for
            publishing (``tools/gpu_run.py``) trains from scratch.
        keep_checkpoints (int): how many epoch checkpoints to keep (newest first).
        seed (int): seed every random-number generator at the start (and the data
            loader's own generator, if it has one).
        val_fn (callable): ``val_fn(model) -> dict`` of metrics, run after every epoch
            with the model in eval mode and gradients off.
        on_step (callable): ``on_step(step, epoch, losses)`` after every optimiser step
            (``losses``: dict of detached scalar tensors); raise from it to stop.
        progress ("auto", "live", "text", "bar", "off" or bool): see :mod:`.progress`.
        log_every (int): read the losses back from the device every this many steps;
            reading forces a GPU sync, so not on every step.
        find_unused_parameters (bool): under ``torchrun`` only, passed to
            ``DistributedDataParallel``: True if some parameters get no gradient in some
            steps (a branch the forward skips); see :func:`.distributed.wrap_model`.
    """

    epochs: int | None = None
    steps: int | None = None
    epoch_steps: int | None = None
    loss_fn: Callable | None = None
    device: str | torch.device | None = None
    amp: bool | str = "auto"
    clip_grad_norm: float | None = None
    warmup_steps: int | float = 0
    schedule: str | Callable = "cosine"
    min_lr_ratio: float = 0.0
    checkpoint_dir: str | Path | None = None
    resume: bool = True
    keep_checkpoints: int = 2
    seed: int | None = None
    val_fn: Callable | None = None
    on_step: Callable | None = None
    progress: str | bool = "auto"
    log_every: int = 10
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError(
                "give either epochs or steps (exactly one of them), got "
                f"epochs={self.epochs!r}, steps={self.steps!r}"
            )
        for name in ("epochs", "steps", "epoch_steps"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        check_positive_int("keep_checkpoints", self.keep_checkpoints)
        check_positive_int("log_every", self.log_every)
        if self.amp not in ("auto", "bf16", "fp16", True, False, None):
            raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or False, got {self.amp!r}")
        if self.clip_grad_norm is not None and not (
            isinstance(self.clip_grad_norm, (int, float)) and self.clip_grad_norm > 0
        ):
            raise ValueError(
                f"clip_grad_norm must be a positive number or None, got {self.clip_grad_norm!r}"
            )
        w = self.warmup_steps
        if (
            isinstance(w, bool)
            or not isinstance(w, (int, float))
            or w < 0
            or (isinstance(w, float) and w >= 1)
        ):
            raise ValueError(
                "warmup_steps must be an int >= 0 (steps) or a float in [0, 1) "
                f"(a fraction of all steps), got {w!r}"
            )
        if not callable(self.schedule) and self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {SCHEDULES} or a callable, got {self.schedule!r}"
            )
        if not 0.0 <= float(self.min_lr_ratio) <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.seed is not None:
            check_positive_int("seed", self.seed, allow_zero=True)
        for name in ("loss_fn", "val_fn", "on_step"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise ValueError(
                    f"{name} must be callable or None, got {type(getattr(self, name)).__name__}"
                )
        if not isinstance(self.find_unused_parameters, bool):
            raise ValueError(
                f"find_unused_parameters must be True or False, got {self.find_unused_parameters!r}"
            )
        if self.progress not in (True, False, None) and self.progress not in PROGRESS_MODES:
            raise ValueError(
                f"progress must be one of {PROGRESS_MODES} or True/False, got {self.progress!r}"
            )


def fit(
    model: torch.nn.Module,
    train_data,
    optimizer: torch.optim.Optimizer,
    config: FitConfig | None = None,
    **settings,
) -> History:
    """Train ``model`` on ``train_data`` with ``optimizer``; return the history.

    Args:
        model (nn.Module): the model; moved to the device. It is left in eval mode at
            the end, ready to evaluate.
        train_data (iterable): batches ``(inputs, targets)``, usually a ``DataLoader``.
            ``inputs``: a tensor ``[B, C, H, W]`` or a list of ``[C, H, W]`` tensors;
            ``targets``: a tensor, or a list of dicts (``boxes``, ``labels``, ``masks``,
            ``keypoints``) as torchvision's detection models take. Tensors inside are
            moved to the device.
        optimizer (torch.optim.Optimizer): built on ``model.parameters()``; its learning
            rates are the peak of the schedule.
        config (FitConfig, optional): the settings; or pass them as keywords, e.g.
            ``fit(model, loader, opt, epochs=5, warmup_steps=100, clip_grad_norm=1.0)``
            (keywords override ``config``). See :class:`FitConfig` for all of them.

    Returns:
        History: every step's learning rate and losses (total and per term), every
        epoch's mean losses, metrics from ``val_fn`` and seconds.

    Raises:
        ValueError: on bad settings, or a checkpoint written by a different plan.
        FloatingPointError: when the loss becomes NaN or infinite (with the step).
    """
    cfg = _merge_config(config, settings)
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    run = distributed.join(cfg.device)  # None: one process, as without torchrun
    if run is None:
        dev = torch.device(cfg.device) if cfg.device is not None else default_device()
    else:
        dev = run.device
        # each process reads its share; the sampler shuffles from seed + epoch
        train_data = distributed.shard_loader(train_data, run, seed=cfg.seed or 0)
    plan = _plan(cfg, train_data, optimizer, run)
    amp = _MixedPrecision(cfg.amp, dev)
    generator = getattr(train_data, "generator", None)  # a DataLoader's shuffling generator
    generator = generator if isinstance(generator, torch.Generator) else None
    if cfg.seed is not None:
        seed_everything(cfg.seed)
        if generator is not None:
            generator.manual_seed(cfg.seed)
    model.to(dev)

    # resume from the newest checkpoint of the same plan, if any
    history, start_epoch, step, note = History(), 0, 0, None
    resume = cfg.resume and os.environ.get("VIZLIB_RESUME", "1").strip() != "0"
    found = load_latest(cfg.checkpoint_dir) if cfg.checkpoint_dir is not None and resume else None
    if found is not None:
        state, path = found
        history, start_epoch, step = restore_training_state(
            state,
            path,
            plan=plan,
            model=model,
            optimizer=optimizer,
            scaler=amp.scaler,
            generator=generator,
        )
        note = f"resumed from {path} ({start_epoch}/{plan['epochs']} epochs done)"
    # the module that runs forward: the model itself, or its DDP wrapper (which
    # broadcasts rank 0's weights now and all-reduces the gradients in backward)
    net = model if run is None else distributed.wrap_model(model, run, cfg.find_unused_parameters)
    is_main = run is None or run.is_main

    reporter = make_progress(cfg.progress if is_main else "off")
    reporter.start(_header(plan, dev, amp.dtype, cfg, note, run), plan["epochs"])
    for summary in history.epochs:  # a resumed run shows the epochs it inherited too
        reporter.end_epoch(summary, history)
    session_start = time.perf_counter()
    seconds_before = history.seconds
    pending: list = []  # steps whose losses still sit on the device
    try:
        for epoch in range(start_epoch + 1, plan["epochs"] + 1):
            epoch_start = time.perf_counter()
            model.train()
            if run is not None:
                train_data.sampler.set_epoch(epoch)  # a new permutation, dealt out by rank
            n = min(plan["epoch_steps"], plan["steps"] - (epoch - 1) * plan["epoch_steps"])
            for i, batch in zip(range(1, n + 1), train_data, strict=False):
                lr, losses, grad_norm = _train_step(
                    net, optimizer, batch, step, plan, cfg, dev, amp
                )
                step += 1
                pending.append((step, epoch, lr, losses, grad_norm))
                if cfg.on_step is not None:
                    cfg.on_step(step, epoch, losses)
                if len(pending) >= cfg.log_every:
                    _flush(pending, history, run)
                reporter.step(epoch, i, n, history)

            # end of the epoch: record, validate, checkpoint
            _flush(pending, history, run)
            metrics = _validate(model, cfg.val_fn) if is_main else None
            if run is not None:
                metrics = run.from_rank0(metrics)  # rank 0 validated; all record the same
            now = time.perf_counter()
            history.seconds = seconds_before + (now - session_start)
            summary = history.end_epoch(
                epoch, optimizer.param_groups[0]["lr"], now - epoch_start, metrics
            )
            if cfg.checkpoint_dir is not None and is_main:  # one writer
                state = training_state(
                    epoch=epoch,
                    step=step,
                    plan=plan,
                    model=model,
                    optimizer=optimizer,
                    scaler=amp.scaler,
                    history=history,
                    generator=generator,
                )
                save_atomic(
                    state, checkpoint_path(cfg.checkpoint_dir, epoch), keep=cfg.keep_checkpoints
                )
            reporter.end_epoch(summary, history)
    except BaseException as exc:
        history.seconds = seconds_before + (time.perf_counter() - session_start)
        where = (
            f"; re-run with the same checkpoint_dir to resume after epoch {len(history.epochs)}"
            if cfg.checkpoint_dir is not None
            else ""
        )
        reporter.close(history, f"stopped at step {step} ({type(exc).__name__}){where}")
        raise
    complete = "training was already complete: loaded the weights of the last checkpoint"
    reporter.close(history, complete if start_epoch >= plan["epochs"] else None)
    model.eval()
    return history


# -- one step ---------------------------------------------------------------------------


def _train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch,
    step: int,
    plan: dict,
    cfg: FitConfig,
    device: torch.device,
    amp: _MixedPrecision,
):
    """One optimisation step: learning rate, forward and loss, backward, clip, update.

    Returns:
        (float, dict[str, Tensor], Tensor or None): the learning rate of this step, the
        loss terms (detached scalars, still on the device: reading them would wait for
        the GPU) and the gradient norm before clipping (None without clipping).
    """
    lr = _set_lr(optimizer, plan, step, cfg)  # the schedule sets the rate of every step
    inputs, targets = split_batch(batch)
    inputs, targets = move_to(inputs, device), move_to(targets, device)
    optimizer.zero_grad(set_to_none=True)
    with amp.autocast():
        losses = compute_losses(model, inputs, targets, cfg.loss_fn)
    amp.backward(losses["loss"])
    grad_norm = None
    if cfg.clip_grad_norm is not None:
        amp.unscale_(optimizer)  # clip the true gradients, not scaled ones
        params = [p for group in optimizer.param_groups for p in group["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
    amp.step(optimizer)
    return lr, {k: v.detach() for k, v in losses.items()}, grad_norm


class _MixedPrecision:
    """The autocast dtype of a run and, for float16, its gradient scaler.

    bf16 has float32's range, so its gradients need no scaling; fp16 gradients can
    underflow to zero, so the loss is scaled up before backward, the gradients unscaled
    before clipping, and a step whose gradients overflowed is skipped (``GradScaler``).
    """

    def __init__(self, amp, device: torch.device):
        self.device_type = device.type
        self.dtype = _amp_dtype(amp, device)  # None: float32
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler:
            self.scaler.step(optimizer)  # skips the step if the gradients overflowed
            self.scaler.update()
        else:
            optimizer.step()


def compute_losses(
    model: torch.nn.Module, inputs, targets, loss_fn: Callable | None = None
) -> dict:
    """The loss terms of one batch as a dict with the total under ``"loss"``.

    Args:
        model (nn.Module): in train mode.
        inputs, targets: one batch, on the model's device.
        loss_fn (callable, optional): ``loss_fn(model(inputs), targets)``; without it
            the model is called as ``model(inputs, targets)`` and must return the loss.

    Returns:
        dict[str, Tensor]: scalar tensors; ``"loss"`` is the sum of the other terms (or
        the only one).
    """
    if loss_fn is None:
        try:
            out = model(inputs, targets)
        except TypeError as exc:
            if "positional argument" in str(exc):
                raise ValueError(
                    f"{type(model).__name__} does not take (inputs, targets): pass "
                    "loss_fn=..., e.g. loss_fn=torch.nn.functional.cross_entropy"
                ) from exc
            raise
    else:
        out = loss_fn(model(inputs), targets)
    if isinstance(out, torch.Tensor):
        if out.numel() != 1:
            raise ValueError(
                f"the loss must be a scalar tensor, got shape {tuple(out.shape)}; "
                "reduce it (e.g. .mean())"
            )
        return {"loss": out.reshape(())}
    if isinstance(out, Mapping) and out:
        terms = {}
        for k, v in out.items():
            if not isinstance(v, torch.Tensor) or v.numel() != 1:
                raise ValueError(f"loss term {k!r} must be a scalar tensor, got {v!r:.80}")
            terms[str(k)] = v.reshape(())
        if "loss" in terms and len(terms) > 1:
            raise ValueError(
                "a dict of losses must not have a term called 'loss': that name "
                "is kept for their sum"
            )
        total = sum(terms.values()) if len(terms) > 1 else next(iter(terms.values()))
        return {"loss": total, **terms} if "loss" not in terms else terms
    raise ValueError(
        f"the loss must be a scalar tensor or a non-empty dict of them, got {type(out).__name__}"
    )


def move_to(obj, device: torch.device):
    """``obj`` with every tensor inside (lists, tuples, dicts, nested) on ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=device.type == "cuda")
    if isinstance(obj, Mapping):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*(move_to(v, device) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(v, device) for v in obj)
    return obj


def split_batch(batch) -> tuple:
    """``(inputs, targets)`` of one batch: a pair (tuple or list), as a DataLoader yields.

    Raises:
        ValueError: if ``batch`` is not a sequence of two items.
    """
    if isinstance(batch, Sequence) and not isinstance(batch, (str, bytes)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(
        "each batch must be a pair (inputs, targets); got "
        f"{type(batch).__name__}"
        + (f" of length {len(batch)}" if hasattr(batch, "__len__") else "")
    )


def _flush(pending: list, history: History, run: distributed.Distributed | None = None) -> None:
    """Copy the pending steps' losses to the CPU (one sync) and record them; under
    torchrun, the mean over the processes (every process flushes at the same steps)."""
    if not pending:
        return
    names = list(pending[0][3])
    rows = torch.stack([torch.stack([p[3][k].float() for k in names]) for p in pending])  # [P, T]
    if run is not None:
        rows = run.mean(rows)
    values = rows.cpu().tolist()
    norms = [float(p[4]) if p[4] is not None else None for p in pending]
    for (step, epoch, lr, _, _), row, norm in zip(pending, values, norms, strict=True):
        if not all(math.isfinite(v) for v in row):
            shown = ", ".join(f"{k}={v:.4g}" for k, v in zip(names, row, strict=True))
            pending.clear()
            raise FloatingPointError(
                f"the loss is not finite at step {step} (epoch {epoch}): {shown}. Try a lower "
                "learning rate, warm-up, clip_grad_norm=1.0, or check the targets (empty boxes, "
                "labels out of range)."
            )
        history.add_step(step, epoch, lr, dict(zip(names, row, strict=True)), norm)
    pending.clear()


def _validate(model: torch.nn.Module, val_fn: Callable | None) -> dict:
    if val_fn is None:
        return {}
    model.eval()
    with torch.no_grad():
        metrics = val_fn(model)
    model.train()
    if not isinstance(metrics, Mapping):
        raise ValueError(f"val_fn must return a dict of metrics, got {type(metrics).__name__}")
    out = {}
    for k, v in metrics.items():
        if isinstance(v, torch.Tensor):
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"val_fn returned {k}={v!r}; metrics must be numbers")
        out[str(k)] = float(v)
    return out


# -- plan, learning rate, mixed precision -------------------------------------------


def _merge_config(config: FitConfig | None, settings: dict) -> FitConfig:
    if config is not None and not isinstance(config, FitConfig):
        raise ValueError(f"config must be a FitConfig, got {type(config).__name__}")
    known = {f.name for f in fields(FitConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(
            f"fit() got unknown setting(s) {unknown}; the settings are {sorted(known)}"
        )
    base = {f.name: getattr(config, f.name) for f in fields(FitConfig)} if config else {}
    if settings.get("epochs") is not None:
        base["steps"] = None  # a keyword replaces the config's length of run
    if settings.get("steps") is not None:
        base["epochs"] = None
    return FitConfig(**{**base, **settings})


def _plan(cfg: FitConfig, train_data, optimizer, run=None) -> dict:
    """How many steps, in how many epochs, with which schedule: all that resuming checks."""
    try:
        n_batches = len(train_data)
    except TypeError:
        n_batches = None
    epoch_steps = cfg.epoch_steps or n_batches
    if not epoch_steps:
        raise ValueError(
            "train_data has no len() (or is empty): give epoch_steps, the "
            "number of steps that make one epoch"
        )
    if n_batches is not None and epoch_steps > n_batches:
        raise ValueError(
            f"epoch_steps={epoch_steps} is more than the {n_batches} batches of train_data"
        )
    steps = cfg.steps or cfg.epochs * epoch_steps
    warmup = cfg.warmup_steps
    if isinstance(warmup, float):
        warmup = int(round(warmup * steps))
    for group in optimizer.param_groups:
        # The schedule scales this peak rate; torch's schedulers keep it under the same
        # key, so a second fit() with the same optimizer starts from the peak again.
        group.setdefault("initial_lr", group["lr"])
    plan = {
        "steps": steps,
        "epochs": math.ceil(steps / epoch_steps),
        "epoch_steps": epoch_steps,
        "warmup_steps": warmup,
        "schedule": cfg.schedule
        if isinstance(cfg.schedule, str)
        else getattr(cfg.schedule, "__qualname__", repr(cfg.schedule)),
        "min_lr_ratio": float(cfg.min_lr_ratio),
        "base_lrs": [float(g["initial_lr"]) for g in optimizer.param_groups],
        "seed": cfg.seed,
    }
    if run is not None:  # a checkpoint resumes only a run of as many processes
        plan["world_size"] = run.world_size
    return plan


def _set_lr(optimizer, plan: dict, step: int, cfg: FitConfig) -> float:
    factor = lr_factor(
        step, plan["steps"], plan["warmup_steps"], cfg.schedule, plan["min_lr_ratio"]
    )
    for group, base in zip(optimizer.param_groups, plan["base_lrs"], strict=True):
        group["lr"] = base * factor
    return optimizer.param_groups[0]["lr"]


def _amp_dtype(amp, dev: torch.device):
    if amp in (False, None) or dev.type != "cuda":
        return None  # autocast on a CPU is slower than float32 on most CPUs
    if amp in ("auto", True):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16


def _header(
    plan: dict, dev: torch.device, amp_dtype, cfg: FitConfig, note: str | None, run=None
) -> str:
    where = str(dev)
    if dev.type == "cuda":
        where += f" ({torch.cuda.get_device_name(dev)})"
    if run is not None:
        where += f" x {run.world_size} processes (DDP)"
    parts = [
        f"fit: {plan['epochs']} epochs x {plan['epoch_steps']} steps "
        f"({plan['steps']} steps) on {where}"
    ]
    if amp_dtype is not None:
        parts.append(f"{str(amp_dtype).replace('torch.', '')} autocast")
    sched = plan["schedule"]
    if plan["warmup_steps"]:
        sched = f"warm-up {plan['warmup_steps']} steps, then {sched}"
    parts.append(f"lr {plan['base_lrs'][0]:.1e} {sched}")
    if cfg.clip_grad_norm is not None:
        parts.append(f"clip {cfg.clip_grad_norm:g}")
    text = ", ".join(parts)
    return text + (f"\n{note}" if note else "")
