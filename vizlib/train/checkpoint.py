"""Checkpoints that survive a crash: written atomically, read back newest first.

A checkpoint is written to a temporary file in the same folder, flushed to the disk
(``fsync``) and only then renamed over its final name with ``os.replace``, which is
atomic on POSIX and Windows. A run killed halfway through a write therefore leaves a
stray temporary file, never a half-written checkpoint under a real name: the previous
checkpoint stays valid, and the next run resumes from it.

Files are called ``epoch-0003.pt`` (the number of completed epochs); the newest few are
kept. Everything in them loads with ``torch.load(weights_only=True)``: tensors, numbers,
strings, lists and dicts only, no pickled Python objects.

What :func:`vizlib.train.fit` saves after each epoch, and puts back when it resumes, is
built and applied here (:func:`training_state`, :func:`restore_training_state`): the
model's and the optimiser's state, the fp16 gradient scaler's, every random-number state
(so that a resumed run draws the same batches and dropout masks as an uninterrupted one),
the history, the epoch and step reached, and the plan (steps, epochs, schedule) that a
resuming run must share.
"""

from __future__ import annotations

import os
import random
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from .history import History

__all__ = [
    "CHECKPOINT_FORMAT",
    "checkpoint_path",
    "list_checkpoints",
    "load_latest",
    "restore_rng_state",
    "restore_training_state",
    "rng_state",
    "save_atomic",
    "training_state",
]

CHECKPOINT_FORMAT = 1  # raise it when the keys of training_state change

_NAME = re.compile(r"^epoch-(\d{4,})\.pt$")
_TMP_SUFFIX = ".tmp"


def checkpoint_path(directory: str | os.PathLike, epoch: int) -> Path:
    """The file for the checkpoint taken after ``epoch`` completed epochs."""
    return Path(directory) / f"epoch-{epoch:04d}.pt"


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of every checkpoint in ``directory``, newest first.

    Temporary files left by an interrupted write are not checkpoints and are skipped.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def save_atomic(state: dict, path: str | os.PathLike, keep: int | None = None) -> Path:
    """Write ``state`` with ``torch.save`` so that ``path`` is either old or complete.

    Args:
        state (dict): what to save; must load with ``weights_only=True``.
        path (path): the final file name (its folder is created if needed).
        keep (int, optional): after writing, delete all but the newest ``keep``
            checkpoints of the folder (``None`` keeps them all).

    Returns:
        Path: ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target: os.replace is only atomic within one file system.
    tmp = path.with_name(f".{path.name}.{os.getpid()}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on the disk before the name points at them
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)  # ... and the rename itself is on the disk too
    if keep is not None:
        for _, old in list_checkpoints(path.parent)[keep:]:
            old.unlink(missing_ok=True)
    return path


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder; its rename is durable enough
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_latest(directory: str | os.PathLike, map_location="cpu") -> tuple[dict, Path] | None:
    """The newest checkpoint of ``directory`` that loads, or ``None`` if there is none.

    A checkpoint that fails to load (truncated by a full disk, say) is reported with a
    warning and the next older one is tried. Stray temporary files from an interrupted
    write are deleted.

    Returns:
        (dict, Path) or None: the loaded state and the file it came from.
    """
    directory = Path(directory)
    if directory.is_dir():
        for stray in directory.glob(f".epoch-*{_TMP_SUFFIX}"):
            stray.unlink(missing_ok=True)
    for _, path in list_checkpoints(directory):
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # a damaged file: fall back to the one before
            warnings.warn(
                f"checkpoint {path} does not load ({type(exc).__name__}: {exc}); "
                "trying the one before it",
                stacklevel=2,
            )
            continue
        return state, path
    return None


def rng_state(generator: torch.Generator | None = None) -> dict:
    """Every random-number state a training run draws from, as plain tensors and lists."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def restore_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    """Put back the states saved by :func:`rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if (
        "cuda" in state
        and torch.cuda.is_available()
        and len(state["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None and "generator" in state:
        generator.set_state(state["generator"])


def training_state(
    *,
    epoch: int,
    step: int,
    plan: dict,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    history: History,
    generator: torch.Generator | None = None,
) -> dict:
    """Everything a training run needs to continue exactly where it is, as one dict.

    Args:
        epoch (int): completed epochs.
        step (int): completed optimiser steps.
        plan (dict): the run's steps, epochs, schedule and base learning rates (plain
            values); a run resuming from this state must have the same plan.
        model (nn.Module), optimizer (Optimizer): their ``state_dict()`` is saved.
        scaler (GradScaler or None): the fp16 gradient scaler, if the run has one.
        history (History): the losses and metrics so far.
        generator (torch.Generator, optional): the data loader's own generator.

    Returns:
        dict: loads with ``torch.load(weights_only=True)``; write it with
        :func:`save_atomic`, put it back with :func:`restore_training_state`.
    """
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": epoch,
        "step": step,
        "plan": plan,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": history.to_dict(),
        "rng": rng_state(generator),
    }


def restore_training_state(
    state: dict,
    path: str | os.PathLike,
    *,
    plan: dict,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    generator: torch.Generator | None = None,
) -> tuple[History, int, int]:
    """Put a :func:`training_state` back: weights, optimiser, scaler and random states.

    Args:
        state (dict): as :func:`training_state` built it (e.g. from :func:`load_latest`).
        path (path): the file it came from, named in error messages.
        plan (dict): the plan of the run that resumes; it must equal the saved one.
        model, optimizer, scaler, generator: loaded in place.

    Returns:
        (History, int, int): the history, the completed epochs and the completed steps.

    Raises:
        ValueError: if the checkpoint has another format, was written by a run with
            another plan, or holds the weights of another architecture.
    """
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} has checkpoint format {found!r}, expected {CHECKPOINT_FORMAT}")
    _check_plan(state["plan"], plan, path)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        # The checkpoint folder is keyed by the lesson's settings only, so a model whose code
        # changed (a head resized, a "going further" variant) finds the old run's weights.
        raise ValueError(
            f"the checkpoint {path} holds weights of another model "
            f"architecture: {str(exc).splitlines()[0]}. The model changed since that run: "
            f"delete {Path(path).parent} to train this one afresh (or set VIZLIB_RESUME=0)"
        ) from exc
    optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    restore_rng_state(state["rng"], generator)
    return History.from_dict(state["history"]), state["epoch"], state["step"]


def _check_plan(saved: dict, plan: dict, path) -> None:
    """A checkpoint resumes only the run that wrote it (same settings): specific to resuming."""
    diffs = [
        f"{k}: checkpoint {saved.get(k)!r}, now {plan[k]!r}"
        for k in plan
        if saved.get(k) != plan[k]
    ]
    if diffs:
        raise ValueError(
            f"the checkpoint {path} was written by a run with other settings ("
            + "; ".join(diffs)
            + "). Delete its folder, use another checkpoint_dir, or pass "
            "resume=False to start afresh."
        )
