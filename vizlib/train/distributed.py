"""``fit`` on several processes: PyTorch's DistributedDataParallel, started by ``torchrun``.

Nothing here is home-made parallelism: one process per device, each with a full copy of
the model, each reading its own share of the data; ``DistributedDataParallel`` (DDP)
all-reduces the gradients in buckets during ``backward``, so that every process takes the
same optimiser step with the gradient averaged over all of them (Li et al., 2020,
"PyTorch Distributed: Experiences on Accelerating Data Parallel Training", VLDB).

``torchrun`` starts the processes and tells each who it is through the environment
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``); this module
reads it, joins the process group (``nccl`` on GPUs, ``gloo`` on CPUs), and gives
:func:`vizlib.train.fit` the few things it needs:

* :func:`join` -> a :class:`Distributed` describing this process (``None`` in a single
  process: ``fit`` then behaves exactly as without this module);
* :func:`shard_loader` rebuilds a ``DataLoader`` with a ``DistributedSampler`` so that the
  processes read disjoint shares of every epoch (``set_epoch`` reshuffles per epoch);
* :meth:`Distributed.mean` averages the logged losses over the processes, and
  :meth:`Distributed.from_rank0` sends rank 0's validation metrics to every process.

Effective batch size = processes x the loader's batch size: two processes at batch ``b``
take the same step as one process at batch ``2b`` (``tests/test_distributed.py`` checks
it). Scaling the learning rate with it is the user's choice (the linear scaling rule of
Goyal et al., 2017, with warm-up, is the usual start).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Distributed", "join", "shard_loader", "wrap_model"]

_TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Distributed:
    """This process's place in a distributed run.

    Attributes:
        rank (int): 0 .. world_size - 1 over every node; rank 0 logs and checkpoints.
        local_rank (int): the rank on this node; picks the GPU.
        world_size (int): processes in all.
        device (torch.device): this process's device (``cuda:<local_rank>`` or cpu).
    """

    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise mean of ``tensor`` over every process (a collective: every
        process must call it at the same point). gloo has no AVG, hence SUM / n."""
        out = tensor.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.world_size

    def from_rank0(self, obj):
        """Rank 0's ``obj`` on every process (a collective)."""
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def join(device: str | torch.device | None = None) -> Distributed | None:
    """Join the process group ``torchrun`` set up in the environment, if any.

    Args:
        device: the device asked of ``fit``; under DDP a CUDA device becomes this
            process's own GPU, ``cuda:<LOCAL_RANK>``.

    Returns:
        Distributed, or None when this process runs alone (no ``WORLD_SIZE`` > 1 in the
        environment and no process group already initialised with more than one process).

    Raises:
        ValueError: if the environment names a world size but misses what ``torchrun``
            sets, or if the process group is of another size than ``WORLD_SIZE``.
    """
    if dist.is_available() and dist.is_initialized():
        world, rank = dist.get_world_size(), dist.get_rank()
        if world == 1:
            return None
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    else:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if world <= 1:
            return None
        missing = [v for v in _TORCHRUN_VARS if not os.environ.get(v)]
        if missing:
            raise ValueError(
                f"WORLD_SIZE={world} but {', '.join(missing)} not set: start the script with "
                "torchrun (e.g. `torchrun --nproc_per_node=2 train.py`), which sets them all"
            )
        rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    wants_cuda = (
        torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    )
    if wants_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        # The store torchrun's agent serves can outlive a restart with the previous
        # attempt's keys in it: a restarted rank then reads a dead peer's address and
        # fails to connect ("Connection refused"; seen here about one restart in three
        # with torch 2.14, cf. pytorch/pytorch#167288). Keys of our own per attempt
        # make a restart meet only its own round.
        store, _, _ = next(dist.rendezvous("env://"))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(
            # nccl runs the all-reduce on the GPUs; gloo on CPUs (and is what CI can test)
            backend="nccl" if wants_cuda else "gloo",
            store=dist.PrefixStore(f"vizlib/attempt-{attempt}/", store),
            rank=rank,
            world_size=world,
        )
        if dist.get_world_size() != world:
            raise ValueError(
                f"the process group has {dist.get_world_size()} processes, WORLD_SIZE says {world}"
            )
    return Distributed(rank=rank, local_rank=local_rank, world_size=world, device=dev)


def wrap_model(
    model: torch.nn.Module, run: Distributed, find_unused_parameters: bool = False
) -> torch.nn.Module:
    """``model`` (already on ``run.device``) inside ``DistributedDataParallel``.

    Wrapping broadcasts rank 0's parameters and buffers, so every process starts from
    the same weights even if they were initialised with different seeds.

    ``find_unused_parameters=False`` (DDP's default, and faster): every parameter must
    receive a gradient at every step. vizlib's detection losses keep every head in the
    graph even when a batch has nothing for it (a loss of ``0 * head_output.sum()``, the
    way detectron2 and torchvision do), so the default is right for them; a model of
    your own whose branches are skipped in some steps needs ``True``.
    """
    ids = [run.device.index] if run.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=ids, find_unused_parameters=find_unused_parameters
    )


def shard_loader(loader, run: Distributed, seed: int = 0):
    """``loader`` rebuilt so that each process reads its own share of every epoch.

    Args:
        loader (DataLoader): built as for one process (``shuffle=True`` or not); its
            batch size stays the per-process batch size.
        run (Distributed): this process.
        seed (int): the shuffling seed, the same on every process (the sampler draws one
            permutation per epoch from ``seed + epoch`` and deals it out by rank).

    Returns:
        DataLoader with a ``DistributedSampler``; call ``loader.sampler.set_epoch(e)``
        before each epoch (``fit`` does).

    Raises:
        ValueError: if ``loader`` is not a ``DataLoader`` over a data set with a length
            (an iterable data set must shard itself by ``rank``).
    """
    from torch.utils.data import DataLoader, RandomSampler
    from torch.utils.data.distributed import DistributedSampler

    if not isinstance(loader, DataLoader):
        raise ValueError(
            "under torchrun, train_data must be a torch.utils.data.DataLoader (fit gives each "
            f"process its share through a DistributedSampler), got {type(loader).__name__}"
        )
    if isinstance(loader.sampler, DistributedSampler):
        return loader  # already sharded by the caller
    if loader.batch_size is None or not hasattr(loader.dataset, "__len__"):
        raise ValueError(
            "under torchrun, train_data must be a DataLoader with a batch_size over a data "
            "set with a length; shard an iterable data set yourself by rank"
        )
    sampler = DistributedSampler(
        loader.dataset,
        num_replicas=run.world_size,
        rank=run.rank,
        shuffle=isinstance(loader.sampler, RandomSampler),
        seed=seed,
        drop_last=loader.drop_last,
    )
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        drop_last=loader.drop_last,
        collate_fn=loader.collate_fn,
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
        persistent_workers=loader.persistent_workers,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,  # seeds the workers from the loader's seed
        timeout=loader.timeout,
        prefetch_factor=loader.prefetch_factor if loader.num_workers else None,
    )
