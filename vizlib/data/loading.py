"""The training loader of every chapter: a plain ``DataLoader`` whose workers are sized
from the machine.

A 64 px scene takes about 1.5 ms to generate on one core and a fifth of that to serve
from the in-memory cache (``benchmarks/results/scenes.md``); a GPU step of a chapter's
model eats thousands of images a second. :func:`train_loader` therefore gives a CUDA run
worker processes (one per spare core, up to 8) that stay alive across epochs, so each
keeps its own scene cache, and pinned memory for the copies to the GPU. A CPU run keeps
the loading in the main process: there the model's threads already use the cores, and
``benchmarks/bench_data_pipeline.py`` measures what workers would cost
(``benchmarks/results/data_pipeline.md``).
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader

from .._checks import check_positive_int

__all__ = ["train_loader"]

MAX_AUTO_WORKERS = 8  # past this, a small model's loader gains little and costs memory


def _cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def _processes_per_machine() -> int:
    """Training processes that share this machine's cores: torchrun's ``LOCAL_WORLD_SIZE``, else 1."""
    value = os.environ.get("LOCAL_WORLD_SIZE", "1")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def _auto_workers(device: torch.device) -> int:
    """``num_workers`` for ``workers="auto"`` on ``device``."""
    if device.type != "cuda":
        # CPU: the model's forward and backward run on torch's intra-op threads, and a
        # worker takes a core from them (on 2 cores with 2 threads, the FCN chapter's
        # step fed by 1 or 2 workers ran at 58-72% of its speed on synthetic tensors,
        # against 74-77% loading in the main process); and a cached 64 px scene costs
        # about 1.6 ms against about 20 ms of the FCN chapter's CPU step per image, so
        # loading in the main process costs under 10% (benchmarks/results/data_pipeline.md).
        # MPS: macOS starts workers with "spawn", which cannot pickle a data set defined
        # in a notebook.
        return 0
    # CUDA: the main process feeds the GPU; each spare core of this process's share of
    # the machine (torchrun starts LOCAL_WORLD_SIZE processes) runs one worker.
    spare = _cores() // _processes_per_machine() - 1
    return max(0, min(spare, MAX_AUTO_WORKERS))


def train_loader(
    dataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    drop_last: bool = True,
    collate_fn=None,
    seed: int = 0,
    workers: int | str = "auto",
    device=None,
) -> DataLoader:
    """A chapter's training ``DataLoader``, with worker processes sized from the machine.

    With ``workers=0`` it yields exactly the batches of
    ``DataLoader(dataset, batch_size, shuffle=shuffle, drop_last=drop_last,
    collate_fn=collate_fn, generator=torch.Generator().manual_seed(seed))``. With workers
    the batches stay the same for a given ``seed`` and worker count: the shuffling and the
    seeds of every worker (torch, NumPy and ``random``, which the DataLoader sets from a
    base seed drawn from the loader's generator) come from ``seed``, so augmentations
    repeat too.

    Workers are persistent (started once, kept across epochs), so a data set that caches
    what it generates (``vizlib.data.Scenes``, in memory by default) keeps one cache per
    worker across epochs. Each worker caches the scenes it was given, and the shuffling
    deals a scene to another worker in the next epoch, so with ``W`` workers a scene is
    found cached with probability ``1 - (1 - 1/W) ** e`` after ``e`` epochs (W = 8: 12% in
    the second epoch, 66% in the ninth), and every worker ends up holding a copy (about
    20 kB per 64 px scene). Scenes the main process generated before the first batch (by
    indexing the data set) are in every worker's cache from the start where workers are
    forked (Linux).

    It returns a plain ``torch.utils.data.DataLoader``, so ``fit`` can rebuild it with a
    ``DistributedSampler`` under torchrun (it keeps the workers, the pinning, the
    collate function and the shuffling).

    Args:
        dataset (Dataset): a map-style data set (``__getitem__`` and ``__len__``) of at
            least one image, or at least ``batch_size`` images with ``drop_last``.
        batch_size (int): images per batch, >= 1.
        shuffle (bool): a new random order each epoch (``RandomSampler``), else index order.
        drop_last (bool): drop the last, incomplete batch (every step sees ``batch_size``
            images).
        collate_fn (callable, optional): turns a list of samples into a batch, e.g.
            ``vizlib.data.collate_detection``; ``None``: torch's default (stacks tensors).
        seed (int): in ``[0, 2**32)``; seeds the loader's generator (order and workers).
        workers (int or "auto"): worker processes (``num_workers``). An int >= 0 is
            taken as is. ``"auto"``: 0 unless ``device`` is CUDA; on CUDA one per core
            available to this process (``os.sched_getaffinity``, divided among torchrun's
            ``LOCAL_WORLD_SIZE`` processes) but one, at most 8.
        device (str or torch.device, optional): where the batches go; ``None``:
            ``vizlib.device()``. On CUDA the batches are pinned (``pin_memory=True``) for
            fast, asynchronous copies.

    Returns:
        DataLoader: ``num_workers`` as above, ``persistent_workers=True`` when it has
        workers, ``pin_memory=True`` on CUDA.

    Raises:
        ValueError: a bad argument (not a map-style data set, too few images, a batch size
            or worker count that is not a non-negative int, a flag that is not a bool, an
            uncallable ``collate_fn``, a seed out of range, an unknown device).
    """
    if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise ValueError(
            "dataset must be a map-style data set (with __getitem__ and __len__), "
            f"got {type(dataset).__name__}"
        )
    batch_size = check_positive_int("batch_size", batch_size)
    for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be True or False, got {flag!r}")
    size = len(dataset)
    if size == 0 or (drop_last and size < batch_size):
        raise ValueError(
            f"dataset has {size} images: no batch of {batch_size} "
            + ("(drop_last drops the incomplete one); " if drop_last and size else "")
            + "expected at least "
            + (f"batch_size = {batch_size} images" if drop_last else "one image")
        )
    if collate_fn is not None and not callable(collate_fn):
        raise ValueError(f"collate_fn must be callable or None, got {type(collate_fn).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    device = _as_device(device)
    if isinstance(workers, str):
        if workers != "auto":
            raise ValueError(f'workers must be an int >= 0 or "auto", got {workers!r}')
        workers = _auto_workers(device)
    elif isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f'workers must be an int >= 0 or "auto", got {workers!r}')
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        collate_fn=collate_fn,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        # no worker_init_fn: each worker seeds random, NumPy and torch itself from
        # base_seed + its id, and base_seed is drawn from this generator
        generator=torch.Generator().manual_seed(seed),
    )


def _as_device(device) -> torch.device:
    """``device`` as a ``torch.device``; ``None``: ``vizlib.device()``."""
    if device is None:
        from .. import device as best_device

        return best_device()
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        try:
            return torch.device(device)
        except RuntimeError as error:
            raise ValueError(
                f'device must be a torch.device or a name such as "cpu" or "cuda", got {device!r}'
            ) from error
    raise ValueError(
        f'device must be a torch.device, a name such as "cpu" or "cuda", or None, got {device!r}'
    )
